"""Drawing a small computational graph with its forward values and its gradients.

Used by 03_backprop to draw worked examples: every edge carries the value flowing forward
(above, green) and the gradient of the output with respect to that value flowing back
(below, red).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from .plots import _style

__all__ = ["plot_computational_graph"]


def plot_computational_graph(nodes: Mapping[str, tuple[float, float, str]],
                             edges: Sequence[tuple[str, str, float, float]],
                             title: str | None = None, figsize=(9, 4.2)) -> Figure:
    """Draw nodes as circles and edges as arrows labelled with value and gradient.

    Inputs:
    - nodes: name -> (x, y, text); the text is drawn in the circle (a variable name or a
      gate such as "*", "+", "max"). A name starting with "in:" is drawn without a circle.
    - edges: (source, destination, forward value, gradient) per edge.
    - title: optional title.

    Returns:
    - the Figure.
    """
    with _style():
        fig, ax = plt.subplots(figsize=figsize)
        for name, (x, y, text) in nodes.items():
            boxed = not name.startswith("in:")
            ax.text(x, y, text, ha="center", va="center", fontsize=13, zorder=3,
                    bbox=dict(boxstyle="circle,pad=0.35", fc="#f2f2f2", ec="0.3") if boxed else None)
        for src, dst, value, grad in edges:
            (x0, y0, _), (x1, y1, _) = nodes[src], nodes[dst]
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                        arrowprops=dict(arrowstyle="-|>", color="0.35", shrinkA=16, shrinkB=16, lw=1.2))
            xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
            ax.text(xm, ym + 0.12, f"{value:g}", color="tab:green", ha="center", va="bottom", fontsize=11)
            ax.text(xm, ym - 0.12, f"{grad:g}", color="tab:red", ha="center", va="top", fontsize=11)
        xs = [p[0] for p in nodes.values()]
        ys = [p[1] for p in nodes.values()]
        ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
        ax.set_ylim(min(ys) - 0.7, max(ys) + 0.7)
        ax.axis("off")
        ax.text(0.0, 0.0, "green: forward value   red: gradient of the output", transform=ax.transAxes,
                fontsize=9, color="0.3")
        if title:
            ax.set_title(title)
        fig.tight_layout()
    return fig
