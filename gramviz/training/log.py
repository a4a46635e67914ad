"""What a run writes as it goes: ``out_dir/log.jsonl`` and the loss terms of the whole global batch."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .. import distributed

__all__ = ["JsonlLog", "mean_terms"]


def mean_terms(terms: dict[str, Tensor]) -> dict[str, float]:
    """Loss terms averaged over the ranks: each rank's loss covers its own rows of the global
    batch, and their mean is the loss of the whole batch (one collective, at log steps only)."""
    values = torch.stack([v.detach().double() for v in terms.values()])
    return dict(zip(terms, distributed.mean_over_ranks(values).tolist()))


class JsonlLog:
    """out_dir/log.jsonl, one JSON object per line; truncated to a checkpoint's offset on resume.

    Args:
        path: the log file.
        enabled: write at all (rank 0 only).
        offset: the log's size when the checkpoint being resumed was written; None starts afresh.
    """

    def __init__(self, path: Path, enabled: bool, offset: int | None) -> None:
        self.path, self.enabled = path, enabled
        if enabled and (offset is None or not path.exists()):
            path.write_text("")
        elif enabled:
            os.truncate(path, offset)  # drop lines written after the checkpoint

    def write(self, record: dict[str, Any]) -> None:
        """Append one line."""
        if self.enabled:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    def offset(self) -> int:
        """The log's size in bytes (0 when disabled): what a checkpoint records to resume it."""
        return self.path.stat().st_size if self.enabled else 0
