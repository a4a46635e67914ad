"""Embedding a dataset into one embedding file in parts: resumable, and shared by ``torchrun`` ranks.

The clips are cut into chunks of ``batch_size * batches_per_part`` consecutive clips. Chunk k is
embedded by rank ``k mod world_size`` (round robin) and written, as soon as it is done, as
``part-<k>.safetensors`` in the work folder ``<out>.parts/<key>/``. After a barrier, rank 0
merges the parts in chunk order into the embedding file (docs/embeddings.md) and removes
``<out>.parts/``. Every rank must see the folder of ``out`` (one machine, or a shared file system).

Why chunks of whole batches dealt round robin: every batch is the batch a single process would
embed (chunk boundaries fall on batch boundaries), so the file equals a one-process run whatever
the number of ranks; a part does not depend on the world size, so a run may be resumed with
another number of processes; and each rank gets chunks from the whole dataset, so the work
stays balanced when clips differ in cost from one end of the dataset to the other.

Resume: a run started again with the same model, data and settings skips the parts already in
its work folder. The key hashes the model (config, tokenizer, every weight), the dataset (its
annotation file, records, decoding settings, and the size and modification time of every media
file) and the settings that change the numbers (batch size, batches per part, device type,
autocast dtype). Parts of another model, dataset or settings lie in another folder and are never
read: such a run starts afresh (and says so through ``log``); every folder under ``<out>.parts/``
is removed after a successful merge. Each part also records its key, checked when it is read.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .. import distributed
from ..embeddings import EmbeddingMetadata, save_embeddings
from ..modalities import TEXT
from ..models import inference, model_fingerprint
from .embedding import (
    _embed_batch,
    _metadata,
    _Rows,
    _stack_blocks,
    amp_context,
    autocast_dtype,
    check_batch_size,
    make_loader,
    model_modalities,
)

__all__ = ["EmbedRun", "dataset_fingerprint", "embed_to_file", "parts_folder"]

PART_KEY = "gramviz.part"  # safetensors header metadata of a part file
KEY_VERSION = 1  # bump when the part layout changes: older parts are then never read


@dataclass
class EmbedRun:
    """What `embed_to_file` did on this rank.

    Attributes:
        out: the embedding file.
        work_dir: this run's parts, ``<out>.parts/<key>`` (removed after the merge).
        parts: parts of the whole dataset.
        reused: parts of this rank found already written, not embedded again.
        written: parts of this rank embedded and written by this call.
        merged: True where the parts were merged into ``out`` (rank 0, once every part is there).
        clips: clip rows of the merged file (0 where nothing was merged).
        captions: caption rows of the merged file (0 where nothing was merged).
    """

    out: Path
    work_dir: Path
    parts: int
    reused: int
    written: int
    merged: bool = False
    clips: int = 0
    captions: int = 0


def dataset_fingerprint(dataset: Any) -> str:
    """16 hex digits identifying a dataset as it is decoded: its size, annotation file, records
    (ids, media files, captions, classes), decoding settings, and the size and modification time
    of every media file."""
    h = hashlib.sha256(f"{type(dataset).__qualname__}:{len(dataset)};".encode())
    source = getattr(dataset, "source", None)
    if source is not None and Path(source).is_file():
        h.update(Path(source).read_bytes())
    settings = getattr(dataset, "settings", None)
    if hasattr(settings, "to_dict"):
        h.update(json.dumps(settings.to_dict(), sort_keys=True).encode())
    for r in getattr(dataset, "records", None) or []:
        h.update(json.dumps([r.id, str(r.video), str(r.audio), list(r.captions), r.class_id, r.class_name]).encode())
        for p in (r.video, r.audio):
            st = p.stat() if p is not None and p.exists() else None
            h.update(f"{st.st_size if st else -1}:{st.st_mtime_ns if st else -1};".encode())
    return h.hexdigest()[:16]


def parts_folder(out: str | Path) -> Path:
    """The work folder of the parts of embedding file ``out``: ``<out>.parts`` beside it."""
    out = Path(out)
    return out.with_name(out.name + ".parts")


def _work_key(model: nn.Module, dataset: Any, batch_size: int, batches_per_part: int, amp: bool) -> dict[str, Any]:
    """Everything that decides the parts' content, and its hash under ``"key"``."""
    device = next(iter(model.parameters()), torch.empty(0)).device
    dtype = autocast_dtype(device, amp)
    fields = {
        "version": KEY_VERSION,
        "model": model_fingerprint(model),
        "data": dataset_fingerprint(dataset),
        "clips": len(dataset),
        "modalities": list(model_modalities(model)),
        "batch_size": int(batch_size),
        "batches_per_part": int(batches_per_part),
        "device": device.type,
        "autocast": None if dtype is None else str(dtype),
    }
    return {"key": hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16], **fields}


