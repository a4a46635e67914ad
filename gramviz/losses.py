"""Contrastive losses over the score matrices: GRAM (volume) and the cosine baselines it replaces.

All three share one call, ``loss(anchor, *others)``, with anchors (B, D) and each other modality
(B, D), row i of every tensor belonging to sample i. Each loss is the symmetric cross-entropy of
the paper, L = (L_D2A + L_A2D) / 2: rows are the anchors scored against all candidates, and the
transposed problem scores each candidate against all anchors. Inside a ``torch.distributed``
process group the batch is gathered from all ranks (with gradients) and the targets are offset
by this rank's position, as in GRAM's multi-GPU training.
"""

from __future__ import annotations

import abc
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import check_matrix_inputs, compute_dtype
from ._workspace import scratch, training_scratch
from .distributed import gather_with_grad, is_distributed
from .gram import _base_height_matrix
from .scores import cosine_matrix, get_measure

__all__ = ["LOGIT_RANGES", "LOSSES", "smoothed_cross_entropy", "ContrastiveLoss", "GRAMLoss", "PairwiseInfoNCELoss", "FusedInfoNCELoss"]


class _SmoothedCrossEntropy(torch.autograd.Function):
    """Label-smoothed cross-entropy along one or both axes of one logit matrix, in a few passes.

    For each axis in ``dims`` returns ``F.cross_entropy(logits if dim == 1 else logits.T, targets,
    label_smoothing=eps)``: dim 1 treats each row as a query over the columns, dim 0 each column as
    a query over the rows. Both directions of the symmetric loss read the same matrix (no
    transpose), the softmax is kept from the forward pass, and the backward pass writes the
    gradient of both terms into one buffer.
    """

    @staticmethod
    def forward(ctx, logits: Tensor, targets: Tensor, eps: float, *dims: int) -> tuple[Tensor, ...]:
        saved, losses = [], []
        for dim in dims:
            peak = logits.amax(dim, keepdim=True)
            buffer = training_scratch(ctx, f"softmax {dim}", logits.shape, logits.dtype, logits.device)
            expd = torch.sub(logits, peak, out=buffer).exp_()
            total = expd.sum(dim, keepdim=True)
            lse = (peak + total.log()).squeeze(dim)  # one log-sum-exp per query
            picked = logits.gather(dim, targets.unsqueeze(dim)).squeeze(dim)
            losses.append((lse - (1 - eps) * picked - eps * logits.mean(dim)).mean())
            saved += [expd, total]
        ctx.save_for_backward(targets, *saved)
        ctx.dims, ctx.eps = dims, eps
        return tuple(losses)

    @staticmethod
    def backward(ctx, *grads: Tensor) -> tuple[Tensor | None, ...]:
        targets, *saved = ctx.saved_tensors
        eps, n = ctx.eps, targets.numel()
        out = None
        # d loss / d logits = (softmax - (1 - eps) onehot - eps / C) / n_queries, per direction
        offset = sum(-g * eps / (n * saved[2 * i].shape[dim]) for i, (g, dim) in enumerate(zip(grads, ctx.dims)))
        for i, (g, dim) in enumerate(zip(grads, ctx.dims)):
            expd, total = saved[2 * i], saved[2 * i + 1]
            if out is None:
                buffer = scratch("logit gradient", expd.shape, expd.dtype, expd.device)
                out = torch.mul(expd, g / (n * total), out=buffer)
                out.add_(offset)
            else:
                out.addcmul_(expd, g / (n * total))
            hit = (-(1 - eps) * g / n).expand(n).to(out.dtype).unsqueeze(dim)
            out.scatter_add_(dim, targets.unsqueeze(dim), hit)
        return (out, None, None, *(None for _ in ctx.dims))


