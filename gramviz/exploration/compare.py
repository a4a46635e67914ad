"""Two models on one gallery, and a selection's table and export (see `gramviz.exploration`)."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .core import ClipMetrics

__all__ = ["Comparison", "compare_metrics", "selection_rows", "write_rows"]


def selection_rows(metrics: ClipMetrics, clips: Sequence[int]) -> list[dict[str, Any]]:
    """The table of a selection: one JSON-ready dict per clip (see `ClipMetrics.row`)."""
    return [metrics.row(int(c)) for c in clips]


def write_rows(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Write a selection's rows as CSV (``.csv``) or JSON lines (``.jsonl``); returns the path."""
    path = Path(path)
    if path.suffix not in (".csv", ".jsonl"):
        raise ValueError(f"{path}: export to a .csv or a .jsonl file")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        if path.suffix == ".jsonl":
            f.writelines(json.dumps(dict(r), ensure_ascii=False) + "\n" for r in rows)
        else:
            names = list(rows[0]) if rows else ["clip", "id", "caption"]
            writer = csv.DictWriter(f, fieldnames=names)
            writer.writeheader()
            writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
    return path


@dataclass
class Comparison:
    """Two models' metrics on the same gallery (see `compare_metrics`).

    Attributes:
        names: the two models' names.
        rows: one dict per clip with a caption: ``clip``, ``id``, ``caption``, ``rank_a``,
            ``rank_b`` (the rank of the clip for its first caption under each model),
            ``volume_a``, ``volume_b`` and ``disagreement`` = |log2 rank_a - log2 rank_b|;
            sorted by disagreement, largest first.
    """

    names: tuple[str, str]
    rows: list[dict[str, Any]]

    def most_disagreeing(self, k: int = 10) -> list[int]:
        """The k clips on which the two models disagree most."""
        return [r["clip"] for r in self.rows[:k]]


def compare_metrics(a: ClipMetrics, b: ClipMetrics, names: tuple[str, str] = ("A", "B")) -> Comparison:
    """Per-clip ranks under two models of the same gallery, the largest disagreements first.

    Raises:
        ValueError: the two metrics are not of the same clips.
    """
    if a.ids != b.ids:
        raise ValueError(f"the two galleries differ ({len(a.ids)} and {len(b.ids)} clips, or other ids): "
                         "compare two models on the same gallery")
    rows = []
    for c in range(len(a)):
        ra, rb = int(a.values["clip_rank"][c]), int(b.values["clip_rank"][c])
        if ra < 1 or rb < 1:
            continue
        rows.append({"clip": c, "id": a.ids[c], "caption": a.captions[c], "rank_a": ra, "rank_b": rb,
                     "volume_a": float(a.values["volume"][c]), "volume_b": float(b.values["volume"][c]),
                     "disagreement": abs(math.log2(ra) - math.log2(rb))})
    rows.sort(key=lambda r: (-r["disagreement"], -abs(r["rank_a"] - r["rank_b"]), r["clip"]))
    return Comparison(tuple(names), rows)
