"""Scoring a notebook's exercises with the student's code isolated in sandboxed workers.

For a submitted notebook the grader

1. checks every exercise's static rules on the student's answer cells (here,
   in the trusted process);
2. writes the hidden cases' inputs as ``.npz`` into a fresh job folder;
3. starts a worker (:mod:`grader.worker`) inside the sandbox, with hard
   limits, that runs the notebook's setup cells (from the instructor's copy)
   and the student's answer cells once, then each exercise's cases in turn;
4. reads back plain data only, and compares it here with the reference.

The grader watches the worker's progress and times each exercise on its own,
with the exercise's own limit when its spec sets one (``Exercise.timeout``,
which may be larger than the default; the submission's total budget grows to
fit).  An exercise that needs more memory than the default
(``Exercise.memory_mb``) runs in a worker of its own with that limit.
An exercise that runs past its time limit is stopped and scored ``timeout``,
and the remaining exercises continue in a fresh worker.  An exercise during
which the worker dies (``os._exit``, a segfault, memory) is graded once more in
a worker of its own, so that only the exercise that really crashes loses its
points.  If an answer cell takes the process down before the tests start, the
exercises are run again without that cell.
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
from .confine import UidLease, memory_enforcer
from .errors import BadArgument, UserError
from .evaluate import case_context, check_case, check_rules, reference_outputs, score
from .sandbox import Limits, Sandbox, keep_output_tail, worker_argv
from .spec import Case, CheckResult, Exercise, ExerciseResult

# A case that raised one of these hit a sandbox limit rather than a bug.
LIMIT_ERRORS = ("raised MemoryError", "raised BlockingIOError")
POLL_S = 0.02
# Seconds added to the sum of the exercises' time limits when that sum, not the
# default budget, decides how long a submission may take (starting workers,
# running the answer cells).
BUDGET_SLACK_S = 60.0


@dataclass
class GradingContext:
    sandbox: Sandbox
    limits: Limits = field(default_factory=Limits)
    device: str = "cpu"
    workroot: Path | None = None  # where job folders go (a private temp dir by default)
    gpu_share: float = 1.0  # fraction of the GPU's memory one worker may use

    def new_jobdir(self, tag: str) -> Path:
        root = self.workroot or Path(tempfile.gettempdir())
        d = Path(tempfile.mkdtemp(prefix=f"job-{tag}-", dir=root))
        os.chmod(d, 0o777)  # the sandbox's unprivileged user writes its outputs here
        return d


@dataclass
class Task:
    """One exercise to run in a worker, with its hidden cases."""

    ex: Exercise
    cases: list[Case]
    wall_s: float
    uses_code: dict[str, str] = field(default_factory=dict)  # reference cells of ex.uses


@dataclass
class TaskRun:
    state: str  # done, timeout, killed, not_started
    outputs: list[dict | None]
    message: str = ""


@dataclass
class WorkerRun:
    tasks: list[TaskRun]
    cells_ran: bool
    culprit: int | None  # answer cell (index) that was running when the worker died in the cells
    cell_errors: list[str]
    message: str = ""
    startup_failure: str = ""  # the worker died before running any cell: its stderr


class WorkerStartupError(UserError, RuntimeError):
    """The worker cannot start in the sandbox at all: a problem of the grading machine."""


def _clean_env(limits: Limits) -> dict[str, str]:
    """The worker's environment: nothing inherited beyond what Python needs."""
    from .sandbox import worker_env

    keep = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "MPLBACKEND": "Agg",
            "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", **worker_env(limits)}
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # CPU quirks, not secrets
        if k in os.environ:
            keep[k] = os.environ[k]
    return keep


def _progress(jobdir: Path) -> str:
    try:
        return wire.read_regular(jobdir / "progress", 4096).decode("utf-8", "replace")
    except (OSError, wire.WireError):  # a link or fifo the worker left
        return ""


