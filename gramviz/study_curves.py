"""Collapse curves of a study's runs: how each run's volumes leave the flat region near orthogonality.

Untrained encoders give nearly orthogonal embeddings, where every volume is close to 1 and the
GRAM loss is flat (docs/results.md). The trainer logs, at every log step, the training batch's
mean positive and negative volumes (``geom/batch_pos_volume``, ``geom/batch_neg_volume``) and, at
every evaluation, the validation clips' statistics (``val/geom/...``). This module reads them back
from a study's runs into one small JSON-ready dict, and finds when each run left the flat region.

    >>> runs = {"gram": {0: [{"epoch": 0.5, "geom/batch_pos_volume": 0.97},
    ...                      {"epoch": 1.0, "geom/batch_pos_volume": 0.85}]}}
    >>> flat_exits({"keys": ["geom/batch_pos_volume"], "runs": runs}, threshold=0.9)
    {'gram': {0: 1.0}}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .training.log import read_log

__all__ = ["CURVE_KEYS", "flat_exit_rows", "flat_exits", "study_curves"]

CURVE_KEYS = (
    "geom/batch_pos_volume", "geom/batch_neg_volume",
    "val/geom/pos_volume_mean", "val/geom/pos_volume_std", "val/geom/neg_volume_mean", "val/geom/neg_volume_std",
    "val/geom/base_median", "val/geom/height_median", "val/geom/cos_va_median", "val/t2va/R@1",
)


def study_curves(out_dir: str | Path, variants: Sequence[str] | None = None,
                 keys: Sequence[str] = CURVE_KEYS, finished_only: bool = True) -> dict[str, Any]:
    """The curve values of every run of a study found under ``out_dir`` (``<variant>/seed-<s>/log.jsonl``).

    Returns ``{"keys": [...], "runs": {variant: {seed: [{"step", "epoch", key: value, ...}, ...]}}}``,
    keeping only the log records that carry one of ``keys`` and only those keys (values rounded to
    5 digits). Variants default to every folder of ``out_dir`` with a run; a run without a log is
    skipped, and so, unless ``finished_only`` is False, is a run still training or interrupted (no
    ``result.json`` beside its log): its curves would stop early. Raises ValueError when no run has a
    log, naming ``out_dir``.
    """
    root = Path(out_dir)
    names = list(variants) if variants is not None else sorted(p.name for p in root.iterdir() if p.is_dir()) \
        if root.is_dir() else []
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for variant in names:
        for log in sorted((root / variant).glob("seed-*/log.jsonl")):
            if (finished_only and not (log.parent / "result.json").is_file()) or log.stat().st_size == 0:
                continue  # unfinished, or just started (the trainer starts its log empty)
            seed = int(log.parent.name.removeprefix("seed-"))
            kept = [{"step": r.get("step"), "epoch": r.get("epoch"),
                     **{k: round(float(r[k]), 5) for k in keys if k in r}}
                    for r in read_log(log) if any(k in r for k in keys)]
            if kept:
                runs.setdefault(variant, {})[seed] = kept
    if not runs:
        raise ValueError(f"{root}: no run with a log carrying {list(keys)[:2]}...; run `gramviz experiment` first")
    return {"keys": list(keys), "runs": runs}


def flat_exits(curves: Mapping[str, Any], key: str = "geom/batch_pos_volume",
               threshold: float = 0.9) -> dict[str, dict[int, float | None]]:
    """For each run, the first epoch at which ``key`` fell below ``threshold`` (None: it never did).

    With the default key, the mean volume of the training batch's matching tuples: near 1 while the
    embeddings are still nearly orthogonal, so the epoch says when the run left the flat region.
    """
    out: dict[str, dict[int, float | None]] = {}
    for variant, seeds in curves["runs"].items():
        for seed, records in seeds.items():
            hit = next((r["epoch"] for r in records if key in r and r[key] < threshold), None)
            out.setdefault(variant, {})[int(seed)] = None if hit is None else float(hit)
    return out


def flat_exit_rows(curves: Mapping[str, Any], key: str = "geom/batch_pos_volume",
                   threshold: float = 0.9) -> list[dict[str, Any]]:
    """One row per variant: the epochs at which its seeds left the flat region, their mean and range."""
    rows = []
    for variant, seeds in flat_exits(curves, key, threshold).items():
        hits = [e for e in seeds.values() if e is not None]
        mean = sum(hits) / len(hits) if hits else math.nan
        per_seed = ", ".join("never" if e is None else f"{e:.2f}" for e in seeds.values())
        rows.append({"variant": variant, "seeds": len(seeds), "left at epoch (per seed)": per_seed,
                     "mean": "never" if not hits else f"{mean:.2f}",
                     "stayed": sum(e is None for e in seeds.values())})
    return rows
