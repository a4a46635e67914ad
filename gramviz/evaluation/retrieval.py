"""Retrieval in every direction from embeddings (any model's).

Directions (queries -> gallery):

    t2va  caption -> clip by video and audio together: score_matrix(text, video, audio)
    va2t  clip -> caption, its transpose; a clip is found at the rank of its best-ranked caption
    t2v   caption -> clip by video alone: score_matrix(text, video)
    t2a   caption -> clip by audio alone: score_matrix(text, audio)
    v2a   video -> the audio of the same clip: score_matrix(video, audio)
    a2v   audio -> video, the transpose of v2a

With ``measure="volume"`` and two modalities the score is -sin(theta), which ranks as cosine does.
Each direction gives R@1, R@5, R@10 (fractions in [0, 1]), MedR and MnR under flat keys
``<direction>/<metric>``, and ``<direction>/n``: how many clips took part (the gallery of t2*, the
queries of va2t, the clip pairs of v2a and a2v).

Clips missing a modality are never dropped silently: each direction is computed on the clips that
have what it needs (its ``/n`` says how many; a direction without any such clip has ``/n`` = 0 and
no metric keys). In an embedding file a missing modality is a zero row, listed in
``meta.extra["missing"]``; zero rows are treated as missing either way (a zero vector spans no
volume and would otherwise rank first).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..embeddings import EmbeddingMetadata
from ..metrics import relevance_matrix, retrieval_metrics
from ..modalities import AUDIO, MEDIA, VIDEO
from ..scores import score_matrix

__all__ = ["DIRECTIONS", "METRICS", "all_present", "both_ways", "caption_directions", "caption_task",
           "media_directions", "prefixed", "present_rows", "scores_in_chunks"]

DIRECTIONS = ("t2va", "va2t", "t2v", "t2a", "v2a", "a2v")
METRICS = ("R@1", "R@5", "R@10", "MedR", "MnR")
_CHUNK = 2048  # anchors scored at once: bounds the (chunk, M, k-1) intermediates of a measure


def scores_in_chunks(anchor: Tensor, *others: Tensor, measure: str) -> Tensor:
    """`score_matrix` over chunks of anchors (every measure scores each anchor on its own)."""
    parts = [score_matrix(anchor[i : i + _CHUNK], *others, measure=measure) for i in range(0, len(anchor), _CHUNK)]
    return torch.cat(parts)


def present_rows(emb: dict[str, Tensor], meta: EmbeddingMetadata) -> dict[str, Tensor]:
    """Per media modality, (clips,) bool: the clip has an embedding (listed missing or zero: no)."""
    n, listed = len(meta.ids), (meta.extra or {}).get("missing", {})
    out = {}
    for m in MEDIA:
        if m not in emb:
            out[m] = torch.zeros(n, dtype=torch.bool)
            continue
        has = emb[m].ne(0).any(1)
        has[torch.as_tensor(listed.get(m, []), dtype=torch.long)] = False
        out[m] = has
    return out


def all_present(present: dict[str, Tensor], media: Sequence[str]) -> Tensor:
    """(clips,) bool: the clip has every modality of ``media``."""
    keep = present[media[0]].clone()
    for m in media[1:]:
        keep &= present[m]
    return keep


def prefixed(direction: str, metrics: dict[str, float]) -> dict[str, float]:
    """``{"R@1": x}`` -> ``{"<direction>/R@1": x}``."""
    return {f"{direction}/{k}": v for k, v in metrics.items()}


def caption_task(text_clip: Tensor, keep: Tensor, has_text: bool) -> tuple[Tensor, Tensor, int] | None:
    """Captions of the kept clips (mask over text rows), their clip's row among the kept clips,
    and the number of kept clips; None when there is nothing to rank."""
    n = int(keep.sum())
    queries = keep[text_clip] if has_text else torch.zeros(0, dtype=torch.bool)
    if not n or not bool(queries.any()):
        return None
    return queries, (torch.cumsum(keep.long(), 0) - 1)[text_clip[queries]], n


def both_ways(
    scores: Tensor, targets: Tensor, n: int, names: tuple[str, str | None], back: Tensor | None = None
) -> dict[str, float]:
    """Captions -> clips from ``scores`` (Q, n); and, when a second name is given, clips ->
    captions from ``back`` (n, Q; default ``scores.T``): a clip is found by any of its captions."""
    out = {**prefixed(names[0], retrieval_metrics(scores, targets)), f"{names[0]}/n": n}
    if names[1] is not None:
        relevant = relevance_matrix(targets, n).T  # (n, Q): every caption of each clip
        found = relevant.any(1)
        back = scores.T if back is None else back
        out.update(prefixed(names[1], retrieval_metrics(back[found], relevant[found])))
        out[f"{names[1]}/n"] = int(found.sum())
    return out


def caption_directions(
    emb: dict[str, Tensor], text_clip: Tensor, present: dict[str, Tensor], measure: str
) -> dict[str, float]:
    """t2va and va2t, t2v, t2a: captions of the clips that have the needed media, against them."""
    out: dict[str, float] = {"t2va/n": 0, "va2t/n": 0, "t2v/n": 0, "t2a/n": 0}
    for names, media in ((("t2va", "va2t"), MEDIA), (("t2v", None), (VIDEO,)), (("t2a", None), (AUDIO,))):
        keep = all_present(present, media)
        task = caption_task(text_clip, keep, "text" in emb)
        if task is not None:
            queries, targets, n = task
            scores = scores_in_chunks(emb["text"][queries], *(emb[m][keep] for m in media), measure=measure)  # (Q, n)
            out.update(both_ways(scores, targets, n, names))
    return out


def media_directions(emb: dict[str, Tensor], present: dict[str, Tensor], measure: str) -> dict[str, float]:
    """v2a and a2v over the clips that have both."""
    keep = all_present(present, MEDIA)
    n = int(keep.sum())
    out: dict[str, float] = {"v2a/n": n, "a2v/n": n}
    if n:
        scores = scores_in_chunks(emb[VIDEO][keep], emb[AUDIO][keep], measure=measure)  # (n, n)
        out.update(prefixed("v2a", retrieval_metrics(scores, torch.arange(n))))
        out.update(prefixed("a2v", retrieval_metrics(scores.T, torch.arange(n))))
    return out