def write_job(jobdir: Path, tasks: list[Task], setup: list[str], cells: dict[str, str], device: str,
              gpu_memory_fraction: float | None = None) -> None:
    """The worker's instructions (``job.json``, ``uses.json``) and every case's inputs."""
    job = {"setup": setup, "cells": list(cells.values()),
           "cell_names": ["setup cell"] * len(setup) + [f"answer cell {g}" for g in cells],
           "exercises": []}
    if gpu_memory_fraction:
        job["gpu_memory_fraction"] = gpu_memory_fraction
    uses: dict[str, str] = {}
    for t in tasks:
        ctxs = [case_context(t.ex, i, c, device) for i, c in enumerate(t.cases)]
        job["exercises"].append({
            "grade_id": t.ex.grade_id, "names": list(t.ex.object_names), "several": bool(t.ex.names),
            "driver": t.ex.driver, "n_cases": len(t.cases), "device": device if t.ex.uses_torch else "cpu",
            "dtypes": [c.dtype for c in t.cases], "seeds": [c["seed"] for c in ctxs],
            "uses_torch": bool(t.ex.uses_torch), "uses": list(t.ex.uses),
            "outputs": ctxs[0]["outputs"] if ctxs else None})
        uses.update(t.uses_code)
    (jobdir / "job.json").write_text(json.dumps(job))
    if uses:
        (jobdir / "uses.json").write_text(json.dumps(uses))
    for k, t in enumerate(tasks):
        for i, case in enumerate(t.cases):
            wire.write(jobdir / f"case_{k}_{i}.npz", case.inputs)


def run_worker(ctx: GradingContext, tasks: list[Task], setup: list[str], cells: dict[str, str],
               device: str, limits: Limits | None = None) -> WorkerRun:
    """Run ``cells`` (grade_id -> source) once, then every task, in one sandboxed worker
    (with ``limits``, by default the context's)."""
    jobdir = ctx.new_jobdir("w")
    try:
        write_job(jobdir, tasks, setup, cells, device,
                  ctx.gpu_share if device.startswith("cuda") and ctx.gpu_share < 1 else None)
        for p in jobdir.iterdir():
            os.chmod(p, 0o644)
        limits = limits or ctx.limits
        gpu = device.startswith("cuda") and any(t.ex.uses_torch for t in tasks)
        lease = UidLease() if ctx.sandbox.gives_uids else None
        memory = None if ctx.sandbox.limits_memory else memory_enforcer().start(limits.memory_mb)
        argv = ctx.sandbox.wrap(worker_argv(ctx.sandbox, jobdir), jobdir, limits,
                                uid=lease.uid if lease else None, gpu=gpu)
        if memory is not None:
            argv = memory.argv_prefix() + argv
        cpu = Limits(**{**limits.__dict__, "cpu_s": limits.cpu_s * (len(tasks) + 1)})
        log = jobdir / "log.txt"
        state, since, stopped, rc = "", time.monotonic(), None, None
        # The worker writes its progress file, so it could keep changing it to dodge the
        # per-state limits: the whole run also has a deadline, what honest work can take.
        deadline = since + limits.wall_s * (len(setup) + len(cells) + 1) + sum(t.wall_s for t in tasks)
        try:
            with open(log, "wb") as logf:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                        cwd=jobdir, env=_clean_env(limits), start_new_session=True,
                                        preexec_fn=cpu.preexec(ctx.sandbox.drops_privileges, memory))
                try:
                    while True:
                        rc = proc.poll()
                        now = time.monotonic()
                        current = _progress(jobdir)
                        if current != state:
                            state, since = current, now
                        if rc is not None:
                            break
                        if memory is not None and memory.poll(proc.pid):
                            break
                        k = _state_index(state, "exercise", len(tasks))
                        # setting up, or running the answer cells: the limit of one exercise
                        limit = tasks[k].wall_s if k is not None else limits.wall_s
                        if now - since > limit or now > deadline:
                            stopped = (state, limit)
                            break
                        time.sleep(POLL_S)
                finally:
                    _kill_group(proc)
        finally:
            if memory is not None:
                memory.finish()
            if lease is not None:
                lease.release()
        out_of_memory = memory is not None and memory.exceeded
        final = _progress(jobdir)
        tail = keep_output_tail(log, limits.output_kb)
        cells_info = _read_json(jobdir / "cells.json")
        culprit = None
        if cells_info is None and _state_index(final, "cell", len(setup) + len(cells)) is not None:
            culprit = _state_index(final, "cell", len(setup) + len(cells)) - len(setup)

        running = _state_index(final, "exercise", len(tasks))
        if final == "finished":
            running = len(tasks)
        message = ""
        startup = ""
        if out_of_memory:
            message = (f"ran out of memory: it used more than its limit of {limits.memory_mb} MB "
                       "and was stopped")
            stopped = None
        elif stopped is not None:
            message = f"stopped after {stopped[1]:.0f} s (the time limit for one exercise)"
        elif rc not in (0, None):
            message = _describe_exit(rc, limits)
        elif final != "finished":
            message = ("the Python process ended before it finished (did the code call "
                       "os._exit() or crash the interpreter?)")
        if "MemoryError" in tail and message and not out_of_memory:
            message += f"; it ran out of memory (limit {limits.memory_mb} MB)"
        if not final and not out_of_memory and stopped is None:
            # Not one cell ran: the worker itself could not start (the course or a package
            # not importable in the sandbox, a broken environment), not the student's code.
            lines = [ln for ln in tail.strip().splitlines() if ln.strip()][-8:]
            startup = "\n".join(lines) or message or "no output"
            message = ("the grading worker stopped before running any of your code (a problem of "
                       "the grading machine, not of your answers); its last output: " + " | ".join(lines[-3:]))
        out: list[TaskRun] = []
        for k, t in enumerate(tasks):
            outputs = []
            for i in range(len(t.cases)):
                f = jobdir / f"out_{k}_{i}.npz"
                try:
                    rec = wire.read(f, max_bytes=limits.file_mb * 2**20) if os.path.lexists(f) else None
                    outputs.append(rec if isinstance(rec, dict) else None)
                except Exception as exc:  # a malformed file is the student's problem, not ours
                    outputs.append({"ok": False, "error": f"returned data the grader cannot read ({exc})"})
            if running is not None and k < running:
                out.append(TaskRun("done", outputs))
            elif running == k:
                timed_out = stopped is not None or rc in (-signal.SIGXCPU, 128 + signal.SIGXCPU)
                out.append(TaskRun("timeout" if timed_out else "killed", outputs, message))
            elif cells_info is None and stopped is not None:
                out.append(TaskRun("timeout", outputs, "the answer cells did not finish running in time"))
            elif cells_info is None:
                out.append(TaskRun("killed", outputs, message))
            else:
                out.append(TaskRun("not_started", outputs))
        return WorkerRun(out, cells_info is not None, culprit,
                         _cell_errors(cells_info), message, startup)
    finally:
        shutil.rmtree(jobdir, ignore_errors=True)


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the worker and everything it started (same session; bwrap's pid namespace
    takes the rest)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _describe_exit(rc: int, limits: Limits) -> str:
    sig = -rc if rc < 0 else rc - 128 if rc > 128 else None
    if sig:
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        if name == "SIGSEGV":
            return "the Python process crashed (segmentation fault)"
        if name == "SIGXCPU":
            return f"used more than its CPU time (limit {limits.cpu_s:.0f} s per exercise)"
        if name == "SIGKILL":
            return "the Python process was killed (usually: it ran out of memory)"
        return f"the Python process was stopped by {name}"
    return f"the Python process exited with status {rc} before it finished"


