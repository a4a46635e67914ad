"""The Search tab: a caption finds clips, a clip finds captions; another measure ranks beside GRAM."""

from __future__ import annotations

import gradio as gr

from .searching import MEASURE_CHOICES, compare_rankings, ranking_figure, search_by_clip, search_by_text
from .state import DemoState
from .ui import user_errors, warn

__all__ = ["render"]

SLOTS = 10  # video players on the page (the API returns up to MAX_K results)
NONE = "GRAM only"
INTRO = """**Text -> clips**: the gallery clips whose (caption, video, audio) parallelotope is flattest. **Clip ->
captions**: the captions that best align with an uploaded clip. Pick a second measure to rank side by side with
GRAM: pairwise cosine (ImageBind-style, the anchor against each modality), fused cosine (VAST-style, against the
mean of video and audio) or Symile (the multilinear product)."""


def _clip_players(gallery, result):
    """Updates of the video players: the ranked clips, with their rank, id and GRAM volume."""
    updates = []
    for slot in range(SLOTS):
        if slot < len(result.results):
            item, row = result.results[slot], int(result.ranking.indices[slot])
            video = gallery.videos[row]
            label = f"{item['rank']}. {item['id']}  volume {item['volume']:.3f}" + ("" if video else " (no video file)")
            updates.append(gr.Video(value=str(video) if video else None, label=label, visible=True))
        else:
            updates.append(gr.Video(value=None, visible=False))
    return updates


def _beside(gram, second: str, rank_by_second):
    """The comparison sentence and the second measure's bars (hidden when GRAM ranks alone)."""
    if second == NONE:
        return "", gr.Plot(visible=False)
    alt = rank_by_second(MEASURE_CHOICES[second])
    return " " + compare_rankings(gram, alt, second), gr.Plot(ranking_figure(alt), visible=True, label=second)


def render(state: DemoState, demo: gr.Blocks) -> None:
    """The tab's layout and events; ``/search_by_text`` and ``/search_by_clip`` are its API endpoints."""
    gr.Markdown(INTRO)
    other = gr.Radio([NONE, *MEASURE_CHOICES], value=NONE, label="beside GRAM, rank by", elem_id="search-measure")
    _text_section(state, other)
    gr.Markdown("### Clip -> captions")
    _clip_section(state, other)


def _text_section(state: DemoState, other: gr.Radio) -> None:
    with gr.Row():
        text = gr.Textbox(label="caption", scale=4, elem_id="search-text",
                          placeholder="a blue cube sliding with a low hum")
        k = gr.Slider(1, SLOTS, value=5, step=1, label="k (results)", scale=1, elem_id="search-k")
        button = gr.Button("Search clips", variant="primary", scale=1, elem_id="search-button")
    status = gr.Markdown(elem_id="search-status")
    with gr.Row(elem_id="search-videos", equal_height=True):
        players = [gr.Video(visible=False, interactive=False, height=200, min_width=180) for _ in range(SLOTS)]
    with gr.Row():
        bars = gr.Plot(label="GRAM ranking", elem_id="search-bars")
        other_bars = gr.Plot(label="second measure", visible=False, elem_id="search-other-bars")
    with gr.Accordion("what /search_by_text returns (JSON)", open=False):
        results = gr.JSON(label="/search_by_text result", elem_id="search-json")

    @user_errors
    def api_text(caption, top):
        model, _, gallery = state.snapshot()
        return search_by_text(model, gallery, caption, top).results

    @user_errors
    def show_text(caption, top, second):
        if not caption or not caption.strip():
            return [gr.skip()] * (SLOTS + 3)
        model, _, gallery = state.snapshot()
        gram = search_by_text(model, gallery, caption, top)
        warn(gram.notes)
        line, extra = _beside(gram, second, lambda m: search_by_text(model, gallery, caption, top, m))
        line = f"Top {len(gram.results)} of {gallery.n_clips:,} clips by GRAM volume (lower = more aligned)." + line
        return [line, *_clip_players(gallery, gram), ranking_figure(gram), extra]

    outputs = [status, *players, bars, other_bars]
    button.click(api_text, [text, k], results, api_name="search_by_text").success(
        show_text, [text, k, other], outputs, api_visibility="private")
    text.submit(api_text, [text, k], results, api_visibility="private").success(
        show_text, [text, k, other], outputs, api_visibility="private")
    other.change(show_text, [text, k, other], outputs, api_visibility="private")


def _clip_section(state: DemoState, other: gr.Radio) -> None:
    with gr.Row():
        clip = gr.Video(label="clip (video with its sound)", sources=["upload"], height=220, elem_id="clip-video")
        clip_audio = gr.Audio(label="separate audio (optional)", sources=["upload"], type="filepath")
        with gr.Column():
            k = gr.Slider(1, SLOTS, value=5, step=1, label="k (results)")
            button = gr.Button("Search captions", variant="primary", elem_id="clip-button")
    status = gr.Markdown()
    with gr.Row():
        bars = gr.Plot(label="GRAM ranking")
        other_bars = gr.Plot(label="second measure", visible=False)
    with gr.Accordion("what /search_by_clip returns (JSON)", open=False):
        results = gr.JSON(label="/search_by_clip result")

    @user_errors
    def api_clip(video_file, audio_file, top):
        model, _, gallery = state.snapshot()
        return search_by_clip(model, gallery, video_file, audio_file, top).results

    @user_errors
    def show_clip(video_file, audio_file, top, second):
        if video_file is None and audio_file is None:
            return gr.skip(), gr.skip(), gr.skip()
        model, _, gallery = state.snapshot()
        gram = search_by_clip(model, gallery, video_file, audio_file, top)
        warn(gram.notes)
        line, extra = _beside(gram, second, lambda m: search_by_clip(model, gallery, video_file, audio_file, top, m))
        return f"Top {len(gram.results)} of {gallery.n_captions:,} captions by GRAM volume." + line, \
            ranking_figure(gram), extra

    outputs = [status, bars, other_bars]
    button.click(api_clip, [clip, clip_audio, k], results, api_name="search_by_clip", concurrency_limit=2,
                 concurrency_id="media").success(
        show_clip, [clip, clip_audio, k, other], outputs, api_visibility="private", concurrency_id="media")
    other.change(show_clip, [clip, clip_audio, k, other], outputs, api_visibility="private", concurrency_id="media")
