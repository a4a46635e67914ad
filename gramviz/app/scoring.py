"""The Score tab: the GRAM volume of an uploaded clip and caption, in numbers, words and figures.

`score_upload` returns the JSON object of the ``/score`` endpoint; `describe_score` says in
words what it means (which modality is the least aligned, what is missing, and how the volume
compares with the gallery's matching and non-matching tuples); `score_figures` draws the
parallelotope, the Gram matrix and base x height with `gramviz.viz`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..analysis import matching_volumes, tuple_alignment
from ..modalities import TEXT
from .gallery import Gallery
from .uploads import encode_upload

__all__ = ["ScoreResult", "describe_score", "reference_volumes", "score_figures", "score_upload", "world_examples"]

@dataclass
class ScoreResult:
    """What `score_upload` found.

    Attributes:
        summary: the ``/score`` JSON object: ``volume``, ``cosines`` (``"text-video"`` -> cosine),
            ``modalities`` (scored, anchor first), ``missing`` (modality -> why), ``least_aligned``
            (a modality or None), ``heights`` (each modality's distance from the others' span),
            ``notes`` (list of strings, the words the model ignored first), ``ignored_words`` (the
            caption's words not in the model's vocabulary) and, with a gallery, ``reference`` (its
            median volumes).
        embeddings: modality -> (D,) embedding of the scored modalities.
    """

    summary: dict[str, Any]
    embeddings: dict[str, Tensor]


def reference_volumes(gallery: Gallery, modalities: tuple[str, ...]) -> dict[str, float] | None:
    """Median GRAM volume of the gallery's matching tuples (each clip with its first caption) and of
    non-matching ones (each caption with the previous clip: `gramviz.analysis.matching_volumes`
    with ``negatives="shifted"``), over the given modalities; None when the gallery lacks one of
    them or has fewer than 2 complete clips.

    Example:
        >>> reference_volumes(gallery, ("text", "video", "audio"))  # doctest: +SKIP
        {'matching': 0.31, 'non_matching': 0.83}
    """
    media = [m for m in modalities if m != TEXT]
    if any(m not in gallery.embeddings for m in modalities) or len(modalities) < 2:
        return None
    first = gallery.first_caption_rows()
    rows = [c for c in range(gallery.n_clips)
            if (TEXT not in modalities or first[c] is not None)
            and all(bool(gallery.embeddings[m][c].norm() > 0) for m in media)]
    if len(rows) < 2:
        return None
    idx = torch.tensor(rows)
    parts = {m: gallery.embeddings[m][idx] for m in media}
    if TEXT in modalities:
        parts = {TEXT: gallery.embeddings[TEXT][torch.tensor([first[c] for c in rows])], **parts}
    stacked = [parts[m] for m in modalities]
    matching, non_matching = matching_volumes(stacked[0], *stacked[1:], negatives="shifted")
    return {"matching": float(matching.median()), "non_matching": float(non_matching.median())}


def score_upload(model: nn.Module, video: Any = None, audio: Any = None, text: str | None = None,
                 gallery: Gallery | None = None) -> ScoreResult:
    """Embed an upload (see `gramviz.app.uploads.encode_upload`) and measure its alignment.

    A missing modality is scored with the modalities present (at least two are needed).

    Raises:
        ValueError (gramviz.MediaError included): unusable input, or fewer than two modalities.
    """
    up = encode_upload(model, video, audio, text)
    if len(up.embeddings) < 2:
        have = ", ".join(up.embeddings) or "nothing"
        why = "; ".join(f"{m}: {reason}" for m, reason in up.missing.items())
        raise ValueError(f"scoring needs at least two of text, video and audio; usable: {have} ({why}). "
                         "Type a caption, or upload a clip with sound")
    align = tuple_alignment(up.embeddings)
    summary = {"volume": align["volume"], "cosines": align["cosines"], "modalities": align["modalities"],
               "missing": up.missing, "least_aligned": align["least_aligned"], "heights": align["heights"],
               "notes": up.notes, "ignored_words": up.ignored_words}
    if gallery is not None and gallery.mismatch:
        summary["reference"] = None
        summary["notes"] = up.notes + [f"scored by the loaded model; the gallery's volumes are not compared: "
                                       f"its embeddings are {gallery.describe_space()}, another space"]
    elif gallery is not None:
        summary["reference"] = reference_volumes(gallery, tuple(align["modalities"]))
    return ScoreResult(summary, {m: up.embeddings[m] for m in align["modalities"]})


def describe_score(summary: Mapping[str, Any]) -> str:
    """The score in words (Markdown): the volume, and right beside it what it is not of (a modality
    missing, the words the model ignored, other notes); then the gallery's reference, the cosines
    and the least aligned modality.

    Example:
        >>> print(describe_score({"volume": 0.5, "modalities": ["text", "video"], "cosines": {"text-video": 0.866},
        ...                       "heights": {"text": 0.5, "video": 0.5}, "least_aligned": None, "missing": {}}))
        ... # doctest: +ELLIPSIS
        **GRAM volume 0.500** of text and video ...
    """
    mods, vol = list(summary["modalities"]), float(summary["volume"])
    first = [f"**GRAM volume {vol:.3f}** of {_join(mods)} (0 = perfectly aligned, 1 = mutually orthogonal)."]
    first += [f"*Scored without {m}: {reason}.*" for m, reason in summary.get("missing", {}).items()]
    first += [f"*Note: {note}.*" for note in summary.get("notes", [])]
    lines = ["  \n".join(first)]  # one paragraph: what the number is of, beside it
    ref = summary.get("reference")
    if ref:
        where = ("below the typical matching tuple" if vol <= ref["matching"] else
                 "between matching and non-matching" if vol < ref["non_matching"] else "above a typical mismatch")
        lines.append(f"In the gallery, matching tuples have a median volume of {ref['matching']:.3f} and non-matching "
                     f"ones {ref['non_matching']:.3f}: this one is {where}.")
    cos = ", ".join(f"{pair.replace('-', '–')} {value:.3f}" for pair, value in summary["cosines"].items())
    lines.append(f"Pairwise cosines: {cos}.")
    least, heights = summary.get("least_aligned"), summary["heights"]
    if least is not None:
        rest = [m for m in mods if m != least]
        base = vol / heights[least] if heights[least] > 0 else 0.0
        lines.append(f"**{least.capitalize()} is the least aligned**: it lies {heights[least]:.3f} from the span of "
                     f"{_join(rest)}, which alone span {base:.3f} (volume = {base:.3f} x {heights[least]:.3f}); "
                     "without it the rest align best.")
    elif len(mods) == 2:
        lines.append("With two modalities the volume is the sine of their angle: neither stands out.")
    else:
        lines.append("No modality stands out: each lies as far from the span of the others.")
    return "\n\n".join(lines)


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def score_figures(embeddings: Mapping[str, Tensor]) -> dict[str, Any]:
    """``{"parallelotope", "gram", "base_height"}`` figures of one tuple (anchor first), from `gramviz.viz`."""
    from ..viz import base_height_figure, gram_heatmap, parallelotope

    names = list(embeddings)
    vectors = [embeddings[m].double() for m in names]
    return {"parallelotope": parallelotope(*vectors, labels=names),
            "gram": gram_heatmap(*vectors, labels=names),
            "base_height": base_height_figure(vectors[0], *vectors[1:], labels=names)}


def world_examples(gallery: Gallery, n: int = 4) -> list[tuple[str, str, str]]:
    """Examples for the Score tab: ``(label, video file, caption)`` of the first clips with their own
    caption, then the same clips with a caption of another class (a mismatch to compare with)."""
    clips = [c for c in range(gallery.n_clips) if gallery.videos[c] is not None and gallery.clip_caption(c)][:n]
    out = [(f"{gallery.meta.ids[c]}: {gallery.clip_caption(c)}", str(gallery.videos[c]), gallery.clip_caption(c))
           for c in clips]
    for c in clips:
        other = next((o for o in range(gallery.n_clips) if o != c and gallery.clip_caption(o)
                      and (gallery.class_name(c) is None or gallery.class_name(o) != gallery.class_name(c))), None)
        if other is not None:
            out.append((f"{gallery.meta.ids[c]} with a wrong caption: {gallery.clip_caption(other)}",
                        str(gallery.videos[c]), gallery.clip_caption(other)))
    return out
