"""gramviz: GRAM, multimodal alignment by the Gramian volume of the parallelotope a sample's
modality embeddings span (Cicchetti et al., ICLR 2025), with exact and fast math, training,
evaluation and figures.

``import gramviz`` loads torch only; plotting and the app import their extras when used.
"""

from ._version import __version__
from .cache import CachedClipDataset, build_cache, open_cache
from .datasets import ClipDataset, ClipSettings, collate_clips, read_annotations
from .embeddings import EmbeddingMetadata, load_embeddings, save_embeddings
from .features import log_mel, resize_frames
from .gram import base_height, base_height_matrix, gram_matrix, volume, volume_matrix
from .losses import ContrastiveLoss, FusedInfoNCELoss, GRAMLoss, PairwiseInfoNCELoss
from .media import Clip, MediaError, read_clip
from .metrics import confusion_matrix, relevance_matrix, retrieval_metrics, retrieval_ranks, topk_accuracy
from .models import Backbone, GRAMModel, ModelConfig, ModelLoadError, convert_gram, load_model, pretrained_model
from .scores import MEASURES, cosine_matrix, score_matrix


def __getattr__(name: str):
    # the generated world (numpy rendering, media writing) loads on first use: gramviz.world
    if name == "world":
        import importlib

        return importlib.import_module(".world", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MEASURES",
    "Backbone",
    "CachedClipDataset",
    "Clip",
    "ClipDataset",
    "ClipSettings",
    "ContrastiveLoss",
    "EmbeddingMetadata",
    "FusedInfoNCELoss",
    "GRAMLoss",
    "GRAMModel",
    "MediaError",
    "ModelConfig",
    "ModelLoadError",
    "PairwiseInfoNCELoss",
    "base_height",
    "base_height_matrix",
    "build_cache",
    "collate_clips",
    "confusion_matrix",
    "convert_gram",
    "cosine_matrix",
    "gram_matrix",
    "load_embeddings",
    "load_model",
    "log_mel",
    "open_cache",
    "pretrained_model",
    "read_annotations",
    "read_clip",
    "relevance_matrix",
    "resize_frames",
    "retrieval_metrics",
    "retrieval_ranks",
    "save_embeddings",
    "score_matrix",
    "topk_accuracy",
    "volume",
    "volume_matrix",
]
