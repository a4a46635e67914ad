"""Screenshots of the browser demo's tabs after a realistic interaction, for the README.

    python docs/make_screenshots.py                      # starts app.py on data/gallery, writes docs/screenshots/*.png
    python docs/make_screenshots.py --url http://127.0.0.1:7860/   # a running app

Playwright drives Debian's Chromium (/usr/bin/chromium). Score: a gallery clip with its own
caption; Search: a caption, GRAM beside pairwise cosine; Explore: the map; Model: the card.
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


def shoot(url: str, gallery: Path, out: Path, width: int = 1280) -> list[Path]:
    """Interact with each tab and save ``out/{score,search,explore,model}.png``."""
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
        page.get_by_role("tab", name="Explore").click()
        page.locator("#explore-map .js-plotly-plot").wait_for(timeout=120_000)
        page.wait_for_timeout(800)
        saved.append(_save(page, out / "explore.png"))
        page.get_by_role("tab", name="Model").click()
        page.locator("#model-card", has_text="parameters").wait_for(timeout=30_000)
        saved.append(_save(page, out / "model.png"))
        browser.close()
    return saved


def _save(page, path: Path, height: int = 1400) -> Path:
    """A full-page screenshot cut at ``height`` px (the top of a long page says what it is)."""
    full = page.evaluate("document.documentElement.scrollHeight")
    page.screenshot(path=str(path), full_page=True,
                    clip={"x": 0, "y": 0, "width": page.viewport_size["width"], "height": min(full, height)})
    from PIL import Image  # a 256-colour palette: a third of the bytes, the same look for a UI

    Image.open(path).convert("RGB").quantize(colors=256, dither=Image.Dither.NONE).save(path, optimize=True)
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)", flush=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running app (default: start app.py here)")
    parser.add_argument("--gallery", default=str(ROOT / "data" / "gallery"), help="the gallery folder the app uses")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = parser.parse_args(argv)
    gallery = Path(args.gallery)
    if args.url:
        shoot(args.url, gallery, Path(args.out))
        return 0
    with running_app(gallery, free_port()) as url:
        shoot(url, gallery, Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
