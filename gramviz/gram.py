"""The GRAM measure: Gram matrices, parallelotope volumes and the anchor-versus-candidates volume matrix.

For k vectors v_1..v_k in R^D stacked as the columns of A, the Gram matrix is G = A^T A and the
k-dimensional volume of the parallelotope they span is sqrt(det G). Instead of a determinant we
use the "base times height" factorisation: orthonormalise the vectors one by one (Gram-Schmidt,
applied twice for orthogonality to working precision) and multiply the lengths of the residuals.
Each residual is formed explicitly, so the volume has an absolute error of a few ulps of the
product of the vector lengths, with no sign flips and no NaN near degenerate (collinear) inputs.

The volume matrix of an anchor against M candidates (each candidate a tuple of k - 1 vectors)
only needs the anchor's coordinates in an orthonormal basis of each candidate's span: one matrix
product of the anchors with the stacked bases (the same cost as the k - 1 dot-product matrices),
plus elementwise work. Pairs whose height is small are recomputed from explicit residuals so
that the cancellation in |t|^2 - |proj t|^2 never costs accuracy.

Gradients are finite everywhere: at a vanishing residual (collinear inputs, a duplicated or a
zero vector) the length's derivative is taken as 0, a valid subgradient of |r| at r = 0.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import Tensor

from ._checks import check_matrix_inputs, check_vectors, compute_dtype
from ._workspace import scratch, training_scratch

__all__ = ["gram_matrix", "volume", "base_height", "volume_matrix", "base_height_matrix"]

# Pairs per chunk when small heights are recomputed from explicit residuals (bounds memory).
_REFINE_CHUNK = 8192


def _safe_sqrt(x: Tensor) -> Tensor:
    """sqrt(max(x, 0)) whose derivative is 0 (not inf) where the argument is not positive."""
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), 0.0)


def _safe_norm(r: Tensor) -> Tensor:
    """Euclidean norm over the last axis with a zero derivative at r = 0."""
    return _safe_sqrt((r * r).sum(-1))


class _UnitAndLength(torch.autograd.Function):
    """(r / |r|, |r|) over the last axis in one pass, with a fused backward pass.

    The zero vector maps to (0, 0) with a zero derivative (a valid subgradient of |r| at r = 0).
    Backward: d|r|/dr = q and dq/dr = (I - q q^T) / |r|, so with incoming gradients g_q, g_n,
    dr = (g_q - q (q . g_q)) / |r| + g_n q: three passes over (..., D) instead of the dozen of
    autograd's division and norm nodes.
    """

    @staticmethod
    def forward(ctx, r: Tensor) -> tuple[Tensor, Tensor]:
        n = torch.linalg.vector_norm(r, dim=-1)
        inv = torch.where(n > 0, 1 / n, 0.0)
        q = r * inv.unsqueeze(-1)
        ctx.save_for_backward(q, inv)
        return q, n

    @staticmethod
    def backward(ctx, grad_q: Tensor, grad_n: Tensor) -> Tensor:
        q, inv = ctx.saved_tensors
        along = (q * grad_q).sum(-1, keepdim=True)
        out = torch.addcmul(grad_q, q, along, value=-1).mul_(inv.unsqueeze(-1))
        return out.addcmul_(q, grad_n.unsqueeze(-1))


def unit_and_length(r: Tensor) -> tuple[Tensor, Tensor]:
    """``(r / |r|, |r|)`` over the last axis; the zero vector gives ``(0, 0)`` and zero gradients.

    Example:
        >>> q, n = unit_and_length(torch.tensor([[3.0, 4.0], [0.0, 0.0]]))
        >>> q, n
        (tensor([[0.6000, 0.8000],
                [0.0000, 0.0000]]), tensor([5., 0.]))
    """
    return _UnitAndLength.apply(r)


def _orthonormalize(vectors: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
    """Gram-Schmidt, twice: orthonormal q_i (zero where dependent) and residual lengths n_i.

    Each input has shape (..., D); each q_i has the same shape and each n_i shape (...).
    The product of the n_i is the volume spanned by the inputs. The second pass ("twice is
    enough") only removes rounding errors: in exact arithmetic it subtracts zero, and so does its
    derivative, so it runs outside autograd and costs no backward pass.
    """
    basis: list[Tensor] = []
    lengths: list[Tensor] = []
    for v in vectors:
        r = v
        for q in basis:
            r = r - (r * q).sum(-1, keepdim=True) * q
        if basis:
            with torch.no_grad():
                correction = sum((r * q).sum(-1, keepdim=True) * q for q in basis)
            r = r - correction
        q, n = _UnitAndLength.apply(r)
        basis.append(q)
        lengths.append(n)
    return basis, lengths


@contextlib.contextmanager
def _full_precision(device: torch.device):
    """Disable autocast: the volume is computed in the (promoted) input dtype, never in half."""
    with torch.autocast(device_type=device.type, enabled=False):
        yield


def gram_matrix(*vectors: Tensor) -> Tensor:
    """Gram matrix of k vectors: G[..., i, j] = <v_i, v_j>.

    Args:
        *vectors: k >= 1 tensors of shape (..., D); batch axes broadcast.

    Returns:
        Tensor of shape (..., k, k).

    Example:
        >>> import torch, gramviz
        >>> gramviz.gram_matrix(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0]))
        tensor([[1., 1.],
                [1., 2.]])
    """
    check_vectors(vectors, what="gram_matrix")
    a = torch.stack(torch.broadcast_tensors(*vectors), dim=-2)  # (..., k, D)
    return a @ a.transpose(-1, -2)


def base_height(anchor: Tensor, *others: Tensor) -> tuple[Tensor, Tensor]:
    """Split the volume of (anchor, *others) into base x height.

    base = volume of the parallelotope of ``others`` alone (1 when there are none);
    height = distance of ``anchor`` from the span of ``others``. Their product is
    ``volume(anchor, *others)``: the Schur-complement identity det G = det M (|t|^2 - u^T M^-1 u).

    Args:
        anchor: (..., D).
        *others: k - 1 >= 0 tensors of shape (..., D); batch axes broadcast.

    Returns:
        (base, height), each of the broadcast batch shape.

    Example:
        >>> b, h = base_height(torch.tensor([1.0, 1.0]), torch.tensor([2.0, 0.0]))
        >>> float(b), float(h)
        (2.0, 1.0)
    """
    check_vectors([anchor, *others], what="base_height")
    vecs = torch.broadcast_tensors(anchor, *others)
    dtype = compute_dtype(anchor.dtype)
    with _full_precision(anchor.device):
        vecs = [v.to(dtype) for v in vecs]
        basis, lengths = _orthonormalize([*vecs[1:], vecs[0]])
        height = lengths[-1]
        base = torch.ones_like(height)
        for n in lengths[:-1]:
            base = base * n
        k, d = len(vecs), vecs[0].shape[-1]
        # more vectors than dimensions: the volume is exactly zero, not a rounding residue
        if k - 1 > d:
            base = base * 0
        if k > d:
            height = height * 0
    return base, height


def volume(*vectors: Tensor) -> Tensor:
    """k-dimensional volume sqrt(det G) of the parallelotope spanned by the given vectors.

    The vectors are used exactly as given (no normalisation); with unit vectors the volume lies in
    [0, 1]: 0 when they are collinear (aligned), 1 when mutually orthogonal. For k = 2 it is
    |a| |b| sin(theta); for k = 1 the length of the vector.

    Args:
        *vectors: k >= 1 tensors of shape (..., D); batch axes broadcast.

    Returns:
        Tensor of the broadcast batch shape, never negative or NaN.

    Example:
        >>> volume(torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]))
        tensor(1.)
    """
    if len(vectors) < 1:
        raise ValueError("volume needs at least one vector")
    base, height = base_height(*vectors)
    return base * height


def base_height_matrix(anchor: Tensor, *others: Tensor) -> tuple[Tensor, Tensor]:
    """Base and height for every anchor-candidate pair.

    Args:
        anchor: (N, D) anchors t_i.
        *others: k - 1 >= 1 tensors of shape (M, D); candidate j is (others[0][j], ..., others[-1][j]).

    Returns:
        base (M,): volume of candidate j's own parallelotope;
        height (N, M): distance of anchor i from the span of candidate j.
        ``base[None, :] * height`` is the volume matrix.

    Example:
        >>> b, h = base_height_matrix(torch.tensor([[0.0, 0.0, 1.0]]), torch.eye(3)[:2], 2 * torch.eye(3)[[1, 2]])
        >>> b, h
        (tensor([2., 2.]), tensor([[1., 0.]]))
    """
    check_matrix_inputs(anchor, others, what="base_height_matrix")
    return _base_height_matrix(anchor, others)


def _base_height_matrix(
    anchor: Tensor, others: tuple[Tensor, ...], scale: Callable[[Tensor], Tensor] | None = None
) -> tuple[Tensor, Tensor]:
    """`base_height_matrix` without the input checks.

    With ``scale``, column j of the returned heights is multiplied by ``scale(base)[j]`` in the
    same pass (``scale=lambda b: b`` gives the volume matrix, ``-b / tau`` the GRAM logits).
    """
    dtype = compute_dtype(anchor.dtype)
    with _full_precision(anchor.device):
        t = anchor.to(dtype)
        basis, lengths = _orthonormalize([o.to(dtype) for o in others])
        base = lengths[0]
        for n in lengths[1:]:
            base = base * n  # (M,)
        k, d = len(others) + 1, t.shape[-1]
        if k - 1 > d:
            base = base * 0  # more vectors than dimensions: exactly zero
        column_scale = torch.ones_like(base) if scale is None else scale(base)
        height = _scaled_height_matrix(t, basis, column_scale)
        if k > d:
            height = height * 0
    return base, height


class _ScaledHeights(torch.autograd.Function):
    """out[i, j] = scale[j] * h[i, j], h[i, j] the distance of t_i from span(q_1[j], ..., q_{k-1}[j]).

    The q_p (M, D) are orthonormal per candidate (or zero). With c_p = t q_p^T (N, M),
    h^2 = |t|^2 - sum_p c_p^2: the forward pass is one product of t with the stacked bases plus a
    few in-place elementwise passes, the backward pass two products:
    dh/dt_i = sum_j (t_i - sum_p c_p[i, j] q_p[j]) / h[i, j] and dh/dq_p[j] = -c_p[i, j] t_i / h[i, j].
    The per-candidate ``scale`` (the base, or -base / tau in the loss) is fused in to save a pass.
    Also returns the mask of heights too small to trust from the difference of squares, or None;
    their gradient is zero here and comes from `_refine_small_heights`, which replaces them.
    """

    @staticmethod
    def forward(ctx, t: Tensor, scale: Tensor, *basis: Tensor) -> tuple[Tensor, Tensor | None]:
        # one (N, M) product per basis vector rather than one (N, (k-1) M): buffers of the size
        # of the output, which the allocator reuses from step to step instead of mapping afresh
        shape = (t.shape[0], basis[0].shape[0])
        coords = [torch.mm(t, q.T, out=training_scratch(ctx, f"coordinates {p}", shape, t.dtype, t.device))
                  for p, q in enumerate(basis)]  # c_p (N, M)
        t_sq = (t * t).sum(-1, keepdim=True)  # (N, 1)
        h = torch.addcmul(t_sq, coords[0], coords[0], value=-1,
                          out=training_scratch(ctx, "heights", shape, t.dtype, t.device))
        for c in coords[1:]:
            h.addcmul_(c, c, value=-1)
        # In precision eps, h^2 carries an absolute error ~ eps |t|^2 (half the digits at h = 0).
        threshold = torch.finfo(t.dtype).eps ** (1.0 / 3.0) * t_sq
        # one device sync: are there small heights, and degenerate candidates (zero scale)?
        any_small, ctx.any_zero_scale = torch.stack([(h.amin(1, keepdim=True) <= threshold).any(), (scale == 0).any()]).tolist()
        small = None
        if any_small:
            small = h <= threshold
            h.clamp_(min=0)
        out = h.sqrt_().mul_(scale)  # in place: h is recovered as out / scale when needed
        ctx.save_for_backward(t, scale, out, small, *basis, *coords)
        return out, small

    @staticmethod
    def backward(ctx, grad: Tensor, _grad_small: None) -> tuple[Tensor | None, ...]:
        t, scale, out, small, *rest = ctx.saved_tensors
        basis, coords = rest[: len(rest) // 2], rest[len(rest) // 2 :]
        safe = scale != 0
        h = scratch("heights backward", out.shape, out.dtype, out.device)  # (N, M), reused from call to call
        w = scratch("height weights", out.shape, out.dtype, out.device)
        # a zero scale (a degenerate candidate) has h = 0 here; nothing depends on it
        torch.mul(out, torch.where(safe, 1 / torch.where(safe, scale, 1), 0), out=h)
        torch.mul(grad, scale, out=w).div_(h)  # d out / d h^2 terms, (N, M)
        if small is not None:
            w.masked_fill_(small, 0)
        if ctx.any_zero_scale:
            w.masked_fill_(~safe, 0)
        grad_scale = h.mul_(grad).sum(0) if ctx.needs_input_grad[1] else None
        wc = h  # reuse the buffer for w * c_p, one p at a time
        grad_t = w.sum(1, keepdim=True) * t
        grad_q = []
        for q, c in zip(basis, coords):
            torch.mul(w, c, out=wc)
            grad_t.addmm_(wc, q, alpha=-1)
            grad_q.append((wc.T @ t).neg_())
        return (grad_t, grad_scale, *grad_q)


def _scaled_height_matrix(t: Tensor, basis: list[Tensor], scale: Tensor) -> Tensor:
    """scale[None, :] * height, with small heights recomputed exactly (see `_ScaledHeights`)."""
    out, small = _ScaledHeights.apply(t, scale, *basis)
    if small is None:
        return out
    q = torch.stack(basis, dim=1)  # (M, k-1, D)
    rows, cols = small.nonzero(as_tuple=True)
    refined = []
    # The residual t - sum_p (t.q_p) q_p is formed and re-orthogonalised once more, so its length
    # is accurate to a few ulps of |t| however small; autograd differentiates this path.
    for start in range(0, rows.numel(), _REFINE_CHUNK):
        i, j = rows[start : start + _REFINE_CHUNK], cols[start : start + _REFINE_CHUNK]
        qj, r = q[j], t[i]  # (P, k-1, D), (P, D)
        for _ in range(2):
            r = r - ((qj @ r.unsqueeze(-1)) * qj).sum(-2)
        refined.append(_safe_norm(r) * scale[j])
    return out.index_put((rows, cols), torch.cat(refined))


def volume_matrix(anchor: Tensor, *others: Tensor) -> Tensor:
    """Volume of every anchor-candidate tuple: V[i, j] = volume(anchor[i], others[0][j], ...).

    Args:
        anchor: (N, D), e.g. text embeddings.
        *others: k - 1 >= 1 tensors of shape (M, D), e.g. video and audio embeddings; row j of
            each belongs to candidate j.

    Returns:
        (N, M) volumes in the promoted dtype (float32 for half-precision inputs).

    Example:
        >>> t = torch.eye(3)
        >>> volume_matrix(t, t, t[[1, 2, 0]]).diagonal()
        tensor([0., 0., 0.])
    """
    check_matrix_inputs(anchor, others, what="volume_matrix")
    return _base_height_matrix(anchor, others, scale=lambda base: base)[1]
