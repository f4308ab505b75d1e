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

import hashlib
import json
import os
import stat
import tempfile
import threading
import time
import unicodedata
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from .errors import MissingFile
from .notebook import (
    MAX_NOTEBOOK_BYTES,
    RELEASE_ANSWER_STUB,
    NotebookProblem,
    file_kind,
    not_a_file_reason,
    parse_submission,
    read_notebook_bytes,
    read_submission,
    source_notebooks,
    too_big_reason,
    unanswered_written,
)
from .paths import solutions_dir
from .results import Status, SubmissionRecord, load_result, new_record, save_result
from .runner import GradingContext, choose_device, grade_exercises
from .sandbox import Limits, get_sandbox
from .spec import ExerciseResult
from .specs import exercises

MAX_ID_CHARS = 128  # nbgrader's gradebook holds ids of up to 128 characters
#: folders that tools leave next to submissions; never graded, never reported
TOOL_FOLDERS = frozenset({".ipynb_checkpoints", ".git", ".hg", ".svn", "__MACOSX"})


@dataclass
class Submission:
    student_id: str
    assignment: str
    folder: Path
    problem: str | None = None  # why it cannot be graded at all (then it scores 0)
    files: dict[str, bytes] | None = field(default=None, repr=False)  # notebook name -> bytes; None: not read yet
    rejected: dict[str, str] = field(default_factory=dict)  # notebook name -> why it was not read


# ----------------------------------------------------------------------------
# Finding submissions: nothing is followed out of the submissions folder.
# ----------------------------------------------------------------------------

def id_text(name: str) -> str:
    """``name`` as printable text that is safe as one path component: backslashes,
    control characters and bytes that are not UTF-8 are written as escapes (so two
    different names never give the same text), and an over-long name is cut and
    ends with a digest of the whole."""
    out = []
    for ch in name:
        if ch == "\\":
            out.append("\\\\")
        elif "\udc80" <= ch <= "\udcff":  # a byte that is not UTF-8 (os.fsdecode's surrogateescape)
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif not ch.isprintable() or unicodedata.category(ch) in ("Cs", "Co", "Cn"):
            out.append(f"\\u{ord(ch):04x}" if ord(ch) < 0x10000 else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    text = "".join(out)
    if len(text) > MAX_ID_CHARS:
        digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:12]
        text = text[: MAX_ID_CHARS - 14] + "~" + digest
    return text


def id_problem(kind: str, name: str) -> str | None:
    """Why a student or assignment folder name cannot be used as an id, or None.

    Ids are nbgrader ids (usernames): any printable name is graded, spaces,
    unicode and shell characters included (it is only ever a CSV field, a
    database value and one path component under the output folder)."""
    if name != name.strip() or not name:
        return f'the {kind} folder name "{id_text(name)}" starts or ends with spaces; rename the folder'
    if id_text(name) != name:
        return (f'the {kind} folder name "{id_text(name)}" has characters that are not printable text '
                "(control characters, bytes that are not UTF-8, or backslashes) or is longer than "
                f"{MAX_ID_CHARS} characters; rename the folder to the student's nbgrader id")
    if name.startswith("."):
        return f'the {kind} folder name "{name}" starts with ".", which hides it; rename the folder'
    return None


def _entries(folder: Path) -> list[os.DirEntry]:
    with os.scandir(folder) as it:
        return sorted(it, key=lambda e: e.name)


def _folder_problem(kind: str, entry: os.DirEntry) -> str | None:
    """Why the entry ``entry`` (expected: a folder) is not looked into, or None."""
    st = entry.stat(follow_symlinks=False)
    if stat.S_ISLNK(st.st_mode):
        return (f'the {kind} folder "{id_text(entry.name)}" is a symbolic link; the grader does not follow '
                "links out of the submissions folder: copy the files in instead")
    if not stat.S_ISDIR(st.st_mode):
        return f'the {kind} folder "{id_text(entry.name)}" is {file_kind(st.st_mode)}, not a folder'
    return None


