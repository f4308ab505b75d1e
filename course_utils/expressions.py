"""Random scalar expressions as plain data, to test a scalar autograd engine against PyTorch.

An expression is a dict ``{"leaves": [x_0, ..., x_{L-1}], "ops": [op, ...]}``. Nodes are
numbered: node ``k < L`` is leaf ``k``; every op appends one node, computed from earlier
nodes, and the last node is the output. An op is a list:

- ``[name, i, j]`` for ``add``, ``sub``, ``mul``, ``div``: node_i op node_j;
- ``[name, c, i]`` for ``radd``, ``rsub``, ``rmul``, ``rdiv``: the Python number c op node_i
  (``2 * v``, ``1 - v``, ``2 / v``: the reflected operators);
- ``[name, i, c]`` for ``addc``, ``subc``, ``mulc``, ``divc``: node_i op the number c;
- ``["pow", i, p]``: node_i ** p, p a Python number;
- ``[name, i]`` for ``neg``, ``relu``, ``tanh``, ``exp``, ``log``: -node_i or node_i.name().

:func:`evaluate_expression` builds the nodes with any number type that has these operators
and methods: a scalar autograd ``Value``, or 0-d ``torch.Tensor`` leaves that require grad.
A node used by several later ops is a fork: its gradient is the sum over those uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["apply_op", "evaluate_expression", "random_expression"]

BINARY = ("add", "sub", "mul", "div")
LEFT_CONST = ("radd", "rsub", "rmul", "rdiv")
RIGHT_CONST = ("addc", "subc", "mulc", "divc")
UNARY = ("neg", "relu", "tanh", "exp", "log")


def apply_op(op: list, nodes: list) -> Any:
    """The node that ``op`` computes from the earlier ``nodes``."""
    name = op[0]
    if name in BINARY:
        a, b = nodes[int(op[1])], nodes[int(op[2])]
        if name == "add":
            return a + b
        if name == "sub":
            return a - b
        return a * b if name == "mul" else a / b
    if name in LEFT_CONST:
        c, a = float(op[1]), nodes[int(op[2])]
        if name == "radd":
            return c + a
        if name == "rsub":
            return c - a
        return c * a if name == "rmul" else c / a
    if name in RIGHT_CONST:
        a, c = nodes[int(op[1])], float(op[2])
        if name == "addc":
            return a + c
        if name == "subc":
            return a - c
        return a * c if name == "mulc" else a / c
    if name == "pow":
        p = op[2]
        return nodes[int(op[1])] ** (int(p) if float(p).is_integer() else float(p))
    if name == "neg":
        return -nodes[int(op[1])]
    if name in ("relu", "tanh", "exp", "log"):
        return getattr(nodes[int(op[1])], name)()
    raise ValueError(f"unknown op {name!r}; known: {BINARY + LEFT_CONST + RIGHT_CONST + UNARY + ('pow',)}")


def evaluate_expression(expr: dict, leaf: Callable[[float], Any]) -> tuple[list, list]:
    """Build every node of ``expr``; ``leaf(x)`` makes a leaf from a Python float.

    Returns:
    - nodes: every node, leaves first; ``nodes[-1]`` is the output.
    - leaves: the leaf objects (the first ``len(expr["leaves"])`` nodes).
    """
    leaves = [leaf(float(x)) for x in expr["leaves"]]
    nodes = list(leaves)
    for op in expr["ops"]:
        nodes.append(apply_op(list(op), nodes))
    return nodes, leaves


def _value(op: list, vals: list[float]) -> float:
    """The op's value in plain floats (relu, tanh, exp, log by hand)."""

    class F(float):
        def relu(self):
            return F(max(0.0, self))

        def tanh(self):
            return F(math.tanh(self))

        def exp(self):
            return F(math.exp(self))

        def log(self):
            return F(math.log(self))

    return float(apply_op(op, [F(v) for v in vals]))


def _pick(rng: np.random.Generator, n: int) -> int:
    """An operand among n nodes: one of the last three with probability 0.7, else any."""
    return n - 1 - int(rng.integers(0, min(n, 3))) if rng.random() < 0.7 else int(rng.integers(0, n))


def random_expression(rng: np.random.Generator, num_leaves: int = 3, num_ops: int = 10,
                      leaves: list[float] | None = None) -> dict:
    """A random expression whose every op is defined and moderate in size.

    Operands are mostly recent nodes (so the output depends on most of the graph) and
    sometimes any earlier node (so nodes fork). Division, ``log`` and fractional powers only
    get operands away from zero; ``exp`` and ``tanh`` only moderate ones.

    Inputs:
    - rng: numpy Generator.
    - num_leaves: number of leaves L (ignored when ``leaves`` is given).
    - num_ops: number of ops.
    - leaves: optional leaf values.

    Returns:
    - {"leaves": [L floats], "ops": [num_ops ops]}, see the module docstring.
    """
    vals = [float(v) for v in leaves] if leaves is not None else [
        float(round(rng.uniform(-2.0, 2.0), 3)) for _ in range(num_leaves)]
    consts = [-2.0, -1.0, -0.5, 0.5, 1.0, 2.0, 3.0]
    kinds = list(BINARY) * 3 + list(LEFT_CONST) + list(RIGHT_CONST) + list(UNARY) * 2 + ["pow"] * 2
    ops: list[list] = []
    while len(ops) < num_ops:
        name = kinds[int(rng.integers(0, len(kinds)))]
        i, j = _pick(rng, len(vals)), _pick(rng, len(vals))
        a, b = vals[i], vals[j]
        c = consts[int(rng.integers(0, len(consts)))]
        if name in BINARY:
            op = [name, i, j]
            if name == "div" and abs(b) < 0.2 or name == "mul" and abs(a * b) > 1e3:
                continue
        elif name in LEFT_CONST:
            op = [name, c, i]
            if name == "rdiv" and abs(a) < 0.2:
                continue
        elif name in RIGHT_CONST:
            op = [name, i, c]
        elif name == "pow":
            p = [2, 3, -1, 0.5, 1.5, -0.5][int(rng.integers(0, 6))]
            op = [name, i, p]
            if (p < 0 and abs(a) < 0.2) or (not float(p).is_integer() and a < 0.2) or abs(a) > 30:
                continue
        else:
            op = [name, i]
            if (name == "log" and a < 0.2) or (name == "exp" and a > 4) or (name == "tanh" and abs(a) > 15):
                continue
        v = _value(op, vals)
        if not math.isfinite(v) or abs(v) > 1e4:
            continue
        ops.append(op)
        vals.append(v)
    return {"leaves": vals[:len(vals) - len(ops)], "ops": ops}
