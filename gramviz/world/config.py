"""Knobs of the generated world: clip format, caption coverage, noise and distractors."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .factors import VOCABULARY

__all__ = ["DEFAULT_COVERAGE", "WorldConfig"]

# Probability that a caption names each factor. Colour, background, ambience and the off-screen
# sound are always named; shape and motion usually; size and speed sometimes; onset never.
# On the default 1,000-clip test split these give expected text->clip oracle R@1 of 0.46 from
# the visible factors, 0.33 from the audible ones and 0.94 from both (see `oracle`). Naming shape
# and motion every time would push the visible figure to about 0.6: at 1,000 clips the window
# between <= 0.5 (one modality) and >= 0.9 (both) is narrow.
DEFAULT_COVERAGE: dict[str, float] = {
    "colour": 1.0,
    "background": 1.0,
    "distractor": 0.0,
    "ambience": 1.0,
    "offscreen": 1.0,
    "shape": 0.8,
    "size": 0.15,
    "motion": 0.7,
    "speed": 0.1,
    "onset": 0.0,
}


@dataclass(frozen=True)
class WorldConfig:
    """Everything besides (seed, split, index) that shapes a sample."""

    frames: int = 24  # video frames per clip
    fps: float = 8.0  # frames per second; the clip lasts frames / fps seconds
    size: int = 128  # frame height = width in pixels (even, for yuv420p)
    sample_rate: int = 16000  # audio samples per second, mono
    captions_per_clip: int = 3
    coverage: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_COVERAGE))  # mention probabilities
    video_noise: float = 0.01  # std of per-pixel grey Gaussian noise, in [0, 1] intensity units
    audio_noise: float = 0.005  # std of white noise added to the waveform before normalising
    ambience_level: float = 1.0  # gain of the ambience and off-screen sounds relative to the default mix
    distractor_prob: float = 0.5  # probability that a second, silent shape is drawn

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise ValueError(f"frames must be at least 1, got {self.frames}")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        if self.size < 16 or self.size % 2:
            raise ValueError(f"size must be an even number of pixels >= 16, got {self.size}")
        if self.sample_rate < 8000:
            raise ValueError(f"sample_rate must be at least 8000 Hz, got {self.sample_rate}")
        if self.captions_per_clip < 1:
            raise ValueError(f"captions_per_clip must be at least 1, got {self.captions_per_clip}")
        unknown = set(self.coverage) - set(VOCABULARY)
        if unknown:
            raise ValueError(f"coverage: unknown factors {sorted(unknown)}; known: {list(VOCABULARY)}")
        if any(not 0 <= p <= 1 for p in self.coverage.values()):
            raise ValueError(f"coverage: probabilities must lie in [0, 1], got {self.coverage}")
        for name in ("video_noise", "audio_noise", "ambience_level"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.distractor_prob <= 1:
            raise ValueError(f"distractor_prob must lie in [0, 1], got {self.distractor_prob}")
        object.__setattr__(self, "coverage", {**DEFAULT_COVERAGE, **self.coverage})

    @property
    def duration(self) -> float:
        """Clip length in seconds."""
        return self.frames / self.fps

    @property
    def num_samples(self) -> int:
        """Audio samples per clip."""
        return int(round(self.duration * self.sample_rate))

    def as_dict(self) -> dict:
        """JSON-ready knob values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_knobs(cls, **knobs) -> WorldConfig:
        """A config from keyword knobs, naming any unknown knob."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(knobs) - names
        if unknown:
            raise ValueError(f"unknown knobs {sorted(unknown)}; known: {sorted(names)}")
        return cls(**knobs)
