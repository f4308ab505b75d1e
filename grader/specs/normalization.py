"""Hidden tests for 05_normalization_regularization
(solutions/05_normalization_regularization/normalization_regularization.ipynb).

``batchnorm_forward`` is driven over several training batches that share one ``bn_param``
(so the running averages carry over), then in test mode with given running averages; its
three parts (train output, running averages, test output) are scored separately.  The
cases include a single example (N=1), one feature, large offsets, momentum 0 and 0.99,
and every default (eps, momentum, the running averages starting at 0 and 1).  The two
backward passes are each graded with the student's own forward pass (the cache is theirs), and
include a batch of 4096 examples, where an (N, N, D) intermediate (a full Jacobian) would need
8.6 GB and exceed the worker's memory.
Layer norm gets 2-, 3- and 4-dimensional inputs and D=1.  Dropout masks follow the recipe
the docstring states (``np.random.default_rng(seed).random(x.shape) >= p``), so they are
compared entry by entry, for p = 0 up to 0.9 and in test mode.  The label-smoothing loss is
compared, value and autograd gradient, in float32 and float64 on the grading device
(the GPU when there is one), for smoothing 0 to 1 and logits of +-1000.

Rules (stated in each docstring and checked by the visible self-checks): no Python loops
in the numpy layers and in ``mixup``, no torch in any numpy exercise, not
``course_utils.layers`` where it holds the answer's building blocks, not
``course_utils.training`` in ``early_stopping``, and no built-in label smoothing.
"""

from __future__ import annotations

import numpy as np

from grader.spec import Case, Exercise, Forbid, NoLoops, Tol

ASSIGNMENT = "05_normalization_regularization"

NUMPY_ONLY = Forbid(("torch", "course_utils.layers"))
NUMPY_RULES = (NoLoops(), NUMPY_ONLY)


# --- batch normalisation -----------------------------------------------------------------


def _bn_forward_cases(rng: np.random.Generator) -> list[Case]:
    def case(N, D, num_batches, bn_param, loc=0.0, scale=1.0, label=""):
        xs = [loc + scale * rng.normal(size=(N, D)) for _ in range(num_batches)]
        test_param = {"running_mean": loc + rng.normal(size=D), "running_var": scale**2 * rng.uniform(0.5, 2.0, size=D)}
        if "eps" in bn_param:
            test_param["eps"] = bn_param["eps"]
        inputs = {"xs": xs, "gamma": rng.normal(size=D), "beta": rng.normal(size=D), "bn_param": bn_param,
                  "x_test": loc + scale * rng.normal(size=(max(N, 3), D)), "test_param": test_param}
        return Case(inputs, label=label)

    return [
        case(8, 5, 3, {}, loc=2.0, scale=3.0,
             label="N=8, D=5, three batches, every default (eps, momentum, running averages)"),
        case(1, 4, 2, {"momentum": 0.8}, label="a single example per batch (N=1), momentum 0.8"),
        case(20, 1, 4, {"momentum": 0.5, "eps": 1e-3, "running_mean": np.array([1.0]), "running_var": np.array([2.0])},
             label="one feature (D=1), eps=1e-3, given starting running averages"),
        case(6, 3, 2, {"momentum": 0.9}, loc=1000.0, scale=0.1, label="large offsets (1000 +- 0.1)"),
        case(50, 10, 5, {"momentum": 0.99, "eps": 1e-8}, scale=5.0, label="N=50, D=10, five batches, momentum 0.99"),
        case(4, 7, 2, {"momentum": 0.0}, label="momentum 0: the running averages are the last batch's statistics"),
        case(300, 64, 2, {}, loc=-1.0, label="N=300, D=64"),
    ]


