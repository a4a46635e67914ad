"""A decoded-tensor cache: decode every clip once, then train for many epochs without FFmpeg.

Layout of a cache folder::

    index.json               settings, classes, per-clip id/captions/class/missing modalities and
                             the (path, size, mtime) of every source file, and their fingerprint
    shard-00000.safetensors  clips 0..255: "<i>/video" (T, 3, H, W) uint8 (exactly the decoded
    shard-00001.safetensors  frames times 255) and "<i>/audio" (S,) float32, absent when missing

Safetensors and JSON only. `open_cache` builds the cache when absent and checks it against the
dataset otherwise: changed settings, annotations or media files make it stale, and it is rebuilt
or refused with a `StaleCacheError` that says what changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from .datasets.clips import ClipDataset, ClipSettings, _summary_text, collate_clips
from .media import MediaError
from .modalities import MEDIA

__all__ = ["CacheError", "CachedClipDataset", "StaleCacheError", "build_cache", "open_cache"]

FORMAT, VERSION, INDEX = "gramviz.clip-cache", 1, "index.json"
_log = logging.getLogger(__name__)


class CacheError(ValueError):
    """A cache folder that cannot be used: no index, a damaged index or a missing shard."""


class StaleCacheError(CacheError):
    """A cache built from other settings, annotations or media files than the dataset's."""


def _stat(path: Path | None) -> list[Any] | None:
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return [str(path), None, None]
    return [str(path), st.st_size, st.st_mtime_ns]


def _describe(dataset: ClipDataset) -> dict[str, Any]:
    """What a cache depends on: settings, every clip's annotation and its source files."""
    clips = [
        {
            "id": r.id,
            "captions": list(r.captions),
            "class_id": cid,
            "sources": [_stat(r.video), _stat(r.audio)],
        }
        for r, cid in zip(dataset.records, dataset.class_ids)
    ]
    desc = {"settings": dataset.settings.to_dict(), "classes": dataset.classes, "clips": clips}
    desc["fingerprint"] = hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()
    return desc


def _staleness(index: dict[str, Any], now: dict[str, Any]) -> str | None:
    """None when the cache matches; else the first difference, in words."""
    if index["fingerprint"] == now["fingerprint"]:
        return None
    for key, value in now["settings"].items():
        if index["settings"].get(key) != value:
            return f"settings differ: {key} is {index['settings'].get(key)} in the cache, {value} now"
    old, new = index["clips"], now["clips"]
    if [c["id"] for c in old] != [c["id"] for c in new]:
        return f"the clips differ ({len(old)} cached, {len(new)} now, or in another order)"
    for o, n in zip(old, new):
        for so, sn in zip(o["sources"], n["sources"]):
            if so != sn:
                path, then, now = (sn or so)[0], so and so[1:], sn and sn[1:]
                return f"{path} changed since the cache was built (size, mtime_ns: {then} then, {now} now)"
        if (o["captions"], o["class_id"]) != (n["captions"], n["class_id"]):
            return f"the captions or class of clip '{n['id']}' changed"
    return "the classes changed"


_WORKER: ClipDataset | None = None


def _init_worker(records, settings) -> None:
    global _WORKER
    torch.set_num_threads(1)  # one decoding process per core
    _WORKER = ClipDataset(records, settings, probe=False)


def _decode(index: int, dataset: ClipDataset | None = None) -> tuple[Tensor | None, Tensor | None, str | None]:
    """(video, audio, error) of one clip; errors are returned so that all of them get reported."""
    try:
        item = (dataset if dataset is not None else _WORKER)[index]
    except MediaError as e:
        return None, None, str(e)
    return item["video"], item["audio"], None


def _video_to_store(video: Tensor) -> Tensor:
    """uint8 when that is lossless (frames from `read_clip` are k / 255), else float32."""
    q = video.mul(255).round_().clamp_(0, 255).to(torch.uint8)
    return q if torch.equal(q.float().div_(255), video) else video.float().contiguous()


