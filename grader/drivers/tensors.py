"""Drivers of 00_tensors: strict numpy calls, pure torch functions, in-place SGD steps."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import driver, to_torch


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
