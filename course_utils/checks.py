"""Self-checks for the visible test cells.

Every check names the exercise and the argument it looks at, and on failure
says what was expected and what came back, down to the first index that is
off::

    check_close("compute_distances_no_loops", dists, expected, name="dists")
    # SelfCheckError: compute_distances_no_loops: dists[1, 2]: expected 3.162, got 10
    #   (3 of 12 entries differ; largest error 6.84 at [1, 2])

The grader's hidden tests use the same comparison (:func:`compare`) with
``reveal=False``, so students see the same kind of message without the hidden
reference values.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .rules import AtMostLoops, Forbid, NoLoops, SourceIndex

__all__ = [
    "SelfCheckError", "compare", "check_close", "check_equal", "check_shape",
    "check_dtype", "check_true", "check_rule", "check_no_loops", "check_at_most_loops", "check_not_using",
    "check_peak_memory", "passed",
]


class SelfCheckError(AssertionError):
    """A visible self-check failed; the message says which exercise and why."""


def _as_array(x: Any) -> Any:
    """numpy view of arrays and tensors (moved to the CPU); other values unchanged."""
    if isinstance(x, np.ndarray):
        return x
    if type(x).__module__.startswith("torch") and hasattr(x, "detach"):
        t = x.detach().cpu()
        if str(t.dtype) == "torch.bfloat16":
            t = t.float()
        return t.numpy()
    if hasattr(x, "array") and isinstance(x.array, np.ndarray):  # grader TensorRecord
        return x.array
    if isinstance(x, np.generic):
        return np.asarray(x)
    return x


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"
    return repr(v.item() if isinstance(v, np.generic) else v)


def _index(idx: tuple) -> str:
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def compare(actual: Any, expected: Any, *, name: str = "output", rtol: float = 1e-7,
            atol: float = 1e-9, exact: bool = False, reveal: bool = True) -> str | None:
    """``None`` if ``actual`` matches ``expected``, else a one-line explanation.

    Arrays are compared by shape, then by value with ``|a - e| <= atol + rtol |e|``
    (or exactly for integer data or ``exact=True``); lists, tuples and dicts
    element by element.  With ``reveal=False`` the message gives positions and
    error sizes but never the expected values.
    """
    a, e = _as_array(actual), _as_array(expected)
    if isinstance(e, dict):
        if not isinstance(a, dict):
            return f"{name}: expected a dict, got {type(actual).__name__}"
        if set(a) != set(e):
            missing, extra = sorted(set(e) - set(a), key=str), sorted(set(a) - set(e), key=str)
            parts = []
            if missing:
                parts.append(f"missing keys {missing}" if reveal else f"{len(missing)} keys missing")
            if extra:
                parts.append(f"unexpected keys {extra}")
            return f"{name}: " + "; ".join(parts)
        for k in e:
            msg = compare(a[k], e[k], name=f"{name}[{k!r}]", rtol=rtol, atol=atol, exact=exact, reveal=reveal)
            if msg:
                return msg
        return None
    if isinstance(e, (list, tuple)) and not isinstance(a, np.ndarray):
        if not isinstance(a, (list, tuple)):
            return f"{name}: expected a {type(e).__name__} of {len(e)} items, got {type(actual).__name__}"
        if len(a) != len(e):
            return f"{name}: expected {len(e)} items, got {len(a)}"
        for i, (ai, ei) in enumerate(zip(a, e)):
            msg = compare(ai, ei, name=f"{name}[{i}]", rtol=rtol, atol=atol, exact=exact, reveal=reveal)
            if msg:
                return msg
        return None
    if isinstance(e, np.ndarray) or isinstance(a, np.ndarray):
        if a is None:
            return f"{name}: got None; did you forget to return it?"
        try:
            a_arr = np.asarray(a)
        except Exception:
            return f"{name}: expected an array, got {type(actual).__name__}"
        e_arr = np.asarray(e)
        if a_arr.dtype == object:
            return f"{name}: expected a numeric array, got an array of Python objects"
        if a_arr.shape != e_arr.shape:
            return f"{name}: expected shape {e_arr.shape}, got shape {a_arr.shape}"
        if e_arr.dtype.kind in "iub" and a_arr.dtype.kind == "f" and exact:
            return f"{name}: expected integer values, got dtype {a_arr.dtype}"
        if e_arr.size == 0:
            return None
        if a_arr.dtype.kind not in "iufb":
            return f"{name}: expected numbers, got dtype {a_arr.dtype}"
        a64, e64 = a_arr.astype(np.float64), e_arr.astype(np.float64)
        nan_a, nan_e = np.isnan(a64), np.isnan(e64)
        if exact or e_arr.dtype.kind in "iub":
            bad = (a64 != e64) & ~(nan_a & nan_e)
        else:
            with np.errstate(invalid="ignore"):
                bad = ~(np.abs(a64 - e64) <= atol + rtol * np.abs(e64))
            bad &= ~(nan_a & nan_e)
            bad |= nan_a ^ nan_e
            bad |= np.isinf(a64) & (a64 != e64)
        if not bad.any():
            return None
        idx = tuple(int(i) for i in np.argwhere(bad)[0]) if bad.ndim else ()
        where = _index(idx) if idx else ""
        n_bad, n = int(bad.sum()), bad.size
        err = np.abs(a64 - e64)
        worst = float(np.nanmax(np.where(bad, err, np.nan))) if np.isfinite(err[bad]).any() else float("nan")
        if reveal:
            return (f"{name}{where}: expected {_fmt(e_arr[idx] if idx else e_arr[()])}, "
                    f"got {_fmt(a_arr[idx] if idx else a_arr[()])} "
                    f"({n_bad} of {n} entries differ; largest error {worst:.3g})")
        return (f"{name}: {n_bad} of {n} entries differ (first at {where or 'the value'}, "
                f"largest error {worst:.3g})")
    # scalars
    if e is None:
        return None if a is None else f"{name}: expected None, got {type(actual).__name__}"
    if isinstance(e, (bool, str)):
        if a == e and type(a) is type(e):
            return None
        return f"{name}: expected {e!r}, got {actual!r}" if reveal else f"{name}: wrong value"
    if isinstance(e, (int, float)):
        if isinstance(a, np.ndarray) and a.shape == ():
            a = a.item()
        if not isinstance(a, (int, float)) or isinstance(a, bool):
            return f"{name}: expected a number, got {type(actual).__name__}"
        return compare(np.asarray(a), np.asarray(e), name=name, rtol=rtol, atol=atol,
                       exact=exact or isinstance(e, int), reveal=reveal)
    return None if a == e else (f"{name}: expected {e!r}, got {a!r}" if reveal else f"{name}: wrong value")


def _fail(exercise: str, msg: str, hint: str = "") -> None:
    raise SelfCheckError(f"{exercise}: {msg}" + (f"\n  hint: {hint}" if hint else ""))


def check_close(exercise: str, actual: Any, expected: Any, *, name: str = "output",
                rtol: float = 1e-7, atol: float = 1e-9, hint: str = "") -> None:
    """Fail unless ``actual`` matches ``expected`` within tolerances."""
    msg = compare(actual, expected, name=name, rtol=rtol, atol=atol)
    if msg:
        _fail(exercise, msg, hint)


def check_equal(exercise: str, actual: Any, expected: Any, *, name: str = "output", hint: str = "") -> None:
    """Fail unless ``actual`` equals ``expected`` exactly (labels, indices, counts)."""
    msg = compare(actual, expected, name=name, exact=True)
    if msg:
        _fail(exercise, msg, hint)


def check_shape(exercise: str, actual: Any, expected_shape: Sequence[int], *, name: str = "output",
                hint: str = "") -> None:
    shape = getattr(actual, "shape", None)
    if shape is None:
        _fail(exercise, f"{name}: expected an array of shape {tuple(expected_shape)}, "
                        f"got {type(actual).__name__}", hint)
    if tuple(shape) != tuple(expected_shape):
        _fail(exercise, f"{name}: expected shape {tuple(expected_shape)}, got {tuple(shape)}", hint)


def _dtype_name(d: Any) -> str:
    """'float64' for np.float64, np.dtype('float64'), 'float64' and torch.float64 alike."""
    text = str(d).replace("torch.", "")
    try:
        return np.dtype(d).name if not text.startswith("<") or isinstance(d, type) else text
    except TypeError:
        return text


def check_dtype(exercise: str, actual: Any, expected: Any, *, name: str = "output", hint: str = "") -> None:
    """``expected`` is a numpy/torch dtype, or a kind letter ('f' float, 'i' int, 'b' bool)."""
    got = getattr(actual, "dtype", None)
    if isinstance(expected, str) and len(expected) == 1:
        kind = np.dtype(str(got).replace("torch.", "")).kind if got is not None else None
        ok = kind == expected or (expected == "i" and kind == "u")
        want = {"f": "a floating dtype", "i": "an integer dtype", "b": "a boolean dtype"}[expected]
    else:
        ok = got is not None and _dtype_name(got) == _dtype_name(expected)
        want = _dtype_name(expected)
    if not ok:
        got_text = _dtype_name(got) if got is not None else f"{type(actual).__name__} without a dtype"
        _fail(exercise, f"{name}: expected {want}, got {got_text}", hint)


def check_true(exercise: str, condition: bool, message: str, hint: str = "") -> None:
    if not condition:
        _fail(exercise, message, hint)


def _class_cell_source(cls: type) -> str | None:
    """The source of the notebook cell that defines ``cls``, found through its methods: for a
    class defined in a notebook, ``inspect.getsource`` has no module file to search."""
    import linecache

    for member in vars(cls).values():
        code = getattr(getattr(member, "__func__", member), "__code__", None)
        if code is not None:
            lines = linecache.getlines(code.co_filename)
            if lines:
                return "".join(lines)
    return None


def _function_ast(func: Any) -> ast.AST:
    try:
        src = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError):
        src = _class_cell_source(func) if inspect.isclass(func) else None
        if src is None:
            raise SelfCheckError(f"cannot read the source of {getattr(func, '__name__', func)!r}; "
                                 "run the cell that defines it") from None
    from .rules import AST_LOCK

    with AST_LOCK:
        return ast.parse(src)


def check_rule(exercise: str, func: Any, rule: Any, hint: str = "") -> None:
    """Fail if ``func``'s source breaks ``rule`` (one of :mod:`course_utils.rules`, the
    same rules the hidden tests apply)."""
    msg = rule.check(SourceIndex([ast.unparse(_function_ast(func))]), func.__name__)
    if msg:
        _fail(exercise, msg, hint)


def check_no_loops(exercise: str, func: Any) -> None:
    """Fail if ``func``'s own source has a Python loop or comprehension."""
    check_rule(exercise, func, NoLoops(), "use broadcasting and array reductions instead")


