"""One training loop for the whole course, for numpy models and PyTorch modules alike.

    from course_utils.training import EarlyStopping, Trainer

    trainer = Trainer(num_epochs=20, batch_size=64, seed=0,
                      callbacks=[EarlyStopping(monitor="val_acc", patience=3)])
    history = trainer.fit(model, X_train, y_train, X_val, y_val)              # a numpy model
    history = trainer.fit(net, X_train, y_train, X_val, y_val,                # a torch nn.Module
                          optimizer=torch.optim.SGD(net.parameters(), lr=0.1),
                          loss_fn=torch.nn.CrossEntropyLoss())
    history.plot()

**Models.** A *numpy model* is any object with ``step(X_batch, y_batch) -> loss`` (one
update of its parameters on one minibatch, returning the minibatch loss) and
``predict(X) -> labels``; if it also has ``loss(X, y) -> float`` the trainer reports
validation losses, and if it keeps its parameters in a ``params`` attribute (an array or
a dict of arrays) or has ``state_dict()`` / ``load_state_dict(state)``, early stopping
can restore the best weights. A *torch model* is an ``nn.Module`` whose output holds one
score per class, trained with the ``optimizer`` and ``loss_fn`` given to ``fit``; batches
go to the model's device (or ``device=``), so the same call runs on a CPU or a GPU.

**Minibatches.** Every epoch visits each training example once, in the order of
``np.random.default_rng(seed).permutation(N)`` drawn anew each epoch (``shuffle=False``:
in the given order); the last batch may be smaller. With a torch model ``fit`` also calls
``torch.manual_seed(seed)`` first, so dropout and other torch randomness repeat. The same
seed, model and data give the same history and the same weights.

**History.** ``fit`` returns a :class:`History`, a dict of per-epoch lists: ``train_loss``
(the mean minibatch loss of the epoch), ``train_acc`` (accuracy on the training data after
the epoch), and with validation data ``val_acc`` and, where the model can compute it,
``val_loss``. ``history.plot()`` draws it with :func:`course_utils.plots.plot_history`;
``Trainer(live_plot=True)`` redraws it after every epoch in Jupyter.

**Callbacks** are called at the end of every epoch as ``callback(trainer, epoch, logs)``
(``epoch`` counts from 1, ``logs`` holds that epoch's numbers) and may set
``trainer.stop_training = True``. Objects may also define ``on_train_begin(trainer)`` and
``on_train_end(trainer)``. :class:`EarlyStopping` is one.

Dimension letters: N examples, D features, C classes.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["EarlyStopping", "History", "Trainer"]


class History(dict):
    """Per-epoch metrics, ``{"train_loss": [...], "train_acc": [...], "val_acc": [...], ...}``.

    Attributes: ``best_epoch`` (1-based epoch whose weights the model ends with after early
    stopping restored them, else None) and ``stopped_epoch`` (the epoch after which
    training stopped early, else None).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None

    @property
    def num_epochs(self) -> int:
        return max((len(v) for v in self.values()), default=0)

    def plot(self, title: str | None = None, logy: bool = False):
        """Training curves: losses on the left, accuracies on the right; returns the Figure."""
        from .plots import plot_history

        return plot_history({k: v for k, v in self.items() if v}, xlabel="epoch", title=title, logy=logy)


