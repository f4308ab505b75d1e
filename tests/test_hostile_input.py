"""Hostile input on the trusted side: files, folders and names the grader reads.

One ``python -m grader autograde`` run (in the bubblewrap sandbox, two
workers) grades a folder of 01_knn submissions that are symbolic links to the
reference solutions, fifos, deeply nested or huge JSON, files that are not
UTF-8, odd student ids, and answer cells that rebind the functions the
worker itself uses.  Each case must end as a normal grade or as a clear line
in ``problems.csv``: never a crash, a hang, a link followed, or a file
written outside ``--out``.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from grader.fixtures import make_submission
from grader.notebook import source_notebooks
from grader.paths import ROOT

pytestmark = pytest.mark.slow

AID = "01_knn"
TARGET = "compute_distances_two_loops"
SHELL_ID = "$(touch PWNED); `touch PWNED2` && rm -rf x"
NOT_UTF8 = b"caf\xe9"  # a latin-1 folder name
LIMITS = ["--limit", "wall_s=30", "--limit", "cpu_s=30", "--limit", "submission_wall_s=300"]


def _source():
    return source_notebooks(AID)[0]


def _full() -> float:
    return sum(_source().tests.values())


def _with_top(code: str, inside: str = "") -> str:
    """The reference answer for TARGET, with ``code`` run when the cell runs and
    ``inside`` each time the function is called."""
    ref = _source().solutions[TARGET]
    if inside:
        body = "\n".join("    " + ln for ln in inside.strip().splitlines())
        ref = ref.replace(f"def {TARGET}(", "def _honest(") + \
            f"\n\ndef {TARGET}(X_train, X_test):\n{body}\n    return _honest(X_train, X_test)\n"
    return code.strip() + "\n\n" + ref


#: answer cells that rebind what the worker uses; the functions themselves are right
REBINDINGS = {
    "rebind_numpy": _with_top("import numpy as np\nnp.savez = None\nnp.load = None\nnp.frombuffer = None\n"
                              "np.asarray = None"),
    "rebind_json": _with_top("import json\njson.dumps = lambda *a, **k: 'garbage'\njson.loads = None\n"
                             "json._default_encoder = None"),
    "rebind_wire": _with_top("import grader.wire, grader.drivers\n"
                             "grader.wire.write = lambda *a, **k: None\ngrader.wire.dumps = lambda *a: b''\n"
                             "grader.wire.read = None\ngrader.drivers.run = lambda *a, **k: 0"),
    "rebind_builtins": _with_top("import builtins\nbuiltins.open = None\nbuiltins.len = lambda x: 0\n"
                                 "builtins.range = None\nbuiltins.BaseException = int\nbuiltins.str = bytes"),
    "rebind_files": _with_top("import os, pathlib, zipfile, io\nos.replace = None\nos.rename = None\n"
                              "os.open = None\nos.write = None\n"
                              "pathlib.Path.write_text = None\npathlib.Path.write_bytes = None\n"
                              "pathlib.PosixPath.write_bytes = lambda *a: 0\nzipfile.ZipFile = None\n"
                              "io.BytesIO = None"),
    "rebind_modules": _with_top("import sys, types\nsys.modules['grader.wire'] = types.ModuleType('fake')\n"
                                "sys.modules['json'] = None\nsys.modules['numpy'] = None\n"
                                "sys.modules['copy'] = None"),
    "rebind_worker": _with_top("import sys\nw = sys.modules['__main__']\n"
                               "for k in list(vars(w)):\n    if k.startswith('_') and not k.startswith('__'):\n"
                               "        setattr(w, k, None)"),
    # The worker's own files are input to the grader too: a fifo where the grader reads, links
    # to the instructor's files; then the process ends.  The grader must not hang or leak.
    "worker_files": _with_top("import os, sys", inside=f"""
for n in ("progress", "cells.json", "out_0_1.npz", "out_1_0.npz"):
    p = os.path.join(sys.argv[1], n)
    if os.path.lexists(p):
        os.remove(p)
    os.mkfifo(p)