def _bn_backward_cases(rng: np.random.Generator) -> list[Case]:
    def case(N, D, loc=0.0, scale=1.0, gamma=None, eps=None, label=""):
        param = {"mode": "train"} if eps is None else {"mode": "train", "eps": eps}
        fwd = {"x": loc + scale * rng.normal(size=(N, D)),
               "gamma": rng.normal(size=D) if gamma is None else gamma, "beta": rng.normal(size=D),
               "bn_param": param}
        return Case({"forward": fwd, "dout": rng.normal(size=(N, D))}, label=label)

    return [
        case(4, 3, label="N=4, D=3"),
        case(1, 5, label="a single example (N=1): every dx is 0"),
        case(30, 1, loc=3.0, label="one feature (D=1)"),
        case(7, 6, loc=1000.0, scale=0.5, label="large offsets (1000 +- 0.5)"),
        case(16, 8, gamma=np.array([0.0, 1.0, -2.0, 0.0, 0.5, 3.0, 1.0, 0.0]), label="gamma with zeros"),
        case(64, 32, scale=4.0, eps=1e-3, label="N=64, D=32, eps=1e-3"),
        case(2, 4, label="two examples (N=2)"),
        case(4096, 64, label="a large batch (N=4096, D=64): no (N, N, D) intermediates"),
    ]


BN_BACKWARD_OUTPUTS = {"out": Tol(compare=False), "dx": Tol(rtol=1e-6, atol=1e-8),
                       "dgamma": Tol(rtol=1e-6, atol=1e-8), "dbeta": Tol(rtol=1e-6, atol=1e-8)}


# --- layer normalisation -------------------------------------------------------------------


def _layernorm_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for shape, param, loc, label in (
        ((4, 5), {}, 0.0, "x (4, 5), default eps"),
        ((1, 3), {"eps": 1e-3}, 0.0, "a single vector (1, 3), eps=1e-3"),
        ((2, 3, 4), {}, 2.0, "a batch of sequences (N=2, T=3, D=4)"),
        ((2, 2, 3, 6), {"mode": "train"}, 0.0, "4-dimensional x (2, 2, 3, 6), ln_param with a mode key"),
        ((3, 1), {}, 0.0, "one feature (D=1): every x_hat is 0"),
        ((5, 8), {"eps": 1e-8}, 500.0, "large offsets (around 500)"),
        ((40, 128), {}, 0.0, "x (40, 128)"),
    ):
        D = shape[-1]
        fwd = {"x": loc + rng.normal(scale=2.0, size=shape), "gamma": rng.normal(size=D), "beta": rng.normal(size=D),
               "ln_param": param}
        cases.append(Case({"forward": fwd}, label=f"forward: {label}", part="forward"))
        cases.append(Case({"forward": fwd, "dout": rng.normal(size=shape)}, label=f"backward: {label}", part="backward"))
    return cases


# --- dropout -----------------------------------------------------------------------------------


def _dropout_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for shape, p, mode, seed, label in (
        ((5, 6), 0.5, "train", 3, "x (5, 6), p=0.5"),
        ((4, 4), 0.0, "train", 1, "p=0: nothing dropped"),
        ((3, 4, 5), 0.9, "train", 12, "x (3, 4, 5), p=0.9"),
        ((4, 4), 0.5, "test", 2, "test mode: the identity"),
        ((1, 7), 0.25, "train", 99, "a single example (N=1), p=0.25"),
        ((200, 50), 0.3, "train", 2024, "x (200, 50), p=0.3"),
    ):
        fwd = {"x": rng.normal(size=shape), "dropout_param": {"p": p, "mode": mode, "seed": seed}}
        cases.append(Case({"forward": fwd}, label=f"forward: {label}", part="forward"))
        cases.append(Case({"forward": fwd, "dout": rng.normal(size=shape)}, label=f"backward: {label}", part="backward"))
    return cases


# --- regularisation ----------------------------------------------------------------------------


def _l2_cases(rng: np.random.Generator) -> list[Case]:
    return [
        Case({"weights": [rng.normal(size=(3, 4)), rng.normal(size=(4, 2))], "reg": 0.1}, label="two matrices, reg=0.1"),
        Case({"weights": [rng.normal(size=5)], "reg": 0.0}, label="reg=0"),
        Case({"weights": [rng.normal(size=(6, 6)), rng.normal(size=(6, 3)), rng.normal(size=(3, 10))], "reg": 2.5},
             label="three matrices, reg=2.5"),
        Case({"weights": [rng.normal(size=(2, 3, 4))], "reg": 0.01}, label="a 3-dimensional array"),
        Case({"weights": [], "reg": 1.0}, label="no weights at all (penalty 0)"),
        Case({"weights": [100.0 * rng.normal(size=(50, 40))], "reg": 1e-4}, label="large weights, small reg"),
    ]


