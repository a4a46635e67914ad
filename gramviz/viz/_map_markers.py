"""How an embedding map tells classes and modalities apart: marker colour, symbol and fill.

Up to 8 classes take one Okabe-Ito colour each and the marker symbol says the modality. More
classes (20 event classes of the generated world, say) cannot be told apart by colour alone: each
class then takes a (colour, symbol) pair no other class shares, or the caller gives a second
per-item label for the symbol (colour = shape, symbol = motion), and the modality moves to the
marker's fill (filled, open, open with a dot). Either way a grey legend key says which is which.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._style import PALETTE, modality_color, modality_symbol

# well separated on white: Okabe-Ito without its pale yellow, then Tol's wine and olive
CLASS_COLORS = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#882255", "#999933"]
CLASS_SYMBOLS = ["circle", "square", "diamond", "triangle-up", "cross", "star", "hexagon", "triangle-down"]
FILLS = (("", "filled"), ("-open", "open"), ("-open-dot", "open, dot"), ("-dot", "dot"))  # suffix, key name
KEY_GREY = "#555555"
MAX_CLASSES = 24


@dataclass
class Encoding:
    """Per item: its trace group, colour and base symbol; and the legend-only key entries.

    ``colors``/``symbols`` None: the modality's own colour/symbol. ``by_fill``: the modality is the
    marker's fill. ``group_legend``: the first modality's trace of each group is its legend entry.
    """

    groups: list[Any]
    colors: list[Any] | None = None
    symbols: list[str] | None = None
    numeric: bool = False
    by_fill: bool = False
    group_legend: bool = True
    keys: list[dict[str, Any]] = field(default_factory=list)


def is_numeric(values: list[Any] | None) -> bool:
    return values is not None and all(isinstance(c, (int, float, np.number)) and not isinstance(c, bool) for c in values)


def class_styles(classes: list[Any]) -> dict[Any, tuple[str, str]]:
    """A (colour, symbol) pair per class, no pair shared: a colour each up to 8 classes (symbol
    ``""``: the modality's), else the fewest colours that, with up to 3 symbols each, cover them.

    Example:
        >>> styles = class_styles([f"class {i}" for i in range(20)])
        >>> len(set(styles.values()))
        20
    """
    if len(classes) > MAX_CLASSES:
        raise ValueError(f"color has {len(classes)} classes; at most {MAX_CLASSES} can be told apart, "
                         "pass numbers for a colour scale or split the labels into color= and symbol=")
    if len(classes) <= len(PALETTE):
        return {c: (PALETTE[p], "") for p, c in enumerate(classes)}
    n_symbols = math.ceil(len(classes) / len(CLASS_COLORS))
    n_colors = math.ceil(len(classes) / n_symbols)
    return {c: (CLASS_COLORS[p % n_colors], CLASS_SYMBOLS[p // n_colors]) for p, c in enumerate(classes)}


def encoding(color: list[Any] | None, symbol: list[Any] | None, modalities: list[str], n: int) -> Encoding:
    """How to draw each of ``n`` items: see the module docstring."""
    if color is None and symbol is None:  # colour and symbol by modality: the points are the key
        return Encoding(groups=[None] * n)
    if symbol is None and is_numeric(color):
        return Encoding(groups=[None] * n, colors=color, numeric=True, group_legend=False,
                        keys=_modality_key(modalities, by_fill=False))
    if symbol is None:
        styles = class_styles(list(dict.fromkeys(color)))
        by_fill = any(s for _, s in styles.values())
        return Encoding(groups=color, colors=[styles[c][0] for c in color],
                        symbols=[styles[c][1] for c in color] if by_fill else None, by_fill=by_fill,
                        keys=_modality_key(modalities, by_fill))
    return _two_labels(color, symbol, modalities)


def _two_labels(color: list[Any] | None, symbol: list[Any], modalities: list[str]) -> Encoding:
    """Colour from ``color`` (a colour scale when numbers), symbol from ``symbol``, fill = modality."""
    shapes = list(dict.fromkeys(symbol))
    if len(shapes) > len(CLASS_SYMBOLS):
        raise ValueError(f"symbol has {len(shapes)} values; at most {len(CLASS_SYMBOLS)} marker symbols can be told apart")
    marks = {s: CLASS_SYMBOLS[p] for p, s in enumerate(shapes)}
    keys = [_key(str(s), marks[s], "marker", "symbol") for s in shapes]
    numeric = is_numeric(color)
    if color is None or numeric:
        return Encoding(groups=[None] * len(symbol), colors=color, symbols=[marks[s] for s in symbol], numeric=numeric,
                        by_fill=True, group_legend=False, keys=keys + _modality_key(modalities, True))
    values = list(dict.fromkeys(color))
    if len(values) > len(CLASS_COLORS):
        raise ValueError(f"color has {len(values)} values next to symbol; at most {len(CLASS_COLORS)} colours can be told apart")
    paints = {c: CLASS_COLORS[p] for p, c in enumerate(values)}
    keys = [_key(str(c), "circle", "colour" if p == 0 else None, str(c), paints[c]) for p, c in enumerate(values)] + keys
    return Encoding(groups=color, colors=[paints[c] for c in color], symbols=[marks[s] for s in symbol], by_fill=True,
                    group_legend=False, keys=keys + _modality_key(modalities, True))


def _key(name: str, symbol: str, title: str | None, group: str, color: str = KEY_GREY) -> dict[str, Any]:
    return {"name": name, "marker": {"symbol": symbol, "color": color, "size": 9, "line": {"width": 1.5, "color": color}},
            "legendgroup": group, "legendgrouptitle": title}


def _modality_key(modalities: list[str], by_fill: bool) -> list[dict[str, Any]]:
    """Grey legend entries saying which marker (or fill) is which modality."""
    if by_fill:
        return [_key(m, "circle" + FILLS[p % len(FILLS)][0], "fill = modality", "modality") for p, m in enumerate(modalities)]
    return [_key(m, modality_symbol(m, p), "marker = modality", "modality") for p, m in enumerate(modalities)]


def marker(enc: Encoding, rows: np.ndarray, modality: str, p: int) -> dict[str, Any]:
    """The marker of one trace: the items ``rows`` of modality number ``p``."""
    out: dict[str, Any] = {"size": 8 if enc.by_fill else 7, "opacity": 0.85}
    fill = FILLS[p % len(FILLS)][0] if enc.by_fill else ""
    if enc.symbols is None:
        out["symbol"] = modality_symbol(modality, p) + fill
    else:
        symbols = [enc.symbols[i] + fill for i in rows]
        out["symbol"] = symbols[0] if len(set(symbols)) == 1 else symbols
    if enc.colors is None:
        out["color"] = modality_color(modality, p)
    else:
        colors = [enc.colors[i] for i in rows]
        out["color"] = colors[0] if not enc.numeric and len(set(colors)) == 1 else colors
    # open markers are drawn by their outline: a thicker one in the marker's colour
    out["line"] = {"width": 1.5} if fill.startswith("-open") else {"width": 0.5, "color": "white"}
    return out
