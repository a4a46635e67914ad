"""Alignment and ranking figures: what is drawn equals what gramviz computes."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

import gramviz
from gramviz.viz._style import NEGATIVE, POSITIVE, number
from gramviz.viz.alignment import base_vs_height, positives_vs_negatives, roc_auc, volume_heatmap
from gramviz.viz.ranking import measure_comparison, retrieval_results


def aligned(n=12, d=16, noise=0.6, seed=0):
    """text, video, audio from a shared latent per item: matching tuples are aligned."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, d, generator=g, dtype=torch.float64)
    return [F.normalize(z + noise * torch.randn(n, d, generator=g, dtype=torch.float64), dim=-1) for _ in range(3)]


def test_heatmap_values_and_diagonal_positives():
    t, v, a = aligned()
    vm = gramviz.volume_matrix(t, v, a)
    fig = volume_heatmap(vm, row_labels=[f"caption {i} " * 10 for i in range(12)])
    heat, marks = fig.data
    np.testing.assert_array_equal(np.asarray(heat.z), vm.numpy())
    assert list(marks.x) == list(range(12)) and list(marks.y) == list(range(12))
    assert fig.layout.meta["positives"] == [[i, i] for i in range(12)]
    assert len(heat.customdata[0][0]) < 200  # truncated captions on hover
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text


def test_heatmap_positives_as_indices_or_mask():
    z = np.arange(12.0).reshape(3, 4)
    fig = volume_heatmap(z, positives=[3, 0, 2], measure="cosine_pairwise")
    assert sorted(zip(fig.data[1].y, fig.data[1].x)) == [(0, 3), (1, 0), (2, 2)]
    mask = np.zeros((3, 4), dtype=bool)
    mask[1, 1] = mask[1, 2] = True
    assert volume_heatmap(torch.tensor(z), positives=mask).layout.meta["positives"] == [[1, 1], [1, 2]]
    assert len(volume_heatmap(z).data[1].x) == 0  # not square: no default positives


@pytest.mark.parametrize(
    "bad, kwargs, error",
    [
        (np.ones(3), {}, ValueError),
        (np.array([[np.nan, 1.0]]), {}, ValueError),
        (np.ones((2, 2)), {"measure": "dot"}, ValueError),
        (np.ones((2, 2)), {"positives": [0, 5]}, ValueError),
        (np.ones((2, 2)), {"row_labels": ["a"]}, ValueError),
        ("abc", {}, TypeError),
    ],
)
def test_heatmap_rejects_bad_input(bad, kwargs, error):
    with pytest.raises(error):
        volume_heatmap(bad, **kwargs)


def test_auc_equals_sklearn_for_each_measure():
    t, v, a = aligned(n=15, noise=1.2)
    measures = ("volume", "cosine_pairwise", "cosine_fused", "symile", "triangle")
    fig = positives_vs_negatives(t, v, a, measures=measures)
    off = ~np.eye(15, dtype=bool)
    for c, m in enumerate(measures):
        s = gramviz.score_matrix(t, v, a, measure=m).numpy()
        expected = roc_auc_score(np.concatenate([np.ones(15), np.zeros(off.sum())]), np.concatenate([np.diag(s), s[off]]))
        assert fig.layout.meta["auc"][m] == pytest.approx(expected, abs=1e-12)
        assert f"AUC {number(expected)}" in fig.layout.annotations[c].text
    # the histograms of each group are normalised and volume is drawn as volume (>= 0)
    bars = [tr for tr in fig.data if tr.xaxis in ("x", None)]
    assert all(sum(b.y) == pytest.approx(1.0) for b in bars)
    assert min(bars[0].x) > 0


def test_positives_vs_negatives_panels_keep_their_width_and_the_key_sits_at_the_foot():
    t, v, a = aligned()
    three = positives_vs_negatives(t, v, a, measures=("volume", "cosine_pairwise", "cosine_fused"))
    domains = [three.layout[f"xaxis{i if i > 1 else ''}"].domain for i in (1, 2, 3)]
    assert all(tuple(d) == (0.0, 1.0) for d in domains)  # more than two measures: stacked, full width
    two = positives_vs_negatives(t, v, a)
    assert two.layout.xaxis.domain[1] < two.layout.xaxis2.domain[0]  # two: side by side
    for fig in (three, two):
        assert fig.layout.legend.yref == "container" and fig.layout.legend.y == 0  # below every axis title
        assert "<br>" in fig.layout.title.text  # a short title line, then the explanation


