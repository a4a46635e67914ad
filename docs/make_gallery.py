"""Write the gallery of gramviz figures: one HTML file per figure and a PNG screenshot of each.

    python docs/make_gallery.py                    # docs/gallery/*.html and *.png
    python docs/make_gallery.py --no-screenshots   # HTML only (no Chromium needed)

The HTML files work offline: plotly.js is written once beside them. Screenshots are taken with
Playwright driving Chromium (/usr/bin/chromium). The alignment figures use embeddings made here:
each item has a latent vector shared by its text, video and audio, the three views start as noisy
copies of it and are optimised for 150 steps with GRAMLoss (the log of that run feeds the
training-curves figure).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

import gramviz
from gramviz import viz

MODALITIES = ("text", "video", "audio")
CLASSES = ("bouncing", "sliding", "growing", "spinning", "pulsing", "still")


def aligned_embeddings(n: int = 300, d: int = 32, steps: int = 150, log: Path | None = None, seed: int = 0):
    """Embeddings of n items whose modalities share a latent, optimised with GRAMLoss."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, len(CLASSES), (n,), generator=g)
    centres = torch.randn(len(CLASSES), d, generator=g)
    latent = centres[labels] + 0.8 * torch.randn(n, d, generator=g)
    params = {m: (latent + 1.2 * torch.randn(n, d, generator=g)).requires_grad_() for m in MODALITIES}
    before = {m: F.normalize(p.detach().clone(), dim=-1) for m, p in params.items()}
    loss_fn = gramviz.GRAMLoss()
    opt = torch.optim.Adam([*params.values(), *loss_fn.parameters()], lr=0.02)
    lines = []
    for step in range(steps):
        batch = torch.randperm(n, generator=g)[:128]
        emb = [F.normalize(params[m][batch], dim=-1) for m in MODALITIES]
        terms = loss_fn(*emb, return_terms=True)
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
        lines.append({"step": step, "loss": terms["loss"].item(), "temperature": terms["temperature"].item()})
        if step % 25 == 24 or step == steps - 1:
            with torch.no_grad():
                t, v, a = (F.normalize(params[m], dim=-1) for m in MODALITIES)
                metrics = gramviz.retrieval_metrics(gramviz.score_matrix(t, v, a), torch.arange(n))
            lines.append({"step": step, **{f"train/t2va/{k}": val for k, val in metrics.items()}})
    if log is not None:
        log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    after = {m: F.normalize(p.detach(), dim=-1) for m, p in params.items()}
    return before, after, [CLASSES[i] for i in labels]


def figures(log: Path) -> dict[str, object]:
    """Every figure of gramviz.viz, keyed by file name."""
    before, after, classes = aligned_embeddings(log=log)
    t, v, a = (after[m] for m in MODALITIES)
    captions = [f"item {i}: a {c} object" for i, c in enumerate(classes)]
    u = viz.vectors_from_angles(50, 65, 80)
    scores = gramviz.score_matrix(t[:40], v[:40], a[:40])
    return {
        "parallelotope": viz.parallelotope(*torch.tensor(u)),
        "parallelogram": viz.parallelotope(torch.tensor(u[0]), torch.tensor(u[1])),
        "gram_heatmap": viz.gram_heatmap(t[0], v[0], a[0]),
        "base_height": viz.base_height_figure(t[0], v[0], a[0]),
        "cosine_vs_volume": viz.cosine_vs_volume(cos_bc=0.3),
        "volume_heatmap": viz.volume_heatmap(gramviz.volume_matrix(t[:30], v[:30], a[:30]), row_labels=captions[:30]),
        "positives_vs_negatives": viz.positives_vs_negatives(t, v, a, measures=("volume", "cosine_pairwise", "cosine_fused")),
        "base_vs_height": viz.base_vs_height(t, v, a),
        "embedding_map": viz.embedding_map(after, method="umap", color=classes, hover=captions, seed=0),
        "modality_gap": viz.modality_gap(before, after, names=("before optimisation", "after")),
        "measure_comparison": viz.measure_comparison(t[:40], v[:40], a[:40], query=3, labels=captions[:40], correct=3),
        "retrieval_results": viz.retrieval_results(scores[3], captions[:40], correct=3),
        "training_curves": viz.training_curves(log),
    }


def screenshot(pages: list[Path], viewport: tuple[int, int] = (1100, 700), full_page: bool = True,
               settle_ms: int = 800) -> None:
    """A PNG beside each HTML page, taken with Playwright driving Chromium at /usr/bin/chromium."""
    from playwright.sync_api import sync_playwright

    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=flags)
        page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        for html in pages:
            page.goto(html.resolve().as_uri())
            page.wait_for_selector(".main-svg", timeout=30_000)
            page.wait_for_timeout(settle_ms)
            page.screenshot(path=str(html.with_suffix(".png")), full_page=full_page)
        browser.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "gallery")
    parser.add_argument("--no-screenshots", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    pages = []
    with tempfile.TemporaryDirectory() as tmp:
        built = figures(Path(tmp) / "training_log.jsonl")
    for name, fig in built.items():
        path = args.out / f"{name}.html"
        fig.write_html(path, include_plotlyjs="directory", full_html=True)
        pages.append(path)
    if not args.no_screenshots:
        screenshot(pages)
    print(f"wrote {len(pages)} figures to {args.out}")


if __name__ == "__main__":
    main()
