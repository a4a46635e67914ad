"""The comparison study (``gramviz experiment``): training variants side by side, mean +- std over seeds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._style import PALETTE, go, titled_layout

__all__ = ["VARIANT_LABELS", "study_comparison"]

# how the variants of configs/study.toml are named in figures; other names are shown as they are
VARIANT_LABELS = {
    "gram": "GRAM",
    "gram_dam": "GRAM + DAM",
    "gram_va": "GRAM + video-audio InfoNCE",
    "pairwise": "pairwise cosine (ImageBind-like)",
    "fused": "fused cosine (VAST-like)",
}
RETRIEVAL = ("t2va/R@1", "va2t/R@1", "t2v/R@1", "t2a/R@1", "v2a/R@1", "a2v/R@1", "cls/top1")


def _cell(summary: Mapping[str, Any], variant: str, split: str, metric: str) -> tuple[float, float] | None:
    value = summary["stats"][variant].get(split, {}).get(metric)
    return None if value is None else (float(value[0]), float(value[1]))


def study_comparison(
    summary: Mapping[str, Any], split: str = "test", metrics: Sequence[str] = RETRIEVAL, title: str | None = None
) -> go.Figure:
    """Grouped bars of each variant's mean over seeds, error bars one standard deviation.

    What to look at: bars that differ by less than their error bars are not told apart by this
    study. Where ``summary`` knows the world's video -> audio ceiling, a black mark on v2a R@1 shows
    how far a variant is from what video and audio can tell about each other.

    Args:
        summary: the ``summary.json`` of ``gramviz experiment``: ``{"seeds", "stats": {variant:
            {split: {metric: [mean, std]}}}, "ceiling_v2a"}``.
        split: the evaluation split to show.
        metrics: metric keys, one bar group each (a variant lacking one gets no bar there).
        title: figure title; a default names the split and the seeds.

    Example:
        >>> s = {"seeds": [0, 1], "stats": {"gram": {"test": {"t2va/R@1": [0.9, 0.01]}}}}
        >>> [tr.name for tr in study_comparison(s, metrics=("t2va/R@1",)).data]
        ['GRAM']
    """
    if not isinstance(summary, Mapping) or not isinstance(summary.get("stats"), Mapping) or not summary["stats"]:
        raise ValueError("summary must be the summary.json of gramviz experiment: a dict with a non-empty 'stats'")
    if not metrics:
        raise ValueError("study_comparison: metrics is empty")
    variants = [v for v in summary["stats"] if split in summary["stats"][v]]
    if not variants:
        known = sorted({s for v in summary["stats"].values() for s in v})
        raise ValueError(f"no variant was evaluated on split {split!r}; the summary has {known}")
    fig = go.Figure()
    for c, variant in enumerate(variants):
        cells = [_cell(summary, variant, split, m) for m in metrics]
        label = VARIANT_LABELS.get(variant, variant)
        means, stds = [None if x is None else x[0] for x in cells], [None if x is None else x[1] for x in cells]
        fig.add_trace(go.Bar(
            x=list(metrics), y=means, name=label, error_y={"type": "data", "array": stds, "visible": True},
            customdata=stds, marker_color=PALETTE[c % len(PALETTE)], meta={"variant": variant},
            hovertemplate=f"{label}<br>%{{x}}: %{{y:.3f}} ± %{{customdata:.3f}}<extra></extra>",
        ))
    ceiling = summary.get("ceiling_v2a")
    if ceiling is not None and "v2a/R@1" in metrics:
        fig.add_trace(go.Scatter(
            x=["v2a/R@1"], y=[float(ceiling)], mode="markers", name=f"v2a ceiling ({float(ceiling):.3f})",
            marker={"symbol": "line-ew-open", "size": 60, "color": "black", "line": {"width": 3}},
            hovertemplate="the world's video -> audio ceiling: %{y:.3f}<extra></extra>"))
    seeds = summary.get("seeds", [])
    head = (title, "") if title else (f"Variants on the {split} split, mean ± std over {len(seeds)} seeds",
                                      "differences smaller than the error bars are not established")
    fig.update_layout(**titled_layout(*head, legend={"orientation": "h", "y": -0.18, "x": 0}), barmode="group",
                      meta={"split": split, "variants": variants})
    fig.update_yaxes(title="value (recall: fraction; geometry: median)")
    return fig
