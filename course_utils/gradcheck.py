"""Numerical gradients, to check the gradients you derive by hand.

The analytic gradient is exact and fast but easy to get wrong; the numerical gradient,
from the centred difference

    df/dx ≈ (f(x + h) - f(x - h)) / (2h),

is slow and approximate but hard to get wrong. A gradient check compares the two with the
relative error |a - n| / max(|a| + |n|, 1e-8), and the size of that error tells you how
worried to be:

- relative error > 1e-2: the gradient is probably wrong.
- 1e-2 > relative error > 1e-4: you should feel uncomfortable.
- 1e-4 > relative error: usually okay for objectives with kinks (ReLU, max, the SVM
  hinge loss). Without kinks (tanh, softmax) 1e-4 is too high.
- 1e-7 and less: you should be happy.

The deeper the network, the larger the relative errors get. Check in float64 (float32
loses the precision a small h needs), keep h around 1e-5 (below 1e-10 rounding takes over),
use only a few data points, switch off regularisation, dropout and augmentation first, and
check a few entries of every parameter.

Dimension letters: x has any shape (d_1, ..., d_k); f(x) has shape (m_1, ..., m_j).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

__all__ = [
    "grad_check_sparse",
    "interpret_rel_error",
    "numerical_gradient",
    "numerical_gradient_array",
    "rel_error",
]


def _check_input(x, name: str = "x") -> None:
    if not isinstance(x, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy array (it is perturbed in place), got {type(x).__name__}; "
            f"wrap it with np.array({name}, dtype=np.float64)."
        )
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(
            f"{name} has dtype {x.dtype}, so x + h would be truncated; "
            f"convert it with {name}.astype(np.float64)."
        )
    if x.dtype != np.float64:
        warnings.warn(
            f"{name} has dtype {x.dtype}: its precision is too low for numerical gradients with "
            f"h=1e-5, expect large relative errors. Convert with {name}.astype(np.float64).",
            stacklevel=3,
        )


def _scalar(value, where: str) -> float:
    arr = np.asarray(value)
    if arr.size != 1:
        raise ValueError(
            f"f must return a scalar (e.g. the loss), but returned shape {arr.shape} {where}; "
            f"use numerical_gradient_array for functions that return arrays."
        )
    return float(arr.reshape(()))


def _centred_difference(f, x: np.ndarray, ix: tuple, h: float) -> float:
    """(f(x + h e_ix) - f(x - h e_ix)) / 2h for a scalar f, with x restored afterwards."""
    old = x[ix]
    try:
        x[ix] = old + h
        f_plus = _scalar(f(x), f"at x{list(ix)} + h")
        x[ix] = old - h
        f_minus = _scalar(f(x), f"at x{list(ix)} - h")
    finally:
        x[ix] = old  # restore: f must see the original x again
    return (f_plus - f_minus) / (2 * h)


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Gradient of a scalar function by centred differences.

    Inputs:
    - f: function of x returning a scalar, e.g. lambda W: loss(W, X, y)[0].
    - x: float64 array of any shape; perturbed one entry at a time, in place, and restored
      exactly (also when f raises).
    - h: step size.

    Returns:
    - grad: float64, same shape as x; grad[i] = (f(x + h e_i) - f(x - h e_i)) / (2h).
    """
    _check_input(x)
    grad = np.zeros(x.shape, dtype=np.float64)
    for ix in np.ndindex(x.shape):
        grad[ix] = _centred_difference(f, x, ix, h)
    return grad


