"""Where the modalities sit: a 2-D map of all modalities in one space, and the modality gap."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ._style import PALETTE, SEQUENTIAL, as_array, base_layout, modality_color, modality_symbol
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
) -> go.Figure:
    """UMAP / PCA / t-SNE map of the embeddings of all modalities in one space.

    One point per embedding per modality (marker symbol = modality), the reducer fitted on all
    modalities stacked. Above ``max_points`` points in all, a seeded sample of items (the same
    items in every modality) is drawn; above ``fit_points`` drawn points, UMAP and PCA are fitted
    on a seeded sample and place the rest with their ``transform``; the title says both. Above
    1,000 points the markers are drawn with WebGL, so 100,000 points stay responsive.

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
        title: figure title; a default says what to look at.
        fit_points: most points the reducer is fitted on (t-SNE, which cannot place new points,
            is fitted on every point drawn).

    Example:
        >>> fig = embedding_map({"text": np.eye(4), "audio": np.eye(4)[::-1]}, method="pca")
        >>> sum(len(t.x) for t in fig.data if t.meta)
        8
    """
    arrays = _check_embeddings(embeddings)
    n = {a.shape[0] for a in arrays.values()}
    if len(n) > 1:
        raise ValueError(f"embeddings: every modality needs the same N items, got {({m: a.shape for m, a in arrays.items()})}")
    n_items, k = n.pop(), len(arrays)
    if max_points < k:
        raise ValueError(f"max_points must allow at least one item per modality ({k}), got {max_points}")
    color, hover = _per_item(color, n_items, "color"), _per_item(hover, n_items, "hover")
    ids = _per_item(ids, n_items, "ids") or list(range(n_items))
    keep = _sample_items(n_items, max_points // k, seed)
    drawn = keep.size * k
    used = effective_method(method, min(drawn, fit_points))
    xy = project({m: a[keep] for m, a in arrays.items()}, used, seed, fit_points=fit_points)
    items = {"color": None if color is None else [color[i] for i in keep], "ids": [ids[i] for i in keep],
             "hover": None if hover is None else [truncate(hover[i], 80) for i in keep]}
    fig = go.Figure()
    if connect:
        _add_links(fig, list(xy.values()))
    _add_points(fig, xy, items, webgl=keep.size * k > _WEBGL_ABOVE)
    _label_map(fig, method, used, title, k, seed, n_items, keep, fit_points)
    return fig


def _label_map(fig: go.Figure, method: str, used: str, title: str | None, k: int, seed: int, n_items: int,
               keep: np.ndarray, fit_points: int) -> None:
    """Title (what to look at; what was sampled and how the map was fitted), axes and meta."""
    drawn = keep.size * k
    note = f"; {keep.size:,} of {n_items:,} items shown (random sample, seed {seed})" if keep.size < n_items else ""
    if used != "tsne" and drawn > fit_points:
        note += f"; {used.upper()} fitted on {fit_points:,} of the {drawn:,} points, the rest placed by its transform"
    fallback = f" ({method.upper()} needs more points)" if used != method else ""
    default = f"{used.upper()}{fallback} of {k} modalities in one space: mixed = aligned, separate islands = a modality gap"
    fig.update_layout(**base_layout((title or default) + note),
                      meta={"method": used, "items_shown": keep.tolist(), "fit_points": min(drawn, fit_points)})
    fig.update_layout(title={"font": {"size": 14}})
    fig.update_xaxes(title=f"{used.upper()} 1", zeroline=False)
    fig.update_yaxes(title=f"{used.upper()} 2", zeroline=False)


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


def _add_points(fig: go.Figure, xy: dict[str, np.ndarray], items: dict[str, Any], webgl: bool) -> None:
    """Point traces: one per modality, or per (class, modality) when coloured by class labels."""
    trace = go.Scattergl if webgl else go.Scatter
    color = items["color"]
    numeric = color is not None and all(isinstance(c, (int, float, np.number)) and not isinstance(c, bool) for c in color)
    classes = [None] if color is None or numeric else list(dict.fromkeys(color))
    if len(classes) > 24:
        raise ValueError(f"color has {len(classes)} classes; at most 24 can be told apart, pass numbers for a colour scale")
    palette = PALETTE if len(classes) <= len(PALETTE) else _long_palette()
    text = items["hover"] or [""] * len(items["ids"])
    for p, (modality, coords) in enumerate(xy.items()):
        for c, cls in enumerate(classes):
            rows = np.arange(len(coords)) if cls is None else np.array([i for i, x in enumerate(color) if x == cls])
            marker = {"symbol": modality_symbol(modality, p), "size": 7, "opacity": 0.8, "line": {"width": 0.5, "color": "white"}}
            if numeric:
                marker.update(color=color, colorscale=SEQUENTIAL, showscale=p == 0, colorbar={"title": {"text": "colour"}, "x": 1.02})
            else:
                marker["color"] = modality_color(modality, p) if cls is None else palette[c % len(palette)]
            name = modality if cls is None else str(cls)
            fig.add_trace(trace(
                x=coords[rows, 0], y=coords[rows, 1], mode="markers", marker=marker, name=name,
                legendgroup=name, showlegend=not numeric and (cls is None or p == 0), meta={"modality": modality},
                customdata=[[items["ids"][i], text[i]] for i in rows],
                hovertemplate=f"<b>%{{customdata[0]}}</b> ({modality})<br>%{{customdata[1]}}<extra></extra>",
            ))
    if color is not None:  # legend entries for the symbols, in grey
        if numeric:
            fig.update_layout(legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"})
        for p, modality in enumerate(xy):
            fig.add_trace(trace(x=[None], y=[None], mode="markers", name=f"{modality} (symbol)", legendgroup="symbols",
                                marker={"symbol": modality_symbol(modality, p), "color": "#555555", "size": 8}))


def _long_palette() -> list[str]:
    import plotly.express as px

    return px.colors.qualitative.Dark24


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
            text=np.round(dist, 3), texttemplate="%{text}", colorbar={"title": {"text": "distance"}, "len": 0.55, "y": 0.75},
            hovertemplate="%{y} to %{x}: %{z:.4f}<extra></extra>",
        ), row=1, col=c)
        fig.add_trace(go.Bar(x=mods, y=spread, marker_color=[modality_color(m, p) for p, m in enumerate(mods)],
                             text=np.round(spread, 3), textposition="auto", showlegend=False,
                             hovertemplate="%{x}: %{y:.4f}<extra></extra>"), row=2, col=c)
        fig.update_yaxes(autorange="reversed", row=1, col=c)
        fig.update_yaxes(title="mean distance to centroid" if c == 1 else None, row=2, col=c)
    if len(models) == 2:  # spreads on one scale (axes are numbered row by row: row 2, col 1 is y3)
        fig.update_yaxes(matches="y3", row=2, col=2)
    title = "Modality gap: far-apart centroids with small spreads mean each modality lives in its own region"
    meta = {"centroid_distances": {nm: d.tolist() for nm, (d, _) in stats.items()},
            "spread": {nm: s.tolist() for nm, (_, s) in stats.items()}}
    fig.update_layout(**base_layout(title), height=620, meta=meta)
    return fig


def _gap_stats(arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(K, K) distances between modality centroids and (K,) mean distance to own centroid."""
    centroids = np.stack([a.mean(0) for a in arrays.values()])  # (K, D)
    dist = np.linalg.norm(centroids[:, None] - centroids[None], axis=-1)
    spread = np.array([np.linalg.norm(a - c, axis=1).mean() for a, c in zip(arrays.values(), centroids)])
    return dist, spread
