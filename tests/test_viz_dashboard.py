"""The exploration dashboard's figures and notebook widget, checked against independent computations:
which points are greyed, the clip behind every point, base and height from determinants of Gram
matrices, nearest clips by brute force, and the widget's real selection and click callbacks."""

import json
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("plotly")
pytest.importorskip("ipywidgets")
pytest.importorskip("anywidget")

from gramviz import viz  # noqa: E402
from gramviz.exploration import clip_metrics, compare_metrics, inspect_clip  # noqa: E402
from gramviz.viz.dashboard import GREY, GREY_OPACITY  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
N_CLIPS = 12
CLASSES = ["bouncing ball", "sliding cube", "growing star"]


@pytest.fixture(scope="module")
def gallery():
    """12 clips; clips 0-10 have two captions each, clip 11 none."""
    g = torch.Generator().manual_seed(3)
    caption_clips = [c for c in range(N_CLIPS - 1) for _ in range(2)]
    emb = {"text": torch.randn(len(caption_clips), 8, generator=g), "video": torch.randn(N_CLIPS, 8, generator=g),
           "audio": torch.randn(N_CLIPS, 8, generator=g)}
    ids = [f"clip-{c:02d}" for c in range(N_CLIPS)]
    captions = [f"a {CLASSES[c % 3]} number {c} take {r}" for r, c in enumerate(caption_clips)]
    classes = [CLASSES[c % 3] for c in range(N_CLIPS)]
    return {"emb": emb, "ids": ids, "caption_clips": caption_clips, "captions": captions, "classes": classes,
            "coords": viz.project(emb, method="pca")}


def _det_geometry(gallery):
    """Per clip (base, height, volume, least aligned modality) of (first caption, video, audio), from
    determinants of Gram matrices: volume = sqrt(det G), base = sqrt(det G[video, audio])."""
    unit = {m: F.normalize(x.double(), dim=-1) for m, x in gallery["emb"].items()}
    first = {c: gallery["caption_clips"].index(c) for c in set(gallery["caption_clips"])}
    out = {"base": [], "height": [], "volume": [], "least": []}
    for c in range(N_CLIPS):
        v, a = unit["video"][c], unit["audio"][c]
        pair = torch.stack([v, a])
        base = math.sqrt(float(torch.det(pair @ pair.T)))
        out["base"].append(base)
        if c not in first:
            out["height"].append(math.nan), out["volume"].append(math.nan), out["least"].append(None)
            continue
        vecs = {"text": unit["text"][first[c]], "video": v, "audio": a}
        s = torch.stack(list(vecs.values()))
        vol = math.sqrt(max(float(torch.det(s @ s.T)), 0.0))
        heights = {}
        for m in vecs:  # distance from the others' plane = volume / area of the other two
            rest = torch.stack([x for n, x in vecs.items() if n != m])
            heights[m] = vol / math.sqrt(float(torch.det(rest @ rest.T)))
        out["height"].append(heights["text"]), out["volume"].append(vol)
        out["least"].append(max(heights, key=heights.get))
    return {k: np.array(v, dtype=object if k == "least" else float) for k, v in out.items()}


def _points(fig):
    """Every map point: (modality, x, y, clip, colour, opacity) from the traces that carry clips."""
    out = []
    for t in fig.data:
        if t.customdata is None:
            continue
        colors = t.marker.color if isinstance(t.marker.color, (tuple, list)) else [t.marker.color] * len(t.x)
        for x, y, clip, color in zip(t.x, t.y, t.customdata, colors):
            out.append((t.meta["modality"], x, y, clip, color, t.marker.opacity))
    return out


def _expected_clips(gallery):
    """(modality, x, y) -> the clip of that point, from the coordinates and caption_clips."""
    out = {}
    for m, xy in gallery["coords"].items():
        owners = gallery["caption_clips"] if m == "text" else range(N_CLIPS)
        for (x, y), clip in zip(xy, owners):
            out[(m, round(float(x), 9), round(float(y), 9))] = clip
    return out


def test_selection_map_greys_exactly_the_unselected_clips_and_keeps_every_point(gallery):
    selected = [1, 4, 11]
    fig = viz.selection_map(gallery["coords"], {"text": gallery["caption_clips"]}, color=gallery["classes"],
                            selected=selected)
    points = _points(fig)
    expected = _expected_clips(gallery)
    assert len(points) == len(expected)  # none hidden, none twice
    for m, x, y, clip, color, opacity in points:
        assert expected[(m, round(x, 9), round(y, 9))] == clip
        grey = color == GREY and opacity == GREY_OPACITY
        assert grey == (clip not in selected), (m, clip, color, opacity)
    grey_traces = [i for i, t in enumerate(fig.data) if t.marker.color == GREY]
    coloured = [i for i, t in enumerate(fig.data) if t.customdata is not None and t.marker.color != GREY]
    assert max(grey_traces) < min(coloured)  # the selection is drawn on top
    assert fig.layout.meta["selected"] == selected and fig.layout.dragmode == "select"
    assert fig.layout.uirevision


