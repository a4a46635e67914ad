"""Rankings: one query's ranked results, and how the alignment measures agree on rankings.

Tables of captions and scores are HTML (`HTMLTable`), not Plotly tables: JupyterLab draws HTML
wherever the output sits, while a Plotly table drawn off-screen can stay blank, and HTML wraps
long captions and headers instead of cutting them.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import plotly.graph_objects as go

from ..scores import MEASURES, get_measure, score_matrix
from ._style import NEGATIVE, POSITIVE, SEQUENTIAL, as_array, number, titled_layout
from .alignment import as_embeddings, truncate

__all__ = ["HTMLTable", "measure_comparison", "rank_agreement", "ranking_table", "retrieval_results", "top_k"]

_HIGHLIGHT, _HEADER = "#F5D6C0", "#E8EEF4"  # table cells: the correct item; the header row
_CELL = "padding:4px 8px;border:1px solid #D0D7DE;text-align:left;vertical-align:top"


@dataclass(frozen=True)
class HTMLTable:
    """An HTML table: a notebook shows it as is (``_repr_html_``), the app in ``gr.HTML(table.html)``.

    Attributes:
        html: the ``<table>`` element, captions escaped, numbers formatted by ``_style.number``.
        meta: what it lists, for code and tests (as a figure's ``layout.meta``).
    """

    html: str
    meta: dict[str, Any] = field(default_factory=dict)

    def _repr_html_(self) -> str:
        return self.html

    def __str__(self) -> str:
        return self.html


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


@dataclass
class _Rankings:
    """Every measure's scores of one set of embeddings, and one query's top k under each."""

    names: list[str]  # M candidate labels
    correct: set[int]  # the query's correct candidates
    scores: dict[str, np.ndarray]  # measure -> (N, M) scores, higher = more aligned
    tops: dict[str, np.ndarray]  # measure -> the query's k best candidates
    n: int  # queries


def _rankings(anchor: Any, others: tuple[Any, ...], query: int, k: int, measures: Sequence[str],
              labels: Sequence[Any] | None, correct: int | Sequence[int] | None, caller: str) -> _Rankings:
    if not measures:
        raise ValueError(f"{caller}: measures is empty")
    for m in measures:
        get_measure(m)
    tensors = as_embeddings(anchor, others, caller)
    n, m = tensors[0].shape[0], tensors[1].shape[0]
    if not 0 <= query < n:
        raise ValueError(f"query must lie in [0, {n}), got {query}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    scores = {ms: score_matrix(*tensors, measure=ms).numpy() for ms in measures}
    return _Rankings(names=_labels(labels, m), correct=_correct_items(correct, query if n == m else None, m),
                     scores=scores, tops={ms: top_k(s[query], k) for ms, s in scores.items()}, n=n)


def ranking_table(
    anchor: Any,
    *others: Any,
    query: int = 0,
    k: int = 10,
    measures: Sequence[str] = MEASURES,
    labels: Sequence[Any] | None = None,
    correct: int | Sequence[int] | None = None,
) -> HTMLTable:
    """One query's top-k candidates under each measure side by side, as an HTML table.

    One column per measure, one row per rank: the candidate's label and its value under that
    measure (the volume itself for volume, 3 significant digits); the correct candidate(s) shaded
    and in bold. ``meta`` holds ``topk`` (measure -> candidate indices), ``measures`` and ``query``.

    Args:
        anchor: (N, D) queries, e.g. text.
        *others: one or more (M, D) modalities of the candidates (the gallery).
        query: index of the anchor whose rankings are listed.
        k: rows of the table.
        measures: names from ``gramviz.MEASURES``.
        labels: M candidate ids or captions (shortened to 60 characters, whole on hover); default
            the indices.
        correct: the query's correct candidate(s); default candidate ``query`` when N == M.

    Example:
        >>> t = np.eye(4)
        >>> ranking_table(t, t, t, k=2, measures=("volume", "symile")).meta["topk"]["volume"]
        [0, 1]
    """
    r = _rankings(anchor, others, query, k, measures, labels, correct, "ranking_table")
    asked = f": {truncate(r.names[query], 80)}" if r.n == len(r.names) else ""
    title = (f"Top {len(r.tops[measures[0]])} of {len(r.names):,} candidates for query {query}{asked} "
             "(the correct one shaded, in bold)")
    header = "".join(f'<th style="{_CELL};background-color:{_HEADER}">{html.escape(h)}</th>'
                     for h in ["rank", *(get_measure(ms).axis_title() for ms in measures)])
    table = (f'<table style="border-collapse:collapse;font-size:13px">'
             f'<caption style="caption-side:top;text-align:left;font-weight:bold;padding:4px 0">'
             f"{html.escape(title)}</caption><thead><tr>{header}</tr></thead>"
             f"<tbody>{''.join(_table_rows(r, query, measures))}</tbody></table>")
    return HTMLTable(table, {"topk": {ms: t.tolist() for ms, t in r.tops.items()}, "measures": list(measures),
                             "query": query})


def _table_rows(r: _Rankings, query: int, measures: Sequence[str]) -> list[str]:
    """``<tr>`` per rank: the rank, then each measure's candidate (escaped) over its value."""
    rows = []
    for rank in range(len(r.tops[measures[0]])):
        cells = [f'<td style="{_CELL}">{rank + 1}</td>']
        for ms in measures:
            j = int(r.tops[ms][rank])
            value = number(float(get_measure(ms).values(r.scores[ms][query, [j]])[0]))
            label, fill = html.escape(truncate(r.names[j], 60)), ""
            if j in r.correct:
                label, fill = f"<b>{label}</b>", f";background-color:{_HIGHLIGHT}"
            cells.append(f'<td style="{_CELL}{fill}" title="{html.escape(r.names[j])}">{label}'
                         f'<br><span style="color:#444">{value}</span></td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return rows


def measure_comparison(
    anchor: Any,
    *others: Any,
    query: int = 0,
    k: int = 10,
    measures: Sequence[str] = MEASURES,
    labels: Sequence[Any] | None = None,
    correct: int | Sequence[int] | None = None,
) -> go.Figure:
    """Rank agreement of the alignment measures over all queries, as a heatmap.

    For each pair of measures, the Spearman correlation of their score rows averaged over ALL
    queries (1 = the same rankings). One query's top-k candidates under each measure are the
    HTML table of `ranking_table` (same arguments); ``fig.layout.meta`` holds that query's
    ``topk`` (measure -> candidate indices), ``agreement`` (the matrix, in ``measures`` order)
    and ``measures``.

    Args:
        anchor: (N, D) queries, e.g. text.
        *others: one or more (M, D) modalities of the candidates (the gallery).
        query: index of the anchor whose top k goes into ``meta["topk"]``.
        k: candidates in ``meta["topk"]``.
        measures: names from ``gramviz.MEASURES``.
        labels: M candidate ids or captions (checked like `ranking_table`'s).
        correct: the query's correct candidate(s) (checked like `ranking_table`'s).

    Example:
        >>> t = np.eye(4)
        >>> measure_comparison(t, t, t, k=2, measures=("volume", "symile")).layout.meta["topk"]["volume"]
        [0, 1]
    """
    r = _rankings(anchor, others, query, k, measures, labels, correct, "measure_comparison")
    agree = np.array([[rank_agreement(r.scores[a], r.scores[b]) for b in measures] for a in measures])
    fig = go.Figure(_agreement_heatmap(agree, [get_measure(ms).title for ms in measures]))
    fig.update_layout(**titled_layout("Do the measures rank the gallery alike?",
                                      f"rank agreement over all {r.n:,} queries: the Spearman correlation of two "
                                      "measures' rankings, averaged (1 = the same rankings)",
                                      margin={"l": 20, "r": 30, "b": 40}),
                      height=max(420, 220 + 45 * len(measures)),
                      meta={"topk": {ms: t.tolist() for ms, t in r.tops.items()}, "agreement": agree.tolist(),
                            "measures": list(measures)})
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(automargin=True, side="bottom", tickangle=-45)  # the measure names stay apart in a narrow column
    return fig


def _agreement_heatmap(agree: np.ndarray, names: list[str]) -> go.Heatmap:
    return go.Heatmap(
        z=agree, x=names, y=names, colorscale=SEQUENTIAL, zmin=-1, zmax=1,
        text=[[number(x) for x in row] for row in agree], texttemplate="%{text}",
        hovertemplate="%{y} vs %{x}: %{z:.3f}<extra></extra>",
        colorbar={"title": {"text": "mean Spearman", "side": "right"}, "len": 0.8},
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
        marker_color=colors, text=[number(v) for v in values], textposition="auto", customdata=[names[j] for j in order],
        hovertemplate="%{customdata}<br>%{x:.4f}<extra></extra>",
    ))
    missed = [f"{truncate(names[j], 30)} at rank {r}" for j, r in ranks.items() if r > k]
    note = f"; correct item not shown: {', '.join(missed)}" if missed else ""
    fig.update_layout(**titled_layout(f"Top {len(order)} of {row.size:,} items by {spec.title}",
                                      f"correct in orange{note}", margin={"l": 20, "r": 30, "b": 55}),
                      height=max(300, 110 + 30 * len(order)), showlegend=False, meta={"order": order.tolist(), "correct_ranks": ranks})
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(title=spec.axis_title())
    return fig
