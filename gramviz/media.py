"""Reading real clips: sampled video frames and mono audio from any common container (PyAV).

PyAV (FFmpeg) decodes; torch holds the results. Containers and codecs are recognised from the
content, not the file name. Failures raise `MediaError` (a ValueError) naming the file and the
problem; a clip without an audio track comes back with ``audio=None``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["Clip", "MediaError", "read_clip"]

# Above this duration frames are reached by seeking instead of decoding the whole stream.
_SEEK_ABOVE_SECONDS = 60.0


class MediaError(ValueError):
    """A media file that cannot be read: missing, empty, corrupt, truncated or not media."""


@dataclass
class Clip:
    """A decoded clip.

    Attributes:
        video: (T, 3, H, W) float frames in [0, 1], or None when there is no video stream.
        audio: (S,) mono float waveform at ``sample_rate``, or None when there is no audio.
        sample_rate: audio sample rate in Hz.
        fps: the video's average frame rate, or None.
        duration: duration in seconds (the longer of the streams read).
        path: the file the video (or the audio) came from.
    """

    video: Tensor | None
    audio: Tensor | None
    sample_rate: int
    fps: float | None
    duration: float
    path: str


def _open(path: Path):
    import av

    if not path.exists():
        raise MediaError(f"{path}: no such file")
    if not path.is_file():
        raise MediaError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: the file is empty")
    try:
        return av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError, OSError) as e:
        raise MediaError(f"{path}: not a readable media file ({e})") from e


def _video_stream(container):
    import av

    for stream in container.streams.video:
        # cover art in audio files is a one-picture "video" stream: not a video
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def _duration(container, stream) -> float:
    if stream is not None and stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return 0.0


def _to_tensor(frame, size: tuple[int, int]) -> Tensor:
    h, w = size
    rgb = frame.reformat(width=w, height=h, format="rgb24").to_ndarray()  # (H, W, 3) uint8
    return torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255)


def _read_frames(path: Path, container, stream, num_frames: int, size: tuple[int, int]) -> Tensor:
    """T frames at evenly spaced times (the frame shown at each time), resized by FFmpeg."""
    import av

    duration = _duration(container, stream)
    targets = [(k + 0.5) * duration / num_frames for k in range(num_frames)]
    stream.thread_type = "AUTO"
    picked: list[Tensor | None] = [None] * num_frames
    try:
        if duration > _SEEK_ABOVE_SECONDS:
            for k, t in enumerate(targets):  # long input: seek to each target, decode a few frames
                container.seek(int(t / stream.time_base), stream=stream, backward=True)
                last = None
                for frame in container.decode(stream):
                    if last is not None and frame.time is not None and frame.time > t:
                        break
                    last = frame
                picked[k] = None if last is None else _to_tensor(last, size)
        else:
            k, last = 0, None
            for frame in container.decode(stream):
                while k < num_frames and frame.time is not None and frame.time > targets[k] and last is not None:
                    picked[k], k = _to_tensor(last, size), k + 1
                if k == num_frames:
                    break
                last = frame
            while k < num_frames and last is not None:
                picked[k], k = _to_tensor(last, size), k + 1
    except av.FFmpegError as e:
        raise MediaError(f"{path}: the video stream is corrupt or truncated ({e})") from e
    if all(p is None for p in picked):
        raise MediaError(f"{path}: the video stream has no decodable frames")
    # a target past the last decodable frame shows the previous one
    for k in range(num_frames):
        if picked[k] is None:
            picked[k] = picked[k - 1] if k > 0 else next(p for p in picked if p is not None)
    return torch.stack(picked)


def _read_audio(path: Path, container, sample_rate: int, max_seconds: float | None) -> Tensor | None:
    import av

    if not container.streams.audio:
        return None
    stream = container.streams.audio[0]
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    limit = None if max_seconds is None else int(max_seconds * sample_rate)
    chunks, total = [], 0
    try:
        container.seek(0)
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(torch.from_numpy(out.to_ndarray().reshape(-1).copy()))
                total += chunks[-1].numel()
            if limit is not None and total >= limit:
                break
        for out in resampler.resample(None):
            chunks.append(torch.from_numpy(out.to_ndarray().reshape(-1).copy()))
    except av.FFmpegError as e:
        raise MediaError(f"{path}: the audio stream is corrupt or truncated ({e})") from e
    if not chunks:
        raise MediaError(f"{path}: the audio stream has no decodable samples")
    audio = torch.cat(chunks)
    return audio[:limit] if limit is not None else audio


def read_clip(
    path: str | Path,
    audio_path: str | Path | None = None,
    num_frames: int = 8,
    size: tuple[int, int] = (112, 112),
    sample_rate: int = 16000,
    max_audio_seconds: float | None = None,
) -> Clip:
    """Decode a clip: ``num_frames`` evenly spaced frames and its mono audio.

    Args:
        path: a video (mp4, webm, mkv, mov, avi, ...) or an audio file (mp3, wav, flac, ogg, m4a).
        audio_path: a separate audio file; its audio replaces the clip's own track.
        num_frames: frames sampled at evenly spaced times (long inputs are reached by seeking).
        size: (H, W) of the returned frames (FFmpeg scales while converting to RGB).
        sample_rate: audio is resampled to this rate, mixed down to mono.
        max_audio_seconds: decode at most this much audio (None: all of it).

    Returns:
        A `Clip`; ``video`` is None for audio files, ``audio`` None when there is no audio track.

    Raises:
        MediaError: the file is missing, empty, corrupt, truncated or not media.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    path = Path(path)
    with _open(path) as container:
        stream = _video_stream(container)
        video = _read_frames(path, container, stream, num_frames, size) if stream is not None else None
        fps = float(stream.average_rate) if stream is not None and stream.average_rate else None
        duration = _duration(container, stream)
        audio = None
        if audio_path is None:
            audio = _read_audio(path, container, sample_rate, max_audio_seconds)
    if audio_path is not None:
        apath = Path(audio_path)
        with _open(apath) as acontainer:
            audio = _read_audio(apath, acontainer, sample_rate, max_audio_seconds)
    if video is None and audio is None:
        raise MediaError(f"{path}: no video or audio stream")
    if audio is not None:
        duration = max(duration, audio.numel() / sample_rate)
    return Clip(video=video, audio=audio, sample_rate=sample_rate, fps=fps, duration=duration, path=str(path))