os.remove(os.path.join(sys.argv[1], "log.txt"))
os.symlink({str(ROOT / "solutions" / "01_knn" / "knn.ipynb")!r}, os.path.join(sys.argv[1], "log.txt"))
os._exit(0)"""),
    "rebind_in_call": _with_top("import numpy as np, json, os, builtins",
                                inside="np.savez = None\njson.dumps = None\nos.replace = None\n"
                                       "builtins.open = None\nimport sys\nsys.modules['grader.wire'] = None"),
}


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def build(subs: Path) -> None:
    sol = ROOT / "solutions" / AID
    name = f"{_source().name}.ipynb"
    # Symbolic links out of the submissions folder, at each level, and a fifo.
    os.symlink(sol / name, _mkdir(subs / "link_notebook" / AID) / name)
    os.symlink(ROOT / "solutions", subs / "link_student")
    os.symlink(sol, _mkdir(subs / "link_assignment") / AID)
    os.mkfifo(_mkdir(subs / "fifo" / AID) / name)
    os.mkfifo(subs / "fifo_student")
    try:
        os.link(sol / name, _mkdir(subs / "hardlink" / AID) / name)
    except OSError:  # the temporary folder is on another file system than the course
        (subs / "hardlink" / AID).rmdir()
        (subs / "hardlink").rmdir()
    # Files that are not notebooks, or are too much of one.
    deep = 100_000
    (_mkdir(subs / "deep_json" / AID) / name).write_text('{"cells": ' + "[" * deep + "]" * deep + "}")
    with open(_mkdir(subs / "huge" / AID) / name, "wb") as f:
        f.write(b'{"nbformat": 4, "cells": [')
        f.truncate(300 * 2**20)  # sparse: 300 MB that take no disk space
    (_mkdir(subs / "bad_json" / AID) / name).write_text('{"cells": [')
    (_mkdir(subs / "nbformat3_broken" / AID) / name).write_text(
        json.dumps({"nbformat": 3, "nbformat_minor": 0, "cells": [], "metadata": {}}))
    make_submission(subs / "nbformat3" / AID, AID, "reference")  # the same answers, saved as nbformat 3
    nb = nbformat.read(str(subs / "nbformat3" / AID / name), as_version=4)
    (subs / "nbformat3" / AID / name).write_text(nbformat.writes(nbformat.convert(nb, 3), version=3))
    (_mkdir(subs / "not_utf8" / AID) / name).write_bytes(
        b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {"author": "' + NOT_UTF8 + b'"}, "cells": []}')
    # Big but honest: a cell of 20 MB, thousands of cells.
    make_submission(subs / "big_cell" / AID, AID, "reference")
    nb = nbformat.read(str(subs / "big_cell" / AID / name), as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("x" * (20 * 2**20)))
    nbformat.write(nb, str(subs / "big_cell" / AID / name))
    make_submission(subs / "many_cells" / AID, AID, "reference")
    nb = nbformat.read(str(subs / "many_cells" / AID / name), as_version=4)
    nb.cells.extend(nbformat.v4.new_code_cell(f"x = {i}") for i in range(5000))
    nbformat.write(nb, str(subs / "many_cells" / AID / name))
    # Student ids: graded as they are, or refused with a reason.
    for sid in ("with space", "ünïcødé", SHELL_ID, "-rf", "a'b\"c"):
        make_submission(subs / sid / AID, AID, "reference")
    make_submission(subs / "newline\nid" / AID, AID, "reference")
    make_submission(subs / ".hidden" / AID, AID, "reference")
    make_submission(subs / "trailing " / AID, AID, "reference")
    make_submission(Path(os.fsdecode(bytes(subs) + b"/" + NOT_UTF8)) / AID, AID, "reference")
    # Answer cells that rebind the worker's machinery.
    for sid, code in REBINDINGS.items():
        make_submission(subs / sid / AID, AID, "reference", overrides={TARGET: code})


def _tree(root: Path, skip: Path) -> set[str]:
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [n for n in dirnames if Path(dirpath, n) != skip]
        found.update(os.path.join(dirpath, n) for n in dirnames + filenames)
    return found


@pytest.fixture(scope="module")
def graded(tmp_path_factory, sandbox):
    root = tmp_path_factory.mktemp("hostile-input")
    subs, out = root / "submitted", root / "out"
    build(subs)
    before = _tree(root, out)
    cmd = [sys.executable, "-m", "grader", "autograde", str(subs), "--out", str(out), "--workers", "2",
           "--sandbox", sandbox, *LIMITS]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=900,
                          env=dict(os.environ, MPLBACKEND="Agg"))
    seconds = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "grades.csv", encoding="utf-8") as f:
        grades = {(r["student_id"], r["assignment"]): r for r in csv.DictReader(f)}
    with open(out / "grades_detailed.csv", encoding="utf-8") as f:
        detailed = list(csv.DictReader(f))
    with open(out / "problems.csv", encoding="utf-8") as f:
        problems = {(r["student_id"], r["assignment"]): r for r in csv.DictReader(f)}
    return {"root": root, "subs": subs, "out": out, "grades": grades, "detailed": detailed,
            "problems": problems, "before": before, "seconds": seconds, "stdout": proc.stdout}


@pytest.mark.parametrize("student,assignment,words", [
    ("link_notebook", AID, "is a symbolic link"),
    ("link_student", "", "student folder \"link_student\" is a symbolic link"),
    ("link_assignment", AID, "assignment folder \"01_knn\" is a symbolic link"),
    ("fifo", AID, "named pipe"),
    ("fifo_student", "", "student folder \"fifo_student\" is a named pipe (fifo), not a folder"),
    ("hardlink", AID, "hard link to the instructor's source notebook"),
    ("deep_json", AID, "nested too deeply"),
    ("huge", AID, "over the limit of 50 MiB"),
    ("bad_json", AID, "not valid notebook JSON"),
    ("nbformat3_broken", AID, "nbformat 3 but has no worksheets"),
    ("not_utf8", AID, "not UTF-8"),
    ("newline\\u000aid", AID, "not printable"),
    (".hidden", AID, "starts with \".\""),
    ("trailing ", AID, "starts or ends with spaces"),
    ("caf\\xe9", AID, "not UTF-8"),
])
def test_unreadable_input_scores_zero_with_a_reason(graded, student, assignment, words):
    if student == "hardlink" and not (graded["subs"] / student).exists():
        pytest.skip("no hard link can join the temporary folder and the course here")
    row = graded["grades"][(student, assignment)]
    assert float(row["score"]) == 0
    reason = graded["problems"][(student, assignment)]["reason"]
    assert words in reason, reason
    assert all(r["status"] in ("error", "missing") for r in graded["detailed"]
               if r["student_id"] == student and r["assignment"] == assignment)


@pytest.mark.parametrize("student", ["big_cell", "many_cells", "nbformat3", "with space", "ünïcødé", SHELL_ID, "-rf",
                                     "a'b\"c"])
def test_big_but_valid_notebooks_and_odd_ids_are_graded(graded, student):
    assert float(graded["grades"][(student, AID)]["score"]) == _full()
    assert (student, AID) not in graded["problems"]
    page = graded["out"] / "feedback" / student / AID / f"{_source().name}.html"
    assert page.is_file()


def test_files_the_worker_leaves_are_not_trusted(graded):
    """A fifo or a link where the grader reads the worker's files neither hangs the batch
    (it finished) nor shows the file behind the link in results or feedback."""
    rec = (graded["out"] / "results" / "worker_files" / f"{AID}.json").read_text()
    page = (graded["out"] / "feedback" / "worker_files" / AID / f"{_source().name}.html").read_text()
    assert float(graded["grades"][("worker_files", AID)]["score"]) < _full()
    for text in (rec, page):
        assert "nbformat_minor" not in text and "BEGIN SOLUTION" not in text


@pytest.mark.parametrize("student", sorted(set(REBINDINGS) - {"worker_files"}))
def test_rebinding_the_workers_machinery_costs_nothing(graded, student):
    rows = [r for r in graded["detailed"] if r["student_id"] == student and r["kind"] == "auto"]
    assert rows and all(r["status"] == "passed" for r in rows), rows
    assert float(graded["grades"][(student, AID)]["score"]) == _full()


def test_links_are_not_followed_and_nothing_is_written_outside_out(graded):
    root, out = graded["root"], graded["out"]
    assert _tree(root, out) == graded["before"]
    for name in ("PWNED", "PWNED2"):
        assert not (root / name).exists() and not (ROOT / name).exists() and not (out / name).exists()
    for dirpath, dirnames, filenames in os.walk(out):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            assert not p.is_symlink()
            assert p.resolve().is_relative_to(out.resolve())
    # the reference notebook behind the links was never graded as a submission
    rec = json.loads((out / "results" / "link_notebook" / f"{AID}.json").read_text())
    assert rec["score"] == 0 and "symbolic link" in rec["notebooks"][0]["problem"]


def test_one_row_per_submission(graded):
    assert len(graded["grades"]) == len(set(graded["grades"]))
    expected = 14 + (graded["subs"] / "hardlink").exists() + 8 + len(REBINDINGS)
    assert len(graded["grades"]) == expected, sorted(graded["grades"])


def test_batch_time(graded):
    print(f"hostile input batch: {graded['seconds']:.1f} s")
    assert graded["seconds"] < 600


# ----------------------------------------------------------------------------
# The same input met by a student's own tools: ``grader check`` and the course index
# ----------------------------------------------------------------------------

def test_check_never_takes_a_path_from_the_notebooks_metadata(tmp_path):
    from grader.selfcheck import assignment_of

    nb = tmp_path / "01_knn" / "knn.ipynb"
    nb.parent.mkdir()
    for aid in ("../../../tmp/escape", "/etc", "..", ".", "01_knn/../.."):
        nb.write_text(json.dumps({"nbformat": 4, "cells": [], "metadata": {"course": {"assignment": aid}}}))
        assert assignment_of(nb) == "01_knn"  # the folder's name, never the path written in the file
    nb.write_text("[" * 100_000)
    assert assignment_of(nb) == "01_knn"


def test_course_index_reads_hostile_notebooks_without_failing(tmp_path):
    from course_utils.progress import collect

    folder = tmp_path / "01_knn"
    folder.mkdir()
    (folder / "deep.ipynb").write_text('{"cells": ' + "[" * 100_000 + "]" * 100_000 + "}")
    (folder / "list.ipynb").write_text("[1, 2]")
    (folder / "odd_cells.ipynb").write_text(json.dumps({"cells": [1, "x", {"metadata": []}, {
        "cell_type": "markdown", "source": [1, None]}], "metadata": {"course": {"minutes": ["a", "b"]}}}))
    with open(folder / "huge.ipynb", "wb") as f:
        f.truncate(300 * 2**20)
    (folder / "latin1.ipynb").write_bytes(b'{"cells": [], "x": "' + NOT_UTF8 + b'"}')
    [info] = collect(tmp_path)
    assert sorted(n.path.name for n in info.notebooks) == [
        "deep.ipynb", "huge.ipynb", "latin1.ipynb", "list.ipynb", "odd_cells.ipynb"]
    assert all(n.filled == n.total == 0 for n in info.notebooks)


def test_a_worker_that_keeps_rewriting_its_progress_is_stopped(tmp_path, sandbox):
    """The grader times each step from the worker's progress file; a worker that keeps
    changing it (while doing nothing) still meets the deadline of the whole run."""
    subs = tmp_path / "submitted"
    toggle = _with_top("import os, sys, time", inside="""
p = os.path.join(sys.argv[1], "progress")
for i in range(100_000):
    with open(p, "w") as f:
        f.write(f"cell {i % 2}")
    time.sleep(0.3)""")
    make_submission(subs / "toggler" / AID, AID, "reference", overrides={TARGET: toggle})
    cmd = [sys.executable, "-m", "grader", "autograde", str(subs), "--out", str(tmp_path / "out"),
           "--workers", "1", "--sandbox", sandbox, "--limit", "wall_s=3", "--limit", "cpu_s=10",
           "--limit", "submission_wall_s=20"]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # one run of the worker: 3 s for each of 8 cells and 6 exercises, then the budget is spent
    assert time.monotonic() - t0 < 120
    with open(tmp_path / "out" / "grades_detailed.csv", encoding="utf-8") as f:
        rows = {r["grade_id"]: r["status"] for r in csv.DictReader(f) if r["kind"] == "auto"}
    assert rows[f"test_{TARGET}"] == "timeout"
