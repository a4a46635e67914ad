"""How well matching tuples align: the score matrix, positives versus negatives, base versus height.

Every function takes an anchor (N, D) (e.g. text) and the other modalities, each (N, D), row j
of each belonging to candidate j, so that the matching (positive) tuples are the diagonal of the
anchor x candidate matrix and the off-diagonal pairs are the negatives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..gram import base_height_matrix
from ..scores import get_measure, score_matrix
from ._style import NEGATIVE, POSITIVE, SEQUENTIAL, as_array, base_layout, figure, number, title_layout

__all__ = ["volume_heatmap", "positives_vs_negatives", "base_vs_height", "roc_auc"]

def as_embeddings(anchor: Any, others: Sequence[Any], what: str, square: bool = False) -> list[torch.Tensor]:
    """float64 tensors of the anchor and the other modalities, with clear errors for bad input."""
    if len(others) < 1:
        raise ValueError(f"{what} needs an anchor and at least one other modality")
    arrays = [as_array(x, "anchor" if i == 0 else f"others[{i - 1}]", ndim=2) for i, x in enumerate([anchor, *others])]
    if len({a.shape[1] for a in arrays}) > 1:
        raise ValueError(f"{what}: embedding dimensions differ: {[a.shape for a in arrays]}")
    if len({a.shape[0] for a in arrays[1:]}) > 1:
        raise ValueError(f"{what}: the other modalities must have the same number of rows: {[a.shape for a in arrays]}")
    if square and arrays[0].shape[0] != arrays[1].shape[0]:
        raise ValueError(
            f"{what}: anchor i must match candidate i, so the anchor and the others need the same "
            f"number of rows; got {arrays[0].shape[0]} and {arrays[1].shape[0]}"
        )
    if square and arrays[0].shape[0] < 2:
        raise ValueError(f"{what}: needs at least 2 tuples (1 gives no negatives)")
    return [torch.from_numpy(a) for a in arrays]


def truncate(text: Any, n: int = 60) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def roc_auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """ROC AUC of positives against negatives, higher = positive: P(pos > neg) + P(pos = neg) / 2.

    The Mann-Whitney statistic with tied values counted half, which is exactly what
    ``sklearn.metrics.roc_auc_score`` returns for the same scores.

    Example:
        >>> roc_auc(np.array([0.9, 0.5]), np.array([0.5, 0.1]))
        0.875
    """
    from scipy.stats import rankdata

    pos, neg = np.ravel(positives), np.ravel(negatives)
    if pos.size == 0 or neg.size == 0:
        raise ValueError("roc_auc needs at least one positive and one negative")
    ranks = rankdata(np.concatenate([pos, neg]))  # average ranks for ties
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2
    return float(u / (pos.size * neg.size))


def positive_mask(positives: Any, shape: tuple[int, int]) -> np.ndarray:
    """Boolean (N, M) mask of matching pairs: the diagonal when square and ``positives`` is None."""
    n, m = shape
    if positives is None:
        return np.eye(n, m, dtype=bool) if n == m else np.zeros(shape, dtype=bool)
    p = positives.detach().cpu().numpy() if hasattr(positives, "detach") else np.asarray(positives)
    if p.dtype == bool:
        if p.shape != shape:
            raise ValueError(f"positives: boolean matrix shape {p.shape} != matrix shape {shape}")
        return p
    if p.ndim != 1 or p.shape[0] != n or not np.issubdtype(p.dtype, np.integer):
        raise ValueError(f"positives must be a boolean {shape} matrix or {n} integer column indices, got {p.shape} {p.dtype}")
    if p.min() < 0 or p.max() >= m:
        raise ValueError(f"positives: column indices must lie in [0, {m})")
    mask = np.zeros(shape, dtype=bool)
    mask[np.arange(n), p] = True
    return mask


def _tick_labels(labels: Sequence[Any] | None, count: int, name: str) -> list[str]:
    if labels is None:
        return [str(i) for i in range(count)]
    if len(labels) != count:
        raise ValueError(f"{name} has {len(labels)} labels for {count} rows/columns")
    return [truncate(x) for x in labels]


def volume_heatmap(
    matrix: Any,
    row_labels: Sequence[Any] | None = None,
    col_labels: Sequence[Any] | None = None,
    positives: Any = None,
    title: str | None = None,
    measure: str = "volume",
) -> go.Figure:
    """Heatmap of anchor x candidate volumes (or any measure's scores), matching pairs outlined.

    The cells are exactly ``matrix``; brighter always means more aligned (the scale is reversed for
    volume and triangle, where lower is better).

    Args:
        matrix: (N, M) tensor or array, e.g. ``gramviz.volume_matrix(t, v, a)``.
        row_labels, col_labels: ids or captions shown on hover (truncated) and as ticks when few.
        positives: matching pairs: a boolean (N, M) matrix or N column indices; default the
            diagonal when N == M (none otherwise).
        title: figure title; a default says what to look at.
        measure: what the values are, one of ``gramviz.MEASURES`` (for the colour bar).

    Example:
        >>> volume_heatmap(np.array([[0.1, 0.9], [0.8, 0.2]])).data[0].type
        'heatmap'
    """
    spec = get_measure(measure)
    z = as_array(matrix, "matrix", ndim=2)
    n, m = z.shape
    mask = positive_mask(positives, (n, m))
    rows, cols = _tick_labels(row_labels, n, "row_labels"), _tick_labels(col_labels, m, "col_labels")
    hover = np.array([[f"{rows[i]}<br>{cols[j]}" for j in range(m)] for i in range(n)], dtype=object)
    fig = figure("")
    fig.update_layout(**title_layout(title) if title else title_layout(
        f"{spec.title} of every anchor with every candidate",
        "matching pairs (outlined) should stand out: brighter = more aligned"))
    fig.add_trace(go.Heatmap(
        z=z, colorscale=SEQUENTIAL, reversescale=spec.is_size, customdata=hover,
        hovertemplate="anchor %{y}: %{customdata}<br>value %{z:.4f}<extra></extra>",
        colorbar={"title": {"text": spec.axis_title().replace(" (", "<br>("), "side": "right"}},
    ))
    pi, pj = np.nonzero(mask)
    marker = {"symbol": "square-open", "size": max(5, min(20, 260 // max(n, m))), "color": POSITIVE, "line": {"width": 2}}
    trace = go.Scattergl if pi.size > 1000 else go.Scatter
    fig.add_trace(trace(x=pj, y=pi, mode="markers", marker=marker, name="matching pair", hoverinfo="skip"))
    axis = {"showgrid": False, "zeroline": False}
    fig.update_xaxes(title="candidate", **axis, **_ticks(cols, most=10, vertical=col_labels is not None))
    fig.update_yaxes(title="anchor", autorange="reversed", **axis, **_ticks(rows, most=12))
    # the key at the figure's foot, under the axis title at any height
    fig.update_layout(showlegend=True, margin={"b": 80}, meta={"positives": np.argwhere(mask).tolist()},
                      legend={"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom", "x": 1, "xanchor": "right"})
    return fig


def _ticks(labels: list[str], most: int, vertical: bool = False) -> dict[str, Any]:
    """At most ``most`` tick labels, evenly spaced (every row/column on hover); plotly's own
    numeric ticks above 30 rows/columns. Long labels on x stand vertical so they cannot collide."""
    if len(labels) > 30:
        return {}
    shown = range(0, len(labels), -(-len(labels) // most))
    angle = {"tickangle": -90} if vertical else {}
    return {"tickvals": list(shown), "ticktext": [truncate(labels[i], 16 if vertical else 20) for i in shown], **angle}


def positives_vs_negatives(
    anchor: Any, *others: Any, measures: Sequence[str] = ("volume", "cosine_pairwise"), bins: int = 40
) -> go.Figure:
    """Distributions of each measure for matching tuples versus non-matching ones, with ROC AUC.

    Positives are the diagonal of ``score_matrix(anchor, *others, measure=...)`` and negatives every
    off-diagonal pair; the histograms are normalised to equal area and computed from all pairs
    (nothing is subsampled). The AUC treats higher score = positive for every measure (for volume:
    minus the volume), so 1 means every positive beats every negative; volume and triangle are
    drawn as the volume/area itself, lower = more aligned. ``fig.layout.meta["auc"]`` holds the AUCs.

    Args:
        anchor: (N, D) anchors; anchor i matches candidate i.
        *others: one or more (N, D) other modalities.
        measures: names from ``gramviz.MEASURES``, one panel each.
        bins: histogram bins per panel.

    Example:
        >>> t = torch.eye(4)
        >>> positives_vs_negatives(t, t + 0.1, t + 0.2).layout.meta["auc"]["volume"]
        1.0
    """
    if not measures:
        raise ValueError("positives_vs_negatives: measures is empty")
    for m in measures:
        get_measure(m)
    tensors = as_embeddings(anchor, others, "positives_vs_negatives", square=True)
    n = tensors[0].shape[0]
    off = ~np.eye(n, dtype=bool)
    # side by side for one or two measures; stacked above that, so each panel keeps its width
    cols = len(measures) if len(measures) <= 2 else 1
    rows = -(-len(measures) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[" "] * len(measures), horizontal_spacing=0.12,
                        vertical_spacing=0.5 / rows)
    aucs = {}
    for p, measure in enumerate(measures):
        scores = score_matrix(*tensors, measure=measure).numpy()
        pos, neg = np.diag(scores), scores[off]
        aucs[measure] = roc_auc(pos, neg)
        spec = get_measure(measure)
        r, c = divmod(p, cols)
        _add_histograms(fig, spec.values(pos), spec.values(neg), bins, r + 1, c + 1)
        fig.layout.annotations[p].text = f"{spec.title}: AUC {number(aucs[measure])}"
        # side by side panels are narrow: the hint on a second line
        fig.update_xaxes(title=spec.axis_title().replace(" (", "<br>(" if cols > 1 else " ("), row=r + 1, col=c + 1)
        fig.update_yaxes(title="fraction per bin" if c == 0 else None, row=r + 1, col=c + 1)
    meta = {"auc": aucs, "n_positives": n, "n_negatives": n * (n - 1)}
    fig.update_layout(**base_layout(""), barmode="overlay", meta=meta, height=160 + 240 * rows)
    fig.update_layout(**title_layout(
        "Matching vs non-matching tuples",
        f"{n:,} positives, {n * (n - 1):,} negatives: the less the distributions overlap, the better a measure "
        "separates them (AUC 1 = perfect, 0.5 = chance)", gap=34))
    # the key at the figure's foot, below the last axis title, whatever the figure's height
    fig.update_layout(margin={"b": 125 if cols > 1 else 105},
                      legend={"orientation": "h", "x": 0.5, "xanchor": "center", "yref": "container", "y": 0, "yanchor": "bottom"})
    return fig


def _add_histograms(fig: go.Figure, pos: np.ndarray, neg: np.ndarray, bins: int, row: int, col: int) -> None:
    lo, hi = min(pos.min(), neg.min()), max(pos.max(), neg.max())
    edges = np.linspace(lo, hi if hi > lo else lo + 1e-9, bins + 1)
    centers, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
    for values, name, color in ((neg, "non-matching", NEGATIVE), (pos, "matching", POSITIVE)):
        counts = np.histogram(values, bins=edges)[0] / values.size
        fig.add_trace(go.Bar(
            x=centers, y=counts, width=width, name=f"{name} (n={values.size:,})", marker_color=color, opacity=0.6,
            legendgroup=name, showlegend=row == col == 1, hovertemplate=f"{name}<br>%{{x:.4f}}: %{{y:.3f}}<extra></extra>",
        ), row=row, col=col)


def base_vs_height(anchor: Any, *others: Any, labels: Sequence[str] | None = None, max_negatives: int = 5000,
                   seed: int = 0) -> go.Figure:
    """Each tuple's base (volume of the non-anchor modalities) against its height (anchor's distance).

    Volume = base x height, so both a small base (the other modalities close together) and a small
    height (the anchor near their span) make a small volume; dotted curves mark equal volumes.
    Both axes start at 0, so "near the origin" can be seen (for unit vectors both lie in [0, 1]).
    Positives are the diagonal pairs, negatives a seeded sample of at most ``max_negatives``
    off-diagonal pairs. Each point's ``customdata`` is its (anchor, candidate) index pair.

    Args:
        anchor: (N, D) anchors; anchor i matches candidate i.
        *others: one or more (N, D) other modalities (the base needs at least one).
        labels: names of the anchor and the other modalities, for the axis titles; default
            ("text", "video", "audio"), e.g. ("caption", "video", "audio").
        max_negatives: negatives drawn at most (a note in the title says when sampled).
        seed: seed of the negative sample.

    Example:
        >>> t = torch.eye(4)
        >>> [tr.name for tr in base_vs_height(t, t, t).data if tr.mode == "markers"]
        ['non-matching', 'matching']
    """
    tensors = as_embeddings(anchor, others, "base_vs_height", square=True)
    x_title, y_title = _base_height_titles(labels, len(tensors))
    base, height = (x.numpy() for x in base_height_matrix(*tensors))
    n = height.shape[0]
    neg_i, neg_j = _sample_negatives(n, max_negatives, seed)
    diag = np.arange(n)
    fig = figure("")
    # the unit square for unit vectors (base and height <= 1), else up to the largest value
    top = [1.0 if v.max() <= 1 + 1e-6 else 1.05 * float(v.max()) for v in (base, height)]
    _add_iso_volume_curves(fig, top[0], top[1])
    trace = go.Scattergl if neg_i.size + n > 2000 else go.Scatter
    for (i, j), name, color, size in (((neg_i, neg_j), "non-matching", NEGATIVE, 4), ((diag, diag), "matching", POSITIVE, 6)):
        fig.add_trace(trace(
            x=base[j], y=height[i, j], mode="markers", name=name, customdata=np.stack([i, j], 1),
            marker={"color": color, "size": size, "opacity": 0.55 if name == "non-matching" else 0.85},
            hovertemplate=f"{name}: anchor %{{customdata[0]}}, candidate %{{customdata[1]}}<br>"
                          "base %{x:.4f}, height %{y:.4f}<extra></extra>",
        ))
    total = n * (n - 1)
    note = f"<br>({neg_i.size:,} of {total:,} negatives shown, random sample)" if neg_i.size < total else ""
    fig.update_layout(**title_layout(
        "Base \u00d7 height = volume",
        "matching tuples near the origin: all modalities come together;<br>"
        f"low but wide (small height, large base): merely coplanar{note}", gap=26),
        meta={"negatives_shown": int(neg_i.size), "negatives_total": total})
    # a sliver below 0 keeps the two axes' "0" labels apart and points at 0 whole
    for axis, title, end in ((fig.update_xaxes, x_title, top[0]), (fig.update_yaxes, y_title, top[1])):
        axis(title=title, range=[-0.03 * end, 1.03 * end], dtick=0.2 if end <= 1.5 else None, zeroline=False)
    return fig


def _base_height_titles(labels: Sequence[str] | None, k: int) -> tuple[str, str]:
    """Axis titles naming the modalities: the base is their line, area or volume, the height the
    anchor's distance from its span (line, plane, or span of more)."""
    names = list(labels) if labels is not None else ["text", "video", "audio", *(f"modality {i}" for i in range(4, k + 1))][:k]
    if len(names) != k:
        raise ValueError(f"base_vs_height: labels names {len(names)} modalities for {k} embeddings: {names!r}")
    rest = names[1:]
    joined = rest[0] if len(rest) == 1 else ", ".join(rest[:-1]) + " and " + rest[-1]
    what, span = {1: ("length", "its line"), 2: ("area", "their plane")}.get(len(rest), ("volume", "their span"))
    return f"base: {what} of {joined}", f"height: {names[0]}'s distance<br>from {span}"


