"""Tests for course_utils.gradcheck: laws of rel_error and numerical gradients of known functions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from course_utils.gradcheck import (
    grad_check_sparse,
    interpret_rel_error,
    numerical_gradient,
    numerical_gradient_array,
    rel_error,
)

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
small = st.floats(-2, 2, allow_nan=False, allow_infinity=False)
shapes = hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=5)


@st.composite
def array_pairs(draw, elements=finite):
    shape = draw(shapes)
    return (
        draw(hnp.arrays(np.float64, shape, elements=elements)),
        draw(hnp.arrays(np.float64, shape, elements=elements)),
    )


# ----------------------------------------------------------------------------- rel_error


@given(array_pairs())
def test_rel_error_is_symmetric_and_in_unit_interval(pair):
    x, y = pair
    err = rel_error(x, y)
    assert err == rel_error(y, x)
    assert 0.0 <= err <= 1.0


@given(hnp.arrays(np.float64, shapes, elements=finite))
def test_rel_error_of_equal_arrays_is_zero(x):
    assert rel_error(x, x.copy()) == 0.0


def test_rel_error_known_values():
    assert rel_error(np.array([1.0]), np.array([-1.0])) == 1.0
    assert rel_error(1.0, 1.1) == pytest.approx(0.1 / 2.1)
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 3.0])) == pytest.approx(0.2)


def test_rel_error_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\(2,\) and \(3,\)"):
        rel_error(np.zeros(2), np.zeros(3))


@pytest.mark.parametrize(
    ("err", "word"),
    [
        (0.5, "probably wrong"),
        (1e-3, "uncomfortable"),
        (1e-5, "kinks"),
        (1e-9, "good"),
        (np.nan, "NaN"),
    ],
)
def test_interpret_rel_error_follows_the_thresholds(err, word):
    assert word in interpret_rel_error(err)


# ----------------------------------------------------------------------------- numerical gradients


@st.composite
def quadratics(draw):
    d = draw(st.integers(1, 6))
    A = draw(hnp.arrays(np.float64, (d, d), elements=small))
    b = draw(hnp.arrays(np.float64, (d,), elements=small))
    x = draw(hnp.arrays(np.float64, (d,), elements=small))
    return A, b, x


@settings(max_examples=50, deadline=None)
@given(quadratics())
def test_numerical_gradient_of_quadratic(problem):
    A, b, x = problem
    x_before = x.copy()
    grad = numerical_gradient(lambda v: 0.5 * v @ A @ v + b @ v, x)
    expected = 0.5 * (A + A.T) @ x + b
    assert np.all(np.abs(grad - expected) <= 1e-7 * (1 + np.abs(expected)))
    assert x.tobytes() == x_before.tobytes()  # restored bit for bit


@settings(max_examples=50, deadline=None)
@given(array_pairs(elements=small))
def test_numerical_gradient_of_sin_sum(pair):
    w, x = pair
    x_before = x.copy()
    grad = numerical_gradient(lambda v: np.sum(np.sin(w * v)), x)
    expected = w * np.cos(w * x)
    assert np.all(np.abs(grad - expected) <= 1e-7 * (1 + np.abs(expected)))
    assert x.tobytes() == x_before.tobytes()


@st.composite
def linear_maps(draw):
    m, d, n = (draw(st.integers(1, 4)) for _ in range(3))
    W = draw(hnp.arrays(np.float64, (m, d), elements=small))
    x = draw(hnp.arrays(np.float64, (d, n), elements=small))
    df = draw(hnp.arrays(np.float64, (m, n), elements=small))
    return W, x, df


@settings(max_examples=50, deadline=None)
@given(linear_maps())
def test_numerical_gradient_array_of_linear_map(problem):
    W, x, df = problem
    x_before = x.copy()
    grad = numerical_gradient_array(lambda v: W @ v, x, df)
    expected = W.T @ df
    assert np.all(np.abs(grad - expected) <= 1e-7 * (1 + np.abs(expected)))
    assert x.tobytes() == x_before.tobytes()


def test_numerical_gradient_array_copes_with_reused_output_buffer():
    buffer = np.empty(3)

    def f(v):
        np.multiply(v, 2.0, out=buffer)
        return buffer

    x = np.array([1.0, 2.0, 3.0])
    grad = numerical_gradient_array(f, x, np.ones(3))
    np.testing.assert_allclose(grad, 2.0 * np.ones(3), rtol=1e-9)


def test_numerical_gradient_array_rejects_wrong_df_shape():
    with pytest.raises(ValueError, match="df has shape"):
        numerical_gradient_array(lambda v: v * 2, np.zeros(3), np.ones(4))


def test_non_scalar_output_is_rejected():
    with pytest.raises(ValueError, match="scalar"):
        numerical_gradient(lambda v: v * 2, np.zeros(3))


def test_float32_input_warns_about_precision():
    with pytest.warns(UserWarning, match="float32"):
        numerical_gradient(lambda v: float(np.sum(v**2)), np.ones(3, dtype=np.float32))


@pytest.mark.parametrize("bad", [np.arange(3), [1.0, 2.0]])
def test_non_float_arrays_are_rejected(bad):
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(lambda v: 0.0, bad)


def test_x_is_restored_when_f_raises():
    x = np.array([1.0, 2.0])

    def f(v):
        if v[0] != 1.0:
            raise RuntimeError("boom")
        return 0.0

    with pytest.raises(RuntimeError):
        numerical_gradient(f, x)
    assert x.tolist() == [1.0, 2.0]


# ----------------------------------------------------------------------------- grad_check_sparse


def test_grad_check_sparse_prints_and_returns_errors(capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3))
    x_before = x.copy()

    def f(v):
        return np.sum(v**3)

    errors = grad_check_sparse(f, x, 3 * x**2, num_checks=5, rng=0)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(errors) == len(lines) == 5
    assert all("numerical:" in line and "analytic:" in line and "relative error:" in line for line in lines)
    assert max(errors) < 1e-7
    assert x.tobytes() == x_before.tobytes()
    wrong = grad_check_sparse(f, x, 6 * x**2, num_checks=5, rng=0, verbose=False)
    assert min(wrong) > 0.3  # a factor 2 off gives 1/3


def test_grad_check_sparse_is_repeatable_and_checks_shapes():
    x = np.linspace(-1, 1, 12).reshape(3, 4)
    a = grad_check_sparse(np.sum, x, np.ones_like(x), num_checks=3, rng=1, verbose=False)
    b = grad_check_sparse(np.sum, x, np.ones_like(x), num_checks=3, rng=1, verbose=False)
    assert a == b
    with pytest.raises(ValueError, match="shape"):
        grad_check_sparse(np.sum, x, np.ones(12), verbose=False)
