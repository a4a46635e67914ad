"""The Explore tab's dashboard without a browser: its callbacks' values checked against independent
computations (determinants for volumes and heights, brute-force ranks), on a small generated
gallery, an embedding file without captions or media, and a second model saved here (random
weights: never trained in the tests)."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
import torch.nn.functional as F

import gramviz

pytestmark = [pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    from gramviz.app.gallery import ensure_world_gallery
    from gramviz.app.state import DemoState

    folder = ensure_world_gallery(tmp_path_factory.mktemp("explore") / "gallery", n=16, workers=1, progress=False)
    return DemoState.start("world-small", folder, progress=False)


@pytest.fixture(scope="module")
def second_model(tmp_path_factory):
    """A model folder of world-small's shape with random weights."""
    from gramviz.models import GRAMModel

    torch.manual_seed(1)
    bundled = gramviz.load_model("world-small")
    folder = tmp_path_factory.mktemp("second") / "model"
    GRAMModel(bundled.config, bundled.tokenizer).save_pretrained(folder)
    return folder


def _unit(x):
    return F.normalize(x.double(), dim=-1)


def _volume(*vectors):
    a = torch.stack(vectors)
    return float(torch.linalg.det(a @ a.T).clamp(min=0).sqrt())


def _independent(gallery):
    """(volume, base, height, clip rank) of every clip by determinants and a brute-force ranking."""
    emb = {m: _unit(x) for m, x in gallery.embeddings.items()}
    first = gallery.first_caption_rows()
    out = []
    for c in range(gallery.n_clips):
        t, v, a = emb["text"][first[c]], emb["video"][c], emb["audio"][c]
        vol, base = _volume(t, v, a), _volume(v, a)
        others = [_volume(t, emb["video"][j], emb["audio"][j]) for j in range(gallery.n_clips)]
        out.append((vol, base, vol / base, 1 + sum(o < vol - 1e-12 for o in others)))
    return out


def test_a_selection_fills_exactly_those_rows_the_strip_and_greys_the_rest(state):
    from gramviz.app.explore_views import STRIP, TABLE_COLUMNS, parse_selection
    from gramviz.app.tab_explore import _selection

    _, _, gallery = state.snapshot()
    clips = parse_selection(json.dumps({"clips": [11, 2, 5, 2], "n": 3}), gallery.n_clips)
    assert clips == [2, 5, 11]
    out = _selection(state, clips, "selected on the map", "PCA", "class", "")
    chosen, first, _, words, table, *rest = out
    assert chosen == clips and "3 clips selected on the map" in words
    assert list(table.columns) == TABLE_COLUMNS and table["id"].tolist() == [gallery.meta.ids[c] for c in clips]
    truth = _independent(gallery)
    for (_, row), c in zip(table.iterrows(), clips):
        assert row["volume"] == pytest.approx(truth[c][0], abs=1e-4)
        assert row["base"] == pytest.approx(truth[c][1], abs=1e-4)
        assert row["height"] == pytest.approx(truth[c][2], abs=1e-4)
        assert row["caption"] == gallery.clip_caption(c)
    players = rest[:STRIP]
    assert [p.value["orig_name"] for p in players[:3]] == [gallery.videos[c].name for c in clips]
    assert [p.label.split()[0] for p in players[:3]] == [gallery.meta.ids[c] for c in clips]
    assert [p.visible for p in players] == [True] * 3 + [False] * (STRIP - 3)
    assert first.layout.meta["selected"] == clips
    greyed = {c for t in first.data if t.name == "not selected" for c in t.customdata}
    assert greyed == set(range(gallery.n_clips)) - set(clips)  # the others greyed, not hidden
    csv_button, jsonl_button = rest[STRIP:]
    assert (csv_button.value["orig_name"], jsonl_button.value["orig_name"]) == ("selection.csv", "selection.jsonl")


def test_bad_selections_are_refused_with_a_message():
    from gramviz.app.explore_views import parse_click, parse_selection

    assert parse_selection("", 5) is None and parse_click(None, 5) is None
    with pytest.raises(ValueError, match="unreadable selection"):
        parse_selection("{not json", 5)
    with pytest.raises(ValueError, match="clips 0 to 4"):
        parse_selection('{"clips": [1, 7]}', 5)
    with pytest.raises(ValueError, match="clips 0 to 4"):
        parse_click('{"clip": 1.5}', 5)


