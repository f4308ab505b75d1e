"""What the reference tests of the assignments share: float64 torch tensors for autograd,
one closeness check for numpy against torch, the digits split the notebooks train on, and a
runner for a notebook's experiment cells."""

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


def run_notebook_cells(notebook, markers, monkeypatch):
    """Execute ``notebook``'s setup cells, answer cells and the cells containing one of ``markers``
    (in notebook order), in full mode (not quick mode); returns the namespace."""
    import matplotlib
    import nbformat

    matplotlib.use("Agg")
    monkeypatch.delenv("COURSE_QUICK", raising=False)
    nb = nbformat.read(notebook, as_version=4)
    ns: dict = {"__name__": "__main__"}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader", {})
        wanted = (meta.get("grade_id", "").startswith("setup") or (meta.get("solution") and not meta.get("grade"))
                  or "USE_FULL_DATASET = False" in cell.source or any(m in cell.source for m in markers))
        if wanted:
            src = "\n".join(line for line in cell.source.splitlines() if not line.startswith("%"))
            exec(compile(src, "<notebook cell>", "exec"), ns)
    return ns
