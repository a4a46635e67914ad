"""The Search tab: a caption finds clips, a clip finds captions; another measure ranks beside GRAM.

Each direction takes a typed caption or an uploaded clip (embedded by the loaded model) or one of
the gallery's own captions or clips, picked from a searchable list. When the loaded model does not
embed in the gallery's space, typing and uploading are switched off and the tab says why; picking
works on a gallery of any model. ``/search_by_text``, ``/search_by_clip``, ``/search_by_caption``
and ``/captions_of_clip`` are its API endpoints (the last two in `gramviz.app.tab_search_api`).
"""

from __future__ import annotations

import functools

import gradio as gr

from .picks import MAX_CHOICES, caption_choices, clip_choices
from .searching import (
    MEASURE_CHOICES,
    captions_of_clip,
    clips_like_clip,
    compare_rankings,
    describe_results,
    endpoint_results,
    ranking_figure,
    search_by_caption,
    search_by_clip,
    search_by_text,
)
from .state import DemoState
from .tab_search_api import register_api
from .ui import user_errors, warn

__all__ = ["render"]

SLOTS = 10  # video players on the page (the API returns up to MAX_K results)
NONE = "GRAM only"
PLACEHOLDER = "a blue star bounces on the sand over an engine hum"  # words the bundled model knows
INTRO = """**Caption -> clips**: the gallery clips whose (caption, video, audio) parallelotope is flattest. **Clip ->
captions**: the captions that best align with a clip. Type a caption or upload a clip, or pick one of the gallery's
own. Pick a second measure to rank side by side with GRAM: pairwise cosine (ImageBind-style, the anchor against each
modality), fused cosine (VAST-style, against the mean of video and audio) or Symile (the multilinear product)."""


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


PICKS = {  # what each list picks: (choices, how many there are, noun, label)
    "caption": (caption_choices, lambda g: g.n_captions, "captions", "or pick one of the gallery's captions"),
    "clip": (clip_choices, lambda g: g.n_clips, "clips", "or pick one of the gallery's clips"),
}


def _picker(state: DemoState, kind: str, elem_id: str):
    """A searchable list of the gallery's captions or clips, and on a gallery too large to list whole,
    a box whose words narrow it (the list is never changed while it is being typed into)."""
    choices_of, _, noun, label = PICKS[kind]
    with gr.Row(equal_height=True):
        find = gr.Textbox(label=f"find {noun} (words, or a clip id)", visible=False, scale=1, elem_id=f"{elem_id}-find")
        pick = gr.Dropdown(label=label + " (type to filter)", choices=[], value=None, scale=3, elem_id=elem_id)

    def narrow(words):
        _, _, gallery = state.snapshot()
        words = words or ""
        return gr.Dropdown(choices=choices_of(gallery, words, 500 if words.strip() else MAX_CHOICES), value=None)

    find.change(narrow, find, pick, api_visibility="private", queue=False)
    return find, pick


def _picker_update(gallery, kind: str):
    """The find box and the list, fitted to ``gallery``."""
    choices_of, total_of, noun, label = PICKS[kind]
    total = total_of(gallery)
    if total == 0:
        return [gr.Textbox(visible=False, value=""),
                gr.Dropdown(choices=[], value=None, label=f"the gallery holds no {noun} to pick", interactive=False)]
    large = total > MAX_CHOICES
    note = f" (type to filter; the first {MAX_CHOICES:,} of {total:,} are listed: find others with the box)" if large \
        else " (type to filter)"
    return [gr.Textbox(visible=large, value=""), gr.Dropdown(choices=choices_of(gallery), value=None, label=label + note)]


