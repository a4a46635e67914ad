"""A torch Dataset of clips listed in an annotation file, and the collate function for batches.

Items are modality-keyed dicts. Clips that lack a modality (an audio-only clip, a video without an
audio track, a separate audio file that does not exist) are kept and flagged in ``missing``; a
missing or corrupt primary media file raises `MediaError` when that clip is loaded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..media import MediaError, read_clip
from ..modalities import MEDIA
from .annotations import AnnotationError, ClipRecord, read_annotations

__all__ = ["MEDIA_MODALITIES", "ClipDataset", "ClipSettings", "collate_clips", "number_classes"]

MEDIA_MODALITIES = MEDIA  # the name this package has always exported


@dataclass(frozen=True)
class ClipSettings:
    """How clips are decoded.

    Attributes:
        num_frames: frames sampled at evenly spaced times.
        frame_size: (H, W) of each frame.
        sample_rate: audio rate in Hz (mono).
        audio_seconds: audio is cut to this length when decoded and zero-padded to it by
            `collate_clips`; None keeps whole tracks and pads each batch to its longest.
    """

    num_frames: int = 8
    frame_size: tuple[int, int] = (112, 112)
    sample_rate: int = 16000
    audio_seconds: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "frame_size", tuple(int(s) for s in self.frame_size))
        if self.num_frames < 1 or min(self.frame_size) < 1 or self.sample_rate < 1:
            raise ValueError(f"ClipSettings: sizes and rates must be positive, got {self}")
        if self.audio_seconds is not None and self.audio_seconds <= 0:
            raise ValueError(f"ClipSettings: audio_seconds must be positive or None, got {self.audio_seconds}")

    @property
    def audio_samples(self) -> int | None:
        """Fixed audio length in samples, or None."""
        return None if self.audio_seconds is None else round(self.audio_seconds * self.sample_rate)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly fields (for cache indexes)."""
        d = asdict(self)
        d["frame_size"] = list(self.frame_size)
        return d


def number_classes(records: Sequence[ClipRecord]) -> tuple[list[int | None], list[str | None]]:
    """Class index of each record and the class names by index.

    Explicit ``class_id``s are kept (one name per id, else `AnnotationError`); named classes without
    an id reuse the id of that name or get new ids after the largest, in sorted name order.
    """
    names: dict[int, str | None] = {}
    for r in records:
        if r.class_id is None:
            continue
        old = names.setdefault(r.class_id, r.class_name)
        if r.class_name is not None and old not in (None, r.class_name):
            raise AnnotationError(
                f"class_id {r.class_id} names two classes: '{old}' and '{r.class_name}' (clip '{r.id}')"
            )
        names[r.class_id] = old or r.class_name
    by_name = {n: i for i, n in names.items() if n is not None}
    new = sorted({r.class_name for r in records if r.class_id is None and r.class_name not in (None, *by_name)})
    start = max(names, default=-1) + 1
    by_name.update({n: start + k for k, n in enumerate(new)})
    names.update({start + k: n for k, n in enumerate(new)})
    ids = [r.class_id if r.class_id is not None else by_name.get(r.class_name) for r in records]
    return ids, [names.get(i) for i in range(max(names, default=-1) + 1)]


def _summary_text(kind: str, n: int, captions: int, missing: list[dict[str, str]], unknown: int) -> str:
    lines = [f"{kind}: {n} clips, {captions} captions"]
    for m in MEDIA_MODALITIES:
        reasons = Counter(r[m] for r in missing if m in r)
        detail = ", ".join(f"{c} {why}" for why, c in sorted(reasons.items()))
        missing_count = sum(reasons.values())
        line = f"  {m}: {n - missing_count} present, {missing_count} missing"
        lines.append(line + (f" ({detail})" if detail else ""))
    if unknown:
        lines.append(f"  audio track not yet probed for {unknown} clips (see ClipDataset(probe=True) or check())")
    return "\n".join(lines)


