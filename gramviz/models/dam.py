"""Data-anchor matching (DAM): a fusion head that says whether an anchor and a candidate match.

The head reads the unpooled tokens of every modality of one (anchor, candidate) pair, e.g. the
words of a caption with the frames and audio steps of a clip, and returns a matched/not-matched
logit. It is trained with binary cross-entropy on the batch's positives and one hard negative per
sample drawn from softmax(-V / tau) (volume V small = looks aligned = hard), in both directions;
at evaluation it re-ranks the top candidates of the volume ranking (`dam_rerank`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ModelConfig
from .inference import inference

__all__ = ["DAMHead", "ModalityTokens", "dam_loss", "dam_rerank", "pair_logits", "pair_probabilities",
           "sample_hard_negatives"]


class ModalityTokens(dict):
    """``{modality: (B, L, width)}`` unpooled tokens; ``masks`` holds ``{modality: (B, L) bool}``
    (True on real tokens) for modalities with padding."""

    def __init__(self, *args, masks: Mapping[str, Tensor] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.masks: dict[str, Tensor] = dict(masks or {})


def _token_width(config: ModelConfig, modality: str) -> int:
    return int(getattr(config, f"{modality}_width", config.dam_width))


class DAMHead(nn.Module):
    """Fusion transformer over [FUSE] + the projected tokens of all modalities -> one logit.

    Each modality's tokens are layer-normalised, projected to ``dam_width`` and tagged with a
    learned modality embedding; two pre-norm transformer layers mix them; the [FUSE] token's
    output gives the logit.

    Example:
        >>> head = DAMHead(ModelConfig(dam=True, dam_width=32))
        >>> head({"text": torch.randn(2, 5, 128), "video": torch.randn(2, 8, 64)}).shape
        torch.Size([2])
    """

    def __init__(self, config: ModelConfig, layers: int = 2) -> None:
        super().__init__()
        w = config.dam_width
        self.inputs = nn.ModuleDict({
            m: nn.Sequential(nn.LayerNorm(_token_width(config, m)), nn.Linear(_token_width(config, m), w))
            for m in config.modalities
        })
        self.modality = nn.ParameterDict({m: nn.Parameter(torch.randn(w) * 0.02) for m in config.modalities})
        self.fuse = nn.Parameter(torch.randn(1, 1, w) * 0.02)
        layer = nn.TransformerEncoderLayer(
            w, 4, 2 * w, dropout=config.dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.fusion = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Sequential(nn.LayerNorm(w), nn.Linear(w, 1))

    def forward(self, tokens: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None) -> Tensor:
        """Matching logits (B,) of B pairs, given each modality's (B, L_m, width_m) tokens."""
        masks = dict(masks or getattr(tokens, "masks", {}))
        b = next(iter(tokens.values())).shape[0]
        parts = [self.fuse.expand(b, 1, -1)]
        keep = [torch.ones(b, 1, dtype=torch.bool, device=self.fuse.device)]
        for m in self.inputs:
            if m in tokens:
                parts.append(self.inputs[m](tokens[m]) + self.modality[m])  # (B, L_m, w)
                all_real = torch.ones(tokens[m].shape[:2], dtype=torch.bool, device=self.fuse.device)
                keep.append(masks.get(m, all_real))
        x = self.fusion(torch.cat(parts, dim=1), src_key_padding_mask=~torch.cat(keep, dim=1))  # (B, 1 + sum L_m, w)
        return self.out(x[:, 0]).squeeze(-1)


