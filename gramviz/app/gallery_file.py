"""An embedding file (`gramviz.save_embeddings`, docs/embeddings.md) as a gallery, from any model.

The file's own rows are the gallery: its captions, ids, classes and media paths come from its
metadata (paths relative to the file's folder are read from there; media that exist are playable).
Embeddings of any dimension open; whether the loaded model can add typed captions and uploads is
`gramviz.app.gallery_base.space_mismatch`'s answer, kept in ``Gallery.mismatch``.

A file that cannot be read gets a `GalleryError` naming it and the problem in plain words: empty,
truncated (the header promises more bytes than follow), not a safetensors file, no gramviz
metadata, or rows that do not add up (`gramviz.embeddings.load_embeddings`'s checks).

Example:
    >>> gallery = open_embedding_file("gram_msrvtt_test.safetensors", load_model("world-small"))  # doctest: +SKIP
    >>> gallery.dim, gallery.mismatch is not None  # doctest: +SKIP
    (512, True)
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from torch import nn

from ..embeddings import EmbeddingFileError, load_embeddings
from ..modalities import MEDIA
from .gallery_base import Gallery, GalleryError, is_file, model_dim, same_model, space_mismatch

__all__ = ["open_embedding_file"]

def _load(path: Path):
    try:
        return load_embeddings(path)
    except EmbeddingFileError as e:
        raise GalleryError(f"cannot open the gallery: {e}") from None


def _check_shapes(path: Path, emb: dict) -> None:
    dims = {m: int(x.shape[1]) for m, x in emb.items()}
    if len(set(dims.values())) > 1:
        raise GalleryError(f"{path}: the modalities have different dimensions {dims}; GRAM compares them in one "
                           "space, so every modality needs the same D")
    if not any(m in emb for m in MEDIA):
        raise GalleryError(f"{path}: holds no video or audio embeddings, so there are no clips to search")
    if min(int(x.shape[0]) for x in emb.values()) == 0:
        raise GalleryError(f"{path}: holds no rows: an empty gallery")


def _media(path: Path, files: list[str] | None, n: int) -> list[Path | None]:
    """Each clip's media file when it exists (paths relative to the file's folder allowed)."""
    out: list[Path | None] = []
    for p in files or [""] * n:
        f = Path(p).expanduser() if p else None
        if f is not None and not f.is_absolute():
            f = path.parent / f
        out.append(f.resolve() if f is not None and is_file(f) else None)
    return out


def open_embedding_file(path: str | Path, model: nn.Module | None, model_name: str | None = None,
                        cache_dir: Path | None = None) -> Gallery:
    """A gallery of an embedding file's rows, of any embedding dimension.

    Args:
        path: the ``.safetensors`` file.
        model: the loaded model (decides ``Gallery.mismatch``); None: no model, queries refused.
        model_name: how it was named (a bundled name or a folder), to recognise ``meta.model``.
        cache_dir: where the map is cached (None: not cached).

    Raises:
        GalleryError: the file is missing, unreadable, truncated, or its rows do not make a gallery.
    """
    path = Path(path)
    emb, meta = _load(path)
    _check_shapes(path, emb)
    emb = {m: x.float() for m, x in emb.items()}
    dim = int(next(iter(emb.values())).shape[1])
    notes = []
    if "text" not in emb:
        notes.append("the file holds no text embeddings: there are no gallery captions to pick or rank")
    elif meta.captions is None:
        notes.append("the file holds no caption texts: its captions are listed by row number")
    if model is None:
        mismatch = f"this gallery's embeddings are {dim}-d; no model is loaded to embed typed captions or uploads"
    else:
        mismatch = space_mismatch(dim, meta.model, model_dim(model), model_name)
    if mismatch is None and meta.model and model is not None and not same_model(meta.model, model, model_name):
        notes.append(f"made by {meta.model!r}: typed captions and uploads are embedded by the loaded model "
                     f"({model_name or 'unnamed'}), so their rankings mean something only if both share one "
                     "embedding space")
    videos = _media(path, meta.paths.get("video"), len(meta.ids))
    st = path.stat()
    key = hashlib.sha256(f"{path}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
    return Gallery(emb, meta, path, key, videos, cache_dir, notes, mismatch)
