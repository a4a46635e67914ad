"""Where the modalities sit: a 2-D map of all modalities in one space, and the modality gap."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import _map_markers as markers
from ._map_markers import Encoding
from ._style import SEQUENTIAL, as_array, base_layout, modality_color, number, title_layout
from .alignment import truncate

__all__ = ["project", "embedding_map", "modality_gap"]

METHODS = ("umap", "pca", "tsne")
# fewer points than this and UMAP / t-SNE have no neighbourhoods to speak of: PCA instead
_MIN_POINTS = {"umap": 10, "tsne": 5, "pca": 2}
_WEBGL_ABOVE = 1000  # points per figure from which traces are drawn with WebGL


def _check_embeddings(embeddings: Mapping[str, Any], name: str = "embeddings") -> dict[str, np.ndarray]:
    if not isinstance(embeddings, Mapping) or not embeddings:
        raise TypeError(f"{name} must be a non-empty dict from modality name to an (N, D) tensor or array")
    arrays = {str(m): as_array(x, f"{name}[{m!r}]", ndim=2) for m, x in embeddings.items()}
    dims = {a.shape[1] for a in arrays.values()}
    if len(dims) > 1:
        raise ValueError(f"{name}: modalities must share one embedding dimension, got {({m: a.shape for m, a in arrays.items()})}")
    return arrays


def effective_method(method: str, n_points: int) -> str:
    """The reducer actually used: PCA when there are too few points for ``method``."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if n_points < 2:
        raise ValueError(f"a 2-D map needs at least 2 points in all, got {n_points}")
    return method if n_points >= _MIN_POINTS[method] else "pca"


def project(embeddings: Mapping[str, Any], method: str = "umap", seed: int = 0,
            fit_points: int | None = None) -> dict[str, np.ndarray]:
    """2-D coordinates of every embedding, all modalities fitted together in one space.

    Pure and deterministic for a seed, so a caller can compute a map once and reuse it. With too
    few points for UMAP (< 10) or t-SNE (< 5) it falls back to PCA (see `effective_method`).

    Args:
        embeddings: modality name -> (N_m, D) tensor or array.
        method: "umap", "pca" or "tsne".
        seed: random state of UMAP / t-SNE and of the fitting sample.
        fit_points: fit UMAP or PCA on a seeded sample of at most this many points and place the
            others with the fitted ``transform`` (a large gallery maps in seconds, not hours);
            None fits on every point. t-SNE has no transform: it always fits on every point.

    Returns:
        modality name -> (N_m, 2) float64 coordinates.

    Example:
        >>> xy = project({"text": np.eye(3), "video": np.eye(3)}, method="pca")
        >>> xy["video"].shape
        (3, 2)
    """
    arrays = _check_embeddings(embeddings)
    stacked = np.concatenate(list(arrays.values()))  # (sum N_m, D)
    n = stacked.shape[0]
    if fit_points is not None and fit_points < 2:
        raise ValueError(f"fit_points must be at least 2, got {fit_points}")
    used = effective_method(method, n if fit_points is None else min(n, fit_points))
    sample = _sample_items(n, n if fit_points is None or used == "tsne" else fit_points, seed)
    fitted = stacked[sample]
    if used == "umap":
        import umap  # lazily: importing it compiles with numba

        init = "spectral" if len(fitted) >= 50 else "pca"
        reducer = umap.UMAP(n_components=2, n_neighbors=min(15, len(fitted) - 1), random_state=seed, init=init,
                            n_jobs=1)
    elif used == "tsne":
        from sklearn.manifold import TSNE

        reducer = TSNE(n_components=2, perplexity=min(30.0, (n - 1) / 3), init="pca", random_state=seed)
    else:
        reducer = _PCA2()
    xy = np.asarray(reducer.fit_transform(fitted), dtype=np.float64)
    if len(sample) < n:  # the rest placed by the fitted map; the sample keeps its fitted coordinates
        rest = np.setdiff1d(np.arange(n), sample)
        full = np.empty((n, 2))
        full[sample], full[rest] = xy, np.asarray(reducer.transform(stacked[rest]), dtype=np.float64)
        xy = full
    bounds = np.cumsum([len(a) for a in arrays.values()])[:-1]
    return dict(zip(arrays, np.split(xy, bounds)))


