"""open_clip towers (`gramviz.models.backbones`, ``source="open_clip"``): the text and vision
towers of one CLIP model, which both keep the whole model (open_clip's text tower is not a
separate module); each tower trains only its own parameters."""

from __future__ import annotations

from .backbones import TOWERS, Backbone, BackboneError, ImageSpec, PretrainedTokenizer, Tower, check_local

__all__ = ["open_clip_tower"]


def open_clip_tower(backbone: Backbone, modality: str, loaded: dict) -> Tower:
    """The text or vision tower of an open_clip model, with its tokenizer or image settings."""
    try:
        import open_clip
    except ImportError as e:
        raise BackboneError(f"backbone {backbone.label} needs open_clip: pip install open_clip_torch") from e
    if backbone.pretrained:
        check_local(backbone, backbone.pretrained)
    key = ("open_clip", backbone.name, backbone.pretrained)
    if key not in loaded:
        try:
            loaded[key] = open_clip.create_model_and_transforms(backbone.name, pretrained=backbone.pretrained)[0]
        except (RuntimeError, OSError, ValueError) as e:
            raise BackboneError(f"backbone {backbone.label}: cannot build it ({type(e).__name__}: {e}); "
                                "a pretrained tag needs the hub, a local checkpoint file does not") from e
    model = loaded[key]
    kind = backbone.tower or TOWERS.get(modality, "")
    if kind not in ("text", "vision"):
        raise BackboneError(f"backbone {backbone.label}: open_clip models have text and vision towers, not {kind!r}")
    width = int(model.visual.output_dim)
    # the text tower owns everything but model.visual; the vision tower owns model.visual only
    tower = Tower(backbone, kind, model, None, width, "open_clip", skip="visual." if kind == "text" else None)
    if kind == "vision":
        tower.own_parameters = lambda: list(model.visual.parameters())  # type: ignore[method-assign]
        tower.blocks = lambda: list(model.visual.transformer.resblocks)  # type: ignore[method-assign]
        cfg = getattr(model.visual, "preprocess_cfg", {})
        size = cfg.get("size", model.visual.image_size)
        size = (size, size) if isinstance(size, int) else tuple(size)
        tower.image = ImageSpec(min(size), size, tuple(cfg.get("mean", (0.48145466, 0.4578275, 0.40821073))),
                                tuple(cfg.get("std", (0.26862954, 0.26130258, 0.27577711))),
                                cfg.get("interpolation", "bicubic"))
    else:
        tower.blocks = lambda: list(model.transformer.resblocks)  # type: ignore[method-assign]
        tok = open_clip.get_tokenizer(backbone.name)
        tower.tokenizer = PretrainedTokenizer(tok, "open_clip", getattr(tok, "context_length", None))
    return tower
