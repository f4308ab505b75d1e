"""Hidden tests run inside a notebook (the instructor's source, a self-study clone,
or stock ``nbgrader autograde``).

A hidden-test block in a source notebook is one declarative line::

    from grader.hidden import run_hidden_tests
    run_hidden_tests("01_knn", "test_predict_labels", globals())

It runs the exercise's cases from ``grader/specs`` on the function defined in
the notebook and on the reference solution, in this process, and raises
``AssertionError`` listing the failed checks.  The course's own autograder
does not execute these blocks: it runs the same spec with the student's code
isolated in a sandboxed worker (:mod:`grader.runner`).
"""

from __future__ import annotations

import contextlib

from . import drivers, wire
from .evaluate import case_context, check_case, check_rules, grading_device, reference_outputs, score
from .specs import exercises


class HiddenTestFailure(AssertionError):
    pass


@contextlib.contextmanager
def _notebook_rng_kept():
    """Hidden tests seed the global generators before every case; the notebook's own
    random state (Python, numpy, torch) is put back afterwards, so the cells after a
    test cell draw the same numbers whether or not the hidden tests ran."""
    import random
    import sys

    import numpy as np

    py, npy = random.getstate(), np.random.get_state()
    torch = sys.modules.get("torch")
    th = torch.random.get_rng_state() if torch is not None else None
    cuda = None
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = torch.cuda.get_rng_state_all()
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(npy)
        if th is not None:
            torch.random.set_rng_state(th)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def _cell_sources(namespace: dict) -> list[str]:
    """The notebook's executed cells (IPython keeps them in ``In``), for static rules."""
    cells = namespace.get("In")
    if isinstance(cells, list) and cells:
        return [c for c in cells if isinstance(c, str)]
    import inspect

    out = []
    for v in namespace.values():
        if callable(v) and getattr(v, "__module__", None) == "__main__":
            try:
                out.append(inspect.getsource(v))
            except (OSError, TypeError):
                pass
    return out


def run_hidden_tests(assignment: str, grade_id: str, namespace: dict) -> None:
    """Check ``namespace``'s implementation of exercise ``grade_id``; raise on failure.

    As in the autograder: each case is seeded the same way on both sides, the
    exercise's ``uses`` are the reference versions while it runs (the
    notebook's own come back afterwards), and its points split into ``parts``
    is reported part by part."""
    with _notebook_rng_kept():
        _run(assignment, grade_id, namespace)


def _run(assignment: str, grade_id: str, namespace: dict) -> None:
    from .reference import load_reference

    ex = exercises(assignment)[grade_id]
    device = grading_device()
    cases, expected = reference_outputs(assignment, ex, device)
    results = check_rules(ex, _cell_sources(namespace))
    absent = [n for n in ex.object_names if namespace.get(n) is None]
    obj = None
    if not absent:
        obj = drivers.Objects({n: namespace[n] for n in ex.names}) if ex.names else namespace[ex.name]
    missing = object()
    saved = {u: namespace.get(u, missing) for u in ex.uses}
    uses = {u: load_reference(assignment, u) for u in ex.uses}
    try:
        namespace.update(uses)
        for i, (case, exp) in enumerate(zip(cases, expected)):
            if absent:
                got = {"ok": False, "error": f"NameError: `{absent[0]}` is not defined"}
            else:
                try:
                    ctx = {**case_context(ex, i, case, device), "uses": uses}
                    value = drivers.run(ex.driver, obj, case.inputs, ctx)
                    got = {"ok": True, "value": wire.loads(wire.dumps(value))}
                except Exception as exc:  # the student's error, reported as a failed check
                    got = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            results += check_case(ex, i, case, got, exp, device)
    finally:
        for u, v in saved.items():
            if v is missing:
                namespace.pop(u, None)
            else:
                namespace[u] = v
    failed = [r for r in results if not r.passed]
    _, parts = score(ex, results, 1.0)
    split = ""
    if parts:
        split = " (" + ", ".join(f"{p}: {'passed' if v['passed'] else 'failed'}" for p, v in parts.items()) + ")"
    if failed:
        lines = [f"{ex.label}: {len(failed)} of {len(results)} hidden checks failed{split}"]
        lines += [f"  - {r.name}: {r.message}" for r in failed[:10]]
        if ex.hint:
            lines.append(f"  hint: {ex.hint}")
        raise HiddenTestFailure("\n".join(lines))
    print(f"{ex.label}: all {len(results)} hidden checks passed")
