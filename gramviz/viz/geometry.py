"""The geometry of GRAM, drawn exactly: the parallelotope, its Gram matrix, base x height, cosine vs volume.

The parallelotope is drawn in an orthonormal basis of the vectors' own span (a float64 QR of the
stacked vectors), so the drawing is an isometry: lengths, angles and the volume on screen are
those of the inputs, with nothing lost to a projection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from plotly.subplots import make_subplots

from ..gram import base_height, gram_matrix, volume
from ._solid import (
    FLAT,
    SCENE_BOTTOM,
    arrow,
    camera,
    corners_and_faces,
    scene,
    solid_traces,
    span_coordinates,
    unit_sphere,
    volume_words,
)
from ._style import DIVERGING, PALETTE, SEQUENTIAL, as_array, go, modality_color, number, titled_layout, wrap

__all__ = ["parallelotope", "gram_heatmap", "base_height_figure", "cosine_vs_volume"]


def _default_labels(k: int) -> list[str]:
    return ["text", "video", "audio"] if k == 3 else [f"v{i + 1}" for i in range(k)]


def _stack(
    vectors: Sequence[Any], labels: Sequence[str] | None, what: str, min_k: int = 2
) -> tuple[np.ndarray, list[str]]:
    """Check k >= min_k vectors of one shape (D,) and return them as a float64 (k, D) array and labels."""
    if len(vectors) < min_k:
        raise ValueError(f"{what} needs at least {min_k} vectors, got {len(vectors)}")
    arrs = [as_array(v, f"{what}: vector {i}", ndim=1) for i, v in enumerate(vectors)]
    shapes = {a.shape for a in arrs}
    if len(shapes) > 1:
        raise ValueError(f"{what}: vectors must share one shape (D,), got {[a.shape for a in arrs]}")
    labels = _default_labels(len(arrs)) if labels is None else [str(s) for s in labels]
    if len(labels) != len(arrs):
        raise ValueError(f"{what}: {len(labels)} labels for {len(arrs)} vectors")
    return np.stack(arrs), labels


def _volume(a: np.ndarray) -> float:
    return float(volume(*torch.from_numpy(a)))


def _cosines(a: np.ndarray) -> np.ndarray:
    g = a @ a.T
    n = np.sqrt(np.diag(g))
    return g / np.outer(n, n)


def parallelotope(*vectors: Any, labels: Sequence[str] | None = None, title: str | None = None) -> go.Figure:
    """The parallelogram (2 vectors) or parallelepiped (3 vectors) that GRAM measures, drawn exactly.

    What to look at: the flatter the solid, the better aligned the modalities; its volume is the
    GRAM score (0 when all are collinear, 1 for mutually orthogonal unit vectors). A flat solid
    (volume below 15% of the product of the lengths) is seen from the side of its plane, where it
    shows as a thin sliver; the legend and the cosines sit below the scene, off the solid.

    Args:
        *vectors: 2 or 3 tensors/arrays of shape (D,), D >= k, none zero.
        labels: one name per vector (default "v1", "v2" or "text", "video", "audio").
        title: the figure title (default names the vectors and the volume, with an explanation below).

    Returns:
        A figure with one ``go.Mesh3d`` (the solid, its 2^k corners as vertices), its edges,
        an arrow per vector and the unit sphere when the vectors are near unit length.
        ``fig.layout.meta`` holds the ``volume`` and whether the solid is drawn ``flat``.

    Example:
        >>> fig = parallelotope(torch.eye(4)[0], torch.eye(4)[1] + torch.eye(4)[0])
        >>> len(fig.data[0].x), round(fig.layout.meta["volume"], 6), fig.layout.meta["flat"]
        (4, 1.0, False)
    """
    a, labels = _stack(vectors, labels, "parallelotope")
    k, norms = a.shape[0], np.linalg.norm(a, axis=1)
    if k not in (2, 3):
        raise ValueError(f"parallelotope draws 2 or 3 vectors, got {k}; use gram_heatmap or base_height_figure")
    if a.shape[1] < k:
        raise ValueError(f"parallelotope: {k} vectors need dimension D >= {k}, got D = {a.shape[1]}")
    if (norms == 0).any():
        raise ValueError(f"parallelotope: vector {int(np.argmin(norms))} ({labels[int(np.argmin(norms))]}) is zero")
    vol, cos, coords = _volume(a), _cosines(a), span_coordinates(a)
    shown, flat = volume_words(vol, norms), bool(vol < FLAT * float(np.prod(norms)))
    corners, tri, edges = corners_and_faces(coords)
    traces = solid_traces(corners, tri, edges, shown)
    near_unit = bool(np.all(np.abs(np.log(norms)) < np.log(1.25)))
    extent = np.vstack([corners, -np.eye(3), np.eye(3)] if near_unit else [corners])
    if near_unit:
        traces.append(unit_sphere(k))
    head = 0.09 * float(np.ptp(extent, axis=0).max())
    for i, label in enumerate(labels):
        traces += arrow(coords[i], label, modality_color(label, i), head=head)
    fig = go.Figure(traces)
    fig.update_layout(**_parallelotope_layout(labels, shown, flat, cos, title),
                      scene=scene(extent, k, camera(coords, flat and k == 3)), meta={"volume": vol, "flat": flat})
    return fig


def _parallelotope_layout(labels: list[str], shown: str, flat: bool, cos: np.ndarray, title: str | None) -> dict:
    """Title, explanation, legend and the note of volume and cosines, the last two below the scene."""
    k = len(labels)
    kind, noun, zero = ("parallelogram", "area", "collinear") if k == 2 else ("parallelepiped", "volume", "coplanar")
    subtitle = (f"the {kind} they span, drawn exactly in the basis of their span; flatter = better aligned: "
                f"0 when {zero}, 1 for orthogonal unit vectors" + ("; seen from the side of its plane, where it "
                                                                   "shows as flat" if flat else ""))
    head = (title, "") if title is not None else (f"{', '.join(labels)}: GRAM volume {shown}", subtitle)
    pairs = "   ".join(f"cos({labels[i]}, {labels[j]}) = {number(cos[i, j])}"
                       for i in range(k) for j in range(i + 1, k))
    note = {"text": "<br>".join([f"{noun} √det G = {shown}", *wrap(pairs, 80)]), "xref": "paper", "yref": "paper",
            "x": 0.0, "y": 0.0, "xanchor": "left", "yanchor": "bottom", "align": "left", "showarrow": False,
            "font": {"size": 12}}
    legend = {"orientation": "h", "x": 0.0, "xanchor": "left", "y": SCENE_BOTTOM - 0.01, "yanchor": "top"}
    return titled_layout(*head, annotations=[note], height=620, legend=legend,
                         margin={"l": 10, "r": 10, "t": 80, "b": 10})


def gram_heatmap(*vectors: Any, labels: Sequence[str] | None = None) -> go.Figure:
    """The k x k Gram matrix G[i, j] = <v_i, v_j> of one tuple, values written in the cells.

    What to look at: off-diagonal cells near 0 mean near-orthogonal modalities (large volume);
    cells near the diagonal's values mean aligned ones. The volume is sqrt(det G).

    Args:
        *vectors: k >= 2 tensors/arrays of shape (D,).
        labels: one name per vector (default "text", "video", "audio" for k = 3, else "v1", ...).

    Example:
        >>> gram_heatmap(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0])).data[0].z.tolist()
        [[1.0, 1.0], [1.0, 2.0]]
    """
    a, labels = _stack(vectors, labels, "gram_heatmap")
    g = gram_matrix(*torch.from_numpy(a)).numpy()  # (k, k)
    vol, bound, norms = _volume(a), float(np.abs(g).max()), np.linalg.norm(a, axis=1)
    cells = [[number(x, scale=bound) for x in row] for row in g]
    heat = go.Heatmap(z=g, x=labels, y=labels, colorscale=DIVERGING, zmid=0, zmin=-bound, zmax=bound, text=cells,
                      texttemplate="%{text}", textfont={"size": 14},
                      colorbar={"title": {"text": "dot product", "side": "right"}},
                      hovertemplate="<%{y}, %{x}> = %{z:.6f}<extra></extra>")
    names = ", ".join(labels) if len(labels) <= 4 else f"{len(labels)} vectors"
    det = number(float(np.linalg.det(g)), scale=float(np.prod(norms)) ** 2)
    subtitle = (f"det G = {det} = volume²; diagonal: squared lengths; off it: dot products (cosines for unit "
                "vectors)")
    size = 160 + 70 * len(labels)
    layout = titled_layout(f"Gram matrix of {names}: volume {volume_words(vol, norms)}", subtitle,
                           height=max(size + 110, 470))
    fig = go.Figure(heat, layout=layout)
    fig.update_yaxes(autorange="reversed", scaleanchor="x", title_text="modality")
    fig.update_xaxes(title_text="modality", side="bottom")
    return fig


def _span_words(n: int) -> tuple[str, str]:
    """How to name the base (n = k - 1 vectors) and their span in a sentence."""
    return {1: ("length", "line"), 2: ("area", "plane")}.get(n, (f"{n}-D volume", f"{n}-D span"))


def base_height_figure(anchor: Any, *others: Any, labels: Sequence[str] | None = None) -> go.Figure:
    """Volume = base x height for one tuple: the others' own volume times the anchor's distance from their span.

    What to look at: a small volume from a small height means the anchor lies near the others'
    span (coplanar); from a small base, the other modalities are already aligned with each other.

    Args:
        anchor: the anchor embedding (D,), e.g. text.
        *others: k - 1 >= 1 embeddings (D,), e.g. video and audio.
        labels: k names, the anchor's first (default "text", "video", "audio" for k = 3).

    Example:
        >>> fig = base_height_figure(torch.tensor([1.0, 1.0]), torch.tensor([2.0, 0.0]))
        >>> [round(y, 6) for y in fig.data[0].y]
        [2.0, 1.0, 2.0]
    """
    a, labels = _stack([anchor, *others], labels, "base_height_figure")
    base, height = (float(x) for x in base_height(*torch.from_numpy(a)))
    vol = base * height
    size, span = _span_words(len(others))
    names, their = (labels[1], "its") if len(others) == 1 else (", ".join(labels[1:]), "their")
    x = [f"base<br>{size} of {names if len(others) == 1 else f'({names})'}",
         f"height<br>distance of {labels[0]}<br>from {their} {span}", "volume<br>= base x height"]
    scale = float(np.prod(np.linalg.norm(a, axis=1)))
    shown = [number(base, scale=scale / np.linalg.norm(a[0])), number(height, scale=np.linalg.norm(a[0])),
             volume_words(vol, np.linalg.norm(a, axis=1))]
    bars = go.Bar(x=x, y=[base, height, vol], marker_color=[PALETTE[1], PALETTE[0], PALETTE[3]],
                  text=shown, textposition="outside", cliponaxis=False,
                  hovertemplate="%{x}: %{y:.6f}<extra></extra>", showlegend=False)
    title = f"GRAM volume = base x height = {shown[0]} x {shown[1]} = {shown[2]}"
    subtitle = (f"of ({', '.join(labels)}): the {size} spanned by {names} (base) times the distance of "
                f"{labels[0]} from {their} {span} (height)")
    fig = go.Figure(bars, layout=titled_layout(title, subtitle, height=460, bargap=0.45))
    fig.update_yaxes(title_text="value", range=[0, 1.18 * max(base, height, vol, 1e-12)], rangemode="tozero")
    return fig


def _volume_grid(cos_bc: float, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Vol(a, b) over cos_ab = a, cos_ac = b in [-1, 1] for fixed cos_bc = c; NaN where no unit triple exists."""
    grid = np.linspace(-1.0, 1.0, resolution)
    a, b = np.meshgrid(grid, grid)  # rows: cos_ac, columns: cos_ab
    sq = 1 - a**2 - b**2 - cos_bc**2 + 2 * a * b * cos_bc
    return grid, np.where(sq >= 0, np.sqrt(np.where(sq >= 0, sq, 0.0)), np.nan)


