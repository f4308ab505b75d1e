"""Drivers for modular layers: a forward/backward pair graded together.

The course's layer API is ``forward(...) -> (out, cache)`` and
``backward(dout, cache) -> grads``.  The cache is whatever the student chose to
keep, so it never leaves the student's process: the driver calls forward, then
backward on the same cache, and returns plain arrays only.
"""

from __future__ import annotations

from typing import Any

from . import driver, to_torch


def _name(fn: Any) -> str:
    return getattr(fn, "__name__", "the forward function")


@driver
def forward_backward(obj: Any, inputs: dict, ctx: dict) -> Any:
    """For ``Exercise(names=(forward, backward), outputs=("out", "dx", "dw", ...))``.

    Inputs: ``forward``, a dict of the forward function's keyword arguments, and
    ``dout``, the upstream gradient (the shape of ``out``); with
    ``uses_torch`` the arrays become tensors first.  Calls
    ``out, cache = forward(**inputs["forward"])``, then
    ``grads = backward(dout, cache)`` (a single gradient counts as one), and
    returns ``{outputs[0]: out, outputs[1]: grads[0], ...}`` with the exercise's
    output names (the tuple ``(out, *grads)`` when it has none).

    A case without ``dout`` runs the forward function only: tag such cases
    ``part="forward"`` and the others ``part="backward"`` for partial credit, so
    that a missing backward does not cost the forward's points.  ``keep`` (a list
    of forward argument names, such as ``["bn_param"]``) also returns those
    arguments as they are after the calls, under their own names (running
    averages updated in place); list them among the outputs.
    """
    forward, backward = obj[0], obj[1]
    args, dout = inputs["forward"], inputs.get("dout")
    if ctx.get("uses_torch"):
        args, dout = to_torch(args, ctx), to_torch(dout, ctx)
    res = forward(**args)
    if not isinstance(res, (tuple, list)) or len(res) != 2:
        raise TypeError(f"{_name(forward)} must return a pair (out, cache), got "
                        f"{type(res).__name__}{' of ' + str(len(res)) if isinstance(res, (tuple, list)) else ''}")
    out, cache = res
    values = [out]
    if dout is not None:
        grads = backward(dout, cache)
        values += list(grads) if isinstance(grads, (tuple, list)) else [grads]
    kept = {k: args[k] for k in inputs.get("keep", [])}
    names = [n for n in (ctx.get("outputs") or []) if n not in kept]
    if not names:
        return tuple(values) if not kept else {**{f"value{i}": v for i, v in enumerate(values)}, **kept}
    if len(values) > len(names):
        raise TypeError(f"{_name(backward)} returned {len(values) - 1} gradients; expected "
                        f"{len(names) - 1} ({', '.join(names[1:])})")
    return {**dict(zip(names, values)), **kept}
