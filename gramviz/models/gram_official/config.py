"""`OfficialConfig`: the architecture and preprocessing of a converted official GRAM checkpoint.

A converted model records it in ``config.json`` under ``official`` (`gramviz.ModelConfig`): the
vision tower's sizes (`VisionConfig`), BEATs' sizes and flags (`BEATsConfig`), BERT's sizes
(`TextConfig`), the heads' dimension and the preprocessing settings (frames, mel bins, fbank
length, caption tokens). `gramviz.models.gram_official.towers` builds the encoders from it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import Tensor

from ._fields import FieldsDict
from .beats import BEATsConfig
from .eva import VisionConfig
from .preprocess import FRAME_SETTINGS as FRAMES  # inference: 2 (GRAM's example), evaluation: 8 (its benchmark)

__all__ = ["BERT_HEADS", "FRAMES", "SAMPLE_RATE", "OfficialConfig", "TextConfig", "fbank_samples"]

BERT_HEADS = 12  # BERT-base: 768 = 12 heads of 64 (no shape records the heads)
SAMPLE_RATE = 16000  # the rate the official fbank is computed at
_LAYER_KEY = re.compile(r"^encoder\.layer\.(\d+)\.")


def fbank_samples(target_length: int) -> int:
    """Samples at 16 kHz whose Kaldi fbank (25 ms windows, 10 ms shift) has ``target_length`` frames.

    Example:
        >>> fbank_samples(1024), fbank_samples(1024) / 16000
        (164080, 10.255)
    """
    return 400 + (target_length - 1) * 160


@dataclass(frozen=True)
class TextConfig(FieldsDict):
    """Sizes of the BERT text tower (a transformers ``BertModel`` without pooler); defaults: bert-base-uncased.

    Example:
        >>> TextConfig().hidden_size, TextConfig().num_attention_heads
        (768, 12)
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = BERT_HEADS
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12

    def __post_init__(self) -> None:
        sizes = {k: v for k, v in asdict(self).items() if k != "layer_norm_eps"}
        if any(not isinstance(v, int) or v < 1 for v in sizes.values()) or not self.layer_norm_eps > 0:
            raise ValueError(f"TextConfig: sizes must be positive integers, got {asdict(self)}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"TextConfig: {self.num_attention_heads} heads do not divide "
                             f"hidden_size {self.hidden_size}")

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Tensor], heads: int = BERT_HEADS) -> TextConfig:
        """The sizes of a ``BertModel`` state dict; ``heads`` is the one size no shape records."""
        need = ("embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                "embeddings.token_type_embeddings.weight", "encoder.layer.0.intermediate.dense.weight")
        missing = [k for k in need if k not in state]
        if missing:
            raise ValueError(f"the text tower (multimodal_encoder.bert.*) lacks {missing}")
        vocab, hidden = state[need[0]].shape
        layers = 1 + max(int(m.group(1)) for k in state if (m := _LAYER_KEY.match(k)))
        return cls(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                   intermediate_size=state[need[3]].shape[0], max_position_embeddings=state[need[1]].shape[0],
                   type_vocab_size=state[need[2]].shape[0])


@dataclass(frozen=True)
class OfficialConfig(FieldsDict):
    """Architecture and preprocessing of an official GRAM model (the ``official`` entry of ``config.json``).

    Attributes:
        vision: `VisionConfig` fields of the EVA tower.
        audio: `BEATsConfig` fields.
        text: `TextConfig` fields of the BERT tower.
        embed_dim: output dimension of the three heads (512).
        frames: ``"evaluation"`` (8 frames, GRAM's benchmark) or ``"inference"`` (2 frames, its
            fast-inference example).
        melbins: mel bins of the fbank (64 unless ``hps.json`` says ``audio_melbins``).
        target_length: fbank frames per audio slice (1024 unless ``audio_target_length``).
        max_text_len: caption tokens, [CLS] and [SEP] included (40).

    Example:
        >>> cfg = OfficialConfig.from_dict(OfficialConfig(frames="inference").to_dict())
        >>> cfg.num_frames, cfg.audio_seconds
        (2, 10.255)
    """

    vision: dict[str, Any] = field(default_factory=lambda: VisionConfig().to_dict())
    audio: dict[str, Any] = field(default_factory=lambda: BEATsConfig().to_dict())
    text: dict[str, Any] = field(default_factory=lambda: TextConfig().to_dict())
    embed_dim: int = 512
    frames: str = "evaluation"
    melbins: int = 64
    target_length: int = 1024
    max_text_len: int = 40

    __hash__ = None  # dict fields: compared by value, not hashed

    def __post_init__(self) -> None:
        object.__setattr__(self, "vision", VisionConfig.from_dict(self.vision).to_dict())
        object.__setattr__(self, "audio", BEATsConfig.from_dict(self.audio).to_dict())
        object.__setattr__(self, "text", TextConfig.from_dict(self.text).to_dict())
        if self.frames not in FRAMES:
            raise ValueError(f"OfficialConfig: frames must be one of {sorted(FRAMES)}, got {self.frames!r}")
        sizes = {"embed_dim": self.embed_dim, "melbins": self.melbins, "target_length": self.target_length,
                 "max_text_len": self.max_text_len}
        if any(not isinstance(v, int) or v < 1 for v in sizes.values()):
            raise ValueError(f"OfficialConfig: sizes must be positive integers, got {sizes}")

    @property
    def num_frames(self) -> int:
        """Frames per clip of the ``frames`` setting."""
        return FRAMES[self.frames]

    @property
    def audio_seconds(self) -> float:
        """Length of audio whose fbank fills one slice of ``target_length`` frames."""
        return fbank_samples(self.target_length) / SAMPLE_RATE

    def model_fields(self) -> dict[str, Any]:
        """The `gramviz.ModelConfig` fields this architecture fixes (what clips are decoded to)."""
        size = self.vision["image_size"]
        return {"embed_dim": self.embed_dim, "modalities": ("text", "video", "audio"), "num_frames": self.num_frames,
                "frame_size": (size, size), "sample_rate": SAMPLE_RATE, "audio_seconds": self.audio_seconds,
                "n_mels": self.melbins, "max_text_len": self.max_text_len}

    def check_model_config(self, config: Any) -> None:
        """Raise ValueError when a `gramviz.ModelConfig` disagrees with this architecture."""
        wanted = self.model_fields()
        wrong = {k: (getattr(config, k), v) for k, v in wanted.items() if k != "modalities" and getattr(config, k) != v}
        if wrong:
            raise ValueError(f"ModelConfig: an official GRAM model fixes these fields (given, required): {wrong}")
        if set(config.modalities) - set(wanted["modalities"]):
            raise ValueError(f"ModelConfig: an official GRAM model has the modalities {wanted['modalities']}, "
                             f"got {config.modalities}")
        if config.backbones or config.dam:
            raise ValueError("ModelConfig: an official GRAM model takes no backbones and no DAM head")
