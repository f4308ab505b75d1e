"""Drivers for optimisation: update rules applied step after step.

The course's update rules have the API ``rule(w, dw, config=None) -> (next_w,
config)``, with their state (velocity, caches, the step count ``t``) kept in
``config``; a rule is graded by running it for several steps with the config it
returned, as a training loop does.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from . import driver


@driver
def update_steps(obj: Any, inputs: dict, ctx: dict) -> Any:
    """For ``rule(w, dw, config=None) -> (next_w, config)``.

    Inputs: ``w`` (initial weights), ``dws`` (one gradient per step) and ``config``
    (a dict, or ``None`` to let the rule fill in its defaults).  Calls the rule once
    per gradient, each time with the weights and config the previous call returned.

    Returns ``{"w": [the weights after each step], "config": the last config}``
    (the config's arrays and numbers; named by the exercise's outputs ``("w", "config")``).
    """
    w, config = inputs["w"], inputs.get("config")
    history = []
    for dw in inputs["dws"]:
        res = obj(w, dw, config)
        if not isinstance(res, (tuple, list)) or len(res) != 2:
            raise TypeError(f"{getattr(obj, '__name__', 'the rule')} must return (next_w, config), "
                            f"got {type(res).__name__}")
        w, config = res
        history.append(np.array(w, copy=True))
    return {"w": history, "config": copy.deepcopy(config)}


@driver
def initializer(obj: Any, inputs: dict, ctx: dict) -> Any:
    """For ``init(fan_in, fan_out, rng) -> W``.

    Inputs: ``fan_in``, ``fan_out`` and ``seed``; the initialiser gets
    ``rng = np.random.default_rng(seed)``.  Returns ``{"W": the weights, "next_draw": the
    next number rng gives afterwards}`` (so extra or missing draws show).
    """
    rng = np.random.default_rng(int(inputs["seed"]))
    W = obj(int(inputs["fan_in"]), int(inputs["fan_out"]), rng)
    return {"W": np.asarray(W), "next_draw": float(rng.random())}
