"""Scoring one exercise with the student's code isolated in a worker process.

For every graded test cell the grader

1. checks the static rules on the student's answer cells (here, trusted);
2. writes the hidden cases' inputs as ``.npz`` into a fresh job folder;
3. starts a worker (:mod:`grader.worker`) inside the sandbox, with hard
   limits, that runs the notebook's setup cells (from the instructor's copy)
   and the student's answer cells, then the driver on every case;
4. reads back plain data only, and compares it here with the reference.

A worker that crashes, hangs or runs out of memory costs this exercise only.
If one of the student's answer cells takes the process down before the tests
start (it exits the interpreter, crashes, or loops forever at top level), the
exercise is tried again without that cell.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import wire
from .evaluate import check_case, check_rules, reference_outputs
from .sandbox import Limits, Sandbox, keep_output_tail, worker_argv
from .spec import CheckResult, Exercise, ExerciseResult


@dataclass
class GradingContext:
    sandbox: Sandbox
    limits: Limits = field(default_factory=Limits)
    device: str = "cpu"
    workroot: Path | None = None  # where job folders go (a private temp dir by default)

    def new_jobdir(self, tag: str) -> Path:
        root = self.workroot or Path(tempfile.gettempdir())
        d = Path(tempfile.mkdtemp(prefix=f"job-{tag}-", dir=root))
        os.chmod(d, 0o777)  # the sandbox user (nobody) writes its outputs here
        return d


@dataclass
class WorkerRun:
    outputs: list[dict | None]
    cells_ran: bool
    culprit: int | None  # index (among answer cells) of the cell that was running when the worker died
    cell_errors: list[str]
    status: str  # ok, timeout, killed
    message: str = ""
    seconds: float = 0.0


def _clean_env() -> dict[str, str]:
    """The worker's environment: nothing inherited beyond what Python needs."""
    keep = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "MPLBACKEND": "Agg",
            "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # CPU quirks, not secrets
        if k in os.environ:
            keep[k] = os.environ[k]
    return keep


