"""Write the figures and tables of docs/results.md from a finished study (`gramviz experiment`).

    python docs/make_results.py --study runs/study --out docs/results
    python docs/make_results.py --study runs/study --out docs/results --no-screenshots

Writes OUT/summary.json and OUT/table.md (copies of the study's), and for each variant the
base-versus-height figure of its first seed on the test split (OUT/base_height_<variant>.html
and a PNG screenshot taken with Playwright driving Chromium at /usr/bin/chromium).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

from gramviz import viz


def base_height_figures(study: Path, out: Path, split: str = "test") -> list[Path]:
    """One base-versus-height figure per variant (first seed), as offline HTML files."""
    summary = json.loads((study / "summary.json").read_text())
    pages = []
    for variant in summary["stats"]:
        seed = summary["seeds"][0]
        path = study / variant / f"seed-{seed}" / f"embeddings-{split}.pt"
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing; rerun `gramviz experiment` for variant {variant}")
        saved = torch.load(path, weights_only=True)
        first = {}
        for row, clip in enumerate(saved["caption_clip"].tolist()):
            first.setdefault(clip, row)
        clips = sorted(first)
        t = saved["text"][[first[c] for c in clips]].float()
        v, a = saved["video"][clips].float(), saved["audio"][clips].float()
        fig = viz.base_vs_height(t, v, a, max_negatives=3000)
        fig.update_layout(title=f"{variant} (seed {seed}, {split} split): base = |video ∧ audio|, "
                                f"height = distance of the text from their plane", width=900, height=560)
        page = out / f"base_height_{variant}.html"
        fig.write_html(page, include_plotlyjs="directory")  # plotly.min.js beside it: works offline
        pages.append(page)
    return pages


def screenshot(pages: list[Path]) -> None:
    """A PNG beside each HTML page, taken with Chromium."""
    from playwright.sync_api import sync_playwright

    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=flags)
        page = browser.new_page(viewport={"width": 920, "height": 580})
        for html in pages:
            page.goto(html.resolve().as_uri())
            page.wait_for_selector(".main-svg", timeout=30_000)
            page.wait_for_timeout(300)
            page.screenshot(path=str(html.with_suffix(".png")))
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--study", default="runs/study", help="the study's out_dir")
    parser.add_argument("--out", default="docs/results", help="where the figures and tables go")
    parser.add_argument("--no-screenshots", action="store_true", help="HTML only (no Chromium needed)")
    args = parser.parse_args()
    study, out = Path(args.study), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("summary.json", "table.md"):
        shutil.copy(study / name, out / name)
    pages = base_height_figures(study, out)
    if not args.no_screenshots:
        screenshot(pages)
    print(f"wrote {len(pages)} figures and the tables to {out}")


if __name__ == "__main__":
    main()
