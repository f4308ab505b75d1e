"""course_utils.layers against PyTorch: autograd in float64 for the layers and the network,
torch.optim for the update rules, and the Trainer on a real (embedded) data set."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_utils import layers
from course_utils.training import EarlyStopping, Trainer


def _t(a):
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


def test_affine_relu_softmax_match_autograd():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((5, 2, 3)), rng.standard_normal((6, 4)), rng.standard_normal(4)
    y = rng.integers(0, 4, 5)
    out, c1 = layers.affine_forward(x, w, b)
    h, c2 = layers.relu_forward(out)
    loss, dh = layers.softmax_loss(h * 3, y)
    dx, dw, db = layers.affine_backward(layers.relu_backward(3 * dh, c2), c1)
    tx, tw, tb = _t(x), _t(w), _t(b)
    tloss = torch.nn.functional.cross_entropy(3 * torch.relu(tx.reshape(5, -1) @ tw + tb), torch.tensor(y))
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), rel=1e-12)
    for mine, ref in ((dx, tx), (dw, tw), (db, tb)):
        np.testing.assert_allclose(mine, ref.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_softmax_loss_is_stable_for_large_scores():
    loss, dx = layers.softmax_loss(np.array([[1000.0, 0.0], [0.0, 1000.0]]), np.array([0, 0]))
    assert np.isfinite(loss) and np.isfinite(dx).all()
    assert loss == pytest.approx(500.0)


def _batchnorm_pair():
    """Batch normalisation written with torch (forward) and autograd (backward): an independent
    implementation for the network's pluggable normalisation."""

    def forward(x, gamma, beta, param):
        tx, tg, tb = _t(x), _t(gamma), _t(beta)
        rm = param.setdefault("running_mean", np.zeros(x.shape[1]))
        rv = param.setdefault("running_var", np.ones(x.shape[1]))
        training = param["mode"] == "train"
        out = torch.nn.functional.batch_norm(tx, torch.tensor(rm), torch.tensor(rv), tg, tb,
                                             training=training, eps=1e-5)
        if training:
            param["running_mean"] = 0.9 * rm + 0.1 * x.mean(0)
            param["running_var"] = 0.9 * rv + 0.1 * x.var(0)
        return out.detach().numpy(), (tx, tg, tb, out)

    def backward(dout, cache):
        tx, tg, tb, out = cache
        out.backward(torch.tensor(dout))
        return tx.grad.numpy(), tg.grad.numpy(), tb.grad.numpy()

    return forward, backward


@pytest.mark.parametrize("norm", [False, True])
def test_network_gradients_match_autograd(norm):
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((7, 5)), rng.integers(0, 3, 7)
    net = layers.FullyConnectedNet(5, [4, 6], 3, init="kaiming", reg=0.3, seed=2,
                                   normalization=_batchnorm_pair() if norm else None)
    loss, grads = net.loss(X, y)
    p = {k: _t(v) for k, v in net.params.items()}
    h = torch.tensor(X)
    for i in (1, 2):
        h = h @ p[f"W{i}"] + p[f"b{i}"]
        if norm:
            h = torch.nn.functional.batch_norm(h, None, None, p[f"gamma{i}"], p[f"beta{i}"], training=True, eps=1e-5)
        h = torch.relu(h)
    scores = h @ p["W3"] + p["b3"]
    tloss = torch.nn.functional.cross_entropy(scores, torch.tensor(y))
    tloss = tloss + 0.5 * 0.3 * sum((p[f"W{i}"] ** 2).sum() for i in (1, 2, 3))
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), rel=1e-10)
    assert set(grads) == set(net.params)
    for k in grads:
        np.testing.assert_allclose(grads[k], p[k].grad.numpy(), rtol=1e-8, atol=1e-10, err_msg=k)


def test_initialisers_have_the_stated_variance():
    for init, var in (("xavier", 2 / 700), ("kaiming", 2 / 400), (0.05, 0.05**2)):
        net = layers.FullyConnectedNet(400, [300], 10, init=init, seed=0)
        assert net.params["W1"].var() == pytest.approx(var, rel=0.02)
    with pytest.raises(ValueError, match="xavier"):
        layers.FullyConnectedNet(4, [3], 2, init="glorot")


@pytest.mark.parametrize("rule,make,config", [
    (layers.sgd, lambda p: torch.optim.SGD(p, lr=0.1), {"learning_rate": 0.1}),
    (layers.sgd_momentum, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
     {"learning_rate": 0.1, "momentum": 0.9}),
    (layers.adam, lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-6),
     {"learning_rate": 0.01, "beta1": 0.8, "beta2": 0.99, "epsilon": 1e-6}),
])
def test_update_rules_match_torch_optim(rule, make, config):
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 3))
    tw = torch.tensor(w.copy(), requires_grad=True)
    opt = make([tw])
    for _ in range(25):
        dw = rng.standard_normal((4, 3))
        w, config = rule(w, dw, config)
        tw.grad = torch.tensor(dw)
        opt.step()
        np.testing.assert_allclose(w, tw.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_trainer_fits_a_network_and_restores_its_best_weights():
    from course_utils.data import load_digits, train_val_test_split

    X, y = load_digits()
    X = X.reshape(len(X), -1) / 16.0
    X_train, y_train, X_val, y_val, _, _ = train_val_test_split(X, y, val_fraction=0.2, test_fraction=0.2,
                                                                rng=np.random.default_rng(0))
    mean = X_train.mean(axis=0)
    net = layers.FullyConnectedNet(64, [64], 10, init="kaiming", reg=1e-4, seed=0)
    model = layers.NumpyOptimizer(net, layers.adam, {"learning_rate": 1e-2}, schedule=lambda e: 1e-2 * 0.9**e)
    stop = EarlyStopping(monitor="val_acc", patience=3)
    history = Trainer(num_epochs=15, batch_size=64, seed=0, callbacks=[model, stop], progress=False).fit(
        model, X_train - mean, y_train, X_val - mean, y_val)
    assert max(history["val_acc"]) >= 0.95
    assert np.mean(net.predict(X_val - mean) == y_val) == pytest.approx(max(history["val_acc"]))
    assert model.configs["W1"]["learning_rate"] == pytest.approx(1e-2 * 0.9 ** history.num_epochs)
    assert history["val_loss"][0] > history["val_loss"][-1]