def _part_path(folder: Path, k: int) -> Path:
    return folder / f"part-{k:06d}.safetensors"


def _part_done(path: Path, key: str) -> bool:
    """Whether ``path`` is a complete part written under ``key`` (reads its header only)."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        return False
    try:
        with safe_open(str(path), framework="pt") as f:
            header = json.loads((f.metadata() or {}).get(PART_KEY, "null"))
    except (SafetensorError, OSError, ValueError):
        return False
    return isinstance(header, dict) and header.get("key") == key


def _write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` to a temporary file beside ``path``, then rename: a killed run leaves no half file."""
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def _write_part(path: Path, key: str, k: int, rows: _Rows) -> None:
    from safetensors.torch import save_file

    header = {"key": key, "chunk": k, "ids": rows.ids, "captions": rows.captions, "caption_clip": rows.caption_clip,
              "class_ids": rows.class_ids, "missing": rows.missing}
    tensors = {m: t.contiguous() for m, t in _stack_blocks(rows).items()}
    _write_atomically(path, lambda tmp: save_file(tensors, str(tmp), metadata={PART_KEY: json.dumps(header)}))


def _read_part(path: Path, key: str, k: int) -> tuple[dict[str, Any], dict[str, Tensor]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        header = json.loads((f.metadata() or {})[PART_KEY])
        tensors = {m: f.get_tensor(m) for m in f.keys()}
    if header.get("key") != key or header.get("chunk") != k:
        raise RuntimeError(f"{path}: a part of another run (key {header.get('key')}, chunk {header.get('chunk')})")
    return header, tensors


def _merge(folder: Path, key: str, parts: int, dataset: Any, model_name: str | None) -> tuple[dict[str, Tensor], EmbeddingMetadata]:
    """The parts, in chunk order, as one set of embeddings and its metadata (as `embed_dataset` returns)."""
    rows = _Rows()
    for k in range(parts):
        header, tensors = _read_part(_part_path(folder, k), key, k)
        clip0, caption0 = len(rows.ids), len(rows.captions)
        rows.ids += header["ids"]
        rows.captions += header["captions"]
        rows.caption_clip += [clip0 + c for c in header["caption_clip"]]
        rows.class_ids += header["class_ids"]
        for m, where in header["missing"].items():
            rows.missing.setdefault(m, []).extend(clip0 + i for i in where)
        for m, t in tensors.items():
            first = caption0 if m == TEXT else clip0
            rows.blocks.setdefault(m, []).append((torch.arange(first, first + t.shape[0]), t))
    if len(rows.ids) != len(dataset):
        raise RuntimeError(f"{folder}: the parts hold {len(rows.ids)} clips, the dataset {len(dataset)}")
    return _stack_blocks(rows), _metadata(dataset, rows, model_name)


def _embed_parts(model: nn.Module, dataset: Any, folder: Path, key: str, chunks: dict[int, range], settings: dict[str, Any],
                 bar: Any) -> None:
    """Embed the clips of each chunk ``k -> range of clips`` and write it as part k, in order."""
    batch_size = settings["batch_size"]
    batches = [[list(c[i : i + batch_size]) for i in range(0, len(c), batch_size)] for c in chunks.values()]
    if not batches:
        return
    loader = iter(make_loader(dataset, settings["workers"], batches=[b for part in batches for b in part]))
    modalities = model_modalities(model)
    with inference(model) as device:
        for k, part in zip(chunks, batches):
            rows = _Rows()
            for _ in part:
                batch = next(loader)
                with amp_context(device, settings["amp"]):
                    _embed_batch(model, batch, modalities, rows, device)
                bar.update(len(batch["id"]))
            _write_part(_part_path(folder, k), key, k, rows)


def _prepare(root: Path, fields: dict[str, Any], parts: int, log: Callable[[str], None] | None) -> tuple[Path, set[int]]:
    """Create this run's work folder; the parts already in it; tell ``log`` about parts reused or ignored."""
    folder = root / fields["key"]
    folder.mkdir(parents=True, exist_ok=True)
    if distributed.rank() == 0:
        text = json.dumps(fields, indent=1)
        _write_atomically(folder / "key.json", lambda tmp: tmp.write_text(text))
    done = {k for k in range(parts) if _part_done(_part_path(folder, k), fields["key"])}
    if log is not None and distributed.rank() == 0:
        others = sorted(p.name for p in root.iterdir() if p.is_dir() and p != folder and any(p.glob("part-*")))
        if others:
            log(f"ignoring the parts in {root}/{{{','.join(others)}}}: written for another model, dataset or "
                "settings; starting afresh (they are removed after the merge)")
        if done:
            log(f"resuming: {len(done)} of {parts} parts already written in {folder}")
    return folder, done


def embed_to_file(
    model: nn.Module,
    dataset: Any,
    out: str | Path,
    *,
    batch_size: int = 64,
    batches_per_part: int = 16,
    workers: int = 0,
    amp: bool = False,
    progress: bool = True,
    model_name: str | None = None,
    stop_after: int | None = None,
    log: Callable[[str], None] | None = None,
) -> EmbedRun:
    """Embed every caption and clip of ``dataset`` into the embedding file ``out``, in parts.

    In one process, or on every rank of a ``torchrun`` process group (each embeds its chunks; call
    it on all ranks). The file equals ``save_embeddings(out, *embed_dataset(model, dataset, batch_size))``
    to float rounding, whatever the number of ranks. Parts go to ``parts_folder(out)/<key>/`` as
    they are done; a call with the same model, data and settings continues from them.

    Args:
        model, dataset, batch_size, workers, amp: as for `embed_dataset`.
        out: the embedding file to write (on rank 0).
        batches_per_part: batches per part file, the unit of resume and of work between ranks.
        progress: a progress bar of this rank's clips, on rank 0.
        model_name: stored as the file's ``model`` (default ``model.name`` if it is a string).
        stop_after: write at most this many parts on each rank, then stop without merging
            (an interrupted run, made deterministic); None: all.
        log: called on rank 0 with notes (parts reused, parts of another run ignored).

    Returns:
        An `EmbedRun`: parts reused and written on this rank, whether the file was merged.
    """
    _check_settings(batch_size, batches_per_part, stop_after)
    out, rank, world = Path(out), distributed.rank(), distributed.world_size()
    fields = _work_key(model, dataset, batch_size, batches_per_part, amp)
    size = batch_size * batches_per_part
    chunks = [range(s, min(s + size, len(dataset))) for s in range(0, len(dataset), size)]
    folder, done = _prepare(parts_folder(out), fields, len(chunks), log)
    distributed.barrier()  # every rank has looked at what was there before any rank writes
    mine = range(rank, len(chunks), world)
    todo = [k for k in mine if k not in done][:stop_after]
    from tqdm.auto import tqdm

    desc = "embedding" if world == 1 else f"embedding (rank 0 of {world})"
    with tqdm(total=sum(len(chunks[k]) for k in mine), initial=sum(len(chunks[k]) for k in mine if k in done),
              desc=desc, unit="clip", disable=not progress or rank != 0) as bar:
        _embed_parts(model, dataset, folder, fields["key"], {k: chunks[k] for k in todo},
                     {"batch_size": batch_size, "workers": workers, "amp": amp}, bar)
    distributed.barrier()  # every rank has written its parts
    run = EmbedRun(out, folder, len(chunks), reused=sum(k in done for k in mine), written=len(todo))
    if rank == 0 and all(_part_done(_part_path(folder, k), fields["key"]) for k in range(len(chunks))):
        name = model_name if model_name is not None else getattr(model, "name", None)
        _finish(run, fields["key"], dataset, name if isinstance(name, str) else None)
    return run


def _check_settings(batch_size: Any, batches_per_part: Any, stop_after: Any) -> None:
    check_batch_size(batch_size)
    if int(batches_per_part) != batches_per_part or batches_per_part < 1:
        raise ValueError(f"batches_per_part must be a positive integer, got {batches_per_part!r}")
    if stop_after is not None and (int(stop_after) != stop_after or stop_after < 0):
        raise ValueError(f"stop_after must be None or a non-negative integer, got {stop_after!r}")


def _finish(run: EmbedRun, key: str, dataset: Any, model_name: str | None) -> None:
    """Merge every part into ``run.out``, then remove the work folders (this run's and any other)."""
    emb, meta = _merge(run.work_dir, key, run.parts, dataset, model_name)
    save_embeddings(run.out, emb, meta)
    shutil.rmtree(parts_folder(run.out), ignore_errors=True)
    run.merged, run.clips, run.captions = True, len(meta.ids), len(meta.captions or [])
