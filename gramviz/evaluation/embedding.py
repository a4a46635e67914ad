"""Embedding a dataset with a model: every caption and clip, in order, without gradients.

`embed_dataset` returns what `gramviz.save_embeddings` stores; the rows of a clip that lacks a
modality are zero and listed in ``meta.extra["missing"]``. `open_dataset` opens a clip folder or
an annotation file decoded as a model needs. ``sharded.py`` builds on the pieces here to embed a
dataset in resumable parts, over the ranks of ``torchrun``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..datasets import ClipDataset, annotations_path
from ..embeddings import EmbeddingMetadata
from ..modalities import MEDIA, TEXT
from ..models import clip_settings, inference
from .classification import class_names

__all__ = ["amp_context", "autocast_dtype", "embed_dataset", "embed_with_tokens", "model_modalities", "open_dataset"]


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


def model_modalities(model: nn.Module) -> tuple[str, ...]:
    """The modalities a model encodes (``model.modalities`` or ``model.config.modalities``)."""
    found = getattr(model, "modalities", None) or getattr(getattr(model, "config", None), "modalities", None)
    if not found:
        raise ValueError("the model must name its modalities (model.modalities or model.config.modalities)")
    return tuple(found)


def autocast_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    """The autocast dtype of mixed precision on ``device``: bfloat16 on a CUDA device that has it,
    else float16; None (full precision) on the CPU or when ``amp`` is False."""
    if not amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def amp_context(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """``torch.autocast`` in `autocast_dtype` on a CUDA device when ``amp``, else a no-op context."""
    dtype = autocast_dtype(device, amp)
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def make_loader(dataset: Any, workers: int, batch_size: int | None = None, batches: Any = None) -> Any:
    """A DataLoader over ``dataset`` in order, ``workers`` processes decoding clips (0: this one);
    batches of ``batch_size`` clips, or the lists of indices ``batches``."""
    from torch.utils.data import DataLoader

    if int(workers) != workers or workers < 0:
        raise ValueError(f"workers must be a non-negative integer, got {workers!r}")
    if batches is not None:
        return DataLoader(dataset, batch_sampler=batches, num_workers=int(workers), collate_fn=dataset.collate)
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=int(workers), collate_fn=dataset.collate)


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
    if TEXT in modalities and len(rows.captions) > first_caption:  # a batch of clips without captions: no text
        where = torch.arange(first_caption, len(rows.captions))
        _encode(model, TEXT, rows.captions[first_caption:], device, rows, where)
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
    from ..models.dam import ModalityTokens

    out = ModalityTokens()
    for m, blocks in (rows.tokens or {}).items():
        n, length, width = rows.size(m), max(t.shape[1] for _, t, _ in blocks), blocks[0][1].shape[2]
        out[m], out.masks[m] = torch.zeros(n, length, width), torch.zeros(n, length, dtype=torch.bool)
        for where, t, mask in blocks:
            out[m][where, : t.shape[1]], out.masks[m][where, : t.shape[1]] = t, mask
    return out


def _metadata(dataset: Any, rows: _Rows, model_name: str | None) -> EmbeddingMetadata:
    classes = class_names(dataset)
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
    model: nn.Module, dataset: Any, batch_size: int = 64, progress: bool = True, *, workers: int = 0, amp: bool = False
) -> tuple[dict[str, Tensor], EmbeddingMetadata]:
    """Embed every caption and clip of a dataset, in order, without gradients.

    Args:
        model: has ``modalities`` (or ``config.modalities``) and ``encode(batch) -> {modality:
            (B, D)}``; put in eval mode while embedding, its train/eval mode restored after.
        dataset: a `ClipDataset`-like dataset with ``collate`` (items with id, captions, video,
            audio, class_id; batches with ``present`` masks).
        batch_size: clips per batch.
        progress: show a progress bar (on stderr).
        workers: DataLoader worker processes that decode clips in parallel (0: this process).
        amp: autocast (bf16, else fp16) when the model is on a CUDA device; the embeddings are
            float32 either way. No effect on the CPU.

    Returns:
        (``{"text": (captions, D), "video": (clips, D), "audio": (clips, D)}`` float32 on the
        CPU, `EmbeddingMetadata` with ids, captions, caption_clip, class_ids, classes, paths and
        ``extra["missing"]``: the clip rows lacking each modality, whose embedding rows are zero).

    Example:
        >>> emb, meta = embed_dataset(model, ClipDataset("world/test/captions.jsonl"))  # doctest: +SKIP
        >>> emb["text"].shape[0] == len(meta.caption_clip)  # doctest: +SKIP
        True
    """
    emb, meta, _ = embed_with_tokens(model, dataset, batch_size, progress, tokens=False, workers=workers, amp=amp)
    return emb, meta


def check_batch_size(batch_size: Any) -> None:
    """Raise a `ValueError` unless ``batch_size`` is a positive integer."""
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def embed_with_tokens(
    model: nn.Module, dataset: Any, batch_size: int, progress: bool, tokens: bool, *, workers: int = 0, amp: bool = False
) -> tuple[Any, ...]:
    """`embed_dataset`, and the `ModalityTokens` of every row (for a DAM head) when ``tokens``, else None."""
    from tqdm.auto import tqdm

    check_batch_size(batch_size)
    modalities, rows = model_modalities(model), _Rows(tokens={} if tokens else None)
    loader = make_loader(dataset, workers, batch_size)
    with inference(model) as device:
        for batch in tqdm(loader, desc="embedding", unit="batch", disable=not progress):
            with amp_context(device, amp):
                _embed_batch(model, batch, modalities, rows, device)
    name = getattr(model, "name", None)
    meta = _metadata(dataset, rows, name if isinstance(name, str) else None)
    return _stack_blocks(rows), meta, _stack_tokens(rows) if tokens else None


def open_dataset(data: str | Path, model: nn.Module | None = None) -> ClipDataset:
    """A `ClipDataset` of a folder holding ``captions.jsonl`` (e.g. a generated world split) or of
    an annotation file (.jsonl, .csv, GRAM/VAST .json), decoded as ``model`` needs."""
    return ClipDataset(annotations_path(data), clip_settings(model))
