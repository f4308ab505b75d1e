"""04_optimization: the reference solutions agree with torch.optim and torch.optim.lr_scheduler.

Every update rule of the source notebook's answer cells takes the same steps as the PyTorch
optimiser with the same rule (SGD, SGD with momentum, Nesterov, Adagrad, RMSprop, Adam) over
hundreds of steps, for several hyper-parameter sets, with L2 weight decay added to the gradient
as PyTorch's ``weight_decay`` does; the schedules match StepLR, ExponentialLR, CosineAnnealingLR
and LinearLR; the initialisers have the standard deviations of torch.nn.init. The targets the
notebook states (a tiny set over-fitted, the final network's test accuracy) are asserted, and
the hidden-test spec's cases all run on the reference.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reference_helpers import centred_digits

from course_utils.layers import FullyConnectedNet, NumpyOptimizer
from course_utils.training import EarlyStopping, Trainer
from grader.reference import load_reference

AID = "04_optimization"


def ref(name):
    return load_reference(AID, name)


def ours(rule, w0, dws, config, weight_decay=0.0):
    """Weights after each step; L2 weight decay enters through the gradient, dw + wd * w."""
    w, out = np.array(w0, copy=True), []
    for dw in dws:
        w, config = rule(w, dw + weight_decay * w, config)
        out.append(np.array(w, copy=True))
    return out, config


def theirs(make, w0, dws):
    p = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float64))
    opt = make([p])
    out = []
    for dw in dws:
        opt.zero_grad()
        p.grad = torch.tensor(dw, dtype=torch.float64)
        opt.step()
        out.append(p.detach().numpy().copy())
    return out


# (rule, our config, torch optimiser factory); every set runs with and without weight decay
RULE_CASES = [
    ("sgd", {"learning_rate": 0.05}, lambda p, wd: torch.optim.SGD(p, lr=0.05, weight_decay=wd)),
    ("sgd", {"learning_rate": 1.3}, lambda p, wd: torch.optim.SGD(p, lr=1.3, weight_decay=wd)),
    ("sgd_momentum", {"learning_rate": 0.01, "momentum": 0.9},
     lambda p, wd: torch.optim.SGD(p, lr=0.01, momentum=0.9, weight_decay=wd)),
    ("sgd_momentum", {"learning_rate": 0.2, "momentum": 0.5},
     lambda p, wd: torch.optim.SGD(p, lr=0.2, momentum=0.5, weight_decay=wd)),
    ("sgd_momentum", {"learning_rate": 3e-3, "momentum": 0.99},
     lambda p, wd: torch.optim.SGD(p, lr=3e-3, momentum=0.99, weight_decay=wd)),
    ("nesterov_momentum", {"learning_rate": 0.01, "momentum": 0.9},
     lambda p, wd: torch.optim.SGD(p, lr=0.01, momentum=0.9, nesterov=True, weight_decay=wd)),
    ("nesterov_momentum", {"learning_rate": 0.1, "momentum": 0.6},
     lambda p, wd: torch.optim.SGD(p, lr=0.1, momentum=0.6, nesterov=True, weight_decay=wd)),
    ("adagrad", {"learning_rate": 0.1, "epsilon": 1e-10},
     lambda p, wd: torch.optim.Adagrad(p, lr=0.1, eps=1e-10, weight_decay=wd)),
    ("adagrad", {"learning_rate": 1.0, "epsilon": 1e-6},
     lambda p, wd: torch.optim.Adagrad(p, lr=1.0, eps=1e-6, weight_decay=wd)),
    ("rmsprop", {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8},
     lambda p, wd: torch.optim.RMSprop(p, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=wd)),
    ("rmsprop", {"learning_rate": 3e-3, "decay_rate": 0.9, "epsilon": 1e-6},
     lambda p, wd: torch.optim.RMSprop(p, lr=3e-3, alpha=0.9, eps=1e-6, weight_decay=wd)),
    ("adam", {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
     lambda p, wd: torch.optim.Adam(p, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=wd)),
    ("adam", {"learning_rate": 5e-2, "beta1": 0.5, "beta2": 0.9, "epsilon": 1e-6},
     lambda p, wd: torch.optim.Adam(p, lr=5e-2, betas=(0.5, 0.9), eps=1e-6, weight_decay=wd)),
    ("adam", {"learning_rate": 1e-2, "beta1": 0.0, "beta2": 0.99, "epsilon": 1e-8},
     lambda p, wd: torch.optim.Adam(p, lr=1e-2, betas=(0.0, 0.99), eps=1e-8, weight_decay=wd)),
]


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
@pytest.mark.parametrize("k", range(len(RULE_CASES)))
def test_update_rules_take_the_steps_of_torch_optim(k, weight_decay):
    name, config, make = RULE_CASES[k]
    rng = np.random.default_rng(k)
    shape = [(7,), (4, 5), (2, 3, 4)][k % 3]
    w0 = rng.normal(size=shape)
    dws = [rng.normal(scale=rng.choice([1e-3, 1.0, 30.0]), size=shape) for _ in range(300)]
    dws[0].flat[0] = 0.0  # a zero first gradient in one coordinate (epsilon handling)
    got, config_out = ours(ref(name), w0, dws, dict(config), weight_decay)
    want = theirs(lambda p: make(p, weight_decay), w0, dws)
    np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-9, atol=1e-11)
    if name == "adam":
        assert config_out["t"] == len(dws)


@pytest.mark.parametrize("name,make", [
    ("sgd", lambda p: torch.optim.SGD(p, lr=1e-2)),
    ("rmsprop", lambda p: torch.optim.RMSprop(p)),
    ("adam", lambda p: torch.optim.Adam(p)),
])
def test_defaults_are_pytorchs_where_the_rules_coincide(name, make):
    rng = np.random.default_rng(1)
    w0, dws = rng.normal(size=(3, 3)), [rng.normal(size=(3, 3)) for _ in range(50)]
    got, _ = ours(ref(name), w0, dws, None)
    np.testing.assert_allclose(np.array(got), np.array(theirs(make, w0, dws)), rtol=1e-10, atol=1e-12)


def test_the_two_momentum_conventions_agree_until_the_learning_rate_changes():
    rng = np.random.default_rng(2)
    w, config = rng.normal(size=4), {"learning_rate": 0.1, "momentum": 0.9}
    p = torch.nn.Parameter(torch.tensor(w))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    gaps = []
    for step in range(20):
        if step == 10:
            config["learning_rate"] = 0.01
            opt.param_groups[0]["lr"] = 0.01
        dw = rng.normal(size=4)
        w, config = ref("sgd_momentum")(w, dw, config)
        p.grad = torch.tensor(dw)
        opt.step()
        gaps.append(np.abs(w - p.detach().numpy()).max())
    assert max(gaps[:10]) < 1e-12 < 1e-3 < min(gaps[10:])


def test_nesterov_stores_the_look_ahead_point():
    A = np.array([[3.0, 0.5], [0.5, 0.2]])
    lr, mu = 0.1, 0.9
    w, v = np.array([2.0, -3.0]), np.zeros(2)
    w_tilde, config = w.copy(), {"learning_rate": lr, "momentum": mu}
    for _ in range(40):
        v = mu * v - lr * A @ (w + mu * v)
        w = w + v
        w_tilde, config = ref("nesterov_momentum")(w_tilde, A @ w_tilde, config)
        np.testing.assert_allclose(w_tilde, w + mu * v, rtol=1e-10, atol=1e-12)


def test_adam_bias_correction_makes_every_step_lr_for_a_constant_gradient():
    w, config = np.zeros(3), {"learning_rate": 0.1, "epsilon": 0.0}
    for t in range(1, 8):
        w_next, config = ref("adam")(w, np.array([1.0, -2.0, 5.0]), config)
        np.testing.assert_allclose(w - w_next, [0.1, -0.1, 0.1], rtol=1e-12)
        assert config["t"] == t
        w = w_next


def torch_lrs(make, lr0, n):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr0)
    sched = make(opt)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(out)


S = torch.optim.lr_scheduler


@pytest.mark.parametrize("name,kwargs,make,n", [
    ("step_decay", {"lr0": 0.1, "step_size": 10}, lambda o: S.StepLR(o, step_size=10), 50),
    ("step_decay", {"lr0": 0.7, "step_size": 3, "gamma": 0.6}, lambda o: S.StepLR(o, step_size=3, gamma=0.6), 40),
    ("exponential_decay", {"lr0": 0.1, "gamma": 0.95}, lambda o: S.ExponentialLR(o, gamma=0.95), 100),
    ("exponential_decay", {"lr0": 2.0, "gamma": 0.5}, lambda o: S.ExponentialLR(o, gamma=0.5), 30),
    ("cosine_decay", {"lr0": 0.1, "num_epochs": 50}, lambda o: S.CosineAnnealingLR(o, T_max=50), 51),
    ("cosine_decay", {"lr0": 0.3, "num_epochs": 17, "lr_min": 0.01},
     lambda o: S.CosineAnnealingLR(o, T_max=17, eta_min=0.01), 18),
    ("linear_warmup", {"lr0": 0.1, "warmup_epochs": 5},
     lambda o: S.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=5), 30),
    ("linear_warmup", {"lr0": 1e-3, "warmup_epochs": 12, "start_factor": 0.01},
     lambda o: S.LinearLR(o, start_factor=0.01, end_factor=1.0, total_iters=12), 30),
])
def test_schedules_match_torch_lr_schedulers(name, kwargs, make, n):
    want = torch_lrs(make, kwargs["lr0"], n)
    epochs = np.arange(n)
    np.testing.assert_allclose(ref(name)(epochs, **kwargs), want, rtol=1e-9, atol=1e-14)
    for e in (0, n // 3, n - 1):  # a Python int gives a number
        got = ref(name)(e, **kwargs)
        assert np.ndim(got) == 0
        np.testing.assert_allclose(got, want[e], rtol=1e-9, atol=1e-14)


def test_cosine_decay_stays_at_lr_min_after_the_end():
    assert ref("cosine_decay")(80, 0.5, 30, lr_min=0.02) == pytest.approx(0.02)
    np.testing.assert_allclose(ref("cosine_decay")(np.arange(30, 60), 0.5, 30), 0.0, atol=1e-15)


@pytest.mark.parametrize("fan_in,fan_out", [(1000, 600), (300, 2000)])
def test_initialisers_have_the_standard_deviations_of_torch_nn_init(fan_in, fan_out):
    torch.manual_seed(0)
    xavier_t = torch.nn.init.xavier_normal_(torch.empty(fan_out, fan_in)).std().item()
    kaiming_t = torch.nn.init.kaiming_normal_(torch.empty(fan_out, fan_in), nonlinearity="relu").std().item()
    xavier = ref("xavier_init")(fan_in, fan_out, np.random.default_rng(0))
    kaiming = ref("kaiming_init")(fan_in, fan_out, np.random.default_rng(0))
    assert xavier.shape == kaiming.shape == (fan_in, fan_out)
    assert xavier.std() == pytest.approx(xavier_t, rel=0.01)
    assert kaiming.std() == pytest.approx(kaiming_t, rel=0.01)
    # exactly one draw of std * rng.standard_normal((fan_in, fan_out)), as the notebook states
    z = np.random.default_rng(0).standard_normal((fan_in, fan_out))
    np.testing.assert_allclose(kaiming, np.sqrt(2 / fan_in) * z, rtol=1e-12)


def test_the_stated_training_targets_hold():
    X_train, y_train, X_val, y_val, X_test, y_test = centred_digits()
    kaiming, adam = ref("kaiming_init"), ref("adam")
    # 20 examples over-fitted: 100% training accuracy and loss below 0.01 after 200 steps of Adam
    tiny = NumpyOptimizer(FullyConnectedNet(64, [100, 100], 10, init=kaiming, seed=0), adam, {"learning_rate": 1e-3})
    h = Trainer(num_epochs=200, batch_size=20, seed=0, progress=False).fit(tiny, X_train[:20], y_train[:20])
    assert h["train_acc"][-1] == 1.0 and h["train_loss"][-1] < 0.01
    # the final network: warm-up then cosine, Adam, best validation epoch restored, test accuracy >= 96%
    warm, cos = ref("linear_warmup"), ref("cosine_decay")

    def schedule(epoch):
        return warm(epoch, 2e-3, 3) if epoch < 3 else cos(epoch - 3, 2e-3, 57)

    net = FullyConnectedNet(64, [200, 200], 10, init=kaiming, reg=1e-3, seed=0)
    model = NumpyOptimizer(net, adam, {"learning_rate": schedule(0)}, schedule=schedule)
    Trainer(num_epochs=60, batch_size=64, seed=0, progress=False,
            callbacks=[model, EarlyStopping(monitor="val_acc", patience=15, restore_best=True)]).fit(
        model, X_train, y_train, X_val, y_val)
    assert np.mean(net.predict(X_test) == y_test) >= 0.96


def test_a_constant_initialisation_never_breaks_symmetry():
    X_train, y_train, *_ = centred_digits()
    net = FullyConnectedNet(64, [50], 10, init=lambda fi, fo, rng: np.full((fi, fo), 0.01), seed=0)
    Trainer(num_epochs=5, batch_size=64, seed=0, progress=False).fit(
        NumpyOptimizer(net, ref("sgd_momentum"), {"learning_rate": 0.1}), X_train, y_train)
    W1 = net.params["W1"]
    assert np.abs(W1 - W1[:, :1]).max() < 1e-12 and np.abs(W1 - 0.01).max() > 1e-3