def test_the_inspector_of_one_clip(state):
    from gramviz.app.explore_views import inspect

    _, _, gallery = state.snapshot()
    clip = 6
    view = inspect(gallery, clip)
    emb = {m: _unit(x) for m, x in gallery.embeddings.items()}
    t, v, a = emb["text"][gallery.first_caption_rows()[clip]], emb["video"][clip], emb["audio"][clip]
    heights = {"caption": _volume(t, v, a) / _volume(v, a), "video": _volume(t, v, a) / _volume(t, a),
               "audio": _volume(t, v, a) / _volume(t, v)}
    worst = max(heights, key=heights.get)
    assert gallery.meta.ids[clip] in view.summary and f"Least aligned: the {worst}" in view.summary
    for caption in [gallery.caption(r) for r, c in enumerate(gallery.caption_clips()) if c == clip]:
        assert caption in view.summary
    assert view.video == str(gallery.videos[clip]) and view.audio.endswith(".wav")
    assert view.parallelotope.layout.meta["volume"] == pytest.approx(_volume(t, v, a), abs=1e-6)
    gram = [list(r) for r in view.gram.data[0].z]
    assert gram[0][1] == pytest.approx(float(t @ v), abs=1e-3)
    assert view.context.layout.meta["clip"] == clip
    assert view.context.layout.meta["height"] == pytest.approx(heights["caption"], abs=1e-6)
    # five nearest by volume and by cosine, both named in the side-by-side table
    anchor = F.normalize(v + a, dim=-1)
    by_volume = sorted((j for j in range(gallery.n_clips) if j != clip),
                       key=lambda j: _volume(anchor, emb["video"][j], emb["audio"][j]))[:5]
    assert [c for c, _ in view.inspection.by_volume] == by_volume
    for c in by_volume + [c for c, _ in view.inspection.by_cosine]:
        assert gallery.meta.ids[c] in view.neighbours


def test_colour_by_height_paints_each_clip_its_height(state):
    from gramviz.app.explore_data import explore_map

    _, _, gallery = state.snapshot()
    truth = _independent(gallery)
    fig = explore_map(gallery, "pca", "height")
    painted = 0
    for trace in fig.data:
        if trace.customdata is None or not isinstance(trace.marker.color, tuple):
            continue
        for clip, colour in zip(trace.customdata, trace.marker.color):
            assert colour == pytest.approx(truth[clip][2], abs=1e-9)
            painted += 1
    assert painted == 3 * gallery.n_clips and fig.layout.meta["color_name"] == "height"
    by_class = explore_map(gallery, "pca", "class")
    names = {t.name for t in by_class.data if t.customdata is not None}
    assert names <= {gallery.class_name(c) for c in range(gallery.n_clips)}


def test_the_filter_selects_the_worst_clips_and_a_class(state):
    from gramviz.app.explore_views import class_choices, filter_selection

    _, _, gallery = state.snapshot()
    truth = _independent(gallery)
    worst = filter_selection(gallery, 4, "height", "any", "")
    assert worst == sorted(range(gallery.n_clips), key=lambda c: -truth[c][2])[:4]
    klass = class_choices(gallery)[1]
    assert filter_selection(gallery, 0, "volume", klass, None) == [c for c in range(gallery.n_clips)
                                                                    if gallery.class_name(c) == klass]
    with pytest.raises(ValueError, match="unknown column"):
        filter_selection(gallery, 3, "loudness", "any", None)


def test_export_writes_csv_and_jsonl_that_read_back_to_the_rows(state, tmp_path):
    from gramviz.app.explore_data import gallery_metrics
    from gramviz.app.explore_views import export_selection
    from gramviz.exploration import selection_rows

    _, _, gallery = state.snapshot()
    clips = [1, 4, 9]
    rows = selection_rows(gallery_metrics(gallery), clips)
    csv_file, jsonl_file = export_selection(gallery, clips, tmp_path)
    assert [json.loads(line) for line in jsonl_file.read_text().splitlines()] == rows
    with csv_file.open(newline="") as f:
        back = list(csv.DictReader(f))
    assert [r["id"] for r in back] == [gallery.meta.ids[c] for c in clips]
    for r, want in zip(back, rows):
        assert r["caption"] == want["caption"] and int(r["caption_rank"]) == want["caption_rank"]
        assert float(r["volume"]) == pytest.approx(want["volume"], rel=1e-12)