class _PCA2:
    """PCA to two components (padded with zeros when the data has fewer), with transform."""

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        from sklearn.decomposition import PCA

        self.k = min(2, x.shape[0], x.shape[1])
        self.pca = PCA(n_components=self.k, svd_solver="full").fit(x)
        return self.transform(x)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return np.pad(self.pca.transform(x), ((0, 0), (0, 2 - self.k)))  # one component only: y = 0


def _per_item(values: Sequence[Any] | None, n: int, name: str) -> list[Any] | None:
    if values is None:
        return None
    values = list(values.tolist() if hasattr(values, "tolist") else values)
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} entries for {n} items per modality")
    return values


def embedding_map(
    embeddings: Mapping[str, Any],
    method: str = "umap",
    color: Sequence[Any] | None = None,
    hover: Sequence[Any] | None = None,
    ids: Sequence[Any] | None = None,
    connect: bool = False,
    seed: int = 0,
    max_points: int = 3000,
    title: str | None = None,
    fit_points: int = 5000,
    symbol: Sequence[Any] | None = None,
) -> go.Figure:
    """UMAP / PCA / t-SNE map of the embeddings of all modalities in one space.

    One point per embedding per modality, the reducer fitted on all modalities stacked; a legend
    key says which marker is which modality. Above ``max_points`` points a seeded sample of items
    (the same in every modality) is drawn; above ``fit_points`` UMAP and PCA are fitted on a seeded
    sample and place the rest by ``transform`` (the title says both); WebGL above 1,000 points.
    Up to 8 classes take a colour each (marker = modality); more take a (colour, symbol) pair no
    other class shares and the modality becomes the fill: filled, open, open with a dot.

    Args:
        embeddings: modality name -> (N, D) tensor or array; row i of each is item i.
        method: "umap", "pca" or "tsne" (PCA when there are too few points).
        color: N per-item labels (class names: one colour each) or numbers (a colour scale);
            default: colour by modality.
        hover: N per-item texts (e.g. captions), truncated on hover.
        ids: N per-item ids shown on hover; default the row index.
        connect: join the modalities of each item with a thin line.
        seed: random state of the reducer and of the sample.
        max_points: most points drawn in all.
        title: figure title; a default says what to look at and how the points are coloured.
        fit_points: most points the reducer is fitted on (t-SNE, which cannot place new points,
            is fitted on every point drawn).
        symbol: N per-item labels (at most 8 values) drawn as the marker symbol, next to
            ``color`` (e.g. colour = shape, symbol = motion: 20 classes as 4 x 5); fill = modality.

    Example:
        >>> fig = embedding_map({"text": np.eye(4), "audio": np.eye(4)[::-1]}, method="pca")
        >>> sum(len(t.x) for t in fig.data if t.meta)
        8
    """
    arrays = _check_embeddings(embeddings)
    n_items, k = _item_count(arrays, max_points), len(arrays)
    color, symbol = _per_item(color, n_items, "color"), _per_item(symbol, n_items, "symbol")
    hover, ids = _per_item(hover, n_items, "hover"), _per_item(ids, n_items, "ids") or list(range(n_items))
    keep = _sample_items(n_items, max_points // k, seed)
    used = effective_method(method, min(keep.size * k, fit_points))
    xy = project({m: a[keep] for m, a in arrays.items()}, used, seed, fit_points=fit_points)
    pick = (lambda values: None if values is None else [values[i] for i in keep])  # the drawn items
    enc = markers.encoding(pick(color), pick(symbol), list(arrays), keep.size)
    items = {"ids": pick(ids), "hover": None if hover is None else [truncate(hover[i], 80) for i in keep]}
    fig = go.Figure()
    if connect:
        _add_links(fig, list(xy.values()))
    _add_points(fig, xy, enc, items, webgl=keep.size * k > _WEBGL_ABOVE)
    _label_map(fig, method, used, title, _colouring(color, symbol), k, seed, n_items, keep, fit_points)
    _place_legend(fig, enc)
    return fig


def _item_count(arrays: dict[str, np.ndarray], max_points: int) -> int:
    """N, the items every modality has, once checked against the other modalities and ``max_points``."""
    n = {a.shape[0] for a in arrays.values()}
    if len(n) > 1:
        raise ValueError(f"embeddings: every modality needs the same N items, got {({m: a.shape for m, a in arrays.items()})}")
    if max_points < len(arrays):
        raise ValueError(f"max_points must allow at least one item per modality ({len(arrays)}), got {max_points}")
    return n.pop()


def _colouring(color: list[Any] | None, symbol: list[Any] | None) -> str:
    """What the default title says the colours (and symbols) show."""
    if symbol is not None:
        return "classes by colour and marker"
    if color is None:
        return ""
    return "coloured by value" if markers.is_numeric(color) else "coloured by class"


def _label_map(fig: go.Figure, method: str, used: str, title: str | None, colouring: str, k: int, seed: int,
               n_items: int, keep: np.ndarray, fit_points: int) -> None:
    """Title (what to look at; what was sampled and how the map was fitted), axes and meta."""
    drawn = keep.size * k
    notes = [f"{keep.size:,} of {n_items:,} items shown (random sample, seed {seed})"] if keep.size < n_items else []
    if used != "tsne" and drawn > fit_points:
        notes.append(f"{used.upper()} fitted on {fit_points:,} of the {drawn:,} points, the rest placed by its transform")
    fallback = f" ({method.upper()} needs more points)" if used != method else ""
    if title is None:
        title = f"{used.upper()}{fallback} of {k} modalities in one space" + (f", {colouring}" if colouring else "")
        look = {"": "mixed = aligned, separate islands = a modality gap",
                "coloured by value": "similar values should sit together within each modality's region"}.get(
            colouring, "one class's points should gather within each modality's region")
        notes.insert(0, look)
    fig.update_layout(**base_layout(""), meta={"method": used, "items_shown": keep.tolist(), "fit_points": min(drawn, fit_points)})
    fig.update_layout(**title_layout(title, "<br>".join(notes)))
    fig.update_xaxes(title=f"{used.upper()} 1", zeroline=False)
    fig.update_yaxes(title=f"{used.upper()} 2", zeroline=False)


def _place_legend(fig: go.Figure, enc: Encoding) -> None:
    """The key under a colour scale; a long legend makes the figure taller instead of scrolling."""
    if enc.numeric:
        fig.update_layout(legend={"x": 1.02, "xanchor": "left", "y": 0, "yanchor": "bottom"})
    rows = sum(t.showlegend is not False for t in fig.data) + len({k["legendgrouptitle"] for k in enc.keys} - {None})
    fig.update_layout(legend={"tracegroupgap": 4})
    needed = fig.layout.margin.t + fig.layout.margin.b + 24 * rows + 30
    if needed > 450:
        fig.update_layout(height=needed)


def _sample_items(n: int, most: int, seed: int) -> np.ndarray:
    """All item indices, or a seeded sorted sample of ``most`` of them."""
    if n <= most:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, most, replace=False))


