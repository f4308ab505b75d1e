"""Interactive widgets for the notebooks: sliders that redraw a matplotlib figure.

Each function returns a widget; make it the last expression of a cell (or ``display`` it).
Figures are rendered to PNG and placed in an ``ipywidgets.Output``, so the widget works the
same with every matplotlib backend and its content can be inspected (``out.outputs``).
"""

from __future__ import annotations

import base64
import contextlib
import io
import traceback
from collections.abc import Callable, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .plots import _label_text, _style, plot_decision_boundary, to_image_batch, to_numpy

__all__ = ["decision_boundary_widget", "image_explorer", "interactive_plot"]


def _figure_output(fig: Figure) -> dict:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return {
        "output_type": "display_data",
        "data": {"image/png": base64.b64encode(buffer.getvalue()).decode("ascii"), "text/plain": repr(fig)},
        "metadata": {},
    }


def _render(draw: Callable[..., object], values: dict) -> tuple[dict, ...]:
    """Call draw(**values); return what it printed, the figures it made, or its error, as outputs."""
    before = set(plt.get_fignums())
    printed = io.StringIO()
    outputs = []
    with _style():
        canvas = plt.figure()  # current figure for draw functions that use plt.plot & co.
        try:
            with contextlib.redirect_stdout(printed):
                returned = draw(**values)
            figures = [plt.figure(n) for n in plt.get_fignums() if n not in before]
            if isinstance(returned, Figure) and returned not in figures:
                figures.append(returned)
            outputs += [_figure_output(f) for f in figures if f is not canvas or f.axes]
        except Exception as err:  # show the error in the widget instead of losing it in a log
            outputs.append(
                {
                    "output_type": "error",
                    "ename": type(err).__name__,
                    "evalue": str(err),
                    "traceback": traceback.format_exception(err),
                }
            )
        finally:
            for n in set(plt.get_fignums()) - before:
                plt.close(n)
    if printed.getvalue():
        outputs.insert(0, {"output_type": "stream", "name": "stdout", "text": printed.getvalue()})
    return tuple(outputs)


def _control(name: str, spec) -> widgets.ValueWidget:
    """A widget from a widget, a (min, max[, step]) tuple, a list of choices or a bool."""
    if isinstance(spec, widgets.ValueWidget):
        return spec
    common = {"description": name, "continuous_update": False}
    if isinstance(spec, bool):
        return widgets.Checkbox(value=spec, description=name)
    if isinstance(spec, tuple) and len(spec) in (2, 3) and all(isinstance(v, (int, float)) for v in spec):
        lo, hi = spec[0], spec[1]
        if all(isinstance(v, int) for v in spec):
            step = spec[2] if len(spec) == 3 else 1
            return widgets.IntSlider(
                min=lo, max=hi, step=step, value=lo + (hi - lo) // (2 * step) * step, **common
            )
        step = spec[2] if len(spec) == 3 else (hi - lo) / 100
        return widgets.FloatSlider(min=lo, max=hi, step=step, value=(lo + hi) / 2, **common)
    if isinstance(spec, (list, tuple)) and spec:
        return widgets.Dropdown(options=list(spec), description=name)
    raise TypeError(
        f"control {name}={spec!r} is not understood; pass an ipywidgets widget, a (min, max, step) "
        f"tuple, a list of choices or a bool, e.g. {name}=(0.0, 1.0, 0.1)."
    )


def interactive_plot(draw: Callable[..., object], **controls) -> widgets.VBox:
    """Redraw a figure whenever a control changes.

    Inputs:
    - draw: function called as draw(**values) that draws with matplotlib (into the current
      figure, a figure it creates, or one it returns).
    - controls: name -> ipywidgets widget, (min, max, step) tuple (an int tuple gives an
      IntSlider, otherwise a FloatSlider), list of choices (Dropdown) or bool (Checkbox).

    Returns:
    - VBox(children=(VBox of the controls, Output with the figure)).

    Example::

        interactive_plot(lambda lr: plt.plot(losses[lr]), lr=[1e-3, 1e-2, 1e-1])
    """
    if not controls:
        raise ValueError(
            "interactive_plot needs at least one control, e.g. interactive_plot(draw, k=(1, 20, 1))."
        )
    built = {name: _control(name, spec) for name, spec in controls.items()}
    target: list[widgets.Output] = []
    first: list[tuple[dict, ...]] = []

    def update(**values):
        outputs = _render(draw, values)
        if target:
            target[0].outputs = outputs
        else:  # interactive_output draws once before it returns its Output
            first.append(outputs)

    out = widgets.interactive_output(update, built)
    target.append(out)
    out.outputs = first[-1]
    return widgets.VBox([widgets.VBox(list(built.values())), out])


