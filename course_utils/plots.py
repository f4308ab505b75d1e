"""Plots the notebooks share: image grids, training curves, decision boundaries,
cross-validation results and timings.

Every function returns its matplotlib Figure (call ``plt.show()`` or let Jupyter show it).
Figures are drawn with the course style: an opaque white background and dark text, so
they stay readable in both the light and the dark JupyterLab themes.

Dimension letters: N images, H, W height/width, C channels (or classes), M grid points.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = [
    "COURSE_STYLE",
    "plot_cross_validation",
    "plot_decision_boundary",
    "plot_history",
    "plot_timings",
    "show_images",
    "to_image_batch",
    "to_numpy",
    "use_course_style",
]

# Opaque white backgrounds: JupyterLab's inline backend defaults to a transparent figure,
# which turns black labels invisible in the dark theme.
COURSE_STYLE = {
    "figure.facecolor": "white",
    "figure.edgecolor": "white",
    "savefig.facecolor": "white",
    "savefig.edgecolor": "white",
    "axes.facecolor": "white",
    "axes.edgecolor": "0.15",
    "axes.labelcolor": "0.15",
    "text.color": "0.15",
    "xtick.color": "0.15",
    "ytick.color": "0.15",
    "axes.grid": False,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "figure.dpi": 100,
    "image.interpolation": "nearest",
}


def use_course_style() -> None:
    """Make every later figure use the course style (white background, dark text)."""
    mpl.rcParams.update(COURSE_STYLE)


def _style():
    # Resolve the backend before entering the style context: matplotlib picks it
    # lazily, and leaving the context would undo a choice made inside it (in
    # Jupyter, later figures would then no longer be shown).
    plt.get_backend()
    plt.switch_backend(mpl.rcParams["backend"])
    return mpl.style.context(COURSE_STYLE)


def to_numpy(x) -> np.ndarray:
    """numpy copy of an array, list or torch tensor (detached and moved to the CPU)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        x = x.numpy()
    return np.asarray(x)


def to_image_batch(images) -> np.ndarray:
    """Bring images into the layout matplotlib shows.

    Inputs:
    - images: shape (N, H, W) grey, (N, H, W, 3|4) colour, (N, C, H, W) with C in
      {1, 3} (torch's layout), or one image (H, W) / (H, W, 3); numpy array, list or
      torch tensor.

    Returns:
    - array of shape (N, H, W) or (N, H, W, 3|4); uint8 stays uint8, other dtypes
      become float64 scaled to [0, 1] per image when they leave that range.
    """
    x = to_numpy(images)
    if x.dtype == bool:
        x = x.astype(np.uint8) * 255
    if x.ndim == 2 or (x.ndim == 3 and x.shape[-1] in (3, 4) and x.shape[0] not in (1, 3)):
        x = x[None]  # a single image
    if x.ndim == 4 and x.shape[1] in (1, 3) and x.shape[-1] not in (1, 3, 4):
        x = x.transpose(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] not in (3, 4)):
        raise ValueError(
            f"images of shape {x.shape} cannot be shown; expected (N, H, W), (N, H, W, 3) or "
            f"(N, C, H, W) with C = 1 or 3. Reshape flat rows first, e.g. X.reshape(-1, 28, 28)."
        )
    if x.dtype == np.uint8:
        return x
    x = x.astype(np.float64)
    lo = x.min(axis=tuple(range(1, x.ndim)), keepdims=True)
    hi = x.max(axis=tuple(range(1, x.ndim)), keepdims=True)
    if x.ndim == 4 and (lo.min() < 0 or hi.max() > 1):  # colour needs [0, 1]: rescale each image
        x = (x - lo) / np.where(hi > lo, hi - lo, 1)
    return x


def _label_text(label, class_names: Sequence[str] | None) -> str:
    label = label.item() if hasattr(label, "item") else label
    if class_names is not None and isinstance(label, (int, np.integer)):
        return str(class_names[int(label)])
    return str(label)


