"""``python -m grader check NOTEBOOK``: a student's own run of the autograder.

Grades one notebook exactly as the instructor's autograder would (same
sandbox, same hidden tests, where the reference solutions are present, as in
a clone of the course repository) and prints a table per exercise.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from .autograde import Submission
from .errors import MissingFile
from .results import Status
from .sandbox import Limits


def assignment_of(path: Path) -> str:
    try:
        meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
        aid = meta.get("course", {}).get("assignment")
        if isinstance(aid, str) and aid and aid == Path(aid).name and aid not in (".", ".."):
            return aid  # a plain folder name, never a path
    except (OSError, ValueError, AttributeError, RecursionError):
        pass
    return path.resolve().parent.name


def check_notebook(path: Path, sandbox: str = "auto", limits: Limits | None = None, out=print,
                   as_json: bool = False, device: str = "auto") -> int:
    """Grade ``path``; print a table (or, with ``as_json``, the result as JSON). 0 when all pass."""
    from .autograde import _needs_torch, grade_submission
    from .paths import solutions_dir
    from .runner import GradingContext, choose_device
    from .sandbox import get_sandbox

    path = Path(path)
    if not path.is_file():
        raise MissingFile(f"{path} does not exist")
    aid = assignment_of(path)
    if not (solutions_dir() / aid).is_dir():
        raise MissingFile(
            f"the hidden tests of {aid} need the reference solutions in {solutions_dir() / aid}, "
            "which this copy of the course does not have; run the visible self-checks in the notebook")
    ctx = GradingContext(get_sandbox(sandbox), limits or Limits())
    choose_device(ctx, device, _needs_torch([aid]),
                  log=lambda m: print(m, file=sys.stderr) if as_json else out(m))
    with tempfile.TemporaryDirectory(prefix="check-") as tmp:
        folder = Path(tmp) / "me" / aid
        folder.mkdir(parents=True)
        shutil.copy(path, folder / path.name)
        ctx.workroot = Path(tmp)
        rec = grade_submission(ctx, Submission("me", aid, folder))
    nbs = [nb for nb in rec["notebooks"] if nb["notebook"] == path.stem] or rec["notebooks"]
    _add_hints(aid, nbs)
    if as_json:
        passing = not rec.get("problem") and all(
            not nb.get("problem") and Status(c["status"]).ok for nb in nbs for c in nb["cells"])
        out(json.dumps({"assignment": aid, "path": str(path), "problem": rec.get("problem"),
                        "notebooks": nbs}, indent=1))
        return 2 if rec.get("problem") else 0 if passing else 1
    if rec.get("problem"):
        out(f"cannot check {path}: {rec['problem']}")
        return 2
    width = max([len(c["grade_id"]) for nb in nbs for c in nb["cells"]] + [8])
    ok = True
    for nb in nbs:
        if nb.get("problem"):
            out(f"{nb['notebook']}: {nb['problem']}")
            ok = False
            continue
        out(f"{aid}/{nb['notebook']}.ipynb")
        out(f"  {'exercise':<{width}}  {'status':<8} points")
        for c in nb["cells"]:
            out(f"  {c['grade_id']:<{width}}  {c['status']:<8} {c['score']:g}/{c['max_score']:g}")
            if c.get("parts"):
                out("      parts: " + ", ".join(f"{p} {v['score']:g}/{v['max_score']:g}" for p, v in c["parts"].items()))
            failed = [k for k in c["checks"] if not k["passed"]]
            for k in failed[:3]:
                out(f"      - {k['name']}: {k['message']}")
            if len(failed) > 3:
                out(f"      - ... and {len(failed) - 3} more failed checks")
            if not Status(c["status"]).ok and c.get("message"):
                out(f"      {c['message']}")
            if c.get("hint"):
                out(f"      hint: {c['hint']}")
            ok &= Status(c["status"]).ok
        auto = [c for c in nb["cells"] if c["kind"] == "auto"]
        out(f"  autograded: {sum(c['score'] for c in auto):g} of {sum(c['max_score'] for c in auto):g} points"
            f"; written answers are graded by your instructor")
    return 0 if ok else 1


def _add_hints(aid: str, nbs: list[dict]) -> None:
    """The exercise's hint (from its spec) on every autograded cell that did not pass,
    unless it was not attempted (a hint is for a wrong answer, not a blank one)."""
    from .specs import exercises

    try:
        specs = exercises(aid)
    except (KeyError, FileNotFoundError):
        return
    for nb in nbs:
        for c in nb["cells"]:
            spec = specs.get(c["grade_id"])
            blank = any("NotImplementedError" in k["message"] for k in c["checks"] if not k["passed"])
            blank = blank or c["status"] == Status.ERROR and "grading worker" in c.get("message", "")
            if c.get("kind") == "auto" and c["status"] != Status.PASSED and spec is not None and spec.hint \
                    and not blank:
                c["hint"] = spec.hint
