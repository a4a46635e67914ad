"""The frozen-feature cache: when every backbone of a model is frozen, its towers see each clip
and caption once; the heads then train from the stored tower outputs and never run the towers.

The file (safetensors) holds ``video`` (N, num_frames, width; (N, 1, width) already averaged
over time when the model pools frames by their mean, which is exact), ``audio`` (N, width), ``text``
(all captions, width) and ``caption_start`` / ``caption_count`` (N,) that locate clip i's
captions among the text rows. Its name is a key over the backbone references, the
preprocessing settings and the data (`gramviz.evaluation.dataset_fingerprint`): another model or
changed clips give another file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..modalities import MEDIA, TEXT
from ..models import inference
from ..models.pretrained import BackboneEncoder, TowerFeatures

__all__ = ["FeatureClips", "all_frozen", "feature_key", "tower_features"]

FORMAT = "gramviz.tower-features/1"
_SETTINGS = ("num_frames", "frame_size", "sample_rate", "audio_seconds", "max_text_len", "backbones")


def all_frozen(model: Any) -> bool:
    """True when every encoder is a backbone whose tower does not train (the cache applies)."""
    encoders = getattr(model, "encoders", {})
    return bool(encoders) and all(isinstance(e, BackboneEncoder) and e.tower.frozen for e in encoders.values())


def feature_key(model: Any, dataset: Any) -> str:
    """16 hex digits over the backbone references, the preprocessing and the dataset's files."""
    from ..evaluation import dataset_fingerprint

    config = model.config.to_dict()
    fields = {"format": FORMAT, **{k: config[k] for k in _SETTINGS}, "data": dataset_fingerprint(dataset)}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def _media_features(model: Any, dataset: Any, batch_size: int, progress: bool) -> dict[str, Tensor]:
    device, out = model.device, {m: [] for m in MEDIA if m in model.config.modalities}
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=dataset.collate)
    for batch in tqdm(loader, desc="backbone features (clips)", unit="batch", disable=not progress):
        for m in out:
            encoder = model.encoders[m]
            z = encoder.features(encoder.prepare_input(batch[m], model.config, device)).float()
            if z.dim() == 3 and model.config.temporal == "mean":
                z = z.mean(dim=1, keepdim=True)  # the head averages the frames first anyway: store the mean
            out[m].append(z.cpu())
    return {m: torch.cat(v) for m, v in out.items()}


def _text_features(model: Any, captions: Sequence[str], batch_size: int, progress: bool) -> Tensor:
    encoder, rows = model.encoders[TEXT], []
    for i in tqdm(range(0, len(captions), batch_size), desc="backbone features (captions)", unit="batch",
                  disable=not progress):
        inputs = encoder.prepare_input(list(captions[i : i + batch_size]), model.config, model.device)
        rows.append(encoder.features(inputs).float().cpu())
    return torch.cat(rows)


def tower_features(model: Any, annotated: Any, loaded: Any, folder: str | Path, batch_size: int = 64,
                   progress: bool = True) -> dict[str, Tensor]:
    """The tower outputs of every clip and caption of a dataset, computed once and stored.

    Args:
        model: a `GRAMModel` whose encoders are all frozen backbones (`all_frozen`).
        annotated: the `ClipDataset` (captions, files: the cache key).
        loaded: the dataset to decode clips from (the decoded-tensor cache, or ``annotated``).
        folder: where ``<key>.safetensors`` is kept.
        batch_size: clips or captions per tower pass.
        progress: show a progress bar for the one-time pass.

    Returns:
        ``{"video", "audio", "text", "caption_start", "caption_count"}`` for the model's modalities.
    """
    from safetensors.torch import load_file, save_file

    path = Path(folder) / f"{feature_key(model, annotated)}.safetensors"
    if path.is_file():
        return load_file(str(path))
    records = annotated.records
    counts = torch.tensor([len(r.captions) for r in records], dtype=torch.long)
    out = {"caption_count": counts, "caption_start": torch.cumsum(counts, 0) - counts}
    with inference(model):
        out.update(_media_features(model, loaded, batch_size, progress))
        if TEXT in model.config.modalities:
            out[TEXT] = _text_features(model, [c for r in records for c in r.captions], batch_size, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    save_file({k: v.contiguous() for k, v in out.items()}, str(tmp), metadata={"format": FORMAT})
    tmp.replace(path)
    return out


class FeatureClips(Dataset):
    """Training batches from stored tower outputs: ``dataset[indices]`` gives a whole batch
    (use it with ``DataLoader(..., sampler=EpochBatches(...), batch_size=None)``)."""

    def __init__(self, features: dict[str, Tensor]) -> None:
        self.features = features
        self.n = len(features["caption_count"])

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, indices: Sequence[int]) -> dict[str, Any]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        f = self.features
        # index_select: one copy per row, several times faster than advanced indexing on a CPU
        batch: dict[str, Any] = {"index": idx, "caption_start": f["caption_start"].index_select(0, idx),
                                 "caption_count": f["caption_count"].index_select(0, idx),
                                 "caption_features": f.get(TEXT)}
        batch.update({m: f[m].index_select(0, idx) for m in MEDIA if m in f})
        return batch


def feature_batch(batch: dict[str, Any], draws: Tensor, modalities: Sequence[str], device: torch.device) -> dict[str, Any]:
    """The model's input from a `FeatureClips` batch: clip i's caption ``draws[i] % count_i``
    (the draw `gramviz.training.data.to_model_batch` makes of the strings), as `TowerFeatures`."""
    out: dict[str, Any] = {}
    if TEXT in modalities:
        rows = batch["caption_start"] + draws[batch["index"]] % batch["caption_count"]
        out[TEXT] = TowerFeatures(batch["caption_features"].index_select(0, rows).to(device, non_blocking=True))
    for m in MEDIA:
        if m in modalities:
            out[m] = TowerFeatures(batch[m].to(device, non_blocking=True))
    return out


def identity(batch: Any) -> Any:
    """The collate function of a `FeatureClips` loader: batches are built by the dataset."""
    return batch
