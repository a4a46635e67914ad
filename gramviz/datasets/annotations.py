"""Annotation files that list clips and their captions: JSONL, CSV and GRAM/VAST-style JSON.

Each reader returns one `ClipRecord` per clip, with media paths resolved against the folder that
holds the annotation file. Malformed rows raise `AnnotationError` naming the file and line; media
files are not opened here.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "VIDEO_EXTENSIONS",
    "AUDIO_EXTENSIONS",
    "CAPTIONS_FILE",
    "AnnotationError",
    "ClipRecord",
    "annotations_path",
    "read_annotations",
    "read_csv",
    "read_gram_json",
    "read_jsonl",
]

CAPTIONS_FILE = "captions.jsonl"  # the annotation file of a clip folder (as `gramviz world` writes it)
# searched in this order when a file is named by id only (GRAM/VAST annotations)
VIDEO_EXTENSIONS = ("mp4", "webm", "mkv", "mov", "avi", "m4v", "mpg", "mpeg", "flv", "ogv")
AUDIO_EXTENSIONS = ("wav", "flac", "mp3", "ogg", "m4a", "aac", "opus")


class AnnotationError(ValueError):
    """An annotation file that cannot be used: unreadable, malformed or missing required fields."""


@dataclass(frozen=True)
class ClipRecord:
    """One clip as an annotation file describes it (nothing decoded yet).

    Attributes:
        id: unique clip id.
        video: the video file, or None for an audio-only clip.
        audio: a separate audio file, or None (the video's own track, if any, is used).
        captions: one or more captions.
        class_name: the class label, or None.
        class_id: the class index, or None (`ClipDataset` numbers named classes without one).
        extra: any other fields of the row (e.g. the generated world's ``factors``).
    """

    id: str
    video: Path | None
    audio: Path | None
    captions: tuple[str, ...]
    class_name: str | None = None
    class_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


def _resolve(base: Path, value: Any, where: str, key: str) -> Path | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise AnnotationError(f"{where}: '{key}' must be a path string, got {value!r}")
    return base / value  # an absolute value stays absolute


def _captions(value: Any, where: str, key: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(c, str) for c in items):
        raise AnnotationError(f"{where}: '{key}' must be a string or a list of strings, got {value!r}")
    captions = tuple(c.strip() for c in items if c.strip())
    if not captions:
        raise AnnotationError(f"{where}: '{key}' holds no non-empty caption")
    return captions


def _class_id(value: Any, where: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise AnnotationError(f"{where}: 'class_id' must be an integer, got {value!r}") from None
    if out < 0 or str(out) != str(value).strip():
        raise AnnotationError(f"{where}: 'class_id' must be a non-negative integer, got {value!r}")
    return out


def _record(row: dict[str, Any], base: Path, where: str, caption_keys: tuple[str, str]) -> ClipRecord:
    """A record from one JSON object or CSV row (CSV values are strings, empty = absent)."""
    video = _resolve(base, row.get("video"), where, "video")
    audio = _resolve(base, row.get("audio"), where, "audio")
    if video is None and audio is None:
        raise AnnotationError(f"{where}: needs a 'video' or an 'audio' path")
    many, one = caption_keys
    if row.get(many) not in (None, ""):
        captions = _captions(row[many], where, many)
    elif row.get(one) not in (None, ""):
        captions = _captions(row[one], where, one)
    else:
        raise AnnotationError(f"{where}: needs '{many}' or '{one}'")
    ident = row.get("id") or (video or audio).stem
    class_name = row.get("class")
    extra = {k: v for k, v in row.items() if k not in {"id", "video", "audio", many, one, "class", "class_id"}}
    return ClipRecord(
        id=str(ident),
        video=video,
        audio=audio,
        captions=captions,
        class_name=None if class_name in (None, "") else str(class_name),
        class_id=_class_id(row.get("class_id"), where),
        extra=extra,
    )


def _check_unique(records: list[ClipRecord], path: Path) -> list[ClipRecord]:
    seen: set[str] = set()
    for r in records:
        if r.id in seen:
            raise AnnotationError(f"{path}: clip id '{r.id}' appears more than once")
        seen.add(r.id)
    return records


def read_jsonl(path: str | Path) -> list[ClipRecord]:
    """Read a JSON-lines file, one clip per line.

    Each line looks like ``{"id": "test-000012", "video": "videos/test-000012.mp4",
    "audio": "audio/test-000012.wav", "captions": ["...", "..."], "class": "bouncing ball",
    "class_id": 3, "factors": {...}}``; only ``video`` or ``audio`` and ``captions`` or ``caption``
    are required, ``id`` defaults to the media file's stem, other keys go to `ClipRecord.extra`.
    Paths are relative to the folder holding the file.
    """
    path = Path(path)
    base, records = path.parent, []
    for n, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise AnnotationError(f"{where}: not valid JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise AnnotationError(f"{where}: expected a JSON object, got {type(row).__name__}")
        records.append(_record(row, base, where, ("captions", "caption")))
    return _check_unique(records, path)


def read_csv(path: str | Path) -> list[ClipRecord]:
    """Read a CSV file with a header row.

    Columns: ``video`` and/or ``audio`` (paths relative to the file's folder), ``caption`` (one per
    row; rows of the same clip are merged, in order) or ``captions`` (several separated by ``|``),
    and optionally ``id``, ``class``, ``class_id``.
    """
    path = Path(path)
    rows = list(csv.DictReader(_read_text(path).splitlines()))
    merged: dict[str, ClipRecord] = {}
    for n, row in enumerate(rows, start=2):  # line 1 is the header
        where = f"{path}:{n}"
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        if row.get("captions"):
            row["captions"] = row["captions"].split("|")
        rec = _record(row, path.parent, where, ("captions", "caption"))
        old = merged.get(rec.id)
        if old is None:
            merged[rec.id] = rec
            continue
        if (old.video, old.audio, old.class_name, old.class_id) != (rec.video, rec.audio, rec.class_name, rec.class_id):
            raise AnnotationError(f"{where}: clip '{rec.id}' has other media or class than on an earlier row")
        merged[rec.id] = ClipRecord(
            old.id, old.video, old.audio, old.captions + rec.captions, old.class_name, old.class_id, old.extra
        )
    return list(merged.values())


def _index_by_stem(folder: Path, extensions: tuple[str, ...]) -> dict[str, Path]:
    """Files of ``folder`` by stem, preferring extensions earlier in ``extensions``."""
    rank = {e: i for i, e in enumerate(extensions)}
    found: dict[str, Path] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            stem, _, ext = entry.name.rpartition(".")
            if stem and ext.lower() in rank and entry.is_file():
                old = found.get(stem)
                if old is None or rank[ext.lower()] < rank[old.suffix[1:].lower()]:
                    found[stem] = Path(entry.path)
    return found


def read_gram_json(
    path: str | Path, video_dir: str | Path | None = None, audio_dir: str | Path | None = None
) -> list[ClipRecord]:
    """Read GRAM/VAST-style annotations: a JSON list of ``{"video_id": ..., "desc": ...}``.

    ``desc`` is a caption or a list of captions; entries with the same ``video_id`` are merged.
    The video is the file in ``video_dir`` (default: the annotation's folder) whose stem is the
    id, with any common extension (`VIDEO_EXTENSIONS`); audio, when ``audio_dir`` is given, the
    file there with that stem (else the video's own track). A video that is not found keeps the
    path ``video_dir/<id>.mp4`` and fails with a `MediaError` when that clip is loaded.
    """
    path = Path(path)
    try:
        entries = json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        raise AnnotationError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    if not isinstance(entries, list):
        raise AnnotationError(f"{path}: expected a JSON list of {{'video_id', 'desc'}} objects")
    video_dir = Path(video_dir) if video_dir is not None else path.parent
    if not video_dir.is_dir():
        raise AnnotationError(f"{path}: video folder {video_dir} does not exist")
    videos = _index_by_stem(video_dir, VIDEO_EXTENSIONS)
    audios = _index_by_stem(Path(audio_dir), AUDIO_EXTENSIONS) if audio_dir is not None else {}
    captions: dict[str, list[str]] = {}
    for i, entry in enumerate(entries):
        where = f"{path}: entry {i}"
        if not isinstance(entry, dict) or "video_id" not in entry or "desc" not in entry:
            raise AnnotationError(f"{where}: needs 'video_id' and 'desc'")
        captions.setdefault(str(entry["video_id"]), []).extend(_captions(entry["desc"], where, "desc"))
    return [
        ClipRecord(id=vid, video=videos.get(vid, video_dir / f"{vid}.mp4"), audio=audios.get(vid), captions=tuple(caps))
        for vid, caps in captions.items()
    ]


def annotations_path(path: str | Path) -> Path:
    """The annotation file a path names: ``<folder>/captions.jsonl`` for a clip folder, else the
    path itself (an annotation file, or a path that does not exist yet).

    Example:
        >>> annotations_path("clips.csv").name
        'clips.csv'
    """
    path = Path(path)
    return path / CAPTIONS_FILE if path.is_dir() else path


def read_annotations(
    path: str | Path, video_dir: str | Path | None = None, audio_dir: str | Path | None = None
) -> list[ClipRecord]:
    """Read clips from ``.jsonl``, ``.csv`` or GRAM/VAST ``.json`` annotations, by file suffix.

    Example:
        >>> read_annotations("clips.yaml")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        AnnotationError: clips.yaml: unknown annotation format '.yaml' (use .jsonl, .csv or .json)
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return read_jsonl(path)
    if suffix == ".csv":
        return read_csv(path)
    if suffix == ".json":
        return read_gram_json(path, video_dir, audio_dir)
    raise AnnotationError(f"{path}: unknown annotation format '{path.suffix}' (use .jsonl, .csv or .json)")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")  # tolerate a BOM from spreadsheet exports
    except FileNotFoundError:
        raise AnnotationError(f"{path}: no such annotation file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise AnnotationError(f"{path}: cannot read the annotation file ({e})") from None
