"""Galleries the demo searches: a folder of clips with captions, or an embedding file.

A folder gallery (``captions.jsonl`` as `gramviz world` writes it, or any annotation file of
`gramviz.read_annotations`) is embedded once with `gramviz.evaluation.embed_dataset` and cached in
``<folder>/.gramviz-cache/embeddings-<key>.safetensors`` (the embedding file format of
docs/embeddings.md). The key hashes the model (config, tokenizer, weights) and the gallery (the
annotation file, and the size and modification time of every media file), so a retrained model
or a regenerated gallery never reads a stale cache. The 2-D map of the Explore tab is cached
beside it as Plotly JSON.

Example:
    >>> folder = ensure_world_gallery(tempfile.mkdtemp() + "/g", n=2, progress=False)  # doctest: +SKIP
    >>> gallery = open_gallery(folder, load_model("world-small"))  # doctest: +SKIP
    >>> gallery.n_clips, gallery.n_captions  # doctest: +SKIP
    (2, 6)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..datasets import CAPTIONS_FILE, annotations_path
from ..embeddings import EmbeddingFileError, EmbeddingMetadata, load_embeddings, save_embeddings
from ..modalities import MEDIA

__all__ = [
    "CACHE_FOLDER", "Gallery", "GalleryError", "ensure_world_gallery", "gallery_map", "model_fingerprint",
    "open_gallery",
]

CACHE_FOLDER = ".gramviz-cache"
_KEEP_CACHES = 4  # embedding caches kept per gallery (one per model recently used)


class GalleryError(ValueError):
    """A gallery that cannot be opened: no such folder, no captions, embeddings of another size."""


@dataclass
class Gallery:
    """Embeddings of a gallery and what each row is.

    Attributes:
        embeddings: ``{"text": (captions, D), "video": (clips, D), "audio": (clips, D)}`` (text
            may be absent for an embedding file without captions).
        meta: ids, captions, caption -> clip map, classes and paths of the rows.
        source: the folder, annotation file or embedding file it came from.
        key: identifies the content and the model (names the cache files).
        videos: the playable media file of each clip, None where there is none on disk.
        cache_dir: where the caches live, None when the folder cannot be written.
        notes: facts worth telling the user (cache rebuilt, embeddings from another model...).
    """

    embeddings: dict[str, Tensor]
    meta: EmbeddingMetadata
    source: Path
    key: str
    videos: list[Path | None]
    cache_dir: Path | None = None
    notes: list[str] = field(default_factory=list)
    _maps: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # row bookkeeping asked for on every search: computed once
        self._caption_clips = self.meta.text_clips() if "text" in self.embeddings else []
        self._first_rows: list[int | None] = [None] * len(self.meta.ids)
        for row, clip in enumerate(self._caption_clips):
            if self._first_rows[clip] is None:
                self._first_rows[clip] = row

    @property
    def n_clips(self) -> int:
        """Number of clips (rows of every media modality)."""
        return len(self.meta.ids)

    @property
    def n_captions(self) -> int:
        """Number of captions (text rows), 0 without text."""
        return int(self.embeddings["text"].shape[0]) if "text" in self.embeddings else 0

    def clip_embeddings(self) -> dict[str, Tensor]:
        """``{"video": (M, D), "audio": (M, D)}``: the media modalities the gallery has."""
        return {m: self.embeddings[m] for m in MEDIA if m in self.embeddings}

    def caption_clips(self) -> list[int]:
        """The clip row of each caption."""
        return self._caption_clips

    def first_caption_rows(self) -> list[int | None]:
        """The first caption (text row) of each clip, None for a clip without captions."""
        return self._first_rows

    def caption(self, row: int) -> str:
        """The text of caption ``row`` ("" when the gallery stores no caption texts)."""
        return self.meta.captions[row] if self.meta.captions is not None else ""

    def clip_caption(self, clip: int) -> str:
        """The first caption of clip ``clip``, or "" when it has none."""
        row = self.first_caption_rows()[clip]
        return "" if row is None else self.caption(row)

    def class_name(self, clip: int) -> str | None:
        """The class of clip ``clip``, or None."""
        ids, names = self.meta.class_ids, self.meta.classes
        if ids is None or ids[clip] is None:
            return None
        return names[ids[clip]] if names is not None else str(ids[clip])

    def media_folders(self) -> list[Path]:
        """The folders holding the gallery's media (what the app may serve), sorted."""
        paths = {p.parent.resolve() for p in self.videos if p is not None}
        for files in self.meta.paths.values():
            paths |= {Path(f).parent.resolve() for f in files if f and Path(f).is_file()}
        return sorted(paths)