def _state_index(state: str, kind: str, n: int) -> int | None:
    """``k`` of a progress line ``"<kind> <k>"`` with ``0 <= k < n``, else None (the
    worker writes this file: anything else in it is ignored)."""
    parts = state.split()
    if len(parts) == 2 and parts[0] == kind and parts[1].isascii() and parts[1].isdigit() and int(parts[1]) < n:
        return int(parts[1])
    return None


def _cell_errors(cells_info: dict | None) -> list[str]:
    errors = (cells_info or {}).get("errors")
    return [e[:2000] for e in errors if isinstance(e, str)][:20] if isinstance(errors, list) else []


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(wire.read_regular(path, 4 * 2**20).decode("utf-8", "replace"))
        return data if isinstance(data, dict) else None
    except (OSError, ValueError, RecursionError):  # WireError is a ValueError
        return None


def task_limits(base: Limits, tasks: list[Task]) -> Limits:
    """The limits of a worker running ``tasks``: the defaults, with the memory of
    an exercise that asks for more, and CPU time for the longest time limit."""
    mem = max([base.memory_mb] + [t.ex.memory_mb or 0 for t in tasks])
    cpu = max([base.cpu_s] + [t.wall_s for t in tasks])
    if mem == base.memory_mb and cpu == base.cpu_s:
        return base
    return Limits(**{**base.__dict__, "memory_mb": int(mem), "cpu_s": float(cpu)})


def _run_all(ctx: GradingContext, tasks: list[Task], setup: list[str], answers: dict[str, str],
             deadline: float) -> tuple[dict[str, TaskRun], list[str], list[str]]:
    """Run tasks in as few workers as possible: the exercises within the default
    memory limit share workers, each one that needs more gets a worker of its own.
    Returns per-grade_id runs, skipped cells, cell errors."""
    shared = [t for t in tasks if (t.ex.memory_mb or 0) <= ctx.limits.memory_mb]
    groups = ([shared] if shared else []) + [[t] for t in tasks if t not in shared]
    runs: dict[str, TaskRun] = {}
    excluded: list[str] = []
    cell_errors: list[str] = []
    for group in groups:
        r, ex, ce = _run_group(ctx, group, setup, answers, deadline, task_limits(ctx.limits, group))
        runs.update(r)
        excluded += [e for e in ex if e not in excluded]
        cell_errors = cell_errors or ce
    return runs, excluded, cell_errors


