"""How a hidden test is described: an :class:`Exercise` per graded test cell.

How to write an assignment and its spec: CONTRIBUTING.md at the top of the
repository.  A spec module (``grader/specs/<topic>.py``) lists the exercises of one
assignment.  Each exercise names

* the test cell it scores (``grade_id``, as in the source notebook),
* the student's function or class (``name``),
* a seeded generator of input cases (``cases(rng) -> [Case, ...]``),
* a *driver* (from :mod:`grader.drivers`) that calls the student's code on one
  case and returns plain data,
* tolerances, and static rules (no loops, forbidden library calls).

The grader runs the driver twice per case: on the student's code in a worker
process, and on the reference solution (loaded from ``solutions/``) in the
grading process, then compares the two outputs.  Specs hold no expected
values: the single source of truth for "right" is the reference solution.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from course_utils.rules import Forbid, NoLoops, SourceIndex, parse_cell  # noqa: F401 (re-exported)

from .results import Status


@dataclass(frozen=True)
class Case:
    """One set of inputs. ``inputs`` holds plain data (arrays, numbers, lists).

    ``label`` is shown to students in feedback ("N=1 edge case"), so it must
    describe the case without revealing values.  ``dtype`` selects the torch
    dtype for drivers that build tensors.
    """

    inputs: dict
    label: str = ""
    dtype: str = "float64"


@dataclass(frozen=True)
class Exercise:
    grade_id: str
    name: str
    cases: Callable[[np.random.Generator], Sequence[Case]]
    driver: str = "call"
    compare: str = "allclose"  # "allclose" or "exact"
    rtol: float | None = None
    atol: float | None = None
    rules: tuple = ()
    uses_torch: bool = False
    hint: str = ""
    seed: int = 0
    timeout: float | None = None  # seconds; None means the grader's default

    def make_cases(self) -> list[Case]:
        rng = np.random.default_rng(self.seed)
        cases = list(self.cases(rng))
        if not cases:
            raise ValueError(f"exercise {self.grade_id} has no cases")
        return cases


# Tolerances per dtype; the GPU gets looser float32 bounds (TF32, fused kernels).
_TOL = {
    ("float64", "cpu"): (1e-7, 1e-9),
    ("float64", "cuda"): (1e-7, 1e-9),
    ("float32", "cpu"): (1e-5, 1e-6),
    ("float32", "cuda"): (1e-3, 1e-4),
    ("float32", "mps"): (1e-3, 1e-4),
    ("float16", "cpu"): (1e-2, 1e-3),
    ("float16", "cuda"): (1e-2, 1e-3),
    ("bfloat16", "cpu"): (2e-2, 1e-2),
    ("bfloat16", "cuda"): (2e-2, 1e-2),
}


def tolerance(ex: Exercise, dtype: str, device: str = "cpu") -> tuple[float, float]:
    """(rtol, atol) for comparing outputs computed in ``dtype`` on ``device``."""
    rtol, atol = _TOL.get((dtype, device), _TOL.get((dtype, "cpu"), (1e-7, 1e-9)))
    if ex.rtol is not None:
        rtol = max(rtol, ex.rtol) if dtype != "float64" else ex.rtol
    if ex.atol is not None:
        atol = max(atol, ex.atol) if dtype != "float64" else ex.atol
    return rtol, atol


@dataclass
class CheckResult:
    name: str
    passed: bool
    message: str = ""


@dataclass
class ExerciseResult:
    grade_id: str
    status: Status  # passed, failed, error, timeout, killed, missing
    score: float
    max_score: float
    checks: list[CheckResult] = field(default_factory=list)
    message: str = ""

    def __post_init__(self):
        self.status = Status(self.status)  # a status outside the enum is a grader bug: fail here

    def to_json(self) -> dict:
        return {"grade_id": self.grade_id, "status": self.status, "score": self.score,
                "max_score": self.max_score, "message": self.message,
                "checks": [c.__dict__ for c in self.checks]}

    @classmethod
    def from_json(cls, d: dict) -> ExerciseResult:
        return cls(d["grade_id"], d["status"], float(d["score"]), float(d["max_score"]),
                   [CheckResult(**c) for c in d.get("checks", [])], d.get("message", ""))


def summarize_inputs(inputs: dict) -> str:
    """A description of a case's inputs that names shapes, never values."""
    parts = []
    for k, v in inputs.items():
        if isinstance(v, np.ndarray):
            parts.append(f"{k}: {v.dtype.kind}{tuple(v.shape)}")
        elif isinstance(v, (list, tuple)):
            parts.append(f"{k}: list of {len(v)}")
        else:
            parts.append(f"{k}: {type(v).__name__}")
    return ", ".join(parts)

