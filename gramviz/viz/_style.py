"""Shared look of gramviz figures: colour-blind-safe palette, layout defaults, input checks."""

from __future__ import annotations

import math
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


def number(x: float, digits: int = 3, scale: float = 1.0) -> str:
    """A number as people read it: ``digits`` significant digits, no float noise, and exact zeros
    and values below 1e-6 of ``scale`` shown as ``0``.

    Example:
        >>> [number(v) for v in (0.8912345, 0.4139999999999999, 2.76e-32, 12345.6, -0.00012345, 0.0)]
        ['0.891', '0.414', '0', '1.23e+4', '-0.000123', '0']
    """
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    if abs(x) < 1e-6 * abs(scale):
        return "0"
    text = f"{x:.{digits}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent):+d}"
    return text


def volume_text(v: float, digits: int = 3) -> str:
    """A GRAM volume for titles and legends: ``"0 (coplanar)"`` for a flat tuple, else `number`.

    Example:
        >>> volume_text(1.38e-32), volume_text(0.5)
        ('0 (coplanar)', '0.5')
    """
    shown = number(v, digits)
    return "0 (coplanar)" if shown == "0" else shown


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


TITLE_SIZE, SUBTITLE_SIZE = 15, 12  # px
_LINE = 1.3  # plotly's line height, in units of the title's font size


def wrap(text: str, width: int) -> list[str]:
    """``text`` broken into lines of at most ``width`` characters, keeping the caller's ``<br>``."""
    import textwrap

    return [line for part in text.split("<br>") for line in (textwrap.wrap(part, width) or [""])]


def title_layout(title: str, subtitle: str = "", width: int = 70, gap: int = 14) -> dict[str, Any]:
    """Layout keywords for a title that fits a 600 px column: the title and a smaller grey
    subtitle, each wrapped at about ``width`` characters, at the top of the figure, and a top
    margin that holds them with ``gap`` px to spare above the plot.

    Example:
        >>> title_layout("Modality gap", "far apart centroids")["title"]["text"]
        "Modality gap<br><span style='font-size:12px;color:#555555'>far apart centroids</span>"
    """
    lines = wrap(title, width)
    sub = wrap(subtitle, int(width * 1.4)) if subtitle else []  # a smaller, narrower font
    text = "<br>".join(lines)
    if sub:
        text += f"<br><span style='font-size:{SUBTITLE_SIZE}px;color:#555555'>" + "<br>".join(sub) + "</span>"
    top = 16 + round(_LINE * TITLE_SIZE * (len(lines) + len(sub))) + gap
    return {"title": {"text": text, "x": 0.02, "xanchor": "left", "y": 1, "yref": "container", "yanchor": "top",
                      "pad": {"t": 16}, "font": {"size": TITLE_SIZE}},
            "margin": {"t": top}}


def titled_layout(title: str, subtitle: str = "", width: int = 60, **kwargs: Any) -> dict[str, Any]:
    """`base_layout` with `title_layout`'s wrapped title and subtitle; ``kwargs["margin"]`` keeps its
    sides, and its top grows to hold the title when that needs more.

    Example:
        >>> titled_layout("Gram matrix", "det G = volume²", margin={"l": 80, "t": 40})["margin"]["l"]
        80
    """
    head = title_layout(title, subtitle, width)
    margin = {**base_layout("")["margin"], **kwargs.pop("margin", {})}
    margin["t"] = max(margin["t"], head["margin"]["t"])
    return {**base_layout(title, **kwargs), "title": head["title"], "margin": margin}
