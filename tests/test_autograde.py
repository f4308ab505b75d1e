"""Autograding real course assignments end to end, with the sandbox.

One batch holds honest and broken submissions of every assignment side by
side; each test then checks one property of the results.
"""

import csv
import json
import shutil

import pytest

from grader.autograde import autograde
from grader.fixtures import WRONG, make_submission
from grader.notebook import source_notebooks
from grader.paths import assignments

# python -m bench suite: this module's batch tests grow with the number of assignments.
SCALES_WITH_ASSIGNMENTS = True

pytestmark = pytest.mark.slow

ASSIGNMENTS = assignments()

# One deliberately wrong function per assignment, that no other exercise calls.


def _points(aid):
    tests, manual = {}, {}
    for src in source_notebooks(aid):
        tests.update(src.tests)
        manual.update(src.manual)
    return tests, manual


@pytest.fixture(scope="module")
def batch(tmp_path_factory, sandbox):
    root = tmp_path_factory.mktemp("grading")
    subs = root / "submitted"
    for aid in ASSIGNMENTS:
        make_submission(subs / "ref" / aid, aid, "reference")
        make_submission(subs / "untouched" / aid, aid, "release")
        if aid in WRONG:
            gid, code = WRONG[aid]
            make_submission(subs / "wrong" / aid, aid, "reference", overrides={gid: code})
    aid = ASSIGNMENTS[-1]
    # Broken submissions: invalid JSON, wrong nbformat, renamed file, empty folder.
    name = source_notebooks(aid)[0].name
    (subs / "badjson" / aid).mkdir(parents=True)
    (subs / "badjson" / aid / f"{name}.ipynb").write_text('{"cells": [')
    (subs / "nbformat3" / aid).mkdir(parents=True)
    (subs / "nbformat3" / aid / f"{name}.ipynb").write_text(json.dumps({"nbformat": 3, "cells": []}))
    make_submission(subs / "renamed" / aid, aid, "reference")
    shutil.move(subs / "renamed" / aid / f"{name}.ipynb", subs / "renamed" / aid / f"{name} (1).ipynb")
    (subs / "empty" / aid).mkdir(parents=True)
    (subs / "ref" / "99_unknown").mkdir(parents=True)
    out = root / "out"
    logs = []
    records = autograde(subs, out, workers=2, sandbox=sandbox, log=logs.append)
    return {"subs": subs, "out": out, "records": records, "logs": logs}


def _grades(out):
    with open(out / "grades.csv") as f:
        return {(r["student_id"], r["assignment"]): r for r in csv.DictReader(f)}


def _detailed(out):
    with open(out / "grades_detailed.csv") as f:
        return list(csv.DictReader(f))


def test_csv_headers(batch):
    out = batch["out"]
    assert (out / "grades.csv").read_text().splitlines()[0] == "student_id,assignment,score,max_score"
    assert (out / "grades_detailed.csv").read_text().splitlines()[0] == \
        "student_id,assignment,notebook,grade_id,kind,score,max_score,status"


def test_one_row_per_submitted_pair(batch):
    grades = _grades(batch["out"])
    submitted = {(s.name, a.name) for s in batch["subs"].iterdir() for a in s.iterdir()}
    assert set(grades) == submitted


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_reference_submission_gets_full_marks(batch, aid):
    tests, manual = _points(aid)
    row = _grades(batch["out"])[("ref", aid)]
    assert float(row["score"]) == sum(tests.values())
    assert float(row["max_score"]) == sum(tests.values()) + sum(manual.values())
    rows = [r for r in _detailed(batch["out"]) if r["student_id"] == "ref" and r["assignment"] == aid]
    auto = [r for r in rows if r["kind"] == "auto"]
    assert {r["grade_id"] for r in auto} == set(tests)
    assert all(r["status"] == "passed" and float(r["score"]) == float(r["max_score"]) for r in auto), auto
    assert all(r["status"] == "pending" for r in rows if r["kind"] == "manual")


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_untouched_release_gets_zero(batch, aid):
    row = _grades(batch["out"])[("untouched", aid)]
    assert float(row["score"]) == 0
    rows = [r for r in _detailed(batch["out"]) if r["student_id"] == "untouched" and r["assignment"] == aid]
    assert all(r["status"] in ("error", "failed") for r in rows if r["kind"] == "auto")
    # the written answers still say "YOUR ANSWER HERE": nothing for the instructor to grade
    assert all(r["status"] == "missing" for r in rows if r["kind"] == "manual")


@pytest.mark.parametrize("aid", [a for a in ASSIGNMENTS if a in WRONG])
def test_one_wrong_function_loses_exactly_its_points(batch, aid):
    tests, _ = _points(aid)
    name, _ = WRONG[aid]
    row = _grades(batch["out"])[("wrong", aid)]
    assert float(row["score"]) == sum(tests.values()) - tests[f"test_{name}"]
    failed = [r["grade_id"] for r in _detailed(batch["out"])
              if r["student_id"] == "wrong" and r["assignment"] == aid and r["status"] != "passed"
              and r["kind"] == "auto"]
    assert failed == [f"test_{name}"]


def test_broken_notebooks_get_rows_with_reasons(batch):
    aid = ASSIGNMENTS[-1]
    rows = _detailed(batch["out"])
    with open(batch["out"] / "problems.csv") as f:
        problems = {(r["student_id"], r["assignment"]): r for r in csv.DictReader(f)}
    for student, status, words in [("badjson", "error", "not valid notebook JSON"),
                                   ("nbformat3", "error", "nbformat"),
                                   ("renamed", "missing", "original file name"),
                                   ("empty", "missing", "was not submitted")]:
        mine = [r for r in rows if r["student_id"] == student and r["assignment"] == aid]
        assert mine and all(r["status"] == status for r in mine), (student, mine)
        assert words in problems[(student, aid)]["reason"]
        assert _grades(batch["out"])[(student, aid)]["score"] == "0"
    assert "unknown assignment" in problems[("ref", "99_unknown")]["reason"]


def test_feedback_per_student_and_notebook(batch):
    out = batch["out"]
    aid = ASSIGNMENTS[-1]
    name, _ = WRONG[aid]
    for src in source_notebooks(aid):
        page = (out / "feedback" / "wrong" / aid / f"{src.name}.html").read_text()
        assert f"test_{name}" in page and "failed" in page
        # hidden test code and reference values never appear
        assert "run_hidden_tests" not in page and "BEGIN SOLUTION" not in page


def test_gradebook_holds_every_grade(batch):
    from nbgrader.api import Gradebook

    from grader.paths import ensure_scripts_on_path

    ensure_scripts_on_path()
    with Gradebook(f"sqlite:///{batch['out'] / 'gradebook.db'}") as gb:
        for aid in ASSIGNMENTS:
            tests, _ = _points(aid)
            sub = gb.find_submission(aid, "ref")
            assert sub.score == sum(tests.values())
            assert gb.find_submission(aid, "untouched").score == 0
            assert sub.needs_manual_grade


def test_regrading_reuses_results_and_is_identical(batch, sandbox, tmp_path):
    before = (batch["out"] / "grades_detailed.csv").read_text()
    logs = []
    autograde(batch["subs"], batch["out"], workers=2, sandbox=sandbox, log=logs.append)
    assert any("reusing" in line for line in logs)
    assert (batch["out"] / "grades_detailed.csv").read_text() == before
