"""Zero-shot classification: the confusion matrix of predicted against true classes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._style import SEQUENTIAL, as_array, go, number, titled_layout
from .alignment import truncate

__all__ = ["confusion_heatmap"]


def confusion_heatmap(counts: Any, class_names: Sequence[str] | None = None, normalise: bool = True) -> go.Figure:
    """Heatmap of a (C, C) confusion matrix: row = true class, column = predicted class.

    What to look at: a bright diagonal is a good classifier; bright cells off it show which
    classes are taken for which (for the world: the same shape with another motion, or the same
    motion with another shape). Each row is coloured by the fraction of its clips (``normalise``)
    and every cell's hover gives the count. ``fig.layout.meta`` holds the accuracy and the counts.

    Args:
        counts: (C, C) non-negative counts, e.g. ``gramviz.confusion_matrix(scores, labels)``.
        class_names: C names (default the indices).
        normalise: colour by the fraction of each true class's clips rather than by counts.

    Example:
        >>> confusion_heatmap([[3, 1], [0, 4]], ["ball", "cube"]).layout.meta["accuracy"]
        0.875
    """
    c = as_array(counts, "counts", ndim=2)
    if c.shape[0] != c.shape[1] or (c < 0).any() or c.sum() == 0:
        raise ValueError(f"counts must be a square matrix of non-negative counts, not all 0; got shape {c.shape}")
    names = [str(i) for i in range(len(c))] if class_names is None else [truncate(n, 28) for n in class_names]
    if len(names) != len(c):
        raise ValueError(f"{len(names)} class names for a {len(c)} x {len(c)} confusion matrix")
    totals = c.sum(1, keepdims=True)
    z = np.divide(c, totals, out=np.zeros_like(c), where=totals > 0) if normalise else c
    accuracy = float(np.trace(c) / c.sum())
    counts_text = np.vectorize(lambda x: f"{x:g}")(c)
    fig = go.Figure(go.Heatmap(
        z=z, x=names, y=names, colorscale=SEQUENTIAL, zmin=0, customdata=counts_text,
        colorbar={"title": {"text": "fraction of<br>the true class" if normalise else "clips"}},
        hovertemplate="true %{y}<br>predicted %{x}<br>%{customdata} clips (%{z:.2f})<extra></extra>",
    ))
    title = f"Zero-shot confusion matrix: accuracy {number(accuracy)} over {int(c.sum()):,} clips"
    subtitle = "row = true class, column = predicted; a bright diagonal is good, bright cells off it are the confusions"
    size = max(520, 140 + 26 * len(c))
    # no fixed width: the figure takes its column's (a notebook cell, a 600 px app column)
    fig.update_layout(**titled_layout(title, subtitle, margin={"l": 160, "r": 30, "b": 160}), height=size + 60,
                      meta={"accuracy": accuracy, "counts": c.tolist()})
    fig.update_yaxes(title="true class", autorange="reversed", tickfont={"size": 10})
    fig.update_xaxes(title="predicted class", tickangle=-50, tickfont={"size": 10})
    return fig
