"""Training a numpy model with plain minibatch stochastic gradient descent, in a few lines.

A model has a dict ``params`` of float64 arrays and a method ``loss(X, y=None)``: without
``y`` it returns the class scores, shape (N, C); with ``y`` it returns ``(loss, grads)``,
``grads`` a dict with the keys and shapes of ``params`` (the ``TwoLayerNet`` of 03_backprop).

Dimension letters: N examples, D features, C classes.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

__all__ = ["accuracy", "predict", "train_classifier"]


def predict(model, X: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Predicted labels, shape (N,), the argmax of the scores, computed in batches."""
    return np.concatenate([np.argmax(model.loss(X[s:s + batch_size]), axis=1)
                           for s in range(0, len(X), batch_size)])


def accuracy(model, X: np.ndarray, y: np.ndarray) -> float:
    """Fraction of the examples X (N, D) whose predicted label equals y (N,)."""
    return float(np.mean(predict(model, X) == y))


def train_classifier(model, X_train: np.ndarray, y_train: np.ndarray, X_val=None, y_val=None, *,
                     lr: float = 0.1, num_epochs: int = 10, batch_size: int = 100, lr_decay: float = 1.0,
                     rng: np.random.Generator | int | None = None, progress: bool = True,
                     desc: str = "training") -> dict[str, list[float]]:
    """Minibatch SGD: every epoch visits the training data once, in a random order.

    Inputs:
    - model: params dict and loss(X, y) -> (loss, grads), see the module docstring.
    - X_train: shape (N, D); y_train: integer labels, shape (N,).
    - X_val, y_val: optional validation data, for the validation accuracy after each epoch.
    - lr: learning rate; lr_decay: factor applied to lr after every epoch.
    - num_epochs, batch_size: length of training and size of a minibatch.
    - rng: numpy Generator or seed for the order of the examples.
    - progress: show a tqdm progress bar over the epochs.

    Returns:
    - history: {"train_loss": mean minibatch loss per epoch, "train_acc": [...], and
      "val_acc": [...] when validation data are given}, one value per epoch.
    """
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    history: dict[str, list[float]] = {"train_loss": [], "train_acc": []}
    if X_val is not None:
        history["val_acc"] = []
    n = len(X_train)
    epochs = tqdm(range(num_epochs), desc=desc, leave=False) if progress else range(num_epochs)
    for _ in epochs:
        order = gen.permutation(n)
        losses = []
        for s in range(0, n, batch_size):
            idx = order[s:s + batch_size]
            loss, grads = model.loss(X_train[idx], y_train[idx])
            for name, grad in grads.items():
                model.params[name] -= lr * grad
            losses.append(float(loss))
        lr *= lr_decay
        history["train_loss"].append(float(np.mean(losses)))
        history["train_acc"].append(accuracy(model, X_train, y_train))
        if X_val is not None:
            history["val_acc"].append(accuracy(model, X_val, y_val))
    return history
