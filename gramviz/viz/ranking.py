"""Rankings: one query's ranked results, and how the alignment measures agree on rankings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..scores import MEASURES, get_measure, score_matrix
from ._style import NEGATIVE, POSITIVE, SEQUENTIAL, as_array, base_layout
from .alignment import as_embeddings, truncate

__all__ = ["measure_comparison", "retrieval_results", "rank_agreement", "top_k"]

_HIGHLIGHT, _PLAIN = "#F5D6C0", "#FFFFFF"  # table cells: the correct item, the others


def top_k(scores_row: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best items (highest score first; ties keep the lower index first)."""
    return np.argsort(-scores_row, kind="stable")[:k]


def rank_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over queries of the Spearman correlation of two (N, M) score matrices' rows.

    Rows where either matrix is constant (no ranking) are left out; NaN if all are.

    Example:
        >>> rank_agreement(np.array([[1.0, 2.0, 3.0]]), np.array([[3.0, 2.0, 1.0]]))
        -1.0
    """
    from scipy.stats import rankdata

    ra, rb = rankdata(a, axis=1), rankdata(b, axis=1)  # average ranks for ties, as Spearman's rho
    ra, rb = ra - ra.mean(1, keepdims=True), rb - rb.mean(1, keepdims=True)
    denom = np.sqrt((ra * ra).sum(1) * (rb * rb).sum(1))
    ok = denom > 0
    if not ok.any():
        return float("nan")
    return float(np.mean((ra * rb).sum(1)[ok] / denom[ok]))


def measure_comparison(
    anchor: Any,
    *others: Any,
    query: int = 0,
    k: int = 10,
    measures: Sequence[str] = MEASURES,
    labels: Sequence[Any] | None = None,
    correct: int | Sequence[int] | None = None,
) -> go.Figure:
    """One query's top-k candidates under each measure side by side, and rank agreement overall.

    Left: a table, one column per measure, of the k best candidates for anchor ``query`` (the
    correct one shaded). Right: for each pair of measures, the Spearman correlation of their score
    rows averaged over ALL queries (1 = the same rankings). ``fig.layout.meta`` holds ``topk``
    (measure -> candidate indices) and ``agreement`` (the matrix, in ``measures`` order).

    Args:
        anchor: (N, D) queries, e.g. text.
        *others: one or more (M, D) modalities of the candidates (the gallery).
        query: index of the anchor whose rankings are listed.
        k: rows of the table.
        measures: names from ``gramviz.MEASURES``.
        labels: M candidate ids or captions (truncated); default the indices.
        correct: the query's correct candidate(s); default candidate ``query`` when N == M.

    Example:
        >>> t = np.eye(4)
        >>> measure_comparison(t, t, t, k=2, measures=("volume", "symile")).layout.meta["topk"]["volume"]
        [0, 1]
    """
    if not measures:
        raise ValueError("measure_comparison: measures is empty")
    for m in measures:
        get_measure(m)
    tensors = as_embeddings(anchor, others, "measure_comparison")
    n, m = tensors[0].shape[0], tensors[1].shape[0]
    if not 0 <= query < n:
        raise ValueError(f"query must lie in [0, {n}), got {query}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    names = _labels(labels, m)
    correct_set = _correct_items(correct, query if n == m else None, m)
    scores = {ms: score_matrix(*tensors, measure=ms).numpy() for ms in measures}
    tops = {ms: top_k(s[query], k) for ms, s in scores.items()}
    agree = np.array([[rank_agreement(scores[a], scores[b]) for b in measures] for a in measures])
    fig = make_subplots(rows=1, cols=2, column_widths=[0.68, 0.32], horizontal_spacing=0.1,
                        specs=[[{"type": "table"}, {"type": "heatmap"}]],
                        subplot_titles=[f"top {min(k, m)} for query {query} (correct item shaded)",
                                        "rank agreement over all queries (Spearman)"])
    fig.add_trace(_ranking_table(tops, scores, query, names, correct_set), row=1, col=1)
    fig.add_trace(_agreement_heatmap(agree, [get_measure(ms).title for ms in measures]), row=1, col=2)
    fig.update_yaxes(autorange="reversed", row=1, col=2)
    title = f"Do the measures rank the gallery alike? Query {query}: {truncate(names[query] if n == m else query, 50)}"
    fig.update_layout(**base_layout(title), height=max(440, 150 + 48 * min(k, m)),
                      meta={"topk": {ms: t.tolist() for ms, t in tops.items()}, "agreement": agree.tolist(),
                            "measures": list(measures)})
    return fig


def _agreement_heatmap(agree: np.ndarray, names: list[str]) -> go.Heatmap:
    return go.Heatmap(
        z=agree, x=names, y=names, colorscale=SEQUENTIAL, zmin=-1, zmax=1, text=np.round(agree, 2),
        texttemplate="%{text}", hovertemplate="%{y} vs %{x}: %{z:.3f}<extra></extra>",
        colorbar={"title": {"text": "mean<br>Spearman"}, "len": 0.8},
    )


def _labels(labels: Sequence[Any] | None, m: int) -> list[str]:
    if labels is None:
        return [f"item {j}" for j in range(m)]
    if len(labels) != m:
        raise ValueError(f"labels has {len(labels)} entries for {m} items")
    return [str(x) for x in labels]


def _correct_items(correct: int | Sequence[int] | None, default: int | None, m: int) -> set[int]:
    if correct is None:
        return set() if default is None else {default}
    items = {int(correct)} if np.ndim(correct) == 0 else {int(c) for c in correct}
    if any(not 0 <= c < m for c in items):
        raise ValueError(f"correct item indices must lie in [0, {m}), got {sorted(items)}")
    return items


def _ranking_table(tops: dict[str, np.ndarray], scores: dict[str, np.ndarray], query: int,
                   names: list[str], correct: set[int]) -> go.Table:
    columns, fills = [], []
    for ms, idx in tops.items():
        values = get_measure(ms).values(scores[ms][query, idx])
        columns.append([f"{truncate(names[j], 28)} ({v:.3f})" for j, v in zip(idx, values)])
        fills.append([_HIGHLIGHT if j in correct else _PLAIN for j in idx])
    ranks = [str(r) for r in range(1, len(columns[0]) + 1)]
    header = ["rank"] + [get_measure(ms).axis_title().replace(" (", "<br>(") for ms in tops]
    return go.Table(
        columnwidth=[0.35] + [1.0] * len(tops),
        header={"values": header, "fill_color": "#E8EEF4", "align": "left", "font": {"size": 11}},
        cells={"values": [ranks, *columns], "fill_color": [[_PLAIN] * len(ranks), *fills], "align": "left",
               "font": {"size": 11}, "height": 26},
    )


def retrieval_results(
    scores_row: Any,
    labels: Sequence[Any] | None,
    k: int = 10,
    measure: str = "volume",
    correct: int | Sequence[int] | None = None,
) -> go.Figure:
    """One query's k best items as horizontal bars of their scores, best at the top.

    Args:
        scores_row: (M,) one row of ``gramviz.score_matrix(..., measure=measure)``, higher = more
            aligned (for volume: minus the volume; the bars show the volume itself).
        labels: M item ids or captions (truncated on the axis, full on hover); None for indices.
        k: items listed.
        measure: the measure that produced the scores, one of ``gramviz.MEASURES``.
        correct: index or indices of the correct item(s), highlighted; when one is not in the top
            k, the title gives its rank (ties counted against it, as in ``gramviz.retrieval_ranks``).

    Example:
        >>> retrieval_results(np.array([-0.9, -0.2, -0.5]), ["a", "b", "c"], k=2).layout.meta["order"]
        [1, 2]
    """
    spec = get_measure(measure)
    row = as_array(scores_row, "scores_row", ndim=1)
    if spec.is_size and (row > 0).any():
        raise ValueError(f"scores_row for {measure!r} must be scores (minus the {measure}, so <= 0), "
                         "as gramviz.score_matrix returns; got positive values")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    names = _labels(labels, row.size)
    good = _correct_items(correct, None, row.size)
    order = top_k(row, k)
    values = spec.values(row[order])
    ranks = {j: int((row >= row[j]).sum()) for j in good}  # 1-based, ties counted against the item
    colors = [POSITIVE if j in good else NEGATIVE for j in order]
    fig = go.Figure(go.Bar(
        x=values, y=[f"{r}. {truncate(names[j], 40)}" for r, j in enumerate(order, start=1)], orientation="h",
        marker_color=colors, text=[f"{v:.3f}" for v in values], textposition="auto", customdata=[names[j] for j in order],
        hovertemplate="%{customdata}<br>%{x:.4f}<extra></extra>",
    ))
    missed = [f"{truncate(names[j], 30)} at rank {r}" for j, r in ranks.items() if r > k]
    note = f"; correct item not shown: {', '.join(missed)}" if missed else ""
    title = f"Top {len(order)} of {row.size} items by {spec.title} (correct in orange){note}"
    fig.update_layout(**base_layout(title, margin={"l": 20, "r": 30, "t": 70, "b": 55}),
                      height=max(300, 110 + 30 * len(order)), showlegend=False, meta={"order": order.tolist(), "correct_ranks": ranks})
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(title=spec.axis_title())
    return fig
