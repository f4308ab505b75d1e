"""Result records, result files and the CSV files of a graded batch, in one place.

A *record* is the result of one (student, assignment) pair, as stored in
``OUT/results/<student_id>/<assignment>.json``::

    {"student_id", "assignment", "problem": str | None, "score", "max_score",
     "seconds", "fingerprint",
     "notebooks": [{"notebook", "problem": str | None,
                    "cells": [{"grade_id", "kind": "auto" | "manual", "status",
                               "score", "max_score", "message", "checks": [...]}]}]}

Records stay plain JSON-able dicts (they cross process and machine
boundaries); :class:`SubmissionRecord`, :class:`NotebookRecord` and
:class:`CellRecord` give their shape to type checkers, and :class:`Status`
names every status a cell can have.  ``Status`` is a ``str`` enum, so it is
written to JSON and CSV as its plain value (``passed``, ...).

This module imports nothing else from the grader but its errors, so every part of it
(autograde, export, feedback, ``grader check``, ``course_utils.progress``)
can use it without import cycles.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import TypedDict

from .errors import MissingFile

__all__ = [
    "DETAILED_HEADER", "GRADES_HEADER", "PROBLEMS_HEADER", "CellRecord", "NotebookRecord", "Status",
    "SubmissionRecord", "feedback_path", "fmt_score", "load_result", "load_results", "result_path", "save_result",
    "table", "write_atomic", "write_csvs",
]


class Status(StrEnum):
    """The status of one graded cell (``grades_detailed.csv``'s ``status`` column)."""

    PASSED = "passed"    # every check passed: full points
    FAILED = "failed"    # ran, but some output was wrong
    ERROR = "error"      # raised, or the notebook could not be read
    TIMEOUT = "timeout"  # ran past its time limit
    KILLED = "killed"    # the process died (crash, memory, a resource limit)
    MISSING = "missing"  # the notebook was not submitted, or a written answer was left blank
    PENDING = "pending"  # a written answer, waiting for the instructor
    GRADED = "graded"    # a written answer the instructor graded (formgrader; exports only)

    @property
    def ok(self) -> bool:
        """Nothing for the student to fix: passed, or waiting for the instructor."""
        return self in (Status.PASSED, Status.PENDING, Status.GRADED)


class CellRecord(TypedDict, total=False):
    grade_id: str
    kind: str  # "auto" or "manual"
    status: Status
    score: float
    max_score: float
    message: str
    checks: list[dict]
    hint: str  # added by ``grader check`` only


class NotebookRecord(TypedDict):
    notebook: str
    problem: str | None
    cells: list[CellRecord]


class SubmissionRecord(TypedDict, total=False):
    student_id: str
    assignment: str
    problem: str | None
    score: float
    max_score: float
    seconds: float
    fingerprint: str
    notebooks: list[NotebookRecord]


GRADES_HEADER = ["student_id", "assignment", "score", "max_score"]
DETAILED_HEADER = ["student_id", "assignment", "notebook", "grade_id", "kind", "score", "max_score", "status"]
PROBLEMS_HEADER = ["student_id", "assignment", "notebook", "status", "reason"]


def new_record(student_id: str, assignment: str, problem: str | None = None) -> SubmissionRecord:
    return {"student_id": student_id, "assignment": assignment, "notebooks": [], "problem": problem,
            "score": 0.0, "max_score": 0.0}


def is_record(data: object) -> bool:
    """Whether ``data`` (parsed JSON) has the shape of a record, with known statuses."""
    if not isinstance(data, dict) or not isinstance(data.get("student_id"), str) \
            or not isinstance(data.get("assignment"), str) or not isinstance(data.get("notebooks"), list):
        return False
    try:
        for nb in data["notebooks"]:
            for c in nb["cells"]:
                Status(c["status"])
    except (TypeError, KeyError, ValueError):
        return False
    return True


# ----------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------

def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` so that a reader sees the old or the new file, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def component(name: str) -> str:
    """``name`` checked to be usable as one path component under the output folder."""
    if name in (".", "..") or "/" in name or "\0" in name or len(name.encode("utf-8", "replace")) > 200:
        raise ValueError(f"{name!r} cannot name a file or folder under the output folder")
    return name


def result_path(out: Path, student_id: str, assignment: str) -> Path:
    return Path(out) / "results" / component(student_id) / component(f"{assignment}.json")


def feedback_path(out: Path, student_id: str, assignment: str, notebook: str) -> Path:
    """``OUT/feedback/<student>/<assignment>/<notebook>.html``."""
    parts = [component(student_id)] + ([component(assignment)] if assignment else [])
    return Path(out).joinpath("feedback", *parts, component(f"{notebook}.html"))


def save_result(out: Path, rec: SubmissionRecord) -> Path:
    path = result_path(out, rec["student_id"], rec["assignment"])
    write_atomic(path, json.dumps(rec, indent=1))
    return path


def load_result(out: Path, student_id: str, assignment: str, fingerprint: str) -> SubmissionRecord | None:
    """The stored record, if it exists, is well formed and has this fingerprint."""
    try:
        data = json.loads(result_path(out, student_id, assignment).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return data if is_record(data) and data.get("fingerprint") == fingerprint else None


def load_results(out: Path) -> list[SubmissionRecord]:
    """Every record under ``OUT/results/<student>/<assignment>.json``."""
    records = []
    for p in sorted((Path(out) / "results").glob("*/*.json")):
        try:
            rec = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            continue
        if is_record(rec):
            records.append(rec)
    if not records:
        raise MissingFile(f"no results in {Path(out) / 'results'}; run `python -m grader autograde` first")
    return records


# ----------------------------------------------------------------------------
# CSV files
# ----------------------------------------------------------------------------

def fmt_score(x: float) -> str:
    return f"{x:g}"


def table(header: list[str], rows: list[list]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def csv_rows(records: list[SubmissionRecord]) -> tuple[list[list], list[list], list[list]]:
    """Rows of ``grades.csv``, ``grades_detailed.csv`` and ``problems.csv``."""
    grades, detailed, problems = [], [], []
    for r in sorted(records, key=lambda r: (r["student_id"], r["assignment"])):
        grades.append([r["student_id"], r["assignment"], fmt_score(r["score"]), fmt_score(r["max_score"])])
        if r.get("problem"):
            detailed.append([r["student_id"], r["assignment"], "", "", "auto", "0", "0", Status.ERROR])
            problems.append([r["student_id"], r["assignment"], "", Status.ERROR, r["problem"]])
        for nb in r["notebooks"]:
            if nb.get("problem"):
                status = nb["cells"][0]["status"] if nb["cells"] else Status.ERROR
                problems.append([r["student_id"], r["assignment"], nb["notebook"], status, nb["problem"]])
            for c in nb["cells"]:
                detailed.append([r["student_id"], r["assignment"], nb["notebook"], c["grade_id"], c["kind"],
                                 fmt_score(c["score"]), fmt_score(c["max_score"]), c["status"]])
    return grades, detailed, problems


def write_csvs(out: Path, records: list[SubmissionRecord]) -> None:
    """``grades.csv``, ``grades_detailed.csv`` and ``problems.csv`` (layout in README.md)."""
    out = Path(out)
    grades, detailed, problems = csv_rows(records)
    write_atomic(out / "grades.csv", table(GRADES_HEADER, grades))
    write_atomic(out / "grades_detailed.csv", table(DETAILED_HEADER, detailed))
    write_atomic(out / "problems.csv", table(PROBLEMS_HEADER, problems))
