"""What a run is built from: the seeds, the model (and the weights it may start from), the AMP
dtype, AdamW and its learning-rate schedule.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..datasets import ClipRecord
from ..models import GRAMModel, ModelConfig, Tokenizer, pretrained_model
from .config import TrainConfig

__all__ = ["amp_dtype", "build_model", "build_optimizer", "build_tokenizer", "get_lr", "init_weights", "seed_everything"]


def amp_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype: on CUDA bf16 where the GPU supports it, else fp16; on the CPU only an
    explicit ``amp = "bf16"`` (fast where the CPU has bf16 matrix units, e.g. AVX512-BF16 or AMX),
    otherwise None (off). The losses always compute in float32."""
    if cfg.amp == "off" or cfg.dtype == "float64":
        return None
    if device.type != "cuda":
        return torch.bfloat16 if device.type == "cpu" and cfg.amp == "bf16" else None
    if cfg.amp == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[cfg.amp]


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's global RNGs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_tokenizer(records: Iterable[ClipRecord]) -> Tokenizer:
    """The tokenizer of a fresh run: every caption of the training clips."""
    return Tokenizer.build(c for r in records for c in r.captions)


def _cast_inputs(dtype: torch.dtype) -> Callable[[nn.Module, tuple], tuple]:
    """A forward pre-hook that casts the floating-point tensors among a module's inputs to ``dtype``."""

    def hook(module: nn.Module, args: tuple) -> tuple:
        cast = lambda x: x.to(dtype) if isinstance(x, Tensor) and x.is_floating_point() else x
        return tuple(tuple(map(cast, a)) if isinstance(a, tuple) else cast(a) for a in args)

    return hook


_BACKBONE_OPTIONS = ("embed_dim", "head", "temporal", "num_frames", "audio_seconds", "sample_rate", "max_text_len")


def build_model(cfg: TrainConfig, tokenizer: Tokenizer | None, device: torch.device) -> GRAMModel:
    """A `GRAMModel` from ``cfg.model``, its vocabulary taken from the tokenizer; with
    ``cfg.backbones``, `gramviz.pretrained_model` on them (``cfg.model`` gives its options)."""
    if cfg.backbones:
        unused = sorted(set(cfg.model) - set(_BACKBONE_OPTIONS))
        if unused or cfg.dam or cfg.dtype != "float32":
            raise ValueError(f"with backbones, the model options are {_BACKBONE_OPTIONS} (not {unused}), "
                             "without dam and in float32")
        return pretrained_model(cfg.backbones, **cfg.model).to(device)
    config = ModelConfig.from_dict({**cfg.model, "dam": cfg.dam})
    if config.vocab_size == 0:
        config = config.replace(vocab_size=len(tokenizer))
    model = GRAMModel(config, tokenizer)
    if cfg.dtype == "float64":  # preprocessing runs in float32: the encoders cast their inputs
        model = model.double()
        for encoder in model.encoders.values():
            encoder.register_forward_pre_hook(_cast_inputs(torch.float64))
    return model.to(device)


def init_weights(model: nn.Module, start: nn.Module, source: str) -> None:
    """Copy ``start``'s weights into ``model`` (a run that starts from a saved model).

    Raises:
        ValueError: naming ``source`` and the first parameter whose name or shape differs.
    """
    target, given = model.state_dict(), start.state_dict()
    for name, value in target.items():
        if name not in given or given[name].shape != value.shape:
            found = "missing" if name not in given else f"of shape {tuple(given[name].shape)}"
            raise ValueError(f"init_from {source}: parameter {name} of shape {tuple(value.shape)} is {found} there; "
                             "the model options must match the saved model's")
    model.load_state_dict({name: given[name] for name in target})


def get_lr(step: int, cfg: TrainConfig, total_steps: int) -> float:
    """Learning rate of step ``step`` (0-based): linear warmup, then cosine decay to lr * min_lr_ratio.

    Example:
        >>> cfg = TrainConfig(lr=1.0, warmup_steps=2)
        >>> [round(get_lr(s, cfg, 6), 3) for s in range(6)]
        [0.5, 1.0, 1.0, 0.854, 0.5, 0.146]
    """
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, total_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def build_optimizer(module: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not biases, norms or the temperature)."""
    params = [p for p in module.parameters() if p.requires_grad]
    groups: list[dict[str, Any]] = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    try:  # the fused kernel: one pass per tensor instead of about ten (CPU and CUDA, torch >= 2.4)
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=True)
    except (RuntimeError, ValueError):  # an older torch, or a device or dtype the fused kernel lacks
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)
