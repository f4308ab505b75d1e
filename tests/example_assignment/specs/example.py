"""Hidden tests for the example assignment 99_example (one exercise of every kind).

Used by tests/test_exercise_model.py, which points the grader at this folder
(``COURSE_SOLUTIONS_DIR``; this ``specs/`` folder beside ``solutions/`` is found
by scanning).  CONTRIBUTING.md ("Exercise kinds") explains each kind with these
exercises as the examples.
"""

from __future__ import annotations

import numpy as np

from grader.spec import Case, Decreases, Exercise, NoLoops, Threshold, Tol

ASSIGNMENT = "99_example"


def _blobs(rng, n, d, c, spread=1.0):
    centres = 3.0 * rng.normal(size=(c, d))
    y = rng.integers(0, c, size=n)
    return centres[y] + spread * rng.normal(size=(n, d)), y


# (a) a loss returning (loss, dW): named outputs, each with its tolerance --------


def _svm_cases(rng):
    def case(n, d, c, reg, scale=1.0):
        return {"W": 0.01 * rng.normal(size=(d, c)), "X": scale * rng.normal(size=(n, d)),
                "y": rng.integers(0, c, size=n), "reg": reg}

    return [Case(case(10, 5, 3, 0.1), label="N=10, D=5, C=3"),
            Case(case(1, 4, 2, 0.0), label="a single example, no regularisation"),
            Case(case(30, 8, 10, 1.0, scale=10.0), label="ten classes, large inputs, reg=1")]


# (b) a layer's forward/backward pair, with partial credit --------------------


def _affine_cases(rng):
    out = []
    for n, d, m in ((4, 5, 3), (1, 3, 2), (10, 6, 7)):
        fwd = {"x": rng.normal(size=(n, d)), "w": rng.normal(size=(d, m)), "b": rng.normal(size=m)}
        out.append(Case({"forward": fwd}, label=f"forward, N={n}, D={d}, M={m}", part="forward"))
        out.append(Case({"forward": fwd, "dout": rng.normal(size=(n, m))},
                        label=f"backward, N={n}, D={d}, M={m}", part="backward"))
    return out


# (c) a class trained with seeded minibatch SGD; a rule on one method ----------


def _classifier_cases(rng):
    out = []
    for n, d, c, iters in ((200, 2, 3, 100), (120, 5, 4, 60)):
        X, y = _blobs(rng, n, d, c)
        out.append(Case({"init": {"num_features": d, "num_classes": c},
                         "fit": {"X": X, "y": y, "learning_rate": 1e-2, "reg": 1e-4, "num_iters": iters,
                                 "batch_size": 32},
                         "X": X[:50], "attributes": ["W"]},
                        label=f"{n} points in {c} blobs, D={d}, {iters} iterations"))
    return out


# (d) a torch nn.Module initialised from the seeded generator -----------------


def _mlp_cases(rng):
    out = []
    for dtype in ("float32", "float64"):
        out += [Case({"init": {"in_dim": 4, "hidden_dim": 8, "out_dim": 3},
                      "forward": {"x": rng.normal(size=(5, 4))}}, label="in 4, hidden 8, out 3", dtype=dtype),
                Case({"init": {"in_dim": 10, "hidden_dim": 2, "out_dim": 1},
                      "forward": {"x": rng.normal(size=(1, 10))}}, label="a single row, out 1", dtype=dtype)]
    return out


# (e) a training run judged by a threshold, with no reference comparison --------


def _softmax_cases(rng):
    out = []
    for n, d, c in ((300, 2, 3), (200, 5, 4)):
        X, y = _blobs(rng, n + 200, d, c, spread=0.7)
        X = np.hstack([X, np.ones((len(X), 1))])  # a constant feature: the bias
        out.append(Case({"fit": {"X": X[:n], "y": y[:n], "num_classes": c, "num_iters": 200,
                                 "learning_rate": 0.5},
                         "X_val": X[n:], "y_val": y[n:]}, label=f"{c} blobs in D={d}, 200 held-out points"))
    return out


