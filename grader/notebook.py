"""Reading source notebooks and students' submissions cell by cell (nbgrader metadata)."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .errors import MissingFile
from .paths import solutions_dir
from .wire import read_fd


class NotebookProblem(Exception):
    """A submission that cannot be read; the message says why and what to do."""


def nbgrader_meta(cell) -> dict:
    meta = cell.get("metadata", {})
    meta = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return meta if isinstance(meta, dict) else {}


@dataclass
class SourceNotebook:
    """The instructor's notebook: the trusted description of every graded cell."""

    assignment: str
    path: Path
    setup: list[str] = field(default_factory=list)       # locked cells with grade_id "setup*"
    solutions: dict[str, str] = field(default_factory=dict)  # grade_id -> reference code
    tests: dict[str, float] = field(default_factory=dict)    # grade_id -> points (autograded)
    manual: dict[str, float] = field(default_factory=dict)   # grade_id -> points (written answers)
    order: list[str] = field(default_factory=list)           # every grade_id, in notebook order

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def max_score(self) -> float:
        return sum(self.tests.values()) + sum(self.manual.values())

    @classmethod
    def load(cls, assignment: str, path: Path) -> SourceNotebook:
        nb = nbformat.read(str(path), as_version=4)
        src = cls(assignment, Path(path))
        for cell in nb.cells:
            m = nbgrader_meta(cell)
            gid = m.get("grade_id")
            if not gid:
                continue
            src.order.append(gid)
            if cell.cell_type == "code" and gid.startswith("setup"):
                src.setup.append(cell.source)
            if m.get("solution") and cell.cell_type == "code":
                src.solutions[gid] = cell.source
            if m.get("grade"):
                pts = float(m.get("points", 0))
                if cell.cell_type == "code" and not m.get("solution"):
                    src.tests[gid] = pts
                else:
                    src.manual[gid] = pts
        return src


def source_notebooks(assignment: str) -> list[SourceNotebook]:
    folder = solutions_dir() / assignment
    paths = sorted(folder.glob("*.ipynb"))
    if not paths:
        raise MissingFile(
            f"no source notebooks for assignment {assignment!r} under {folder}; "
            f"known assignments: {', '.join(sorted(p.name for p in solutions_dir().iterdir()))}")
    return [SourceNotebook.load(assignment, p) for p in paths]


MAX_NOTEBOOK_BYTES = 50 * 2**20
MAX_CELLS = 10_000


def file_kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a named pipe (fifo)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def not_a_file_reason(name: str, mode: int) -> str:
    """Why ``name`` (of this ``lstat`` mode) is not read, for problems.csv."""
    if stat.S_ISLNK(mode):
        return (f"{name} is a symbolic link; the grader does not follow links: "
                "submit the notebook file itself")
    return f"{name} is {file_kind(mode)}, not a notebook file; submit the .ipynb file itself"


