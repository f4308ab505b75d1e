"""``python -m bench``: every source notebook executed, one reference submission graded."""

from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader.paths import ROOT, assignments, solutions_dir

from . import report

DOC = ROOT / "docs" / "benchmarks.md"


def _env() -> dict[str, str]:
    import sysconfig

    env = dict(os.environ, MPLBACKEND="Agg", PYTHONHASHSEED="0")
    env["PATH"] = os.pathsep.join([sysconfig.get_path("scripts"), env.get("PATH", "")])
    return env


def _cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def devices() -> list[str]:
    """cpu always; cuda too where there is a GPU (its rows are added to the tables)."""
    return ["cpu", "cuda"] if _cuda() else ["cpu"]


def _execute(path: Path, device: str = "cpu") -> dict:
    env = dict(_env(), COURSE_DEVICE=device)
    proc = subprocess.run([sys.executable, "-m", "bench.execute", str(path)], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"seconds": 0.0, "peak_mb": 0.0, "error": f"the runner failed: {proc.stderr.strip()[-300:]}"}


def run_notebooks(ids: list[str], repeat: int = 3, log=print) -> list[dict]:
    """Execute each notebook ``repeat`` times: the median time, the largest peak memory."""
    results = []
    for aid in ids:
        for path, device in [(p, d) for p in sorted((solutions_dir() / aid).glob("*.ipynb"))
                             for d in devices()]:
            log(f"executing solutions/{aid}/{path.name} on {device} ({repeat}x) ...")
            runs = [_execute(path, device) for _ in range(repeat)]
            res = {"seconds": statistics.median(r["seconds"] for r in runs),
                   "peak_mb": max(r["peak_mb"] for r in runs),
                   "error": next((r["error"] for r in runs if r.get("error")), None)}
            res.update(assignment=aid, notebook=path.name if device == "cpu" else f"{path.name} ({device})")
            log(f"  {res['seconds']:.1f} s, {res['peak_mb']:.0f} MB" + (f", {res['error']}" if res["error"] else ""))
            results.append(res)
    return results


def grade_references(ids: list[str], sandbox: str, repeat: int = 3, log=print) -> list[dict]:
    """Time ``python -m grader autograde`` on one reference submission per assignment (median)."""
    from grader.fixtures import make_submission

    results = []
    for aid, device in [(a, d) for a in ids for d in devices()]:
        with tempfile.TemporaryDirectory(prefix="bench-grade-") as tmp:
            subs, out = Path(tmp) / "submitted", Path(tmp) / "out"
            make_submission(subs / "reference" / aid, aid, "reference")
            log(f"grading a reference submission of {aid} on {device} ({repeat}x) ...")
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                proc = subprocess.run([sys.executable, "-m", "grader", "autograde", str(subs), "--out",
                                       str(out), "--workers", "1", "--sandbox", sandbox, "--no-resume",
                                       "--device", device],
                                      cwd=ROOT, env=_env(), capture_output=True, text=True)
                times.append(time.perf_counter() - t0)
                if proc.returncode != 0:
                    break
            seconds = statistics.median(times)
            if proc.returncode != 0:
                raise RuntimeError(f"grading {aid} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
            with open(out / "grades.csv") as f:
                row = next(csv.DictReader(f))
            label = "reference" if device == "cpu" else f"reference ({device})"
            results.append({"assignment": aid, "submission": label, "seconds": round(seconds, 2),
                            "score": float(row["score"]), "max_score": float(row["max_score"])})
            log(f"  {seconds:.1f} s, {row['score']}/{row['max_score']}")
    return results


def main(args) -> int:
    ids = args.assignment or assignments()
    if not ids:
        print("no assignments under solutions/", file=sys.stderr)
        return 2
    sections = []
    nb_rows = grade_rows = []
    NB_HEADING, GRADE_HEADING = "Executing the source notebooks", "Grading one submission"

    def keep_others(rows: list[list], heading: str) -> list[list]:
        """With --assignment, the other assignments' rows of the last full run stay in the file."""
        if not args.assignment or args.no_write:
            return rows
        others = [r for r in report.previous_rows(DOC, heading) if r and r[0] not in ids]
        return sorted(others + rows, key=lambda r: str(r[0]))

    if not args.skip_notebooks:
        nb_rows = keep_others(report.notebook_rows(run_notebooks(ids, getattr(args, "repeat", 3))), NB_HEADING)
        sections.append((NB_HEADING,
                         f"Each notebook of `solutions/` run top to bottom with nbclient, in a fresh "
                         f"kernel, {args.repeat} times: the median time and the largest peak memory "
                         "(the kernel's resident set).\n\n"
                         + report.markdown_table(report.NOTEBOOK_HEADER, nb_rows)))
    if not args.skip_grading:
        grade_rows = keep_others(report.grading_rows(grade_references(ids, args.sandbox, getattr(args, "repeat", 3))),
                                 GRADE_HEADING)
        sections.append((GRADE_HEADING,
                         "`python -m grader autograde` on one reference submission (every answer "
                         "filled in from the source notebook), one worker, sandboxed; the time is the "
                         f"whole command, median of {args.repeat} runs.\n\n" + report.markdown_table(report.GRADING_HEADER, grade_rows)))
    sections.append(("The test suite",
                     "What each assignment adds to `python3 course.py test`, and the time projected for the "
                     "whole course, are in `docs/benchmarks_suite.md` (`python -m bench suite`)."))
    print()
    if nb_rows:
        print(report.text_table(report.NOTEBOOK_HEADER, nb_rows), "\n")
    if grade_rows:
        print(report.text_table(report.GRADING_HEADER, grade_rows))
    if not args.no_write:
        path = report.write_markdown(DOC, "Benchmarks: notebooks and grading", sections)
        print(f"\nwrote {path.relative_to(ROOT)}")
    over = [r for r in nb_rows + grade_rows if r[-1] != "yes"]
    return 1 if over else 0