def decision_boundary_widget(
    make_predict: Callable[[object], Callable[[np.ndarray], np.ndarray]],
    X,
    y,
    values: Sequence,
    name: str = "k",
    description: str | None = None,
) -> widgets.VBox:
    """A slider over a hyperparameter that redraws the decision boundary.

    Inputs:
    - make_predict: function value -> predict, where predict maps points (M, 2) to labels
      (M,); called once per value (results are cached).
    - X: points, shape (N, 2).
    - y: integer labels, shape (N,).
    - values: the hyperparameter values to slide over, e.g. [1, 3, 5, 10].
    - name: name of the hyperparameter, shown in the title.
    - description: slider label (default: name).

    Returns:
    - VBox(children=(VBox with the slider, Output with the figure)).
    """
    values = list(values)
    if not values:
        raise ValueError("values is empty; pass the hyperparameter values to slide over, e.g. [1, 3, 5].")
    slider = widgets.SelectionSlider(
        options=values, value=values[0], description=description or name, continuous_update=False
    )
    cache: dict[int, Callable] = {}

    def draw(value):
        index = values.index(value)
        if index not in cache:
            cache[index] = make_predict(value)
        return plot_decision_boundary(cache[index], X, y, title=f"{name} = {value}")

    return interactive_plot(draw, value=slider)


def _statistics(image: np.ndarray) -> str:
    return (
        f"shape {image.shape}, dtype {image.dtype}, min {image.min():.4g}, max {image.max():.4g}, "
        f"mean {image.mean():.4g}, std {image.std():.4g}"
    )


def image_explorer(images, labels=None, class_names: Sequence[str] | None = None) -> widgets.VBox:
    """Browse images with a slider: the image, its label, a histogram and pixel statistics.

    Inputs:
    - images: shape (N, H, W), (N, H, W, 3) or (N, C, H, W); numpy array or tensor.
    - labels: optional, shape (N,).
    - class_names: optional names of the classes, indexed by label.

    Returns:
    - VBox(children=(VBox with the index slider, Output with the figure)); the statistics
      (shape, dtype, min, max, mean, std) are those of the raw values passed in.
    """
    raw = to_numpy(images)
    shown = to_image_batch(raw)
    if raw.ndim < 3 or len(raw) != len(shown):  # a single image was passed
        raw = raw[None]
    if labels is not None:
        labels = to_numpy(labels).reshape(-1)
        if len(labels) != len(shown):
            raise ValueError(f"got {len(shown)} images but {len(labels)} labels; pass one label per image.")
    slider = widgets.IntSlider(
        min=0, max=len(shown) - 1, value=0, description="index", continuous_update=False
    )

    def draw(index):
        fig, (ax_image, ax_hist) = plt.subplots(1, 2, figsize=(8, 3.5), width_ratios=(1, 1.3))
        image = shown[index]
        if image.ndim == 2:
            ax_image.imshow(
                image, cmap="gray", **({"vmin": 0, "vmax": 255} if image.dtype == np.uint8 else {})
            )
        else:
            ax_image.imshow(image)
        ax_image.axis("off")
        label = "" if labels is None else f": {_label_text(labels[index], class_names)}"
        ax_image.set_title(f"image {index}{label}")
        pixels = np.asarray(raw[index], dtype=np.float64)
        if image.ndim == 3 and pixels.ndim == 3:
            channels = pixels if pixels.shape[-1] == image.shape[-1] else np.moveaxis(pixels, 0, -1)
            for c, colour in zip(
                range(channels.shape[-1]), ("tab:red", "tab:green", "tab:blue", "0.5"), strict=False
            ):
                ax_hist.hist(channels[..., c].ravel(), bins=32, color=colour, alpha=0.5)
        else:
            ax_hist.hist(pixels.ravel(), bins=32, color="0.4")
        ax_hist.set_title("pixel values")
        ax_hist.set_xlabel(_statistics(raw[index]), fontsize=8)
        fig.tight_layout()
        return fig

    return interactive_plot(draw, index=slider)
