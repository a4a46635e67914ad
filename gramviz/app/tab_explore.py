"""The Explore tab: the gallery's embedding map, coloured by class, captions on hover."""

from __future__ import annotations

import gradio as gr

from .gallery import MAP_CLIPS, gallery_map, map_is_cached
from .state import DemoState
from .ui import user_errors

__all__ = ["render"]

INTRO = f"""Every clip of the gallery as three points, its first **caption** (circle), its **video** and its
**audio**, mapped to 2-D together (PCA: instant; UMAP: about 20 s the first time, then cached) and coloured by
event class. Mixed colours within a modality mean the model does not separate the classes; caption, video and
audio islands far apart are a *modality gap*. Hover a point for the clip's id and caption. On a large gallery a
seeded sample of {MAP_CLIPS:,} clips is drawn (the title says so)."""
METHODS = {"PCA": "pca", "UMAP": "umap"}


def _about(gallery) -> str:
    return f"{gallery.n_clips:,} clips of `{gallery.shown_source}` (Redraw after loading another model or gallery)."


def render(state: DemoState, demo: gr.Blocks):
    """The tab's layout and events (drawn when the page loads, from the cache). Returns
    ``(draw, inputs, outputs)``: the callback that draws the current gallery, to run after loading another."""
    gr.Markdown(INTRO)
    with gr.Row():
        method = gr.Radio(list(METHODS), value="PCA", label="map", elem_id="explore-method")
        connect = gr.Checkbox(False, label="join each clip's caption, video and audio", elem_id="explore-connect")
        redraw = gr.Button("Redraw", scale=0, min_width=120, elem_id="explore-redraw")
    info = gr.Markdown(elem_id="explore-info")
    plot = gr.Plot(label="embedding map", elem_id="explore-map")

    def announce(name, join):
        _, _, gallery = state.snapshot()
        if map_is_cached(gallery, METHODS[name], bool(join)):
            return gr.skip()
        shown = min(gallery.n_clips, MAP_CLIPS)
        return (f"Computing the {name} map of {shown:,} clips of `{gallery.shown_source}`"
                + (" (UMAP: about 20 s the first time, then cached)" if name == "UMAP" else "") + " ...")

    @user_errors
    def draw(name, join, progress=gr.Progress()):
        _, _, gallery = state.snapshot()
        if not map_is_cached(gallery, METHODS[name], bool(join)):
            progress(0.1, desc=f"computing the {name} map of {min(gallery.n_clips, MAP_CLIPS):,} clips")
        fig = gallery_map(gallery, METHODS[name], bool(join))
        return fig, _about(gallery)

    for event in (method.change, connect.change, redraw.click):
        event(announce, [method, connect], info, api_visibility="private", queue=False).then(
            draw, [method, connect], [plot, info], api_visibility="private")
    demo.load(draw, [method, connect], [plot, info], api_visibility="private")
    return draw, [method, connect], [plot, info]
