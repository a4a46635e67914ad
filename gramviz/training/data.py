"""Training data: a seeded permutation per epoch sliced by rank, one drawn caption per clip, the
decoded-tensor cache, and the model's input batch.

Every choice is a function of (seed, epoch, clip index) alone, so that a resumed run sees the
same batches and N processes with batch b see the same global batch as one process with N * b.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from .. import distributed
from ..datasets import ClipDataset, ClipSettings, annotations_path
from ..modalities import MEDIA, TEXT
from .config import TrainConfig

__all__ = ["IndexedClips", "EpochBatches", "epoch_seed", "caption_draws", "build_datasets", "to_model_batch", "seed_worker"]

CAPTION_STREAM = 7_919  # `epoch_seed` stream of the caption draws (0: the batch order and the workers)


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """The seed of one epoch's random stream: every per-epoch draw is a function of (seed, epoch).

    Example:
        >>> epoch_seed(1, 2), epoch_seed(1, 2, CAPTION_STREAM)
        (100005, 107924)
    """
    return seed * 100_003 + epoch + stream


def seed_worker(worker_id: int) -> None:
    """Seed python's and numpy's RNGs in a DataLoader worker from its torch seed."""
    seed = torch.initial_seed() % 2**32  # the DataLoader derives it from its seeded generator
    random.seed(seed)
    np.random.seed(seed)


class IndexedClips(Dataset):
    """A clip dataset whose batches also carry each clip's index (for the per-clip caption draw)."""

    def __init__(self, clips: Dataset) -> None:
        self.clips = clips

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {**self.clips[index], "index": index}

    def collate(self, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return {**self.clips.collate(items), "index": torch.tensor([it["index"] for it in items])}


class EpochBatches(Sampler):
    """This rank's batches of an epoch: a permutation seeded by (seed, epoch), cut into global
    batches of ``batch_size * world`` clips (the incomplete last one dropped), of which rank r
    takes the r-th slice. ``set_epoch(epoch, start)`` skips the first ``start`` batches (resume)."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1) -> None:
        self.n, self.batch_size, self.seed, self.rank, self.world = n, batch_size, seed, rank, world
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def __len__(self) -> int:
        return self.n // (self.batch_size * self.world) - self.start

    def __iter__(self) -> Iterator[list[int]]:
        g = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        order = torch.randperm(self.n, generator=g)
        glob = self.batch_size * self.world
        for b in range(self.start, self.n // glob):
            mine = order[b * glob + self.rank * self.batch_size:][: self.batch_size]
            yield mine.tolist()


def caption_draws(seed: int, epoch: int, n: int) -> Tensor:
    """(n,) random integers: clip i uses caption ``draws[i] % len(captions_i)`` this epoch, the
    same whatever the batch size or number of ranks."""
    g = torch.Generator().manual_seed(epoch_seed(seed, epoch, CAPTION_STREAM))
    return torch.randint(0, 2**31 - 1, (n,), generator=g)


def build_datasets(cfg: TrainConfig, settings: ClipSettings, rank: int) -> dict[str, tuple[ClipDataset, Dataset]]:
    """``{"train": (annotated clips, clips to load), "val": ...}``; loaded from the decoded-tensor
    cache when ``cache_dir`` is set (built by rank 0, checked by the others)."""
    from ..cache import open_cache

    out = {}
    for name, path in (("train", cfg.train_data), ("val", cfg.val_data)):
        if not path:
            continue
        annotated = loaded = ClipDataset(annotations_path(path), settings)
        if cfg.cache_dir:
            where = Path(cfg.cache_dir) / name
            if rank == 0:
                loaded = open_cache(annotated, where, workers=cfg.workers, progress=cfg.progress)
            distributed.barrier()
            if rank != 0:
                loaded = open_cache(annotated, where, on_stale="error", progress=False)
        out[name] = (annotated, loaded)
    return out


def to_model_batch(batch: dict[str, Any], draws: Tensor, modalities: Sequence[str], device: torch.device) -> dict[str, Any]:
    """The model's input: one drawn caption per clip, media on the device."""
    out: dict[str, Any] = {}
    if TEXT in modalities:
        out[TEXT] = [caps[int(draws[i]) % len(caps)] for caps, i in zip(batch["captions"], batch["index"])]
    for m in MEDIA:
        if m in modalities:
            out[m] = batch[m].to(device, non_blocking=True)
    return out
