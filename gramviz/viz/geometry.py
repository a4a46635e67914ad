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
from ._style import DIVERGING, PALETTE, SEQUENTIAL, as_array, base_layout, go, modality_color

__all__ = ["parallelotope", "gram_heatmap", "base_height_figure", "cosine_vs_volume"]

_SOLID, _EDGE, _SPHERE = PALETTE[4], "#4D4D4D", "#C4C4C4"


def _fmt(x: float) -> str:
    return f"{x:.4f}" if abs(x) >= 1e-3 or x == 0 else f"{x:.3g}"


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


def span_coordinates(vectors: np.ndarray) -> np.ndarray:
    """Coordinates (k, 3) of k <= 3 vectors (k, D) in an orthonormal basis of their span.

    From a float64 QR of the (D, k) matrix with a non-negative diagonal: the first vector lies on
    +e1, the second in the (e1, e2) half-plane with e2 >= 0, the third has e3 >= 0. The map is an
    isometry, so every dot product (hence the volume) is kept. Rows are zero-padded to 3 columns.
    """
    _, r = np.linalg.qr(vectors.T)  # (k, k): column i holds the coordinates of vector i
    signs = np.where(np.diag(r) < 0, -1.0, 1.0)
    coords = np.zeros((vectors.shape[0], 3))
    coords[:, : r.shape[0]] = (signs[:, None] * r).T
    return coords


def _corners_and_faces(coords: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """The 2^k corners (corner m = sum of the vectors whose bit is set in m), triangles and edges."""
    k = coords.shape[0]
    corners = np.array([sum((coords[b] for b in range(k) if m >> b & 1), np.zeros(3)) for m in range(2**k)])
    edges = [(m, m | 1 << b) for m in range(2**k) for b in range(k) if not m >> b & 1]
    if k == 2:
        return corners, np.array([[0, 1, 3], [0, 3, 2]]), edges
    triangles = []
    for axis in range(3):  # the two faces normal to each edge direction
        j, l = (b for b in range(3) if b != axis)
        for side in (0, 1 << axis):
            c00, c10, c01 = side, side | 1 << j, side | 1 << l
            c11 = c10 | c01
            triangles += [[c00, c10, c11], [c00, c11, c01]]
    tri = np.array(triangles)
    # orient every triangle outwards (consistent normals), judged from the solid's centre
    p0, p1, p2 = corners[tri[:, 0]], corners[tri[:, 1]], corners[tri[:, 2]]
    outward = np.einsum("ij,ij->i", np.cross(p1 - p0, p2 - p0), p0 - corners.mean(0))
    tri[outward < 0] = tri[outward < 0][:, [0, 2, 1]]
    return corners, tri, edges


def _unit_sphere(k: int, n: int = 48) -> go.Scatter3d:
    """A light wireframe of the unit sphere (k = 3) or the unit circle of the plane (k = 2)."""
    t = np.linspace(0, 2 * np.pi, n + 1)
    pts: list[np.ndarray] = []
    if k == 2:
        pts.append(np.stack([np.cos(t), np.sin(t), 0 * t], 1))
    else:
        for lat in np.radians([-60, -30, 0, 30, 60]):
            pts.append(np.stack([np.cos(lat) * np.cos(t), np.cos(lat) * np.sin(t), np.full_like(t, np.sin(lat))], 1))
        for lon in np.radians(np.arange(0, 180, 30)):
            pts.append(np.stack([np.cos(lon) * np.cos(t), np.sin(lon) * np.cos(t), np.sin(t)], 1))
    xyz = np.concatenate([np.vstack([p, [[np.nan] * 3]]) for p in pts])
    name = "unit circle" if k == 2 else "unit sphere"
    return go.Scatter3d(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], mode="lines", name=name,
                        line={"color": _SPHERE, "width": 1.5}, hoverinfo="skip")


