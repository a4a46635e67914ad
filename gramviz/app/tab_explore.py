"""The Explore tab: a linked dashboard of the gallery's map, a selection, one clip, two models.

Select clips on the map (a box or a lasso) or with the filter; the selection fills a table, a strip
of playable clips and two download buttons (CSV, JSONL), and greys the other points of the map
(and of the second model's map). Clicking a point or a row opens the inspector. The map is
`gramviz.viz.selection_map`; Gradio 6's ``gr.Plot`` has no select event, so Plotly's own
``plotly_selected`` / ``plotly_click`` events reach Python through hidden textboxes written by a
small script (`gramviz.app.explore_bridge` says why and how). The numbers come from
`gramviz.exploration`, through `gramviz.app.explore_data` and `explore_views`; the inspector and
the two-model panel are wired in `gramviz.app.explore_panels`.
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from .explore_bridge import CLICK_BOX, SELECT_BOX
from .explore_data import COLOURS, METHODS, points_cached
from .explore_panels import ComparePanel, about, compare_outputs, compare_panel, inspector_panel, maps, players
from .explore_views import (
    FILTER_COLUMNS,
    STRIP,
    TABLE_COLUMNS,
    class_choices,
    describe_selection,
    export_selection,
    filter_selection,
    parse_selection,
    selection_table,
    strip_items,
)
from .state import DemoState
from .ui import user_errors

__all__ = ["render"]

INTRO = """Every clip of the gallery as three points, its first **caption**, its **video** and its **audio**, mapped
to 2-D together (PCA: instant; UMAP: about 20 s the first time, then cached). **Colour** the points by event class,
by the clip's GRAM **volume** of (caption, video, audio), its **base** (video ∧ audio), its **height** (the caption's
distance from the video-audio plane) or the **rank** of its own caption among all captions. **Drag a box** over points
(or pick the lasso in the map's toolbar) to select clips; the other points turn grey. **Click a point** or a table row
to inspect one clip. Mixed colours within a modality mean the model does not separate the classes; caption, video
and audio islands far apart are a *modality gap*."""


def _about(gallery) -> str:
    """The line above the map (`gramviz.app.explore_panels.about`)."""
    return about(gallery)


def _selection(state: DemoState, clips: list[int] | None, how: str, method: str, colour: str, second: str) -> list:
    """Everything a new selection changes: the state, both maps, the sentence, the table, the strip
    and the two downloads."""
    _, _, gallery = state.snapshot()
    first, other = maps(state, method, colour, clips, second)
    table = pd.DataFrame(selection_table(gallery, clips or []), columns=TABLE_COLUMNS)
    if clips:
        csv, jsonl = export_selection(gallery, clips)
        downloads = [gr.DownloadButton(value=str(csv), interactive=True),
                     gr.DownloadButton(value=str(jsonl), interactive=True)]
    else:
        downloads = [gr.DownloadButton(value=None, interactive=False)] * 2
    return [clips, first, other, describe_selection(gallery, clips, how), table,
            *players(strip_items(gallery, clips or [])), *downloads]


def _controls():
    with gr.Row():
        method = gr.Radio(list(METHODS), value="PCA", label="map", elem_id="explore-method")
        colour = gr.Radio(list(COLOURS), value="class", label="colour by", elem_id="explore-colour")
        redraw = gr.Button("Redraw", scale=0, min_width=120, elem_id="explore-redraw")
    return method, colour, redraw


def _filter_row():
    with gr.Row(equal_height=True):
        worst = gr.Number(20, label="the N worst-aligned clips (0: all)", precision=0, minimum=0, scale=1,
                          elem_id="explore-worst")
        by = gr.Dropdown(list(FILTER_COLUMNS), value="volume", label="worst by", scale=1, elem_id="explore-by")
        klass = gr.Dropdown(["any"], value="any", label="class", scale=1, elem_id="explore-class")
        word = gr.Textbox(label="caption contains the word", scale=1, elem_id="explore-word")
        within = gr.Checkbox(False, label="within the selection", scale=0, min_width=120, elem_id="explore-within")
        apply = gr.Button("Select these", variant="primary", scale=0, min_width=120, elem_id="explore-filter")
        clear = gr.Button("Clear selection", scale=0, min_width=120, elem_id="explore-clear")
    return worst, by, klass, word, within, apply, clear


def _selection_view():
    info = gr.Markdown(describe_selection(None, None), elem_id="explore-selection-info")
    table = gr.Dataframe(pd.DataFrame(columns=TABLE_COLUMNS), interactive=False, wrap=True, max_height=420,
                         column_widths=["13%", "39%", "8%", "8%", "8%", "10%", "14%"],
                         label="selected clips (click a row to inspect it)", elem_id="explore-table")
    with gr.Row(elem_id="explore-strip", equal_height=True):
        strip = [gr.Video(visible=False, interactive=False, height=170, min_width=150) for _ in range(STRIP)]
    with gr.Row():
        csv = gr.DownloadButton("Download the selection (CSV)", interactive=False, elem_id="explore-export-csv")
        jsonl = gr.DownloadButton("Download the selection (JSONL)", interactive=False, elem_id="explore-export-jsonl")
    return info, table, strip, csv, jsonl


def render(state: DemoState, demo: gr.Blocks, compare: str | None = None):
    """The tab's layout and events; ``compare`` (a second model or embedding file) is loaded in
    every new page. Returns ``(refresh, inputs, outputs)``: the callback that fits the tab to the
    current gallery, to run after loading another (it clears the selection)."""
    gr.Markdown(INTRO)
    method, colour, redraw = _controls()
    info = gr.Markdown(elem_id="explore-info")
    with gr.Row(equal_height=True):  # the second model's map beside the first once one is loaded
        plot = gr.Plot(label="embedding map", show_label=False, elem_id="explore-map")
        plot_b = gr.Plot(label="the second model's map", show_label=False, visible=False, elem_id="explore-map-b")
    select_box = gr.Textbox(visible="hidden", elem_id=SELECT_BOX, elem_classes=["gramviz-bridge"])
    click_box = gr.Textbox(visible="hidden", elem_id=CLICK_BOX, elem_classes=["gramviz-bridge"])
    worst, by, klass, word, within, apply, clear = _filter_row()
    sel_info, table, strip, csv, jsonl = _selection_view()
    selected, second = gr.State(None), gr.State("")
    gr.Markdown("### One clip")
    inspector = inspector_panel(state, click_box, table)
    gr.Markdown("### Two models on this gallery")
    panel = compare_panel(state, compare, inspector)
    view = [method, colour, second]
    shown = [selected, plot, plot_b, sel_info, table, *strip, csv, jsonl]

    @user_errors
    def on_select(payload, *args):
        _, _, gallery = state.snapshot()
        clips = parse_selection(payload, gallery.n_clips)
        return [gr.skip()] * len(shown) if clips is None else _selection(state, clips, "selected on the map", *args)

    @user_errors
    def on_filter(n, column, class_name, text, inside, current, *args):
        _, _, gallery = state.snapshot()
        clips = filter_selection(gallery, n, column, class_name, text, current if inside and current else None)
        return _selection(state, clips, "selected by the filter", *args)

    @user_errors
    def on_clear(*args):
        return _selection(state, None, "", *args)

    select_box.change(on_select, [select_box, *view], shown, api_visibility="private")
    apply.click(on_filter, [worst, by, klass, word, within, selected, *view], shown, api_visibility="private")
    word.submit(on_filter, [worst, by, klass, word, within, selected, *view], shown, api_visibility="private")
    clear.click(on_clear, view, shown, api_visibility="private")
    _wire_redraw(state, (method, colour, redraw), selected, second, [plot, plot_b, info])
    compare_outputs(state, panel, selected, second, [method, colour], [plot, plot_b])
    return _wire_refresh(state, demo, (method, colour, panel.source), info, klass, shown, panel, second)


def _wire_redraw(state: DemoState, controls, selected, second, outputs) -> None:
    """Another map or colour (or Redraw): both maps redrawn, the selection kept."""
    method, colour, redraw = controls

    def announce(name):
        _, _, gallery = state.snapshot()
        if points_cached(gallery, METHODS[name]):
            return gr.skip()
        return f"Computing the {name} map of `{gallery.shown_source}`" + (
            " (UMAP: about 20 s the first time, then cached)" if name == "UMAP" else "") + " ..."

    @user_errors
    def draw(name, paint, clips, other, progress=gr.Progress()):
        _, _, gallery = state.snapshot()
        if not points_cached(gallery, METHODS[name]):
            progress(0.1, desc=f"computing the {name} map")
        return [*maps(state, name, paint, clips, other), about(gallery, paint, name)]

    inputs = [method, colour, selected, second]
    for event in (method.change, redraw.click):
        event(announce, method, outputs[2], api_visibility="private", queue=False).then(
            draw, inputs, outputs, api_visibility="private")
    colour.change(draw, inputs, outputs, api_visibility="private")


def _wire_refresh(state: DemoState, demo: gr.Blocks, inputs, info, klass, shown, panel: ComparePanel, second):
    """The page load and a newly loaded model or gallery: the map drawn afresh, no selection, the
    class list of this gallery, the second model (if one is named) loaded on it."""
    from .explore_panels import load_comparison

    compare_parts = [second, panel.info, panel.table, panel.scatter, *panel.strip]

    @user_errors
    def refresh(method, colour, source, progress=gr.Progress()):
        _, _, gallery = state.snapshot()
        if not points_cached(gallery, METHODS[method]):
            progress(0.1, desc=f"computing the {method} map")
        loaded = load_comparison(state, source, quiet=True)
        cleared = _selection(state, None, "", method, colour, loaded[0])
        classes = gr.Dropdown(choices=class_choices(gallery), value="any")
        return [*cleared, about(gallery, colour, method), classes, *loaded]

    outputs = [*shown, info, klass, *compare_parts]
    demo.load(refresh, list(inputs), outputs, api_visibility="private")
    return refresh, list(inputs), outputs