def _run_group(ctx: GradingContext, tasks: list[Task], setup: list[str], answers: dict[str, str],
               deadline: float, limits: Limits) -> tuple[dict[str, TaskRun], list[str], list[str]]:
    """Run tasks in as few workers as possible, all with ``limits``."""
    runs: dict[str, TaskRun] = {}
    cells = dict(answers)
    excluded: list[str] = []
    cell_errors: list[str] = []
    pending = list(tasks)
    while pending and time.monotonic() < deadline:
        left = deadline - time.monotonic()
        for t in pending:
            t.wall_s = min(t.wall_s, max(1.0, left))
        run = run_worker(ctx, pending, setup, cells, ctx.device, limits)
        cell_errors = cell_errors or run.cell_errors
        if run.startup_failure:
            for t in pending:
                runs[t.ex.grade_id] = TaskRun("error", [], run.message)
            return runs, excluded, cell_errors
        if not run.cells_ran:
            names = list(cells)
            if run.culprit is not None and 0 <= run.culprit < len(names) and len(excluded) < 3:
                # An answer cell took the process down before the tests started:
                # run again without it, so that it costs only the exercises needing it.
                excluded.append(names[run.culprit])
                del cells[names[run.culprit]]
                continue
            for t, r in zip(pending, run.tasks):
                runs[t.ex.grade_id] = r
            return runs, excluded, cell_errors
        nxt = []
        for t, r in zip(pending, run.tasks):
            if r.state == "not_started":
                nxt.append(t)
            elif r.state == "killed" and len(pending) > 1:
                # Died during this exercise, but in a shared worker something an
                # earlier exercise started could be to blame: grade it alone.
                alone = run_worker(ctx, [t], setup, cells, ctx.device, limits)
                runs[t.ex.grade_id] = alone.tasks[0]
            else:
                runs[t.ex.grade_id] = r
        pending = nxt
    for t in pending:
        runs[t.ex.grade_id] = TaskRun("timeout", [], "the submission used up its total time budget")
    return runs, excluded, cell_errors


def exercise_wall_s(ex: Exercise, limits: Limits) -> float:
    """An exercise's time limit: its own (larger or smaller than the default) or the default."""
    return float(ex.timeout) if ex.timeout else limits.wall_s


def grade_exercises(ctx: GradingContext, assignment: str, exercises: list[tuple[Exercise, float]],
                    setup: list[str], answers: dict[str, str], *,
                    budget_s: float | None = None) -> dict[str, ExerciseResult]:
    """Score the test cells of one notebook: ``exercises`` lists (spec, points).

    The notebook may take ``budget_s`` (by default the submission budget), or,
    when its exercises' time limits add up to more, their sum plus a margin."""
    from .reference import reference_source

    start = time.monotonic()
    tasks, expected, rules = [], {}, {}
    for ex, _ in exercises:
        cases, exp = reference_outputs(assignment, ex, ctx.device)
        uses_code = {u: reference_source(assignment, u) for u in ex.uses}
        tasks.append(Task(ex, cases, exercise_wall_s(ex, ctx.limits), uses_code))
        expected[ex.grade_id] = exp
        rules[ex.grade_id] = check_rules(ex, list(answers.values()))
    needed = sum(t.wall_s for t in tasks) + BUDGET_SLACK_S
    deadline = start + max(budget_s or ctx.limits.submission_wall_s, needed)
    runs, excluded, cell_errors = _run_all(ctx, tasks, setup, answers, deadline)
    results = {}
    for (ex, points), task in zip(exercises, tasks):
        run = runs[ex.grade_id]
        limits = task_limits(ctx.limits, [task])
        checks: list[CheckResult] = list(rules[ex.grade_id])
        for i, (case, exp) in enumerate(zip(task.cases, expected[ex.grade_id])):
            got = run.outputs[i] if i < len(run.outputs) else None
            if got is None:
                got = {"ok": False, "error": run.message or "no result"}
                checks += [CheckResult(c.name, False, c.message.removeprefix("raised "), c.part)
                           for c in check_case(ex, i, case, got, exp, ctx.device)]
            else:
                checks += check_case(ex, i, case, got, exp, ctx.device)
        passed = all(c.passed for c in checks)
        limit_hit = next((c for c in checks if not c.passed and c.message.startswith(LIMIT_ERRORS)), None)
        message = run.message
        if run.state in ("timeout", "killed", "error"):
            status = run.state
        elif excluded and not passed:
            status = "killed"  # an answer cell it needs took the process down
        elif limit_hit is not None:
            status = "killed"
            message = ("stopped by a resource limit: " + limit_hit.message.removeprefix("raised ")
                       + f" (limits: {limits.memory_mb} MB of memory, {limits.nproc} processes)")
        elif passed:
            status = "passed"
        elif any(not c.passed and c.message.startswith("raised") for c in checks):
            status = "error"
        else:
            status = "failed"
        if excluded and not passed:
            note = "skipped answer cell(s) " + ", ".join(excluded) + " that stopped the Python process"
            message = f"{message}; {note}" if message else note
        if cell_errors and not passed and run.state != "error":
            message = (message + "; " if message else "") + "your answer cells raised: " + cell_errors[0]
        if status == "passed":
            message = ""
        earned, parts = score(ex, checks, points)
        if status != "passed" and not ex.parts:
            earned = 0.0
        results[ex.grade_id] = ExerciseResult(ex.grade_id, status, earned, float(points), checks, message, parts)
    return results


