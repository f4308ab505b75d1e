"""05_normalization_regularization: the reference solutions agree with PyTorch.

Batch norm is compared with ``torch.nn.functional.batch_norm`` and ``nn.BatchNorm1d`` in
training and evaluation mode over several batches.  Two conventions differ and are mapped
here, as the notebook explains: the course's ``momentum`` m weighs the old running value
(PyTorch's ``momentum`` is 1 - m), and the course stores the biased batch variance (the one
it normalises with) in ``running_var`` where PyTorch stores the unbiased one.  Every backward
pass is compared with autograd in float64; layer norm with ``F.layer_norm``; the label
smoothing loss with ``F.cross_entropy(label_smoothing=...)`` (value and gradient, float32
and float64, on the course's device); dropout by its statistics against ``F.dropout``
(PyTorch draws its masks with its own generator); L2 inside Adam and AdamW's decoupled decay
with ``torch.optim``; early stopping with the course's ``EarlyStopping`` callback.  The
claims the notebook makes about its experiments are asserted on shortened runs, and every
hidden case runs on the reference.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from reference_helpers import centred_digits, close, t64

from course_utils import device
from course_utils.layers import FullyConnectedNet, NumpyOptimizer, adam, sgd_momentum
from course_utils.training import EarlyStopping, Trainer
from grader.reference import load_reference

AID = "05_normalization_regularization"


def ref(name):
    return load_reference(AID, name)


# --- batch normalisation ---------------------------------------------------------------------


@pytest.mark.parametrize("N,D,m", [(8, 5, 0.9), (2, 3, 0.5), (64, 20, 0.99), (5, 1, 0.0)])
def test_batchnorm_forward_matches_torch_over_several_batches(N, D, m):
    rng = np.random.default_rng(N * D)
    gamma, beta = rng.normal(size=D), rng.normal(size=D)
    bn_param = {"mode": "train", "momentum": m}
    module = torch.nn.BatchNorm1d(D, eps=1e-5, momentum=1 - m).double()  # PyTorch's momentum = 1 - ours
    with torch.no_grad():
        module.weight.copy_(torch.tensor(gamma))
        module.bias.copy_(torch.tensor(beta))
    for _ in range(4):
        x = rng.normal(loc=3.0, scale=2.0, size=(N, D))
        out, _ = ref("batchnorm_forward")(x, gamma, beta, bn_param)
        module.train()
        close(out, module(torch.tensor(x)), rtol=1e-9, atol=1e-10)
    close(bn_param["running_mean"], module.running_mean)
    # PyTorch's running_var averages the unbiased variance N/(N-1) * var; ours the biased one.
    # After 4 batches both are m**4 * 1 + (a weighted sum of the batch variances), so
    # ours = m**4 + (theirs - m**4) * (N-1)/N.
    close(bn_param["running_var"], m**4 + (module.running_var.numpy() - m**4) * (N - 1) / N, rtol=1e-9)
    x_test = rng.normal(loc=3.0, scale=2.0, size=(3, D))
    bn_param["mode"] = "test"
    out, _ = ref("batchnorm_forward")(x_test, gamma, beta, bn_param)
    expected = F.batch_norm(torch.tensor(x_test), torch.tensor(bn_param["running_mean"]),
                            torch.tensor(bn_param["running_var"]), torch.tensor(gamma), torch.tensor(beta),
                            training=False, eps=1e-5)
    close(out, expected, rtol=1e-9, atol=1e-10)


def test_batchnorm_defaults_and_errors():
    x = np.random.default_rng(0).normal(size=(4, 3))
    bn_param = {"mode": "train"}
    ref("batchnorm_forward")(x, np.ones(3), np.zeros(3), bn_param)
    close(bn_param["running_mean"], 0.1 * x.mean(axis=0))
    close(bn_param["running_var"], 0.9 + 0.1 * x.var(axis=0))
    out, _ = ref("batchnorm_forward")(x[:1], np.ones(3), np.full(3, 0.5), {"mode": "train"})
    close(out, np.full((1, 3), 0.5))  # a batch of one: every x_hat is 0, the output is beta
    with pytest.raises(ValueError):
        ref("batchnorm_forward")(x, np.ones(3), np.zeros(3), {"mode": "eval"})


@pytest.mark.parametrize("backward", ["batchnorm_backward", "batchnorm_backward_alt"])
@pytest.mark.parametrize("N,D,loc,scale", [(4, 3, 0.0, 1.0), (30, 1, 3.0, 1.0), (7, 6, 1000.0, 0.5),
                                           (64, 32, 0.0, 4.0), (2, 4, 0.0, 1.0)])
def test_batchnorm_backward_matches_autograd(backward, N, D, loc, scale):
    rng = np.random.default_rng(N + D)
    x, gamma, beta = loc + scale * rng.normal(size=(N, D)), rng.normal(size=D), rng.normal(size=D)
    dout = rng.normal(size=(N, D))
    _, cache = ref("batchnorm_forward")(x, gamma, beta, {"mode": "train"})
    dx, dgamma, dbeta = ref(backward)(dout, cache)
    xt, gt, bt = t64(x), t64(gamma), t64(beta)
    F.batch_norm(xt, None, None, gt, bt, training=True, eps=1e-5).backward(torch.tensor(dout))
    close(dx, xt.grad, rtol=1e-7, atol=1e-9)
    close(dgamma, gt.grad, rtol=1e-9, atol=1e-10)
    close(dbeta, bt.grad)


def test_batchnorm_backward_of_a_single_example_is_zero():
    rng = np.random.default_rng(3)
    _, cache = ref("batchnorm_forward")(rng.normal(size=(1, 4)), rng.normal(size=4), rng.normal(size=4),
                                        {"mode": "train"})
    for name in ("batchnorm_backward", "batchnorm_backward_alt"):
        dx, _, _ = ref(name)(rng.normal(size=(1, 4)), cache)
        close(dx, np.zeros((1, 4)), atol=1e-12)


def test_spatial_batchnorm_by_reshaping_matches_batch_norm_2d():
    rng = np.random.default_rng(4)
    x, gamma, beta = rng.normal(loc=1.0, size=(4, 3, 5, 5)), rng.normal(size=3), rng.normal(size=3)
    flat = x.transpose(0, 2, 3, 1).reshape(-1, 3)
    out, _ = ref("batchnorm_forward")(flat, gamma, beta, {"mode": "train"})
    expected = F.batch_norm(torch.tensor(x), None, None, torch.tensor(gamma), torch.tensor(beta), training=True)
    close(out.reshape(4, 5, 5, 3).transpose(0, 3, 1, 2), expected, rtol=1e-9, atol=1e-10)


# --- layer normalisation ---------------------------------------------------------------------


@pytest.mark.parametrize("shape,eps", [((5, 6), 1e-5), ((2, 3, 4), 1e-5), ((2, 2, 3, 6), 1e-3), ((3, 1), 1e-5),
                                       ((1, 128), 1e-8)])
def test_layernorm_matches_torch(shape, eps):
    rng = np.random.default_rng(sum(shape))
    D = shape[-1]
    x, gamma, beta = 2.0 + 3.0 * rng.normal(size=shape), rng.normal(size=D), rng.normal(size=D)
    dout = rng.normal(size=shape)
    out, cache = ref("layernorm_forward")(x, gamma, beta, {"eps": eps, "mode": "train"})
    dx, dgamma, dbeta = ref("layernorm_backward")(dout, cache)
    xt, gt, bt = t64(x), t64(gamma), t64(beta)
    out_t = F.layer_norm(xt, (D,), gt, bt, eps=eps)
    out_t.backward(torch.tensor(dout))
    close(out, out_t, rtol=1e-9, atol=1e-10)
    close(dx, xt.grad, rtol=1e-7, atol=1e-9)
    close(dgamma, gt.grad, rtol=1e-9, atol=1e-10)
    close(dbeta, bt.grad)


# --- dropout --------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics_match_torch(p):
    x = np.ones((500, 400))
    ours, cache = ref("dropout_forward")(x, {"p": p, "mode": "train", "seed": 1})
    torch.manual_seed(1)
    theirs = F.dropout(torch.ones(500, 400, dtype=torch.float64), p=p, training=True).numpy()
    for out in (ours, theirs):
        assert abs(np.mean(out == 0) - p) < 0.005
        np.testing.assert_allclose(np.unique(out[out != 0]), [1 / (1 - p)])
        assert abs(out.mean() - 1.0) < 0.02
    # the backward pass is autograd's through out = x * mask for the mask that was drawn
    mask = ours / x
    xt = t64(np.random.default_rng(2).normal(size=x.shape))
    dout = np.random.default_rng(3).normal(size=x.shape)
    (xt * torch.tensor(mask)).backward(torch.tensor(dout))
    close(ref("dropout_backward")(dout, cache), xt.grad)


def test_dropout_test_mode_and_p_zero_are_the_identity():
    x = np.random.default_rng(5).normal(size=(3, 4, 5))
    for param in ({"p": 0.5, "mode": "test", "seed": 0}, {"p": 0.0, "mode": "train", "seed": 0}):
        out, cache = ref("dropout_forward")(x, param)
        close(out, F.dropout(torch.tensor(x), p=param["p"], training=param["mode"] == "train"))
        close(ref("dropout_backward")(x, cache), x)
    for p in (1.0, -0.5):
        with pytest.raises(ValueError):
            ref("dropout_forward")(x, {"p": p, "mode": "train", "seed": 0})


def test_fully_connected_net_with_the_reference_layers_passes_a_gradient_check():
    from course_utils import gradcheck

    rng = np.random.default_rng(6)
    X, y = rng.normal(size=(7, 5)), rng.integers(0, 3, size=7)
    for norm in ((ref("batchnorm_forward"), ref("batchnorm_backward_alt")),
                 (ref("layernorm_forward"), ref("layernorm_backward"))):
        net = FullyConnectedNet(5, [6, 4], 3, init=0.5, reg=0.1, normalization=norm, seed=1,
                                dropout=(ref("dropout_forward"), ref("dropout_backward"), 0.3))
        state = net.rng.bit_generator.state
        _, grads = net.loss(X, y)
        for k, w in net.params.items():
            def f(_, net=net, state=state):
                net.rng.bit_generator.state = state  # the same dropout masks every time
                return net.loss(X, y)[0]
            # (b1, b2 get exactly 0: a batch- or layer-normalised bias cancels out)
            np.testing.assert_allclose(grads[k], gradcheck.numerical_gradient(f, w), rtol=1e-5, atol=1e-8, err_msg=k)


# --- regularisation ----------------------------------------------------------------------------


def test_l2_penalty_matches_autograd_and_the_network():
    rng = np.random.default_rng(7)
    weights = [rng.normal(size=(4, 3)), rng.normal(size=(3, 2)), rng.normal(size=(2, 2, 2))]
    penalty, grads = ref("l2_penalty")(weights, 0.3)
    wt = [t64(w) for w in weights]
    total = 0.5 * 0.3 * sum((w**2).sum() for w in wt)
    total.backward()
    assert isinstance(penalty, float)
    close(penalty, total.item())
    for g, w in zip(grads, wt, strict=True):
        close(g, w.grad)
    assert ref("l2_penalty")([], 1.0) == (0.0, [])


def test_adam_weight_decay_is_l2_and_adamw_is_decoupled():
    """torch.optim.Adam(weight_decay) = the course's adam on dw + wd * w; torch.optim.AdamW =
    shrink by (1 - lr * wd), then the adam step on dw alone."""
    rng = np.random.default_rng(8)
    lr, wd = 1e-2, 0.1
    dws = [rng.normal(size=5) * np.array([100.0, 1.0, 0.01, 0.0, 5.0]) for _ in range(50)]
    for opt_class, decoupled in ((torch.optim.Adam, False), (torch.optim.AdamW, True)):
        wt = torch.ones(5, dtype=torch.float64, requires_grad=True)
        opt = opt_class([wt], lr=lr, weight_decay=wd)
        w, config = np.ones(5), {"learning_rate": lr}
        for dw in dws:
            wt.grad = torch.tensor(dw)
            opt.step()
            if decoupled:
                w, config = adam(w * (1 - lr * wd), dw, config)
            else:
                w, config = adam(w, dw + wd * w, config)
        close(w, wt, rtol=1e-10, atol=1e-12)


class _ReplayTrainer:
    def __init__(self):
        self.stop_training = False
        self.history = type("H", (), {"stopped_epoch": None})()


def test_early_stopping_agrees_with_the_course_callback():
    rng = np.random.default_rng(9)
    for _ in range(300):
        n = int(rng.integers(1, 30))
        losses = list(np.round(rng.uniform(0, 1, size=n) + np.linspace(1, 0, n) ** 2, int(rng.integers(1, 3))))
        patience, min_delta = int(rng.integers(0, 5)), float(rng.choice([0.0, 0.05]))
        cb, trainer = EarlyStopping(monitor="val_loss", patience=patience, min_delta=min_delta, restore_best=False), \
            _ReplayTrainer()
        cb.on_train_begin(trainer)
        stop = None
        for epoch, loss in enumerate(losses, start=1):
            cb(trainer, epoch, {"val_loss": loss})
            if trainer.stop_training:
                stop = epoch
                break
        assert ref("early_stopping")(losses, patience, min_delta) == (cb.best_epoch, stop), (losses, patience)


def test_mixup_matches_torch():
    rng = np.random.default_rng(10)
    x, y = rng.normal(size=(7, 1, 4, 4)), np.eye(5)[rng.integers(0, 5, size=7)]
    for lam in (0.0, 0.3, 1.0):
        x_m, y_m = ref("mixup")(x, y, lam)
        close(x_m, lam * torch.tensor(x) + (1 - lam) * torch.tensor(x).flip(0))
        close(y_m, lam * torch.tensor(y) + (1 - lam) * torch.tensor(y).flip(0))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.5, 1.0])
def test_label_smoothing_matches_cross_entropy_on_the_device(dtype, smoothing):
    dev = device()
    gen = torch.Generator().manual_seed(int(smoothing * 10))
    logits = (3 * torch.randn(12, 7, generator=gen, dtype=torch.float64))
    logits[0] = torch.tensor([1000.0, -1000.0, 0, 0, 0, 0, 0])  # stability
    targets = torch.randint(0, 7, (12,), generator=gen)
    ours = logits.to(dev, dtype).clone().requires_grad_()
    loss = ref("label_smoothing_cross_entropy")(ours, targets.to(dev), smoothing)
    loss.backward()
    assert loss.device == ours.device and loss.dtype == dtype and loss.dim() == 0
    theirs = logits.clone().requires_grad_()  # logits itself does not require grad
    expected = F.cross_entropy(theirs, targets, label_smoothing=smoothing)
    expected.backward()
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    close(loss.item(), expected.item(), rtol=tol, atol=tol)
    close(ours.grad.double(), theirs.grad, rtol=tol, atol=tol)


# --- the notebook's claims, on shortened runs ----------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    return centred_digits()


def test_preprocessing_claims():
    """Condition numbers of the least-squares problem on the digits: centring divides it by about
    ten, standardising brings it to about 150; 1000 steps of gradient descent then nearly solve it."""
    from course_utils.data import load_digits, train_val_test_split

    X, y = load_digits()
    X_train, y_train, *_ = train_val_test_split(X / 16, y, val_fraction=0.2, test_fraction=0.2,
                                                rng=np.random.default_rng(0))
    mu, sigma = X_train.mean(axis=0), X_train.std(axis=0)

    def kappa(Z):
        Zb = np.hstack([Z, np.ones((len(Z), 1))])
        eig = np.linalg.eigvalsh(Zb.T @ Zb / len(Z))
        eig = eig[eig > 1e-9 * eig[-1]]
        return eig[-1] / eig[0]

    raw, centred = kappa(X_train * 16), kappa(X_train - mu)
    standardised = kappa((X_train - mu) / np.where(sigma > 0, sigma, 1.0))
    assert 5 < raw / centred < 20 and 100 < standardised < 200, (raw, centred, standardised)


def test_l1_zeroes_about_half_the_weights_at_the_accuracy_of_l2(digits):
    from course_utils.layers import softmax_loss

    Xtr, ytr, Xva, yva, _, _ = digits
    results = {}
    for penalty, lam in (("L2", 1e-2), ("L1", 3e-3)):
        W, b = np.zeros((64, 10)), np.zeros(10)
        for _ in range(300):
            _, ds = softmax_loss(Xtr @ W + b, ytr)
            dW, db = Xtr.T @ ds, ds.sum(axis=0)
            b -= 0.5 * db
            if penalty == "L2":
                W -= 0.5 * (dW + lam * W)
            else:
                W = W - 0.5 * dW
                W = np.sign(W) * np.maximum(np.abs(W) - 0.5 * lam, 0.0)
        results[penalty] = (np.mean(np.argmax(Xva @ W + b, axis=1) == yva), np.mean(W == 0))
    (acc2, zeros2), (acc1, zeros1) = results["L2"], results["L1"]
    assert abs(acc1 - acc2) < 0.015 and zeros2 < 0.1 and 0.45 < zeros1 < 0.7, results


def test_folding_batchnorm_into_the_affine_layer_is_exact():
    rng = np.random.default_rng(11)
    X, W, b = rng.normal(size=(9, 6)), rng.normal(size=(6, 4)), rng.normal(size=4)
    gamma, beta = rng.normal(size=4), rng.normal(size=4)
    param = {"mode": "test", "running_mean": rng.normal(size=4), "running_var": rng.uniform(0.5, 2, size=4)}
    out, _ = ref("batchnorm_forward")(X @ W + b, gamma, beta, dict(param))
    a = gamma / np.sqrt(param["running_var"] + 1e-5)
    close(out, X @ (W * a) + a * (b - param["running_mean"]) + beta, rtol=1e-12, atol=1e-12)


def test_batchnorm_trains_where_the_plain_network_does_not(digits):
    """The grid's message on two of its cells: tiny initial weights (1e-3) with a moderate
    learning rate do not train five hidden layers without BN, and do with it."""
    Xtr, ytr, Xva, yva, _, _ = digits
    accs = {}
    for use_bn in (False, True):
        norm = (ref("batchnorm_forward"), ref("batchnorm_backward_alt")) if use_bn else None
        net = FullyConnectedNet(64, [100] * 5, 10, init=1e-3, normalization=norm, norm_param={"momentum": 0.9}, seed=0)
        model = NumpyOptimizer(net, sgd_momentum, {"learning_rate": 0.1, "momentum": 0.9})
        h = Trainer(num_epochs=5, batch_size=100, seed=0, progress=False).fit(model, Xtr, ytr, Xva, yva)
        accs[use_bn] = h["val_acc"][-1]
    assert accs[False] < 0.3 and accs[True] > 0.85, accs


def test_batchnorm_in_train_mode_with_one_example_predicts_one_class(digits):
    Xtr, ytr, _, _, Xte, yte = digits
    net = FullyConnectedNet(64, [100] * 3, 10, init=0.14, seed=0,
                            normalization=(ref("batchnorm_forward"), ref("batchnorm_backward_alt")),
                            norm_param={"momentum": 0.9})
    Trainer(num_epochs=3, batch_size=100, seed=0, progress=False).fit(
        NumpyOptimizer(net, sgd_momentum, {"learning_rate": 0.1}), Xtr, ytr)
    assert np.mean(net.predict(Xte) == yte) > 0.9
    net.mode = "train"
    preds = {int(np.argmax(net.loss(Xte[i:i + 1]))) for i in range(40)}
    assert len(preds) == 1


def test_dropout_ensemble_claims(digits):
    """One random sub-network is worse than the test-time network; averaging many masks
    comes within a point of it."""
    Xtr, ytr, _, _, Xte, yte = digits
    drop = (ref("dropout_forward"), ref("dropout_backward"), 0.5)
    net = FullyConnectedNet(64, [256, 256], 10, init="kaiming", dropout=drop, seed=0)
    Trainer(num_epochs=10, batch_size=50, seed=0, progress=False).fit(
        NumpyOptimizer(net, adam, {"learning_rate": 1e-3}), Xtr, ytr)
    scaled = np.mean(net.predict(Xte) == yte)
    net.mode = "train"
    scores = np.array([net.loss(Xte) for _ in range(50)])
    net.mode = None
    probs = np.exp(scores - scores.max(axis=2, keepdims=True))
    probs /= probs.sum(axis=2, keepdims=True)
    single = np.mean([np.mean(p.argmax(axis=1) == yte) for p in probs[:10]])
    averaged = np.mean(probs.mean(axis=0).argmax(axis=1) == yte)
    assert single < scaled - 0.01 and abs(averaged - scaled) <= 0.015, (single, averaged, scaled)


def test_tiny_training_set_overfits_and_label_smoothing_lowers_confidence(digits):
    Xtr, ytr, Xva, yva, _, _ = digits
    idx = np.concatenate([np.flatnonzero(ytr == c)[:10] for c in range(10)])
    net = FullyConnectedNet(64, [256, 256], 10, init="kaiming", seed=0)
    h = Trainer(num_epochs=80, batch_size=20, seed=0, progress=False).fit(  # the notebook's run
        NumpyOptimizer(net, adam, {"learning_rate": 1e-3}), Xtr[idx], ytr[idx], Xva, yva)
    # 100% on the training images, under 90% on new ones; the validation loss bottoms out
    # after about 30 epochs and then creeps up
    assert h["train_acc"][-1] == 1.0 and h["val_acc"][-1] < 0.9
    assert 20 <= np.argmin(h["val_loss"]) + 1 <= 45 and h["val_loss"][-1] > min(h["val_loss"]) + 0.01
    confidence = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # this small network runs far faster on one thread on a busy machine
    try:
        for eps in (0.0, 0.1):
            torch.manual_seed(0)
            model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                                        torch.nn.ReLU(), torch.nn.Linear(256, 10))
            Trainer(num_epochs=60, batch_size=20, seed=0, progress=False).fit(
                model, Xtr[idx], ytr[idx], optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
                loss_fn=lambda out, t, e=eps: ref("label_smoothing_cross_entropy")(out, t, e))
            with torch.no_grad():
                probs = torch.softmax(model(torch.as_tensor(Xva, dtype=torch.float32)), 1)
            confidence[eps] = probs.max(1).values.mean().item()
    finally:
        torch.set_num_threads(threads)
    assert confidence[0.1] < confidence[0.0] - 0.1, confidence


# --- the hidden tests ---------------------------------------------------------------------------


