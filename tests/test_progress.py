"""course_utils.progress: the course index (progress per assignment) and check_my_work()."""

from __future__ import annotations

import json
import time

import nbformat
import pytest

from course_utils import progress
from course_utils.progress import (
    CheckReport,
    answer_status,
    assignment_info,
    check_report,
    collect,
    course_index,
    find_notebook,
    unsaved_answers,
)
from grader.fixtures import make_submission
from grader.index import build_index, release_index
from grader.notebook import nbgrader_meta
from grader.paths import assignments, release_dir

ASSIGNMENTS = assignments()


def _nb(cells, metadata=None) -> dict:
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nb.metadata.update(metadata or {})
    return json.loads(nbformat.writes(nb))


def _answer(source, kind="code", gid="f"):
    make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    cell = make(source)
    cell.metadata["nbgrader"] = {"solution": True, "grade": kind != "code", "grade_id": gid,
                                 "locked": False, "task": False, "schema_version": 3}
    return cell


# ----------------------------------------------------------------------------
# Reading a notebook: answers filled in, title, goals, time
# ----------------------------------------------------------------------------

def test_answer_status_counts_filled_code_and_written_answers():
    stub = "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    nb = _nb([
        nbformat.v4.new_markdown_cell("# Title"),
        _answer(stub, gid="a"),                                          # untouched
        _answer("def f(x):\n    return x + 1", gid="b"),                  # answered
        _answer("def f(x):\n    y = x\n    raise NotImplementedError()", gid="c"),  # started, still raises
        _answer("def f(x):\n    # raise NotImplementedError()\n    return x", gid="d"),  # commented out
        _answer("YOUR ANSWER HERE", kind="markdown", gid="q1"),
        _answer("Because the test set must stay unseen.", kind="markdown", gid="q2"),
        nbformat.v4.new_code_cell("raise NotImplementedError()"),           # not an answer cell
    ])
    assert answer_status(nb) == (3, 6)


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_release_is_not_started_and_reference_answers_are_filled(aid, tmp_path):
    for path in sorted((release_dir() / aid).glob("*.ipynb")):
        nb = json.loads(path.read_text())
        filled, total = answer_status(nb)
        assert total > 0 and filled == 0, f"{path.name}: a fresh release must count as not started"
    for path in make_submission(tmp_path, aid, "reference"):
        nb = json.loads(path.read_text())
        answers = [c for c in nb["cells"] if nbgrader_meta(c).get("solution")]  # code and written
        assert answer_status(nb)[0] == len(answers)


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_every_assignment_states_title_goals_and_time(aid):
    path = sorted((release_dir() / aid).glob("*.ipynb"))[0]
    info = assignment_info(json.loads(path.read_text()), aid)
    assert info.title and info.title != aid, "the first markdown cell needs a '# Title' heading"
    assert len(info.goals) >= 2, "the first markdown cell needs a 'Learning goals' list"
    assert info.time and any(ch.isdigit() for ch in info.time), "the first cell needs 'Estimated time: ...'"


def test_first_cell_conventions_are_parsed():
    text = ("# 07 · Convolutions\n\nSome intro.\n\n**Learning goals.** After this notebook you can\n\n"
            "1. compute a convolution by hand and\n   with numpy;\n2. explain *padding*;\n- use `torch`.\n\n"
            "**Estimated time:** 2 to 3 hours. The notebook runs in a minute.\n")
    info = assignment_info(_nb([nbformat.v4.new_markdown_cell(text)]), "07_conv")
    assert info.title == "07 · Convolutions"
    assert info.goals == ["compute a convolution by hand and with numpy;", "explain *padding*;", "use `torch`."]
    assert info.time == "2 to 3 hours"


def test_metadata_wins_over_the_first_cell():
    meta = {"course": {"title": "Convolutions", "goals": ["one", "two"], "minutes": [120, 180]}}
    info = assignment_info(_nb([nbformat.v4.new_markdown_cell("# Other\n\nEstimated time: 5 minutes")], meta))
    assert (info.title, info.goals, info.time) == ("Convolutions", ["one", "two"], "2–3 hours")
    assert progress._format_minutes(45) == "45 minutes"
    assert progress._format_minutes([30, 45]) == "30–45 minutes"
    assert progress._format_minutes(150) == "2.5 hours"


