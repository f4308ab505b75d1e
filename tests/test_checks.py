"""Visible self-checks: messages name the exercise, argument, index, expected and got."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from course_utils.checks import (
    SelfCheckError,
    check_at_most_loops,
    check_close,
    check_dtype,
    check_equal,
    check_no_loops,
    check_not_using,
    check_peak_memory,
    check_shape,
    compare,
)


def test_close_message_names_everything():
    with pytest.raises(SelfCheckError) as e:
        check_close("svm_loss", np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 2.0], [3.0, 5.0]]),
                    name="dW", hint="did you forget the regularisation gradient?")
    msg = str(e.value)
    assert "svm_loss" in msg and "dW[1, 1]" in msg and "expected 5" in msg and "got 4" in msg
    assert "regularisation" in msg and "1 of 4 entries differ" in msg


def test_shape_and_dtype_messages():
    with pytest.raises(SelfCheckError, match=r"expected shape \(3, 2\), got \(2, 3\)"):
        check_shape("f", np.zeros((2, 3)), (3, 2))
    with pytest.raises(SelfCheckError, match="expected an integer dtype"):
        check_dtype("f", np.zeros(3), "i")
    with pytest.raises(SelfCheckError, match="got None"):
        check_close("f", None, np.zeros(3))


def test_equal_is_exact_and_checks_structure():
    check_equal("f", {1: [0.5, 0.25]}, {1: [0.5, 0.25]})
    with pytest.raises(SelfCheckError, match="missing keys"):
        check_equal("f", {1: [0.5]}, {1: [0.5], 3: [0.1]})
    with pytest.raises(SelfCheckError, match=r"y\[2\]: expected 2, got 1"):
        check_equal("f", np.array([0, 1, 1]), np.array([0, 1, 2]), name="y")


def test_hidden_mode_never_reveals_expected_values():
    msg = compare(np.array([1.0, 2.0]), np.array([1.0, 123.456]), reveal=False)
    assert "123" not in msg and "1 of 2 entries differ" in msg


def test_tensor_inputs_are_compared():
    import torch

    check_close("f", torch.tensor([1.0, 2.0]), np.array([1.0, 2.0]), rtol=1e-6)


def test_source_rules_from_a_function():
    def with_loop(x):
        return [v for v in x]

    def fine(x):
        return x * 2

    with pytest.raises(SelfCheckError, match="comprehension"):
        check_no_loops("ex", with_loop)
    check_no_loops("ex", fine)
    check_not_using("ex", fine, ["np.linalg.norm"])


finite = hnp.arrays(np.float64, hnp.array_shapes(max_dims=3, max_side=5),
                    elements=st.floats(-1e6, 1e6))


@given(finite)
def test_compare_is_reflexive(a):
    assert compare(a, a.copy()) is None


@given(finite, st.floats(1e-3, 1e3))
def test_compare_catches_any_perturbation(a, delta):
    if a.size == 0:
        return
    b = a.copy()
    b.flat[-1] += delta * (1 + abs(b.flat[-1]))
    assert compare(b, a) is not None


def test_check_dtype_accepts_dtype_objects_and_names():
    import torch

    check_dtype("f", np.zeros(2), np.float64)
    check_dtype("f", np.zeros(2), "float64")
    check_dtype("f", torch.zeros(2, dtype=torch.float32), torch.float32)
    with pytest.raises(SelfCheckError) as e:
        check_dtype("f", np.zeros(2), np.float32)
    assert str(e.value) == "f: output: expected float32, got float64"


def test_check_dtype_message_names_the_argument():
    import torch

    with pytest.raises(SelfCheckError) as e:
        check_dtype("one_hot", np.zeros(3, dtype=np.int64), "float64", name="Y", hint="convert with .astype")
    assert str(e.value) == "one_hot: Y: expected float64, got int64\n  hint: convert with .astype"
    with pytest.raises(SelfCheckError) as e:
        check_dtype("batched_matmul", torch.zeros(2, dtype=torch.float64), torch.float32, name="out")
    assert str(e.value) == "batched_matmul: out: expected float32, got float64"
    with pytest.raises(SelfCheckError) as e:
        check_dtype("predict_labels", np.zeros(3), "i", name="y_pred")
    assert str(e.value) == "predict_labels: y_pred: expected an integer dtype, got float64"
    with pytest.raises(SelfCheckError) as e:
        check_dtype("f", [1, 2], "float64", name="X")
    assert str(e.value) == "f: X: expected float64, got list without a dtype"


def test_at_most_loops_counts_loops_and_comprehensions():
    def two(x):
        for _ in range(2):
            x = [v for v in x]
        return x

    check_at_most_loops("ex", two, 2)
    with pytest.raises(SelfCheckError) as e:
        check_at_most_loops("ex", two, 1, hint="one loop over the rows")
    assert str(e.value) == ("ex: `two` (with the helpers it calls) has 2 Python loops or comprehensions; "
                            "this exercise allows at most 1\n  hint: one loop over the rows")


def test_peak_memory_catches_a_large_temporary():
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(1000, 100)), rng.normal(size=(50, 100))

    def broadcast(a, b):  # a (50, 1000, 100) temporary: 40 MB
        return ((b[:, None, :] - a[None, :, :]) ** 2).sum(axis=2)

    def product(a, b):  # nothing larger than the (50, 1000) result
        return (b ** 2).sum(axis=1)[:, None] + (a ** 2).sum(axis=1)[None, :] - 2 * b @ a.T

    out = check_peak_memory("ex", product, (A, B), limit_mb=5)
    np.testing.assert_allclose(out, broadcast(A, B), rtol=1e-9, atol=1e-9)
    with pytest.raises(SelfCheckError, match=r"^ex: broadcast allocated 3\d MB at its peak on this input; "
                                             r"the limit here is 5 MB"):
        check_peak_memory("ex", broadcast, (A, B), limit_mb=5)


def test_rules_read_a_class_defined_in_a_notebook_cell():
    """inspect cannot find the source of a class defined in a notebook (no module file);
    the self-checks read it from the cell, through its methods."""
    import linecache

    from course_utils.checks import SelfCheckError, check_no_loops, check_not_using

    src = "class Model:\n    def f(self):\n        return [i for i in range(3)]\n"
    cell = "<notebook cell 12>"
    linecache.cache[cell] = (len(src), None, src.splitlines(True), cell)
    namespace = {"__name__": "__main__"}
    exec(compile(src, cell, "exec"), namespace)
    with pytest.raises(SelfCheckError, match="comprehension"):
        check_no_loops("Model", namespace["Model"])
    check_not_using("Model", namespace["Model"], ["torch"])  # passes: the source was found
