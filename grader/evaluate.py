"""Comparing a student's outputs with the reference's, case by case, and scoring.

Shared by the isolated autograder (:mod:`grader.runner`) and the in-notebook
runner (:mod:`grader.hidden`), so a check gives the same verdict and the same
message in both places.  Messages name the case by its description and each
output by its name (``dW: 3 of 12 entries differ (first at [2, 3], ...)``),
and give shapes, positions and error sizes, never the hidden reference values.
"""

from __future__ import annotations

from typing import Any

from course_utils.checks import compare
from course_utils.rules import SourceIndex

from .spec import Case, CheckResult, Exercise, SpecError, rule_label, summarize_inputs, tolerance  # noqa: F401
from .wire import TensorRecord


def case_name(i: int, case: Case) -> str:
    desc = case.label or summarize_inputs(case.inputs)
    return f"case {i + 1} ({desc}{', ' + case.dtype if case.dtype != 'float64' else ''})"


def case_context(ex: Exercise, i: int, case: Case, device: str) -> dict:
    """The driver's context for case ``i``: the same on the student's side and the reference's
    (the callers add ``ctx["uses"]``, the reference versions of ``ex.uses`` by name)."""
    tols = ex.output_tols
    return {"device": device if ex.uses_torch else "cpu", "dtype": case.dtype,
            "seed": ex.case_seed(i, case), "uses_torch": bool(ex.uses_torch),
            "outputs": list(tols) if tols is not None else None}


def _tensor_problem(got: Any, exp: Any, path: str) -> str | None:
    """dtype/device conventions for tensors: results stay on the input's device and dtype."""
    if isinstance(exp, TensorRecord):
        if not isinstance(got, TensorRecord):
            return f"{path}: expected a torch tensor, got {type(got).__name__}"
        if got.device != exp.device:
            return (f"{path}: returned on device '{got.device}', expected '{exp.device}' "
                    "(keep results on the input's device; never call .cpu()/.cuda()/.to() on them)")
        if got.dtype != exp.dtype:
            return f"{path}: returned dtype {got.dtype}, expected {exp.dtype} (keep the input's dtype)"
        return None
    if isinstance(exp, (list, tuple)) and isinstance(got, (list, tuple)) and len(got) == len(exp):
        for i, (g, e) in enumerate(zip(got, exp)):
            msg = _tensor_problem(g, e, f"{path}[{i}]")
            if msg:
                return msg
    if isinstance(exp, dict) and isinstance(got, dict):
        for k in exp:
            if k in got:
                msg = _tensor_problem(got[k], exp[k], f"{path}[{k!r}]")
                if msg:
                    return msg
    return None


def _plain(x: Any) -> Any:
    if isinstance(x, TensorRecord):
        return x.array
    if isinstance(x, list):
        return [_plain(v) for v in x]
    if isinstance(x, tuple):
        return tuple(_plain(v) for v in x)
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    return x


def named_outputs(ex: Exercise, value: Any) -> tuple[dict | None, str | None]:
    """``value`` as ``{output name: value}``, following ``ex.outputs``: a dict with
    some of the names gives those (other keys are not graded), a tuple or list is
    matched to the names in order (a shorter one gives the first names), a single
    value is the only output.  Returns
    ``(outputs, None)`` or ``(None, what is wrong)``."""
    names = list(ex.output_tols or {})
    listed = ", ".join(names)
    if isinstance(value, dict) and any(n in value for n in names):
        # a driver may return more than the exercise grades: keep the named outputs
        return {k: v for k, v in value.items() if k in names}, None
    if len(names) == 1:
        return {names[0]: value}, None
    if isinstance(value, (tuple, list)):
        if len(value) > len(names):
            return None, f"returned {len(value)} values; expected {len(names)} ({listed})"
        return dict(zip(names, value)), None
    return None, f"returned a single {type(value).__name__}; expected {len(names)} values ({listed})"


def _parts_of(ex: Exercise, case: Case, names) -> list[str | None]:
    """The parts a case's results count for."""
    if not ex.parts:
        return [None]
    if case.part:
        return [case.part]
    tols = ex.output_tols or {}
    found = {tols[n].part for n in names if n in tols} | {c.part for c in ex.checks if c.output in names}
    return list(ex.parts) if None in found or not found else [p for p in ex.parts if p in found]


