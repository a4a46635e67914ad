"""Is a figure readable? Render it in Chromium at a given width and check its text from the SVG:
no two text boxes overlap (titles, subtitles, axis titles, tick labels, legend entries, colour-bar
titles, annotations) and none is clipped by the figure's edge.

    python tests/readability.py                 # every figure of FIGURES at 900 and 600 px
    python tests/readability.py base_vs_height  # one figure

`FIGURES` names every public figure function of `gramviz.viz` on typical inputs: a new figure is
checked by adding one line there (tests/test_viz_readability.py runs them all at both widths).
"""

from __future__ import annotations

import functools
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from web import CHROMIUM
from web import CHROMIUM_ARGS as FLAGS

WIDTHS = {"notebook": 900, "app column": 600}
TOLERANCE = 1.5  # px: boxes that touch are fine, boxes that cross are not

# text boxes of the rendered figure (text elements of Plotly's SVG layers), and the figure's box
_BOXES_JS = """() => {
  const root = document.querySelector('.js-plotly-plot');
  const outer = root.querySelector('svg.main-svg').getBoundingClientRect();
  const texts = [];
  root.querySelectorAll('svg.main-svg text').forEach((t) => {
    const text = t.textContent.trim();
    const r = t.getBoundingClientRect();
    const style = getComputedStyle(t);
    if (!text || r.width < 1 || r.height < 1 || style.visibility === 'hidden' || style.display === 'none'
        || parseFloat(style.opacity) === 0 || parseFloat(style.fillOpacity) === 0) return;
    const owner = t.closest('g[class]');
    texts.push({text, kind: (t.getAttribute('class') || '') + ' in ' + (owner ? owner.getAttribute('class') : ''),
                x0: r.left, y0: r.top, x1: r.right, y1: r.bottom});
  });
  return {outer: {x0: outer.left, y0: outer.top, x1: outer.right, y1: outer.bottom}, texts};
}"""


def _overlap(a: dict, b: dict) -> bool:
    return (min(a["x1"], b["x1"]) - max(a["x0"], b["x0"]) > TOLERANCE
            and min(a["y1"], b["y1"]) - max(a["y0"], b["y0"]) > TOLERANCE)


def problems(boxes: dict, width: int) -> list[str]:
    """What is unreadable in a rendered figure: overlapping and clipped text boxes."""
    outer, texts = boxes["outer"], boxes["texts"]
    out = []
    if outer["x1"] - outer["x0"] > width + TOLERANCE:
        out.append(f"the figure is {outer['x1'] - outer['x0']:.0f} px wide in a {width} px column")
    for t in texts:
        cut = [side for side, bad in (("left", t["x0"] < outer["x0"] - TOLERANCE), ("right", t["x1"] > outer["x1"] + TOLERANCE),
                                      ("top", t["y0"] < outer["y0"] - TOLERANCE), ("bottom", t["y1"] > outer["y1"] + TOLERANCE)) if bad]
        if cut:
            out.append(f"clipped at the {'/'.join(cut)} edge: {t['text'][:60]!r}")
    for i, a in enumerate(texts):
        for b in texts[i + 1:]:
            if _overlap(a, b):
                out.append(f"overlap: {a['text'][:40]!r} and {b['text'][:40]!r}")
    return out


class Renderer:
    """One Chromium page with plotly.js loaded once: `check(fig, width)` -> the problems of that
    figure drawn in a ``width`` px wide container (its own height, or 450 px)."""

    def __init__(self) -> None:
        import plotly.offline
        from playwright.sync_api import sync_playwright

        self._tmp = tempfile.TemporaryDirectory(prefix="gramviz-readability-")
        page = Path(self._tmp.name) / "page.html"
        (page.parent / "plotly.min.js").write_text(plotly.offline.get_plotlyjs(), encoding="utf-8")
        page.write_text('<html><head><meta charset="utf-8"><script src="plotly.min.js"></script></head>'
                        '<body style="margin:0"><div id="fig"></div></body></html>', encoding="utf-8")
        self._play = sync_playwright().start()
        self._browser = self._play.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        self._page = self._browser.new_page(viewport={"width": 1400, "height": 1200})
        self._page.goto(page.as_uri())
        self._page.wait_for_function("() => window.Plotly !== undefined")

    def boxes(self, fig, width: int) -> dict:
        import json

        spec = json.loads(fig.to_json())
        height = fig.layout.height or 450
        self._page.evaluate("""async ([spec, width, height]) => {
            const div = document.getElementById('fig');
            Plotly.purge(div);
            div.style.width = width + 'px';
            div.style.height = height + 'px';
            await Plotly.newPlot(div, spec.data, spec.layout, {responsive: false});
        }""", [spec, width, height])
        self._page.wait_for_timeout(100)
        return self._page.evaluate(_BOXES_JS)

    def check(self, fig, width: int) -> list[str]:
        return problems(self.boxes(fig, width), width)

    def close(self) -> None:
        self._browser.close()
        self._play.stop()
        self._tmp.cleanup()


