"""The two entry points: `evaluate` (embed a dataset with a model, then every metric) and
`evaluate_embeddings` (every metric from embeddings made by any model).

Keys of the result: ``<direction>/<metric>`` for the directions t2va, va2t, t2v, t2a, v2a, a2v
(`gramviz.evaluation.retrieval`) and the metrics R@1, R@5, R@10 (fractions in [0, 1]), MedR, MnR;
``<direction>/n`` (clips ranked); ``cls/top1``, ``cls/top5``, ``cls/n`` (zero-shot
classification); ``missing/video``, ``missing/audio`` (clips lacking a modality, never dropped
silently); with a DAM head and ``rerank`` also ``t2va_dam/...`` and ``va2t_dam/...``; with
``geometry`` also ``geom/<name>`` for each of `gramviz.analysis.collapse_metrics`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..analysis import collapse_metrics
from ..embeddings import EmbeddingMetadata
from ..metrics import topk_accuracy
from ..modalities import MEDIA, TEXT
from ..scores import get_measure
from .classification import class_prompts, class_scores, encode_class_prompts
from .embedding import embed_with_tokens
from .rerank import dam_metrics, has_dam
from .retrieval import DIRECTIONS, METRICS, caption_directions, media_directions, prefixed, present_rows

__all__ = ["evaluate", "evaluate_embeddings"]


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
    get_measure(measure)
    present = present_rows(emb, meta)
    text_clip = torch.as_tensor(meta.text_clips(), dtype=torch.long)
    found = caption_directions(emb, text_clip, present, measure) | media_directions(emb, present, measure)
    out = {f"{d}/{k}": found[f"{d}/{k}"] for d in DIRECTIONS for k in (*METRICS, "n") if f"{d}/{k}" in found}
    if class_text is not None:
        classified = class_scores(emb, meta, class_text, present, measure)
        if classified is not None:
            out.update(prefixed("cls", topk_accuracy(*classified, ks=(1, 5))))
        out["cls/n"] = 0 if classified is None else len(classified[1])
    out.update({f"missing/{m}": int((~present[m]).sum()) for m in MEDIA})
    return out


def evaluate(
    model: nn.Module,
    dataset: Any,
    measure: str = "volume",
    batch_size: int = 64,
    progress: bool = False,
    rerank: bool = False,
    geometry: bool = False,
) -> dict[str, float]:
    """Embed a dataset with ``model`` and compute every metric of `evaluate_embeddings`.

    Classification uses `class_prompts` (for the world, every way its captions name a class, such
    as "a bouncing ball" and "A ball hops."; else the dataset's class names) averaged into one
    text anchor per class by `encode_class_prompts`; it is skipped when the dataset
    has no classes or the model no text encoder. With ``rerank`` and a model with a DAM head, the
    top `DAM_TOP_K` clips of each caption (and captions of each clip) are also re-ranked by the
    DAM matching probability, as in the paper, under the extra directions ``t2va_dam`` and
    ``va2t_dam`` (off by default: 200,000 pair passes on a 1,000-clip split, minutes on a CPU).
    With ``geometry`` (the trainer's validation), the volume statistics of `collapse_metrics` are
    added as ``geom/...`` where the dataset has at least two complete clips with captions.
    The model's train/eval mode is restored after.

    Example:
        >>> model = load_model("world-small")  # doctest: +SKIP
        >>> metrics = evaluate(model, open_dataset("data/world/test", model))  # doctest: +SKIP
        >>> [k for k in metrics if k.startswith("t2va/")]  # doctest: +SKIP
        ['t2va/R@1', 't2va/R@5', 't2va/R@10', 't2va/MedR', 't2va/MnR', 't2va/n']
    """
    get_measure(measure)
    dam = rerank and has_dam(model)
    emb, meta, tokens = embed_with_tokens(model, dataset, batch_size, progress, tokens=dam)
    prompts = class_prompts(dataset)
    class_text = encode_class_prompts(model, prompts, batch_size) if prompts and TEXT in emb else None
    out = evaluate_embeddings(emb, meta, class_text, measure)
    if geometry and all(m in emb for m in (TEXT, *MEDIA)):
        try:
            out |= {f"geom/{k}": v for k, v in collapse_metrics(emb, meta.text_clips()).items()}
        except ValueError:  # fewer than two complete clips with captions: nothing to measure
            pass
    return (out | dam_metrics(model, emb, meta, tokens, measure, progress)) if dam else out
