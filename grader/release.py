"""``python -m grader release``: regenerate ``notebooks/<id>/`` from ``solutions/<id>/``.

The student release is made by nbgrader's own ``generate_assignment`` (solutions
replaced by stubs, hidden tests removed, outputs cleared, cells locked and
check-summed) in a throw-away course directory, then written out in a
canonical form so that regenerating an unchanged source changes nothing.
``--check`` writes nothing and lists the files that differ.  When the repository's public URL
is configured, every notebook starts with an "Open in Colab" link and a setup cell
(:mod:`grader.colab`).  The landing page
``notebooks/index.ipynb`` is generated too (:func:`release_index`, see :mod:`grader.index`).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

import nbformat

from . import colab
from .errors import UserError
from .paths import assignments, ensure_scripts_on_path, release_dir, solutions_dir

GENERATED_NOTE = ("Generated from solutions/{aid}/{name} by `python -m grader release`; "
                  "do not edit this copy, edit the source and release again.")
IGNORE = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pyc", ".DS_Store")


class ReleaseError(UserError, RuntimeError):
    """A source notebook that cannot be released; the message says which and why."""


def _generate(aid: str, course: Path) -> Path:
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    ensure_scripts_on_path()
    src = solutions_dir() / aid
    if not src.is_dir():
        raise ReleaseError(f"no solutions/{aid}/ to release; known: {', '.join(assignments())}")
    shutil.copytree(src, course / "source" / aid, ignore=IGNORE)
    cfg = Config()
    cfg.CourseDirectory.root = str(course)
    cfg.CourseDirectory.db_url = f"sqlite:///{course / 'gradebook.db'}"
    cfg.GenerateAssignment.create_assignment = True
    cfg.Exchange.root = str(course / "exchange")
    coursedir = CourseDirectory(config=cfg)
    api = NbGraderAPI(coursedir=coursedir, config=cfg)
    api.log.setLevel(logging.WARNING)
    result = api.generate_assignment(aid, force=True, create=True)
    if not result.get("success"):
        raise ReleaseError(f"nbgrader could not generate {aid}:\n{result.get('log', '')}\n{result.get('error', '')}")
    return course / "release" / aid


def _canonical_notebook(path: Path, aid: str) -> str:
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    course = dict(nb.metadata.get("course", {}))  # title, goals, minutes from the source stay
    course.update(assignment=aid, generated=GENERATED_NOTE.format(aid=aid, name=path.name))
    # "Open in Colab" and the setup cell, when the repository's public URL is configured
    first, where = colab.cells(f"notebooks/{aid}/{path.name}")
    nb.cells = first + nb.cells
    if where:
        course["colab"] = where
    nb.metadata["course"] = course
    return nbformat.writes(nb) + "\n"


def build(aid: str, course: Path) -> dict[str, bytes]:
    """Relative path -> contents of every file of the release of ``aid``."""
    out_dir = _generate(aid, course)
    files: dict[str, bytes] = {}
    for p in sorted(out_dir.rglob("*")):
        if p.is_file():
            rel = p.relative_to(out_dir).as_posix()
            if p.suffix == ".ipynb":
                files[rel] = _canonical_notebook(p, aid).encode()
            else:
                files[rel] = p.read_bytes()
    return files


def release_index(check: bool = False) -> list[str]:
    """Write (or, with ``check``, compare) ``notebooks/index.ipynb``; returns it when stale."""
    from .index import release_index as _release_index

    return _release_index(check=check)


def release(ids: list[str] | None = None, check: bool = False) -> list[str]:
    """Write (or, with ``check``, compare) the releases; returns the stale paths."""
    ids = ids or assignments()
    stale: list[str] = []
    for aid in ids:
        with tempfile.TemporaryDirectory(prefix="release-") as tmp:
            files = build(aid, Path(tmp))
        target = release_dir() / aid
        existing = {p.relative_to(target).as_posix() for p in target.rglob("*")
                    if p.is_file() and ".ipynb_checkpoints" not in p.parts} if target.is_dir() else set()
        for rel, data in files.items():
            dest = target / rel
            if not dest.exists() or dest.read_bytes() != data:
                stale.append(f"notebooks/{aid}/{rel}")
                if not check:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(data)
        for rel in sorted(existing - set(files)):
            stale.append(f"notebooks/{aid}/{rel} (not in the source)")
            if not check:
                (target / rel).unlink()
    return stale