class EarlyStopping:
    """Stop when a validation metric has not improved for ``patience`` epochs.

    Inputs:
    - monitor: the History key to watch, e.g. "val_acc" or "val_loss".
    - mode: "max" (accuracies) or "min" (losses); default: "max" when the key contains
      "acc", else "min".
    - patience: epochs without an improvement of more than ``min_delta`` before stopping.
    - min_delta: the smallest change that counts as an improvement.
    - restore_best: give the model back the weights of its best epoch when training ends.
    """

    def __init__(self, monitor: str = "val_loss", mode: str | None = None, patience: int = 5,
                 min_delta: float = 0.0, restore_best: bool = True):
        if mode not in (None, "min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', not {mode!r}")
        if patience < 0:
            raise ValueError(f"patience must be >= 0, got {patience}")
        self.monitor = monitor
        self.mode = mode or ("max" if "acc" in monitor else "min")
        self.patience, self.min_delta, self.restore_best = int(patience), float(min_delta), restore_best

    def on_train_begin(self, trainer: Trainer) -> None:
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.best_state: Any = None
        self.wait = 0
        if self.restore_best:
            trainer.adapter.require_state("EarlyStopping(restore_best=True)")

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def __call__(self, trainer: Trainer, epoch: int, logs: dict) -> None:
        if self.monitor not in logs:
            raise ValueError(f"EarlyStopping monitors {self.monitor!r}, but the epoch reported only "
                             f"{sorted(logs)}; pass validation data to fit(), or monitor one of those")
        value = float(logs[self.monitor])
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self.best_state = trainer.adapter.get_state()
        else:
            self.wait += 1
            if self.wait > self.patience:
                trainer.stop_training = True
                trainer.history.stopped_epoch = epoch

    def on_train_end(self, trainer: Trainer) -> None:
        if self.restore_best and self.best_state is not None:
            trainer.adapter.set_state(self.best_state)
            trainer.history.best_epoch = self.best_epoch


# --- adapters: one interface over numpy models and torch modules -------------------------------


def _is_torch_module(model: Any) -> bool:
    try:
        import torch
    except ImportError:
        return False
    return isinstance(model, torch.nn.Module)


class _NumpyAdapter:
    def __init__(self, model: Any):
        missing = [m for m in ("step", "predict") if not callable(getattr(model, m, None))]
        if missing:
            raise TypeError(f"a numpy model needs step(X_batch, y_batch) -> loss and predict(X) -> labels; "
                            f"{type(model).__name__} has no {' or '.join(missing)}")
        self.model = model
        self.has_loss = callable(getattr(model, "loss", None))

    def begin(self, seed: int) -> None:
        pass

    def step(self, X: np.ndarray, y: np.ndarray) -> float:
        return float(np.asarray(self.model.step(X, y)).reshape(()))

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(X)).reshape(-1)

    def loss(self, X: np.ndarray, y: np.ndarray) -> float:
        return float(np.asarray(self.model.loss(X, y)).reshape(()))

    def require_state(self, who: str) -> None:
        if not (hasattr(self.model, "params") or callable(getattr(self.model, "state_dict", None))):
            raise TypeError(f"{who} needs to save and restore the weights: give {type(self.model).__name__} "
                            "a `params` attribute (an array or a dict of arrays) or state_dict() and "
                            "load_state_dict(state)")

    def get_state(self) -> Any:
        if callable(getattr(self.model, "state_dict", None)):
            return copy.deepcopy(self.model.state_dict())
        return copy.deepcopy(self.model.params)

    def set_state(self, state: Any) -> None:
        if callable(getattr(self.model, "load_state_dict", None)):
            self.model.load_state_dict(copy.deepcopy(state))
        else:
            self.model.params = copy.deepcopy(state)


