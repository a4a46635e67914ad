"""The Score tab: upload a clip and/or an audio file, type a caption, see how they align."""

from __future__ import annotations

import gradio as gr

from .scoring import describe_score, score_figures, score_upload, world_examples
from .state import DemoState
from .ui import user_errors, warn

__all__ = ["render"]

INTRO = """Upload a **clip** (a video with its sound) and/or a separate **audio** file, type a **caption**, or pick
an example from the generated world. GRAM measures their alignment by the volume of the parallelotope their
embeddings span: **0 when all point the same way, 1 when they are mutually orthogonal**. A missing modality is
scored with the ones present."""


def render(state: DemoState, demo: gr.Blocks) -> None:
    """The tab's layout and events; ``/score`` is its API endpoint."""
    gr.Markdown(INTRO)
    with gr.Row():
        with gr.Column(scale=1):
            video = gr.Video(label="clip (video with its sound)", sources=["upload"], height=260, elem_id="score-video")
            audio = gr.Audio(label="separate audio (optional; replaces the clip's sound)", sources=["upload"],
                             type="filepath", elem_id="score-audio")
            text = gr.Textbox(label="caption", lines=2, elem_id="score-text",
                              placeholder="a red ball bounces on the grass while birds sing")
            example = gr.Dropdown(label="or pick an example from the world", choices=[], value=None,
                                  elem_id="score-example")
            button = gr.Button("Score", variant="primary", elem_id="score-button")
        with gr.Column(scale=1):
            words = gr.Markdown(elem_id="score-summary")
            with gr.Accordion("what /score returns (JSON)", open=False):
                result = gr.JSON(label="/score result", elem_id="score-json")
    with gr.Row():
        solid = gr.Plot(label="parallelotope", elem_id="score-parallelotope")
        gram = gr.Plot(label="Gram matrix", elem_id="score-gram")
    base_height = gr.Plot(label="base x height", elem_id="score-base-height")

    @user_errors
    def score(video_file, audio_file, caption):
        model, _, gallery = state.snapshot()
        out = score_upload(model, video_file, audio_file, caption, gallery)
        warn([f"scored without {m}: {why}" for m, why in out.summary["missing"].items()])
        figs = score_figures(out.embeddings)
        return out.summary, describe_score(out.summary), figs["parallelotope"], figs["gram"], figs["base_height"]

    def example_choices():
        _, _, gallery = state.snapshot()
        return gr.Dropdown(choices=[label for label, _, _ in world_examples(gallery)], value=None)

    @user_errors
    def pick(label):
        if not label:
            return gr.skip(), gr.skip(), gr.skip()
        _, _, gallery = state.snapshot()
        for name, video_file, caption in world_examples(gallery):
            if name == label:
                return video_file, None, caption
        raise ValueError("that example is not in the current gallery; reload the page")

    outputs = [result, words, solid, gram, base_height]
    button.click(score, [video, audio, text], outputs, api_name="score", concurrency_limit=2,
                 concurrency_id="media")
    example.input(pick, example, [video, audio, text], api_visibility="private").success(
        score, [video, audio, text], outputs, api_visibility="private", concurrency_id="media")
    demo.load(example_choices, None, example, api_visibility="private")
