"""The comparison study (``gramviz experiment``): training variants side by side, mean +- std over seeds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._style import PALETTE, go, titled_layout

__all__ = ["VARIANT_LABELS", "collapse_curves", "study_comparison"]

# how the variants of configs/study.toml are named in figures; other names are shown as they are
VARIANT_LABELS = {
    "gram": "GRAM",
    "gram_dam": "GRAM + DAM",
    "gram_va": "GRAM + video-audio InfoNCE",
    "pairwise": "pairwise cosine (ImageBind-like)",
    "fused": "fused cosine (VAST-like)",
    "gram_from_pairwise": "GRAM from a pairwise start",
}
COLLAPSE = ("geom/batch_pos_volume", "val/geom/pos_volume_std", "val/geom/base_median", "val/geom/height_median")
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


def collapse_curves(curves: Mapping[str, Any], keys: Sequence[str] = COLLAPSE,
                    variants: Sequence[str] | None = None, title: str | None = None) -> go.Figure:
    """When do a study's runs leave the flat region? One panel per logged statistic against epochs.

    What to look at: every volume starts near 1 (untrained encoders give nearly orthogonal
    embeddings, where the GRAM loss is flat). A run has left the flat region when its matching
    tuples' mean volume (``geom/batch_pos_volume``, the training batch at every log step) has
    clearly fallen below 1; a cross-sample standard deviation of volumes near 0 says the volumes
    have collapsed to one value. One line per seed, one colour per variant.

    Args:
        curves: what `gramviz.study_curves.study_curves` returns (or its JSON read back):
            ``{"runs": {variant: {seed: [{"epoch", key: value, ...}, ...]}}}``.
        keys: the logged statistics to draw, one panel each.
        variants: the variants to draw (default: all).
        title: the figure's title.

    Example:
        >>> c = {"runs": {"gram": {"0": [{"epoch": 1, "geom/batch_pos_volume": 0.95}]}}}
        >>> [t.name for t in collapse_curves(c, keys=("geom/batch_pos_volume",)).data]
        ['GRAM']
    """
    from plotly.subplots import make_subplots

    runs = curves.get("runs") if isinstance(curves, Mapping) else None
    if not isinstance(runs, Mapping) or not runs:
        raise ValueError("curves must be what gramviz.study_curves.study_curves returns: a dict with non-empty 'runs'")
    names = list(variants) if variants is not None else list(runs)
    unknown = [v for v in names if v not in runs]
    if unknown or not keys:
        raise ValueError(f"collapse_curves: unknown variants {unknown} (the curves have {list(runs)})" if unknown
                         else "collapse_curves: keys is empty")
    fig = make_subplots(rows=len(keys), cols=1, shared_xaxes=True, subplot_titles=list(keys),
                        vertical_spacing=0.22 / len(keys))
    for c, variant in enumerate(names):
        label, color = VARIANT_LABELS.get(variant, variant), PALETTE[c % len(PALETTE)]
        for s, (seed, records) in enumerate(runs[variant].items()):
            for r, key in enumerate(keys, start=1):
                points = [(p["epoch"], p[key]) for p in records if key in p and p.get("epoch") is not None]
                if not points:
                    continue
                first = s == 0 and r == 1
                fig.add_trace(go.Scatter(
                    x=[x for x, _ in points], y=[y for _, y in points], name=label, legendgroup=variant,
                    showlegend=first, mode="lines" if len(points) > 30 else "lines+markers",
                    line={"color": color, "width": 1.5}, opacity=0.85, meta={"variant": variant, "seed": seed},
                    hovertemplate=f"{label}, seed {seed}<br>epoch %{{x:.2f}}: {key} %{{y:.4f}}<extra></extra>",
                ), row=r, col=1)
    fig.update_layout(**titled_layout(title or "Leaving the flat region: volume statistics during training",
                                      "one line per seed; volumes near 1 = still nearly orthogonal",
                                      legend={"orientation": "h", "y": -0.08, "x": 0}),
                      height=230 * len(keys) + 160)
    fig.update_xaxes(title="epoch", row=len(keys), col=1)
    return fig
