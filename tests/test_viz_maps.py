"""Embedding maps and the modality gap: one point per embedding, exact centroid distances."""

import numpy as np
import pytest
import torch

from gramviz.viz.maps import embedding_map, modality_gap, project


def embeddings(n=30, d=8, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, d))
    return {m: z + 0.3 * rng.normal(size=(n, d)) + shift for m, shift in (("text", 1.0), ("video", -1.0), ("audio", 0.0))}


def points(fig):
    """modality -> (x, y) of every drawn point, from the point traces (meta names the modality)."""
    out = {}
    for tr in fig.data:
        if tr.meta:
            xs, ys = out.setdefault(tr.meta["modality"], ([], []))
            xs.extend(tr.x)
            ys.extend(tr.y)
    return out


def test_one_point_per_embedding_per_modality_on_the_pca_coordinates():
    emb = embeddings()
    emb["video"] = torch.from_numpy(emb["video"])  # tensors and arrays alike
    fig = embedding_map(emb, method="pca", color=["a", "b", "c"] * 10, hover=["cap " * 40] * 30, connect=True)
    drawn = points(fig)
    assert {m: len(xy[0]) for m, xy in drawn.items()} == {"text": 30, "video": 30, "audio": 30}
    coords = project(emb, method="pca")
    for m, (xs, ys) in drawn.items():
        assert sorted(zip(xs, ys)) == sorted(map(tuple, coords[m]))
    links = [tr for tr in fig.data if tr.name == "same item"]
    assert len(links) == 1 and len(links[0].x) == 30 * 4  # 3 modalities + a gap per item
    assert {tr.marker.symbol for tr in fig.data if tr.meta} == {"circle", "square", "diamond"}


def legend_key(fig, group="modality"):
    """name -> marker symbol of the legend-only key entries of ``group``."""
    return {tr.name: tr.marker.symbol for tr in fig.data if tr.legendgroup == group and tr.x == (None,)}


def test_twenty_classes_each_take_their_own_colour_and_symbol_and_the_fill_is_the_modality():
    classes = [f"class {i}" for i in range(20)] * 2
    emb = {m: x[:40] for m, x in embeddings(n=40).items()}
    fig = embedding_map(emb, method="pca", color=classes)
    entries = [tr for tr in fig.data if tr.meta and tr.showlegend]
    assert sorted(tr.name for tr in entries) == sorted(set(classes))
    assert len({(tr.marker.color, tr.marker.symbol) for tr in entries}) == 20  # no two classes alike
    fill = {"text": "", "video": "-open", "audio": "-open-dot"}
    own = {tr.name: (tr.marker.color, tr.marker.symbol) for tr in entries}  # the class's filled marker
    for tr in (tr for tr in fig.data if tr.meta):
        colour, symbol = own[tr.name]
        assert (tr.marker.color, tr.marker.symbol) == (colour, symbol + fill[tr.meta["modality"]])
    assert legend_key(fig) == {"text": "circle", "video": "circle-open", "audio": "circle-open-dot"}


def test_colour_and_symbol_from_two_labels():
    shapes, motions = ["ball", "block", "star", "cube"], ["bouncing", "sliding", "growing", "spinning", "pulsing"]
    items = [(s, m) for s in shapes for m in motions]  # 20 classes
    fig = embedding_map({m: x[:20] for m, x in embeddings().items()}, method="pca", color=[s for s, _ in items],
                        symbol=[m for _, m in items])
    drawn = {}
    for tr in fig.data:
        if tr.meta and tr.meta["modality"] == "text":
            for (item, _), colour, symbol in zip(tr.customdata, [tr.marker.color] * len(tr.x), tr.marker.symbol):
                drawn[items[item]] = (colour, symbol)
    assert len(drawn) == 20 and len(set(drawn.values())) == 20
    assert len({c for c, _ in drawn.values()}) == 4 and len({s for _, s in drawn.values()}) == 5
    assert set(legend_key(fig, "symbol")) == set(motions) and set(legend_key(fig)) == {"text", "video", "audio"}
    assert "colour and marker" in fig.layout.title.text


