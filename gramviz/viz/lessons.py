"""Teaching figures: why unrelated vectors have volume near 1, what the temperature does to the
loss's softmax, and how matching and non-matching volumes separate while a model trains."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..analysis import random_unit_volumes
from ._style import NEGATIVE, PALETTE, POSITIVE, as_array, go, number, titled_layout
from .alignment import roc_auc

__all__ = ["volume_concentration", "temperature_softmax", "volume_separation"]


def volume_concentration(
    dims: Sequence[int] = (3, 4, 8, 16, 32, 64, 128, 256, 512), n: int = 2000, k: int = 3, seed: int = 0
) -> go.Figure:
    """Box plots of the volumes of ``k`` random unit vectors for each dimension in ``dims``.

    What to look at: as the dimension grows the boxes climb to 1 and shrink, so every
    non-matching tuple looks alike (volume near 1) and only matching tuples can stand out below.
    ``fig.layout.meta`` holds the median and the minimum per dimension.

    Args:
        dims: dimensions D, each >= 1.
        n: tuples drawn per dimension.
        k: vectors per tuple.
        seed: seed of the draws (the same for every D).

    Example:
        >>> fig = volume_concentration(dims=(3, 512), n=100)
        >>> [round(m, 1) for m in fig.layout.meta["median"]]
        [0.5, 1.0]
    """
    if not dims:
        raise ValueError("volume_concentration: dims is empty")
    volumes = {int(d): random_unit_volumes(d, n, k, seed).numpy() for d in dims}
    fig = go.Figure([go.Box(y=v, name=f"D = {d}", marker_color=PALETTE[0], boxpoints=False, showlegend=False,
                            hovertemplate=f"D = {d}<br>%{{y:.4f}}<extra></extra>") for d, v in volumes.items()])
    title = f"Volumes of {k} random unit vectors crowd near 1 in high dimension"
    subtitle = (f"{n:,} tuples per dimension: unrelated embeddings are nearly orthogonal, so non-matching tuples "
                "all have volume close to 1")
    meta = {"dims": list(volumes), "median": [float(np.median(v)) for v in volumes.values()],
            "min": [float(v.min()) for v in volumes.values()]}
    fig.update_layout(**titled_layout(title, subtitle), meta=meta)
    fig.update_yaxes(title="volume", range=[0, 1.02])
    fig.update_xaxes(title="embedding dimension")
    return fig


def temperature_softmax(
    volumes: Any, temperatures: Sequence[float] = (1.0, 0.3, 0.07, 0.01), target: int | None = None
) -> go.Figure:
    """One anchor's softmax over its candidates, softmax(-volume / tau), for several temperatures.

    What to look at: volumes differ by little (all lie in [0, 1]), so at tau = 1 the softmax is
    almost flat and the loss can hardly tell the matching candidate; a small tau sharpens it
    until the smallest volume takes nearly all the probability. ``fig.layout.meta["probabilities"]``
    holds the rows, one per temperature.

    Args:
        volumes: (M,) the anchor's volumes with each candidate (a row of ``gramviz.volume_matrix``).
        temperatures: positive temperatures, one bar group each.
        target: the matching candidate's index, marked on the axis.

    Example:
        >>> fig = temperature_softmax([0.2, 0.9], temperatures=(1.0, 0.01))
        >>> [round(p[0], 3) for p in fig.layout.meta["probabilities"]]
        [0.668, 1.0]
    """
    v = torch.from_numpy(as_array(volumes, "volumes", ndim=1))
    if not temperatures or any(not t > 0 for t in temperatures):
        raise ValueError(f"temperatures must be positive, got {tuple(temperatures)}")
    if target is not None and not 0 <= target < len(v):
        raise ValueError(f"target must lie in [0, {len(v)}), got {target}")
    names = [f"{j}{' (match)' if j == target else ''}<br>V = {number(float(x))}" for j, x in enumerate(v)]
    probs = [torch.softmax(-v / t, dim=0).tolist() for t in temperatures]
    fig = go.Figure([go.Bar(x=names, y=p, name=f"τ = {t:g}", marker_color=PALETTE[c % len(PALETTE)],
                            hovertemplate=f"τ = {t:g}<br>candidate %{{x}}<br>probability %{{y:.3f}}<extra></extra>")
                     for c, (t, p) in enumerate(zip(temperatures, probs))])
    subtitle = ("a small temperature τ turns small differences in volume into a confident choice, which is what "
                "the cross-entropy rewards or punishes")
    fig.update_layout(**titled_layout("softmax(−volume / τ) over one anchor's candidates", subtitle,
                                      margin={"b": 80}), barmode="group",
                      meta={"temperatures": list(temperatures), "probabilities": probs})
    fig.update_yaxes(title="probability", range=[0, 1.02])
    fig.update_xaxes(title="candidate (its volume with the anchor)")
    return fig


def _check_history(history: Sequence[Mapping[str, Any]]) -> list[tuple[float, np.ndarray, np.ndarray]]:
    if not history:
        raise ValueError("volume_separation: history is empty")
    out = []
    for i, h in enumerate(history):
        missing = {"epoch", "positives", "negatives"} - set(h)
        if missing:
            raise ValueError(f"volume_separation: history[{i}] lacks {sorted(missing)}")
        out.append((float(h["epoch"]), as_array(h["positives"], f"history[{i}]['positives']", ndim=1),
                    as_array(h["negatives"], f"history[{i}]['negatives']", ndim=1)))
    return out


def _band(x: list[float], lo: list[float], hi: list[float], color: str, name: str) -> go.Scatter:
    """A filled band between two curves (one closed polygon)."""
    return go.Scatter(x=x + x[::-1], y=hi + lo[::-1], fill="toself", fillcolor=color, opacity=0.2, mode="none",
                      name=f"{name}: 10-90%", legendgroup=name, hoverinfo="skip")


def volume_separation(history: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Volumes of matching and non-matching tuples over training: medians and 10-90% bands.

    What to look at: the matching tuples' volumes (orange) should fall away from the non-matching
    ones (blue), which stay near 1; the gap between the bands is what retrieval uses. The hover
    and ``fig.layout.meta["auc"]`` give the ROC AUC of separating them by volume at each epoch.

    Args:
        history: one mapping per look at the model, in order, with ``epoch`` and the volumes
            ``positives`` (matching tuples) and ``negatives`` (non-matching ones), e.g. from
            `gramviz.analysis.matching_volumes`.

    Example:
        >>> fig = volume_separation([{"epoch": 0, "positives": [0.9, 0.8], "negatives": [0.9, 0.95]},
        ...                          {"epoch": 1, "positives": [0.3, 0.4], "negatives": [0.9, 0.95]}])
        >>> fig.layout.meta["auc"]
        [0.875, 1.0]
    """
    rows = _check_history(history)
    epochs = [e for e, _, _ in rows]
    aucs = [roc_auc(-pos, -neg) for _, pos, neg in rows]  # higher score = matching: minus the volume
    fig = go.Figure()
    for index, name, color in ((2, "non-matching", NEGATIVE), (1, "matching", POSITIVE)):
        values = [r[index] for r in rows]
        lo, med, hi = ([float(np.quantile(v, q)) for v in values] for q in (0.1, 0.5, 0.9))
        fig.add_trace(_band(epochs, lo, hi, color, name))
        fig.add_trace(go.Scatter(x=epochs, y=med, mode="lines+markers", name=f"{name}: median", legendgroup=name,
                                 line={"color": color, "width": 3}, customdata=aucs,
                                 hovertemplate=f"{name}, epoch %{{x}}<br>median volume %{{y:.4f}}<br>"
                                               "AUC %{customdata:.3f}<extra></extra>"))
    title = f"Matching vs non-matching volumes: AUC {number(aucs[0])} → {number(aucs[-1])}"
    subtitle = ("while training, matching tuples should sink while non-matching ones stay near 1; the AUC is how "
                "well the volume tells them apart")
    fig.update_layout(**titled_layout(title, subtitle), meta={"epochs": epochs, "auc": aucs})
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="volume (lower = more aligned)", rangemode="tozero")
    return fig
