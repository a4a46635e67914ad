"""Per-clip metrics, selections and one clip's inspection (see `gramviz.exploration`)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..gram import base_height, volume_matrix
from ..gram import volume as tuple_volume
from ..metrics import retrieval_ranks

__all__ = ["ClipInspection", "ClipMetrics", "ORDER", "clip_metrics", "clips_in_box", "clips_in_lasso", "filter_clips",
           "first_captions", "inspect_clip"]

MEDIA_PAIR = ("video", "audio")
# For each numeric column: True when a larger value means worse aligned (what "worst" sorts by)
ORDER = {"volume": True, "base": True, "height": True, "caption_rank": True, "clip_rank": True, "cos_va": False}
_CHUNK = 1024  # query rows per volume matrix when ranking (bounds memory on large galleries)


def _check(embeddings: Mapping[str, Tensor],
           caption_clips: Sequence[int] | None) -> tuple[dict[str, Tensor], list[int]]:
    missing = [m for m in MEDIA_PAIR if m not in embeddings]
    if missing:
        raise ValueError(f"exploring a gallery needs video and audio embeddings; missing: {', '.join(missing)}")
    emb = {m: F.normalize(torch.as_tensor(x).double(), dim=-1) for m, x in embeddings.items()}
    n = emb["video"].shape[0]
    if emb["audio"].shape[0] != n:
        raise ValueError(f"video has {n} rows but audio {emb['audio'].shape[0]}: one row per clip in each")
    text = emb.get("text")
    clips = list(range(text.shape[0])) if text is not None and caption_clips is None else list(caption_clips or [])
    if text is not None and len(clips) != text.shape[0]:
        raise ValueError(f"caption_clips has {len(clips)} entries for {text.shape[0]} text rows")
    if any(not 0 <= c < n for c in clips):
        raise ValueError(f"caption_clips must name clips in [0, {n})")
    for m, x in emb.items():
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"the {m} embeddings hold NaN or infinite values")
    return emb, clips


def first_captions(caption_clips: Sequence[int], n_clips: int) -> list[int | None]:
    """The first text row of each clip, None for a clip without a caption."""
    first: list[int | None] = [None] * n_clips
    for row, clip in enumerate(caption_clips):
        if first[clip] is None:
            first[clip] = row
    return first


def _clip_anchors(emb: dict[str, Tensor]) -> Tensor:
    """Each clip as one unit query: the normalised mean of its unit video and audio (as the app's
    "clips like this clip" search ranks the gallery)."""
    return F.normalize(emb["video"] + emb["audio"], dim=-1)


def _complete(emb: dict[str, Tensor]) -> Tensor:
    """(M,) clips with both a video and an audio embedding (a zero row is GRAM's "missing")."""
    return (emb["video"].norm(dim=-1) > 0) & (emb["audio"].norm(dim=-1) > 0)


def _nearest(emb: dict[str, Tensor], clips: Tensor, k: int, by: str) -> tuple[Tensor, Tensor]:
    """(len(clips), k) nearest other complete clips and their values, best first (in chunks of rows):
    by "volume" of (clip anchor, video_j, audio_j), smallest first, or by "cosine", the mean of the
    video-video and audio-audio cosines, largest first. Missing neighbours hold -1 and +-inf."""
    complete, n = _complete(emb), emb["video"].shape[0]
    idx, values = [], []
    for start in range(0, len(clips), _CHUNK):
        c = clips[start : start + _CHUNK]
        if by == "volume":
            score = -volume_matrix(_clip_anchors(emb)[c], emb["video"], emb["audio"])  # (C, M)
        else:
            score = sum(emb[m][c] @ emb[m].T for m in MEDIA_PAIR) / len(MEDIA_PAIR)
        score[:, ~complete] = -math.inf
        score[torch.arange(len(c)), c] = -math.inf
        top, i = score.topk(min(k, n - 1), dim=1)
        idx.append(torch.where(torch.isfinite(top), i, -1))
        values.append(-top if by == "volume" else top)
    return torch.cat(idx), torch.cat(values)


def _heights(t: Tensor, v: Tensor, a: Tensor) -> Tensor:
    """(..., 3): the distance of each of (text, video, audio) from the span of the other two."""
    return torch.stack([base_height(t, v, a)[1], base_height(v, t, a)[1], base_height(a, t, v)[1]], dim=-1)


@dataclass
class ClipMetrics:
    """Per-clip alignment of a gallery, one entry per clip.

    Attributes:
        ids, captions, classes: each clip's id, first caption ("" without one) and class (or None).
        values: column -> (n,) tensor: ``volume``, ``base``, ``height`` (of the first caption with
            the clip's video and audio; NaN for a clip without a caption), ``caption_rank`` (1 = the
            clip's own caption is the best of all captions for it, by volume; 0 without a caption),
            ``clip_rank`` (1 = its first caption finds it first among all clips; 0 without one),
            ``nearest`` (the nearest other clip by volume), ``cos_va`` (video-audio cosine) and
            ``least_aligned`` (index into ``modalities`` of the modality farthest from the others'
            span; -1 without a caption).
        modalities: ``("text", "video", "audio")``.
    """

    ids: list[str]
    captions: list[str]
    classes: list[str | None]
    values: dict[str, Tensor]
    modalities: tuple[str, ...] = ("text", "video", "audio")

    def __len__(self) -> int:
        return len(self.ids)

    def row(self, clip: int) -> dict[str, Any]:
        """Clip ``clip`` as a JSON-ready dict (None where a value is undefined)."""
        v = {name: col[clip].item() for name, col in self.values.items()}
        has_caption = v["clip_rank"] > 0
        out: dict[str, Any] = {"clip": clip, "id": self.ids[clip], "caption": self.captions[clip],
                               "class": self.classes[clip]}
        for name in ("volume", "base", "height", "caption_rank", "clip_rank"):
            out[name] = v[name] if has_caption or name == "base" else None
        if math.isnan(v["base"]):  # a clip without video or audio
            out["base"] = None
        out["nearest"] = self.ids[int(v["nearest"])] if v["nearest"] >= 0 else None
        out["cos_va"] = None if math.isnan(v["cos_va"]) else v["cos_va"]
        out["least_aligned"] = self.modalities[int(v["least_aligned"])] if has_caption else None
        return out


def clip_metrics(embeddings: Mapping[str, Tensor], ids: Sequence[str], caption_clips: Sequence[int] | None = None,
                 captions: Sequence[str] | None = None, classes: Sequence[str | None] | None = None) -> ClipMetrics:
    """Every clip's alignment metrics (see `ClipMetrics`), computed in float64.

    Args:
        embeddings: ``{"video": (M, D), "audio": (M, D)[, "text": (N, D)]}``; normalised here.
        ids: the M clip ids.
        caption_clips: the clip of each text row (default: text row i is clip i).
        captions: the N caption strings (for the table), or None.
        classes: each clip's class name, or None.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> emb = {m: torch.randn(4, 8, generator=g) for m in ("text", "video", "audio")}
        >>> m = clip_metrics(emb, ["a", "b", "c", "d"])
        >>> sorted(m.values), int(m.values["clip_rank"].min())
        (['base', 'caption_rank', 'clip_rank', 'cos_va', 'height', 'least_aligned', 'nearest', 'volume'], 1)
    """
    emb, text_clips = _check(embeddings, caption_clips)
    n = emb["video"].shape[0]
    if len(ids) != n:
        raise ValueError(f"{len(ids)} ids for {n} clips")
    first, complete = first_captions(text_clips, n), _complete(emb)
    has = torch.tensor([f is not None for f in first]) & complete
    rows = torch.tensor([f if f is not None else 0 for f in first])
    v, a = emb["video"], emb["audio"]
    nan = torch.full((n,), math.nan, dtype=torch.float64)
    base = torch.where(complete, tuple_volume(v, a), nan)
    volume, height, least = nan.clone(), nan.clone(), torch.full((n,), -1)
    caption_rank, clip_rank = torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.long)
    if "text" in emb and bool(has.any()):
        t = emb["text"][rows]
        heights = _heights(t, v, a)
        height = torch.where(has, heights[:, 0], nan)
        volume = torch.where(has, base * heights[:, 0], nan)
        least = torch.where(has, heights.argmax(-1), -1)
        clip_rank = torch.where(has, _clip_ranks(emb, rows, has), 0)
        caption_rank = torch.where(has, _caption_ranks(emb, text_clips, has), 0)
    nearest = _nearest(emb, torch.arange(n), 1, "volume")[0][:, 0] if n > 1 else torch.full((n,), -1)
    values = {"volume": volume, "base": base, "height": height, "caption_rank": caption_rank, "clip_rank": clip_rank,
              "nearest": torch.where(complete, nearest, -1), "cos_va": torch.where(complete, (v * a).sum(-1), nan),
              "least_aligned": least}
    shown = [captions[f] if captions is not None and f is not None else "" for f in first]
    return ClipMetrics(list(ids), shown, list(classes) if classes is not None else [None] * n, values)


