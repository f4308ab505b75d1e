"""Tests for course_utils.plots and course_utils.widgets, drawn with the Agg backend."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from course_utils.plots import (  # noqa: E402
    plot_cross_validation,
    plot_decision_boundary,
    plot_history,
    plot_timings,
    show_images,
    to_image_batch,
    use_course_style,
)
from course_utils.widgets import decision_boundary_widget, image_explorer, interactive_plot  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _readable(fig: Figure) -> None:
    """Opaque white background, so the figure reads well in dark themes too; and it renders."""
    assert isinstance(fig, Figure)
    assert to_rgba(fig.get_facecolor()) == (1.0, 1.0, 1.0, 1.0)
    fig.canvas.draw()


def _png(widget) -> str:
    out = widget.children[-1]
    pngs = [o["data"]["image/png"] for o in out.outputs if o["output_type"] == "display_data"]
    assert len(pngs) == 1, out.outputs
    return pngs[0]


def _slider(widget):
    return widget.children[0].children[0]


# ----------------------------------------------------------------------------- plots


def test_use_course_style_sets_opaque_background():
    with matplotlib.rc_context():
        plt.rcParams["figure.facecolor"] = (1, 1, 1, 0)  # what Jupyter's inline backend sets
        use_course_style()
        assert to_rgba(plt.figure().get_facecolor()) == (1.0, 1.0, 1.0, 1.0)


@pytest.mark.parametrize(
    ("images", "shape"),
    [
        (np.random.default_rng(0).random((5, 8, 8)), (5, 8, 8)),
        (np.zeros((3, 8, 8, 3), dtype=np.uint8), (3, 8, 8, 3)),
        (torch.rand(4, 3, 8, 8), (4, 8, 8, 3)),
        (torch.rand(4, 1, 8, 8), (4, 8, 8)),
        (np.zeros((8, 8, 3), dtype=np.uint8), (1, 8, 8, 3)),
        (np.random.default_rng(0).normal(size=(2, 8, 8, 3)), (2, 8, 8, 3)),
    ],
)
def test_to_image_batch_layouts(images, shape):
    batch = to_image_batch(images)
    assert batch.shape == shape
    if batch.dtype != np.uint8 and batch.ndim == 4:
        assert 0 <= batch.min() and batch.max() <= 1


def test_to_image_batch_rejects_flat_rows():
    with pytest.raises(ValueError, match="reshape"):
        to_image_batch(np.zeros((5, 64, 2, 2, 2)))


def test_show_images_grid_and_labels():
    images = np.random.default_rng(0).integers(0, 255, size=(10, 8, 8, 3), dtype=np.uint8)
    fig = show_images(
        images, labels=np.arange(10) % 3, class_names=["cat", "dog", "frog"], ncols=4, title="t"
    )
    _readable(fig)
    assert len(fig.axes) == 12  # 3 rows of 4
    assert [ax.get_title() for ax in fig.axes[:3]] == ["cat", "dog", "frog"]
    assert len(fig.axes[0].images) == 1 and len(fig.axes[11].images) == 0


def test_show_images_torch_and_label_mismatch():
    _readable(show_images(torch.rand(3, 3, 8, 8), labels=torch.tensor([0, 1, 2])))
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        show_images(np.zeros((3, 8, 8)), labels=[0, 1])


def test_plot_history_puts_accuracy_on_its_own_axes():
    fig = plot_history(
        {"train_loss": [2.0, 1.0, 0.5], "val_loss": [2.1, 1.2, 0.9], "train_acc": [0.3, 0.6, 0.8]},
        logy=True,
        title="run",
    )
    _readable(fig)
    loss_ax, acc_ax = fig.axes
    assert [line.get_label() for line in loss_ax.lines] == ["train_loss", "val_loss"]
    assert [line.get_label() for line in acc_ax.lines] == ["train_acc"]
    assert loss_ax.get_yscale() == "log" and acc_ax.get_yscale() == "linear"
    assert len(plot_history({"loss": np.linspace(1, 0, 50)}).axes) == 1


def test_plot_decision_boundary():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = (X[:, 0] > 0).astype(int)
    fig = plot_decision_boundary(lambda P: (P[:, 0] > 0).astype(int), X, y, resolution=50, title="linear")
    _readable(fig)
    assert fig.axes[0].get_title() == "linear"
    fig, ax = plt.subplots()
    scores = lambda P: np.c_[-P[:, 0], P[:, 0]]  # noqa: E731 - (M, C) scores are argmaxed
    assert plot_decision_boundary(scores, X, y, ax=ax, resolution=20) is fig
    with pytest.raises(ValueError, match="one label per point"):
        plot_decision_boundary(lambda P: np.zeros(3), X, y, resolution=10)


def test_plot_cross_validation_marks_the_best_value():
    results = {1: [0.2, 0.3, 0.25], 5: [0.3, 0.32, 0.28], 10: [0.26, 0.27, 0.29]}
    fig = plot_cross_validation(results)
    _readable(fig)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert any("best k = 5" in label for label in labels)
    fig = plot_cross_validation(
        {1e-4: [1.0, 1.2], 1e-1: [0.5, 0.6]}, xlabel="lr", ylabel="loss", higher_is_better=False
    )
    assert fig.axes[0].get_xscale() == "log"
    assert any("best lr = 0.1" in label for label in fig.axes[0].get_legend_handles_labels()[1])


def test_plot_timings_shows_medians():
    fig = plot_timings({"two loops": [1.0, 1.2, 3.0], "no loops": [0.01, 0.011, 0.02]}, title="t", logy=True)
    _readable(fig)
    ax = fig.axes[0]
    heights = [patch.get_height() for patch in ax.patches]
    assert heights == pytest.approx([1.2, 0.011])
    assert ax.get_yscale() == "log"
    texts = [t.get_text() for t in ax.texts]
    assert any("1.2 s" in t for t in texts) and any("11 ms" in t and "×109" in t for t in texts)


# ----------------------------------------------------------------------------- widgets


def test_interactive_plot_redraws_on_change():
    calls = []

    def draw(a, n, kind):
        calls.append((a, n, kind))
        plt.plot(np.arange(n), a * np.arange(n), kind)

    widget = interactive_plot(draw, a=(0.0, 1.0, 0.1), n=(2, 10), kind=["-", "o"])
    a_slider, n_slider, dropdown = widget.children[0].children
    assert calls == [(0.5, 6, "-")]
    first = _png(widget)
    a_slider.value = 0.9
    assert calls[-1] == (0.9, 6, "-") and _png(widget) != first
    n_slider.value = 3
    dropdown.value = "o"
    assert len(calls) == 4
    assert plt.get_fignums() == []  # figures are closed after rendering


def test_interactive_plot_shows_prints_and_errors():
    widget = interactive_plot(lambda x: print(1 / x), x=[1, 0])
    out = widget.children[-1]
    assert out.outputs == ({"output_type": "stream", "name": "stdout", "text": "1.0\n"},)
    _slider(widget).value = 0
    assert out.outputs[0]["output_type"] == "error" and out.outputs[0]["ename"] == "ZeroDivisionError"


def test_interactive_plot_rejects_unknown_controls():
    with pytest.raises(TypeError, match="not understood"):
        interactive_plot(lambda x: None, x="text")


def test_decision_boundary_widget_caches_models():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2))
    y = (X[:, 1] > 0).astype(int)
    made = []

    def make_predict(threshold):
        made.append(threshold)
        return lambda P: (P[:, 1] > threshold).astype(int)

    widget = decision_boundary_widget(make_predict, X, y, [-1.0, 0.0, 1.0], name="threshold")
    first = _png(widget)
    _slider(widget).value = 1.0
    assert _png(widget) != first
    _slider(widget).value = -1.0
    assert _png(widget) == first
    assert made == [-1.0, 1.0]


def test_image_explorer_changes_image():
    images = np.random.default_rng(0).integers(0, 255, size=(4, 8, 8, 3), dtype=np.uint8)
    widget = image_explorer(images, labels=[0, 1, 2, 3], class_names=list("abcd"))
    slider = _slider(widget)
    assert (slider.min, slider.max) == (0, 3)
    first = _png(widget)
    slider.value = 2
    assert _png(widget) != first
    image_explorer(torch.rand(2, 1, 8, 8))
    image_explorer(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="labels"):
        image_explorer(images, labels=[0])


def test_course_plots_do_not_hide_later_figures_in_a_kernel(monkeypatch):
    """A figure drawn with the course style first must not stop later plain
    matplotlib figures from being shown in Jupyter."""
    import nbformat
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel picks Jupyter's inline backend
    nb = new_notebook(cells=[
        new_code_cell("from course_utils.plots import plot_timings\nfig = plot_timings({'a': [1.0, 2.0]})"),
        new_code_cell("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])"),
    ])
    NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    assert any(o.output_type == "display_data" and "image/png" in o.data for o in nb.cells[1].outputs)
    assert nbformat.validate(nb) is None