def test_a_notebook_without_conventions_still_gets_a_row():
    info = assignment_info(_nb([nbformat.v4.new_code_cell("x = 1")]), "99_misc")
    assert (info.title, info.goals, info.time) == ("99_misc", [], "")


# ----------------------------------------------------------------------------
# The index table
# ----------------------------------------------------------------------------

@pytest.fixture
def course(tmp_path):
    """notebooks/ of a student: one assignment not started, one half done, one with every answer."""
    root = tmp_path / "notebooks"
    stub = "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    specs = {"00_warmup": [stub, stub], "01_knn": ["def f(x):\n    return x", stub],
             "02_linear": ["def f(x):\n    return x", "def g(x):\n    return x"]}
    for n, (aid, sources) in enumerate(specs.items()):
        first = nbformat.v4.new_markdown_cell(
            f"# Assignment {n}: {aid}\n\n**Learning goals.**\n\n- goal <a> of {aid}\n- another goal\n\n"
            f"**Estimated time:** {10 * (n + 1)} minutes.")
        cells = [first] + [_answer(s, gid=f"g{i}") for i, s in enumerate(sources)]
        (root / aid).mkdir(parents=True)
        (root / aid / f"{aid[3:]}.ipynb").write_text(json.dumps(_nb(cells)))
    (root / "index.ipynb").write_text(build_index())
    (root / ".ipynb_checkpoints").mkdir()
    return root


def test_collect_reports_status_per_assignment_in_order(course):
    infos = collect(course)
    assert [i.aid for i in infos] == ["00_warmup", "01_knn", "02_linear"]
    assert [i.status for i in infos] == ["not started", "in progress (1 of 2 answers)", "all answers filled in"]
    assert [i.time for i in infos] == ["10 minutes", "20 minutes", "30 minutes"]
    assert infos[0].goals == ["goal <a> of 00_warmup", "another goal"]


def test_course_index_renders_links_status_and_escapes_text(course, monkeypatch):
    monkeypatch.chdir(course)
    index = course_index()
    html = index._repr_html_()
    assert html.count("<tr>") == 4  # header + three assignments
    for aid, name in [("00_warmup", "warmup"), ("01_knn", "knn"), ("02_linear", "linear")]:
        assert f'href="{aid}/{name}.ipynb"' in html
    assert "goal &lt;a&gt; of 00_warmup" in html and "<a> of" not in html
    assert "✓ all answers filled in" in html and "in progress (1 of 2 answers)" in html
    assert index.next_up.aid == "00_warmup" and "Next up" in html
    text = repr(index)
    assert "1. Assignment 0: 00_warmup [10 minutes]: not started" in text


def test_course_index_links_are_relative_to_the_running_notebook(course, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    html = course_index(course)._repr_html_()
    assert 'href="notebooks/01_knn/knn.ipynb"' in html


def test_course_index_without_assignments(tmp_path):
    index = course_index(tmp_path)
    assert "No assignments" in index._repr_html_() and repr(index) == "no assignments found"


# ----------------------------------------------------------------------------
# The generated landing page
# ----------------------------------------------------------------------------

def test_index_notebook_is_generated_deterministically_and_lists_assignments():
    text = build_index()
    assert text == build_index()
    nb = nbformat.reads(text, as_version=4)
    assert "do not edit" in nb.metadata["course"]["generated"]
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "markdown"]
    assert "course_index()" in nb.cells[1].source and nb.cells[1].outputs == []
    intro = nb.cells[0].source
    positions = [intro.index(f"]({aid}/") for aid in ASSIGNMENTS]
    assert positions == sorted(positions), "assignments must be listed in course order"
    assert "check_my_work()" in intro


