"""Grading on a Dask cluster: a real scheduler and two workers on loopback.

The batch is graded through ``python -m grader autograde --scheduler``; once
the first result is in, a worker that is busy grading is killed with SIGKILL.
Every submission must still get exactly one result, with the same scores as
a local run of the same submissions.
"""

import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from grader.autograde import autograde, grade_payload
from grader.distributed import DistributedGradingError, run_on_dask, task_key
from grader.fixtures import make_small_class
from grader.paths import ROOT, assignments

AID = "01_knn" if "01_knn" in assignments() else (assignments() or ["01_knn"])[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _payload(student="s1", sandbox="none"):
    return {"student_id": student, "assignment": AID, "files": {}, "fingerprint": "0" * 64,
            "sandbox": sandbox, "limits": {}, "device": "cpu"}


def test_unreachable_scheduler_is_a_clear_error(monkeypatch):
    import grader.distributed as dist

    monkeypatch.setattr(dist, "CONNECT_TIMEOUT_S", 2)
    port = _free_port()
    with pytest.raises(ConnectionError, match="cannot reach the Dask scheduler"):
        run_on_dask([_payload()], f"tcp://127.0.0.1:{port}", lambda rec: None, grade=grade_payload,
                    log=lambda *_: None)


def test_failed_tasks_are_retried_then_named(tmp_path):
    """A task that keeps raising is retried, then reported by name; the others are delivered."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None,
                      local_directory=str(tmp_path)) as cluster:
        got = []
        with pytest.raises(DistributedGradingError, match="bad_student") as info:
            # "nosuch" is not a sandbox: grade_payload raises ValueError on the worker.
            run_on_dask([_payload("bad_student", sandbox="nosuch")], cluster.scheduler_address,
                        got.append, grade=grade_payload, retries=1, log=lambda *_: None)
        assert "unknown sandbox" in str(info.value)
        assert got == []


def test_task_keys_are_unique_per_submission_and_fingerprint():
    a, b = _payload("a"), _payload("b")
    assert task_key(a) != task_key(b)
    assert task_key(a) == task_key(dict(a))
    assert task_key(a) != task_key(dict(a, fingerprint="1" * 64))


# ----------------------------------------------------------------------------
# A real cluster
# ----------------------------------------------------------------------------

def _dask_exe() -> str:
    exe = Path(sys.executable).with_name("dask")
    return str(exe) if exe.exists() else (shutil.which("dask") or "dask")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    proc.wait()


@pytest.fixture
def cluster(tmp_path):
    """``dask scheduler`` and two ``dask worker`` processes (one thread each) on loopback."""
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = []
    log = open(tmp_path / "cluster.log", "w")

    def start(*args):
        p = subprocess.Popen([_dask_exe(), *args], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
                             start_new_session=True)
        procs.append(p)
        return p

    try:
        start("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")
        workers = {}
        for i in range(2):
            name = f"w{i}"
            workers[name] = start("worker", address, "--name", name, "--nworkers", "1", "--nthreads", "1",
                                  "--no-dashboard", "--local-directory", str(tmp_path / name))
        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(address, timeout="5s") as client:
                    client.wait_for_workers(2, timeout=max(1.0, deadline - time.monotonic()))
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield {"address": address, "workers": workers, "log": tmp_path / "cluster.log"}
    finally:
        for p in reversed(procs):
            _stop(p)
        log.close()


def _busy_worker(address: str) -> tuple[str, str]:
    """(worker name, task key) of a worker that is grading right now."""
    from distributed import Client

    with Client(address, timeout="10s") as client:
        names = {addr: w["name"] for addr, w in client.scheduler_info()["workers"].items()}
        for addr, keys in client.processing().items():
            if keys and addr in names:
                return names[addr], keys[0]
    return "", ""


def _make_batch(root: Path) -> Path:
    return make_small_class(root / "submitted", AID)


def _records(out: Path) -> dict:
    recs = {}
    for p in sorted((out / "results").glob("*/*.json")):
        rec = json.loads(p.read_text())
        rec.pop("seconds", None)
        rec.pop("fingerprint", None)  # covers the course's files, which may change between runs
        for nb in rec["notebooks"]:
            for c in nb["cells"]:
                c.pop("seconds", None)
        recs[(rec["student_id"], rec["assignment"])] = rec
    return recs


@pytest.mark.slow
def test_batch_on_dask_survives_a_killed_worker(cluster, sandbox, tmp_path):
    if AID not in assignments():
        pytest.skip("no assignment to grade yet")
    subs = _make_batch(tmp_path)
    out = tmp_path / "dask_out"
    cmd = [sys.executable, "-m", "grader", "autograde", str(subs), "--out", str(out),
           "--scheduler", cluster["address"], "--sandbox", sandbox]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    killed: dict[str, str] = {}

    def reader():
        for line in proc.stdout:
            lines.append(line)
            if not killed and re.match(r"\[1/\d+\] ", line):
                name, key = "", ""
                deadline = time.monotonic() + 20
                while not name and time.monotonic() < deadline:
                    name, key = _busy_worker(cluster["address"])
                    time.sleep(0.2)
                victim = cluster["workers"][name or "w0"]
                os.killpg(victim.pid, signal.SIGKILL)  # the nanny, its worker and the sandboxes
                killed.update(name=name or "w0", key=key)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        rc = proc.wait(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
    t.join(timeout=10)
    log = "".join(lines)
    assert rc == 0, log + cluster["log"].read_text()[-3000:]
    assert killed, f"no result came before the end of the batch:\n{log}"
    assert killed["key"], f"no worker was busy when the first result came:\n{log}"

    dask_recs = _records(out)
    students = {s.name for s in subs.iterdir()}
    assert set(dask_recs) == {(s, AID) for s in students}
    with open(out / "grades.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["student_id"] for r in rows) == sorted(students)  # each exactly once
    for name in ("grades_detailed.csv", "lms.csv", "pass_rates.csv", "pass_rates.png", "gradebook.db"):
        assert (out / name).exists(), name
    # The submission that was being graded on the killed worker was graded again.
    victim_student = killed["key"].removeprefix("grade-").split(f"-{AID}-")[0]
    assert (victim_student, AID) in dask_recs

    # The same submissions graded locally give the same records.
    local = tmp_path / "local_out"
    autograde(subs, local, workers=2, sandbox=sandbox, log=lambda *_: None)
    assert _records(local) == dask_recs
    assert (local / "grades_detailed.csv").read_text() == (out / "grades_detailed.csv").read_text()
