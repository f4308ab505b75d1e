"""Written answers graded in nbgrader's formgrader, on what `python -m grader autograde` writes.

A class of three hands in 01_knn: alice solved everything and answered the written questions,
bob handed in the untouched release, mallory rewrote a test cell and a text cell. The grader
(the command an instructor runs, with the real sandbox) writes ``autograded/`` in nbgrader's
layout, the gradebook and ``nbgrader_config.py``; then JupyterLab is started in that folder,
formgrader is opened in Chromium, one written answer is graded with a comment, and
``python -m grader export`` must count it.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from browser_helpers import LabServer

from grader.fixtures import make_submission
from grader.notebook import nbgrader_meta
from grader.paths import ROOT

pytestmark = pytest.mark.slow

AID, NB = "01_knn", "knn"
WRITTEN = "q_l1_vs_l2"
ANSWER = "L1 grows with the sum of absolute differences, L2 punishes one large difference more."


def _grader(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "grader", *args], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def course(tmp_path_factory, sandbox) -> Path:
    root = tmp_path_factory.mktemp("course")
    for student, answers in (("alice", "reference"), ("bob", "release"), ("mallory", "reference")):
        [path] = make_submission(root / "submitted" / student / AID, AID, answers)
        nb = nbformat.read(str(path), as_version=4)
        for cell in nb.cells:
            meta = nbgrader_meta(cell)
            if student == "alice" and cell.cell_type == "markdown" and meta.get("solution"):
                cell.source = ANSWER
            if student == "mallory" and meta.get("grade") and not meta.get("solution"):
                cell.source = "print('all tests passed')"  # a test cell, rewritten
            if student == "mallory" and cell.cell_type == "markdown" and not meta:
                cell.source = "nothing to see here"
        nbformat.write(nb, str(path))
    _grader("autograde", str(root / "submitted"), "--out", str(root / "grades"), "--workers", "2",
            "--sandbox", sandbox)
    return root


def _autograded(course: Path, student: str) -> nbformat.NotebookNode:
    path = course / "grades" / "autograded" / student / AID / f"{NB}.ipynb"
    assert path.exists(), f"no graded copy at {path} (formgrader looks there)"
    return nbformat.read(str(path), as_version=4)


def _source() -> nbformat.NotebookNode:
    return nbformat.read(str(ROOT / "solutions" / AID / f"{NB}.ipynb"), as_version=4)


def test_graded_copies_keep_answers_and_restore_everything_else(course):
    source = _source()
    for student in ("alice", "bob", "mallory"):
        nb = _autograded(course, student)
        submitted = nbformat.read(str(course / "submitted" / student / AID / f"{NB}.ipynb"), as_version=4)
        answers = {nbgrader_meta(c).get("grade_id"): c.source for c in submitted.cells
                   if nbgrader_meta(c).get("solution")}
        assert len(nb.cells) == len(source.cells)
        for mine, src in zip(nb.cells, source.cells):
            meta = nbgrader_meta(src)
            assert mine.metadata == src.metadata
            if meta.get("solution"):
                assert mine.source == answers[meta["grade_id"]], (student, meta["grade_id"])
            else:
                assert mine.source == src.source, (student, "a non-answer cell was not restored from the source")
    alice = {nbgrader_meta(c).get("grade_id"): c for c in _autograded(course, "alice").cells}
    assert alice[WRITTEN].source == ANSWER
    bob = {nbgrader_meta(c).get("grade_id"): c for c in _autograded(course, "bob").cells}
    assert "raise NotImplementedError" in bob["compute_distances_two_loops"].source


def test_test_cells_show_the_autograder_result(course):
    for student, status in (("alice", "[passed]"), ("bob", "[error]")):
        nb = _autograded(course, student)
        tests = [c for c in nb.cells if c.cell_type == "code" and nbgrader_meta(c).get("grade")
                 and not nbgrader_meta(c).get("solution")]
        assert tests
        for cell in tests:
            [out] = cell.outputs
            assert out.text.startswith(status) or (student == "bob" and out.text.startswith("[failed]")), out.text
            assert "points (autograded)" in out.text


def test_formgrader_config_names_this_folder_and_its_gradebook(course):
    text = (course / "grades" / "nbgrader_config.py").read_text()
    assert repr(str((course / "grades").resolve())) in text
    assert "gradebook.db" in text
    mine = "c = get_config()\nc.CourseDirectory.root = '/elsewhere'\n"
    (course / "grades" / "nbgrader_config.py").write_text(mine)
    try:
        from grader.autograded import write_formgrader_config

        assert write_formgrader_config(course / "grades", "sqlite:///x.db") is None
        assert (course / "grades" / "nbgrader_config.py").read_text() == mine, "an instructor's config was replaced"
    finally:
        (course / "grades" / "nbgrader_config.py").write_text(text)


def _manual(course: Path, student: str, grade_id: str) -> tuple[float | None, bool]:
    """(manual score, needs manual grading) of one cell, read from the gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'grades' / 'gradebook.db'}") as gb:
        grade = gb.find_grade(grade_id, NB, AID, student)
        return grade.manual_score, bool(grade.needs_manual_grade)


