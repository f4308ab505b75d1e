"""Exports for the instructor: per-exercise table, LMS import file, pass rates and their plot.

Result records are built here in the grader's format from the real source
notebooks' cells (no grading needed), so these tests are fast.
"""

import csv
import io
import json

import pytest

from grader import exports
from grader.cli import main
from grader.notebook import source_notebooks
from grader.paths import assignments

AID = "01_knn" if "01_knn" in assignments() else (assignments() or [None])[-1]
pytestmark = pytest.mark.skipif(AID is None, reason="no assignment in solutions/ yet")


def _record(student: str, failing: set[str] = frozenset(), missing: bool = False) -> dict:
    """A result record: every autograded cell passed except ``failing``."""
    rec = {"student_id": student, "assignment": AID, "notebooks": [], "problem": None}
    for src in source_notebooks(AID):
        nb = {"notebook": src.name, "problem": "was not submitted" if missing else None, "cells": []}
        for gid in src.order:
            if gid in src.tests:
                pts = src.tests[gid]
                status = "missing" if missing else "failed" if gid in failing else "passed"
                nb["cells"].append({"grade_id": gid, "kind": "auto", "status": status,
                                    "score": pts if status == "passed" else 0.0, "max_score": pts,
                                    "message": "", "checks": []})
            elif gid in src.manual:
                nb["cells"].append({"grade_id": gid, "kind": "manual", "status": "missing" if missing
                                    else "pending", "score": 0.0, "max_score": src.manual[gid],
                                    "message": "graded by the instructor", "checks": []})
        rec["notebooks"].append(nb)
    rec["score"] = sum(c["score"] for nb in rec["notebooks"] for c in nb["cells"])
    rec["max_score"] = sum(c["max_score"] for nb in rec["notebooks"] for c in nb["cells"])
    return rec


def _tests():
    out = {}
    for src in source_notebooks(AID):
        out.update(src.tests)
    return out


@pytest.fixture
def records():
    first = next(iter(_tests()))
    return [_record("alice"), _record("bob", failing={first}), _record("carol", failing=set(_tests())),
            _record("dave", missing=True)]


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_pass_rates_count_attempts_passes_and_means(records):
    rows = exports.pass_rates(records)
    tests = _tests()
    assert [r["grade_id"] for r in rows] == list(tests)  # notebook order
    first = next(iter(tests))
    by_gid = {r["grade_id"]: r for r in rows}
    # dave handed nothing in: not an attempt
    assert by_gid[first]["attempts"] == 3 and by_gid[first]["passed"] == 1
    assert by_gid[first]["pass_rate"] == pytest.approx(1 / 3)
    assert by_gid[first]["mean_score"] == pytest.approx(tests[first] / 3)
    other = list(tests)[1]
    assert by_gid[other]["passed"] == 2 and by_gid[other]["max_score"] == tests[other]
    table = _rows(exports.pass_rates_csv(rows))
    assert table[0] == exports.PASS_RATES_HEADER
    assert table[0] == ["assignment", "notebook", "grade_id", "attempts", "passed", "pass_rate",
                        "mean_score", "max_score"]
    assert len(table) == 1 + len(tests)


def test_summary_lists_the_hardest_exercise_first(records):
    first = next(iter(_tests()))
    text = exports.pass_rates_summary(exports.pass_rates(records))
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["exercise", "passed"]
    assert f"{AID}/{first}" in lines[2] and "33%" in lines[2]