def discover(root: Path, only: list[str] | None = None) -> list[Submission]:
    """Every (student, assignment) folder under ``root``, with a problem for the
    ones that cannot be graded (symbolic links, names that are not ids).

    Symbolic links and other entries that are not folders are never followed;
    regular files next to the student folders are ignored."""
    root = Path(root)
    if not root.is_dir():
        raise MissingFile(f"{root} is not a folder; expected SUBMISSIONS/<student_id>/<assignment_id>/*.ipynb")
    subs = []
    for sdir in _entries(root):
        if sdir.name in TOOL_FOLDERS or (sdir.is_file(follow_symlinks=False)):
            continue
        sid = id_text(sdir.name)
        problem = _folder_problem("student", sdir) or id_problem("student", sdir.name)
        if problem and not sdir.is_dir(follow_symlinks=False):
            subs.append(Submission(sid, "", Path(sdir.path), problem))
            continue
        try:
            adirs = _entries(Path(sdir.path))
        except OSError as exc:
            subs.append(Submission(sid, "", Path(sdir.path), f"the student folder cannot be read ({exc.strerror})"))
            continue
        for adir in adirs:
            if adir.name in TOOL_FOLDERS or adir.is_file(follow_symlinks=False):
                continue
            if only and adir.name not in only:
                continue
            aproblem = problem or _folder_problem("assignment", adir) or id_problem("assignment", adir.name)
            subs.append(Submission(sid, id_text(adir.name), Path(adir.path), aproblem))
    return subs


_instructor_inodes: set[tuple[int, int]] | None = None


def _instructor_files() -> set[tuple[int, int]]:
    """(device, inode) of every source notebook, to recognise hard links to them."""
    global _instructor_inodes
    if _instructor_inodes is None:
        _instructor_inodes = set()
        for p in solutions_dir().glob("*/*.ipynb"):
            try:
                st = p.stat()
            except OSError:
                continue
            _instructor_inodes.add((st.st_dev, st.st_ino))
    return _instructor_inodes


def read_files(sub: Submission) -> None:
    """Read the submission's notebooks (``*.ipynb`` regular files at the top of
    its folder) into ``sub.files``; every other ``*.ipynb`` entry (links, fifos,
    devices, folders, files over the size limit) goes to ``sub.rejected``, unread."""
    sub.files, sub.rejected = {}, {}
    if sub.problem:
        return
    try:
        entries = _entries(sub.folder)
    except OSError as exc:
        sub.problem = f"the folder {sub.student_id}/{sub.assignment} cannot be read ({exc.strerror})"
        return
    for e in entries:
        if not e.name.endswith(".ipynb") or e.name.startswith("."):
            continue
        name = id_text(e.name)
        st = e.stat(follow_symlinks=False)
        if (st.st_dev, st.st_ino) in _instructor_files():
            sub.rejected[name] = (f"{name} is a hard link to the instructor's source notebook, not a "
                                  "submission; submit your own notebook")
        elif not stat.S_ISREG(st.st_mode):
            sub.rejected[name] = not_a_file_reason(name, st.st_mode)
        elif st.st_size > MAX_NOTEBOOK_BYTES:
            sub.rejected[name] = too_big_reason(name, st.st_size)
        elif name != e.name:
            sub.rejected[name] = f"{name!r} is not a notebook name the grader accepts; keep the original name"
        else:
            try:
                sub.files[name] = read_notebook_bytes(Path(e.path))
            except (NotebookProblem, OSError) as exc:
                sub.rejected[name] = str(exc)


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
    """Of the grading code, limits, device and what :func:`read_files` found."""
    h = hashlib.sha256(_grading_code_hash(sub.assignment).encode())
    h.update(json.dumps(limits.__dict__, sort_keys=True).encode() + device.encode())
    h.update(json.dumps([sub.problem, sorted(sub.rejected.items())]).encode())
    for name, data in sorted((sub.files or {}).items()):
        h.update(hashlib.sha256(name.encode()).digest() + hashlib.sha256(data).digest())
    return h.hexdigest()


# ----------------------------------------------------------------------------
# Grading one submission
# ----------------------------------------------------------------------------

