"""GRAM models: small encoders per modality or pretrained backbones (Hugging Face, open_clip) with
GRAM heads, the `GRAMModel` that holds them in a modality-keyed
dict, the optional data-anchor matching (DAM) head, and safe saving and loading (safetensors + JSON).
The official GRAM checkpoints convert to such a model (`convert_gram`, `gramviz.models.gram_official`).

Example:
    >>> import torch
    >>> from gramviz.models import GRAMModel, ModelConfig, Tokenizer
    >>> model = GRAMModel(ModelConfig(), Tokenizer.build(["a bouncing ball"]))
    >>> model.encode({"text": ["a ball"], "video": torch.rand(1, 24, 3, 128, 128)})["video"].shape
    torch.Size([1, 256])
"""

from .backbone_model import pretrained_model
from .backbones import Backbone, BackboneError, PretrainedTokenizer
from .config import MODALITIES, ModelConfig, clip_settings
from .dam import DAMHead, ModalityTokens, dam_loss, dam_rerank, sample_hard_negatives
from .encoders import AudioEncoder, TextEncoder, TokenEncoder, VideoEncoder, build_encoder
from .gram_official.checkpoint import CheckpointError
from .gram_official.config import OfficialConfig
from .gram_official.convert import convert_gram
from .inference import inference
from .io import ModelLoadError, bundled_models, model_fingerprint, save_pretrained, trained_state
from .loading import load_model
from .model import GRAMModel
from .pretrained import BackboneEncoder, TowerFeatures
from .tokenizer import IgnoredWordsWarning, Tokenizer

__all__ = [
    "MODALITIES",
    "AudioEncoder",
    "Backbone",
    "BackboneEncoder",
    "BackboneError",
    "CheckpointError",
    "DAMHead",
    "GRAMModel",
    "IgnoredWordsWarning",
    "ModalityTokens",
    "ModelConfig",
    "ModelLoadError",
    "OfficialConfig",
    "PretrainedTokenizer",
    "TextEncoder",
    "TokenEncoder",
    "Tokenizer",
    "TowerFeatures",
    "VideoEncoder",
    "build_encoder",
    "bundled_models",
    "clip_settings",
    "convert_gram",
    "dam_loss",
    "dam_rerank",
    "inference",
    "load_model",
    "model_fingerprint",
    "pretrained_model",
    "sample_hard_negatives",
    "save_pretrained",
    "trained_state",
]