def _decoded(dataset: ClipDataset, workers: int, progress: bool):
    """Yields (index, video, audio, error) in order, decoding in ``workers`` processes if > 1."""
    from tqdm.auto import tqdm

    bar = tqdm(total=len(dataset), desc="caching clips", unit="clip", disable=not progress)
    if workers <= 1:
        results = (_decode(i, dataset) for i in range(len(dataset)))
        pool = None
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker, initargs=(dataset.records, dataset.settings),
        )
        results = pool.map(_decode, range(len(dataset)), chunksize=4)
    try:
        for i, result in enumerate(results):
            bar.update()
            yield (i, *result)
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def build_cache(
    dataset: ClipDataset, cache_dir: str | Path, *, shard_size: int = 256, workers: int = 0, progress: bool = True
) -> CachedClipDataset:
    """Decode every clip of ``dataset`` once into ``cache_dir`` (replacing an older cache there).

    Args:
        dataset: the clips and how to decode them.
        cache_dir: the cache folder; created if needed. Only ``index.json`` and ``shard-*``
            files in it are written or removed.
        shard_size: clips per safetensors shard.
        workers: decoding processes (0 or 1: this process).
        progress: show a tqdm progress bar.

    Raises:
        MediaError: listing every clip that could not be decoded (no index is written then).
    """
    from safetensors.torch import save_file

    if shard_size < 1:
        raise ValueError(f"build_cache: shard_size must be positive, got {shard_size}")
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    (cache_dir / INDEX).unlink(missing_ok=True)  # a half-built cache must never look valid
    for old in cache_dir.glob("shard-*.safetensors"):
        old.unlink()
    desc = _describe(dataset)
    shard: dict[str, Tensor] = {}
    shards, errors = [], []
    for i, video, audio, error in _decoded(dataset, workers, progress):
        if error is not None:
            errors.append(error)
        clip = desc["clips"][i]
        clip["missing"] = dict(dataset.missing(i) or {})
        if video is not None:
            shard[f"{i}/video"] = _video_to_store(video)
        else:
            clip["missing"].setdefault("video", "audio-only clip")
        if audio is not None:
            shard[f"{i}/audio"] = audio.float().contiguous()
        elif error is None:
            clip["missing"].setdefault("audio", "no audio track")
        if (i + 1) % shard_size == 0 or i + 1 == len(dataset):
            shards.append(f"shard-{len(shards):05d}.safetensors")
            if not errors:
                save_file(shard, str(cache_dir / shards[-1]))
            shard = {}
    if errors:
        raise MediaError(f"{len(errors)} of {len(dataset)} clips could not be decoded:\n" + "\n".join(errors))
    index = {"format": FORMAT, "version": VERSION, "shard_size": shard_size, "shards": shards, **desc}
    tmp = cache_dir / (INDEX + ".tmp")
    tmp.write_text(json.dumps(index, indent=1))
    os.replace(tmp, cache_dir / INDEX)
    return CachedClipDataset(cache_dir)


def open_cache(
    dataset: ClipDataset,
    cache_dir: str | Path,
    *,
    on_stale: str = "rebuild",
    shard_size: int = 256,
    workers: int = 0,
    progress: bool = True,
) -> CachedClipDataset:
    """The cache of ``dataset`` in ``cache_dir``: built if absent, checked against the dataset if not.

    Args:
        on_stale: ``"rebuild"`` or ``"error"`` (raise `StaleCacheError`) when the settings, the
            annotations or any media file (size or modification time) changed; a damaged cache
            (missing shard, broken index) is rebuilt or raises `CacheError` alike.
        shard_size, workers, progress: as in `build_cache`.
    """
    if on_stale not in ("rebuild", "error"):
        raise ValueError(f"open_cache: on_stale must be 'rebuild' or 'error', got {on_stale!r}")
    if not (Path(cache_dir) / INDEX).exists():
        return build_cache(dataset, cache_dir, shard_size=shard_size, workers=workers, progress=progress)
    try:
        return CachedClipDataset(cache_dir, expect=dataset)
    except CacheError as e:  # stale or damaged (a missing shard, a broken index)
        if on_stale == "error" or _foreign_index(Path(cache_dir)):
            raise
        why = e
    _log.info("rebuilding the clip cache: %s", why)
    return build_cache(dataset, cache_dir, shard_size=shard_size, workers=workers, progress=progress)


