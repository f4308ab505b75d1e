"""Hidden tests for 02_linear_classifiers (solutions/02_linear_classifiers/linear_classifiers.ipynb).

The four loss functions get the same small cases, through the ``loss_and_gradient``
driver, which returns the loss, the gradient ``dW`` and whether ``W`` was left as it
was: several shapes (one example, two classes, one feature), ``reg = 0`` and
``reg > 0``, scores around 1e3 (where ``np.exp`` overflows unless the maximum score
is subtracted first), score differences of several hundred (where some probabilities
underflow to 0, so the softmax loss must come from the log-sum-exp, not from
``np.log`` of a probability), and integer-valued data on which many margins
``s_j - s_{y_i} + 1`` are exactly 0. The notebook fixes the subgradient there: a margin
counts (adds to the loss and to the gradient) only when it is ``> 0``.

The vectorized versions also get a case the size of CIFAR-100 (N=4000 images,
D=3073 with the bias, C=100 classes; X is 98 MB): the matrix-product solution needs a
few (N, C) arrays, while building an (N, C, D) array (9.8 GB) fails the worker's 3 GB
memory limit. The notebook states this next to the exercises.

``train_linear_classifier`` is graded with a loss function of the driver's own (a
softmax loss, or half the squared error to one-hot targets), not with the student's
losses, so a mistake in a loss is charged once. The driver passes
``rng = np.random.default_rng(seed)``; the notebook fixes the sampling call,
``rng.choice(N, batch_size, replace=True)``, so the minibatches, hence the weights,
are reproducible.

``predict_linear_classifier`` is checked exactly, with integer-valued data whose
scores tie (the smallest class index wins, as ``np.argmax`` does).
"""

from __future__ import annotations

import numpy as np

from grader.spec import Case, Exercise, Forbid, NoLoops, Tol

ASSIGNMENT = "02_linear_classifiers"

NO_LIBRARIES = Forbid(("scipy", "sklearn", "torch"))

CIFAR100_SIZED = {"N": 4000, "D": 3073, "C": 100}


# --- case generators ------------------------------------------------------------


def _loss_inputs(rng, N, D, C, reg=0.0, scale=1.0, w_scale=0.1):
    return {"W": w_scale * rng.normal(size=(D, C)), "X": scale * rng.normal(size=(N, D)),
            "y": rng.integers(0, C, size=N), "reg": reg}


def _large_scores(rng, N, D, C, reg):
    """Every score near 1e3 (a bias column of ones and a bias row near 1000), differences of order 1."""
    inputs = _loss_inputs(rng, N, D, C, reg=reg, w_scale=0.5)
    inputs["X"][:, -1] = 1.0
    inputs["W"][-1] = 1000.0 + rng.normal(size=C)
    return inputs


def _tie_inputs(rng, N, D, C, reg):
    """Integer scores: many margins s_j - s_y + 1 are exactly 0."""
    return {"W": rng.integers(-1, 2, size=(D, C)).astype(np.float64),
            "X": rng.integers(-1, 2, size=(N, D)).astype(np.float64),
            "y": rng.integers(0, C, size=N), "reg": reg}


def _loss_cases(rng: np.random.Generator) -> list[Case]:
    digits_like = _loss_inputs(rng, 40, 65, 10, reg=0.05)
    digits_like["X"][:, -1] = 1.0  # the bias column
    return [
        Case(_loss_inputs(rng, 8, 5, 3), label="N=8, D=5, C=3, reg=0"),
        Case(_loss_inputs(rng, 12, 6, 4, reg=0.1), label="N=12, D=6, C=4, reg=0.1"),
        Case(_loss_inputs(rng, 1, 4, 3, reg=0.01), label="a single example (N=1)"),
        Case(_loss_inputs(rng, 9, 3, 2, reg=0.2), label="two classes (C=2)"),
        Case(_loss_inputs(rng, 7, 1, 4), label="one feature (D=1)"),
        Case(_large_scores(rng, 10, 4, 5, reg=0.0),
             label="scores around 1e3 with small differences (np.exp overflows unless the maximum is "
             "subtracted first)"),
        Case(_loss_inputs(rng, 10, 4, 5, reg=1e-4, scale=1.0, w_scale=3e2),
             label="score differences of several hundred (some probabilities underflow to 0: "
             "take the loss from the log-sum-exp)"),
        Case(_tie_inputs(rng, 30, 4, 4, 0.0), label="integer data: many margins exactly 0, reg=0"),
        Case(_tie_inputs(rng, 25, 3, 5, 0.5), label="integer data: many margins exactly 0, reg=0.5"),
        Case(digits_like, label="digit-sized: N=40, D=65 (with bias), C=10, reg=0.05"),
        Case({"W": np.zeros((6, 4)), "X": rng.normal(size=(15, 6)), "y": rng.integers(0, 4, size=15),
              "reg": 0.3}, label="W all zeros (every score equal)"),
    ]