def show_images(
    images,
    labels=None,
    class_names: Sequence[str] | None = None,
    ncols: int = 8,
    title: str | None = None,
    cmap: str | None = None,
    *,
    max_images: int = 100,
) -> Figure:
    """Show images in a grid, each titled with its label.

    Inputs:
    - images: shape (N, H, W), (N, H, W, 3) uint8 or float, or (N, C, H, W) tensors.
    - labels: optional, shape (N,); ints (looked up in class_names) or strings.
    - class_names: optional names of the classes, indexed by label.
    - ncols: images per row.
    - title: optional title above the grid.
    - cmap: colour map for grey images (default "gray").
    - max_images: show at most this many (the first ones).

    Returns:
    - the Figure.
    """
    x = to_image_batch(images)[:max_images]
    n = len(x)
    if labels is not None:
        labels = to_numpy(labels).reshape(-1)[:n]
        if len(labels) != n:
            raise ValueError(f"got {n} images but {len(labels)} labels; pass one label per image.")
    ncols = max(1, min(ncols, n))
    nrows = max(1, -(-n // ncols))
    grey_range = {"vmin": 0, "vmax": 255} if x.dtype == np.uint8 else {}
    with _style():
        fig, axes = plt.subplots(
            nrows, ncols, figsize=(1.4 * ncols, 1.5 * nrows + (0.4 if title else 0)), squeeze=False
        )
        for i, ax in enumerate(axes.flat):
            ax.axis("off")
            if i >= n:
                continue
            if x.ndim == 3:
                ax.imshow(x[i], cmap=cmap or "gray", **grey_range)
            else:
                ax.imshow(x[i])
            if labels is not None:
                ax.set_title(_label_text(labels[i], class_names), fontsize=9)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
    return fig


def plot_history(
    history: Mapping[str, Sequence[float]],
    xlabel: str = "epoch",
    title: str | None = None,
    logy: bool = False,
) -> Figure:
    """Plot training curves: losses on the left, accuracies (keys containing "acc") on the right.

    Inputs:
    - history: name -> values, e.g. {"train_loss": [...], "val_loss": [...], "val_acc": [...]};
      each curve is plotted against 1, 2, ..., len(values).
    - xlabel: label of the x axis ("epoch", "iteration", ...).
    - title: optional title.
    - logy: logarithmic y axis for the losses.

    Returns:
    - the Figure (one subplot, or two when there are accuracy curves).
    """
    if not history:
        raise ValueError("history is empty; pass e.g. {'train_loss': [...], 'val_acc': [...]}.")
    acc_keys = [k for k in history if "acc" in k.lower()]
    other_keys = [k for k in history if k not in acc_keys]
    groups = [g for g in (other_keys, acc_keys) if g]
    with _style():
        fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 3.8), squeeze=False)
        for ax, keys in zip(axes[0], groups, strict=True):
            for key in keys:
                values = to_numpy(history[key]).astype(np.float64).reshape(-1)
                steps = np.arange(1, len(values) + 1)
                ax.plot(steps, values, marker="o" if len(values) <= 30 else None, ms=3, label=key)
            ax.set_xlabel(xlabel)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel("accuracy" if keys is acc_keys else "loss")
            if logy and keys is not acc_keys:
                ax.set_yscale("log")
            ax.grid(True)
            ax.legend()
        if title:
            fig.suptitle(title)
        fig.tight_layout()
    return fig


def plot_decision_boundary(
    predict: Callable[[np.ndarray], np.ndarray],
    X,
    y,
    ax=None,
    resolution: int = 200,
    title: str | None = None,
) -> Figure:
    """Colour the plane by the predicted class and scatter the data on top.

    Inputs:
    - predict: function mapping points, shape (M, 2), to labels, shape (M,) (scores of
      shape (M, C) are turned into labels with argmax).
    - X: points, shape (N, 2).
    - y: integer labels, shape (N,).
    - ax: optional Axes to draw into; a new figure otherwise.
    - resolution: grid points per axis (M = resolution ** 2).
    - title: optional title.

    Returns:
    - the Figure.
    """
    X, y = to_numpy(X).astype(np.float64), to_numpy(y).astype(np.int64).reshape(-1)
    if X.ndim != 2 or X.shape[1] != 2 or len(X) != len(y):
        raise ValueError(f"expected X of shape (N, 2) and y of shape (N,), got {X.shape} and {y.shape}.")
    pad = 0.1 * (X.max(axis=0) - X.min(axis=0)) + 1e-3
    lo, hi = X.min(axis=0) - pad, X.max(axis=0) + pad
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
    grid = np.c_[xx.ravel(), yy.ravel()]  # (M, 2)
    Z = to_numpy(predict(grid))
    if Z.ndim == 2:
        Z = Z.argmax(axis=1)
    if Z.shape != (len(grid),):
        raise ValueError(
            f"predict returned shape {Z.shape} for {len(grid)} points; it must return "
            f"one label per point, shape ({len(grid)},)."
        )
    Z = Z.astype(np.int64).reshape(xx.shape)  # (resolution, resolution)
    num_classes = int(max(y.max(), Z.max())) + 1
    colours = (
        ListedColormap(plt.get_cmap("tab10").colors[: max(num_classes, 1)])
        if num_classes <= 10
        else plt.get_cmap("tab20", num_classes)
    )
    with _style():
        if ax is None:
            fig, ax = plt.subplots(figsize=(5, 4.5))
        fig = ax.figure
        ax.contourf(xx, yy, Z, levels=np.arange(num_classes + 1) - 0.5, cmap=colours, alpha=0.3)
        ax.scatter(
            X[:, 0],
            X[:, 1],
            c=y,
            cmap=colours,
            vmin=-0.5,
            vmax=num_classes - 0.5,
            s=18,
            edgecolors="0.15",
            linewidths=0.5,
        )
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        if title:
            ax.set_title(title)
    return fig


