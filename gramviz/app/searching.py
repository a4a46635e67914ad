"""The Search tab: a caption -> the gallery's clips, a clip -> the gallery's captions, by any measure.

Queries are either embedded by the loaded model (typed text: `search_by_text`; an upload:
`search_by_clip`) or are the gallery's own rows (`search_by_caption`, `captions_of_clip`), which
work on a gallery from any model's embedding file, whatever its dimension. The first two refuse,
with the reason (``Gallery.mismatch``), when the loaded model does not embed in the gallery's space.
Clips are ranked through the gallery's exact index (`Gallery.index`, a `gramviz.search.ClipIndex`).

A gallery without captions (a folder of the user's own clips) is searched by typed text as any
other; a clip (uploaded: `search_by_clip`, or one of its own: `clips_like_clip`) finds the clips
most like it instead of captions, and ``/captions_of_clip`` answers an empty list with the reason.

Each function returns the JSON list of its endpoint (``/search_by_text``, ``/search_by_clip``,
``/search_by_caption``, ``/captions_of_clip``; `endpoint_results` adds the query's notes, such as
the words the model ignored, to each item) together with the full ranking; `ranking_figure`
draws it with `gramviz.viz.retrieval_results`; `compare_rankings` says how another measure's top k
differs from GRAM's. Every result carries the exact GRAM volume, whatever measure ranked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..gram import volume
from ..modalities import MEDIA
from ..scores import MEASURES
from ..search import Ranking, rank_captions, rank_clips
from .gallery_base import Gallery
from .picks import caption_row, clip_row, no_captions
from .uploads import check_text, encode_upload

__all__ = ["MAX_K", "MEASURE_CHOICES", "SearchResult", "captions_of_clip", "check_k", "check_measure",
           "clips_like_clip", "compare_rankings", "describe_results", "endpoint_results", "ranking_figure",
           "require_query_space", "search_by_caption", "search_by_clip", "search_by_text"]

MAX_K = 100
# what the page offers beside GRAM, by the name people know it under
MEASURE_CHOICES = {"pairwise cosine": "cosine_pairwise", "fused cosine": "cosine_fused", "Symile": "symile"}


@dataclass
class SearchResult:
    """One query's ranking of the gallery.

    Attributes:
        results: the endpoint's JSON list, best first (rank, id, caption, class, volume, measure, value).
        ranking: the `gramviz.search.Ranking` (all scores, for figures).
        labels: a label for every ranked row (clip ids with captions, or captions).
        correct: rows known to match the query (its own clip or captions), for highlighting.
        notes: facts about the query (unknown words, missing modalities...).
        query: the query in words, for the page ("caption 12: a red ball ...").
    """

    results: list[dict[str, Any]]
    ranking: Ranking
    labels: list[str]
    correct: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    query: str = ""


def check_k(k: Any) -> int:
    """``k`` as an int in [1, MAX_K], or a ValueError saying what is wrong.

    Example:
        >>> check_k(5.0), check_k("3")
        (5, 3)
    """
    try:
        value = float(k)
    except (TypeError, ValueError):
        raise ValueError(f"k must be a whole number of results, got {k!r}") from None
    if value != int(value) or not 1 <= value <= MAX_K:
        raise ValueError(f"k must be a whole number from 1 to {MAX_K}, got {k!r}")
    return int(value)


def check_measure(measure: Any) -> str:
    """``measure`` if it is one of `gramviz.MEASURES`, else a ValueError listing them."""
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {', '.join(MEASURES)}; got {measure!r}")
    return measure


def require_query_space(gallery: Gallery) -> None:
    """Raise a ValueError saying why, when the loaded model cannot embed queries for this gallery."""
    if gallery.mismatch:
        raise ValueError(gallery.mismatch)


def _rank_gallery_clips(gallery: Gallery, query: Tensor, k: int, measure: str) -> tuple[list[dict[str, Any]], Ranking]:
    """Clips for one anchor through the gallery's index, each with its exact GRAM volume."""
    ranking = rank_clips(query, gallery.index, k, measure)
    rows = ranking.indices
    clips = gallery.clip_embeddings()
    vol = volume(query.reshape(1, -1).expand(len(rows), -1), *(x[rows] for x in clips.values()))
    results = [{"rank": r + 1, "id": gallery.meta.ids[j], "caption": gallery.clip_caption(j),
                "class": gallery.class_name(j), "volume": float(vol[r]), "measure": measure, "value": float(value)}
               for r, (j, value) in enumerate(zip(rows.tolist(), ranking.values))]
    return results, ranking


