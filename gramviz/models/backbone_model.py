"""`pretrained_model`: a GRAM model whose modalities stand on pretrained backbones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..modalities import MODALITIES
from .backbones import Backbone, BackboneError
from .config import ModelConfig
from .model import GRAMModel
from .pretrained import BackboneEncoder
from .towers import load_tower

__all__ = ["pretrained_model"]


def pretrained_model(
    backbones: Mapping[str, Backbone | Mapping[str, Any]],
    embed_dim: int = 512,
    head: str = "linear",
    temporal: str = "mean",
    num_frames: int = 8,
    audio_seconds: float | None = None,
    sample_rate: int | None = None,
    max_text_len: int = 64,
) -> GRAMModel:
    """A `GRAMModel` with one pretrained backbone per modality and a trainable head on each.

    Args:
        backbones: ``{modality: Backbone}`` (or the Backbone's fields as a dict), e.g. CLIP's
            text and vision towers for ``"text"`` and ``"video"`` and CLAP's audio tower for
            ``"audio"``. Text is the anchor when present.
        embed_dim: dimension of the shared space the heads map to.
        head: ``"linear"`` or ``"mlp"`` (two layers with a GELU).
        temporal: pooling of the per-frame video features: ``"mean"`` or ``"transformer"``.
        num_frames: frames sampled evenly along a clip for the image tower.
        audio_seconds: audio length read per clip; None: the feature extractor's maximum
            (CLAP: 10 s), else 10 s.
        sample_rate: the rate clips are decoded at; None: the feature extractor's own.
        max_text_len: tokens per caption (at most the tokenizer's own limit).

    Returns:
        The model; frames are decoded at the image processor's crop size.

    Raises:
        BackboneError: a backbone that cannot be found or built (named in the message).

    Example:
        A CLIP for frames and text and a CLAP for audio (downloads the weights once):

        >>> model = pretrained_model({  # doctest: +SKIP
        ...     "text": Backbone("hf", "openai/clip-vit-base-patch32", tower="text"),
        ...     "video": Backbone("hf", "openai/clip-vit-base-patch32", tower="vision"),
        ...     "audio": Backbone("hf", "laion/clap-htsat-unfused", tower="audio")})
    """
    refs = {str(m): Backbone.from_dict(b) if isinstance(b, Mapping) else b for m, b in backbones.items()}
    if not refs:
        raise BackboneError("pretrained_model: name at least one backbone")
    loaded: dict = {}
    towers = {m: load_tower(ref, m, loaded) for m, ref in refs.items()}
    order = [m for m in MODALITIES if m in towers] + [m for m in towers if m not in MODALITIES]
    image = next((t.image for t in towers.values() if t.image is not None), None)
    extractor = next((t.extractor for t in towers.values() if t.extractor is not None), None)
    rate = int(sample_rate or getattr(extractor, "sampling_rate", 0) or 16000)
    if audio_seconds is None:
        longest = getattr(extractor, "nb_max_samples", None)
        audio_seconds = longest / extractor.sampling_rate if longest else 10.0
    config = ModelConfig(
        embed_dim=embed_dim, modalities=tuple(order), num_frames=num_frames,
        frame_size=image.size if image is not None else ModelConfig().frame_size, sample_rate=rate,
        audio_seconds=float(audio_seconds), max_text_len=max_text_len,
        backbones={m: towers[m].backbone.to_dict() for m in order}, head=head, temporal=temporal,
    )
    return GRAMModel(config, encoders={m: BackboneEncoder(m, towers[m], config) for m in order})
