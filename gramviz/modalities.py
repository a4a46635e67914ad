"""The modality vocabulary: the names every module uses for a sample's modalities.

GRAM stacks a sample's embeddings with the anchor first: the caption (text), then the clip's
media (video, audio). Embeddings travel as modality-keyed dicts; `in_stacking_order` puts such a
dict in this order, so that the anchor is always the first vector of a tuple.

Example:
    >>> list(in_stacking_order({"audio": 1, "depth": 2, "text": 3}))
    ['text', 'audio', 'depth']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

__all__ = ["AUDIO", "MEDIA", "MODALITIES", "TEXT", "VIDEO", "in_stacking_order"]

TEXT, VIDEO, AUDIO = "text", "video", "audio"
MODALITIES = (TEXT, VIDEO, AUDIO)  # stacking order: the anchor (text) first
MEDIA = (VIDEO, AUDIO)  # a clip's own modalities: the candidates a caption is scored against

V = TypeVar("V")


def in_stacking_order(embeddings: Mapping[str, V | None], what: str = "embeddings") -> dict[str, V]:
    """The present (non-None) entries of a modality-keyed dict, text/video/audio first, any other
    modality after them in the dict's own order.

    Raises:
        TypeError: ``embeddings`` is not a mapping (named by ``what``).
    """
    if not isinstance(embeddings, Mapping):
        raise TypeError(f"{what} must be a dict of modality name -> tensor, got {type(embeddings).__name__}")
    present: dict[str, Any] = {m: x for m, x in embeddings.items() if x is not None}
    names = [m for m in MODALITIES if m in present] + [m for m in present if m not in MODALITIES]
    return {m: present[m] for m in names}
