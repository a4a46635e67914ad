"""One sample of the world, in memory: its factors and captions, and its rendered frames and audio."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .audio import render_audio
from .captions import Caption, make_captions
from .config import WorldConfig
from .factors import Factors, class_id, sample_factors, sample_rng
from .video import render_frames

__all__ = ["Sample", "RenderedSample", "sample_id", "draw_sample", "draw_samples", "render_sample"]


def sample_id(split: str, index: int) -> str:
    """``"test-000012"`` style id."""
    return f"{split}-{index:06d}"


@dataclass(frozen=True)
class Sample:
    """Everything about one sample except its media."""

    id: str
    index: int
    split: str
    seed: int
    factors: Factors
    captions: tuple[Caption, ...]

    @property
    def class_id(self) -> int:
        """Index of the (shape, motion) event class."""
        return class_id(self.factors)


class RenderedSample(NamedTuple):
    """A rendered sample: unpacks as ``frames, audio, captions, factors``."""

    frames: np.ndarray  # (T, H, W, 3) uint8
    audio: np.ndarray  # (S,) float32 in [-1, 1]
    captions: list[str]
    factors: Factors


def _check_index(index: int, seed: int) -> None:
    if int(index) != index or index < 0:
        raise ValueError(f"index must be a non-negative integer, got {index!r}")
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def draw_sample(
    index: int, seed: int = 0, split: str = "test", config: WorldConfig | None = None, factors: Factors | None = None
) -> Sample:
    """Factors and captions of sample ``index``; deterministic per (seed, split, index).

    Args:
        factors: use these factors instead of the drawn ones (captions are made for them).

    Example:
        >>> s = draw_sample(12, seed=0, split="test")
        >>> s.id, len(s.captions)
        ('test-000012', 3)
    """
    _check_index(index, seed)
    config = config or WorldConfig()
    if factors is None:
        factors = sample_factors(index, seed, split, config.distractor_prob)
    rng = sample_rng(seed, split, index, 1)
    captions = make_captions(factors, config.coverage, config.captions_per_clip, rng)
    return Sample(sample_id(split, index), index, split, seed, factors, tuple(captions))


def draw_samples(n: int, seed: int = 0, split: str = "test", config: WorldConfig | None = None) -> list[Sample]:
    """Samples 0..n-1 of a split, without rendering (fast: about 2,000 per second)."""
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return [draw_sample(i, seed, split, config) for i in range(n)]


def render_sample(
    index: int = 0,
    seed: int = 0,
    split: str = "test",
    factors: Factors | None = None,
    config: WorldConfig | None = None,
    **knobs,
) -> RenderedSample:
    """Render one sample in memory: ``frames, audio, captions, factors``.

    Args:
        index, seed, split: which sample (its factors, captions and nuisances).
        factors: render these factors instead of the drawn ones.
        config: the world's knobs; or give knobs as keywords (``frames=8, video_noise=0``).

    Example:
        >>> frames, audio, captions, factors = render_sample(3, frames=4)
        >>> frames.shape, audio.shape
        ((4, 128, 128, 3), (8000,))
    """
    if config is not None and knobs:
        raise ValueError("render_sample: pass either config or knobs, not both")
    config = config or WorldConfig.from_knobs(**knobs)
    sample = draw_sample(index, seed, split, config, factors)
    frames = render_frames(sample.factors, config, sample_rng(seed, split, index, 2))
    audio = render_audio(sample.factors, config, sample_rng(seed, split, index, 3))
    return RenderedSample(frames, audio, [c.text for c in sample.captions], sample.factors)
