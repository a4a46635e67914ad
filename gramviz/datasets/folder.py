"""A plain folder of clips, without captions: one `ClipRecord` per video or audio file.

Users bring their own clips as they are: videos with sound (``.mp4``, ``.webm``, ``.mkv``, ``.mov``,
``.avi``...) and sound files (``.wav``, ``.mp3``, ``.flac``, ``.ogg``, ``.m4a``...), in any
sub-folders. Media files are not opened here (a damaged one fails when it is decoded).

Example:
    >>> [r.id for r in read_media_folder("my-clips")]  # doctest: +SKIP
    ['beach/waves', 'dog', 'kitchen/kettle']
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from .annotations import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, ClipRecord

__all__ = ["MEDIA_EXTENSIONS", "media_files", "read_media_folder"]

MEDIA_EXTENSIONS = VIDEO_EXTENSIONS + AUDIO_EXTENSIONS


def media_files(folder: str | Path) -> list[Path]:
    """Every video or audio file under ``folder`` (recursive), sorted by relative path.

    Hidden files and folders (a name starting with ".", such as the ``.gramviz-cache`` beside a
    gallery or the ``._clip.mp4`` files macOS leaves on shared drives) are left out; the suffix is
    matched in any case.
    """
    folder = Path(folder)
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith(".") and name.rpartition(".")[2].lower() in MEDIA_EXTENSIONS:
                found.append(Path(root) / name)
    return sorted((p for p in found if p.is_file()), key=lambda p: p.relative_to(folder).as_posix())


def read_media_folder(folder: str | Path) -> list[ClipRecord]:
    """One caption-less record per media file under ``folder`` (see `media_files`).

    The id is the path relative to ``folder`` without its suffix (``"beach/waves"``); files that
    would share an id (``dog.mp4`` and ``dog.wav``) keep their suffix (``"dog.mp4"``). A video
    file is a clip with its own sound track; a sound file is an audio-only clip.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp()); _ = (d / "b.wav").write_bytes(b"x"); _ = (d / "a.MP4").write_bytes(b"x")
        >>> [(r.id, r.video is not None, r.captions) for r in read_media_folder(d)]
        [('a', True, ()), ('b', False, ())]
    """
    folder = Path(folder)
    files = media_files(folder)
    stems = [f.relative_to(folder).with_suffix("").as_posix() for f in files]
    shared = {s for s, n in Counter(stems).items() if n > 1}
    records = []
    for f, stem in zip(files, stems):
        ident = f.relative_to(folder).as_posix() if stem in shared else stem
        is_video = f.suffix[1:].lower() in VIDEO_EXTENSIONS
        records.append(ClipRecord(id=ident, video=f if is_video else None, audio=None if is_video else f, captions=()))
    return records
