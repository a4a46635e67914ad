"""The Explore tab: the gallery's embedding map, coloured by class, captions on hover."""

from __future__ import annotations

import gradio as gr

from .gallery import gallery_map
from .state import DemoState
from .ui import user_errors

__all__ = ["render"]

INTRO = """Every clip of the gallery as three points, its first **caption** (circle), its **video** and its
**audio**, mapped to 2-D together (PCA: instant; UMAP: about 20 s the first time, then cached) and coloured by
event class. Mixed colours within a modality mean the model does not separate the classes; caption, video and
audio islands far apart are a *modality gap*. Hover a point for the clip's id and caption."""
METHODS = {"PCA": "pca", "UMAP": "umap"}


def render(state: DemoState, demo: gr.Blocks) -> None:
    """The tab's layout and events (drawn when the page loads, from the cache)."""
    gr.Markdown(INTRO)
    with gr.Row():
        method = gr.Radio(list(METHODS), value="PCA", label="map", elem_id="explore-method")
        connect = gr.Checkbox(False, label="join each clip's caption, video and audio", elem_id="explore-connect")
        redraw = gr.Button("Redraw", scale=0, min_width=120, elem_id="explore-redraw")
    info = gr.Markdown(elem_id="explore-info")
    plot = gr.Plot(label="embedding map", elem_id="explore-map")

    @user_errors
    def draw(name, join):
        _, _, gallery = state.snapshot()
        fig = gallery_map(gallery, METHODS[name], bool(join))
        return fig, f"{gallery.n_clips:,} clips of `{gallery.source}` (Redraw after loading another model or gallery)."

    for event in (method.change, connect.change, redraw.click):
        event(draw, [method, connect], [plot, info], api_visibility="private")
    demo.load(draw, [method, connect], [plot, info], api_visibility="private")