def _sample_negatives(n: int, max_negatives: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of off-diagonal pairs: all of them, or a seeded sample."""
    if max_negatives < 0:
        raise ValueError(f"max_negatives must be >= 0, got {max_negatives}")
    total = n * (n - 1)
    flat = np.arange(total) if total <= max_negatives else np.random.default_rng(seed).choice(total, max_negatives, replace=False)
    i, r = np.divmod(np.sort(flat), n - 1)
    return i, r + (r >= i)  # skip the diagonal in each row


def _add_iso_volume_curves(fig: go.Figure, b_top: float, h_top: float) -> None:
    """Dotted curves base x height = V at 20, 40, 60 and 80% of the drawn area's largest volume,
    labelled just above the plot where they leave its top edge, clear of the points."""
    b = np.linspace(1e-3, b_top, 400)
    for c, fraction in enumerate((0.2, 0.4, 0.6, 0.8)):
        level = float(number(fraction * b_top * h_top, 2))  # a round number to read
        h = level / b
        inside = h <= h_top
        fig.add_trace(go.Scatter(
            x=b[inside], y=h[inside], mode="lines", line={"color": "#888888", "dash": "dot", "width": 1},
            name="equal volume", legendgroup="iso", showlegend=c == 0, hoverinfo="skip",
        ))
        fig.add_annotation(x=level / h_top, y=1.03 * h_top, text=f"V={number(level)}", showarrow=False, yshift=1,
                           font={"size": 10, "color": "#666666"}, xanchor="center", yanchor="bottom")
