"""Recording grades in nbgrader's gradebook (SQLite by default, any SQLAlchemy URL).

The gradebook gets the assignment, its notebooks and cells from the source
notebooks, and per submission the autograded scores; written answers are left
flagged for manual grading, so nbgrader's formgrader works on the result.
"""

from __future__ import annotations

import hashlib
import warnings

from .notebook import source_notebooks
from .paths import ensure_scripts_on_path


def _ensure_assignment(gb, assignment: str) -> None:
    gb.update_or_create_assignment(assignment)
    for src in source_notebooks(assignment):
        gb.update_or_create_notebook(src.name, assignment)
        for gid, pts in src.tests.items():
            gb.update_or_create_grade_cell(gid, src.name, assignment, max_score=pts, cell_type="code")
        for gid, pts in src.manual.items():
            gb.update_or_create_grade_cell(gid, src.name, assignment, max_score=pts, cell_type="markdown")
            gb.update_or_create_solution_cell(gid, src.name, assignment)
        for gid, code in src.solutions.items():
            gb.update_or_create_solution_cell(gid, src.name, assignment)
            gb.update_or_create_source_cell(gid, src.name, assignment, cell_type="code", locked=False,
                                            source=code, checksum=hashlib.sha256(code.encode()).hexdigest())


class _WriterLock:
    """Serialises gradebook writers across processes and machines.

    nbgrader's ``update_or_create_*`` calls each commit on their own, so two
    graders writing the same student or assignment at once could race between
    "not found" and "insert".  On PostgreSQL a session advisory lock, held on a
    connection of its own, lets one writer at a time through (each record takes
    milliseconds); on SQLite a lock file next to the database does the same.
    """

    KEY = 0x6E62_6772  # any constant shared by every grader of this database

    def __init__(self, db_url: str):
        self.db_url = db_url
        self.engine = self.conn = self.file = None
        if db_url.startswith("postgresql"):
            from sqlalchemy import create_engine

            self.engine = create_engine(db_url, future=True, pool_pre_ping=True)
            self.conn = self.engine.connect()
        elif db_url.startswith("sqlite:///") and db_url != "sqlite:///:memory:":
            self.file = open(db_url.removeprefix("sqlite:///") + ".lock", "a")

    def __enter__(self):
        if self.conn is not None:
            from sqlalchemy import text

            self.conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": self.KEY})
            self.conn.commit()
        elif self.file is not None:
            import fcntl

            fcntl.flock(self.file, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self.conn is not None:
            from sqlalchemy import text

            self.conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.KEY})
            self.conn.commit()
        elif self.file is not None:
            import fcntl

            fcntl.flock(self.file, fcntl.LOCK_UN)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.engine.dispose()
        if self.file is not None:
            self.file.close()


def _retrying(gb, fn, attempts: int = 8):
    """Run ``fn()``; on a conflict with another writer, roll back and try again."""
    import random
    import time

    from nbgrader.api import InvalidEntry
    from sqlalchemy.exc import DBAPIError

    for attempt in range(attempts):
        try:
            return fn()
        except (InvalidEntry, DBAPIError):
            gb.db.rollback()
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * 2 ** attempt * (1 + random.random()))


def _record(gb, rec: dict) -> None:
    aid = rec["assignment"]
    gb.update_or_create_student(rec["student_id"])
    gb.update_or_create_submission(aid, rec["student_id"])
    for nb in rec["notebooks"]:
        for cell in nb["cells"]:
            grade = gb.find_grade(cell["grade_id"], nb["notebook"], aid, rec["student_id"])
            if cell["kind"] == "auto":
                grade.auto_score = float(cell["score"])
                grade.needs_manual_grade = False
            elif cell["status"] != "pending":  # left blank: 0 points and nothing to grade, as nbgrader does
                grade.auto_score = 0.0
                grade.needs_manual_grade = False
            else:  # waiting for the instructor, unless they graded it already: a re-run keeps their score
                grade.auto_score = None
                grade.needs_manual_grade = grade.manual_score is None
    gb.db.commit()


def record_in_gradebook(db_url: str, records: list[dict]) -> None:
    """Write ``records`` to the gradebook at ``db_url``; safe with other graders
    writing to the same database at the same time (see :class:`_WriterLock`)."""
    from nbgrader.api import Gradebook

    ensure_scripts_on_path()

    lock = _WriterLock(db_url)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SQLAlchemy chatter from inside nbgrader
            with lock:  # the first writer of an empty database creates its tables
                gb = Gradebook(db_url)
            try:
                done: set[str] = set()
                for rec in sorted(records, key=lambda r: (r["student_id"], r["assignment"])):
                    aid = rec["assignment"]
                    if rec.get("problem") and not rec["notebooks"]:
                        continue  # unknown assignment: nothing the gradebook can hold
                    with lock:
                        if aid not in done:
                            _retrying(gb, lambda aid=aid: _ensure_assignment(gb, aid))
                            done.add(aid)
                        _retrying(gb, lambda rec=rec: _record(gb, rec))
            finally:
                gb.close()
    finally:
        lock.close()
