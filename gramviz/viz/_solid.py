"""The parts of the parallelotope figure: exact coordinates in the vectors' span, the solid's
corners, faces and edges, arrows, the unit sphere, and a scene with equal scaling and a camera
that shows a flat solid as flat."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._style import PALETTE, go, number

_SOLID, _EDGE, _SPHERE = PALETTE[4], "#4D4D4D", "#C4C4C4"
# the default view: from the front right, a little above the (e1, e2) plane
_EYE = np.array([1.45, -1.3, 0.7])
# a solid whose volume is below this fraction of the product of its edge lengths is drawn as flat
FLAT = 0.15
# how far above its plane a flat solid is seen, degrees: a thin sliver, the arrows still apart
GRAZING_DEG = 10.0
# the scene's share of the plot's height; the legend and the note sit below it, never on the solid
SCENE_BOTTOM = 0.25


def volume_words(vol: float, norms: np.ndarray) -> str:
    """The volume as people read it: 3 significant digits, or "0 (collinear)" / "0 (coplanar)" for a
    flat tuple (volume below 1e-6 of the product of the vectors' lengths, float noise included)."""
    shown = number(vol, scale=float(np.prod(norms)))
    if shown != "0":
        return shown
    return "0 (" + {2: "collinear", 3: "coplanar"}.get(len(norms), "linearly dependent") + ")"


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


def corners_and_faces(coords: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
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


def unit_sphere(k: int, n: int = 48) -> go.Scatter3d:
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


def arrow(tip: np.ndarray, label: str, color: str, head: float) -> list[go.BaseTraceType]:
    """A vector from the origin: a line (named by its label, last point = tip) and a cone head."""
    norm = float(np.linalg.norm(tip))
    line = go.Scatter3d(x=[0, tip[0]], y=[0, tip[1]], z=[0, tip[2]], mode="lines", name=label, legendgroup=label,
                        line={"color": color, "width": 7},
                        hovertemplate=f"{label}<br>|{label}| = {number(norm)}<extra></extra>")
    u = tip / norm * head
    cone = go.Cone(x=[tip[0]], y=[tip[1]], z=[tip[2]], u=[u[0]], v=[u[1]], w=[u[2]], anchor="tip", sizemode="raw",
                   colorscale=[[0, color], [1, color]], showscale=False, legendgroup=label, showlegend=False,
                   hoverinfo="skip", name=f"{label} head")
    return [line, cone]


def solid_traces(corners: np.ndarray, tri: np.ndarray, edges: list[tuple[int, int]], shown: str) -> list[Any]:
    """The translucent solid (one Mesh3d on the 2^k corners, ``shown`` its volume as text) and its
    edges (one line trace, NaN-separated)."""
    kind, noun = ("parallelogram", "area") if len(corners) == 4 else ("parallelepiped", "volume")
    xyz = np.concatenate([np.vstack([corners[i], corners[j], [np.nan] * 3]) for i, j in edges])
    solid = go.Mesh3d(x=corners[:, 0], y=corners[:, 1], z=corners[:, 2], i=tri[:, 0], j=tri[:, 1], k=tri[:, 2],
                      color=_SOLID, opacity=0.28, flatshading=True, name=f"{kind}, {noun} {shown}",
                      showlegend=True, hovertemplate=f"{kind}<br>{noun} = {shown}<extra></extra>")
    lines = go.Scatter3d(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], mode="lines", name="edges",
                         line={"color": _EDGE, "width": 2}, hoverinfo="skip")
    return [solid, lines]


def _xyz(v: np.ndarray) -> dict[str, float]:
    return {"x": float(v[0]), "y": float(v[1]), "z": float(v[2])}


def camera(coords: np.ndarray, flat: bool) -> dict[str, Any]:
    """An orthographic camera for the k vectors ``coords`` (k, 3).

    k = 2: from above the plane. k = 3: from the front right, a little above, unless the solid is
    ``flat``; then from the side of its plane, GRAZING_DEG above it, with the plane level on screen
    and its widest extent across: a flat solid reads as a thin sliver, where the default view would
    show a parallelogram that the eye takes for a box.
    """
    ortho = {"type": "orthographic"}
    if coords.shape[0] == 2:
        return {"eye": {"x": 0, "y": 0, "z": 2}, "up": {"x": 0, "y": 1, "z": 0}, "projection": ortho}
    if not flat:
        return {"eye": _xyz(_EYE), "up": {"x": 0, "y": 0, "z": 1}, "projection": ortho}
    _, _, vt = np.linalg.svd(coords)  # rows: the solid's widest direction, the next, its plane's normal
    across, normal = vt[1], vt[2]
    normal = normal if normal @ _EYE >= 0 else -normal  # seen from the same side as the default view
    across = across if across @ _EYE >= 0 else -across
    up = np.radians(GRAZING_DEG)
    eye = np.linalg.norm(_EYE) * (np.cos(up) * across + np.sin(up) * normal)
    return {"eye": _xyz(eye), "up": _xyz(normal), "projection": ortho}


def scene(extent: np.ndarray, k: int, view: dict[str, Any]) -> dict[str, Any]:
    """Equal scaling on all axes (ranges of one length around ``extent``), the camera ``view``, and a
    domain above SCENE_BOTTOM so that the legend and the note below never cover the solid."""
    lo, hi = extent.min(0), extent.max(0)
    half = 0.54 * float((hi - lo)[:k].max())
    # few ticks: in an oblique view a dense axis's labels run into each other and into its title
    axis = {"zeroline": False, "backgroundcolor": "rgba(0,0,0,0)", "showspikes": False, "nticks": 5}
    titles = ("e1 (first vector)", "e2", "e3")
    axes = {name: {**axis, "range": [c - half, c + half], "title": {"text": text}}
            for name, c, text in zip(("xaxis", "yaxis", "zaxis"), (lo + hi) / 2, titles)}
    # equal ranges and equal aspect ratios: one unit is as long on every axis (an orthographic view
    # keeps it so on screen); the ratio's size sets the zoom
    out: dict[str, Any] = {"aspectmode": "manual", "aspectratio": {"x": 1.2, "y": 1.2, "z": 1.2}, **axes,
                           "camera": view, "domain": {"x": [0, 1], "y": [SCENE_BOTTOM, 1]}}
    if k == 2:  # a flat scene seen from above: the z axis only keeps the plane visible
        out["aspectratio"] = {"x": 1.45, "y": 1.45, "z": 1.45 / 4}
        out["zaxis"] = {**axis, "range": [-half / 4, half / 4], "visible": False}
    return out
