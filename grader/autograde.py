"""``python -m grader autograde``: grade a folder of submissions.

Layout (nbgrader's ``submitted`` folder)::

    SUBMISSIONS/<student_id>/<assignment_id>/<notebook>.ipynb

Every submitted (student, assignment) pair gets a result, even when nothing in
it could be graded.  Each result is written to ``OUT/results/`` as soon as it
is ready (atomically), keyed by a fingerprint of the submission and of the
grading code, so a batch that was interrupted picks up where it stopped and
re-grading an unchanged submission reuses its result.  The CSV files, the
HTML feedback and the nbgrader gradebook are then written from those results.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from .errors import MissingFile
from .notebook import NotebookProblem, SourceNotebook, read_submission, source_notebooks
from .runner import GradingContext, choose_device, grade_exercises
from .sandbox import Limits, get_sandbox
from .spec import ExerciseResult
from .specs import exercises

GRADES_HEADER = ["student_id", "assignment", "score", "max_score"]
DETAILED_HEADER = ["student_id", "assignment", "notebook", "grade_id", "kind", "score", "max_score", "status"]
PROBLEMS_HEADER = ["student_id", "assignment", "notebook", "status", "reason"]
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$")


@dataclass
class Submission:
    student_id: str
    assignment: str
    folder: Path


def discover(root: Path, only: list[str] | None = None) -> list[Submission]:
    root = Path(root)
    if not root.is_dir():
        raise MissingFile(f"{root} is not a folder; expected SUBMISSIONS/<student_id>/<assignment_id>/*.ipynb")
    subs = []
    for sdir in sorted(root.iterdir()):
        if not sdir.is_dir() or sdir.name.startswith("."):
            continue
        for adir in sorted(sdir.iterdir()):
            if adir.is_dir() and not adir.name.startswith(".") and (not only or adir.name in only):
                subs.append(Submission(sdir.name, adir.name, adir))
    return subs


# ----------------------------------------------------------------------------
# Fingerprints: a result is reused only if nothing that decides it changed.
# ----------------------------------------------------------------------------

_code_hash_cache: dict[str, str] = {}


def _grading_code_hash(assignment: str) -> str:
    if assignment not in _code_hash_cache:
        h = hashlib.sha256()
        here = Path(__file__).resolve().parent
        for p in sorted(here.rglob("*.py")):
            h.update(p.name.encode() + p.read_bytes())
        for p in sorted((here.parent / "course_utils").rglob("*.py")):
            h.update(p.name.encode() + p.read_bytes())
        try:
            for src in source_notebooks(assignment):
                h.update(src.path.name.encode() + src.path.read_bytes())
        except FileNotFoundError:
            h.update(b"unknown assignment")
        from .specs import spec_files

        spec = spec_files().get(assignment)  # it may live outside the grader package
        if spec is not None:
            h.update(spec.name.encode() + spec.read_bytes())
        _code_hash_cache[assignment] = h.hexdigest()
    return _code_hash_cache[assignment]


def fingerprint(sub: Submission, limits: Limits, device: str) -> str:
    h = hashlib.sha256(_grading_code_hash(sub.assignment).encode())
    h.update(json.dumps(limits.__dict__, sort_keys=True).encode() + device.encode())
    for p in sorted(sub.folder.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in p.parts:
            continue
        h.update(p.relative_to(sub.folder).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------
# Grading one submission
# ----------------------------------------------------------------------------

def _notebook_path(folder: Path, source: SourceNotebook) -> Path:
    return folder / f"{source.name}.ipynb"


def grade_submission(ctx: GradingContext, sub: Submission) -> dict:
    """The result record of one (student, assignment) pair."""
    t0 = time.monotonic()
    record = {"student_id": sub.student_id, "assignment": sub.assignment, "notebooks": [],
              "problem": None, "score": 0.0, "max_score": 0.0}
    if not SAFE_ID.match(sub.student_id) or not SAFE_ID.match(sub.assignment):
        record["problem"] = "the student or assignment folder name has characters the grader does not accept"
        return record
    try:
        sources = source_notebooks(sub.assignment)
        specs = exercises(sub.assignment)
    except (FileNotFoundError, KeyError) as exc:
        record["problem"] = f"unknown assignment {sub.assignment!r}: {exc}"
        return record
    submitted = {p.name for p in sub.folder.glob("*.ipynb")}
    expected = {f"{s.name}.ipynb" for s in sources}
    extra = sorted(submitted - expected)
    for src in sources:
        nb = {"notebook": src.name, "problem": None, "cells": []}
        record["notebooks"].append(nb)
        path = _notebook_path(sub.folder, src)
        try:
            answers = read_submission(path, src)
            problem_status = None
        except NotebookProblem as exc:
            answers = {}
            reason = str(exc)
            if not path.exists() and extra:
                reason += f"; found {', '.join(extra)} instead: keep the notebook's original file name"
            nb["problem"] = reason
            problem_status = "missing" if not path.exists() else "error"
        graded: dict[str, ExerciseResult] = {}
        if not problem_status:
            budget = ctx.limits.submission_wall_s - (time.monotonic() - t0)
            try:
                graded = grade_exercises(ctx, sub.assignment, [(specs[g], p) for g, p in src.tests.items()],
                                         src.setup, answers, budget_s=max(1.0, budget))
            except Exception as exc:  # a grader fault must not sink the batch
                graded = {g: ExerciseResult(g, "error", 0.0, p, [],
                                            f"internal grader error: {type(exc).__name__}: {exc}")
                          for g, p in src.tests.items()}
        for gid in src.order:
            if gid in src.tests:
                pts = src.tests[gid]
                res = graded.get(gid) or ExerciseResult(gid, problem_status or "error", 0.0, pts, [],
                                                        nb["problem"] or "")
                cell = res.to_json()
                cell["kind"] = "auto"
            elif gid in src.manual:
                cell = {"grade_id": gid, "kind": "manual", "status": "pending" if not problem_status
                        else problem_status, "score": 0.0, "max_score": src.manual[gid],
                        "message": "graded by the instructor", "checks": []}
            else:
                continue
            nb["cells"].append(cell)
    record["score"] = sum(c["score"] for nb in record["notebooks"] for c in nb["cells"])
    record["max_score"] = sum(c["max_score"] for nb in record["notebooks"] for c in nb["cells"])
    record["seconds"] = round(time.monotonic() - t0, 3)
    return record


# ----------------------------------------------------------------------------
# Results on disk
# ----------------------------------------------------------------------------

def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    with os.fdopen(fd, "w", newline="") as f:
        f.write(text)
    os.replace(tmp, path)


def result_path(out: Path, sub: Submission) -> Path:
    return out / "results" / sub.student_id / f"{sub.assignment}.json"


def load_result(out: Path, sub: Submission, fp: str) -> dict | None:
    try:
        data = json.loads(result_path(out, sub).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("fingerprint") == fp else None


def _fmt_score(x: float) -> str:
    return f"{x:g}"


def write_csvs(out: Path, records: list[dict]) -> None:
    import io

    def table(header, rows):
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
        return buf.getvalue()

    grades, detailed, problems = [], [], []
    for r in sorted(records, key=lambda r: (r["student_id"], r["assignment"])):
        grades.append([r["student_id"], r["assignment"], _fmt_score(r["score"]), _fmt_score(r["max_score"])])
        if r.get("problem"):
            detailed.append([r["student_id"], r["assignment"], "", "", "auto", "0", "0", "error"])
            problems.append([r["student_id"], r["assignment"], "", "error", r["problem"]])
        for nb in r["notebooks"]:
            if nb.get("problem"):
                status = nb["cells"][0]["status"] if nb["cells"] else "error"
                problems.append([r["student_id"], r["assignment"], nb["notebook"], status, nb["problem"]])
            for c in nb["cells"]:
                detailed.append([r["student_id"], r["assignment"], nb["notebook"], c["grade_id"], c["kind"],
                                 _fmt_score(c["score"]), _fmt_score(c["max_score"]), c["status"]])
    _write_atomic(out / "grades.csv", table(GRADES_HEADER, grades))
    _write_atomic(out / "grades_detailed.csv", table(DETAILED_HEADER, detailed))
    _write_atomic(out / "problems.csv", table(PROBLEMS_HEADER, problems))


# ----------------------------------------------------------------------------
# The batch
# ----------------------------------------------------------------------------


def _needs_torch(assignment_ids) -> bool:
    for aid in assignment_ids:
        try:
            if any(ex.uses_torch for ex in exercises(aid).values()):
                return True
        except KeyError:
            continue
    return False

def make_payload(sub: Submission, fp: str, sandbox: str, limits: Limits, device: str,
                 gpu_share: float = 1.0) -> dict:
    """Everything needed to grade one submission, as plain data: it can be sent
    to another process or machine (Dask) that has the course installed."""
    files = {p.name: p.read_bytes() for p in sorted(sub.folder.glob("*.ipynb"))}
    return {"student_id": sub.student_id, "assignment": sub.assignment, "files": files,
            "fingerprint": fp, "sandbox": sandbox, "limits": dict(limits.__dict__), "device": device,
            "gpu_share": gpu_share}


_contexts: dict[tuple, GradingContext] = {}


def grade_payload(payload: dict) -> dict:
    """Grade one submission from its payload; the same code runs locally and on Dask workers."""
    share = float(payload.get("gpu_share", 1.0))
    key = (payload["sandbox"], json.dumps(payload["limits"], sort_keys=True), payload["device"], share)
    ctx = _contexts.get(key)
    if ctx is None:
        ctx = _contexts[key] = GradingContext(get_sandbox(payload["sandbox"]), Limits(**payload["limits"]),
                                              payload["device"], gpu_share=share)
    with tempfile.TemporaryDirectory(prefix="submission-") as tmp:
        os.chmod(tmp, 0o711)
        folder = Path(tmp) / "files"
        folder.mkdir()
        for name, data in payload["files"].items():
            if "/" in name or name.startswith("."):
                continue
            (folder / name).write_bytes(data)
        local = GradingContext(ctx.sandbox, ctx.limits, ctx.device, Path(tmp), ctx.gpu_share)
        rec = grade_submission(local, Submission(payload["student_id"], payload["assignment"], folder))
    rec["fingerprint"] = payload["fingerprint"]
    return rec


def run_local(payloads: list[dict], workers: int, on_result) -> None:
    """Grade payloads ``workers`` at a time, each in a grading process of its own.

    Processes, not threads: CPython 3.11 can raise a spurious "AST constructor
    recursion depth mismatch" when two threads build ASTs at once (the rules
    and the reference loading parse code), and processes also spread the
    reference computations and comparisons over the cores."""
    if workers <= 1 or len(payloads) <= 1:
        for p in payloads:
            on_result(grade_payload(p))
        return
    import multiprocessing

    with ProcessPoolExecutor(max_workers=min(workers, len(payloads)),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(grade_payload, p) for p in payloads]
        for fut in as_completed(futures):
            on_result(fut.result())


def autograde(submissions: Path, out: Path, *, assignments: list[str] | None = None,
              workers: int | None = None, sandbox: str = "auto", limits: Limits | None = None,
              db_url: str | None = None, resume: bool = True, scheduler: str | None = None,
              device: str = "auto", log=print) -> list[dict]:
    """Grade every submission under ``submissions``; write results, CSVs, feedback, gradebook.

    ``scheduler`` (``tcp://host:port``) sends the work to a Dask cluster;
    otherwise ``workers`` submissions are graded at once on this machine.  ``device``
    (``auto``, ``cpu`` or ``cuda``) is where torch exercises run, for the student's code
    and the reference alike; with a GPU each of the ``workers`` may use its share of the
    GPU's memory.
    """
    from .feedback import write_feedback
    from .gradebook import record_in_gradebook

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    limits = limits or Limits()
    workers = workers or os.cpu_count() or 1
    subs = discover(Path(submissions), assignments)
    # Fail now, loudly and once, if the sandbox or the device cannot work here.
    probe = GradingContext(get_sandbox(sandbox), limits)
    device = choose_device(probe, device, _needs_torch({s.assignment for s in subs}), log=log)
    gpu_share = 1.0 / workers if device.startswith("cuda") and not scheduler else 1.0
    where = f"Dask scheduler {scheduler}" if scheduler else f"{workers} workers"
    log(f"grading {len(subs)} submissions on {where} (sandbox: {sandbox}, device: {device})")
    records: list[dict] = []
    todo: list[dict] = []
    for sub in subs:
        fp = fingerprint(sub, limits, device)
        prev = load_result(out, sub, fp) if resume else None
        if prev is not None:
            records.append(prev)
        else:
            todo.append(make_payload(sub, fp, sandbox, limits, device, gpu_share))
    if records:
        log(f"reusing {len(records)} results from an earlier run")
    lock = threading.Lock()
    done = [0]

    def on_result(rec: dict) -> None:
        sub = Submission(rec["student_id"], rec["assignment"], Path())
        _write_atomic(result_path(out, sub), json.dumps(rec, indent=1))
        with lock:
            records.append(rec)
            done[0] += 1
            log(f"[{done[0]}/{len(todo)}] {rec['student_id']}/{rec['assignment']}: "
                f"{rec['score']:g}/{rec['max_score']:g} ({rec.get('seconds', 0):.1f} s)")

    if scheduler:
        from .distributed import run_on_dask

        run_on_dask(todo, scheduler, on_result)
    else:
        run_local(todo, workers, on_result)
    write_csvs(out, records)
    from .exports import write_exports

    write_exports(out, records, log=log)  # LMS CSV, per-exercise table, pass rates
    for rec in records:
        write_feedback(out, rec)
    record_in_gradebook(db_url or f"sqlite:///{(out / 'gradebook.db').resolve()}", records)
    return records
