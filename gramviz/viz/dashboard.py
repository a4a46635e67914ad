"""The exploration dashboard's figures: the selectable map, one clip against the gallery, its
nearest clips two ways, and two models' ranks side by side.

Pure functions of (coordinates or metrics, selection) returning Plotly figures or `HTMLTable`s,
shared by the app's Explore tab and the notebook widget (`gramviz.viz.dashboard`). Every map point
carries its clip index as ``customdata`` (a plain int per point), so a selection or a click in the
browser names clips directly.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import _map_markers as markers
from ._style import SEQUENTIAL, as_array, go, modality_symbol, number, titled_layout, volume_text
from .alignment import _add_iso_volume_curves, _base_height_titles, truncate
from .ranking import _CELL, _HEADER, _HIGHLIGHT, HTMLTable

__all__ = ["selection_map", "selection_table", "clip_context", "neighbours_table", "comparison_scatter"]

GREY, GREY_OPACITY = "#B8B8B8", 0.3  # points of unselected clips: there, but in the background
HIGHLIGHT = "#D55E00"  # the inspected clip
UIREVISION = "gramviz-selection-map"  # zoom and pan survive a redraw with another colour or selection
_WEBGL_ABOVE = 1000  # points from which the map is drawn with WebGL
_MODALITY_NAMES = {"text": "caption", "video": "video", "audio": "audio"}
TABLE_COLUMNS = ("id", "caption", "class", "volume", "base", "height", "caption_rank", "clip_rank", "nearest",
                 "least_aligned")


def _clip_count(coords: dict[str, np.ndarray], point_clips: Mapping[str, Any] | None, color: Any,
                hover: Any) -> int:
    """M: video's or audio's points, else one per colour or hover value, else the last clip named + 1."""
    media = [coords[m].shape[0] for m in ("video", "audio") if m in coords]
    if media or color is not None or hover is not None:
        return media[0] if media else len(color if color is not None else hover)
    given = [int(np.max(c)) for c in (point_clips or {}).values() if len(c)]
    return max([*given, *(len(c) - 1 for c in coords.values())]) + 1


def _point_clips(coords: dict[str, np.ndarray], point_clips: Mapping[str, Any] | None, n: int) -> dict[str, np.ndarray]:
    """Modality -> the clip index of each point, checked against the coordinates and the clip count."""
    out = {}
    for m, xy in coords.items():
        given = (point_clips or {}).get(m)
        if given is None:
            if xy.shape[0] != n:
                raise ValueError(f"selection_map: {m} has {xy.shape[0]} points for {n} clips: pass point_clips[{m!r}] "
                                 "(the clip of each point, e.g. caption_clips for text)")
            given = np.arange(n)
        clips = np.asarray(given.tolist() if hasattr(given, "tolist") else given, dtype=np.int64).reshape(-1)
        if clips.shape[0] != xy.shape[0]:
            raise ValueError(f"selection_map: point_clips[{m!r}] has {clips.shape[0]} entries for {xy.shape[0]} points")
        if clips.size and (clips.min() < 0 or clips.max() >= n):
            raise ValueError(f"selection_map: point_clips[{m!r}] must name clips in [0, {n})")
        out[m] = clips
    return out


def _colours(color: Any, n: int, modalities: list[str]) -> tuple[markers.Encoding, np.ndarray | None]:
    """How each clip is coloured, and for numbers the values (NaN where undefined)."""
    if color is None:
        return markers.Encoding(groups=[None] * n), None
    values = list(color.tolist() if hasattr(color, "tolist") else color)
    if len(values) != n:
        raise ValueError(f"selection_map: color has {len(values)} entries for {n} clips (one per clip)")
    if markers.is_numeric(values):
        nums = np.asarray(values, dtype=np.float64)
        if np.isinf(nums).any():
            raise ValueError("selection_map: color holds infinite values")
        return markers.encoding([float(x) for x in nums], None, modalities, n), nums
    return markers.encoding(["none" if v is None else str(v) for v in values], None, modalities, n), None


def selection_map(coords: Mapping[str, Any], point_clips: Mapping[str, Any] | None = None, color: Any = None,
                  color_name: str = "class", selected: Sequence[int] | None = None,
                  hover: Sequence[str] | None = None, title: str | None = None, dragmode: str = "select") -> go.Figure:
    """The gallery's 2-D map for selecting clips: a box or lasso selects, a click picks one.

    One point per caption, video and audio embedding (the marker says which; see the key), coloured
    by one value per clip. Unselected clips are drawn grey and faint beneath the selected ones, not
    hidden. Every point's ``customdata`` is its clip index (a plain int), so plotly's
    ``plotly_selected`` and ``plotly_click`` events name clips. ``layout.uirevision`` is fixed: a
    redraw keeps the user's zoom. ``layout.meta`` holds ``clips``, ``selected``, ``color_name`` and
    ``numeric``.

    Args:
        coords: modality -> (n_m, 2) map coordinates, as `gramviz.viz.project` returns them.
        point_clips: modality -> the clip of each point; default the identity (video and audio have
            one point per clip; for text pass the caption's clips, ``caption_clips``).
        color: one value per clip: labels (a colour each, with a legend) or numbers (a colour scale
            titled ``color_name``; NaN, e.g. the height of a clip without a caption, drawn grey).
        color_name: what ``color`` is, for the title and the colour bar.
        selected: the selected clips; None: no selection, every clip in colour.
        hover: one text per clip (e.g. id and caption), shown on hover.
        title: the figure's title; a default says how to select.
        dragmode: "select" (a box) or "lasso".

    Example:
        >>> xy = {"video": np.eye(3)[:, :2], "audio": -np.eye(3)[:, :2]}
        >>> fig = selection_map(xy, color=[0.1, 0.5, 0.9], color_name="volume", selected=[1])
        >>> sorted(c for t in fig.data if t.customdata is not None and t.marker.color != GREY for c in t.customdata)
        [1, 1]
    """
    if dragmode not in ("select", "lasso"):
        raise ValueError(f"dragmode must be 'select' or 'lasso', got {dragmode!r}")
    if not isinstance(coords, Mapping) or not coords:
        raise TypeError("coords must be a non-empty dict from modality name to (n, 2) map coordinates")
    xy = {str(m): as_array(c, f"coords[{m!r}]", ndim=2) for m, c in coords.items()}
    if any(c.shape[1] != 2 for c in xy.values()):
        raise ValueError(f"coords must be (n, 2) per modality, got {({m: c.shape for m, c in xy.items()})}")
    n = _clip_count(xy, point_clips, color, hover)
    clips = _point_clips(xy, point_clips, n)
    enc, nums = _colours(color, n, list(xy))
    if hover is not None and len(hover) != n:
        raise ValueError(f"selection_map: hover has {len(hover)} entries for {n} clips (one per clip)")
    texts = [truncate(h, 90) for h in hover] if hover is not None else [f"clip {c}" for c in range(n)]
    chosen = None if selected is None else np.zeros(n, dtype=bool)
    if chosen is not None:
        picked = np.asarray(list(selected), dtype=np.int64)
        if picked.size and (picked.min() < 0 or picked.max() >= n):
            raise ValueError(f"selected must name clips in [0, {n}), got {sorted(set(picked.tolist()))}")
        chosen[picked] = True
    fig = go.Figure()
    trace = go.Scattergl if sum(len(c) for c in clips.values()) > _WEBGL_ABOVE else go.Scatter
    if chosen is not None:
        _add_greyed(fig, trace, xy, clips, ~chosen, texts)
    _add_coloured(fig, trace, xy, clips, enc, nums, np.ones(n, bool) if chosen is None else chosen, texts, color_name)
    _label_selection_map(fig, enc, n, chosen, color_name if color is not None else "modality", title, dragmode)
    return fig


def _hover_trace(trace: Any, xy: np.ndarray, clips: np.ndarray, texts: list[str], modality: str, **kw: Any) -> Any:
    # plotly's own selection styling off (a browser keeps a drawn box and would dim points again): grey = unselected
    same = {"marker": {"opacity": kw["marker"].get("opacity", 1.0)}}
    return trace(x=xy[:, 0], y=xy[:, 1], mode="markers", customdata=clips.tolist(), selected=same, unselected=same,
                 hovertext=[texts[c] for c in clips], meta={"modality": modality},
                 hovertemplate=f"%{{hovertext}}<br><i>{_MODALITY_NAMES.get(modality, modality)}</i><extra></extra>",
                 **kw)


def _add_greyed(fig: go.Figure, trace: Any, xy: dict[str, np.ndarray], clips: dict[str, np.ndarray],
                unselected: np.ndarray, texts: list[str]) -> None:
    """The points of unselected clips, grey and faint, one trace per modality (one legend entry)."""
    first = True
    for p, (m, c) in enumerate(clips.items()):
        keep = unselected[c]
        if not keep.any():
            continue
        fig.add_trace(_hover_trace(trace, xy[m][keep], c[keep], texts, m, name="not selected", legendgroup="grey",
                                   showlegend=first, marker={"color": GREY, "opacity": GREY_OPACITY, "size": 6,
                                                             "symbol": modality_symbol(m, p)}))
        first = False


def _add_coloured(fig: go.Figure, trace: Any, xy: dict[str, np.ndarray], clips: dict[str, np.ndarray],
                  enc: markers.Encoding, nums: np.ndarray | None, shown: np.ndarray, texts: list[str],
                  color_name: str) -> None:
    """The points of the shown clips in colour: one trace per (modality, class), or per modality
    for numbers (one colour scale for all); then the legend-only key of markers."""
    plain = enc.colors is None
    undefined = np.isnan(nums) if nums is not None else np.zeros(len(shown), bool)
    groups = list(dict.fromkeys(enc.groups))
    scale = {}
    if nums is not None and (~undefined).any():
        scale = {"colorscale": SEQUENTIAL, "cmin": float(np.nanmin(nums)), "cmax": float(np.nanmax(nums)),
                 "colorbar": {"title": {"text": color_name}, "len": 0.55, "y": 1, "yanchor": "top"}}
    legend_done: set[Any] = set()
    scale_shown = False
    for p, (m, c) in enumerate(clips.items()):
        for g in groups:
            keep = shown[c] & np.array([enc.groups[i] == g for i in c], dtype=bool) & ~undefined[c]
            if not keep.any():
                continue
            marker = markers.marker(enc, c[keep], m, p)
            marker["size"] = marker["size"] + 1
            if scale:
                marker.update(scale, showscale=not scale_shown)
                scale_shown = True
            name = m if plain else (str(g) if g is not None else color_name)
            fig.add_trace(_hover_trace(trace, xy[m][keep], c[keep], texts, m, marker=marker, name=name,
                                       legendgroup=name,
                                       showlegend=(plain or enc.group_legend) and name not in legend_done))
            legend_done.add(name)
        keep = shown[c] & undefined[c]
        if keep.any():
            fig.add_trace(_hover_trace(trace, xy[m][keep], c[keep], texts, m, name=f"no {color_name}",
                                       legendgroup="undefined", showlegend="undefined" not in legend_done,
                                       marker={"color": "#777777", "size": 7,
                                               "symbol": modality_symbol(m, p) + "-open"}))
            legend_done.add("undefined")
    for key in enc.keys:
        name = _MODALITY_NAMES.get(key["name"], key["name"]) if key["legendgroup"] == "modality" else key["name"]
        fig.add_trace(trace(x=[None], y=[None], mode="markers", name=name, marker=key["marker"],
                            legendgroup=key["legendgroup"], legendgrouptitle_text=key["legendgrouptitle"],
                            hoverinfo="skip"))


def _label_selection_map(fig: go.Figure, enc: markers.Encoding, n: int, chosen: np.ndarray | None, color_name: str,
                         title: str | None, dragmode: str) -> None:
    how = "drag a box" if dragmode == "select" else "draw a lasso"
    count = "no clip selected" if chosen is None else f"{int(chosen.sum()):,} of {n:,} clips selected, the rest grey"
    head = title if title is not None else f"{n:,} clips, coloured by {color_name}"
    fig.update_layout(**titled_layout(head, f"{how} to select clips, click a point to inspect its clip; {count}",
                                      legend={"tracegroupgap": 4, "itemsizing": "constant"}),
                      dragmode=dragmode, uirevision=UIREVISION, clickmode="event", hovermode="closest",
                      meta={"clips": n, "selected": None if chosen is None else np.flatnonzero(chosen).tolist(),
                            "color_name": color_name, "numeric": enc.numeric})
    if enc.numeric:
        fig.update_layout(legend={"x": 1.02, "xanchor": "left", "y": 0, "yanchor": "bottom"})
    rows = sum(t.showlegend is not False for t in fig.data)  # a long legend makes the figure taller
    fig.update_layout(height=max(480, fig.layout.margin.t + fig.layout.margin.b + 24 * rows + 40))
    fig.update_xaxes(title="map 1", zeroline=False, showticklabels=False)
    fig.update_yaxes(title="map 2", zeroline=False, showticklabels=False)


def _cell(value: Any) -> str:
    return "–" if value is None else number(value) if isinstance(value, float) else html.escape(truncate(str(value)))


def selection_table(rows: Sequence[Mapping[str, Any]], most: int = 200) -> HTMLTable:
    """A selection's table, one row per clip in the order given, at most ``most`` rows (a note says so).

    Columns: `TABLE_COLUMNS` of `gramviz.exploration.selection_rows`' rows ("–" where undefined).
    ``meta`` holds ``clips`` (every row's clip) and ``shown`` (how many rows are drawn).

    Example:
        >>> selection_table([{"clip": 3, "id": "c3", "caption": "a dog", "volume": 0.25}]).meta
        {'clips': [3], 'shown': 1}
    """
    shown = list(rows)[: max(0, int(most))]
    head = "".join(f'<th style="{_CELL};background-color:{_HEADER}">{html.escape(c.replace("_", " "))}</th>'
                   for c in TABLE_COLUMNS)
    body = "".join("<tr>" + "".join(f'<td style="{_CELL}">{_cell(r.get(c))}</td>' for c in TABLE_COLUMNS) + "</tr>"
                   for r in shown)
    more = (f"<div style='font-size:12px;color:#555'>the first {len(shown)} of {len(rows):,} rows</div>"
            if len(rows) > len(shown) else "")
    table = (f'<div style="max-height:320px;overflow:auto"><table style="border-collapse:collapse;font-size:13px">'
             f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{more}")
    return HTMLTable(table, {"clips": [r["clip"] for r in rows], "shown": len(shown)})


def _values(x: Any, name: str) -> np.ndarray:
    """A 1-D float array that may hold NaN (undefined), never Inf."""
    arr = np.asarray(x.detach().cpu().double().numpy() if hasattr(x, "detach") else x, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, one value per clip; got shape {arr.shape}")
    if np.isinf(arr).any():
        raise ValueError(f"{name} holds infinite values")
    return arr


def clip_context(base: Any, height: Any, clip: int, labels: Sequence[str] = ("caption", "video", "audio"),
                 ids: Sequence[str] | None = None) -> go.Figure:
    """One clip's base and height against every other clip of the gallery.

    The gallery's clips are faint points, the inspected clip a large labelled one; dotted curves
    mark equal volumes (base x height). Clips without a caption (NaN height) are left out; when the
    inspected clip has none, a line marks its base and the figure says its height is undefined.
    ``layout.meta`` holds ``clip``, ``base``, ``height`` and ``volume`` (None when undefined).

    Args:
        base, height: (M,) every clip's base and height (as `gramviz.exploration.clip_metrics`'s).
        clip: the inspected clip.
        labels: the names of the caption, video and audio, for the axis titles.
        ids: the M clip ids, for the label and on hover.

    Example:
        >>> fig = clip_context([0.5, 0.8, 0.9], [0.2, float("nan"), 0.7], clip=0, ids=["a", "b", "c"])
        >>> fig.layout.meta["volume"], [t.name for t in fig.data if t.mode == "markers"]
        (0.1, ['other clips', 'a'])
    """
    b, h = _values(base, "base"), _values(height, "height")
    if b.shape != h.shape:
        raise ValueError(f"base has {b.size} values but height {h.size}: one each per clip")
    n = b.size
    if not 0 <= int(clip) < n:
        raise ValueError(f"no clip {clip}: the gallery has {n} clips")
    clip, names = int(clip), [str(i) for i in ids] if ids is not None else [f"clip {c}" for c in range(n)]
    if len(names) != n:
        raise ValueError(f"ids has {len(names)} entries for {n} clips")
    x_title, y_title = _base_height_titles(list(labels), 3)
    others = np.flatnonzero(~np.isnan(b) & ~np.isnan(h) & (np.arange(n) != clip))
    fig = go.Figure()
    _add_iso_volume_curves(fig, 1.0, 1.0)
    fig.add_trace(go.Scatter(x=b[others], y=h[others], mode="markers", name="other clips", customdata=others.tolist(),
                             hovertext=[names[c] for c in others],
                             marker={"color": "#0072B2", "size": 5, "opacity": 0.35},
                             hovertemplate="%{hovertext}<br>base %{x:.3f}, height %{y:.3f}<extra></extra>"))
    here = names[clip]
    if np.isnan(h[clip]):
        fig.add_vline(x=float(b[clip]), line={"color": HIGHLIGHT, "dash": "dash", "width": 2})
        note = f"{here}: no caption: height undefined (base {number(b[clip])})"
        meta = {"clip": clip, "base": float(b[clip]), "height": None, "volume": None}
    else:
        vol = float(b[clip] * h[clip])
        fig.add_trace(go.Scatter(x=[b[clip]], y=[h[clip]], mode="markers", name=here, customdata=[clip],
                                 marker={"color": HIGHLIGHT, "size": 14, "symbol": "star",
                                         "line": {"width": 1, "color": "white"}},
                                 hovertemplate=f"{html.escape(here)}<br>base %{{x:.3f}}, "
                                               "height %{y:.3f}<extra></extra>"))
        note = f"{here}: base {number(b[clip])} × height {number(h[clip])} = volume {volume_text(vol)}"
        meta = {"clip": clip, "base": float(b[clip]), "height": float(h[clip]), "volume": vol}
    fig.update_layout(**titled_layout(f"{truncate(here, 40)} against the gallery",
                                      f"{note}; {len(others):,} other clips faint, dotted: equal volume",
                                      legend={"orientation": "h", "x": 0, "y": -0.22, "yanchor": "top"},
                                      margin={"b": 110}),
                      meta=meta, height=470)
    for axis, t in ((fig.update_xaxes, x_title), (fig.update_yaxes, y_title)):
        axis(title=t, range=[-0.03, 1.03], dtick=0.2, zeroline=False)
    return fig


def neighbours_table(inspection: Any, ids: Sequence[str], captions: Sequence[str] | None = None) -> HTMLTable:
    """One clip's nearest clips by volume and by pairwise cosine, side by side, as an HTML table.

    A clip both lists name is shaded in both. ``meta`` holds ``clip``, ``by_volume`` and
    ``by_cosine`` (clip indices, best first).

    Args:
        inspection: a `gramviz.exploration.ClipInspection` (`gramviz.exploration.inspect_clip`).
        ids: every clip's id.
        captions: every clip's caption (shown under its id), or None.
    """
    ids = [str(i) for i in ids]
    if captions is not None and len(captions) != len(ids):
        raise ValueError(f"captions has {len(captions)} entries for {len(ids)} clips")
    lists = {"by volume": inspection.by_volume, "by cosine": inspection.by_cosine}
    for clip, _ in [*inspection.by_volume, *inspection.by_cosine, (inspection.clip, 0)]:
        if not 0 <= clip < len(ids):
            raise ValueError(f"the inspection names clip {clip}, but ids has {len(ids)} clips")
    both = {c for c, _ in inspection.by_volume} & {c for c, _ in inspection.by_cosine}
    heads = ["rank", "nearest by volume (of its video + audio with theirs)", "nearest by cosine (video, audio mean)"]
    header = "".join(f'<th style="{_CELL};background-color:{_HEADER}">{html.escape(h)}</th>' for h in heads)
    body = []
    for r in range(max(len(x) for x in lists.values())):
        cells = [f'<td style="{_CELL}">{r + 1}</td>']
        for name, items in lists.items():
            if r >= len(items):  # a short list: an empty cell
                cells.append(f'<td style="{_CELL}">–</td>')
                continue
            c, value = items[r]
            fill = f";background-color:{_HIGHLIGHT}" if c in both else ""
            text = f"<b>{html.escape(ids[c])}</b>"
            if captions is not None and captions[c]:
                text += f"<br>{html.escape(truncate(captions[c], 70))}"
            cells.append(f'<td style="{_CELL}{fill}">{text}<br>'
                         f'<span style="color:#444">{name.split()[1]} {number(value)}</span></td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    title = f"Nearest clips to {ids[inspection.clip]}, by volume and by cosine (shaded: in both lists)"
    table = (f'<table style="border-collapse:collapse;font-size:13px">'
             f'<caption style="caption-side:top;text-align:left;font-weight:bold;padding:4px 0">{html.escape(title)}'
             f"</caption><thead><tr>{header}</tr></thead><tbody>{''.join(body)}</tbody></table>")
    return HTMLTable(table, {"clip": inspection.clip, "by_volume": [c for c, _ in inspection.by_volume],
                             "by_cosine": [c for c, _ in inspection.by_cosine]})


def comparison_scatter(comparison: Any, labelled: int = 3) -> go.Figure:
    """Each clip's rank for its own caption under model A against under model B (log axes).

    On the diagonal both models rank the clip alike; far from it they disagree. The ``labelled``
    most disagreeing clips are named. Each point's ``customdata`` is its clip index; ``layout.meta``
    holds ``names`` and ``labelled`` (clip indices).

    Args:
        comparison: a `gramviz.exploration.Comparison` (`gramviz.exploration.compare_metrics`).
        labelled: how many of the most disagreeing clips to name.
    """
    rows = comparison.rows
    if not rows:
        raise ValueError("comparison_scatter: the comparison has no clip with a caption")
    a, b = (np.array([r[k] for r in rows], dtype=np.float64) for k in ("rank_a", "rank_b"))
    na, nb = comparison.names
    top = float(max(a.max(), b.max())) * 1.3
    fig = go.Figure(go.Scatter(x=[1, top], y=[1, top], mode="lines", name="same rank", hoverinfo="skip",
                               line={"color": "#888888", "dash": "dot", "width": 1}))
    fig.add_trace(go.Scatter(
        x=a, y=b, mode="markers", name="clip", customdata=[r["clip"] for r in rows],
        hovertext=[f"{r['id']}: {truncate(r['caption'], 60)}" for r in rows],
        marker={"color": [r["disagreement"] for r in rows], "colorscale": SEQUENTIAL, "size": 7, "opacity": 0.8,
                "colorbar": {"title": {"text": "|log2 ratio|"}, "len": 0.6}},
        hovertemplate=f"%{{hovertext}}<br>rank {html.escape(na)} %{{x}}, {html.escape(nb)} %{{y}}<extra></extra>"))
    named = rows[: max(0, int(labelled))]
    for i, r in enumerate(named):
        fig.add_annotation(x=np.log10(r["rank_a"]), y=np.log10(r["rank_b"]), text=html.escape(truncate(r["id"], 18)),
                           showarrow=True, arrowhead=0, ay=20 * (i - (len(named) - 1) / 2),
                           ax=50 if np.log10(r["rank_a"]) < np.log10(top) / 2 else -50,
                           font={"size": 11, "color": "#333333"})
    fig.update_layout(**titled_layout(f"Rank of each clip for its own caption: {na} against {nb}",
                                      "1 = retrieved first; far from the diagonal: the models disagree "
                                      f"(the {len(named)} largest disagreements named)"),
                      showlegend=False, height=500, meta={"names": [na, nb], "labelled": [r["clip"] for r in named]})
    fig.update_xaxes(type="log", title=f"rank under {na}", range=[-0.05, np.log10(top)], dtick=1)
    fig.update_yaxes(type="log", title=f"rank under {nb}", range=[-0.05, np.log10(top)], dtick=1)
    return fig
