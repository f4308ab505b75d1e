"""Hidden tests for 00_tensors (solutions/00_tensors/tensors.ipynb).

Every exercise here must be vectorised: ``NoLoops`` covers the graded function
and the helpers it calls.  ``batched_matmul`` must build the product from
broadcasting and a sum, so it may not call a matrix-product routine nor use the
``@`` operator (``NoMatrixProducts`` below, checked on the source like every
rule).  ``quadratic_loss_grad`` must get its gradient from autograd.
"""

from __future__ import annotations

import numpy as np

from course_utils.rules import MATMUL_FUNCTIONS, NoMatrixProducts, UsesAutograd
from grader.spec import Case, Exercise, Forbid, NoLoops

ASSIGNMENT = "00_tensors"

# --- case generators ------------------------------------------------------------


def _one_hot_cases(rng: np.random.Generator) -> list[Case]:
    return [
        Case({"labels": rng.integers(0, 5, size=12), "num_classes": 5}, label="12 labels, 5 classes"),
        Case({"labels": np.array([3]), "num_classes": 4}, label="a single label (N=1)"),
        Case({"labels": np.array([0, 0, 2, 2, 0]), "num_classes": 7},
             label="more classes than labels used (unused columns stay zero)"),
        Case({"labels": rng.integers(0, 10, size=300).astype(np.int32), "num_classes": 10},
             label="300 int32 labels, 10 classes"),
        Case({"labels": np.array([1, 0, 1]), "num_classes": 2}, label="two classes"),
        Case({"labels": np.array([0, 1, 5, 2]), "num_classes": 5},
             label="a label equal to num_classes (must raise ValueError)"),
        Case({"labels": np.array([2, -1, 0]), "num_classes": 3},
             label="a negative label (must raise ValueError)"),
    ]


def _normalize_cases(rng: np.random.Generator) -> list[Case]:
    mixed = rng.normal(size=(9, 4)) * np.array([1.0, 10.0, 0.01, 3.0]) + np.array([0.0, -5.0, 2.0, 100.0])
    const = rng.normal(size=(8, 5))
    const[:, 1] = 3.0
    const[:, 3] = 0.0
    rounding = rng.uniform(0, 1, size=(7, 4))
    rounding[:, 0] = 0.1    # the mean of seven 0.1s is not exactly 0.1 in floating point
    rounding[:, 2] = 7.7
    return [
        Case({"X": rng.normal(size=(20, 6))}, label="20x6 standard normal"),
        Case({"X": mixed}, label="columns with very different scales and offsets"),
        Case({"X": const}, label="integer-valued constant columns (become zeros)"),
        Case({"X": rounding}, label="constant columns whose values are not exact in binary (become zeros)"),
        Case({"X": rng.normal(size=(1, 5))}, label="a single row (N=1): every column is constant"),
        Case({"X": rng.integers(0, 256, size=(50, 3)).astype(np.float64)}, label="pixel-like values 0..255"),
        Case({"X": rng.normal(size=(12, 1)) * 1e3 + 1e3}, label="a single column (D=1), large values"),
    ]


def _flatten_cases(rng: np.random.Generator) -> list[Case]:
    def img(*shape):
        return rng.integers(0, 256, size=shape, dtype=np.uint8)

    extremes = img(2, 3, 3, 3)
    extremes[0] = 0
    extremes[1] = 255
    return [
        Case({"images": img(4, 32, 32, 3)}, label="4 CIFAR-sized images 32x32x3"),
        Case({"images": img(1, 5, 5, 3)}, label="a single image (N=1)"),
        Case({"images": img(3, 4, 7, 3)}, label="non-square images (H != W)"),
        Case({"images": img(5, 6, 6, 1)}, label="grey-scale images (C=1)"),
        Case({"images": img(2, 3, 2, 4)}, label="four channels (C=4)"),
        Case({"images": extremes}, label="all-black and all-white images"),
    ]


def _batched_matmul_cases(rng: np.random.Generator) -> list[Case]:
    out = []
    for dtype in ("float64", "float32"):
        out += [
            Case({"A": rng.normal(size=(4, 3, 5)), "B": rng.normal(size=(4, 5, 2))},
                 label="B=4, (3x5)(5x2)", dtype=dtype),
            Case({"A": rng.normal(size=(1, 6, 6)), "B": rng.normal(size=(1, 6, 6))},
                 label="a single square pair (B=1)", dtype=dtype),
            Case({"A": rng.normal(size=(3, 1, 7)), "B": rng.normal(size=(3, 7, 1))},
                 label="row times column (N=P=1)", dtype=dtype),
            Case({"A": rng.normal(size=(2, 4, 1)), "B": rng.normal(size=(2, 1, 3))},
                 label="outer products (M=1)", dtype=dtype),
            Case({"A": rng.uniform(-10, 10, size=(8, 16, 9)), "B": rng.uniform(-10, 10, size=(8, 9, 12))},
                 label="B=8, (16x9)(9x12), larger values", dtype=dtype),
        ]
    return out


def _pairwise_cases(rng: np.random.Generator) -> list[Case]:
    X = rng.normal(size=(6, 3))
    return [
        Case({"X": rng.normal(size=(5, 4)), "Y": rng.normal(size=(7, 4))}, label="N=5, M=7, D=4"),
        Case({"X": rng.normal(size=(1, 3)), "Y": rng.normal(size=(9, 3))}, label="a single query row (N=1)"),
        Case({"X": rng.normal(size=(8, 2)), "Y": rng.normal(size=(1, 2))}, label="a single reference row (M=1)"),
        Case({"X": X, "Y": X[::-1].copy()}, label="the same points in another order (zero distances)"),
        Case({"X": rng.normal(size=(4, 1)), "Y": rng.normal(size=(3, 1))}, label="one feature (D=1)"),
        Case({"X": rng.integers(0, 17, size=(10, 64)).astype(np.float64),
              "Y": rng.integers(0, 17, size=(12, 64)).astype(np.float64)},
             label="digit-like 64-pixel rows with values 0..16"),
    ]


