"""Running a model for inference: evaluation mode and no gradients, the caller's mode restored."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

__all__ = ["inference"]


@contextlib.contextmanager
def inference(model: nn.Module) -> Iterator[torch.device]:
    """Put ``model`` in evaluation mode without gradients; yields its device (the CPU for a model
    without parameters); its train/eval mode is restored after, also on an error.

    Example:
        >>> layer = torch.nn.Dropout(0.5).train()
        >>> with inference(layer) as device:
        ...     layer.training, device.type
        (False, 'cpu')
        >>> layer.training
        True
    """
    first = next(iter(model.parameters()), None)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield first.device if first is not None else torch.device("cpu")
    finally:
        model.train(was_training)
