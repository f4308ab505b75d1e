"""Drivers: how one hidden-test case calls a student's function or class.

A driver takes the object under test (``obj``: the student's function or
class, or the reference one; for an exercise with several ``names``, an
:class:`Objects` holding them by name and by position), the case's inputs
(plain data) and a context ``{"device": "cpu" | "cuda" | "mps", "dtype":
"float64" | ..., "seed": int, "uses_torch": bool, "outputs": [the exercise's
output names] or None, "uses": {name: the reference version of each function
in the exercise's ``uses``}}``, and returns plain data
(see :mod:`grader.wire`).  The same driver runs on the student's code inside
the worker process and on the reference in the grader, after the same seeding
(:func:`seed_everything`), so the two outputs are comparable by construction.
Anything that is not plain data (a layer's cache, a model, an environment)
stays inside the driver: it calls forward then backward, or builds, trains and
evaluates, and returns numbers.

One module per topic: generic drivers live here, the others in
:mod:`grader.drivers.tensors`, :mod:`~grader.drivers.layers`,
:mod:`~grader.drivers.training`, :mod:`~grader.drivers.modules`,
:mod:`~grader.drivers.rl`, :mod:`~grader.drivers.backprop` and
:mod:`~grader.drivers.understanding`; all are registered when this
package is imported.  This package is imported by the untrusted worker: it holds no expected
values and imports nothing beyond numpy and the course's expression builder
(``course_utils.expressions``; torch and gymnasium lazily).
"""

from __future__ import annotations

import copy
import random
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

DRIVERS: dict[str, Callable[[Any, dict, dict], Any]] = {}


def driver(fn: Callable) -> Callable:
    if fn.__name__ in DRIVERS:
        raise ValueError(f"two drivers are called {fn.__name__!r}; rename one")
    DRIVERS[fn.__name__] = fn
    return fn


class Objects:
    """The objects of an exercise with several names: ``objs.affine_forward``,
    ``objs["affine_forward"]`` or, in the order of ``Exercise.names``, ``objs[0]``."""

    def __init__(self, items: dict[str, Any]):
        self.__dict__["_items"] = dict(items)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_items"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, key: int | str) -> Any:
        items = self.__dict__["_items"]
        return list(items.values())[key] if isinstance(key, int) else items[key]

    def __len__(self) -> int:
        return len(self.__dict__["_items"])

    @property
    def names(self) -> list[str]:
        return list(self.__dict__["_items"])


def seed_everything(seed: int, torch: bool | None = None) -> None:
    """Seed Python's ``random``, numpy's global generator and, when ``torch`` is
    true (or, with ``None``, when torch is already imported), torch's CPU and CUDA
    generators."""
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if torch or (torch is None and "torch" in sys.modules):
        import torch as _torch

        _torch.manual_seed(seed)
        if _torch.cuda.is_available():
            _torch.cuda.manual_seed_all(seed)


def run(name: str, obj: Any, inputs: dict, ctx: dict) -> Any:
    """Run driver ``name`` on a copy of ``inputs``, after seeding with ``ctx["seed"]``
    when the context has one."""
    try:
        fn = DRIVERS[name]
    except KeyError:
        raise ValueError(f"unknown driver {name!r}; known: {sorted(DRIVERS)}") from None
    inputs = copy.deepcopy(inputs)
    if ctx.get("seed") is not None:
        seed_everything(ctx["seed"], torch=True if ctx.get("uses_torch") else None)
    return fn(obj, inputs, ctx)


def to_torch(value: Any, ctx: dict) -> Any:
    """Float arrays become tensors of the case dtype on the context's device;
    integer and boolean arrays keep their kind."""
    import torch

    dev = torch.device(ctx.get("device", "cpu"))
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            return torch.as_tensor(value, dtype=getattr(torch, ctx.get("dtype", "float32")), device=dev)
        if value.dtype.kind in "iu":
            return torch.as_tensor(value.astype(np.int64), device=dev)
        if value.dtype.kind == "b":
            return torch.as_tensor(value, device=dev)
        return value
    if isinstance(value, list):
        return [to_torch(v, ctx) for v in value]
    if isinstance(value, tuple):
        return tuple(to_torch(v, ctx) for v in value)
    if isinstance(value, dict):
        return {k: to_torch(v, ctx) for k, v in value.items()}
    return value


@driver
def call(obj: Any, inputs: dict, ctx: dict) -> Any:
    """``obj(**inputs)`` on numpy inputs."""
    return obj(**inputs)


@driver
def call_torch(obj: Any, inputs: dict, ctx: dict) -> Any:
    """``obj(**inputs)`` with array inputs turned into tensors on the device."""
    return obj(**to_torch(inputs, ctx))


#: Plain functions a case can hand to the code under test by name (``"builtin:<name>"``),
#: e.g. for a numerical-gradient exercise: each maps an array to a float.
TEST_FUNCTIONS: dict[str, Callable[[np.ndarray], float]] = {
    "sum_of_squares": lambda x: float(np.sum(np.asarray(x) ** 2)),
    "sin_sum": lambda x: float(np.sum(np.sin(x))),
    "cubic_mix": lambda x: float(np.sum(np.asarray(x) ** 3) - 2.0 * np.sum(x) ** 2),
}


def _callable(spec: str, ctx: dict) -> Callable:
    kind, _, name = str(spec).partition(":")
    if kind == "uses" and name in ctx.get("uses", {}):
        return ctx["uses"][name]
    if kind == "builtin" and name in TEST_FUNCTIONS:
        return TEST_FUNCTIONS[name]
    raise ValueError(f"unknown callable {spec!r}: use 'uses:<a name in the exercise's uses=>' or "
                     f"'builtin:<one of {sorted(TEST_FUNCTIONS)}>'")


@driver
def call_with_callables(obj: Any, inputs: dict, ctx: dict) -> Any:
    """``obj(**args)`` where some arguments are functions, which are not plain data.

    Inputs: ``args`` (the plain keyword arguments) and ``callables``
    (``{argument: "uses:<name>"}`` for the reference version of an earlier graded
    function the exercise lists in ``uses``, as ``loss_fn`` of a training loop;
    ``{argument: "builtin:<name>"}`` for one of :data:`TEST_FUNCTIONS`).
    Returns what ``obj`` returns.
    """
    args = dict(inputs.get("args", {}))
    for arg, spec in inputs.get("callables", {}).items():
        args[arg] = _callable(spec, ctx)
    return obj(**args)


@driver
def call_inplace(obj: Any, inputs: dict, ctx: dict) -> Any:
    """For functions that update their first array argument in place: returns
    the function's return value and every array input after the call."""
    out = obj(**inputs)
    return {"return": out, "inputs": {k: v for k, v in inputs.items() if isinstance(v, np.ndarray)}}


# The topic modules register their drivers on import (they use `driver` above).
from . import (  # noqa: E402,F401
    backprop,
    cnn,
    layers,
    linear,
    modules,
    normalization,
    optim,
    rl,
    tensors,
    training,
    understanding,
)