def _clip_ranks(emb: dict[str, Tensor], rows: Tensor, has: Tensor) -> Tensor:
    """Rank of each clip among all clips for its first caption (text -> video + audio), by volume."""
    out = torch.zeros(len(rows), dtype=torch.long)
    clips = has.nonzero()[:, 0]
    for start in range(0, len(clips), _CHUNK):
        c = clips[start : start + _CHUNK]
        scores = -volume_matrix(emb["text"][rows[c]], emb["video"], emb["audio"])
        scores[:, ~_complete(emb)] = -2.0  # below any -volume of unit vectors: such a clip is never retrieved
        out[c] = retrieval_ranks(scores, c)
    return out


def _caption_ranks(emb: dict[str, Tensor], text_clips: list[int], has: Tensor) -> Tensor:
    """Rank of each clip's best own caption among all captions for the clip, by volume."""
    owner = torch.tensor(text_clips)
    out = torch.zeros(len(has), dtype=torch.long)
    clips = has.nonzero()[:, 0]
    for start in range(0, len(clips), _CHUNK):
        c = clips[start : start + _CHUNK]
        vol = volume_matrix(emb["text"], emb["video"][c], emb["audio"][c])  # (N, C)
        out[c] = retrieval_ranks(-vol.T, owner[None, :] == c[:, None])
    return out