def test_plot_is_a_png(records, tmp_path):
    path = exports.plot_pass_rates(exports.pass_rates(records), tmp_path / "pass_rates.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = exports.plot_pass_rates([], tmp_path / "empty.png")
    assert empty.stat().st_size > 0


def test_canvas_layout(records):
    header, rows = exports.lms_table(records, "canvas")
    assert header == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", AID]
    total = sum(_tests().values()) + sum(c["max_score"] for nb in records[0]["notebooks"]
                                         for c in nb["cells"] if c["kind"] == "manual")
    assert rows[0][0].strip() == "Points Possible" and float(rows[0][-1]) == total
    scores = {r[3]: r[-1] for r in rows[1:]}
    assert scores == {"alice": f"{records[0]['score']:g}", "bob": f"{records[1]['score']:g}",
                      "carol": "0", "dave": "0"}


def test_moodle_layout_and_roster(records, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("Student_ID,First Name,Last Name,Email,Section,SIS_User_ID\n"
                      "alice,Alice,Liddell,alice@example.org,A1,S001\n"
                      "erin,Erin,Nobody,erin@example.org,A2,S005\n")
    people = exports.read_roster(roster)
    assert people["alice"]["email"] == "alice@example.org" and people["alice"]["section"] == "A1"
    header, rows = exports.lms_table(records, "moodle", people)
    assert header == ["First name", "Last name", "ID number", "Email address", "Username",
                      f"Assignment: {AID} (Real)"]
    by_user = {r[4]: r for r in rows}
    assert by_user["alice"][:4] == ["Alice", "Liddell", "S001", "alice@example.org"]
    assert by_user["erin"][-1] == ""  # on the roster, nothing submitted: left blank
    header, rows = exports.lms_table(records, "canvas", people)
    alice = next(r for r in rows if r[3] == "alice")
    assert alice[:5] == ["Liddell, Alice", "", "S001", "alice", "A1"]


def test_bad_options_are_rejected(records, tmp_path):
    with pytest.raises(ValueError, match="unknown LMS 'blackboard'"):
        exports.lms_table(records, "blackboard")
    bad = tmp_path / "roster.csv"
    bad.write_text("name,email\nAlice,a@example.org\n")
    with pytest.raises(ValueError, match="student_id"):
        exports.read_roster(bad)


def test_grades_by_exercise_is_one_row_per_student(records):
    header, rows = exports.grades_by_exercise(records)
    assert header[0] == "student_id" and header[1] == f"{AID}/{next(iter(_tests()))}"
    assert [r[0] for r in rows] == ["alice", "bob", "carol", "dave"]
    assert all(len(r) == len(header) for r in rows)


def test_export_command_rebuilds_everything_with_manual_scores(records, tmp_path, capsys):
    """``python -m grader export OUT`` from results; the instructor's manual scores
    (set in the gradebook, as formgrader does) reach lms.csv."""
    from nbgrader.api import Gradebook

    from grader.gradebook import record_in_gradebook

    out = tmp_path / "out"
    for rec in records:
        path = out / "results" / rec["student_id"] / f"{AID}.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(rec))
    db = f"sqlite:///{out / 'gradebook.db'}"
    record_in_gradebook(db, records)
    src = source_notebooks(AID)[0]
    manual_gid = next(iter(src.manual), None)
    if manual_gid:
        with Gradebook(db) as gb:
            grade = gb.find_grade(manual_gid, src.name, AID, "alice")
            grade.manual_score = 1.0
            gb.db.commit()
    assert main(["export", str(out), "--lms", "canvas"]) == 0
    printed = capsys.readouterr().out
    assert "hardest first" in printed
    for name in ("grades.csv", "grades_detailed.csv", "grades_by_exercise.csv", "lms.csv",
                 "pass_rates.csv", "pass_rates.png"):
        assert (out / name).exists(), name
    assert (out / "feedback" / "alice" / AID / f"{src.name}.html").exists()
    lms = {r[3]: r[-1] for r in _rows((out / "lms.csv").read_text())[2:]}
    assert float(lms["alice"]) == records[0]["score"] + (1.0 if manual_gid else 0.0)
    grades = {r["student_id"]: r["score"] for r in csv.DictReader(open(out / "grades.csv"))}
    assert float(grades["alice"]) == records[0]["score"] + (1.0 if manual_gid else 0.0)  # grades.csv too
    if manual_gid:
        detailed = next(r for r in csv.DictReader(open(out / "grades_detailed.csv"))
                        if r["student_id"] == "alice" and r["grade_id"] == manual_gid)
        assert (float(detailed["score"]), detailed["status"]) == (1.0, "graded")


def test_export_without_results_is_an_error(tmp_path, capsys):
    assert main(["export", str(tmp_path)]) == 2
    assert "no results" in capsys.readouterr().err
