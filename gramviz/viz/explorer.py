"""An interactive notebook explorer: three unit vectors set by their pairwise angles, the parallelepiped live.

ipywidgets (and anywidget, which Plotly's ``FigureWidget`` needs) are imported only when
`explorer` is called; `vectors_from_angles` is pure numpy and serves tests and scripts too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..modalities import MODALITIES
from ._style import number
from .geometry import parallelotope

__all__ = ["vectors_from_angles", "explorer"]

# a triple on the boundary (coplanar vectors) is feasible; allow for rounding in the degrees
_TOL_DEG = 1e-9
_PAIRS = ((0, 1), (0, 2), (1, 2))  # the angles' vectors: (a, b), (a, c), (b, c)


def _check_angles(ab: float, ac: float, bc: float) -> None:
    """Raise ValueError unless three unit vectors with these pairwise angles (degrees) exist.

    The 3 x 3 matrix of cosines must be positive semi-definite; for angles in [0, 180] that is the
    spherical triangle inequality: each angle at most the sum of the other two, all three at most 360.
    """
    angles = (ab, ac, bc)
    for name, x in zip(("ab", "ac", "bc"), angles):
        if not np.isfinite(x) or not 0 <= x <= 180:
            raise ValueError(f"angle {name} must be in [0, 180] degrees, got {x}")
    names = ("(a, b)", "(a, c)", "(b, c)")
    for i in range(3):
        rest = [angles[j] for j in range(3) if j != i]
        if angles[i] > sum(rest) + _TOL_DEG:
            raise ValueError(
                f"no three unit vectors have pairwise angles {tuple(angles)} degrees: the angle {names[i]} = "
                f"{angles[i]} exceeds the sum of the other two ({rest[0]} + {rest[1]})"
            )
    if sum(angles) > 360 + _TOL_DEG:
        raise ValueError(
            f"no three unit vectors have pairwise angles {tuple(angles)} degrees: they sum to more than 360"
        )


def vectors_from_angles(ab: float, ac: float, bc: float) -> np.ndarray:
    """Three unit vectors in R^3 whose pairwise angles are ab, ac, bc degrees.

    a = e1, b in the (e1, e2) plane, c above it (c_z >= 0).

    Args:
        ab, ac, bc: the angles between (a, b), (a, c) and (b, c), in degrees within [0, 180].

    Returns:
        (3, 3) float64 array, one unit vector per row.

    Raises:
        ValueError: an angle outside [0, 180] or a triple no unit vectors realise, e.g. (10, 10, 90).

    Example:
        >>> np.round(vectors_from_angles(90, 90, 90), 6) + 0.0
        array([[1., 0., 0.],
               [0., 1., 0.],
               [0., 0., 1.]])
    """
    _check_angles(ab, ac, bc)
    cab, cac, cbc = np.cos(np.radians([ab, ac, bc]))
    sab = np.sin(np.radians(ab))
    b = np.array([cab, sab, 0.0])
    if sab > 1e-12:
        cy = (cbc - cac * cab) / sab
    else:  # b = +-a: c only needs the right angle to a (then to b by feasibility)
        cy = np.sin(np.radians(ac))
    cz = np.sqrt(max(1.0 - cac**2 - cy**2, 0.0))
    c = np.array([cac, cy, cz])
    return np.stack([np.array([1.0, 0.0, 0.0]), b, c / np.linalg.norm(c)])


def _feasible_range(angles: Sequence[float], i: int) -> tuple[float, float]:
    """The values angle ``i`` (degrees) can take with the other two fixed: from |p - q| to
    min(p + q, 360 - p - q); never empty for p, q in [0, 180]."""
    p, q = (float(angles[j]) for j in range(3) if j != i)
    return abs(p - q), min(p + q, 360.0 - p - q)


def _snap_text(name: str, others: Sequence[float], value: float, limit: float, by_sum: bool) -> str:
    """Why an angle was set back, e.g. "∠(text, video) can be at most 140° with the other two at 60° and 80°"."""
    bound = "at most" if limit < value else "at least"
    why = " (the three add up to at most 360°)" if by_sum and limit < value else ""
    return (f"<b style='color:#D55E00'>{name} can be {bound} {number(limit, 4)}° with the other two at "
            f"{number(others[0], 4)}° and {number(others[1], 4)}°{why}: set to {number(limit, 4)}°.</b>")


def _sync(widget: Any, fig: Any) -> None:
    """Copy traces, title, note, axis ranges and meta of ``fig`` into ``widget`` (same traces). The
    camera is the user's, except when the solid becomes flat or stops being flat: then it is ``fig``'s."""
    with widget.batch_update():
        for old, new in zip(widget.data, fig.data):
            props = new.to_plotly_json()
            props.pop("type", None), props.pop("uid", None)
            old.update(props)
        widget.layout.title.text = fig.layout.title.text
        widget.layout.annotations[0].text = fig.layout.annotations[0].text
        for axis in ("xaxis", "yaxis", "zaxis"):
            widget.layout.scene[axis].range = fig.layout.scene[axis].range
        if widget.layout.meta["flat"] != fig.layout.meta["flat"]:
            widget.layout.scene.camera = fig.layout.scene.camera
        widget.layout.meta = fig.layout.meta


def _angle_rows(angles: Sequence[float], labels: Sequence[str]) -> tuple[list[Any], list[Any], list[Any]]:
    """One row per pair: a full-width slider (at least 2 px per degree) and a box to type the angle in."""
    import ipywidgets as widgets

    sliders, boxes, rows = [], [], []
    for x, (i, j) in zip(angles, _PAIRS):
        # no readout: the box beside the slider shows the value and takes a typed one
        sliders.append(widgets.FloatSlider(
            value=float(x), min=0, max=180, step=1, description=f"∠({labels[i]}, {labels[j]})", readout=False,
            continuous_update=True, style={"description_width": "120px"},
            layout=widgets.Layout(flex="1 1 auto", min_width=f"{120 + 2 * 180 + 20}px")))
        boxes.append(widgets.BoundedFloatText(value=float(x), min=0, max=180, step=1,
                                              layout=widgets.Layout(width="80px")))
        rows.append(widgets.HBox([sliders[-1], boxes[-1], widgets.Label("°")], layout=widgets.Layout(width="100%")))
    return sliders, boxes, rows


def explorer(angles: Sequence[float] = (60, 60, 60), labels: Sequence[str] = MODALITIES) -> Any:
    """An ipywidgets explorer: three sliders set the pairwise angles, the parallelepiped and its volume follow.

    What to look at: closing any one angle flattens the solid; the volume reaches 0 when the three
    vectors become coplanar and 1 when all angles are 90 degrees. When the solid becomes flat the
    camera turns to see it from the side of its plane, where it shows as flat (see `parallelotope`),
    and back when it stops being flat; otherwise the camera stays where the user put it.

    Each angle has a full-width slider (2 px or more per degree) and a box to type a value in.
    No unit vectors have an angle larger than the sum of the other two, smaller than their
    difference, or three angles adding up to more than 360 degrees: such a value (a fast drag past
    the limit, a typed number) is set to the nearest possible one, and the message line says so.

    Args:
        angles: the starting angles (a, b), (a, c), (b, c) in degrees; must be feasible.
        labels: names of the three vectors.

    Returns:
        ``ipywidgets.VBox`` of the angle rows, a message line and, last, the
        ``plotly.graph_objects.FigureWidget``.
    """
    import ipywidgets as widgets
    import plotly.graph_objects as go

    if len(angles) != 3 or len(labels) != 3:
        raise ValueError(f"explorer needs 3 angles and 3 labels, got {len(angles)} and {len(labels)}")
    fig = go.FigureWidget(parallelotope(*vectors_from_angles(*angles), labels=labels))
    sliders, boxes, rows = _angle_rows(angles, labels)
    message = widgets.HTML(value="")

    def on_slider(change: Any) -> None:
        i = sliders.index(change["owner"])
        values = [s.value for s in sliders]
        lo, hi = _feasible_range(values, i)
        if not lo <= values[i] <= hi:
            limit = min(max(values[i], lo), hi)
            others = [values[j] for j in range(3) if j != i]
            text = _snap_text(sliders[i].description, others, values[i], limit, hi < sum(others))
            sliders[i].value = limit  # draws the limit (this handler again, now feasible)
            message.value = text
            return
        boxes[i].value = values[i]
        message.value = ""
        _sync(fig, parallelotope(*vectors_from_angles(*values), labels=labels))

    def on_box(change: Any) -> None:
        sliders[boxes.index(change["owner"])].value = change["new"]  # on_slider checks it and sets the box back

    for slider, box in zip(sliders, boxes):
        slider.observe(on_slider, names="value")
        box.observe(on_box, names="value")
    return widgets.VBox([*rows, message, fig])
