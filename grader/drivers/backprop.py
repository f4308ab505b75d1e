"""Drivers of 03_backprop: a scalar autograd class, a numerical gradient, a two-layer network.

(The layers' forward/backward pairs use the generic ``forward_backward`` of
:mod:`grader.drivers.layers`.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from course_utils.expressions import evaluate_expression

from . import driver


@driver
def value_expression(obj: Any, inputs: dict, ctx: dict) -> Any:
    """For a scalar autograd class ``obj(data)`` (``Value``): builds the expression
    ``inputs`` describes (``{"leaves", "ops"}``, see :mod:`course_utils.expressions`)
    with ``obj`` leaves and calls ``backward()`` on its last node.

    Returns ``{"data": every node's data, leaves first, "leaf_grads": every leaf's
    grad}`` as float64 arrays.
    """
    nodes, leaves = evaluate_expression(inputs, obj)
    nodes[-1].backward()
    return {"data": np.array([float(n.data) for n in nodes]),
            "leaf_grads": np.array([float(leaf.grad) for leaf in leaves])}


def _test_function(kind: str, p: dict) -> Callable[[np.ndarray], float]:
    """Scalar functions of an array x, with array parameters ``p`` of x's shape."""
    if kind == "quadratic":  # sum(a x^2) + sum(b x)
        return lambda x: float(np.sum(p["a"] * x * x) + np.sum(p["b"] * x))
    if kind == "cubic":  # sum(a x^3)
        return lambda x: float(np.sum(p["a"] * x ** 3))
    if kind == "logsumexp":  # log(sum(exp(a x)))
        return lambda x: float(np.log(np.sum(np.exp(p["a"] * x))))
    if kind == "sin":  # sum(b sin(a x))
        return lambda x: float(np.sum(p["b"] * np.sin(p["a"] * x)))
    if kind == "relu":  # sum(a max(0, x)); the cases keep x away from 0
        return lambda x: float(np.sum(p["a"] * np.maximum(0.0, x)))
    raise ValueError(f"unknown test function {kind!r}")


@driver
def numerical_gradient_of(obj: Any, inputs: dict, ctx: dict) -> Any:
    """For ``obj(f, x, h)`` (a numerical gradient): ``f`` is built here from ``kind``
    and ``params`` (see ``_test_function``); ``h`` is passed only when the case has one.

    Returns ``{"grad": obj's result, "x_restored": whether x holds exactly its
    original values afterwards}``.
    """
    x = inputs["x"]
    before = x.copy()
    f = _test_function(inputs["kind"], inputs["params"])
    grad = obj(f, x) if inputs.get("h") is None else obj(f, x, h=inputs["h"])
    return {"grad": grad, "x_restored": bool(x.shape == before.shape and np.array_equal(x, before))}


TWO_LAYER_PARAMS = ("W1", "b1", "W2", "b2")


@driver
def two_layer_net(obj: Any, inputs: dict, ctx: dict) -> Any:
    """For ``TwoLayerNet(input_dim, hidden_dim, num_classes, weight_scale, reg, rng)``.

    Constructs it with ``rng=np.random.default_rng(inputs["seed"])``, records the
    initial params, replaces those named in the optional ``params`` input, then calls
    ``loss(X)`` and ``loss(X, y)``.

    Returns ``{"init": {name: array}, "scores": ..., "loss": ..., "grads": {name: array}}``.
    """
    net = obj(inputs["input_dim"], inputs["hidden_dim"], inputs["num_classes"],
              weight_scale=inputs["weight_scale"], reg=inputs["reg"],
              rng=np.random.default_rng(int(inputs["seed"])))
    missing = [k for k in TWO_LAYER_PARAMS if k not in net.params]
    if missing:
        raise KeyError(f"params has no {', '.join(missing)}")
    init = {k: np.array(net.params[k], dtype=np.float64) for k in TWO_LAYER_PARAMS}
    for k, v in (inputs.get("params") or {}).items():
        net.params[k] = v
    scores = net.loss(inputs["X"])
    result = net.loss(inputs["X"], inputs["y"])
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
        raise TypeError("loss(X, y) must return a tuple (loss, grads) with grads a dict")
    loss, grads = result
    missing = [k for k in TWO_LAYER_PARAMS if k not in grads]
    if missing:
        raise KeyError(f"grads has no {', '.join(missing)}")
    return {"init": init, "scores": scores, "loss": loss, "grads": {k: grads[k] for k in TWO_LAYER_PARAMS}}