def _vectorized_loss_cases(rng: np.random.Generator) -> list[Case]:
    n, d, c = CIFAR100_SIZED["N"], CIFAR100_SIZED["D"], CIFAR100_SIZED["C"]
    X = rng.normal(size=(n, d))
    X[:, -1] = 1.0
    big = {"W": 1e-3 * rng.normal(size=(d, c)), "X": X, "y": rng.integers(0, c, size=n), "reg": 1e-3}
    return _loss_cases(rng) + [
        Case(big, label="the size of CIFAR-100: N=4000, D=3073, C=100 "
             "(an (N, C, D) array would not fit in memory)"),
    ]


def _train_cases(rng: np.random.Generator) -> list[Case]:
    def case(loss, N, D, C, lr, reg, num_iters, batch_size, seed):
        X = rng.normal(size=(N, D))
        X[:, -1] = 1.0
        return {"loss": loss, "W": 0.01 * rng.normal(size=(D, C)), "X": X, "y": rng.integers(0, C, size=N),
                "learning_rate": lr, "reg": reg, "num_iters": num_iters, "batch_size": batch_size,
                "seed": seed}

    return [
        Case(case("softmax", 50, 5, 3, 0.5, 0.0, 20, 10, 0), label="softmax loss, 20 iterations, batch 10"),
        Case(case("softmax", 80, 8, 4, 0.1, 0.01, 35, 16, 1), label="softmax loss with reg > 0"),
        Case(case("square", 40, 4, 3, 0.05, 0.001, 25, 8, 2), label="squared-error loss, 25 iterations"),
        Case(case("softmax", 30, 3, 2, 1.0, 0.0, 1, 5, 3), label="a single iteration"),
        Case(case("softmax", 6, 3, 3, 0.3, 0.0, 10, 20, 4),
             label="batch_size larger than N (sampling with replacement)"),
        Case(case("square", 20, 6, 5, 0.02, 0.1, 15, 1, 5), label="batch_size 1"),
        Case(case("softmax", 200, 65, 10, 0.5, 1e-3, 60, 32, 6), label="digit-sized data, 60 iterations"),
    ]


def _predict_cases(rng: np.random.Generator) -> list[Case]:
    def case(N, D, C):
        return {"W": rng.normal(size=(D, C)), "X": rng.normal(size=(N, D))}

    def ties(N, D, C):
        return {"W": rng.integers(-1, 2, size=(D, C)).astype(np.float64),
                "X": rng.integers(-1, 2, size=(N, D)).astype(np.float64)}

    return [
        Case(case(20, 5, 3), label="N=20, D=5, C=3"),
        Case(case(1, 4, 6), label="a single example (N=1)"),
        Case(case(10, 3, 2), label="two classes"),
        Case(case(8, 1, 4), label="one feature (D=1)"),
        Case(ties(40, 3, 5), label="integer data with tied scores (the smallest class index wins)"),
        Case({"W": np.zeros((4, 3)), "X": rng.normal(size=(5, 4))}, label="W all zeros (every score tied)"),
    ]


# Named outputs (the drivers return dicts with these keys): feedback names what differs.
LOSS_OUTPUTS = {"loss": Tol(), "dW": Tol(), "W_unchanged": Tol(exact=True)}
TRAIN_OUTPUTS = {"W": Tol(), "loss_history": Tol(), "num_loss_calls": Tol(exact=True),
                 "batch_sizes": Tol(exact=True), "W_unchanged": Tol(exact=True)}