def clips_in_box(xy: Any, point_clips: Sequence[int], x_range: Sequence[float], y_range: Sequence[float]) -> list[int]:
    """The clips (sorted, unique) with at least one map point inside the box (edges included).

    Args:
        xy: (P, 2) map coordinates of the points; ``point_clips[p]`` is the clip of point p.
        x_range, y_range: the box's (low, high) along each axis, in either order.
    """
    pts = torch.as_tensor(xy, dtype=torch.float64).reshape(-1, 2)
    (x0, x1), (y0, y1) = sorted(map(float, x_range)), sorted(map(float, y_range))
    inside = (pts[:, 0] >= x0) & (pts[:, 0] <= x1) & (pts[:, 1] >= y0) & (pts[:, 1] <= y1)
    return sorted({int(point_clips[p]) for p in inside.nonzero()[:, 0].tolist()})


def clips_in_lasso(xy: Any, point_clips: Sequence[int], polygon: Any) -> list[int]:
    """The clips (sorted, unique) with at least one map point inside the closed polygon (even-odd rule).

    Example:
        >>> clips_in_lasso([[0.5, 0.5], [2.0, 2.0]], [7, 8], [[0, 0], [1, 0], [1, 1], [0, 1]])
        [7]
    """
    pts = torch.as_tensor(xy, dtype=torch.float64).reshape(-1, 2)
    poly = torch.as_tensor(polygon, dtype=torch.float64).reshape(-1, 2)
    if len(poly) < 3:
        raise ValueError(f"a lasso needs at least 3 vertices, got {len(poly)}")
    x, y = pts[:, :1], pts[:, 1:]
    xa, ya = poly[:, 0][None], poly[:, 1][None]
    xb, yb = poly.roll(-1, 0)[:, 0][None], poly.roll(-1, 0)[:, 1][None]
    crosses = (ya > y) != (yb > y)
    at = xa + (y - ya) * (xb - xa) / torch.where(yb == ya, torch.ones_like(yb), yb - ya)
    inside = ((crosses & (x < at)).sum(1) % 2) == 1
    return sorted({int(point_clips[p]) for p in inside.nonzero()[:, 0].tolist()})