def _early_stopping_cases(rng: np.random.Generator) -> list[Case]:
    noisy = [list(np.round(rng.uniform(0, 1, size=25) + np.linspace(2, 0, 25) ** 2, 2)) for _ in range(3)]
    return [
        Case({"val_losses": [2.0, 1.5, 1.2, 1.0, 0.9], "patience": 1}, label="a curve that always improves"),
        Case({"val_losses": [2.0, 1.0, 1.1, 1.2, 1.3, 1.4, 0.5], "patience": 3},
             label="a minimum, then a rise longer than the patience"),
        Case({"val_losses": [1.0, 1.0, 1.0, 1.0], "patience": 2}, label="a flat curve: equal losses do not improve"),
        Case({"val_losses": [3.0, 2.0, 2.5], "patience": 0}, label="patience 0"),
        Case({"val_losses": [1.0, 0.95, 0.92, 0.91, 0.5, 0.4], "patience": 2, "min_delta": 0.05},
             label="min_delta=0.05"),
        Case({"val_losses": [0.7], "patience": 5}, label="a single epoch"),
        Case({"val_losses": noisy[0], "patience": 2}, label="a noisy curve, 25 epochs, patience 2"),
        Case({"val_losses": noisy[1], "patience": 4}, label="a noisy curve, 25 epochs, patience 4"),
        Case({"val_losses": noisy[2], "patience": 30}, label="patience longer than the curve"),
    ]


def _mixup_cases(rng: np.random.Generator) -> list[Case]:
    def onehot(N, C):
        return np.eye(C)[rng.integers(0, C, size=N)]

    return [
        Case({"x": rng.normal(size=(5, 3)), "y": onehot(5, 4), "lam": 0.3}, label="N=5 (odd), one-hot labels, lam=0.3"),
        Case({"x": rng.normal(size=(1, 6)), "y": onehot(1, 3), "lam": 0.7}, label="a single example (N=1)"),
        Case({"x": rng.normal(size=(4, 1, 3, 3)), "y": onehot(4, 10), "lam": 0.0}, label="images (4, 1, 3, 3), lam=0"),
        Case({"x": rng.normal(size=(6, 2)), "y": onehot(6, 2), "lam": 1.0}, label="lam=1"),
        Case({"x": rng.normal(size=(7, 8)), "y": rng.dirichlet(np.ones(5), size=7), "lam": 0.5},
             label="soft labels, lam=0.5"),
        Case({"x": rng.normal(size=(64, 3, 8, 8)), "y": onehot(64, 10), "lam": float(rng.beta(0.4, 0.4))},
             label="a batch of 64 images, lam from Beta(0.4, 0.4)"),
    ]


def _label_smoothing_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for dtype in ("float64", "float32"):
        for N, C, s, scale, label in (
            (5, 4, 0.1, 2.0, "N=5, C=4, smoothing 0.1"),
            (1, 10, 0.2, 2.0, "a single example (N=1), C=10, smoothing 0.2"),
            (8, 2, 0.0, 2.0, "two classes, smoothing 0 (plain cross-entropy)"),
            (6, 5, 1.0, 2.0, "smoothing 1 (a uniform target)"),
            (4, 3, 0.3, 1000.0, "logits of about +-1000 (stability), smoothing 0.3"),
            (32, 100, 0.1, 3.0, "N=32, C=100, smoothing 0.1"),
        ):
            inputs = {"logits": scale * rng.normal(size=(N, C)), "targets": rng.integers(0, C, size=N),
                      "kwargs": {"smoothing": s}}
            cases.append(Case(inputs, label=f"{label}, {dtype}", dtype=dtype))
    return cases


