"""An interactive notebook explorer: three unit vectors set by their pairwise angles, the parallelepiped live.

ipywidgets (and anywidget, which Plotly's ``FigureWidget`` needs) are imported only when
`explorer` is called; `vectors_from_angles` is pure numpy and serves tests and scripts too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..modalities import MODALITIES
from .geometry import parallelotope

__all__ = ["vectors_from_angles", "explorer"]

# a triple on the boundary (coplanar vectors) is feasible; allow for rounding in the degrees
_TOL_DEG = 1e-9


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


def _sync(widget: Any, fig: Any) -> None:
    """Copy traces, title, note and axis ranges of ``fig`` into ``widget`` (same traces), keeping the camera."""
    with widget.batch_update():
        for old, new in zip(widget.data, fig.data):
            props = new.to_plotly_json()
            props.pop("type", None), props.pop("uid", None)
            old.update(props)
        widget.layout.title.text = fig.layout.title.text
        widget.layout.annotations[0].text = fig.layout.annotations[0].text
        for axis in ("xaxis", "yaxis", "zaxis"):
            widget.layout.scene[axis].range = fig.layout.scene[axis].range


def explorer(angles: Sequence[float] = (60, 60, 60), labels: Sequence[str] = MODALITIES) -> Any:
    """An ipywidgets explorer: three sliders set the pairwise angles, the parallelepiped and its volume follow.

    What to look at: closing any one angle flattens the solid; the volume reaches 0 when the three
    vectors become coplanar and 1 when all angles are 90 degrees.

    Args:
        angles: the starting angles (a, b), (a, c), (b, c) in degrees; must be feasible.
        labels: names of the three vectors.

    Returns:
        ``ipywidgets.VBox`` of the sliders, a message line and a ``plotly.graph_objects.FigureWidget``.
        Angle triples that no unit vectors realise leave the last valid figure and say why.
    """
    import ipywidgets as widgets
    import plotly.graph_objects as go

    if len(angles) != 3 or len(labels) != 3:
        raise ValueError(f"explorer needs 3 angles and 3 labels, got {len(angles)} and {len(labels)}")
    vecs = vectors_from_angles(*angles)
    fig = go.FigureWidget(parallelotope(*vecs, labels=labels))
    pairs = [(0, 1), (0, 2), (1, 2)]
    sliders = [
        widgets.FloatSlider(value=float(x), min=0, max=180, step=1, description=f"∠({labels[i]}, {labels[j]})",
                            continuous_update=True, readout_format=".0f", style={"description_width": "initial"})
        for x, (i, j) in zip(angles, pairs)
    ]
    message = widgets.HTML(value="")

    def update(_change: Any = None) -> None:
        try:
            new = vectors_from_angles(*(s.value for s in sliders))
        except ValueError:
            shown = ", ".join(f"{s.value:.0f}°" for s in sliders)
            message.value = (
                f"<b style='color:#D55E00'>No unit vectors {', '.join(labels)} have the angles {shown}:</b> each "
                "angle must be at most the sum of the other two, and all three at most 360°. "
                "The figure still shows the last possible triple."
            )
            return
        message.value = ""
        _sync(fig, parallelotope(*new, labels=labels))

    for s in sliders:
        s.observe(update, names="value")
    return widgets.VBox([widgets.HBox(sliders), message, fig])
