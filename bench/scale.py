"""``python -m bench scale``: one class graded three ways, on the same submissions.

1. stock ``nbgrader autograde`` in a real nbgrader course directory
   (``source/`` = ``solutions/``, ``nbgrader generate_assignment``, then
   ``submitted/<student>/<assignment>/``): it runs every cell of every
   notebook, one submission after the other, and the hidden-test blocks run
   in its kernel through :func:`grader.hidden.run_hidden_tests`;
2. ``python -m grader autograde --workers 1``;
3. ``python -m grader autograde --workers N`` (N: the CPU cores).

The class mixes reference submissions, submissions with one wrong function
and untouched releases.  Every submission is honest, so all three must give
every student the same total (stock scores come from nbgrader's gradebook).
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader.paths import ROOT, assignments, solutions_dir

from . import report

DOC = ROOT / "docs" / "benchmarks_scale.md"

# One deliberately wrong function per assignment, that no other exercise calls;
# assignments not listed here get their last answer cell left unanswered.
# Of every 10 students: 5 hand in a full solution, 3 one wrong function, 2 the untouched release.
MIX = ["reference"] * 5 + ["wrong"] * 3 + ["untouched"] * 2


def _env() -> dict[str, str]:
    import sysconfig

    env = dict(os.environ, MPLBACKEND="Agg", PYTHONHASHSEED="0")
    env["PATH"] = os.pathsep.join([sysconfig.get_path("scripts"), env.get("PATH", "")])
    return env


def make_class(root: Path, ids: list[str], students: int) -> dict[str, str]:
    """Write ``root/<student>/<assignment>/*.ipynb``; returns student -> kind."""
    from grader.fixtures import WRONG, make_submission
    from grader.notebook import source_notebooks

    kinds = {}
    for i in range(students):
        sid = f"student{i + 1:03d}"
        kind = kinds[sid] = MIX[i % len(MIX)]
        for aid in ids:
            folder = root / sid / aid
            if kind == "wrong":
                if aid in WRONG:
                    gid, code = WRONG[aid]
                    make_submission(folder, aid, "reference", overrides={gid: code})
                else:
                    src = source_notebooks(aid)[-1]
                    last = list(src.solutions)[-1]
                    make_submission(folder, aid, "reference", overrides={last: _stub(aid, src.name, last)})
            else:
                make_submission(folder, aid, "release" if kind == "untouched" else "reference")
    return kinds


def _stub(aid: str, notebook: str, gid: str) -> str:
    """The release's version of answer cell ``gid`` (``raise NotImplementedError()``)."""
    import nbformat

    from grader.notebook import nbgrader_meta
    from grader.paths import release_dir

    nb = nbformat.read(str(release_dir() / aid / f"{notebook}.ipynb"), as_version=4)
    for cell in nb.cells:
        if nbgrader_meta(cell).get("grade_id") == gid:
            return cell.source
    raise KeyError(f"no answer cell {gid} in the release of {aid}")


# ----------------------------------------------------------------------------
# Stock nbgrader
# ----------------------------------------------------------------------------

NBGRADER_CONFIG = """c = get_config()
c.CourseDirectory.root = {root!r}
c.CourseDirectory.db_url = {db!r}
c.Execute.timeout = 300
"""


def stock_nbgrader(course: Path, class_dir: Path, ids: list[str], log=print) -> tuple[float, dict]:
    """Grade the class with ``nbgrader autograde``; (seconds, {(student, assignment): score})."""
    from nbgrader.api import Gradebook

    from grader.paths import ensure_scripts_on_path

    nbgrader = str(Path(sys.executable).with_name("nbgrader"))
    if course.exists():
        shutil.rmtree(course)
    (course / "source").mkdir(parents=True)
    db = f"sqlite:///{course / 'gradebook.db'}"
    (course / "nbgrader_config.py").write_text(NBGRADER_CONFIG.format(root=str(course), db=db))
    for aid in ids:
        shutil.copytree(solutions_dir() / aid, course / "source" / aid,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        subprocess.run([nbgrader, "generate_assignment", aid, "--force"], cwd=course, env=_env(),
                       check=True, capture_output=True)
    shutil.copytree(class_dir, course / "submitted")
    t0 = time.perf_counter()
    with open(course / "autograde.log", "w") as logf:
        for aid in ids:
            log(f"  nbgrader autograde {aid} ...")
            subprocess.run([nbgrader, "autograde", aid], cwd=course, env=_env(), check=True,
                           stdout=logf, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - t0
    ensure_scripts_on_path()
    scores = {}
    with Gradebook(db) as gb:
        for aid in ids:
            for sub in gb.assignment_submissions(aid):
                scores[(sub.student.id, aid)] = float(sub.score)
    return seconds, scores


# ----------------------------------------------------------------------------
# This grader
# ----------------------------------------------------------------------------

def ours(class_dir: Path, out: Path, ids: list[str], workers: int, sandbox: str) -> tuple[float, dict]:
    if out.exists():
        shutil.rmtree(out)
    cmd = [sys.executable, "-m", "grader", "autograde", str(class_dir), "--out", str(out),
           "--workers", str(workers), "--sandbox", sandbox, "--no-resume"]
    for aid in ids:
        cmd += ["--assignment", aid]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    (out.parent / f"{out.name}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"grading failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    with open(out / "grades.csv") as f:
        scores = {(r["student_id"], r["assignment"]): float(r["score"]) for r in csv.DictReader(f)}
    return seconds, scores


def compare(reference: dict, other: dict) -> list[str]:
    """Differences between two {(student, assignment): score} maps, as lines."""
    out = []
    for key in sorted(set(reference) | set(other)):
        a, b = reference.get(key), other.get(key)
        if a is None or b is None or abs(a - b) > 1e-9:
            out.append(f"{key[0]}/{key[1]}: {a} vs {b}")
    return out


def main(args) -> int:
    ids = args.assignment or assignments()
    if not ids:
        print("no assignments under solutions/", file=sys.stderr)
        return 2
    if min(args.students, args.repeat, args.stock_repeat, args.workers) < 1:
        raise SystemExit("--students, --repeat, --stock-repeat and --workers must be at least 1")
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        class_dir = work / "submitted"
        if class_dir.exists():
            shutil.rmtree(class_dir)
        print(f"generating {args.students} students x {len(ids)} assignments in {class_dir} ...")
        kinds = make_class(class_dir, ids, args.students)
        n = args.students * len(ids)
        runs: dict[str, dict] = {}
        scores: dict[str, dict] = {}
        methods = [] if args.skip_stock else [("stock nbgrader autograde", "stock", 1)]
        methods += [("python -m grader autograde", "ours_1", 1),
                    ("python -m grader autograde", "ours_n", args.workers)]
        for rep in range(max(args.repeat, args.stock_repeat)):
            for label, key, workers in methods:
                if rep >= (args.stock_repeat if key == "stock" else args.repeat):
                    continue
                print(f"[run {rep + 1}] {label} --workers {workers} on {n} submissions ...")
                if key == "stock":
                    seconds, got = stock_nbgrader(work / "course", class_dir, ids)
                else:
                    seconds, got = ours(class_dir, work / f"out_{key}", ids, workers, args.sandbox)
                print(f"  {seconds:.1f} s")
                name = "stock" if key == "stock" else f"{label} --workers {workers}"
                runs.setdefault(name, {"workers": workers, "submissions": n, "times": [],
                                       "label": label if key == "stock" else name})["times"].append(seconds)
                scores.setdefault(key, got)
        rows = report.scale_rows(runs)
        base = "stock" if "stock" in scores else "ours_1"
        agreement = []
        for key, label in (("ours_1", "1 worker"), ("ours_n", f"{args.workers} workers")):
            if key == base:
                continue
            diffs = compare(scores[base], scores[key])
            agreement.append(f"- this grader with {label} vs {'stock nbgrader' if base == 'stock' else '1 worker'}: "
                             + ("identical totals for all "
                                f"{len(scores[base])} submissions" if not diffs else
                                f"{len(diffs)} differ: " + "; ".join(diffs[:10])))
        mix = {k: sum(1 for v in kinds.values() if v == k) for k in ("reference", "wrong", "untouched")}
        print()
        print(report.text_table(report.SCALE_HEADER, rows))
        print("\n".join(agreement))
        if not args.no_write:
            setup = (f"{args.students} students x {len(ids)} assignments ({', '.join(ids)}) = {n} submissions: "
                     f"{mix['reference']} students hand in the reference solution, {mix['wrong']} the reference "
                     f"with one wrong function, {mix['untouched']} the untouched release. Stock nbgrader runs "
                     "every cell of every notebook (demos and experiments included), one submission at a "
                     "time; this grader runs only the setup and answer cells, one supervised sandboxed "
                     "worker per notebook with a time limit per exercise, `--workers` submissions at a time. Times are wall-clock seconds of the whole "
                     "command; the median where a method ran more than once.")
            path = report.write_markdown(
                DOC, "Benchmarks: grading a class", [
                    ("Setup", setup),
                    ("Results", report.markdown_table(report.SCALE_HEADER, rows)),
                    ("Do the scores agree?", "\n".join(agreement)),
                ], args=f"scale --students {args.students} --repeat {args.repeat}"
                        + (f" --stock-repeat {args.stock_repeat}" if args.stock_repeat != 1 else ""))
            print(f"\nwrote {path.relative_to(ROOT)}")
        return 0 if all("identical" in a for a in agreement) else 1
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
