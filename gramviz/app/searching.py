"""The Search tab: text -> the gallery's clips, a clip -> the gallery's captions, by any measure.

`search_by_text` and `search_by_clip` return the JSON lists of the ``/search_by_text`` and
``/search_by_clip`` endpoints together with the full ranking; `ranking_figure` draws it with
`gramviz.viz.retrieval_results`; `compare_rankings` says how another measure's top k differs
from GRAM's. Every result carries the GRAM volume, whatever measure ranked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..modalities import MEDIA
from ..search import Ranking, rank_captions, rank_clips
from .gallery import Gallery
from .uploads import check_text, encode_upload

__all__ = ["MAX_K", "MEASURE_CHOICES", "SearchResult", "check_k", "compare_rankings", "ranking_figure",
           "search_by_clip", "search_by_text"]

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
    """

    results: list[dict[str, Any]]
    ranking: Ranking
    labels: list[str]
    correct: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


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


def _volumes(ranking: Ranking, volume_ranking: Ranking | None) -> Tensor:
    """The GRAM volume of every row: from the volume ranking, or the ranking itself."""
    source = volume_ranking if volume_ranking is not None else ranking
    return -source.all_scores


def search_by_text(model: nn.Module, gallery: Gallery, text: str, k: int = 10, measure: str = "volume") -> SearchResult:
    """The k gallery clips that best align with a caption (the anchor) by ``measure``.

    Results: ``{"rank", "id", "caption" (the clip's first caption), "class", "volume" (GRAM volume
    of caption, video, audio), "measure", "value" (the measure as read)}``.

    Raises:
        ValueError: unusable text (see `gramviz.app.uploads.check_text`) or k.
    """
    k = check_k(k)
    clean, notes = check_text(text, model)
    query = model.encode_text([clean])[0].float()
    clips = gallery.clip_embeddings()
    ranking = rank_clips(query, clips, k, measure)
    vol = _volumes(ranking, None if measure == "volume" else rank_clips(query, clips, 1, "volume"))
    results = [{"rank": r + 1, "id": gallery.meta.ids[j], "caption": gallery.clip_caption(j),
                "class": gallery.class_name(j), "volume": float(vol[j]), "measure": measure, "value": float(value)}
               for r, (j, value) in enumerate(zip(ranking.indices.tolist(), ranking.values))]
    target = clean.casefold()
    caption_clips = gallery.caption_clips()
    correct = sorted({caption_clips[i] for i in range(gallery.n_captions) if gallery.caption(i).casefold() == target})
    labels = [f"{i}: {gallery.clip_caption(j)}" for j, i in enumerate(gallery.meta.ids)]
    left_out = int((~ranking.considered).sum())
    if left_out:
        notes.append(f"{left_out} clips lacking {' or '.join(ranking.modalities)} were left out of the ranking")
    return SearchResult(results, ranking, labels, correct, notes)


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
    """The k gallery captions that best align with an uploaded clip (caption = anchor).

    A clip without sound (or with a silent one) ranks by video alone, an audio file alone by audio.
    Results: ``{"rank", "caption", "id" (the caption's clip), "class", "volume", "measure", "value"}``.

    Raises:
        ValueError: unusable media (see `gramviz.app.uploads.encode_upload`), k, or a gallery without captions.
    """
    k = check_k(k)
    if gallery.n_captions == 0 or gallery.meta.captions is None:
        raise ValueError(f"the gallery {gallery.source.name} holds no captions to search")
    if video is None and audio is None:
        raise ValueError("upload a clip (a video with its sound) or an audio file to search captions with")
    up = encode_upload(model, video, audio, None)
    clip = {m: up.embeddings[m] for m in MEDIA if m in up.embeddings}
    if not clip:
        raise ValueError("the upload has neither usable video nor sound: " + "; ".join(up.missing.values()))
    captions = gallery.embeddings["text"]
    ranking = rank_captions(captions, clip, k, measure)
    vol = _volumes(ranking, None if measure == "volume" else rank_captions(captions, clip, 1, "volume"))
    caption_clips = gallery.caption_clips()
    results = [{"rank": r + 1, "caption": gallery.caption(i), "id": gallery.meta.ids[caption_clips[i]],
                "class": gallery.class_name(caption_clips[i]), "volume": float(vol[i]), "measure": measure,
                "value": float(value)}
               for r, (i, value) in enumerate(zip(ranking.indices.tolist(), ranking.values))]
    own = _same_clip(gallery, clip)
    correct = [i for i, c in enumerate(caption_clips) if c == own] if own is not None else []
    notes = up.notes + [f"scored without {m}: {why}" for m, why in up.missing.items() if m != "text"]
    return SearchResult(results, ranking, list(gallery.meta.captions), correct, notes)


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
