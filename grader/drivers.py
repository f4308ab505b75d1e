"""Drivers: how one hidden-test case calls a student's function or class.

A driver takes the object under test (``obj``: the student's function or
class, or the reference one), the case's inputs (plain data) and a context
``{"device": "cpu" | "cuda" | "mps", "dtype": "float64" | ...}``, and returns
plain data (see :mod:`grader.wire`).  The same driver runs on the student's
code inside the worker process and on the reference in the grader, so the two
outputs are comparable by construction.

This module is imported by the untrusted worker: it holds no expected values
and imports nothing beyond numpy (and torch, lazily).
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import numpy as np

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