def test_a_key_says_which_marker_is_which_modality_and_the_title_says_how_points_are_coloured():
    emb = embeddings()
    plain = embedding_map(emb, method="pca")
    assert {tr.name for tr in plain.data if tr.showlegend} == {"text", "video", "audio"}  # the points are the key
    by_class = embedding_map(emb, method="pca", color=["a", "b", "c"] * 10)
    assert legend_key(by_class) == {"text": "circle", "video": "square", "audio": "diamond"}
    by_value = embedding_map(emb, method="pca", color=np.arange(30.0))
    assert legend_key(by_value) == legend_key(by_class)
    titles = [fig.layout.title.text.split("<br>")[0] for fig in (plain, by_class, by_value)]
    assert len(set(titles)) == 3 and "class" in titles[1] and "class" not in titles[0]


def test_project_fits_all_modalities_in_one_space():
    from sklearn.decomposition import PCA

    emb = embeddings()
    xy = project(emb, method="pca")
    expected = PCA(2, svd_solver="full").fit_transform(np.concatenate(list(emb.values())))
    np.testing.assert_allclose(np.concatenate(list(xy.values())), expected, atol=1e-10)


def test_umap_is_deterministic_for_a_seed():
    emb = embeddings(n=20)
    first, second = embedding_map(emb, method="umap", seed=1), embedding_map(emb, method="umap", seed=1)
    assert first.layout.meta["method"] == "umap"
    for a, b in zip(points(first).values(), points(second).values()):
        np.testing.assert_array_equal(a, b)
    assert sum(len(xy[0]) for xy in points(first).values()) == 60


def test_tiny_inputs_fall_back_to_pca():
    emb = {m: x[:3] for m, x in embeddings().items()}
    fig = embedding_map(emb, method="umap")
    assert fig.layout.meta["method"] == "pca" and "needs more points" in fig.layout.title.text
    assert sum(len(xy[0]) for xy in points(fig).values()) == 9
    one = embedding_map({"text": np.ones((1, 4)), "audio": np.zeros((1, 4))}, method="tsne")
    assert sum(len(xy[0]) for xy in points(one).values()) == 2
    with pytest.raises(ValueError, match="at least 2 points"):
        embedding_map({"text": np.ones((1, 4))}, method="pca")


def test_large_inputs_are_sampled_with_a_note_and_webgl():
    rng = np.random.default_rng(0)
    emb = {m: rng.normal(size=(5000, 16)) for m in ("text", "video", "audio")}
    fig = embedding_map(emb, method="pca", max_points=3000, ids=[f"clip{i}" for i in range(5000)])
    drawn = points(fig)
    assert {m: len(xy[0]) for m, xy in drawn.items()} == {"text": 1000, "video": 1000, "audio": 1000}
    assert "1,000 of 5,000 items shown" in fig.layout.title.text
    assert all(tr.type == "scattergl" for tr in fig.data if tr.meta)
    shown = fig.layout.meta["items_shown"]
    text_trace = next(tr for tr in fig.data if tr.meta and tr.meta["modality"] == "text")
    assert [c[0] for c in text_trace.customdata] == [f"clip{i}" for i in shown]


