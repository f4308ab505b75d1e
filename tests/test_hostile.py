"""Hostile and broken submissions of a real assignment, graded in one batch with honest ones.

Every submission is the reference solution of 01_knn except for one answer
cell, which carries an attack (or a crash, a hang, a bomb...).  Each test
asserts the exact score and status that result: the attacked exercise gets
what it deserves, every other exercise is still scored, and nothing outside
the sandbox changed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

from grader.autograde import autograde
from grader.fixtures import make_submission
from grader.notebook import source_notebooks
from grader.paths import ROOT

pytestmark = pytest.mark.slow

AID = "01_knn"
TARGET = "compute_distances_two_loops"  # attacked exercise: nothing else calls it
GID = f"test_{TARGET}"
SECRET_ENV = "COURSE_GRADER_SECRET"
LIMITS = ["wall_s=15", "cpu_s=15", "submission_wall_s=300"]


def _source():
    return source_notebooks(AID)[0]


def _points():
    return dict(_source().tests)


def attacked(before: str = "", inside: str = "", honest: bool = True, top: str = "") -> str:
    """The reference answer cell for TARGET with ``inside`` run at the start of the
    function (and ``top`` at the top of the cell).  With ``honest=False`` the
    function returns the right answer only if ``inside`` set ``ok = True``."""
    ref = _source().solutions[TARGET].replace(f"def {TARGET}(", "def _honest(")
    body = "\n".join("    " + line for line in inside.strip().splitlines()) or "    pass"
    ret = ("    return _honest(X_train, X_test)" if honest else
           "    return _honest(X_train, X_test) if ok else np.zeros((len(X_test), len(X_train)))")
    return (f"{top}\n{ref}\n\n{before}\n\ndef {TARGET}(X_train, X_test):\n"
            f"    ok = False\n{body}\n{ret}\n")


class Listener:
    """A TCP server on 127.0.0.1 that counts the connections it receives."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
                self.connections += 1
                conn.close()
            except OSError:
                pass

    def close(self):
        self._stop = True
        self.thread.join()
        self.sock.close()


