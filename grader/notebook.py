"""Reading source notebooks and students' submissions cell by cell (nbgrader metadata)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .errors import MissingFile
from .paths import solutions_dir


class NotebookProblem(Exception):
    """A submission that cannot be read; the message says why and what to do."""


def nbgrader_meta(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader", {})
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


def read_submission(path: Path, source: SourceNotebook) -> dict[str, str]:
    """The student's answer cells, by grade_id, taken from ``path``.

    Only cells whose grade_id is an answer cell in the source count: test
    cells, demos and anything the student added are ignored (the grader runs
    its own copies of the tests).  Raises :class:`NotebookProblem` with a
    reason a student can act on when the file is unreadable.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise NotebookProblem(f"{source.name}.ipynb was not submitted (expected at {path.name})") from None
    if len(raw) > 50 * 2**20:
        raise NotebookProblem(f"{path.name} is {len(raw) // 2**20} MiB; clear its outputs and resubmit")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotebookProblem(f"{path.name} is not valid notebook JSON ({exc}); "
                              "open it in JupyterLab, save, and resubmit") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise NotebookProblem(f"{path.name} has no list of cells; it is not a Jupyter notebook")
    if data.get("nbformat") != 4:
        raise NotebookProblem(f"{path.name} has nbformat {data.get('nbformat')!r}; "
                              "the course uses nbformat 4 (save it with JupyterLab 4)")
    answers: dict[str, str] = {}
    for cell in data["cells"]:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        m = nbgrader_meta(cell)
        gid = m.get("grade_id")
        if gid in source.solutions and gid not in answers:  # first copy wins
            s = cell.get("source", "")
            answers[gid] = "".join(s) if isinstance(s, list) else str(s)
    return answers
