"""What an instructor takes away from a graded batch, built from ``OUT/results``.

Next to ``grades.csv`` (totals), ``grades_detailed.csv`` (one row per student
and exercise) and the HTML feedback, :func:`write_exports` writes

- ``grades_by_exercise.csv``: one row per student, one column per exercise
  (``<assignment>/<grade_id>``), for a spreadsheet;
- ``lms.csv``: totals per assignment in the gradebook-import layout of Canvas
  (``Student, ID, SIS User ID, SIS Login ID, Section``, one column per
  assignment and a ``Points Possible`` row) or of Moodle (``--lms moodle``:
  ``First name, Last name, ID number, Email address, Username``, one
  ``Assignment: <id> (Real)`` column per assignment);
- ``pass_rates.csv`` and ``pass_rates.png``: for every autograded exercise,
  how many submissions attempted it, passed it, and the mean score: where
  the class struggled.

``python -m grader export OUT`` rebuilds all of them (and the CSVs and
feedback) from ``OUT/results``; with a gradebook it also takes the scores the
instructor gave in formgrader (written answers, overrides) into ``lms.csv``.
"""

from __future__ import annotations

import copy
import csv
from collections import defaultdict
from pathlib import Path

from .errors import BadArgument, MissingFile
from .results import Status, SubmissionRecord, fmt_score, load_results, table, write_atomic

__all__ = ["grades_by_exercise", "lms_table", "load_results", "pass_rates", "pass_rates_csv",
           "pass_rates_summary", "plot_pass_rates", "read_roster", "write_exports"]

LMS_FORMATS = ("canvas", "moodle")
PASS_RATES_HEADER = ["assignment", "notebook", "grade_id", "attempts", "passed", "pass_rate",
                     "mean_score", "max_score"]
CANVAS_HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_HEADER = ["First name", "Last name", "ID number", "Email address", "Username"]
# Roster columns (case-insensitive) and the names they may go by.
ROSTER_ALIASES = {
    "student_id": ("student_id", "student", "nbgrader_id", "username", "login"),
    "first_name": ("first_name", "first name", "given_name"),
    "last_name": ("last_name", "last name", "surname", "family_name"),
    "name": ("name", "full_name", "display_name"),
    "lms_id": ("lms_id", "canvas_id", "lms_user_id", "id"),
    "sis_user_id": ("sis_user_id", "sis user id", "id_number", "id number"),
    "sis_login_id": ("sis_login_id", "sis login id"),
    "section": ("section",),
    "email": ("email", "email address"),
}


_fmt = fmt_score
_table = table
_write = write_atomic


def _assignments(records: list[SubmissionRecord]) -> list[str]:
    return sorted({r["assignment"] for r in records if r.get("notebooks")})


# ----------------------------------------------------------------------------
# Per exercise
# ----------------------------------------------------------------------------

def _exercise_columns(records: list[SubmissionRecord]) -> list[tuple[str, str, str]]:
    """(assignment, notebook, grade_id) of every graded cell, in notebook order."""
    seen: dict[tuple[str, str, str], None] = {}
    for r in sorted(records, key=lambda r: r["assignment"]):
        for nb in r.get("notebooks", []):
            for c in nb["cells"]:
                seen.setdefault((r["assignment"], nb["notebook"], c["grade_id"]), None)
    return sorted(seen, key=lambda k: k[0])  # stable: keeps cell order within an assignment


def grades_by_exercise(records: list[SubmissionRecord]) -> tuple[list[str], list[list]]:
    cols = _exercise_columns(records)
    scores: dict[str, dict] = defaultdict(dict)
    for r in records:
        for nb in r.get("notebooks", []):
            for c in nb["cells"]:
                scores[r["student_id"]][(r["assignment"], nb["notebook"], c["grade_id"])] = c["score"]
    header = ["student_id"] + [f"{a}/{g}" for a, _, g in cols]
    rows = [[sid] + [_fmt(scores[sid][k]) if k in scores[sid] else "" for k in cols]
            for sid in sorted(scores)]
    return header, rows


