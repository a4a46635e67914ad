"""Galleries the demo searches: a folder of clips (with or without captions), or an embedding file.

A folder gallery (``captions.jsonl`` as `gramviz world` writes it, any annotation file of
`gramviz.read_annotations`, or a plain folder of video and audio files without captions:
`gramviz.app.gallery_folder`) is embedded once with `gramviz.evaluation.embed_dataset` and cached in
``<folder>/.gramviz-cache/embeddings-<key>.safetensors`` (the embedding file format of
docs/embeddings.md). The key hashes the model (config, tokenizer, weights) and the gallery (the
annotation file, and the path, size and modification time of every media file), so a retrained
model, a regenerated gallery or a folder whose files changed never reads a stale cache. An embedding file (any model, any dimension)
is read as it is (`gramviz.app.gallery_file`). The 2-D map of the Explore tab is cached beside
them as Plotly JSON.

Example:
    >>> folder = ensure_world_gallery(tempfile.mkdtemp() + "/g", n=2, progress=False)  # doctest: +SKIP
    >>> gallery = open_gallery(folder, load_model("world-small"))  # doctest: +SKIP
    >>> gallery.n_clips, gallery.n_captions  # doctest: +SKIP
    (2, 6)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..datasets import CAPTIONS_FILE, ClipDataset, annotations_path
from ..embeddings import EmbeddingFileError, load_embeddings, save_embeddings
from ..evaluation import dataset_fingerprint
from ..models import clip_settings, model_fingerprint
from .gallery_base import Gallery, GalleryError, is_file
from .gallery_file import open_embedding_file
from .gallery_folder import embed_media_folder, folder_records, skipped_notes

__all__ = [
    "CACHE_FOLDER", "MAP_CLIPS", "Gallery", "GalleryError", "ensure_world_gallery", "gallery_map", "map_is_cached",
    "model_fingerprint", "open_gallery",
]

CACHE_FOLDER = ".gramviz-cache"
_KEEP_CACHES = 4  # embedding caches kept per gallery (one per model recently used)
MAP_CLIPS = 2000  # clips drawn on the Explore map at most (a seeded sample above): the browser stays fluid
_MAX_COLOURS = 24  # classes that can be told apart by colour; more: coloured by modality


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


def open_gallery(source: str | Path, model: nn.Module, cache: bool = True, progress: bool = False,
                 model_name: str | None = None) -> Gallery:
    """Open a gallery for ``model``: embed a folder of clips (cached) or read an embedding file.

    Args:
        source: a folder of clips: with ``captions.jsonl`` (as `gramviz world` writes it) or
            without captions (every video and audio file in it, `gramviz.app.gallery_folder`);
            an annotation file (.jsonl, .csv, GRAM/VAST .json); or a ``.safetensors`` embedding
            file written by `gramviz.save_embeddings` (any model, any dimension:
            ``Gallery.mismatch`` says when ``model`` cannot embed queries into its space).
        model: the model that embeds the folder's clips, typed captions and uploads.
        cache: read and write the embedding cache of a folder gallery.
        progress: show a progress bar while embedding.
        model_name: how the model was named (a bundled name or a folder), to recognise the
            model an embedding file names.

    Raises:
        GalleryError: no such folder or file, nothing to search (no clips, no media file), an
            unreadable file.
        gramviz.MediaError, AnnotationError: a clip or the annotation file cannot be read.
    """
    path = Path(source).expanduser()
    if not path.exists():
        raise GalleryError(f"{path}: no such gallery folder or file")
    if path.is_file() and path.suffix == ".safetensors":
        return open_embedding_file(path.resolve(), model, model_name, _writable_cache(path.resolve().parent))
    if path.is_dir() and not (path / CAPTIONS_FILE).is_file():
        return _open_media_folder(path.resolve(), model, cache, progress)
    annotations = annotations_path(path).resolve()
    if not annotations.is_file():
        raise GalleryError(f"{path}: not a gallery (give a folder of clips, an annotation file or a .safetensors "
                           "embedding file)")
    from ..evaluation import embed_dataset, open_dataset

    dataset = open_dataset(annotations, model)
    if len(dataset) == 0:
        raise GalleryError(f"{annotations}: lists no clips")
    fingerprint = model_fingerprint(model)
    key = _key(fingerprint, dataset)
    emb, meta, cache_dir, notes = _embeddings(annotations.parent, key, cache, fingerprint,
                                              lambda: embed_dataset(model, dataset, progress=progress))
    videos = [r.video if r.video is not None and r.video.is_file() else None for r in dataset.records]
    return Gallery(emb, meta, annotations.parent if path.is_dir() else annotations, key, videos, cache_dir, notes)


def _open_media_folder(folder: Path, model: nn.Module, cache: bool, progress: bool) -> Gallery:
    """A gallery of every video and audio file of a folder without captions.jsonl (no captions);
    the files it could not read are skipped with a note each."""
    records = folder_records(folder)
    # the key hashes every media file found (its path, size and modification time), readable or not
    fingerprint = model_fingerprint(model)
    key = _key(fingerprint, ClipDataset(records, clip_settings(model), probe=False))
    emb, meta, cache_dir, notes = _embeddings(folder, key, cache, fingerprint,
                                              lambda: embed_media_folder(model, records, folder, progress))
    videos = [Path(p) if is_file(p) else None for p in meta.paths.get("video", [""] * len(meta.ids))]
    return Gallery(emb, meta, folder, key, videos, cache_dir, skipped_notes(meta) + notes)


def _key(fingerprint: str, dataset: Any) -> str:
    """The cache key of a dataset embedded by the model of ``fingerprint``: both fingerprints, hashed."""
    return hashlib.sha256(f"{fingerprint}:{dataset_fingerprint(dataset)}".encode()).hexdigest()[:16]


def _embeddings(folder: Path, key: str, cache: bool, fingerprint: str,
                embed: Callable[[], tuple[dict[str, Any], Any]]) -> tuple[dict[str, Any], Any, Path | None, list[str]]:
    """``(embeddings, meta, cache folder, notes)``: read from ``<folder>/.gramviz-cache`` when cached
    under ``key``, else ``embed()``-ed and cached there (when it can be written)."""
    cache_dir = _writable_cache(folder) if cache else None
    cached = cache_dir / f"embeddings-{key}.safetensors" if cache_dir else None
    notes: list[str] = [] if cache_dir or not cache else [f"{folder} is not writable: embeddings not cached"]
    if cached is not None and cached.is_file():
        try:
            emb, meta = load_embeddings(cached)
            cached.touch()
            return emb, meta, cache_dir, notes
        except EmbeddingFileError as e:
            notes.append(f"the cache was unreadable and was rebuilt ({e})")
    emb, meta = embed()
    meta.model = fingerprint
    if cached is not None:
        tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
        save_embeddings(tmp, emb, meta)
        os.replace(tmp, cached)
        _prune(cache_dir, cached)
    return emb, meta, cache_dir, notes


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


def _map_name(method: str, connect: bool, seed: int) -> str:
    return f"{method}-{int(bool(connect))}-{seed}"


def map_is_cached(gallery: Gallery, method: str = "pca", connect: bool = False, seed: int = 0) -> bool:
    """Whether `gallery_map` would answer from its cache (memory or disk) rather than compute."""
    name = _map_name(method, connect, seed)
    disk = gallery.cache_dir / f"map-{gallery.key}-{name}.json" if gallery.cache_dir else None
    return name in gallery._maps or (disk is not None and disk.is_file())


def gallery_map(gallery: Gallery, method: str = "pca", connect: bool = False, seed: int = 0):
    """The Explore tab's figure: `gramviz.viz.embedding_map` of every clip's first caption, video
    and audio, coloured by class (when there are at most 24), captions on hover (the file name for
    a clip without captions; no caption points when a clip has none); cached in memory and in the
    cache folder.

    Clips lacking a modality are left out of the map (their zero rows would all sit at one point).
    At most `MAP_CLIPS` clips are drawn (a seeded sample, said in the title; WebGL above a few
    thousand points), so the page stays responsive on a gallery of any size.
    """
    import plotly.io as pio

    name = _map_name(method, connect, seed)
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
    fig = _draw_map(gallery, method, connect, seed)
    if disk is not None:
        tmp = disk.with_name(f".{disk.name}.{os.getpid()}.tmp")
        tmp.write_text(fig.to_json(), encoding="utf-8")
        os.replace(tmp, disk)
    gallery._maps[name] = fig
    return fig


def _draw_map(gallery: Gallery, method: str, connect: bool, seed: int):
    from ..viz import embedding_map

    first = gallery.first_caption_rows()
    clips = gallery.clip_embeddings()
    complete = torch.stack([x.norm(dim=-1) > 0 for x in clips.values()]).all(0)
    rows = complete.nonzero().flatten().tolist()
    with_text = "text" in gallery.embeddings and all(first[c] is not None for c in rows)
    if len(rows) < 2:
        raise GalleryError(f"{gallery.source}: fewer than 2 clips with all their modalities: nothing to map")
    emb = {m: x[rows] for m, x in clips.items()}
    if with_text:
        emb = {"text": gallery.embeddings["text"][[first[c] for c in rows]], **emb}
    classes = [gallery.class_name(c) for c in rows]
    by_class = all(c is not None for c in classes) and len(set(classes)) <= _MAX_COLOURS
    fig = embedding_map(emb, method=method, color=classes if by_class else None,
                        hover=[gallery.clip_caption(c) or gallery.clip_file(c) for c in rows], ids=[gallery.meta.ids[c] for c in rows],
                        connect=connect, seed=seed, max_points=MAP_CLIPS * len(emb))
    fig.update_layout(height=max(640, fig.layout.height or 0))  # a long class legend needs more
    return fig
