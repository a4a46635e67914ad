"""What the app serves: one model and one gallery, replaced together.

Every request reads a consistent (model, name, gallery) triple with `DemoState.snapshot`; loading
another model or gallery (the Model tab) builds the new pair first (the gallery's embeddings, its
exact search index and its PCA map) and swaps it in one step, so requests running meanwhile finish
on the old one, and a gallery that cannot be opened leaves the current one in place. The state is
shared by every user of the app. A gallery from an embedding file of another model's space is
served too: ``Gallery.mismatch`` then says why typed captions and uploads are refused.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from torch import nn

from .explore_data import map_points
from .gallery import Gallery, GalleryError, ensure_world_gallery, open_gallery

__all__ = ["DemoState", "describe_match"]


class DemoState:
    """The loaded model and gallery.

    Args:
        model: the model (eval mode).
        model_name: how it was named (a bundled name or a folder).
        gallery: a gallery embedded by this model.
        allow_loading: whether the page may load other models and galleries (server paths).
        on_new_folders: called with the media folders of a newly loaded gallery, before it is
            served (the app adds them to the folders it may serve).
    """

    def __init__(self, model: nn.Module, model_name: str, gallery: Gallery, allow_loading: bool = True,
                 on_new_folders: Callable[[list[Path]], None] | None = None) -> None:
        self._current = (model, model_name, gallery)
        self.allow_loading = allow_loading
        self.on_new_folders = on_new_folders
        self._loading = threading.Lock()

    @classmethod
    def start(cls, model_name: str, gallery: str | Path, gallery_size: int = 150, progress: bool = True,
              allow_loading: bool = True) -> DemoState:
        """Load the model, generate the world gallery if ``gallery`` does not exist yet, embed it
        (cached) and draw its PCA map (cached), so the first page load is instant. An existing
        folder is opened as it is: with captions.jsonl, or its video and audio files without captions.

        Raises:
            gramviz.ModelLoadError, GalleryError, gramviz.MediaError: with the file and the problem.
        """
        from ..models import load_model

        model = load_model(model_name)
        source = Path(gallery).expanduser()
        if source.suffix != ".safetensors" and not source.exists():
            ensure_world_gallery(source, n=gallery_size, progress=progress)
        opened = _prepared(open_gallery(source, model, progress=progress, model_name=model_name))
        return cls(model, model_name, opened, allow_loading)

    def snapshot(self) -> tuple[nn.Module, str, Gallery]:
        """The current (model, model name, gallery), consistent with each other."""
        return self._current

    def _check_allowed(self) -> None:
        if not self.allow_loading:
            raise PermissionError("loading models and galleries from the page is switched off for this app "
                                  "(it is shared or bound beyond this machine); restart it with --allow-loading")

    def load_model(self, name_or_dir: str) -> str:
        """Load another model (a folder or a bundled name) and re-embed the gallery with it.

        Returns:
            A sentence saying what was loaded and how long it took.
        """
        from ..models import load_model

        self._check_allowed()
        if not name_or_dir or not str(name_or_dir).strip():
            raise ValueError("give a model folder (written by save_pretrained) or a bundled model name")
        with self._loading:
            start = time.perf_counter()
            _, _, gallery = self._current
            name = str(name_or_dir).strip()
            model = load_model(name)
            regallery = _prepared(open_gallery(gallery.source, model, model_name=name))
            self._current = (model, name, regallery)
        took = f"in {time.perf_counter() - start:.1f} s"
        if regallery.source.suffix == ".safetensors":
            return f"loaded model {name} {took}; the gallery keeps its own embeddings ({describe_match(regallery)})"
        return f"loaded model {name} and embedded the gallery with it ({regallery.n_clips:,} clips) {took}"

    def load_gallery(self, source: str) -> str:
        """Load another gallery (a folder of clips, with or without captions, an annotation file,
        or an embedding file) for the current model.

        Returns:
            A sentence saying what was loaded and how long it took.
        """
        self._check_allowed()
        if not source or not str(source).strip():
            raise GalleryError("give a gallery: a folder of clips (with or without captions.jsonl), an annotation file "
                               "or a .safetensors file")
        with self._loading:
            start = time.perf_counter()
            model, name, _ = self._current
            gallery = _prepared(open_gallery(Path(str(source).strip()), model, model_name=name))
            if self.on_new_folders is not None:
                self.on_new_folders(gallery.media_folders())
            self._current = (model, name, gallery)
        return (f"loaded gallery {gallery.shown_source} ({gallery.n_clips:,} clips, {gallery.n_captions:,} captions; "
                f"{describe_match(gallery)}) in {time.perf_counter() - start:.1f} s")


def _prepared(gallery: Gallery) -> Gallery:
    """The gallery with its search index built and its PCA map computed, so first requests are fast."""
    _ = gallery.index
    try:
        map_points(gallery, "pca")
    except GalleryError as e:  # too few clips to map: searching still works, the Explore tab says why
        gallery.notes.append(str(e))
    return gallery


def describe_match(gallery: Gallery) -> str:
    """Whether typed captions and uploads can be searched, in words.

    Example:
        >>> describe_match(gallery)  # doctest: +SKIP
        "embeddings 256-d: typed captions and uploads are searched too"
    """
    if gallery.mismatch:
        return (f"embeddings {gallery.describe_space()}, not the loaded model's space: its own captions and clips "
                "are searched; typed captions and uploads need a matching model")
    return f"embeddings {gallery.describe_space()}: typed captions and uploads are searched too"