def grade_submission(ctx: GradingContext, sub: Submission) -> SubmissionRecord:
    """The result record of one (student, assignment) pair.

    Notebooks are taken from ``sub.files`` (see :func:`read_files`) when it has
    any, else read from ``sub.folder`` (never through a symbolic link)."""
    t0 = time.monotonic()
    record = new_record(sub.student_id, sub.assignment, sub.problem)
    if sub.problem:
        record["seconds"] = 0.0
        return record
    try:
        sources = source_notebooks(sub.assignment)
        specs = exercises(sub.assignment)
    except (FileNotFoundError, KeyError) as exc:
        record["problem"] = f"unknown assignment {sub.assignment!r}: {exc}"
        return record
    if sub.files is None:
        read_files(sub)
    assert sub.files is not None
    submitted = set(sub.files) | set(sub.rejected)
    expected = {f"{s.name}.ipynb" for s in sources}
    extra = sorted(submitted - expected)
    for src in sources:
        nb = {"notebook": src.name, "problem": None, "cells": []}
        record["notebooks"].append(nb)
        fname = f"{src.name}.ipynb"
        problem_status = None
        blank: set[str] = set()
        try:
            if fname in sub.rejected:
                raise NotebookProblem(sub.rejected[fname])
            if fname in sub.files:
                answers = parse_submission(sub.files[fname], fname, src)
                blank = unanswered_written(sub.files[fname], src)
            else:
                answers = read_submission(sub.folder / fname, src)
        except NotebookProblem as exc:
            answers = {}
            reason = str(exc)
            missing = fname not in submitted
            if missing and extra:
                reason += f"; found {', '.join(extra)} instead: keep the notebook's original file name"
            nb["problem"] = reason
            problem_status = Status.MISSING if missing else Status.ERROR
        graded: dict[str, ExerciseResult] = {}
        if not problem_status:
            budget = ctx.limits.submission_wall_s - (time.monotonic() - t0)
            try:
                graded = grade_exercises(ctx, sub.assignment, [(specs[g], p) for g, p in src.tests.items()],
                                         src.setup, answers, budget_s=max(1.0, budget))
            except Exception as exc:  # a grader fault must not sink the batch
                graded = {g: ExerciseResult(g, Status.ERROR, 0.0, p, [],
                                            f"internal grader error: {type(exc).__name__}: {exc}")
                          for g, p in src.tests.items()}
        for gid in src.order:
            if gid in src.tests:
                pts = src.tests[gid]
                res = graded.get(gid) or ExerciseResult(gid, problem_status or Status.ERROR, 0.0, pts, [],
                                                        nb["problem"] or "")
                cell = res.to_json()
                cell["kind"] = "auto"
            elif gid in src.manual:
                status = problem_status or (Status.MISSING if gid in blank else Status.PENDING)
                cell = {"grade_id": gid, "kind": "manual", "status": status,
                        "score": 0.0, "max_score": src.manual[gid],
                        "message": ("no answer written (the cell is blank or still says "
                                    f"{RELEASE_ANSWER_STUB!r})" if status == Status.MISSING and not problem_status
                                    else "graded by the instructor"), "checks": []}
            else:
                continue
            nb["cells"].append(cell)
    record["score"] = sum(c["score"] for nb in record["notebooks"] for c in nb["cells"])
    record["max_score"] = sum(c["max_score"] for nb in record["notebooks"] for c in nb["cells"])
    record["seconds"] = round(time.monotonic() - t0, 3)
    return record


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
    to another process or machine (Dask) that has the course installed.
    ``sub`` has been through :func:`read_files`: nothing is read again here."""
    return {"student_id": sub.student_id, "assignment": sub.assignment, "files": dict(sub.files),
            "rejected": dict(sub.rejected), "problem": sub.problem,
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
    files = {n: d for n, d in payload["files"].items() if "/" not in n and not n.startswith(".")}
    sub = Submission(payload["student_id"], payload["assignment"], Path("/nonexistent"), payload.get("problem"),
                     files, dict(payload.get("rejected") or {}))
    with tempfile.TemporaryDirectory(prefix="submission-") as tmp:
        os.chmod(tmp, 0o711)
        local = GradingContext(ctx.sandbox, ctx.limits, ctx.device, Path(tmp), ctx.gpu_share)
        try:
            rec = grade_submission(local, sub)
        except Exception as exc:  # a grader fault must not sink the batch
            rec = _failed_record(payload, exc)
    rec["fingerprint"] = payload["fingerprint"]
    return rec


def _failed_record(payload: dict, exc: BaseException) -> SubmissionRecord:
    return new_record(payload["student_id"], payload["assignment"],
                      f"internal grader error while grading this submission: {type(exc).__name__}: {exc}; "
                      "grade it again, and report it if it happens again")


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
        futures = {pool.submit(grade_payload, p): p for p in payloads}
        for fut in as_completed(futures):
            try:
                rec = fut.result()
            except Exception as exc:  # the grading process died (BrokenProcessPool)
                rec = _failed_record(futures[fut], exc)
            on_result(rec)


def autograde(submissions: Path, out: Path, *, assignments: list[str] | None = None,
              workers: int | None = None, sandbox: str = "auto", limits: Limits | None = None,
              db_url: str | None = None, resume: bool = True, scheduler: str | None = None,
              device: str = "auto", log=print) -> list[SubmissionRecord]:
    """Grade every submission under ``submissions``; write results, CSVs, feedback, gradebook.

    ``scheduler`` (``tcp://host:port``) sends the work to a Dask cluster;
    otherwise ``workers`` submissions are graded at once on this machine.  ``device``
    (``auto``, ``cpu`` or ``cuda``) is where torch exercises run, for the student's code
    and the reference alike; with a GPU each of the ``workers`` may use its share of the
    GPU's memory.
    """
    from .autograded import write_autograded, write_formgrader_config
    from .exports import publish
    from .gradebook import record_in_gradebook

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    limits = limits or Limits()
    workers = workers or os.cpu_count() or 1
    subs = discover(Path(submissions), assignments)
    # Fail now, loudly and once, if the sandbox or the device cannot work here.
    probe = GradingContext(get_sandbox(sandbox), limits)
    device = choose_device(probe, device, _needs_torch({s.assignment for s in subs if not s.problem}), log=log)
    gpu_share = 1.0 / workers if device.startswith("cuda") and not scheduler else 1.0
    where = f"Dask scheduler {scheduler}" if scheduler else f"{workers} workers"
    log(f"grading {len(subs)} submissions on {where} (sandbox: {sandbox}, device: {device})")
    records: list[SubmissionRecord] = []
    todo: list[dict] = []
    reused = 0
    for sub in subs:
        read_files(sub)
        fp = fingerprint(sub, limits, device)
        prev = load_result(out, sub.student_id, sub.assignment, fp) if resume else None
        if prev is not None:
            records.append(prev)
            reused += 1
        elif sub.problem:  # nothing to grade: its record is ready
            rec = grade_submission(probe, sub)
            rec["fingerprint"] = fp
            save_result(out, rec)
            records.append(rec)
        else:
            todo.append(make_payload(sub, fp, sandbox, limits, device, gpu_share))
        sub.files = None  # the payload holds them now
    if reused:
        log(f"reusing {reused} results from an earlier run")
    lock = threading.Lock()
    done = [0]

    def on_result(rec: SubmissionRecord) -> None:
        save_result(out, rec)
        with lock:
            records.append(rec)
            done[0] += 1
            log(f"[{done[0]}/{len(todo)}] {rec['student_id']}/{rec['assignment']}: "
                f"{rec['score']:g}/{rec['max_score']:g} ({rec.get('seconds', 0):.1f} s)")

    if scheduler:
        from .distributed import run_on_dask

        run_on_dask(todo, scheduler, on_result, grade=grade_payload)
    else:
        run_local(todo, workers, on_result)
    db_url = db_url or f"sqlite:///{(out / 'gradebook.db').resolve()}"
    record_in_gradebook(db_url, records)
    # CSVs, feedback, LMS file, pass rates; written answers already graded in formgrader count
    publish(out, records, db_url=db_url, log=log)
    folders = {(s.student_id, s.assignment): s.folder for s in subs}
    for rec in records:  # nbgrader's autograded/ layout, for formgrader
        write_autograded(out, rec, folders.get((rec["student_id"], rec["assignment"])))
    write_formgrader_config(out, db_url)
    return records