def filter_clips(metrics: ClipMetrics, worst: int | None = None, by: str = "volume", class_name: str | None = None,
                 word: str | None = None, clips: Sequence[int] | None = None) -> list[int]:
    """Clips that pass every given filter, in gallery order, or the ``worst`` of them by ``by``.

    Args:
        worst: keep the this many worst-aligned clips by ``by`` (see `ORDER`: a larger volume,
            base, height or rank, or a smaller video-audio cosine, is worse), worst first.
        class_name: keep the clips of this class.
        word: keep the clips whose caption contains this word (case-insensitive, whole words).
        clips: start from these clips (a selection) instead of the whole gallery.
    """
    if by not in ORDER:
        raise ValueError(f"unknown column {by!r}; choose one of {', '.join(ORDER)}")
    keep = list(range(len(metrics))) if clips is None else sorted(set(int(c) for c in clips))
    if class_name:
        keep = [c for c in keep if metrics.classes[c] == class_name]
    if word and word.strip():
        w = word.strip().lower()
        keep = [c for c in keep if w in re.findall(r"\w+", metrics.captions[c].lower())]
    if worst is not None:
        if int(worst) < 1:
            raise ValueError(f"worst must be a positive number of clips, got {worst}")
        col = metrics.values[by].double()
        defined = [c for c in keep if not math.isnan(float(col[c])) and (by not in ("caption_rank", "clip_rank")
                                                                          or int(col[c]) > 0)]
        keep = sorted(defined, key=lambda c: float(col[c]), reverse=ORDER[by])[: int(worst)]
    return keep


@dataclass
class ClipInspection:
    """One clip seen closely (see `inspect_clip`).

    Attributes:
        clip: its index; ``caption_row``: the text row used (its first caption), or None.
        vectors: ``{"text"?, "video", "audio"}`` unit vectors (float64).
        gram: (k, k) Gram matrix of the vectors, in ``modalities`` order.
        volume, base, height: of (caption, video, audio); base alone without a caption.
        heights: modality -> its distance from the span of the other two (with a caption).
        least_aligned: the modality with the largest such distance, or None without a caption.
        by_volume, by_cosine: the k nearest other clips, ``[(clip, value), ...]``, best first: by
            the volume of (this clip's video+audio anchor, their video, their audio), and by the
            mean of their video-video and audio-audio cosines.
    """

    clip: int
    caption_row: int | None
    vectors: dict[str, Tensor]
    gram: Tensor
    volume: float | None
    base: float
    height: float | None
    heights: dict[str, float] = field(default_factory=dict)
    least_aligned: str | None = None
    by_volume: list[tuple[int, float]] = field(default_factory=list)
    by_cosine: list[tuple[int, float]] = field(default_factory=list)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.vectors)


def inspect_clip(embeddings: Mapping[str, Tensor], clip: int, caption_clips: Sequence[int] | None = None,
                 k: int = 5) -> ClipInspection:
    """Clip ``clip``'s geometry with its first caption, and its ``k`` nearest clips two ways.

    Example:
        >>> e = {"text": torch.eye(3), "video": torch.eye(3)[[1, 2, 0]], "audio": torch.eye(3)[[2, 0, 1]]}
        >>> i = inspect_clip(e, 0, k=2)
        >>> round(i.volume, 6), i.least_aligned is not None
        (1.0, True)
    """
    emb, text_clips = _check(embeddings, caption_clips)
    n = emb["video"].shape[0]
    if not 0 <= int(clip) < n:
        raise ValueError(f"no clip {clip}: the gallery has {n} clips")
    clip = int(clip)
    if not bool(_complete(emb)[clip]):
        raise ValueError(f"clip {clip} lacks a video or an audio embedding (a zero row): it has no geometry to inspect")
    row = first_captions(text_clips, n)[clip] if "text" in emb else None
    vectors = ({"text": emb["text"][row]} if row is not None else {}) | {m: emb[m][clip] for m in MEDIA_PAIR}
    stacked = torch.stack(list(vectors.values()))
    base = float(tuple_volume(vectors["video"], vectors["audio"]))
    out = ClipInspection(clip, row, vectors, stacked @ stacked.T, None, base, None)
    if row is not None:
        h = _heights(vectors["text"], vectors["video"], vectors["audio"])
        out.heights = {m: float(x) for m, x in zip(("text", "video", "audio"), h)}
        out.height, out.volume = out.heights["text"], base * out.heights["text"]
        out.least_aligned = max(out.heights, key=out.heights.get)
    if n > 1:
        for name, by in (("by_volume", "volume"), ("by_cosine", "cosine")):
            idx, val = _nearest(emb, torch.tensor([clip]), k, by)
            setattr(out, name, [(int(i), float(x)) for i, x in zip(idx[0], val[0]) if i >= 0])
    return out
