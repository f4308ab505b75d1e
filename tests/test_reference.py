"""Reference solutions come from the source notebooks, and exist exactly once."""

import re
import subprocess
import sys

import pytest

from grader.notebook import source_notebooks
from grader.paths import ROOT, assignments
from grader.reference import load_reference
from grader.specs import graded_names, spec_files

# The graded API: every name an exercise of an assignment's spec grades (names must not change).
GRADED = {aid: graded_names(aid) for aid in assignments() if aid in spec_files()}


def test_graded_names_come_from_the_specs():
    assert {"00_tensors", "01_knn"} <= set(GRADED)
    assert {"one_hot", "normalize_columns", "batched_matmul"} <= set(GRADED["00_tensors"])
    assert GRADED["01_knn"] == ["compute_distances_two_loops", "compute_distances_one_loop",
                                "compute_distances_no_loops", "compute_distances_l1", "predict_labels",
                                "knn_cross_validate"]
    assert GRADED["02_linear_classifiers"] == ["svm_loss_naive", "svm_loss_vectorized", "softmax_loss_naive",
                                               "softmax_loss_vectorized", "train_linear_classifier",
                                               "predict_linear_classifier"]

# Graded names that the course's own tools also define, as an independent implementation the
# self-checks compare with (the exercise forbids calling it): module -> names.
INDEPENDENT_COPIES = {"course_utils/gradcheck.py": {"numerical_gradient", "rel_error"},
                      # the course's tested layers and update rules, which later assignments build on
                      "course_utils/layers.py": {"affine_forward", "affine_backward", "relu_forward", "relu_backward",
                                                 "softmax_loss", "sgd", "sgd_momentum", "adam"}}


@pytest.mark.parametrize("aid,name", [(a, n) for a, names in GRADED.items() for n in names])
def test_every_graded_name_has_a_reference(aid, name):
    f = load_reference(aid, name)
    assert callable(f) and f.__name__ == name


def test_reference_behaves():
    import numpy as np

    predict = load_reference("01_knn", "predict_labels")
    dists = np.array([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]])
    assert predict(dists, np.array([3, 3, 1]), k=1).tolist() == [3, 1]


def test_unknown_names_and_assignments_fail_clearly():
    with pytest.raises(KeyError, match="defines no 'nope'.*predict_labels"):
        load_reference("01_knn", "nope")
    with pytest.raises(FileNotFoundError, match="known assignments"):
        load_reference("99_nothing", "f")


def test_each_reference_solution_exists_once():
    """A graded function is defined in exactly one answer cell of the sources, and
    nowhere in the Python packages (the release has only stubs)."""
    def sources(name):
        return "\n".join(p.read_text() for d in ("grader", "course_utils", "bench") for p in (ROOT / d).rglob("*.py")
                         if name not in INDEPENDENT_COPIES.get(p.relative_to(ROOT).as_posix(), ()))

    for aid in assignments():
        defs = {}
        for src in source_notebooks(aid):
            for gid, code in src.solutions.items():
                for name in re.findall(r"^(?:def|class) (\w+)", code, flags=re.M):
                    defs.setdefault(name, []).append(gid)
        for name in GRADED.get(aid, []):
            assert len(defs.get(name, [])) == 1, (aid, name, defs.get(name))
            assert not re.search(rf"^\s*(?:def|class) {name}\b", sources(name), flags=re.M), \
                f"{name} copied into a package"


def test_load_reference_from_the_command_line():
    code = "from grader.reference import load_reference; print(load_reference('01_knn', 'predict_labels').__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "predict_labels"
