"""The Explore tab's selection, table, clip strip, filter, export and inspector, as plain values.

Each function takes a gallery (`gramviz.app.gallery_base.Gallery`) and clip indices and returns
what a component shows (rows, file paths, Markdown, figures); the numbers come from
`gramviz.exploration` and the figures from `gramviz.viz`. No Gradio here: `gramviz.app.tab_explore`
wires these to components, and the tests call them directly.

The map's selection arrives from the browser as JSON (`parse_selection`, `parse_click`): see
`gramviz.app.explore_bridge`.

Example:
    >>> parse_selection('{"clips": [3, 1, 3], "n": 7}', 5)
    [1, 3]
    >>> parse_click('{"clip": 2, "n": 8}', 5)
    2
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..exploration import filter_clips, inspect_clip, selection_rows, write_rows
from .explore_data import gallery_metrics
from .gallery_base import Gallery, is_file

__all__ = ["FILTER_COLUMNS", "STRIP", "TABLE_COLUMNS", "TABLE_ROWS", "Inspector", "class_choices",
           "describe_selection", "export_selection", "filter_selection", "inspect", "parse_click", "parse_selection",
           "selection_table", "strip_items"]

TABLE_COLUMNS = ["id", "caption", "volume", "base", "height", "caption rank", "nearest by volume"]
TABLE_ROWS = 1000  # rows the table shows at most (the export holds every selected clip)
STRIP = 6  # playable clips under the table
# the filter's "worst by" choices: label -> ClipMetrics column
FILTER_COLUMNS = {"volume": "volume", "base": "base", "height": "height", "caption rank": "caption_rank",
                  "clip rank": "clip_rank", "video-audio cosine": "cos_va"}
_NAMES = {"text": "caption", "video": "video", "audio": "audio"}
_EXPORT_ROOT = Path(tempfile.gettempdir()) / "gramviz-selections"
_EXPORT_KEEP_S = 3600  # exports older than this are removed when a new one is written


def _payload(text: str | None) -> dict[str, Any] | None:
    if not text or not str(text).strip():
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(f"the map sent an unreadable selection: {str(text)[:80]!r}") from None
    if not isinstance(data, dict):
        raise ValueError(f"the map sent an unreadable selection: {str(text)[:80]!r}")
    return data


def _clip(value: Any, n: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or not 0 <= value < n:
        raise ValueError(f"the map named clip {value!r}, but the gallery has clips 0 to {n - 1}")
    return int(value)


def parse_selection(text: str | None, n: int) -> list[int] | None:
    """The clips a map selection names (sorted, unique), from the bridge's JSON ``{"clips": [...]}``;
    None for an empty payload (nothing sent yet)."""
    data = _payload(text)
    if data is None:
        return None
    clips = data.get("clips")
    if not isinstance(clips, list):
        raise ValueError("the map sent a selection without a list of clips")
    return sorted({_clip(c, n) for c in clips})


def parse_click(text: str | None, n: int) -> int | None:
    """The clip a click on a map point names, from the bridge's JSON ``{"clip": c}``; None when empty."""
    data = _payload(text)
    return None if data is None else _clip(data.get("clip"), n)


