"""How a hidden test is described: an :class:`Exercise` per graded test cell.

How to write an assignment and its spec: CONTRIBUTING.md at the top of the
repository (section "Exercise kinds" shows one example of every kind).  A spec
module (``grader/specs/<topic>.py``, with a module-level ``ASSIGNMENT``) lists
the exercises of one assignment.  Each exercise names

* the test cell it scores (``grade_id``, as in the source notebook),
* the student's function or class (``name``), or several of them graded
  together (``names``: a forward/backward pair, a class and its loss),
* a seeded generator of input cases (``cases(rng) -> [Case, ...]``),
* a *driver* (from :mod:`grader.drivers`) that calls the student's code on one
  case and returns plain data,
* its outputs by name, each with a tolerance (``outputs``),
* checks on the student's outputs alone: thresholds (``accuracy >= 0.85``) and
  properties (``loss_history decreases``), with or without a comparison with
  the reference (``compare=None``),
* static rules (no loops, forbidden library calls), on the whole object or on
  one function or method (``target``),
* how its points are split between independent parts (``parts``),
* earlier graded functions it calls, replaced by the reference versions while
  it is graded (``uses``), so that a mistake is charged once,
* limits above the grader's defaults when it needs them (``timeout``, ``memory_mb``).

The grader runs the driver twice per case: on the student's code in a worker
process, and on the reference solution (loaded from ``solutions/``) in the
grading process, both after seeding Python's ``random``, numpy's global
generator and torch with the case's seed, then compares the two outputs.
Specs hold no expected values: the single source of truth for "right" is the
reference solution, and thresholds are stated to the student in the notebook.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from course_utils.rules import Forbid, NoLoops, SourceIndex, parse_cell  # noqa: F401 (re-exported)

from .results import Status


class SpecError(ValueError):
    """A spec that cannot be graded as written; the message names the fix."""


@dataclass(frozen=True)
class Case:
    """One set of inputs. ``inputs`` holds plain data (arrays, numbers, lists).

    ``label`` is shown to students in feedback ("N=1 edge case"), so it must
    describe the case without revealing values.  ``dtype`` selects the torch
    dtype for drivers that build tensors.  ``seed`` seeds ``random``, numpy's
    global generator and torch before the driver runs (on the student's code and
    on the reference alike) and reaches the driver as ``ctx["seed"]``; by
    default it is derived from the exercise's ``seed`` and the case's position.
    ``part`` is the part of the exercise this case counts for (see
    ``Exercise.parts``); without it, the case counts for the parts of the
    outputs it compares.
    """

    inputs: dict
    label: str = ""
    dtype: str = "float64"
    seed: int | None = None
    part: str | None = None


@dataclass(frozen=True)
class Tol:
    """How one named output is compared with the reference's.

    ``rtol``/``atol`` (``None``: the exercise's, else the per-dtype defaults),
    ``exact`` for labels and counts, ``compare=False`` for an output that only
    feeds checks (a loss history judged by a property), ``part`` for partial
    credit.
    """

    rtol: float | None = None
    atol: float | None = None
    exact: bool = False
    compare: bool = True
    part: str | None = None


_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq}


def _as_number(value: Any) -> float | None:
    try:
        arr = np.asarray(getattr(value, "array", value), dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return float(arr) if arr.shape == () else None


def _as_array(value: Any) -> np.ndarray | None:
    try:
        arr = np.asarray(getattr(value, "array", value), dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr


@dataclass(frozen=True)
class Threshold:
    """A bound on one named output of every case: ``Threshold("accuracy", ">=", 0.85)``.

    ``text`` is what the notebook tells the student ("accuracy on held-out data
    of at least 0.85"); messages repeat it.
    """

    output: str
    op: str
    value: float
    text: str = ""
    part: str | None = None

    def __post_init__(self):
        if self.op not in _OPS:
            raise SpecError(f"Threshold on {self.output!r}: unknown comparison {self.op!r}; "
                            f"use one of {', '.join(_OPS)}")

    def describe(self) -> str:
        return self.text or f"{self.output} {self.op} {self.value:g}"

    def check(self, value: Any) -> str | None:
        x = _as_number(value)
        if x is None:
            return f"{self.output}: expected a number, got {type(value).__name__}"
        if not math.isfinite(x) or not _OPS[self.op](x, self.value):
            return f"{self.output} is {x:.4g}; required: {self.describe()}"
        return None


@dataclass(frozen=True)
class Property:
    """A property of one named output, checked without the reference.

    Subclasses implement :meth:`problem`; ``text`` overrides the description
    the notebook states.
    """

    output: str
    text: str = ""
    part: str | None = None

    def describe(self) -> str:
        return self.text or self.default_text()

    def default_text(self) -> str:
        return f"{self.output} has the required property"

    def problem(self, arr: np.ndarray) -> str | None:
        raise NotImplementedError

    def check(self, value: Any) -> str | None:
        arr = _as_array(value)
        if arr is None or arr.dtype == object:
            return f"{self.output}: expected numbers, got {type(value).__name__}"
        msg = self.problem(arr)
        return f"{self.output}: {msg} (required: {self.describe()})" if msg else None


@dataclass(frozen=True)
class Decreases(Property):
    """The mean of the last ``fraction`` of a sequence is below the mean of the first."""

    fraction: float = 0.1

    def default_text(self) -> str:
        pct = f"{100 * self.fraction:g}%"
        return f"{self.output} decreases (mean of the last {pct} below the mean of the first {pct})"

    def problem(self, arr):
        arr = arr.reshape(-1)
        if arr.size < 2:
            return f"has {arr.size} values; at least 2 are needed"
        if not np.all(np.isfinite(arr)):
            return "contains nan or inf"
        n = max(1, int(round(self.fraction * arr.size)))
        first, last = float(arr[:n].mean()), float(arr[-n:].mean())
        return None if last < first else f"does not decrease (first {n} average {first:.4g}, last {n} {last:.4g})"


@dataclass(frozen=True)
class ProbabilityRows(Property):
    """Every row is a probability vector: entries in [0, 1] summing to 1 (within ``atol``)."""

    atol: float = 1e-6

    def default_text(self) -> str:
        return f"the rows of {self.output} are probability vectors (non-negative, summing to 1)"

    def problem(self, arr):
        if arr.ndim < 1:
            return "is a scalar, expected rows"
        if not np.all(np.isfinite(arr)):
            return "contains nan or inf"
        if np.any(arr < -self.atol) or np.any(arr > 1 + self.atol):
            return "has entries outside [0, 1]"
        sums = arr.sum(axis=-1)
        bad = np.argwhere(np.abs(sums - 1) > self.atol)
        if bad.size:
            i = tuple(int(j) for j in bad[0])
            return f"row {i if len(i) > 1 else i[0]} sums to {float(sums[i]):.6g}, not 1"
        return None


@dataclass(frozen=True)
class Finite(Property):
    """No nan or inf anywhere."""

    def default_text(self) -> str:
        return f"{self.output} holds no nan or inf"

    def problem(self, arr):
        bad = np.argwhere(~np.isfinite(arr))
        return f"has nan or inf (first at {tuple(int(j) for j in bad[0])})" if bad.size else None


CHECK_TYPES = (Threshold, Property)


@dataclass(frozen=True)
class Exercise:
    """One graded test cell (how to write one: CONTRIBUTING.md, "Exercise kinds")."""

    grade_id: str
    name: str = ""
    cases: Callable[[np.random.Generator], Sequence[Case]] | None = None
    driver: str = "call"
    compare: str | None = "allclose"  # "allclose", "exact", or None / "none": no reference comparison
    rtol: float | None = None
    atol: float | None = None
    rules: tuple = ()
    uses_torch: bool = False
    hint: str = ""
    seed: int = 0
    timeout: float | None = None  # seconds for this exercise; None means the grader's default
    names: tuple[str, ...] = ()
    outputs: Mapping[str, Tol] | Sequence[str] | None = None
    checks: tuple = ()
    parts: Mapping[str, float] | None = None
    uses: tuple[str, ...] = ()
    memory_mb: int | None = None  # memory for this exercise (a worker of its own when above the default)

    def __post_init__(self):
        g = self.grade_id
        if self.name and self.names:
            raise SpecError(f"{g}: give either name= (one object) or names= (several), not both")
        if not self.name and not self.names:
            raise SpecError(f"{g}: name the student's function or class with name=... or names=(...)")
        if isinstance(self.names, str):
            raise SpecError(f"{g}: names= takes a tuple of names, e.g. names=({self.names!r},)")
        if self.cases is None:
            raise SpecError(f"{g}: cases= (a function rng -> [Case, ...]) is required")
        from .drivers import DRIVERS

        if self.driver not in DRIVERS:
            raise SpecError(f"{g}: unknown driver {self.driver!r}; known: {', '.join(sorted(DRIVERS))} "
                            "(a new one goes in grader/drivers/<topic>.py with @driver)")
        if self.compare not in ("allclose", "exact", None, "none"):
            raise SpecError(f"{g}: compare must be 'allclose', 'exact' or None, not {self.compare!r}")
        names = self.object_names
        if len(set(names)) != len(names):
            raise SpecError(f"{g}: names= lists a name twice")
        for u in self.uses:
            if u in names:
                raise SpecError(f"{g}: uses= lists {u!r}, which this exercise grades; uses= is for "
                                "earlier functions it calls")
        outs = self.output_tols
        for c in self.checks:
            if not isinstance(c, CHECK_TYPES):
                raise SpecError(f"{g}: checks= takes Threshold(...) and Property subclasses "
                                f"(Decreases, ProbabilityRows, Finite), not {type(c).__name__}")
            if outs is None:
                raise SpecError(f"{g}: a check on {c.output!r} needs named outputs: add "
                                f"outputs=({c.output!r}, ...) to the exercise")
            if c.output not in outs:
                raise SpecError(f"{g}: a check names the output {c.output!r}, which is not one of the "
                                f"exercise's outputs {list(outs)}; add it to outputs= or fix the name")
        if not self.compares and not self.checks:
            raise SpecError(f"{g}: compare=None with no checks grades nothing; add a Threshold or "
                            "Property to checks=, or compare with the reference")
        self._check_parts()

    def _check_parts(self) -> None:
        g = self.grade_id
        tagged = [("rule", getattr(r, "part", None)) for r in self.rules]
        tagged += [("check", c.part) for c in self.checks]
        tagged += [("output", t.part) for t in (self.output_tols or {}).values()]
        if not self.parts:
            used = sorted({p for _, p in tagged if p})
            if used:
                raise SpecError(f"{g}: part(s) {used} are named but the exercise has no parts=; add "
                                f"parts={{{', '.join(f'{p!r}: 1' for p in used)}}}")
            return
        if any(not isinstance(w, (int, float)) or w <= 0 for w in self.parts.values()):
            raise SpecError(f"{g}: the weights in parts= must be positive numbers")
        for kind, p in tagged:
            if p is not None and p not in self.parts:
                raise SpecError(f"{g}: a {kind} names the part {p!r}, which is not in parts= "
                                f"{list(self.parts)}; fix the name or add the part")

    # --- derived views ---------------------------------------------------------

    @property
    def object_names(self) -> tuple[str, ...]:
        """The student's objects this exercise grades, in order."""
        return tuple(self.names) if self.names else (self.name,)

    @property
    def label(self) -> str:
        """How messages name the exercise: its object(s)."""
        return " / ".join(self.object_names)

    @property
    def compares(self) -> bool:
        return self.compare not in (None, "none")

    @property
    def output_tols(self) -> dict[str, Tol] | None:
        """Output name -> :class:`Tol`, or ``None`` for one unnamed output."""
        if self.outputs is None:
            return None
        if isinstance(self.outputs, Mapping):
            bad = [k for k, v in self.outputs.items() if not isinstance(v, Tol)]
            if bad:
                raise SpecError(f"{self.grade_id}: outputs= maps names to Tol(...); {bad} are not Tol")
            return dict(self.outputs)
        if isinstance(self.outputs, str):
            raise SpecError(f"{self.grade_id}: outputs= takes a tuple of names or a dict, e.g. "
                            f"outputs=({self.outputs!r},)")
        return {k: Tol() for k in self.outputs}

    def make_cases(self) -> list[Case]:
        rng = np.random.default_rng(self.seed)
        cases = list(self.cases(rng))
        if not cases:
            raise SpecError(f"exercise {self.grade_id} has no cases")
        for c in cases:
            if c.part is not None and (not self.parts or c.part not in self.parts):
                raise SpecError(f"{self.grade_id}: case {c.label!r} names the part {c.part!r}, which is "
                                f"not in parts= {list(self.parts or {})}")
        return cases

    def case_seed(self, i: int, case: Case) -> int:
        """The seed of case ``i``: its own, or one derived from the exercise's seed."""
        if case.seed is not None:
            return int(case.seed)
        return (int(self.seed) * 100_003 + i) % 2**31

    def part_points(self, points: float) -> dict[str | None, float]:
        """How ``points`` are split: part -> points (``{None: points}`` without parts)."""
        if not self.parts:
            return {None: float(points)}
        total = sum(self.parts.values())
        return {p: round(float(points) * w / total, 6) for p, w in self.parts.items()}

    def rule_texts(self) -> list[str]:
        return [rule_label(r) for r in self.rules]

    def stated_requirements(self, points: float | None = None) -> list[str]:
        """The human text of every rule, threshold, property, points split and
        substituted helper of this exercise, as the notebook must state it."""
        out = self.rule_texts() + [c.describe() for c in self.checks]
        if self.parts:
            total = sum(self.parts.values())
            if points is not None:
                split = ", ".join(f"{p}: {pts:g} point{'s' if pts != 1 else ''}"
                                  for p, pts in self.part_points(points).items())
            else:
                split = ", ".join(f"{p}: {Fraction(w).limit_denominator(1000) / Fraction(total).limit_denominator(1000)}"
                                  f" of the points" for p, w in self.parts.items())
            out.append(f"partial credit: {split}")
        if self.uses:
            out.append(uses_text(self.uses))
        return out


def uses_text(names: Sequence[str]) -> str:
    """How a notebook says that ``names`` are replaced by the reference while grading."""
    listed = " and ".join(f"`{n}`" for n in names) if len(names) <= 2 else \
        ", ".join(f"`{n}`" for n in names[:-1]) + f" and `{names[-1]}`"
    return f"graded with the reference {listed} in place of yours"


def rule_label(rule) -> str:
    """A rule's description, naming its target when it has one."""
    if getattr(rule, "what", ""):
        label = rule.what
    else:
        names = getattr(rule, "names", ())
        label = "does not use " + ", ".join(names) if names else type(rule).__name__
    target = getattr(rule, "target", None)
    return f"{label} in `{target}`" if target else label


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


def tolerance(ex: Exercise, dtype: str, device: str = "cpu", tol: Tol | None = None) -> tuple[float, float]:
    """(rtol, atol) for comparing outputs computed in ``dtype`` on ``device``: the
    per-dtype defaults, overridden by the exercise's ``rtol``/``atol``, then by the
    output's :class:`Tol` (an override only loosens the bounds of a lower precision)."""
    rtol, atol = _TOL.get((dtype, device), _TOL.get((dtype, "cpu"), (1e-7, 1e-9)))
    for r, a in ((ex.rtol, ex.atol), ((tol.rtol, tol.atol) if tol else (None, None))):
        if r is not None:
            rtol = max(rtol, r) if dtype != "float64" else r
        if a is not None:
            atol = max(atol, a) if dtype != "float64" else a
    return rtol, atol


@dataclass
class CheckResult:
    name: str
    passed: bool
    message: str = ""
    part: str | None = None


@dataclass
class ExerciseResult:
    grade_id: str
    status: Status  # passed, failed, error, timeout, killed, missing
    score: float
    max_score: float
    checks: list[CheckResult] = field(default_factory=list)
    message: str = ""
    parts: dict[str, dict] | None = None  # part -> {"score", "max_score", "passed"}

    def __post_init__(self):
        self.status = Status(self.status)  # a status outside the enum is a grader bug: fail here

    def to_json(self) -> dict:
        out = {"grade_id": self.grade_id, "status": self.status, "score": self.score,
               "max_score": self.max_score, "message": self.message,
               "checks": [{k: v for k, v in c.__dict__.items() if k != "part" or v is not None}
                          for c in self.checks]}
        if self.parts:
            out["parts"] = self.parts
        return out

    @classmethod
    def from_json(cls, d: dict) -> ExerciseResult:
        return cls(d["grade_id"], d["status"], float(d["score"]), float(d["max_score"]),
                   [CheckResult(**c) for c in d.get("checks", [])], d.get("message", ""), d.get("parts"))


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
