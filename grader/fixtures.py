"""Building submissions from the course's own notebooks, for tests and benchmarks.

``make_submission(folder, "01_knn", answers="reference")`` writes the student
release with every answer cell filled in from the source notebook (code and
written answers), exactly as a student who solved everything would hand it in; ``answers="release"`` leaves
the stubs; ``overrides`` replaces chosen answer cells with other code.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from .notebook import nbgrader_meta, source_notebooks
from .paths import release_dir


def make_submission(folder: Path, assignment: str, answers: str = "reference",
                    overrides: dict[str, str] | None = None) -> list[Path]:
    if answers not in ("reference", "release"):
        raise ValueError(f"answers must be 'reference' or 'release', not {answers!r}")
    overrides = dict(overrides or {})
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for src in source_notebooks(assignment):
        rel = release_dir() / assignment / f"{src.name}.ipynb"
        if not rel.exists():
            raise FileNotFoundError(f"{rel} is missing; run `python -m grader release {assignment}`")
        nb = nbformat.read(str(rel), as_version=4)
        model_answers = {nbgrader_meta(c).get("grade_id"): c.source for c in nbformat.read(str(src.path), as_version=4).cells
                   if c.cell_type == "markdown" and nbgrader_meta(c).get("grade_id") in src.manual}
        for cell in nb.cells:
            gid = nbgrader_meta(cell).get("grade_id")
            if gid in overrides:
                cell.source = overrides.pop(gid)
            elif answers == "reference" and gid in src.solutions:
                cell.source = src.solutions[gid]
            elif answers == "reference" and gid in model_answers:  # the model answer of a written question
                cell.source = model_answers[gid]
        path = folder / f"{src.name}.ipynb"
        nbformat.write(nb, str(path))
        written.append(path)
    if overrides:
        raise KeyError(f"no answer cells named {sorted(overrides)} in {assignment}")
    return written


def wrong_answer(assignment: str) -> tuple[str, str] | None:
    """The first deliberately wrong answer its spec declares (``WRONG_ANSWERS``):
    ``(answer grade_id, code)``, for a function no other exercise calls, so that a
    submission with it loses exactly that exercise's points; ``None`` if it has none."""
    from .specs import wrong_answers

    try:
        answers = wrong_answers(assignment)
    except KeyError:
        return None
    return next(iter(answers.items()), None)


def _all_wrong() -> dict[str, tuple[str, str]]:
    from .paths import assignments
    from .specs import spec_files

    known = spec_files()
    return {aid: w for aid in assignments() if aid in known and (w := wrong_answer(aid))}


#: One deliberately wrong answer per assignment (from the spec modules' ``WRONG_ANSWERS``).
WRONG = _all_wrong()


def make_small_class(submitted: Path, assignment: str) -> Path:
    """Four students: two reference submissions, one with a wrong function, one untouched."""
    submitted = Path(submitted)
    make_submission(submitted / "ref_a" / assignment, assignment, "reference")
    make_submission(submitted / "ref_b" / assignment, assignment, "reference")
    gid, code = wrong_answer(assignment)
    make_submission(submitted / "wrong" / assignment, assignment, "reference", overrides={gid: code})
    make_submission(submitted / "untouched" / assignment, assignment, "release")
    return submitted
