"""The exploration dashboard as a JupyterLab widget: select clips on the map, see them, inspect one.

`dashboard` builds a `Dashboard` over any embeddings and metadata. Its map is a Plotly
``FigureWidget`` of `gramviz.viz.selection_map`: a box or lasso selection fills the table of the
selected clips (`gramviz.exploration.selection_rows`) and a strip of their players; a click on a
point opens the inspector of its clip (parallelotope, Gram matrix, base versus height against the
gallery, nearest clips by volume and by cosine, the least aligned modality). `Dashboard.select`
and `Dashboard.inspect` do the same from Python. ipywidgets and anywidget (which ``FigureWidget``
needs) are imported only when a dashboard is built.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..exploration import ORDER, clip_metrics, filter_clips, inspect_clip, selection_rows, write_rows
from ._style import number, volume_text
from .alignment import truncate
from .dashboard import UIREVISION, clip_context, neighbours_table, selection_map, selection_table
from .geometry import gram_heatmap, parallelotope
from .maps import METHODS, project
from .media import media_html
from .ranking import HTMLTable

__all__ = ["Dashboard", "dashboard"]

COLORS = {"class": "class", "volume": "volume", "base": "base", "height": "height", "caption rank": "caption_rank"}
PLAYERS = 8  # players in the selection's strip at most
_NAMES = {"text": "caption", "video": "video", "audio": "audio"}


def _media_paths(media: Any, n: int) -> list[list[Path]]:
    """Each clip's media files: from ``{"video": [...], "audio": [...]}`` (one path per clip, "" for
    none) or from clip -> a path, a list of paths or ``{"video": path, "audio": path}``."""
    out: list[list[Path]] = [[] for _ in range(n)]
    if media is None:
        return out
    if isinstance(media, Mapping) and set(media) <= {"video", "audio"} and media:
        for m, paths in media.items():
            if len(paths) != n:
                raise ValueError(f"media[{m!r}] has {len(paths)} paths for {n} clips")
            for c, p in enumerate(paths):
                if p and Path(p) not in out[c]:
                    out[c].append(Path(p))
        return out
    items = media.items() if isinstance(media, Mapping) else enumerate(media)
    for c, value in items:
        if not 0 <= int(c) < n:
            raise ValueError(f"media names clip {c}, but the gallery has {n} clips")
        single = isinstance(value, (str, os.PathLike))
        values = value.values() if isinstance(value, Mapping) else [value] if single else value
        out[int(c)] = [Path(p) for p in values if p]
    return out


class Dashboard:
    """The widget and its state; build it with `dashboard`.

    Attributes:
        widget: the ``ipywidgets.VBox`` shown when a cell ends with the dashboard.
        map: the map's ``plotly.graph_objects.FigureWidget``.
        metrics: the gallery's `gramviz.exploration.ClipMetrics` (computed once).
        selected: the selected clips (sorted), or None.
        table_rows: the selection's rows (`gramviz.exploration.selection_rows`), as the table shows them.
        inspected: the inspected clip, or None; ``inspection``: its `gramviz.exploration.ClipInspection`.
        figures: the inspector's figures by name (``parallelotope``, ``gram``, ``context``) and
            ``neighbours`` (an `HTMLTable`).
        color: what the map is coloured by (a key of `COLORS`).
    """

    def __init__(self, embeddings: Mapping[str, Any], ids: Sequence[str], caption_clips: Sequence[int] | None,
                 captions: Sequence[str] | None, classes: Sequence[str | None] | None, media: Any, method: str,
                 seed: int, k: int) -> None:
        import ipywidgets as widgets
        import plotly.graph_objects as go

        self.embeddings = {m: x for m, x in embeddings.items() if m in ("text", "video", "audio")}
        self.metrics = clip_metrics(self.embeddings, ids, caption_clips, captions, classes)
        n = len(self.metrics)
        self.caption_clips = (list(caption_clips) if caption_clips is not None
                              else list(range(len(self.embeddings["text"]))) if "text" in self.embeddings else [])
        self.captions, self.media, self.seed, self.k = captions, _media_paths(media, n), seed, int(k)
        self.has_classes = classes is not None and any(c is not None for c in classes)
        self.color = "class" if self.has_classes else "volume"
        self.method, self.selected, self.table_rows, self._order = method, None, [], []
        self.inspected, self.inspection, self.figures = None, None, {}
        self._maps: dict[str, dict[str, np.ndarray]] = {}
        self._pending: set[int] = set()
        self.map = go.FigureWidget()
        self._controls = self._build_controls(widgets)
        self.widget = self._build_views(widgets)
        self._redraw()
        self._show_selection()

    # ------------------------------------------------------------------ controls

    def _build_controls(self, widgets: Any) -> dict[str, Any]:
        options = [name for name in COLORS if name != "class" or self.has_classes]
        c = {"color": widgets.Dropdown(options=options, value=self.color, description="colour"),
             "method": widgets.Dropdown(options=list(METHODS), value=self.method, description="map"),
             "worst": widgets.BoundedIntText(value=20, min=1, max=max(1, len(self.metrics)), description="worst",
                                             layout=widgets.Layout(width="150px")),
             "by": widgets.Dropdown(options=list(ORDER), value="volume", description="by",
                                    layout=widgets.Layout(width="180px")),
             "class": widgets.Dropdown(options=["any class", *sorted({x for x in self.metrics.classes if x})],
                                       description="class"),
             "word": widgets.Text(placeholder="caption word", layout=widgets.Layout(width="160px")),
             "apply": widgets.Button(description="select"), "clear": widgets.Button(description="clear"),
             "folder": widgets.Text(value="gramviz-selection", description="folder"),
             "save": widgets.Button(description="export CSV + JSONL")}
        c["color"].observe(lambda ch: self._shown_errors(self.color_by, ch["new"]), names="value")
        c["method"].observe(lambda ch: self._shown_errors(self.map_by, ch["new"]), names="value")
        c["apply"].on_click(lambda _: self._shown_errors(self._apply_filters))
        c["clear"].on_click(lambda _: self._shown_errors(self.select, None))
        c["save"].on_click(lambda _: self._export_clicked())
        c["row"] = widgets.HBox([c["color"], c["method"]])
        c["filters"] = widgets.HBox([c["worst"], c["by"], c["class"], c["word"], c["apply"], c["clear"]])
        c["export"] = widgets.HBox([c["folder"], c["save"]])
        return c

    def _build_views(self, widgets: Any) -> Any:
        """The widgets that show the selection and the inspected clip, and the whole dashboard."""
        self._status, self._table, self._strip = widgets.HTML(), widgets.HTML(), widgets.HTML()
        self._export_note, self._neighbours = widgets.HTML(), widgets.HTML()
        self._inspect_head = widgets.HTML("<i>Click a point on the map to inspect its clip.</i>")
        self._outputs = {name: widgets.Output(layout=widgets.Layout(width="50%" if name != "context" else "100%"))
                         for name in ("parallelotope", "gram", "context")}
        inspector = widgets.VBox([self._inspect_head,
                                  widgets.HBox([self._outputs["parallelotope"], self._outputs["gram"]]),
                                  self._outputs["context"], self._neighbours])
        c = self._controls
        return widgets.VBox([c["row"], c["filters"], self.map, self._status, self._table, self._strip, c["export"],
                             self._export_note, inspector])

    def _apply_filters(self) -> None:
        c = self._controls
        self.filter(worst=c["worst"].value, by=c["by"].value,
                    class_name=None if c["class"].value == "any class" else c["class"].value, word=c["word"].value)

    def _export_clicked(self) -> None:
        try:
            paths = self.export(self._controls["folder"].value)
        except ValueError as e:
            self._export_note.value = f"<span style='color:#D55E00'>{html.escape(str(e))}</span>"
            return
        self._export_note.value = "written: " + ", ".join(f"<code>{html.escape(str(p))}</code>" for p in paths)

    # ------------------------------------------------------------------ the map

    def coords(self, method: str | None = None) -> dict[str, np.ndarray]:
        """The 2-D map of every embedding by ``method`` (default the current one), computed once per method."""
        method = method or self.method
        if method not in self._maps:
            self._maps[method] = project(self.embeddings, method=method, seed=self.seed)
        return self._maps[method]

    def color_values(self, name: str | None = None) -> list[Any]:
        """One colour value per clip for ``name`` (a key of `COLORS`): class names or numbers, NaN
        where undefined (e.g. the height and caption rank of a clip without a caption)."""
        name = name or self.color
        if name not in COLORS:
            raise ValueError(f"cannot colour by {name!r}; choose one of {', '.join(COLORS)}")
        if name == "class":
            return list(self.metrics.classes)
        values = self.metrics.values[COLORS[name]].double().numpy().copy()
        if name == "caption rank":
            values[values < 1] = np.nan
        return values.tolist()

    def figure(self) -> Any:
        """The map as drawn now: a `selection_map` of the current colour and selection."""
        hover = [f"{i}: {c}" if c else str(i) for i, c in zip(self.metrics.ids, self.metrics.captions)]
        fig = selection_map(self.coords(), {"text": self.caption_clips} if "text" in self.embeddings else None,
                            color=self.color_values(), color_name=self.color, selected=self.selected, hover=hover)
        fig.update_layout(uirevision=f"{UIREVISION}-{self.method}", xaxis_title=f"{self.method.upper()} 1",
                          yaxis_title=f"{self.method.upper()} 2")
        return fig

    def _redraw(self) -> None:
        """Replace the map's traces and layout, then wire every trace's selection and click callbacks."""
        fig = self.figure()
        self.map.data = ()
        self.map.add_traces(list(fig.data))
        self.map.layout = fig.layout
        for trace in self.map.data:
            trace.on_selection(self._on_selection)
            trace.on_deselect(self._on_deselect)
            trace.on_click(self._on_click)

    def _last(self, points: Any) -> bool:
        """plotly calls a trace's callback for every trace, in order, per event: act after the last."""
        return points.trace_index == len(self.map.data) - 1

    def _clips_of(self, trace: Any, points: Any) -> list[int]:
        return [int(trace.customdata[i]) for i in points.point_inds] if trace.customdata is not None else []

    def _shown_errors(self, action: Any, *args: Any) -> None:
        """Run a browser event's action; an error shows on the status line (a widget callback's
        exception would otherwise reach only the kernel's log)."""
        try:
            action(*args)
        except Exception as e:
            self._status.value = f"<b style='color:#D55E00'>{html.escape(f'{type(e).__name__}: {e}')}</b>"

    def _on_selection(self, trace: Any, points: Any, selector: Any) -> None:
        self._pending.update(self._clips_of(trace, points))
        if self._last(points):
            clips, self._pending = sorted(self._pending), set()
            self._shown_errors(self.select, clips)

    def _on_deselect(self, trace: Any, points: Any) -> None:
        if self._last(points):
            self._pending = set()
            self._shown_errors(self.select, None)

    def _on_click(self, trace: Any, points: Any, state: Any) -> None:
        clips = self._clips_of(trace, points)
        if clips:
            self._shown_errors(self.inspect, clips[0])

    # ------------------------------------------------------------------ public actions

    def color_by(self, name: str) -> None:
        """Colour the map by ``name``: "class", "volume", "base", "height" or "caption rank"."""
        self.color_values(name)  # checks the name
        self.color = name
        if self._controls["color"].value != name:
            self._controls["color"].value = name  # calls this again through the observer
            return
        self._redraw()

    def map_by(self, method: str) -> None:
        """Draw the map with ``method`` ("pca", "umap" or "tsne"; computed once per method)."""
        self.coords(method)
        self.method = method
        if self._controls["method"].value != method:
            self._controls["method"].value = method
            return
        self._redraw()

    def select(self, clips: Sequence[int] | None) -> list[int] | None:
        """Select these clips (None: no selection): the map greys the others, the table and the
        strip of players show them in the order given (repeats dropped). Returns the selection,
        sorted."""
        order = [] if clips is None else list(dict.fromkeys(int(c) for c in clips))
        if any(not 0 <= c < len(self.metrics) for c in order):
            raise ValueError(f"select: clips must lie in [0, {len(self.metrics)}), got {sorted(order)}")
        self.selected = None if clips is None else sorted(order)
        self._order = order
        self.table_rows = selection_rows(self.metrics, order)
        self._redraw()
        self._show_selection()
        return self.selected

    def filter(self, worst: int | None = None, by: str = "volume", class_name: str | None = None,
               word: str | None = None) -> list[int] | None:
        """Select the clips `gramviz.exploration.filter_clips` keeps, e.g. the 20 worst-aligned."""
        return self.select(filter_clips(self.metrics, worst=worst, by=by, class_name=class_name, word=word))

    def export(self, folder: str | os.PathLike) -> tuple[Path, Path]:
        """Write the selection's rows to ``folder``/selection.csv and selection.jsonl; returns the paths."""
        if not self.table_rows:
            raise ValueError("nothing to export: select clips first")
        folder = Path(folder)
        return tuple(write_rows(self.table_rows, folder / f"selection.{ext}") for ext in ("csv", "jsonl"))

    @property
    def table(self) -> HTMLTable:
        """The selection's table (`gramviz.viz.selection_table`), as shown below the map."""
        return selection_table(self.table_rows)

    # ------------------------------------------------------------------ drawing the selection

    def _show_selection(self) -> None:
        n = len(self.metrics)
        if self.selected is None:
            self._status.value = (f"<b>No selection.</b> Drag a box or a lasso on the map, or pick the worst clips "
                                  f"above; {n:,} clips in all.")
            self._table.value = self._strip.value = ""
            return
        self._status.value = f"<b>{len(self.selected):,} of {n:,} clips selected.</b>"
        self._table.value = selection_table(self.table_rows).html
        shown = [c for c in self._order if self.media[c]][:PLAYERS]
        note = (f"<div style='font-size:12px;color:#555'>players of the first {len(shown)} of "
                f"{len(self.selected):,} selected clips</div>") if len(self.selected) > len(shown) and shown else ""
        self._strip.value = ('<div style="display:flex;flex-wrap:wrap">' + "".join(
            _player(self.media[c][0], truncate(f"{self.metrics.ids[c]}: {self.metrics.captions[c]}", 60), 200)
            for c in shown) + "</div>" + note) if shown else ""

    def inspect(self, clip: int) -> Any:
        """Open clip ``clip``'s inspector below the map; returns its `ClipInspection`."""
        self.inspection = inspect_clip(self.embeddings, clip, self.caption_clips or None, k=self.k)
        self.inspected = int(clip)
        labels = [_NAMES[m] for m in self.inspection.modalities]
        vectors = list(self.inspection.vectors.values())
        values = self.metrics.values
        self.figures = {
            "parallelotope": parallelotope(*vectors, labels=labels),
            "gram": gram_heatmap(*vectors, labels=labels),
            "context": clip_context(values["base"], values["height"], self.inspected, ids=self.metrics.ids),
            "neighbours": neighbours_table(self.inspection, self.metrics.ids, self.metrics.captions),
        }
        self._inspect_head.value = self.inspector_html()
        for name, out in self._outputs.items():
            out.outputs = (_display_data(self.figures[name]),)
        self._neighbours.value = self.figures["neighbours"].html
        return self.inspection

    def inspector_html(self) -> str:
        """The inspector's head: the clip, its captions, volume, base, height, least aligned modality, players."""
        i, c = self.inspection, self.inspected
        mine = [self.captions[r] for r, owner in enumerate(self.caption_clips) if owner == c] if self.captions else []
        head = f"<h3 style='margin:6px 0'>{html.escape(self.metrics.ids[c])}</h3>"
        caps = "".join(f"<li>{html.escape(t)}</li>" for t in mine) or "<li><i>no caption</i></li>"
        if i.volume is None:
            shape = f"base {number(i.base)}; no caption: volume and height undefined"
            least = "Least aligned modality: undefined without a caption."
        else:
            shape = f"volume {volume_text(i.volume)} = base {number(i.base)} × height {number(i.height)}"
            far = ", ".join(f"{_NAMES[m]} {number(h)}" for m, h in i.heights.items())
            least = (f"Least aligned modality: <b>{_NAMES[i.least_aligned]}</b> (distance of each from the "
                     f"others' plane: {far})")
        players = "".join(_player(p, p.name, 240) for p in self.media[c])
        return (f"{head}<ul style='margin:2px 0'>{caps}</ul><div>{shape}</div><div>{least}</div>"
                f"<div style='display:flex;flex-wrap:wrap'>{players}</div>")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def _player(path: Path, title: str, width: int) -> str:
    """A file's player (`gramviz.viz.media.media_html`), or why there is none (a moved or deleted file)."""
    try:
        return media_html(path, title, width)
    except (OSError, ValueError) as e:
        return f"<div style='font-size:12px;color:#D55E00;max-width:{width}px'>{html.escape(str(e))}</div>"