def numerical_gradient_array(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, df: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """Gradient of sum(df * f(x)) by centred differences: backpropagation through f.

    Inputs:
    - f: function of x returning an array, e.g. lambda x: affine_forward(x, w, b)[0].
    - x: float64 array, shape (d_1, ..., d_k); perturbed in place and restored exactly.
    - df: upstream gradient, same shape as f(x), (m_1, ..., m_j).
    - h: step size.

    Returns:
    - grad: float64, same shape as x; grad[i] = sum(df * (f(x + h e_i) - f(x - h e_i))) / (2h).
    """
    _check_input(x)
    df = np.asarray(df, dtype=np.float64)
    grad = np.zeros(x.shape, dtype=np.float64)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        try:
            x[ix] = old + h
            f_plus = np.array(f(x), dtype=np.float64)  # a copy: f may reuse its output buffer
            x[ix] = old - h
            f_minus = np.array(f(x), dtype=np.float64)
        finally:
            x[ix] = old
        if f_plus.shape != df.shape:
            raise ValueError(
                f"df has shape {df.shape} but f(x) has shape {f_plus.shape}; "
                f"df must be the upstream gradient of f's output, same shape."
            )
        grad[ix] = np.sum((f_plus - f_minus) * df) / (2 * h)
    return grad


def rel_error(x, y) -> float:
    """Largest relative error between two arrays, max(|x - y| / max(1e-8, |x| + |y|)).

    Inputs:
    - x, y: arrays (or numbers) of the same shape.

    Returns:
    - a float in [0, 1]: 0 when equal, 1 when of opposite sign; NaN if either holds NaN.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"rel_error needs arrays of the same shape, got {x.shape} and {y.shape}.")
    if x.size == 0:
        return 0.0
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def interpret_rel_error(err: float) -> str:
    """What a relative error between an analytic and a numerical gradient means.

    Inputs:
    - err: relative error, e.g. from rel_error.

    Returns:
    - a one-line verdict, following the thresholds in this module's docstring.
    """
    err = float(err)
    if not np.isfinite(err):
        return f"relative error {err}: not a number; the gradient or the loss holds NaN or inf."
    if err > 1e-2:
        return f"relative error {err:.2e} > 1e-2: the gradient is probably wrong."
    if err > 1e-4:
        return f"relative error {err:.2e} in (1e-4, 1e-2]: uncomfortable, look for a bug."
    if err > 1e-7:
        return (
            f"relative error {err:.2e} in (1e-7, 1e-4]: okay for objectives with kinks (ReLU, max, "
            f"hinge loss); too high without kinks (tanh, softmax)."
        )
    return f"relative error {err:.2e} <= 1e-7: good."


def grad_check_sparse(
    f: Callable[[np.ndarray], float],
    x: np.ndarray,
    analytic_grad: np.ndarray,
    num_checks: int = 10,
    h: float = 1e-5,
    rng: np.random.Generator | int | None = None,
    *,
    verbose: bool = True,
) -> list[float]:
    """Compare the analytic gradient with the numerical one at a few random entries.

    Inputs:
    - f: function of x returning a scalar.
    - x: float64 array, shape (d_1, ..., d_k); perturbed in place and restored exactly.
    - analytic_grad: your gradient, same shape as x.
    - num_checks: how many random entries to check.
    - h: step size.
    - rng: numpy Generator or int seed for picking the entries.
    - verbose: print "numerical: ... analytic: ... relative error: ..." per entry.

    Returns:
    - list of num_checks relative errors, one per checked entry.
    """
    _check_input(x)
    analytic_grad = np.asarray(analytic_grad, dtype=np.float64)
    if analytic_grad.shape != x.shape:
        raise ValueError(
            f"analytic_grad has shape {analytic_grad.shape} but x has shape {x.shape}; "
            f"the gradient must have the shape of what it differentiates."
        )
    if x.size == 0:
        raise ValueError("x is empty; there is nothing to check.")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    errors = []
    for _ in range(num_checks):
        ix = tuple(int(gen.integers(n)) for n in x.shape)
        numerical = _centred_difference(f, x, ix, h)
        analytic = float(analytic_grad[ix])
        err = rel_error(numerical, analytic)
        errors.append(err)
        if verbose:
            print(
                f"x{list(ix)}: numerical: {numerical: .6e} analytic: {analytic: .6e}, relative error: {err:.2e}"
            )
    return errors
