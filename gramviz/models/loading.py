"""Loading a GRAM model from a model directory or a bundled name (see `gramviz.models.io`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from .backbones import BackboneError
from .gram_official.model import FLOAT32_PARTS, assign_weights, meta_encoders, read_tokenizer
from .io import MODEL_FILES, WEIGHTS, ModelLoadError, check_weights, read_parts, read_weights, refuse_pickles, resolve
from .model import GRAMModel

__all__ = ["load_model"]


def load_model(
    name_or_dir: str | Path, device: str | torch.device = "cpu", encoders: Mapping[str, nn.Module] | None = None,
    dtype: torch.dtype | None = None,
) -> GRAMModel:
    """Load a `GRAMModel` from a directory written by ``save_pretrained`` or a bundled name.

    Args:
        name_or_dir: a model directory, or the name of a bundled model (`bundled_models`).
        device: where to put the model.
        encoders: the same custom encoder modules the model was built with, if any.
        dtype: the floating-point type of the weights (e.g. ``torch.bfloat16``, half the memory);
            None: as stored (float32).

    A model on pretrained backbones rebuilds each tower from its reference in ``config.json``
    (a local directory, or the hub) and then loads the trained weights (heads, unfrozen blocks).
    A converted official GRAM model (``gramviz convert-gram``) is built without memory and takes
    the stored tensors themselves, cast to ``dtype`` one by one: loading needs about one copy of
    its weights. Its BEATs audio tower stays in float32 (its attention multiplies rounding errors
    by 32: bfloat16 changes its embeddings beyond use), and its embeddings come out in float32.

    Returns:
        The model in evaluation mode, its card in ``model.card``.

    Raises:
        ModelLoadError: unknown name, a missing file, a pickle checkpoint (never unpickled),
            weights whose names or shapes differ from what the config describes, or a backbone
            that cannot be found (named in the message).

    Example:
        >>> load_model("no-such-model")
        Traceback (most recent call last):
        ...
        gramviz.models.io.ModelLoadError: 'no-such-model' is neither a model directory nor a bundled model name ...
    """
    from safetensors import SafetensorError

    directory = resolve(name_or_dir)
    refuse_pickles(directory)
    config, tokenizer, card = read_parts(directory)
    if not (directory / WEIGHTS).is_file():
        raise ModelLoadError(
            f"{directory / WEIGHTS}: missing the weights (a model directory holds {', '.join(MODEL_FILES)})"
        )
    official = bool(config.official) and not encoders
    model = _build(directory, config, tokenizer, encoders, official)
    try:
        weights = read_weights(directory / WEIGHTS, dtype, keep=FLOAT32_PARTS if official else ())
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelLoadError(f"{directory / WEIGHTS}: unreadable safetensors file ({e})") from e
    check_weights(weights, model.trained_state_dict(), directory / WEIGHTS)
    if official:
        assign_weights(model, weights)
    else:
        model.load_state_dict(weights, strict=not config.backbones)
        if dtype is not None:
            model.to(dtype)
    model.card = card
    return model.to(device).eval()


def _build(directory: Path, config, tokenizer, encoders, official: bool) -> GRAMModel:
    """The model a directory describes, before its weights (an official GRAM model on the meta device)."""
    if official:
        try:
            tokenizer = read_tokenizer(directory, config)
        except ValueError as e:
            raise ModelLoadError(str(e)) from e
        encoders = meta_encoders(config, tokenizer)
    try:
        return GRAMModel(config, tokenizer, encoders)
    except BackboneError as e:
        raise ModelLoadError(f"{directory}: {e}") from e
    except ValueError as e:
        raise ModelLoadError(f"{directory}: config.json and tokenizer.json disagree ({e})") from e