class _TorchAdapter:
    def __init__(self, model: Any, optimizer: Any, loss_fn: Callable | None, device: Any, eval_batch_size: int):
        import torch

        if optimizer is None:
            raise TypeError("training a torch module needs an optimizer, e.g. "
                            "fit(..., optimizer=torch.optim.SGD(model.parameters(), lr=0.1))")
        self.torch = torch
        self.model, self.optimizer = model, optimizer
        self.loss_fn = loss_fn if loss_fn is not None else torch.nn.CrossEntropyLoss()
        if device is None:
            first = next(model.parameters(), None)
            device = first.device if first is not None else "cpu"
        self.device = torch.device(device)
        self.model.to(self.device)
        self.eval_batch_size = eval_batch_size
        self.has_loss = True

    def begin(self, seed: int) -> None:
        self.torch.manual_seed(seed)

    def _tensor(self, a: Any, labels: bool = False):
        t = a if isinstance(a, self.torch.Tensor) else self.torch.as_tensor(np.asarray(a))
        if labels:
            t = t.long()
        elif t.is_floating_point():
            dtype = next((p.dtype for p in self.model.parameters()), self.torch.float32)
            t = t.to(dtype)
        return t.to(self.device)

    def step(self, X: Any, y: Any) -> float:
        self.model.train()
        self.optimizer.zero_grad()
        loss = self.loss_fn(self.model(self._tensor(X)), self._tensor(y, labels=True))
        loss.backward()
        self.optimizer.step()
        return float(loss.detach().item())

    def _batches(self, X: Any):
        for s in range(0, len(X), self.eval_batch_size):
            yield s, X[s:s + self.eval_batch_size]

    def predict(self, X: Any) -> np.ndarray:
        self.model.eval()
        with self.torch.no_grad():
            out = [self.model(self._tensor(xb)).argmax(dim=1).cpu().numpy() for _, xb in self._batches(X)]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def loss(self, X: Any, y: Any) -> float:
        self.model.eval()
        total = 0.0
        with self.torch.no_grad():
            for s, xb in self._batches(X):
                yb = y[s:s + self.eval_batch_size]
                total += float(self.loss_fn(self.model(self._tensor(xb)), self._tensor(yb, labels=True))) * len(xb)
        return total / len(X)

    def require_state(self, who: str) -> None:
        pass

    def get_state(self) -> Any:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def set_state(self, state: Any) -> None:
        self.model.load_state_dict(state)


def _labels(y: Any) -> np.ndarray:
    if hasattr(y, "detach"):
        y = y.detach().cpu().numpy()
    return np.asarray(y).reshape(-1)


# --- the loop ------------------------------------------------------------------------------------


