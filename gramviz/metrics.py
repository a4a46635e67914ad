"""Retrieval and classification metrics computed from a score matrix (higher = better).

Ranks are 1-based and ties are broken against the query: an item that scores exactly as high as
the best correct item counts as ranked above it, so an uninformative (constant) score matrix
never looks good.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "relevance_matrix",
    "retrieval_ranks",
    "retrieval_metrics",
    "topk_accuracy",
    "confusion_matrix",
]


def _check_scores(scores: Tensor, what: str) -> None:
    if not isinstance(scores, Tensor) or scores.dim() != 2:
        shape = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
        raise ValueError(f"{what}: scores must be a 2-D tensor (queries x items), got {shape}")
    if scores.shape[0] == 0 or scores.shape[1] == 0:
        raise ValueError(f"{what}: scores are empty, shape {tuple(scores.shape)}")
    if not bool(torch.isfinite(scores).all()):
        raise ValueError(f"{what}: scores contain NaN or Inf")


def relevance_matrix(query_items: Tensor | Sequence[int], num_items: int) -> Tensor:
    """Boolean (N, M) matrix with True where item ``query_items[i]`` is the answer to query i.

    Useful for the reverse direction: with captions as queries over clips,
    ``relevance_matrix(caption_clip, n_clips).T`` marks every caption of each clip.
    """
    idx = torch.as_tensor(query_items, dtype=torch.long)
    if idx.dim() != 1:
        raise ValueError(f"relevance_matrix: query_items must be 1-D, got shape {tuple(idx.shape)}")
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= num_items):
        raise ValueError(f"relevance_matrix: item indices must lie in [0, {num_items})")
    rel = torch.zeros(idx.numel(), num_items, dtype=torch.bool)
    rel[torch.arange(idx.numel()), idx] = True
    return rel


def retrieval_ranks(scores: Tensor, targets: Tensor | Sequence[int]) -> Tensor:
    """1-based rank of the best-ranked correct item for each query.

    Args:
        scores: (N, M), higher = better.
        targets: (N,) index of the correct item of each query, or a boolean (N, M) relevance
            matrix when a query has several correct items (e.g. every caption of a clip).

    Returns:
        (N,) long tensor of ranks in [1, M].

    Example:
        >>> retrieval_ranks(torch.tensor([[0.9, 0.1], [0.8, 0.2]]), [0, 0])
        tensor([1, 1])
    """
    _check_scores(scores, "retrieval_ranks")
    n, m = scores.shape
    targets = torch.as_tensor(targets, device=scores.device)
    if targets.dtype == torch.bool:
        if targets.shape != scores.shape:
            raise ValueError(
                f"retrieval_ranks: relevance matrix shape {tuple(targets.shape)} != scores {tuple(scores.shape)}"
            )
        relevant = targets
    else:
        if targets.shape != (n,):
            raise ValueError(f"retrieval_ranks: targets must have shape ({n},), got {tuple(targets.shape)}")
        if int(targets.min()) < 0 or int(targets.max()) >= m:
            raise ValueError(f"retrieval_ranks: target indices must lie in [0, {m})")
        relevant = torch.zeros_like(scores, dtype=torch.bool)
        relevant[torch.arange(n, device=scores.device), targets.long()] = True
    has_answer = relevant.any(1)
    if not bool(has_answer.all()):
        bad = int((~has_answer).nonzero()[0])
        raise ValueError(f"retrieval_ranks: query {bad} has no correct item")
    best = scores.masked_fill(~relevant, float("-inf")).max(1).values  # (N,)
    # items that are not correct and score at least as high as the best correct one
    above = ((scores >= best[:, None]) & ~relevant).sum(1)
    return above + 1


def retrieval_metrics(
    scores: Tensor, targets: Tensor | Sequence[int], ks: Sequence[int] = (1, 5, 10)
) -> dict[str, float]:
    """Recall@K (fractions in [0, 1]), median rank and mean rank.

    Returns:
        ``{"R@1": ..., "R@5": ..., "R@10": ..., "MedR": ..., "MnR": ...}``; the median of an even
        number of ranks is the mean of the middle two.

    Example:
        >>> retrieval_metrics(torch.tensor([[0.9, 0.1], [0.8, 0.2]]), [0, 1], ks=(1,))
        {'R@1': 0.5, 'MedR': 1.5, 'MnR': 1.5}
    """
    ranks = retrieval_ranks(scores, targets).double()
    out = {f"R@{k}": float((ranks <= k).double().mean()) for k in ks}
    out["MedR"] = float(ranks.quantile(0.5))
    out["MnR"] = float(ranks.mean())
    return out


def topk_accuracy(scores: Tensor, labels: Tensor | Sequence[int], ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Top-k classification accuracy from (N, C) class scores, ties broken against the sample.

    Example:
        >>> topk_accuracy(torch.tensor([[0.1, 0.9], [0.3, 0.7]]), [1, 0], ks=(1, 2))
        {'top1': 0.5, 'top2': 1.0}
    """
    ranks = retrieval_ranks(scores, labels)
    return {f"top{k}": float((ranks <= k).double().mean()) for k in ks}


def confusion_matrix(scores: Tensor, labels: Tensor | Sequence[int]) -> Tensor:
    """(C, C) counts: row = true class, column = predicted class (argmax of the scores)."""
    _check_scores(scores, "confusion_matrix")
    labels = torch.as_tensor(labels, dtype=torch.long, device=scores.device)
    c = scores.shape[1]
    if labels.shape != (scores.shape[0],) or int(labels.min()) < 0 or int(labels.max()) >= c:
        raise ValueError(f"confusion_matrix: labels must be {scores.shape[0]} class indices in [0, {c})")
    pred = scores.argmax(1)
    return torch.bincount(labels * c + pred, minlength=c * c).view(c, c)
