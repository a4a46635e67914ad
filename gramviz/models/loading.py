"""Loading a GRAM model from a model directory or a bundled name (see `gramviz.models.io`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from .backbones import BackboneError
from .io import MODEL_FILES, WEIGHTS, ModelLoadError, check_weights, read_parts, read_weights, refuse_pickles, resolve
from .model import GRAMModel

__all__ = ["load_model"]


def load_model(
    name_or_dir: str | Path, device: str | torch.device = "cpu", encoders: Mapping[str, nn.Module] | None = None
) -> GRAMModel:
    """Load a `GRAMModel` from a directory written by ``save_pretrained`` or a bundled name.

    Args:
        name_or_dir: a model directory, or the name of a bundled model (`bundled_models`).
        device: where to put the model.
        encoders: the same custom encoder modules the model was built with, if any.

    A model on pretrained backbones rebuilds each tower from its reference in ``config.json``
    (a local directory, or the hub) and then loads the trained weights (heads, unfrozen blocks).

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
    try:
        model = GRAMModel(config, tokenizer, encoders)
    except BackboneError as e:
        raise ModelLoadError(f"{directory}: {e}") from e
    except ValueError as e:
        raise ModelLoadError(f"{directory}: config.json and tokenizer.json disagree ({e})") from e
    try:
        weights = read_weights(directory / WEIGHTS)
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelLoadError(f"{directory / WEIGHTS}: unreadable safetensors file ({e})") from e
    check_weights(weights, model.trained_state_dict(), directory / WEIGHTS)
    model.load_state_dict(weights, strict=not config.backbones)
    model.card = card
    return model.to(device).eval()
