"""Building and loading an official GRAM model as a `gramviz.GRAMModel`, light on memory.

The towers (about 1.2 B parameters for the released models) are built on the meta device, with no
memory and no random initialisation, and then take the stored tensors themselves
(``load_state_dict(assign=True)``), in float32 or, on request, in bfloat16: loading needs about
one copy of the weights in the chosen precision (BEATs, 90 M parameters, always in float32).

A converted model directory holds, besides gramviz's files, ``text_tokenizer/``: BERT's tokenizer
files (`load_bert_tokenizer`), so that the directory is self-contained.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..backbones import PretrainedTokenizer
from .towers import OfficialTextEncoder, bert_classes, load_bert_tokenizer, official_encoders

__all__ = ["FLOAT32_PARTS", "TEXT_TOKENIZER", "assign_weights", "meta_encoders", "read_tokenizer", "save_tokenizer"]

TEXT_TOKENIZER = "text_tokenizer"  # the folder of BERT's tokenizer files inside a model directory
# kept in float32 when the rest loads in bfloat16: BEATs' attention computes (q/32)k^T - max, times 32,
# which multiplies bfloat16's rounding (3 significant digits) by 32 in the logits
FLOAT32_PARTS = ("encoders.audio.",)


def read_tokenizer(directory: Path, config: Any) -> PretrainedTokenizer | None:
    """BERT's tokenizer of an official model directory (None for a model without text).

    Raises:
        ValueError: the folder is missing or holds no BERT tokenizer (named in the message).
    """
    if "text" not in config.modalities:
        return None
    folder = Path(directory) / TEXT_TOKENIZER
    if not folder.is_dir():
        raise ValueError(f"{folder}: missing BERT's tokenizer (an official GRAM model directory holds it; "
                         f"gramviz convert-gram --tokenizer writes it)")
    return load_bert_tokenizer(folder, config.max_text_len)


def save_tokenizer(tokenizer: Any, directory: Path) -> None:
    """Write BERT's tokenizer files to ``directory / TEXT_TOKENIZER``."""
    inner = getattr(tokenizer, "tokenizer", tokenizer)
    inner.save_pretrained(str(Path(directory) / TEXT_TOKENIZER))


def meta_encoders(config: Any, tokenizer: PretrainedTokenizer | None) -> dict[str, nn.Module]:
    """The official encoders of ``config`` on the meta device (no memory), for `assign_weights`."""
    if "text" in config.modalities:
        bert_classes()  # imported outside the meta context (see bert_classes)
    with torch.device("meta"):
        return official_encoders(config, tokenizer)


def assign_weights(model: nn.Module, weights: Mapping[str, Tensor]) -> None:
    """Give a model built with `meta_encoders` its tensors (strict), then fill the non-persistent buffers.

    Raises:
        ValueError: a tensor that is still on the meta device afterwards (named).
    """
    model.load_state_dict(dict(weights), strict=True, assign=True)
    for module in model.modules():
        if isinstance(module, OfficialTextEncoder):
            module.init_buffers()
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise ValueError(f"the official GRAM model has tensors that no weight filled: {left}")
