"""Evaluation as the paper does it: embed a dataset with a model, then rank in every direction
and classify zero-shot, every score from `gramviz.score_matrix` so that any measure can rank.

`embed_dataset` writes what `gramviz.save_embeddings` stores; `evaluate_embeddings` (the metrics
from embeddings: directions, keys and the treatment of missing modalities are described in
``gramviz._directions``) works on embeddings from any model; `evaluate` does both, encoding the
class prompts and, for a model with a DAM head, re-ranking as the paper does.

Keys of the result: ``<direction>/<metric>`` for the directions t2va, va2t, t2v, t2a, v2a, a2v and
the metrics R@1, R@5, R@10 (fractions in [0, 1]), MedR, MnR; ``<direction>/n`` (clips ranked);
``cls/top1``, ``cls/top5``, ``cls/n``; ``missing/video``, ``missing/audio``; with a DAM head also
``t2va_dam/...`` and ``va2t_dam/...``.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ._directions import (
    DIRECTIONS,
    MEDIA,
    METRICS,
    all_present,
    both_ways,
    caption_task,
    check_measure,
    confusion,
    evaluate_embeddings,
    format_table,
    present_rows,
    scores_in_chunks,
)
from .datasets import ClipDataset, ClipSettings
from .embeddings import EmbeddingMetadata

__all__ = [
    "DAM_TOP_K",
    "DIRECTIONS",
    "METRICS",
    "class_prompts",
    "clip_settings",
    "confusion",
    "embed_dataset",
    "encode_class_prompts",
    "evaluate",
    "evaluate_embeddings",
    "format_table",
    "open_dataset",
]

DAM_TOP_K = 50  # candidates per query re-ranked by a DAM head, as in the paper


@dataclass
class _Rows:
    """What `embed_dataset` collects, batch by batch; ``where`` indexes rows of the whole set."""

    ids: list[str] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    caption_clip: list[int] = field(default_factory=list)
    class_ids: list[int | None] = field(default_factory=list)
    missing: dict[str, list[int]] = field(default_factory=lambda: {m: [] for m in MEDIA})
    blocks: dict[str, list[tuple[Tensor, Tensor]]] = field(default_factory=dict)  # m -> [(where, (B', D))]
    # m -> [(where, tokens (B', L, width), mask (B', L))] when the DAM head needs them, else None
    tokens: dict[str, list[tuple[Tensor, Tensor, Tensor]]] | None = None

    def size(self, modality: str) -> int:
        return len(self.captions) if modality == "text" else len(self.ids)


def _model_modalities(model: nn.Module) -> tuple[str, ...]:
    found = getattr(model, "modalities", None) or getattr(getattr(model, "config", None), "modalities", None)
    if not found:
        raise ValueError("the model must name its modalities (model.modalities or model.config.modalities)")
    return tuple(found)


@contextlib.contextmanager
def _inference(model: nn.Module) -> Iterator[torch.device]:
    """Eval mode and no gradients; yields the model's device; the train/eval mode is restored."""
    first = next(iter(model.parameters()), None)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield first.device if first is not None else torch.device("cpu")
    finally:
        model.train(was_training)


def _encode(model: nn.Module, m: str, x: Any, device: torch.device, rows: _Rows, where: Tensor) -> None:
    """Embed one modality's input for rows ``where``, float32 on the CPU (and its tokens for DAM)."""
    x = x.to(device) if isinstance(x, Tensor) else x
    if rows.tokens is None:
        emb = model.encode({m: x})[m]
    else:
        emb, tokens = model.encode({m: x}, return_tokens=True)
        emb, t = emb[m], tokens[m]
        mask = tokens.masks.get(m, torch.ones(t.shape[:2], dtype=torch.bool))
        rows.tokens.setdefault(m, []).append((where, t.detach().float().cpu(), mask.cpu()))
    rows.blocks.setdefault(m, []).append((where, emb.detach().float().cpu()))


def _embed_batch(model: nn.Module, batch: dict[str, Any], modalities: Sequence[str], rows: _Rows, device) -> None:
    start, first_caption = len(rows.ids), len(rows.captions)
    for i, caps in enumerate(batch["captions"]):
        rows.caption_clip.extend([start + i] * len(caps))
        rows.captions.extend(caps)
    if "text" in modalities:
        where = torch.arange(first_caption, len(rows.captions))
        _encode(model, "text", rows.captions[first_caption:], device, rows, where)
    rows.ids.extend(batch["id"])
    rows.class_ids.extend(None if c < 0 else int(c) for c in batch["class_id"].tolist())
    for m in MEDIA:
        present = batch["present"][m].bool()
        rows.missing[m].extend((start + (~present).nonzero().flatten()).tolist())
        if m in modalities and batch[m] is not None and bool(present.any()):
            _encode(model, m, batch[m][present], device, rows, start + present.nonzero().flatten())


