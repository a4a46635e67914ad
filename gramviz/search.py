"""Searching a gallery: `ClipIndex` (exact, built once per gallery) and pure functions over embeddings.

A gallery holds one row per clip in each media modality (``{"video": (M, D), "audio": (M, D)}``)
and one row per caption (``(N, D)`` text). A text query ranks the clips; a clip ranks the
captions; every measure of `gramviz.score_matrix` can rank (higher score = more aligned), and the
values people read (`gramviz.scores.measure_values`) are the volume itself for GRAM. A clip whose row of a used
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

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from .clip_index import ClipIndex
from .modalities import in_stacking_order
from .scores import measure_values, score_matrix

__all__ = ["ClipIndex", "Ranking", "rank_captions", "rank_clips"]


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


def rank_clips(query: Tensor, clips: Mapping[str, Tensor | None] | ClipIndex, k: int = 10,
               measure: str = "volume") -> Ranking:
    """Rank gallery clips for one anchor (a text query): GRAM volume of (query, clip's modalities).

    Args:
        query: (D,) or (1, D) anchor embedding.
        clips: ``{"video": (M, D), "audio": (M, D)}``, any non-empty subset (None entries skipped),
            or a `ClipIndex` of them (built once per gallery: each search then costs about as
            much as a cosine search).
        k: results returned.
        measure: one of ``gramviz.MEASURES``.

    Returns:
        A `Ranking` of clip rows; rows with a zero vector in a used modality are left out.

    Example:
        >>> clips = {"video": torch.eye(3), "audio": torch.eye(3)}
        >>> rank_clips(torch.tensor([0.0, 1.0, 0.0]), clips, k=1).values
        tensor([0.])
        >>> index = ClipIndex({"video": torch.eye(3), "audio": torch.eye(3)[[1, 2, 0]]})
        >>> rank_clips(torch.tensor([1.0, 1.0, 0.0]), index, k=1).indices  # in clip 0's plane
        tensor([0])
    """
    q = query.reshape(1, -1) if isinstance(query, Tensor) and query.dim() == 1 else query
    if not isinstance(q, Tensor) or q.dim() != 2 or q.shape[0] != 1:
        raise ValueError(f"rank_clips: query must have shape (D,) or (1, D), got {getattr(query, 'shape', query)!r}")
    if isinstance(clips, ClipIndex):
        return _rank_with_index(q, clips, k, measure)
    cand = in_stacking_order(clips, "clips")
    if not cand:
        raise ValueError("rank_clips: the gallery has no clip modality to rank by")
    others = list(cand.values())
    scores = score_matrix(q, *others, measure=measure)[0]  # (M,)
    considered = torch.stack([x.norm(dim=-1) > 0 for x in others]).all(0)
    return _top(scores, considered, k, measure, tuple(cand))


def _rank_with_index(query: Tensor, index: ClipIndex, k: int, measure: str) -> Ranking:
    """`rank_clips` through an index: its exact top k, and every row's score for the figures."""
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if not bool(index.present.any()):
        raise ValueError(f"no gallery row can be ranked: every one lacks one of {', '.join(index.modalities)}")
    scores, ids, every = index.rank(query, k, measure)  # every: (1, M), the top k exactly re-scored
    return Ranking(ids[0], scores[0], measure_values(scores[0], measure), every[0], index.present, index.modalities,
                   measure)


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
    cand = in_stacking_order(clip, "clip")
    if not cand:
        raise ValueError("rank_captions: the clip has neither video nor audio")
    others = [x.reshape(1, -1) for x in cand.values()]
    zero = [m for m, x in cand.items() if not bool(x.norm() > 0)]
    if zero:
        raise ValueError(f"rank_captions: the clip's {', '.join(zero)} embedding is a zero vector (missing)")
    scores = score_matrix(captions, *others, measure=measure)[:, 0]  # (N,)
    return _top(scores, captions.norm(dim=-1) > 0, k, measure, tuple(cand))
