"""Training curves from a trainer's JSONL log: losses, temperature, learning rate, retrieval metrics.

One JSON object per line. Training lines carry ``"step"`` and numeric fields (``"loss"``,
``"temperature"``, ``"lr"``, ...); evaluation lines carry ``"step"`` and/or ``"epoch"`` and metric
keys with a slash (``"val/t2va/R@1"``). Non-numeric fields and lines with neither a step nor an
epoch (e.g. a config header) are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..training.log import is_number, read_log
from ._style import PALETTE, base_layout, title_layout

__all__ = ["read_log", "training_curves"]

# panel -> y axis title, in drawing order
PANELS = {
    "loss": "loss",
    "temperature": "temperature",
    "learning rate": "learning rate",
    "retrieval metrics": "value (recall: fraction)",
    "ranks": "rank (lower = better)",
    "volume geometry": "volume, base, height, cosine",
    "other": "value",
}
Series = dict[str, tuple[list[float], list[float], str]]  # key -> (x, y, x unit)


def panel_of(key: str) -> str:
    """Which panel a logged field goes to, from its name."""
    last = key.rsplit("/", 1)[-1].lower()
    if "loss" in last:
        return "loss"
    if "/" in key:
        if "/geom/" in f"/{key.lower()}":
            return "volume geometry"  # the collapse statistics of gramviz.analysis.collapse_metrics
        if last == "n" or "/missing/" in f"/{key.lower()}":
            return "other"  # counts of clips, not metrics
        return "ranks" if last in ("medr", "mnr") or "rank" in last else "retrieval metrics"
    if "temp" in last or last in ("tau", "logit_scale"):
        return "temperature"
    if last in ("lr", "learning_rate") or last.startswith("lr"):
        return "learning rate"
    return "other"


def collect_series(records: list[dict[str, Any]]) -> Series:
    """Every numeric field as (x, y, unit): x the record's step, or its epoch when it has none."""
    series: Series = {}
    for record in records:
        unit = "step" if "step" in record else "epoch" if "epoch" in record else None
        if unit is None:
            continue
        for key, value in record.items():
            if key in ("step", "epoch") or not is_number(value):
                continue
            xs, ys, units = series.setdefault(key, ([], [], unit))
            if units != unit:  # this field was logged against steps and epochs: keep steps
                if unit == "epoch":
                    continue
                xs.clear(), ys.clear()
                series[key] = (xs, ys, unit)
            xs.append(float(record[unit]))
            ys.append(float(value))
    return series


def training_curves(log: str | os.PathLike | Sequence[dict[str, Any]]) -> go.Figure:
    """Losses, temperature, learning rate and retrieval metrics against step (or epoch), one panel each.

    Args:
        log: path of the trainer's JSONL log, or its records as a list of dicts.

    Returns:
        A figure with one trace per logged field, named by the field, in the panel its name says
        (see `panel_of`), each panel with its own legend beside it; only panels with data are drawn.

    Example:
        >>> fig = training_curves([{"step": 0, "loss": 2.0}, {"step": 1, "loss": 1.5}])
        >>> [(t.name, list(t.y)) for t in fig.data]
        [('loss', [2.0, 1.5])]
    """
    records = read_log(log)
    series = collect_series(records)
    if not series:
        raise ValueError(f"{log if isinstance(log, (str, os.PathLike)) else 'log'}: no line has a step or epoch "
                         "and a numeric field to plot")
    by_panel: dict[str, list[str]] = {}
    for key in series:
        by_panel.setdefault(panel_of(key), []).append(key)
    panels = [p for p in PANELS if p in by_panel]
    one_axis = len({unit for _, _, unit in series.values()}) == 1  # all against steps (or all epochs): share x
    # every panel tall enough for its legend; between panels room for a subplot title (and x ticks
    # and title when the x axes differ)
    heights = [max(170, 21 * len(by_panel[p]) + 20) for p in panels]
    gap = 45 if one_axis else 100
    area = sum(heights) + gap * (len(panels) - 1)
    fig = make_subplots(rows=len(panels), cols=1, subplot_titles=panels, shared_xaxes=one_axis, row_heights=heights,
                        vertical_spacing=gap / area if len(panels) > 1 else 0)
    for r, panel in enumerate(panels, start=1):
        units = {series[key][2] for key in by_panel[panel]}
        _add_panel(fig, series, by_panel[panel], r)
        if not one_axis or r == len(panels):
            fig.update_xaxes(title=" or ".join(sorted(units, reverse=True)), row=r, col=1)
        fig.update_yaxes(title=PANELS[panel], exponentformat="e" if panel == "learning rate" else None, row=r, col=1)
    fig.update_layout(**base_layout(""), height=area + 150, showlegend=True)  # + title and the last x axis
    fig.update_layout(**title_layout("Training", "losses should fall, retrieval recalls rise; watch the temperature settle",
                                     gap=34))
    fig.update_layout(margin={"b": 60})
    return fig


def _add_panel(fig: go.Figure, series: Series, keys: list[str], row: int) -> None:
    """One panel's curves, with its own legend beside the panel's top (not one legend for all)."""
    legend = "legend" if row == 1 else f"legend{row}"
    for c, key in enumerate(keys):
        xs, ys, unit = series[key]
        sparse = len(xs) <= 30 or "/" in key  # evaluation points: show the markers
        fig.add_trace(go.Scatter(
            x=xs, y=ys, name=key, mode="lines+markers" if sparse else "lines", legend=legend,
            line={"color": PALETTE[c % len(PALETTE)], "width": 2},
            hovertemplate=f"{key}<br>{unit} %{{x}}: %{{y:.4g}}<extra></extra>",
        ), row=row, col=1)
    top = fig.layout["yaxis" if row == 1 else f"yaxis{row}"].domain[1]
    fig.update_layout({legend: {"x": 1.02, "xanchor": "left", "y": top, "yanchor": "top", "yref": "paper",
                                "bgcolor": "rgba(255,255,255,0.7)"}})
