"""GRAM models: small encoders per modality, the `GRAMModel` that holds them in a modality-keyed
dict, the optional data-anchor matching (DAM) head, and safe saving and loading (safetensors + JSON).

Example:
    >>> import torch
    >>> from gramviz.models import GRAMModel, ModelConfig, Tokenizer
    >>> model = GRAMModel(ModelConfig(), Tokenizer.build(["a bouncing ball"]))
    >>> model.encode({"text": ["a ball"], "video": torch.rand(1, 24, 3, 128, 128)})["video"].shape
    torch.Size([1, 256])
"""

from .config import MODALITIES, ModelConfig, clip_settings
from .dam import DAMHead, ModalityTokens, dam_loss, dam_rerank, sample_hard_negatives
from .encoders import AudioEncoder, TextEncoder, TokenEncoder, VideoEncoder, build_encoder
from .inference import inference
from .io import ModelLoadError, bundled_models, model_fingerprint, save_pretrained
from .loading import load_model
from .model import GRAMModel
from .tokenizer import Tokenizer

__all__ = [
    "MODALITIES",
    "AudioEncoder",
    "DAMHead",
    "GRAMModel",
    "ModalityTokens",
    "ModelConfig",
    "ModelLoadError",
    "TextEncoder",
    "TokenEncoder",
    "Tokenizer",
    "VideoEncoder",
    "build_encoder",
    "clip_settings",
    "bundled_models",
    "dam_loss",
    "dam_rerank",
    "inference",
    "load_model",
    "model_fingerprint",
    "sample_hard_negatives",
    "save_pretrained",
]
