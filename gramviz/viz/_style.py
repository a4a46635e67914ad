"""Shared look of gramviz figures: colour-blind-safe palette, layout defaults, input checks."""

from __future__ import annotations

from typing import Any

import numpy as np

try:  # plotly is an optional extra: say how to get it instead of a bare ImportError
    import plotly.graph_objects as go
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError("gramviz.viz needs plotly: pip install 'gramviz[viz]'") from e

# Okabe-Ito: distinguishable with the common colour-vision deficiencies
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
MODALITY_COLORS = {"text": "#0072B2", "video": "#E69F00", "audio": "#009E73"}
MODALITY_SYMBOLS = {"text": "circle", "video": "square", "audio": "diamond"}
POSITIVE, NEGATIVE = "#D55E00", "#0072B2"  # matching vs non-matching tuples
SEQUENTIAL = "Viridis"  # heatmaps: perceptually uniform, colour-blind safe
DIVERGING = "RdBu_r"  # signed values (dot products): blue negative, red positive, white at 0
TEMPLATE = "plotly_white"


def modality_color(name: str, index: int) -> str:
    """The colour of a modality: fixed for text/video/audio, from the palette otherwise."""
    return MODALITY_COLORS.get(name, PALETTE[index % len(PALETTE)])


def modality_symbol(name: str, index: int) -> str:
    symbols = ["circle", "square", "diamond", "cross", "x", "triangle-up", "star", "hexagon"]
    return MODALITY_SYMBOLS.get(name, symbols[index % len(symbols)])


def base_layout(title: str, **kwargs: Any) -> dict[str, Any]:
    """Layout keywords every figure starts from: template, title, margins, legend."""
    layout: dict[str, Any] = {
        "template": TEMPLATE,
        "title": {"text": title, "x": 0.02, "xanchor": "left"},
        "margin": {"l": 60, "r": 30, "t": 70, "b": 55},
        "legend": {"bgcolor": "rgba(255,255,255,0.7)"},
        "font": {"size": 13},
    }
    layout.update(kwargs)
    return layout


def as_array(x: Any, name: str, ndim: int | None = None) -> np.ndarray:
    """A float64 numpy array from a tensor or array-like, with a clear error for bad input."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().double().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be a tensor or array of numbers, got {type(x).__name__}") from e
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return arr


def figure(title: str, **layout: Any) -> go.Figure:
    """An empty figure with the gramviz layout."""
    return go.Figure(layout=base_layout(title, **layout))
