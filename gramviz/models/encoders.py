"""Small encoders, one per modality, fast on a CPU: video frames, log-mel audio, caption tokens.

Each encoder maps its prepared input to unpooled tokens ``(B, L, width)`` (`tokens`, used by the
DAM head) and to one vector ``(B, embed_dim)`` (``forward``: masked mean of the tokens, layer norm,
linear projection); `GRAMModel` L2-normalises the vectors.
"""

from __future__ import annotations

import abc

import torch
from torch import Tensor, nn

from .config import ModelConfig

__all__ = ["AudioEncoder", "TextEncoder", "TokenEncoder", "VideoEncoder", "build_encoder"]


def masked_mean(tokens: Tensor, mask: Tensor | None) -> Tensor:
    """Mean over the token axis of (B, L, W), counting only tokens where ``mask`` (B, L) is True."""
    if mask is None:
        return tokens.mean(dim=1)
    keep = mask.unsqueeze(-1)  # (B, L, 1); masked_fill, not a product: padding may hold anything
    return tokens.masked_fill(~keep, 0.0).sum(dim=1) / keep.sum(dim=1).clamp(min=1).to(tokens.dtype)


class TokenEncoder(nn.Module, metaclass=abc.ABCMeta):
    """Base of the built-in encoders: ``tokens`` in a subclass, pooling and projection here.

    Args:
        width: token width W.
        embed_dim: output dimension D.
    """

    def __init__(self, width: int, embed_dim: int) -> None:
        super().__init__()
        self.width = width
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, embed_dim))

    @abc.abstractmethod
    def tokens(self, inputs) -> tuple[Tensor, Tensor | None]:
        """Unpooled tokens (B, L, W) and a (B, L) bool mask of real tokens (None: all real)."""

    def pool(self, tokens: Tensor, mask: Tensor | None) -> Tensor:
        """(B, L, W) tokens -> (B, D) embedding before normalisation."""
        return self.head(masked_mean(tokens, mask))

    def forward(self, inputs) -> Tensor:
        return self.pool(*self.tokens(inputs))


