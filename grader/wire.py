"""Plain-data transport between the grader and a student's worker process.

Values cross the process boundary as one JSON document (the structure) plus
one ``.npz`` archive (the arrays), both read back with ``allow_pickle=False``.
Nothing here ever unpickles, so a hostile worker can at worst send back
wrong numbers, never code.

Supported values: ``None``, ``bool``, ``int``, ``float``, ``str``, lists,
tuples, dicts with ``str``/``int`` keys, numpy arrays and scalars, and torch
tensors (sent as numpy arrays, with their dtype and device recorded).
"""

from __future__ import annotations

import io
import json
import math
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np

MAX_DEPTH = 16


class WireError(ValueError):
    """A value that cannot be sent as plain data."""


def _is_tensor(x: Any) -> bool:
    mod = type(x).__module__
    return mod.startswith("torch") and hasattr(x, "detach") and hasattr(x, "cpu")


def encode(value: Any) -> tuple[dict, dict[str, np.ndarray]]:
    """Split ``value`` into a JSON-able structure and a dict of arrays."""
    arrays: dict[str, np.ndarray] = {}

    def enc(x: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise WireError("value is nested too deeply")
        if isinstance(x, np.generic):  # before float: np.float64 subclasses float
            key = f"a{len(arrays)}"
            arrays[key] = np.asarray(x)
            return {"t": "npscalar", "k": key}
        if x is None or isinstance(x, (bool, str)):
            return {"t": "py", "v": x}
        if isinstance(x, int) and not isinstance(x, bool):
            return {"t": "int", "v": str(x)}
        if isinstance(x, float):
            return {"t": "float", "v": repr(float(x))}
        if isinstance(x, np.ndarray):
            if x.dtype == object:
                raise WireError("object arrays cannot be sent; use a numeric dtype")
            key = f"a{len(arrays)}"
            arrays[key] = x if x.flags.c_contiguous else x.copy(order="C")
            return {"t": "array", "k": key}
        if _is_tensor(x):
            key = f"a{len(arrays)}"
            t = x.detach()
            dtype = str(t.dtype).replace("torch.", "")
            if dtype == "bfloat16":
                t = t.float()
            arrays[key] = t.cpu().numpy()
            return {"t": "tensor", "k": key, "dtype": dtype, "device": t.device.type,
                    "requires_grad": bool(x.requires_grad)}
        if isinstance(x, (list, tuple)):
            return {"t": "list" if isinstance(x, list) else "tuple",
                    "v": [enc(v, depth + 1) for v in x]}
        if isinstance(x, dict):
            items = []
            for k, v in x.items():
                if isinstance(k, (bool, np.bool_)) or not isinstance(k, (str, int, np.integer)):
                    raise WireError(f"dict key {k!r} is not a str or int")
                kk = {"t": "str", "v": k} if isinstance(k, str) else {"t": "int", "v": str(int(k))}
                items.append([kk, enc(v, depth + 1)])
            return {"t": "dict", "v": items}
        raise WireError(f"a value of type {type(x).__name__} cannot be sent as plain data")

    return enc(value, 0), arrays


def decode(structure: dict, arrays: dict[str, np.ndarray]) -> Any:
    """Inverse of :func:`encode`; tensors come back as :class:`Tensor` records."""

    def dec(s: Any, depth: int) -> Any:
        if depth > MAX_DEPTH or not isinstance(s, dict):
            raise WireError("malformed structure")
        t = s.get("t")
        if t == "py":
            v = s.get("v")
            if v is not None and not isinstance(v, (bool, str)):
                raise WireError("malformed py value")
            return v
        if t == "int":
            return int(s["v"])
        if t == "float":
            return float(s["v"])
        if t in ("array", "npscalar", "tensor"):
            a = arrays[s["k"]]
            if t == "npscalar":
                return a[()]
            if t == "tensor":
                return TensorRecord(a, str(s.get("dtype")), str(s.get("device")),
                                    bool(s.get("requires_grad")))
            return a
        if t in ("list", "tuple"):
            vals = [dec(v, depth + 1) for v in s["v"]]
            return vals if t == "list" else tuple(vals)
        if t == "dict":
            out = {}
            for kk, v in s["v"]:
                key = kk["v"] if kk["t"] == "str" else int(kk["v"])
                out[key] = dec(v, depth + 1)
            return out
        raise WireError(f"unknown tag {t!r}")

    return dec(structure, 0)


class TensorRecord:
    """A tensor that crossed the wire: its values, dtype name and device type."""

    __slots__ = ("array", "dtype", "device", "requires_grad")

    def __init__(self, array: np.ndarray, dtype: str, device: str, requires_grad: bool = False):
        self.array, self.dtype, self.device, self.requires_grad = array, dtype, device, requires_grad

    def __repr__(self) -> str:
        return f"TensorRecord(shape={self.array.shape}, dtype={self.dtype}, device={self.device})"


def dumps(value: Any) -> bytes:
    """One self-contained ``.npz`` blob holding structure and arrays."""
    structure, arrays = encode(value)
    buf = io.BytesIO()
    meta = np.frombuffer(json.dumps(structure).encode(), dtype=np.uint8)
    np.savez(buf, __structure__=meta, **arrays)
    return buf.getvalue()


def loads(blob: bytes, max_bytes: int = 512 * 2**20) -> Any:
    if len(blob) > max_bytes:
        raise WireError(f"payload of {len(blob)} bytes exceeds the limit of {max_bytes}")
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = arrays.pop("__structure__", None)
    if meta is None:
        raise WireError("payload has no structure record")
    structure = json.loads(bytes(meta.astype(np.uint8)).decode())
    return decode(structure, arrays)


def write(path: os.PathLike, value: Any) -> None:
    """Write atomically, so a reader never sees half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(dumps(value))
    os.replace(tmp, path)


def read(path: os.PathLike, max_bytes: int = 512 * 2**20) -> Any:
    return loads(read_regular(path, max_bytes), max_bytes)


def read_fd(fd: int, limit: int) -> bytes:
    """At most ``limit`` bytes from the open file ``fd``, in 1 MiB reads (no more is ever read)."""
    chunks, left = [], limit
    while left > 0:
        chunk = os.read(fd, min(left, 2**20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_regular(path: os.PathLike, max_bytes: int, *, tail: bool = False) -> bytes:
    """The bytes of the regular file ``path``, of at most ``max_bytes`` (``tail``: its
    last ``max_bytes``, else :class:`WireError` when it is bigger).

    Files a worker wrote are input to the grader: this never follows a symbolic
    link, never blocks on a fifo, and reads nothing but a regular file (else
    ``OSError`` or :class:`WireError`)."""
    path = Path(path)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise WireError(f"{path.name} is not a regular file")
        if st.st_size > max_bytes:
            if not tail:
                raise WireError(f"{path.name} is {st.st_size} bytes, over the limit of {max_bytes}")
            os.lseek(fd, st.st_size - max_bytes, os.SEEK_SET)
        data = read_fd(fd, max_bytes + (0 if tail else 1))
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise WireError(f"{path.name} grew over the limit of {max_bytes} bytes while it was read")
    return data


def is_finite_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
