"""Memory limits on memory really used, uids of their own, honest start-up failures, devices.

The memory tests grade real submissions in the bubblewrap sandbox with every
enforcement this machine offers (a cgroup where the process may create one, and
always the resident-memory watchdog): the reference answers of every assignment
score full marks with the torch that is installed (the CUDA build reserves
gigabytes of address space it never uses), and submissions that fill 12 GiB in
one go, in chunks, or across forked processes are stopped, each costing exactly
its own exercise.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader import confine
from grader.autograde import autograde
from grader.fixtures import make_submission
from grader.notebook import source_notebooks
from grader.paths import assignments

ROOT = Path(__file__).resolve().parents[1]

BOMBS = {
    # one allocation of 12 GiB, written to
    "fill_once": "x = np.ones(12 * 2**30 // 8)\n",
    # 12 GiB in 256 MiB pieces, each well under any per-allocation limit
    "fill_chunks": "chunks = []\nfor _ in range(48):\n    chunks.append(np.ones(2**25))\n",
    # six processes of 1.9 GiB each: no single process is over the limit
    "fill_fork": ("import os, time\nfor _ in range(6):\n    if os.fork() == 0:\n"
                  "        x = np.ones(2**28 - 2**24)\n        time.sleep(60)\n        os._exit(0)\n"
                  "time.sleep(60)\n"),
}
TARGET = "compute_distances_two_loops"


def _first_torch_assignment() -> str:
    from grader.specs import exercises

    return next(aid for aid in assignments() if any(ex.uses_torch for ex in exercises(aid).values()))


TORCH_AID = _first_torch_assignment()


def _bomb(body: str) -> str:
    ref = source_notebooks("01_knn")[0].solutions[TARGET]
    lines = "".join("    " + ln + "\n" for ln in body.splitlines())
    # The bombs bring their own loop: only the memory limit may decide this exercise.
    code = ref.replace("    ### BEGIN SOLUTION\n", "    ### BEGIN SOLUTION\n" + lines, 1)
    return code


def _backends() -> list[str]:
    names = []
    try:
        auto = confine.memory_enforcer("auto").backend
        names.append(auto)
    except confine.ConfinementUnavailable:
        pass
    if "watchdog" not in names:
        names.append("watchdog")
    return names


def _full(aid: str) -> float:
    return sum(sum(s.tests.values()) for s in source_notebooks(aid))


@pytest.fixture(scope="module", params=_backends())
def graded(request, tmp_path_factory, sandbox):
    backend = request.param
    root = tmp_path_factory.mktemp(f"memory-{backend}")
    subs = root / "submitted"
    make_submission(subs / "ref" / TORCH_AID, TORCH_AID, "reference")
    for name, body in BOMBS.items():
        make_submission(subs / name / "01_knn", "01_knn", "reference", overrides={TARGET: _bomb(body)})
    old = os.environ.get(confine.ENV_VAR)
    os.environ[confine.ENV_VAR] = backend
    try:
        autograde(subs, root / "out", workers=2, sandbox=sandbox, device="cpu", log=lambda m: None)
    finally:
        if old is None:
            os.environ.pop(confine.ENV_VAR, None)
        else:
            os.environ[confine.ENV_VAR] = old
    with open(root / "out" / "grades_detailed.csv") as f:
        rows = list(csv.DictReader(f))
    with open(root / "out" / "grades.csv") as f:
        totals = {(r["student_id"], r["assignment"]): float(r["score"]) for r in csv.DictReader(f)}
    return {"backend": backend, "rows": rows, "totals": totals, "out": root / "out"}


@pytest.mark.slow
def test_torch_exercises_get_full_marks_under_the_default_memory_limit(graded):
    """The installed torch (the CUDA build, by default) imports in every worker; every
    assignment's reference is graded with the default limits in test_autograde.py."""
    aid = TORCH_AID
    assert graded["totals"][("ref", aid)] == _full(aid), (graded["backend"], aid, [
        r for r in graded["rows"] if r["student_id"] == "ref" and r["status"] not in ("passed", "pending")])


