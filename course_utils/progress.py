"""Where a student stands: the course index and "check my work".

Two functions for notebooks:

- ``course_index()``, run by the landing page ``notebooks/index.ipynb``: every assignment in
  order with its learning goals, estimated time and how far this student has got (answer
  cells filled in), linked to the notebooks.
- ``check_my_work()``, for the last cell of an assignment: grades the saved notebook with
  ``python -m grader check`` (the instructor's autograder, hidden tests included, in its
  sandbox) and shows a table of the exercises, passed or failed, with hints.

Assignment descriptions come from the notebook's metadata when it has them
(``metadata.course.title``, ``goals``: a list of strings, ``minutes``: a number or
``[low, high]``), otherwise from its first markdown cell: the ``# heading`` is the title,
the list after "Learning goals" the goals, and the line "Estimated time: ..." the time.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "AssignmentInfo",
    "CheckReport",
    "CourseIndex",
    "NotebookStatus",
    "answer_status",
    "assignment_info",
    "check_my_work",
    "check_report",
    "course_index",
    "default_sandbox",
    "find_notebook",
    "on_colab",
    "save_colab_notebook",
]

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
ANSWER_PLACEHOLDER = "YOUR ANSWER HERE"
COLAB_LINK_ID = "open-in-colab"  # the release's "Open in Colab" cell (grader/colab.py), not the notebook's text
_STUB = re.compile(r"^[ \t]*raise[ \t]+NotImplementedError\b", re.MULTILINE)
_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(.*)$")


# ----------------------------------------------------------------------------
# Reading notebooks (plain JSON: no dependency beyond the standard library)
# ----------------------------------------------------------------------------

MAX_NOTEBOOK_BYTES = 50 * 2**20  # the grader's limit too


def _read(path: Path) -> dict:
    """A notebook's JSON; ``ValueError`` for anything that is not a readable notebook
    (too big, not UTF-8, invalid or absurdly nested JSON, not an object)."""
    path = Path(path)
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"{path.name} is over {MAX_NOTEBOOK_BYTES // 2**20} MiB")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise ValueError(f"{path.name} is nested too deeply to be a notebook") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} is not a notebook")
    cells = data.get("cells")
    data["cells"] = [c for c in cells if isinstance(c, dict)] if isinstance(cells, list) else []
    if not isinstance(data.get("metadata"), dict):
        data["metadata"] = {}
    return data


def _source(cell: dict) -> str:
    s = cell.get("source", "")
    return "".join(x for x in s if isinstance(x, str)) if isinstance(s, list) else str(s)


def _nbgrader(cell: dict) -> dict:
    meta = cell.get("metadata", {})
    meta = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return meta if isinstance(meta, dict) else {}


def _answer_filled(cell: dict) -> bool:
    text = _source(cell)
    if cell.get("cell_type") == "code":
        return bool(text.strip()) and not _STUB.search(text)
    return text.strip() not in ("", ANSWER_PLACEHOLDER)


def answer_status(nb: dict) -> tuple[int, int]:
    """(answers filled in, answer cells) of a notebook (parsed JSON).

    Answer cells are nbgrader's solution cells: a code cell is filled once it no longer
    runs ``raise NotImplementedError()`` (a commented-out line does not count), a written
    answer once it no longer reads "YOUR ANSWER HERE".
    """
    cells = nb.get("cells", [])
    answers = [c for c in (cells if isinstance(cells, list) else []) if isinstance(c, dict)
               and _nbgrader(c).get("solution")]
    return sum(_answer_filled(c) for c in answers), len(answers)


def _format_minutes(minutes) -> str:
    if isinstance(minutes, (list, tuple)) and len(minutes) == 2:
        lo, hi = (float(m) for m in minutes)
    else:
        lo = hi = float(minutes)
    if hi >= 120:
        lo_h, hi_h = f"{lo / 60:.1f}".removesuffix(".0"), f"{hi / 60:.1f}".removesuffix(".0")
        return f"{hi_h} hours" if lo == hi else f"{lo_h}–{hi_h} hours"
    return f"{hi:g} minutes" if lo == hi else f"{lo:g}–{hi:g} minutes"


def _parse_goals(text: str) -> list[str]:
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if re.search(r"learning goals", ln, re.I)), None)
    if start is None:
        return []
    goals: list[str] = []
    for line in lines[start + 1:]:
        m = _ITEM.match(line)
        if m:
            goals.append(m.group(1).strip())
        elif goals and line.strip() and line[:1].isspace():
            goals[-1] += " " + line.strip()  # an item continued on the next line
        elif goals and not line.strip():
            break
        elif line.strip() and not goals and re.match(r"^\s*(\*\*|#)", line):
            break  # the next paragraph started before any list
    return goals


def _parse_time(text: str) -> str:
    plain = text.replace("**", "").replace("__", "")
    m = re.search(r"estimated time\s*[:.\-–]?\s*(.+?)(?:\.(?:\s|$)|\n|$)", plain, re.I)
    return m.group(1).strip() if m else ""


@dataclass
class AssignmentInfo:
    """What the index says about one assignment."""

    aid: str
    title: str
    goals: list[str] = field(default_factory=list)
    time: str = ""
    notebooks: list[NotebookStatus] = field(default_factory=list)

    @property
    def filled(self) -> int:
        return sum(n.filled for n in self.notebooks)

    @property
    def total(self) -> int:
        return sum(n.total for n in self.notebooks)

    @property
    def status(self) -> str:
        if not self.notebooks:
            return "no notebook"
        if self.total == 0:
            return "nothing to answer"
        if self.filled == 0:
            return "not started"
        if self.filled < self.total:
            return f"in progress ({self.filled} of {self.total} answers)"
        return "all answers filled in"


@dataclass
class NotebookStatus:
    path: Path
    filled: int
    total: int
    saved: float  # modification time of the file


def assignment_info(nb: dict, aid: str = "") -> AssignmentInfo:
    """Title, learning goals and estimated time of a notebook (parsed JSON)."""
    meta = nb.get("metadata", {}).get("course", {})
    meta = meta if isinstance(meta, dict) else {}
    first = next((_source(c) for c in nb.get("cells", []) if c.get("cell_type") == "markdown"
                  and c.get("id") != COLAB_LINK_ID), "")
    heading = next((ln.lstrip("#").strip() for ln in first.splitlines() if ln.startswith("#")), "")
    title = str(meta.get("title") or heading or aid)
    goals = meta.get("goals")
    goals = [str(g) for g in goals] if isinstance(goals, list) else _parse_goals(first)
    minutes = meta.get("minutes")
    try:
        spent = _format_minutes(minutes) if isinstance(minutes, (int, float, list, tuple)) else _parse_time(first)
    except (TypeError, ValueError, OverflowError):  # "minutes": ["a", "b"] and the like
        spent = _parse_time(first)
    return AssignmentInfo(aid=aid, title=title, goals=goals, time=spent)


def _assignment_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir()
                  if p.is_dir() and not p.name.startswith((".", "_")) and any(p.glob("*.ipynb")))


def _default_root() -> Path:
    here = Path.cwd()
    if (here / "index.ipynb").exists() or any(here.glob("[0-9]*/*.ipynb")):
        return here
    return PACKAGE_ROOT / "notebooks"


def collect(root: Path | None = None) -> list[AssignmentInfo]:
    """Every assignment under ``root`` (default: the folder of the index notebook), in course order."""
    root = Path(root) if root is not None else _default_root()
    infos = []
    for folder in _assignment_dirs(root):
        notebooks = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))
        info = None
        statuses = []
        for path in notebooks:
            try:
                nb = _read(path)
            except (OSError, ValueError):
                statuses.append(NotebookStatus(path, 0, 0, path.stat().st_mtime))
                continue
            if info is None:
                info = assignment_info(nb, folder.name)
            filled, total = answer_status(nb)
            statuses.append(NotebookStatus(path, filled, total, path.stat().st_mtime))
        info = info or AssignmentInfo(folder.name, folder.name)
        info.notebooks = statuses
        infos.append(info)
    return infos


# ----------------------------------------------------------------------------
# Small HTML helpers (outputs must read well in JupyterLab's light and dark themes:
# no background colours, text colour inherited from the theme)
# ----------------------------------------------------------------------------

def _inline_markdown(text: str) -> str:
    """Escape ``text`` for HTML, keeping `code`, **bold** and *emphasis*."""
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)
    return re.sub(r"(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])", r"<i>\1</i>", out)


_TABLE_STYLE = ("border-collapse: collapse; text-align: left; margin: 0.5em 0;")
_CELL_STYLE = ("padding: 4px 10px; vertical-align: top; text-align: left; "
               "border-bottom: 1px solid var(--jp-border-color2, #bbb);")
_OK, _BAD, _WAIT = "#2e9d4a", "#d9412b", "#c58a00"  # readable on white and on the dark theme


def _td(content: str, extra: str = "") -> str:
    return f'<td style="{_CELL_STYLE}{extra}">{content}</td>'


def _th(content: str) -> str:
    return f'<th style="{_CELL_STYLE} font-weight: bold;">{content}</th>'


def _ago(mtime: float, now: float | None = None) -> str:
    seconds = max(0.0, (now if now is not None else time.time()) - mtime)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds / 3600:.0f} h ago"
    return _dt.datetime.fromtimestamp(mtime).strftime("%Y-%m-%d")


class CourseIndex:
    """The table of assignments shown by ``course_index()``; displays as HTML or text."""

    def __init__(self, infos: list[AssignmentInfo], base: Path):
        self.infos = infos
        self.base = base

    def _link(self, path: Path) -> str:
        try:
            return Path(os.path.relpath(path, self.base)).as_posix()
        except ValueError:  # another drive on Windows
            return path.as_posix()

    @property
    def next_up(self) -> AssignmentInfo | None:
        return next((i for i in self.infos if i.total and i.filled < i.total), None)

    def _repr_html_(self) -> str:
        if not self.infos:
            return "<p>No assignments found next to this notebook.</p>"
        rows = []
        for n, info in enumerate(self.infos):
            links = "<br>".join(
                f'<a href="{html.escape(self._link(nb.path))}">{html.escape(self._link(nb.path))}</a>'
                for nb in info.notebooks)
            goals = "".join(f"<li>{_inline_markdown(g)}</li>" for g in info.goals)
            goals_html = (f"<details><summary>{len(info.goals)} learning goals</summary>"
                          f'<ul style="margin: 0.3em 0; padding-left: 1.2em;">{goals}</ul></details>'
                          if goals else "")
            if info.total and info.filled == info.total:
                colour, mark = _OK, "✓ "
            elif info.filled:
                colour, mark = _WAIT, "◐ "
            else:
                colour, mark = "inherit", ""
            saved = [nb.saved for nb in info.notebooks if nb.filled]
            when = f"<br><small>saved {_ago(max(saved))}</small>" if saved else ""
            rows.append("<tr>" + _td(str(n + 1)) + _td(f"<b>{_inline_markdown(info.title)}</b><br>{links}"
                                                       f"{goals_html}")
                        + _td(html.escape(info.time) or "–")
                        + _td(f'<span style="color: {colour};">{mark}{html.escape(info.status)}</span>{when}')
                        + "</tr>")
        head = "<tr>" + "".join(_th(h) for h in ("", "assignment", "estimated time", "your progress")) + "</tr>"
        nxt = self.next_up
        note = (f"<p>Next up: <b>{_inline_markdown(nxt.title)}</b> "
                f'(<a href="{html.escape(self._link(nxt.notebooks[0].path))}">open</a>).</p>'
                if nxt else "")
        return (f'<table class="course-index" style="{_TABLE_STYLE}"><thead>{head}</thead>'
                f"<tbody>{''.join(rows)}</tbody></table>{note}"
                "<p><small>Progress counts the answer cells you have filled in and saved; "
                "to grade them, run the last cell of a notebook (<code>check_my_work()</code>).</small></p>")

    def __repr__(self) -> str:
        lines = []
        for n, info in enumerate(self.infos):
            lines.append(f"{n + 1}. {info.title} [{info.time or '?'}]: {info.status}")
            lines += [f"   {self._link(nb.path)}" for nb in info.notebooks]
            lines += [f"   - {g}" for g in info.goals]
        return "\n".join(lines) or "no assignments found"


def course_index(root: str | Path | None = None) -> CourseIndex:
    """The assignments in order, with learning goals, estimated time and your progress.

    Make it the last expression of a cell: it displays as a table with links to the notebooks.
    ``root`` is the folder holding the assignment folders (default: the current folder, which is
    the index notebook's, or the course's ``notebooks/``).
    """
    root = Path(root) if root is not None else _default_root()
    return CourseIndex(collect(root), Path.cwd())


# ----------------------------------------------------------------------------
# Check my work
# ----------------------------------------------------------------------------

def _ipython():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _candidates() -> list[str]:
    """Paths the running kernel was told about, best first."""
    found = []
    shell = _ipython()
    ns = getattr(shell, "user_ns", {}) or {}
    for key in ("__session__", "__vsc_ipynb_file__"):  # JupyterLab / ipykernel, VS Code
        if isinstance(ns.get(key), str):
            found.append(ns[key])
    if os.environ.get("JPY_SESSION_NAME"):
        found.append(os.environ["JPY_SESSION_NAME"])
    return found


def find_notebook(notebook: str | Path | None = None) -> Path:
    """The notebook file to check: ``notebook`` if given, else the one this kernel runs.

    JupyterLab tells the kernel its notebook's path (``__session__`` and the
    ``JPY_SESSION_NAME`` variable); when it does not (an old server, a renamed file), the
    only assignment notebook in the current folder is used.
    """
    if notebook is not None:
        path = Path(notebook).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist (looked in {Path.cwd()})")
        return path.resolve()
    for cand in _candidates():
        for path in (Path(cand), Path.cwd() / cand, Path.cwd() / Path(cand).name):
            if path.suffix == ".ipynb" and path.is_file():
                return path.resolve()
    here = sorted(p for p in Path.cwd().glob("*.ipynb") if p.name != "index.ipynb")
    if len(here) == 1:
        return here[0].resolve()
    names = ", ".join(p.name for p in here) or "none"
    raise FileNotFoundError(
        f"cannot tell which notebook to check (notebooks in {Path.cwd()}: {names}); "
        "name it, e.g. check_my_work('knn.ipynb')")


def _defined_name(code: str) -> str | None:
    m = re.search(r"^(?:def|class)\s+(\w+)", code, re.MULTILINE)
    return m.group(1) if m else None


def unsaved_answers(path: Path, history: list[str] | None = None) -> list[str]:
    """Functions whose latest run in this kernel differs from the saved notebook's answer cell.

    ``history`` is the kernel's executed cells (IPython's ``In``); a non-empty result means
    the student changed an answer and ran it without saving (or saved and did not re-run).
    """
    if history is None:
        shell = _ipython()
        history = list(getattr(shell, "user_ns", {}).get("In", []) or [])
    try:
        nb = _read(path)
    except (OSError, ValueError):
        return []
    stale = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code" or not _nbgrader(cell).get("solution"):
            continue
        saved = _source(cell)
        name = _defined_name(saved)
        if not name:
            continue
        runs = [h for h in history if isinstance(h, str) and _defined_name(h) == name
                and re.search(rf"^(?:def|class)\s+{name}\b", h, re.MULTILINE)]
        if runs and runs[-1].strip() != saved.strip():
            stale.append(name)
    return stale


@dataclass
class CheckRow:
    notebook: str
    exercise: str
    kind: str  # auto or manual
    status: str
    score: float
    max_score: float
    problem: str = ""
    more: int = 0  # further failed checks not shown
    hint: str = ""


def _status_ok(status: str) -> bool:
    """Whether a status from ``grader check`` needs nothing from the student (passed, or
    waiting for the instructor); the statuses are :class:`grader.results.Status`."""
    from grader.results import Status  # only reports of ``grader check`` get here

    try:
        return Status(status).ok
    except ValueError:  # "not answered", or a status this copy does not know
        return False


_MARKS = {"passed": ("✓", _OK), "pending": ("✎", "inherit")}
NOT_ANSWERED = "not answered yet: replace `raise NotImplementedError()` with your code"


class CheckReport:
    """Result of ``python -m grader check`` on one notebook; displays as a table."""

    def __init__(self, path: Path, data: dict | None = None, error: str = "", seconds: float = 0.0,
                 saved: float | None = None, unsaved: list[str] | None = None):
        self.path = Path(path)
        self.data = data or {}
        self.error = error
        self.seconds = seconds
        self.saved = saved
        self.unsaved = list(unsaved or [])
        self.note = ""  # how it was graded, when not in the grader's sandbox
        self.rows: list[CheckRow] = []
        for nb in self.data.get("notebooks", []):
            if nb.get("problem"):
                self.error = self.error or f"{nb['notebook']}.ipynb: {nb['problem']}"
            for c in nb.get("cells", []):
                failed = [k for k in c.get("checks", []) if not k.get("passed")]
                status, problem, more = c.get("status", "error"), "", max(0, len(failed) - 1)
                if not _status_ok(status):
                    first = failed[0] if failed else None
                    if any("NotImplementedError" in k.get("message", "") for k in failed):
                        status, problem, more = "not answered", NOT_ANSWERED, 0
                    elif first:
                        problem = f"{first['name']}: {first['message']}"
                    else:
                        problem = c.get("message", "")
                self.rows.append(CheckRow(nb.get("notebook", ""), c["grade_id"], c.get("kind", "auto"),
                                          status, float(c.get("score", 0)), float(c.get("max_score", 0)),
                                          problem, more, c.get("hint", "") or ""))

    @property
    def ok(self) -> bool:
        return not self.error and bool(self.rows) and all(_status_ok(r.status) for r in self.rows)

    @property
    def score(self) -> tuple[float, float]:
        auto = [r for r in self.rows if r.kind == "auto"]
        return sum(r.score for r in auto), sum(r.max_score for r in auto)

    def _header(self) -> str:
        saved = (f", saved {_dt.datetime.fromtimestamp(self.saved).strftime('%H:%M:%S')}"
                 f" ({_ago(self.saved)})" if self.saved else "")
        return f"{self.path.parent.name}/{self.path.name}{saved}"

    def _summary(self) -> str:
        if self.error:
            return ""
        got, total = self.score
        manual = sum(r.kind == "manual" for r in self.rows)
        verdict = (f"all autograded exercises pass ({got:g}/{total:g} points)" if got == total
                   else f"{got:g} of {total:g} autograded points")
        written = (f"; {manual} written answer{'s are' if manual > 1 else ' is'} graded by your instructor"
                   if manual else "")
        return f"{verdict}{written}"

    @staticmethod
    def _exercise_name(row: CheckRow) -> str:
        if row.kind == "manual":
            return f"{row.exercise} (written answer)"
        return row.exercise.removeprefix("test_")

    def _repr_html_(self) -> str:
        parts = [f"<p><b>Check of {html.escape(self._header())}</b></p>"]
        if self.note:
            parts.append(f"<p><small>{html.escape(self.note)}</small></p>")
        if self.unsaved:
            parts.append(f'<p style="color: {_WAIT};">⚠ The saved notebook differs from the code you last ran '
                         f"for {', '.join(f'<code>{html.escape(n)}</code>' for n in self.unsaved)}: save "
                         "(Ctrl+S, ⌘S on a Mac) and check again. The check grades the saved file.</p>")
        if self.error:
            parts.append(f'<p style="color: {_BAD};">✗ {_inline_markdown(self.error)}</p>')
            return "".join(parts)
        rows = []
        details = any(r.problem or r.hint for r in self.rows)
        for r in self.rows:
            mark, colour = _MARKS.get(r.status, ("✗", _BAD))
            status = {"pending": "graded by your instructor"}.get(r.status, r.status)
            detail = _inline_markdown(r.problem)
            if r.more:
                detail += f" <small>(and {r.more} more failed check{'s' if r.more > 1 else ''})</small>"
            if r.hint and not _status_ok(r.status):
                detail += f"<br><i>hint:</i> {_inline_markdown(r.hint)}"
            rows.append("<tr>" + _td(f'<span style="color: {colour}; font-weight: bold;">{mark}</span> '
                                     f"{html.escape(status)}")
                        + _td(f"<code>{html.escape(self._exercise_name(r))}</code>")
                        + _td(f"{r.score:g} / {r.max_score:g}", " white-space: nowrap;")
                        + (_td(detail) if details else "") + "</tr>")
        columns = ("status", "exercise", "points") + (("what to look at",) if details else ())
        head = "<tr>" + "".join(_th(h) for h in columns) + "</tr>"
        colour = _OK if self.ok else _BAD
        parts.append(f'<table class="course-check" style="{_TABLE_STYLE}"><thead>{head}</thead>'
                     f"<tbody>{''.join(rows)}</tbody></table>")
        parts.append(f'<p style="color: {colour}; font-weight: bold;">{html.escape(self._summary())}</p>')
        parts.append(f"<p><small>Graded by the course's autograder with the hidden tests "
                     f"in {self.seconds:.0f} s; a written answer is not checked here.</small></p>")
        return "".join(parts)

    def __repr__(self) -> str:
        lines = [f"Check of {self._header()}"] + ([f"({self.note})"] if self.note else [])
        if self.unsaved:
            lines.append(f"! the saved notebook differs from what you last ran for {', '.join(self.unsaved)}: "
                         "save (Ctrl+S) and check again")
        if self.error:
            return "\n".join([*lines, f"x {self.error}"])
        width = max([len(self._exercise_name(r)) for r in self.rows] + [8])
        for r in self.rows:
            mark = _MARKS.get(r.status, ("✗", ""))[0]
            lines.append(f"{mark} {self._exercise_name(r):<{width}}  {r.score:g}/{r.max_score:g}  {r.status}")
            if r.problem:
                lines.append(f"    {r.problem}" + (f" (and {r.more} more)" if r.more else ""))
            if r.hint and not _status_ok(r.status):
                lines.append(f"    hint: {r.hint}")
        lines.append(self._summary())
        return "\n".join(lines)


def check_report(path: str | Path, sandbox: str | None = None, timeout: float = 900,
                 device: str | None = None) -> CheckReport:
    """Grade the saved notebook at ``path`` with ``python -m grader check`` and return the report."""
    path = Path(path).resolve()
    saved = path.stat().st_mtime
    cmd = [sys.executable, "-m", "grader", "check", str(path), "--json"]
    if sandbox:
        cmd += ["--sandbox", sandbox]
    if device:
        cmd += ["--device", device]
    env = dict(os.environ, MPLBACKEND="Agg")
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=str(PACKAGE_ROOT if (PACKAGE_ROOT / "grader").is_dir() else path.parent))
    except subprocess.TimeoutExpired:
        return CheckReport(path, error=f"the check did not finish within {timeout:.0f} s", saved=saved)
    seconds = time.monotonic() - t0
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        err = (proc.stderr.strip().splitlines() or [f"the grader stopped with exit code {proc.returncode}"])[-1]
        err = err.removeprefix("error: ")
        if "No module named grader" in proc.stderr:
            err = ("this copy of the course has no grader; submit the notebook to your instructor, "
                   "or run the self-check cells under each exercise")
        elif "bubblewrap" in err or "sandbox" in err.lower():
            err += (" To grade your own notebook without the sandbox, run "
                    "`check_my_work(sandbox=\"none\")`.")
        return CheckReport(path, error=err, seconds=seconds, saved=saved)
    return CheckReport(path, data, seconds=seconds, saved=saved)


def on_colab() -> bool:
    """Whether this kernel runs on Google Colab."""
    return "google.colab" in sys.modules


def default_sandbox() -> tuple[str | None, str]:
    """(sandbox for ``grader check``, a note for the student) when the student chose none.

    Where bubblewrap is installed the grader's own sandbox (``None``: the grader's default,
    or ``COURSE_SANDBOX``); where it is not (Google Colab, macOS, Windows) there is no sandbox
    to grade in, so the notebook is graded without one, and the note says so."""
    if shutil.which("bwrap") or os.environ.get("COURSE_SANDBOX"):
        return None, ""
    where = ("Google Colab" if on_colab() else
             {"darwin": "macOS", "win32": "Windows"}.get(sys.platform, "this machine"))
    return "none", (f"graded without a sandbox: {where} has no bubblewrap. That is safe for your own "
                    "code; your instructor's autograder runs the same tests in its sandbox")


def save_colab_notebook(nb: dict, fallback: Path | None = None) -> Path:
    """Write ``nb`` (the notebook as Colab shows it, parsed JSON) where the course's copy of it
    is, so that the grader reads what the student sees; returns that path.

    The place is the one the release wrote in ``metadata.course.colab.path`` (relative to the
    course), else ``fallback``."""
    where = nb.get("metadata", {}).get("course", {}).get("colab", {})
    rel = where.get("path") if isinstance(where, dict) else None
    dest = PACKAGE_ROOT / rel if rel else fallback
    if dest is None:
        raise FileNotFoundError("cannot tell which assignment this notebook is; open it from the course's "
                                "\"Open in Colab\" link and run its first cell")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return dest


def _colab_notebook() -> Path:
    """Colab keeps the notebook in the browser and on Drive, not on the runtime's disk: fetch it."""
    from google.colab import _message

    reply = _message.blocking_request("get_ipynb", request="", timeout_sec=120)
    if not isinstance(reply, dict) or "ipynb" not in reply:
        raise FileNotFoundError("Colab did not hand over the notebook; try again, or download it "
                                "(File > Download > .ipynb) and submit it")
    try:
        here = find_notebook()
    except FileNotFoundError:
        here = None
    return save_colab_notebook(reply["ipynb"], here)