def model_fingerprint(model: nn.Module) -> str:
    """16 hex digits identifying a model: its config, tokenizer and every weight, bit for bit.

    Example:
        >>> a, b = nn.Linear(2, 2), nn.Linear(2, 2)
        >>> model_fingerprint(a) == model_fingerprint(a), model_fingerprint(a) == model_fingerprint(b)
        (True, False)
    """
    h = hashlib.sha256()
    config = getattr(model, "config", None)
    if hasattr(config, "to_dict"):
        h.update(json.dumps(config.to_dict(), sort_keys=True).encode())
    tokenizer = getattr(model, "tokenizer", None)
    if hasattr(tokenizer, "to_dict"):
        h.update(json.dumps(tokenizer.to_dict(), sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def _content_key(annotations: Path, records: list[Any], fingerprint: str) -> str:
    """Hash of the model, the annotation file and the size + mtime of every media file."""
    h = hashlib.sha256(fingerprint.encode())
    h.update(annotations.read_bytes())
    for r in records:
        for p in (r.video, r.audio):
            if p is not None:
                st = p.stat() if p.exists() else None
                h.update(f"{p.name}:{st.st_size if st else -1}:{st.st_mtime_ns if st else -1};".encode())
    return h.hexdigest()[:16]


def _writable_cache(folder: Path) -> Path | None:
    cache = folder / CACHE_FOLDER
    try:
        cache.mkdir(parents=True, exist_ok=True)
        probe = cache / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        return cache
    except OSError:
        return None


def _prune(cache: Path, keep: Path) -> None:
    """Remove all but the `_KEEP_CACHES` most recently used embedding caches."""
    files = sorted(cache.glob("embeddings-*.safetensors"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in [f for f in files if f != keep][_KEEP_CACHES - 1 :]:
        old.unlink(missing_ok=True)


def open_gallery(source: str | Path, model: nn.Module, cache: bool = True, progress: bool = False) -> Gallery:
    """Open a gallery for ``model``: embed a folder of clips (cached) or read an embedding file.

    Args:
        source: a folder with ``captions.jsonl``, an annotation file (.jsonl, .csv, GRAM/VAST
            .json) or a ``.safetensors`` embedding file written by `gramviz.save_embeddings`.
        model: the model whose space the gallery must be in (queries are embedded by it).
        cache: read and write the embedding cache of a folder gallery.
        progress: show a progress bar while embedding.

    Raises:
        GalleryError: no such folder or file, no captions, nothing to search, another embedding size.
        gramviz.MediaError, AnnotationError: a clip or the annotation file cannot be read.
    """
    path = Path(source).expanduser()
    if not path.exists():
        raise GalleryError(f"{path}: no such gallery folder or file")
    if path.is_file() and path.suffix == ".safetensors":
        return _from_embedding_file(path.resolve(), model)
    annotations = annotations_path(path).resolve()
    if not annotations.is_file():
        raise GalleryError(
            f"{path}: no captions.jsonl (a gallery folder holds captions.jsonl and its clips, as "
            "`gramviz world` writes them; or give an annotation file or a .safetensors embedding file)"
        )
    from ..evaluation import embed_dataset, open_dataset

    dataset = open_dataset(annotations, model)
    if len(dataset) == 0:
        raise GalleryError(f"{annotations}: lists no clips")
    fingerprint = model_fingerprint(model)
    key = _content_key(annotations, dataset.records, fingerprint)
    cache_dir = _writable_cache(annotations.parent) if cache else None
    cached = cache_dir / f"embeddings-{key}.safetensors" if cache_dir else None
    notes: list[str] = [] if cache_dir or not cache else [f"{annotations.parent} is not writable: embeddings not cached"]
    emb = meta = None
    if cached is not None and cached.is_file():
        try:
            emb, meta = load_embeddings(cached)
            cached.touch()
        except EmbeddingFileError as e:
            notes.append(f"the cache was unreadable and was rebuilt ({e})")
    if emb is None:
        emb, meta = embed_dataset(model, dataset, progress=progress)
        meta.model = fingerprint
        if cached is not None:
            tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
            save_embeddings(tmp, emb, meta)
            os.replace(tmp, cached)
            _prune(cache_dir, cached)
    videos = [r.video if r.video is not None and r.video.is_file() else None for r in dataset.records]
    return Gallery(emb, meta, annotations.parent if path.is_dir() else annotations, key, videos, cache_dir, notes)


def _from_embedding_file(path: Path, model: nn.Module) -> Gallery:
    emb, meta = load_embeddings(path)
    dim = getattr(getattr(model, "config", None), "embed_dim", None)
    bad = {m: int(x.shape[1]) for m, x in emb.items() if dim is not None and x.shape[1] != dim}
    if bad:
        raise GalleryError(f"{path}: embeddings of dimension {bad}, but the loaded model embeds in {dim}: "
                           "the file was made by another model")
    if not any(m in emb for m in MEDIA):
        raise GalleryError(f"{path}: holds no video or audio embeddings, so there are no clips to search")
    emb = {m: x.float() for m, x in emb.items()}
    notes = []
    if "text" not in emb or meta.captions is None:
        notes.append("the file holds no caption texts: clip -> caption search is not available")
    if meta.model and meta.model != model_fingerprint(model):
        notes.append(f"made by {meta.model!r}: text queries are embedded by the loaded model, so the rankings "
                     "mean something only if both share one embedding space")
    videos = []
    for p in meta.paths.get("video", [""] * len(meta.ids)):
        f = Path(p) if p and Path(p).is_absolute() else path.parent / p
        videos.append(f.resolve() if p and f.is_file() else None)
    st = path.stat()
    key = hashlib.sha256(f"{path}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
    return Gallery(emb, meta, path, key, videos, _writable_cache(path.parent), notes)


def ensure_world_gallery(folder: str | Path, n: int = 150, seed: int = 0, workers: int = 2,
                         progress: bool = True) -> Path:
    """A gallery of the generated world's test split in ``folder``, generated if it is not there.

    A folder that already holds ``captions.jsonl`` is used as it is (delete it to regenerate);
    generation writes a sibling temporary folder and renames it into place, so an interrupted
    run never leaves a half-written gallery.

    Args:
        folder: where the gallery lives (e.g. ``data/gallery``).
        n: clips to generate (the first n of the 1,000-clip test split: the same clips).
        seed: the world seed.
        workers: processes rendering clips.
        progress: show a progress bar.

    Raises:
        GalleryError: the folder exists, is not empty and holds no captions.jsonl.
    """
    from ..world import generate

    folder = Path(folder)
    if (folder / CAPTIONS_FILE).is_file():
        return folder
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise GalleryError(f"{folder}: exists and holds no captions.jsonl; choose an empty or new folder")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the gallery is an ordinary folder
    try:
        generate(tmp, n=n, seed=seed, split="test", workers=workers, progress=progress)
        if folder.exists():
            folder.rmdir()  # empty, checked above
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def gallery_map(gallery: Gallery, method: str = "pca", connect: bool = False, seed: int = 0):
    """The Explore tab's figure: `gramviz.viz.embedding_map` of every clip's first caption, video
    and audio, coloured by class, captions on hover; cached in memory and in the cache folder.

    Clips lacking a modality are left out of the map (their zero rows would all sit at one point).
    """
    import plotly.io as pio

    from ..viz import embedding_map

    name = f"{method}-{int(bool(connect))}-{seed}"
    if name in gallery._maps:
        return gallery._maps[name]
    disk = gallery.cache_dir / f"map-{gallery.key}-{name}.json" if gallery.cache_dir else None
    if disk is not None and disk.is_file():
        try:
            fig = pio.from_json(disk.read_text(encoding="utf-8"))
            gallery._maps[name] = fig
            return fig
        except ValueError:
            pass  # unreadable: draw it again
    first = gallery.first_caption_rows()
    rows = [c for c in range(gallery.n_clips)
            if all(bool(x[c].norm() > 0) for x in gallery.clip_embeddings().values())]
    with_text = "text" in gallery.embeddings and all(first[c] is not None for c in rows)
    if len(rows) < 2:
        raise GalleryError(f"{gallery.source}: fewer than 2 clips with all their modalities: nothing to map")
    emb = {m: x[rows] for m, x in gallery.clip_embeddings().items()}
    if with_text:
        emb = {"text": gallery.embeddings["text"][[first[c] for c in rows]], **emb}
    classes = [gallery.class_name(c) for c in rows]
    fig = embedding_map(emb, method=method, color=classes if all(c is not None for c in classes) else None,
                        hover=[gallery.clip_caption(c) for c in rows], ids=[gallery.meta.ids[c] for c in rows],
                        connect=connect, seed=seed)
    fig.update_layout(height=640)
    if disk is not None:
        tmp = disk.with_name(f".{disk.name}.{os.getpid()}.tmp")
        tmp.write_text(fig.to_json(), encoding="utf-8")
        os.replace(tmp, disk)
    gallery._maps[name] = fig
    return fig