def _digest(paths):
    return {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


def attacks(subs: Path, out: Path, port: int) -> dict[str, str]:
    secret_paths = [ROOT / "solutions" / AID / "knn.ipynb", ROOT / "grader" / "specs" / "knn.py",
                    ROOT / "grader" / "evaluate.py", out / "grades.csv",
                    subs / "honest" / AID / "knn.ipynb"]
    reads = "\n".join(f"try:\n    open({str(p)!r}).read(); ok = True\nexcept Exception:\n    pass"
                      for p in secret_paths)
    writable = [ROOT / "course_utils" / "checks.py", ROOT / "grader" / "worker.py",
                Path(np.__file__) if (np := __import__("numpy")) else None, out / "grades.csv"]
    writes = "\n".join(f"try:\n    open({str(p)!r}, 'a').write('\\nimport os; os._exit(3)\\n')\nexcept Exception:\n    pass"
                       for p in writable)
    return {
        # crashes
        "crash_exit": attacked(inside="import os\nos._exit(0)"),
        "crash_segfault": attacked(inside="import ctypes\nctypes.string_at(0)"),
        "crash_toplevel": attacked(top="import os\nos._exit(1)"),
        "quit_toplevel": "quit()\n" + _source().solutions[TARGET],
        # hangs and bombs
        "hang_busy": attacked(inside="import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                     "signal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    pass"),
        "hang_sleep": attacked(inside="import time\ntime.sleep(10_000)"),
        "memory_bomb": attacked(inside="x = bytearray(64 * 2**30)"),
        "fork_bomb": attacked(inside="import os, time\nfor _ in range(10_000):\n"
                                     "    if os.fork() == 0:\n        time.sleep(10_000)\n        os._exit(0)"),
        # processes left behind: honest answers, but they try to outlive grading
        "leftovers": attacked(inside="import subprocess, os\n"
                                     "subprocess.Popen(['sleep', '4242'], start_new_session=True)\n"
                                     "if os.fork() == 0:\n    os.setsid()\n    os.execvp('sleep', ['sleep', '4243'])"),
        # the outside world
        "network": attacked(inside=f"import socket, urllib.request\n"
                                   f"try:\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
                                   f"except OSError:\n    pass\n"
                                   f"try:\n    urllib.request.urlopen('http://127.0.0.1:{port}/', timeout=2)\n"
                                   f"except Exception:\n    pass"),
        "read_secrets": attacked(inside=reads, honest=False),
        "write_code": attacked(inside=writes + "\ntry:\n    open('/tmp/pwned-by-student', 'w').write('x')\n"
                                               "except Exception:\n    pass"),
        "environment": attacked(inside=f"import os\nok = {SECRET_ENV!r} in os.environ or "
                                       f"any('SECRET' in k for k in os.environ)", honest=False),
        # fooling the checks from inside the student's process
        "monkeypatch": attacked(top="import numpy as np, numpy.testing\n"
                                    "np.allclose = lambda *a, **k: True\n"
                                    "np.testing.assert_allclose = lambda *a, **k: None\n"
                                    "np.array_equal = lambda *a, **k: True\n"
                                    "import course_utils.checks as _c\n_c.compare = lambda *a, **k: None\n"
                                    "import builtins\nbuiltins.AssertionError = Exception",
                                honest=False),
        "ipython_hooks": attacked(top="import sys\nip = get_ipython()\n"
                                      "ip.set_custom_exc((BaseException,), lambda *a, **k: None)\n"
                                      "ip.showtraceback = lambda *a, **k: None\n"
                                      "ip.ast_transformers.append(object())\n"
                                      "sys.excepthook = lambda *a: None",
                                  honest=False),
        # honest work that is noisy
        "noisy_honest": attacked(inside="import sys, warnings\nprint('x' * 2_000_000)\n"
                                        "warnings.warn('this is fine')\nsys.stderr.write('diagnostics\\n' * 1000)"),
    }


def tamper(path: Path) -> None:
    """Wrong answer, its test cell deleted, another test cell gutted with 100 points,
    execution-changing tags, and a duplicated answer cell."""
    nb = nbformat.read(str(path), as_version=4)
    cells = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        gid = meta.get("grade_id")
        if gid == GID:
            continue  # deleted test cell
        if gid == TARGET:
            cell.source = f"def {TARGET}(X_train, X_test):\n    return np.zeros((len(X_test), len(X_train)))\n"
        if gid == "test_compute_distances_l1":
            cell.source = "pass"
            meta["points"] = 100
        cell.metadata.setdefault("tags", []).extend(["skip-execution", "raises-exception"])
        cells.append(cell)
        if gid == "predict_labels":  # a second copy with the same grade_id: the first one counts
            dup = nbformat.from_dict(json.loads(json.dumps(cell)))
            dup["id"] = "duplicated-answer"
            dup.source = "def predict_labels(dists, y_train, k):\n    return np.zeros(len(dists), dtype=int)\n"
            cells.append(dup)
    nb.cells = cells
    nbformat.write(nb, str(path))


def delete_answer_cell(path: Path, gid: str) -> None:
    nb = nbformat.read(str(path), as_version=4)
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != gid]
    nbformat.write(nb, str(path))


def _pgrep(pattern: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [ln for ln in out.splitlines() if pattern in ln and "ps -eo" not in ln]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, sandbox):
    root = tmp_path_factory.mktemp("hostile")
    subs, out = root / "submitted", root / "out"
    listener = Listener()
    guarded = [ROOT / "course_utils" / "checks.py", ROOT / "grader" / "worker.py",
               Path(__import__("numpy").__file__), ROOT / "solutions" / AID / "knn.ipynb"]
    before = _digest(guarded)
    make_submission(subs / "honest" / AID, AID, "reference")
    for student, code in attacks(subs, out, listener.port).items():
        make_submission(subs / student / AID, AID, "reference", overrides={TARGET: code})
    make_submission(subs / "tampered" / AID, AID, "reference")
    tamper(subs / "tampered" / AID / "knn.ipynb")
    make_submission(subs / "missing_cell" / AID, AID, "reference")
    delete_answer_cell(subs / "missing_cell" / AID / "knn.ipynb", TARGET)
    mp = pytest.MonkeyPatch()
    mp.setenv(SECRET_ENV, "hunter2")
    from grader.sandbox import Limits

    try:
        t0 = time.monotonic()
        autograde(subs, out, workers=2, sandbox=sandbox, limits=Limits.parse(LIMITS), log=lambda *_: None)
        seconds = time.monotonic() - t0
    finally:
        mp.undo()
        listener.close()
    with open(out / "grades_detailed.csv") as f:
        rows = list(csv.DictReader(f))
    with open(out / "grades.csv") as f:
        totals = {r["student_id"]: float(r["score"]) for r in csv.DictReader(f)}
    return {"rows": rows, "totals": totals, "listener": listener, "guarded": guarded, "before": before,
            "out": out, "seconds": seconds}


def _status(h, student, gid=GID):
    return next(r["status"] for r in h["rows"] if r["student_id"] == student and r["grade_id"] == gid)




def _full():
    return sum(_points().values())


def test_honest_submission_gets_full_marks_in_the_same_batch(hostile):
    assert hostile["totals"]["honest"] == _full()
    assert hostile["totals"]["noisy_honest"] == _full()


@pytest.mark.parametrize("student,status", [
    ("crash_exit", "killed"), ("crash_segfault", "killed"), ("crash_toplevel", "killed"),
    ("quit_toplevel", "error"), ("hang_busy", "timeout"), ("hang_sleep", "timeout"),
    ("memory_bomb", "killed"), ("fork_bomb", "killed"),
    ("read_secrets", "failed"), ("environment", "failed"), ("monkeypatch", "failed"),
    ("ipython_hooks", "failed"),
])
def test_attack_costs_exactly_the_attacked_exercise(hostile, student, status):
    assert _status(hostile, student) == status
    others = [r for r in hostile["rows"] if r["student_id"] == student and r["kind"] == "auto"
              and r["grade_id"] != GID]
    assert others and all(r["status"] == "passed" for r in others), others
    assert hostile["totals"][student] == _full() - _points()[GID]


def test_leftover_processes_are_gone(hostile):
    assert _status(hostile, "leftovers") == "passed"
    assert not _pgrep("sleep 4242") and not _pgrep("sleep 4243")
    # Workers of this interpreter only: another checkout's grader may be running on the machine.
    assert not [p for p in _pgrep("grader.worker") if sys.executable in p]


def test_no_network(hostile):
    assert _status(hostile, "network") == "passed"
    assert hostile["listener"].connections == 0


def test_code_and_outputs_cannot_be_modified(hostile):
    assert _status(hostile, "write_code") == "passed"
    assert _digest(hostile["guarded"]) == hostile["before"]
    assert not Path("/tmp/pwned-by-student").exists()
    assert "os._exit" not in (hostile["out"] / "grades.csv").read_text()


def test_tampering_is_neutralised(hostile):
    rows = {r["grade_id"]: r for r in hostile["rows"] if r["student_id"] == "tampered"}
    assert rows[GID]["status"] == "failed"  # its deleted test cell still runs, from the source
    assert rows["test_compute_distances_l1"]["max_score"] == f"{_points()['test_compute_distances_l1']:g}"
    assert rows["test_compute_distances_l1"]["status"] == "passed"
    assert rows["test_predict_labels"]["status"] == "passed"  # first copy of a duplicated answer counts
    assert hostile["totals"]["tampered"] == _full() - _points()[GID]


def test_missing_answer_cell_costs_only_its_exercise(hostile):
    assert _status(hostile, "missing_cell") == "error"
    assert hostile["totals"]["missing_cell"] == _full() - _points()[GID]


def test_feedback_shows_failures_without_secrets(hostile):
    page = (hostile["out"] / "feedback" / "read_secrets" / AID / "knn.html").read_text()
    assert GID in page and "failed" in page
    ref = json.loads((hostile["out"] / "results" / "honest" / f"{AID}.json").read_text())
    assert ref["score"] == _full()
    for secret in ("BEGIN SOLUTION", "run_hidden_tests", "default_rng"):
        assert secret not in page


def test_grader_killed_mid_run_finishes_with_same_grades(tmp_path, sandbox):
    subs = tmp_path / "submitted"
    for i in range(4):
        make_submission(subs / f"s{i}" / AID, AID, "reference" if i % 2 == 0 else "release")
    cmd = [sys.executable, "-m", "grader", "autograde", str(subs), "--out", str(tmp_path / "out"),
           "--workers", "1", "--sandbox", sandbox]
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    results = tmp_path / "out" / "results"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and len(list(results.rglob("*.json"))) < 1:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 1 <= len(list(results.rglob("*.json"))) < 4, "the grader was not stopped mid-batch"
    time.sleep(1)
    assert not _pgrep("grader.worker"), "a sandboxed worker outlived the grader"
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "reusing" in done.stdout
    with open(tmp_path / "out" / "grades.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["student_id"] for r in rows) == ["s0", "s1", "s2", "s3"]  # no duplicates
    full = _full()
    assert {r["student_id"]: float(r["score"]) for r in rows} == {"s0": full, "s1": 0, "s2": full, "s3": 0}
    # A fresh re-grade gives the same grades.
    shutil.rmtree(tmp_path / "out")
    again = subprocess.run(cmd + ["--no-resume"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0
    with open(tmp_path / "out" / "grades.csv") as f:
        assert [dict(r) for r in csv.DictReader(f)] == rows


def test_no_sandbox_available_fails_loudly(monkeypatch, tmp_path):
    from grader.sandbox import Bubblewrap, SandboxUnavailable, get_sandbox

    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on PATH
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        get_sandbox("auto")
    with pytest.raises(SandboxUnavailable):
        Bubblewrap()
    proc = subprocess.run([sys.executable, "-m", "grader", "autograde", str(tmp_path), "--out",
                           str(tmp_path / "o")], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PATH=str(tmp_path)))
    assert proc.returncode == 2 and "bubblewrap" in proc.stderr
