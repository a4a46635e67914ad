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
from ._style import NEGATIVE, POSITIVE, SEQUENTIAL, as_array, base_layout, figure

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
    fig = figure(title or f"{spec.title} of every anchor with every candidate: matching pairs (outlined) should stand out")
    fig.add_trace(go.Heatmap(
        z=z, colorscale=SEQUENTIAL, reversescale=spec.is_size, customdata=hover,
        hovertemplate="anchor %{y}: %{customdata}<br>value %{z:.4f}<extra></extra>",
        colorbar={"title": {"text": spec.axis_title().replace(" (", "<br>("), "side": "right"}},
    ))
    pi, pj = np.nonzero(mask)
    marker = {"symbol": "square-open", "size": max(6, min(24, 500 // max(n, m))), "color": POSITIVE, "line": {"width": 2}}
    trace = go.Scattergl if pi.size > 1000 else go.Scatter
    fig.add_trace(trace(x=pj, y=pi, mode="markers", marker=marker, name="matching pair", hoverinfo="skip"))
    axis = {"showgrid": False, "zeroline": False}
    fig.update_xaxes(title="candidate", **axis, **_ticks(cols))
    fig.update_yaxes(title="anchor", autorange="reversed", **axis, **_ticks(rows))
    fig.update_layout(legend={"orientation": "h", "y": -0.15, "x": 1, "xanchor": "right"}, meta={"positives": np.argwhere(mask).tolist()})
    return fig


def _ticks(labels: list[str]) -> dict[str, Any]:
    if len(labels) > 30:
        return {}
    return {"tickvals": list(range(len(labels))), "ticktext": [truncate(x, 20) for x in labels]}


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
    fig = make_subplots(rows=1, cols=len(measures), subplot_titles=[" "] * len(measures), horizontal_spacing=0.08)
    aucs = {}
    for c, measure in enumerate(measures, start=1):
        scores = score_matrix(*tensors, measure=measure).numpy()
        pos, neg = np.diag(scores), scores[off]
        aucs[measure] = roc_auc(pos, neg)
        spec = get_measure(measure)
        _add_histograms(fig, spec.values(pos), spec.values(neg), bins, c)
        fig.layout.annotations[c - 1].text = f"{spec.title}: AUC {aucs[measure]:.3f}"
        fig.update_xaxes(title=spec.axis_title(), row=1, col=c)
    fig.update_yaxes(title="fraction of the group per bin", row=1, col=1)
    title = (f"Matching vs non-matching tuples ({n:,} positives, {n * (n - 1):,} negatives): the less the "
             "distributions overlap, the better a measure separates them (AUC 1 = perfect, 0.5 = chance)")
    meta = {"auc": aucs, "n_positives": n, "n_negatives": n * (n - 1)}
    fig.update_layout(**base_layout(title, margin={"l": 60, "r": 30, "t": 110, "b": 100}), barmode="overlay", meta=meta)
    fig.update_layout(title={"font": {"size": 14}}, legend={"orientation": "h", "x": 0.5, "xanchor": "center", "y": -0.16, "yanchor": "top"})
    return fig


def _add_histograms(fig: go.Figure, pos: np.ndarray, neg: np.ndarray, bins: int, col: int) -> None:
    lo, hi = min(pos.min(), neg.min()), max(pos.max(), neg.max())
    edges = np.linspace(lo, hi if hi > lo else lo + 1e-9, bins + 1)
    centers, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
    for values, name, color in ((neg, "non-matching", NEGATIVE), (pos, "matching", POSITIVE)):
        counts = np.histogram(values, bins=edges)[0] / values.size
        fig.add_trace(go.Bar(
            x=centers, y=counts, width=width, name=f"{name} (n={values.size:,})", marker_color=color, opacity=0.6,
            legendgroup=name, showlegend=col == 1, hovertemplate=f"{name}<br>%{{x:.4f}}: %{{y:.3f}}<extra></extra>",
        ), row=1, col=col)


def base_vs_height(anchor: Any, *others: Any, max_negatives: int = 5000, seed: int = 0) -> go.Figure:
    """Each tuple's base (volume of the non-anchor modalities) against its height (anchor's distance).

    Volume = base x height, so both a small base (the other modalities close together) and a small
    height (the anchor near their span) make a small volume; dotted curves mark equal volumes.
    Positives are the diagonal pairs, negatives a seeded sample of at most ``max_negatives``
    off-diagonal pairs. Each point's ``customdata`` is its (anchor, candidate) index pair.

    Args:
        anchor: (N, D) anchors; anchor i matches candidate i.
        *others: one or more (N, D) other modalities (the base needs at least one).
        max_negatives: negatives drawn at most (a note in the title says when sampled).
        seed: seed of the negative sample.

    Example:
        >>> t = torch.eye(4)
        >>> [tr.name for tr in base_vs_height(t, t, t).data if tr.mode == "markers"]
        ['non-matching', 'matching']
    """
    tensors = as_embeddings(anchor, others, "base_vs_height", square=True)
    base, height = (x.numpy() for x in base_height_matrix(*tensors))
    n = height.shape[0]
    neg_i, neg_j = _sample_negatives(n, max_negatives, seed)
    diag = np.arange(n)
    fig = figure("")
    b_range, h_range = _padded_range(base[neg_j], base), _padded_range(height[neg_i, neg_j], np.diag(height))
    _add_iso_volume_curves(fig, base, height, b_range, h_range)
    trace = go.Scattergl if neg_i.size + n > 2000 else go.Scatter
    for (i, j), name, color, size in (((neg_i, neg_j), "non-matching", NEGATIVE, 4), ((diag, diag), "matching", POSITIVE, 6)):
        fig.add_trace(trace(
            x=base[j], y=height[i, j], mode="markers", name=name, customdata=np.stack([i, j], 1),
            marker={"color": color, "size": size, "opacity": 0.55 if name == "non-matching" else 0.85},
            hovertemplate=f"{name}: anchor %{{customdata[0]}}, candidate %{{customdata[1]}}<br>"
                          "base %{x:.4f}, height %{y:.4f}<extra></extra>",
        ))
    total = n * (n - 1)
    note = f" ({neg_i.size:,} of {total:,} negatives shown, random sample)" if neg_i.size < total else ""
    title = ("Base x height = volume. Matching tuples near the origin: all modalities come together;<br>"
             f"low but wide (small height, large base): merely coplanar{note}")
    fig.update_layout(**base_layout(title), meta={"negatives_shown": int(neg_i.size), "negatives_total": total})
    fig.update_layout(title={"font": {"size": 13}})
    fig.update_xaxes(title="base: volume of the non-anchor modalities", range=b_range)
    fig.update_yaxes(title="height: anchor's distance from their span", range=h_range)
    return fig


def _sample_negatives(n: int, max_negatives: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of off-diagonal pairs: all of them, or a seeded sample."""
    if max_negatives < 0:
        raise ValueError(f"max_negatives must be >= 0, got {max_negatives}")
    total = n * (n - 1)
    flat = np.arange(total) if total <= max_negatives else np.random.default_rng(seed).choice(total, max_negatives, replace=False)
    i, r = np.divmod(np.sort(flat), n - 1)
    return i, r + (r >= i)  # skip the diagonal in each row


def _padded_range(*values: np.ndarray) -> list[float]:
    lo, hi = min(v.min() for v in values), max(v.max() for v in values)
    pad = 0.05 * (hi - lo) + 1e-3
    return [max(0.0, lo - pad), hi + pad]


def _add_iso_volume_curves(fig: go.Figure, base: np.ndarray, height: np.ndarray,
                           b_range: list[float], h_range: list[float]) -> None:
    """Dotted curves base x height = V through the drawn area, labelled where they leave it."""
    vol = base[None, :] * height
    levels = np.unique(np.round(np.quantile(vol, [0.02, 0.25, 0.5, 0.75, 0.98]), 3))
    b = np.linspace(max(b_range[0], 1e-6), b_range[1], 200)
    for c, level in enumerate(levels[levels > 0]):
        h = level / b
        inside = (h >= h_range[0]) & (h <= h_range[1])
        if not inside.any():
            continue
        fig.add_trace(go.Scatter(
            x=b[inside], y=h[inside], mode="lines", line={"color": "#888888", "dash": "dot", "width": 1},
            name="equal volume", legendgroup="iso", showlegend=c == 0, hoverinfo="skip",
        ))
        end = np.nonzero(inside)[0][-1]  # right/bottom end of the visible part
        fig.add_annotation(x=b[end], y=h[end], text=f"V={level:g}", showarrow=False,
                           font={"size": 10, "color": "#666666"}, xanchor="right", yanchor="top")
