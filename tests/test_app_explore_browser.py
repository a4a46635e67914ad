"""The Explore dashboard in a real browser: Playwright drives Debian's Chromium through a box
selection by mouse drag, a click on a point and on a row, the colour switch, the export and a
second model, on one served app (a small generated gallery; the second model has random weights).

Skipped (with the reason) when /usr/bin/chromium or Playwright is missing, as tests/test_app_browser.py.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from web import CHROMIUM, free_port
from web import CHROMIUM_ARGS as ARGS

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="needs Debian's Chromium at /usr/bin/chromium (apt install chromium)"),
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright (pip install playwright)")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

# page -> screen position of a clip's video point on a map: the point's data coordinates through the axes
POINT = """([plot, clip]) => {
  const gd = document.querySelector('#' + plot + ' .js-plotly-plot'), fl = gd._fullLayout;
  const r = gd.getBoundingClientRect();
  for (const t of gd._fullData) {
    if (!t.customdata || !t.meta || t.meta.modality !== 'video') continue;
    const i = Array.from(t.customdata).indexOf(clip);
    if (i >= 0) return [r.left + fl._size.l + fl.xaxis.d2p(t.x[i]), r.top + fl._size.t + fl.yaxis.d2p(t.y[i])];
  }
  return null;
}"""
# page -> screen position of a clip's point on any figure whose points carry clip indices
ANY_POINT = """([plot, clip]) => {
  const gd = document.querySelector('#' + plot + ' .js-plotly-plot'), fl = gd._fullLayout;
  const r = gd.getBoundingClientRect();
  for (const t of gd._fullData) {
    const i = t.customdata ? Array.from(t.customdata).indexOf(clip) : -1;
    if (i >= 0) return [r.left + fl._size.l + fl.xaxis.l2p(fl.xaxis.d2l(t.x[i])),
                        r.top + fl._size.t + fl.yaxis.l2p(fl.yaxis.d2l(t.y[i]))];
  }
  return null;
}"""
# screen rectangle -> its (x range, y range) in data coordinates, through the map's axes
TO_DATA = """([plot, x0, y0, x1, y1]) => {
  const gd = document.querySelector('#' + plot + ' .js-plotly-plot'), fl = gd._fullLayout;
  const r = gd.getBoundingClientRect(), left = r.left + fl._size.l, top = r.top + fl._size.t;
  return [[fl.xaxis.p2d(x0 - left), fl.xaxis.p2d(x1 - left)], [fl.yaxis.p2d(y0 - top), fl.yaxis.p2d(y1 - top)]];
}"""
COLOURS = """(plot) => {
  const gd = document.querySelector('#' + plot + ' .js-plotly-plot');
  return gd._fullData.filter((t) => t.customdata && Array.isArray(t.marker.color))
    .map((t) => [Array.from(t.customdata), Array.from(t.marker.color)]);
}"""
IDS = """(table) => Array.from(document.querySelectorAll('#' + table + ' [role=gridcell][aria-colindex="1"]'))
  .map((c) => c.innerText.trim())"""



@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(url, state, second model folder): the demo on a free local port with a 16-clip gallery."""
    import torch

    import gramviz
    from gramviz.app import launch as module
    from gramviz.app.gallery import ensure_world_gallery
    from gramviz.app.state import DemoState
    from gramviz.models import GRAMModel

    root = tmp_path_factory.mktemp("explore-browser")
    gallery = ensure_world_gallery(root / "gallery", n=16, workers=1, progress=False)
    state = DemoState.start("world-small", gallery, progress=False)
    torch.manual_seed(2)
    bundled = gramviz.load_model("world-small")
    GRAMModel(bundled.config, bundled.tokenizer).save_pretrained(root / "second")
    demo = module.build_demo(state)
    demo.launch(prevent_thread_lock=True, quiet=True,
                **module.launch_options(state, module.parse_args(["--port", str(free_port())])))
    yield demo.local_url, state, root / "second"
    demo.close()


@pytest.fixture(scope="module")
def page(served):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.set_default_timeout(30_000)
        page.goto(served[0])
        page.get_by_role("tab", name="Explore").click()
        page.locator("#explore-map .js-plotly-plot").wait_for()
        page.locator("#explore-info", has_text="clips of").wait_for()
        yield page
        browser.close()


def _nearest_pair(points) -> tuple[int, int]:
    """Two clips whose video points lie closest together on the map (a small box holds both)."""
    xy, clips = points.coords["video"], points.point_clips["video"]
    best = min(((float(((xy[i] - xy[j]) ** 2).sum()), i, j) for i in range(len(clips)) for j in range(i)))
    return clips[best[1]], clips[best[2]]