def test_comparing_with_a_second_model_ranks_each_clip_as_each_model_does(state, second_model):
    from gramviz.app.explore_compare import COMPARE_COLUMNS
    from gramviz.app.explore_panels import load_comparison
    from gramviz.app.gallery import open_gallery

    _, _, gallery = state.snapshot()
    source, words, table, scatter, *players = load_comparison(state, str(second_model))
    assert source == str(second_model) and "A = world-small" in words and scatter.visible
    assert list(table.columns) == COMPARE_COLUMNS and len(table) == gallery.n_clips
    independent = open_gallery(gallery.source, gramviz.load_model(second_model), cache=False)
    rank_a = {gallery.meta.ids[c]: r[3] for c, r in enumerate(_independent(gallery))}
    rank_b = {gallery.meta.ids[c]: r[3] for c, r in enumerate(_independent(independent))}
    assert dict(zip(table["id"], table["rank A"])) == rank_a
    assert dict(zip(table["id"], table["rank B"])) == rank_b
    gaps = [abs(math.log2(a) - math.log2(b)) for a, b in zip(table["rank A"], table["rank B"])]
    assert gaps == sorted(gaps, reverse=True) and players[0].visible  # the largest disagreement first, playable


def test_second_embedding_files_must_be_of_the_same_clips(state, tmp_path):
    from gramviz.app.explore_compare import second_gallery
    from gramviz.app.explore_panels import load_comparison
    from gramviz.app.gallery import GalleryError

    model, name, gallery = state.snapshot()
    same = tmp_path / "same.safetensors"
    gramviz.save_embeddings(same, gallery.embeddings, gallery.meta)
    assert second_gallery(gallery, str(same), model, name).meta.ids == gallery.meta.ids
    other = tmp_path / "other.safetensors"
    keep = list(range(gallery.n_clips - 1))
    meta = gramviz.EmbeddingMetadata(ids=[gallery.meta.ids[c] for c in keep])
    gramviz.save_embeddings(other, {m: gallery.embeddings[m][keep] for m in ("video", "audio")}, meta)
    with pytest.raises(GalleryError, match="not of this gallery's clips"):
        second_gallery(gallery, str(other), model, name)
    with pytest.raises(ValueError, match="give a second model"):
        second_gallery(gallery, " ", model, name)
    quiet = load_comparison(state, str(tmp_path / "missing.safetensors"), quiet=True)
    assert quiet[0] == "" and "no such embedding file" in quiet[1]


def test_a_gallery_without_captions_or_media_degrades_gracefully(state, tmp_path):
    from gramviz.app.explore_compare import second_gallery
    from gramviz.app.explore_data import explore_map
    from gramviz.app.explore_views import describe_selection, inspect, selection_table, strip_items
    from gramviz.app.gallery import GalleryError, open_gallery

    model, name, gallery = state.snapshot()
    f = tmp_path / "bare.safetensors"
    gramviz.save_embeddings(f, {m: gallery.embeddings[m] for m in ("video", "audio")},
                            gramviz.EmbeddingMetadata(ids=list(gallery.meta.ids)))
    bare = open_gallery(f, model)
    fig = explore_map(bare, "pca", "height", selected=[0, 1])
    assert fig.layout.meta["selected"] == [0, 1] and any(t.name == "no height" for t in fig.data)
    assert explore_map(bare, "pca", "class").layout.meta["color_name"] == "modality"
    assert selection_table(bare, [0])[0][4] == ""  # no caption: no height
    assert "no video files" in describe_selection(bare, [0, 1])
    assert strip_items(bare, [0], 2) == [(None, f"{bare.meta.ids[0]} (no video file)"), None]
    view = inspect(bare, 0)
    assert "No caption" in view.summary and view.video is None and view.parallelotope is not None
    with pytest.raises(GalleryError, match="embedding file"):
        second_gallery(bare, "world-small", model, name)
    # one clip: nothing to map, the rest of the tab still works and says why
    from gramviz.app.explore_panels import about
    from gramviz.app.state import DemoState
    from gramviz.app.tab_explore import _selection

    one = tmp_path / "one.safetensors"
    gramviz.save_embeddings(one, {m: gallery.embeddings[m][:1] for m in ("video", "audio")},
                            gramviz.EmbeddingMetadata(ids=[gallery.meta.ids[0]]))
    single = DemoState(model, name, open_gallery(one, model))
    out = _selection(single, [0], "selected by the filter", "PCA", "volume", "")
    assert out[1] is None and out[4]["id"].tolist() == [gallery.meta.ids[0]]
    assert "nothing to map" in about(single.snapshot()[2], "volume")


def test_the_launcher_passes_the_selection_bridge_and_the_compare_option():
    from gramviz.app import launch

    args = launch.parse_args(["--compare", "runs/study/pairwise/seed-0/final"])
    assert args.compare == "runs/study/pairwise/seed-0/final" and launch.parse_args([]).compare is None
    state = type("S", (), {"snapshot": lambda self: (None, None, type("G", (), {"media_folders": list})())})()
    options = launch.launch_options(state, args)
    assert "plotly_selected" in options["js"] and "explore-selection" in options["css"]
