"""read_clip on media written here with PyAV: every container, missing audio, broken files."""

import fractions
import math
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from gramviz.media import MediaError, read_clip

COLORS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]  # one per second
TONE_HZ, SR, FPS, SECONDS = 440.0, 16000, 10, 4


def write_media(path: Path, video: str | None, audio: str | None, seconds: int = SECONDS, size=(64, 48)) -> Path:
    """A clip whose second k is a solid COLORS[k] frame, with a TONE_HZ sine on the audio track."""
    with av.open(str(path), "w") as out:
        vs = as_ = None
        if video:
            vs = out.add_stream(video, rate=FPS)
            vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
        if audio:
            rate = 48000 if audio == "libopus" else SR
            as_ = out.add_stream(audio, rate=rate)
            as_.layout = "mono"
        if vs is not None:
            for i in range(seconds * FPS):
                img = np.zeros((size[1], size[0], 3), np.uint8)
                img[:] = COLORS[(i // FPS) % len(COLORS)]
                out.mux(vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
            out.mux(vs.encode(None))
        if as_ is not None:
            rate = as_.rate
            t = np.arange(seconds * rate) / rate
            wave = (0.5 * np.sin(2 * math.pi * TONE_HZ * t)).astype(np.float32)
            step = as_.frame_size or 1024
            for start in range(0, wave.size, step):
                frame = av.AudioFrame.from_ndarray(wave[None, start : start + step], format="flt", layout="mono")
                frame.sample_rate, frame.pts = rate, start
                frame.time_base = fractions.Fraction(1, rate)
                out.mux(as_.encode(frame))
            out.mux(as_.encode(None))
    return path


def dominant_hz(audio: torch.Tensor, sr: int) -> float:
    spectrum = torch.fft.rfft(audio).abs()
    return float(spectrum.argmax()) * sr / audio.numel()


VIDEO_FORMATS = {
    "mp4": ("h264", "aac"),
    "webm": ("libvpx-vp9", "libopus"),
    "mkv": ("h264", "aac"),
    "mov": ("h264", "aac"),
    "avi": ("mpeg4", "mp3"),
}
AUDIO_FORMATS = {"mp3": "mp3", "wav": "pcm_s16le", "flac": "flac", "ogg": "libopus", "m4a": "aac"}


@pytest.mark.parametrize("ext", list(VIDEO_FORMATS))
def test_video_containers_decode_frames_and_audio(tmp_path, ext):
    path = write_media(tmp_path / f"clip.{ext}", *VIDEO_FORMATS[ext])
    clip = read_clip(path, num_frames=4, size=(32, 40))
    assert clip.video.shape == (4, 3, 32, 40) and clip.video.dtype == torch.float32
    assert 0 <= clip.video.min() and clip.video.max() <= 1
    for k, color in enumerate(COLORS):  # frame k is sampled in second k
        mean = clip.video[k].mean(dim=(1, 2)) * 255
        assert torch.allclose(mean, torch.tensor(color, dtype=torch.float32), atol=20), (k, mean)
    assert clip.fps == pytest.approx(FPS, rel=0.01)
    assert clip.duration == pytest.approx(SECONDS, abs=0.3)
    assert clip.audio.numel() == pytest.approx(SECONDS * SR, rel=0.05)
    assert dominant_hz(clip.audio, SR) == pytest.approx(TONE_HZ, abs=3)


@pytest.mark.parametrize("ext", list(AUDIO_FORMATS))
def test_audio_files_decode_to_mono_at_the_target_rate(tmp_path, ext):
    path = write_media(tmp_path / f"sound.{ext}", None, AUDIO_FORMATS[ext])
    clip = read_clip(path, sample_rate=8000)
    assert clip.video is None and clip.sample_rate == 8000
    assert clip.audio.dim() == 1 and clip.audio.numel() == pytest.approx(SECONDS * 8000, rel=0.05)
    assert dominant_hz(clip.audio, 8000) == pytest.approx(TONE_HZ, abs=3)


def test_video_without_audio_track_is_marked_missing(tmp_path):
    clip = read_clip(write_media(tmp_path / "silent.mp4", "h264", None), num_frames=2)
    assert clip.audio is None and clip.video.shape[0] == 2


def test_separate_audio_file_replaces_the_track(tmp_path):
    video = write_media(tmp_path / "silent.mp4", "h264", None)
    sound = write_media(tmp_path / "sound.wav", None, "pcm_s16le")
    clip = read_clip(video, audio_path=sound, max_audio_seconds=1.5)
    assert clip.video is not None and clip.audio.numel() == int(1.5 * SR)


def test_more_frames_than_the_clip_has(tmp_path):
    clip = read_clip(write_media(tmp_path / "short.mp4", "h264", "aac", seconds=1), num_frames=30)
    assert clip.video.shape[0] == 30 and torch.isfinite(clip.video).all()


def test_broken_files_raise_media_errors_naming_the_file(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(MediaError, match="empty.mp4: the file is empty"):
        read_clip(empty)
    with pytest.raises(MediaError, match="missing.mp4: no such file"):
        read_clip(tmp_path / "missing.mp4")
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    with pytest.raises(MediaError, match="noise.mp4"):
        read_clip(noise)
    text = tmp_path / "notes.webm"  # mislabelled: text with a media name
    text.write_text("caption, caption, caption\n" * 100)
    with pytest.raises(MediaError, match="notes.webm"):
        read_clip(text)
    good = write_media(tmp_path / "good.mp4", "h264", "aac").read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good[: len(good) // 3])
    with pytest.raises(MediaError, match="truncated.mp4"):
        read_clip(truncated)
    assert issubclass(MediaError, ValueError)


def test_long_inputs_are_sampled_by_seeking(tmp_path, monkeypatch):
    import gramviz.media

    monkeypatch.setattr(gramviz.media, "_SEEK_ABOVE_SECONDS", 1.0)  # treat the 4 s clip as long
    clip = read_clip(write_media(tmp_path / "long.mp4", "h264", "aac"), num_frames=4, size=(16, 16))
    for k, color in enumerate(COLORS):
        mean = clip.video[k].mean(dim=(1, 2)) * 255
        assert torch.allclose(mean, torch.tensor(color, dtype=torch.float32), atol=20), (k, mean)