def _cell(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else ("" if value is None else value)


def selection_table(gallery: Gallery, clips: list[int]) -> list[list[Any]]:
    """The table of a selection (at most `TABLE_ROWS` rows), columns `TABLE_COLUMNS`: the numbers of
    `gramviz.exploration.selection_rows` (blank where undefined: no caption, no height)."""
    rows = selection_rows(gallery_metrics(gallery), clips[:TABLE_ROWS])
    return [[_cell(r[k]) for k in ("id", "caption", "volume", "base", "height", "caption_rank", "nearest")]
            for r in rows]


def describe_selection(gallery: Gallery, clips: list[int] | None, how: str = "selected on the map") -> str:
    """A sentence on the selection: how many clips, how many the table and the strip show."""
    if clips is None:
        return ("No clip selected: drag a box (or a lasso, from the map's toolbar) over points, click a point, or "
                "use the filter.")
    if not clips:
        return f"No clip {how}: the table is empty."
    shown = f"the table lists the first {TABLE_ROWS:,}" if len(clips) > TABLE_ROWS else "the table lists them all"
    playable = sum(gallery.videos[c] is not None for c in clips[:STRIP])
    strip = (f"showing the first {min(STRIP, len(clips))} of {len(clips):,} below" if playable
             else "no video files to play (the gallery holds embeddings only)")
    return f"**{len(clips):,} clips {how}**: {shown}; {strip}. Click a row or a point to inspect one clip."


def strip_items(gallery: Gallery, clips: list[int], slots: int = STRIP) -> list[tuple[str | None, str] | None]:
    """One entry per player slot: ``(video file or None, label)`` for the first ``slots`` clips,
    None for the slots left empty."""
    metrics = gallery_metrics(gallery)
    out: list[tuple[str | None, str] | None] = []
    for c in clips[:slots]:
        volume = metrics.values["volume"][c].item()
        label = f"{metrics.ids[c]}" + (f"  volume {volume:.3f}" if volume == volume else "")
        video = gallery.videos[c]
        out.append((str(video), label) if video is not None else (None, label + " (no video file)"))
    return out + [None] * (slots - len(out))


def filter_selection(gallery: Gallery, worst: float | None, by: str, class_name: str | None, word: str | None,
                     within: list[int] | None = None) -> list[int]:
    """The filter: the ``worst`` worst-aligned clips by ``by`` (a `FILTER_COLUMNS` label; 0 or None: no
    limit), of class ``class_name`` (None or "any": every class), whose caption holds ``word``,
    among ``within`` (None: the whole gallery); worst first (`gramviz.exploration.filter_clips`)."""
    if by not in FILTER_COLUMNS:
        raise ValueError(f"unknown column {by!r}; choose one of {', '.join(FILTER_COLUMNS)}")
    limit = int(worst) if worst else None
    if limit is not None and limit < 0:
        raise ValueError(f"the number of worst clips must be positive, got {limit}")
    klass = None if class_name in (None, "", "any") else class_name
    return filter_clips(gallery_metrics(gallery), worst=limit, by=FILTER_COLUMNS[by], class_name=klass,
                        word=word or None, clips=within)


def class_choices(gallery: Gallery) -> list[str]:
    """``"any"`` and the gallery's class names (sorted), for the filter."""
    names = {gallery.class_name(c) for c in range(gallery.n_clips)} - {None}
    return ["any", *sorted(names)]


def export_selection(gallery: Gallery, clips: list[int], folder: str | Path | None = None) -> tuple[Path, Path]:
    """The selection's rows (`gramviz.exploration.selection_rows`: ids, captions, every metric) written
    as CSV and JSONL (`gramviz.exploration.write_rows`) in ``folder`` (default: a new temporary
    folder; those older than an hour are removed). Returns ``(csv, jsonl)``."""
    if folder is None:
        _EXPORT_ROOT.mkdir(parents=True, exist_ok=True)
        now = time.time()
        for old in _EXPORT_ROOT.iterdir():
            if old.is_dir() and now - old.stat().st_mtime > _EXPORT_KEEP_S:
                shutil.rmtree(old, ignore_errors=True)
        folder = _EXPORT_ROOT / uuid.uuid4().hex
    rows = selection_rows(gallery_metrics(gallery), clips)
    folder = Path(folder)
    return write_rows(rows, folder / "selection.csv"), write_rows(rows, folder / "selection.jsonl")


@dataclass
class Inspector:
    """What the inspector shows for one clip: ``summary`` (Markdown: id, class, captions, volume =
    base x height, the least aligned modality), ``video`` and ``audio`` files (None without), the
    ``parallelotope``, ``gram`` and ``context`` figures (None when a modality is missing), the
    ``neighbours`` HTML table, and the inspection itself."""

    clip: int
    summary: str
    video: str | None
    audio: str | None
    parallelotope: Any = None
    gram: Any = None
    context: Any = None
    neighbours: str = ""
    inspection: Any = field(default=None, repr=False)


def _media_file(gallery: Gallery, modality: str, clip: int) -> str | None:
    if modality == "video" and gallery.videos[clip] is not None:
        return str(gallery.videos[clip])
    files = gallery.meta.paths.get(modality)
    if not files or not files[clip]:
        return None
    path = Path(files[clip]).expanduser()
    if not path.is_absolute():
        path = (gallery.source if gallery.source.is_dir() else gallery.source.parent) / path
    return str(path) if is_file(path) else None


def _summary(gallery: Gallery, clip: int, inspection: Any) -> str:
    metrics = gallery_metrics(gallery)
    row = metrics.row(clip)
    klass = f" ({row['class']})" if row["class"] else ""
    captions = [gallery.caption(r) for r, c in enumerate(gallery.caption_clips()) if c == clip]
    lines = [f"### {row['id']}{klass}"]
    if captions:
        lines.append("**Captions** (the first makes the tuple):\n" + "\n".join(f"{i}. {t or '(no text stored)'}"
                                                                           for i, t in enumerate(captions, 1)))
    else:
        lines.append("**No caption**: only its video and audio (the base) are measured.")
    if inspection.volume is not None:
        h = inspection.heights
        worst = inspection.least_aligned
        lines.append(f"**Volume** {inspection.volume:.4f} = base {inspection.base:.4f} (video ∧ audio) × height "
                     f"{inspection.height:.4f} (the caption's distance from their plane). Rank of its own caption: "
                     f"{row['caption_rank']}; its caption finds it at rank {row['clip_rank']}.")
        lines.append(f"**Least aligned: the {_NAMES[worst]}**: its distance from the span of the other two is "
                     f"{h[worst]:.4f} (caption {h['text']:.4f}, video {h['video']:.4f}, audio {h['audio']:.4f}).")
    else:
        lines.append(f"**Base** (video ∧ audio) {inspection.base:.4f}; without a caption there is no height or volume.")
    if row["nearest"] is not None:
        lines.append(f"Nearest clip by volume: **{row['nearest']}**.")
    return "\n\n".join(lines)


def inspect(gallery: Gallery, clip: int, k: int = 5) -> Inspector:
    """One clip's inspector (`gramviz.exploration.inspect_clip`, `gramviz.viz.parallelotope`,
    `gramviz.viz.gram_heatmap`, `gramviz.viz.clip_context`, `gramviz.viz.neighbours_table`)."""
    from ..viz import clip_context, gram_heatmap, neighbours_table, parallelotope

    if not 0 <= int(clip) < gallery.n_clips:
        raise ValueError(f"no clip {clip}: the gallery has {gallery.n_clips} clips")
    clip = int(clip)
    metrics = gallery_metrics(gallery)
    inspection = inspect_clip(gallery.embeddings, clip, gallery.caption_clips() or None, k=k)
    out = Inspector(clip, _summary(gallery, clip, inspection), _media_file(gallery, "video", clip),
                    _media_file(gallery, "audio", clip), inspection=inspection)
    vectors, labels = list(inspection.vectors.values()), list(inspection.vectors)
    if all(float(v.norm()) > 0 for v in vectors):
        out.parallelotope = parallelotope(*vectors, labels=labels)
        out.gram = gram_heatmap(*vectors, labels=labels)
    else:
        out.summary += "\n\nA modality of this clip is missing (a zero embedding): no solid to draw."
    out.context = clip_context(metrics.values["base"], metrics.values["height"], clip, ids=metrics.ids)
    out.neighbours = neighbours_table(inspection, metrics.ids, metrics.captions).html
    return out
