"""What a gallery is: its embeddings and rows (`Gallery`), its exact search index, and whether the
loaded model's queries live in its embedding space (`space_mismatch`).

A gallery embedded by the loaded model (a folder of clips) always shares its space. A gallery read
from an embedding file may come from any model (the official GRAM checkpoints embed in 512-d): its
own captions and clips can always be searched with its own embeddings, but a caption typed by a user
or an uploaded clip can only be compared with it when the loaded model embeds in the same space.

* a different dimension is certain: ``Gallery.mismatch`` says why, and typed text and uploads are
  refused with that sentence;
* a different model name (``meta.model``) with the same dimension may be a copy of the same model
  under another name: a warning in ``Gallery.notes``, queries allowed.

Example:
    >>> print(space_mismatch(512, "gram-msrvtt", 256, "world-small").split(":")[0])
    this gallery's embeddings are 512-d from 'gram-msrvtt'; the loaded model (world-small) embeds in 256-d
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from ..embeddings import EmbeddingMetadata
from ..modalities import MEDIA
from ..models import model_fingerprint
from ..search import ClipIndex

__all__ = ["Gallery", "GalleryError", "is_file", "same_model", "shown_path", "space_mismatch"]


class GalleryError(ValueError):
    """A gallery that cannot be opened: no such folder, no captions, a bad or truncated file."""


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
        mismatch: why the loaded model cannot embed queries (typed text, uploads) into this
            gallery's space, None when it can (see `space_mismatch`).
    """

    embeddings: dict[str, Tensor]
    meta: EmbeddingMetadata
    source: Path
    key: str
    videos: list[Path | None]
    cache_dir: Path | None = None
    notes: list[str] = field(default_factory=list)
    mismatch: str | None = None
    _maps: dict[str, Any] = field(default_factory=dict, repr=False)
    _index: ClipIndex | None = field(default=None, repr=False)
    _lock: Any = field(default_factory=threading.Lock, repr=False)
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

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
    def shown_source(self) -> str:
        """Where the gallery comes from, as the page says it (`shown_path`)."""
        return shown_path(self.source)

    @property
    def n_captions(self) -> int:
        """Number of captions (text rows), 0 without text."""
        return int(self.embeddings["text"].shape[0]) if "text" in self.embeddings else 0

    @property
    def dim(self) -> int:
        """The embedding dimension D (every modality shares it)."""
        return int(next(iter(self.embeddings.values())).shape[1])

    @property
    def index(self) -> ClipIndex:
        """The exact `gramviz.search.ClipIndex` of the clips, built on first use and kept."""
        if self._index is None:
            with self._lock:
                if self._index is None:
                    self._index = ClipIndex(self.clip_embeddings())
        return self._index

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

    def clip_labels(self) -> list[str]:
        """``"<id>: <first caption>"`` of every clip (the id alone for a clip without captions), computed once."""
        return self.memo("clip_labels", lambda: [f"{i}: {self.clip_caption(j)}" if self.clip_caption(j) else i
                                                 for j, i in enumerate(self.meta.ids)])

    def clip_file(self, clip: int) -> str:
        """The file name of clip ``clip``'s media (its video, else its audio), "" when none is known."""
        for m in ("video", "audio"):
            files = self.meta.paths.get(m)
            if files and files[clip]:
                return Path(files[clip]).name
        return ""

    def memo(self, name: str, compute: Any) -> Any:
        """``compute()``, computed once per gallery and kept under ``name`` (lists, lookups...)."""
        if name not in self._memo:
            value = compute()
            self._memo.setdefault(name, value)
        return self._memo[name]

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
            paths |= {Path(f).parent.resolve() for f in files if is_file(f)}
        return sorted(paths)

    def describe_space(self) -> str:
        """``"512-d from 'gram-msrvtt'"``: the embedding dimension and the model that made them."""
        if self.source.suffix != ".safetensors":  # a folder gallery, embedded by the loaded model
            return f"{self.dim}-d, embedded by the loaded model"
        return f"{self.dim}-d" + (f" from {self.meta.model!r}" if self.meta.model else "")


def is_file(path: str | Path | None) -> bool:
    """Whether ``path`` names an existing file; False for "", None or a string no file can have.

    Example:
        >>> is_file(""), is_file("x" * 5000)
        (False, False)
    """
    try:
        return bool(path) and Path(path).expanduser().is_file()
    except (OSError, ValueError):
        return False


def model_dim(model: nn.Module | None) -> int | None:
    """The dimension a model embeds in (``config.embed_dim``), None when it does not say."""
    dim = getattr(getattr(model, "config", None), "embed_dim", None)
    return int(dim) if isinstance(dim, int) else None


def shown_path(path: str | Path, parts: int = 1) -> str:
    """A path as the page shows it: relative to the working directory when it lies inside it, else
    its last ``parts`` components (a visitor needs the folder's name, not where the server keeps it).

    Example:
        >>> shown_path("/srv/data/clips/val"), shown_path("/srv/data/clips/val/.cache", parts=2)
        ('val', 'val/.cache')
    """
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (OSError, ValueError):  # outside the working directory (or unresolvable)
        return str(Path(*path.parts[-parts:])) if path.parts else str(path)


def space_mismatch(gallery_dim: int, gallery_model: str | None, dim: int | None, model_name: str | None) -> str | None:
    """Why queries embedded by the loaded model cannot be compared with a gallery, or None.

    Only a dimension that differs is certain; a model named differently is a warning elsewhere.

    Args:
        gallery_dim: the gallery's embedding dimension.
        gallery_model: the model its file names (``meta.model``), or None.
        dim: the loaded model's embedding dimension (None: unknown, nothing refused).
        model_name: how the loaded model was named, for the sentence.

    Example:
        >>> space_mismatch(256, None, 256, "world-small") is None
        True
    """
    if dim is None or dim == gallery_dim:
        return None
    made_by = f" from {gallery_model!r}" if gallery_model else ""
    loaded = f"the loaded model ({model_name})" if model_name else "the loaded model"
    return (f"this gallery's embeddings are {gallery_dim}-d{made_by}; {loaded} embeds in {dim}-d: type a caption "
            "or upload a clip after loading a matching model (Model tab). Meanwhile pick one of the gallery's "
            "own captions or clips: they are searched with the gallery's own embeddings")


def same_model(named: str, model: nn.Module, model_name: str | None) -> bool:
    """Whether ``meta.model`` names the loaded model: its fingerprint, its name or its folder."""
    if named == model_name:
        return True
    try:
        if model_name and Path(model_name).expanduser().exists() and Path(named).expanduser().exists():
            if Path(named).expanduser().resolve() == Path(model_name).expanduser().resolve():
                return True
    except (OSError, ValueError):  # not a path (too long, a NUL byte...): compare as names only
        pass
    return named == model_fingerprint(model)
