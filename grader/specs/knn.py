"""Hidden tests for 01_knn (solutions/01_knn/knn.ipynb).

The distance functions get the same cases: several shapes (one test point, one
training point, one feature, non-square), large values (cancellation in the
expanded formula of the no-loop version), and test points identical to training
points (zero distances; integer-valued so that every formula gives exactly 0, and
float-valued where the no-loop version must clamp rounding below zero before the
square root, which its looser ``atol`` allows for).

The no-loop version also gets a case the size of CIFAR-10 (500 test points, 5000
training points, D=3072 pixel values; float64 inputs of about 135 MB): the
matrix-product solution computes it in well under a second with little more
memory than the (500, 5000) result, while a solution that builds the
(num_test, num_train, D) array of differences (61 GB) fails the worker's memory
limit (3 GB by default).  The notebook states this next to the exercise.  The L1
version, which is meant to broadcast, stays on the small cases.

The loop versions have a loop budget (``AtMostLoops``: two for the two-loop
version, one for the one-loop version), the same count the visible self-checks make.

``predict_labels`` is checked on integer-valued distances where ties are common:
the notebook fixes the rule (equal distances: smaller training index first; tied
votes: smallest label).  ``knn_cross_validate`` folds the data in order with
``np.array_split``, so its results are deterministic; it is graded with the
reference ``compute_distances_no_loops`` and ``predict_labels`` in place of the
student's (``uses``), so a mistake in those costs only their own exercises.
"""

from __future__ import annotations

import numpy as np

from course_utils.rules import AtMostLoops
from grader.spec import Case, Exercise, Forbid, NoLoops

ASSIGNMENT = "01_knn"


NO_LIBRARY_DISTANCES = Forbid(("np.linalg.norm", "scipy", "sklearn"))
NO_LIBRARIES = Forbid(("scipy", "sklearn"))


# --- case generators ------------------------------------------------------------


def _distance_cases(rng: np.random.Generator) -> list[Case]:
    def pair(num_train, num_test, D, scale=1.0, offset=0.0):
        return {
            "X_train": offset + scale * rng.normal(size=(num_train, D)),
            "X_test": offset + scale * rng.normal(size=(num_test, D)),
        }

    pixels_train = rng.integers(0, 256, size=(15, 12)).astype(np.float64)
    pixels_test = np.concatenate(
        [pixels_train[[3, 7, 7, 14]], rng.integers(0, 256, size=(3, 12)).astype(np.float64)]
    )
    floats_train = rng.normal(size=(12, 6))
    floats_test = np.concatenate([floats_train, rng.normal(size=(3, 6))])[rng.permutation(15)]
    return [
        Case(pair(20, 8, 5), label="8 test points, 20 training points, D=5"),
        Case(pair(13, 1, 7), label="a single test point (num_test=1)"),
        Case(pair(1, 6, 4), label="a single training point (num_train=1)"),
        Case(pair(9, 5, 1), label="one feature (D=1)"),
        Case(pair(10, 10, 3), label="as many test as training points"),
        Case(pair(15, 6, 30, scale=1.0, offset=1e3), label="values around 1e3 with small differences"),
        Case(pair(12, 5, 3, scale=1e3), label="large values of both signs (scale 1e3)"),
        Case(
            {"X_train": pixels_train, "X_test": pixels_test},
            label="integer pixel values 0..255, some test points equal to training points",
        ),
        Case(
            {"X_train": floats_train, "X_test": floats_test},
            label="every training point also appears as a test point (zero distances)",
        ),
        Case(
            {
                "X_train": rng.integers(0, 17, size=(40, 64)).astype(np.float64),
                "X_test": rng.integers(0, 17, size=(10, 64)).astype(np.float64),
            },
            label="digit-like rows of 64 values 0..16",
        ),
    ]


CIFAR_SIZED = {"num_test": 500, "num_train": 5000, "D": 3072}


def _no_loop_distance_cases(rng: np.random.Generator) -> list[Case]:
    big = {
        "X_train": rng.integers(0, 256, size=(CIFAR_SIZED["num_train"], CIFAR_SIZED["D"])).astype(np.float64),
        "X_test": rng.integers(0, 256, size=(CIFAR_SIZED["num_test"], CIFAR_SIZED["D"])).astype(np.float64),
    }
    return _distance_cases(rng) + [
        Case(big, label="the size of CIFAR-10: 500 test points, 5000 training points, D=3072 pixel values "
             "(a (num_test, num_train, D) array would not fit in memory)"),
    ]


def _predict_cases(rng: np.random.Generator) -> list[Case]:
    def case(num_test, num_train, num_classes, k, integer_dists=False, classes=None):
        if integer_dists:
            dists = rng.integers(0, 4, size=(num_test, num_train)).astype(np.float64)
        else:
            dists = rng.uniform(0, 10, size=(num_test, num_train))
        labels = np.arange(num_classes) if classes is None else np.asarray(classes)
        return {"dists": dists, "y_train": labels[rng.integers(0, len(labels), size=num_train)], "k": k}

    return [
        Case(case(10, 30, 4, 1), label="k=1 (nearest neighbour), 10 test points, 30 training points"),
        Case(case(12, 40, 3, 5), label="k=5, three classes"),
        Case(case(25, 60, 10, 7), label="k=7, ten classes"),
        Case(case(1, 20, 3, 3), label="a single test point (num_test=1)"),
        Case(case(5, 1, 3, 1), label="a single training point (num_train=1, k=1)"),
        Case(case(6, 9, 3, 9), label="k equal to num_train: every training point votes"),
        Case(case(6, 8, 2, 8), label="k equal to num_train with two classes (tied votes likely)"),
        Case(case(15, 20, 5, 2), label="k=2: two different labels tie, the smallest must win"),
        Case(case(20, 25, 2, 4), label="even k with two classes (many tied votes)"),
        Case(
            case(15, 40, 3, 3, integer_dists=True),
            label="integer distances with many equal values: ties broken by training index",
        ),
        Case(
            case(20, 50, 4, 8, integer_dists=True),
            label="integer distances, k=8: equal distances and tied votes together",
        ),
        Case(case(12, 30, 3, 5, classes=[2, 5, 9]), label="labels that are not 0..C-1"),
    ]


