"""A folder of the user's own clips, without captions, as a gallery: its media files embedded as they are.

Every video or audio file under the folder is a clip (`gramviz.datasets.read_media_folder`: sorted
by relative path, id = that path without its suffix), with no caption. Such clips are searched by
typed text (ranked by the volume of the caption with their video and audio) and by an uploaded
clip; the Explore map shows their video and audio points, named by file.

Files that cannot be used are skipped, each with a note naming it and why (`probe_media`: empty,
not media, truncated, frames too large, no stream to read; or a decoding error while embedding),
and the skipped files are kept in the embedding cache's ``meta.extra["skipped"]``, so a cached
gallery tells the same notes without opening any file again.

Example:
    >>> records = folder_records("my-clips")  # doctest: +SKIP
    >>> emb, meta = embed_media_folder(load_model("world-small"), records, Path("my-clips"))  # doctest: +SKIP
    >>> skipped_notes(meta)  # doctest: +SKIP
    ['skipped broken.mp4: the file is truncated: its header declares 4.00 s but the data ends at 1.02 s']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from torch import Tensor, nn

from ..datasets import CAPTIONS_FILE, MEDIA_EXTENSIONS, ClipDataset, ClipRecord, read_media_folder
from ..embeddings import EmbeddingMetadata
from ..media import MediaError
from ..models import clip_settings
from .gallery_base import GalleryError
from .uploads import probe_media

__all__ = ["embed_media_folder", "folder_records", "skipped_notes"]


def folder_records(folder: Path) -> list[ClipRecord]:
    """The caption-less clips of a folder, or a GalleryError naming it when it holds no media file."""
    records = read_media_folder(folder)
    if not records:
        kinds = ", ".join(f".{e}" for e in MEDIA_EXTENSIONS[:10]) + ", ..."
        raise GalleryError(f"{folder}: holds no {CAPTIONS_FILE} and no video or audio files ({kinds}); a gallery "
                           "folder holds clips, with or without captions.jsonl (or give an annotation file or a "
                           ".safetensors embedding file)")
    return records


def _relative(path: Path, folder: Path) -> str:
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return str(path)


def _problem(error: Exception, path: Path) -> str:
    """The reason of a MediaError without the file's name or path it starts with."""
    text = str(error)
    for prefix in (f"{path}: ", f"{path.name}: "):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def usable_records(records: Sequence[ClipRecord], folder: Path) -> tuple[list[ClipRecord], dict[str, str]]:
    """The records whose file opens as media (read without decoding: `probe_media`), and ``{relative
    path: why}`` of the others. A video file that holds only sound becomes an audio-only clip."""
    usable, skipped = [], {}
    for r in records:
        path = r.video if r.video is not None else r.audio
        try:
            info = probe_media(path)
        except MediaError as e:
            skipped[_relative(path, folder)] = _problem(e, path)
            continue
        if not info.has_video and not info.has_audio:
            skipped[_relative(path, folder)] = "holds neither a video nor an audio stream"
        elif r.video is not None and not info.has_video:
            usable.append(replace(r, video=None, audio=path))
        else:
            usable.append(r)
    return usable, skipped


def embed_media_folder(model: nn.Module, records: Sequence[ClipRecord], folder: Path,
                       progress: bool = False) -> tuple[dict[str, Tensor], EmbeddingMetadata]:
    """Embed the usable clips of a folder (video and audio; they have no captions).

    Files `probe_media` refuses are skipped; a file that fails while it is decoded makes every
    clip be decoded once (`ClipDataset.check`) and the failing ones skipped too. The skipped files
    and why are in ``meta.extra["skipped"]`` (paths relative to ``folder``).

    Raises:
        GalleryError: no file of the folder can be used (the message lists the first few and why).
    """
    from ..evaluation import embed_dataset

    usable, skipped = usable_records(records, folder)
    settings = clip_settings(model)
    for attempt in range(2):
        _require_some(usable, skipped, folder)
        dataset = ClipDataset(usable, settings)
        try:
            emb, meta = embed_dataset(model, dataset, progress=progress)
            break
        except MediaError:
            if attempt:
                raise
            failed = dataset.check(progress=progress)
            skipped.update({_relative(Path(f), folder): _problem(e, Path(f)) for f, e in failed.items()})
            usable = [r for r in usable if str(r.video if r.video is not None else r.audio) not in failed]
    meta.extra["skipped"] = skipped
    return emb, meta


def _require_some(usable: list[ClipRecord], skipped: dict[str, str], folder: Path) -> None:
    if usable:
        return
    why = "; ".join(f"{f}: {reason}" for f, reason in list(skipped.items())[:3])
    raise GalleryError(f"{folder}: none of its {len(skipped)} media files can be read ({why}"
                       f"{'; ...' if len(skipped) > 3 else ''})")


def skipped_notes(meta: EmbeddingMetadata) -> list[str]:
    """One note per file left out of the gallery: ``"skipped <file>: <why>"``."""
    skipped = meta.extra.get("skipped") or {}
    return [f"skipped {f}: {reason}" for f, reason in skipped.items()]
