"""Raw modality inputs -> encoder inputs, with fixed constants so a saved model needs no statistics.

- video: (B, T, 3, H, W) in [0, 1], any T, H, W -> ``num_frames`` frames picked evenly along T,
  resized to ``frame_size``, normalised per channel (ImageNet mean and std).
- audio: (B, S) waveform at ``sample_rate`` -> cropped or zero-padded to ``audio_seconds`` ->
  log-mel (`gramviz.features.log_mel`) -> ``(x - MEL_MEAN) / MEL_STD``.
- text: list of B strings -> ``tokenizer.encode`` ([CLS] first, at most ``max_text_len``), or
  ``(ids, mask)`` already tokenised.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..features import log_mel, resize_frames
from .config import ModelConfig
from .tokenizer import Tokenizer

__all__ = ["MEL_MEAN", "MEL_STD", "VIDEO_MEAN", "VIDEO_STD", "frame_indices", "prepare", "prepare_audio",
           "prepare_text", "prepare_video"]

VIDEO_MEAN = (0.485, 0.456, 0.406)
VIDEO_STD = (0.229, 0.224, 0.225)
# log(mel power) of typical clips lies in about [-14 (silence floor), 8]; this maps it to about [-2.5, 3]
MEL_MEAN = -4.0
MEL_STD = 4.0


def frame_indices(available: int, wanted: int) -> Tensor:
    """Indices of ``wanted`` frames evenly spaced among ``available`` (centre of each segment).

    Example:
        >>> frame_indices(24, 4).tolist(), frame_indices(2, 4).tolist()
        ([3, 9, 15, 21], [0, 0, 1, 1])
    """
    centres = (torch.arange(wanted, dtype=torch.float64) + 0.5) * available / wanted
    return centres.floor().long().clamp(max=available - 1)


def prepare_video(video: Tensor, config: ModelConfig) -> Tensor:
    """(B, T, 3, H, W) float in [0, 1] -> (B, num_frames, 3, *frame_size) normalised."""
    if not isinstance(video, Tensor) or not video.is_floating_point():
        raise TypeError("video must be a floating-point tensor (B, T, 3, H, W) with values in [0, 1]")
    if video.dim() != 5 or video.shape[2] != 3 or min(video.shape[:2]) < 1:
        raise ValueError(f"video must be (B, T, 3, H, W), got shape {tuple(video.shape)}")
    b, t = video.shape[:2]
    x = video if t == config.num_frames else video[:, frame_indices(t, config.num_frames).to(video.device)]
    x = resize_frames(x.flatten(0, 1), config.frame_size).view(b, config.num_frames, 3, *config.frame_size)
    mean = x.new_tensor(VIDEO_MEAN).view(3, 1, 1)
    std = x.new_tensor(VIDEO_STD).view(3, 1, 1)
    return (x - mean) / std


def prepare_audio(audio: Tensor, config: ModelConfig) -> Tensor:
    """(B, S) waveform -> (B, n_mels, frames) normalised log-mel of exactly ``audio_seconds``."""
    if not isinstance(audio, Tensor) or not audio.is_floating_point():
        raise TypeError("audio must be a floating-point waveform tensor (B, S)")
    if audio.dim() != 2:
        raise ValueError(f"audio must be (B, S), got shape {tuple(audio.shape)}")
    n = config.audio_samples
    x = audio[:, :n] if audio.shape[1] >= n else torch.nn.functional.pad(audio, (0, n - audio.shape[1]))
    mel = log_mel(x.float(), sample_rate=config.sample_rate, n_mels=config.n_mels)  # (B, n_mels, frames)
    return (mel - MEL_MEAN) / MEL_STD


def prepare_text(
    text: Sequence[str] | tuple[Tensor, Tensor], config: ModelConfig, tokenizer: Tokenizer | None
) -> tuple[Tensor, Tensor]:
    """A list of strings (tokenised here) or ``(ids, mask)`` -> ``(ids (B, L), mask (B, L))``."""
    if isinstance(text, tuple) and len(text) == 2 and all(isinstance(x, Tensor) for x in text):
        ids, mask = text
        return ids[:, : config.max_text_len], mask[:, : config.max_text_len].bool()
    if isinstance(text, str) or not all(isinstance(s, str) for s in text):
        raise TypeError("text must be a list of strings or an (ids, mask) pair of tensors")
    if tokenizer is None:
        raise ValueError("this model has no tokenizer: pass text as (ids, mask) tensors")
    return tokenizer.encode(list(text), config.max_text_len)


def prepare(modality: str, value, config: ModelConfig, tokenizer: Tokenizer | None, device: torch.device):
    """The encoder input of one modality on ``device`` (preprocessing itself runs in float32)."""
    with torch.autocast(device_type=device.type, enabled=False):
        if modality == "text":
            ids, mask = prepare_text(value, config, tokenizer)
            return ids.to(device), mask.to(device)
        if modality == "video":
            return prepare_video(_on(value, device, "video"), config)
        if modality == "audio":
            return prepare_audio(_on(value, device, "audio"), config)
    return value.to(device) if isinstance(value, Tensor) else value  # another modality: as given


def _on(value, device: torch.device, what: str) -> Tensor:
    if not isinstance(value, Tensor) or not value.is_floating_point():
        raise TypeError(f"{what} must be a floating-point tensor")
    return value.to(device=device, dtype=torch.float32)