def read_notebook_bytes(path: Path, max_bytes: int = MAX_NOTEBOOK_BYTES) -> bytes:
    """The bytes of the regular file ``path``, never through a symbolic link.

    Checks the size before reading, never blocks on a fifo or a device, and
    raises :class:`NotebookProblem` saying why a file is not read.
    """
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise NotebookProblem(f"{path.name} cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise NotebookProblem(not_a_file_reason(path.name, st.st_mode))
    if st.st_size > max_bytes:
        raise NotebookProblem(too_big_reason(path.name, st.st_size, max_bytes))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:  # replaced by a link or removed since the lstat
        raise NotebookProblem(f"{path.name} cannot be read ({exc.strerror}); "
                              "submit the notebook file itself") from None
    try:
        fst = os.fstat(fd)
        if not stat.S_ISREG(fst.st_mode) or (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino):
            raise NotebookProblem(f"{path.name} changed while it was being read; grade it again")
        raw = read_fd(fd, max_bytes + 1)
    finally:
        os.close(fd)
    if len(raw) > max_bytes:
        raise NotebookProblem(too_big_reason(path.name, len(raw), max_bytes))
    return raw


def too_big_reason(name: str, size: int, max_bytes: int = MAX_NOTEBOOK_BYTES) -> str:
    return (f"{name} is {size / 2**20:.0f} MiB ({size} bytes), over the limit of {max_bytes // 2**20} MiB; "
            "clear its outputs (Edit > Clear Outputs of All Cells), save and resubmit")


def read_submission(path: Path, source: SourceNotebook) -> dict[str, str]:
    """The student's answer cells, by grade_id, taken from the file ``path``.

    Only cells whose grade_id is an answer cell in the source count: test
    cells, demos and anything the student added are ignored (the grader runs
    its own copies of the tests).  Raises :class:`NotebookProblem` with a
    reason a student can act on when the file is unreadable.
    """
    try:
        raw = read_notebook_bytes(path)
    except FileNotFoundError:
        raise NotebookProblem(f"{source.name}.ipynb was not submitted (expected at {path.name})") from None
    return parse_submission(raw, path.name, source)


def parse_submission(raw: bytes, name: str, source: SourceNotebook) -> dict[str, str]:
    """The answer cells of the notebook ``raw`` (the bytes of the file ``name``)."""
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise NotebookProblem(too_big_reason(name, len(raw)))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotebookProblem(f"{name} is not UTF-8 text (byte {exc.start} is not valid UTF-8); "
                              "open it in JupyterLab, save, and resubmit") from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise NotebookProblem(f"{name} is not a notebook: its JSON is nested too deeply to be one; "
                              "submit the notebook saved by JupyterLab") from None
    except ValueError as exc:  # JSONDecodeError, or a number too long to convert
        raise NotebookProblem(f"{name} is not valid notebook JSON ({str(exc)[:200]}); "
                              "open it in JupyterLab, save, and resubmit") from None
    if not isinstance(data, dict):
        raise NotebookProblem(f"{name} holds JSON that is not an object; it is not a Jupyter notebook")
    version = data.get("nbformat")
    if version == 3:  # the old layout: cells in worksheets, code in "input"
        sheets = data.get("worksheets")
        if not isinstance(sheets, list) or not all(isinstance(w, dict) and isinstance(w.get("cells"), list)
                                                   for w in sheets):
            raise NotebookProblem(f"{name} says nbformat 3 but has no worksheets of cells; open it in "
                                  "JupyterLab 4, save it (that converts it to nbformat 4), and resubmit")
        cells, key = [c for w in sheets for c in w["cells"]], "input"
    elif version == 4:
        if not isinstance(data.get("cells"), list):
            raise NotebookProblem(f"{name} has no list of cells; it is not a Jupyter notebook")
        cells, key = data["cells"], "source"
    elif "nbformat" not in data and not isinstance(data.get("cells"), list):
        raise NotebookProblem(f"{name} has no list of cells; it is not a Jupyter notebook")
    else:
        shown = ("(missing)" if "nbformat" not in data else version
                 if isinstance(version, int) and not isinstance(version, bool) else repr(version)[:40])
        raise NotebookProblem(f"{name} has nbformat {shown}; the course uses nbformat 4: open it in "
                              "JupyterLab 4, save it, and resubmit")
    if len(cells) > MAX_CELLS:
        raise NotebookProblem(f"{name} has {len(cells)} cells, more than the {MAX_CELLS} a course "
                              "notebook can have; remove the cells you added and resubmit")
    answers: dict[str, str] = {}
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        m = nbgrader_meta(cell)
        gid = m.get("grade_id")
        if isinstance(gid, str) and gid in source.solutions and gid not in answers:  # first copy wins
            s = cell.get(key, "")
            answers[gid] = "".join(x for x in s if isinstance(x, str)) if isinstance(s, list) else str(s)
    return answers


RELEASE_ANSWER_STUB = "YOUR ANSWER HERE"  # what nbgrader puts in a written-answer cell of the release


def unanswered_written(raw: bytes, source: SourceNotebook) -> set[str]:
    """The written answers (manual grade_ids) that ``raw``, a notebook already accepted by
    :func:`parse_submission`, leaves blank or as the release's stub: nothing to grade there."""
    try:
        data = json.loads(raw.decode("utf-8"))
        cells = data.get("cells") if data.get("nbformat") == 4 else [
            c for w in data.get("worksheets", []) for c in w.get("cells", [])]
    except (ValueError, UnicodeDecodeError, RecursionError, AttributeError, TypeError):
        return set()
    texts: dict[str, str] = {}
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict):
            continue
        gid = nbgrader_meta(cell).get("grade_id")
        if isinstance(gid, str) and gid in source.manual and gid not in texts:
            s = cell.get("source", "")
            texts[gid] = "".join(x for x in s if isinstance(x, str)) if isinstance(s, list) else str(s)
    return {gid for gid in source.manual if texts.get(gid, "").strip() in ("", RELEASE_ANSWER_STUB)}
