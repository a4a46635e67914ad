"""Tuple geometry: how one sample's embeddings align (`tuple_alignment`), each clip's matching
tuple, the volumes of matching and non-matching tuples (one rule for the negatives, named by the
caller), the worst-aligned clips, the volumes of random unit vectors; plus Markdown tables and
finding a project file from a notebook's working directory.

Pure functions of tensors (torch only), shared by the app, the experiment runner, the teaching
notebooks, scripts and tests.

Example:
    >>> t = torch.eye(3)
    >>> positives, negatives = matching_volumes(t, t, t)
    >>> positives.tolist(), negatives.shape
    ([0.0, 0.0, 0.0], torch.Size([6]))
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import check_vectors
from .gram import base_height, volume, volume_matrix
from .metrics import retrieval_ranks
from .modalities import AUDIO, MODALITIES, TEXT, VIDEO, in_stacking_order
from .scores import score_matrix

__all__ = [
    "COLLAPSE_CLIPS",
    "ClipTuples",
    "clip_tuples",
    "collapse_metrics",
    "find_upwards",
    "markdown_table",
    "matching_volumes",
    "NEGATIVE_RULES",
    "negative_partners",
    "random_unit_volumes",
    "tuple_alignment",
    "worst_aligned",
]

# How non-matching tuples are formed from N matching ones (anchor i with candidate j != i):
#   "all"      every j != i: the off-diagonal of the volume matrix, N * (N - 1) tuples
#   "shifted"  j = i - 1 (cyclically): one per anchor, deterministic
#   "random"   one j != i per anchor, drawn uniformly with a seed
NEGATIVE_RULES = ("all", "shifted", "random")


def random_unit_volumes(dim: int, n: int = 1000, k: int = 3, seed: int = 0) -> Tensor:
    """Volumes of ``n`` tuples of ``k`` independent, uniformly random unit vectors in R^dim.

    Unrelated vectors in high dimension are nearly orthogonal, so their volume crowds near 1:
    this is where GRAM's non-matching tuples sit.

    Args:
        dim: the dimension D >= 1 (for D < k the volume is 0: k vectors in R^D are dependent).
        n: tuples drawn.
        k: vectors per tuple, >= 2.
        seed: seed of the draw.

    Returns:
        (n,) float64 volumes in [0, 1].

    Example:
        >>> v = random_unit_volumes(512, n=200)
        >>> v.shape, bool(v.min() > 0.9)
        (torch.Size([200]), True)
    """
    if int(dim) != dim or dim < 1 or int(n) != n or n < 1 or int(k) != k or k < 2:
        raise ValueError(f"random_unit_volumes needs integers dim >= 1, n >= 1, k >= 2; got {dim}, {n}, {k}")
    g = torch.Generator().manual_seed(seed)
    vectors = F.normalize(torch.randn(k, int(n), int(dim), generator=g, dtype=torch.float64), dim=-1)  # (k, n, D)
    return volume(*vectors)


class ClipTuples(NamedTuple):
    """One (text, video, audio) tuple per clip: row i of each tensor belongs to clip ``clips[i]``."""

    clips: Tensor  # (N,) clip rows of the embeddings kept (clips with a caption, a video and an audio)
    captions: Tensor  # (N,) the text row used for each: the clip's first caption
    text: Tensor  # (N, D)
    video: Tensor  # (N, D)
    audio: Tensor  # (N, D)


def clip_tuples(emb: Mapping[str, Tensor], caption_clip: Sequence[int]) -> ClipTuples:
    """Each clip's matching tuple: its first caption's text embedding with its video and audio.

    Clips without a caption or with a missing (zero) video or audio embedding are left out.

    Args:
        emb: ``{"text": (captions, D), "video": (clips, D), "audio": (clips, D)}``, as
            `gramviz.evaluation.embed_dataset` or `gramviz.load_embeddings` return them.
        caption_clip: the clip row of each text row (``meta.text_clips()``).

    Example:
        >>> e = {"text": torch.eye(3), "video": torch.eye(3)[:2], "audio": torch.eye(3)[:2]}
        >>> tuples = clip_tuples(e, [1, 0, 1])
        >>> tuples.clips.tolist(), tuples.captions.tolist()
        ([0, 1], [1, 0])
    """
    for m in MODALITIES:
        if m not in emb:
            raise ValueError(f"clip_tuples needs text, video and audio embeddings; {m!r} is missing")
    n_clips = emb[VIDEO].shape[0]
    if emb[AUDIO].shape[0] != n_clips:
        raise ValueError(f"clip_tuples: {n_clips} video rows but {emb['audio'].shape[0]} audio rows")
    if len(caption_clip) != emb[TEXT].shape[0]:
        raise ValueError(f"clip_tuples: {len(caption_clip)} caption_clip entries for {emb['text'].shape[0]} text rows")
    first: dict[int, int] = {}
    for row, clip in enumerate(caption_clip):
        if not 0 <= int(clip) < n_clips:
            raise ValueError(f"clip_tuples: caption_clip[{row}] = {clip} is outside [0, {n_clips})")
        first.setdefault(int(clip), row)
    clips = torch.tensor(sorted(first), dtype=torch.long)
    present = (emb[VIDEO][clips].ne(0).any(1) & emb[AUDIO][clips].ne(0).any(1)) if len(clips) else clips.bool()
    clips = clips[present]
    captions = torch.tensor([first[int(c)] for c in clips], dtype=torch.long)
    return ClipTuples(clips, captions, emb[TEXT][captions], emb[VIDEO][clips], emb[AUDIO][clips])


def negative_partners(n: int, rule: str, seed: int = 0) -> Tensor:
    """(n,) for each anchor i the candidate j != i of its non-matching tuple, by ``rule``
    ("shifted": i - 1, cyclically; "random": uniform over the others, seeded).

    Example:
        >>> negative_partners(4, "shifted").tolist()
        [3, 0, 1, 2]
    """
    if rule not in NEGATIVE_RULES[1:]:
        raise ValueError(f"negative_partners: rule must be one of {NEGATIVE_RULES[1:]}, got {rule!r}")
    if int(n) != n or n < 2:
        raise ValueError(f"negative_partners needs n >= 2 tuples (1 has no other candidate), got {n!r}")
    if rule == "shifted":
        return torch.arange(n).roll(1)
    g = torch.Generator().manual_seed(seed)
    return (torch.arange(n) + torch.randint(1, n, (n,), generator=g)) % n  # never the anchor's own


def matching_volumes(anchor: Tensor, *others: Tensor, negatives: str = "all", seed: int = 0) -> tuple[Tensor, Tensor]:
    """Volumes of the matching tuples (anchor i with candidate i) and of non-matching ones.

    Args:
        anchor: (N, D) anchors, N >= 2; anchor i matches row i of every other modality.
        *others: one or more (N, D) modalities.
        negatives: which non-matching tuples (`NEGATIVE_RULES`): "all" (every anchor with every
            other candidate), "shifted" (anchor i with candidate i - 1) or "random" (anchor i with
            one other candidate drawn with ``seed``).
        seed: the draw of "random".

    Returns:
        ((N,) positive volumes, negative volumes: (N * (N - 1),) for "all", the off-diagonal of
        ``gramviz.volume_matrix(anchor, *others)``; (N,) otherwise, row i for anchor i).

    Example:
        >>> pos, neg = matching_volumes(torch.eye(2), torch.eye(2))
        >>> pos.tolist(), neg.tolist()
        ([0.0, 0.0], [1.0, 1.0])
    """
    if anchor.dim() != 2 or anchor.shape[0] < 2 or any(o.shape[0] != anchor.shape[0] for o in others):
        raise ValueError("matching_volumes needs N >= 2 anchors and the same N rows in every other modality")
    if negatives not in NEGATIVE_RULES:
        raise ValueError(f"matching_volumes: negatives must be one of {NEGATIVE_RULES}, got {negatives!r}")
    if negatives != "all":
        partner = negative_partners(anchor.shape[0], negatives, seed)
        return volume(anchor, *others), volume(anchor, *(o[partner] for o in others))
    vol = volume_matrix(anchor, *others)  # (N, N)
    diagonal = torch.eye(vol.shape[0], dtype=torch.bool)
    return vol[diagonal], vol[~diagonal]


COLLAPSE_CLIPS = 1024  # clips (a seeded sample above) whose negatives `collapse_metrics` measures


def collapse_metrics(emb: Mapping[str, Tensor], caption_clip: Sequence[int], seed: int = 0) -> dict[str, float]:
    """Is the embedding in the flat region where every volume is near 1? Statistics of a gallery's
    volumes, to log during training (the "volume collapse" of Euclidean GRAM).

    Each clip's first caption with its video and audio is a positive; every caption with every
    other clip's video and audio a negative (over a seeded sample of at most `COLLAPSE_CLIPS` clips).
    Embeddings are normalised first and computed in float64.

    Returns:
        ``pos_volume_mean``, ``pos_volume_std``, ``neg_volume_mean``, ``neg_volume_std`` (the
        cross-sample standard deviation, n - 1 in the denominator), ``base_median`` and
        ``height_median`` of the positives (volume = base x height), and ``cos_va_median``, the
        median cosine of a clip's video and audio.

    Example:
        >>> e = {m: torch.eye(4)[torch.tensor(p)] for m, p in
        ...      (("text", [0, 1, 2, 3]), ("video", [1, 2, 3, 0]), ("audio", [2, 3, 0, 1]))}
        >>> collapse_metrics(e, range(4))["pos_volume_mean"]
        1.0
    """
    tuples = clip_tuples(emb, list(caption_clip))
    if len(tuples.clips) < 2:
        raise ValueError("collapse_metrics needs at least two clips with a caption, a video and an audio embedding")
    keep = torch.arange(len(tuples.clips))
    if len(keep) > COLLAPSE_CLIPS:
        keep = torch.randperm(len(keep), generator=torch.Generator().manual_seed(seed))[:COLLAPSE_CLIPS].sort().values
    t, v, a = (F.normalize(x[keep].double(), dim=-1) for x in (tuples.text, tuples.video, tuples.audio))
    pos, neg = matching_volumes(t, v, a, negatives="all")
    base, height = base_height(t, v, a)
    return {"pos_volume_mean": float(pos.mean()), "pos_volume_std": float(pos.std()),
            "neg_volume_mean": float(neg.mean()), "neg_volume_std": float(neg.std()),
            "base_median": float(base.median()), "height_median": float(height.median()),
            "cos_va_median": float((v * a).sum(-1).median())}


def tuple_alignment(embeddings: Mapping[str, Tensor | None]) -> dict:
    """How one sample's modality embeddings align: the GRAM volume, pairwise cosines, the odd one out.

    For each modality m the *height* is its distance from the span of the others, so that
    volume = height(m) x volume(others). The least aligned modality is the one with the largest
    height: without it, the remaining modalities span the smallest volume. With two modalities
    neither stands out (the volume is sin of their angle for unit vectors).

    Args:
        embeddings: modality -> (D,) embedding, at least two present (None entries are skipped,
            i.e. scored with the modalities present).

    Returns:
        ``{"modalities": [...], "volume": float, "cosines": {"text-video": float, ...},
        "heights": {modality: float}, "least_aligned": modality or None}``.

    Example:
        >>> out = tuple_alignment({"text": torch.tensor([1.0, 0.0, 0.0]),
        ...                        "video": torch.tensor([1.0, 0.1, 0.0]), "audio": torch.tensor([0.0, 0.0, 1.0])})
        >>> out["least_aligned"], round(out["cosines"]["text-audio"], 3)
        ('audio', 0.0)
    """
    present = in_stacking_order(embeddings, "embeddings")
    if len(present) < 2:
        have = ", ".join(present) or "none"
        raise ValueError(f"scoring needs at least two modalities ({', '.join(MODALITIES)}); got {have}")
    vectors = [x.reshape(-1).to(torch.float64) for x in present.values()]
    check_vectors(vectors, what="tuple_alignment", min_count=2)
    names = list(present)
    zero = [m for m, v in zip(names, vectors) if not bool(v.norm() > 0)]
    if zero:
        raise ValueError(f"tuple_alignment: the {', '.join(zero)} embedding is a zero vector (a missing modality)")
    cosines = {
        f"{names[i]}-{names[j]}": float(vectors[i] @ vectors[j] / (vectors[i].norm() * vectors[j].norm()))
        for i, j in itertools.combinations(range(len(names)), 2)
    }
    heights = {}
    for i, m in enumerate(names):
        _, height = base_height(vectors[i], *(v for j, v in enumerate(vectors) if j != i))
        heights[m] = float(height)
    least = None
    if len(names) >= 3:
        ranked = sorted(heights, key=heights.get, reverse=True)
        least = ranked[0] if heights[ranked[0]] > heights[ranked[1]] + 1e-9 else None
    return {"modalities": names, "volume": float(volume(*vectors)), "cosines": cosines,
            "heights": heights, "least_aligned": least}


def worst_aligned(anchor: Tensor, *others: Tensor, k: int = 5, best: bool = False) -> list[dict[str, float]]:
    """The ``k`` matching tuples with the largest volume (or the smallest, with ``best``).

    Args:
        anchor: (N, D) anchors; anchor i matches row i of every other modality.
        *others: one or more (N, D) modalities.
        k: tuples listed.
        best: list the smallest volumes instead.

    Returns:
        One dict per tuple, worst first: ``row`` (the index i), ``volume``, ``base`` (volume of
        the other modalities), ``height`` (the anchor's distance from their span) and ``rank``
        (the rank of candidate i among all candidates for anchor i, 1 = retrieved first).

    Example:
        >>> t = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
        >>> [(r["row"], round(r["volume"], 2)) for r in worst_aligned(t, t[[0, 2, 1]], k=2)]
        [(1, 0.6), (2, 0.6)]
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    pos, _ = matching_volumes(anchor, *others)
    base, height = base_height(anchor, *others)
    ranks = retrieval_ranks(score_matrix(anchor, *others), torch.arange(anchor.shape[0]))
    order = torch.sort(pos, descending=not best, stable=True).indices[:k]
    return [{"row": int(i), "volume": float(pos[i]), "base": float(base[i]), "height": float(height[i]),
             "rank": int(ranks[i])} for i in order]


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, digits: int = 3) -> str:
    """A Markdown table of dicts: one row each, floats rounded to ``digits``, ``|`` escaped.

    Example:
        >>> print(markdown_table([{"name": "a|b", "volume": 0.12345}]))
        | name | volume |
        |---|---|
        | a\\|b | 0.123 |
    """
    if not rows:
        raise ValueError("markdown_table needs at least one row")
    columns = list(columns or rows[0])

    def cell(x: Any) -> str:
        text = f"{x:.{digits}f}" if isinstance(x, float) else str(x)
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def find_upwards(relative: str | os.PathLike, start: str | os.PathLike | None = None, hint: str = "") -> Path:
    """The first ``<dir>/<relative>`` that exists, ``dir`` going from ``start`` up to the root.

    Notebooks run with their own folder as the working directory (JupyterLab, nbmake), scripts
    often from the project root: this finds a project file from either.

    Args:
        relative: the path to find, e.g. ``"docs/results/summary.json"``.
        start: where to begin (default: the working directory).
        hint: what to do when it is not found, appended to the error message.

    Raises:
        FileNotFoundError: naming the path, where the search started, and the hint.

    Example:
        >>> find_upwards("no/such/file.json", hint="run make results")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        FileNotFoundError: no/such/file.json was not found in ... or any folder above it: run make results
    """
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / relative).exists():
            return folder / relative
    where = f"{relative} was not found in {here} or any folder above it"
    raise FileNotFoundError(where + (f": {hint}" if hint else ""))
