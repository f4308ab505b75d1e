"""01_knn's no-loop distances are graded on a CIFAR-10-sized case.

A solution that builds the (num_test, num_train, D) array of differences cannot
fit that case in the worker's memory limit; the intended matrix-product solution
computes it quickly and in little memory.  The L1 exercise, which is meant to
broadcast, keeps to small cases.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from grader.reference import load_reference
from grader.runner import GradingContext, grade_exercises
from grader.sandbox import Limits, get_sandbox
from grader.specs import exercises

AID = "01_knn"
NO_LOOPS = "test_compute_distances_no_loops"
DEFAULT_MEMORY = Limits().memory_mb * 2**20

BROADCAST = '''def compute_distances_no_loops(X_train, X_test):
    """The (num_test, num_train, D) array of differences, squared and summed."""
    return np.sqrt(np.sum((X_test[:, None, :] - X_train[None, :, :]) ** 2, axis=2))
'''


def _broadcast_bytes(case) -> int:
    X_train, X_test = case.inputs["X_train"], case.inputs["X_test"]
    return X_test.shape[0] * X_train.shape[0] * X_train.shape[1] * 8


def _big_case():
    cases = exercises(AID)[NO_LOOPS].make_cases()
    big = [c for c in cases if _broadcast_bytes(c) > DEFAULT_MEMORY]
    assert len(big) == 1, [c.label for c in cases]
    return big[0]


def test_no_loop_version_has_a_case_whose_broadcast_cannot_fit():
    case = _big_case()
    assert case.inputs["X_train"].shape == (5000, 3072) and case.inputs["X_test"].shape == (500, 3072)
    assert _broadcast_bytes(case) > 15 * DEFAULT_MEMORY  # about 61 GB against 3 GB
    inputs_mb = sum(a.nbytes for a in case.inputs.values()) / 2**20
    assert inputs_mb < 150  # the inputs themselves travel to the worker and fit easily


@pytest.mark.parametrize("gid", ["test_compute_distances_l1", "test_compute_distances_one_loop",
                                 "test_compute_distances_two_loops"])
def test_the_other_distance_exercises_stay_small(gid):
    assert max(_broadcast_bytes(c) for c in exercises(AID)[gid].make_cases()) < 2**20


def test_reference_computes_the_big_case_quickly():
    """In the grading process, which computes the reference's answer for every case."""
    case = _big_case()
    ref = load_reference(AID, "compute_distances_no_loops")
    t0 = time.perf_counter()
    dists = ref(**case.inputs)
    seconds = time.perf_counter() - t0
    assert dists.shape == (500, 5000) and np.isfinite(dists).all()
    assert seconds < 3, f"the reference took {seconds:.1f} s on the CIFAR-sized case"
    rows = [3, 250, 499]  # spot-check against the direct formula, a few rows at a time
    direct = np.sqrt(((case.inputs["X_test"][rows, None, :] - case.inputs["X_train"][None]) ** 2).sum(-1))
    np.testing.assert_allclose(dists[rows], direct, rtol=1e-9)


@pytest.mark.slow
def test_broadcast_solution_runs_out_of_memory_and_the_reference_passes(sandbox, tmp_path):
    from grader.notebook import source_notebooks

    src = source_notebooks(AID)[0]
    ex = exercises(AID)[NO_LOOPS]
    ctx = GradingContext(get_sandbox(sandbox), Limits(), workroot=tmp_path)
    points = src.tests[NO_LOOPS]

    honest = dict(src.solutions)
    t0 = time.perf_counter()
    res = grade_exercises(ctx, AID, [(ex, points)], src.setup, honest)[NO_LOOPS]
    seconds = time.perf_counter() - t0
    assert res.status == "passed" and res.score == points, res.to_json()
    assert seconds < 30, f"grading the reference's no-loop exercise took {seconds:.1f} s"

    broadcast = dict(src.solutions, compute_distances_no_loops=BROADCAST)
    res = grade_exercises(ctx, AID, [(ex, points)], src.setup, broadcast)[NO_LOOPS]
    assert res.status == "killed" and res.score == 0, res.to_json()
    assert "MemoryError" in res.message and "3072 MB" in res.message
    failed = [c for c in res.checks if not c.passed]
    assert len(failed) == 1 and "CIFAR-10" in failed[0].name  # every small case still passes
