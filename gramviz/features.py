"""Model inputs from decoded clips: log-mel spectrograms of audio and resized video frames.

Pure functions on tensors. torchaudio is imported inside `log_mel`, so ``import gramviz`` stays
torch-only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["log_mel", "resize_frames"]


def log_mel(
    audio: Tensor,
    sample_rate: int = 16000,
    n_mels: int = 64,
    window_seconds: float = 0.025,
    hop_seconds: float = 0.010,
    f_min: float = 0.0,
    f_max: float | None = None,
    floor: float = 1e-6,
) -> Tensor:
    """Log-mel spectrogram: ``log(mel power + floor)``.

    A Hann window of ``window_seconds`` (25 ms: 400 samples at 16 kHz, also the FFT size) moves
    by ``hop_seconds`` (10 ms: 160 samples); frames are centred (the signal is reflect-padded by
    half a window), so there are ``S // hop + 1`` frames. The power spectrum is projected on
    ``n_mels`` triangular HTK-mel filters between ``f_min`` and ``f_max`` (default: Nyquist).
    The floor keeps silence finite: log(1e-6) = -13.8.

    Args:
        audio: (S,) or (B, S) float waveform(s) at ``sample_rate``.
        sample_rate: in Hz.
        n_mels: mel bands.
        window_seconds: window (and FFT) length in seconds.
        hop_seconds: hop between frames in seconds.
        f_min: lowest filter frequency in Hz.
        f_max: highest filter frequency in Hz (None: sample_rate / 2).
        floor: added to the mel power before the natural log.

    Returns:
        (n_mels, frames), or (B, n_mels, frames) for a batch, in ``audio``'s dtype and device.

    Example:
        >>> log_mel(torch.zeros(16000)).shape
        torch.Size([64, 101])
    """
    import torchaudio

    n_fft = round(window_seconds * sample_rate)
    hop = round(hop_seconds * sample_rate)
    _check_audio(audio, n_fft, hop, floor)
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=sample_rate,
        n_fft=n_fft,
        hop_length=hop,
        f_min=f_min,
        f_max=f_max,
        n_mels=n_mels,
        power=2.0,
        center=True,
        pad_mode="reflect",
    ).to(device=audio.device, dtype=audio.dtype)
    return torch.log(mel(audio) + floor)


def _check_audio(audio: Tensor, n_fft: int, hop: int, floor: float) -> None:
    if not isinstance(audio, Tensor) or not audio.is_floating_point():
        got = f"dtype {audio.dtype}" if isinstance(audio, Tensor) else type(audio).__name__
        raise TypeError(f"log_mel: audio must be a floating-point tensor, got {got}")
    if audio.dim() not in (1, 2):
        raise ValueError(f"log_mel: audio must be (S,) or (B, S), got shape {tuple(audio.shape)}")
    if n_fft < 2 or hop < 1:
        raise ValueError(f"log_mel: window ({n_fft} samples) and hop ({hop} samples) are too short")
    if audio.shape[-1] <= n_fft // 2:
        # reflect padding needs more samples than half a window
        raise ValueError(
            f"log_mel: audio has {audio.shape[-1]} samples; at least {n_fft // 2 + 1} "
            f"(half a {n_fft}-sample window) are needed"
        )
    if floor <= 0:
        raise ValueError(f"log_mel: floor must be positive, got {floor}")
    if not bool(torch.isfinite(audio).all()):
        raise ValueError("log_mel: audio contains NaN or Inf values")


def resize_frames(video: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize frames with antialiased bilinear interpolation (no aliasing when shrinking).

    Args:
        video: (T, 3, H, W) float frames, e.g. in [0, 1].
        size: (h, w) of the output.

    Returns:
        (T, 3, h, w) frames in ``video``'s dtype; values stay within the input's range.

    Example:
        >>> resize_frames(torch.ones(8, 3, 112, 112), (56, 64)).shape
        torch.Size([8, 3, 56, 64])
    """
    if not isinstance(video, Tensor) or not video.is_floating_point():
        raise TypeError("resize_frames: video must be a floating-point tensor (e.g. frames in [0, 1])")
    if video.dim() != 4 or video.shape[1] != 3:
        raise ValueError(f"resize_frames: video must be (T, 3, H, W), got shape {tuple(video.shape)}")
    h, w = (int(s) for s in size)
    if h < 1 or w < 1:
        raise ValueError(f"resize_frames: size must be positive, got {tuple(size)}")
    if (h, w) == tuple(video.shape[-2:]):
        return video.clone()
    return F.interpolate(video, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
