"""Screenshots of the browser demo's tabs after a realistic interaction, for the README.

    python docs/make_screenshots.py                      # starts app.py on data/gallery, writes docs/screenshots/*.png
    python docs/make_screenshots.py --url http://127.0.0.1:7860/   # a running app

Playwright drives Debian's Chromium (/usr/bin/chromium). Score: a gallery clip with its own
caption; Search: a caption, GRAM beside pairwise cosine; Explore: the map coloured by height with
a box dragged over it (the table and the clip strip), one clip's inspector, and the two-model
comparison against ``--compare`` (default runs/study/pairwise/seed-0/final, written by
``make compare-example``; skipped with a note when it does not exist); Model: the card.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(gallery: Path, port: int, extra: list[str] | None = None, timeout: float = 300):
    """Start ``app.py`` in a subprocess and yield its URL once it serves; stop it after."""
    cmd = [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--gallery", str(gallery), *(extra or [])]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + timeout
        for line in proc.stdout:
            if "serving http" in line:
                print(line.strip(), flush=True)
                break
            if time.time() > deadline:
                raise TimeoutError("app.py did not start in time")
        else:
            raise RuntimeError(f"app.py exited with status {proc.wait()}")
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(30)


def first_clip(gallery: Path) -> tuple[Path, str]:
    record = json.loads((gallery / "captions.jsonl").read_text().splitlines()[0])
    return gallery / record["video"], record["captions"][0]


def shoot(url: str, gallery: Path, out: Path, width: int = 1280, compare: Path | None = None) -> list[Path]:
    """Interact with each tab and save ``out/{score,search,explore,explore-inspector,explore-compare,model}.png``."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    video, caption = first_clip(gallery)
    saved = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.goto(url)
        page.locator("#score-video input[type=file]").set_input_files(str(video))
        page.locator("#score-text textarea").fill(caption)
        page.locator("#score-button").click()
        page.locator("#score-summary", has_text="GRAM volume").wait_for(timeout=60_000)
        page.locator("#score-base-height .js-plotly-plot").wait_for(timeout=60_000)
        page.wait_for_timeout(800)
        saved.append(_save(page, out / "score.png"))
        page.get_by_role("tab", name="Search").click()
        page.get_by_label("pairwise cosine").check()
        page.locator("#search-text textarea").fill(caption)
        page.locator("#search-button").click()
        page.locator("#search-videos video").first.wait_for(timeout=60_000)
        page.locator("#search-other-bars .js-plotly-plot").wait_for(timeout=60_000)
        page.wait_for_timeout(1500)
        saved.append(_save(page, out / "search.png", height=1350))
        saved += shoot_explore(page, out, compare)
        page.get_by_role("tab", name="Model").click()
        page.locator("#model-card", has_text="parameters").wait_for(timeout=30_000)
        saved.append(_save(page, out / "model.png"))
        browser.close()
    return saved


def shoot_explore(page, out: Path, compare: Path | None) -> list[Path]:
    """The Explore dashboard: a box dragged over the middle of the map coloured by height (table and
    strip), the inspector of the first selected clip, and the comparison with ``compare``."""
    page.get_by_role("tab", name="Explore").click()
    page.locator("#explore-map .js-plotly-plot").wait_for(timeout=120_000)
    page.locator("#explore-colour").get_by_text("height", exact=True).click()
    page.wait_for_function("() => document.querySelector('#explore-map .js-plotly-plot').layout.meta.color_name"
                           " === 'height'", timeout=60_000)
    area = page.locator("#explore-map .nsewdrag").first.bounding_box()
    page.mouse.move(area["x"] + area["width"] * 0.42, area["y"] + area["height"] * 0.35)
    page.mouse.down()
    page.mouse.move(area["x"] + area["width"] * 0.58, area["y"] + area["height"] * 0.65, steps=12)
    page.mouse.up()
    page.locator("#explore-selection-info", has_text="selected on the map").wait_for(timeout=60_000)
    page.locator("#explore-strip video").first.wait_for(timeout=60_000)
    page.wait_for_timeout(1500)
    saved = [_save(page, out / "explore.png", height=1650)]
    page.locator('#explore-table [data-testid="cell-0-0"]').click()
    page.locator("#explore-neighbours table").wait_for(timeout=60_000)
    page.locator("#explore-parallelotope .js-plotly-plot").wait_for(timeout=60_000)
    page.wait_for_timeout(1500)
    saved.append(_save(page, out / "explore-inspector.png", height=1500, top=_top(page, "#explore-inspect-summary")))
    if compare is None or not compare.exists():
        print(f"no second model at {compare}: explore-compare.png not written (make compare-example)", flush=True)
        return saved
    shown = compare.resolve().relative_to(ROOT) if compare.resolve().is_relative_to(ROOT) else compare
    page.locator("#explore-compare-path textarea, #explore-compare-path input").first.fill(str(shown))
    page.locator("#explore-compare-load").click()
    page.locator("#explore-compare-info", has_text="A = ").wait_for(timeout=300_000)
    page.locator("#explore-map-b .js-plotly-plot").wait_for(timeout=60_000)
    page.locator("#explore-disagree video").first.wait_for(timeout=60_000)
    page.wait_for_timeout(1500)
    saved.append(_save(page, out / "explore-compare.png", height=750, top=_top(page, "#explore-map") - 10))
    saved.append(_save(page, out / "explore-compare-table.png", height=1500,
                       top=_top(page, "#explore-compare-info") - 60))
    return saved


def _top(page, selector: str) -> int:
    """Where an element starts on the page, in px from the top."""
    return int(page.evaluate(f"document.querySelector('{selector}').getBoundingClientRect().top + window.scrollY"))


def _save(page, path: Path, height: int = 1400, top: int = 0) -> Path:
    """A full-page screenshot from ``top`` cut at ``height`` px (the top of a long page says what it is)."""
    full = page.evaluate("document.documentElement.scrollHeight")
    page.screenshot(path=str(path), full_page=True,
                    clip={"x": 0, "y": top, "width": page.viewport_size["width"], "height": min(full - top, height)})
    from PIL import Image  # a 256-colour palette: a third of the bytes, the same look for a UI

    Image.open(path).convert("RGB").quantize(colors=256, dither=Image.Dither.NONE).save(path, optimize=True)
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)", flush=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running app (default: start app.py here)")
    parser.add_argument("--gallery", default=str(ROOT / "data" / "gallery"), help="the gallery folder the app uses")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--compare", default=str(ROOT / "runs" / "study" / "pairwise" / "seed-0" / "final"),
                        help="the second model of the Explore tab's comparison (default: make compare-example's)")
    args = parser.parse_args(argv)
    gallery, compare = Path(args.gallery), Path(args.compare)
    if args.url:
        shoot(args.url, gallery, Path(args.out), compare=compare)
        return 0
    with running_app(gallery, free_port()) as url:
        shoot(url, gallery, Path(args.out), compare=compare)
    return 0


if __name__ == "__main__":
    sys.exit(main())