# (f) a gymnasium agent judged by its mean return over seeded episodes ----------


def _q_cases(rng):
    return [Case({"env_id": "FrozenLake-v1", "env_kwargs": {"is_slippery": False},
                  "train": {"num_episodes": 300, "alpha": 0.5, "gamma": 0.95, "epsilon": 0.2},
                  "eval_episodes": 20}, label="deterministic FrozenLake 4x4", seed=seed)
            for seed in (0, 1)]


EXERCISES = [
    Exercise(grade_id="test_svm_loss", name="svm_loss", cases=_svm_cases,
             outputs={"loss": Tol(rtol=1e-7), "dW": Tol(rtol=1e-6, atol=1e-8)}, rules=(NoLoops(),),
             hint="dW = X.T @ mask / N + 2 * reg * W, where mask holds 1 for every positive margin and "
                  "minus their count in the column of the correct class"),
    Exercise(grade_id="test_affine", names=("affine_forward", "affine_backward"), cases=_affine_cases,
             driver="forward_backward", outputs=("out", "dx", "dw", "db"),
             parts={"forward": 1, "backward": 2},
             hint="dx = dout @ w.T, dw = x.T @ dout, db = dout.sum(axis=0)"),
    Exercise(grade_id="test_linear_classifier", name="LinearClassifier", cases=_classifier_cases,
             driver="fit_predict",
             outputs={"loss_history": Tol(rtol=1e-6), "y_pred": Tol(exact=True), "W": Tol(rtol=1e-6, atol=1e-10)},
             checks=(Decreases("loss_history"),), rules=(NoLoops(target="predict"),), uses=("svm_loss",),
             hint="draw idx = np.random.choice(N, batch_size) once per iteration, before computing the loss"),
    Exercise(grade_id="test_tiny_mlp", name="TinyMLP", cases=_mlp_cases, driver="torch_module", uses_torch=True,
             outputs={"out": Tol(), "num_parameters": Tol(exact=True), "parameters": Tol(exact=True)},
             memory_mb=6144,
             hint="create fc1 before fc2: the order decides which random numbers each layer gets"),
    Exercise(grade_id="test_softmax_accuracy", names=("train_softmax", "predict_softmax"),
             cases=_softmax_cases, driver="fit_accuracy", compare=None, outputs=("accuracy",),
             checks=(Threshold("accuracy", ">=", 0.85, text="accuracy on held-out data of at least 0.85"),),
             hint="subtract the row maximum before np.exp; the gradient is X.T @ (P - Y) / N"),
    Exercise(grade_id="test_q_learning", name="q_learning", cases=_q_cases, driver="gym_policy",
             compare=None, outputs=("mean_return", "returns"), timeout=120,
             checks=(Threshold("mean_return", ">=", 0.9,
                               text="mean return of at least 0.9 over 20 evaluation episodes"),),
             hint="break ties between equal Q values at random, or the greedy choice always goes left"),
]

# Deliberately wrong answers: each costs exactly the points of its own exercise (or part).
WRONG_ANSWERS = {
    "svm_loss": "def svm_loss(W, X, y, reg):\n"
                "    N = X.shape[0]\n"
                "    rows = np.arange(N)\n"
                "    scores = X @ W\n"
                "    margins = np.maximum(0.0, scores - scores[rows, y][:, None] + 1.0)\n"
                "    margins[rows, y] = 0.0\n"
                "    mask = (margins > 0).astype(X.dtype)\n"
                "    mask[rows, y] = -mask.sum(axis=1)\n"
                "    return margins.sum() / N + reg * np.sum(W * W), X.T @ mask / N\n",
    "affine_backward": "def affine_backward(dout, cache):\n"
                       "    x, w = cache\n"
                       "    return dout @ w.T, x.T @ dout, dout.mean(axis=0)\n",
}