_PROBE_CPU = "import numpy, course_utils\n"
_PROBE_TORCH = "import torch\n(torch.ones(2) * 2).sum().item()\n"
_PROBE_CUDA = ("import torch\nassert torch.cuda.is_available(), 'torch.cuda.is_available() is False'\n"
               "(torch.ones(2, device='cuda') * 2).sum().item()\n")


def preflight(ctx: GradingContext, torch_needed: bool = True) -> None:
    """Start one worker that imports what exercises need (and uses the GPU when grading
    on one); raise :class:`WorkerStartupError` naming the cause if it cannot."""
    setup = [_PROBE_CPU] + ([_PROBE_CUDA if ctx.device.startswith("cuda") else _PROBE_TORCH]
                            if torch_needed else [])
    probe = Exercise("preflight", "preflight", lambda rng: [], uses_torch=torch_needed)
    run = run_worker(ctx, [Task(probe, [], ctx.limits.wall_s)], setup, {}, ctx.device)
    if run.startup_failure:
        raise WorkerStartupError(
            "the grading worker cannot start in the sandbox; its last output:\n  "
            + run.startup_failure.replace("\n", "\n  ")
            + "\nCheck that the course and its packages are installed in this environment "
            "(pip install -e .) and readable by other users.")
    if run.cell_errors or not run.cells_ran:
        what = run.cell_errors[0] if run.cell_errors else (run.message or "the worker stopped")
        if ctx.device.startswith("cuda"):
            raise WorkerStartupError(
                f"the GPU is not usable inside the sandbox ({what}). Check that /dev/nvidia* exist "
                "and are readable by all users (mode 0666, as the NVIDIA driver installs them), "
                "that the NVIDIA kernel module is loaded (nvidia-smi works), and for docker/podman "
                "that the NVIDIA container toolkit is installed; or grade on the CPU with --device cpu.")
        raise WorkerStartupError(f"the grading worker cannot import what exercises need ({what}); "
                                 "install the course's packages in this environment (pip install -e .)")


def resolve_device(requested: str = "auto") -> str:
    """``auto`` (the GPU when torch sees one), ``cpu`` or ``cuda``/``cuda:N``; an error names
    the fix when a GPU is asked for but absent."""
    req = (requested or "auto").strip().lower()
    if req == "cpu":
        return "cpu"
    if req not in ("auto", "cuda") and not req.startswith("cuda:"):
        raise BadArgument(f"unknown device {requested!r}; choose auto, cpu or cuda")
    try:
        import torch

        have = torch.cuda.is_available()
    except ImportError:
        have = False
    if req == "auto":
        return "cuda" if have else "cpu"
    if not have:
        raise BadArgument(f"--device {requested} asked for a GPU, but torch sees none here "
                          "(torch.cuda.is_available() is False); use --device cpu or auto")
    return req


def choose_device(ctx: GradingContext, requested: str, torch_needed: bool, log=print) -> str:
    """Resolve ``requested``, check that workers can use it, and set it on ``ctx``.

    A GPU that ``auto`` found but the sandbox cannot use is reported once, and grading
    goes on on the CPU; one asked for by name is an error."""
    ctx.device = resolve_device(requested)
    try:
        preflight(ctx, torch_needed)
    except WorkerStartupError as exc:
        if ctx.device.startswith("cuda") and (requested or "auto").lower() == "auto":
            log(f"warning: {exc}\nGrading on the CPU instead.")
            ctx.device = "cpu"
            preflight(ctx, torch_needed)
        else:
            raise
    return ctx.device