def _clips_result(gallery: Gallery, query: Tensor, k: int, measure: str, text: str, notes: list[str]) -> SearchResult:
    results, ranking = _rank_gallery_clips(gallery, query, k, measure)
    target = text.strip().casefold()
    caption_clips = gallery.caption_clips()
    correct = sorted({caption_clips[i] for i in range(gallery.n_captions)
                      if gallery.caption(i).strip().casefold() == target}) if target else []
    left_out = int((~ranking.considered).sum())
    if left_out:
        notes.append(f"{left_out} clips lacking {' or '.join(ranking.modalities)} were left out of the ranking")
    return SearchResult(results, ranking, gallery.clip_labels(), correct, notes)


def search_by_text(model: nn.Module, gallery: Gallery, text: str, k: int = 10, measure: str = "volume") -> SearchResult:
    """The k gallery clips that best align with a typed caption (the anchor), embedded by ``model``.

    Results: ``{"rank", "id", "caption" (the clip's first caption), "class", "volume" (GRAM volume
    of caption, video, audio), "measure", "value" (the measure as read)}``.

    Raises:
        ValueError: the model does not embed in the gallery's space (``Gallery.mismatch``), unusable
            text (see `gramviz.app.uploads.check_text`), k or measure.
    """
    k, measure = check_k(k), check_measure(measure)
    require_query_space(gallery)
    clean, notes = check_text(text, model)
    query = model.encode_text([clean])[0].float()
    out = _clips_result(gallery, query, k, measure, clean, notes)
    out.query = f'"{clean}"'
    return out


def search_by_caption(gallery: Gallery, caption: Any, k: int = 10, measure: str = "volume",
                      model: nn.Module | None = None) -> SearchResult:
    """The k gallery clips that best align with one of the gallery's own captions, by its own embedding.

    Works on a gallery of any model and dimension. ``caption`` is a caption row (int) or the text of
    one of the gallery's captions; other text is embedded by ``model`` as `search_by_text` does when
    the model shares the gallery's space, and refused with the reason otherwise.

    Raises:
        ValueError: no such caption (and no matching model for free text), k or measure.
    """
    k, measure = check_k(k), check_measure(measure)
    row = caption_row(gallery, caption)
    if row is None:
        if gallery.mismatch or model is None:
            why = gallery.mismatch or "no model is loaded to embed free text"
            raise ValueError(f'"{str(caption).strip()[:80]}" is not one of the gallery\'s {gallery.n_captions:,} '
                             f"captions; {why}")
        out = search_by_text(model, gallery, caption, k, measure)
        out.notes.append("not one of the gallery's captions: embedded by the loaded model")
        return out
    query = gallery.embeddings["text"][row]
    if not bool(query.norm() > 0):
        raise ValueError(f"caption row {row} has a zero embedding (missing text): nothing to rank with")
    out = _clips_result(gallery, query, k, measure, gallery.caption(row), [])
    own = gallery.caption_clips()[row]
    out.correct = sorted(set(out.correct) | {own})
    out.query = f"caption {row} of clip {gallery.meta.ids[own]}" + (f': "{gallery.caption(row)}"' if gallery.caption(row) else "")
    return out


def _rank_gallery_captions(gallery: Gallery, clip: dict[str, Tensor], k: int, measure: str) -> SearchResult:
    """Captions for one clip (its modalities as (D,) vectors), each with its exact GRAM volume."""
    if gallery.n_captions == 0:
        raise ValueError(no_captions(gallery))
    captions = gallery.embeddings["text"]
    ranking = rank_captions(captions, clip, k, measure)
    rows = ranking.indices
    vol = volume(captions[rows], *(x.reshape(1, -1).expand(len(rows), -1) for x in clip.values()))
    caption_clips = gallery.caption_clips()
    results = [{"rank": r + 1, "caption": gallery.caption(i), "row": i, "id": gallery.meta.ids[caption_clips[i]],
                "class": gallery.class_name(caption_clips[i]), "volume": float(vol[r]), "measure": measure,
                "value": float(value)}
               for r, (i, value) in enumerate(zip(rows.tolist(), ranking.values))]
    labels = gallery.memo("caption_texts", lambda: [gallery.caption(i) or f"caption {i}" for i in range(gallery.n_captions)])
    return SearchResult(results, ranking, labels)


