"""Stand-ins for MNIST and CIFAR-10 with the real loaders' shapes, dtypes and value ranges.

The real files cannot be downloaded where the tests run, so ``install()`` replaces
``course_utils.data.load_mnist`` and ``load_cifar10`` (in the current process) with
functions that build images of the same format from scikit-learn's 8x8 digits: enlarged,
shifted, noisy (and, for CIFAR-10, tinted in colour), with the digits' labels, and at most ``MAX_IMAGES`` of them. Their
contents are easier than the real data sets, so a notebook's accuracy on them says
nothing about the real ones; what they check is that every cell of a notebook's
``USE_FULL_DATASET = True`` path runs on data of the real format. The loaders themselves
are tested against a local HTTP server in test_data.py.
"""

from __future__ import annotations

import numpy as np


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images, d.target.astype(np.int64)  # (1797, 8, 8) in 0..16, (1797,)


def _enlarge(images: np.ndarray, factor: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """(N, 8, 8) in 0..16 -> (N, size, size) in 0..1, each shifted by up to 2 pixels, with noise."""
    big = np.kron(images / 16.0, np.ones((factor, factor)))  # (N, 8f, 8f)
    pad = (size - big.shape[1]) // 2
    out = np.zeros((len(images), size, size))
    out[:, pad:pad + big.shape[1], pad:pad + big.shape[2]] = big
    shifts = rng.integers(-2, 3, size=(len(images), 2))
    for i, (dy, dx) in enumerate(shifts):
        out[i] = np.roll(out[i], (dy, dx), axis=(0, 1))
    return np.clip(out + rng.normal(0, 0.08, out.shape), 0, 1)


def _sample(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    images, labels = _digits()
    idx = rng.integers(0, len(images), size=n)
    return images[idx], labels[idx]


def _count(requested: int | None, full: int) -> int:
    """How many images to make: what was asked for (the full set by default), at most
    ``MAX_IMAGES`` (fewer images, same format: the tests check that cells run, not accuracy)."""
    return min(full if requested is None else requested, MAX_IMAGES)


MAX_IMAGES = 3000


def load_mnist(kind: str = "mnist", **_ignored):
    """Same contract as course_utils.data.load_mnist: (N, 28, 28) uint8 images, N at most MAX_IMAGES."""
    rng = np.random.default_rng(0)
    out = []
    for n in (_count(None, 60000), _count(None, 10000)):
        images, labels = _sample(n, rng)
        out += [(_enlarge(images, 3, 28, rng) * 255).astype(np.uint8), labels]
    return tuple(out)


def load_cifar10(root=None, *, num_train: int | None = None, num_test: int | None = None, **_ignored):
    """Same contract as course_utils.data.load_cifar10: (N, 32, 32, 3) uint8 and int64 labels,
    N at most MAX_IMAGES."""
    rng = np.random.default_rng(1)
    tints = rng.uniform(0.3, 1.0, size=(10, 3))
    out = []
    for n in (_count(num_train, 50000), _count(num_test, 10000)):
        images, labels = _sample(n, rng)
        grey = _enlarge(images, 4, 32, rng)  # (n, 32, 32)
        background = rng.uniform(0, 0.5, size=(n, 1, 1, 3))
        colour = background * (1 - grey[..., None]) + grey[..., None] * tints[labels][:, None, None, :]
        out += [(np.clip(colour, 0, 1) * 255).astype(np.uint8), labels]
    return tuple(out)


def install() -> None:
    """Replace the real loaders in course_utils.data (before a notebook imports them)."""
    import course_utils.data as data

    data.load_mnist = load_mnist
    data.load_cifar10 = load_cifar10
