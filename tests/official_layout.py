"""Tiny random GRAM checkpoints in the official layout, written as GRAM's trainer writes them.

The key names are spelled out here from GRAM's modules (EVA-CLIP's ``visual``, BEATs as unilm
names it, GRAM's BERT with its cross-attention, the heads of ``model/gram.py``), not taken from
gramviz: ``module.`` prefixes (DDP), the other heads and the ITM head, the frame and type
embeddings, EVA-CLIP's text tower and projection head, the weight-normalised positional
convolution (``weight_g``, ``weight_v``) and BEATs' relative position bias repeated under every
layer (one tensor, aliased). ``write_official`` saves ``ckpt/model_step_<N>.pt`` files and
``log/hps.json``; a ``vocab.txt`` tokenizer folder goes with them.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

WORDS = ["a", "the", "dog", "cat", "is", "bark", "##ing", "red", "ball", "bounce", "##s", "on", "grass", "water",
         "car", "blue", "small", "big", "sings", "bird"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
EMBED = 24
VISION = dict(width=32, depth=2, patch=14, image=28, head_width=16, mlp=139)
AUDIO = dict(patch=16, embed=16, width=32, ffn=64, heads=4, layers=3, conv_pos=8, groups=4, buckets=32)
TEXT = dict(hidden=32, layers=2, heads=4, intermediate=64, positions=48, types=2)
HPS = {"run_cfg": {"checkpoint": ""}, "model_cfg": {"vision_encoder_type": "evaclip01_giant",
                                                    "audio_encoder_type": "beats", "audio_target_length": 128},
       "data_cfg": {}, "local_rank": 0}


def _ln(state, prefix, width, g):
    state[f"{prefix}.weight"] = 1.0 + 0.2 * torch.randn(width, generator=g)
    state[f"{prefix}.bias"] = 0.1 * torch.randn(width, generator=g)


def _linear(state, prefix, n_out, n_in, g, bias=True):
    state[f"{prefix}.weight"] = torch.randn(n_out, n_in, generator=g) * n_in ** -0.5
    if bias:
        state[f"{prefix}.bias"] = 0.1 * torch.randn(n_out, generator=g)


def vision_state(g: torch.Generator) -> dict[str, torch.Tensor]:
    """``vision_encoder.*``: EVA-CLIP's visual tower with its head, its text tower (a few keys), logit_scale."""
    w, p, grid = VISION["width"], VISION["patch"], VISION["image"] // VISION["patch"]
    s = {"visual.patch_embed.proj.weight": torch.randn(w, 3, p, p, generator=g) * (3 * p * p) ** -0.5,
         "visual.patch_embed.proj.bias": 0.1 * torch.randn(w, generator=g),
         "visual.cls_token": 0.5 * torch.randn(1, 1, w, generator=g),
         "visual.pos_embed": 0.5 * torch.randn(1, 1 + grid * grid, w, generator=g)}
    for i in range(VISION["depth"]):
        b = f"visual.blocks.{i}"
        _ln(s, f"{b}.norm1", w, g)
        s[f"{b}.attn.qkv.weight"] = torch.randn(3 * w, w, generator=g) * w ** -0.5
        s[f"{b}.attn.q_bias"] = 0.2 * torch.randn(w, generator=g)
        s[f"{b}.attn.v_bias"] = 0.2 * torch.randn(w, generator=g)
        _linear(s, f"{b}.attn.proj", w, w, g)
        _ln(s, f"{b}.norm2", w, g)
        _linear(s, f"{b}.mlp.fc1", VISION["mlp"], w, g)
        _linear(s, f"{b}.mlp.fc2", w, VISION["mlp"], g)
    _ln(s, "visual.norm", w, g)
    _linear(s, "visual.head", 20, w, g)
    s["text.token_embedding.weight"] = torch.randn(50, 16, generator=g)
    s["text.positional_embedding"] = torch.randn(8, 16, generator=g)
    s["logit_scale"] = torch.tensor(4.6)
    return {f"vision_encoder.{k}": v for k, v in s.items()}