def _stack_blocks(rows: _Rows) -> dict[str, Tensor]:
    """Modality -> (rows, D), zero rows where a clip lacks the modality; a modality that no clip
    has is left out."""
    out = {}
    for m, blocks in rows.blocks.items():
        out[m] = torch.zeros(rows.size(m), blocks[0][1].shape[1])
        for where, emb in blocks:
            out[m][where] = emb
    return out


def _stack_tokens(rows: _Rows) -> Any:
    """`ModalityTokens` of every row, padded to the longest (mask False on padding)."""
    from .models.dam import ModalityTokens

    out = ModalityTokens()
    for m, blocks in (rows.tokens or {}).items():
        n, length, width = rows.size(m), max(t.shape[1] for _, t, _ in blocks), blocks[0][1].shape[2]
        out[m], out.masks[m] = torch.zeros(n, length, width), torch.zeros(n, length, dtype=torch.bool)
        for where, t, mask in blocks:
            out[m][where, : t.shape[1]], out.masks[m][where, : t.shape[1]] = t, mask
    return out


def _world_class_names(classes: Sequence[str | None]) -> list[str] | None:
    """All names of the generated world's classes if ``classes`` are world classes, else None."""
    from .world import CLASSES, class_name

    names = [class_name(i) for i in range(len(CLASSES))]
    named = [(i, n) for i, n in enumerate(classes) if n is not None]
    return names if named and all(i < len(names) and names[i] == n for i, n in named) else None


def _class_names(dataset: Any) -> list[str] | None:
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
        from .world import CLASSES, class_prompt_ensemble

        return [class_prompt_ensemble(i) for i in range(len(CLASSES))]
    names = _class_names(dataset)
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
    with _inference(model):
        chunks = [flat[i : i + batch_size] for i in range(0, len(flat), batch_size)]
        emb = torch.cat([model.encode({"text": chunk})["text"].detach().float().cpu() for chunk in chunks])
    emb = torch.nn.functional.normalize(emb, dim=1)
    groups = torch.split(emb, [len(group) for group in prompts])
    return torch.nn.functional.normalize(torch.stack([g.mean(0) for g in groups]), dim=1)


def _metadata(dataset: Any, rows: _Rows, model_name: str | None) -> EmbeddingMetadata:
    classes = _class_names(dataset)
    records = getattr(dataset, "records", None)
    paths: dict[str, list[str]] = {}
    if records is not None and len(records) == len(rows.ids):
        lacking = {m: set(rows.missing[m]) for m in MEDIA}
        paths = {
            "video": ["" if i in lacking["video"] else str(r.video) for i, r in enumerate(records)],
            "audio": ["" if i in lacking["audio"] else str(r.audio or r.video) for i, r in enumerate(records)],
        }
    return EmbeddingMetadata(
        ids=rows.ids,
        captions=rows.captions,
        caption_clip=rows.caption_clip,
        class_ids=rows.class_ids if any(c is not None for c in rows.class_ids) else None,
        classes=classes,
        paths=paths,
        model=model_name,
        extra={"missing": rows.missing},
    )


def embed_dataset(
    model: nn.Module, dataset: Any, batch_size: int = 64, progress: bool = True
) -> tuple[dict[str, Tensor], EmbeddingMetadata]:
    """Embed every caption and clip of a dataset, in order, without gradients.

    Args:
        model: has ``modalities`` (or ``config.modalities``) and ``encode(batch) -> {modality:
            (B, D)}``; put in eval mode while embedding, its train/eval mode restored after.
        dataset: a `ClipDataset`-like dataset with ``collate`` (items with id, captions, video,
            audio, class_id; batches with ``present`` masks).
        batch_size: clips per batch.
        progress: show a progress bar (on stderr).

    Returns:
        (``{"text": (captions, D), "video": (clips, D), "audio": (clips, D)}`` float32 on the
        CPU, `EmbeddingMetadata` with ids, captions, caption_clip, class_ids, classes, paths and
        ``extra["missing"]``: the clip rows lacking each modality, whose embedding rows are zero).

    Example:
        >>> emb, meta = embed_dataset(model, ClipDataset("world/test/captions.jsonl"))  # doctest: +SKIP
        >>> emb["text"].shape[0] == len(meta.caption_clip)  # doctest: +SKIP
        True
    """
    emb, meta, _ = _embed(model, dataset, batch_size, progress, tokens=False)
    return emb, meta


def _embed(model: nn.Module, dataset: Any, batch_size: int, progress: bool, tokens: bool) -> tuple[Any, ...]:
    """`embed_dataset`, and the `ModalityTokens` of every row when ``tokens`` (else None)."""
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    modalities, rows = _model_modalities(model), _Rows(tokens={} if tokens else None)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=dataset.collate)
    with _inference(model) as device:
        for batch in tqdm(loader, desc="embedding", unit="batch", disable=not progress):
            _embed_batch(model, batch, modalities, rows, device)
    name = getattr(model, "name", None)
    meta = _metadata(dataset, rows, name if isinstance(name, str) else None)
    return _stack_blocks(rows), meta, _stack_tokens(rows) if tokens else None


