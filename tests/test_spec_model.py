"""The exercise model without the sandbox: spec validation, named outputs, checks,
parts, seeding, targeted rules, limits, ``uses`` in the worker and spec discovery."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from course_utils.rules import AtMostLoops, Forbid, NoLoops, SourceIndex
from grader import drivers, runner
from grader.evaluate import check_case, check_rules, named_outputs, score
from grader.paths import ROOT
from grader.sandbox import Limits
from grader.spec import (
    Case,
    CheckResult,
    Decreases,
    Exercise,
    Finite,
    ProbabilityRows,
    SpecError,
    Threshold,
    Tol,
)

EXAMPLE = ROOT / "tests" / "example_assignment"


def _cases(rng):
    return [Case({"x": np.ones(3)}, label="three ones")]


def ex(**kw):
    base = {"grade_id": "test_f", "name": "f", "cases": _cases}
    base.update(kw)
    return Exercise(**base)


# --- spec validation: clear messages that name the fix ---------------------------


@pytest.mark.parametrize("kw,words", [
    ({"names": ("f", "g")}, "either name= (one object) or names="),
    ({"checks": (Threshold("acc", ">=", 0.5),)}, "needs named outputs"),
    ({"outputs": ("loss",), "checks": (Threshold("acc", ">=", 0.5),)}, "not one of the exercise's outputs"),
    ({"outputs": {"loss": Tol(part="fwd")}}, "no parts="),
    ({"outputs": {"loss": Tol(part="fwd")}, "parts": {"bwd": 1}}, "names the part 'fwd'"),
    ({"rules": (NoLoops(part="x"),), "parts": {"a": 1}}, "names the part 'x'"),
    ({"compare": None}, "grades nothing"),
    ({"compare": "close"}, "compare must be"),
    ({"uses": ("f",)}, "which this exercise grades"),
    ({"parts": {"a": 0}}, "positive numbers"),
    ({"driver": "forward_backwards"}, "unknown driver 'forward_backwards'"),
])
def test_bad_specs_fail_with_the_fix_named(kw, words):
    with pytest.raises(SpecError, match=re.escape(words)):
        ex(**kw)


def test_threshold_with_unknown_comparison():
    with pytest.raises(SpecError, match="unknown comparison '=>'"):
        Threshold("accuracy", "=>", 0.9)


def test_case_naming_an_unknown_part():
    e = ex(parts={"forward": 1}, cases=lambda rng: [Case({}, label="c", part="backward")])
    with pytest.raises(SpecError, match="part 'backward'"):
        e.make_cases()


# --- named outputs and their tolerances ------------------------------------------


def test_outputs_map_tuples_dicts_and_single_values():
    e = ex(outputs={"loss": Tol(), "dW": Tol()})
    assert named_outputs(e, (1.0, np.zeros(2)))[0].keys() == {"loss", "dW"}
    assert named_outputs(e, {"loss": 1.0})[0] == {"loss": 1.0}
    assert "returned 3 values; expected 2 (loss, dW)" == named_outputs(e, (1, 2, 3))[1]
    assert "single float" in named_outputs(e, 1.0)[1]
    assert named_outputs(e, {"loss": 1.0, "extra": 2})[0] == {"loss": 1.0}  # drivers may return more
    assert "single dict" in named_outputs(e, {"los": 1.0})[1]
    one = ex(outputs=("history",))
    assert named_outputs(one, [1.0, 2.0])[0] == {"history": [1.0, 2.0]}


def test_each_output_has_its_own_tolerance_and_is_named():
    e = ex(outputs={"loss": Tol(rtol=1e-3), "dW": Tol(rtol=1e-9, atol=0.0)})
    case = Case({"x": np.ones(1)}, label="c")
    exp = (1.0, np.array([[1.0, 2.0], [3.0, 4.0]]))
    got = {"ok": True, "value": (1.0005, np.array([[1.0, 2.0], [3.0, 4.0 + 1e-6]]))}
    [res] = check_case(e, 0, case, got, exp, "cpu")
    assert not res.passed
    assert res.message.startswith("dW: 1 of 4 entries differ (first at [1, 1]")  # loss is within 1e-3
    assert "output[" not in res.message


def test_missing_output_and_errors():
    e = ex(outputs=("loss", "dW"))
    case = Case({}, label="c")
    [res] = check_case(e, 0, case, {"ok": True, "value": (1.0,)}, (1.0, np.zeros(2)), "cpu")
    assert res.message == "dW: missing (expected an output named dW)"
    [res] = check_case(e, 0, case, {"ok": False, "error": "ValueError: no"}, (1.0, np.zeros(2)), "cpu")
    assert res.message == "raised ValueError: no"


# --- thresholds and properties, without a reference ------------------------------


def test_threshold_without_reference():
    e = ex(compare=None, outputs=("accuracy",),
           checks=(Threshold("accuracy", ">=", 0.85, text="accuracy on held-out data of at least 0.85"),))
    case = Case({}, label="c")
    [ok] = check_case(e, 0, case, {"ok": True, "value": {"accuracy": 0.9}}, None, "cpu")
    [bad] = check_case(e, 0, case, {"ok": True, "value": {"accuracy": 0.5}}, None, "cpu")
    [nan] = check_case(e, 0, case, {"ok": True, "value": {"accuracy": float("nan")}}, None, "cpu")
    assert ok.passed and not bad.passed and not nan.passed
    assert bad.message == "accuracy is 0.5; required: accuracy on held-out data of at least 0.85"
    assert e.stated_requirements() == ["accuracy on held-out data of at least 0.85"]


@pytest.mark.parametrize("prop,value,ok", [
    (Decreases("h"), [3.0, 2.0, 2.5, 1.0, 0.5], True),
    (Decreases("h"), [1.0, 2.0, 3.0], False),
    (Decreases("h"), [1.0, float("nan")], False),
    (ProbabilityRows("p"), [[0.2, 0.8], [1.0, 0.0]], True),
    (ProbabilityRows("p"), [[0.2, 0.7], [1.0, 0.0]], False),
    (ProbabilityRows("p"), [[1.2, -0.2]], False),
    (Finite("x"), [1.0, 2.0], True),
    (Finite("x"), [1.0, float("inf")], False),
])
def test_properties(prop, value, ok):
    assert (prop.check(np.array(value)) is None) == ok


def test_property_messages_state_the_requirement():
    msg = ProbabilityRows("probs").check(np.array([[0.5, 0.4]]))
    assert msg.startswith("probs: row 0 sums to 0.9, not 1 (required: the rows of probs are probability vectors")


# --- partial credit ----------------------------------------------------------------


def test_points_are_split_by_parts_and_untagged_checks_count_for_all():
    e = ex(outputs={"out": Tol(part="forward"), "dx": Tol(part="backward")}, parts={"forward": 1, "backward": 2},
           rules=(NoLoops(part="forward"),))
    checks = [CheckResult("r", True, part="forward"), CheckResult("c1 [forward]", True, part="forward"),
              CheckResult("c1 [backward]", False, part="backward")]
    assert score(e, checks, 3) == (1.0, {"forward": {"score": 1.0, "max_score": 1.0, "passed": True},
                                         "backward": {"score": 0.0, "max_score": 2.0, "passed": False}})
    assert score(e, checks + [CheckResult("untagged", False)], 3)[0] == 0.0
    assert e.stated_requirements(3)[-1] == "partial credit: forward: 1 point, backward: 2 points"
    assert e.stated_requirements()[-1] == "partial credit: forward: 1/3 of the points, backward: 2/3 of the points"


def test_an_untagged_case_is_scored_per_output_part():
    e = ex(outputs={"out": Tol(part="forward"), "dx": Tol(part="backward")}, parts={"forward": 1, "backward": 1})
    case = Case({}, label="c")
    res = check_case(e, 0, case, {"ok": True, "value": (np.ones(2), np.zeros(2))}, (np.ones(2), np.ones(2)), "cpu")
    assert [(r.part, r.passed) for r in res] == [("forward", True), ("backward", False)]
    assert res[1].message.startswith("dx: ")


# --- seeding -------------------------------------------------------------------------


def test_every_driver_call_is_seeded_from_the_case():
    @drivers.driver
    def _draws_for_test(obj, inputs, ctx):
        import torch

        return {"py": random.random(), "np": float(np.random.rand()), "torch": float(torch.rand(1)),
                "seed": ctx["seed"]}

    try:
        e = ex(driver="_draws_for_test", uses_torch=True, seed=7,
               cases=lambda rng: [Case({}, label="a"), Case({}, label="b"), Case({}, label="c", seed=123)])
        from grader.evaluate import case_context

        cases = e.make_cases()
        ctxs = [case_context(e, i, c, "cpu") for i, c in enumerate(cases)]
        first = [drivers.run(e.driver, None, c.inputs, ctx) for c, ctx in zip(cases, ctxs)]
        np.random.seed(999)
        random.seed(999)
        again = [drivers.run(e.driver, None, c.inputs, ctx) for c, ctx in zip(cases, ctxs)]
        assert first == again
        assert first[0] != first[1]  # the seed depends on the case index
        assert first[2]["seed"] == 123  # a case's own seed wins
    finally:
        drivers.DRIVERS.pop("_draws_for_test")


# --- rules on one function or method -------------------------------------------------

CLASS_SRC = '''
def helper(X):
    return [x for x in X]

class LinearSVM:
    def train(self, X):
        for _ in range(3):
            self.loss(X)
    def loss(self, X):
        return self._scores(X).sum()
    def _scores(self, X):
        return np.linalg.norm(X)
    def predict(self, X):
        return helper(X)
'''


def test_rules_target_one_method_and_follow_its_helpers():
    idx = SourceIndex([CLASS_SRC])
    assert NoLoops(target="loss").check(idx, "LinearSVM") is None
    assert NoLoops(target="LinearSVM.loss").check(idx, "something_else") is None
    assert "for loop" in NoLoops().check(idx, "LinearSVM")
    assert "`helper`" in NoLoops(target="predict").check(idx, "LinearSVM")
    assert "`_scores` uses `numpy.linalg.norm`" in Forbid(("np.linalg.norm",), target="loss").check(idx, "LinearSVM")
    assert AtMostLoops(1, target="train").check(idx, "LinearSVM") is None
    assert "could not find the definition of `LinearSVM.fit`" in NoLoops(target="fit").check(idx, "LinearSVM")


def test_rules_of_a_several_name_exercise_and_uses():
    src = "def fwd(x):\n    return x\n\ndef bwd(d):\n    return [v for v in d]\n"
    e = ex(name="", names=("fwd", "bwd"), rules=(NoLoops(), NoLoops(target="fwd", what="no loops")))
    res = check_rules(e, [src])
    assert [r.passed for r in res] == [False, True] and res[1].name == "no loops in `fwd`"
    # the functions an exercise `uses` are the reference's while it is graded: rules skip them
    src2 = "def helper(x):\n    return [v for v in x]\n\ndef f(x):\n    return helper(x)\n"
    assert not check_rules(ex(rules=(NoLoops(),)), [src2])[0].passed
    assert check_rules(ex(rules=(NoLoops(),), uses=("helper",)), [src2])[0].passed


# --- limits ----------------------------------------------------------------------------


def test_per_exercise_limits_may_be_raised(monkeypatch):
    base = Limits(wall_s=60, cpu_s=60, memory_mb=3072)
    long = ex(grade_id="test_long", timeout=300)
    big = ex(grade_id="test_big", memory_mb=6000)
    short = ex(grade_id="test_short", timeout=5)
    assert runner.exercise_wall_s(long, base) == 300 and runner.exercise_wall_s(short, base) == 5
    assert runner.exercise_wall_s(ex(), base) == 60
    lim = runner.task_limits(base, [runner.Task(long, [], 300.0)])
    assert lim.cpu_s == 300 and lim.memory_mb == 3072

    calls = []

    def fake_run_worker(ctx, tasks, setup, cells, device, limits=None):
        calls.append(([t.ex.grade_id for t in tasks], limits.memory_mb, limits.cpu_s))
        return runner.WorkerRun([runner.TaskRun("done", []) for _ in tasks], True, None, [])

    monkeypatch.setattr(runner, "run_worker", fake_run_worker)
    ctx = runner.GradingContext(sandbox=None, limits=base)
    tasks = [runner.Task(e, [], runner.exercise_wall_s(e, base)) for e in (long, big, short)]
    import time

    runner._run_all(ctx, tasks, [], {}, time.monotonic() + 1000)
    assert calls == [(["test_long", "test_short"], 3072, 300.0), (["test_big"], 6000, 60.0)]


def test_submission_budget_grows_with_the_exercises_limits(monkeypatch):
    seen = {}

    def fake_run_all(ctx, tasks, setup, answers, deadline):
        import time

        seen["budget"] = deadline - time.monotonic()
        return {t.ex.grade_id: runner.TaskRun("done", [{"ok": True, "value": 1.0}]) for t in tasks}, [], []

    monkeypatch.setattr(runner, "_run_all", fake_run_all)
    monkeypatch.setattr(runner, "reference_outputs", lambda a, e, d: (e.make_cases(), [1.0]))
    ctx = runner.GradingContext(sandbox=None, limits=Limits(submission_wall_s=600))
    exs = [(ex(grade_id=f"test_{i}", timeout=300), 1) for i in range(3)]
    res = runner.grade_exercises(ctx, "any", exs, [], {})
    assert 900 + runner.BUDGET_SLACK_S - 5 < seen["budget"] <= 900 + runner.BUDGET_SLACK_S
    assert all(r.status == "passed" and r.score == 1 for r in res.values())
    runner.grade_exercises(ctx, "any", [(ex(grade_id="test_small"), 1)], [], {})
    assert 595 < seen["budget"] <= 600


# --- uses: the reference helpers reach the worker, and their file is gone first ---------


def test_worker_substitutes_reference_helpers_and_deletes_their_source(tmp_path):
    e = ex(grade_id="test_g", name="g", uses=("helper",), cases=lambda rng: [Case({"x": 2.0}, label="x=2")])
    task = runner.Task(e, e.make_cases(), 10.0, {"helper": "def helper(x):\n    return 10 * x\n"})
    student = ("import os\nSAW_USES = os.path.exists('uses.json')\n"
               "def helper(x):\n    return -1.0\n\ndef g(x):\n    return (helper(x), SAW_USES)\n\n"
               "def h(x):\n    return helper(x)\n")
    later = ex(grade_id="test_h", name="h", cases=lambda rng: [Case({"x": 2.0}, label="x=2")])
    job = tmp_path / "job"
    job.mkdir()
    runner.write_job(job, [task, runner.Task(later, later.make_cases(), 10.0)], [], {"g": student}, "cpu")
    assert json.loads((job / "uses.json").read_text()) == {"helper": "def helper(x):\n    return 10 * x\n"}
    proc = subprocess.run([sys.executable, "-I", "-m", "grader.worker", str(job)], cwd=job,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    from grader import wire

    assert not (job / "uses.json").exists()
    assert wire.read(job / "out_0_0.npz") == {"ok": True, "value": (20.0, False)}  # reference helper
    assert wire.read(job / "out_1_0.npz") == {"ok": True, "value": -1.0}  # the student's own again


# --- spec discovery ---------------------------------------------------------------------


def test_specs_are_found_by_their_assignment(monkeypatch, tmp_path):
    from grader import specs

    (tmp_path / "mine.py").write_text(
        'from grader.spec import Case, Exercise\nASSIGNMENT = "98_mine"\n'
        'EXERCISES = [Exercise(grade_id="test_f", name="f", cases=lambda rng: [Case({})])]\n'
        'WRONG_ANSWERS = {"f": "def f():\\n    return 0\\n"}\n')
    monkeypatch.setenv("COURSE_SPECS_PATH", str(tmp_path))
    files = specs.spec_files()
    assert files["98_mine"] == tmp_path / "mine.py"
    assert files["01_knn"].name == "knn.py" and files["00_tensors"].name == "tensors.py"
    assert list(specs.exercises("98_mine")) == ["test_f"]
    assert specs.wrong_answers("98_mine") == {"f": "def f():\n    return 0\n"}
    with pytest.raises(KeyError, match="ASSIGNMENT = '97_none'"):
        specs.exercises("97_none")


def test_example_specs_are_found_beside_its_solutions(monkeypatch):
    from grader import specs

    monkeypatch.setenv("COURSE_SOLUTIONS_DIR", str(EXAMPLE / "solutions"))
    assert specs.spec_files()["99_example"] == EXAMPLE / "specs" / "example.py"
    assert specs.graded_names("99_example") == [
        "svm_loss", "affine_forward", "affine_backward", "LinearClassifier", "TinyMLP", "train_softmax",
        "predict_softmax", "q_learning"]


# --- the example's references pass their own hidden tests, in the notebook's way ----------


@pytest.fixture
def example_env(monkeypatch):
    monkeypatch.setenv("COURSE_SOLUTIONS_DIR", str(EXAMPLE / "solutions"))


def test_example_references_pass_their_hidden_tests_in_process(example_env, capsys):
    from grader.hidden import run_hidden_tests
    from grader.notebook import source_notebooks
    from grader.reference import reference_module
    from grader.specs import exercises

    ns = dict(vars(reference_module("99_example")))
    ns["In"] = [c for s in source_notebooks("99_example") for c in s.setup + list(s.solutions.values())]
    for gid in exercises("99_example"):
        run_hidden_tests("99_example", gid, ns)
    assert capsys.readouterr().out.count("hidden checks passed") == 6


def test_in_process_hidden_tests_use_the_reference_helpers_and_restore(example_env):
    from grader.hidden import HiddenTestFailure, run_hidden_tests
    from grader.notebook import source_notebooks
    from grader.reference import reference_module

    ns = dict(vars(reference_module("99_example")))
    ns["In"] = [c for s in source_notebooks("99_example") for c in s.setup + list(s.solutions.values())]

    def broken(W, X, y, reg):
        return 0.0, np.zeros_like(W)

    ns["svm_loss"] = broken
    run_hidden_tests("99_example", "test_linear_classifier", ns)  # trains with the reference svm_loss
    assert ns["svm_loss"] is broken
    with pytest.raises(HiddenTestFailure, match="dW: "):
        run_hidden_tests("99_example", "test_svm_loss", ns)


def test_example_notebook_states_every_requirement(example_env):
    import nbformat

    from grader.notebook import source_notebooks
    from grader.specs import exercises, stated_requirements

    src = source_notebooks("99_example")[0]
    nb = nbformat.read(str(src.path), as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    stated = stated_requirements("99_example")
    assert set(stated) == set(exercises("99_example"))
    assert "partial credit: forward: 1 point, backward: 2 points" in stated["test_affine"]
    for gid, reqs in stated.items():
        for req in reqs:
            assert req in text, (gid, req)


def test_knn_notebook_states_that_cross_validation_uses_the_reference_helpers():
    import nbformat

    from grader.notebook import source_notebooks
    from grader.specs import exercises

    e = exercises("01_knn")["test_knn_cross_validate"]
    assert e.uses == ("compute_distances_no_loops", "predict_labels")
    for nb_path in [source_notebooks("01_knn")[0].path, ROOT / "notebooks" / "01_knn" / "knn.ipynb"]:
        text = "\n".join(c.source for c in nbformat.read(str(nb_path), as_version=4).cells)
        assert e.stated_requirements()[-1] in text, nb_path


def test_drivers_package_reaches_the_sandbox_and_specs_do_not():
    from grader.sandbox import package_files

    files = [Path(p) for p in package_files()]
    assert ROOT / "grader" / "drivers" in files
    assert not any("specs" in p.parts for p in files)
    for mod in ("layers", "training", "modules", "rl", "tensors", "optim"):
        assert (ROOT / "grader" / "drivers" / f"{mod}.py").exists()


def test_in_notebook_hidden_tests_leave_the_notebooks_random_state_alone(example_env):
    import torch

    from grader.hidden import run_hidden_tests
    from grader.notebook import source_notebooks
    from grader.reference import reference_module

    ns = dict(vars(reference_module("99_example")))
    ns["In"] = [c for s in source_notebooks("99_example") for c in s.setup + list(s.solutions.values())]
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    before = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    run_hidden_tests("99_example", "test_linear_classifier", ns)
    run_hidden_tests("99_example", "test_tiny_mlp", ns)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == before


# --- generic drivers for the rest of the curriculum ---------------------------------------


def test_callable_arguments_come_from_uses_or_builtins():
    def numerical_gradient(f, x, h=1e-5):
        grad = np.zeros_like(x)
        for i in range(x.size):
            e = np.zeros_like(x)
            e.flat[i] = h
            grad.flat[i] = (f(x + e) - f(x - e)) / (2 * h)
        return grad

    x = np.array([1.0, -2.0, 3.0])
    g = drivers.run("call_with_callables", numerical_gradient,
                    {"args": {"x": x}, "callables": {"f": "builtin:sum_of_squares"}}, {"seed": 0})
    assert np.allclose(g, 2 * x)

    def train(loss_fn, W):
        return loss_fn(W)

    ctx = {"seed": 0, "uses": {"svm_loss": lambda W: float(W.sum())}}
    assert drivers.run("call_with_callables", train, {"args": {"W": np.ones(3)},
                                                      "callables": {"loss_fn": "uses:svm_loss"}}, ctx) == 3.0
    with pytest.raises(ValueError, match="unknown callable 'uses:other'"):
        drivers.run("call_with_callables", train, {"args": {}, "callables": {"loss_fn": "uses:other"}}, ctx)


def test_update_rules_run_step_after_step_with_their_config():
    def sgd_momentum(w, dw, config=None):
        config = {} if config is None else config
        config.setdefault("learning_rate", 0.1)
        config.setdefault("momentum", 0.9)
        v = config.get("velocity", np.zeros_like(w))
        v = config["momentum"] * v - config["learning_rate"] * dw
        config["velocity"] = v
        return w + v, config

    out = drivers.run("update_steps", sgd_momentum,
                      {"w": np.zeros(2), "dws": [np.ones(2), np.ones(2)], "config": None}, {"seed": 0})
    assert np.allclose(out["w"][0], -0.1) and np.allclose(out["w"][1], -0.1 - 0.19)
    assert np.allclose(out["config"]["velocity"], -0.19)


def test_forward_backward_names_outputs_and_keeps_updated_arguments():
    def bn_forward(x, gamma, beta, bn_param):
        mu = x.mean(axis=0)
        bn_param["running_mean"] = 0.9 * bn_param["running_mean"] + 0.1 * mu
        return gamma * (x - mu) + beta, (x, gamma)

    def bn_backward(dout, cache):
        x, gamma = cache
        return dout * gamma, (dout * x).sum(0), dout.sum(0)

    from grader.drivers import Objects

    objs = Objects({"bn_forward": bn_forward, "bn_backward": bn_backward})
    x = np.arange(6.0).reshape(3, 2)
    fwd = {"x": x, "gamma": np.ones(2), "beta": np.zeros(2), "bn_param": {"running_mean": np.zeros(2)}}
    ctx = {"seed": 0, "outputs": ["out", "dx", "dgamma", "dbeta", "bn_param"]}
    out = drivers.run("forward_backward", objs, {"forward": fwd, "dout": np.ones((3, 2)), "keep": ["bn_param"]},
                      ctx)
    assert sorted(out) == ["bn_param", "dbeta", "dgamma", "dx", "out"]
    assert np.allclose(out["bn_param"]["running_mean"], [0.2, 0.3])
    only_fwd = drivers.run("forward_backward", objs, {"forward": fwd, "keep": ["bn_param"]}, ctx)
    assert sorted(only_fwd) == ["bn_param", "out"]
    assert objs[0] is bn_forward and objs.bn_backward is bn_backward and objs.names == ["bn_forward", "bn_backward"]


def test_a_students_own_check_shows_the_points_of_each_part(example_env, monkeypatch, tmp_path):
    """``python -m grader check`` prints the parts of an exercise under its row."""
    import grader.autograde
    import grader.runner
    from grader.selfcheck import check_notebook

    record = {"student_id": "me", "assignment": "99_example", "problem": None, "score": 1.0, "max_score": 3.0,
              "notebooks": [{"notebook": "example", "problem": None, "cells": [
                  {"grade_id": "test_affine", "kind": "auto", "status": "failed", "score": 1.0, "max_score": 3.0,
                   "message": "", "parts": {"forward": {"score": 1.0, "max_score": 1.0, "passed": True},
                                            "backward": {"score": 0.0, "max_score": 2.0, "passed": False}},
                   "checks": [{"name": "case 2 (backward) [backward]", "passed": False,
                               "message": "db: 3 of 3 entries differ", "part": "backward"}]}]}]}
    monkeypatch.setattr(grader.autograde, "grade_submission", lambda ctx, sub: record)
    monkeypatch.setattr(grader.runner, "choose_device", lambda ctx, device, torch_needed, log=None: "cpu")
    nb = tmp_path / "99_example" / "example.ipynb"
    nb.parent.mkdir()
    nb.write_text("{}")
    lines = []
    with pytest.warns(RuntimeWarning):
        assert check_notebook(nb, sandbox="none", out=lines.append) == 1
    text = "\n".join(lines)
    assert "parts: forward 1/1, backward 0/2" in text and "db: 3 of 3 entries differ" in text
