"""What the Explore tab draws from a gallery, computed once per gallery and kept.

* `gallery_metrics`: `gramviz.exploration.clip_metrics` of every clip (volume, base, height,
  ranks, nearest clip, least aligned modality), kept in the gallery's memo;
* `map_points`: the 2-D map (`gramviz.viz.project`, PCA or UMAP) of every clip's first caption,
  video and audio, kept in memory and in the gallery's cache folder as JSON (UMAP takes seconds);
* `colour_values`: what the colour switch paints, one value per clip;
* `explore_map`: `gramviz.viz.selection_map` of all of it, with a selection greyed.

No Gradio here: the tab (`gramviz.app.tab_explore`) wires these to components.

Example:
    >>> fig = explore_map(gallery, "pca", "height", selected=[0, 3])  # doctest: +SKIP
    >>> fig.layout.meta["selected"]  # doctest: +SKIP
    [0, 3]
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..exploration import ClipMetrics, clip_metrics
from .gallery import MAP_CLIPS
from .gallery_base import Gallery, GalleryError

__all__ = ["COLOURS", "MAP_CLIPS", "METHODS", "MapPoints", "colour_values", "explore_map", "gallery_metrics",
           "map_points", "points_cached"]

METHODS = {"PCA": "pca", "UMAP": "umap"}
# the colour switch: label -> ClipMetrics column (None: the clip's class)
COLOURS = {"class": None, "volume": "volume", "base": "base", "height": "height", "caption rank": "caption_rank"}
_MAX_CLASSES = 24  # more classes cannot be told apart by colour: coloured by modality instead
_FIT_POINTS = 5000  # UMAP / PCA fitted on at most this many points, the rest placed by transform


def gallery_metrics(gallery: Gallery) -> ClipMetrics:
    """Every clip's metrics (`gramviz.exploration.clip_metrics`), computed once per gallery."""

    def compute() -> ClipMetrics:
        classes = [gallery.class_name(c) for c in range(gallery.n_clips)]
        return clip_metrics(gallery.embeddings, gallery.meta.ids, gallery.caption_clips() or None,
                            gallery.meta.captions, classes)

    return gallery.memo("explore:metrics", compute)


@dataclass
class MapPoints:
    """The map of a gallery: ``coords`` (modality -> (P, 2)), ``point_clips`` (modality -> the clip
    of each point), the reducer ``method`` used, and ``shown`` clips out of ``total``."""

    coords: dict[str, np.ndarray]
    point_clips: dict[str, list[int]]
    method: str
    shown: int
    total: int

    def to_json(self) -> str:
        return json.dumps({"coords": {m: xy.tolist() for m, xy in self.coords.items()},
                           "point_clips": self.point_clips, "method": self.method, "shown": self.shown,
                           "total": self.total})

    @classmethod
    def from_json(cls, text: str) -> MapPoints:
        d = json.loads(text)
        return cls({m: np.asarray(xy, dtype=np.float64).reshape(-1, 2) for m, xy in d["coords"].items()},
                   {m: [int(c) for c in clips] for m, clips in d["point_clips"].items()}, d["method"], int(d["shown"]),
                   int(d["total"]))


def _points_file(gallery: Gallery, method: str, seed: int):
    return gallery.cache_dir / f"points-{gallery.key}-{method}-{seed}.json" if gallery.cache_dir else None


def points_cached(gallery: Gallery, method: str = "pca", seed: int = 0) -> bool:
    """Whether `map_points` would answer from its cache (memory or disk) rather than compute."""
    disk = _points_file(gallery, method, seed)
    return f"explore:points:{method}:{seed}" in gallery._memo or (disk is not None and disk.is_file())