def check_case(ex: Exercise, i: int, case: Case, got: dict, expected: Any, device: str) -> list[CheckResult]:
    """Results of one case (one per part it counts for, or one): ``got`` is the
    worker's record, ``{"ok": True, "value": v}`` or ``{"ok": False, "error": text}``;
    ``expected`` the reference's value (``None`` when the exercise does not compare)."""
    name = case_name(i, case)
    tols = ex.output_tols
    if tols is None:
        return [_check_unnamed(ex, name, case, got, expected, device)]
    ref_names = list(tols)
    if expected is not None:
        exp, problem = named_outputs(ex, expected)
        if problem:
            raise SpecError(f"{ex.grade_id}: the reference's {name} {problem}; fix the driver or outputs=")
        ref_names = [n for n in tols if n in exp]
    else:
        exp = {}
    parts = _parts_of(ex, case, ref_names)

    def whole(passed: bool, msg: str) -> list[CheckResult]:
        if not ex.parts:
            return [CheckResult(name, passed, msg)]
        return [CheckResult(f"{name} [{p}]", passed, msg, part=p) for p in parts]

    if not isinstance(got, dict) or "ok" not in got:
        return whole(False, "no result came back for this case")
    if not got["ok"]:
        return whole(False, f"raised {str(got.get('error', 'an error'))}")
    mine, problem = named_outputs(ex, got.get("value"))
    if problem:
        return whole(False, problem)
    failures: list[tuple[str | None, str]] = []  # (part, message)
    for out_name, tol in tols.items():
        if out_name not in ref_names:
            continue
        part = case.part or tol.part
        if out_name not in mine:
            failures.append((part, f"{out_name}: missing (expected an output named {out_name})"))
            continue
        if not (ex.compares and tol.compare) or out_name not in exp:
            continue
        msg = _tensor_problem(mine[out_name], exp[out_name], out_name)
        if msg is None:
            rtol, atol = tolerance(ex, case.dtype, device if ex.uses_torch else "cpu", tol)
            msg = compare(_plain(mine[out_name]), _plain(exp[out_name]), name=out_name, rtol=rtol, atol=atol,
                          exact=tol.exact or ex.compare == "exact", reveal=False)
        if msg:
            failures.append((part, msg))
    for chk in ex.checks:
        if chk.output not in ref_names:
            continue
        part = case.part or chk.part
        if chk.output not in mine:
            failures.append((part, f"{chk.output}: missing; needed for: {chk.describe()}"))
            continue
        msg = chk.check(_plain(mine[chk.output]))
        if msg:
            failures.append((part, msg))
    if not ex.parts:
        msgs = [m for _, m in failures]
        return [CheckResult(name, not msgs, "; ".join(msgs))]
    out = []
    for p in parts:
        msgs = [m for fp, m in failures if fp in (p, None)]
        out.append(CheckResult(f"{name} [{p}]", not msgs, "; ".join(msgs), part=p))
    return out


def _check_unnamed(ex: Exercise, name: str, case: Case, got: dict, expected: Any, device: str) -> CheckResult:
    """One unnamed output compared as a whole with the reference's."""
    if not isinstance(got, dict) or "ok" not in got:
        return CheckResult(name, False, "no result came back for this case", part=case.part)
    if not got["ok"]:
        return CheckResult(name, False, f"raised {str(got.get('error', 'an error'))}", part=case.part)
    value = got.get("value")
    msg = _tensor_problem(value, expected, "output")
    if msg is None:
        rtol, atol = tolerance(ex, case.dtype, device if ex.uses_torch else "cpu")
        msg = compare(_plain(value), _plain(expected), name="output", rtol=rtol, atol=atol,
                      exact=ex.compare == "exact", reveal=False)
    return CheckResult(name, msg is None, msg or "", part=case.part)


def check_rules(ex: Exercise, sources: list[str]) -> list[CheckResult]:
    """Static rules on the student's sources.  A rule without a target covers each
    graded object (with the helpers it reaches); the functions in ``ex.uses`` are
    not followed, since the exercise is graded with the reference versions."""
    index = SourceIndex(sources)
    if ex.uses:
        index = index.without(ex.uses)
    out = []
    for rule in ex.rules:
        target = getattr(rule, "target", None)
        if target:
            msg = rule.check(index, _target_owner(index, ex, target))
        else:
            msg = next((m for n in ex.object_names if (m := rule.check(index, n))), None)
        out.append(CheckResult(rule_label(rule), msg is None, msg or "", part=getattr(rule, "part", None)))
    return out


def _target_owner(index: SourceIndex, ex: Exercise, target: str) -> str:
    """The graded object a target is relative to: the class among the exercise's
    names that has a method called ``target`` (else the first name)."""
    for n in ex.object_names:
        if index.resolve(n, target) != target:
            return n
    return ex.object_names[0]


def reference_objects(assignment: str, ex: Exercise) -> Any:
    """The reference object (or, for several names, a :class:`grader.drivers.Objects`)."""
    from .drivers import Objects
    from .reference import load_reference

    if ex.names:
        return Objects({n: load_reference(assignment, n) for n in ex.names})
    return load_reference(assignment, ex.name)


def reference_outputs(assignment: str, ex: Exercise, device: str) -> tuple[list[Case], list[Any]]:
    """Run the driver on the reference for every case (in this, the trusted, process);
    ``None`` per case when the exercise does not compare with the reference."""
    from . import drivers, wire

    cases = ex.make_cases()
    if not ex.compares:
        return cases, [None] * len(cases)
    from .reference import load_reference

    ref = reference_objects(assignment, ex)
    uses = {u: load_reference(assignment, u) for u in ex.uses}
    outs = []
    for i, case in enumerate(cases):
        value = drivers.run(ex.driver, ref, case.inputs, {**case_context(ex, i, case, device), "uses": uses})
        outs.append(wire.loads(wire.dumps(value)))  # same representation as a worker's answer
    return cases, outs


def score(ex: Exercise, checks: list[CheckResult], points: float) -> tuple[float, dict | None]:
    """Points earned and, for an exercise with parts, ``{part: {"score", "max_score",
    "passed"}}``.  A part is earned when every check of that part passes; a check
    without a part counts for every part."""
    if not ex.parts:
        return (float(points) if all(c.passed for c in checks) else 0.0), None
    info = {}
    for p, pts in ex.part_points(points).items():
        ok = all(c.passed for c in checks if c.part in (p, None))
        info[p] = {"score": pts if ok else 0.0, "max_score": pts, "passed": ok}
    return round(sum(v["score"] for v in info.values()), 6), info


def grading_device() -> str:
    """The device hidden tests run torch exercises on: the GPU when one is present."""
    try:
        import torch
    except ImportError:
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def summarize(results: list[CheckResult]) -> str:
    failed = [c for c in results if not c.passed]
    if not failed:
        return f"all {len(results)} checks passed"
    return f"{len(failed)} of {len(results)} checks failed"
