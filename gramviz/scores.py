"""Score matrices of an anchor against multimodal candidates, for GRAM and its peer measures.

One convention for every measure: entry (i, j) scores anchor i against candidate j (the j-th row
of each other modality) and **higher means more aligned**, so any measure can rank, be fed to
the retrieval metrics, or be compared with another.

Measures:
    volume           minus the GRAM volume (`volume_matrix`), vectors as given.
    cosine_pairwise  mean over the other modalities of cos(anchor, other): the anchor-centred view
                     of ImageBind / LanguageBind, where the other modalities never meet each other.
    cosine_fused     cos(anchor, normalise(mean of the normalised others)): VAST-style fusion.
    symile           multilinear inner product sum_d t_d o1_d o2_d ... (Symile), vectors as given.
    triangle         minus the (k-1)-simplex volume with vertices t, o1, ..., o_{k-1}; for k = 3 the
                     area of the triangle (TRIANGLE): 0.5 |(t - o1) x (t - o2)|.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import check_matrix_inputs, compute_dtype
from .gram import _base_height_matrix, _safe_sqrt

__all__ = ["MEASURES", "Measure", "cosine_matrix", "get_measure", "measure_values", "score_matrix"]


def cosine_matrix(anchor: Tensor, other: Tensor) -> Tensor:
    """Cosine similarity of every row of ``anchor`` (N, D) with every row of ``other`` (M, D)."""
    return F.normalize(anchor, dim=-1) @ F.normalize(other, dim=-1).T


def _cosine_pairwise(anchor: Tensor, *others: Tensor) -> Tensor:
    return torch.stack([cosine_matrix(anchor, o) for o in others]).mean(0)


def _cosine_fused(anchor: Tensor, *others: Tensor) -> Tensor:
    fused = torch.stack([F.normalize(o, dim=-1) for o in others]).mean(0)
    return cosine_matrix(anchor, fused)


def _symile(anchor: Tensor, *others: Tensor) -> Tensor:
    product = others[0]
    for o in others[1:]:
        product = product * o
    return anchor @ product.T


def _triangle(anchor: Tensor, *others: Tensor) -> Tensor:
    # Gram matrix of the edges e_p = o_p - t from dot products only:
    # e_p . e_q = o_p.o_q - t.o_p - t.o_q + |t|^2, shape (N, M, k-1, k-1).
    dtype = compute_dtype(anchor.dtype)
    t = anchor.to(dtype)
    os_ = [o.to(dtype) for o in others]
    t_dot = torch.stack([t @ o.T for o in os_], dim=-1)  # (N, M, k-1)
    o_dot = torch.stack([torch.stack([(a * b).sum(-1) for b in os_], -1) for a in os_], -2)  # (M, k-1, k-1)
    t_sq = (t * t).sum(-1)[:, None, None, None]
    gram = o_dot[None] - t_dot[..., :, None] - t_dot[..., None, :] + t_sq
    det = torch.linalg.det(gram.double()).to(dtype) if len(os_) > 1 else gram[..., 0, 0]
    return -_safe_sqrt(det) / math.factorial(len(os_))


def _volume(anchor: Tensor, *others: Tensor) -> Tensor:
    return _base_height_matrix(anchor, others, scale=torch.neg)[1]


@dataclass(frozen=True)
class Measure:
    """One way of scoring an anchor against candidates.

    Attributes:
        name: the key callers pass as ``measure=``.
        function: ``(anchor (N, D), *others (M, D)) -> (N, M)`` scores, higher = more aligned.
        title: how figures and tables name it.
        is_size: the measure is read as a size (a volume, an area: lower = more aligned) and its
            scores are minus that size.
    """

    name: str
    function: Callable[..., Tensor]
    title: str
    is_size: bool

    def values(self, scores: Tensor) -> Tensor:
        """Scores (higher = more aligned) as people read them: the size itself for a size."""
        return -scores if self.is_size else scores

    def axis_title(self) -> str:
        """'GRAM volume (lower = more aligned)' or 'pairwise cosine (higher = more aligned)'."""
        return f"{self.title} ({'lower' if self.is_size else 'higher'} = more aligned)"


_REGISTRY = {
    m.name: m
    for m in (
        Measure("volume", _volume, "GRAM volume", is_size=True),
        Measure("cosine_pairwise", _cosine_pairwise, "pairwise cosine", is_size=False),
        Measure("cosine_fused", _cosine_fused, "fused cosine", is_size=False),
        Measure("symile", _symile, "Symile", is_size=False),
        Measure("triangle", _triangle, "triangle area", is_size=True),
    )
}
MEASURES = tuple(_REGISTRY)  # every measure's name, GRAM's first


def get_measure(name: str) -> Measure:
    """The `Measure` called ``name``; a ValueError naming it and the known ones otherwise.

    Example:
        >>> get_measure("volume").axis_title()
        'GRAM volume (lower = more aligned)'
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown measure {name!r}; choose one of {', '.join(MEASURES)}")
    return _REGISTRY[name]


def measure_values(scores: Tensor, measure: str) -> Tensor:
    """Scores (higher = more aligned) as people read them: minus the score for volume and triangle.

    Example:
        >>> measure_values(torch.tensor([-0.25]), "volume")
        tensor([0.2500])
    """
    return get_measure(measure).values(scores)


def score_matrix(anchor: Tensor, *others: Tensor, measure: str = "volume") -> Tensor:
    """Score every anchor against every candidate; higher = more aligned.

    Args:
        anchor: (N, D) anchors (e.g. text).
        *others: one or more (M, D) tensors; candidate j is row j of each (e.g. video, audio).
        measure: one of ``MEASURES``.

    Returns:
        (N, M) scores.

    Example:
        >>> t = torch.eye(3)
        >>> score_matrix(t, t, t, measure="cosine_pairwise")
        tensor([[1., 0., 0.],
                [0., 1., 0.],
                [0., 0., 1.]])
    """
    function = get_measure(measure).function
    check_matrix_inputs(anchor, others, what=f"score_matrix(measure={measure!r})")
    return function(anchor, *others)