def map_points(gallery: Gallery, method: str = "pca", seed: int = 0) -> MapPoints:
    """The 2-D map of the gallery's clips: each clip's first caption (when it has one), video and
    audio, all fitted together; cached in memory and in the gallery's cache folder.

    Clips lacking a modality are left out (their zero rows would all sit at one point); above
    `MAP_CLIPS` clips a seeded sample is drawn.

    Raises:
        GalleryError: fewer than 2 clips have all their modalities: nothing to map.
    """
    if method not in METHODS.values():
        raise ValueError(f"unknown map {method!r}; choose one of {', '.join(METHODS.values())}")
    disk = _points_file(gallery, method, seed)

    def compute() -> MapPoints:
        if disk is not None and disk.is_file():
            try:
                return MapPoints.from_json(disk.read_text(encoding="utf-8"))
            except (ValueError, KeyError, TypeError):
                pass  # unreadable: computed again
        points = _project(gallery, method, seed)
        if disk is not None:
            tmp = disk.with_name(f".{disk.name}.{os.getpid()}.tmp")
            tmp.write_text(points.to_json(), encoding="utf-8")
            os.replace(tmp, disk)
        return points

    return gallery.memo(f"explore:points:{method}:{seed}", compute)


def _project(gallery: Gallery, method: str, seed: int) -> MapPoints:
    from ..viz import project
    from ..viz.maps import effective_method

    media = gallery.clip_embeddings()
    complete = torch.stack([x.norm(dim=-1) > 0 for x in media.values()]).all(0)
    rows = complete.nonzero().flatten().tolist()
    if len(rows) < 2:
        raise GalleryError(f"{gallery.shown_source}: fewer than 2 clips with all their modalities: nothing to map")
    if len(rows) > MAP_CLIPS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, MAP_CLIPS, replace=False)).tolist()
    first = gallery.first_caption_rows()
    captioned = [c for c in rows if first[c] is not None] if "text" in gallery.embeddings else []
    emb = {"text": gallery.embeddings["text"][[first[c] for c in captioned]]} if captioned else {}
    emb |= {m: x[rows] for m, x in media.items()}
    xy = project({m: x.float().numpy() for m, x in emb.items()}, method, seed, fit_points=_FIT_POINTS)
    clips = ({"text": captioned} if captioned else {}) | {m: list(rows) for m in media}
    used = effective_method(method, min(sum(len(x) for x in emb.values()), _FIT_POINTS))
    return MapPoints(xy, clips, used, len(rows), gallery.n_clips)


def colour_values(gallery: Gallery, colour: str) -> tuple[list[Any] | None, str, str]:
    """What the colour switch paints: ``(one value per clip or None, its name, a note)``.

    ``"class"`` gives class names (None, coloured by modality, when the gallery has no classes or
    more than 24); a metric gives numbers, NaN where undefined (a clip without a caption has no
    height, volume or rank).
    """
    if colour not in COLOURS:
        raise ValueError(f"unknown colour {colour!r}; choose one of {', '.join(COLOURS)}")
    column = COLOURS[colour]
    if column is None:
        classes = [gallery.class_name(c) for c in range(gallery.n_clips)]
        if any(c is None for c in classes):
            return None, "modality", "this gallery names no classes: points are coloured by modality"
        if len(set(classes)) > _MAX_CLASSES:
            return None, "modality", f"{len(set(classes))} classes are too many to tell apart: coloured by modality"
        return classes, "class", ""
    values = gallery_metrics(gallery).values[column].double()
    if column == "caption_rank":
        values = torch.where(values > 0, values, torch.tensor(math.nan, dtype=torch.float64))
    note = "" if bool(torch.isfinite(values).any()) else f"no clip has a caption: {colour} is undefined"
    return values.tolist(), colour, note


def explore_map(gallery: Gallery, method: str, colour: str, selected: list[int] | None = None,
                name: str | None = None):
    """The Explore tab's map: `gramviz.viz.selection_map` of `map_points`, coloured by ``colour``,
    the clips not in ``selected`` grey (None: no selection); ``name`` (a model's) heads the title."""
    from ..viz import selection_map

    points = map_points(gallery, method)
    values, colour_name, _ = colour_values(gallery, colour)
    sample = f"{points.shown:,} of {points.total:,} clips (seeded sample)" if points.shown < points.total \
        else f"{points.total:,} clips"
    title = f"{name + ': ' if name else ''}{points.method.upper()} map of {sample}, coloured by {colour_name}"
    return selection_map(points.coords, points.point_clips, color=values, color_name=colour_name,
                         selected=selected, hover=gallery.clip_labels(), title=title)
