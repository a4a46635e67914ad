"""Retrieval in every direction and zero-shot classification from embeddings (any model's).

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
queries of va2t, the clip pairs of v2a and a2v). Zero-shot classification ranks the class prompts
as anchors against each clip (the predicted class has the best score: the smallest volume) and
gives ``cls/top1``, ``cls/top5`` and ``cls/n``.

Clips missing a modality are never dropped silently: ``missing/video`` and ``missing/audio`` count
them, and each direction is computed on the clips that have what it needs (its ``/n`` says how
many; a direction without any such clip has ``/n`` = 0 and no metric keys). In an embedding file
a missing modality is a zero row, listed in ``meta.extra["missing"]``; zero rows are treated as
missing either way (a zero vector spans no volume and would otherwise rank first).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .embeddings import EmbeddingMetadata
from .metrics import confusion_matrix, relevance_matrix, retrieval_metrics, topk_accuracy
from .scores import MEASURES, score_matrix

__all__ = ["DIRECTIONS", "METRICS", "confusion", "evaluate_embeddings", "format_table"]

DIRECTIONS = ("t2va", "va2t", "t2v", "t2a", "v2a", "a2v")
METRICS = ("R@1", "R@5", "R@10", "MedR", "MnR")
MEDIA = ("video", "audio")
_CHUNK = 2048  # anchors scored at once: bounds the (chunk, M, k-1) intermediates of a measure


def check_measure(measure: str) -> None:
    """Raise a ValueError naming ``measure`` unless it is one of `gramviz.MEASURES`."""
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; choose one of {', '.join(MEASURES)}")


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


def _prefixed(direction: str, metrics: dict[str, float]) -> dict[str, float]:
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
    out = {**_prefixed(names[0], retrieval_metrics(scores, targets)), f"{names[0]}/n": n}
    if names[1] is not None:
        relevant = relevance_matrix(targets, n).T  # (n, Q): every caption of each clip
        found = relevant.any(1)
        back = scores.T if back is None else back
        out.update(_prefixed(names[1], retrieval_metrics(back[found], relevant[found])))
        out[f"{names[1]}/n"] = int(found.sum())
    return out


def _caption_directions(
    emb: dict[str, Tensor], text_clip: Tensor, present: dict[str, Tensor], measure: str
) -> dict[str, float]:
    """t2va and va2t, t2v, t2a: captions of the clips that have the needed media, against them."""
    out: dict[str, float] = {"t2va/n": 0, "va2t/n": 0, "t2v/n": 0, "t2a/n": 0}
    for names, media in ((("t2va", "va2t"), MEDIA), (("t2v", None), ("video",)), (("t2a", None), ("audio",))):
        keep = all_present(present, media)
        task = caption_task(text_clip, keep, "text" in emb)
        if task is not None:
            queries, targets, n = task
            scores = scores_in_chunks(emb["text"][queries], *(emb[m][keep] for m in media), measure=measure)  # (Q, n)
            out.update(both_ways(scores, targets, n, names))
    return out


def _media_directions(emb: dict[str, Tensor], present: dict[str, Tensor], measure: str) -> dict[str, float]:
    """v2a and a2v over the clips that have both."""
    keep = all_present(present, MEDIA)
    n = int(keep.sum())
    out: dict[str, float] = {"v2a/n": n, "a2v/n": n}
    if n:
        scores = scores_in_chunks(emb["video"][keep], emb["audio"][keep], measure=measure)  # (n, n)
        out.update(_prefixed("v2a", retrieval_metrics(scores, torch.arange(n))))
        out.update(_prefixed("a2v", retrieval_metrics(scores.T, torch.arange(n))))
    return out


def _class_scores(
    emb: dict[str, Tensor], meta: EmbeddingMetadata, class_text: Tensor, present: dict[str, Tensor], measure: str
) -> tuple[Tensor, Tensor] | None:
    """(N, C) scores of the classifiable clips against the class prompts, and their labels."""
    media = [m for m in MEDIA if m in emb]
    if meta.class_ids is None or not media:
        return None
    labels = torch.tensor([-1 if c is None else c for c in meta.class_ids], dtype=torch.long)
    keep = all_present(present, media) & (labels >= 0)
    if not bool(keep.any()):
        return None
    if not isinstance(class_text, Tensor) or class_text.dim() != 2:
        raise ValueError("class_text must be a (classes, D) tensor of class prompt embeddings")
    top = int(labels[keep].max())
    if top >= class_text.shape[0]:
        raise ValueError(f"class id {top} has no prompt embedding: class_text has {class_text.shape[0]} rows")
    anchors = class_text.to(emb[media[0]].dtype)
    scores = scores_in_chunks(anchors, *(emb[m][keep] for m in media), measure=measure).T  # (N, C)
    return scores, labels[keep]


def evaluate_embeddings(
    emb: dict[str, Tensor],
    meta: EmbeddingMetadata,
    class_text: Tensor | None = None,
    measure: str = "volume",
) -> dict[str, float]:
    """Retrieval in every direction and zero-shot classification from precomputed embeddings.

    Args:
        emb: ``{"text": (captions, D), "video": (clips, D), "audio": (clips, D)}``; a modality may
            be absent (its directions get ``/n`` = 0); zero rows are missing clips.
        meta: the rows' metadata (``caption_clip``, ``class_ids``, ``extra["missing"]``).
        class_text: (C, D) embeddings of the class prompts, row c for class id c; None: no
            classification.
        measure: any of `gramviz.MEASURES`.

    Returns:
        Flat ``{"t2va/R@1": ..., "t2va/n": ..., ..., "cls/top1": ..., "cls/top5": ...,
        "cls/n": ..., "missing/video": ..., "missing/audio": ...}`` (see the module docstring).

    Example:
        Caption i lies in the plane of clip i's video and audio; video and audio are orthogonal
        everywhere, so video -> audio is all ties, which count against the query:

        >>> e = torch.eye(6)
        >>> emb = {"text": e[:3] + e[3:], "video": e[:3], "audio": e[3:]}
        >>> metrics = evaluate_embeddings(emb, EmbeddingMetadata(ids=["a", "b", "c"]))
        >>> metrics["t2va/R@1"], metrics["v2a/R@1"], metrics["missing/audio"]
        (1.0, 0.0, 0)
    """
    check_measure(measure)
    present = present_rows(emb, meta)
    text_clip = torch.as_tensor(meta.text_clips(), dtype=torch.long)
    found = _caption_directions(emb, text_clip, present, measure) | _media_directions(emb, present, measure)
    out = {f"{d}/{k}": found[f"{d}/{k}"] for d in DIRECTIONS for k in (*METRICS, "n") if f"{d}/{k}" in found}
    if class_text is not None:
        classified = _class_scores(emb, meta, class_text, present, measure)
        if classified is not None:
            out.update(_prefixed("cls", topk_accuracy(*classified, ks=(1, 5))))
        out["cls/n"] = 0 if classified is None else len(classified[1])
    out.update({f"missing/{m}": int((~present[m]).sum()) for m in MEDIA})
    return out


def confusion(
    emb: dict[str, Tensor], meta: EmbeddingMetadata, class_text: Tensor, measure: str = "volume"
) -> Tensor:
    """(C, C) zero-shot confusion counts: row = true class, column = predicted (best score).

    Over the clips that have a class and every embedded media modality; raises ValueError when
    there is none.
    """
    check_measure(measure)
    found = _class_scores(emb, meta, class_text, present_rows(emb, meta), measure)
    if found is None:
        raise ValueError("confusion: no clip has both a class id and its media embeddings")
    return confusion_matrix(*found)


def format_table(metrics: dict[str, float], title: str | None = None) -> str:
    """The metrics of `evaluate` as a readable table (recalls as fractions, as in the JSON)."""
    lines = [title] if title else []
    lines.append(f"{'direction':<10}" + "".join(f"{k:>8}" for k in (*METRICS, "n")))
    reranked = [d for d in ("t2va_dam", "va2t_dam") if f"{d}/n" in metrics]  # models with a DAM head
    for d in (*DIRECTIONS, *reranked):
        cells = [f"{metrics[f'{d}/{k}']:>8.3f}" if f"{d}/{k}" in metrics else f"{'-':>8}" for k in METRICS[:3]]
        cells += [f"{metrics[f'{d}/{k}']:>8.1f}" if f"{d}/{k}" in metrics else f"{'-':>8}" for k in METRICS[3:]]
        lines.append(f"{d:<10}" + "".join(cells) + f"{metrics.get(f'{d}/n', 0):>8}")
    if "cls/top1" in metrics:
        lines.append(
            f"classification: top-1 {metrics['cls/top1']:.3f}, top-5 {metrics['cls/top5']:.3f} "
            f"over {metrics['cls/n']} clips"
        )
    missing = ", ".join(f"{metrics[f'missing/{m}']} without {m}" for m in MEDIA if f"missing/{m}" in metrics)
    lines.append(f"clips missing a modality: {missing}")
    return "\n".join(lines)