def sample_hard_negatives(
    volume_matrix: Tensor, temperature: float | Tensor = 0.07, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """One hard negative per sample, drawn from softmax(-V / tau) without the positive.

    Args:
        volume_matrix: (B, B) with V[i, j] = volume(anchor_i, candidate_j), positives on the diagonal.
        temperature: tau; the paper's initial 0.07 by default (V alone is nearly uniform).
        generator: random generator (default: torch's global one).

    Returns:
        ``negative_candidates`` (B,): for anchor i a candidate j != i drawn from row i;
        ``negative_anchors`` (B,): for candidate j an anchor i != j drawn from column j.

    Example:
        >>> V = torch.ones(3, 3) - 0.9 * torch.eye(3)[[1, 2, 0]]  # V[0, 1], V[1, 2], V[2, 0] small
        >>> cands, anchors = sample_hard_negatives(V, temperature=0.001)
        >>> cands.tolist(), anchors.tolist()
        ([1, 2, 0], [2, 0, 1])
    """
    v = volume_matrix.detach().float()
    if v.dim() != 2 or v.shape[0] != v.shape[1] or v.shape[0] < 2:
        raise ValueError(
            f"sample_hard_negatives: expected a square (B, B) volume matrix with B >= 2, got {tuple(v.shape)}"
        )
    logits = (-v / temperature).masked_fill(torch.eye(v.shape[0], dtype=torch.bool, device=v.device), float("-inf"))
    negative_candidates = torch.multinomial(logits.softmax(dim=1), 1, generator=generator).squeeze(1)
    negative_anchors = torch.multinomial(logits.T.softmax(dim=1), 1, generator=generator).squeeze(1)
    return negative_candidates, negative_anchors


def pair_logits(
    model: nn.Module, tokens: Mapping[str, Tensor], anchor_index: Tensor, candidate_index: Tensor
) -> Tensor:
    """DAM logits of the pairs (anchor_index[p], candidate_index[p]): the anchor modality's tokens
    are taken at ``anchor_index``, every other modality's at ``candidate_index``."""
    masks = getattr(tokens, "masks", {})
    pick = {m: (anchor_index if m == model.anchor else candidate_index) for m in tokens}
    return model.dam({m: t[pick[m]] for m, t in tokens.items()}, {m: k[pick[m]] for m, k in masks.items()})


def pair_probabilities(
    model: nn.Module, tokens: Mapping[str, Tensor], anchor_index: Tensor, candidate_index: Tensor, batch_size: int = 512
) -> Tensor:
    """DAM matching probabilities of many pairs, in evaluation mode, ``batch_size`` pairs at a time."""
    with inference(model):
        chunks = [
            torch.sigmoid(pair_logits(model, tokens, anchor_index[s], candidate_index[s]))
            for s in (slice(i, i + batch_size) for i in range(0, len(anchor_index), batch_size))
        ]
    return torch.cat(chunks) if chunks else torch.zeros(0, device=anchor_index.device)


def _require_dam(model: nn.Module, tokens: Mapping[str, Tensor], what: str) -> None:
    if getattr(model, "dam", None) is None:
        raise ValueError(f"{what}: the model has no DAM head (ModelConfig(dam=True))")
    if model.anchor not in tokens or len(tokens) < 2:
        raise ValueError(f"{what}: tokens of the anchor {model.anchor!r} and at least one other modality are needed")


def dam_loss(
    model: nn.Module,
    tokens: Mapping[str, Tensor],
    volume_matrix: Tensor,
    temperature: float | Tensor = 0.07,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Binary cross-entropy of the DAM head on B positives and 2B hard negatives.

    Args:
        model: a `GRAMModel` with a DAM head.
        tokens: the batch's unpooled tokens (`GRAMModel.encode_tokens` or ``encode(..., return_tokens=True)``).
        volume_matrix: (B, B) volumes of this batch's anchors against its candidates
            (``gramviz.volume_matrix(t, v, a)``); only used to draw negatives (no gradient).
        temperature: tau of softmax(-V / tau) (e.g. the contrastive loss's current temperature).
        generator: random generator for the draws.

    Returns:
        A scalar; a batch of one sample has only its positive.
    """
    _require_dam(model, tokens, "dam_loss")
    b = volume_matrix.shape[0]
    own = torch.arange(b, device=volume_matrix.device)
    if b < 2:
        anchor_index, candidate_index = own, own
    else:
        negative_candidates, negative_anchors = sample_hard_negatives(volume_matrix, temperature, generator)
        anchor_index = torch.cat([own, own, negative_anchors])
        candidate_index = torch.cat([own, negative_candidates, own])
    logits = pair_logits(model, tokens, anchor_index, candidate_index)  # (B,) or (3B,)
    labels = (anchor_index == candidate_index).to(logits.dtype)
    return F.binary_cross_entropy_with_logits(logits, labels)


def dam_rerank(
    model: nn.Module,
    tokens: Mapping[str, Tensor],
    scores: Tensor,
    k: int = 50,
    queries: str = "anchor",
    batch_size: int = 512,
) -> Tensor:
    """Re-rank the top ``k`` items of each query by the DAM matching probability.

    Args:
        model: a `GRAMModel` with a DAM head.
        tokens: unpooled tokens: N anchors (e.g. captions) and M candidates (clips).
        scores: (N, M) anchor-to-candidate scores (higher = better, e.g. ``-volume``), or (M, N)
            with ``queries="candidates"``.
        k: how many top items per query are re-ranked.
        queries: ``"anchor"`` (rows are anchors) or ``"candidates"`` (rows are candidates).
        batch_size: pairs per DAM forward pass.

    Returns:
        float64 scores of the same shape: the top-k entries of each row become
        ``max(scores) + 1 + probability`` (so they stay on top, ordered by the DAM), the others
        are unchanged.
    """
    _require_dam(model, tokens, "dam_rerank")
    if queries not in ("anchor", "candidates"):
        raise ValueError(f"dam_rerank: queries must be 'anchor' or 'candidates', got {queries!r}")
    rows, cols = scores.shape
    top = scores.topk(min(k, cols), dim=1).indices  # (rows, k)
    row_index = torch.arange(rows, device=scores.device).repeat_interleave(top.shape[1])
    col_index = top.flatten()
    anchor_index, candidate_index = (row_index, col_index) if queries == "anchor" else (col_index, row_index)
    probs = pair_probabilities(model, tokens, anchor_index, candidate_index, batch_size)
    out = scores.detach().double().clone()
    finite = out[torch.isfinite(out)]
    lift = (finite.max() if finite.numel() else out.new_zeros(())) + 1
    out[row_index, col_index] = lift + probs.double().to(out.device)
    return out
