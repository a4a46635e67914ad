"""The Model tab: the loaded model's card and the gallery; load another model or gallery."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr

from .cards import gallery_card, model_card, model_directory
from .state import DemoState
from .ui import user_errors, warn

__all__ = ["load_gallery_message", "load_model_message", "render"]

LOCKED = ("*Loading models and galleries from the page is off: this app is shared or reachable from other "
          "machines. Restart it with `--allow-loading` to allow it.*")
# what another tab redraws after a load: (callback, inputs, outputs)
Refresh = tuple[Callable[..., Any], Sequence[gr.components.Component], Sequence[gr.components.Component]]


@user_errors
def load_model_message(state: DemoState, path: str) -> str:
    """The Model tab's "Load model": a sentence on what was loaded, or a `gr.Error` saying why not
    (the current model and gallery stay)."""
    message = state.load_model(path) + ". The other tabs use it from now on."
    warn(state.snapshot()[2].notes)
    return message


@user_errors
def load_gallery_message(state: DemoState, path: str) -> str:
    """The Model tab's "Load gallery": a sentence on what was loaded, or a `gr.Error` naming the file
    and the problem (the current gallery stays)."""
    message = state.load_gallery(path) + ". The Search and Explore tabs show it now."
    warn(state.snapshot()[2].notes)
    return message


def render(state: DemoState, demo: gr.Blocks, after_load: Sequence[Refresh] = ()) -> None:
    """The tab's layout and events; ``after_load`` are the other tabs' refreshes, run after a load."""
    card = gr.Markdown(elem_id="model-card")
    about = gr.Markdown(elem_id="gallery-card")
    gr.Markdown("### Load another model or gallery" + ("" if state.allow_loading else "\n\n" + LOCKED))
    with gr.Row():
        model_path = gr.Textbox(label="model: a folder written by save_pretrained (e.g. runs/NAME/final) or a "
                                "bundled name", scale=4, interactive=state.allow_loading, elem_id="model-path")
        load_model = gr.Button("Load model", scale=1, interactive=state.allow_loading, elem_id="model-load")
    with gr.Row():
        gallery_path = gr.Textbox(label="gallery: a folder of clips (with captions.jsonl, or any video and audio "
                                  "files without captions), an annotation file, or a .safetensors embedding file "
                                  "(any model, any dimension)", scale=4,
                                  interactive=state.allow_loading, elem_id="gallery-path")
        load_gallery = gr.Button("Load gallery", scale=1, interactive=state.allow_loading, elem_id="gallery-load")
    status = gr.Markdown(elem_id="model-status")

    def cards():
        model, name, gallery = state.snapshot()
        return model_card(model, name, model_directory(name)), gallery_card(gallery)

    for button, path, load in ((load_model, model_path, load_model_message),
                               (load_gallery, gallery_path, load_gallery_message)):
        event = button.click(functools.partial(load, state), path, status, api_visibility="private").success(
            cards, None, [card, about], api_visibility="private")
        for fn, inputs, outputs in after_load:
            event = event.success(fn, list(inputs), list(outputs), api_visibility="private")
    demo.load(cards, None, [card, about], api_visibility="private")
