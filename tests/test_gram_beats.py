"""gramviz's BEATs (the audio tower of the official GRAM checkpoints) against an independent computation.

The reference below is written in another style from the BEATs paper's description: explicit
patches, LayerNorm by its formula, a per-head loop with the plain softmax((q k^T) / sqrt(d) + bias)
(no overflow guard), buckets from a Python loop over (query, key) positions, and the positional
convolution weight-normalised by torch's own parametrization.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from gramviz.models.gram_official.beats import (
    BEATs,
    BEATsConfig,
    fold_weight_norm,
    parameter_shapes,
    relative_position_bucket,
)

TINY = dict(input_patch_size=4, embed_dim=16, encoder_layers=2, encoder_embed_dim=32, encoder_ffn_embed_dim=64,
            encoder_attention_heads=4, conv_pos=8, conv_pos_groups=4, num_buckets=32, max_distance=64)
VARIANTS = {
    "official": {},  # post-LN, DeepNorm, even kernel, gated bias: GRAM's flags
    "pre_norm_odd_kernel": dict(layer_norm_first=True, deep_norm=False, conv_pos=7, conv_bias=True),
    "no_position_bias": dict(relative_position_embedding=False, gru_rel_pos=False, deep_norm=False),
}


def _random_model(flags: dict, seed: int = 0) -> tuple[BEATs, torch.Tensor, torch.Tensor]:
    """A tiny BEATs with every tensor random, and the (g, v) its positional conv was folded from."""
    cfg = BEATsConfig(**{**TINY, **flags})
    gen = torch.Generator().manual_seed(seed)
    model = BEATs(cfg)
    state = {}
    for key, value in model.state_dict().items():
        noise = torch.randn(value.shape, generator=gen)
        if key.endswith("layer_norm.weight"):
            state[key] = 1.0 + 0.3 * noise
        elif key.endswith("grep_a"):
            state[key] = 0.5 + 1.5 * torch.rand(value.shape, generator=gen)
        elif key == "encoder.relative_attention_bias.weight":
            state[key] = noise
        else:
            state[key] = noise * (0.5 if value.dim() == 1 else value[0].numel() ** -0.5)
    width, k = cfg.encoder_embed_dim, cfg.conv_pos
    v = torch.randn(width, width // cfg.conv_pos_groups, k, generator=gen)
    g = 0.5 + torch.rand(1, 1, k, generator=gen)
    state["encoder.pos_conv.weight"] = fold_weight_norm(g, v)
    model.load_state_dict(state, strict=True)
    return model.eval(), g, v


def _layer_norm(x, w, b):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + 1e-5) * w + b


def _gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def _bucket(rel: int, num_buckets: int, max_distance: int) -> int:
    """T5's bidirectional bucket of one relative position, with Python's math."""
    half = num_buckets // 2
    base = half if rel > 0 else 0
    n, exact = abs(rel), half // 2
    if n < exact:
        return base + n
    return base + min(half - 1, exact + int(math.log(n / exact) / math.log(max_distance / exact) * (half - exact)))


def _attention(x, s, p, bias, cfg):
    """Per-head loop; ``bias`` is the (heads, T, T) table lookup, gated here per query."""
    heads = cfg.encoder_attention_heads
    d = cfg.encoder_embed_dim // heads
    q, k, v = (x @ s[f"{p}{n}_proj.weight"].T + s[f"{p}{n}_proj.bias"] for n in "qkv")
    outputs = []
    for h in range(heads):
        qh, kh, vh = (t[:, h * d:(h + 1) * d] for t in (q, k, v))
        scores = qh @ kh.T / math.sqrt(d)
        if bias is not None and cfg.gru_rel_pos:
            z = qh @ s[f"{p}grep_linear.weight"].T + s[f"{p}grep_linear.bias"]
            gate_a, gate_b = torch.sigmoid(z[:, :4].sum(-1)), torch.sigmoid(z[:, 4:].sum(-1))
            factor = gate_a * (gate_b * s[f"{p}grep_a"][0, h, 0, 0] - 1.0) + 2.0
            scores = scores + factor[:, None] * bias[h]
        elif bias is not None:
            scores = scores + bias[h]
        outputs.append(torch.softmax(scores, dim=-1) @ vh)
    return torch.cat(outputs, dim=-1) @ s[f"{p}out_proj.weight"].T + s[f"{p}out_proj.bias"]


def _reference_one(fbank, model, g, v):
    """One (frames, mel_bins) fbank -> (tokens, width), float64, from the weights alone."""
    cfg, s = model.cfg, {k: t.double() for k, t in model.state_dict().items()}
    size, (frames, bins) = cfg.input_patch_size, fbank.shape
    rows, cols = frames // size, bins // size
    grid = fbank[: rows * size, : cols * size].reshape(rows, size, cols, size)
    x = torch.einsum("tpfq,epq->tfe", grid, s["patch_embedding.weight"][:, 0]).reshape(rows * cols, -1)
    x = x + s.get("patch_embedding.bias", 0.0)
    x = _layer_norm(x, s["layer_norm.weight"], s["layer_norm.bias"])
    x = x @ s["post_extract_proj.weight"].T + s["post_extract_proj.bias"]
    width, tokens = cfg.encoder_embed_dim, x.shape[0]
    conv = nn.Conv1d(width, width, cfg.conv_pos, padding=cfg.conv_pos // 2, groups=cfg.conv_pos_groups).double()
    conv = nn.utils.parametrizations.weight_norm(conv, dim=2)
    with torch.no_grad():
        conv.parametrizations.weight.original0.copy_(g)
        conv.parametrizations.weight.original1.copy_(v)
        conv.bias.copy_(s["encoder.pos_conv.bias"])
        x = x + _gelu(conv(x.T[None])[0, :, :tokens].T)  # the first T outputs: "same" padding
    norm = (s["encoder.layer_norm.weight"], s["encoder.layer_norm.bias"])
    bias = None
    if cfg.relative_position_embedding:
        table = s["encoder.relative_attention_bias.weight"]
        bias = torch.stack([torch.stack([table[_bucket(j - i, cfg.num_buckets, cfg.max_distance)]
                                         for j in range(tokens)]) for i in range(tokens)]).permute(2, 0, 1)
    alpha = (2 * cfg.encoder_layers) ** 0.25 if cfg.deep_norm else 1.0
    x = x if cfg.layer_norm_first else _layer_norm(x, *norm)
    for i in range(cfg.encoder_layers):
        p = f"encoder.layers.{i}."
        ln1 = (s[f"{p}self_attn_layer_norm.weight"], s[f"{p}self_attn_layer_norm.bias"])
        ln2 = (s[f"{p}final_layer_norm.weight"], s[f"{p}final_layer_norm.bias"])

        def ffn(y, p=p):
            return _gelu(y @ s[f"{p}fc1.weight"].T + s[f"{p}fc1.bias"]) @ s[f"{p}fc2.weight"].T + s[f"{p}fc2.bias"]

        if cfg.layer_norm_first:
            x = x + _attention(_layer_norm(x, *ln1), s, f"{p}self_attn.", bias, cfg)
            x = x + ffn(_layer_norm(x, *ln2))
        else:
            x = _layer_norm(alpha * x + _attention(x, s, f"{p}self_attn.", bias, cfg), *ln1)
            x = _layer_norm(alpha * x + ffn(x), *ln2)
    return _layer_norm(x, *norm) if cfg.layer_norm_first else x


def _fbank(seed: int = 1) -> torch.Tensor:
    # 50 frames x 18 bins: 12 x 4 patches = 48 tokens (the leftover frames and bins are dropped),
    # relative distances up to 47 reach several logarithmic buckets of num_buckets=32, max_distance=64
    return torch.randn(2, 50, 18, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_forward_equals_the_independent_reference(variant):
    model, g, v = _random_model(VARIANTS[variant])
    g, v, fbank = g.double(), v.double(), _fbank()
    model64 = copy.deepcopy(model).double()
    with torch.no_grad():
        model64.encoder.pos_conv.weight.copy_(fold_weight_norm(g, v))  # folded in float64 too
        expected = torch.stack([_reference_one(f, model64, g, v) for f in fbank.double()])
        got64 = model64(fbank.double())
        got32 = model(fbank)
    assert got64.shape == (2, 48, 32)
    torch.testing.assert_close(got64, expected, atol=1e-10, rtol=0)
    torch.testing.assert_close(got32, expected.float(), atol=1e-5, rtol=0)


def test_relative_position_buckets_by_hand():
    # GRAM's flags: 320 buckets (160 per direction, 80 exact), max_distance 800
    # e.g. +100: 160 + 80 + floor(log(100 / 80) / log(800 / 80) * 80) = 160 + 80 + floor(7.75) = 247
    rel = torch.tensor([0, -1, 1, -79, 79, 80, -80, 100, 255, -255, 799, 800, 5000, -5000])
    expected = [0, 1, 161, 79, 239, 240, 80, 247, 280, 120, 319, 319, 319, 159]
    assert relative_position_bucket(rel, 320, 800).tolist() == expected


def test_relative_position_buckets_match_a_python_loop():
    for buckets, distance in ((32, 64), (320, 800)):
        rel = torch.arange(-300, 301)
        got = relative_position_bucket(rel, buckets, distance).tolist()
        assert got == [_bucket(r, buckets, distance) for r in rel.tolist()]


def test_fold_weight_norm_equals_torch_weight_norm_with_dim_2():
    conv = nn.utils.parametrizations.weight_norm(nn.Conv1d(12, 12, 6, groups=3), dim=2)
    with torch.no_grad():
        conv.parametrizations.weight.original0.copy_(torch.rand(1, 1, 6) + 0.5)
    g, v = conv.parametrizations.weight.original0, conv.parametrizations.weight.original1
    assert g.shape == (1, 1, 6)
    folded = fold_weight_norm(g, v)
    assert torch.equal(folded, conv.weight)
    for k in range(6):  # by the formula, one kernel position at a time
        expected = g[0, 0, k].double() * v[:, :, k].double() / v[:, :, k].double().norm()
        torch.testing.assert_close(folded[:, :, k].double(), expected, atol=1e-7, rtol=0)


def test_two_forward_passes_are_bit_identical_in_either_mode():
    model, _, _ = _random_model({})
    fbank = _fbank(2)
    with torch.no_grad():
        first = model(fbank)
        assert torch.equal(first, model(fbank))
        assert torch.equal(first, model.train()(fbank))  # no dropout or layer drop to switch on


def _expected_keys(layers: int) -> set[str]:
    keys = {"patch_embedding.weight", "layer_norm.weight", "layer_norm.bias", "post_extract_proj.weight",
            "post_extract_proj.bias", "encoder.pos_conv.weight", "encoder.pos_conv.bias",
            "encoder.layer_norm.weight", "encoder.layer_norm.bias", "encoder.relative_attention_bias.weight"}
    for i in range(layers):
        p = f"encoder.layers.{i}."
        keys |= {f"{p}self_attn.{n}.{t}" for n in ("q_proj", "k_proj", "v_proj", "out_proj", "grep_linear")
                 for t in ("weight", "bias")}
        keys |= {f"{p}self_attn.grep_a"}
        keys |= {f"{p}{n}.{t}" for n in ("self_attn_layer_norm", "fc1", "fc2", "final_layer_norm")
                 for t in ("weight", "bias")}
    return keys


def test_the_state_dict_has_exactly_the_documented_keys():
    model = BEATs(BEATsConfig(**TINY))
    assert set(model.state_dict()) == _expected_keys(2)
    assert not [name for name, _ in model.named_buffers()]
    assert model.state_dict()["encoder.layers.0.self_attn.grep_a"].shape == (1, 4, 1, 1)
    assert model.state_dict()["encoder.pos_conv.weight"].shape == (32, 8, 8)
    assert set(parameter_shapes(BEATsConfig())) == _expected_keys(12)
    for flags in VARIANTS.values():
        cfg = BEATsConfig(**{**TINY, **flags})
        assert parameter_shapes(cfg) == {k: tuple(t.shape) for k, t in BEATs(cfg).state_dict().items()}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_from_state_dict_recovers_every_size(variant):
    flags = VARIANTS[variant]
    state = _random_model(flags)[0].state_dict()
    shapeless = {k: v for k, v in flags.items() if k in ("layer_norm_first", "deep_norm", "relative_position_embedding",
                                                          "gru_rel_pos")}
    if "encoder.relative_attention_bias.weight" not in state:  # no table: heads and buckets are flags
        shapeless.update(encoder_attention_heads=4, num_buckets=32)
    cfg = BEATsConfig.from_state_dict(state, max_distance=64, **shapeless)
    assert cfg == BEATsConfig(**{**TINY, **flags})
    assert BEATsConfig.from_state_dict(parameter_shapes_as_tensors(BEATsConfig())) == BEATsConfig()


def parameter_shapes_as_tensors(cfg: BEATsConfig) -> dict[str, torch.Tensor]:
    return {k: torch.empty(shape) for k, shape in parameter_shapes(cfg).items()}


@pytest.mark.parametrize("key", ["encoder.layers.1.fc2.bias", "encoder.relative_attention_bias.weight",
                                 "encoder.layers.0.self_attn.grep_a", "encoder.pos_conv.weight",
                                 "post_extract_proj.weight"])
def test_from_state_dict_names_a_missing_key(key):
    state = dict(_random_model({})[0].state_dict())
    del state[key]
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        BEATsConfig.from_state_dict(state, max_distance=64)


def test_from_state_dict_refuses_unknown_or_contradicting_flags_and_wrong_shapes():
    state = dict(_random_model({})[0].state_dict())
    with pytest.raises(ValueError, match="unknown"):
        BEATsConfig.from_state_dict(state, dropout=0.1)
    with pytest.raises(ValueError, match="encoder_layers"):
        BEATsConfig.from_state_dict(state, encoder_layers=12)
    state["encoder.layers.1.fc1.weight"] = torch.zeros(65, 32)
    with pytest.raises(ValueError, match=r"encoder\.layers\.1\.fc1\.weight"):
        BEATsConfig.from_state_dict(state)


def test_config_round_trip_and_validation():
    cfg = BEATsConfig(**TINY)
    assert BEATsConfig.from_dict(cfg.to_dict()) == cfg
    assert BEATsConfig().max_distance == 800 and BEATsConfig().deep_norm
    with pytest.raises(ValueError, match="activation_fn"):
        BEATsConfig.from_dict({**cfg.to_dict(), "activation_fn": "gelu"})
    with pytest.raises(ValueError, match="layer_norm_first"):
        BEATs(BEATsConfig(**{**TINY, "layer_norm_first": True}))
    with pytest.raises(ValueError, match="batch, frames, mel_bins"):
        BEATs(BEATsConfig(**TINY))(torch.zeros(50, 18))
