"""The encoders of an official GRAM model inside a `gramviz.GRAMModel`: tower, pooling and head.

Each encoder prepares its own raw input with GRAM's preprocessing
(`gramviz.models.gram_official.preprocess`), runs its tower in evaluation mode and applies GRAM's
head, a bias-free linear map to the 512-d space, output in float32 whatever the weights' type
(`GRAMModel` then L2-normalises, as GRAM does):

- video: EVA01-CLIP-g/14 (`EVAVisionTower`); the class token of each frame, then the mean over
  frames (``contra_head_v``);
- audio: BEATs; the mean over all its tokens, zero-padded fbank frames included (``contra_head_a``);
- text: BERT-base (a transformers ``BertModel`` without pooler, eager attention); the [CLS] token
  of the last hidden state (``contra_head_t``).

Raw values given as tensors (video (B, T, 3, H, W) in [0, 1], audio (B, S) at the config's
sample rate) go through `official_frames` on the frames `frame_indices` picks along T and
`official_fbank`: this equals GRAM's own path only when the tensors are the frames and waveform
its decoder produces. `GRAMModel.encode_clip_files` reads files with GRAM's decoding
(`read_official_frames`, `read_official_audio`) and is the exact path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ...media import MediaError, _open, _video_stream
from ..backbones import PretrainedTokenizer
from ..preprocess import frame_indices as even_indices
from .beats import BEATs, BEATsConfig
from .config import OfficialConfig, TextConfig
from .eva import EVAVisionTower, VisionConfig
from .preprocess import (
    frame_indices,
    official_fbank,
    official_frames,
    official_text,
    read_official_audio,
    read_official_frames,
)

__all__ = ["OfficialAudioEncoder", "OfficialTextEncoder", "OfficialVideoEncoder", "Prepared", "bert_classes",
           "build_bert", "load_bert_tokenizer", "official_encoders", "read_clip_inputs"]


class Prepared:
    """An encoder input already prepared (what `read_file` gives): `prepare_input` passes it on."""

    __slots__ = ("tensor",)

    def __init__(self, tensor: Tensor) -> None:
        self.tensor = tensor


def _no_autocast():
    """Preprocessing runs in float32/float64 whatever autocast the caller set."""
    return torch.autocast("cpu", enabled=False)


def _dtype(module: nn.Module) -> torch.dtype:
    return next(p.dtype for p in module.parameters() if p.is_floating_point())


class OfficialVideoEncoder(nn.Module):
    """EVA tower, class token per frame, mean over frames, ``contra_head_v``: (B, n, 3, s, s) -> (B, 512)."""

    def __init__(self, cfg: OfficialConfig) -> None:
        super().__init__()
        self.visual = EVAVisionTower(VisionConfig.from_dict(cfg.vision))
        self.head = nn.Linear(self.visual.cfg.width, cfg.embed_dim, bias=False)
        self.num_frames, self.size = cfg.num_frames, self.visual.cfg.image_size

    def prepare_input(self, value: Any, config: Any, device: torch.device) -> Tensor:
        """(B, T, 3, H, W) frames in [0, 1] -> (B, num_frames, 3, s, s) as GRAM normalises them.

        The frames are those `frame_indices` picks along T (a video with fewer than ``num_frames``
        frames has them repeated evenly; GRAM's loader would skip it).
        """
        if isinstance(value, Prepared):
            return value.tensor.to(device)
        if not isinstance(value, Tensor) or not value.is_floating_point() or value.dim() != 5 or value.shape[2] != 3:
            got = getattr(value, "shape", type(value).__name__)
            raise ValueError(f"video must be a float tensor (B, T, 3, H, W) in [0, 1], got {got}")
        b, t = value.shape[:2]
        n = self.num_frames
        picked = frame_indices(t, n) if t >= n else even_indices(t, n).tolist()
        with _no_autocast():
            frames = official_frames(value[:, picked].flatten(0, 1).detach().cpu(), self.size)
        return frames.view(b, n, 3, self.size, self.size).to(device)

    def read_file(self, path: str | Path) -> Tensor:
        """(num_frames, 3, s, s): GRAM's frames of a video file (`read_official_frames`)."""
        return read_official_frames(path, self.num_frames, self.size)

    def forward(self, frames: Tensor) -> Tensor:
        b, n = frames.shape[:2]
        tokens = self.visual(frames.flatten(0, 1).to(_dtype(self)))
        return self.head(tokens[:, 0].view(b, n, -1).mean(dim=1)).float()


class OfficialAudioEncoder(nn.Module):
    """BEATs, mean over its tokens, ``contra_head_a``: (B, target_length, melbins) fbank -> (B, 512)."""

    def __init__(self, cfg: OfficialConfig) -> None:
        super().__init__()
        self.beats = BEATs(BEATsConfig.from_dict(cfg.audio))
        self.head = nn.Linear(self.beats.cfg.encoder_embed_dim, cfg.embed_dim, bias=False)
        self.melbins, self.target_length = cfg.melbins, cfg.target_length

    def fbank(self, waveform: Tensor, sample_rate: int) -> Tensor:
        """(target_length, melbins): GRAM's fbank slice of one mono waveform (`official_fbank`)."""
        with _no_autocast():
            return official_fbank(waveform.detach().float().cpu(), sample_rate, self.melbins, self.target_length)

    def prepare_input(self, value: Any, config: Any, device: torch.device) -> Tensor:
        """(B, S) waveforms at ``config.sample_rate`` (or a list of 1-D waveforms of any lengths) -> fbanks.

        Zero samples that pad a waveform are audio to the fbank: pass unpadded waveforms (a list)
        for GRAM's result on clips of different lengths.
        """
        if isinstance(value, Prepared):
            return value.tensor.to(device)
        if isinstance(value, Tensor) and value.is_floating_point() and value.dim() == 2:
            rows: Sequence[Tensor] = list(value)
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, Tensor) and v.dim() == 1 for v in value):
            rows = value
        else:
            raise ValueError(f"audio must be a float waveform tensor (B, S) or a list of 1-D waveforms, "
                             f"got {getattr(value, 'shape', type(value).__name__)}")
        return torch.stack([self.fbank(row, config.sample_rate) for row in rows]).to(device)

    def read_file(self, path: str | Path) -> Tensor:
        """(target_length, melbins): GRAM's fbank of a file's audio (`read_official_audio`)."""
        waveform, rate = read_official_audio(path)
        return self.fbank(waveform, rate)

    def forward(self, fbank: Tensor) -> Tensor:
        # no autocast: BEATs' attention multiplies the logits' rounding errors by 32
        with torch.autocast(device_type=fbank.device.type, enabled=False):
            return self.head(self.beats(fbank.to(_dtype(self))).mean(dim=1)).float()