def _arrow(tip: np.ndarray, label: str, color: str, head: float) -> list[go.BaseTraceType]:
    """A vector from the origin: a line (named by its label, last point = tip) and a cone head."""
    norm = float(np.linalg.norm(tip))
    line = go.Scatter3d(x=[0, tip[0]], y=[0, tip[1]], z=[0, tip[2]], mode="lines", name=label, legendgroup=label,
                        line={"color": color, "width": 7},
                        hovertemplate=f"{label}<br>|{label}| = {norm:.4f}<extra></extra>")
    u = tip / norm * head
    cone = go.Cone(x=[tip[0]], y=[tip[1]], z=[tip[2]], u=[u[0]], v=[u[1]], w=[u[2]], anchor="tip", sizemode="raw",
                   colorscale=[[0, color], [1, color]], showscale=False, legendgroup=label, showlegend=False,
                   hoverinfo="skip", name=f"{label} head")
    return [line, cone]


def parallelotope(*vectors: Any, labels: Sequence[str] | None = None, title: str | None = None) -> go.Figure:
    """The parallelogram (2 vectors) or parallelepiped (3 vectors) that GRAM measures, drawn exactly.

    What to look at: the flatter the solid, the better aligned the modalities; its volume is the
    GRAM score (0 when all are collinear, 1 for mutually orthogonal unit vectors).

    Args:
        *vectors: 2 or 3 tensors/arrays of shape (D,), D >= k, none zero.
        labels: one name per vector (default "v1", "v2" or "text", "video", "audio").
        title: the figure title (default names the vectors and the volume).

    Returns:
        A figure with one ``go.Mesh3d`` (the solid, its 2^k corners as vertices), its edges,
        an arrow per vector and the unit sphere when the vectors are near unit length.

    Example:
        >>> fig = parallelotope(torch.eye(4)[0], torch.eye(4)[1] + torch.eye(4)[0])
        >>> len(fig.data[0].x)
        4
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
    corners, tri, edges = _corners_and_faces(coords)
    traces = _solid_traces(corners, tri, edges, vol)
    near_unit = bool(np.all(np.abs(np.log(norms)) < np.log(1.25)))
    extent = np.vstack([corners, -np.eye(3), np.eye(3)] if near_unit else [corners])
    if near_unit:
        traces.append(_unit_sphere(k))
    head = 0.09 * float(np.ptp(extent, axis=0).max())
    for i, label in enumerate(labels):
        traces += _arrow(coords[i], label, modality_color(label, i), head=head)
    pairs = "   ".join(f"cos({labels[i]}, {labels[j]}) = {cos[i, j]:.3f}" for i in range(k) for j in range(i + 1, k))
    kind = "parallelogram" if k == 2 else "parallelepiped"
    default = (f"The {kind} of {', '.join(labels)}: GRAM volume {_fmt(vol)}<br><sup>flatter = better aligned: "
               "0 when collinear, 1 for orthogonal unit vectors; drawn exactly in the basis of their span</sup>")
    fig = go.Figure(traces)
    fig.update_layout(**_scene_layout(title or default, extent, k, f"volume sqrt(det G) = {_fmt(vol)}   {pairs}"))
    return fig


def _solid_traces(corners: np.ndarray, tri: np.ndarray, edges: list[tuple[int, int]], vol: float) -> list[Any]:
    """The translucent solid (one Mesh3d on the 2^k corners) and its edges (one line trace, NaN-separated)."""
    kind, noun = ("parallelogram", "area") if len(corners) == 4 else ("parallelepiped", "volume")
    xyz = np.concatenate([np.vstack([corners[i], corners[j], [np.nan] * 3]) for i, j in edges])
    solid = go.Mesh3d(x=corners[:, 0], y=corners[:, 1], z=corners[:, 2], i=tri[:, 0], j=tri[:, 1], k=tri[:, 2],
                      color=_SOLID, opacity=0.28, flatshading=True, name=f"{kind} ({noun} {_fmt(vol)})",
                      showlegend=True, hovertemplate=f"{kind}<br>{noun} = {_fmt(vol)}<extra></extra>")
    lines = go.Scatter3d(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], mode="lines", name="edges",
                         line={"color": _EDGE, "width": 2}, hoverinfo="skip")
    return [solid, lines]


def _scene_layout(title: str, extent: np.ndarray, k: int, note: str) -> dict[str, Any]:
    """Equal scaling on all axes (ranges of one length around ``extent``), a camera suiting k, a note below."""
    lo, hi = extent.min(0), extent.max(0)
    half = 0.54 * float((hi - lo)[:k].max())
    axis = {"zeroline": False, "backgroundcolor": "rgba(0,0,0,0)", "showspikes": False}
    titles = ("e1 (along the first vector)", "e2", "e3")
    axes = {name: {**axis, "range": [c - half, c + half], "title": {"text": text}}
            for name, c, text in zip(("xaxis", "yaxis", "zaxis"), (lo + hi) / 2, titles)}
    # equal ranges and equal aspect ratios: one unit is as long on every axis (an orthographic view
    # keeps it so on screen); the ratio's size sets the zoom
    ortho = {"type": "orthographic"}
    scene: dict[str, Any] = {"aspectmode": "manual", "aspectratio": {"x": 1.2, "y": 1.2, "z": 1.2}, **axes,
                             "camera": {"eye": {"x": 1.45, "y": -1.3, "z": 0.7}, "projection": ortho},
                             "domain": {"x": [0, 1], "y": [0.06, 1]}}
    if k == 2:  # a flat scene seen from above: the z axis only keeps the plane visible
        scene.update(aspectratio={"x": 1.45, "y": 1.45, "z": 1.45 / 4},
                     camera={"eye": {"x": 0, "y": 0, "z": 2}, "up": {"x": 0, "y": 1, "z": 0}, "projection": ortho})
        scene["zaxis"] = {**axis, "range": [-half / 4, half / 4], "visible": False}
    note_ann = {"text": note, "xref": "paper", "yref": "paper", "x": 0.0, "y": 0.0, "xanchor": "left",
                "yanchor": "bottom", "showarrow": False, "font": {"size": 12}}
    return base_layout(title, scene=scene, annotations=[note_ann], height=620,
                       margin={"l": 10, "r": 10, "t": 80, "b": 20}, legend={"x": 0.99, "xanchor": "right", "y": 0.95})


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
    vol, bound = _volume(a), float(np.abs(g).max())
    heat = go.Heatmap(z=g, x=labels, y=labels, colorscale=DIVERGING, zmid=0, zmin=-bound, zmax=bound,
                      texttemplate="%{z:.3f}", textfont={"size": 14}, colorbar={"title": {"text": "dot product"}},
                      hovertemplate="<%{y}, %{x}> = %{z:.6f}<extra></extra>")
    names = ", ".join(labels) if len(labels) <= 4 else f"{len(labels)} vectors"
    title = (f"Gram matrix of {names}: volume {_fmt(vol)}<br><sup>det G = {_fmt(float(np.linalg.det(g)))} = volume²; "
             "diagonal: squared lengths; off it: dot products (cosines for unit vectors)</sup>")
    size = 160 + 70 * len(labels)
    fig = go.Figure(heat, layout=base_layout(title, width=max(size + 200, 620), height=max(size + 80, 440)))
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
    bars = go.Bar(x=x, y=[base, height, vol], marker_color=[PALETTE[1], PALETTE[0], PALETTE[3]],
                  text=[_fmt(base), _fmt(height), _fmt(vol)], textposition="outside", cliponaxis=False,
                  hovertemplate="%{x}: %{y:.6f}<extra></extra>", showlegend=False)
    title = (f"GRAM volume of ({', '.join(labels)}) = {_fmt(base)} x {_fmt(height)} = {_fmt(vol)}<br><sup>the {size} "
             f"spanned by {names} (base) times the distance of {labels[0]} from {their} {span} (height)</sup>")
    fig = go.Figure(bars, layout=base_layout(title, height=460, bargap=0.45))
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
    fig.add_trace(go.Heatmap(x=grid, y=grid, z=vol, zmin=0, zmax=1, colorscale=SEQUENTIAL, name="volume",
                             colorbar={"title": {"text": "volume"}, "x": 1.01, "len": 0.85},
                             hovertemplate="cos(a, b) = %{x:.3f}<br>cos(a, c) = %{y:.3f}<br>"
                                           "volume = %{z:.4f}<extra></extra>"), 1, 2)
    fig.add_trace(go.Contour(x=grid, y=grid, z=vol, showscale=False, contours={"coloring": "none", "showlabels": True,
                             "start": 0.2, "end": 0.8, "size": 0.2}, line={"color": "white", "width": 1},
                             hoverinfo="skip", name="volume contours", showlegend=False), 1, 2)
    # coplanar triples (volume 0): the angle (a, c) is the angle (a, b) plus or minus the angle (b, c)
    phi = np.linspace(0, 2 * np.pi, 361)
    fig.add_trace(go.Scatter(x=np.cos(phi), y=np.cos(phi - np.arccos(cos_bc)), mode="lines", name="volume 0 (coplanar)",
                             line={"color": "#333333", "width": 2}, hoverinfo="skip"), 1, 2)
    fig.add_annotation(x=0.8, y=-0.85, xref="x2", yref="y2", text="no such<br>unit vectors", showarrow=False,
                       font={"size": 11, "color": "#555555"})


def cosine_vs_volume(cos_bc: float = 0.0, resolution: int = 201) -> go.Figure:
    """Teaching figure: volume against cosine for two unit vectors, and over the cosines of three.

    What to look at: (a) Vol = sin(theta) while cos(theta) runs from 1 to -1, so Vol^2 + cos^2 = 1;
    (b) the volume of three unit vectors needs all three cosines; blank where none exist.

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
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, column_widths=[0.5, 0.5], subplot_titles=(
        "(a) two unit vectors: Vol = sin θ", f"(b) volume of three unit vectors with cos(b, c) = {cos_bc:.2f}"))
    theta = np.linspace(0, np.pi, resolution)
    for y, name, color, dash in [(np.sin(theta), "volume = sin θ", PALETTE[3], "solid"),
                                 (np.cos(theta), "cosine = cos θ", PALETTE[0], "dash")]:
        fig.add_trace(go.Scatter(x=theta, y=y, name=name, mode="lines", line={"color": color, "width": 3, "dash": dash},
                                 hovertemplate="θ = %{x:.3f} rad<br>%{y:.4f}<extra>" + name + "</extra>"), 1, 1)
    _add_three_vector_panel(fig, float(cos_bc), resolution)
    fig.update_layout(**base_layout(
        "Cosine versus volume<br><sup>for two unit vectors 1 - cos² = Vol²; for three, the volume depends on all "
        "three cosines (blank: no such unit vectors)</sup>", height=480, width=1050,
        margin={"l": 60, "r": 30, "t": 100, "b": 55},
        legend={"x": 0.02, "y": 0.02, "bgcolor": "rgba(255,255,255,0.8)"}))
    fig.update_annotations(yshift=10, selector={"text": fig.layout.annotations[0].text})
    fig.update_annotations(yshift=10, selector={"text": fig.layout.annotations[1].text})
    ticks = np.arange(5) * np.pi / 4
    fig.update_xaxes(title_text="angle θ between the vectors", tickvals=ticks,
                     ticktext=["0", "π/4", "π/2", "3π/4", "π"], row=1, col=1)
    fig.update_yaxes(title_text="value", range=[-1.05, 1.05], row=1, col=1)
    fig.update_xaxes(title_text="cos(a, b)", range=[-1, 1], constrain="domain", row=1, col=2)
    fig.update_yaxes(title_text="cos(a, c)", range=[-1, 1], scaleanchor="x2", row=1, col=2)
    return fig
