"""course_utils.training: one loop for numpy models and torch modules."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch

from course_utils.data import make_toy_classes
from course_utils.training import EarlyStopping, History, Trainer

matplotlib.use("Agg")


class SoftmaxModel:
    """A numpy linear softmax classifier trained by SGD, written for these tests."""

    def __init__(self, D, C, lr=0.5, seed=0):
        self.params = {"W": 0.01 * np.random.default_rng(seed).normal(size=(D, C))}
        self.lr = lr

    def _loss_grad(self, X, y):
        s = X @ self.params["W"]
        s = s - s.max(axis=1, keepdims=True)
        p = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
        loss = -np.mean(np.log(p[np.arange(len(y)), y]))
        p[np.arange(len(y)), y] -= 1
        return loss, X.T @ p / len(y)

    def step(self, X, y):
        loss, dW = self._loss_grad(X, y)
        self.params = {"W": self.params["W"] - self.lr * dW}
        return loss

    def loss(self, X, y):
        return self._loss_grad(X, y)[0]

    def predict(self, X):
        return np.argmax(X @ self.params["W"], axis=1)


def blobs(seed=0, n=60):
    X, y = make_toy_classes(n_per_class=n, num_classes=3, kind="blobs", rng=seed)
    X = np.hstack([X / 4, np.ones((len(X), 1))])
    order = np.random.default_rng(seed).permutation(len(X))
    return X[order], y[order]


@pytest.fixture
def data():
    X, y = blobs()
    return X[:120], y[:120], X[120:], y[120:]


def test_numpy_model_learns_and_the_history_is_complete(data):
    X_tr, y_tr, X_va, y_va = data
    history = Trainer(num_epochs=8, batch_size=16, seed=0, progress=False).fit(SoftmaxModel(3, 3), X_tr, y_tr, X_va, y_va)
    assert isinstance(history, History) and list(history) == ["train_loss", "train_acc", "val_loss", "val_acc"]
    assert all(len(v) == 8 for v in history.values()) and history.num_epochs == 8
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]
    assert history["val_acc"][-1] > 0.9 and history["train_acc"][-1] > 0.9
    assert history.best_epoch is None and history.stopped_epoch is None


def test_minibatches_cover_the_data_once_per_epoch_in_a_seeded_order():
    seen = []

    class Recorder:
        params = np.zeros(1)

        def step(self, X, y):
            seen.append(y.copy())
            return 0.0

        def predict(self, X):
            return np.zeros(len(X), dtype=int)

    y = np.arange(23)  # label i for example i: a batch's labels are its indices
    X = np.zeros((23, 2))
    Trainer(num_epochs=2, batch_size=5, seed=7, progress=False).fit(Recorder(), X, y)
    assert [len(b) for b in seen] == [5, 5, 5, 5, 3] * 2
    rng = np.random.default_rng(7)
    for epoch in range(2):
        order = np.concatenate(seen[5 * epoch:5 * epoch + 5])
        np.testing.assert_array_equal(order, rng.permutation(23))
    seen.clear()
    Trainer(num_epochs=1, batch_size=10, shuffle=False, progress=False).fit(Recorder(), X, y)
    np.testing.assert_array_equal(np.concatenate(seen), np.arange(23))


def test_same_seed_same_run_other_seed_other_run(data):
    X_tr, y_tr, X_va, y_va = data

    def run(seed):
        model = SoftmaxModel(3, 3)
        history = Trainer(num_epochs=4, batch_size=8, seed=seed, progress=False).fit(model, X_tr, y_tr, X_va, y_va)
        return model.params["W"], history

    W1, h1 = run(3)
    W2, h2 = run(3)
    W3, _ = run(4)
    np.testing.assert_array_equal(W1, W2)
    assert dict(h1) == dict(h2)
    assert not np.array_equal(W1, W3)


class Scripted:
    """Its validation accuracy follows a script, one value per epoch; params count the epochs."""

    def __init__(self, accs, X_val, y_val):
        self.accs, self.X_val, self.y_val = accs, X_val, y_val
        self.params = {"epoch": 0}

    def step(self, X, y):
        self.params = {"epoch": self.params["epoch"] + 1}  # one batch per epoch in these tests
        return 1.0

    def predict(self, X):
        if X is not self.X_val:
            return np.zeros(len(X), dtype=int)
        acc = self.accs[self.params["epoch"] - 1]
        right = int(round(acc * len(X)))
        return np.where(np.arange(len(X)) < right, self.y_val, self.y_val + 1)


def test_early_stopping_waits_patience_epochs_and_restores_the_best_weights():
    X_tr, y_tr = np.zeros((4, 1)), np.zeros(4, dtype=int)
    X_va, y_va = np.zeros((10, 1)), np.zeros(10, dtype=int)
    accs = [0.3, 0.6, 0.8, 0.7, 0.8, 0.6, 0.9, 0.9, 0.9, 0.9]
    model = Scripted(accs, X_va, y_va)
    stop = EarlyStopping(monitor="val_acc", patience=2)
    history = Trainer(num_epochs=10, batch_size=4, progress=False, callbacks=[stop]).fit(model, X_tr, y_tr, X_va, y_va)
    # best 0.8 at epoch 3; epochs 4, 5 (0.8 is no improvement) and 6 do not improve: stop after epoch 6
    assert history["val_acc"] == pytest.approx(accs[:6])
    assert history.stopped_epoch == 6 and history.best_epoch == 3
    assert model.params == {"epoch": 3}  # the weights of epoch 3 are back


def test_early_stopping_on_a_loss_and_without_restoring():
    X_tr, y_tr = np.zeros((4, 1)), np.zeros(4, dtype=int)
    losses = iter([3.0, 2.0, 2.5, 2.4, 2.6])

    class LossScript(Scripted):
        def loss(self, X, y):
            return next(losses)

    model = LossScript([0.5] * 5, np.zeros((3, 1)), np.zeros(3, dtype=int))
    stop = EarlyStopping(monitor="val_loss", patience=1, restore_best=False)
    assert stop.mode == "min"
    history = Trainer(num_epochs=5, batch_size=4, progress=False, callbacks=[stop]).fit(
        model, X_tr, y_tr, model.X_val, model.y_val)
    assert history["val_loss"] == [3.0, 2.0, 2.5, 2.4] and history.stopped_epoch == 4
    assert history.best_epoch is None and model.params == {"epoch": 4}


def test_callbacks_see_every_epoch_and_can_stop_training(data):
    X_tr, y_tr, X_va, y_va = data
    calls = []

    def log(trainer, epoch, logs):
        calls.append((epoch, sorted(logs)))
        if epoch == 3:
            trainer.stop_training = True

    history = Trainer(num_epochs=10, batch_size=32, progress=False, callbacks=[log]).fit(
        SoftmaxModel(3, 3), X_tr, y_tr, X_va, y_va)
    assert calls == [(e, ["train_acc", "train_loss", "val_acc", "val_loss"]) for e in (1, 2, 3)]
    assert history.num_epochs == 3


def test_torch_module_learns_reproducibly_on_the_cpu(data):
    X_tr, y_tr, X_va, y_va = data

    def run():
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(16, 3))
        opt = torch.optim.SGD(net.parameters(), lr=0.2)
        history = Trainer(num_epochs=15, batch_size=16, seed=1, progress=False).fit(
            net, X_tr, y_tr, X_va, y_va, optimizer=opt, loss_fn=torch.nn.CrossEntropyLoss())
        return net, history

    net1, h1 = run()
    net2, h2 = run()
    assert dict(h1) == dict(h2)  # same seed: same minibatches and the same dropout masks
    for a, b in zip(net1.parameters(), net2.parameters(), strict=True):
        assert torch.equal(a, b)
    assert h1["val_acc"][-1] > 0.9 and h1["train_loss"][-1] < h1["train_loss"][0]


def test_torch_early_stopping_restores_the_state_dict(data):
    X_tr, y_tr, X_va, y_va = data
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 3)
    stop = EarlyStopping(monitor="val_loss", patience=0, min_delta=10.0)  # only the first epoch counts
    snapshots = []
    history = Trainer(num_epochs=5, batch_size=16, progress=False,
                      callbacks=[stop, lambda t, e, logs: snapshots.append(net.weight.detach().clone())]).fit(
        net, torch.as_tensor(X_tr), torch.as_tensor(y_tr), X_va, y_va,
        optimizer=torch.optim.SGD(net.parameters(), lr=0.5))
    assert history.stopped_epoch == 2 and history.best_epoch == 1
    assert torch.equal(net.weight, snapshots[0]) and not torch.equal(snapshots[0], snapshots[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_torch_module_on_the_gpu(data):
    X_tr, y_tr, X_va, y_va = data
    net = torch.nn.Linear(3, 3).cuda()
    history = Trainer(num_epochs=10, batch_size=16, progress=False).fit(
        net, X_tr, y_tr, X_va, y_va, optimizer=torch.optim.SGD(net.parameters(), lr=0.5))
    assert next(net.parameters()).device.type == "cuda" and history["val_acc"][-1] > 0.9


def test_mistakes_are_named(data):
    X_tr, y_tr, X_va, y_va = data
    with pytest.raises(TypeError, match="step"):
        Trainer(1, progress=False).fit(object(), X_tr, y_tr)
    with pytest.raises(TypeError, match="optimizer"):
        Trainer(1, progress=False).fit(torch.nn.Linear(3, 3), X_tr, y_tr)
    with pytest.raises(TypeError, match="numpy model"):
        Trainer(1, progress=False).fit(SoftmaxModel(3, 3), X_tr, y_tr, optimizer=object())
    with pytest.raises(ValueError, match="both X_val and y_val"):
        Trainer(1, progress=False).fit(SoftmaxModel(3, 3), X_tr, y_tr, X_va)
    with pytest.raises(ValueError, match="val_acc"):
        Trainer(2, progress=False, callbacks=[EarlyStopping("val_acc")]).fit(SoftmaxModel(3, 3), X_tr, y_tr)

    class NoParams:
        def step(self, X, y):
            return 0.0

        def predict(self, X):
            return np.zeros(len(X), dtype=int)

    with pytest.raises(TypeError, match="params"):
        Trainer(2, progress=False, callbacks=[EarlyStopping("val_acc")]).fit(NoParams(), X_tr, y_tr, X_va, y_va)
    with pytest.raises(FloatingPointError, match="learning rate"), np.errstate(all="ignore"):
        Trainer(3, progress=False).fit(SoftmaxModel(3, 3, lr=1e300), X_tr * 1e200, y_tr)
    with pytest.raises(ValueError):
        EarlyStopping(mode="up")


def test_history_plots_losses_and_accuracies(data):
    X_tr, y_tr, X_va, y_va = data
    history = Trainer(num_epochs=3, batch_size=32, progress=False).fit(SoftmaxModel(3, 3), X_tr, y_tr, X_va, y_va)
    fig = history.plot(title="blobs")
    labels = sorted(line.get_label() for ax in fig.axes for line in ax.get_lines())
    assert len(fig.axes) == 2 and labels == ["train_acc", "train_loss", "val_acc", "val_loss"]


def test_progress_bar_runs(data, capsys):
    X_tr, y_tr, _, _ = data
    history = Trainer(num_epochs=2, batch_size=64).fit(SoftmaxModel(3, 3), X_tr, y_tr)
    assert history.num_epochs == 2 and "training" in capsys.readouterr().err
