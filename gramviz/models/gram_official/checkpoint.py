"""Reading an official GRAM checkpoint folder: ``ckpt/model_step_<N>.pt`` and ``log/hps.json``.

The checkpoint is read with ``torch.load(weights_only=True)``: only tensors and plain containers
are unpickled, never code (a file whose pickle would call a function is refused). Keys are
cleaned as GRAM's own loader cleans them (``module.`` removed; ``video`` -> ``vision``,
``evaclip_model`` / ``clip_model`` -> ``vision_encoder``), then mapped to gramviz's names
(`map_keys`): every tensor is either used, or known to be unused by the embeddings and listed.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .beats import fold_weight_norm

__all__ = ["HPS_DEFAULTS", "CheckpointError", "clean_keys", "find_checkpoint", "map_keys", "read_checkpoint",
           "read_hps", "sha256"]

_STEP = re.compile(r"^model_step_(\d+)\.pt$")
# the model settings hps.json may override (GRAM's inherit keys), with GRAM's defaults
HPS_DEFAULTS = {"vision_encoder_type": "evaclip01_giant", "audio_encoder_type": "beats", "audio_melbins": 64,
                "audio_target_length": 1024, "pool_video": None}
# prefixes of the towers and heads the embeddings use: each of their tensors must be understood
VISION, AUDIO, TEXT = "vision_encoder.visual.", "audio_encoder.", "multimodal_encoder.bert."
HEADS = {"contra_head_t.": "text", "contra_head_v.": "video", "contra_head_a.": "audio"}
_LAYER_BIAS = re.compile(r"^encoder\.layers\.(\d+)\.self_attn\.relative_attention_bias\.weight$")
# tensors inside those prefixes that the embeddings do not use
_UNUSED_INSIDE = (re.compile(r"^vision_encoder\.visual\.head\."), re.compile(r"^audio_encoder\.predictor\."),
                  re.compile(r"^multimodal_encoder\.bert\.embeddings\.position_ids$"),
                  re.compile(r"^multimodal_encoder\.bert\.encoder\.layer\.\d+\.crossattention\."),
                  re.compile(r"^multimodal_encoder\.bert\.pooler\."))


class CheckpointError(ValueError):
    """An official GRAM checkpoint that cannot be converted: missing, unsafe, or not the expected model."""


def find_checkpoint(directory: str | Path) -> tuple[Path, int]:
    """The checkpoint with the highest step in ``directory/ckpt`` (as GRAM's loader picks it), and its step.

    Raises:
        CheckpointError: no such folder, or no ``model_step_<N>.pt`` in it.
    """
    folder = Path(directory) / "ckpt"
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no such folder (an official GRAM model folder holds ckpt/model_step_N.pt "
                              f"and log/hps.json)")
    steps = {int(m.group(1)): p for p in folder.iterdir() if p.is_file() and (m := _STEP.match(p.name))}
    if not steps:
        raise CheckpointError(f"{folder}: no model_step_<N>.pt checkpoint")
    step = max(steps)
    return steps[step], step


def read_checkpoint(path: Path) -> dict[str, Tensor]:
    """The tensors of a GRAM checkpoint, loaded with ``weights_only=True`` (never running code).

    Raises:
        CheckpointError: a pickle that holds more than tensors (e.g. one that would call a
            function), an unreadable file, or values that are not tensors (all named).
    """
    path = Path(path)
    try:  # memory-mapped when the file is in torch's zip format: a 5 GB checkpoint is not copied
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"{path}: refused: the checkpoint holds more than tensors (its pickle would build "
                              f"objects or call functions); gramviz reads checkpoints with weights_only=True and never "
                              f"runs code from them ({str(e).splitlines()[0]})") from e
    except (RuntimeError, OSError, EOFError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(e).__name__}: {e})") from e
    if isinstance(state, Mapping) and isinstance(state.get("model"), Mapping):
        state = state["model"]  # GRAM's loader also accepts a {"model": state_dict} wrapper
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: expected a state dict (a dict of tensors), got {type(state).__name__}")
    bad = sorted(str(k) for k, v in state.items() if not isinstance(k, str) or not isinstance(v, Tensor))
    if bad:
        raise CheckpointError(f"{path}: entries that are not tensors: {bad[:10]}{' ...' if len(bad) > 10 else ''}")
    return dict(state)


def clean_keys(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Keys as GRAM's loader rewrites them: ``module.`` removed, ``video`` -> ``vision``, the EVA-CLIP
    model names -> ``vision_encoder``; floating-point tensors in float32."""
    out = {}
    for key, value in state.items():
        key = key.replace("module.", "")
        if "video" in key:
            key = key.replace("video", "vision")
        elif "evaclip_model" in key:
            key = key.replace("evaclip_model", "vision_encoder")
        elif "clip_model" in key:
            key = key.replace("clip_model", "vision_encoder")
        out[key] = value.float() if value.is_floating_point() else value
    return out


def read_hps(directory: str | Path) -> tuple[Path, dict[str, Any]]:
    """``log/hps.json``'s model settings that GRAM's inference reads, GRAM's defaults for those absent.

    Raises:
        CheckpointError: a missing or invalid file, or towers other than EVA-CLIP and BEATs.
    """
    path = Path(directory) / "log" / "hps.json"
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (GRAM writes it next to ckpt/; it names the towers and the mel bins)")
    try:
        model_cfg = json.loads(path.read_text(encoding="utf-8")).get("model_cfg") or {}
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as e:
        raise CheckpointError(f"{path}: not a JSON object with a model_cfg table ({e})") from e
    hps = {k: model_cfg.get(k, default) for k, default in HPS_DEFAULTS.items()}
    if not str(hps["vision_encoder_type"]).startswith("evaclip") or hps["audio_encoder_type"] != "beats":
        raise CheckpointError(f"{path}: towers {hps['vision_encoder_type']!r} and {hps['audio_encoder_type']!r}; "
                              f"gramviz converts GRAM's EVA-CLIP ('evaclip01_giant') + BEATs models only")
    for key in ("audio_melbins", "audio_target_length"):
        if not isinstance(hps[key], int) or hps[key] < 1:
            raise CheckpointError(f"{path}: {key} must be a positive integer, got {hps[key]!r}")
    return path, hps


def sha256(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _audio(key: str, value: Tensor, state: Mapping[str, Tensor], notes: dict[str, Any]) -> tuple[str, Tensor] | None:
    """One BEATs tensor under BEATs' own name (None: folded into another, or an alias of layer 0's)."""
    rest = key[len(AUDIO):]
    if rest in ("encoder.pos_conv.0.weight_g", "encoder.pos_conv.0.weight_v"):
        if rest.endswith("_v"):
            return "encoder.pos_conv.weight", fold_weight_norm(state[AUDIO + "encoder.pos_conv.0.weight_g"], value)
        return None
    if rest == "encoder.pos_conv.0.bias":
        return "encoder.pos_conv.bias", value
    if (m := _LAYER_BIAS.match(rest)) is not None:
        first = state.get(AUDIO + "encoder.layers.0.self_attn.relative_attention_bias.weight")
        if m.group(1) != "0":
            notes.setdefault("relative_attention_bias_layers", []).append(int(m.group(1)))
            if first is None or first.shape != value.shape or not torch.equal(first, value):
                notes.setdefault("relative_attention_bias_differs", []).append(int(m.group(1)))
            return None
        return "encoder.relative_attention_bias.weight", value
    return rest, value


def map_keys(state: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], list[str], dict[str, Any]]:
    """Cleaned GRAM keys -> gramviz's, the unused keys, and notes on folded and aliased tensors.

    Returns:
        ``(mapped, unused, notes)``: ``mapped`` under the names of a `gramviz.GRAMModel`
        (``encoders.video.visual.*``, ``encoders.audio.beats.*``, ``encoders.text.bert.*``,
        ``encoders.<m>.head.weight``); ``unused`` sorted; ``notes`` on the BEATs position bias
        aliases (their layers, and those that differ from layer 0's: only layer 0's is used).
    """
    mapped: dict[str, Tensor] = {}
    unused: list[str] = []
    notes: dict[str, Any] = {}
    for key, value in state.items():
        if any(p.match(key) for p in _UNUSED_INSIDE):
            unused.append(key)
        elif key.startswith(VISION):
            mapped["encoders.video.visual." + key[len(VISION):]] = value
        elif key.startswith(AUDIO):
            if key == AUDIO + "encoder.pos_conv.0.weight_v" and AUDIO + "encoder.pos_conv.0.weight_g" not in state:
                mapped["encoders.audio.beats." + key[len(AUDIO):]] = value  # reported: no such tensor in BEATs
                continue
            item = _audio(key, value, state, notes)
            if item is not None:
                mapped["encoders.audio.beats." + item[0]] = item[1]
        elif key.startswith(TEXT):
            mapped["encoders.text.bert." + key[len(TEXT):]] = value
        elif (head := next((m for p, m in HEADS.items() if key.startswith(p)), None)) is not None:
            suffix = key.split(".", 1)[1]
            mapped[f"encoders.{head}.head.{'weight' if suffix == 'linear.weight' else suffix}"] = value
        else:
            unused.append(key)
    return mapped, sorted(unused), notes
