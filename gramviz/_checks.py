"""Input checks shared by the functional core: clear errors instead of silent NaNs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def check_vectors(vectors: Sequence[Tensor], *, what: str, min_count: int = 1) -> None:
    """Check a group of embedding tensors that share a last (embedding) dimension.

    Raises:
        TypeError: an item is not a tensor or not of a floating dtype.
        ValueError: too few tensors, a tensor without dimensions, mismatched last dimensions,
            or NaN/Inf values.
    """
    if len(vectors) < min_count:
        raise ValueError(f"{what} needs at least {min_count} tensor(s), got {len(vectors)}")
    dims = set()
    for i, v in enumerate(vectors):
        if not isinstance(v, Tensor):
            raise TypeError(f"{what}: argument {i} is a {type(v).__name__}, expected a torch.Tensor")
        if not v.is_floating_point():
            raise TypeError(
                f"{what}: argument {i} has dtype {v.dtype}; use a floating dtype "
                "(e.g. x.float()): volumes of integer vectors would overflow or truncate"
            )
        if v.dim() == 0:
            raise ValueError(f"{what}: argument {i} is a scalar; expected shape (..., D)")
        dims.add(v.shape[-1])
    if len(dims) > 1:
        shapes = ", ".join(str(tuple(v.shape)) for v in vectors)
        raise ValueError(f"{what}: embedding dimensions differ (last axes of {shapes})")
    devices = {v.device for v in vectors}
    if len(devices) > 1:
        raise ValueError(f"{what}: tensors are on different devices {sorted(map(str, devices))}")
    # one cheap pass and one device sync for all tensors: any NaN/Inf (or values so large that
    # their sum overflows) shows in the sums
    sums = torch.stack([v.detach().sum().to(torch.float64) for v in vectors])
    if not bool(torch.isfinite(sums).all()):
        i = int((~torch.isfinite(sums)).nonzero()[0])
        v = vectors[i]
        problem = "NaN or Inf values" if not bool(torch.isfinite(v).all()) else "values too large (their sum overflows)"
        raise ValueError(f"{what}: argument {i} contains {problem}")


def check_matrix_inputs(anchor: Tensor, others: Sequence[Tensor], *, what: str) -> None:
    """Check an anchor ``(N, D)`` and one or more candidate tensors, each ``(M, D)``."""
    if len(others) < 1:
        raise ValueError(
            f"{what} needs an anchor and at least one other modality (two tensors or more); got 1"
        )
    check_vectors([anchor, *others], what=what, min_count=2)
    for i, v in enumerate([anchor, *others]):
        if v.dim() != 2:
            name = "anchor" if i == 0 else f"others[{i - 1}]"
            raise ValueError(f"{what}: {name} must be 2-D (rows of embeddings), got shape {tuple(v.shape)}")
    counts = {v.shape[0] for v in others}
    if len(counts) > 1:
        shapes = ", ".join(str(tuple(v.shape)) for v in others)
        raise ValueError(f"{what}: the candidate modalities must have the same number of rows, got {shapes}")


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float16/bfloat16 inputs are computed in float32: volumes cancel catastrophically in half precision."""
    return torch.promote_types(dtype, torch.float32)
