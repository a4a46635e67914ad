"""Choosing one of a gallery's own captions or clips: by row, by text or id, and the Search tab's lists.

A gallery from another model's embedding file cannot embed what a user types, but its own
captions and clips are queries already embedded in its space. `caption_row` and `clip_row` turn
what a script or the page gives (a row number, a caption's text, a clip id) into a row, with an
error that says what is available otherwise; `caption_choices` and `clip_choices` are the
dropdowns' ``(label, row)`` entries, filtered by what the user types when the gallery is large.

Example:
    >>> caption_choices(gallery, "red ball", limit=2)  # doctest: +SKIP
    [('a red ball bouncing with a high beep  [test-000004]', 12), ...]
"""

from __future__ import annotations

from typing import Any

from .gallery_base import Gallery

__all__ = ["MAX_CHOICES", "caption_choices", "caption_label", "caption_row", "clip_choices", "clip_row", "no_captions",
           "shorten"]

MAX_CHOICES = 2000  # entries a dropdown holds; beyond, it lists those matching what is typed


def shorten(text: str, most: int) -> str:
    """``text`` cut to ``most`` characters with an ellipsis.

    Example:
        >>> shorten("a red ball bouncing", 10)
        'a red bal…'
    """
    return text if len(text) <= most else text[: most - 1] + "…"


def _as_row(value: Any) -> int | None:
    """An int (or a whole float, as a number box sends) as a row; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def caption_label(gallery: Gallery, row: int) -> str:
    """``"<caption>  [<clip id>]"``, or ``"caption <row>  [<clip id>]"`` when the file stores no texts."""
    text = gallery.caption(row) or f"caption {row}"
    return f"{shorten(text, 100)}  [{gallery.meta.ids[gallery.caption_clips()[row]]}]"


def no_captions(gallery: Gallery) -> str:
    """Why a gallery without captions has none to pick or rank, and what searches it instead."""
    return (f"the gallery {gallery.source.name} holds no captions: search its clips by typed text "
            "(/search_by_text) or by a clip (/search_by_clip)")


def caption_row(gallery: Gallery, caption: Any) -> int | None:
    """The text row of ``caption``: a row number (int), or one of the gallery's caption texts
    (case and surrounding spaces ignored; the first of identical captions). None when ``caption``
    is text that is not one of the gallery's captions.

    Raises:
        ValueError: the gallery has no captions, an empty caption, or a row outside the gallery.
    """
    n = gallery.n_captions
    if n == 0:
        raise ValueError(no_captions(gallery))
    row = _as_row(caption)
    if row is not None:
        if not 0 <= row < n:
            raise ValueError(f"caption row {row} is outside the gallery's {n:,} captions (rows 0 to {n - 1})")
        return row
    if not isinstance(caption, str) or not caption.strip():
        raise ValueError("give a caption: one of the gallery's captions (its text or its row number)")
    rows = gallery.memo("caption_rows", lambda: _first_rows(gallery.meta.captions or []))
    return rows.get(caption.strip().casefold())


def _first_rows(captions: list[str]) -> dict[str, int]:
    """Caption text (case and surrounding spaces ignored) -> its first row."""
    rows: dict[str, int] = {}
    for i, text in enumerate(captions):
        rows.setdefault(text.strip().casefold(), i)
    return rows


def clip_row(gallery: Gallery, clip: Any) -> int:
    """The row of a clip given by its id (a string) or its row number (an int).

    Raises:
        ValueError: no clip with that id, or a row outside the gallery.
    """
    n = gallery.n_clips
    row = _as_row(clip)
    if row is not None:
        if not 0 <= row < n:
            raise ValueError(f"clip row {row} is outside the gallery's {n:,} clips (rows 0 to {n - 1})")
        return row
    if not isinstance(clip, str) or not clip.strip():
        raise ValueError("give a clip: its id in the gallery (or its row number)")
    rows = gallery.memo("id_rows", lambda: {i: j for j, i in enumerate(gallery.meta.ids)})
    if clip.strip() not in rows:
        sample = ", ".join(gallery.meta.ids[:3])
        raise ValueError(f"no clip with id {clip.strip()!r} in the gallery {gallery.source.name} "
                         f"({n:,} clips, e.g. {sample})")
    return rows[clip.strip()]


def _matching(labels: list[str], typed: str, limit: int) -> list[int]:
    """Rows whose label contains every typed word (case ignored), at most ``limit``."""
    words = typed.casefold().split()
    out = []
    for row, label in enumerate(labels):
        folded = label.casefold()
        if all(w in folded for w in words):
            out.append(row)
            if len(out) == limit:
                break
    return out


def caption_choices(gallery: Gallery, typed: str = "", limit: int = MAX_CHOICES) -> list[tuple[str, int]]:
    """Dropdown entries ``(label, row)`` of the gallery's captions: all of them up to ``limit``,
    else those whose label holds every typed word."""
    labels = gallery.memo("caption_labels", lambda: [caption_label(gallery, r) for r in range(gallery.n_captions)])
    rows = range(min(len(labels), limit)) if not typed.strip() else _matching(labels, typed, limit)
    return [(labels[r], r) for r in rows]


def clip_choices(gallery: Gallery, typed: str = "", limit: int = MAX_CHOICES) -> list[tuple[str, int]]:
    """Dropdown entries ``(label, row)`` of the gallery's clips (``"<id>: <first caption>"``)."""
    labels = gallery.memo("clip_choice_labels", lambda: [shorten(x, 110) for x in gallery.clip_labels()])
    rows = range(min(len(labels), limit)) if not typed.strip() else _matching(labels, typed, limit)
    return [(labels[r], r) for r in rows]