def _comment(course: Path, student: str, grade_id: str) -> str | None:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'grades' / 'gradebook.db'}") as gb:
        return gb.find_comment(grade_id, NB, AID, student).manual_comment


def _total(course: Path, student: str) -> float:
    with open(course / "grades" / "grades.csv") as f:
        return next(float(r["score"]) for r in csv.DictReader(f) if r["student_id"] == student)


def test_grade_a_written_answer_in_formgrader_and_export_it(course, browser, tmp_path):
    grades = course / "grades"
    assert _manual(course, "alice", WRITTEN) == (None, True), "the written answer should wait for the instructor"
    assert _manual(course, "bob", WRITTEN) == (None, False), "a blank answer needs no grading"
    before = _total(course, "alice")
    server = LabServer(grades, tmp_path / "home").start()
    try:
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{server.base}/lab?token={server.token}")  # log in as the instructor
        page.locator(".jp-LabShell").wait_for()
        page.goto(f"{server.base}/formgrader/gradebook/{AID}/{NB}")  # Manual Grading > 01_knn > knn
        page.locator("td.name a.name-hidden").first.wait_for()  # the table has loaded: "Submission #1", ...
        page.locator("#toggle_names").click()  # Show All Names
        link = page.locator("td.name a.name-shown", has_text="alice")
        link.wait_for()
        link.click()
        score = page.locator(f"input.score#{WRITTEN}")
        score.wait_for()
        answer = page.locator("body").inner_text()
        assert ANSWER in answer, "formgrader does not show alice's written answer"
        score.fill("1")
        score.press("Tab")
        comment = page.locator(f"textarea#{WRITTEN}-comment")
        comment.fill("Right idea; say why squaring does that.")
        comment.press("Tab")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (_manual(course, "alice", WRITTEN)[0] != 1
                                               or not _comment(course, "alice", WRITTEN)):
            time.sleep(0.3)
        page.context.close()
    finally:
        server.stop()
    assert _manual(course, "alice", WRITTEN)[0] == 1, "the score typed in formgrader was not saved"
    assert _comment(course, "alice", WRITTEN) == "Right idea; say why squaring does that."
    _grader("export", str(grades), "--db", f"sqlite:///{grades / 'gradebook.db'}")
    assert _total(course, "alice") == before + 1, "grader export did not count the formgrader score"
    with open(grades / "grades_detailed.csv") as f:
        row = next(r for r in csv.DictReader(f) if r["student_id"] == "alice" and r["grade_id"] == WRITTEN)
    assert float(row["score"]) == 1

    # Grading again (every submission re-run) keeps what the instructor entered.
    _grader("autograde", str(course / "submitted"), "--out", str(grades), "--workers", "2", "--no-resume")
    assert _manual(course, "alice", WRITTEN)[0] == 1, "re-grading lost the instructor's score"
    assert _total(course, "alice") == before + 1 or _grader("export", str(grades)) and \
        _total(course, "alice") == before + 1