def _add_three_vector_panel(fig: go.Figure, cos_bc: float, resolution: int) -> None:
    """Panel (b): the volume heatmap, contour lines, the coplanar boundary and the infeasible region's label."""
    grid, vol = _volume_grid(cos_bc, resolution)
    low, high = fig.layout.yaxis2.domain  # the colour bar spans panel (b) only
    fig.add_trace(go.Heatmap(x=grid, y=grid, z=vol, zmin=0, zmax=1, colorscale=SEQUENTIAL, name="volume",
                             colorbar={"title": {"text": "volume", "side": "right"}, "y": (low + high) / 2,
                                       "yanchor": "middle", "len": high - low},
                             hovertemplate="cos(a, b) = %{x:.3f}<br>cos(a, c) = %{y:.3f}<br>"
                                           "volume = %{z:.3f}<extra></extra>"), 2, 1)
    fig.add_trace(go.Contour(x=grid, y=grid, z=vol, showscale=False, contours={"coloring": "none", "showlabels": True,
                             "start": 0.2, "end": 0.8, "size": 0.2}, line={"color": "white", "width": 1},
                             hoverinfo="skip", name="volume contours", showlegend=False), 2, 1)
    # coplanar triples (volume 0): the angle (a, c) is the angle (a, b) plus or minus the angle (b, c)
    phi = np.linspace(0, 2 * np.pi, 361)
    fig.add_trace(go.Scatter(x=np.cos(phi), y=np.cos(phi - np.arccos(cos_bc)), mode="lines", name="volume 0 (coplanar)",
                             line={"color": "#333333", "width": 2}, hoverinfo="skip"), 2, 1)
    fig.add_annotation(x=0.8, y=-0.85, xref="x2", yref="y2", text="no such<br>unit vectors", showarrow=False,
                       font={"size": 11, "color": "#555555"})