def render(state: DemoState, demo: gr.Blocks):
    """The tab's layout and events. Returns ``(refresh, inputs, outputs)``: the callback that fits the
    tab to the current gallery (its lists, what is switched off and why) when it changed since."""
    gr.Markdown(INTRO)
    notice = gr.Markdown(visible=False, elem_id="search-notice")
    other = gr.Radio([NONE, *MEASURE_CHOICES], value=NONE, label="beside GRAM, rank by", elem_id="search-measure")
    gr.Markdown("### Caption -> clips")
    text_parts = _text_section(state, other)
    gr.Markdown("### Clip -> captions")
    clip_parts = _clip_section(state, other)
    register_api(state)

    shown = gr.State(None)  # which gallery (and model) the lists and switches were made for

    def refresh(made_for):
        _, _, gallery = state.snapshot()
        now = f"{gallery.key}/{id(gallery)}"  # a reloaded model re-opens the gallery: a new object
        if made_for == now:
            return [gr.skip()] * (len(outputs) + 1)
        off = bool(gallery.mismatch)
        why = f"**Typing a caption and uploading a clip are off**: {gallery.mismatch}." if off else ""
        if gallery.n_captions == 0:
            why += (" **This gallery holds no captions**: a typed caption ranks its clips by their video and audio; "
                    "a clip (uploaded or picked) finds the clips most like it.")
        placeholder = "needs a model in the gallery's space (see above)" if off else PLACEHOLDER
        return [now, gr.Markdown(why, visible=bool(why)), gr.Textbox(interactive=not off, placeholder=placeholder),
                gr.Button(interactive=not off), *_picker_update(gallery, "caption"),
                gr.Video(interactive=not off), gr.Audio(interactive=not off), gr.Button(interactive=not off),
                *_picker_update(gallery, "clip")]

    outputs = [notice, *text_parts, *clip_parts]
    demo.load(refresh, shown, [shown, *outputs], api_visibility="private")
    return refresh, [shown], [shown, *outputs]


def _show_clips(state: DemoState, query: dict, top, second: str) -> list:
    """Caption -> clips for a typed caption (``{"text": ...}``) or a gallery caption (``{"caption": row}``):
    the JSON, the status line, the players, GRAM's bars and the second measure's."""
    model, _, gallery = state.snapshot()

    def run(measure):
        if "text" in query:
            return search_by_text(model, gallery, query["text"], top, measure)
        return search_by_caption(gallery, query["caption"], top, measure)

    gram = run("volume")
    warn(gram.notes)
    line, extra = _beside(gram, second, run)
    line = describe_results(gram, gallery.n_clips, "clips") + line
    return [endpoint_results(gram), line, *_clip_players(gallery, gram), ranking_figure(gram), extra]


def _show_captions(state: DemoState, query: dict, top, second: str) -> list:
    """Clip -> captions for an upload (``{"upload": (video, audio)}``) or a gallery clip (``{"clip": row}``)."""
    model, _, gallery = state.snapshot()

    def run(measure):
        if "upload" in query:
            return search_by_clip(model, gallery, *query["upload"], top, measure)
        if gallery.n_captions == 0:  # no captions to find: the clips most like this one
            return clips_like_clip(gallery, query["clip"], top, measure)
        return captions_of_clip(gallery, query["clip"], top, measure)

    gram = run("volume")
    warn(gram.notes)
    line, extra = _beside(gram, second, run)
    total, noun = (gallery.n_captions, "captions") if gallery.n_captions else (gallery.n_clips, "clips")
    return [endpoint_results(gram), describe_results(gram, total, noun) + line, ranking_figure(gram), extra]


