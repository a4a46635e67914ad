"""The generated audio-video-text world: short clips with sound and captions, written as real
media files, built so that text alone is ambiguous for either modality and video + audio together
identify the clip.

Factors (see `gramviz.world.factors`): visible-only colour, background and distractor;
audible-only ambience and off-screen sound; shape, size, motion, speed and onset tied across video
(what moves, how) and audio (timbre, pitch, rhythm, tempo, timing). Event class = (shape, motion).

Example:
    >>> from gramviz.world import render_sample
    >>> frames, audio, captions, factors = render_sample(0, frames=2)
    >>> frames.shape
    (2, 128, 128, 3)
"""

from .captions import class_prompt_ensemble
from .config import DEFAULT_COVERAGE, WorldConfig
from .factors import (
    AUDIBLE_ONLY,
    CLASSES,
    HELD_OUT,
    SPLITS,
    TIED,
    VISIBLE_ONLY,
    VOCABULARY,
    Factors,
    class_id,
    class_name,
    class_prompt,
    sample_factors,
)
from .oracle import oracle_report, world_oracle
from .sample import RenderedSample, Sample, draw_sample, draw_samples, render_sample
from .writer import GENERATOR_VERSION, generate, write_mp4, write_wav

__all__ = [
    "AUDIBLE_ONLY",
    "CLASSES",
    "DEFAULT_COVERAGE",
    "GENERATOR_VERSION",
    "HELD_OUT",
    "SPLITS",
    "TIED",
    "VISIBLE_ONLY",
    "VOCABULARY",
    "Factors",
    "RenderedSample",
    "Sample",
    "WorldConfig",
    "class_id",
    "class_name",
    "class_prompt",
    "class_prompt_ensemble",
    "draw_sample",
    "draw_samples",
    "generate",
    "oracle_report",
    "render_sample",
    "sample_factors",
    "world_oracle",
    "write_mp4",
    "write_wav",
]