def check_at_most_loops(exercise: str, func: Any, limit: int, hint: str = "") -> None:
    """Fail if ``func`` (with the helpers it calls) has more than ``limit`` Python loops
    or comprehensions."""
    check_rule(exercise, func, AtMostLoops(limit), hint)


def check_peak_memory(exercise: str, func: Any, args: Sequence[Any], limit_mb: float, hint: str = "") -> Any:
    """Call ``func(*args)`` and fail if the arrays it allocates at any one time (numpy's
    allocations, as ``tracemalloc`` sees them) exceed ``limit_mb`` megabytes.

    Returns what ``func`` returned, so the result can be checked too."""
    import tracemalloc

    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        result = func(*args)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        if not was_tracing:
            tracemalloc.stop()
    if peak > limit_mb * 2**20:
        _fail(exercise, f"{getattr(func, '__name__', 'the function')} allocated {peak / 2**20:.0f} MB at its peak "
                        f"on this input; the limit here is {limit_mb:g} MB", hint)
    return result


def check_not_using(exercise: str, func: Any, names: Iterable[str]) -> None:
    """Fail if ``func``'s source calls any of ``names`` (e.g. ``np.linalg.norm``)."""
    check_rule(exercise, func, Forbid(tuple(names)))


def passed(exercise: str, extra: str = "") -> None:
    """Print the closing line of a self-check cell."""
    print(f"\N{CHECK MARK} {exercise}: all visible checks passed." + (f" {extra}" if extra else ""))