EXERCISES = [
    Exercise(
        grade_id="test_svm_loss_naive",
        name="svm_loss_naive",
        cases=_loss_cases,
        driver="loss_and_gradient",
        outputs=LOSS_OUTPUTS,
        rules=(NO_LIBRARIES,),
        hint="for each example i and each class j != y[i]: margin = scores[j] - scores[y[i]] + 1; if "
        "margin > 0 add it to the loss, add X[i] to dW[:, j] and subtract X[i] from dW[:, y[i]]; divide "
        "loss and dW by N, then add reg * np.sum(W * W) and 2 * reg * W",
    ),
    Exercise(
        grade_id="test_svm_loss_vectorized",
        name="svm_loss_vectorized",
        cases=_vectorized_loss_cases,
        driver="loss_and_gradient",
        outputs=LOSS_OUTPUTS,
        rules=(NoLoops(), NO_LIBRARIES),
        hint="margins = scores - correct[:, None] + 1 with margins[rows, y] = 0; mask = (margins > 0); "
        "the coefficient of the correct class is -mask.sum(axis=1); dW = X.T @ coeff / N + 2 * reg * W",
    ),
    Exercise(
        grade_id="test_softmax_loss_naive",
        name="softmax_loss_naive",
        cases=_loss_cases,
        driver="loss_and_gradient",
        outputs=LOSS_OUTPUTS,
        rules=(NO_LIBRARIES,),
        hint="for each example: shift the scores by their maximum, p = exp(s) / sum(exp(s)), "
        "loss -= log(p[y[i]]), dW += np.outer(X[i], p - onehot(y[i])); divide by N and add the "
        "regularisation",
    ),
    Exercise(
        grade_id="test_softmax_loss_vectorized",
        name="softmax_loss_vectorized",
        cases=_vectorized_loss_cases,
        driver="loss_and_gradient",
        outputs=LOSS_OUTPUTS,
        rules=(NoLoops(), NO_LIBRARIES),
        hint="scores - scores.max(axis=1, keepdims=True) before np.exp; probs[rows, y] -= 1 gives the "
        "gradient of the scores; dW = X.T @ dscores / N + 2 * reg * W",
    ),
    Exercise(
        grade_id="test_train_linear_classifier",
        name="train_linear_classifier",
        cases=_train_cases,
        driver="train_linear",
        outputs=TRAIN_OUTPUTS,
        rules=(NO_LIBRARIES,),
        hint="per iteration: idx = rng.choice(N, batch_size, replace=True); loss, grad = "
        "loss_fn(W, X[idx], y[idx], reg); append float(loss); W = W - learning_rate * grad (a new "
        "array: never update the caller's W in place)",
    ),
    Exercise(
        grade_id="test_predict_linear_classifier",
        name="predict_linear_classifier",
        cases=_predict_cases,
        driver="predict_labels_strict",
        outputs={"y_pred": Tol(exact=True), "integer_dtype": Tol(exact=True)},
        compare="exact",
        rules=(NoLoops(), NO_LIBRARIES),
        hint="np.argmax(X @ W, axis=1): the first maximum, i.e. the smallest class index on ties",
    ),
]


# A deliberately wrong answer for the test suite and the scale benchmark: the hinge loss right,
# but the regularisation left out of the gradient, so only the cases with reg > 0 fail.
WRONG_ANSWERS = {
    "svm_loss_naive": "def svm_loss_naive(W, X, y, reg):\n"
                      "    loss, dW = 0.0, np.zeros_like(W)\n"
                      "    for i in range(X.shape[0]):\n"
                      "        scores = X[i] @ W\n"
                      "        for j in range(W.shape[1]):\n"
                      "            margin = scores[j] - scores[y[i]] + 1.0\n"
                      "            if j != y[i] and margin > 0:\n"
                      "                loss += margin\n"
                      "                dW[:, j] += X[i]\n"
                      "                dW[:, y[i]] -= X[i]\n"
                      "    return loss / X.shape[0] + reg * np.sum(W * W), dW / X.shape[0]\n",
}