def captions_of_clip(gallery: Gallery, clip: Any, k: int = 10, measure: str = "volume") -> SearchResult:
    """The k gallery captions that best align with one of the gallery's clips (by id or row), by its
    own embeddings; works on a gallery of any model and dimension.

    Results: ``{"rank", "caption", "row" (its text row), "id" (the caption's clip), "class", "volume",
    "measure", "value"}``.

    Raises:
        ValueError: no such clip, a clip without video and audio, no captions, k or measure.
    """
    k, measure = check_k(k), check_measure(measure)
    row = clip_row(gallery, clip)
    if gallery.n_captions == 0:
        return SearchResult([], None, [], notes=[no_captions(gallery)], query=f"clip {gallery.meta.ids[row]}")
    have, parts = _own_clip(gallery, row)
    out = _rank_gallery_captions(gallery, have, k, measure)
    out.correct = [i for i, c in enumerate(gallery.caption_clips()) if c == row]
    out.notes = [f"clip {gallery.meta.ids[row]} has no {m}: ranked by {' and '.join(have)} alone"
                 for m in parts if m not in have]
    out.query = f"clip {gallery.meta.ids[row]}" + (f' ("{gallery.clip_caption(row)}")' if gallery.clip_caption(row) else "")
    return out


def _own_clip(gallery: Gallery, row: int) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """The modalities clip ``row`` has (non-zero rows) and all its media rows, or a ValueError."""
    parts = {m: x[row] for m, x in gallery.clip_embeddings().items()}
    have = {m: x for m, x in parts.items() if bool(x.norm() > 0)}
    if not have:
        raise ValueError(f"clip {gallery.meta.ids[row]} has neither video nor audio embeddings: nothing to rank with")
    return have, parts


def _clips_like(gallery: Gallery, clip: dict[str, Tensor], k: int, measure: str) -> SearchResult:
    """The gallery clips most like a clip: its video and audio, averaged into one unit anchor, rank
    the clips as a caption does (GRAM volume of the anchor with each clip's video and audio)."""
    anchor = F.normalize(torch.stack([F.normalize(x.float(), dim=0) for x in clip.values()]).mean(0), dim=0)
    out = _clips_result(gallery, anchor, k, measure, "", [])
    own = _same_clip(gallery, clip)
    out.correct = [own] if own is not None else []
    return out


def clips_like_clip(gallery: Gallery, clip: Any, k: int = 10, measure: str = "volume") -> SearchResult:
    """The k gallery clips most like one of the gallery's clips (by id or row), by its own embeddings:
    what a clip finds in a gallery without captions (see `search_by_clip`).

    Raises:
        ValueError: no such clip, a clip without video and audio, k or measure.
    """
    k, measure = check_k(k), check_measure(measure)
    row = clip_row(gallery, clip)
    have, _ = _own_clip(gallery, row)
    out = _clips_like(gallery, have, k, measure)
    out.query = f"clip {gallery.meta.ids[row]}"
    return out


def _same_clip(gallery: Gallery, clip: dict[str, Tensor]) -> int | None:
    """The gallery row whose embeddings equal the query's (the user uploaded a gallery clip), or None."""
    sims = [F.normalize(gallery.embeddings[m], dim=-1) @ F.normalize(x, dim=0) for m, x in clip.items()
            if m in gallery.embeddings]
    if not sims:
        return None
    best = torch.stack(sims).min(0).values  # (M,) the worst modality's cosine
    row = int(best.argmax())
    return row if float(best[row]) > 0.9999 else None


