"""The worker's answers cross the process boundary as plain data, never pickles."""

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from grader import wire

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.text(max_size=20),
                    st.floats(allow_nan=False))
arrays = hnp.arrays(dtype=st.sampled_from([np.float64, np.float32, np.int64, np.bool_, np.uint8]),
                    shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4))
values = st.recursive(st.one_of(scalars, arrays),
                      lambda inner: st.one_of(st.lists(inner, max_size=4),
                                              st.tuples(inner, inner),
                                              st.dictionaries(st.one_of(st.text(max_size=5), st.integers(-5, 5)),
                                                              inner, max_size=4)),
                      max_leaves=10)


def same(a, b):
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and \
            np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return set(a) == set(b) and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@settings(max_examples=150, deadline=None)
@given(values)
def test_round_trip(value):
    assert same(wire.loads(wire.dumps(value)), value)


def test_numpy_scalars_and_tensors():
    import torch

    out = wire.loads(wire.dumps({"s": np.float64(1.5), "t": torch.ones(2, dtype=torch.float32)}))
    assert out["s"] == 1.5 and isinstance(out["s"], np.floating)
    assert isinstance(out["t"], wire.TensorRecord) and out["t"].dtype == "float32" and out["t"].device == "cpu"


def test_refuses_objects_it_cannot_send():
    with pytest.raises(wire.WireError, match="cannot be sent"):
        wire.dumps({"f": lambda x: x})
    with pytest.raises(wire.WireError, match="object arrays"):
        wire.dumps(np.array([object()], dtype=object))


def test_never_unpickles():
    """An archive holding a pickled object array is rejected, not executed."""
    buf = io.BytesIO()
    meta = np.frombuffer(b'{"t": "array", "k": "a0"}', dtype=np.uint8)
    np.savez(buf, __structure__=meta, a0=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        wire.loads(buf.getvalue())


def test_size_limit():
    with pytest.raises(wire.WireError, match="exceeds"):
        wire.loads(wire.dumps(np.zeros(1000)), max_bytes=100)
