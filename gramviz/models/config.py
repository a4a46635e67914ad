"""`ModelConfig`: every size and preprocessing setting of a GRAM model, saved as ``config.json``."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..datasets import ClipSettings
from ..modalities import (
    MODALITIES,  # the built-in encoders know these; the first one present is the anchor
)
from .backbones import Backbone
from .gram_official.config import OfficialConfig

__all__ = ["HEADS", "MODALITIES", "TEMPORAL", "ModelConfig", "clip_settings"]

HEADS = ("linear", "mlp")  # the head on a backbone
TEMPORAL = ("mean", "transformer")  # how a video backbone's frame features are pooled


@dataclass(frozen=True)
class ModelConfig:
    """Sizes and preprocessing of a `GRAMModel`; JSON round trip with `to_dict` / `from_dict`.

    Attributes:
        embed_dim: dimension D of the shared, L2-normalised embedding space.
        modalities: the modalities the model encodes; ``"text"`` is the anchor.
        num_frames: frames sampled evenly along time from any input video.
        frame_size: (H, W) the frames are resized to.
        sample_rate: audio rate in Hz that waveforms are expected at.
        audio_seconds: waveforms are cropped or zero-padded to this length.
        n_mels: mel bands of the log-mel spectrogram.
        vocab_size: tokenizer size (0: taken from the tokenizer when the model is built).
        max_text_len: tokens per caption, [CLS] included; longer captions are truncated.
        text_width: width of the text transformer.
        text_layers: transformer layers of the text encoder.
        text_heads: attention heads of the text encoder (must divide text_width).
        video_width: channels of the video encoder's last stage and of its frame tokens.
        audio_width: channels of the audio encoder's last stage and of its time tokens.
        dam: build the data-anchor matching (DAM) head.
        dam_width: width of the DAM fusion transformer.
        dropout: dropout of the text transformer and the DAM head.
        backbones: ``{modality: Backbone.to_dict()}``: pretrained towers by reference
            (`gramviz.models.backbones`); those modalities get a `BackboneEncoder`, whose
            preprocessing is the backbone's own (text_*, video_width, audio_width, n_mels unused).
        head: the head on a backbone: ``"linear"`` or ``"mlp"``.
        temporal: how a video backbone's frame features are pooled: ``"mean"`` or ``"transformer"``.
        official: the architecture of a converted official GRAM checkpoint
            (`gramviz.models.gram_official.OfficialConfig` fields; ``gramviz convert-gram`` writes
            it); empty for gramviz's own models. Such a model holds EVA, BEATs and BERT towers with
            GRAM's heads and preprocessing; the fields above that this fixes must agree with it.

    Example:
        >>> ModelConfig.from_dict(ModelConfig(embed_dim=64).to_dict()).embed_dim
        64
    """

    embed_dim: int = 256
    modalities: tuple[str, ...] = MODALITIES
    num_frames: int = 8
    frame_size: tuple[int, int] = (32, 32)
    sample_rate: int = 16000
    audio_seconds: float = 3.0
    n_mels: int = 64
    vocab_size: int = 0
    max_text_len: int = 32
    text_width: int = 128
    text_layers: int = 2
    text_heads: int = 4
    video_width: int = 64
    audio_width: int = 64
    dam: bool = False
    dam_width: int = 128
    dropout: float = 0.1
    backbones: dict[str, dict[str, Any]] = field(default_factory=dict)
    head: str = "linear"
    temporal: str = "mean"
    official: dict[str, Any] = field(default_factory=dict)

    __hash__ = None  # a dict field: configs compare by value and are not hashed
    def __post_init__(self) -> None:
        object.__setattr__(self, "modalities", tuple(str(m) for m in self.modalities))
        object.__setattr__(self, "frame_size", tuple(int(s) for s in self.frame_size))
        object.__setattr__(self, "backbones", {str(m): Backbone.from_dict(b).to_dict() for m, b in self.backbones.items()})
        if self.official:
            object.__setattr__(self, "official", OfficialConfig.from_dict(self.official).to_dict())
        self._check()

    def _check(self) -> None:
        positive = ("embed_dim", "num_frames", "sample_rate", "n_mels", "max_text_len", "text_width",
                    "text_layers", "text_heads", "video_width", "audio_width", "dam_width")
        bad = [f"{name}={getattr(self, name)}" for name in positive if getattr(self, name) < 1]
        bad_frame = len(self.frame_size) != 2 or min(self.frame_size) < 1
        if bad or bad_frame or self.audio_seconds <= 0 or self.vocab_size < 0:
            raise ValueError(f"ModelConfig: sizes must be positive, got {', '.join(bad) or self}")
        if not self.modalities or len(set(self.modalities)) != len(self.modalities):
            raise ValueError(f"ModelConfig: modalities must be distinct and not empty, got {self.modalities}")
        if self.text_width % self.text_heads or self.dam_width % 4:
            raise ValueError("ModelConfig: text_heads must divide text_width and 4 must divide dam_width")
        if set(self.backbones) - set(self.modalities):
            raise ValueError(f"ModelConfig: backbones for {sorted(set(self.backbones) - set(self.modalities))} "
                             f"are not among modalities {self.modalities}")
        if self.head not in HEADS or self.temporal not in TEMPORAL:
            raise ValueError(f"ModelConfig: head must be one of {HEADS} and temporal one of {TEMPORAL}, "
                             f"got {self.head!r}, {self.temporal!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"ModelConfig: dropout must lie in [0, 1), got {self.dropout}")
        if self.official:
            OfficialConfig.from_dict(self.official).check_model_config(self)

    @property
    def audio_samples(self) -> int:
        """Waveform length in samples after cropping or padding."""
        return round(self.audio_seconds * self.sample_rate)

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly fields (tuples as lists; ``official`` only when set, so that the configs and
        fingerprints of gramviz's own models stay as they were)."""
        d = asdict(self)
        d["modalities"] = list(self.modalities)
        d["frame_size"] = list(self.frame_size)
        if not self.official:
            del d["official"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Build from `to_dict` output; unknown keys raise ValueError (a typo must not pass silently)."""
        if not isinstance(d, dict):
            raise ValueError(f"ModelConfig.from_dict: expected a dict, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"ModelConfig: unknown keys {unknown}; known keys are {sorted(known)}")
        return cls(**d)


def clip_settings(model: Any = None) -> ClipSettings:
    """How to decode clips for a model (or a `ModelConfig`): its frames, frame size, sample rate
    and audio length where it names them (decoding no more than the model uses), else the
    defaults of `gramviz.ClipSettings`.

    Example:
        >>> clip_settings(ModelConfig(num_frames=4)).num_frames
        4
    """
    config, default = getattr(model, "config", model), ClipSettings()
    return ClipSettings(
        num_frames=getattr(config, "num_frames", default.num_frames),
        frame_size=tuple(getattr(config, "frame_size", default.frame_size)),
        sample_rate=getattr(config, "sample_rate", default.sample_rate),
        audio_seconds=getattr(config, "audio_seconds", default.audio_seconds),
    )
