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
    ``grads = backward(dout, cache)``, and returns the tuple ``(out, *grads)``
    (a single gradient counts as a tuple of one), named by the exercise's outputs.
    A case without ``dout`` runs the forward function only and returns ``(out,)``:
    tag such cases ``part="forward"`` and the others ``part="backward"`` for
    partial credit, so that a missing backward does not cost the forward's points.
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
    if dout is None:
        return (out,)
    grads = backward(dout, cache)
    grads = tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)
    return (out, *grads)