def test_roc_auc_with_ties_matches_sklearn():
    rng = np.random.default_rng(0)
    pos, neg = rng.integers(0, 4, 30).astype(float), rng.integers(0, 4, 50).astype(float)
    expected = roc_auc_score(np.r_[np.ones(30), np.zeros(50)], np.r_[pos, neg])
    assert roc_auc(pos, neg) == pytest.approx(expected, abs=1e-12)


def test_positives_vs_negatives_rejects_bad_input():
    t, v, a = aligned()
    with pytest.raises(ValueError, match="unknown measure"):
        positives_vs_negatives(t, v, a, measures=("volume", "cosine"))
    with pytest.raises(ValueError, match="same number of rows"):
        positives_vs_negatives(t[:5], v, a)
    with pytest.raises(ValueError, match="at least one other"):
        positives_vs_negatives(t)
    with pytest.raises(ValueError):
        positives_vs_negatives(t[:1], v[:1], a[:1])


def test_base_vs_height_points_are_the_decomposition():
    t, v, a = aligned(n=10)
    base, height = (x.numpy() for x in gramviz.base_height_matrix(t, v, a))
    fig = base_vs_height(t, v, a)
    traces = {tr.name: tr for tr in fig.data if tr.mode == "markers"}
    pos, neg = traces["matching"], traces["non-matching"]
    np.testing.assert_allclose(pos.x, base, rtol=1e-12)
    np.testing.assert_allclose(pos.y, np.diag(height), rtol=1e-12)
    ij = np.asarray(neg.customdata)
    assert len(ij) == 90 and (ij[:, 0] != ij[:, 1]).all()
    np.testing.assert_allclose(neg.x, base[ij[:, 1]], rtol=1e-12)
    np.testing.assert_allclose(neg.y, height[ij[:, 0], ij[:, 1]], rtol=1e-12)
    assert "sample" not in fig.layout.title.text


def test_base_vs_height_samples_negatives_with_a_note():
    t, v, a = aligned(n=40)
    fig = base_vs_height(t, v, a, max_negatives=100, seed=3)
    neg = next(tr for tr in fig.data if tr.name == "non-matching")
    assert len(neg.x) == 100 and len({tuple(p) for p in np.asarray(neg.customdata)}) == 100
    assert "100 of 1,560 negatives" in fig.layout.title.text
    again = next(tr for tr in base_vs_height(t, v, a, max_negatives=100, seed=3).data if tr.name == "non-matching")
    np.testing.assert_array_equal(neg.customdata, again.customdata)


def test_base_vs_height_axes_include_the_origin_and_name_the_modalities():
    t, v, a = aligned(n=10)
    fig = base_vs_height(t, v, a)
    for axis in (fig.layout.xaxis, fig.layout.yaxis):
        assert axis.range[0] <= 0 and axis.range[1] >= 1  # the origin and the whole unit square
    assert fig.layout.xaxis.title.text == "base: area of video and audio"
    assert fig.layout.yaxis.title.text.replace("<br>", " ") == "height: text's distance from their plane"
    named = base_vs_height(t, v, a, labels=("caption", "video", "audio"))
    assert named.layout.yaxis.title.text.startswith("height: caption's distance")
    assert base_vs_height(t, v, labels=("caption", "audio")).layout.xaxis.title.text == "base: length of audio"
    with pytest.raises(ValueError, match="labels"):
        base_vs_height(t, v, a, labels=("caption", "video"))