def _conv_stage(c_in: int, c_out: int) -> nn.Sequential:
    """3x3 convolution with stride 2 (halves H and W), group norm, GELU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=2, padding=1),
        nn.GroupNorm(min(8, c_out), c_out),
        nn.GELU(),
    )


class TemporalBlock(nn.Module):
    """Residual 1-D convolution over the token axis of (B, L, W): pre-norm, kernel 3, dilated."""

    def __init__(self, width: int, dilation: int = 1) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.conv = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation)
        self.mix = nn.Conv1d(width, width, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm(x).transpose(1, 2)  # (B, W, L)
        h = self.mix(nn.functional.gelu(self.conv(h)))
        return x + h.transpose(1, 2)


class VideoEncoder(TokenEncoder):
    """Frames -> one token per frame -> temporal convolutions -> mean.

    Each frame goes through three stride-2 conv stages (W/2, W, 2W channels) and is pooled to a
    4 x 4 grid that is flattened (so where things are in the frame is kept: motion is a change of
    position across tokens); learned frame positions and two residual temporal convolutions mix
    the frames.

    Input: (B, T, 3, H, W) normalised frames, T <= config.num_frames. Tokens: (B, T, video_width).
    """

    def __init__(self, config: ModelConfig) -> None:
        w = config.video_width
        super().__init__(w, config.embed_dim)
        c1, c2, c3 = max(w // 2, 1), w, 2 * w  # channels of the three stages
        self.frames = nn.Sequential(
            _conv_stage(3, c1), _conv_stage(c1, c2), _conv_stage(c2, c3),
            nn.AdaptiveAvgPool2d((4, 4)), nn.Flatten(), nn.Linear(c3 * 16, w),
        )
        self.position = nn.Parameter(torch.randn(config.num_frames, w) * 0.02)
        self.temporal = nn.Sequential(TemporalBlock(w, 1), TemporalBlock(w, 2))

    def tokens(self, inputs: Tensor) -> tuple[Tensor, None]:
        b, t = inputs.shape[:2]
        if inputs.dim() != 5 or t > self.position.shape[0]:
            limit = self.position.shape[0]
            raise ValueError(f"VideoEncoder: expected (B, T<={limit}, 3, H, W), got {tuple(inputs.shape)}")
        x = self.frames(inputs.flatten(0, 1)).view(b, t, -1)  # (B, T, W)
        return self.temporal(x + self.position[:t]), None


class AudioEncoder(TokenEncoder):
    """Log-mel spectrogram -> conv stages -> one token per time step -> dilated temporal convolutions.

    The spectrogram is treated as a one-channel image; after three stride-2 stages the frequency
    axis is pooled to 8 bands and flattened into each time token (pitch is a position in it).
    Dilations 1, 2, 4 let the tokens see rhythm over about a second before the mean.

    Input: (B, n_mels, frames) normalised log-mel. Tokens: (B, ceil(frames / 8), audio_width).
    """

    def __init__(self, config: ModelConfig) -> None:
        w = config.audio_width
        super().__init__(w, config.embed_dim)
        c1, c2 = max(w // 4, 1), max(w // 2, 1)
        self.stages = nn.Sequential(
            _conv_stage(1, c1), _conv_stage(c1, c2), _conv_stage(c2, w), nn.AdaptiveAvgPool2d((8, None))
        )
        self.bands = nn.Linear(w * 8, w)
        self.temporal = nn.Sequential(TemporalBlock(w, 1), TemporalBlock(w, 2), TemporalBlock(w, 4))

    def tokens(self, inputs: Tensor) -> tuple[Tensor, None]:
        if inputs.dim() != 3:
            raise ValueError(f"AudioEncoder: expected (B, n_mels, frames), got {tuple(inputs.shape)}")
        x = self.stages(inputs.unsqueeze(1))  # (B, W, 8, F')
        x = self.bands(x.flatten(1, 2).transpose(1, 2))  # (B, F', W)
        return self.temporal(x), None


class TextEncoder(TokenEncoder):
    """Token ids -> embeddings + learned positions -> pre-norm transformer -> masked mean.

    Input: ``(ids, mask)``, both (B, L) with L <= config.max_text_len ([CLS] first).
    Tokens: (B, L, text_width) with the mask of real tokens.
    """

    def __init__(self, config: ModelConfig) -> None:
        w = config.text_width
        super().__init__(w, config.embed_dim)
        if config.vocab_size < 1:
            raise ValueError("TextEncoder: config.vocab_size is 0; build the model with a tokenizer")
        self.embed = nn.Embedding(config.vocab_size, w, padding_idx=0)
        self.position = nn.Parameter(torch.randn(config.max_text_len, w) * 0.02)
        layer = nn.TransformerEncoderLayer(
            w, config.text_heads, 4 * w, dropout=config.dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.transformer = nn.TransformerEncoder(layer, config.text_layers, enable_nested_tensor=False)

    def tokens(self, inputs: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        ids, mask = inputs
        if ids.dim() != 2 or ids.shape != mask.shape or ids.shape[1] > self.position.shape[0]:
            limit = self.position.shape[0]
            raise ValueError(f"TextEncoder: expected ids and mask of shape (B, L<={limit}), got {tuple(ids.shape)}")
        x = self.embed(ids) + self.position[: ids.shape[1]]  # (B, L, W)
        return self.transformer(x, src_key_padding_mask=~mask), mask


_BUILT_IN = {"text": TextEncoder, "video": VideoEncoder, "audio": AudioEncoder}


def build_encoder(modality: str, config: ModelConfig) -> TokenEncoder:
    """The built-in encoder of ``modality`` ("text", "video" or "audio")."""
    if modality not in _BUILT_IN:
        raise ValueError(f"no built-in encoder for modality {modality!r}; pass one in GRAMModel(encoders={{...}})")
    return _BUILT_IN[modality](config)