def test_a_box_dragged_on_the_map_fills_the_table_and_the_strip_with_exactly_those_clips(page, served):
    from gramviz.app.explore_data import map_points
    from gramviz.app.explore_views import STRIP
    from gramviz.exploration import clips_in_box

    _, state, _ = served
    gallery = state.snapshot()[2]
    points = map_points(gallery, "pca")
    page.locator("#explore-map .js-plotly-plot").scroll_into_view_if_needed()
    (ax, ay), (bx, by) = (page.evaluate(POINT, ["explore-map", c]) for c in _nearest_pair(points))
    x0, y0, x1, y1 = min(ax, bx) - 12, min(ay, by) - 12, max(ax, bx) + 12, max(ay, by) + 12
    x_range, y_range = page.evaluate(TO_DATA, ["explore-map", x0, y0, x1, y1])
    expected = clips_in_box(
        [p for m in points.coords for p in points.coords[m].tolist()],
        [c for m in points.coords for c in points.point_clips[m]], x_range, y_range)
    assert 2 <= len(expected) <= 8
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=8)
    page.mouse.up()
    page.locator("#explore-selection-info", has_text=f"{len(expected)} clips selected on the map").wait_for()
    ids = [gallery.meta.ids[c] for c in expected]
    page.wait_for_function(f"() => ({IDS})('explore-table').length === {len(ids)}")
    assert page.evaluate(IDS, "explore-table") == ids
    labels = page.locator("#explore-strip [data-testid=block-label]")
    strip = ids[:STRIP]  # the strip plays the first STRIP of them
    page.wait_for_function(f"() => document.querySelectorAll('#explore-strip video').length === {len(strip)}")
    assert [t.split()[0] for t in labels.all_inner_texts()] == strip
    # the map greys the rest: its figure now names the selection
    assert page.evaluate("document.querySelector('#explore-map .js-plotly-plot').layout.meta.selected") == expected


def test_clicking_a_point_and_a_row_opens_the_inspector(page, served):
    _, state, _ = served
    gallery = state.snapshot()[2]
    clip = 7
    page.locator("#explore-map .js-plotly-plot").scroll_into_view_if_needed()
    page.mouse.click(*page.evaluate(POINT, ["explore-map", clip]))
    summary = page.locator("#explore-inspect-summary", has_text=gallery.meta.ids[clip])
    summary.wait_for()
    assert "Least aligned" in summary.inner_text()
    page.locator("#explore-parallelotope .js-plotly-plot").wait_for()
    page.locator("#explore-gram .js-plotly-plot").wait_for()
    page.locator("#explore-context .js-plotly-plot").wait_for()
    page.locator("#explore-neighbours table", has_text="by volume").wait_for()
    page.locator("#explore-inspect-video video").wait_for()
    first_row = page.evaluate(IDS, "explore-table")[0]
    page.locator('#explore-table [data-testid="cell-0-0"]').click()
    page.locator("#explore-inspect-summary", has_text=first_row).wait_for()


def test_the_colour_switch_paints_each_clip_its_height(page, served):
    from gramviz.app.explore_data import gallery_metrics

    _, state, _ = served
    heights = gallery_metrics(state.snapshot()[2]).values["height"].tolist()
    page.locator("#explore-colour").get_by_text("height", exact=True).click()
    page.wait_for_function("() => document.querySelector('#explore-map .js-plotly-plot').layout.meta"
                           ".color_name === 'height'")
    painted = page.evaluate(COLOURS, "explore-map")
    pairs = [(c, v) for clips, values in painted for c, v in zip(clips, values)]
    assert pairs and all(v == pytest.approx(heights[c], abs=1e-9) for c, v in pairs)


def test_the_selection_downloads_as_csv_and_jsonl(page, served):
    _, state, _ = served
    gallery = state.snapshot()[2]
    page.locator("#explore-worst input").fill("3")
    page.locator("#explore-filter").click()
    page.locator("#explore-selection-info", has_text="3 clips selected by the filter").wait_for()
    shown = page.evaluate(IDS, "explore-table")
    with page.expect_download() as download:
        page.locator("#explore-export-csv").click()
    with open(download.value.path(), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == shown and len(shown) == 3
    assert all(r["caption"] == gallery.clip_caption(int(r["clip"])) for r in rows)
    with page.expect_download() as download:
        page.locator("#explore-export-jsonl").click()
    lines = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == shown


def test_a_second_model_shows_its_map_and_the_comparison_table(page, served):
    from gramviz.app.explore_compare import comparison, second_gallery

    _, state, second = served
    page.locator("#explore-compare-path textarea, #explore-compare-path input").first.fill(str(second))
    page.locator("#explore-compare-load").click()
    page.locator("#explore-compare-info", has_text="A = world-small").wait_for(timeout=60_000)
    page.locator("#explore-map-b .js-plotly-plot").wait_for()
    model, name, gallery = state.snapshot()
    result = comparison(gallery, second_gallery(gallery, str(second), model, name), ("A", "B"))
    page.wait_for_function(f"() => ({IDS})('explore-compare-table').length > 0")
    assert page.evaluate(IDS, "explore-compare-table")[0] == result.rows[0]["id"]
    assert page.locator("#explore-disagree video").count() >= 1
    # a point of the ranks' scatter opens that clip's inspector (one alone at its place)
    places = [(r["rank_a"], r["rank_b"]) for r in result.rows]
    clip = next(r["clip"] for r, p in zip(result.rows, places) if places.count(p) == 1)
    page.locator("#explore-compare-scatter .js-plotly-plot").scroll_into_view_if_needed()
    page.mouse.click(*page.evaluate(ANY_POINT, ["explore-compare-scatter", clip]))
    page.locator("#explore-inspect-summary", has_text=gallery.meta.ids[clip]).wait_for()
    # the selection is linked: the second map greys the same clips as the first
    selected = page.evaluate("document.querySelector('#explore-map .js-plotly-plot').layout.meta.selected")
    assert page.evaluate("document.querySelector('#explore-map-b .js-plotly-plot').layout.meta.selected") == selected
