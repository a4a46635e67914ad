"""Two models on the same gallery: the second one's gallery, and where the two disagree.

The second gallery is the served gallery embedded by another model (a bundled name or a folder
written by ``save_pretrained``; the embeddings are cached like the first model's), or an embedding
file of the same clips (``gramviz embed --model OTHER --data GALLERY --out FILE.safetensors``):
its ids must be the gallery's, in the same order. It is kept in the served gallery's memo, so a
second look is instant and a newly loaded gallery starts afresh. The comparison itself is
`gramviz.exploration.compare_metrics`; no Gradio here (`gramviz.app.tab_explore` wires it).

The built-in example is docs/results.md's pair: the bundled GRAM model against the study's
pairwise InfoNCE model, which ``make compare-example`` trains into `EXAMPLE` (seed 0).

Example:
    >>> second = second_gallery(gallery, "runs/study/pairwise/seed-0/final", model)  # doctest: +SKIP
    >>> comparison(gallery, second, ("world-small", "pairwise")).rows[0]["disagreement"] > 0  # doctest: +SKIP
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from ..exploration import Comparison, compare_metrics
from .explore_data import gallery_metrics
from .explore_views import STRIP
from .gallery import open_gallery
from .gallery_base import Gallery, GalleryError, shown_path

__all__ = ["COMPARE_COLUMNS", "EXAMPLE", "comparison", "comparison_table", "describe_comparison",
           "disagreeing_items", "second_gallery", "second_name"]

EXAMPLE = "runs/study/pairwise/seed-0/final"  # `make compare-example` writes it
COMPARE_ROWS = 1000  # rows the comparison table shows at most
COMPARE_COLUMNS = ["id", "caption", "rank A", "rank B", "volume A", "volume B", "|log2 rank A/B|"]


def second_name(source: str) -> str:
    """How the page names a second model or embedding file: a bundled name as it is, a path as
    `gramviz.app.gallery_base.shown_path` shows it."""
    source = str(source).strip()
    try:
        exists = Path(source).expanduser().exists()
    except (OSError, ValueError):
        exists = False
    return shown_path(source, parts=2) if exists else source


def _memo_key(source: str) -> str:
    """The memo key of a second source: its path and when its files last changed (a retrained
    model or a rewritten file is opened again)."""
    path = Path(source).expanduser()
    try:
        if path.is_file():
            return f"{path.resolve()}:{path.stat().st_mtime_ns}"
        if path.is_dir():
            return f"{path.resolve()}:{max((f.stat().st_mtime_ns for f in path.iterdir()), default=0)}"
    except OSError:
        pass
    return source


def _check_same_clips(gallery: Gallery, second: Gallery, source: str) -> None:
    a, b = gallery.meta.ids, second.meta.ids
    if a == b:
        return
    if len(a) != len(b):
        why = f"it holds {len(b):,} clips, the gallery {len(a):,}"
    else:
        i = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
        why = f"clip {i} is {b[i]!r} there but {a[i]!r} here"
    raise GalleryError(f"{second_name(source)} is not of this gallery's clips ({why}): write one with `gramviz embed "
                       f"--model OTHER --data {gallery.shown_source} --out FILE.safetensors`")


def second_gallery(gallery: Gallery, source: str, model: nn.Module, model_name: str | None = None) -> Gallery:
    """The served gallery under a second model: ``source`` is a bundled model name or a model folder
    (the gallery is embedded with it, cached), or a ``.safetensors`` embedding file of the same clips.
    Kept in ``gallery``'s memo.

    Args:
        gallery: the served gallery.
        source: the second model or embedding file.
        model, model_name: the served model (to open an embedding file as `open_gallery` does).

    Raises:
        ValueError: nothing given; GalleryError: not the gallery's clips, or a gallery of embeddings
        only (no media to embed with a second model); gramviz.ModelLoadError: no such model.
    """
    from ..models import load_model

    source = str(source or "").strip()
    if not source:
        raise ValueError(f"give a second model (a bundled name or a folder, e.g. {EXAMPLE} after "
                         "`make compare-example`) or an embedding file of this gallery's clips")

    def compute() -> Gallery:
        path = Path(source).expanduser()
        if path.suffix == ".safetensors":
            if not path.is_file():
                raise GalleryError(f"{second_name(source)}: no such embedding file")
            second = open_gallery(path, model, model_name=model_name)
        elif gallery.source.suffix == ".safetensors":
            raise GalleryError("this gallery is an embedding file: there are no clips here to embed with a second "
                               "model; compare it with a second embedding file of the same clips instead")
        else:
            second = open_gallery(gallery.source, load_model(source), model_name=source)
        _check_same_clips(gallery, second, source)
        return second

    return gallery.memo(f"explore:second:{_memo_key(source)}", compute)


def comparison(gallery: Gallery, second: Gallery, names: tuple[str, str]) -> Comparison:
    """`gramviz.exploration.compare_metrics` of the two galleries' clip metrics."""
    return compare_metrics(gallery_metrics(gallery), gallery_metrics(second), names)


def comparison_table(result: Comparison) -> list[list[Any]]:
    """The comparison's rows (at most `COMPARE_ROWS`, largest disagreement first), columns
    `COMPARE_COLUMNS`."""
    return [[r["id"], r["caption"], r["rank_a"], r["rank_b"], round(r["volume_a"], 4), round(r["volume_b"], 4),
             round(r["disagreement"], 3)] for r in result.rows[:COMPARE_ROWS]]


def describe_comparison(result: Comparison, n_clips: int) -> str:
    """The comparison in words: the two names, how often each ranks a clip first for its caption,
    where they differ most."""
    a, b = result.names
    rows = result.rows
    if not rows:
        return f"**{a}** (A) against **{b}** (B): no clip has a caption, so there are no ranks to compare."
    first_a, first_b = sum(r["rank_a"] == 1 for r in rows), sum(r["rank_b"] == 1 for r in rows)
    same = sum(r["rank_a"] == r["rank_b"] for r in rows)
    listed = f" (the table lists the first {COMPARE_ROWS:,})" if len(rows) > COMPARE_ROWS else ""
    return (f"**A = {a}, B = {b}** on {len(rows):,} captioned clips of {n_clips:,}{listed}. Each clip's first caption "
            f"finds it first (rank 1) under A for {first_a:,} clips, under B for {first_b:,}; the two ranks agree on "
            f"{same:,}. Rows are sorted by |log2 rank A − log2 rank B|, the largest disagreements first; the "
            "selection is linked between both maps.")


def disagreeing_items(gallery: Gallery, result: Comparison, slots: int = STRIP) -> list[tuple[str | None, str] | None]:
    """The player slots of the clips the two models disagree on most: ``(video file or None, label)``."""
    out: list[tuple[str | None, str] | None] = []
    for r in result.rows[:slots]:
        video = gallery.videos[r["clip"]]
        label = f"{r['id']}  rank A {r['rank_a']}, B {r['rank_b']}" + ("" if video else " (no video file)")
        out.append((str(video) if video is not None else None, label))
    return out + [None] * (slots - len(out))
