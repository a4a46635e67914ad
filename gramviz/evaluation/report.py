"""The evaluation report as a table people read (`gramviz eval` without ``--json``)."""

from __future__ import annotations

from ..modalities import MEDIA
from .retrieval import DIRECTIONS, METRICS

__all__ = ["format_table"]


def format_table(metrics: dict[str, float], title: str | None = None) -> str:
    """The metrics of `evaluate` as a readable table (recalls as fractions, as in the JSON)."""
    lines = [title] if title else []
    lines.append(f"{'direction':<10}" + "".join(f"{k:>8}" for k in (*METRICS, "n")))
    reranked = [d for d in ("t2va_dam", "va2t_dam") if f"{d}/n" in metrics]  # models with a DAM head
    for d in (*DIRECTIONS, *reranked):
        cells = [f"{metrics[f'{d}/{k}']:>8.3f}" if f"{d}/{k}" in metrics else f"{'-':>8}" for k in METRICS[:3]]
        cells += [f"{metrics[f'{d}/{k}']:>8.1f}" if f"{d}/{k}" in metrics else f"{'-':>8}" for k in METRICS[3:]]
        lines.append(f"{d:<10}" + "".join(cells) + f"{metrics.get(f'{d}/n', 0):>8}")
    if "cls/top1" in metrics:
        lines.append(
            f"classification: top-1 {metrics['cls/top1']:.3f}, top-5 {metrics['cls/top5']:.3f} "
            f"over {metrics['cls/n']} clips"
        )
    missing = ", ".join(f"{metrics[f'missing/{m}']} without {m}" for m in MEDIA if f"missing/{m}" in metrics)
    lines.append(f"clips missing a modality: {missing}")
    return "\n".join(lines)