def _cv_cases(rng: np.random.Generator) -> list[Case]:
    def blobs(N, D, num_classes, spread=1.0):
        centres = 2.0 * rng.normal(size=(num_classes, D))
        y = rng.integers(0, num_classes, size=N)
        return centres[y] + spread * rng.normal(size=(N, D)), y

    X_even, y_even = blobs(40, 3, 3)
    X_uneven, y_uneven = blobs(23, 2, 2, spread=1.5)
    X_loo, y_loo = blobs(8, 2, 2)
    X_int = rng.integers(0, 3, size=(30, 4)).astype(np.float64)
    y_int = rng.integers(0, 2, size=30)
    X_sorted, y_sorted = blobs(12, 2, 2, spread=2.0)
    order = np.argsort(y_sorted, kind="stable")
    X_pix = rng.integers(0, 17, size=(50, 64)).astype(np.float64)
    y_pix = rng.integers(0, 10, size=50)
    return [
        Case(
            {"X": X_even, "y": y_even, "k_choices": [1, 3, 5, 8], "num_folds": 4},
            label="N=40, four equal folds, k in 1..8",
        ),
        Case(
            {"X": X_uneven, "y": y_uneven, "k_choices": [1, 2, 7], "num_folds": 5},
            label="N=23, five folds of unequal size",
        ),
        Case(
            {"X": X_loo, "y": y_loo, "k_choices": [1, 3], "num_folds": 8},
            label="leave-one-out (num_folds = N = 8)",
        ),
        Case(
            {"X": X_int, "y": y_int, "k_choices": [1, 2, 4, 6], "num_folds": 3},
            label="integer features: many equal distances and tied votes",
        ),
        Case(
            {"X": X_sorted[order], "y": y_sorted[order], "k_choices": [1, 5], "num_folds": 2},
            label="data sorted by class (folds must follow the given order, no shuffling)",
        ),
        Case(
            {"X": X_pix, "y": y_pix, "k_choices": [10, 1, 3], "num_folds": 5},
            label="digit-like rows of 64 values, k_choices not sorted",
        ),
    ]


EXERCISES = [
    Exercise(
        grade_id="test_compute_distances_two_loops",
        name="compute_distances_two_loops",
        cases=_distance_cases,
        rules=(AtMostLoops(2), NO_LIBRARY_DISTANCES),
        hint="dists[i, j] = np.sqrt(np.sum((X_test[i] - X_train[j]) ** 2)); rows index test points, "
        "columns training points",
    ),
    Exercise(
        grade_id="test_compute_distances_one_loop",
        name="compute_distances_one_loop",
        cases=_distance_cases,
        rules=(AtMostLoops(1), NO_LIBRARY_DISTANCES),
        hint="dists[i] = np.sqrt(np.sum((X_train - X_test[i]) ** 2, axis=1)): X_test[i] is broadcast "
        "against every row of X_train",
    ),
    Exercise(
        grade_id="test_compute_distances_no_loops",
        name="compute_distances_no_loops",
        cases=_no_loop_distance_cases,
        atol=1e-6,
        rules=(NoLoops(), NO_LIBRARY_DISTANCES),
        hint="(num_test, 1) squared norms + (1, num_train) squared norms - 2 * X_test @ X_train.T; "
        "clamp with np.maximum(..., 0) before np.sqrt, or identical points give nan",
    ),
    Exercise(
        grade_id="test_compute_distances_l1",
        name="compute_distances_l1",
        cases=_distance_cases,
        rules=(NoLoops(), NO_LIBRARY_DISTANCES),
        hint="X_test[:, None, :] - X_train[None, :, :] has shape (num_test, num_train, D); take np.abs "
        "and sum over the last axis",
    ),
    Exercise(
        grade_id="test_predict_labels",
        name="predict_labels",
        cases=_predict_cases,
        compare="exact",
        rules=(NO_LIBRARIES,),
        hint="np.argsort(dists[i], kind='stable')[:k] gives the k nearest with equal distances in index "
        "order; np.bincount(labels).argmax() gives the most frequent label, the smallest on a "
        "tie; return int64 labels of shape (num_test,)",
    ),
    Exercise(
        grade_id="test_knn_cross_validate",
        name="knn_cross_validate",
        cases=_cv_cases,
        rules=(NO_LIBRARIES,),
        # Graded with the reference distance and vote, so that a mistake in those
        # is charged once, in their own exercises (the notebook says so).
        uses=("compute_distances_no_loops", "predict_labels"),
        hint="folds = np.array_split(X, num_folds) (and y), in order, no shuffling; for fold f train on "
        "np.concatenate of the other folds, call compute_distances_no_loops once, then "
        "predict_labels for each k; store float(np.mean(y_pred == y_fold)) in results[k]",
    ),
]


# A deliberately wrong answer (tests and benchmarks submit it): no other exercise calls it.
WRONG_ANSWERS = {
    "compute_distances_two_loops": "def compute_distances_two_loops(X_train, X_test):\n"
                                   "    return np.zeros((len(X_test), len(X_train)))\n",
}
