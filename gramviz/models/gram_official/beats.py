"""BEATs, the audio tower of the official GRAM checkpoints, in evaluation mode.

Written for gramviz from the BEATs paper (Chen et al., 2022, "BEATs: Audio Pre-Training with
Acoustic Tokenizers", arXiv:2212.09058) and its wav2vec 2.0 / WavLM-style Transformer encoder.
The numerical details that the paper leaves open follow the official implementation
(microsoft/unilm ``beats/backbone.py``, which GRAM copies as ``model/audio_encoders/beats/beats.py``):

- 16x16 patches of the normalised fbank, flattened time-major, LayerNorm, then a linear projection;
- a weight-normalised grouped convolution as positional embedding (even kernels drop their last
  output step), added through a GELU, then LayerNorm before post-LN layers (``layer_norm_first``
  False) with DeepNorm residuals ``LN(alpha * x + f(x))``, ``alpha = (2 * layers) ** 0.25``;
- attention computed as ``((q / 32) k^T - rowmax) * 32`` with ``q`` already scaled by
  ``head_dim ** -0.5``, plus a T5-style bucketed relative position bias taken from one table in
  the first layer and gated per layer, head and query by the unscaled query (``gru_rel_pos``).

Only evaluation is modelled: there is no dropout and no layer drop, so `BEATs.forward` is
deterministic.

Example:
    >>> import torch
    >>> cfg = BEATsConfig(input_patch_size=4, embed_dim=8, encoder_layers=1, encoder_embed_dim=16,
    ...                   encoder_ffn_embed_dim=32, encoder_attention_heads=2, conv_pos=4,
    ...                   conv_pos_groups=2, num_buckets=8, max_distance=16)
    >>> BEATs(cfg)(torch.zeros(1, 16, 8)).shape
    torch.Size([1, 8, 16])
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._fields import FieldsDict

__all__ = ["BEATs", "BEATsConfig", "fold_weight_norm", "parameter_shapes", "relative_position_bucket"]

_ALPHA = 32.0  # the official attention's overflow guard: q / 32, subtract the row maximum, times 32
_LAYER_KEY = re.compile(r"^encoder\.layers\.(\d+)\.")


@dataclass
class BEATsConfig(FieldsDict):
    """Sizes and flags of a `BEATs` encoder; the defaults are those of BEATs iter3+ (AS2M), GRAM's.

    Attributes:
        input_patch_size: side of the square fbank patches (kernel and stride of the patch conv).
        embed_dim: channels of the patch embedding.
        conv_bias: whether the patch convolution has a bias.
        encoder_layers: Transformer layers.
        encoder_embed_dim: width of the Transformer.
        encoder_ffn_embed_dim: hidden width of each layer's feed-forward block.
        encoder_attention_heads: attention heads (must divide ``encoder_embed_dim``).
        layer_norm_first: pre-LN layers with a final LayerNorm (False: post-LN, LayerNorm first).
        deep_norm: scale post-LN residuals by ``(2 * encoder_layers) ** 0.25`` (DeepNorm).
        conv_pos: kernel of the convolutional positional embedding.
        conv_pos_groups: groups of that convolution.
        relative_position_embedding: add the bucketed relative position bias.
        num_buckets: buckets of that bias (half for each direction).
        max_distance: distance at which the logarithmic buckets reach the last one.
        gru_rel_pos: gate the relative position bias by the query.

    Example:
        >>> BEATsConfig.from_dict(BEATsConfig(encoder_layers=2).to_dict()).encoder_layers
        2
    """

    input_patch_size: int = 16
    embed_dim: int = 512
    conv_bias: bool = False
    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    layer_norm_first: bool = False
    deep_norm: bool = True
    conv_pos: int = 128
    conv_pos_groups: int = 16
    relative_position_embedding: bool = True
    num_buckets: int = 320
    max_distance: int = 800
    gru_rel_pos: bool = True

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Tensor], **flags) -> BEATsConfig:
        """The config of a `BEATs` state dict: every size from the tensors' shapes.

        Args:
            state: tensors under `BEATs`'s own key names.
            **flags: the settings with no shape (``deep_norm``, ``layer_norm_first``,
                ``max_distance``, ``gru_rel_pos``, ``relative_position_embedding``; the heads when
                neither the bias table nor ``grep_a`` is present); the rest take the defaults. A
                size given here must agree with the tensors.

        Raises:
            ValueError: an unknown flag, a flag that contradicts a shape, or keys that are missing
                or have the wrong shape (all named).
        """
        unknown = sorted(set(flags) - cls.field_names())
        if unknown:
            raise ValueError(f"BEATsConfig: unknown keys {unknown}")
        sizes = _sizes_from_state(state, {**cls().to_dict(), **flags})
        clash = {k: (flags[k], v) for k, v in sizes.items() if k in flags and flags[k] != v}
        if clash:
            raise ValueError(f"flags contradict the tensors' shapes (flag, shape): {clash}")
        cfg = cls(**{**flags, **sizes})
        expected = parameter_shapes(cfg)
        missing = [k for k in expected if k not in state]
        if missing:
            raise ValueError(f"BEATs state dict lacks {len(missing)} key(s): {missing}")
        wrong = {k: (tuple(state[k].shape), s) for k, s in expected.items() if tuple(state[k].shape) != s}
        if wrong:
            raise ValueError(f"BEATs tensors of the wrong shape (found, expected): {wrong}")
        return cfg


def _need(state: Mapping[str, Tensor], key: str) -> tuple[int, ...]:
    if key not in state:
        raise ValueError(f"BEATs state dict lacks {key!r}")
    return tuple(state[key].shape)


def _sizes_from_state(state: Mapping[str, Tensor], settings: dict) -> dict:
    """Every config field that a shape (or a key's presence) fixes."""
    patch = _need(state, "patch_embedding.weight")  # (embed, 1, P, P)
    width = _need(state, "encoder.layer_norm.weight")[0]
    pos = _need(state, "encoder.pos_conv.weight")  # (width, width // groups, K)
    ffn = _need(state, "encoder.layers.0.fc1.weight")[0]
    layers = 1 + max(int(m.group(1)) for key in state if (m := _LAYER_KEY.match(key)))
    sizes = {"input_patch_size": patch[-1], "embed_dim": patch[0], "conv_bias": "patch_embedding.bias" in state,
             "encoder_layers": layers, "encoder_embed_dim": width, "encoder_ffn_embed_dim": ffn,
             "conv_pos": pos[-1], "conv_pos_groups": width // pos[1]}
    if settings["gru_rel_pos"]:
        sizes["encoder_attention_heads"] = _need(state, "encoder.layers.0.self_attn.grep_a")[1]
    if settings["relative_position_embedding"]:
        sizes["num_buckets"], sizes["encoder_attention_heads"] = _need(state, "encoder.relative_attention_bias.weight")
    return sizes


def parameter_shapes(cfg: BEATsConfig) -> dict[str, tuple[int, ...]]:
    """Key -> shape of every tensor in the state dict of ``BEATs(cfg)``, without building it.

    Example:
        >>> parameter_shapes(BEATsConfig())["encoder.pos_conv.weight"]
        (768, 48, 128)
    """
    embed, width, ffn = cfg.embed_dim, cfg.encoder_embed_dim, cfg.encoder_ffn_embed_dim
    heads, size = cfg.encoder_attention_heads, cfg.input_patch_size
    shapes = {"patch_embedding.weight": (embed, 1, size, size)}
    if cfg.conv_bias:
        shapes["patch_embedding.bias"] = (embed,)
    shapes.update({"layer_norm.weight": (embed,), "layer_norm.bias": (embed,)})
    if embed != width:
        shapes.update({"post_extract_proj.weight": (width, embed), "post_extract_proj.bias": (width,)})
    shapes.update({"encoder.pos_conv.weight": (width, width // cfg.conv_pos_groups, cfg.conv_pos),
                   "encoder.pos_conv.bias": (width,), "encoder.layer_norm.weight": (width,),
                   "encoder.layer_norm.bias": (width,)})
    if cfg.relative_position_embedding:
        shapes["encoder.relative_attention_bias.weight"] = (cfg.num_buckets, heads)
    for i in range(cfg.encoder_layers):
        p = f"encoder.layers.{i}."
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            shapes.update({f"{p}self_attn.{name}.weight": (width, width), f"{p}self_attn.{name}.bias": (width,)})
        if cfg.gru_rel_pos:
            shapes.update({f"{p}self_attn.grep_linear.weight": (8, width // heads),
                           f"{p}self_attn.grep_linear.bias": (8,), f"{p}self_attn.grep_a": (1, heads, 1, 1)})
        shapes.update({f"{p}self_attn_layer_norm.weight": (width,), f"{p}self_attn_layer_norm.bias": (width,),
                       f"{p}fc1.weight": (ffn, width), f"{p}fc1.bias": (ffn,), f"{p}fc2.weight": (width, ffn),
                       f"{p}fc2.bias": (width,), f"{p}final_layer_norm.weight": (width,),
                       f"{p}final_layer_norm.bias": (width,)})
    return shapes


def fold_weight_norm(g: Tensor, v: Tensor) -> Tensor:
    """The weight of a weight-normalised conv (torch weight_norm with dim=2, as BEATs' positional conv).

    ``w = g * v / ||v||``, the norm taken over every axis but 2 (the kernel position), as
    ``torch.nn.utils.weight_norm(conv, dim=2)`` computes it at each call.

    Args:
        g: magnitudes, shape ``(1, 1, K)``.
        v: directions, shape ``(out, in / groups, K)``.

    Example:
        >>> v = torch.tensor([[[3.0, 1.0]], [[4.0, 0.0]]])
        >>> fold_weight_norm(torch.tensor([[[10.0, 2.0]]]), v)[:, 0]
        tensor([[6., 2.],
                [8., 0.]])
    """
    if v.dim() < 3:
        raise ValueError(f"a weight-normalised conv weight has at least 3 axes, got shape {tuple(v.shape)}")
    if hasattr(torch, "_weight_norm"):  # the very kernel torch's weight_norm runs: equal bit for bit
        return torch._weight_norm(v, g, 2)
    axes = tuple(a for a in range(v.dim()) if a != 2)
    return v * (g / torch.linalg.vector_norm(v, dim=axes, keepdim=True))


def relative_position_bucket(relative: Tensor, num_buckets: int, max_distance: int) -> Tensor:
    """T5-style bidirectional buckets of relative positions (key minus query), as BEATs uses them.

    Half the buckets hold positive offsets. Within each half, distances below a quarter of
    ``num_buckets`` have their own bucket; larger ones are spaced logarithmically up to
    ``max_distance``, the index truncated towards zero in float32 (the official ``.to(long)``),
    and capped at the half's last bucket.

    Example:
        >>> relative_position_bucket(torch.tensor([-3, 0, 5, 100, -900]), 320, 800)
        tensor([  3,   0, 165, 247, 159])
    """
    half = num_buckets // 2
    exact = half // 2
    distance = relative.abs()
    # same float32 operations and order as the official code, so that truncation agrees bit for bit
    spread = torch.log(distance.clamp(min=exact).float() / exact) / math.log(max_distance / exact) * (half - exact)
    large = (exact + spread.to(torch.long)).clamp(max=half - 1)
    return (relative > 0).to(torch.long) * half + torch.where(distance < exact, distance, large)


def _at_least_float32(x: Tensor) -> Tensor:
    """``x`` in float32 when its type is narrower (bfloat16, float16); float32 and float64 unchanged."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


class _SelfAttention(nn.Module):
    """Multi-head self-attention with BEATs' overflow guard and gated relative position bias."""

    def __init__(self, cfg: BEATsConfig) -> None:
        super().__init__()
        width, self.heads = cfg.encoder_embed_dim, cfg.encoder_attention_heads
        self.head_dim = width // self.heads
        self.scaling = self.head_dim ** -0.5
        self.q_proj, self.k_proj = nn.Linear(width, width), nn.Linear(width, width)
        self.v_proj, self.out_proj = nn.Linear(width, width), nn.Linear(width, width)
        self.gated = cfg.gru_rel_pos
        if self.gated:
            self.grep_linear = nn.Linear(self.head_dim, 8)
            self.grep_a = nn.Parameter(torch.ones(1, self.heads, 1, 1))

    def _gate(self, query: Tensor) -> Tensor:
        """(B, H, T, head_dim) unscaled queries -> (B, H, T, 1) factors on the position bias."""
        b, h, t, _ = query.shape
        a, c = torch.sigmoid(self.grep_linear(query).view(b, h, t, 2, 4).sum(-1)).chunk(2, dim=-1)
        return a * (c * self.grep_a - 1.0) + 2.0

    def forward(self, x: Tensor, position_bias: Tensor | None) -> Tensor:
        """(B, T, width) -> (B, T, width); ``position_bias`` (H, T, T) or None."""
        b, t, width = x.shape

        def heads(y: Tensor) -> Tensor:
            return y.view(b, t, self.heads, self.head_dim).transpose(1, 2)

        q = heads(self.q_proj(x) * self.scaling)
        k, v = heads(self.k_proj(x)), heads(self.v_proj(x))
        scores = torch.matmul(q * (1.0 / _ALPHA), k.transpose(-1, -2))
        scores = (scores - scores.amax(dim=-1, keepdim=True)) * _ALPHA
        if position_bias is not None:
            # the official gate reads q * 32 / scaling back from the scaled query
            scores = scores + (self._gate(q / self.scaling) * position_bias if self.gated else position_bias)
        probs = torch.softmax(_at_least_float32(scores), dim=-1).type_as(scores)
        return self.out_proj(torch.matmul(probs, v).transpose(1, 2).reshape(b, t, width))


class _Layer(nn.Module):
    """One Transformer layer: post-LN with DeepNorm residuals, or pre-LN (``layer_norm_first``)."""

    def __init__(self, cfg: BEATsConfig) -> None:
        super().__init__()
        width = cfg.encoder_embed_dim
        self.self_attn = _SelfAttention(cfg)
        self.self_attn_layer_norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, cfg.encoder_ffn_embed_dim)
        self.fc2 = nn.Linear(cfg.encoder_ffn_embed_dim, width)
        self.final_layer_norm = nn.LayerNorm(width)
        self.pre_norm = cfg.layer_norm_first
        self.alpha = (2 * cfg.encoder_layers) ** 0.25 if cfg.deep_norm else 1.0

    def _feed_forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(_at_least_float32(self.fc1(x))).type_as(x))  # exact GELU, float32 as officially

    def forward(self, x: Tensor, position_bias: Tensor | None) -> Tensor:
        if self.pre_norm:
            x = x + self.self_attn(self.self_attn_layer_norm(x), position_bias)
            return x + self._feed_forward(self.final_layer_norm(x))
        x = self.self_attn_layer_norm(x * self.alpha + self.self_attn(x, position_bias))
        return self.final_layer_norm(x * self.alpha + self._feed_forward(x))


class _Encoder(nn.Module):
    """Convolutional positional embedding, LayerNorm and the Transformer layers."""

    def __init__(self, cfg: BEATsConfig) -> None:
        super().__init__()
        width = cfg.encoder_embed_dim
        self.pos_conv = nn.Conv1d(width, width, cfg.conv_pos, padding=cfg.conv_pos // 2, groups=cfg.conv_pos_groups)
        self.trim = 1 if cfg.conv_pos % 2 == 0 else 0  # an even kernel gives one step too many
        self.layer_norm = nn.LayerNorm(width)
        self.num_buckets, self.max_distance = cfg.num_buckets, cfg.max_distance
        if cfg.relative_position_embedding:
            self.relative_attention_bias = nn.Embedding(cfg.num_buckets, cfg.encoder_attention_heads)
        self.layers = nn.ModuleList(_Layer(cfg) for _ in range(cfg.encoder_layers))
        self.pre_norm = cfg.layer_norm_first

    def position_bias(self, tokens: int) -> Tensor | None:
        """(H, T, T) un-gated relative position bias for ``tokens`` positions (None without one)."""
        if not hasattr(self, "relative_attention_bias"):
            return None
        table = self.relative_attention_bias.weight
        steps = torch.arange(tokens, device=table.device)
        buckets = relative_position_bucket(steps[None, :] - steps[:, None], self.num_buckets, self.max_distance)
        return self.relative_attention_bias(buckets).permute(2, 0, 1)

    def forward(self, x: Tensor) -> Tensor:
        conv = self.pos_conv(x.transpose(1, 2))
        if self.trim:
            conv = conv[..., : -self.trim]
        x = x + F.gelu(conv).transpose(1, 2)
        if not self.pre_norm:
            x = self.layer_norm(x)
        bias = self.position_bias(x.shape[1])  # once, from the first layer's table, for every layer
        for layer in self.layers:
            x = layer(x, bias)
        return self.layer_norm(x) if self.pre_norm else x


class BEATs(nn.Module):
    """The BEATs audio encoder (Chen et al., 2022) in evaluation mode, under the official module names.

    The positional convolution holds its folded weight (`fold_weight_norm`); the relative position
    bias is one table, ``encoder.relative_attention_bias`` (the official checkpoint repeats it
    under each layer). ``post_extract_proj`` exists only when ``embed_dim != encoder_embed_dim``,
    as in the official model.

    Args:
        cfg: sizes and flags; `BEATsConfig.from_state_dict` reads them from a state dict.
    """

    def __init__(self, cfg: BEATsConfig) -> None:
        super().__init__()
        if cfg.deep_norm and cfg.layer_norm_first:
            raise ValueError("deep_norm applies to post-LN layers: it excludes layer_norm_first")
        if cfg.encoder_embed_dim % cfg.encoder_attention_heads or cfg.encoder_embed_dim % cfg.conv_pos_groups:
            raise ValueError(f"encoder_embed_dim {cfg.encoder_embed_dim} must be divisible by the heads "
                             f"({cfg.encoder_attention_heads}) and conv_pos_groups ({cfg.conv_pos_groups})")
        self.cfg = cfg
        size = cfg.input_patch_size
        self.patch_embedding = nn.Conv2d(1, cfg.embed_dim, size, stride=size, bias=cfg.conv_bias)
        self.layer_norm = nn.LayerNorm(cfg.embed_dim)
        self.post_extract_proj = (nn.Linear(cfg.embed_dim, cfg.encoder_embed_dim)
                                  if cfg.embed_dim != cfg.encoder_embed_dim else None)
        self.encoder = _Encoder(cfg)

    def forward(self, fbank: Tensor) -> Tensor:
        """(B, frames, mel_bins) normalised fbank -> (B, tokens, encoder_embed_dim) (eval-mode, deterministic).

        Tokens run time-major over the patch grid: ``frames // P`` time steps of ``mel_bins // P``
        frequency patches each; frames or bins beyond a whole patch are ignored.
        """
        if fbank.dim() != 3:
            raise ValueError(f"BEATs expects (batch, frames, mel_bins), got shape {tuple(fbank.shape)}")
        patches = self.patch_embedding(fbank.unsqueeze(1))  # (B, embed, frames / P, mel_bins / P)
        tokens = self.layer_norm(patches.flatten(2).transpose(1, 2))
        if self.post_extract_proj is not None:
            tokens = self.post_extract_proj(tokens)
        return self.encoder(tokens)