def pass_rates(records: list[SubmissionRecord]) -> list[dict]:
    """One row per autograded exercise: attempts (notebook submitted), passed, rate, mean score."""
    stats: dict[tuple[str, str, str], dict] = {}
    for r in sorted(records, key=lambda r: r["assignment"]):
        for nb in r.get("notebooks", []):
            for c in nb["cells"]:
                if c["kind"] != "auto":
                    continue
                s = stats.setdefault((r["assignment"], nb["notebook"], c["grade_id"]),
                                     {"attempts": 0, "passed": 0, "total": 0.0, "max_score": c["max_score"]})
                if c["status"] == Status.MISSING:
                    continue  # nothing was handed in for this notebook
                s["attempts"] += 1
                s["passed"] += c["status"] == Status.PASSED
                s["total"] += c["score"]
    rows = []
    for (aid, nb, gid) in sorted(stats, key=lambda k: k[0]):
        s = stats[(aid, nb, gid)]
        n = s["attempts"]
        rows.append({"assignment": aid, "notebook": nb, "grade_id": gid, "attempts": n,
                     "passed": s["passed"], "pass_rate": s["passed"] / n if n else 0.0,
                     "mean_score": s["total"] / n if n else 0.0, "max_score": s["max_score"]})
    return rows


def pass_rates_csv(rows: list[dict]) -> str:
    return _table(PASS_RATES_HEADER, [[r["assignment"], r["notebook"], r["grade_id"], r["attempts"],
                                       r["passed"], f"{r['pass_rate']:.3f}", f"{r['mean_score']:.3f}",
                                       _fmt(r["max_score"])] for r in rows])


def pass_rates_summary(rows: list[dict], limit: int = 15) -> str:
    """A text table of the exercises with the lowest pass rates, hardest first."""
    worst = sorted((r for r in rows if r["attempts"]), key=lambda r: (r["pass_rate"], r["assignment"]))
    if not worst:
        return "no autograded exercise was attempted"
    name_w = max(len(f"{r['assignment']}/{r['grade_id']}") for r in worst[:limit])
    lines = [f"{'exercise':<{name_w}}  {'passed':>9}  {'rate':>5}  {'mean':>11}",
             f"{'-' * name_w}  {'-' * 9}  {'-' * 5}  {'-' * 11}"]
    for r in worst[:limit]:
        bar = "#" * round(20 * r["pass_rate"])
        lines.append(f"{r['assignment'] + '/' + r['grade_id']:<{name_w}}  "
                     f"{r['passed']:>4}/{r['attempts']:<4}  {r['pass_rate']:>5.0%}  "
                     f"{r['mean_score']:>5.2f}/{_fmt(r['max_score']):<5}  {bar}")
    if len(worst) > limit:
        lines.append(f"... and {len(worst) - limit} more in pass_rates.csv")
    return "\n".join(lines)