def _add_links(fig: go.Figure, coords: list[np.ndarray]) -> None:
    """One line trace: each item's modalities joined in order, items separated by gaps."""
    n = coords[0].shape[0]
    pts = np.full((n, len(coords) + 1, 2), np.nan)  # (items, modalities + gap, xy)
    for p, c in enumerate(coords):
        pts[:, p] = c
    pts = pts.reshape(-1, 2)
    trace = go.Scattergl if n * len(coords) > _WEBGL_ABOVE else go.Scatter
    fig.add_trace(trace(x=pts[:, 0], y=pts[:, 1], mode="lines", line={"color": "rgba(120,120,120,0.35)", "width": 1},
                        name="same item", hoverinfo="skip", connectgaps=False))


def _add_points(fig: go.Figure, xy: dict[str, np.ndarray], enc: Encoding, items: dict[str, Any], webgl: bool) -> None:
    """Point traces, one per (group, modality), then the legend-only key of markers."""
    trace = go.Scattergl if webgl else go.Scatter
    text = items["hover"] or [""] * len(items["ids"])
    groups = list(dict.fromkeys(enc.groups))
    plain = enc.colors is None and enc.symbols is None and not enc.keys  # coloured by modality
    for p, (modality, coords) in enumerate(xy.items()):
        for g in groups:
            rows = np.array([i for i, x in enumerate(enc.groups) if x == g], dtype=int)
            marker = markers.marker(enc, rows, modality, p)
            if enc.numeric:
                marker.update(colorscale=SEQUENTIAL, showscale=p == 0,
                              colorbar={"title": {"text": "colour"}, "len": 0.55, "y": 1, "yanchor": "top"})
            name = modality if plain else str(g)
            fig.add_trace(trace(
                x=coords[rows, 0], y=coords[rows, 1], mode="markers", marker=marker, name=name,
                legendgroup=None if g is None else str(g), meta={"modality": modality},
                showlegend=plain or (enc.group_legend and p == 0),
                customdata=[[items["ids"][i], text[i]] for i in rows],
                hovertemplate=f"<b>%{{customdata[0]}}</b> ({modality})<br>%{{customdata[1]}}<extra></extra>",
            ))
    for key in enc.keys:
        fig.add_trace(trace(x=[None], y=[None], mode="markers", name=key["name"], marker=key["marker"],
                            legendgroup=key["legendgroup"], legendgrouptitle_text=key["legendgrouptitle"],
                            hoverinfo="skip"))


