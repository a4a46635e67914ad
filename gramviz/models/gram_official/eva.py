"""EVA01-CLIP-g/14, the vision tower of the official GRAM checkpoints, in evaluation mode.

A pre-norm Vision Transformer (Fang et al., 2023, "EVA: Exploring the Limits of Masked Visual
Representation Learning at Scale"), as GRAM builds it from its EVA-CLIP config (``EVA01-CLIP-g-14``):

- a patch convolution with bias, a class token and learned absolute position embeddings;
- blocks ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``, LayerNorm eps 1e-6, exact GELU;
- attention ``softmax((q * head_dim ** -0.5) k^T) v`` whose query and value have a bias and whose
  key has none (the fused ``qkv`` projection's bias is ``cat(q_bias, 0, v_bias)``);
- a final LayerNorm; the tower returns every token (GRAM reads the class token of each frame) and
  has no projection head.

Layer scale, rotary embeddings, relative position biases, sub-LayerNorms and SwiGLU exist in other
EVA variants but not in this one. Drop-path and dropouts act only in training: left out.

Sizes come from the tensors' shapes (`VisionConfig.from_state_dict`) except the attention heads,
which no shape records: ``width // head_width`` with ``head_width`` 88 for EVA01-CLIP-g/14.

Example:
    >>> import torch
    >>> tower = EVAVisionTower(VisionConfig(image_size=28, patch_size=14, width=32, depth=2,
    ...                                     head_width=16, mlp_hidden=64))
    >>> tower(torch.zeros(3, 3, 28, 28)).shape
    torch.Size([3, 5, 32])
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._fields import FieldsDict

__all__ = ["EVA_HEAD_WIDTH", "EVAVisionTower", "VisionConfig"]

EVA_HEAD_WIDTH = 88  # EVA01-CLIP-g/14: width 1408 = 16 heads of 88
LN_EPS = 1e-6
_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.")


@dataclass(frozen=True)
class VisionConfig(FieldsDict):
    """Sizes of an `EVAVisionTower`; the defaults are EVA01-CLIP-g/14's (about 1 B parameters).

    Attributes:
        image_size: side of the square input images (224).
        patch_size: side of the square patches (14).
        width: token width (1408).
        depth: number of blocks (40).
        head_width: width of one attention head (88); ``width // head_width`` heads.
        mlp_hidden: hidden width of each block's MLP (6144 = int(1408 * 4.3637)).

    Example:
        >>> VisionConfig().heads, VisionConfig().tokens
        (16, 257)
    """

    image_size: int = 224
    patch_size: int = 14
    width: int = 1408
    depth: int = 40
    head_width: int = EVA_HEAD_WIDTH
    mlp_hidden: int = 6144

    def __post_init__(self) -> None:
        sizes = asdict(self)
        if any(not isinstance(v, int) or v < 1 for v in sizes.values()):
            raise ValueError(f"VisionConfig: every size must be a positive integer, got {sizes}")
        if self.width % self.head_width:
            raise ValueError(f"VisionConfig: head_width {self.head_width} must divide width {self.width}")
        if self.image_size % self.patch_size:
            raise ValueError(f"VisionConfig: patch_size {self.patch_size} must divide image_size {self.image_size}")

    @property
    def heads(self) -> int:
        """Attention heads."""
        return self.width // self.head_width

    @property
    def tokens(self) -> int:
        """Tokens per image: the class token and the patches."""
        return 1 + (self.image_size // self.patch_size) ** 2

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Tensor], head_width: int = EVA_HEAD_WIDTH) -> VisionConfig:
        """The sizes of a tower's state dict (keys as `EVAVisionTower` names them).

        Args:
            state: the tensors, keys ``patch_embed.proj.weight``, ``pos_embed``, ``blocks.<i>...``.
            head_width: the one size no shape records (88 for EVA01-CLIP-g/14).

        Raises:
            ValueError: a key the sizes are read from is missing, or the grid is not square.
        """
        for key in ("patch_embed.proj.weight", "pos_embed", "blocks.0.mlp.fc1.weight"):
            if key not in state:
                raise ValueError(f"the vision tower (vision_encoder.visual.*) lacks {key!r}")
        width, _, patch, _ = state["patch_embed.proj.weight"].shape
        grid = math.isqrt(state["pos_embed"].shape[1] - 1)
        if grid * grid != state["pos_embed"].shape[1] - 1:
            raise ValueError(f"pos_embed {tuple(state['pos_embed'].shape)} is not 1 + a square grid of patches")
        depth = 1 + max(int(m.group(1)) for k in state if (m := _BLOCK_KEY.match(k)))
        return cls(image_size=grid * patch, patch_size=patch, width=width, depth=depth, head_width=head_width,
                   mlp_hidden=state["blocks.0.mlp.fc1.weight"].shape[0])


class _Attention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (width // heads) ** -0.5
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(width))
        self.v_bias = nn.Parameter(torch.zeros(width))
        self.proj = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        b, n, width = x.shape
        bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        q, k, v = F.linear(x, self.qkv.weight, bias).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        attn = torch.matmul(q * self.scale, k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj(torch.matmul(attn, v).transpose(1, 2).reshape(b, n, width))


class _Mlp(nn.Module):
    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class _Block(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.width, eps=LN_EPS)
        self.attn = _Attention(cfg.width, cfg.heads)
        self.norm2 = nn.LayerNorm(cfg.width, eps=LN_EPS)
        self.mlp = _Mlp(cfg.width, cfg.mlp_hidden)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _PatchEmbed(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, cfg.width, cfg.patch_size, stride=cfg.patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class EVAVisionTower(nn.Module):
    """The EVA vision transformer: (N, 3, image_size, image_size) -> (N, tokens, width) after the final norm.

    Module names follow the official checkpoint (``patch_embed.proj``, ``cls_token``, ``pos_embed``,
    ``blocks.<i>.{norm1, attn.qkv, attn.q_bias, attn.v_bias, attn.proj, norm2, mlp.fc1, mlp.fc2}``,
    ``norm``), so its weights load under ``vision_encoder.visual.<same>``.

    Args:
        cfg: the sizes.
    """

    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.patch_embed = _PatchEmbed(cfg)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.width))
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.tokens, cfg.width))
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.width, eps=LN_EPS)

    def forward(self, images: Tensor) -> Tensor:
        """All tokens of each image, the class token first."""
        size = self.cfg.image_size
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, size, size):
            raise ValueError(f"the EVA vision tower takes (N, 3, {size}, {size}) images, got {tuple(images.shape)}")
        x = self.patch_embed(images)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.norm(x)
