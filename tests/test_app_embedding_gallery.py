"""The demo on a gallery of another model's embeddings: a 512-d embedding file written here, served
while the bundled 256-d model is loaded.

Caption -> clips and clip -> captions through `gradio_client` equal a brute force over the file's
own tensors (`gramviz.score_matrix`, `gramviz.volume_matrix`); typed text and uploads are refused
with the reason and the app keeps serving; bad or truncated files are refused by name, from the
page (the current gallery stays) and at start (`gramviz demo` exits with status 2).
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import gradio_client
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_app import write_video
from web import free_port

import gramviz
from gramviz.embeddings import save_embeddings

pytestmark = [pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]
D, N, PER = 512, 30, 3  # dimension, clips, captions per clip
COLOURS, SHAPES = ("red", "green", "blue", "yellow", "white"), ("ball", "cube", "star", "ring", "cone", "pyramid")
AppError = gradio_client.exceptions.AppError


def _write_mp4(path, seconds=1, fps=8, sample_rate=16000):
    """A tiny H.264 + AAC clip: moving noise with a tone."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (seconds * fps, 32, 32, 3), dtype=np.uint8)
    tone = 0.2 * np.sin(2 * np.pi * 440 * np.arange(seconds * sample_rate) / sample_rate)
    return write_video(path, frames, fps=fps, audio=tone, sample_rate=sample_rate)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A 512-d embedding file (each caption and modality a noisy copy of its clip's latent), two
    clips with media files beside it, and broken copies of it."""
    d = tmp_path_factory.mktemp("embedding-gallery")
    g = torch.Generator().manual_seed(0)
    unit = lambda x: F.normalize(x, dim=-1)  # noqa: E731
    noisy = lambda x: unit(x + 0.8 * torch.randn(x.shape, generator=g) / D ** 0.5)  # noqa: E731
    latent = unit(torch.randn(N, D, generator=g))
    caption_clip = [c for c in range(N) for _ in range(PER)]
    tensors = {"text": noisy(latent[caption_clip]), "video": noisy(latent), "audio": noisy(latent)}
    captions = [f"a {COLOURS[c % 5]} {SHAPES[c % 6]} number {c}, take {p}" for c in range(N) for p in range(PER)]
    (d / "media").mkdir()
    paths = [f"media/clip-{c:03d}.mp4" if c < 2 else "" for c in range(N)]
    for p in paths[:2]:
        _write_mp4(d / p)
    good = d / "gram512.safetensors"
    save_embeddings(good, tensors, {"ids": [f"clip-{c:03d}" for c in range(N)], "captions": captions,
                                    "caption_clip": caption_clip, "classes": ["bouncing", "sliding", "spinning"],
                                    "class_ids": [c % 3 for c in range(N)], "paths": {"video": paths},
                                    "model": "gram-test-512"})
    raw = good.read_bytes()
    (d / "truncated.safetensors").write_bytes(raw[: len(raw) * 2 // 3])
    (d / "corrupt.safetensors").write_bytes(b"this is not a safetensors file\n" * 20)
    (d / "empty.safetensors").write_bytes(b"")
    return SimpleNamespace(dir=d, good=good, captions=captions, caption_clip=caption_clip,
                           ids=[f"clip-{c:03d}" for c in range(N)], **tensors)


@pytest.fixture(scope="module")
def app(files):
    """(client, url, state) of the demo serving the 512-d file with the bundled 256-d model."""
    from gramviz.app import launch
    from gramviz.app.state import DemoState

    state = DemoState.start("world-small", files.good, progress=False)
    demo = launch.build_demo(state)
    args = launch.parse_args(["--port", str(free_port())])
    demo.launch(prevent_thread_lock=True, quiet=True, **launch.launch_options(state, args))
    client = gradio_client.Client(demo.local_url, verbose=False, download_files=False)
    yield client, demo.local_url, state
    demo.close()


def _brute_order(scores):
    return torch.sort(scores, descending=True, stable=True).indices


@pytest.mark.parametrize("measure", ["volume", "cosine_pairwise", "symile"])
def test_caption_to_clips_equals_brute_force(app, files, measure):
    client, _, _ = app
    for row in (0, 44, N * PER - 1):
        results = client.predict(row, 5, measure, api_name="/search_by_caption")
        scores = gramviz.score_matrix(files.text[row : row + 1], files.video, files.audio, measure=measure)[0]
        order = _brute_order(scores)[:5]
        assert [r["id"] for r in results] == [files.ids[j] for j in order]
        value = -scores[order] if measure == "volume" else scores[order]
        torch.testing.assert_close(torch.tensor([r["value"] for r in results]), value, rtol=1e-5, atol=1e-5)
        volumes = gramviz.volume_matrix(files.text[row : row + 1], files.video, files.audio)[0, order]
        torch.testing.assert_close(torch.tensor([r["volume"] for r in results]), volumes, rtol=1e-5, atol=1e-5)
        assert all(r["measure"] == measure for r in results)
    # a caption's own clip is found, and its text is the same query as its row
    own = client.predict(files.captions[44], 5, "volume", api_name="/search_by_caption")
    assert own == client.predict(44, 5, "volume", api_name="/search_by_caption")
    assert own[0]["id"] == files.ids[files.caption_clip[44]] and own[0]["caption"] == files.captions[files.caption_clip[44] * PER]


@pytest.mark.parametrize("measure", ["volume", "cosine_fused"])
def test_clip_to_captions_equals_brute_force(app, files, measure):
    client, _, _ = app
    for j in (0, 17):
        results = client.predict(files.ids[j], 6, measure, api_name="/captions_of_clip")
        scores = gramviz.score_matrix(files.text, files.video[j : j + 1], files.audio[j : j + 1], measure=measure)[:, 0]
        order = _brute_order(scores)[:6]
        assert [r["row"] for r in results] == order.tolist()
        assert [r["caption"] for r in results] == [files.captions[i] for i in order]
        assert [r["id"] for r in results] == [files.ids[files.caption_clip[i]] for i in order]
        volumes = gramviz.volume_matrix(files.text, files.video[j : j + 1], files.audio[j : j + 1])[order, 0]
        torch.testing.assert_close(torch.tensor([r["volume"] for r in results]), volumes, rtol=1e-5, atol=1e-5)
        if measure == "volume":
            assert {r["row"] for r in results[:PER]} == {j * PER + p for p in range(PER)}  # its own captions first
    assert client.predict(17, 6, measure, api_name="/captions_of_clip") == results  # a row number is the same clip


def test_free_text_and_uploads_are_refused_with_the_reason(app, files):
    client, _, _ = app
    why = r"this gallery's embeddings are 512-d from 'gram-test-512'; the loaded model \(world-small\) embeds in 256-d"
    with pytest.raises(AppError, match=why):
        client.predict("a red ball bouncing", 3, api_name="/search_by_text")
    with pytest.raises(AppError, match="not one of the gallery's 90 captions; " + why):
        client.predict("a purple whale singing", 3, "volume", api_name="/search_by_caption")
    with pytest.raises(AppError, match=why):
        client.predict(gradio_client.handle_file(str(files.dir / "media" / "clip-000.mp4")), None, 3,
                       api_name="/search_by_clip")
    for bad, message in ((9999, "caption row 9999 is outside the gallery's 90 captions"),
                         ("no-such-clip", "no clip with id 'no-such-clip'")):
        with pytest.raises(AppError, match=message):
            client.predict(bad, 3, "volume", api_name="/captions_of_clip" if isinstance(bad, str) else "/search_by_caption")
    with pytest.raises(AppError, match="measure must be one of"):
        client.predict(0, 3, "dot", api_name="/search_by_caption")
    assert len(client.predict(3, 2, "volume", api_name="/search_by_caption")) == 2  # the next request works
    # scoring an upload needs the model only: it works, without the gallery's (other space's) volumes
    result = client.predict(gradio_client.handle_file(str(files.dir / "media" / "clip-000.mp4")), None,
                            "a red ball", api_name="/score")[0]
    assert result["reference"] is None and any("not compared" in note for note in result["notes"])


def test_bad_gallery_files_from_the_page_keep_the_current_gallery(app, files):
    from gramviz.app.tab_model import load_gallery_message

    client, _, state = app
    before = client.predict(5, 3, "volume", api_name="/search_by_caption")
    for name, problem in (("truncated", r"the file is truncated: its header describes [\d,]+ bytes of tensors but "
                                        r"only [\d,]+ follow it"),
                          ("corrupt", "not a safetensors file"), ("empty", r"the file is empty \(0 bytes\)")):
        with pytest.raises(gr.Error, match=f"cannot open the gallery: .*{name}.safetensors: {problem}"):
            load_gallery_message(state, str(files.dir / f"{name}.safetensors"))
        assert state.snapshot()[2].source == files.good
        assert client.predict(5, 3, "volume", api_name="/search_by_caption") == before


def test_a_gallery_in_the_models_space_takes_typed_text_and_the_page_follows(app, files, tmp_path):
    from gramviz.app.cards import gallery_card
    from gramviz.app.state import DemoState

    client, _, state = app
    g = torch.Generator().manual_seed(1)
    small = tmp_path / "small.safetensors"  # 256-d: the loaded model's dimension, no model named
    save_embeddings(small, {m: F.normalize(torch.randn(8, 256, generator=g), dim=-1) for m in ("text", "video", "audio")},
                    {"ids": [f"s{i}" for i in range(8)], "captions": [f"a red ball {i}" for i in range(8)]})
    model, name, gallery = state.snapshot()
    fresh = DemoState(model, name, gallery)
    assert "typed captions and uploads are searched too" in fresh.load_gallery(str(small))
    assert fresh.snapshot()[2].mismatch is None
    assert "not the loaded model's space" in fresh.load_gallery(str(files.good))
    card = gallery_card(fresh.snapshot()[2])
    assert "embeddings 512-d from 'gram-test-512'" in card and "Not the loaded model's space" in card


def test_the_index_is_built_once_and_searches(app, files, monkeypatch):
    from gramviz.search import ClipIndex

    client, _, state = app
    gallery = state.snapshot()[2]
    assert gallery.index is gallery.index and gallery.index.n == N and gallery.index.dim == D
    calls = []
    real = ClipIndex.rank  # what rank_clips calls on an index (search is rank without every score)
    monkeypatch.setattr(ClipIndex, "rank", lambda self, *a, **k: calls.append(self) or real(self, *a, **k))
    client.predict(7, 3, "volume", api_name="/search_by_caption")
    assert calls and all(index is gallery.index for index in calls)


def test_map_media_and_choices_come_from_the_file(app, files):
    import httpx

    from gramviz.app.gallery import gallery_map
    from gramviz.app.picks import caption_choices, clip_choices

    _, url, state = app
    gallery = state.snapshot()[2]
    fig = gallery_map(gallery, "pca")
    assert sum(len(t.x) for t in fig.data if t.meta and t.x[0] is not None) == 3 * N  # caption, video, audio
    assert gallery.videos[0] is not None and gallery.videos[2] is None  # the media that exist play
    assert httpx.get(f"{url}gradio_api/file={gallery.videos[1]}").status_code == 200
    assert httpx.get(f"{url}gradio_api/file={files.good}").status_code == 403  # the file itself is not served
    assert caption_choices(gallery)[44] == (f"{files.captions[44]}  [clip-014]", 44)
    assert [row for _, row in caption_choices(gallery, "Yellow CONE number 28")] == [84, 85, 86]
    assert clip_choices(gallery, "clip-017") == [(f"clip-017: {files.captions[17 * PER]}", 17)]


def test_map_of_a_large_gallery_is_a_sample_and_many_classes_do_not_break_it(files, tmp_path, monkeypatch):
    from gramviz.app import gallery as gallery_module
    from gramviz.app.gallery_file import open_embedding_file

    f = tmp_path / "many.safetensors"
    emb = {m: getattr(files, m) for m in ("text", "video", "audio")}
    save_embeddings(f, emb, {"ids": files.ids, "caption_clip": files.caption_clip, "class_ids": list(range(N)),
                             "classes": [f"class {c}" for c in range(N)]})  # 30 classes: too many colours
    gallery = open_embedding_file(f, None, cache_dir=None)
    assert gallery.mismatch and "no model is loaded" in gallery.mismatch
    monkeypatch.setattr(gallery_module, "MAP_CLIPS", 12)
    fig = gallery_module.gallery_map(gallery, "pca")
    assert sum(len(t.x) for t in fig.data if t.meta and t.x[0] is not None) == 3 * 12
    assert "12 of 30 items shown" in fig.layout.title.text


@pytest.mark.parametrize("name, problem", [("truncated", "the file is truncated"), ("corrupt", "not a safetensors file"),
                                           ("missing", "no such gallery")])
def test_demo_exits_2_naming_a_bad_gallery(files, name, problem, capsys, monkeypatch):
    from gramviz.app import launch

    monkeypatch.setattr(gr.Blocks, "launch", lambda *a, **k: pytest.fail("launched despite a bad gallery"))
    path = files.dir / f"{name}.safetensors"
    assert launch.main(["--gallery", str(path), "--port", str(free_port())]) == 2  # python app.py
    err = capsys.readouterr().err
    assert f"{path}" in err and problem in err
    from gramviz.cli import main

    assert main(["demo", "--gallery", str(path), "--port", str(free_port())]) == 2  # gramviz demo
    err = capsys.readouterr().err
    assert f"{path}" in err and problem in err


# --- the page, in Chromium ----------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def page(app):
    import os

    if not os.path.exists(CHROMIUM):
        pytest.skip("needs Debian's Chromium at /usr/bin/chromium (apt install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright (pip install playwright)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 1200})
        page.set_default_timeout(60_000)
        page.goto(app[1])
        yield page
        browser.close()


def test_the_page_says_why_typing_is_off_and_picks_work(page, files):
    page.get_by_role("tab", name="Search").click()
    page.locator("#search-notice", has_text="512-d from 'gram-test-512'").wait_for()
    assert page.locator("#search-text textarea").is_disabled()
    page.locator("#search-caption input").click()
    page.locator("#search-caption input").press_sequentially("number 1, take 2", delay=20)
    page.locator("ul[role=listbox] li").first.click()
    page.locator("#search-status", has_text='caption 5 of clip clip-001: "a green cube number 1, take 2"').wait_for()
    first = page.locator("#search-videos video").first  # clip-001's own video, playable
    page.wait_for_function("() => { const v = document.querySelector('#search-videos video'); "
                           "return v && v.readyState >= 1 && v.duration > 0.5 && !v.error; }")
    assert "1. clip-001" in page.locator("#search-videos").inner_text() and first.is_visible()
    page.locator("#search-clip input").click()
    page.locator("#search-clip input").press_sequentially("clip-017", delay=20)
    page.locator("ul[role=listbox] li").first.click()
    page.locator("#clip-status", has_text="captions for clip clip-017").wait_for()


def test_a_bad_file_loaded_from_the_page_shows_the_error(page, files):
    page.get_by_role("tab", name="Model").click()
    page.locator("#gallery-path textarea").fill(str(files.dir / "truncated.safetensors"))
    page.locator("#gallery-load").click()
    page.get_by_text("truncated.safetensors: the file is truncated").first.wait_for()
    assert "gram512.safetensors" in page.locator("#gallery-card").inner_text()  # still the current gallery