def audio_state(g: torch.Generator) -> dict[str, torch.Tensor]:
    """``audio_encoder.*``: BEATs under unilm's names, pos_conv weight-normalised, the bias table aliased."""
    a, w = AUDIO, AUDIO["width"]
    s = {"patch_embedding.weight": torch.randn(a["embed"], 1, a["patch"], a["patch"], generator=g) / a["patch"]}
    _ln(s, "layer_norm", a["embed"], g)
    _linear(s, "post_extract_proj", w, a["embed"], g)
    s["encoder.pos_conv.0.weight_g"] = 0.5 + torch.rand(1, 1, a["conv_pos"], generator=g)
    s["encoder.pos_conv.0.weight_v"] = torch.randn(w, w // a["groups"], a["conv_pos"], generator=g)
    s["encoder.pos_conv.0.bias"] = 0.1 * torch.randn(w, generator=g)
    _ln(s, "encoder.layer_norm", w, g)
    table = torch.randn(a["buckets"], a["heads"], generator=g)
    for i in range(a["layers"]):
        b = f"encoder.layers.{i}"
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            _linear(s, f"{b}.self_attn.{name}", w, w, g)
        _linear(s, f"{b}.self_attn.grep_linear", 8, w // a["heads"], g)
        s[f"{b}.self_attn.grep_a"] = 0.5 + 1.5 * torch.rand(1, a["heads"], 1, 1, generator=g)
        s[f"{b}.self_attn.relative_attention_bias.weight"] = table  # one tensor under every layer
        _ln(s, f"{b}.self_attn_layer_norm", w, g)
        _linear(s, f"{b}.fc1", a["ffn"], w, g)
        _linear(s, f"{b}.fc2", w, a["ffn"], g)
        _ln(s, f"{b}.final_layer_norm", w, g)
    return {f"audio_encoder.{k}": v for k, v in s.items()}


def text_state(g: torch.Generator) -> dict[str, torch.Tensor]:
    """``multimodal_encoder.*``: GRAM's BERT (persistent position_ids, cross-attention) and its MLM head."""
    t, h = TEXT, TEXT["hidden"]
    s = {"bert.embeddings.word_embeddings.weight": torch.randn(len(VOCAB), h, generator=g),
         "bert.embeddings.position_embeddings.weight": 0.5 * torch.randn(t["positions"], h, generator=g),
         "bert.embeddings.token_type_embeddings.weight": 0.5 * torch.randn(t["types"], h, generator=g),
         "bert.embeddings.position_ids": torch.arange(t["positions"]).expand(1, -1).clone()}
    _ln(s, "bert.embeddings.LayerNorm", h, g)
    for i in range(t["layers"]):
        b = f"bert.encoder.layer.{i}"
        for part in ("attention", "crossattention"):
            for name in ("query", "key", "value"):
                _linear(s, f"{b}.{part}.self.{name}", h, h, g)
            _linear(s, f"{b}.{part}.output.dense", h, h, g)
            _ln(s, f"{b}.{part}.output.LayerNorm", h, g)
        _linear(s, f"{b}.intermediate.dense", t["intermediate"], h, g)
        _linear(s, f"{b}.output.dense", h, t["intermediate"], g)
        _ln(s, f"{b}.output.LayerNorm", h, g)
    _linear(s, "cls.predictions.transform.dense", h, h, g)
    _ln(s, "cls.predictions.transform.LayerNorm", h, g)
    s["cls.predictions.bias"] = torch.zeros(len(VOCAB))
    return {f"multimodal_encoder.{k}": v for k, v in s.items()}


def heads_state(g: torch.Generator) -> dict[str, torch.Tensor]:
    """GRAM's heads (those of the embeddings and the others), the ITM head, frame and type embeddings."""
    v, a, t = VISION["width"], AUDIO["width"], TEXT["hidden"]
    s: dict[str, torch.Tensor] = {}
    for name, width in (("t", t), ("s", t), ("v", v), ("a", a), ("d", v)):
        _linear(s, f"contra_head_{name}.linear", EMBED, width, g, bias=False)
    for name, width in (("va", v + a), ("vs", v + t), ("vas", v + a + t)):
        _linear(s, f"contra_head_{name}", EMBED, width, g)
    s["contra_temp"] = torch.tensor(0.07)
    _linear(s, "itm_head.linear1", t, t, g)
    _ln(s, "itm_head.layernorm", t, g)
    _linear(s, "itm_head.linear2", 2, t, g)
    s["vision_frame_embedding"] = torch.randn(1, 8, t, generator=g)
    s["audio_frame_embedding"] = torch.randn(1, 1, t, generator=g)
    for name, width in (("vision", v), ("audio", a), ("subtitle", t)):
        _linear(s, f"hidden_trans_{name}_multimodal.0", t, width, g)
        _ln(s, f"hidden_trans_{name}_multimodal.1", t, g)
        s[f"{name}_type_embeddings"] = torch.randn(1, 1, t, generator=g)
    return s


def official_state(seed: int) -> dict[str, torch.Tensor]:
    """A whole tiny GRAM state dict (keys without ``module.``)."""
    g = torch.Generator().manual_seed(seed)
    return {**vision_state(g), **audio_state(g), **text_state(g), **heads_state(g)}


def write_vocab(directory: Path) -> Path:
    """A BERT ``vocab.txt`` folder whose size is the tiny BERT's vocabulary."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return directory


def write_official(directory: Path, steps: dict[int, int] | None = None, hps: dict | None = None,
                   drop: tuple[str, ...] = (), extra: dict | None = None) -> dict[str, torch.Tensor]:
    """Write ``ckpt/model_step_<N>.pt`` for each ``{N: seed}`` (keys prefixed ``module.``) and ``log/hps.json``.

    Returns:
        The state of the highest step, without prefixes (before ``drop`` and ``extra``).
    """
    steps = steps or {3: 1, 7: 2}
    (directory / "ckpt").mkdir(parents=True, exist_ok=True)
    (directory / "log").mkdir(parents=True, exist_ok=True)
    (directory / "log" / "hps.json").write_text(json.dumps(hps or HPS), encoding="utf-8")
    states = {}
    for step, seed in steps.items():
        state = official_state(seed)
        states[step] = state
        saved = {f"module.{k}": v for k, v in {**state, **(extra or {})}.items() if k not in drop}
        torch.save(saved, directory / "ckpt" / f"model_step_{step}.pt")
    return states[max(steps)]