class ClipDataset(Dataset):
    """Clips of an annotation file (JSONL, CSV or GRAM/VAST JSON), decoded on access.

    Each item is ``{"id": str, "captions": list[str], "video": (T, 3, H, W) float in [0, 1] or
    None, "audio": (S,) float or None, "class_id": int or None, "missing": sorted list of absent
    modalities}``. Batch with ``DataLoader(ds, collate_fn=ds.collate)``.

    Args:
        annotations: an annotation file, or `ClipRecord`s.
        settings: how clips are decoded.
        video_dir: for GRAM/VAST JSON, the folder of videos (default: the file's folder).
        audio_dir: for GRAM/VAST JSON, an optional folder of separate audio files.
        probe: open each video's header (about a millisecond) to learn whether it has an audio
            track, so that `summary` is exact before anything is decoded.
    """

    def __init__(
        self,
        annotations: str | Path | Sequence[ClipRecord],
        settings: ClipSettings = ClipSettings(),
        *,
        video_dir: str | Path | None = None,
        audio_dir: str | Path | None = None,
        probe: bool = True,
    ) -> None:
        self.source = None if not isinstance(annotations, (str, Path)) else Path(annotations)
        records = read_annotations(annotations, video_dir, audio_dir) if self.source else list(annotations)
        self.records: list[ClipRecord] = records
        self.settings = settings
        self.class_ids, self.classes = number_classes(records)
        # per clip: absent modality -> why; None where the audio track is not probed yet
        self._missing: list[dict[str, str] | None] = [self._known_missing(r, probe) for r in records]

    @staticmethod
    def _known_missing(r: ClipRecord, probe: bool) -> dict[str, str] | None:
        if r.video is None:
            return {"video": "audio-only clip"}
        if r.audio is not None:
            return {} if r.audio.exists() else {"audio": "audio file missing"}
        if not probe:
            return None
        has_audio = _has_audio_track(r.video)
        if has_audio is None:
            return None  # unreadable: the MediaError comes when the clip is loaded
        return {} if has_audio else {"audio": "no audio track"}

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        r, s = self.records[index], self.settings
        audio_path = r.audio if r.audio is not None and r.audio.exists() else None
        clip = read_clip(
            r.video if r.video is not None else r.audio,
            audio_path=audio_path if r.video is not None else None,
            num_frames=s.num_frames,
            size=s.frame_size,
            sample_rate=s.sample_rate,
            max_audio_seconds=s.audio_seconds,
        )
        # a listed audio file that does not exist means no audio, not the video's own track
        audio = None if r.audio is not None and audio_path is None else clip.audio
        if self._missing[index] is None:  # learnt while loading
            self._missing[index] = {} if audio is not None else {"audio": "no audio track"}
        return {
            "id": r.id,
            "captions": list(r.captions),
            "video": clip.video,
            "audio": audio,
            "class_id": self.class_ids[index],
            "missing": sorted(m for m, x in (("video", clip.video), ("audio", audio)) if x is None),
        }

    def collate(self, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """`collate_clips` with this dataset's settings."""
        return collate_clips(items, self.settings)

    def missing(self, index: int) -> dict[str, str] | None:
        """Modalities clip ``index`` lacks, with the reason; None when not yet known."""
        known = self._missing[index]
        return None if known is None else dict(known)

    def check(self, progress: bool = True) -> dict[str, str]:
        """Decode every clip once; returns ``{file: error}`` for those that fail (also learns
        which videos lack an audio track, so `summary` becomes exact)."""
        from tqdm.auto import tqdm

        errors: dict[str, str] = {}
        for i in tqdm(range(len(self)), desc="checking clips", disable=not progress):
            try:
                self[i]
            except MediaError as e:
                r = self.records[i]
                # MediaError messages start with the file: the video, or a separate audio file
                files = [str(p) for p in (r.video, r.audio) if p is not None and str(e).startswith(str(p))]
                errors[files[0] if files else str(r.video or r.audio)] = str(e)
        return errors

    def summary(self) -> str:
        """How many clips and captions there are and which modalities are missing, and why."""
        known = [m for m in self._missing if m is not None]
        captions = sum(len(r.captions) for r in self.records)
        return _summary_text(type(self).__name__, len(self), captions, known, len(self) - len(known))

    def __repr__(self) -> str:
        where = f"'{self.source}'" if self.source else f"{len(self)} records"
        return f"{type(self).__name__}({where}, {self.settings})\n{self.summary()}"


def _has_audio_track(path: Path) -> bool | None:
    """Whether a media file has an audio stream (header only); None when it cannot be opened."""
    import av

    try:
        with av.open(str(path)) as container:
            return bool(container.streams.audio)
    except (av.FFmpegError, OSError, UnicodeDecodeError):
        return None


def _stack(values: list[Tensor | None], shape: Sequence[int] | None) -> Tensor | None:
    """(B, *shape) with zeros where a value is None; None if nothing is present and no shape."""
    present = [v for v in values if v is not None]
    if not present and shape is None:
        return None
    like = present[0] if present else torch.zeros(())
    shape = tuple(present[0].shape) if present else tuple(shape)
    out = like.new_zeros((len(values), *shape))
    for i, v in enumerate(values):
        if v is not None:
            out[i] = v
    return out


def collate_clips(items: Sequence[dict[str, Any]], settings: ClipSettings | None = None) -> dict[str, Any]:
    """Batch dataset items: present modalities stacked, missing ones zero-filled and masked.

    Audio is cut or zero-padded to ``settings.audio_samples`` (or the longest in the batch).

    Returns:
        ``{"id": list[str], "captions": list[list[str]], "video": (B, T, 3, H, W) or None,
        "audio": (B, S) or None, "audio_lengths": (B,) long (real samples before padding),
        "class_id": (B,) long (-1: no class), "present": {"video": (B,) bool, "audio": (B,) bool}}``;
        ``video``/``audio`` are None only if no item has them and ``settings`` is None.

    Example:
        >>> item = {"id": "a", "captions": ["x"], "video": None, "audio": torch.ones(3),
        ...         "class_id": None, "missing": ["video"]}
        >>> batch = collate_clips([item, {**item, "audio": torch.ones(5)}])
        >>> batch["audio"].shape, batch["present"]["video"].tolist(), batch["audio_lengths"].tolist()
        (torch.Size([2, 5]), [False, False], [3, 5])
    """
    if not items:
        raise ValueError("collate_clips: empty batch")
    videos = [it["video"] for it in items]
    audios = [it["audio"] for it in items]
    frames = None if settings is None else (settings.num_frames, 3, *settings.frame_size)
    video = _stack(videos, frames)
    lengths = torch.tensor([0 if a is None else a.numel() for a in audios], dtype=torch.long)
    samples = settings.audio_samples if settings is not None else None
    if samples is None:
        samples = int(lengths.max()) if any(a is not None for a in audios) else (None if settings is None else 0)
    audio = _stack([None if a is None else _fit(a, samples) for a in audios], None if samples is None else (samples,))
    return {
        "id": [it["id"] for it in items],
        "captions": [list(it["captions"]) for it in items],
        "video": video,
        "audio": audio,
        "audio_lengths": lengths.clamp(max=samples) if samples is not None else lengths,
        "class_id": torch.tensor([-1 if it["class_id"] is None else it["class_id"] for it in items], dtype=torch.long),
        "present": {
            "video": torch.tensor([v is not None for v in videos]),
            "audio": torch.tensor([a is not None for a in audios]),
        },
    }


def _fit(audio: Tensor, samples: int) -> Tensor:
    if audio.numel() >= samples:
        return audio[:samples]
    return torch.cat([audio, audio.new_zeros(samples - audio.numel())])
