"""Naive float64 references, written independently of gramviz (numpy, loops, determinants)."""

from __future__ import annotations

import numpy as np


def as64(x) -> np.ndarray:
    return np.asarray(x.detach().cpu().double().numpy() if hasattr(x, "detach") else x, dtype=np.float64)


def volume_det(*vectors) -> float:
    """sqrt(det(A^T A)) for one tuple of 1-D vectors: the textbook definition."""
    a = np.stack([as64(v) for v in vectors], axis=1)  # (D, k)
    return float(np.sqrt(max(np.linalg.det(a.T @ a), 0.0)))


def volume_qr(*vectors) -> float:
    """prod |R_ii| of a Householder QR: accurate also for nearly degenerate tuples."""
    a = np.stack([as64(v) for v in vectors], axis=1)
    if a.shape[1] > a.shape[0]:
        return 0.0
    r = np.linalg.qr(a, mode="r")
    return float(np.prod(np.abs(np.diag(r))))


def volume_matrix(anchor, *others, volume=volume_det) -> np.ndarray:
    t = as64(anchor)
    os_ = [as64(o) for o in others]
    return np.array([[volume(t[i], *(o[j] for o in os_)) for j in range(os_[0].shape[0])] for i in range(t.shape[0])])


def distance_from_span(t, *others) -> float:
    """Distance of t from span(others) by least squares."""
    t = as64(t)
    if not others:
        return float(np.linalg.norm(t))
    a = np.stack([as64(o) for o in others], axis=1)
    coef, *_ = np.linalg.lstsq(a, t, rcond=None)
    return float(np.linalg.norm(t - a @ coef))


def cosine(a, b) -> float:
    a, b = as64(a), as64(b)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def smoothed_ce_rows(logits: np.ndarray, targets, eps: float) -> float:
    """Mean over rows of -(1 - eps) log p[target] - eps / C * sum_j log p[j], p = softmax(row)."""
    total = 0.0
    for i, row in enumerate(logits):
        m = row.max()
        logp = row - (m + np.log(np.exp(row - m).sum()))
        total += -(1 - eps) * logp[targets[i]] - eps * logp.mean()
    return total / logits.shape[0]


def random_orthonormal(d: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """k orthonormal vectors in R^d, as rows."""
    q, _ = np.linalg.qr(rng.standard_normal((d, k)))
    return q.T
