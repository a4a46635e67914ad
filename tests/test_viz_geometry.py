"""The geometry figures draw what is computed: hull volumes, isometric arrows, Gram values, base x height."""

import re

import numpy as np
import pytest
import torch
from scipy.spatial import ConvexHull

import gramviz

pytest.importorskip("plotly")
from gramviz.viz.explorer import explorer, vectors_from_angles  # noqa: E402
from gramviz.viz.geometry import base_height_figure, cosine_vs_volume, gram_heatmap, parallelotope  # noqa: E402


def _mesh(fig):
    meshes = [t for t in fig.data if t.type == "mesh3d"]
    assert len(meshes) == 1
    m = meshes[0]
    return np.c_[m.x, m.y, m.z], np.c_[m.i, m.j, m.k]


def _tips(fig, labels):
    """The end point of each vector's arrow line, by label."""
    lines = {t.name: t for t in fig.data if t.type == "scatter3d"}
    return np.array([[lines[n].x[-1], lines[n].y[-1], lines[n].z[-1]] for n in labels])


def _number_after(text, word):
    return float(re.search(word + r"[^0-9\-]*(-?[0-9.]+(?:e[-+]?[0-9]+)?)", text).group(1))


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("scale", [1.0, 7.0])
def test_parallelotope_hull_volume_equals_gram_volume(k, scale):
    vecs = scale * torch.randn(k, 512, dtype=torch.float64)
    fig = parallelotope(*vecs)
    corners, tri = _mesh(fig)
    expected = float(gramviz.volume(*vecs))
    if k == 2:
        assert np.abs(corners[:, 2]).max() == 0
        hull = ConvexHull(corners[:, :2]).volume  # 2-D hull: .volume is the area
    else:
        hull = ConvexHull(corners).volume
    assert hull == pytest.approx(expected, rel=1e-9, abs=1e-6)
    assert len(corners) == 2**k and len(np.unique(corners.round(12), axis=0)) == 2**k
    assert tri.min() >= 0 and tri.max() == 2**k - 1
    assert len(tri) == (2 if k == 2 else 12)
    # the triangles tile the surface: for k = 3 their summed signed volume (divergence theorem) is the volume
    if k == 3:
        signed = sum(np.linalg.det(corners[t]) for t in tri) / 6
        assert abs(signed) == pytest.approx(expected, rel=1e-9)


def test_parallelotope_corners_are_subset_sums_and_arrows_isometric():
    vecs = torch.randn(3, 512, dtype=torch.float64)
    fig = parallelotope(*vecs, labels=["t", "v", "a"])
    tips = _tips(fig, ["t", "v", "a"])
    g_in = (vecs @ vecs.T).numpy()
    np.testing.assert_allclose(tips @ tips.T, g_in, atol=1e-9 * np.abs(g_in).max())
    dist_in = torch.cdist(vecs, vecs).numpy()
    dist_drawn = np.linalg.norm(tips[:, None] - tips[None], axis=-1)
    np.testing.assert_allclose(dist_drawn, dist_in, atol=1e-9)
    corners, _ = _mesh(fig)
    for m in range(8):
        expected = sum((tips[b] for b in range(3) if m >> b & 1), np.zeros(3))
        assert any(np.allclose(c, expected, atol=1e-9) for c in corners)


def test_parallelotope_text_and_context():
    t, v, a = torch.nn.functional.normalize(torch.randn(3, 512, dtype=torch.float64), dim=-1)
    fig = parallelotope(t, v, a)
    vol = float(gramviz.volume(t, v, a))
    # numbers as people read them: 3 significant digits
    assert _number_after(fig.layout.title.text, "volume") == pytest.approx(vol, rel=5e-3)
    note = fig.layout.annotations[0].text
    assert _number_after(note, "volume") == pytest.approx(vol, rel=5e-3)
    assert _number_after(note, r"cos\(text, video\)") == pytest.approx(float(t @ v), abs=1e-3)
    assert _number_after(note, r"cos\(video, audio\)") == pytest.approx(float(v @ a), abs=1e-3)
    names = {tr.name for tr in fig.data}
    assert {"text", "video", "audio", "unit sphere"} <= names
    ranges = [fig.layout.scene[ax].range for ax in ("xaxis", "yaxis", "zaxis")]
    assert len({round(r[1] - r[0], 12) for r in ranges}) == 1  # equal scaling
    ratio = fig.layout.scene.aspectratio
    assert ratio.x == ratio.y == ratio.z
    # far from unit length: no sphere; custom labels and title are used
    big = parallelotope(10 * t, 10 * v, labels=["x", "y"], title="mine")
    assert "unit circle" not in {tr.name for tr in big.data} and big.layout.title.text == "mine"
    expected = 100 * float(gramviz.volume(t, v))
    assert _number_after(big.layout.annotations[0].text, "area") == pytest.approx(expected, rel=5e-3)