def _display_data(fig: Any) -> dict[str, Any]:
    """A figure as an Output widget's output: drawn by JupyterLab's Plotly renderer, without the
    plotly.js bundle that every ``FigureWidget`` carries (the map needs one for its callbacks; the
    inspector's figures need none)."""
    spec = json.loads(fig.to_json())
    title = re.sub(r"<[^>]+>", " ", fig.layout.title.text or "figure")
    return {"output_type": "display_data", "metadata": {},
            "data": {"application/vnd.plotly.v1+json": {"data": spec["data"], "layout": spec["layout"],
                                                        "config": {"displaylogo": False}},
                     "text/plain": f"Plotly figure: {title}"}}


def dashboard(embeddings: Mapping[str, Any], ids: Sequence[str], caption_clips: Sequence[int] | None = None,
              captions: Sequence[str] | None = None, classes: Sequence[str | None] | None = None, media: Any = None,
              method: str = "pca", seed: int = 0, k: int = 5) -> Dashboard:
    """An exploration dashboard over a gallery, for JupyterLab (a cell ending with it shows it).

    Select clips with a box or a lasso on the map (or `Dashboard.select`, `Dashboard.filter`):
    unselected clips turn grey, the table lists the selection's metrics and the strip plays the
    first 8 of them. Click a point (or `Dashboard.inspect`) to open its clip's inspector. The
    colour switch shows class, volume, base, height or the rank of the clip's own caption; the
    export button writes the selection as CSV and JSONL.

    Args:
        embeddings: ``{"text": (N, D), "video": (M, D), "audio": (M, D)}`` (text optional).
        ids: the M clip ids.
        caption_clips: the clip of each text row (default: text row i is clip i).
        captions: the N caption strings.
        classes: each clip's class name (or None).
        media: each clip's files, to play: ``{"video": [M paths], "audio": [M paths]}`` (as
            ``EmbeddingMetadata.paths``; "" for none) or clip -> a path, a list of paths or
            ``{"video": path, "audio": path}``. Files are embedded in the page (at most 20 MB each).
        method: the map's reducer, "pca", "umap" or "tsne" (computed once per method).
        seed: the reducer's random state.
        k: nearest clips listed in the inspector.

    Example:
        >>> import torch  # doctest: +SKIP
        >>> emb = {m: torch.randn(6, 8) for m in ("text", "video", "audio")}  # doctest: +SKIP
        >>> dash = dashboard(emb, [f"clip {i}" for i in range(6)])  # doctest: +SKIP
        >>> dash.select([0, 2]); dash.inspect(2).least_aligned  # doctest: +SKIP
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return Dashboard(embeddings, ids, caption_clips, captions, classes, media, method, seed, k)