def test_release_index_writes_and_checks(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_RELEASE_DIR", str(tmp_path))
    assert release_index(check=True) == ["notebooks/index.ipynb"]
    assert not (tmp_path / "index.ipynb").exists()
    assert release_index() == ["notebooks/index.ipynb"]
    assert release_index(check=True) == []
    (tmp_path / "index.ipynb").write_text((tmp_path / "index.ipynb").read_text().replace("Welcome", "Hi"))
    assert release_index(check=True) == ["notebooks/index.ipynb"]


def test_committed_index_is_up_to_date():
    path = release_dir() / "index.ipynb"
    assert path.exists(), "notebooks/index.ipynb is missing: run `python -m grader release`"
    assert path.read_text() == build_index(), "notebooks/index.ipynb is stale: run `python -m grader release`"


# ----------------------------------------------------------------------------
# check_my_work: which notebook, saved or not, and the table
# ----------------------------------------------------------------------------

class _Shell:
    def __init__(self, **ns):
        self.user_ns = ns


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.setattr(progress, "_ipython", lambda: None)
    monkeypatch.chdir(tmp_path)
    for name in ("knn.ipynb", "index.ipynb"):
        (tmp_path / name).write_text(json.dumps(_nb([])))
    return tmp_path


def test_find_notebook_uses_the_only_assignment_notebook_in_the_folder(folder):
    assert find_notebook() == folder / "knn.ipynb"  # index.ipynb is not an assignment


def test_find_notebook_asks_when_there_are_several(folder):
    (folder / "other.ipynb").write_text(json.dumps(_nb([])))
    with pytest.raises(FileNotFoundError, match=r"knn.ipynb, other.ipynb.*check_my_work\('knn.ipynb'\)"):
        find_notebook()
    assert find_notebook("other.ipynb") == folder / "other.ipynb"
    with pytest.raises(FileNotFoundError, match="nope.ipynb does not exist"):
        find_notebook("nope.ipynb")


def test_find_notebook_follows_what_jupyter_tells_the_kernel(folder, monkeypatch):
    (folder / "other.ipynb").write_text(json.dumps(_nb([])))
    monkeypatch.setenv("JPY_SESSION_NAME", str(folder / "other.ipynb"))  # jupyter_server 2
    assert find_notebook() == folder / "other.ipynb"
    monkeypatch.setenv("JPY_SESSION_NAME", "notebooks/01_knn/other.ipynb")  # a path relative to the server
    assert find_notebook() == folder / "other.ipynb"
    monkeypatch.setattr(progress, "_ipython", lambda: _Shell(__session__=str(folder / "knn.ipynb")))
    assert find_notebook() == folder / "knn.ipynb"  # ipykernel's __session__ comes first


def test_find_notebook_falls_back_when_the_notebook_was_renamed(folder, monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", str(folder / "Untitled.ipynb"))
    assert find_notebook() == folder / "knn.ipynb"


def test_unsaved_answers_compares_the_kernel_history_with_the_saved_file(tmp_path):
    path = tmp_path / "knn.ipynb"
    saved = "def predict(x):\n    return x + 1\n"
    path.write_text(json.dumps(_nb([_answer(saved, gid="predict"), _answer("def other():\n    pass", gid="o")])))
    assert unsaved_answers(path, ["import numpy as np", saved]) == []
    assert unsaved_answers(path, [saved, "def predict(x):\n    return x + 2\n"]) == ["predict"]
    assert unsaved_answers(path, []) == []  # never ran it: nothing to compare


def _cell(gid, status, score, max_score, checks=(), kind="auto", hint="", message=""):
    return {"grade_id": gid, "status": status, "score": score, "max_score": max_score, "kind": kind,
            "message": message, "hint": hint,
            "checks": [{"name": n, "passed": p, "message": m} for n, p, m in checks]}


REPORT = {"assignment": "01_knn", "problem": None, "notebooks": [{"notebook": "knn", "problem": None, "cells": [
    _cell("test_dists", "passed", 2, 2, [("case 1", True, "")]),
    _cell("test_predict", "failed", 0, 3, [("case 1", True, ""), ("case 2 (ties)", False, "output[3]: expected 1, got 2"),
                                           ("case 3", False, "output[0]: expected 0, got 1")],
          hint="use a stable sort"),
    _cell("test_cv", "error", 0, 3, [("case 1", False, "raised NotImplementedError (in cv, line 3)")]),
    _cell("q_test_set", "pending", 0, 1, kind="manual"),
]}]}


def test_check_report_table_names_each_exercise_with_status_points_and_hint(tmp_path):
    report = CheckReport(tmp_path / "01_knn" / "knn.ipynb", REPORT, seconds=4.2, saved=time.time() - 90)
    assert not report.ok and report.score == (2, 8)
    html = report._repr_html_()
    assert html.count("<tr>") == 5
    assert "✓" in html and "✗" in html and "✎" in html
    assert "case 2 (ties): output[3]: expected 1, got 2" in html and "and 1 more failed check" in html
    assert "<i>hint:</i> use a stable sort" in html
    assert "not answered yet" in html and "NotImplementedError()</code>" in html
    assert "2 of 8 autograded points" in html and "1 written answer is graded by your instructor" in html
    assert "01_knn/knn.ipynb, saved" in html and "2 min ago" in html
    text = repr(report)
    assert "✗ predict" in text and "hint: use a stable sort" in text and "✓ dists" in text


def test_check_report_when_everything_passes(tmp_path):
    data = {"notebooks": [{"notebook": "knn", "cells": [_cell("test_dists", "passed", 2, 2),
                                                         _cell("q_a", "pending", 0, 1, kind="manual")]}]}
    report = CheckReport(tmp_path / "knn.ipynb", data)
    assert report.ok
    html = report._repr_html_()
    assert "all autograded exercises pass (2/2 points)" in html
    assert "what to look at" not in html  # no column of empty cells


def test_check_report_shows_problems_and_unsaved_work(tmp_path):
    data = {"notebooks": [{"notebook": "knn", "problem": "knn.ipynb is not valid notebook JSON", "cells": []}]}
    report = CheckReport(tmp_path / "knn.ipynb", data, unsaved=["predict_labels"])
    assert not report.ok
    html = report._repr_html_()
    assert "not valid notebook JSON" in html and "<code>predict_labels</code>" in html and "save" in html


def test_check_my_work_prints_the_report_outside_jupyter(folder, monkeypatch, capsys):
    calls = []

    def fake(path, sandbox=None, device=None):
        calls.append((path, sandbox))
        return CheckReport(path, REPORT)

    monkeypatch.setattr(progress, "check_report", fake)
    assert progress.check_my_work(sandbox="none") is None
    out = capsys.readouterr().out
    assert calls == [(folder / "knn.ipynb", "none")]
    assert "save with Ctrl+S first" in out and "✗ predict" in out


def test_check_my_work_explains_when_it_cannot_find_the_notebook(folder, capsys):
    (folder / "other.ipynb").write_text(json.dumps(_nb([])))
    progress.check_my_work()
    assert "cannot tell which notebook to check" in capsys.readouterr().out


def test_check_report_explains_a_copy_without_solutions(tmp_path, monkeypatch):
    (path,) = make_submission(tmp_path / "sub", "01_knn", "release")
    monkeypatch.setenv("COURSE_SOLUTIONS_DIR", str(tmp_path / "no-solutions"))
    report = check_report(path)
    assert not report.ok and "reference solutions" in report.error


# ----------------------------------------------------------------------------
# The real grader, in its sandbox
# ----------------------------------------------------------------------------

@pytest.mark.slow
def test_check_report_grades_with_the_autograder(tmp_path, sandbox, monkeypatch):
    monkeypatch.setenv("COURSE_SANDBOX", sandbox)
    wrong = "def predict_labels(dists, y_train, k=1):\n    return y_train[np.argmax(dists, axis=1)]\n"
    (good,) = make_submission(tmp_path / "good", "01_knn", "reference")
    (bad,) = make_submission(tmp_path / "bad", "01_knn", "reference", overrides={"predict_labels": wrong})
    (blank,) = make_submission(tmp_path / "blank", "01_knn", "release")
    ok, failing, empty = check_report(good), check_report(bad), check_report(blank)
    assert ok.ok, repr(ok)
    row = next(r for r in failing.rows if r.exercise == "test_predict_labels")
    assert row.status == "failed" and row.problem.startswith("case 1") and row.hint
    assert not failing.ok and failing.score[0] < failing.score[1]
    assert all(r.status == "not answered" and not r.hint for r in empty.rows if r.kind == "auto")