def test_parallelotope_accepts_arrays_and_degenerate_tuples():
    fig = parallelotope(np.array([1.0, 0, 0]), np.array([2.0, 0, 0]), np.array([0, 0, 3.0]))
    corners, _ = _mesh(fig)
    assert len(corners) == 8  # flat, but still the 8 corners
    assert _number_after(fig.layout.annotations[0].text, "volume") == 0


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((torch.ones(5),), {}, "at least 2"),
        ((torch.ones(5),) * 4, {}, "2 or 3"),
        ((torch.ones(5), torch.ones(4)), {}, "one shape"),
        ((torch.ones(2), torch.ones(2), torch.ones(2)), {}, "D >= 3"),
        ((torch.ones(5), torch.tensor([1.0, float("nan"), 0, 0, 0])), {}, "NaN"),
        ((torch.ones(5), torch.zeros(5)), {}, "zero"),
        ((torch.ones(5, 2), torch.ones(5, 2)), {}, "1-D"),
        ((torch.ones(5), torch.ones(5)), {"labels": ["a"]}, "labels"),
    ],
)
def test_parallelotope_rejects_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        parallelotope(*args, **kwargs)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_gram_heatmap_values(k):
    vecs = torch.randn(k, 64, dtype=torch.float64)
    fig = gram_heatmap(*vecs)
    np.testing.assert_allclose(np.array(fig.data[0].z), gramviz.gram_matrix(*vecs).numpy(), rtol=1e-12)
    assert list(fig.data[0].x) == (["text", "video", "audio"] if k == 3 else [f"v{i + 1}" for i in range(k)])
    assert fig.data[0].texttemplate  # values written in the cells
    assert _number_after(fig.layout.title.text, "volume") == pytest.approx(float(gramviz.volume(*vecs)), rel=5e-3)
    with pytest.raises(ValueError, match="at least 2"):
        gram_heatmap(vecs[0])
    with pytest.raises(ValueError, match="NaN"):
        gram_heatmap(vecs[0], torch.full((64,), float("inf")))


@pytest.mark.parametrize("k", [2, 3, 4])
def test_base_height_figure_values(k):
    vecs = torch.randn(k, 32, dtype=torch.float64)
    fig = base_height_figure(vecs[0], *vecs[1:])
    base, height = (float(x) for x in gramviz.base_height(*vecs))
    drawn_base, drawn_height, drawn_volume = fig.data[0].y
    assert (drawn_base, drawn_height) == pytest.approx((base, height), rel=1e-12)
    assert drawn_base * drawn_height == pytest.approx(drawn_volume, rel=1e-12)
    assert drawn_volume == pytest.approx(float(gramviz.volume(*vecs)), rel=1e-9)
    assert "base" in fig.layout.title.text and "height" in fig.layout.title.text
    with pytest.raises(ValueError, match="at least 2"):
        base_height_figure(vecs[0])
    with pytest.raises(ValueError, match="labels"):
        base_height_figure(*vecs, labels=["only one"])


def test_cosine_vs_volume_curves_and_masked_surface():
    cos_bc = 0.3
    fig = cosine_vs_volume(cos_bc=cos_bc, resolution=61)
    sin_curve, cos_curve = fig.data[0], fig.data[1]
    theta = np.array(sin_curve.x)
    assert theta[0] == 0 and theta[-1] == pytest.approx(np.pi)
    np.testing.assert_allclose(np.array(sin_curve.y) ** 2 + np.array(cos_curve.y) ** 2, 1, atol=1e-12)
    np.testing.assert_allclose(sin_curve.y, np.sin(theta), atol=1e-12)
    heat = next(t for t in fig.data if t.type == "heatmap")
    a, b = np.meshgrid(np.array(heat.x), np.array(heat.y))
    sq = 1 - a**2 - b**2 - cos_bc**2 + 2 * a * b * cos_bc
    z = np.array(heat.z, dtype=float)
    np.testing.assert_array_equal(np.isnan(z), sq < 0)
    np.testing.assert_allclose(z[sq >= 0], np.sqrt(sq[sq >= 0]), atol=1e-12)
    # the surface agrees with gramviz.volume on actual unit vectors
    i, j = 30, 40  # cos_ab = heat.x[j], cos_ac = heat.y[i]
    vecs = vectors_from_angles(*np.degrees(np.arccos([heat.x[j], heat.y[i], cos_bc])))
    assert z[i, j] == pytest.approx(float(gramviz.volume(*torch.from_numpy(vecs))), abs=1e-9)
    assert fig.layout.xaxis.title.text and fig.layout.yaxis2.title.text
    for bad in [{"cos_bc": 1.5}, {"cos_bc": float("nan")}, {"resolution": 2}, {"resolution": 10.5}]:
        with pytest.raises(ValueError):
            cosine_vs_volume(**bad)