def cosine_vs_volume(cos_bc: float = 0.0, resolution: int = 201) -> go.Figure:
    """Teaching figure: volume against cosine for two unit vectors, and over the cosines of three.

    What to look at: (a) Vol = sin(theta) while cos(theta) runs from 1 to -1, so Vol^2 + cos^2 = 1;
    (b) the volume of three unit vectors needs all three cosines; blank where none exist. The
    panels are stacked, so the figure fits a 600 px column.

    Args:
        cos_bc: the fixed cosine between the second and third vectors in panel (b), in [-1, 1].
        resolution: grid points per axis (and along theta), >= 3.

    Example:
        >>> fig = cosine_vs_volume(cos_bc=0.5, resolution=5)
        >>> fig.data[2].z.shape
        (5, 5)
    """
    if not np.isfinite(cos_bc) or not -1 <= cos_bc <= 1:
        raise ValueError(f"cos_bc must be a cosine in [-1, 1], got {cos_bc}")
    if int(resolution) != resolution or resolution < 3:
        raise ValueError(f"resolution must be an integer >= 3, got {resolution}")
    resolution = int(resolution)
    fig = make_subplots(rows=2, cols=1, vertical_spacing=0.13, row_heights=[0.36, 0.64], subplot_titles=(
        "(a) two unit vectors: Vol = sin θ", f"(b) three unit vectors with cos(b, c) = {number(cos_bc)}"))
    theta = np.linspace(0, np.pi, resolution)
    for y, name, color, dash in [(np.sin(theta), "volume = sin θ", PALETTE[3], "solid"),
                                 (np.cos(theta), "cosine = cos θ", PALETTE[0], "dash")]:
        fig.add_trace(go.Scatter(x=theta, y=y, name=name, mode="lines", line={"color": color, "width": 3, "dash": dash},
                                 hovertemplate="θ = %{x:.3f} rad<br>%{y:.3f}<extra>" + name + "</extra>"), 1, 1)
    _add_three_vector_panel(fig, float(cos_bc), resolution)
    fig.update_layout(**titled_layout(
        "Cosine versus volume", "for two unit vectors 1 − cos² = Vol²; for three, the volume depends on all "
        "three cosines (blank: no such unit vectors)", height=900, margin={"l": 60, "r": 30, "b": 90},
        legend={"orientation": "h", "x": 0, "xanchor": "left", "y": 0, "yref": "container", "yanchor": "bottom"}))
    ticks = np.arange(5) * np.pi / 4
    fig.update_xaxes(title_text="angle θ between the vectors", tickvals=ticks,
                     ticktext=["0", "π/4", "π/2", "3π/4", "π"], row=1, col=1)
    fig.update_yaxes(title_text="value", range=[-1.05, 1.05], row=1, col=1)
    # a margin around [-1, 1]: the corner tick labels "−1" of the two axes would otherwise touch
    fig.update_xaxes(title_text="cos(a, b)", range=[-1.08, 1.08], constrain="domain", row=2, col=1)
    fig.update_yaxes(title_text="cos(a, c)", range=[-1.08, 1.08], scaleanchor="x2", row=2, col=1)
    return fig