def check_my_work(notebook: str | Path | None = None, sandbox: str | None = None,
                  device: str | None = None) -> None:
    """Grade this notebook, as saved on disk, like the instructor's autograder, and show a table.

    Save first (Ctrl+S, or ⌘S on a Mac): the check reads the file, not this kernel. On Google
    Colab it grades the notebook as Colab shows it (there is no file to save).
    ``notebook``: the file to check (default: the notebook this kernel runs).
    ``sandbox``: passed to ``python -m grader check --sandbox`` (default: the grader's sandbox,
    bubblewrap, where it is installed; where it is not, as on Colab, macOS and Windows,
    "none", which grades your own notebook without isolation and says so).
    ``device``: where torch exercises run, "auto" (default: the GPU when there is one), "cpu"
    or "cuda".
    """
    colab = notebook is None and on_colab()
    try:
        path = _colab_notebook() if colab else find_notebook(notebook)
    except FileNotFoundError as exc:
        _show(CheckReport(Path(str(notebook or "?")), error=str(exc)))
        return
    note = ""
    if sandbox is None:
        sandbox, note = default_sandbox()
    saved = path.stat().st_mtime
    unsaved = [] if colab else unsaved_answers(path)
    when = _dt.datetime.fromtimestamp(saved).strftime("%H:%M:%S")
    what = (f"Checking {path.name} as Colab shows it now" if colab else
            f"Checking {path.name} as saved at {when} ({_ago(saved)}); save with Ctrl+S first if you "
            "changed it")
    handle = _show_progress(f"{what}. Grading every exercise with the hidden tests takes 10 to 60 seconds"
                            + (f" ({note})" if note else "") + "...")
    report = check_report(path, sandbox=sandbox, device=device)
    report.unsaved = unsaved
    report.note = note
    if handle is not None:
        handle.update(report)
    else:
        print(repr(report))


def _show_progress(text: str):
    if _ipython() is None:
        print(text, flush=True)
        return None
    from IPython.display import display

    class _Note:
        def _repr_html_(self):
            return f"<p><i>{html.escape(text)}</i></p>"

        def __repr__(self):
            return text

    return display(_Note(), display_id=True)


def _show(obj) -> None:
    if _ipython() is None:
        print(repr(obj))
        return
    from IPython.display import display

    display(obj)
