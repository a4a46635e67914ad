"""One query's rankings as an HTML table: what it lists equals what gramviz computes, every cell
says something, captions are escaped and numbers read like numbers."""

import html
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gramviz
from gramviz.scores import get_measure
from gramviz.viz import HTMLTable, measure_comparison, ranking_table


def aligned(n=12, d=16, noise=0.6, seed=0):
    """text, video, audio from a shared latent per item: matching tuples are aligned."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, d, generator=g, dtype=torch.float64)
    return [F.normalize(z + noise * torch.randn(n, d, generator=g, dtype=torch.float64), dim=-1) for _ in range(3)]


def _cells(table: HTMLTable) -> list[list[str]]:
    """The text of each body row's cells, tags stripped and entities decoded."""
    body = table.html.split("<tbody>")[1]
    return [[html.unescape(re.sub(r"<[^>]+>", " ", c)).split() for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", body)]


def test_ranking_table_lists_each_measures_top_k_with_its_values():
    t, v, a = aligned(n=20, noise=1.0)
    measures = ("volume", "cosine_pairwise", "symile")
    table = ranking_table(t, v, a, query=4, k=5, measures=measures, labels=[f"clip{i}" for i in range(20)])
    assert isinstance(table, HTMLTable) and table._repr_html_() == table.html == str(table)
    rows = _cells(table)
    assert len(rows) == 5 and all(len(r) == 1 + len(measures) for r in rows)
    assert all(cell for row in rows for cell in row)  # no empty cell
    for p, m in enumerate(measures, start=1):
        scores = gramviz.score_matrix(t, v, a, measure=m).numpy()[4]
        best = list(np.argsort(-scores)[:5])
        assert table.meta["topk"][m] == best
        values = get_measure(m).values(scores[best])
        for rank, (j, value) in enumerate(zip(best, values)):
            label, shown = rows[rank][p]
            assert label == f"clip{j}" and float(shown) == pytest.approx(value, rel=5e-3, abs=1e-6)
    assert [r[0] for r in rows] == [[str(i)] for i in range(1, 6)]
    for header in ("GRAM volume (lower = more aligned)", "pairwise cosine (higher = more aligned)"):
        assert f">{header}</th>" in table.html  # whole, not cut


def test_ranking_table_escapes_captions_shades_the_correct_one_and_formats_zero():
    e = torch.eye(4, dtype=torch.float64)
    labels = ["<b>bold</b> & co", "b", "c", "d"]
    table = ranking_table(e, e, e, query=0, k=2, measures=("volume",), labels=labels)
    assert "<b>bold</b> &" not in table.html and "&lt;b&gt;bold&lt;/b&gt; &amp; co" in table.html
    first = table.html.split("<tbody>")[1].split("</tr>")[0]
    assert "background-color:#F5D6C0" in first  # query 0's own item, ranked first, is shaded
    assert _cells(table)[0][1][-1] == "0"  # a collinear tuple: volume 0, not 1e-17
    long = "word " * 40
    table = ranking_table(e, e, e, k=1, measures=("volume",), labels=[long] * 4)
    assert "\u2026" in table.html and f'title="{html.escape(long)}"' in table.html  # shortened, whole on hover


def test_ranking_table_and_measure_comparison_reject_bad_input():
    t, v, a = aligned(n=6)
    for make in (ranking_table, measure_comparison):
        with pytest.raises(ValueError, match="query"):
            make(t, v, a, query=6)
        with pytest.raises(ValueError, match="k must be"):
            make(t, v, a, k=0)
        with pytest.raises(ValueError, match="labels"):
            make(t, v, a, labels=["a"])
        with pytest.raises(ValueError, match="measures is empty"):
            make(t, v, a, measures=())


def test_measure_comparison_is_a_heatmap_with_whole_labels():
    t, v, a = aligned(n=10)
    fig = measure_comparison(t, v, a)
    heat = fig.data[0]
    names = [get_measure(m).title for m in gramviz.MEASURES]
    assert list(heat.x) == names and list(heat.y) == names and "pairwise cosine" in names
    assert fig.layout.yaxis.automargin and fig.layout.xaxis.automargin  # labels get the room they need
    assert all(re.fullmatch(r"-?[0-9.]+(e[+-][0-9]+)?", x) for row in heat.text for x in row)