FEASIBLE = [(60, 60, 60), (90, 90, 90), (30, 40, 70), (0, 50, 50), (180, 30, 150), (120, 120, 120), (10, 170, 165)]


@pytest.mark.parametrize("angles", FEASIBLE)
def test_vectors_from_angles(angles):
    vecs = vectors_from_angles(*angles)
    assert vecs.shape == (3, 3)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-12)
    got = np.degrees(np.arccos(np.clip([vecs[0] @ vecs[1], vecs[0] @ vecs[2], vecs[1] @ vecs[2]], -1, 1)))
    np.testing.assert_allclose(got, angles, atol=1e-5)


@pytest.mark.parametrize("angles", [(10, 10, 90), (100, 130, 140), (-5, 60, 60), (60, 60, 200), (90, 90, float("nan"))])
def test_vectors_from_angles_rejects_infeasible(angles):
    with pytest.raises(ValueError):
        vectors_from_angles(*angles)


def _walk(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


def _explorer_parts(angles):
    ipywidgets = pytest.importorskip("ipywidgets")
    go = pytest.importorskip("plotly.graph_objects")
    box = explorer(angles=angles)
    assert isinstance(box, ipywidgets.VBox)
    parts = list(_walk(box))
    sliders = [w for w in parts if isinstance(w, ipywidgets.FloatSlider)]
    boxes = [w for w in parts if isinstance(w, ipywidgets.BoundedFloatText)]
    fig = next(w for w in parts if isinstance(w, go.FigureWidget))
    message = next(w for w in parts if isinstance(w, ipywidgets.HTML))
    assert len(sliders) == len(boxes) == 3 and box.children[-1] is fig
    return sliders, boxes, fig, message


def _drawn_angles(fig):
    tips = _tips(fig, ["text", "video", "audio"])
    cos = np.clip([tips[0] @ tips[1], tips[0] @ tips[2], tips[1] @ tips[2]], -1, 1)
    return np.degrees(np.arccos(cos))


def test_explorer_updates_live():
    sliders, boxes, fig, message = _explorer_parts((60, 60, 60))

    def drawn_volume():
        return _number_after(fig.layout.annotations[0].text, "volume")

    assert drawn_volume() == pytest.approx(np.sqrt(0.5), rel=5e-3)
    sliders[0].value = 90
    sliders[1].value = 90
    sliders[2].value = 90
    assert drawn_volume() == pytest.approx(1.0, abs=1e-4)
    assert _number_after(fig.layout.title.text, "volume") == pytest.approx(1.0, abs=1e-4)
    tips = _tips(fig, ["text", "video", "audio"])
    np.testing.assert_allclose(tips @ tips.T, np.eye(3), atol=1e-12)
    sliders[2].value = 30  # (90, 90, 30): volume sin(30 deg) = 0.5
    assert drawn_volume() == pytest.approx(0.5, abs=1e-4)
    assert message.value == "" and [b.value for b in boxes] == [90, 90, 30]
    with pytest.raises(ValueError):
        explorer(angles=(10, 10, 90))


@pytest.mark.parametrize("start, index, value, limit, words", [
    ((100, 60, 80), 0, 170, 140, "at most 140° with the other two at 60° and 80°: set to 140°"),
    ((100, 120, 120), 0, 150, 120,
     "at most 120° with the other two at 120° and 120° (the three add up to at most 360°): set to 120°"),
    ((60, 50, 80), 1, 5, 20, "at least 20° with the other two at 60° and 80°: set to 20°"),
])
def test_explorer_sets_an_impossible_angle_to_the_nearest_possible_one(start, index, value, limit, words):
    sliders, boxes, fig, message = _explorer_parts(start)
    sliders[index].value = value  # e.g. a fast drag past the limit
    assert sliders[index].value == limit and boxes[index].value == limit
    expected = list(start)
    expected[index] = limit
    np.testing.assert_allclose(_drawn_angles(fig), expected, atol=1e-5)
    names = ["∠(text, video)", "∠(text, audio)", "∠(video, audio)"]
    assert f"{names[index]} can be {words}" in message.value
    # the limit is a coplanar triple: every text says so, without float noise
    assert "0 (coplanar)" in fig.layout.title.text and "0 (coplanar)" in fig.layout.annotations[0].text
    assert "0 (coplanar)" in fig.data[0].name
    sliders[index].value = start[index]  # back inside: the message goes
    assert message.value == ""


def test_explorer_number_boxes_set_the_angles():
    sliders, boxes, fig, message = _explorer_parts((60, 60, 60))
    boxes[2].value = 90
    assert sliders[2].value == 90 and message.value == ""
    np.testing.assert_allclose(_drawn_angles(fig), [60, 60, 90], atol=1e-5)
    boxes[0].value = 170  # typed past the limit 60 + 90
    assert boxes[0].value == sliders[0].value == 150
    np.testing.assert_allclose(_drawn_angles(fig), [150, 60, 90], atol=1e-5)
    assert "set to 150°" in message.value
    for slider in sliders:  # wide enough for 1 degree steps: 2 px or more of track per degree
        track = int(slider.layout.min_width.removesuffix("px")) - int(slider.style.description_width.removesuffix("px"))
        assert track >= 2 * 180 and slider.step == 1 and not slider.readout


def _unit(d):
    v = np.array([d.x, d.y, d.z])
    return v / np.linalg.norm(v)


def test_a_flat_solid_is_seen_from_the_side_of_its_plane():
    flat = parallelotope(*torch.tensor(vectors_from_angles(60, 60, 120)))
    assert flat.layout.meta["flat"] and flat.layout.meta["volume"] == pytest.approx(0, abs=1e-12)
    corners, _ = _mesh(flat)
    normal = np.linalg.svd(corners - corners.mean(0))[2][-1]  # the plane of the drawn corners
    eye, up = _unit(flat.layout.scene.camera.eye), _unit(flat.layout.scene.camera.up)
    assert abs(eye @ normal) == pytest.approx(np.sin(np.radians(10)), abs=1e-6)  # 10 degrees above the plane
    assert abs(up @ normal) == pytest.approx(1, abs=1e-9)  # the plane level on screen
    box = parallelotope(*torch.tensor(vectors_from_angles(90, 90, 90)))
    assert not box.layout.meta["flat"] and _unit(box.layout.scene.camera.eye) @ np.array([0, 0, 1]) > 0.3
    # the explorer turns the camera when the solid becomes flat, and back
    sliders, _, fig, _ = _explorer_parts((60, 60, 60))
    default = fig.layout.scene.camera.eye
    sliders[2].value = 120
    assert fig.layout.meta["flat"] and abs(_unit(fig.layout.scene.camera.eye) @ np.array([0, 0, 1])) < 0.2
    sliders[2].value = 60
    assert not fig.layout.meta["flat"] and fig.layout.scene.camera.eye == default


def test_flat_tuples_read_zero_not_float_noise():
    fig = parallelotope(*torch.tensor(vectors_from_angles(60, 60, 120)))
    texts = [fig.layout.title.text, fig.layout.annotations[0].text, fig.data[0].name, fig.data[0].hovertemplate]
    assert all("0 (coplanar)" in t for t in texts)
    assert not any(re.search(r"e-\d|0\.0000", t) for t in texts)
    line = parallelotope(torch.tensor([1.0, 0, 0]), torch.tensor([-2.0, 0, 0]))
    assert "0 (collinear)" in line.layout.title.text and "0 (collinear)" in line.data[0].name
    heat = gram_heatmap(*torch.tensor(vectors_from_angles(60, 60, 120)))
    assert "volume 0 (coplanar)" in heat.layout.title.text and "det G = 0 " in heat.layout.title.text
    bars = base_height_figure(*torch.tensor(vectors_from_angles(60, 60, 120)))
    assert bars.data[0].text[-1] == "0 (coplanar)" and bars.layout.title.text.count("0 (coplanar)") == 1
