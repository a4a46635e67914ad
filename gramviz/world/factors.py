"""The latent factors of the generated world, their vocabularies, event classes and splits.

Every sample is a deterministic function of (seed, split, index): each split draws from its own
random stream, so splits never share a sample. Factors come in three groups:

- visible only: ``colour``, ``background``, ``distractor`` (seen, never heard);
- audible only: ``ambience``, ``offscreen`` (heard, never seen);
- tied: ``shape`` (timbre), ``size`` (pitch), ``motion`` (rhythm), ``speed`` (tempo) and
  ``onset`` (when the events start), shown by the video and heard in the audio.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

__all__ = [
    "COLOURS",
    "BACKGROUNDS",
    "AMBIENCES",
    "OFFSCREEN",
    "SHAPES",
    "SIZES",
    "MOTIONS",
    "SPEEDS",
    "ONSETS",
    "VOCABULARY",
    "VISIBLE_ONLY",
    "AUDIBLE_ONLY",
    "TIED",
    "SPLITS",
    "CLASSES",
    "HELD_OUT",
    "Factors",
    "class_id",
    "class_name",
    "class_prompt",
    "check_split",
    "sample_factors",
    "sample_rng",
]

# name -> RGB; the object is drawn in one of these
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (40, 80, 230),
    "yellow": (240, 220, 40),
    "purple": (150, 60, 200),
    "orange": (250, 140, 20),
    "white": (245, 245, 245),
    "cyan": (40, 220, 230),
}
BACKGROUNDS = ("dark", "grass", "sand", "sky", "sea", "brick")
AMBIENCES = ("quiet", "rain", "wind", "birds", "crowd", "engine")
OFFSCREEN = ("none", "dog", "phone", "bell")
SHAPES = ("circle", "square", "triangle", "star")
SIZES = ("small", "medium", "large")
MOTIONS = ("bouncing", "sliding", "growing", "spinning", "pulsing")
SPEEDS = ("slow", "fast")
ONSETS = (0.0, 0.125, 0.25, 0.375)  # seconds before the first event; one frame apart at 8 fps

VOCABULARY: dict[str, tuple] = {
    "colour": tuple(COLOURS),
    "background": BACKGROUNDS,
    "distractor": (False, True),
    "ambience": AMBIENCES,
    "offscreen": OFFSCREEN,
    "shape": SHAPES,
    "size": SIZES,
    "motion": MOTIONS,
    "speed": SPEEDS,
    "onset": ONSETS,
}
VISIBLE_ONLY = ("colour", "background", "distractor")
AUDIBLE_ONLY = ("ambience", "offscreen")
TIED = ("shape", "size", "motion", "speed", "onset")

SPLITS = ("train", "val", "test", "compositional")
_SPLIT_CODE = {name: code for code, name in enumerate(SPLITS)}

_NOUN = {"circle": "ball", "square": "block", "triangle": "triangle", "star": "star"}
# event class = (shape, motion); class_id = shape index * len(MOTIONS) + motion index
CLASSES: tuple[tuple[str, str], ...] = tuple((s, m) for s in SHAPES for m in MOTIONS)

# The compositional split: one colour per event class never occurs in train/val/test.
HELD_OUT: frozenset[tuple[str, str, str]] = frozenset(
    (s, m, tuple(COLOURS)[(3 * i + j) % len(COLOURS)]) for i, s in enumerate(SHAPES) for j, m in enumerate(MOTIONS)
)


@dataclass(frozen=True)
class Factors:
    """The latent factors of one sample (see the module docstring for the groups)."""

    colour: str
    background: str
    distractor: bool
    ambience: str
    offscreen: str
    shape: str
    size: str
    motion: str
    speed: str
    onset: float

    def __post_init__(self) -> None:
        for name, values in VOCABULARY.items():
            if getattr(self, name) not in values:
                raise ValueError(f"Factors: {name} must be one of {values}, got {getattr(self, name)!r}")

    def as_dict(self) -> dict:
        """JSON-ready ``{factor: value}``."""
        return dataclasses.asdict(self)

    def replace(self, **changes) -> Factors:
        """A copy with some factors changed, e.g. ``f.replace(motion="bouncing")``."""
        return dataclasses.replace(self, **changes)


def class_id(factors: Factors) -> int:
    """Index of the (shape, motion) event class in `CLASSES`."""
    return SHAPES.index(factors.shape) * len(MOTIONS) + MOTIONS.index(factors.motion)


def class_name(cid: int) -> str:
    """Class name, e.g. ``class_name(0) == "bouncing ball"``."""
    shape, motion = CLASSES[cid]
    return f"{motion} {_NOUN[shape]}"


def class_prompt(cid: int) -> str:
    """Class-name prompt for zero-shot classification, e.g. ``"a bouncing ball"``."""
    return f"a {class_name(cid)}"


def check_split(split: str) -> None:
    """Raise a ValueError naming ``split`` unless it is one of `SPLITS`."""
    if split not in _SPLIT_CODE:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def sample_rng(seed: int, split: str, index: int, stream: int) -> np.random.Generator:
    """The random stream ``stream`` of sample (seed, split, index).

    Streams: 0 factors, 1 captions, 2 video nuisances, 3 audio nuisances.
    """
    check_split(split)
    return np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_CODE[split], index, stream]))


def _pick(rng: np.random.Generator, values: tuple):
    return values[int(rng.integers(len(values)))]


def sample_factors(index: int, seed: int = 0, split: str = "test", distractor_prob: float = 0.5) -> Factors:
    """Draw the factors of sample ``index``; deterministic per (seed, split, index).

    train/val/test never produce a (shape, motion, colour) combination of `HELD_OUT`; the
    compositional split produces only those.

    Example:
        >>> sample_factors(3, seed=0, split="train") == sample_factors(3, seed=0, split="train")
        True
    """
    rng = sample_rng(seed, split, index, 0)
    shape, motion, colour = _pick(rng, SHAPES), _pick(rng, MOTIONS), _pick(rng, tuple(COLOURS))
    if split == "compositional":
        shape, motion, colour = sorted(HELD_OUT)[int(rng.integers(len(HELD_OUT)))]
    else:
        while (shape, motion, colour) in HELD_OUT:
            colour = _pick(rng, tuple(COLOURS))
    return Factors(
        colour=colour,
        background=_pick(rng, BACKGROUNDS),
        distractor=bool(rng.random() < distractor_prob),
        ambience=_pick(rng, AMBIENCES),
        offscreen=_pick(rng, OFFSCREEN),
        shape=shape,
        size=_pick(rng, SIZES),
        motion=motion,
        speed=_pick(rng, SPEEDS),
        onset=_pick(rng, ONSETS),
    )