def test_a_map_fitted_on_a_sample_places_the_rest_by_the_fitted_transform():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(1)
    emb = {m: rng.normal(size=(400, 8)) for m in ("text", "video")}
    xy = project(emb, method="pca", seed=3, fit_points=150)
    stacked = np.concatenate(list(emb.values()))
    sample = np.sort(np.random.default_rng(3).choice(800, 150, replace=False))  # the seeded fitting sample
    reference = PCA(n_components=2, svd_solver="full").fit(stacked[sample]).transform(stacked)
    np.testing.assert_allclose(np.concatenate([xy["text"], xy["video"]]), reference, atol=1e-10)
    # UMAP: points placed by transform land in their own cluster's island of the fitted map
    centres = rng.normal(size=(4, 8)) * 20
    labels = np.arange(200) % 4
    clustered = {"text": centres[labels] + rng.normal(size=(200, 8))}
    umap_xy = project(clustered, method="umap", seed=0, fit_points=80)["text"]
    island = np.stack([umap_xy[labels == c].mean(0) for c in range(4)])  # (4, 2)
    nearest = np.argmin(((umap_xy[:, None, :] - island[None]) ** 2).sum(-1), axis=1)
    assert (nearest == labels).mean() > 0.95
    fig = embedding_map({m: x for m, x in emb.items()}, method="pca", max_points=10_000, fit_points=300)
    assert "PCA fitted on 300 of the 800 points, the rest placed by its transform" in fig.layout.title.text
    assert sum(len(p[0]) for p in points(fig).values()) == 800 and fig.layout.meta["fit_points"] == 300


def test_numeric_colour_uses_a_colour_scale():
    emb = embeddings()
    fig = embedding_map(emb, method="pca", color=np.linspace(0, 1, 30))
    traces = [tr for tr in fig.data if tr.meta]
    assert len(traces) == 3 and list(traces[0].marker.color) == list(np.linspace(0, 1, 30))


@pytest.mark.parametrize(
    "emb, kwargs, error",
    [
        ({}, {}, TypeError),
        ([np.ones((3, 2))], {}, TypeError),
        ({"text": np.ones((3, 2)), "video": np.ones((3, 3))}, {}, ValueError),
        ({"text": np.ones((3, 2)), "video": np.ones((4, 2))}, {}, ValueError),
        ({"text": np.full((3, 2), np.nan)}, {}, ValueError),
        ({"text": np.ones(3)}, {}, ValueError),
        ({"text": np.eye(3)}, {"method": "mds"}, ValueError),
        ({"text": np.eye(3)}, {"color": ["a"]}, ValueError),
        ({"text": np.eye(3)}, {"symbol": ["a", "b"]}, ValueError),
        ({"text": np.eye(30)}, {"color": [str(i) for i in range(25)] + ["0"] * 5}, ValueError),  # > 24 classes
        ({"text": np.eye(10)}, {"symbol": [str(i) for i in range(9)] + ["0"]}, ValueError),  # > 8 symbols
    ],
)
def test_embedding_map_rejects_bad_input(emb, kwargs, error):
    with pytest.raises(error):
        embedding_map(emb, **{"method": "pca", **kwargs})


def test_modality_gap_matches_numpy():
    before, after = embeddings(), embeddings(seed=1)
    after["audio"] = after["audio"][:10]  # modalities may have different sizes
    fig = modality_gap(before, after, names=("epoch 0", "epoch 5"))
    for name, emb in (("epoch 0", before), ("epoch 5", after)):
        c = np.stack([x.mean(0) for x in emb.values()])
        dist = np.sqrt(((c[:, None] - c[None]) ** 2).sum(-1))
        spread = [np.mean(np.sqrt(((x - x.mean(0)) ** 2).sum(1))) for x in emb.values()]
        np.testing.assert_allclose(fig.layout.meta["centroid_distances"][name], dist, atol=1e-12)
        np.testing.assert_allclose(fig.layout.meta["spread"][name], spread, atol=1e-12)
    heatmaps = [tr for tr in fig.data if tr.type == "heatmap"]
    np.testing.assert_array_equal(heatmaps[1].z, fig.layout.meta["centroid_distances"]["epoch 5"])
    assert heatmaps[0].zmax == heatmaps[1].zmax  # one colour scale for both


def test_modality_gap_rejects_bad_input():
    with pytest.raises(TypeError):
        modality_gap(np.ones((3, 2)))
    with pytest.raises(ValueError, match="names"):
        modality_gap(embeddings(), embeddings(), names=("same", "same"))