def _foreign_index(cache_dir: Path) -> bool:
    """Whether ``index.json`` is some other program's JSON, which a rebuild must not overwrite."""
    try:
        index = json.loads((cache_dir / INDEX).read_text())
    except (OSError, ValueError):
        return False
    return not isinstance(index, dict) or index.get("format") != FORMAT


class CachedClipDataset(Dataset):
    """Clips read from a cache folder, as `ClipDataset` items (same keys, same tensors).

    Args:
        cache_dir: a folder written by `build_cache`.
        expect: a dataset the cache must match (else `StaleCacheError`); None trusts the cache.
    """

    def __init__(self, cache_dir: str | Path, expect: ClipDataset | None = None) -> None:
        self.cache_dir = Path(cache_dir)
        self.index = _read_index(self.cache_dir)
        if expect is not None:
            why = _staleness(self.index, _describe(expect))
            if why is not None:
                raise StaleCacheError(f"{self.cache_dir}: the cache is stale: {why}")
        s = self.index["settings"]
        self.settings = ClipSettings(**{**s, "frame_size": tuple(s["frame_size"])})
        self.classes: list[str | None] = self.index["classes"]
        self.clips: list[dict[str, Any]] = self.index["clips"]
        self.class_ids = [c["class_id"] for c in self.clips]

    def __len__(self) -> int:
        return len(self.clips)

    def _shard(self, path: Path) -> tuple[Any, set[str]]:
        """The open shard and its keys, opened once per process (DataLoader workers open their own)."""
        from safetensors import safe_open

        pid = os.getpid()
        if getattr(self, "_open_pid", None) != pid:
            self._open_pid, self._open = pid, {}
        if path not in self._open:
            f = safe_open(str(path), framework="pt")
            self._open[path] = (f, set(f.keys()))
        return self._open[path]

    def _tensors(self, index: int) -> dict[str, Tensor]:
        from safetensors import SafetensorError

        path = self.cache_dir / self.index["shards"][index // self.index["shard_size"]]
        out = {}
        try:
            f, keys = self._shard(path)
            for m in MEDIA:
                if f"{index}/{m}" in keys:
                    out[m] = f.get_tensor(f"{index}/{m}")
        except (OSError, SafetensorError) as e:
            raise CacheError(f"{path}: cannot read this cache shard ({e}); rebuild the cache") from e
        return out

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for DataLoader workers without the open shards (each worker opens its own)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_open", "_open_pid")}

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} cached clips")
        index %= len(self)
        clip, tensors = self.clips[index], self._tensors(index)
        video = tensors.get("video")
        if video is not None and video.dtype == torch.uint8:
            video = video.float().div_(255)  # the same operation as read_clip: bit-identical frames
        return {
            "id": clip["id"],
            "captions": list(clip["captions"]),
            "video": video,
            "audio": tensors.get("audio"),
            "class_id": clip["class_id"],
            "missing": sorted(clip["missing"]),
        }

    def collate(self, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """`collate_clips` with the cache's settings."""
        return collate_clips(items, self.settings)

    def summary(self) -> str:
        """Clips, captions and missing modalities (all known: every clip was decoded)."""
        captions = sum(len(c["captions"]) for c in self.clips)
        return _summary_text(type(self).__name__, len(self), captions, [c["missing"] for c in self.clips], 0)

    def __repr__(self) -> str:
        return f"{type(self).__name__}('{self.cache_dir}', {self.settings})\n{self.summary()}"


def _read_index(cache_dir: Path) -> dict[str, Any]:
    path = cache_dir / INDEX
    try:
        index = json.loads(path.read_text())
    except FileNotFoundError:
        raise CacheError(f"{cache_dir}: not a clip cache (no {INDEX}); build it with build_cache") from None
    except (OSError, json.JSONDecodeError) as e:
        raise CacheError(f"{path}: damaged cache index ({e}); rebuild the cache") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT or index.get("version") != VERSION:
        raise CacheError(f"{path}: not a {FORMAT} index of version {VERSION}; rebuild the cache")
    missing = [s for s in index["shards"] if not (cache_dir / s).is_file()]
    if missing:
        raise CacheError(f"{cache_dir}: shard {missing[0]} is missing; rebuild the cache")
    return index
