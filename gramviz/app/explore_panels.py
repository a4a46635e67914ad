"""The Explore tab's panels: the maps, one clip's inspector, and the two-model comparison.

Gradio wiring only: the values come from `gramviz.app.explore_views` (inspector, strip),
`gramviz.app.explore_compare` (the second model's gallery, the comparison) and
`gramviz.app.explore_data` (the maps). `gramviz.app.tab_explore` assembles the tab.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from .explore_compare import (
    COMPARE_COLUMNS,
    EXAMPLE,
    comparison,
    comparison_table,
    describe_comparison,
    disagreeing_items,
    second_gallery,
    second_name,
)
from .explore_data import METHODS, colour_values, explore_map, map_points
from .explore_views import STRIP, inspect, parse_click
from .gallery_base import GalleryError
from .state import DemoState
from .ui import user_errors

__all__ = ["ComparePanel", "InspectorPanel", "about", "compare_outputs", "compare_panel", "inspector_panel",
           "load_comparison", "maps", "players"]

NO_CLIP = "*Click a point on a map, a row of a table, or a point of the base-height figure to inspect its clip.*"
COMPARE_HELP = (f"A bundled model name, a model folder (e.g. `{EXAMPLE}`, the pairwise InfoNCE model of "
                "docs/results.md that `make compare-example` trains), or a `.safetensors` "
                "embedding file of this gallery's clips (`gramviz embed`). The gallery is embedded with that model "
                "once, then cached.")


def about(gallery, colour: str | None = None, method: str = "PCA") -> str:
    """The line above the maps: the gallery, what the colour switch could not show, and why there
    is no map (too few complete clips)."""
    notes = [colour_values(gallery, colour)[2] if colour else ""]
    try:
        map_points(gallery, METHODS[method])
    except GalleryError as e:
        notes.append(f"{e}; the filter, the table and the inspector still work")
    return (f"{gallery.n_clips:,} clips of `{gallery.shown_source}` (Redraw after loading another model or gallery)."
            + "".join(f" {n}." for n in notes if n))


def maps(state: DemoState, method: str, colour: str, selected: list[int] | None, second: str):
    """``(first map, second map update)``: the second hidden without a second model; no first map
    (None) when the gallery has too few complete clips to map (`about` says so)."""
    model, name, gallery = state.snapshot()
    selected = None if selected is None else [c for c in selected if c < gallery.n_clips]
    try:
        first = explore_map(gallery, METHODS[method], colour, selected, name=name if second else None)
    except GalleryError:
        first = None
    if not second:
        return first, gr.Plot(visible=False)
    other = second_gallery(gallery, second, model, name)
    return first, gr.Plot(explore_map(other, METHODS[method], colour, selected, name=second_name(second)),
                          visible=True)


def players(items) -> list:
    """Video player updates for `gramviz.app.explore_views.strip_items`' entries."""
    out = []
    for item in items:
        if item is None:
            out.append(gr.Video(value=None, visible=False))
        else:
            out.append(gr.Video(value=item[0], label=item[1], visible=True))
    return out


@dataclass
class InspectorPanel:
    """The inspector's components (``outputs``, in `show`'s order) and the callback filling them."""

    outputs: list
    show: object


def inspector_panel(state: DemoState, click_box: gr.Textbox, table: gr.Dataframe) -> InspectorPanel:
    """One clip: its summary, players, parallelotope, Gram matrix, base-height context and
    neighbours; opened by a click on a map point (``click_box``) or a ``table`` row."""
    summary = gr.Markdown(NO_CLIP, elem_id="explore-inspect-summary")
    with gr.Row(equal_height=True):
        video = gr.Video(label="video", interactive=False, height=240, elem_id="explore-inspect-video")
        audio = gr.Audio(label="audio", interactive=False, type="filepath", elem_id="explore-inspect-audio")
    with gr.Row():
        solid = gr.Plot(label="parallelotope of (caption, video, audio)", show_label=False,
                        elem_id="explore-parallelotope")
        gram = gr.Plot(label="Gram matrix", show_label=False, elem_id="explore-gram")
    with gr.Row():
        context = gr.Plot(label="base and height against the gallery", show_label=False, elem_id="explore-context")
        neighbours = gr.HTML(elem_id="explore-neighbours")
    outputs = [summary, video, audio, solid, gram, context, neighbours]

    def show(clip: int) -> list:
        _, _, gallery = state.snapshot()
        view = inspect(gallery, clip)
        return [view.summary, view.video, view.audio, view.parallelotope, view.gram, view.context, view.neighbours]

    @user_errors
    def on_click(payload):
        _, _, gallery = state.snapshot()
        clip = parse_click(payload, gallery.n_clips)
        return [gr.skip()] * len(outputs) if clip is None else show(clip)

    click_box.change(on_click, click_box, outputs, api_visibility="private")
    table.select(by_row(state, show, len(outputs)), None, outputs, api_visibility="private")
    return InspectorPanel(outputs, show)