# ----------------------------------------------------------------------------- typical inputs

@functools.lru_cache(maxsize=1)
def sample() -> dict:
    """Embeddings of 120 items whose text, video and audio share a latent (6 classes), plus a
    training log and the study summary the docs use."""
    g = torch.Generator().manual_seed(0)
    classes = ["bouncing ball", "sliding cube", "growing star", "spinning disc", "pulsing ring", "still triangle"]
    labels = torch.randint(0, len(classes), (120,), generator=g)
    latent = torch.randn(len(classes), 24, generator=g)[labels] + 0.6 * torch.randn(120, 24, generator=g)
    emb = {m: F.normalize(latent + 0.8 * torch.randn(120, 24, generator=g), dim=-1) for m in ("text", "video", "audio")}
    before = {m: F.normalize(torch.randn(120, 24, generator=g), dim=-1) for m in emb}
    log = [{"step": s, "epoch": s / 50, "loss": 4.0 / (1 + s / 20), "temperature": 0.07 + 0.0001 * s,
            "lr": 1e-3 * min(1, s / 10), "grad_norm": 1.0 / (1 + s / 50)} for s in range(1, 201)]
    log += [{"step": 50 * e, "epoch": e, "val/t2va/R@1": 0.2 * e, "val/v2a/R@1": 0.05 * e, "val/cls/top1": 0.2 * e}
            for e in range(1, 5)]
    history = [{"epoch": e, "positives": torch.rand(60, generator=g) * (1 - 0.2 * e),
                "negatives": 0.8 + 0.2 * torch.rand(300, generator=g)} for e in range(4)]
    captions = [f"a {classes[int(c)]} on the grass while a dog barks ({i})" for i, c in enumerate(labels)]
    return {"emb": emb, "before": before, "classes": [classes[int(c)] for c in labels], "captions": captions,
            "log": log, "history": history, "labels": labels}


def _summary() -> dict:
    import json

    return json.loads((Path(__file__).resolve().parents[1] / "docs" / "results" / "summary.json").read_text())


def _viz():
    from gramviz import viz

    return viz


