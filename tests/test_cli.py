"""`python -m grader`: wrong input gives one helpful line; a bug in the grader shows its traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from grader.cli import main
from grader.errors import BadArgument, MissingFile, UnknownName, UserError
from grader.paths import ROOT


def _run(capsys, argv) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_missing_submissions_folder(capsys, tmp_path):
    code, err = _run(capsys, ["autograde", str(tmp_path / "nope"), "--out", str(tmp_path / "out")])
    assert code == 2
    assert _one_error_line(err) == (f"error: {tmp_path / 'nope'} is not a folder; expected "
                                    "SUBMISSIONS/<student_id>/<assignment_id>/*.ipynb")


def test_missing_results_folder(capsys, tmp_path):
    code, err = _run(capsys, ["export", str(tmp_path)])
    assert code == 2
    assert _one_error_line(err) == (f"error: no results in {tmp_path / 'results'}; "
                                    "run `python -m grader autograde` first")


def test_unknown_assignment_to_release(capsys):
    code, err = _run(capsys, ["release", "99_nope", "--check"])
    assert code == 2
    line = _one_error_line(err)
    assert line.startswith("error: no solutions/99_nope/ to release; known: ") and "01_knn" in line


def test_bad_limit_and_bad_sandbox(capsys, tmp_path):
    nb = tmp_path / "knn.ipynb"
    nb.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "cells": [],
                              "metadata": {"course": {"assignment": "01_knn"}}}))
    code, err = _run(capsys, ["check", str(nb), "--sandbox", "none", "--limit", "wall_s=abc"])
    assert code == 2
    assert _one_error_line(err) == "error: limit wall_s needs a number, not 'abc' (e.g. --limit wall_s=60.0)"
    code, err = _run(capsys, ["check", str(nb), "--sandbox", "none", "--limit", "speed=3"])
    assert code == 2 and _one_error_line(err).startswith("error: unknown limit 'speed=3'; use KEY=VALUE")
    code, err = _run(capsys, ["check", str(nb), "--sandbox", "chroot"])
    assert code == 2
    assert _one_error_line(err) == ("error: unknown sandbox 'chroot'; choose auto, bwrap, docker, podman "
                                    "or none")


def test_missing_notebook_and_assignment_without_solutions(capsys, tmp_path):
    code, err = _run(capsys, ["check", str(tmp_path / "knn.ipynb"), "--sandbox", "none"])
    assert code == 2 and _one_error_line(err) == f"error: {tmp_path / 'knn.ipynb'} does not exist"
    nb = tmp_path / "mine.ipynb"
    nb.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "cells": [],
                              "metadata": {"course": {"assignment": "99_nope"}}}))
    code, err = _run(capsys, ["check", str(nb), "--sandbox", "none"])
    assert code == 2 and _one_error_line(err).startswith("error: the hidden tests of 99_nope need")


@pytest.mark.parametrize("exc", [KeyError("x"), ValueError("bad value"), AttributeError("no attribute y")])
def test_a_bug_in_the_grader_shows_its_traceback(capsys, tmp_path, monkeypatch, exc):
    import grader.exports

    def broken(out):
        raise exc

    monkeypatch.setattr(grader.exports, "load_results", broken)
    code, err = _run(capsys, ["export", str(tmp_path)])
    assert code == 1
    assert err.startswith("Traceback (most recent call last):")
    assert f"{type(exc).__name__}: {exc}" in err and "in broken" in err
    assert err.strip().splitlines()[-1] == ("internal error: this is a bug in the grader, not a problem with "
                                            "your input; please report it with the traceback above")
    assert "\nerror: " not in err


def test_user_errors_are_also_the_builtin_kind():
    """Code that caught the built-in exceptions before still catches them."""
    from grader.reference import load_reference
    from grader.specs import exercises

    with pytest.raises(UnknownName) as e:
        exercises("99_nope")
    assert isinstance(e.value, KeyError) and isinstance(e.value, UserError)
    assert str(e.value).startswith("no hidden-test spec for assignment '99_nope'; known: ")  # not quoted
    with pytest.raises(MissingFile):
        load_reference("99_nope", "f")
    with pytest.raises(UnknownName, match="defines no 'nope'"):
        load_reference("01_knn", "nope")
    from grader.sandbox import Limits

    with pytest.raises(BadArgument) as e:
        Limits.parse(["memory_mb=lots"])
    assert isinstance(e.value, ValueError)


def test_command_line_prints_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "grader", "export", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert _one_error_line(proc.stderr).startswith("error: no results in ")
