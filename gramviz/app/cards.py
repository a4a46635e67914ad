"""The Model tab in words: the loaded model's card (how it was trained, its metrics) and the gallery."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from ..modalities import MODALITIES, TEXT
from .gallery import Gallery
from .gallery_base import shown_path

__all__ = ["DIRECTIONS", "gallery_card", "metrics_table", "model_card", "model_directory"]

DIRECTIONS = {
    "t2va": "text -> video+audio", "va2t": "video+audio -> text", "t2v": "text -> video", "t2a": "text -> audio",
    "v2a": "video -> audio", "a2v": "audio -> video",
}
_METRICS = ("R@1", "R@5", "R@10", "MedR")


def model_directory(name_or_dir: str | Path) -> Path | None:
    """The folder a model was loaded from: the directory itself, or the bundled model's; None if neither."""
    from ..models.io import BUNDLED_DIR, bundled_models

    path = Path(name_or_dir)
    if path.is_dir():
        return path
    return BUNDLED_DIR / str(name_or_dir) if str(name_or_dir) in bundled_models() else None


def _fmt(value: Any, metric: str = "") -> str:
    if metric in ("MedR", "MnR") and isinstance(value, (int, float)):
        return f"{value:g}"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def metrics_table(metrics: Mapping[str, Any], prefix: str = "") -> str:
    """A Markdown table of retrieval metrics ``<prefix><direction>/<metric>``, one row per direction,
    and zero-shot classification; "" when there are none.

    Example:
        >>> print(metrics_table({"t2va/R@1": 0.9, "t2va/R@5": 1.0, "t2va/R@10": 1.0, "t2va/MedR": 1.0, "cls/top1": 0.2}))
        | direction | R@1 | R@5 | R@10 | MedR |
        |---|---|---|---|---|
        | text -> video+audio | 0.900 | 1.000 | 1.000 | 1 |
        <BLANKLINE>
        zero-shot classification: top-1 0.200
    """
    rows = []
    for d, name in DIRECTIONS.items():
        cells = [metrics.get(f"{prefix}{d}/{m}") for m in _METRICS]
        if any(c is not None for c in cells):
            rows.append(f"| {name} | " + " | ".join("" if c is None else _fmt(c, m) for c, m in zip(cells, _METRICS)) + " |")
    cls = [(label, metrics.get(f"{prefix}cls/{key}")) for label, key in (("top-1", "top1"), ("top-5", "top5"))]
    cls_line = ", ".join(f"{label} {_fmt(v)}" for label, v in cls if v is not None)
    if not rows and not cls_line:
        return ""
    table = "| direction | " + " | ".join(_METRICS) + " |\n|---|" + "---|" * len(_METRICS) + "\n" + "\n".join(rows)
    return table + (f"\n\nzero-shot classification: {cls_line}" if cls_line else "")


def model_card(model: nn.Module, name: str, directory: Path | None = None) -> str:
    """The model card in Markdown: what it is, how it was trained, and its metrics (validation from
    ``card.json``, test from ``eval_test.json`` when the model folder has one)."""
    c, card = model.config, dict(getattr(model, "card", {}) or {})
    params = sum(p.numel() for p in model.parameters())
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    backbones = getattr(c, "backbones", {}) or {}
    counted = f"{params:,} parameters" + (f" ({trained:,} trainable)" if trained != params else "")
    lines = [f"### {name}", f"{counted}; modalities {', '.join(c.modalities)}; embeddings of "
             f"dimension {c.embed_dim}; reads {c.num_frames} frames of {c.frame_size[0]}x{c.frame_size[1]} and "
             f"{c.audio_seconds:g} s of sound at {c.sample_rate} Hz; captions up to {c.max_text_len - 1} "
             + ("tokens" if TEXT in backbones else "words")
             + (f" of a {c.vocab_size - 3}-word vocabulary" if c.vocab_size and TEXT not in backbones else "") + "."]
    if backbones:
        lines.append("Backbones: " + "; ".join(
            f"{m} {b['source']}:{b['name']}" + (f" ({b['tower']} tower)" if b.get("tower") else "")
            + (", frozen" if b.get("freeze", True) and not b.get("train_layers") else
               f", last {b['train_layers']} blocks trained" if b.get("freeze", True) else ", trained")
            for m, b in backbones.items()) + ".")
    if directory is not None:
        lines.append(f"Loaded from `{directory}`.")
    cfg, training, data = card.get("config", {}), card.get("training", {}), card.get("data", {})
    if card.get("command"):
        lines.append(f"**Trained with** `{card['command']}`")
    facts = [f"{k.replace('_', ' ')} {cfg[k]}" for k in ("loss", "epochs", "batch_size", "lr", "temperature", "dam",
                                                         "extra_term") if cfg.get(k) not in (None, False)]
    facts += [f"seed {card['seed']}"] if "seed" in card else []
    if facts:
        lines.append("; ".join(facts) + ".")
    if card.get("choice"):
        lines.append(f"**Why this model**: {card['choice']}")
    if data:
        lines.append("Data: " + "; ".join(f"{split} {d.get('clips', '?')} clips ({d.get('path', '')})"
                                          for split, d in data.items() if isinstance(d, dict)) + ".")
    if training:
        lines.append(f"{training.get('steps', '?')} steps on {training.get('device', '?')} in "
                     f"{training.get('wall_time_s', 0) / 60:.1f} min ({training.get('clips_per_s', 0):.0f} clips/s); "
                     f"saved {card.get('saved', '?')} with gramviz {card.get('gramviz', '?')}.")
    if not card:
        lines.append("*This model has no card (it was not saved by the trainer).*")
    test = _eval_test(directory)
    if test:
        lines += ["**Test split** (`eval_test.json`):", metrics_table(test)]
    val = metrics_table(card.get("metrics", {}), "val/")
    if val:
        lines += ["**Validation split** (at the end of training):", val]
        if card.get("metrics_note"):
            lines.append(f"*{card['metrics_note']}*")
    return "\n\n".join(lines)


def _eval_test(directory: Path | None) -> dict[str, Any]:
    f = directory / "eval_test.json" if directory is not None else None
    if f is None or not f.is_file():
        return {}
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def gallery_card(gallery: Gallery) -> str:
    """The gallery in words: where it comes from, its size, classes, playable clips and notes."""
    kinds = ", ".join(m for m in MODALITIES if m in gallery.embeddings)
    classes = len(gallery.meta.classes or [])
    playable = sum(p is not None for p in gallery.videos)
    lines = [f"**Gallery** `{gallery.shown_source}`: {gallery.n_clips:,} clips and {gallery.n_captions:,} captions "
             f"({kinds}; embeddings {gallery.describe_space()}); {classes} classes; {playable:,} playable videos.",
             f"Embeddings cached in `{shown_path(gallery.cache_dir, parts=2)}` (key {gallery.key})." if gallery.cache_dir else
             "Embeddings are not cached."]
    if gallery.mismatch:
        lines.append(f"**Not the loaded model's space**: {gallery.mismatch}.")
    lines += [f"*{note}*" for note in gallery.notes]
    return "\n\n".join(lines)