def _figures() -> dict[str, Callable[[], object]]:
    import plotly.graph_objects as go

    import gramviz
    from gramviz.viz.classification import confusion_heatmap
    from gramviz.viz.lessons import (
        temperature_softmax,
        volume_concentration,
        volume_separation,
    )
    from gramviz.viz.study import study_comparison

    viz, s = _viz(), sample()
    t, v, a = (s["emb"][m] for m in ("text", "video", "audio"))
    u = torch.tensor(viz.vectors_from_angles(50, 65, 80))
    flat = torch.tensor(viz.vectors_from_angles(60, 60, 120))  # coplanar: volume 0
    counts = torch.bincount(s["labels"] * 6 + torch.randint(0, 6, (120,), generator=torch.Generator().manual_seed(1)),
                            minlength=36).view(6, 6)
    return {  # one line per public figure function
        "parallelotope": lambda: viz.parallelotope(*u),
        "parallelotope (coplanar)": lambda: viz.parallelotope(*flat),
        "parallelogram": lambda: viz.parallelotope(u[0], u[1]),
        "gram_heatmap": lambda: viz.gram_heatmap(t[0], v[0], a[0]),
        "base_height_figure": lambda: viz.base_height_figure(t[0], v[0], a[0]),
        "cosine_vs_volume": lambda: viz.cosine_vs_volume(cos_bc=0.3),
        "explorer": lambda: go.Figure(viz.explorer().children[-1]),  # the widget's figure
        "explorer (flat)": lambda: go.Figure(viz.explorer(angles=(60, 60, 120)).children[-1]),
        "parallelotope (notebook title)": lambda: viz.parallelotope(
            *flat, title="Coplanar: volume 0, yet video and audio are orthogonal"),
        "base_height_figure (coplanar)": lambda: viz.base_height_figure(*flat),
        "gram_heatmap (5 vectors)": lambda: viz.gram_heatmap(t[0], v[0], a[0], t[1], v[1]),
        "volume_heatmap": lambda: viz.volume_heatmap(gramviz.volume_matrix(t[:20], v[:20], a[:20]),
                                                     row_labels=s["captions"][:20]),
        "positives_vs_negatives": lambda: viz.positives_vs_negatives(t, v, a, measures=("volume", "cosine_pairwise",
                                                                                        "cosine_fused")),
        "base_vs_height": lambda: viz.base_vs_height(t, v, a),
        "base_vs_height (360 px high)": lambda: viz.base_vs_height(t, v, a).update_layout(height=360),
        "embedding_map": lambda: viz.embedding_map(s["emb"], method="pca", hover=s["captions"]),
        "embedding_map (classes)": lambda: viz.embedding_map(s["emb"], method="pca", color=s["classes"]),
        "embedding_map (20 classes)": lambda: viz.embedding_map(s["emb"], method="pca",
                                                                color=[f"class {i % 20}" for i in range(120)]),
        "embedding_map (colour and symbol)": lambda: viz.embedding_map(
            s["emb"], method="pca", color=[f"shape {i % 4}" for i in range(120)], symbol=[f"motion {i % 5}" for i in range(120)]),
        "modality_gap": lambda: viz.modality_gap(s["before"], s["emb"], names=("before training", "after")),
        "measure_comparison": lambda: viz.measure_comparison(t[:40], v[:40], a[:40], query=3, labels=s["captions"][:40],
                                                             correct=3),
        "retrieval_results": lambda: viz.retrieval_results(gramviz.score_matrix(t[:40], v[:40], a[:40])[3],
                                                           s["captions"][:40], correct=3),
        "training_curves": lambda: viz.training_curves(s["log"]),
        "confusion_heatmap": lambda: confusion_heatmap(counts, [c for c in dict.fromkeys(s["classes"])]),
        "volume_concentration": lambda: volume_concentration(dims=(3, 16, 128, 512), n=300),
        "temperature_softmax": lambda: temperature_softmax(torch.tensor([0.2, 0.5, 0.9, 0.95]), target=0),
        "volume_separation": lambda: volume_separation(s["history"]),
        "study_comparison": lambda: study_comparison(_summary()),
        "selection_map (classes, selection)": lambda: viz.selection_map(
            _map(), color=s["classes"], selected=list(range(0, 120, 4)), hover=s["captions"]),
        "selection_map (height)": lambda: viz.selection_map(_map(), color=_metrics().values["height"],
                                                            color_name="height", dragmode="lasso"),
        "clip_context": lambda: viz.clip_context(_metrics().values["base"], _metrics().values["height"], 7,
                                                 ids=_metrics().ids),
        "clip_context (no caption)": lambda: viz.clip_context(
            _metrics().values["base"], torch.where(torch.arange(120) == 7, float("nan"), _metrics().values["height"]),
            7, ids=_metrics().ids),
        "comparison_scatter": lambda: viz.comparison_scatter(_comparison()),
    }


@functools.lru_cache(maxsize=1)
def _metrics():
    from gramviz.exploration import clip_metrics

    s = sample()
    return clip_metrics(s["emb"], [f"clip-{i:03d}" for i in range(120)], captions=s["captions"], classes=s["classes"])


@functools.lru_cache(maxsize=1)
def _map() -> dict:
    return _viz().project(sample()["emb"], method="pca")


def _comparison():
    from gramviz.exploration import clip_metrics, compare_metrics

    before = clip_metrics(sample()["before"], _metrics().ids, captions=sample()["captions"])
    return compare_metrics(_metrics(), before, names=("trained", "untrained"))


def figures() -> dict[str, Callable[[], object]]:
    """Name -> a function drawing that figure on typical inputs (built on first use)."""
    return _figures()


def main(names: list[str]) -> int:
    known = figures()
    renderer, bad = Renderer(), 0
    try:
        for name in names or list(known):
            fig = known[name]()
            for where, width in WIDTHS.items():
                found = renderer.check(fig, width)
                bad += bool(found)
                print(f"{name} at {width} px ({where}): " + ("ok" if not found else "\n  " + "\n  ".join(found)))
    finally:
        renderer.close()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main(sys.argv[1:]))
