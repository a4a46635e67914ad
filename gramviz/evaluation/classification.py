"""Zero-shot classification: class prompts as text anchors, each clip given the class whose
anchor scores best against its media (for GRAM: the smallest volume)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..embeddings import EmbeddingMetadata
from ..metrics import confusion_matrix
from ..modalities import MEDIA, TEXT
from ..models import inference
from ..scores import get_measure
from .retrieval import all_present, present_rows, scores_in_chunks

__all__ = ["class_names", "class_prompts", "class_scores", "confusion", "encode_class_prompts"]


def _world_class_names(classes: Sequence[str | None]) -> list[str] | None:
    """All names of the generated world's classes if ``classes`` are world classes, else None."""
    from ..world import CLASSES, class_name

    names = [class_name(i) for i in range(len(CLASSES))]
    named = [(i, n) for i, n in enumerate(classes) if n is not None]
    return names if named and all(i < len(names) and names[i] == n for i, n in named) else None


def class_names(dataset: Any) -> list[str] | None:
    """The dataset's class names by class index (all 20 for the generated world), or None."""
    classes = list(getattr(dataset, "classes", None) or [])
    if not classes:
        return None
    world = _world_class_names(classes)
    if world is not None:
        return world
    return classes if all(isinstance(n, str) for n in classes) else None


def class_prompts(dataset: Any) -> list[list[str]] | None:
    """Text prompts of the dataset's classes, by class index, for zero-shot classification.

    Each class gets a list of prompts whose embeddings are averaged (`encode_class_prompts`). The
    generated world's 20 classes get `gramviz.world.class_prompt_ensemble` ("a bouncing ball",
    "A ball hops.", ...: every way its captions name the class); other datasets their class name
    alone. None when there are no classes or some class index has no name.
    """
    classes = list(getattr(dataset, "classes", None) or [])
    if classes and _world_class_names(classes) is not None:
        from ..world import CLASSES, class_prompt_ensemble

        return [class_prompt_ensemble(i) for i in range(len(CLASSES))]
    names = class_names(dataset)
    return None if names is None else [[name] for name in names]


def encode_class_prompts(model: nn.Module, prompts: Sequence[Sequence[str]], batch_size: int = 64) -> Tensor:
    """(C, D) class anchors: for each class the mean of its prompts' unit text embeddings, scaled
    back to unit length (prompt ensembling, as CLIP-style zero-shot classifiers do).

    Example:
        >>> anchors = encode_class_prompts(model, [["a bouncing ball", "A ball hops."], ["a sliding block"]])  # doctest: +SKIP
        >>> anchors.shape  # doctest: +SKIP
        torch.Size([2, 256])
    """
    if not prompts or any(isinstance(p, str) or not p for p in prompts):
        raise ValueError("prompts must be a non-empty list of non-empty lists of strings, one list per class")
    flat = [text for group in prompts for text in group]
    with inference(model):
        chunks = [flat[i : i + batch_size] for i in range(0, len(flat), batch_size)]
        emb = torch.cat([model.encode({TEXT: chunk})[TEXT].detach().float().cpu() for chunk in chunks])
    emb = torch.nn.functional.normalize(emb, dim=1)
    groups = torch.split(emb, [len(group) for group in prompts])
    return torch.nn.functional.normalize(torch.stack([g.mean(0) for g in groups]), dim=1)


def class_scores(
    emb: dict[str, Tensor], meta: EmbeddingMetadata, class_text: Tensor, present: dict[str, Tensor], measure: str
) -> tuple[Tensor, Tensor] | None:
    """(N, C) scores of the classifiable clips against the class prompts, and their labels; None
    when no clip has both a class and its media embeddings."""
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


def confusion(
    emb: dict[str, Tensor], meta: EmbeddingMetadata, class_text: Tensor, measure: str = "volume"
) -> Tensor:
    """(C, C) zero-shot confusion counts: row = true class, column = predicted (best score).

    Over the clips that have a class and every embedded media modality; raises ValueError when
    there is none.
    """
    get_measure(measure)
    found = class_scores(emb, meta, class_text, present_rows(emb, meta), measure)
    if found is None:
        raise ValueError("confusion: no clip has both a class id and its media embeddings")
    return confusion_matrix(*found)