def plot_pass_rates(rows: list[dict], path: Path) -> Path:
    """Horizontal bars of pass rate per exercise, hardest at the top."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    data = sorted((r for r in rows if r["attempts"]), key=lambda r: (r["pass_rate"], r["assignment"]))
    fig = Figure(figsize=(8, 1.2 + 0.32 * max(1, len(data))), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    labels = [f"{r['assignment']}/{r['grade_id']}" for r in data]
    rates = [100 * r["pass_rate"] for r in data]
    colors = ["#a3161b" if x < 50 else "#c9a100" if x < 80 else "#17631f" for x in rates]
    ax.barh(range(len(data)), rates, color=colors)
    ax.set_yticks(range(len(data)), labels, fontsize=8)
    for i, r in enumerate(data):
        ax.text(min(100 * r["pass_rate"] + 1, 88), i, f"{r['passed']}/{r['attempts']}",
                va="center", fontsize=7)
    ax.set_xlim(0, 100)
    ax.invert_yaxis()  # hardest (first) at the top
    ax.set_xlabel("submissions that passed (%)")
    ax.set_title("Pass rate per exercise (hardest at the top)")
    if not data:
        ax.text(50, 0, "no autograded exercise was attempted", ha="center")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


# ----------------------------------------------------------------------------
# LMS gradebook import
# ----------------------------------------------------------------------------

def read_roster(path: Path) -> dict[str, dict]:
    """student_id -> {first_name, last_name, name, lms_id, sis_user_id, sis_login_id, section, email}."""
    if not Path(path).is_file():
        raise MissingFile(f"the roster {path} does not exist; give a CSV file with a student_id column")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = {(h or "").strip().lower(): h for h in reader.fieldnames or []}
        cols = {key: next((fields[a] for a in aliases if a in fields), None)
                for key, aliases in ROSTER_ALIASES.items()}
        if cols["student_id"] is None:
            raise BadArgument(f"{path}: the roster needs a student_id column (the nbgrader student id); "
                             f"it has {', '.join(reader.fieldnames or [])}")
        roster = {}
        for row in reader:
            sid = (row.get(cols["student_id"]) or "").strip()
            if sid:
                roster[sid] = {k: (row.get(c) or "").strip() for k, c in cols.items() if c and k != "student_id"}
    return roster


def gradebook_people(db_url: str) -> dict[str, dict]:
    """Names, e-mails and LMS ids nbgrader knows (``nbgrader db student import``)."""
    from nbgrader.api import Gradebook

    from .paths import ensure_scripts_on_path

    ensure_scripts_on_path()
    people = {}
    with Gradebook(db_url) as gb:
        for s in gb.students:
            people[s.id] = {"first_name": s.first_name or "", "last_name": s.last_name or "",
                            "email": s.email or "", "lms_id": s.lms_user_id or ""}
    return people


def instructor_scores(db_url: str) -> dict[tuple[str, str, str, str], float]:
    """Scores the instructor set in formgrader: (student, assignment, notebook, grade_id) -> points."""
    return {k: v[0] for k, v in instructor_grades(db_url).items()}


def instructor_grades(db_url: str) -> dict[tuple[str, str, str, str], tuple[float, str]]:
    """What the instructor entered in formgrader: (student, assignment, notebook, grade_id) ->
    (manual score plus extra credit, their comment on the answer or "")."""
    from nbgrader.api import Comment, Grade, Gradebook

    from .paths import ensure_scripts_on_path

    ensure_scripts_on_path()
    grades = {}
    with Gradebook(db_url) as gb:
        comments = {}
        for c in gb.db.query(Comment).filter(Comment.manual_comment.isnot(None)):
            comments[(c.student.id, c.assignment.name, c.notebook.name, c.name)] = c.manual_comment
        for g in gb.db.query(Grade).filter(Grade.manual_score.isnot(None)):
            key = (g.student.id, g.assignment.name, g.notebook.name, g.name)
            grades[key] = (float(g.manual_score) + float(g.extra_credit or 0.0), comments.get(key) or "")
    return grades


def with_instructor_grades(records: list[SubmissionRecord], grades: dict) -> list[SubmissionRecord]:
    """Copies of ``records`` in which every written answer the instructor graded has their score,
    the status ``graded`` and their comment as its message; totals follow. The saved results
    are not changed: they stay what the autograder found."""
    out = []
    for r in records:
        r = copy.deepcopy(r)
        changed = False
        for nb in r.get("notebooks") or []:
            for c in nb["cells"]:
                key = (r["student_id"], r["assignment"], nb["notebook"], c["grade_id"])
                if c.get("kind") == "manual" and key in grades:
                    c["score"], comment = grades[key]
                    c["status"] = Status.GRADED
                    c["message"] = comment
                    changed = True
        if changed:
            r["score"] = sum(c["score"] for nb in r["notebooks"] for c in nb["cells"])
        out.append(r)
    return out


def lms_totals(records: list[SubmissionRecord], overrides: dict | None = None) -> dict[tuple[str, str], float]:
    """(student, assignment) -> total, with instructor scores replacing the recorded ones."""
    overrides = overrides or {}
    totals = {}
    for r in records:
        if not r.get("notebooks"):
            continue
        total = 0.0
        for nb in r["notebooks"]:
            for c in nb["cells"]:
                total += overrides.get((r["student_id"], r["assignment"], nb["notebook"], c["grade_id"]),
                                       c["score"])
        totals[(r["student_id"], r["assignment"])] = total
    return totals


def lms_table(records: list[SubmissionRecord], lms: str = "canvas", people: dict[str, dict] | None = None,
              overrides: dict | None = None) -> tuple[list[str], list[list]]:
    if lms not in LMS_FORMATS:
        raise BadArgument(f"unknown LMS {lms!r}; choose one of {', '.join(LMS_FORMATS)}")
    people = people or {}
    aids = _assignments(records)
    points = {}
    for r in records:
        if r.get("notebooks"):
            points[r["assignment"]] = max(points.get(r["assignment"], 0.0), r["max_score"])
    totals = lms_totals(records, overrides)
    students = sorted({sid for sid, _ in totals} | set(people))
    rows = []
    if lms == "canvas":
        header = CANVAS_HEADER + aids
        rows.append(["    Points Possible", "", "", "", ""] + [_fmt(points[a]) for a in aids])
    else:
        header = MOODLE_HEADER + [f"Assignment: {a} (Real)" for a in aids]
    for sid in students:
        p = people.get(sid, {})
        scores = [_fmt(totals[(sid, a)]) if (sid, a) in totals else "" for a in aids]
        if lms == "canvas":
            full = (f"{p['last_name']}, {p['first_name']}" if p.get("last_name") and p.get("first_name")
                    else p.get("name") or p.get("last_name") or sid)
            rows.append([full, p.get("lms_id", ""), p.get("sis_user_id", ""), p.get("sis_login_id") or sid,
                         p.get("section", "")] + scores)
        else:
            first, last = p.get("first_name", ""), p.get("last_name", "")
            if not (first or last) and p.get("name"):
                first, _, last = p["name"].partition(" ")
            rows.append([first, last, p.get("sis_user_id", ""), p.get("email", ""), sid] + scores)
    return header, rows


# ----------------------------------------------------------------------------
# Everything at once
# ----------------------------------------------------------------------------

def write_exports(out: Path, records: list[SubmissionRecord], *, lms: str = "canvas", roster: Path | None = None,
                  db_url: str | None = None, log=print) -> list[Path]:
    """Write the exports described in the module docstring; log the pass-rate summary.

    ``db_url`` (a gradebook) adds the instructor's manual scores and the names
    nbgrader knows to ``lms.csv``; ``roster`` (CSV) adds or replaces names, LMS
    ids and sections."""
    out = Path(out)
    people, overrides = {}, {}
    if db_url:
        people = gradebook_people(db_url)
        overrides = instructor_scores(db_url)
    if roster:
        for sid, info in read_roster(Path(roster)).items():
            people.setdefault(sid, {}).update({k: v for k, v in info.items() if v})
    written = []
    header, rows = grades_by_exercise(records)
    _write(out / "grades_by_exercise.csv", _table(header, rows))
    written.append(out / "grades_by_exercise.csv")
    header, rows = lms_table(records, lms, people, overrides)
    _write(out / "lms.csv", _table(header, rows))
    written.append(out / "lms.csv")
    rates = pass_rates(records)
    _write(out / "pass_rates.csv", pass_rates_csv(rates))
    written.append(out / "pass_rates.csv")
    written.append(plot_pass_rates(rates, out / "pass_rates.png"))
    log("pass rate per exercise, hardest first (pass_rates.csv, pass_rates.png):\n"
        + pass_rates_summary(rates))
    return written


def publish(out: Path, records: list[SubmissionRecord], *, db_url: str | None = None, lms: str = "canvas",
            roster: Path | None = None, log=print) -> list[Path]:
    """Everything an instructor hands on, from the records: ``grades.csv``,
    ``grades_detailed.csv``, ``problems.csv``, the feedback and the exports above. With a
    gradebook (``db_url``), the written answers graded in formgrader count in all of them."""
    from .feedback import write_feedback
    from .results import write_csvs

    out = Path(out)
    if db_url:
        records = with_instructor_grades(records, instructor_grades(db_url))
    write_csvs(out, records)
    for rec in records:
        write_feedback(out, rec)
    written = write_exports(out, records, lms=lms, roster=roster, db_url=db_url, log=log)
    return [out / "grades.csv", out / "grades_detailed.csv", out / "problems.csv", *written]
