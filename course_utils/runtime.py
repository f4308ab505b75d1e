"""Where computations run and how they are made repeatable.

Every notebook starts with::

    from course_utils import device, seed_everything
    rng = seed_everything(0)
    dev = device()
"""

from __future__ import annotations

import os
import platform
import random
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

DEVICE_ENV_VAR = "COURSE_DEVICE"
THREADS_ENV_VAR = "COURSE_BLAS_THREADS"
QUICK_ENV_VAR = "COURSE_QUICK"


def quick_mode() -> bool:
    """True when ``COURSE_QUICK`` is set (to anything but "", "0" or "false").

    The test suite executes every notebook in quick mode: training runs use fewer
    epochs or examples (see :func:`budget`) so that the suite stays fast as the course
    grows. Students and the benchmark (``python -m bench``) run the full notebooks.
    """
    return os.environ.get(QUICK_ENV_VAR, "").strip().lower() not in ("", "0", "false", "no")


def budget(full, quick):
    """``full`` normally, ``quick`` in quick mode: ``epochs = budget(30, 2)``.

    Use it only for work whose size does not change what the text claims (a training
    run's length, the number of repeats of a timing), and say what the full run gives.
    """
    return quick if quick_mode() else full


def configure_threads(blas_threads: int | None = None) -> int:
    """Keep numpy's BLAS and torch's OpenMP pools from fighting over a laptop's cores.

    numpy's BLAS (OpenBLAS) starts one busy-waiting thread per core, and so does
    torch's OpenMP pool once torch is imported: on a 2-core machine the two pools
    oversubscribe the cores, and a small matrix product (the size of every timing
    demo in the course) takes 10 to 100 times longer than on one thread. So numpy's
    BLAS runs ``blas_threads`` threads (default: ``COURSE_BLAS_THREADS``, else 1), and
    OpenMP threads wait passively (set before torch loads, ``OMP_WAIT_POLICY``).
    Torch keeps its own pool for the large tensor work it is made for.

    Inputs:
    - blas_threads: threads for numpy's BLAS; None reads ``COURSE_BLAS_THREADS`` (default 1).

    Returns:
    - the number of BLAS threads now in use.
    """
    if blas_threads is None:
        raw = os.environ.get(THREADS_ENV_VAR, "").strip() or "1"
        try:
            blas_threads = int(raw)
        except ValueError:
            raise ValueError(f"{THREADS_ENV_VAR}={raw!r} is not a whole number of threads; "
                             f"unset it or set e.g. {THREADS_ENV_VAR}=2") from None
    if blas_threads < 1:
        raise ValueError(f"blas_threads must be at least 1, got {blas_threads}")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency of the course
        return blas_threads
    threadpool_limits(limits=blas_threads, user_api="blas")
    return blas_threads
DEVICE_CHOICES = ("cuda", "mps", "cpu")


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def _available(kind: str) -> bool:
    import torch

    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return _mps_available()
    return kind == "cpu"


def _resolve(choice: str, source: str) -> torch.device:
    """Turn a user choice such as "cuda", "cuda:1" or "cpu" into a device, or explain why not."""
    import torch

    name = choice.strip().lower()
    kind = name.split(":", 1)[0]
    if kind not in DEVICE_CHOICES:
        raise ValueError(
            f"{source}={choice!r} is not a known device; choose one of "
            f"{', '.join(DEVICE_CHOICES)} (optionally with an index, e.g. 'cuda:0')."
        )
    if not _available(kind):
        usable = [k for k in DEVICE_CHOICES if _available(k)]
        raise ValueError(
            f"{source}={choice!r} is not available on this machine; usable devices here: "
            f"{', '.join(usable)}. Pick one of those (or unset {DEVICE_ENV_VAR})."
        )
    try:
        dev = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"{source}={choice!r} is not a valid device string: {err}") from err
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(
            f"{source}={choice!r}: only {torch.cuda.device_count()} CUDA device(s) present; "
            f"use an index below {torch.cuda.device_count()}."
        )
    return dev


def device(prefer: str | None = None) -> torch.device:
    """Pick the device to compute on.

    Order: `prefer` if given, else the environment variable COURSE_DEVICE if set, else the
    best available of CUDA, Apple MPS and CPU.

    Inputs:
    - prefer: optional device name, one of "cuda", "mps", "cpu" (an index such as
      "cuda:1" is allowed).

    Returns:
    - a torch.device.

    Raises ValueError when the requested device is unknown or not available here.
    """
    import torch

    if prefer is not None:
        return _resolve(prefer, "prefer")
    env = os.environ.get(DEVICE_ENV_VAR, "").strip()
    if env:
        return _resolve(env, DEVICE_ENV_VAR)
    for kind in DEVICE_CHOICES:
        if _available(kind):
            return torch.device(kind)
    return torch.device("cpu")  # pragma: no cover - cpu is always available


def seed_everything(seed: int = 0) -> np.random.Generator:
    """Seed every random number generator a notebook may touch.

    Seeds Python's `random`, numpy's global generator and torch (CPU and, if present, all
    CUDA devices). Prefer the returned generator for new numpy code.

    Inputs:
    - seed: a non-negative integer.

    Returns:
    - rng: np.random.Generator seeded with `seed`.
    """
    import torch

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}; e.g. seed_everything(0).")
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}.")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    return np.random.default_rng(seed)


def describe_environment() -> str:
    """One line naming the Python, numpy and torch versions and the chosen device.

    Returns:
    - a string such as "Python 3.11.9 | numpy 2.1.0 | torch 2.5.0 | device cpu".
    """
    import torch

    dev = device()
    extra = ""
    if dev.type == "cuda":
        extra = f" ({torch.cuda.get_device_name(dev)})"
    return (
        f"Python {platform.python_version()} | numpy {np.__version__} | "
        f"torch {torch.__version__} | device {dev}{extra}"
    )