def _quadratic_cases(rng: np.random.Generator) -> list[Case]:
    def problem(n, d, scale=1.0):
        X = rng.normal(size=(n, d)) * scale
        return {"w": rng.normal(size=d), "X": X, "y": X @ rng.normal(size=d) + rng.normal(size=n)}

    zero_w = problem(10, 3)
    zero_w["w"] = np.zeros(3)
    exact = problem(6, 2)
    exact["y"] = exact["X"] @ exact["w"]
    out = []
    for dtype in ("float64", "float32"):
        out += [
            Case(problem(20, 4), label="N=20, D=4", dtype=dtype),
            Case(problem(1, 3), label="a single example (N=1)", dtype=dtype),
            Case(problem(15, 1), label="one feature (D=1)", dtype=dtype),
            Case(zero_w, label="w = 0", dtype=dtype),
            Case(exact, label="w fits y exactly (zero loss and gradient)", dtype=dtype),
            Case(problem(30, 5, scale=10.0), label="larger inputs", dtype=dtype),
        ]
    return out


def _sgd_cases(rng: np.random.Generator) -> list[Case]:
    def problem(shapes, lr, num_steps, used=None):
        inputs = {"params": [rng.normal(size=s) for s in shapes],
                  "weights": [rng.uniform(0.5, 2.0, size=s) for s in shapes],
                  "lr": lr, "num_steps": num_steps}
        if used is not None:
            inputs["used"] = used
        return inputs

    out = []
    for dtype in ("float64", "float32"):
        out += [
            Case(problem([(3, 2), (2,)], 0.1, 1), label="one step on a weight matrix and a bias",
                 dtype=dtype),
            Case(problem([(4,)], 0.05, 3), label="three steps in a row (grads must be cleared between steps)",
                 dtype=dtype),
            Case(problem([(2, 2), (3,), (1,)], 0.3, 5), label="five steps, three tensors", dtype=dtype),
            Case(problem([(3,), (2,)], 0.1, 2, used=[True, False]),
                 label="a tensor the loss does not use (its .grad is None: leave it unchanged)", dtype=dtype),
            Case(problem([(5,)], 0.0, 2), label="lr = 0 (values unchanged, grads still cleared)", dtype=dtype),
        ]
    return out


EXERCISES = [
    Exercise(grade_id="test_one_hot", name="one_hot", cases=_one_hot_cases, driver="call_numpy_strict",
             compare="exact", rules=(NoLoops(),),
             hint="compare labels[:, None] with np.arange(num_classes), or write ones at (row, label) "
                  "positions with integer-array indexing; return float64, and raise ValueError "
                  "(before building anything) when a label is < 0 or >= num_classes"),
    Exercise(grade_id="test_normalize_columns", name="normalize_columns", cases=_normalize_cases,
             driver="call_numpy_strict", rules=(NoLoops(),),
             hint="use X.mean(axis=0) and the population std X.std(axis=0) (ddof=0); don't modify X in "
                  "place; a column of equal values must give zeros even when rounding makes its std "
                  "1e-17 rather than 0 (detect it with np.all(X == X[0], axis=0) or a small threshold)"),
    Exercise(grade_id="test_flatten_images", name="flatten_images", cases=_flatten_cases,
             driver="call_numpy_strict", rules=(NoLoops(),),
             hint="reshape to (N, H*W*C) in row-major (C) order, convert to float64, divide by 255"),
    Exercise(grade_id="test_batched_matmul", name="batched_matmul", cases=_batched_matmul_cases,
             driver="call_torch", uses_torch=True, atol=1e-4,  # float32 sums in another order differ by ~1e-5
             rules=(NoLoops(), Forbid(MATMUL_FUNCTIONS), NoMatrixProducts()),
             hint="A[:, :, :, None] * B[:, None, :, :] has shape (K, N, M, P); sum over the M axis; "
                  "keep the inputs' device and dtype"),
    Exercise(grade_id="test_pairwise_sq_distances", name="pairwise_sq_distances", cases=_pairwise_cases,
             driver="call_numpy_strict", atol=1e-8,
             rules=(NoLoops(), Forbid(("scipy", "sklearn", "np.linalg.norm"))),
             hint="X[:, None, :] - Y[None, :, :] has shape (N, M, D); square and sum over the last axis"),
    Exercise(grade_id="test_quadratic_loss_grad", name="quadratic_loss_grad", cases=_quadratic_cases,
             driver="call_torch_pure", uses_torch=True, rules=(NoLoops(), UsesAutograd()),
             hint="work on w.detach().clone().requires_grad_(True), never on the caller's w; "
                  "loss = ((X @ w - y) ** 2).mean(); loss.backward(); return (loss.detach(), w.grad)"),
    Exercise(grade_id="test_sgd_step", name="sgd_step", cases=_sgd_cases, driver="sgd_steps",
             uses_torch=True,
             hint="inside `with torch.no_grad():`, for each p with a .grad: p -= lr * p.grad (in place), "
                  "then p.grad = None (or p.grad.zero_()); skip tensors whose .grad is None; return None"),
]


# A deliberately wrong answer (tests and benchmarks submit it): no other exercise calls it.
WRONG_ANSWERS = {
    "one_hot": "def one_hot(labels, num_classes):\n    return np.zeros((len(labels), num_classes))\n",
}
