"""gramviz: GRAM, multimodal alignment by the Gramian volume of the parallelotope a sample's
modality embeddings span (Cicchetti et al., ICLR 2025), with exact and fast math, training,
evaluation and figures.

``import gramviz`` loads torch only; plotting and the app import their extras when used.
"""

from .media import Clip, MediaError, read_clip
from .losses import ContrastiveLoss, FusedInfoNCELoss, GRAMLoss, PairwiseInfoNCELoss
from .metrics import confusion_matrix, relevance_matrix, retrieval_metrics, retrieval_ranks, topk_accuracy
from .scores import MEASURES, cosine_matrix, score_matrix
from .gram import base_height, base_height_matrix, gram_matrix, volume, volume_matrix

__version__ = "0.1.0"

__all__ = [
    "MEASURES",
    "Clip",
    "MediaError",
    "ContrastiveLoss",
    "FusedInfoNCELoss",
    "GRAMLoss",
    "PairwiseInfoNCELoss",
    "base_height",
    "base_height_matrix",
    "confusion_matrix",
    "cosine_matrix",
    "gram_matrix",
    "relevance_matrix",
    "retrieval_metrics",
    "retrieval_ranks",
    "read_clip",
    "score_matrix",
    "topk_accuracy",
    "volume",
    "volume_matrix",
]
