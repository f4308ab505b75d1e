"""``python -m bench suite``: what each assignment adds to the test suite, and the projection.

Runs the test suite once (``python -m pytest``, as ``python3 course.py test`` does, GPU tests
left out) with ``COURSE_TEST_TIMINGS`` set, so that ``tests/conftest.py`` records every test's
time (setup, call and teardown), or reads such a record (``--from FILE``). Then:

* a test whose id names an assignment (``test_x[01_knn]``, ``test_y[01_knn/knn.ipynb]``)
  counts for that assignment;
* the other tests of a module that grades or releases every assignment together (one that
  declares ``SCALES_WITH_ASSIGNMENTS = True``: the batch grading tests) are split evenly over
  the assignments;
* everything else is the platform's fixed cost.

The projection for a course of ``--assignments`` (14) assignments is the fixed cost, plus that
many times the mean cost of one assignment outside the sampled tests, plus the mean sampled cost
of one assignment times the size of the sample of 14 (``tests/conftest.py``: ``representative``;
the sampled tests are the browser tests and the full-data-set runs).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader.paths import ROOT, assignments

from . import report

DOC = ROOT / "docs" / "benchmarks_suite.md"
LIMIT_MIN = 40.0  # the projected suite must stay under this on the 2-core reference machine
HEADER = ["part", "tests", "seconds", "share of the suite"]


def run_suite(timings: Path, extra: list[str]) -> tuple[int, float]:
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONHASHSEED="0", COURSE_TEST_TIMINGS=str(timings))
    bindir = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "")])
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "not gpu", *extra], cwd=ROOT, env=env)
    return proc.returncode, time.monotonic() - t0


# Modules that run on a sample of the assignments (tests/conftest.py: representative): the
# browser tests and the full-data-set runs. Their cost is kept under the key "browser".
SAMPLED = {"test_browser.py", "test_full_dataset.py"}


def _scaling_modules() -> set[str]:
    out = set()
    for p in (ROOT / "tests").glob("test_*.py"):
        if re.search(r"^SCALES_WITH_ASSIGNMENTS\s*=\s*True", p.read_text(), re.M):
            out.add(p.name)
    return out


def _sample_size(n: int) -> int:
    """How many of ``n`` assignments the browser tests run on (tests/conftest.py)."""
    import sys as _sys

    _sys.path.insert(0, str(ROOT / "tests"))
    try:
        from conftest import representative
    finally:
        _sys.path.pop(0)
    return len(representative([f"{i:02d}" for i in range(n)]))


def attribute(timings: dict[str, float], ids: list[str]) -> dict[str, dict]:
    """{part: {"tests": n, "seconds": s}} with part an assignment id or "platform"."""
    parts = {aid: {"tests": 0, "seconds": 0.0, "browser": 0.0} for aid in ids}
    parts["platform"] = {"tests": 0, "seconds": 0.0}
    scaling = _scaling_modules()
    spread = 0.0
    for nodeid, seconds in timings.items():
        module = nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
        params = nodeid[nodeid.find("["):] if "[" in nodeid else ""
        named = [aid for aid in ids if aid in params]
        if named:
            for aid in named:
                parts[aid]["tests"] += 1
                parts[aid]["seconds"] += seconds / len(named)
                if module in SAMPLED:
                    parts[aid]["browser"] += seconds / len(named)
        elif module in scaling and ids:
            spread += seconds
            for aid in ids:
                parts[aid]["tests"] += 1 / len(ids)
        else:
            parts["platform"]["tests"] += 1
            parts["platform"]["seconds"] += seconds
    for aid in ids:
        parts[aid]["seconds"] += spread / len(ids)
        parts[aid]["tests"] = round(parts[aid]["tests"])
    return parts


def projection(parts: dict[str, dict], n_assignments: int, browser_sample: int | None = None) -> float:
    """Platform + n x (mean cost without the browser) + sample x (mean browser cost)."""
    per = [v for k, v in parts.items() if k != "platform"]
    if not per:
        return parts["platform"]["seconds"]
    browser = sum(v.get("browser", 0.0) for v in per) / len(per)
    other = sum(v["seconds"] for v in per) / len(per) - browser
    sample = n_assignments if browser_sample is None else browser_sample
    return parts["platform"]["seconds"] + n_assignments * other + sample * browser


def rows(parts: dict[str, dict]) -> list[list]:
    total = sum(v["seconds"] for v in parts.values()) or 1.0
    return [[k, int(v["tests"]), float(v["seconds"]), f"{100 * v['seconds'] / total:.0f}%"]
            for k, v in parts.items()]


def main(args) -> int:
    ids = assignments()
    if args.from_file:
        timings = json.loads(Path(args.from_file).read_text())
        wall, rc = sum(timings.values()), 0
    else:
        with tempfile.TemporaryDirectory(prefix="bench-suite-") as tmp:
            path = Path(tmp) / "timings.json"
            rc, wall = run_suite(path, args.pytest_args or [])
            timings = json.loads(path.read_text()) if path.exists() else {}
    if not timings:
        print("no test timings were recorded", file=sys.stderr)
        return 2
    parts = attribute(timings, ids)
    sample = _sample_size(args.assignments)
    proj = projection(parts, args.assignments, sample)
    table = rows(parts)
    ran = (f"The suite's {len(timings)} tests took {sum(timings.values()) / 60:.1f} minutes (their own times, "
           "recorded by a run of the suite)" if args.from_file else
           f"The suite ran {len(timings)} tests in {wall / 60:.1f} minutes (wall clock; the tests' own times "
           f"add up to {sum(timings.values()) / 60:.1f})")
    summary = (f"{ran}. With {args.assignments} "
               f"assignments it would take about **{proj / 60:.1f} minutes** (the platform's "
               f"{parts['platform']['seconds'] / 60:.1f} minutes, plus {args.assignments} times the mean "
               f"cost of one assignment outside the sampled tests, plus {sample} times its cost in the sampled "
               f"tests (browser, full data set), which run on a sample of {sample} of {args.assignments} assignments); the limit is "
               f"{LIMIT_MIN:g} minutes.")
    print(report.text_table(HEADER, table))
    print("\n" + summary.replace("**", ""))
    if not args.no_write:
        body = ("What each assignment adds to `python3 course.py test` (GPU tests left out), from one "
                "run of the suite; how tests are attributed is described in `bench/suite.py`.\n\n"
                + report.markdown_table(HEADER, table) + "\n\n" + summary)
        path = report.write_markdown(DOC, "Benchmarks: the test suite", [("Time per assignment", body)],
                                     args="suite")
        print(f"\nwrote {path.relative_to(ROOT)}")
    if rc not in (0,):
        print(f"the suite failed (exit code {rc}); the times above include the failures", file=sys.stderr)
    return 1 if rc or proj / 60 > LIMIT_MIN else 0
