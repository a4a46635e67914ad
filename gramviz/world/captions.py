"""Captions: varied templates with synonyms and word-order variation, each naming a subset of
the factors (which subset is kept, so oracles can tell what a caption says)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .factors import CLASSES, Factors, class_prompt

__all__ = ["Caption", "class_prompt_ensemble", "make_captions"]

_SIZE = {"small": ("small", "tiny", "little"), "medium": ("medium-sized", "mid-sized"), "large": ("large", "big", "huge")}
_COLOUR = {
    "red": ("red", "scarlet"),
    "green": ("green",),
    "blue": ("blue",),
    "yellow": ("yellow",),
    "purple": ("purple", "violet"),
    "orange": ("orange",),
    "white": ("white",),
    "cyan": ("cyan", "turquoise"),
}
_SHAPE = {
    "circle": ("circle", "ball", "disc"),
    "square": ("square", "block", "box"),
    "triangle": ("triangle", "triangular shape"),
    "star": ("star", "star shape"),
}
_NO_SHAPE = ("object", "shape", "thing")
# (third person, -ing form)
_MOTION = {
    "bouncing": (("bounces", "bouncing"), ("hops", "hopping"), ("bounces up and down", "bouncing up and down")),
    "sliding": (("slides", "sliding"), ("glides", "gliding"), ("slides sideways", "sliding sideways")),
    "growing": (("grows", "growing"), ("expands", "expanding"), ("gets bigger", "getting bigger")),
    "spinning": (("spins", "spinning"), ("rotates", "rotating"), ("twirls", "twirling")),
    "pulsing": (("pulses", "pulsing"), ("throbs", "throbbing"), ("beats like a heart", "beating like a heart")),
}
_NO_MOTION = (("moves", "moving"), ("is in motion", "in motion"))
_SPEED = {"slow": ("slowly", "gently", "lazily"), "fast": ("quickly", "fast", "rapidly")}
_BACKGROUND = {
    "dark": ("on a dark background", "in the dark", "against a black backdrop"),
    "grass": ("on grass", "on a grassy field", "over green grass"),
    "sand": ("on sand", "on a sandy beach", "over the sand"),
    "sky": ("against the sky", "in front of a blue sky", "in the sky"),
    "sea": ("by the sea", "over the water", "in front of the sea"),
    "brick": ("in front of a brick wall", "against bricks", "by a brick wall"),
}
_AMBIENCE = {
    "quiet": ("in silence", "in a quiet place", "with no background noise"),
    "rain": ("in the rain", "with rain pattering", "while rain falls"),
    "wind": ("in the wind", "with wind blowing", "as the wind howls"),
    "birds": ("with birdsong", "while birds sing", "as birds chirp"),
    "crowd": ("amid a murmuring crowd", "with people chatting", "over crowd chatter"),
    "engine": ("over an engine hum", "with a motor humming", "as an engine drones"),
}
# (clause, "with ..." phrase)
_OFFSCREEN = {
    "none": (("nothing else can be heard", "with no other sound"), ("no other sound is heard", "and no other sound")),
    "dog": (("a dog barks", "with a dog barking"), ("a dog barks nearby", "with a barking dog")),
    "phone": (("a phone rings", "with a phone ringing"), ("a telephone rings", "with a ringing phone")),
    "bell": (("a church bell rings", "with a church bell ringing"), ("bells toll", "with bells tolling")),
}
_DISTRACTOR = {True: ("next to another shape", "beside a second shape"), False: ("alone", "on its own")}


@dataclass(frozen=True)
class Caption:
    """A caption and the factors it names."""

    text: str
    mentions: frozenset[str]


def _choice(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _phrases(f: Factors, said: set[str], rng: np.random.Generator) -> dict[str, str]:
    """Word choices for one caption; unnamed factors get neutral words or empty strings."""
    words = [_choice(rng, _SIZE[f.size])] if "size" in said else []
    words += [_choice(rng, _COLOUR[f.colour])] if "colour" in said else []
    words += [_choice(rng, _SHAPE[f.shape] if "shape" in said else _NO_SHAPE)]
    obj = " ".join(words)
    verb, ing = _choice(rng, _MOTION[f.motion] if "motion" in said else _NO_MOTION)
    if "speed" in said:
        adverb = _choice(rng, _SPEED[f.speed])
        verb, ing = f"{verb} {adverb}", f"{ing} {adverb}"
    off_clause, off_with = _choice(rng, _OFFSCREEN[f.offscreen]) if "offscreen" in said else ("", "")
    where = _choice(rng, _BACKGROUND[f.background]) if "background" in said else ""
    if "distractor" in said:
        where = f"{where} {_choice(rng, _DISTRACTOR[f.distractor])}".strip()
    return {
        "obj": f"{_article(obj)} {obj}",
        "verb": verb,
        "ing": ing,
        "where": where,
        "amb": _choice(rng, _AMBIENCE[f.ambience]) if "ambience" in said else "",
        "off": off_clause,
        "off_with": off_with,
    }


# Templates as fragment lists: empty fragments drop out, a leading "," is glued to the word before.
_TEMPLATES = (
    ("{obj}", "{verb}", "{where}", "{amb}", ", and {off}"),
    ("{amb}", ", {obj}", "{verb}", "{where}", "while {off}"),
    ("{where}", ", {obj}", "{verb}", "{amb}", ", {off_with}"),
    ("{off}", ", while {obj}", "{verb}", "{where}", "{amb}"),
    ("{obj}", "{ing}", "{where}", "{amb}", ", {off_with}"),
)


def _fill(template: tuple[str, ...], p: dict[str, str]) -> str:
    parts: list[str] = []
    for fragment in template:
        key = fragment[fragment.index("{") + 1 : fragment.index("}")]
        if not p[key]:
            continue
        text = fragment.format(**p)
        if text.startswith(","):
            if parts:
                parts[-1] += ","
            text = text[1:].strip()
        parts.append(text)
    sentence = " ".join(parts).strip(" ,")
    return sentence[0].upper() + sentence[1:] + "."


def make_captions(factors: Factors, coverage: dict[str, float], count: int, rng: np.random.Generator) -> list[Caption]:
    """``count`` captions of one sample; each names factor f with probability ``coverage[f]``.

    Example:
        >>> from gramviz.world.factors import sample_factors
        >>> caps = make_captions(sample_factors(0), {"colour": 1.0}, 2, np.random.default_rng(0))
        >>> len(caps), "colour" in caps[0].mentions
        (2, True)
    """
    captions = []
    for _ in range(count):
        said = {name for name, p in coverage.items() if p > 0 and rng.random() < p}
        template = _TEMPLATES[int(rng.integers(len(_TEMPLATES)))]
        captions.append(Caption(_fill(template, _phrases(factors, said, rng)), frozenset(said)))
    return captions


def class_prompt_ensemble(cid: int) -> list[str]:
    """Every way the captions name event class ``cid`` and nothing else: `class_prompt` first,
    then each shape synonym with each motion phrase (e.g. "A ball hops.", "A disc bouncing up and
    down."), for zero-shot classification by prompt ensembling (the mean of the prompts' unit
    embeddings stands for the class). Only the class's words: no colour, place or sound.

    Example:
        >>> prompts = class_prompt_ensemble(0)
        >>> prompts[:3], len(prompts)
        (['a bouncing ball', 'A circle bounces.', 'A circle bouncing.'], 19)
    """
    shape, motion = CLASSES[cid]
    prompts = [class_prompt(cid)]
    for noun in _SHAPE[shape]:
        for verb, ing in _MOTION[motion]:
            prompts += [f"{_article(noun).capitalize()} {noun} {verb}.", f"{_article(noun).capitalize()} {noun} {ing}."]
    return prompts