def test_base_vs_height_equal_volume_labels_are_round_and_spread_out():
    t, v, a = aligned(n=10)
    fig = base_vs_height(t, v, a)
    labels = [an for an in fig.layout.annotations if an.text.startswith("V=")]
    assert [an.text for an in labels] == [f"V={number(x)}" for x in (0.2, 0.4, 0.6, 0.8)]
    xs = sorted(an.x for an in labels)
    assert min(np.diff(xs)) >= 0.15  # a fifth of the axis apart: they cannot pile up
    curves = [tr for tr in fig.data if tr.name == "equal volume"]
    for tr, level in zip(curves, (0.2, 0.4, 0.6, 0.8)):
        np.testing.assert_allclose(np.asarray(tr.x) * np.asarray(tr.y), level, rtol=1e-12)


def test_heatmap_ticks_never_crowd():
    t, v, a = aligned(n=20)
    fig = volume_heatmap(gramviz.volume_matrix(t, v, a), row_labels=[f"caption {i}" for i in range(20)])
    assert len(fig.layout.xaxis.tickvals) <= 10 and len(fig.layout.yaxis.tickvals) <= 12
    assert fig.layout.yaxis.ticktext[1] == f"caption {fig.layout.yaxis.tickvals[1]}"


def test_measure_comparison_topk_and_agreement():
    t, v, a = aligned(n=20, noise=1.0)
    measures = ("volume", "cosine_pairwise", "cosine_fused", "symile")
    fig = measure_comparison(t, v, a, query=4, k=5, measures=measures, labels=[f"clip {i}" for i in range(20)])
    scores = {m: gramviz.score_matrix(t, v, a, measure=m).numpy() for m in measures}
    for m in measures:
        assert fig.layout.meta["topk"][m] == list(np.argsort(-scores[m][4])[:5])
    agreement = np.asarray(fig.layout.meta["agreement"])
    for p, ma in enumerate(measures):
        for q, mb in enumerate(measures):
            rho = np.mean([spearmanr(scores[ma][i], scores[mb][i])[0] for i in range(20)])
            assert agreement[p, q] == pytest.approx(rho, abs=1e-10)
    assert [tr.type for tr in fig.data] == ["heatmap"]  # the table is ranking_table's HTML (test_viz_ranking)
    with pytest.raises(ValueError, match="query"):
        measure_comparison(t, v, a, query=20)
    with pytest.raises(ValueError, match="unknown measure"):
        measure_comparison(t, v, a, measures=("volume", "l2"))


def test_retrieval_results_sorted_with_correct_highlighted():
    t, v, a = aligned(n=30, noise=1.0)
    row = gramviz.score_matrix(t, v, a)[7]
    fig = retrieval_results(row, [f"clip {j}" for j in range(30)], k=8, correct=7)
    bars = fig.data[0]
    order = list(np.argsort(-row.numpy())[:8])
    assert fig.layout.meta["order"] == order
    np.testing.assert_allclose(bars.x, -row.numpy()[order])  # drawn as volumes, best (smallest) first
    assert list(bars.x) == sorted(bars.x)
    assert list(bars.marker.color) == [POSITIVE if j == 7 else NEGATIVE for j in order]
    assert fig.layout.meta["correct_ranks"] == {7: int(gramviz.retrieval_ranks(row[None], [7])[0])}


def test_retrieval_results_names_the_rank_of_a_missed_item():
    row = -np.linspace(0.1, 0.9, 12)  # item j ranks j + 1
    fig = retrieval_results(row, [f"clip {j}" for j in range(12)], k=3, correct=[1, 9])
    assert list(fig.data[0].marker.color) == [NEGATIVE, POSITIVE, NEGATIVE]
    assert "clip 9 at rank 10" in fig.layout.title.text


def test_retrieval_results_rejects_bad_input():
    with pytest.raises(ValueError, match="<= 0"):
        retrieval_results(np.array([0.2, 0.5]), None)  # volumes instead of scores
    with pytest.raises(ValueError, match="labels"):
        retrieval_results(np.array([-0.2, -0.5]), ["a"])
    with pytest.raises(ValueError):
        retrieval_results(np.ones((2, 2)), None, measure="symile")
    with pytest.raises(ValueError):
        retrieval_results(np.array([-0.2, -0.5]), None, correct=5)