EXERCISES = [
    Exercise(grade_id="test_batchnorm_forward", name="batchnorm_forward", cases=_bn_forward_cases,
             driver="batchnorm_sequence",
             outputs={"out_train": Tol(rtol=1e-7, atol=1e-8, part="train"),
                      "running_mean": Tol(rtol=1e-7, atol=1e-9, part="running"),
                      "running_var": Tol(rtol=1e-7, atol=1e-9, part="running"),
                      "out_test": Tol(rtol=1e-7, atol=1e-8, part="test")},
             parts={"train": 1, "running": 1, "test": 1}, rules=NUMPY_RULES,
             hint="train: normalise with the batch mean and biased variance (divide by N), then update "
                  "running = momentum * running + (1 - momentum) * batch statistic in bn_param (defaults: "
                  "eps 1e-5, momentum 0.9, running_mean zeros, running_var ones); test: use the running averages"),
    Exercise(grade_id="test_batchnorm_backward", names=("batchnorm_forward", "batchnorm_backward"),
             cases=_bn_backward_cases, driver="forward_backward", outputs=BN_BACKWARD_OUTPUTS, rules=NUMPY_RULES,
             hint="backpropagate through mean, centring, variance, square root and division, adding the "
                  "gradients at the forks; dbeta = dout.sum(0), dgamma = (dout * x_hat).sum(0)"),
    Exercise(grade_id="test_batchnorm_backward_alt", names=("batchnorm_forward", "batchnorm_backward_alt"),
             cases=_bn_backward_cases, driver="forward_backward", outputs=BN_BACKWARD_OUTPUTS, rules=NUMPY_RULES,
             hint="dx = gamma / (N * std) * (N * dout - dbeta - x_hat * dgamma)"),
    Exercise(grade_id="test_layernorm", names=("layernorm_forward", "layernorm_backward"), cases=_layernorm_cases,
             driver="forward_backward",
             outputs={"out": Tol(rtol=1e-7, atol=1e-8, part="forward"), "dx": Tol(rtol=1e-6, atol=1e-8, part="backward"),
                      "dgamma": Tol(rtol=1e-6, atol=1e-8, part="backward"),
                      "dbeta": Tol(rtol=1e-6, atol=1e-8, part="backward")},
             parts={"forward": 1, "backward": 2}, rules=NUMPY_RULES,
             hint="statistics over the last axis with keepdims=True; dgamma and dbeta sum over every vector "
                  "(reshape to (-1, D)); dx as batch norm's simplified formula over the last axis"),
    Exercise(grade_id="test_dropout", names=("dropout_forward", "dropout_backward"), cases=_dropout_cases,
             driver="forward_backward",
             outputs={"out": Tol(rtol=1e-12, atol=1e-12, part="forward"),
                      "dx": Tol(rtol=1e-12, atol=1e-12, part="backward")},
             parts={"forward": 1, "backward": 1}, rules=NUMPY_RULES,
             hint="rng = np.random.default_rng(dropout_param.get('seed')); keep = rng.random(x.shape) >= p; "
                  "out = x * keep / (1 - p) in train mode, x in test mode; dx = dout * keep / (1 - p) (dout in test mode)"),
    Exercise(grade_id="test_l2_penalty", name="l2_penalty", cases=_l2_cases, outputs=("penalty", "grads"),
             rules=(NUMPY_ONLY,), hint="penalty = 0.5 * reg * sum of np.sum(W * W); grads = [reg * W for W in weights]"),
    Exercise(grade_id="test_early_stopping", name="early_stopping", cases=_early_stopping_cases,
             outputs={"best_epoch": Tol(exact=True), "stop_epoch": Tol(exact=True)},
             rules=(Forbid(("torch", "course_utils.training")),),
             hint="epochs count from 1; an improvement is loss < best - min_delta (an equal loss is not one); "
                  "count the epochs in a row without one and stop when that count exceeds patience"),
    Exercise(grade_id="test_mixup", name="mixup", cases=_mixup_cases, outputs=("x_mixed", "y_mixed"),
             rules=(NoLoops(), Forbid(("torch",))),
             hint="lam * x + (1 - lam) * x[::-1], and the same for y"),
    Exercise(grade_id="test_label_smoothing_cross_entropy", name="label_smoothing_cross_entropy",
             cases=_label_smoothing_cases, driver="torch_loss_and_grad", uses_torch=True,
             outputs=("loss", "dlogits"),
             rules=(Forbid(("torch.nn.functional.cross_entropy", "torch.nn.CrossEntropyLoss")),),
             hint="log_probs = torch.log_softmax(logits, dim=-1); loss = mean over the batch of "
                  "(1 - s) * (-log_probs[n, y_n]) + s * (-log_probs[n].mean())"),
]

#: A wrong answer for an exercise no other one calls.
WRONG_ANSWERS = {
    "mixup": "def mixup(x, y, lam):\n"
             "    return lam * x + (1 - lam) * x[::-1], y\n",
}
