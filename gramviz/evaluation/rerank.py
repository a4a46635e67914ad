"""Re-ranking by a DAM head, as the paper does at test time: the top `DAM_TOP_K` candidates by
volume, re-ordered by the head's matching probability."""

from __future__ import annotations

import sys
from typing import Any

import torch
from torch import Tensor, nn

from ..embeddings import EmbeddingMetadata
from ..modalities import MEDIA, TEXT
from .retrieval import all_present, both_ways, caption_task, present_rows, scores_in_chunks

__all__ = ["DAM_TOP_K", "dam_metrics", "has_dam"]

DAM_TOP_K = 50  # candidates per query re-ranked by a DAM head, as in the paper


def dam_metrics(
    model: nn.Module, emb: dict[str, Tensor], meta: EmbeddingMetadata, tokens: Any, measure: str, progress: bool
) -> dict[str, float]:
    """t2va_dam and va2t_dam: the top `DAM_TOP_K` of t2va and va2t re-ranked by the DAM head."""
    from ..models.dam import dam_rerank

    keep = all_present(present_rows(emb, meta), MEDIA)
    task = caption_task(torch.as_tensor(meta.text_clips(), dtype=torch.long), keep, TEXT in emb)
    if task is None or not all(m in tokens for m in (TEXT, *MEDIA)):
        return {}
    queries, targets, n = task
    if progress:
        print(f"re-ranking the top {DAM_TOP_K} by the DAM head, both ways ({n} clips)", file=sys.stderr)
    pick, device = {TEXT: queries, **{m: keep for m in MEDIA}}, next(iter(model.parameters())).device
    sub = type(tokens)(
        {m: tokens[m][rows].to(device) for m, rows in pick.items()},
        masks={m: tokens.masks[m][rows].to(device) for m, rows in pick.items()},
    )
    scores = scores_in_chunks(emb[TEXT][queries], *(emb[m][keep] for m in MEDIA), measure=measure)  # (Q, n)
    there = dam_rerank(model, sub, scores, k=DAM_TOP_K)
    back = dam_rerank(model, sub, scores.T.contiguous(), k=DAM_TOP_K, queries="candidates")
    return both_ways(there, targets, n, ("t2va_dam", "va2t_dam"), back)


def has_dam(model: nn.Module) -> bool:
    """Whether ``model`` has a DAM head that `gramviz.models.dam.dam_rerank` can use."""
    if getattr(model, "dam", None) is None or not hasattr(model, "anchor"):
        return False
    try:
        from ..models.dam import dam_rerank  # noqa: F401
    except ImportError:
        return False
    return True
