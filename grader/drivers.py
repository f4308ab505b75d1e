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
from collections.abc import Callable
from typing import Any

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


# --- 02_linear_classifiers ----------------------------------------------------


@driver
def loss_and_gradient(obj: Any, inputs: dict, ctx: dict) -> Any:
    """For loss functions ``obj(W, X, y, reg) -> (loss, dW)``.

    Returns ``{"loss": float, "dW": array, "W_unchanged": bool}``: the loss as a
    Python float (a scalar array or numpy number is accepted), the gradient, and
    whether the call left the caller's ``W`` as it was.
    """
    W_before = inputs["W"].copy()
    out = obj(**inputs)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError(f"expected a tuple (loss, dW), got {type(out).__name__}"
                        + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else ""))
    loss, dW = out
    loss_arr = np.asarray(loss, dtype=np.float64)
    if loss_arr.size != 1:
        raise ValueError(f"loss must be a single number, got an array of shape {loss_arr.shape}")
    return {"loss": float(loss_arr.reshape(())), "dW": np.asarray(dW),
            "W_unchanged": _same_array(W_before, inputs["W"])}


def _driver_softmax_loss(W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float):
    """Softmax loss and gradient used to grade a training loop, so that the loop is
    graded independently of the student's own loss functions. W: (D, C), X: (N, D)."""
    scores = X @ W  # (N, C)
    scores = scores - scores.max(axis=1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(axis=1, keepdims=True)
    rows = np.arange(len(y))
    loss = -np.mean(np.log(probs[rows, y])) + reg * np.sum(W * W)
    probs[rows, y] -= 1.0
    return loss, X.T @ probs / len(y) + 2.0 * reg * W


def _driver_square_loss(W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float):
    """Mean squared error between the scores and one-hot targets (times 1/2), with L2 penalty."""
    scores = X @ W  # (N, C)
    targets = np.zeros_like(scores)
    targets[np.arange(len(y)), y] = 1.0
    diff = scores - targets
    loss = 0.5 * np.mean(np.sum(diff * diff, axis=1)) + reg * np.sum(W * W)
    return loss, X.T @ diff / len(y) + 2.0 * reg * W


_TRAINING_LOSSES = {"softmax": _driver_softmax_loss, "square": _driver_square_loss}


@driver
def train_linear(obj: Any, inputs: dict, ctx: dict) -> Any:
    """For ``train_linear_classifier(loss_fn, W, X, y, learning_rate, reg, num_iters,
    batch_size, rng)``.

    Inputs: ``loss`` (``"softmax"`` or ``"square"``: a loss function of this module,
    not the student's), ``W``, ``X``, ``y``, ``learning_rate``, ``reg``,
    ``num_iters``, ``batch_size`` and ``seed``; the driver passes
    ``rng = np.random.default_rng(seed)``.

    Returns ``{"W": the returned weights, "loss_history": list of floats,
    "num_loss_calls": int, "batch_sizes": sorted distinct sizes of the minibatches
    the loss saw, "W_unchanged": whether the caller's W is as it was}``.
    """
    loss_fn = _TRAINING_LOSSES[inputs["loss"]]
    calls: list[int] = []

    def counted_loss(W, X_batch, y_batch, reg):
        calls.append(int(np.shape(X_batch)[0]))
        return loss_fn(W, X_batch, y_batch, reg)

    W0 = inputs["W"]
    W_before = W0.copy()
    out = obj(counted_loss, W0, inputs["X"], inputs["y"], inputs["learning_rate"], inputs["reg"],
              inputs["num_iters"], inputs["batch_size"], np.random.default_rng(inputs["seed"]))
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError(f"expected a tuple (W, loss_history), got {type(out).__name__}")
    W, history = out
    return {"W": np.asarray(W), "loss_history": [float(v) for v in history],
            "num_loss_calls": len(calls), "batch_sizes": sorted(set(calls)),
            "W_unchanged": _same_array(W_before, W0)}


@driver
def predict_labels_strict(obj: Any, inputs: dict, ctx: dict) -> Any:
    """``obj(**inputs)`` for a function returning integer labels: returns
    ``{"y_pred": the labels, "integer_dtype": whether their dtype is an integer one}``."""
    out = obj(**inputs)
    arr = np.asarray(out)
    return {"y_pred": arr, "integer_dtype": bool(arr.dtype.kind in "iu")}
