"""Hidden-test specs, one module per assignment (how to write one: CONTRIBUTING.md).

``MODULES`` maps an assignment id to the module whose ``EXERCISES`` list
describes its graded test cells.
"""

from __future__ import annotations

import importlib

from ..errors import UnknownName
from ..spec import Exercise

MODULES: dict[str, str] = {
    "00_tensors": "grader.specs.tensors",
    "01_knn": "grader.specs.knn",
    "03_backprop": "grader.specs.backprop",
}


def exercises(assignment: str) -> dict[str, Exercise]:
    """The assignment's exercises keyed by the grade_id of their test cell."""
    try:
        modname = MODULES[assignment]
    except KeyError:
        raise UnknownName(f"no hidden-test spec for assignment {assignment!r}; "
                       f"known: {', '.join(sorted(MODULES)) or 'none'}") from None
    mod = importlib.import_module(modname)
    out: dict[str, Exercise] = {}
    for ex in mod.EXERCISES:
        if ex.grade_id in out:
            raise ValueError(f"{modname} lists {ex.grade_id!r} twice")
        out[ex.grade_id] = ex
    return out
