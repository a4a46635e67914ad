"""The Model tab: the loaded model's card and the gallery; load another model or gallery."""

from __future__ import annotations

import gradio as gr

from .cards import gallery_card, model_card, model_directory
from .state import DemoState
from .ui import user_errors

__all__ = ["render"]

LOCKED = ("*Loading models and galleries from the page is off: this app is shared or reachable from other "
          "machines. Restart it with `--allow-loading` to allow it.*")


def render(state: DemoState, demo: gr.Blocks) -> None:
    """The tab's layout and events."""
    card = gr.Markdown(elem_id="model-card")
    about = gr.Markdown(elem_id="gallery-card")
    gr.Markdown("### Load another model or gallery" + ("" if state.allow_loading else "\n\n" + LOCKED))
    with gr.Row():
        model_path = gr.Textbox(label="model: a folder written by save_pretrained (e.g. runs/NAME/final) or a "
                                "bundled name", scale=4, interactive=state.allow_loading)
        load_model = gr.Button("Load model", scale=1, interactive=state.allow_loading)
    with gr.Row():
        gallery_path = gr.Textbox(label="gallery: a folder with captions.jsonl and its clips, an annotation file, "
                                  "or a .safetensors embedding file", scale=4, interactive=state.allow_loading)
        load_gallery = gr.Button("Load gallery", scale=1, interactive=state.allow_loading)
    status = gr.Markdown(elem_id="model-status")

    def cards():
        model, name, gallery = state.snapshot()
        return model_card(model, name, model_directory(name)), gallery_card(gallery)

    @user_errors
    def new_model(path):
        return state.load_model(path) + ". The other tabs use it from now on."

    @user_errors
    def new_gallery(path):
        return state.load_gallery(path) + ". Redraw the map in Explore to see it."

    load_model.click(new_model, model_path, status, api_visibility="private").success(
        cards, None, [card, about], api_visibility="private")
    load_gallery.click(new_gallery, gallery_path, status, api_visibility="private").success(
        cards, None, [card, about], api_visibility="private")
    demo.load(cards, None, [card, about], api_visibility="private")