def run_worker(ctx: GradingContext, ex: Exercise, setup: list[str], cells: dict[str, str],
               cases: list, wall_s: float) -> WorkerRun:
    """Run ``cells`` (grade_id -> source) and the exercise's cases in a sandboxed worker."""
    jobdir = ctx.new_jobdir(ex.grade_id)
    try:
        job = {"setup": setup, "cells": list(cells.values()),
               "cell_names": ["setup cell"] * len(setup) + [f"answer cell {g}" for g in cells],
               "name": ex.name, "driver": ex.driver,
               "n_cases": len(cases), "device": ctx.device if ex.uses_torch else "cpu",
               "dtypes": [c.dtype for c in cases]}
        (jobdir / "job.json").write_text(json.dumps(job))
        for i, case in enumerate(cases):
            wire.write(jobdir / f"case_{i}.npz", case.inputs)
        for p in jobdir.iterdir():
            os.chmod(p, 0o644)
        log = jobdir / "log.txt"
        argv = ctx.sandbox.wrap(worker_argv(ctx.sandbox, jobdir), jobdir, ctx.limits)
        t0 = time.monotonic()
        status, message = "ok", ""
        with open(log, "wb") as logf:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                    cwd=jobdir, env=_clean_env(), start_new_session=True,
                                    preexec_fn=ctx.limits.preexec(ctx.sandbox.drops_privileges))
            try:
                rc = proc.wait(timeout=wall_s)
            except subprocess.TimeoutExpired:
                rc = None
                status, message = "timeout", f"stopped after {wall_s:.0f} s (the time limit for one exercise)"
            finally:
                _kill_group(proc)
        seconds = time.monotonic() - t0
        if rc is not None and rc != 0:
            if rc in (-signal.SIGXCPU, 128 + signal.SIGXCPU) or (
                    rc in (-signal.SIGKILL, 128 + signal.SIGKILL) and seconds >= ctx.limits.cpu_s * 0.9):
                status, message = "timeout", f"used more than {ctx.limits.cpu_s:.0f} s of CPU time"
            else:
                status = "killed"
                message = _describe_exit(rc)
        cells_info = _read_json(jobdir / "cells.json")
        culprit = None
        if cells_info is None:
            try:
                culprit = int((jobdir / "progress").read_text()) - len(setup)
            except (OSError, ValueError):
                culprit = None
        outputs: list[dict | None] = []
        for i in range(len(cases)):
            f = jobdir / f"out_{i}.npz"
            try:
                rec = wire.read(f, max_bytes=ctx.limits.file_mb * 2**20) if f.exists() else None
                outputs.append(rec if isinstance(rec, dict) else None)
            except Exception as exc:  # a malformed file is the student's problem, not ours
                outputs.append({"ok": False, "error": f"returned data the grader cannot read ({exc})"})
        if status == "ok" and any(o is None for o in outputs):
            status = "killed"
            message = ("the Python process ended before it finished (did the code call "
                       "os._exit(), crash the interpreter, or run out of memory?)")
        tail = keep_output_tail(log, ctx.limits.output_kb)
        if status != "ok" and "MemoryError" in tail:
            message += f"; it ran out of memory (limit {ctx.limits.memory_mb} MB)"
        return WorkerRun(outputs, cells_info is not None, culprit,
                         list((cells_info or {}).get("errors", []))[:20], status, message, seconds)
    finally:
        shutil.rmtree(jobdir, ignore_errors=True)


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the worker and everything it started (same session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _describe_exit(rc: int) -> str:
    sig = -rc if rc < 0 else rc - 128 if rc > 128 else None
    if sig:
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        if name == "SIGSEGV":
            return "the Python process crashed (segmentation fault)"
        if name == "SIGKILL":
            return "the Python process was killed (usually: it ran out of memory)"
        return f"the Python process was stopped by {name}"
    return f"the Python process exited with status {rc} before it finished"


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


# A case that raised one of these hit a sandbox limit rather than a bug.
LIMIT_ERRORS = ("raised MemoryError", "raised BlockingIOError")


def grade_exercise(ctx: GradingContext, assignment: str, ex: Exercise, points: float,
                   setup: list[str], answers: dict[str, str], *, wall_s: float | None = None) -> ExerciseResult:
    """Score the test cell ``ex.grade_id`` (worth ``points``) for one submission."""
    wall_s = min(wall_s or ctx.limits.wall_s, ex.timeout or ctx.limits.wall_s)
    checks: list[CheckResult] = check_rules(ex, list(answers.values()))
    cases, expected = reference_outputs(assignment, ex, ctx.device)

    run = run_worker(ctx, ex, setup, answers, cases, wall_s)
    cells = dict(answers)
    excluded: list[str] = []
    while run.status != "ok" and not run.cells_ran and len(excluded) < 3:
        # An answer cell took the process down before the tests started (it
        # exited, crashed or hung at top level): retry without that cell, so
        # that it costs only the exercises that need it.
        names = list(cells)
        if run.culprit is None or not 0 <= run.culprit < len(names):
            break
        bad = names[run.culprit]
        excluded.append(bad)
        del cells[bad]
        run = run_worker(ctx, ex, setup, cells, cases, wall_s)
    if excluded:
        note = "skipped answer cell(s) " + ", ".join(excluded) + " that stopped the Python process"
        run.message = f"{run.message}; {note}" if run.message else note

    for i, (case, exp) in enumerate(zip(cases, expected)):
        got = run.outputs[i] if i < len(run.outputs) else None
        if got is None:
            checks.append(CheckResult(f"case {i + 1}", False, run.message or "no result"))
        else:
            checks.append(check_case(ex, i, case, got, exp, ctx.device))

    passed = all(c.passed for c in checks)
    limit_hit = next((c for c in checks if not c.passed and c.message.startswith(LIMIT_ERRORS)), None)
    if run.status != "ok":
        status = run.status
    elif excluded and not passed:
        status = "killed"  # its own answer cell took the process down
    elif limit_hit is not None:
        status = "killed"
        run.message = ("stopped by a resource limit: " + limit_hit.message.removeprefix("raised ")
                       + f" (limits: {ctx.limits.memory_mb} MB of memory, {ctx.limits.nproc} processes)")
    elif passed:
        status = "passed"
    elif any(not c.passed and c.message.startswith("raised") for c in checks):
        status = "error"
    else:
        status = "failed"
    message = run.message
    if run.cell_errors and not passed:
        message = (message + "; " if message else "") + "your answer cells raised: " + run.cell_errors[0]
    if status == "passed":
        message = ""
    return ExerciseResult(ex.grade_id, status, float(points) if status == "passed" else 0.0,
                          float(points), checks, message)
