"""Every kind of exercise, graded end to end through ``python -m grader autograde``.

The example assignment ``tests/example_assignment`` (source notebook
``solutions/99_example/example.ipynb``, spec ``specs/example.py``) has one exercise
of each kind the exercise model supports: a loss with named outputs, a
forward/backward pair with partial credit, a class trained with seeded
minibatch SGD that ``uses`` an earlier function and has a rule on one method, a
seeded ``nn.Module``, a training run judged by an accuracy threshold, and a
gymnasium agent judged by its mean return.  Its release is generated, and the
reference, every deliberately wrong answer of the spec, a rule breach and the
blank release are graded in one batch, in the real sandbox, each with its exact
expected total.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from grader.paths import ROOT

pytestmark = pytest.mark.slow

EXAMPLE = ROOT / "tests" / "example_assignment"
AID = "99_example"
POINTS = {"test_svm_loss": 2, "test_affine": 3, "test_linear_classifier": 2, "test_tiny_mlp": 1,
          "test_softmax_accuracy": 2, "test_q_learning": 2}
FULL = sum(POINTS.values())

# The loop in `train` is allowed; a loop in `predict` breaks NoLoops(target="predict").
LOOP_IN_PREDICT = '''class LinearClassifier:
    def __init__(self, num_features, num_classes):
        self.W = 0.001 * np.random.randn(num_features, num_classes)

    def train(self, X, y, learning_rate=1e-2, reg=1e-4, num_iters=100, batch_size=32):
        loss_history = []
        for _ in range(num_iters):
            idx = np.random.choice(X.shape[0], batch_size)
            loss, dW = svm_loss(self.W, X[idx], y[idx], reg)
            self.W -= learning_rate * dW
            loss_history.append(float(loss))
        return loss_history

    def predict(self, X):
        return np.array([int(np.argmax(x @ self.W)) for x in X])
'''

# Draws its minibatches from a generator of its own instead of numpy's seeded global
# one: it learns, but not the same weights as the reference.
UNSEEDED_SGD = LOOP_IN_PREDICT.replace(
    "idx = np.random.choice(X.shape[0], batch_size)",
    "idx = np.random.default_rng().choice(X.shape[0], batch_size)").replace(
    "return np.array([int(np.argmax(x @ self.W)) for x in X])", "return np.argmax(X @ self.W, axis=1)")

EXPECTED = {
    "ref": {g: p for g, p in POINTS.items()},
    "blank": {g: 0 for g in POINTS},
    # svm_loss wrong: only its own exercise; LinearClassifier, which calls it, is graded
    # with the reference svm_loss
    "wrong_svm_loss": {**POINTS, "test_svm_loss": 0},
    # affine_backward wrong: the backward part (2 of 3 points) only
    "wrong_affine_backward": {**POINTS, "test_affine": 1},
    "loop_in_predict": {**POINTS, "test_linear_classifier": 0},
    "unseeded_sgd": {**POINTS, "test_linear_classifier": 0},
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory, sandbox):
    root = tmp_path_factory.mktemp("example")
    env = dict(os.environ, COURSE_SOLUTIONS_DIR=str(EXAMPLE / "solutions"),
               COURSE_RELEASE_DIR=str(root / "release"))
    mp = pytest.MonkeyPatch()
    for k in ("COURSE_SOLUTIONS_DIR", "COURSE_RELEASE_DIR"):
        mp.setenv(k, env[k])
    try:
        rel = subprocess.run([sys.executable, "-m", "grader", "release", AID], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
        assert rel.returncode == 0, rel.stderr
        from grader.fixtures import make_submission
        from grader.specs import wrong_answers

        subs = root / "submitted"
        make_submission(subs / "ref" / AID, AID, "reference")
        make_submission(subs / "blank" / AID, AID, "release")
        for gid, code in wrong_answers(AID).items():
            make_submission(subs / f"wrong_{gid}" / AID, AID, "reference", overrides={gid: code})
        make_submission(subs / "loop_in_predict" / AID, AID, "reference",
                        overrides={"LinearClassifier": LOOP_IN_PREDICT})
        make_submission(subs / "unseeded_sgd" / AID, AID, "reference",
                        overrides={"LinearClassifier": UNSEEDED_SGD})
        out = root / "out"
        proc = subprocess.run([sys.executable, "-m", "grader", "autograde", str(subs), "--out", str(out),
                               "--workers", "2", "--sandbox", sandbox], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
    finally:
        mp.undo()
    with open(out / "grades_detailed.csv") as f:
        rows = list(csv.DictReader(f))
    with open(out / "grades.csv") as f:
        totals = {r["student_id"]: float(r["score"]) for r in csv.DictReader(f)}
    records = {p.parent.name: json.loads(p.read_text()) for p in (out / "results").rglob("*.json")}
    cells = {s: {c["grade_id"]: c for nb in rec["notebooks"] for c in nb["cells"]} for s, rec in records.items()}
    return {"rows": rows, "totals": totals, "cells": cells, "out": out}


def test_every_submission_gets_its_exact_total(graded):
    assert graded["totals"] == {s: float(sum(v.values())) for s, v in EXPECTED.items()}
    assert graded["totals"]["ref"] == FULL


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_every_exercise_gets_its_exact_score(graded, student):
    got = {r["grade_id"]: float(r["score"]) for r in graded["rows"] if r["student_id"] == student}
    assert got == {g: float(p) for g, p in EXPECTED[student].items()}


def test_named_outputs_are_named_in_messages(graded):
    svm = graded["cells"]["wrong_svm_loss"]["test_svm_loss"]
    failed = [k["message"] for k in svm["checks"] if not k["passed"]]
    assert failed and all(m.startswith("dW: ") for m in failed), failed
    assert not any("output[" in k["message"] for c in graded["cells"]["wrong_svm_loss"].values()
                   for k in c["checks"])


def test_partial_credit_is_reported_per_part(graded):
    cell = graded["cells"]["wrong_affine_backward"]["test_affine"]
    assert cell["status"] == "failed" and cell["score"] == 1.0
    assert cell["parts"] == {"forward": {"score": 1.0, "max_score": 1.0, "passed": True},
                             "backward": {"score": 0.0, "max_score": 2.0, "passed": False}}
    failed = [k for k in cell["checks"] if not k["passed"]]
    assert failed and all(k["part"] == "backward" and k["message"].startswith("db: ") for k in failed)
    page = (graded["out"] / "feedback" / "wrong_affine_backward" / AID / "example.html").read_text()
    assert "[backward]" in page and "db: " in page
    assert "Points by part: forward" in page


def test_a_rule_on_one_method_leaves_the_others_alone(graded):
    ref = graded["cells"]["ref"]["test_linear_classifier"]
    rule = next(k for k in ref["checks"] if k["name"] == "no Python loops in `predict`")
    assert rule["passed"]  # the reference's `train` has a loop
    bad = graded["cells"]["loop_in_predict"]["test_linear_classifier"]
    rule = next(k for k in bad["checks"] if k["name"] == "no Python loops in `predict`")
    assert not rule["passed"] and "comprehension" in rule["message"]


def test_seeded_training_is_compared_with_the_reference(graded):
    cell = graded["cells"]["unseeded_sgd"]["test_linear_classifier"]
    failed = [k["message"] for k in cell["checks"] if not k["passed"]]
    assert failed and all("loss_history" in m for m in failed), failed


def test_blank_exercises_are_errors_not_timeouts(graded):
    blank = graded["cells"]["blank"]
    assert {g: c["status"] for g, c in blank.items()} == {g: "error" for g in POINTS}


def test_example_notebook_executes_with_its_hidden_tests(monkeypatch):
    """The source notebook runs top to bottom: visible self-checks, then the hidden tests
    in the kernel (grader.hidden), each exercise's reference passing its own checks."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("COURSE_SOLUTIONS_DIR", str(EXAMPLE / "solutions"))
    path = EXAMPLE / "solutions" / AID / "example.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert text.count("hidden checks passed") == len(POINTS)
