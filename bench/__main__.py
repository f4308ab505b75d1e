"""``python -m bench [notebooks|scale] ...``; see ``bench/__init__.py``."""

from __future__ import annotations

import argparse
import os
import sys


def build_parser() -> argparse.ArgumentParser:
    from . import __doc__ as doc

    p = argparse.ArgumentParser(prog="python -m bench", description=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command")

    n = sub.add_parser("notebooks", help="execute every source notebook and grade one reference "
                                         "submission per assignment (the default)")
    n.add_argument("--assignment", action="append", help="only these assignments (repeatable)")
    n.add_argument("--sandbox", default=os.environ.get("COURSE_SANDBOX", "auto"))
    n.add_argument("--skip-notebooks", action="store_true", help="do not execute the notebooks")
    n.add_argument("--skip-grading", action="store_true", help="do not grade")
    n.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    n.add_argument("--repeat", type=int, default=3, help="runs of each measurement; medians are reported")

    s = sub.add_parser("scale", help="grade a generated class with stock nbgrader and with this grader")
    s.add_argument("--students", type=int, default=40, help="students in the class (default 40)")
    s.add_argument("--assignment", action="append", help="only these assignments (repeatable)")
    s.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="workers for the parallel run (default: CPU cores)")
    s.add_argument("--repeat", type=int, default=1, help="runs of this grader; medians are reported")
    s.add_argument("--stock-repeat", type=int, default=1,
                   help="runs of stock nbgrader (the slow one; default 1)")
    s.add_argument("--sandbox", default=os.environ.get("COURSE_SANDBOX", "auto"))
    s.add_argument("--skip-stock", action="store_true", help="do not run stock nbgrader (no ratios)")
    s.add_argument("--workdir", default=None, help="keep the class, course and outputs here")
    s.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks_scale.md alone")
    t = sub.add_parser("suite", help="time the test suite per assignment and project it to the whole course")
    t.add_argument("--assignments", type=int, default=14, help="assignments to project to (default 14)")
    t.add_argument("--from", dest="from_file", default=None,
                   help="read test timings written by a run with COURSE_TEST_TIMINGS=FILE instead of running")
    t.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks_suite.md alone")
    t.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv.insert(0, "notebooks")
    args = build_parser().parse_args(argv)
    if args.command == "scale":
        from .scale import main as run
    elif args.command == "suite":
        from .suite import main as run
    else:
        from .notebooks import main as run
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
