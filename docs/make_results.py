"""Write the figures and tables of docs/results.md from a finished study (`gramviz experiment`).

    python docs/make_results.py --study runs/study --out docs/results
    python docs/make_results.py --study runs/study --out docs/results --no-screenshots
    python docs/make_results.py --study runs/study-long --out docs/results --name long

Writes OUT/summary.json and OUT/table.md (copies of the study's), and for each variant the
base-versus-height figure of its first seed on the test split (OUT/base_height_<variant>.html
and a PNG screenshot taken with Playwright driving Chromium at /usr/bin/chromium).
With ``--name NAME``: OUT/summary-NAME.json and OUT/table-NAME.md, the runs' collapse curves
(OUT/curves-NAME.json, read by notebook 03) and their figure (OUT/collapse-NAME.html and .png).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

from gramviz import viz
from gramviz.analysis import clip_tuples
from gramviz.study_curves import study_curves
from gramviz.viz.study import collapse_curves
from make_gallery import screenshot  # docs/make_gallery.py, beside this script


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
        tuples = clip_tuples({m: saved[m].float() for m in ("text", "video", "audio")}, saved["caption_clip"].tolist())
        t, v, a = tuples.text, tuples.video, tuples.audio
        fig = viz.base_vs_height(t, v, a, max_negatives=3000)
        fig.update_layout(title=f"{variant} (seed {seed}, {split} split): base = |video ∧ audio|, "
                                f"height = distance of the text from their plane", width=900, height=560)
        page = out / f"base_height_{variant}.html"
        fig.write_html(page, include_plotlyjs="directory")  # plotly.min.js beside it: works offline
        pages.append(page)
    return pages


def collapse_figure(study: Path, out: Path, name: str) -> Path:
    """The study's collapse curves as OUT/curves-NAME.json and an offline HTML figure."""
    variants = list(json.loads((study / "summary.json").read_text())["stats"])
    curves = study_curves(study, variants)
    (out / f"curves-{name}.json").write_text(json.dumps(curves, separators=(",", ":")) + "\n")
    fig = collapse_curves(curves, title=f"Leaving the flat region ({study.name})")
    fig.update_layout(width=900)
    page = out / f"collapse-{name}.html"
    fig.write_html(page, include_plotlyjs="directory")
    return page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--study", default="runs/study", help="the study's out_dir")
    parser.add_argument("--out", default="docs/results", help="where the figures and tables go")
    parser.add_argument("--name", default="", help="a second study: suffix its files and draw its collapse curves")
    parser.add_argument("--no-screenshots", action="store_true", help="HTML only (no Chromium needed)")
    args = parser.parse_args()
    study, out = Path(args.study), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = f"-{args.name}" if args.name else ""
    for name in ("summary.json", "table.md"):
        shutil.copy(study / name, out / name.replace(".", f"{suffix}.", 1))
    pages = [collapse_figure(study, out, args.name)] if args.name else base_height_figures(study, out)
    if not args.no_screenshots:
        size = (920, 1150) if args.name else (920, 580)
        screenshot(pages, viewport=size, full_page=False, settle_ms=300)
    print(f"wrote {len(pages)} figures and the tables to {out}")


if __name__ == "__main__":
    main()
