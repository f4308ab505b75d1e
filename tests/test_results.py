"""grader.results: statuses, records, result files and CSVs; and an import graph without cycles."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from grader.autograde import id_problem, id_text
from grader.paths import ROOT
from grader.results import (
    Status,
    csv_rows,
    feedback_path,
    load_result,
    load_results,
    result_path,
    save_result,
    write_csvs,
)

MODULES = ["grader.results", "grader.autograde", "grader.distributed", "grader.exports", "grader.feedback",
           "grader.selfcheck", "grader.cli", "course_utils.progress"]


def _record(status) -> dict:
    return {"student_id": "ana", "assignment": "01_knn", "problem": None, "score": 2.0, "max_score": 3.0,
            "fingerprint": "f" * 64,
            "notebooks": [{"notebook": "knn", "problem": None, "cells": [
                {"grade_id": "test_a", "kind": "auto", "status": status, "score": 2.0, "max_score": 2.0,
                 "message": "", "checks": []},
                {"grade_id": "q_b", "kind": "manual", "status": Status.PENDING, "score": 0.0, "max_score": 1.0,
                 "message": "graded by the instructor", "checks": []}]}]}


def test_status_is_written_as_its_plain_value():
    assert [s.value for s in Status] == ["passed", "failed", "error", "timeout", "killed", "missing", "pending",
                                          "graded"]
    assert json.dumps({"s": Status.KILLED}) == '{"s": "killed"}'
    assert f"{Status.TIMEOUT}" == "timeout" and str(Status.MISSING) == "missing"
    assert Status("passed") is Status.PASSED and Status.PASSED == "passed"
    assert Status.PASSED.ok and Status.PENDING.ok and not Status.FAILED.ok
    with pytest.raises(ValueError):
        Status("passd")


def test_csvs_are_the_same_for_enum_and_plain_statuses(tmp_path):
    write_csvs(tmp_path / "a", [_record(Status.PASSED)])
    write_csvs(tmp_path / "b", [_record("passed")])
    for name in ("grades.csv", "grades_detailed.csv", "problems.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "grades_detailed.csv").read_text().splitlines() == [
        "student_id,assignment,notebook,grade_id,kind,score,max_score,status",
        "ana,01_knn,knn,test_a,auto,2,2,passed",
        "ana,01_knn,knn,q_b,manual,0,1,pending"]
    grades, _, problems = csv_rows([dict(_record(Status.PASSED), problem="unknown assignment")])
    assert grades == [["ana", "01_knn", "2", "3"]] and problems[0][3:] == ["error", "unknown assignment"]


def test_result_files_round_trip_and_reject_bad_ones(tmp_path):
    rec = _record(Status.FAILED)
    path = save_result(tmp_path, rec)
    assert path == tmp_path / "results" / "ana" / "01_knn.json"
    assert load_result(tmp_path, "ana", "01_knn", "f" * 64)["notebooks"][0]["cells"][0]["status"] == "failed"
    assert load_result(tmp_path, "ana", "01_knn", "0" * 64) is None  # another fingerprint: grade again
    path.write_text(json.dumps(_record("passd")))
    assert load_result(tmp_path, "ana", "01_knn", "f" * 64) is None  # unknown status: grade again
    path.write_text("[" * 100_000)
    assert load_result(tmp_path, "ana", "01_knn", "f" * 64) is None
    with pytest.raises(FileNotFoundError, match="run `python -m grader autograde` first"):
        load_results(tmp_path)


@pytest.mark.parametrize("bad", ["..", ".", "a/b", "x\0y"])
def test_paths_under_out_refuse_names_that_leave_it(tmp_path, bad):
    with pytest.raises(ValueError, match="cannot name a file or folder"):
        result_path(tmp_path, bad, "01_knn")
    with pytest.raises(ValueError):
        feedback_path(tmp_path, "ana", bad, "knn")


def test_student_ids_are_graded_as_given_or_escaped_without_collisions():
    for ok in ("ana", "with space", "ünïcødé", "$(rm -rf ~)", "-rf", "a'b\"c", "x" * 128):
        assert id_text(ok) == ok and id_problem("student", ok) is None
    odd = ["a\nb", "a\\u000ab", "a\\nb", "caf\udce9", "caf\\xe9", "tab\there", "x" * 129, "x" * 130]
    texts = [id_text(n) for n in odd]
    assert len(set(texts)) == len(texts)  # different names never share a row or a results file
    for name, text in zip(odd, texts, strict=True):
        assert text.isprintable() and "/" not in text and len(text) <= 128
        assert id_problem("student", name)
    assert "starts or ends with spaces" in id_problem("student", " ana")
    assert "hides it" in id_problem("student", ".ana")


def _imports(path: Path, package: str) -> set[str]:
    """Modules of the course's packages that ``path`` imports, at any depth of the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package if node.level == 1 else package.rsplit(".", node.level - 1)[0]
                mod = f"{base}.{node.module}" if node.module else base
                names = [mod] + [f"{mod}.{a.name}" for a in node.names]
            else:
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found.update(n for n in names if n.split(".")[0] in ("grader", "course_utils"))
    return found


def test_import_graph_has_no_cycles():
    files, packages = {}, {}
    for top in ("grader", "course_utils"):
        for p in (ROOT / top).rglob("*.py"):
            parts = p.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            files[name] = p
            packages[name] = name if parts[-1] == "__init__" else ".".join(parts[:-1])
    graph = {m: {n for n in _imports(p, packages[m]) if n in files and n != m} for m, p in files.items()}
    # a package's __init__ is imported with each of its modules: not an edge of a cycle
    graph = {m: {n for n in deps if not m.startswith(n + ".")} for m, deps in graph.items()}
    assert "grader.autograde" in graph["grader.selfcheck"]  # the graph does see imports inside functions
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycle = path[path.index(n):] + [n] if n in path else [m, n]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if n not in state:
                visit(n, path + [n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


@pytest.mark.parametrize("module", MODULES)
def test_each_module_imports_on_its_own(module):
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