def test_without_a_selection_every_point_is_in_colour_and_its_customdata_is_its_clip(gallery):
    fig = viz.selection_map(gallery["coords"], {"text": gallery["caption_clips"]}, color=gallery["classes"],
                            dragmode="lasso")
    expected = _expected_clips(gallery)
    points = _points(fig)
    assert len(points) == len(expected)
    for m, x, y, clip, color, _ in points:
        assert isinstance(clip, int) and expected[(m, round(x, 9), round(y, 9))] == clip
        assert color != GREY
    # one colour per class, the same for every point of the class
    by_class = {}
    for _, _, _, clip, color, _ in points:
        by_class.setdefault(gallery["classes"][clip], set()).add(color)
    assert all(len(c) == 1 for c in by_class.values()) and len(set().union(*by_class.values())) == 3
    assert fig.layout.dragmode == "lasso"


def test_numeric_colour_has_one_colour_bar_and_undefined_values_are_drawn_apart(gallery):
    geo = _det_geometry(gallery)
    fig = viz.selection_map(gallery["coords"], {"text": gallery["caption_clips"]}, color=geo["height"],
                            color_name="height")
    scales = [t for t in fig.data if t.marker.showscale]
    assert len(scales) == 1 and scales[0].marker.colorbar.title.text == "height"
    coloured = [t for t in fig.data if t.customdata is not None and t.name != "no height"]
    assert {t.marker.cmin for t in coloured} == {np.nanmin(geo["height"])}
    assert {t.marker.cmax for t in coloured} == {np.nanmax(geo["height"])}
    for t in coloured:
        np.testing.assert_allclose(t.marker.color, geo["height"][list(t.customdata)], rtol=1e-9)
    undefined = [c for t in fig.data if t.name == "no height" for c in t.customdata]
    assert sorted(set(undefined)) == [11] and len(undefined) == 2  # its video and audio points


def test_selection_map_names_bad_input(gallery):
    coords, pc = gallery["coords"], {"text": gallery["caption_clips"]}
    with pytest.raises(ValueError, match="selected must name clips"):
        viz.selection_map(coords, pc, selected=[12])
    with pytest.raises(ValueError, match="color has 3 entries for 12 clips"):
        viz.selection_map(coords, pc, color=["a", "b", "c"])
    with pytest.raises(ValueError, match=r"pass point_clips\['text'\]"):
        viz.selection_map(coords)
    with pytest.raises(ValueError, match="dragmode"):
        viz.selection_map(coords, pc, dragmode="zoom")


def test_clip_context_highlights_the_clip_at_its_base_and_height(gallery):
    geo = _det_geometry(gallery)
    m = clip_metrics(gallery["emb"], gallery["ids"], gallery["caption_clips"])
    np.testing.assert_allclose(m.values["base"].numpy(), geo["base"], atol=1e-9)
    np.testing.assert_allclose(m.values["height"].numpy(), geo["height"], atol=1e-9)
    fig = viz.clip_context(geo["base"], geo["height"], 5, ids=gallery["ids"])
    star = [t for t in fig.data if t.name == "clip-05"]
    assert len(star) == 1 and star[0].customdata == (5,)
    assert star[0].x[0] == pytest.approx(geo["base"][5]) and star[0].y[0] == pytest.approx(geo["height"][5])
    assert fig.layout.meta["volume"] == pytest.approx(geo["volume"][5], abs=1e-9)
    others = next(t for t in fig.data if t.name == "other clips")
    assert sorted(others.customdata) == [c for c in range(N_CLIPS) if c not in (5, 11)]  # 11: no caption
    assert fig.layout.xaxis.range[1] > 1 and "caption" in fig.layout.yaxis.title.text


def test_clip_context_of_a_clip_without_caption_says_so(gallery):
    geo = _det_geometry(gallery)
    fig = viz.clip_context(geo["base"], geo["height"], 11, ids=gallery["ids"])
    assert "no caption: height undefined" in fig.layout.title.text
    assert fig.layout.meta["height"] is None and fig.layout.meta["base"] == pytest.approx(geo["base"][11])
    assert [s.x0 for s in fig.layout.shapes] == [pytest.approx(geo["base"][11])]
    with pytest.raises(ValueError, match="infinite"):
        viz.clip_context([0.5, math.inf], [0.5, 0.5], 0)