def search_by_clip(model: nn.Module, gallery: Gallery, video: Any, audio: Any = None, k: int = 10,
                   measure: str = "volume") -> SearchResult:
    """The k gallery captions that best align with an uploaded clip (caption = anchor); in a gallery
    without captions, the k clips most like it (its video and audio averaged into one anchor that
    ranks the clips as a caption does; a gallery clip finds itself first).

    A clip without sound (or with a silent one) ranks by video alone, an audio file alone by audio.
    Results: ``{"rank", "caption", "row", "id" (the caption's clip), "class", "volume", "measure", "value"}``
    (clips: as `search_by_text`'s).

    Raises:
        ValueError: the model does not embed in the gallery's space, unusable media (see
            `gramviz.app.uploads.encode_upload`), k or measure.
    """
    k, measure = check_k(k), check_measure(measure)
    require_query_space(gallery)
    if video is None and audio is None:
        raise ValueError("upload a clip (a video with its sound) or an audio file to search captions with")
    up = encode_upload(model, video, audio, None)
    clip = {m: up.embeddings[m] for m in MEDIA if m in up.embeddings}
    if not clip:
        raise ValueError("the upload has neither usable video nor sound: " + "; ".join(up.missing.values()))
    notes = up.notes + [f"scored without {m}: {why}" for m, why in up.missing.items() if m != "text"]
    if gallery.n_captions == 0:
        out = _clips_like(gallery, clip, k, measure)
        out.notes = notes + ["the gallery holds no captions: its clips most like the upload are ranked instead"]
    else:
        out = _rank_gallery_captions(gallery, clip, k, measure)
        own = _same_clip(gallery, clip)
        out.correct = [i for i, c in enumerate(gallery.caption_clips()) if c == own] if own is not None else []
        out.notes = notes
    out.query = "the uploaded clip"
    return out


def endpoint_results(result: SearchResult) -> list[dict[str, Any]]:
    """The endpoint's JSON list: each result with the query's ``notes`` (the words the model
    ignored, a modality missing...), so that a script reads them beside the ranking."""
    return [{**item, "notes": list(result.notes)} for item in result.results]


def describe_results(result: SearchResult, total: int, noun: str) -> str:
    """The line above a ranking: how many of what for which query, then the query's notes beside it.

    Example:
        >>> r = SearchResult([{"id": "x"}], None, [], notes=["ignored words (...): dog"], query='"a dog"')
        >>> describe_results(r, 24, "clips")
        'Top 1 of 24 clips for "a dog", by GRAM volume (lower = more aligned). *Ignored words (...): dog.*'
    """
    if not result.results:
        return f"No {noun} for {result.query}. " + " ".join(f"*{n[:1].upper()}{n[1:]}.*" for n in result.notes)
    line = f"Top {len(result.results)} of {total:,} {noun} for {result.query}, by GRAM volume (lower = more aligned)."
    return " ".join([line, *(f"*{n[:1].upper()}{n[1:]}.*" for n in result.notes)])


def ranking_figure(result: SearchResult, k: int | None = None):
    """Bars of the top k (`gramviz.viz.retrieval_results`), the query's own items highlighted."""
    from ..viz import retrieval_results

    r = result.ranking
    rows = r.considered.nonzero().flatten().tolist()
    position = {row: p for p, row in enumerate(rows)}
    correct = [position[c] for c in result.correct if c in position]
    return retrieval_results(r.all_scores[rows].double().numpy(), [result.labels[j] for j in rows],
                             k=k or len(result.results), measure=r.measure, correct=correct or None)


def compare_rankings(gram: SearchResult, other: SearchResult, other_name: str = "the other measure") -> str:
    """One sentence on how another measure's top k differs from GRAM's (results matched by id and caption).

    Example:
        >>> a = SearchResult([{"id": "x", "caption": "c"}, {"id": "y", "caption": "d"}], None, [])
        >>> b = SearchResult([{"id": "y", "caption": "d"}, {"id": "z", "caption": "e"}], None, [])
        >>> print(compare_rankings(a, b, "Symile"))
        1 of the top 2 are the same; GRAM's first result (x: c) is outside the top 2 of Symile.
    """
    keys_a = [(x.get("id"), x.get("caption")) for x in gram.results]
    keys_b = [(x.get("id"), x.get("caption")) for x in other.results]
    if not keys_a:
        return "no results"
    same = len(set(keys_a) & set(keys_b))
    where = f"rank {keys_b.index(keys_a[0]) + 1} by" if keys_a[0] in keys_b else f"outside the top {len(keys_b)} of"
    first = f"{keys_a[0][0]}: {keys_a[0][1]}"
    return f"{same} of the top {len(keys_a)} are the same; GRAM's first result ({first}) is {where} {other_name}."