def bert_classes() -> tuple[Any, Any]:
    """transformers' ``BertConfig`` and ``BertModel``, imported on first use.

    Import them before building on the meta device: transformers' first import creates module-level
    tensors in other libraries (torchaudio's Kaldi epsilon), which must not land on the meta device.
    """
    from transformers import BertConfig, BertModel

    return BertConfig, BertModel


def build_bert(cfg: TextConfig) -> nn.Module:
    """A transformers ``BertModel`` (no pooler, eager attention, bidirectional, no dropout) of these sizes."""
    BertConfig, BertModel = bert_classes()
    config = BertConfig(**cfg.to_dict(), hidden_act="gelu", is_decoder=False, add_cross_attention=False,
                        pad_token_id=0, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                        attn_implementation="eager")
    return BertModel(config, add_pooling_layer=False)


def load_bert_tokenizer(name_or_dir: str | Path, max_len: int) -> PretrainedTokenizer:
    """BERT's WordPiece tokenizer from a directory (``vocab.txt`` or tokenizer files) or a hub name.

    Raises:
        ValueError: naming the directory or hub name when it cannot be loaded.
    """
    from transformers import BertTokenizer

    local = Path(name_or_dir).expanduser().is_dir()
    name = str(Path(name_or_dir).expanduser()) if local else str(name_or_dir)
    try:
        tokenizer = BertTokenizer.from_pretrained(name, local_files_only=local)
    except (OSError, ValueError) as e:
        where = "the directory has no BERT tokenizer (vocab.txt or tokenizer.json)" if local else \
            "no such local directory, and the model hub is not reachable or has no such tokenizer"
        raise ValueError(f"{name}: {where} ({type(e).__name__}: {str(e).splitlines()[0]})") from e
    return PretrainedTokenizer(tokenizer, "hf", max_len)