def plot_cross_validation(
    results: Mapping[float, Sequence[float]],
    xlabel: str = "k",
    ylabel: str = "accuracy",
    *,
    higher_is_better: bool = True,
    logx: bool | None = None,
) -> Figure:
    """Plot every fold's score, the mean with a standard-deviation bar, and the best setting.

    Inputs:
    - results: hyperparameter value -> scores of the folds, e.g. {1: [0.26, 0.25, ...], 3: [...]}.
    - xlabel, ylabel: axis labels.
    - higher_is_better: the best value has the highest mean (else the lowest, for losses).
    - logx: logarithmic x axis; by default when the values span more than a factor 100.

    Returns:
    - the Figure.
    """
    if not results:
        raise ValueError("results is empty; pass {value: [score of fold 1, fold 2, ...], ...}.")
    keys = sorted(results)
    scores = [to_numpy(results[k]).astype(np.float64).reshape(-1) for k in keys]
    means = np.array([s.mean() for s in scores])
    stds = np.array([s.std() for s in scores])
    best = int(np.argmax(means) if higher_is_better else np.argmin(means))
    xs = np.asarray(keys, dtype=np.float64)
    if logx is None:
        logx = bool(xs.min() > 0 and xs.max() / xs.min() > 100)
    with _style():
        fig, ax = plt.subplots(figsize=(6, 4))
        for x, s in zip(xs, scores, strict=True):
            ax.scatter(np.full(len(s), x), s, color="tab:blue", alpha=0.5, s=14)
        ax.errorbar(xs, means, yerr=stds, color="tab:orange", capsize=3, marker="o", ms=4, label="mean ± std")
        ax.scatter(
            [xs[best]],
            [means[best]],
            marker="*",
            s=250,
            color="tab:red",
            zorder=3,
            label=f"best {xlabel} = {keys[best]:g} ({means[best]:.3g})",
        )
        if logx:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(f"Cross-validation on {xlabel}")
        ax.grid(True)
        ax.legend()
        fig.tight_layout()
    return fig


def _format_seconds(s: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s * 1e9:.3g} ns"


def plot_timings(
    timings: Mapping[str, Sequence[float]],
    title: str | None = None,
    *,
    logy: bool = False,
) -> Figure:
    """Bar chart of the median run time of each implementation, with min-max whiskers.

    Inputs:
    - timings: name -> measured times in seconds, e.g. {"two loops": [...], "no loops": [...]}.
    - title: optional title.
    - logy: logarithmic time axis (for times that differ by orders of magnitude).

    Returns:
    - the Figure; each bar is labelled with its median and its speed-up over the slowest.
    """
    if not timings:
        raise ValueError("timings is empty; pass {name: [seconds, ...], ...}.")
    names = list(timings)
    runs = [to_numpy(timings[n]).astype(np.float64).reshape(-1) for n in names]
    if any(r.size == 0 for r in runs):
        raise ValueError("every entry of timings needs at least one measurement.")
    medians = np.array([np.median(r) for r in runs])
    low = medians - np.array([r.min() for r in runs])
    high = np.array([r.max() for r in runs]) - medians
    slowest = medians.max()
    with _style():
        fig, ax = plt.subplots(figsize=(max(4, 1.4 * len(names) + 1), 4))
        bars = ax.bar(names, medians, yerr=[low, high], capsize=4, color=plt.get_cmap("tab10").colors)
        labels = [
            f"{_format_seconds(m)}\n×{slowest / m:.3g}" if m > 0 else _format_seconds(m) for m in medians
        ]
        ax.bar_label(bars, labels=labels, fontsize=8, padding=2)
        if logy:
            ax.set_yscale("log")
        ax.set_ylabel("median time (s)")
        ax.margins(y=0.2)
        if title:
            ax.set_title(title)
        fig.tight_layout()
    return fig
