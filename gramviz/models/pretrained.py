"""A GRAM head on a pretrained tower: `BackboneEncoder`, with the tower's own preprocessing.

- text: the backbone's tokenizer (strings -> ids and mask, at most ``max_text_len`` tokens);
- video: ``num_frames`` frames picked evenly along time, each resized, centre-cropped and
  normalised as the backbone's image processor says, through the image tower one by one, then
  pooled over time (mean, or a small temporal transformer);
- audio: the waveform (at the config's ``sample_rate``) cropped to ``audio_seconds``, resampled
  to the feature extractor's rate, then the extractor itself.

The trainable head maps the tower's pooled features to the shared space: a linear map or a
small MLP. `TowerFeatures` carries tower outputs computed before (the frozen-feature cache of
`gramviz.training.features`): the encoder then runs its head only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .backbones import Backbone, BackboneError, ImageSpec, Tower
from .config import ModelConfig
from .preprocess import frame_indices, prepare_text
from .towers import load_tower

__all__ = [
    "BackboneEncoder",
    "TowerFeatures",
    "audio_for_tower",
    "backbone_encoders",
    "frames_for_tower",
]


class TowerFeatures:
    """Tower outputs computed earlier: (B, width), or (B, num_frames, width) for video."""

    __slots__ = ("tensor",)

    def __init__(self, tensor: Tensor) -> None:
        self.tensor = tensor

    def to(self, device: torch.device | str, non_blocking: bool = False) -> TowerFeatures:
        return TowerFeatures(self.tensor.to(device, non_blocking=non_blocking))

    def __len__(self) -> int:
        return len(self.tensor)


def frames_for_tower(video: Tensor, spec: ImageSpec, num_frames: int) -> Tensor:
    """(B, T, 3, H, W) in [0, 1] -> (B, num_frames, 3, h, w) resized, cropped and normalised per ``spec``."""
    if not isinstance(video, Tensor) or not video.is_floating_point() or video.dim() != 5 or video.shape[2] != 3:
        raise ValueError(f"video must be a float tensor (B, T, 3, H, W) in [0, 1], got {getattr(video, 'shape', video)}")
    b, t, _, h, w = video.shape
    x = video[:, frame_indices(t, num_frames).to(video.device)].flatten(0, 1).float()
    if isinstance(spec.resize, int):
        scale = spec.resize / min(h, w)
        size = (max(spec.resize, round(h * scale)), max(spec.resize, round(w * scale)))
    else:
        size = spec.resize
    if tuple(size) != (h, w):
        smooth = spec.interpolation in ("bilinear", "bicubic")
        x = F.interpolate(x, size=size, mode=spec.interpolation, align_corners=False if smooth else None,
                          antialias=smooth).clamp(0, 1)
    if spec.crop is not None:
        ch, cw = spec.crop
        top, left = max(0, (x.shape[-2] - ch) // 2), max(0, (x.shape[-1] - cw) // 2)
        x = x[..., top : top + ch, left : left + cw]
    x = (x - x.new_tensor(spec.mean).view(3, 1, 1)) / x.new_tensor(spec.std).view(3, 1, 1)
    return x.view(b, num_frames, 3, *x.shape[-2:])


def audio_for_tower(audio: Tensor, extractor: Any, sample_rate: int, samples: int) -> dict[str, Tensor]:
    """(B, S) waveform at ``sample_rate`` -> the feature extractor's output at its own rate.

    The waveform is cropped to ``samples`` first, and to the extractor's own maximum (CLAP's
    ``nb_max_samples``), so that no extractor crops at random: the result is deterministic.
    """
    import torchaudio

    if not isinstance(audio, Tensor) or not audio.is_floating_point() or audio.dim() != 2:
        raise ValueError(f"audio must be a float waveform tensor (B, S), got {getattr(audio, 'shape', audio)}")
    x = audio[:, :samples].float().cpu()
    rate = int(extractor.sampling_rate)
    if rate != sample_rate:
        x = torchaudio.functional.resample(x, sample_rate, rate)
    cap = getattr(extractor, "nb_max_samples", None)
    if cap:
        x = x[:, :cap]
    out = extractor([row.numpy() for row in x], sampling_rate=rate, return_tensors="pt")
    return {k: v for k, v in out.items() if isinstance(v, Tensor)}


class TemporalPool(nn.Module):
    """Per-frame features (B, T, W) -> (B, W): the mean, or a one-layer transformer then the mean."""

    def __init__(self, width: int, num_frames: int, kind: str = "mean") -> None:
        super().__init__()
        self.kind = kind
        if kind == "transformer":
            heads = next(h for h in (8, 4, 2, 1) if width % h == 0)
            self.position = nn.Parameter(torch.zeros(num_frames, width))
            self.layer = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout=0.0, batch_first=True)

    def forward(self, x: Tensor) -> Tensor:
        if self.kind == "transformer":
            x = self.layer(x + self.position[: x.shape[1]])
        return x.mean(dim=1)


def _head(width: int, embed_dim: int, kind: str) -> nn.Module:
    if kind == "linear":
        return nn.Linear(width, embed_dim)
    return nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, embed_dim))


class BackboneEncoder(nn.Module):
    """A pretrained tower plus a trainable head: the encoder of one modality of a `GRAMModel`.

    Args:
        modality: ``"text"``, ``"video"`` or ``"audio"``.
        tower: the tower (`gramviz.models.backbones.load_tower`).
        config: the model's config (embed_dim, head, temporal, num_frames, sample_rate, ...).
    """

    def __init__(self, modality: str, tower: Tower, config: ModelConfig) -> None:
        super().__init__()
        self.modality, self.tower = modality, tower
        self.temporal = TemporalPool(tower.width, config.num_frames, config.temporal) if modality == "video" else None
        self.head = _head(tower.width, config.embed_dim, config.head)
        self.to(next((p.dtype for p in tower.parameters() if p.is_floating_point()), torch.float32))

    @property
    def tokenizer(self):
        """The text tower's tokenizer (None for other modalities)."""
        return self.tower.tokenizer

    def prepare_input(self, value: Any, config: ModelConfig, device: torch.device) -> Any:
        """The tower's input for a raw value (strings, frames in [0, 1], a waveform), on ``device``."""
        if isinstance(value, TowerFeatures):
            return value.to(device)
        with torch.autocast(device_type=device.type, enabled=False):
            if self.modality == "text":
                ids, mask = prepare_text(value, config, self.tower.tokenizer)
                return {"input_ids": ids.to(device), "attention_mask": mask.long().to(device)}
            if self.modality == "video":
                return {"pixel_values": frames_for_tower(value.to(device), self.tower.image, config.num_frames)}
            out = audio_for_tower(value, self.tower.extractor, config.sample_rate, config.audio_samples)
            return {k: v.to(device) for k, v in out.items()}

    def features(self, inputs: Mapping[str, Tensor]) -> Tensor:
        """The tower's pooled output: (B, width), or (B, num_frames, width) for video."""
        dtype = next((p.dtype for p in self.tower.parameters() if p.is_floating_point()), torch.float32)
        inputs = {k: v.to(dtype) if v.is_floating_point() else v for k, v in inputs.items()}
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.tower.frozen):
            if self.modality == "video":
                frames = inputs["pixel_values"]
                return self.tower({"pixel_values": frames.flatten(0, 1)}).view(*frames.shape[:2], -1)
            return self.tower(dict(inputs))

    def forward(self, x: Any) -> Tensor:
        z = x.tensor if isinstance(x, TowerFeatures) else self.features(x)
        if self.temporal is not None:
            z = self.temporal(z.to(self.head_dtype))
        return self.head(z.to(self.head_dtype))

    @property
    def head_dtype(self) -> torch.dtype:
        return next(self.head.parameters()).dtype

    def train(self, mode: bool = True) -> BackboneEncoder:
        """Frozen towers stay in evaluation mode (no dropout) while the head trains."""
        super().train(mode)
        if self.tower.frozen:
            self.tower.eval()
        return self


def backbone_encoders(config: ModelConfig, skip: Mapping[str, Any] = ()) -> dict[str, BackboneEncoder]:
    """The encoders of the modalities that ``config.backbones`` names (one load per reference:
    one CLIP serves text and video), except those in ``skip``."""
    if config.dam:
        raise BackboneError("the DAM head reads token outputs of gramviz's own encoders; turn dam off with backbones")
    loaded: dict = {}
    out = {}
    for modality, ref in config.backbones.items():
        if modality not in skip:
            out[modality] = BackboneEncoder(modality, load_tower(Backbone.from_dict(ref), modality, loaded), config)
    return out
