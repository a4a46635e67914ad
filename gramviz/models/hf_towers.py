"""Hugging Face transformers towers (`gramviz.models.backbones`, ``source="hf"``).

Dual models (CLIP, CLAP, SigLIP) give one tower each: the text, vision or audio transformer and
its projection, pooled as the model's own ``get_*_features`` pools. Plain ``AutoModel`` encoders
are pooled by the mean of their last hidden states (text, as sentence encoders do) or by their
pooler output where they have one (images, audio).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from .backbones import _DUAL, TOWERS, Backbone, BackboneError, ImageSpec, PretrainedTokenizer, Tower, check_local

__all__ = ["hf_tower"]

_INTERPOLATION = {0: "nearest", 2: "bilinear", 3: "bicubic"}  # PIL resample codes


def _transformers(backbone: Backbone):
    try:
        import transformers
    except ImportError as e:
        raise BackboneError(f"backbone {backbone.label} needs transformers: pip install 'gramviz[hf]'") from e
    return transformers


def _from_pretrained(backbone: Backbone, cls: Any, what: str):
    """``cls.from_pretrained`` of the backbone's directory or hub name, with errors naming it."""
    name = str(Path(backbone.name).expanduser()) if Path(backbone.name).expanduser().is_dir() else backbone.name
    local = Path(name).is_dir()
    try:
        return cls.from_pretrained(name, revision=backbone.revision, local_files_only=local)
    except (OSError, ValueError) as e:
        where = (f"the directory {name} has no {what} ({type(e).__name__}: {str(e).splitlines()[0]})" if local else
                 f"no local directory {name} and the model hub is not reachable or has no such model "
                 f"({type(e).__name__}: {str(e).splitlines()[0]})")
        raise BackboneError(f"backbone {backbone.label}: {where}") from e


def hf_tower(backbone: Backbone, modality: str, loaded: dict) -> Tower:
    """The tower of a transformers model for ``modality``, with its tokenizer or processor."""
    transformers = _transformers(backbone)
    check_local(backbone, backbone.name)
    key = ("hf", backbone.name, backbone.revision)
    if key not in loaded:
        loaded[key] = _from_pretrained(backbone, transformers.AutoModel, "model (config.json and weights)")
    model = loaded[key]
    model_type = model.config.model_type
    if model_type in _DUAL:
        kind = backbone.tower or TOWERS.get(modality, "")
        if kind not in _DUAL[model_type]:
            raise BackboneError(f"backbone {backbone.label}: a {model_type} model has towers "
                                f"{sorted(_DUAL[model_type])}, not {kind!r} (set tower = ...)")
        body_name, projection_name = _DUAL[model_type][kind]
        projection = getattr(model, projection_name) if projection_name else None
        sub = getattr(model.config, f"{kind}_config", model.config)
        width = model.config.projection_dim if projection is not None else sub.hidden_size
        tower = Tower(backbone, kind, getattr(model, body_name), projection, width, "hf", "pooler")
        max_positions = getattr(sub, "max_position_embeddings", None)
    else:
        kind = TOWERS.get(modality, modality)
        if backbone.tower not in (None, kind):
            raise BackboneError(f"backbone {backbone.label}: a {model_type} model has one tower; leave tower unset")
        width = getattr(model.config, "hidden_size", None)
        if width is None:
            raise BackboneError(f"backbone {backbone.label}: its config names no hidden_size to size the head")
        tower = Tower(backbone, kind, model, None, width, "hf", "mean" if kind == "text" else "pooler")
        max_positions = getattr(model.config, "max_position_embeddings", None)
    commit = getattr(model.config, "_commit_hash", None)
    if backbone.revision is None and commit and not Path(backbone.name).expanduser().is_dir():
        tower.backbone = dataclasses.replace(backbone, revision=commit)
    _attach_preprocessing(tower, transformers, max_positions)
    return tower


def _attach_preprocessing(tower: Tower, transformers: Any, max_positions: int | None) -> None:
    b = tower.backbone
    if tower.kind == "text":
        tok = _from_pretrained(b, transformers.AutoTokenizer, "tokenizer (tokenizer.json)")
        limits = [n for n in (getattr(tok, "model_max_length", None), max_positions) if n and n < 100_000]
        tower.tokenizer = PretrainedTokenizer(tok, "hf", min(limits) if limits else None)
    elif tower.kind == "vision":
        tower.image = image_spec(_from_pretrained(b, transformers.AutoImageProcessor, "image processor"), b)
    else:
        tower.extractor = _from_pretrained(b, transformers.AutoFeatureExtractor, "feature extractor")
        if not getattr(tower.extractor, "sampling_rate", None):
            raise BackboneError(f"backbone {b.label}: its feature extractor names no sampling_rate")


def _get(size: Any, key: str) -> Any:
    return size.get(key) if isinstance(size, dict) else getattr(size, key, None)


def image_spec(processor: Any, backbone: Backbone) -> ImageSpec:
    """The resize, centre crop, mean and std of a transformers image processor."""
    size = getattr(processor, "size", None)
    shortest, height, width = _get(size, "shortest_edge"), _get(size, "height"), _get(size, "width")
    if shortest:
        resize: int | tuple[int, int] = int(shortest)
    elif height and width:
        resize = (int(height), int(width))
    else:
        raise BackboneError(f"backbone {backbone.label}: cannot read the image size from {size!r}")
    crop = None
    if getattr(processor, "do_center_crop", False):
        c = processor.crop_size
        crop = (int(_get(c, "height")), int(_get(c, "width")))
    normalise = getattr(processor, "do_normalize", True)
    mean = tuple(processor.image_mean) if normalise else (0.0, 0.0, 0.0)
    std = tuple(processor.image_std) if normalise else (1.0, 1.0, 1.0)
    resample = getattr(processor, "resample", 3)
    return ImageSpec(resize, crop, mean, std, _INTERPOLATION.get(int(getattr(resample, "value", resample)), "bicubic"))
