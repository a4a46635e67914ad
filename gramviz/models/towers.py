"""`load_tower`: a `Backbone` reference -> its `Tower`, from transformers or open_clip (each
imported only when a backbone of that source is built)."""

from __future__ import annotations

from .backbones import Backbone, Tower
from .hf_towers import hf_tower
from .open_clip_towers import open_clip_tower

__all__ = ["load_tower"]


def load_tower(backbone: Backbone, modality: str, loaded: dict | None = None) -> Tower:
    """Build the tower ``backbone`` names for ``modality``, with its preprocessing.

    Args:
        backbone: the reference.
        modality: ``"text"``, ``"video"`` or ``"audio"`` (picks the default tower of dual models).
        loaded: models loaded so far by reference, so that one CLIP serves text and video.

    Raises:
        BackboneError: naming the backbone (missing directory, hub not reachable, unknown tower).
    """
    loaded = {} if loaded is None else loaded
    if backbone.source == "open_clip":
        tower = open_clip_tower(backbone, modality, loaded)
    else:
        tower = hf_tower(backbone, modality, loaded)
    tower.set_trainable()
    return tower