def modality_gap(
    embeddings: Mapping[str, Any], other: Mapping[str, Any] | None = None, names: Sequence[str] = ("before", "after")
) -> go.Figure:
    """Distances between modality centroids (top) and each modality's spread (bottom).

    The centroid of a modality is the mean of its embeddings as given (pass them normalised, as
    the model compares them); the spread is the mean distance of its embeddings to that centroid.
    With ``other``, two models (or before/after training) side by side on one colour scale.
    ``fig.layout.meta`` holds ``centroid_distances`` and ``spread`` per model.

    Args:
        embeddings: modality name -> (N_m, D) tensor or array.
        other: a second such dict to compare with.
        names: the two panels' names.

    Example:
        >>> fig = modality_gap({"text": np.eye(2), "audio": -np.eye(2)})
        >>> fig.layout.meta["centroid_distances"]["before"][0][1]
        1.4142135623730951
    """
    models = {names[0]: _check_embeddings(embeddings)}
    if other is not None:
        if len(names) != 2 or names[0] == names[1]:
            raise ValueError(f"names must be two different panel names, got {names!r}")
        models[names[1]] = _check_embeddings(other, "other")
    stats = {name: _gap_stats(arrays) for name, arrays in models.items()}
    zmax = max(float(d.max()) for d, _ in stats.values()) or 1.0
    fig = make_subplots(rows=2, cols=len(models), row_heights=[0.62, 0.38], vertical_spacing=0.16,
                        subplot_titles=[f"{nm}: centroid distances" for nm in models] + [f"{nm}: spread" for nm in models])
    for c, (name, arrays) in enumerate(models.items(), start=1):
        dist, spread = stats[name]
        mods = list(arrays)
        fig.add_trace(go.Heatmap(
            z=dist, x=mods, y=mods, zmin=0, zmax=zmax, colorscale=SEQUENTIAL, showscale=c == 1,
            text=[[number(x, scale=zmax) for x in row] for row in dist], texttemplate="%{text}",
            colorbar={"title": {"text": "distance"}, "len": 0.55, "y": 0.75},
            hovertemplate="%{y} to %{x}: %{z:.4f}<extra></extra>",
        ), row=1, col=c)
        fig.add_trace(go.Bar(x=mods, y=spread, marker_color=[modality_color(m, p) for p, m in enumerate(mods)],
                             text=[number(x) for x in spread], textposition="auto", showlegend=False,
                             hovertemplate="%{x}: %{y:.4f}<extra></extra>"), row=2, col=c)
        fig.update_yaxes(autorange="reversed", row=1, col=c)
        fig.update_yaxes(title="mean distance to centroid" if c == 1 else None, row=2, col=c)
    if len(models) == 2:  # spreads on one scale (axes are numbered row by row: row 2, col 1 is y3)
        fig.update_yaxes(matches="y3", row=2, col=2)
    meta = {"centroid_distances": {nm: d.tolist() for nm, (d, _) in stats.items()},
            "spread": {nm: s.tolist() for nm, (_, s) in stats.items()}}
    fig.update_layout(**base_layout(""), height=620, meta=meta)
    fig.update_layout(**title_layout("Modality gap", "far-apart centroids with small spreads mean each modality "
                                                     "lives in its own region", gap=24))
    return fig


def _gap_stats(arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(K, K) distances between modality centroids and (K,) mean distance to own centroid."""
    centroids = np.stack([a.mean(0) for a in arrays.values()])  # (K, D)
    dist = np.linalg.norm(centroids[:, None] - centroids[None], axis=-1)
    spread = np.array([np.linalg.norm(a - c, axis=1).mean() for a, c in zip(arrays.values(), centroids)])
    return dist, spread