class Trainer:
    """Minibatch training for a fixed number of epochs, with history, progress bar and callbacks.

    Inputs:
    - num_epochs: passes over the training data (training may stop earlier, see callbacks).
    - batch_size: examples per minibatch.
    - seed: seeds the minibatch order (and torch's generator for torch models).
    - shuffle: a fresh random order every epoch (True) or the given order (False).
    - callbacks: callables ``callback(trainer, epoch, logs)``, e.g. EarlyStopping(...).
    - progress: show a tqdm progress bar over the epochs, with the latest numbers.
    - live_plot: in Jupyter, redraw the training curves after every epoch.
    - eval_train_accuracy: measure the accuracy on the whole training set after every epoch
      (one extra prediction pass); False leaves ``train_acc`` out.
    - device: for torch models, where batches (and the model) go; default the model's device.
    - eval_batch_size: batch size of the prediction passes of torch models.
    """

    def __init__(self, num_epochs: int, batch_size: int = 64, seed: int = 0, shuffle: bool = True,
                 callbacks: Sequence[Callable] = (), progress: bool = True, live_plot: bool = False,
                 eval_train_accuracy: bool = True, device: Any = None, eval_batch_size: int = 1024):
        if int(num_epochs) < 1 or int(batch_size) < 1:
            raise ValueError(f"num_epochs and batch_size must be positive, got {num_epochs} and {batch_size}")
        self.num_epochs, self.batch_size, self.seed = int(num_epochs), int(batch_size), int(seed)
        self.shuffle, self.callbacks = shuffle, list(callbacks)
        self.progress, self.live_plot, self.eval_train_accuracy = progress, live_plot, eval_train_accuracy
        self.device, self.eval_batch_size = device, int(eval_batch_size)
        self.stop_training = False
        self.history = History()
        self.adapter: Any = None

    def batches(self, num_examples: int, rng: np.random.Generator):
        """Index arrays of one epoch's minibatches (every example exactly once)."""
        order = rng.permutation(num_examples) if self.shuffle else np.arange(num_examples)
        for s in range(0, num_examples, self.batch_size):
            yield order[s:s + self.batch_size]

    def fit(self, model: Any, X_train: Any, y_train: Any, X_val: Any = None, y_val: Any = None, *,
            optimizer: Any = None, loss_fn: Callable | None = None) -> History:
        """Train ``model`` on (X_train, y_train), measuring on (X_val, y_val) after every epoch.

        Inputs:
        - model: a numpy model (step, predict[, loss, params]) or a torch nn.Module.
        - X_train: shape (N, ...), numpy array or tensor; y_train: integer labels, shape (N,).
        - X_val, y_val: optional validation data, shapes (N_val, ...) and (N_val,).
        - optimizer, loss_fn: for torch models (loss_fn defaults to cross-entropy).

        Returns:
        - the History (also kept as ``trainer.history``).
        """
        if (X_val is None) != (y_val is None):
            raise ValueError("pass both X_val and y_val, or neither")
        if len(X_train) != len(y_train):
            raise ValueError(f"X_train has {len(X_train)} examples but y_train {len(y_train)} labels")
        if _is_torch_module(model):
            self.adapter = _TorchAdapter(model, optimizer, loss_fn, self.device, self.eval_batch_size)
        else:
            if optimizer is not None or loss_fn is not None:
                raise TypeError("optimizer= and loss_fn= are for torch modules; a numpy model updates itself in step()")
            self.adapter = _NumpyAdapter(model)
        self.history = History()
        self.stop_training = False
        keys = ["train_loss"] + (["train_acc"] if self.eval_train_accuracy else [])
        if X_val is not None:
            keys += (["val_loss"] if self.adapter.has_loss else []) + ["val_acc"]
        for k in keys:
            self.history[k] = []
        y_train_np = _labels(y_train)
        y_val_np = _labels(y_val) if y_val is not None else None
        rng = np.random.default_rng(self.seed)
        self.adapter.begin(self.seed)
        for cb in self.callbacks:
            if callable(getattr(cb, "on_train_begin", None)):
                cb.on_train_begin(self)
        epochs = range(1, self.num_epochs + 1)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(epochs, desc="training", unit="epoch")
            epochs = bar
        try:
            for epoch in epochs:
                logs = self._epoch(X_train, y_train, y_train_np, X_val, y_val, y_val_np, rng)
                for k, v in logs.items():
                    self.history[k].append(v)
                if bar is not None:
                    bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()})
                if self.live_plot:
                    self._redraw()
                for cb in self.callbacks:
                    cb(self, epoch, dict(logs))
                if self.stop_training:
                    break
        finally:
            if bar is not None:
                bar.close()
        for cb in self.callbacks:
            if callable(getattr(cb, "on_train_end", None)):
                cb.on_train_end(self)
        return self.history

    def _epoch(self, X_train, y_train, y_train_np, X_val, y_val, y_val_np, rng) -> dict:
        total, count = 0.0, 0
        for idx in self.batches(len(X_train), rng):
            loss = self.adapter.step(X_train[idx], y_train[idx])
            if not math.isfinite(loss):
                raise FloatingPointError(f"the minibatch loss became {loss}; lower the learning rate")
            total += loss * len(idx)
            count += len(idx)
        logs = {"train_loss": total / count}
        if self.eval_train_accuracy:
            logs["train_acc"] = float(np.mean(self.adapter.predict(X_train) == y_train_np))
        if X_val is not None:
            if self.adapter.has_loss:
                logs["val_loss"] = self.adapter.loss(X_val, y_val)
            logs["val_acc"] = float(np.mean(self.adapter.predict(X_val) == y_val_np))
        return logs

    def _redraw(self) -> None:
        try:
            from IPython import get_ipython
            from IPython.display import clear_output, display
        except ImportError:
            return
        if get_ipython() is None:
            return
        import matplotlib.pyplot as plt

        fig = self.history.plot()
        clear_output(wait=True)
        display(fig)
        plt.close(fig)
