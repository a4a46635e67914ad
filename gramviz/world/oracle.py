"""Factor-level oracles: how well could a perfect model of each modality retrieve, given only the
factors it can perceive? Computed from factors and caption mentions alone, without media.

Each oracle scores a candidate clip by how many of the query's known factors it matches. The
correct clip always matches all of them, so the clips tied at the top are exactly those that
agree on every known factor; with c of them, random tie-breaking puts the correct one first with
probability 1/c and within the top k with probability min(k, c)/c. The figures are these
expectations averaged over queries.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .config import WorldConfig
from .factors import AUDIBLE_ONLY, TIED, VISIBLE_ONLY, VOCABULARY, Factors
from .sample import Sample, draw_samples

__all__ = [
    "ORACLE_METHOD",
    "VIEWS",
    "expected_recall",
    "text_to_clip_oracle",
    "video_to_audio_oracle",
    "oracle_report",
    "world_oracle",
]

ORACLE_METHOD = (
    "expected recall under random tie-breaking: a query's candidates are ranked by how many of "
    "the factors the oracle knows they match; with c candidates tied at the top (the correct one "
    "among them) R@k = min(k, c) / c, averaged over queries"
)
# what each text->clip oracle may use of a caption: factors perceivable in that modality
VIEWS: dict[str, tuple[str, ...]] = {
    "visible": VISIBLE_ONLY + TIED,
    "audible": AUDIBLE_ONLY + TIED,
    "both": VISIBLE_ONLY + AUDIBLE_ONLY + TIED,
}


def _codes(factors: Sequence[Factors]) -> dict[str, np.ndarray]:
    """(N,) integer code of each factor's value per clip."""
    return {
        name: np.array([values.index(getattr(f, name)) for f in factors], dtype=np.int64)
        for name, values in VOCABULARY.items()
    }


def _tie_counts(codes: dict[str, np.ndarray], used: Sequence[str]) -> np.ndarray:
    """(N,) number of clips that agree with clip i on every factor in ``used``."""
    n = len(next(iter(codes.values())))
    key = np.zeros(n, dtype=np.int64)
    for name in sorted(used):
        key = key * len(VOCABULARY[name]) + codes[name]
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    return counts[inverse]


def expected_recall(ties: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Mean expected R@k from the (Q,) number of candidates tied at the top of each query.

    Example:
        >>> expected_recall(np.array([1, 2, 4]), ks=(1,))
        {'R@1': 0.5833333333333334}
    """
    ties = np.asarray(ties, dtype=np.float64)
    return {f"R@{k}": float(np.mean(np.minimum(k, ties) / ties)) for k in ks}


def text_to_clip_oracle(
    factors: Sequence[Factors], mentions: Sequence[Sequence[frozenset[str]]], ks: Sequence[int] = (1, 5, 10)
) -> dict[str, dict[str, float]]:
    """Caption -> clip oracles that see a caption's visible, audible or all named factors.

    Args:
        factors: the N clips' factors.
        mentions: per clip, the set of factor names each of its captions names.

    Returns:
        ``{"visible": {"R@1": ...}, "audible": {...}, "both": {...}}``.
    """
    if len(factors) != len(mentions):
        raise ValueError(f"mentions: need one list per clip ({len(factors)}), got {len(mentions)}")
    codes = _codes(factors)
    out = {}
    for view, known in VIEWS.items():
        ties: list[np.ndarray] = []
        # group captions by which factors the oracle gets from them: one tie count per group
        groups: dict[frozenset[str], list[int]] = {}
        for clip, said in enumerate(mentions):
            for m in said:
                groups.setdefault(frozenset(m) & frozenset(known), []).append(clip)
        for used, clips in groups.items():
            ties.append(_tie_counts(codes, tuple(used))[clips])
        out[view] = expected_recall(np.concatenate(ties), ks)
    return out


def video_to_audio_oracle(factors: Sequence[Factors], ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Ceiling of video -> audio retrieval: know every factor of the video, match the tied ones.

    Example:
        >>> from gramviz.world.factors import sample_factors
        >>> video_to_audio_oracle([sample_factors(i) for i in range(3)], ks=(1,))
        {'R@1': 1.0}
    """
    return expected_recall(_tie_counts(_codes(factors), TIED), ks)


def oracle_report(samples: Sequence[Sample]) -> dict:
    """The oracle figures of world.json for a list of samples (factors and mentions only)."""
    factors = [s.factors for s in samples]
    mentions = [[c.mentions for c in s.captions] for s in samples]
    counts: dict[str, int] = {}
    for said in mentions:
        for m in said:
            for name in m:
                counts[name] = counts.get(name, 0) + 1
    total = sum(len(m) for m in mentions)
    return {
        "method": ORACLE_METHOD,
        "views": {view: list(known) for view, known in VIEWS.items()},
        "text_to_clip": text_to_clip_oracle(factors, mentions),
        "video_to_audio": video_to_audio_oracle(factors),
        "video_to_audio_factors": list(TIED),
        "mention_rate": {name: counts.get(name, 0) / total for name in VOCABULARY},
    }


def world_oracle(n: int = 1000, seed: int = 0, split: str = "test", **knobs) -> dict:
    """Oracle figures of a split without rendering anything (about a second for 1,000 clips).

    Example:
        >>> r = world_oracle(50)
        >>> sorted(r["text_to_clip"])
        ['audible', 'both', 'visible']
    """
    return oracle_report(draw_samples(n, seed, split, WorldConfig.from_knobs(**knobs)))