class OfficialTextEncoder(nn.Module):
    """BERT, its [CLS] token, ``contra_head_t``: ``(ids, mask)`` -> (B, 512).

    Args:
        cfg: the architecture.
        tokenizer: BERT's tokenizer (None: text must come as ``(ids, mask)`` tensors).
    """

    def __init__(self, cfg: OfficialConfig, tokenizer: PretrainedTokenizer | None = None) -> None:
        super().__init__()
        self.bert = build_bert(TextConfig.from_dict(cfg.text))
        self.head = nn.Linear(cfg.text["hidden_size"], cfg.embed_dim, bias=False)
        self.tokenizer = tokenizer

    def prepare_input(self, value: Any, config: Any, device: torch.device) -> tuple[Tensor, Tensor]:
        """Captions (tokenised as GRAM does, `official_text`) or ``(ids, mask)`` tensors, on ``device``."""
        if isinstance(value, tuple) and len(value) == 2 and all(isinstance(x, Tensor) for x in value):
            ids, mask = value
        elif isinstance(value, (list, tuple)) and all(isinstance(t, str) for t in value):
            if self.tokenizer is None:
                raise ValueError("this model has no tokenizer: pass text as (ids, mask) tensors")
            ids, mask = official_text(self.tokenizer.tokenizer, list(value), config.max_text_len)
        else:
            raise TypeError("text must be a list of strings or an (ids, mask) pair of tensors")
        return ids.to(device), mask.to(device)

    def forward(self, inputs: tuple[Tensor, Tensor]) -> Tensor:
        ids, mask = inputs
        hidden = self.bert(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        return self.head(hidden[:, 0]).float()

    def init_buffers(self) -> None:
        """Fill BERT's non-persistent buffers (position ids, token types) after a build on the meta device."""
        emb = self.bert.embeddings
        n = self.bert.config.max_position_embeddings
        emb.register_buffer("position_ids", torch.arange(n).expand((1, -1)), persistent=False)
        emb.register_buffer("token_type_ids", torch.zeros(1, n, dtype=torch.long), persistent=False)


def official_encoders(config: Any, tokenizer: PretrainedTokenizer | None = None,
                      skip: Mapping[str, Any] = ()) -> dict[str, nn.Module]:
    """The encoders of the modalities of a `gramviz.ModelConfig` with ``official`` set, in evaluation mode."""
    cfg = OfficialConfig.from_dict(config.official)
    builders = {"video": lambda: OfficialVideoEncoder(cfg), "audio": lambda: OfficialAudioEncoder(cfg),
                "text": lambda: OfficialTextEncoder(cfg, tokenizer)}
    return {m: builders[m]().eval() for m in config.modalities if m not in skip}


def _streams(path: Path) -> tuple[bool, bool]:
    """Whether a media file has a video stream (cover art aside) and an audio stream."""
    with _open(path) as container:
        return _video_stream(container) is not None, bool(container.streams.audio)


def read_clip_inputs(encoders: Mapping[str, nn.Module], path: str | Path,
                     audio_path: str | Path | None = None) -> dict[str, Tensor | None]:
    """Each media encoder's prepared input for one clip, decoded by the encoder (``read_file``).

    As `gramviz.read_clip`: ``path`` is a video or an audio-only file; ``audio_path``, when given,
    replaces the clip's own audio. A modality the clip lacks is None.

    Raises:
        MediaError: a file that is missing, corrupt or has neither video nor audio (named).
    """
    path = Path(path)
    has_video, has_audio = _streams(path)
    if not has_video and not has_audio:
        raise MediaError(f"{path}: no video or audio stream")
    out: dict[str, Tensor | None] = {}
    if "video" in encoders:
        out["video"] = encoders["video"].read_file(path) if has_video else None
    if "audio" in encoders:
        source = audio_path if audio_path is not None else (path if has_audio else None)
        out["audio"] = encoders["audio"].read_file(source) if source is not None else None
    return out
