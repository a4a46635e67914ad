"""What a run writes as it goes (``out_dir/log.jsonl``, the loss terms of the whole global batch) and
how it is read back (`read_log`, for the training curves and a study's collapse curves)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .. import distributed

__all__ = ["JsonlLog", "mean_terms", "read_log"]


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


def read_log(log: str | os.PathLike | Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of a JSONL log (a path) or a list of dicts, with a clear error naming the line.

    Example:
        >>> read_log([{"step": 1, "loss": 0.5}])
        [{'step': 1, 'loss': 0.5}]
    """
    if isinstance(log, (str, os.PathLike)):
        name, lines = str(log), Path(log).read_text(encoding="utf-8").splitlines()
        parsed = []
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                parsed.append((n, json.loads(line)))
            except json.JSONDecodeError as e:
                raise ValueError(f"{name}, line {n}: not valid JSON ({e.msg}): {line[:80]!r}") from None
    elif isinstance(log, Sequence):
        name, parsed = "log", list(enumerate(log, start=1))
    else:
        raise TypeError(f"log must be a JSONL path or a list of dicts, got {type(log).__name__}")
    if not parsed:
        raise ValueError(f"{name}: the log is empty")
    for n, record in parsed:
        if not isinstance(record, dict):
            raise ValueError(f"{name}, line {n}: expected a JSON object, got {type(record).__name__}")
        for axis in ("step", "epoch"):
            if axis in record and not is_number(record[axis]):
                raise ValueError(f"{name}, line {n}: {axis!r} must be a number, got {record[axis]!r}")
    return [record for _, record in parsed]


def is_number(x: Any) -> bool:
    """An int or float, not a bool (a log's step, epoch and plotted values)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool)
