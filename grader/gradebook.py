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


def record_in_gradebook(db_url: str, records: list[dict]) -> None:
    from nbgrader.api import Gradebook

    ensure_scripts_on_path()

    with warnings.catch_warnings(), Gradebook(db_url) as gb:
        warnings.simplefilter("ignore")  # SQLAlchemy chatter from inside nbgrader
        done: set[str] = set()
        for rec in sorted(records, key=lambda r: (r["student_id"], r["assignment"])):
            aid = rec["assignment"]
            if rec.get("problem") and not rec["notebooks"]:
                continue  # unknown assignment: nothing the gradebook can hold
            if aid not in done:
                _ensure_assignment(gb, aid)
                done.add(aid)
            gb.update_or_create_student(rec["student_id"])
            gb.update_or_create_submission(aid, rec["student_id"])
            for nb in rec["notebooks"]:
                for cell in nb["cells"]:
                    grade = gb.find_grade(cell["grade_id"], nb["notebook"], aid, rec["student_id"])
                    if cell["kind"] == "auto":
                        grade.auto_score = float(cell["score"])
                        grade.needs_manual_grade = False
                    else:
                        grade.auto_score = None
                        grade.needs_manual_grade = cell["status"] == "pending"
                        if cell["status"] != "pending":
                            grade.manual_score = 0.0
            gb.db.commit()
