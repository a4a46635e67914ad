"""Loading a GRAM model from a model directory or a bundled name (see `gramviz.models.io`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from .io import MODEL_FILES, WEIGHTS, ModelLoadError, check_weights, read_parts, refuse_pickles, resolve
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

    Returns:
        The model in evaluation mode, its card in ``model.card``.

    Raises:
        ModelLoadError: unknown name, a missing file, a pickle checkpoint (never unpickled),
            or weights whose names or shapes differ from what the config describes.

    Example:
        >>> load_model("no-such-model")
        Traceback (most recent call last):
        ...
        gramviz.models.io.ModelLoadError: 'no-such-model' is neither a model directory nor a bundled model name ...
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = resolve(name_or_dir)
    refuse_pickles(directory)
    config, tokenizer, card = read_parts(directory)
    if not (directory / WEIGHTS).is_file():
        raise ModelLoadError(
            f"{directory / WEIGHTS}: missing the weights (a model directory holds {', '.join(MODEL_FILES)})"
        )
    try:
        model = GRAMModel(config, tokenizer, encoders)
    except ValueError as e:
        raise ModelLoadError(f"{directory}: config.json and tokenizer.json disagree ({e})") from e
    try:
        weights = load_file(str(directory / WEIGHTS))
    except (SafetensorError, OSError) as e:
        raise ModelLoadError(f"{directory / WEIGHTS}: unreadable safetensors file ({e})") from e
    check_weights(weights, model.state_dict(), directory / WEIGHTS)
    model.load_state_dict(weights, strict=True)
    model.card = card
    return model.to(device).eval()