def clip_settings(model: nn.Module | None = None) -> ClipSettings:
    """How to decode clips for ``model``: its config's frames, frame size, sample rate and audio
    length when it has them (decoding no more than the model uses), else `ClipSettings()`."""
    config, default = getattr(model, "config", None), ClipSettings()
    return ClipSettings(
        num_frames=getattr(config, "num_frames", default.num_frames),
        frame_size=tuple(getattr(config, "frame_size", default.frame_size)),
        sample_rate=getattr(config, "sample_rate", default.sample_rate),
        audio_seconds=getattr(config, "audio_seconds", default.audio_seconds),
    )


def open_dataset(data: str | Path, model: nn.Module | None = None) -> ClipDataset:
    """A `ClipDataset` of a folder holding ``captions.jsonl`` (e.g. a generated world split) or of
    an annotation file (.jsonl, .csv, GRAM/VAST .json), decoded as ``model`` needs."""
    path = Path(data)
    return ClipDataset(path / "captions.jsonl" if path.is_dir() else path, clip_settings(model))


def _dam_metrics(
    model: nn.Module, emb: dict[str, Tensor], meta: EmbeddingMetadata, tokens: Any, measure: str, progress: bool
) -> dict[str, float]:
    """t2va_dam and va2t_dam: the top `DAM_TOP_K` of t2va and va2t re-ranked by the DAM head."""
    from .models.dam import dam_rerank

    keep = all_present(present_rows(emb, meta), MEDIA)
    task = caption_task(torch.as_tensor(meta.text_clips(), dtype=torch.long), keep, "text" in emb)
    if task is None or not all(m in tokens for m in ("text", *MEDIA)):
        return {}
    queries, targets, n = task
    if progress:
        print(f"re-ranking the top {DAM_TOP_K} by the DAM head, both ways ({n} clips)", file=sys.stderr)
    pick, device = {"text": queries, "video": keep, "audio": keep}, next(iter(model.parameters())).device
    sub = type(tokens)(
        {m: tokens[m][rows].to(device) for m, rows in pick.items()},
        masks={m: tokens.masks[m][rows].to(device) for m, rows in pick.items()},
    )
    scores = scores_in_chunks(emb["text"][queries], emb["video"][keep], emb["audio"][keep], measure=measure)  # (Q, n)
    there = dam_rerank(model, sub, scores, k=DAM_TOP_K)
    back = dam_rerank(model, sub, scores.T.contiguous(), k=DAM_TOP_K, queries="candidates")
    return both_ways(there, targets, n, ("t2va_dam", "va2t_dam"), back)


def _has_dam(model: nn.Module) -> bool:
    """Whether ``model`` has a DAM head that `gramviz.models.dam.dam_rerank` can use."""
    if getattr(model, "dam", None) is None or not hasattr(model, "anchor"):
        return False
    try:
        from .models.dam import dam_rerank  # noqa: F401
    except ImportError:
        return False
    return True


def evaluate(
    model: nn.Module,
    dataset: Any,
    measure: str = "volume",
    batch_size: int = 64,
    progress: bool = False,
    rerank: bool = False,
) -> dict[str, float]:
    """Embed a dataset with ``model`` and compute every metric of `evaluate_embeddings`.

    Classification uses `class_prompts` (for the world, every way its captions name a class, such
    as "a bouncing ball" and "A ball hops."; else the dataset's class names) averaged into one
    text anchor per class by `encode_class_prompts`; it is skipped when the dataset
    has no classes or the model no text encoder. With ``rerank`` and a model with a DAM head, the
    top `DAM_TOP_K` clips of each caption (and captions of each clip) are also re-ranked by the
    DAM matching probability, as in the paper, under the extra directions ``t2va_dam`` and
    ``va2t_dam`` (off by default: 200,000 pair passes on a 1,000-clip split, minutes on a CPU).
    The model's train/eval mode is restored after.

    Example:
        >>> model = load_model("world-small")  # doctest: +SKIP
        >>> metrics = evaluate(model, open_dataset("data/world/test", model))  # doctest: +SKIP
        >>> [k for k in metrics if k.startswith("t2va/")]  # doctest: +SKIP
        ['t2va/R@1', 't2va/R@5', 't2va/R@10', 't2va/MedR', 't2va/MnR', 't2va/n']
    """
    check_measure(measure)
    dam = rerank and _has_dam(model)
    emb, meta, tokens = _embed(model, dataset, batch_size, progress, tokens=dam)
    prompts = class_prompts(dataset)
    class_text = encode_class_prompts(model, prompts, batch_size) if prompts and "text" in emb else None
    out = evaluate_embeddings(emb, meta, class_text, measure)
    return (out | _dam_metrics(model, emb, meta, tokens, measure, progress)) if dam else out
