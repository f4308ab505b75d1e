"""Drivers for models that are trained, then asked for predictions.

Training inside a driver is repeatable because the grader seeds Python's
``random``, numpy's global generator and torch before every case, on the
student's code and on the reference alike: minibatches drawn with
``np.random.choice`` and weights drawn with ``np.random.randn`` are the same
draws on both sides.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import driver


def _labels(y_pred: Any, n: int, what: str) -> np.ndarray:
    if hasattr(y_pred, "detach"):  # a torch tensor
        y_pred = y_pred.detach().cpu().numpy()
    arr = np.asarray(y_pred)
    if arr.shape != (n,):
        raise ValueError(f"{what} returned shape {arr.shape}; expected ({n},), one label per row")
    return arr


@driver
def fit_predict(obj: Any, inputs: dict, ctx: dict) -> Any:
    """For a model class with a training method and ``predict``.

    Inputs: ``init`` (constructor keyword arguments), ``fit`` (keyword arguments
    of the training method), ``X`` (rows to predict), optionally ``y`` (their
    labels, for an accuracy), ``fit_method`` (default ``"train"``) and
    ``attributes`` (names of model attributes to return, such as ``["W"]``).

    Returns ``{"loss_history": what the training method returned, "y_pred":
    model.predict(X), "accuracy": mean(y_pred == y) (with ``y``), <attribute>:
    value, ...}``.
    """
    model = obj(**inputs.get("init", {}))
    method = inputs.get("fit_method", "train")
    history = getattr(model, method)(**inputs.get("fit", {}))
    y_pred = model.predict(inputs["X"])
    out = {"loss_history": history, "y_pred": y_pred}
    if "y" in inputs:
        y = np.asarray(inputs["y"])
        out["accuracy"] = float(np.mean(_labels(y_pred, len(y), "predict") == y))
    for name in inputs.get("attributes", []):
        out[name] = getattr(model, name)
    return out


@driver
def fit_accuracy(obj: Any, inputs: dict, ctx: dict) -> Any:
    """For a training function and a prediction function graded together
    (``names=(train, predict)``), judged by held-out accuracy.

    Inputs: ``fit`` (keyword arguments of the training function), ``X_val`` and
    ``y_val``, optionally ``model_index`` (when the training function returns a
    tuple such as ``(W, loss_history)``: which item is the model).  Calls
    ``model = train(**fit)``, then ``predict(model, X_val)``.

    Returns ``{"accuracy": fraction of X_val predicted right}``.
    """
    train, predict = obj[0], obj[1]
    model = train(**inputs["fit"])
    if inputs.get("model_index") is not None:
        model = model[inputs["model_index"]]
    y_val = np.asarray(inputs["y_val"])
    y_pred = _labels(predict(model, inputs["X_val"]), len(y_val), getattr(predict, "__name__", "predict"))
    return {"accuracy": float(np.mean(y_pred == y_val))}
