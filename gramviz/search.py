"""Searching a gallery and reading one tuple's alignment: pure functions over embeddings.

A gallery holds one row per clip in each media modality (``{"video": (M, D), "audio": (M, D)}``)
and one row per caption (``(N, D)`` text). A text query ranks the clips; a clip ranks the
captions; every measure of `gramviz.score_matrix` can rank (higher score = more aligned), and the
values people read (`measure_values`) are the volume itself for GRAM. A clip whose row of a used
modality is zero (GRAM's convention for "missing") cannot be compared with the others and is left
out of the ranking rather than ranked first by its zero volume.

Example:
    >>> import torch.nn.functional as F
    >>> clips = {m: F.normalize(torch.randn(5, 8), dim=-1) for m in ("video", "audio")}
    >>> query = clips["video"][3] + clips["audio"][3]
    >>> rank_clips(query, clips, k=2).indices[0].item()
    3
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from ._checks import check_vectors
from .gram import base_height, volume
from .scores import MEASURES, score_matrix

__all__ = ["Ranking", "measure_values", "rank_captions", "rank_clips", "tuple_alignment"]

# modalities in the order they are stacked: the anchor (text) first, as GRAM's volume matrix has it
ORDER = ("text", "video", "audio")
# measures read as a size (lower = more aligned): shown as the volume / area, not minus it
_SIZES = ("volume", "triangle")


@dataclass
class Ranking:
    """The k best gallery rows for one query.

    Attributes:
        indices: (k,) gallery rows, best first.
        scores: (k,) their scores (`gramviz.score_matrix` convention: higher = more aligned).
        values: (k,) the measure as read: the volume (area) for "volume" ("triangle"), else the score.
        all_scores: (M,) the score of every row; rows left out hold -inf.
        considered: (M,) bool, the rows that could be ranked (no used modality missing).
        modalities: the gallery modalities that ranked, in stacking order.
        measure: the measure that ranked.
    """

    indices: Tensor
    scores: Tensor
    values: Tensor
    all_scores: Tensor
    considered: Tensor
    modalities: tuple[str, ...]
    measure: str


def measure_values(scores: Tensor, measure: str) -> Tensor:
    """Scores (higher = more aligned) as people read them: minus the score for volume and triangle.

    Example:
        >>> measure_values(torch.tensor([-0.25]), "volume")
        tensor([0.2500])
    """
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; choose one of {', '.join(MEASURES)}")
    return -scores if measure in _SIZES else scores


def _ordered(embeddings: Mapping[str, Tensor | None], what: str) -> dict[str, Tensor]:
    """The present (non-None) entries, text/video/audio first, others after in their order."""
    if not isinstance(embeddings, Mapping):
        raise TypeError(f"{what} must be a dict of modality name -> tensor, got {type(embeddings).__name__}")
    present = {m: x for m, x in embeddings.items() if x is not None}
    names = [m for m in ORDER if m in present] + [m for m in present if m not in ORDER]
    return {m: present[m] for m in names}


def _top(all_scores: Tensor, considered: Tensor, k: int, measure: str, modalities: tuple[str, ...]) -> Ranking:
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if not bool(considered.any()):
        raise ValueError(f"no gallery row can be ranked: every one lacks one of {', '.join(modalities)}")
    masked = torch.where(considered, all_scores, torch.full_like(all_scores, -torch.inf))
    n = min(int(k), int(considered.sum()))
    # stable sort: ties keep the lower row first, as gramviz.viz.top_k does
    order = torch.sort(masked, descending=True, stable=True).indices[:n]
    scores = masked[order]
    return Ranking(order, scores, measure_values(scores, measure), masked, considered, modalities, measure)


def rank_clips(query: Tensor, clips: Mapping[str, Tensor | None], k: int = 10, measure: str = "volume") -> Ranking:
    """Rank gallery clips for one anchor (a text query): GRAM volume of (query, clip's modalities).

    Args:
        query: (D,) or (1, D) anchor embedding.
        clips: ``{"video": (M, D), "audio": (M, D)}``, any non-empty subset (None entries skipped).
        k: results returned.
        measure: one of ``gramviz.MEASURES``.

    Returns:
        A `Ranking` of clip rows; rows with a zero vector in a used modality are left out.

    Example:
        >>> clips = {"video": torch.eye(3), "audio": torch.eye(3)}
        >>> rank_clips(torch.tensor([0.0, 1.0, 0.0]), clips, k=1).values
        tensor([0.])
    """
    cand = _ordered(clips, "clips")
    if not cand:
        raise ValueError("rank_clips: the gallery has no clip modality to rank by")
    q = query.reshape(1, -1) if isinstance(query, Tensor) and query.dim() == 1 else query
    if not isinstance(q, Tensor) or q.dim() != 2 or q.shape[0] != 1:
        raise ValueError(f"rank_clips: query must have shape (D,) or (1, D), got {getattr(query, 'shape', query)!r}")
    others = list(cand.values())
    scores = score_matrix(q, *others, measure=measure)[0]  # (M,)
    considered = torch.stack([x.norm(dim=-1) > 0 for x in others]).all(0)
    return _top(scores, considered, k, measure, tuple(cand))


def rank_captions(captions: Tensor, clip: Mapping[str, Tensor | None], k: int = 10, measure: str = "volume") -> Ranking:
    """Rank gallery captions for one clip: GRAM volume of (caption, the clip's modalities).

    Args:
        captions: (N, D) caption embeddings (the anchors).
        clip: ``{"video": (D,), "audio": (D,)}``, the modalities the clip has (None entries skipped).
        k: results returned.
        measure: one of ``gramviz.MEASURES``.

    Returns:
        A `Ranking` of caption rows (every caption is considered; zero caption rows are left out).

    Example:
        >>> rank_captions(torch.eye(3), {"video": torch.tensor([0.0, 0.0, 1.0])}, k=1).indices
        tensor([2])
    """
    cand = _ordered(clip, "clip")
    if not cand:
        raise ValueError("rank_captions: the clip has neither video nor audio")
    others = [x.reshape(1, -1) for x in cand.values()]
    zero = [m for m, x in cand.items() if not bool(x.norm() > 0)]
    if zero:
        raise ValueError(f"rank_captions: the clip's {', '.join(zero)} embedding is a zero vector (missing)")
    scores = score_matrix(captions, *others, measure=measure)[:, 0]  # (N,)
    return _top(scores, captions.norm(dim=-1) > 0, k, measure, tuple(cand))


def tuple_alignment(embeddings: Mapping[str, Tensor | None]) -> dict:
    """How one sample's modality embeddings align: the GRAM volume, pairwise cosines, the odd one out.

    For each modality m the *height* is its distance from the span of the others, so that
    volume = height(m) x volume(others). The least aligned modality is the one with the largest
    height: without it, the remaining modalities span the smallest volume. With two modalities
    neither stands out (the volume is sin of their angle for unit vectors).

    Args:
        embeddings: modality -> (D,) embedding, at least two present (None entries are skipped,
            i.e. scored with the modalities present).

    Returns:
        ``{"modalities": [...], "volume": float, "cosines": {"text-video": float, ...},
        "heights": {modality: float}, "least_aligned": modality or None}``.

    Example:
        >>> out = tuple_alignment({"text": torch.tensor([1.0, 0.0, 0.0]),
        ...                        "video": torch.tensor([1.0, 0.1, 0.0]), "audio": torch.tensor([0.0, 0.0, 1.0])})
        >>> out["least_aligned"], round(out["cosines"]["text-audio"], 3)
        ('audio', 0.0)
    """
    present = _ordered(embeddings, "embeddings")
    if len(present) < 2:
        have = ", ".join(present) or "none"
        raise ValueError(f"scoring needs at least two modalities (text, video, audio); got {have}")
    vectors = [x.reshape(-1).to(torch.float64) for x in present.values()]
    check_vectors(vectors, what="tuple_alignment", min_count=2)
    names = list(present)
    zero = [m for m, v in zip(names, vectors) if not bool(v.norm() > 0)]
    if zero:
        raise ValueError(f"tuple_alignment: the {', '.join(zero)} embedding is a zero vector (a missing modality)")
    cosines = {
        f"{names[i]}-{names[j]}": float(vectors[i] @ vectors[j] / (vectors[i].norm() * vectors[j].norm()))
        for i, j in itertools.combinations(range(len(names)), 2)
    }
    heights = {}
    for i, m in enumerate(names):
        _, height = base_height(vectors[i], *(v for j, v in enumerate(vectors) if j != i))
        heights[m] = float(height)
    least = None
    if len(names) >= 3:
        ranked = sorted(heights, key=heights.get, reverse=True)
        least = ranked[0] if heights[ranked[0]] > heights[ranked[1]] + 1e-9 else None
    return {"modalities": names, "volume": float(volume(*vectors)), "cosines": cosines,
            "heights": heights, "least_aligned": least}
