"""Hidden-test specs, one module per assignment (how to write one: CONTRIBUTING.md).

A spec module declares which assignment it describes with a module-level
``ASSIGNMENT = "<id>"`` and lists its graded test cells in ``EXERCISES``;
optionally ``WRONG_ANSWERS = {answer grade_id: code}`` holds deliberately wrong
answers that tests and benchmarks submit (each must cost exactly its own
exercise).  Modules are found by scanning, with no registry to keep:

* ``grader/specs/*.py``;
* every folder listed in ``COURSE_SPECS_PATH`` (``os.pathsep``-separated);
* a ``specs/`` folder beside the solutions folder (``COURSE_SOLUTIONS_DIR``),
  when there is one.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import sys
import types
from pathlib import Path

from ..errors import UnknownName
from ..paths import solutions_dir
from ..spec import Exercise

HERE = Path(__file__).resolve().parent


def spec_dirs() -> list[Path]:
    """Folders scanned for spec modules, in order (the first module for an assignment wins)."""
    dirs = [HERE]
    for d in os.environ.get("COURSE_SPECS_PATH", "").split(os.pathsep):
        if d.strip():
            dirs.append(Path(d).resolve())
    beside = (solutions_dir().parent / "specs").resolve()
    if beside.is_dir() and beside != HERE:
        dirs.append(beside)
    return dirs


def _declared_assignment(path: Path) -> str | None:
    """The module's ``ASSIGNMENT = "..."``, read without importing it."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == "ASSIGNMENT" and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)):
            return node.value.value
    return None


def spec_files() -> dict[str, Path]:
    """Assignment id -> the spec module's file."""
    found: dict[str, Path] = {}
    for d in spec_dirs():
        for path in sorted(d.glob("*.py")):
            if path.name.startswith("_"):
                continue
            aid = _declared_assignment(path)
            if aid and aid not in found:
                found[aid] = path
    return found


def spec_module(assignment: str) -> types.ModuleType:
    files = spec_files()
    try:
        path = files[assignment]
    except KeyError:
        raise UnknownName(f"no hidden-test spec for assignment {assignment!r}; known: "
                       f"{', '.join(sorted(files)) or 'none'} (a spec module declares "
                       f"ASSIGNMENT = {assignment!r})") from None
    if path.parent == HERE:
        return importlib.import_module(f"{__name__}.{path.stem}")
    modname = f"course_specs_{assignment}"
    if modname in sys.modules:
        return sys.modules[modname]
    spec = importlib.util.spec_from_file_location(modname, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[modname] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[modname]
        raise
    return mod


def exercises(assignment: str) -> dict[str, Exercise]:
    """The assignment's exercises keyed by the grade_id of their test cell."""
    mod = spec_module(assignment)
    out: dict[str, Exercise] = {}
    for ex in mod.EXERCISES:
        if ex.grade_id in out:
            raise ValueError(f"{mod.__name__} lists {ex.grade_id!r} twice")
        out[ex.grade_id] = ex
    return out


def wrong_answers(assignment: str) -> dict[str, str]:
    """The spec's deliberately wrong answers: answer cell grade_id -> code."""
    return dict(getattr(spec_module(assignment), "WRONG_ANSWERS", {}) or {})


def graded_names(assignment: str) -> list[str]:
    """Every function or class the assignment grades, in spec order."""
    names: list[str] = []
    for ex in exercises(assignment).values():
        names += [n for n in ex.object_names if n not in names]
    return names


def stated_requirements(assignment: str) -> dict[str, list[str]]:
    """Test cell grade_id -> the texts its notebook must state (rules, thresholds,
    properties, the points split between parts with the cell's points, the
    reference helpers it is graded with); see ``Exercise.stated_requirements``."""
    from ..notebook import source_notebooks

    points: dict[str, float] = {}
    for src in source_notebooks(assignment):
        points.update(src.tests)
    return {gid: ex.stated_requirements(points.get(gid)) for gid, ex in exercises(assignment).items()}