def smoothed_cross_entropy(logits: Tensor, targets: Tensor, dims: tuple[int, ...] = (1,), eps: float = 0.0) -> tuple[Tensor, ...]:
    """Mean label-smoothed cross-entropy of ``logits`` (N, M) along each axis in ``dims``.

    ``dim=1``: row i is a query over the columns, with answer ``targets[i]``; ``dim=0``: column j
    is a query over the rows, with answer ``targets[j]``. Returns one scalar per axis.

    Example:
        >>> x = torch.randn(4, 4)
        >>> rows, cols = smoothed_cross_entropy(x, torch.arange(4), dims=(1, 0), eps=0.1)
        >>> torch.allclose(cols, F.cross_entropy(x.T, torch.arange(4), label_smoothing=0.1))
        True
    """
    # half-precision logits (cosine losses under autocast) are reduced in float32
    return _SmoothedCrossEntropy.apply(logits.to(compute_dtype(logits.dtype)), targets, eps, *dims)


class ContrastiveLoss(nn.Module, metaclass=abc.ABCMeta):
    """Symmetric InfoNCE over one or more score matrices, with a log-parameterised temperature.

    Subclasses define ``scores(anchor, *others) -> list of (N, M) score matrices`` (higher = more
    aligned); the logits are score / temperature and the loss is averaged over the matrices.
    ``measure`` names the `gramviz.scores` measure by which a model trained with the loss ranks
    its own embeddings.

    Args:
        temperature: initial temperature tau (the paper starts at 0.07).
        learnable_temperature: learn log(tau) as a parameter; otherwise a fixed buffer.
        label_smoothing: label smoothing of the cross-entropy (the paper uses 0.1).
        min_temperature, max_temperature: tau is clamped to this range (logit scale <= 100).
    """

    def __init__(
        self,
        temperature: float = 0.07,
        learnable_temperature: bool = True,
        label_smoothing: float = 0.1,
        min_temperature: float = 0.01,
        max_temperature: float = 1.0,
    ) -> None:
        super().__init__()
        if not 0 < min_temperature <= temperature <= max_temperature:
            raise ValueError(
                f"temperature {temperature} must lie in [min_temperature, max_temperature] = "
                f"[{min_temperature}, {max_temperature}], all positive"
            )
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing}")
        log_t = torch.tensor(math.log(temperature))
        if learnable_temperature:
            self.log_temperature = nn.Parameter(log_t)
        else:
            self.register_buffer("log_temperature", log_t)
        self.label_smoothing = label_smoothing
        self.log_bounds = (math.log(min_temperature), math.log(max_temperature))

    @property
    def temperature(self) -> Tensor:
        """The current temperature tau, clamped to its range."""
        return self.log_temperature.clamp(*self.log_bounds).exp()

    measure: str  # the gramviz.scores measure this loss aligns

    @abc.abstractmethod
    def scores(self, anchor: Tensor, *others: Tensor) -> list[Tensor]:
        """The score matrices (higher = more aligned) that the loss contrasts; one per term."""

    def logits(self, anchor: Tensor, *others: Tensor, inv_temperature: Tensor) -> list[Tensor]:
        """Scores divided by the temperature (a subclass may fuse the two for speed)."""
        return [s * inv_temperature for s in self.scores(anchor, *others)]

    def forward(self, anchor: Tensor, *others: Tensor, return_terms: bool = False) -> Tensor | dict[str, Tensor]:
        """The loss for a batch; with ``return_terms`` a dict of its named terms.

        Returns:
            A scalar, or ``{"loss", "loss_d2a", "loss_a2d", "temperature"}``.
        """
        check_matrix_inputs(anchor, others, what=type(self).__name__)
        if any(o.shape[0] != anchor.shape[0] for o in others):
            raise ValueError(f"{type(self).__name__}: anchor and other modalities need the same batch size")
        anchor_all, offset = gather_with_grad(anchor)
        others_all = [gather_with_grad(o)[0] for o in others]
        targets = torch.arange(anchor.shape[0], device=anchor.device) + offset
        tau = self.temperature
        row_logits = self.logits(anchor, *others_all, inv_temperature=1 / tau)  # each (B_local, B_global)
        # the transposed problem: local candidates against all anchors, each (B_global, B_local)
        col_logits = self.logits(anchor_all, *others, inv_temperature=1 / tau) if is_distributed() else None
        eps = self.label_smoothing
        if is_distributed():
            d2a = [smoothed_cross_entropy(x, targets, (1,), eps)[0] for x in row_logits]
            a2d = [smoothed_cross_entropy(x, targets, (0,), eps)[0] for x in col_logits]
        else:  # one square matrix per term: both directions in one pass
            d2a, a2d = zip(*(smoothed_cross_entropy(x, targets, (1, 0), eps) for x in row_logits))
        loss_d2a, loss_a2d = torch.stack(list(d2a)).mean(), torch.stack(list(a2d)).mean()
        loss = (loss_d2a + loss_a2d) / 2
        if return_terms:
            return {"loss": loss, "loss_d2a": loss_d2a, "loss_a2d": loss_a2d, "temperature": tau.detach()}
        return loss


