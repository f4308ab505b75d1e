"""Command line: ``python -m grader {release,autograde,export,check} ...``."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path


def _cmd_release(args) -> int:
    from .release import release, release_index

    stale = release(args.ids or None, check=args.check) + release_index(check=args.check)
    if args.check:
        if stale:
            print("notebooks/ is out of date with solutions/; these files differ:", file=sys.stderr)
            for s in stale:
                print(f"  {s}", file=sys.stderr)
            print("run `python -m grader release` and commit the result", file=sys.stderr)
            return 1
        print("notebooks/ is up to date with solutions/")
        return 0
    print("\n".join(f"wrote {s}" for s in stale) or "nothing to do: notebooks/ is up to date")
    return 0


def _limits(args):
    from .sandbox import Limits

    return Limits.parse(args.limit)


def _cmd_autograde(args) -> int:
    from .autograde import autograde

    records = autograde(Path(args.submissions), Path(args.out), assignments=args.assignment or None,
                        workers=args.workers, sandbox=args.sandbox, limits=_limits(args),
                        db_url=args.db, resume=not args.no_resume, scheduler=args.scheduler,
                        device=args.device)
    total = len(records)
    print(f"graded {total} submissions; grades in {Path(args.out) / 'grades.csv'}")
    return 0


def _cmd_export(args) -> int:
    from .exports import load_results, publish  # load_results: grader.results's, re-exported

    out = Path(args.out)
    records = load_results(out)
    db_url = args.db
    if db_url is None and (out / "gradebook.db").exists():
        db_url = f"sqlite:///{(out / 'gradebook.db').resolve()}"
    written = publish(out, records, lms=args.lms, roster=args.roster, db_url=db_url)
    print("\n".join(f"wrote {p}" for p in written))
    return 0


def _cmd_check(args) -> int:
    from .selfcheck import check_notebook

    return check_notebook(Path(args.notebook), sandbox=args.sandbox, limits=_limits(args),
                          as_json=args.json, device=args.device)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m grader", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("release", help="regenerate notebooks/<id>/ from solutions/<id>/")
    r.add_argument("ids", nargs="*", help="assignment ids (default: all)")
    r.add_argument("--check", action="store_true", help="write nothing; fail if notebooks/ is stale")
    r.set_defaults(func=_cmd_release)

    def common(q):
        q.add_argument("--sandbox", default=os.environ.get("COURSE_SANDBOX", "auto"),
                       help="auto (bubblewrap), bwrap, docker, podman, or none (trusted code only)")
        q.add_argument("--limit", action="append", metavar="KEY=VALUE",
                       help="override a limit, e.g. wall_s=30 memory_mb=2048 threads=2 (repeatable)")
        q.add_argument("--device", default=os.environ.get("COURSE_GRADING_DEVICE", "auto"),
                       choices=["auto", "cpu", "cuda"],
                       help="where torch exercises run: auto (the GPU when there is one), cpu or cuda")

    a = sub.add_parser("autograde", help="grade SUBMISSIONS/<student>/<assignment>/*.ipynb")
    a.add_argument("submissions", help="folder with one sub-folder per student")
    a.add_argument("--out", required=True, help="where grades, feedback and the gradebook go")
    a.add_argument("--assignment", action="append", help="only these assignments (repeatable)")
    a.add_argument("--workers", type=int, default=None, help="parallel submissions (default: CPU cores)")
    a.add_argument("--db", default=None, help="gradebook database URL (default: sqlite in OUT)")
    a.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                   help="grade on an existing Dask cluster instead of a local pool")
    a.add_argument("--no-resume", action="store_true", help="re-grade even unchanged submissions")
    common(a)
    a.set_defaults(func=_cmd_autograde)

    e = sub.add_parser("export", help="rebuild CSVs, LMS import file, pass rates and feedback from OUT/results")
    e.add_argument("out", help="the --out folder of an autograde run")
    e.add_argument("--lms", choices=["canvas", "moodle"], default="canvas", help="layout of lms.csv")
    e.add_argument("--roster", default=None, help="CSV with student_id and names, LMS ids, sections, e-mails")
    e.add_argument("--db", default=None,
                   help="gradebook URL to take the instructor's manual scores from (default: OUT/gradebook.db)")
    e.set_defaults(func=_cmd_export)

    c = sub.add_parser("check", help="grade one notebook of yours, as the autograder would")
    c.add_argument("notebook")
    c.add_argument("--json", action="store_true",
                   help="print the result as JSON (exercises, checks, hints) instead of a table")
    common(c)
    c.set_defaults(func=_cmd_check)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command.  Problems with the input (a bad argument, an unknown assignment, a
    missing file, no sandbox: :class:`grader.errors.UserError`) print ``error: ...`` and
    return 2; anything else is a bug in the grader and is shown with its traceback."""
    from .errors import UserError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception:
        traceback.print_exc()
        print("internal error: this is a bug in the grader, not a problem with your input; "
              "please report it with the traceback above", file=sys.stderr)
        return 1
