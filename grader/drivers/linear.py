"""Drivers of 02_linear_classifiers: a loss with its gradient, a training run, predictions.

Every driver returns a dict with named entries, so feedback names what differs
(``dW``, ``loss_history``, ``W_unchanged``).  Training is graded with losses defined
here, never the student's own, so that a mistake in a loss is charged once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import driver
from .tensors import _same_array


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
