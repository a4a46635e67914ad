"""`GRAMObjective`: what a training step minimises, the contrastive loss and its optional terms."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from ..gram import volume_matrix
from ..losses import LOSSES, PairwiseInfoNCELoss
from ..models import GRAMModel, dam_loss
from .config import TrainConfig

__all__ = ["GRAMObjective"]


class GRAMObjective(nn.Module):
    """The model and every loss term in one module, so that DDP averages all their gradients.

    ``forward(batch)`` returns ``{"loss", "loss_contrastive", "temperature"[, "loss_dam"][, "loss_extra"]}``.

    Args:
        model: the `GRAMModel` to train; text is the anchor of the contrastive loss.
        cfg: the training config: ``loss`` names the class in `gramviz.losses.LOSSES`; ``dam``,
            ``extra_term`` and their weights add the other terms.
    """

    def __init__(self, model: GRAMModel, cfg: TrainConfig) -> None:
        super().__init__()
        self.model = model
        self.modalities = tuple(model.config.modalities)
        kw = {"temperature": cfg.temperature, "label_smoothing": cfg.label_smoothing,
              "learnable_temperature": cfg.learn_temperature}
        gram = {"logit_range": cfg.logit_range} if cfg.loss == "gram" else {}
        self.loss = LOSSES[cfg.loss](**kw, **gram)  # text anchor against the other modalities
        # symmetric InfoNCE between video and audio, with its own temperature
        self.extra = PairwiseInfoNCELoss(**kw) if cfg.extra_term == "video_audio" else None
        self.extra_weight, self.dam_weight = cfg.extra_weight, (cfg.dam_weight if cfg.dam else 0.0)

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """The weighted total ``"loss"`` and each of its terms, for one batch of model inputs."""
        if self.dam_weight:  # the DAM head reads the unpooled tokens, computed in the same pass
            emb, tokens = self.model.encode(batch, return_tokens=True)
        else:
            emb = self.model.encode(batch)  # {modality: (B, D)}, L2-normalised
        anchor, others = emb["text"], [emb[m] for m in self.modalities if m != "text"]
        terms = self.loss(anchor, *others, return_terms=True)
        out = {"loss_contrastive": terms["loss"], "temperature": terms["temperature"]}
        loss = terms["loss"]
        if self.extra is not None:
            out["loss_extra"] = self.extra(emb["video"], emb["audio"])
            loss = loss + self.extra_weight * out["loss_extra"]
        volumes = volume_matrix(anchor.detach().float(), *(o.detach().float() for o in others))  # (B, B), local
        out.update(batch_collapse(volumes))
        if self.dam_weight:
            out["loss_dam"] = dam_loss(self.model, tokens, volumes, temperature=terms["temperature"])
            loss = loss + self.dam_weight * out["loss_dam"]
        out["loss"] = loss
        return out


def batch_collapse(volumes: Tensor) -> dict[str, Tensor]:
    """The mean volume of the batch's matching tuples (the diagonal of its (B, B) volume matrix) and
    of its non-matching ones: logged at every log step, they show when training leaves the flat
    region near orthogonality (both near 1) at a finer grain than the per-epoch validation. A batch
    of one sample has no non-matching tuple, so only the first is given."""
    n = volumes.shape[0]
    out = {"geom/batch_pos_volume": volumes.diagonal().mean()}
    if n > 1:
        out["geom/batch_neg_volume"] = (volumes.sum() - volumes.diagonal().sum()) / (n * n - n)
    return out
