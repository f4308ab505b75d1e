"""Drivers: how one hidden-test case calls a student's function or class.

A driver takes the object under test (``obj``: the student's function or
class, or the reference one), the case's inputs (plain data) and a context
``{"device": "cpu" | "cuda" | "mps", "dtype": "float64" | ...}``, and returns
plain data (see :mod:`grader.wire`).  The same driver runs on the student's
code inside the worker process and on the reference in the grader, so the two
outputs are comparable by construction.

This module is imported by the untrusted worker: it holds no expected values
and imports nothing beyond numpy, the course's expression builder (for scalar
autograd exercises) and torch, lazily.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np

from course_utils.expressions import evaluate_expression

DRIVERS: dict[str, Callable[[Any, dict, dict], Any]] = {}


def driver(fn: Callable) -> Callable:
    DRIVERS[fn.__name__] = fn
    return fn


def run(name: str, obj: Any, inputs: dict, ctx: dict) -> Any:
    try:
        fn = DRIVERS[name]
    except KeyError:
        raise ValueError(f"unknown driver {name!r}; known: {sorted(DRIVERS)}") from None
    return fn(obj, copy.deepcopy(inputs), ctx)


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


@driver
def call_inplace(obj: Any, inputs: dict, ctx: dict) -> Any:
    """For functions that update their first array argument in place: returns
    the function's return value and every array input after the call."""
    out = obj(**inputs)
    return {"return": out, "inputs": {k: v for k, v in inputs.items() if isinstance(v, np.ndarray)}}


# --- 00_tensors -------------------------------------------------------------