@pytest.mark.slow
@pytest.mark.parametrize("student", sorted(BOMBS))
def test_filling_12_gib_costs_only_that_exercise(graded, student):
    mine = [r for r in graded["rows"] if r["student_id"] == student and r["kind"] == "auto"]
    target = [r for r in mine if r["grade_id"] == f"test_{TARGET}"]
    assert target and target[0]["status"] == "killed", (graded["backend"], target)
    assert all(r["status"] == "passed" for r in mine if r["grade_id"] != f"test_{TARGET}"), mine
    assert graded["totals"][(student, "01_knn")] == _full("01_knn") - float(target[0]["max_score"])
    result = json.loads((graded["out"] / "results" / student / "01_knn.json").read_text())
    cell = next(c for nb in result["notebooks"] for c in nb["cells"] if c["grade_id"] == f"test_{TARGET}")
    text = cell["message"] + " ".join(k["message"] for k in cell["checks"])
    assert "memory" in text.lower(), text


_HOLDER = ("import json, sys\nfrom grader import confine\n"
           "leases = [confine.UidLease() for _ in range(200)]\n"
           "print(json.dumps([lease.uid for lease in leases]), flush=True)\n"
           "sys.stdin.readline()  # hold them until the test has seen both lists\n"
           "for lease in leases:\n    lease.release()\n")


def test_no_two_live_workers_share_a_uid():
    """Two grading processes (two instructors, or autograde beside check) hand out uids at once."""
    procs = [subprocess.Popen([sys.executable, "-c", _HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, cwd=ROOT) for _ in range(2)]
    try:
        a, b = (json.loads(p.stdout.readline()) for p in procs)
    finally:
        for p in procs:
            p.communicate("\n", timeout=60)
    assert len(set(a)) == len(a) == 200 and len(set(b)) == 200
    assert not set(a) & set(b)
    assert all(confine.UID_FIRST <= u < confine.UID_FIRST + confine.UID_COUNT for u in a + b)


def test_a_released_uid_leaves_no_lock_file_and_a_dead_holder_none():
    lease = confine.UidLease()
    folder = confine._lock_dir()
    assert (folder / str(lease.uid)).exists()
    lease.release()
    assert not (folder / str(lease.uid)).exists()
    # A grading process that dies holding a lease: the kernel drops the lock.
    code = ("from grader import confine; import os; l = confine.UidLease(); print(l.uid, flush=True); "
            "os._exit(0)")
    uid = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout)
    import fcntl

    fd = os.open(folder / str(uid), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # would raise if still held
    finally:
        os.close(fd)


def test_an_unknown_enforcement_is_refused_with_the_choices():
    with pytest.raises(confine.ConfinementUnavailable, match="watchdog"):
        confine.memory_enforcer("rlimit_as")


def test_a_worker_that_cannot_start_is_reported_once_with_its_stderr(sandbox, tmp_path, monkeypatch):
    """A broken installation (here: the worker module missing from the sandbox) is the
    grading machine's problem: one clear error before grading, never "killed" exercises."""
    from grader import runner
    from grader import sandbox as sb
    from grader.selfcheck import check_notebook

    real = sb.package_files
    monkeypatch.setattr(sb, "package_files", lambda: [p for p in real() if p.name != "worker.py"])
    nb = make_submission(tmp_path / "me" / "01_knn", "01_knn", "reference")[0]
    with pytest.raises(runner.WorkerStartupError, match="No module named grader.worker"):
        check_notebook(nb, sandbox=sandbox, out=lambda m: None, device="cpu")
    # Graded anyway (as a Dask worker would, without the preflight): every exercise says why.
    ctx = runner.GradingContext(sb.get_sandbox(sandbox))
    src = source_notebooks("01_knn")[0]
    from grader.notebook import read_submission
    from grader.specs import exercises

    specs = exercises("01_knn")
    results = runner.grade_exercises(ctx, "01_knn", [(specs[g], p) for g, p in src.tests.items()],
                                     src.setup, read_submission(nb, src))
    for res in results.values():
        assert res.status == "error", res
        assert "grading worker stopped before running any of your code" in res.message
        assert "No module named grader.worker" in res.message


def test_grading_on_a_gpu_that_is_not_there_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    nb = make_submission(tmp_path / "me" / "01_knn", "01_knn", "reference")[0]
    proc = subprocess.run([sys.executable, "-m", "grader", "check", str(nb), "--device", "cuda"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert "asked for a GPU, but torch sees none" in proc.stderr and "--device cpu" in proc.stderr


def test_workers_get_one_thread_per_pool_by_default():
    from grader.sandbox import Limits, worker_env

    env = worker_env(Limits())
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"
    assert worker_env(Limits.parse(["threads=3"]))["OMP_NUM_THREADS"] == "3"
