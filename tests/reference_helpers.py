"""What the reference tests of the assignments share: float64 torch tensors for autograd,
one closeness check for numpy against torch, and the digits split the notebooks train on."""

from __future__ import annotations

import numpy as np
import torch


def t64(a, grad=True):
    """A float64 tensor of ``a`` (for autograd unless ``grad`` is False)."""
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def close(a, b, rtol=1e-10, atol=1e-12):
    """``a`` (numpy) equals ``b`` (numpy or a torch tensor, on any device) within the tolerances."""
    b = b.detach().cpu().numpy() if isinstance(b, torch.Tensor) else b
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def centred_digits():
    """scikit-learn's digits scaled to [0, 1], split 60/20/20 with seed 0 (as the notebooks do),
    each set minus the mean training image: X_train, y_train, X_val, y_val, X_test, y_test."""
    from course_utils.data import load_digits, train_val_test_split

    X, y = load_digits()
    X_train, y_train, X_val, y_val, X_test, y_test = train_val_test_split(
        X / 16, y, val_fraction=0.2, test_fraction=0.2, rng=np.random.default_rng(0))
    mean = X_train.mean(axis=0)
    return X_train - mean, y_train, X_val - mean, y_val, X_test - mean, y_test