def _same_array(a: np.ndarray, b: Any) -> bool:
    return (isinstance(b, np.ndarray) and a.shape == b.shape and a.dtype == b.dtype
            and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")))


@driver
def call_numpy_strict(obj: Any, inputs: dict, ctx: dict) -> Any:
    """``obj(**inputs)`` on numpy inputs, for exercises that fix the output dtype,
    must reject bad arguments with ``ValueError``, or must leave their inputs alone.

    Returns ``{"raised_value_error": bool, "dtype": str, "modified_inputs": [names],
    "value": output}``: ``dtype`` is the numpy dtype name of an array output (else
    the output's type name), ``modified_inputs`` the sorted names of the array
    inputs the call changed in place, ``value`` the output (``None`` after a
    ``ValueError``; any other exception propagates).
    """
    before = {k: v.copy() for k, v in inputs.items() if isinstance(v, np.ndarray)}
    try:
        out, raised = obj(**inputs), False
    except ValueError:
        out, raised = None, True
    modified = sorted(k for k, v in before.items() if not _same_array(v, inputs[k]))
    dtype = str(out.dtype) if isinstance(out, np.ndarray) else type(out).__name__
    return {"raised_value_error": raised, "dtype": dtype, "modified_inputs": modified, "value": out}


@driver
def call_torch_pure(obj: Any, inputs: dict, ctx: dict) -> Any:
    """``obj(**inputs)`` with array inputs as tensors on the device (as ``call_torch``),
    for functions that must not touch their tensor arguments and must return
    detached results.

    Returns ``{"modified_inputs": [names], "output_requires_grad": bool or [bool],
    "value": output}``: the sorted names of the tensor inputs whose values,
    ``requires_grad`` flag or ``.grad`` the call changed; whether the output (or
    each item of a returned tuple/list) still requires grad; the output.
    """
    import torch

    tensors = to_torch(inputs, ctx)
    snap = {k: (t.detach().clone(), t.requires_grad, t.grad)
            for k, t in tensors.items() if isinstance(t, torch.Tensor)}
    out = obj(**tensors)
    modified = sorted(k for k, (v, rg, g) in snap.items()
                      if tensors[k].requires_grad != rg or tensors[k].grad is not g
                      or not torch.equal(tensors[k].detach(), v))

    def needs_grad(x: Any) -> bool:
        return bool(getattr(x, "requires_grad", False))

    flags = [needs_grad(o) for o in out] if isinstance(out, (tuple, list)) else needs_grad(out)
    return {"modified_inputs": modified, "output_requires_grad": flags, "value": out}


@driver
def sgd_steps(obj: Any, inputs: dict, ctx: dict) -> Any:
    """For ``sgd_step(params, lr)``, which updates tensors in place from their ``.grad``.

    Inputs: ``params`` and ``weights`` (lists of float arrays, same shapes),
    ``lr``, ``num_steps``, and optionally ``used`` (list of bools, default all
    True).  Makes the params leaf tensors that require grad, on the device; each
    step computes ``loss = sum_i sum(weights[i] * params[i] ** 2)`` over the used
    params, calls ``loss.backward()``, then ``obj(params, lr)``.

    Returns ``{"returned": [obj's return value per step], "grad_cleared": [[per
    param: .grad is None or all zeros] per step], "still_leaf": [per param: still
    a leaf that requires grad], "params": [the original tensor objects after the
    last step]}``.
    """
    import torch

    params = [p.requires_grad_(True) for p in to_torch(inputs["params"], ctx)]
    weights = to_torch(inputs["weights"], ctx)
    used = inputs.get("used") or [True] * len(params)
    originals = list(params)
    returned, cleared = [], []
    for _ in range(int(inputs["num_steps"])):
        loss = sum((w * p * p).sum() for p, w, u in zip(originals, weights, used, strict=True) if u)
        loss.backward()
        returned.append(obj(params, inputs["lr"]))
        cleared.append([p.grad is None or not bool(torch.any(p.grad != 0)) for p in originals])
    return {"returned": returned, "grad_cleared": cleared,
            "still_leaf": [bool(p.is_leaf and p.requires_grad) for p in originals],
            "params": [p.detach() for p in originals]}


# --- 03_backprop --------------------------------------------------------------


def _sibling(obj: Any, name: str) -> Any:
    """The function ``name`` defined next to ``obj`` (in the same notebook, or the reference)."""
    namespace = getattr(obj, "__globals__", None)
    if not isinstance(namespace, dict) or name not in namespace:
        raise NameError(f"`{name}` is not defined: run the cell that defines it and keep its name as given")
    return namespace[name]


def _out_and_cache(result: Any, fname: str) -> tuple:
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TypeError(f"{fname} must return a tuple (out, cache), got {type(result).__name__}")
    return result


@driver
def layer_forward(obj: Any, inputs: dict, ctx: dict) -> Any:
    """For a layer's forward function ``obj(**inputs) -> (out, cache)``: returns
    ``{"out": out}``; the cache never leaves the process."""
    out, _ = _out_and_cache(obj(**inputs), getattr(obj, "__name__", "forward"))
    return {"out": out}


@driver
def layer_backward(obj: Any, inputs: dict, ctx: dict) -> Any:
    """For a layer's backward function, called after its forward function in this process.

    Inputs: ``forward`` (the name of the forward function, defined next to ``obj``),
    ``args`` (its keyword arguments), ``dout`` (the upstream gradient, shaped like its
    output) and ``grads`` (names for what ``obj(dout, cache)`` returns, e.g.
    ``["dx", "dw", "db"]``; one name for a single array).

    Returns ``{"out": out, <name>: gradient, ...}``.
    """
    forward = _sibling(obj, inputs["forward"])
    out, cache = _out_and_cache(forward(**inputs["args"]), inputs["forward"])
    grads = obj(inputs["dout"], cache)
    names = list(inputs["grads"])
    if len(names) == 1:
        grads = (grads,)
    if not (isinstance(grads, tuple) and len(grads) == len(names)):
        raise TypeError(f"{getattr(obj, '__name__', 'backward')} must return {len(names)} arrays "
                        f"({', '.join(names)}), got {type(grads).__name__}")
    return {"out": out, **dict(zip(names, grads, strict=True))}


@driver
def loss_and_gradient(obj: Any, inputs: dict, ctx: dict) -> Any:
    """For ``obj(x, y) -> (loss, dx)``: returns ``{"loss": loss, "dx": dx}``."""
    result = obj(**inputs)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TypeError(f"{getattr(obj, '__name__', 'the loss')} must return a tuple (loss, dx), "
                        f"got {type(result).__name__}")
    loss, dx = result
    return {"loss": loss, "dx": dx}


@driver
def value_expression(obj: Any, inputs: dict, ctx: dict) -> Any:
    """For a scalar autograd class ``obj(data)`` (``Value``): builds the expression
    ``inputs`` describes (see :mod:`course_utils.expressions`) with ``obj`` leaves, calls
    ``backward()`` on its last node.

    Returns ``{"data": every node's data, leaves first, "leaf_grads": every leaf's grad}``
    as float64 arrays.
    """
    nodes, leaves = evaluate_expression(inputs, obj)
    nodes[-1].backward()
    return {"data": np.array([float(n.data) for n in nodes]),
            "leaf_grads": np.array([float(leaf.grad) for leaf in leaves])}


def _test_function(kind: str, p: dict) -> Callable[[np.ndarray], float]:
    """Scalar functions of an array x for numerical-gradient exercises, with array parameters ``p``."""
    if kind == "quadratic":  # sum(a x^2) + sum(b x)
        return lambda x: float(np.sum(p["a"] * x * x) + np.sum(p["b"] * x))
    if kind == "cubic":  # sum(a x^3)
        return lambda x: float(np.sum(p["a"] * x ** 3))
    if kind == "logsumexp":  # log(sum(exp(a x)))
        return lambda x: float(np.log(np.sum(np.exp(p["a"] * x))))
    if kind == "sin":  # sum(b sin(a x))
        return lambda x: float(np.sum(p["b"] * np.sin(p["a"] * x)))
    if kind == "relu":  # sum(a max(0, x)); x stays away from 0
        return lambda x: float(np.sum(p["a"] * np.maximum(0.0, x)))
    raise ValueError(f"unknown test function {kind!r}")


@driver
def numerical_gradient_of(obj: Any, inputs: dict, ctx: dict) -> Any:
    """For ``obj(f, x, h)`` (a numerical gradient): ``f`` is built here from ``kind`` and
    ``params`` (see ``_test_function``); ``h`` is passed only when the case has one.

    Returns ``{"grad": obj's result, "x_restored": whether x holds exactly its original
    values afterwards}``.
    """
    x = inputs["x"]
    before = x.copy()
    f = _test_function(inputs["kind"], inputs["params"])
    grad = obj(f, x) if inputs.get("h") is None else obj(f, x, h=inputs["h"])
    return {"grad": grad, "x_restored": bool(x.shape == before.shape and np.array_equal(x, before))}


TWO_LAYER_PARAMS = ("W1", "b1", "W2", "b2")


@driver
def two_layer_net(obj: Any, inputs: dict, ctx: dict) -> Any:
    """For ``TwoLayerNet(input_dim, hidden_dim, num_classes, weight_scale, reg, rng)``.

    Constructs it with ``rng=np.random.default_rng(seed)``, records the initial params, then
    replaces the params named in the optional ``params`` input, and calls ``loss(X)`` and
    ``loss(X, y)``.

    Returns ``{"init": {name: array}, "scores": ..., "loss": ..., "grads": {name: array}}``.
    """
    net = obj(inputs["input_dim"], inputs["hidden_dim"], inputs["num_classes"],
              weight_scale=inputs["weight_scale"], reg=inputs["reg"],
              rng=np.random.default_rng(int(inputs["seed"])))
    missing = [k for k in TWO_LAYER_PARAMS if k not in net.params]
    if missing:
        raise KeyError(f"params has no {', '.join(missing)}")
    init = {k: np.array(net.params[k], dtype=np.float64) for k in TWO_LAYER_PARAMS}
    for k, v in (inputs.get("params") or {}).items():
        net.params[k] = v
    scores = net.loss(inputs["X"])
    result = net.loss(inputs["X"], inputs["y"])
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
        raise TypeError("loss(X, y) must return a tuple (loss, grads) with grads a dict")
    loss, grads = result
    missing = [k for k in TWO_LAYER_PARAMS if k not in grads]
    if missing:
        raise KeyError(f"grads has no {', '.join(missing)}")
    return {"init": init, "scores": scores, "loss": loss, "grads": {k: grads[k] for k in TWO_LAYER_PARAMS}}