def _text_section(state: DemoState, other: gr.Radio):
    with gr.Row():
        text = gr.Textbox(label="caption", scale=4, elem_id="search-text",
                          placeholder=PLACEHOLDER)
        k = gr.Slider(1, SLOTS, value=5, step=1, label="k (results)", scale=1, elem_id="search-k")
        button = gr.Button("Search clips", variant="primary", scale=1, elem_id="search-button")
    find, pick = _picker(state, "caption", "search-caption")
    status = gr.Markdown(elem_id="search-status")
    with gr.Row(elem_id="search-videos", equal_height=True):
        players = [gr.Video(visible=False, interactive=False, height=200, min_width=180) for _ in range(SLOTS)]
    with gr.Row():
        bars = gr.Plot(label="GRAM ranking", elem_id="search-bars")
        other_bars = gr.Plot(label="second measure", visible=False, elem_id="search-other-bars")
    with gr.Accordion("what /search_by_text and /search_by_caption return (JSON)", open=False):
        results = gr.JSON(label="result", elem_id="search-json")
    last = gr.State(None)  # the query shown: {"text": ...} or {"caption": row}, re-ranked when the measure changes

    show = functools.partial(_show_clips, state)

    @user_errors
    def api_text(caption, top):
        model, _, gallery = state.snapshot()
        return endpoint_results(search_by_text(model, gallery, caption, top))

    @user_errors
    def show_text(caption, top, second):
        if not caption or not caption.strip():
            return [gr.skip()] * (SLOTS + 5)
        return [{"text": caption}, *show({"text": caption}, top, second)]

    @user_errors
    def show_pick(row, top, second):
        if row is None:
            return [gr.skip()] * (SLOTS + 5)
        return [{"caption": int(row)}, *show({"caption": int(row)}, top, second)]

    @user_errors
    def show_last(query, top, second):
        return show(query, top, second)[1:] if query else [gr.skip()] * (SLOTS + 3)

    outputs = [status, *players, bars, other_bars]
    button.click(api_text, [text, k], results, api_name="search_by_text").success(
        show_text, [text, k, other], [last, results, *outputs], api_visibility="private")
    text.submit(api_text, [text, k], results, api_visibility="private").success(
        show_text, [text, k, other], [last, results, *outputs], api_visibility="private")
    pick.input(show_pick, [pick, k, other], [last, results, *outputs], api_visibility="private")
    other.change(show_last, [last, k, other], outputs, api_visibility="private")
    return text, button, find, pick


def _clip_section(state: DemoState, other: gr.Radio):
    with gr.Row():
        clip = gr.Video(label="clip (video with its sound)", sources=["upload"], height=220, elem_id="clip-video")
        clip_audio = gr.Audio(label="separate audio (optional)", sources=["upload"], type="filepath",
                              elem_id="clip-audio")
        with gr.Column():
            k = gr.Slider(1, SLOTS, value=5, step=1, label="k (results)")
            button = gr.Button("Search captions", variant="primary", elem_id="clip-button")
    find, pick = _picker(state, "clip", "search-clip")
    status = gr.Markdown(elem_id="clip-status")
    with gr.Row():
        bars = gr.Plot(label="GRAM ranking", elem_id="clip-bars")
        other_bars = gr.Plot(label="second measure", visible=False)
    with gr.Accordion("what /search_by_clip and /captions_of_clip return (JSON)", open=False):
        results = gr.JSON(label="result")
    last = gr.State(None)  # {"upload": (video, audio)} or {"clip": row}

    show = functools.partial(_show_captions, state)

    @user_errors
    def api_clip(video_file, audio_file, top):
        model, _, gallery = state.snapshot()
        return endpoint_results(search_by_clip(model, gallery, video_file, audio_file, top))

    @user_errors
    def show_upload(video_file, audio_file, top, second):
        if video_file is None and audio_file is None:
            return [gr.skip()] * 5
        query = {"upload": (video_file, audio_file)}
        return [query, *show(query, top, second)]

    @user_errors
    def show_pick(row, top, second):
        if row is None:
            return [gr.skip()] * 5
        return [{"clip": int(row)}, *show({"clip": int(row)}, top, second)]

    @user_errors
    def show_last(query, top, second):
        return show(query, top, second)[1:] if query else [gr.skip()] * 3

    outputs = [status, bars, other_bars]
    button.click(api_clip, [clip, clip_audio, k], results, api_name="search_by_clip", concurrency_limit=2,
                 concurrency_id="media").success(
        show_upload, [clip, clip_audio, k, other], [last, results, *outputs], api_visibility="private",
        concurrency_id="media")
    pick.input(show_pick, [pick, k, other], [last, results, *outputs], api_visibility="private")
    other.change(show_last, [last, k, other], outputs, api_visibility="private", concurrency_id="media")
    return clip, clip_audio, button, find, pick
