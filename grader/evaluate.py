"""Comparing a student's outputs with the reference's, case by case.

Shared by the isolated autograder (:mod:`grader.runner`) and the in-notebook
runner (:mod:`grader.hidden`), so a check gives the same verdict and the same
message in both places.  Messages name the case by its description and give
shapes, positions and error sizes, never the hidden reference values.
"""

from __future__ import annotations

from typing import Any

from course_utils.checks import compare
from course_utils.rules import SourceIndex

from .spec import Case, CheckResult, Exercise, summarize_inputs, tolerance
from .wire import TensorRecord


def case_name(i: int, case: Case) -> str:
    desc = case.label or summarize_inputs(case.inputs)
    return f"case {i + 1} ({desc}{', ' + case.dtype if case.dtype != 'float64' else ''})"


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


def check_case(ex: Exercise, i: int, case: Case, got: dict, expected: Any, device: str) -> CheckResult:
    """``got`` is the worker's record: ``{"ok": True, "value": v}`` or ``{"ok": False, "error": text}``."""
    name = case_name(i, case)
    if not isinstance(got, dict) or "ok" not in got:
        return CheckResult(name, False, "no result came back for this case")
    if not got["ok"]:
        return CheckResult(name, False, f"raised {str(got.get('error', 'an error'))}")
    value = got.get("value")
    msg = _tensor_problem(value, expected, "output")
    if msg is None:
        rtol, atol = tolerance(ex, case.dtype, device if ex.uses_torch else "cpu")
        msg = compare(_plain(value), _plain(expected), name="output", rtol=rtol, atol=atol,
                      exact=ex.compare == "exact", reveal=False)
    return CheckResult(name, msg is None, msg or "")


def check_rules(ex: Exercise, sources: list[str]) -> list[CheckResult]:
    index = SourceIndex(sources)
    out = []
    for rule in ex.rules:
        msg = rule.check(index, ex.name)
        out.append(CheckResult(rule_label(rule), msg is None, msg or ""))
    return out


def rule_label(rule) -> str:
    if getattr(rule, "what", ""):
        return rule.what
    names = getattr(rule, "names", ())
    return "does not use " + ", ".join(names) if names else type(rule).__name__


def reference_outputs(assignment: str, ex: Exercise, device: str) -> tuple[list[Case], list[Any]]:
    """Run the driver on the reference for every case (in this, the trusted, process)."""
    from . import drivers, wire
    from .reference import load_reference

    ref = load_reference(assignment, ex.name)
    cases = ex.make_cases()
    outs = []
    for case in cases:
        ctx = {"device": device if ex.uses_torch else "cpu", "dtype": case.dtype}
        value = drivers.run(ex.driver, ref, case.inputs, ctx)
        outs.append(wire.loads(wire.dumps(value)))  # same representation as a worker's answer
    return cases, outs


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

