"""The demo in a real browser: Playwright drives Debian's Chromium through a score and a search.

Skipped (with the reason) when /usr/bin/chromium or Playwright is missing; `.ci/run` installs
Chromium with apt.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from web import CHROMIUM, free_port
from web import CHROMIUM_ARGS as ARGS

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium (apt install chromium)"),
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright (pip install playwright)")



@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(url, gallery folder) of the demo on a free local port with a small generated gallery."""
    from gramviz.app import launch as module
    from gramviz.app.gallery import ensure_world_gallery
    from gramviz.app.state import DemoState

    gallery = ensure_world_gallery(tmp_path_factory.mktemp("browser") / "gallery", n=16, workers=1, progress=False)
    state = DemoState.start("world-small", gallery, progress=False)
    demo = module.build_demo(state)
    demo.launch(prevent_thread_lock=True, quiet=True,
                **module.launch_options(state, module.parse_args(["--port", str(free_port())])))
    yield demo.local_url, gallery
    demo.close()


@pytest.fixture(scope="module")
def page(served):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(60_000)
        page.goto(served[0])
        yield page
        browser.close()


def _first(gallery: Path) -> tuple[Path, str]:
    record = json.loads((gallery / "captions.jsonl").read_text().splitlines()[0])
    return gallery / record["video"], record["captions"][0]


def test_upload_a_clip_type_text_and_see_the_volume_and_the_figure(page, served):
    video, caption = _first(served[1])
    page.locator("#score-video input[type=file]").set_input_files(str(video))
    page.locator("#score-text textarea").fill(caption)
    page.locator("#score-button").click()
    summary = page.locator("#score-summary", has_text="GRAM volume")
    summary.wait_for()
    assert "least aligned" in summary.inner_text() or "stands out" in summary.inner_text()
    solid = page.locator("#score-parallelotope .js-plotly-plot")
    solid.wait_for()
    assert "GRAM volume" in solid.inner_text()  # the figure's title
    page.locator("#score-text textarea").fill("")  # a clip alone is still scored (video and audio)
    page.locator("#score-button").click()
    page.locator("#score-summary", has_text="Scored without text").wait_for()


def test_text_search_shows_playable_videos(page, served):
    _, caption = _first(served[1])
    page.get_by_role("tab", name="Search").click()
    page.locator("#search-text textarea").fill(caption)
    page.locator("#search-button").click()
    page.locator("#search-videos video").first.wait_for()
    page.locator("#search-status", has_text="by GRAM volume").wait_for()
    # playable: the browser decodes the H.264 + AAC mp4's header (duration 3 s) and can play it
    page.wait_for_function("""() => {
        const v = document.querySelector('#search-videos video');
        return v && v.readyState >= 1 && v.duration > 2.5 && !v.error;
    }""")
    assert page.locator("#search-videos video").count() == 5  # k defaults to 5
    assert page.evaluate("document.querySelector('#search-videos video').canPlayType('video/mp4; codecs=\"avc1.42E01E, mp4a.40.2\"')")
    page.locator("#search-text textarea").fill("")
    page.locator("#search-button").click()  # empty text: an error message in the page, nothing breaks
    page.get_by_text("the text is empty").first.wait_for()