def by_row(state: DemoState, show, n_outputs: int):
    """A table's select callback: the clicked row's id (its first cell) -> the inspector."""

    @user_errors
    def on_row(evt: gr.SelectData):
        row = evt.row_value
        if not row:
            return [gr.skip()] * n_outputs
        _, _, gallery = state.snapshot()
        index = gallery.memo("explore:id-index", lambda: {i: c for c, i in enumerate(gallery.meta.ids)})
        if str(row[0]) not in index:
            raise ValueError(f"clip {row[0]!r} is not in the current gallery (another one was loaded): reload the page")
        return show(index[str(row[0])])

    return on_row


@dataclass
class ComparePanel:
    """The comparison's components."""

    source: gr.Textbox
    load: gr.Button
    info: gr.Markdown
    table: gr.Dataframe
    scatter: gr.Plot
    strip: list


def compare_panel(state: DemoState, default: str | None, inspector: InspectorPanel) -> ComparePanel:
    """The second model's box and button, the sentence, the per-clip ranks, the ranks' scatter and
    the most disagreeing clips, playable. A row or a scatter point opens the inspector."""
    with gr.Row(equal_height=True):
        source = gr.Textbox(value=default or "", label="second model or embedding file", info=COMPARE_HELP,
                            placeholder=EXAMPLE, scale=4, interactive=state.allow_loading,
                            elem_id="explore-compare-path")
        load = gr.Button("Compare", scale=1, interactive=state.allow_loading, elem_id="explore-compare-load")
    info = gr.Markdown(elem_id="explore-compare-info")
    table = gr.Dataframe(pd.DataFrame(columns=COMPARE_COLUMNS), interactive=False, wrap=True, max_height=380,
                         column_widths=["13%", "41%", "8%", "8%", "9%", "9%", "12%"],
                         label="rank of each clip for its own caption under A and B (click a row to inspect it)",
                         elem_id="explore-compare-table")
    scatter = gr.Plot(label="rank under A against rank under B", show_label=False, visible=False,
                      elem_id="explore-compare-scatter")
    gr.Markdown("The clips the two models disagree on most:")
    with gr.Row(elem_id="explore-disagree", equal_height=True):
        strip = [gr.Video(visible=False, interactive=False, height=170, min_width=150) for _ in range(STRIP)]
    table.select(by_row(state, inspector.show, len(inspector.outputs)), None, inspector.outputs,
                 api_visibility="private")
    return ComparePanel(source, load, info, table, scatter, strip)


def load_comparison(state: DemoState, source: str | None, quiet: bool = False) -> list:
    """``[second source, sentence, table, scatter, *players]`` of the comparison with ``source``
    (cleared when empty). ``quiet``: a second model that cannot be loaded is said in the sentence
    instead of raised (the page still loads)."""
    from ..viz import comparison_scatter

    model, name, gallery = state.snapshot()
    source = str(source or "").strip()
    empty = pd.DataFrame(columns=COMPARE_COLUMNS)
    if not source:
        return ["", "", empty, gr.Plot(visible=False), *players([None] * STRIP)]
    try:
        other = second_gallery(gallery, source, model, name)
    except (ValueError, OSError) as e:
        if not quiet:
            raise
        return ["", f"Cannot compare with `{second_name(source)}`: {e}", empty, gr.Plot(visible=False),
                *players([None] * STRIP)]
    result = comparison(gallery, other, (name, second_name(source)))
    scatter = gr.Plot(comparison_scatter(result), visible=True) if result.rows else gr.Plot(visible=False)
    table = pd.DataFrame(comparison_table(result), columns=COMPARE_COLUMNS)
    return [source, describe_comparison(result, gallery.n_clips), table, scatter,
            *players(disagreeing_items(gallery, result))]


def compare_outputs(state: DemoState, panel: ComparePanel, selected, second, view: list, plots: list) -> None:
    """The Compare button (and Enter in its box): the comparison, and both maps (``plots``) drawn
    side by side with the current selection."""
    outputs = [second, panel.info, panel.table, panel.scatter, *panel.strip, *plots]

    @user_errors
    def on_load(source, method, colour, clips, progress=gr.Progress()):
        if not state.allow_loading:
            raise PermissionError("loading models from the page is switched off for this app (it is shared or bound "
                                  "beyond this machine); restart it with --allow-loading or --compare")
        progress(0.1, desc="embedding the gallery with the second model (once, then cached)")
        loaded = load_comparison(state, source)
        return [*loaded, *maps(state, method, colour, clips, loaded[0])]

    for event in (panel.load.click, panel.source.submit):
        event(on_load, [panel.source, *view, selected], outputs, api_visibility="private")