def test_neighbours_table_lists_the_brute_force_nearest_by_cosine(gallery):
    inspection = inspect_clip(gallery["emb"], 3, gallery["caption_clips"], k=4)
    table = viz.neighbours_table(inspection, gallery["ids"], [f"caption of {i}" for i in gallery["ids"]])
    unit = {m: F.normalize(gallery["emb"][m].double(), dim=-1) for m in ("video", "audio")}
    cos = ((unit["video"] @ unit["video"][3]) + (unit["audio"] @ unit["audio"][3])) / 2
    cos[3] = -math.inf
    assert table.meta["by_cosine"] == torch.argsort(cos, descending=True)[:4].tolist()
    assert len(table.meta["by_volume"]) == 4 and 3 not in table.meta["by_volume"]
    for c in table.meta["by_volume"] + table.meta["by_cosine"]:
        assert gallery["ids"][c] in table.html and f"caption of {gallery['ids'][c]}" in table.html


def test_comparison_scatter_puts_each_clip_at_its_two_ranks(gallery):
    a = clip_metrics(gallery["emb"], gallery["ids"], gallery["caption_clips"])
    other = {m: x.flip(0) if m == "text" else x for m, x in gallery["emb"].items()}
    b = clip_metrics(other, gallery["ids"], gallery["caption_clips"])
    fig = viz.comparison_scatter(compare_metrics(a, b, ("gram", "flipped")), labelled=2)
    dots = next(t for t in fig.data if t.name == "clip")
    for clip, x, y in zip(dots.customdata, dots.x, dots.y):
        assert (x, y) == (a.values["clip_rank"][clip], b.values["clip_rank"][clip])
    assert len(fig.layout.annotations) == 2 and fig.layout.xaxis.type == "log"


def test_selection_table_keeps_the_order_and_says_when_it_is_cut(gallery):
    m = clip_metrics(gallery["emb"], gallery["ids"], gallery["caption_clips"], gallery["captions"], gallery["classes"])
    rows = [m.row(c) for c in (9, 0, 11, 4)]
    table = viz.selection_table(rows, most=3)
    assert re.findall(r"<tr><td[^>]*>([^<]*)</td>", table.html) == ["clip-09", "clip-00", "clip-11"]
    assert table.meta == {"clips": [9, 0, 11, 4], "shown": 3} and "the first 3 of 4 rows" in table.html


# ----------------------------------------------------------------------------- the notebook widget

@pytest.fixture()
def dash(gallery, tmp_path):
    media = {}
    for c in range(N_CLIPS - 1):  # clip 11 has no media
        path = tmp_path / f"{gallery['ids'][c]}.wav"
        path.write_bytes(b"RIFF\x00\x00\x00\x00WAVE")
        media[c] = path
    return viz.dashboard(gallery["emb"], gallery["ids"], gallery["caption_clips"], gallery["captions"],
                         gallery["classes"], media=media, method="pca")


def test_select_fills_the_table_and_the_strip_with_exactly_those_clips(dash, gallery):
    geo = _det_geometry(gallery)
    assert dash.select([7, 2, 2, 11]) == [2, 7, 11]
    assert [r["clip"] for r in dash.table_rows] == [7, 2, 11]
    for r in dash.table_rows:
        c = r["clip"]
        assert r["id"] == gallery["ids"][c] and r["base"] == pytest.approx(geo["base"][c])
        if c == 11:
            assert r["volume"] is None and r["height"] is None
        else:
            assert r["volume"] == pytest.approx(geo["volume"][c]) and r["least_aligned"] == geo["least"][c]
    first_cells = re.findall(r"<tr><td[^>]*>([^<]*)</td>", dash.table.html)
    assert first_cells == ["clip-07", "clip-02", "clip-11"] and dash.table.meta["clips"] == [7, 2, 11]
    assert dash._strip.value.count("<audio") == 2  # clip 11 has nothing to play
    grey = {c for t in dash.map.data if t.marker.color == GREY for c in t.customdata}
    assert grey == set(range(N_CLIPS)) - {2, 7, 11}
    dash.select(None)
    assert dash.selected is None and dash.table_rows == [] and not any(t.marker.color == GREY for t in dash.map.data)


def test_the_strip_plays_the_first_eight_and_says_so(dash):
    dash.select(range(10))
    assert dash._strip.value.count("<audio") == 8 and "first 8 of 10" in dash._strip.value