LOGIT_RANGES = ("volume", "matched")


class GRAMLoss(ContrastiveLoss):
    """GRAM's contrastive loss: logits = -volume(anchor_i, others_j...) / tau.

    Volumes of unit vectors lie in [0, 1], so these logits span [-1/tau, 0]: half the range of
    cosine logits s/tau over [-1/tau, 1/tau], and the same tau gives GRAM a softer softmax.
    ``logit_range="matched"`` uses (1 - 2 volume) / tau instead, which spans the cosine range
    (the constant cancels in the softmax: it is -2 volume / tau, twice the default's scale).

    Args:
        logit_range: ``"volume"`` (the paper's -volume / tau) or ``"matched"``.
        **kwargs: as `ContrastiveLoss` (temperature, learnable_temperature, label_smoothing, ...).

    Example:
        >>> loss = GRAMLoss()
        >>> t, v, a = (torch.nn.functional.normalize(torch.randn(8, 16), dim=-1) for _ in range(3))
        >>> loss(t, v, a).shape
        torch.Size([])
    """

    measure = "volume"

    def __init__(self, logit_range: str = "volume", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if logit_range not in LOGIT_RANGES:
            raise ValueError(f"logit_range must be one of {LOGIT_RANGES}, got {logit_range!r}")
        self.logit_range = logit_range

    def scores(self, anchor: Tensor, *others: Tensor) -> list[Tensor]:
        return [get_measure("volume").function(anchor, *others)]

    def logits(self, anchor: Tensor, *others: Tensor, inv_temperature: Tensor) -> list[Tensor]:
        # -volume / tau = height * (-base / tau): one elementwise pass over the (N, M) matrix
        factor = -2.0 if self.logit_range == "matched" else -1.0  # "matched": the constant 1 / tau cancels
        return [_base_height_matrix(anchor, others, scale=lambda base: factor * inv_temperature * base)[1]]


class PairwiseInfoNCELoss(ContrastiveLoss):
    """Cosine InfoNCE of the anchor with each other modality, averaged (ImageBind/LanguageBind)."""

    measure = "cosine_pairwise"

    def scores(self, anchor: Tensor, *others: Tensor) -> list[Tensor]:
        return [cosine_matrix(anchor, o) for o in others]


class FusedInfoNCELoss(ContrastiveLoss):
    """Cosine InfoNCE of the anchor with the normalised mean of the other modalities (VAST-style)."""

    measure = "cosine_fused"

    def scores(self, anchor: Tensor, *others: Tensor) -> list[Tensor]:
        return [get_measure("cosine_fused").function(anchor, *others)]


# The training objectives by the name a config gives them (``loss = "gram"``)
LOSSES: dict[str, type[ContrastiveLoss]] = {"gram": GRAMLoss, "pairwise": PairwiseInfoNCELoss, "fused": FusedInfoNCELoss}
