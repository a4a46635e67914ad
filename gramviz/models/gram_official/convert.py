"""`convert_gram`: an official GRAM model folder -> a gramviz model directory (``gramviz convert-gram``).

Steps: the highest ``ckpt/model_step_<N>.pt`` read with ``weights_only=True``; ``log/hps.json``'s
model settings; every key cleaned and mapped (`gramviz.models.gram_official.checkpoint`); the
architecture read from the tensors' shapes, with the few settings that no shape records taken from
``hps.json`` (mel bins, fbank length) and from documented defaults (EVA's head width 88, BERT's 12
heads, BEATs iter3+'s flags), each overridable; then a strict check: a required tensor that is
missing fails with the list of all of them (nothing is filled in from elsewhere, unlike GRAM's own
``strict=False`` loader), and so does a tensor in a tower that this architecture does not have.

The result is a self-contained gramviz model directory: ``model.safetensors`` (every weight, in
float32), ``config.json`` (the architecture under ``official``), ``text_tokenizer/`` (BERT's
tokenizer files) and ``card.json`` (the source checkpoint, its SHA-256 and step, the ``hps.json``
values used, the unused keys and what was folded or aliased).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from ..config import ModelConfig
from ..io import save_pretrained
from ..model import GRAMModel
from .beats import BEATsConfig
from .checkpoint import CheckpointError, clean_keys, find_checkpoint, map_keys, read_checkpoint, read_hps, sha256
from .config import BERT_HEADS, OfficialConfig, TextConfig
from .eva import EVA_HEAD_WIDTH, VisionConfig
from .model import assign_weights, meta_encoders
from .towers import load_bert_tokenizer

__all__ = ["DEFAULT_TOKENIZER", "convert_gram", "official_name", "read_architecture"]

DEFAULT_TOKENIZER = "bert-base-uncased"
_OFFICIAL_NAMES = (  # gramviz prefix -> the checkpoint's, for messages
    ("encoders.audio.beats.encoder.pos_conv.weight", "audio_encoder.encoder.pos_conv.0.weight_g/weight_v"),
    ("encoders.audio.beats.encoder.relative_attention_bias.weight",
     "audio_encoder.encoder.layers.0.self_attn.relative_attention_bias.weight"),
    ("encoders.video.visual.", "vision_encoder.visual."), ("encoders.audio.beats.", "audio_encoder."),
    ("encoders.text.bert.", "multimodal_encoder.bert."), ("encoders.text.head.", "contra_head_t.linear."),
    ("encoders.video.head.", "contra_head_v.linear."), ("encoders.audio.head.", "contra_head_a.linear."),
)


def official_name(key: str) -> str:
    """The checkpoint's name of a gramviz key (the folded and aliased BEATs tensors by their sources).

    Example:
        >>> official_name("encoders.video.head.weight")
        'contra_head_v.linear.weight'
    """
    for ours, theirs in _OFFICIAL_NAMES:
        if key.startswith(ours):
            return theirs + key[len(ours):]
    return key


def _part(mapped: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k[len(prefix):]: v for k, v in mapped.items() if k.startswith(prefix)}


def read_architecture(mapped: Mapping[str, Tensor], hps: Mapping[str, Any], frames: str = "evaluation",
                      vision_head_width: int = EVA_HEAD_WIDTH, text_heads: int = BERT_HEADS,
                      beats: Mapping[str, Any] | None = None) -> OfficialConfig:
    """The `OfficialConfig` of mapped tensors (`map_keys`): sizes from shapes, the rest as given.

    Raises:
        ValueError: a tensor the sizes are read from is missing, or the heads disagree.
    """
    vision = VisionConfig.from_state_dict(_part(mapped, "encoders.video.visual."), vision_head_width)
    try:
        audio = BEATsConfig.from_state_dict(_part(mapped, "encoders.audio.beats."), **dict(beats or {}))
    except ValueError as e:
        raise ValueError(f"the BEATs tower (audio_encoder.*, BEATs' own names below): {e}") from e
    text = TextConfig.from_state_dict(_part(mapped, "encoders.text.bert."), text_heads)
    heads = {m: tuple(mapped[f"encoders.{m}.head.weight"].shape) for m in ("text", "video", "audio")
             if f"encoders.{m}.head.weight" in mapped}  # a missing one is listed with the other missing tensors
    if not heads or len({s[0] for s in heads.values()}) != 1:
        raise ValueError(f"the heads contra_head_t/v/a must map to one dimension; found {heads}")
    return OfficialConfig(vision=vision.to_dict(), audio=audio.to_dict(), text=text.to_dict(),
                          embed_dim=next(iter(heads.values()))[0], frames=frames, melbins=hps["audio_melbins"],
                          target_length=hps["audio_target_length"])


def _check_tensors(path: Path, mapped: Mapping[str, Tensor], expected: Mapping[str, Tensor]) -> None:
    """Every required tensor present with its shape, and no unknown tensor inside the towers."""
    missing = sorted(official_name(k) for k in expected if k not in mapped)
    if missing:
        raise CheckpointError(f"{path}: {len(missing)} required tensor(s) missing (gramviz fills in nothing): "
                              + ", ".join(missing))
    unexpected = sorted(official_name(k) for k in mapped if k not in expected)
    if unexpected:
        raise CheckpointError(f"{path}: tensors that this architecture does not have (another EVA, BEATs or BERT "
                              f"variant?): " + ", ".join(unexpected))
    wrong = [f"{official_name(k)} {tuple(mapped[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
             if tuple(mapped[k].shape) != tuple(v.shape)]
    if wrong:
        raise CheckpointError(f"{path}: tensors of the wrong shape (checkpoint vs architecture): " + "; ".join(wrong))


def _tokenizer(name: str | Path, cfg: OfficialConfig):
    tokenizer = load_bert_tokenizer(name, cfg.max_text_len)
    if len(tokenizer) != cfg.text["vocab_size"]:
        raise ValueError(f"tokenizer {name}: {len(tokenizer)} tokens, but the checkpoint's BERT embeds "
                         f"{cfg.text['vocab_size']} (GRAM uses bert-base-uncased's 30,522)")
    return tokenizer


def convert_gram(directory: str | Path, out: str | Path, tokenizer: str | Path = DEFAULT_TOKENIZER,
                 frames: str = "evaluation", vision_head_width: int = EVA_HEAD_WIDTH, text_heads: int = BERT_HEADS,
                 beats: Mapping[str, Any] | None = None, command: str | None = None) -> Path:
    """Convert an official GRAM model folder into a gramviz model directory (`gramviz.load_model` loads it).

    Args:
        directory: the folder GRAM's authors publish: ``ckpt/model_step_<N>.pt`` and ``log/hps.json``.
        out: the gramviz model directory to write (replaced as a whole if it exists).
        tokenizer: BERT's tokenizer (not part of GRAM's download): a directory with ``vocab.txt`` or
            tokenizer files, or a hub name (``bert-base-uncased``, what GRAM uses).
        frames: ``"evaluation"`` (8 frames per clip, GRAM's benchmark) or ``"inference"`` (2, its
            fast-inference example).
        vision_head_width: EVA's attention head width (88 for EVA01-CLIP-g/14; no shape records it).
        text_heads: BERT's attention heads (12 for BERT-base; no shape records them).
        beats: BEATs settings with no shape (``deep_norm``, ``layer_norm_first``, ``max_distance``,
            ``gru_rel_pos``, ...), replacing the defaults of BEATs iter3+ (`BEATsConfig`).
        command: the command line, recorded in the card.

    Returns:
        The output directory.

    Raises:
        CheckpointError: no checkpoint, a checkpoint that is not plain tensors (never unpickled),
            missing required tensors (all listed), unknown tensors in the towers, or other towers.
        ValueError: a tokenizer that cannot be loaded or does not fit the checkpoint's BERT.
    """
    directory = Path(directory)
    target = Path(out).resolve()
    if target == directory.resolve() or target in directory.resolve().parents:
        raise CheckpointError(f"{out}: the output folder would replace the checkpoint folder {directory}")
    path, step = find_checkpoint(directory)
    hps_path, hps = read_hps(directory)
    mapped, unused, notes = map_keys(clean_keys(read_checkpoint(path)))
    try:
        official = read_architecture(mapped, hps, frames, vision_head_width, text_heads, beats)
    except ValueError as e:
        raise CheckpointError(f"{path}: cannot read the architecture: {e}") from e
    config = ModelConfig(**official.model_fields(), official=official.to_dict())
    bert_tokenizer = _tokenizer(tokenizer, official) if "text" in config.modalities else None
    model = GRAMModel(config, bert_tokenizer, meta_encoders(config, bert_tokenizer))
    _check_tensors(path, mapped, model.state_dict())
    assign_weights(model, mapped)
    card = {"source": {"checkpoint": str(path.resolve()), "sha256": sha256(path), "step": step,
                       "hps": str(hps_path.resolve()), "hps_values": dict(hps)},
            "tokenizer": str(tokenizer), "frames": frames, "command": command,
            "settings_without_shape": {"vision_head_width": vision_head_width, "text_heads": text_heads,
                                       "beats": {k: official.audio[k] for k in ("layer_norm_first", "deep_norm",
                                                 "max_distance", "gru_rel_pos", "relative_position_embedding")}},
            "folded": {"audio_encoder.encoder.pos_conv.0.weight_g/weight_v": "weight = g * v / ||v|| (weight norm)"},
            "aliases": {"relative_attention_bias": {"used": "layer 0",
                                                    "other_layers": notes.get("relative_attention_bias_layers", []),
                                                    "differing": notes.get("relative_attention_bias_differs", [])}},
            "unused_keys": unused}
    return save_pretrained(model, out, card)