def test_inspect_shows_the_clip_volume_and_least_aligned_modality(dash, gallery):
    geo = _det_geometry(gallery)
    inspection = dash.inspect(6)
    assert dash.inspected == 6 and inspection.volume == pytest.approx(geo["volume"][6])
    names = {"text": "caption", "video": "video", "audio": "audio"}
    head = dash.inspector_html()
    assert f"volume {viz._style.volume_text(geo['volume'][6])}" in head
    assert f"Least aligned modality: <b>{names[geo['least'][6]]}</b>" in head
    assert all(c in head for c in gallery["captions"][12:14])  # both of clip 6's captions
    assert dash.figures["context"].layout.meta["clip"] == 6
    shown = dash._outputs["context"].outputs[0]["data"]["application/vnd.plotly.v1+json"]  # what JupyterLab draws
    assert shown["layout"]["meta"]["clip"] == 6
    assert dash.figures["neighbours"].meta["clip"] == 6 and dash._neighbours.value == dash.figures["neighbours"].html
    assert dash.figures["gram"].data[0].z[0][1] == pytest.approx(float(F.cosine_similarity(
        gallery["emb"]["text"][12], gallery["emb"]["video"][6], dim=0)))
    assert "undefined without a caption" in (dash.inspect(11) and dash.inspector_html())


def test_a_missing_media_file_is_named_not_fatal(dash, tmp_path):
    dash.media[6][0].unlink()
    dash.inspect(6)
    assert "does not exist" in dash.inspector_html() and dash.inspected == 6
    dash.select([5, 6])
    assert dash._strip.value.count("<audio") == 1 and "does not exist" in dash._strip.value


def test_colour_switch_to_height_colours_each_point_by_its_clip_height(dash, gallery):
    geo = _det_geometry(gallery)
    dash._controls["color"].value = "height"  # the dropdown, as a user switches it
    assert dash.color == "height"
    seen = set()
    for t in dash.map.data:
        if t.customdata is None or t.name == "no height":
            continue
        np.testing.assert_allclose(t.marker.color, geo["height"][list(t.customdata)], rtol=1e-9)
        seen |= set(t.customdata)
    assert seen == set(range(N_CLIPS - 1))
    with pytest.raises(ValueError, match="cannot colour by"):
        dash.color_by("loudness")


def _event(dash, event_type, clips_by_trace):
    """A plotly.js points message, as the browser sends it, for the given points of given traces."""
    xs, ys, inds, traces = [], [], [], []
    for ti, points in clips_by_trace.items():
        for p in points:
            xs.append(dash.map.data[ti].x[p]), ys.append(dash.map.data[ti].y[p])
            inds.append(p), traces.append(ti)
    message = {"event_type": event_type, "points": {"xs": xs, "ys": ys, "point_indexes": inds, "trace_indexes": traces}}
    if event_type == "plotly_selected":
        message["selector"] = {"type": "box", "selector_state": {"xrange": [0, 1], "yrange": [0, 1]}}
    dash.map._handler_js2py_pointsCallback({"new": message})


def test_the_map_callbacks_select_and_inspect(dash):
    wanted = {3, 8, 10}
    hits = {}  # points of those clips in two different traces, as a box over them would report
    for ti, t in enumerate(dash.map.data):
        if t.customdata is not None and t.meta["modality"] in ("video", "text"):
            hits[ti] = [p for p, c in enumerate(t.customdata) if c in wanted]
    _event(dash, "plotly_selected", hits)
    assert dash.selected == sorted(wanted) and {r["clip"] for r in dash.table_rows} == wanted
    ti = next(i for i, t in enumerate(dash.map.data) if t.customdata is not None and t.marker.color != GREY)
    _event(dash, "plotly_click", {ti: [0]})
    assert dash.inspected == dash.map.data[ti].customdata[0]
    _event(dash, "plotly_deselect", {})
    assert dash.selected is None


def test_an_error_in_a_map_callback_shows_on_the_status_line(dash, monkeypatch):
    def broken(clip):
        raise ValueError(f"cannot inspect clip {clip}")

    monkeypatch.setattr(dash, "inspect", broken)
    ti = next(i for i, t in enumerate(dash.map.data) if t.customdata is not None)
    _event(dash, "plotly_click", {ti: [0]})
    assert f"ValueError: cannot inspect clip {dash.map.data[ti].customdata[0]}" in dash._status.value


def test_filter_and_export(dash, gallery, tmp_path):
    geo = _det_geometry(gallery)
    dash.filter(worst=3, by="height")
    assert [r["clip"] for r in dash.table_rows] == np.argsort(-np.nan_to_num(geo["height"], nan=-1))[:3].tolist()
    csv_path, jsonl_path = dash.export(tmp_path / "out")
    rows = [json.loads(line) for line in jsonl_path.read_text().splitlines()]
    assert rows == dash.table_rows and csv_path.read_text().splitlines()[0].startswith("clip,id,caption")
    dash.select([])
    with pytest.raises(ValueError, match="select clips first"):
        dash.export(tmp_path / "none")
