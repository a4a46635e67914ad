"""ClipDataset on small clips written here: JSONL, CSV and GRAM JSON annotations, missing
modalities kept and flagged, errors on load, and batches with presence masks."""

import csv
import json
from pathlib import Path

import pytest
import torch
from test_media import SR, write_media

from gramviz.datasets import (
    AnnotationError,
    ClipDataset,
    ClipRecord,
    ClipSettings,
    collate_clips,
    number_classes,
    read_annotations,
)
from gramviz.media import MediaError, read_clip

SETTINGS = ClipSettings(num_frames=3, frame_size=(16, 24), sample_rate=SR, audio_seconds=0.5)


def make_world(root: Path) -> Path:
    """Five clips covering every case, in the generated world's JSONL schema."""
    (root / "videos").mkdir(parents=True)
    (root / "audio").mkdir()
    write_media(root / "videos/a.mp4", "h264", None, seconds=1)
    write_media(root / "audio/a.wav", None, "pcm_s16le", seconds=1)
    write_media(root / "videos/b.mp4", "h264", "aac", seconds=1)
    write_media(root / "videos/c.mp4", "h264", None, seconds=1)
    write_media(root / "videos/d.mp4", "h264", "aac", seconds=1)
    write_media(root / "audio/e.wav", None, "pcm_s16le", seconds=1)
    rows = [
        {"id": "test-a", "video": "videos/a.mp4", "audio": "audio/a.wav", "captions": ["a red ball", "red"],
         "class": "ball", "class_id": 3, "factors": {"speed": 1}},
        {"id": "test-b", "video": "videos/b.mp4", "captions": ["own track"], "class": "drum", "class_id": 1},
        {"video": "videos/c.mp4", "caption": "silent"},  # id from the stem, no class
        {"id": "test-d", "video": "videos/d.mp4", "audio": "audio/gone.wav", "captions": ["x"], "class_id": 3},
        {"id": "test-e", "audio": "audio/e.wav", "captions": ["only sound"], "class": "drum", "class_id": 1},
    ]
    path = root / "test.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    return make_world(tmp_path_factory.mktemp("world"))


def test_jsonl_items_keep_every_clip_and_flag_missing_modalities(world):
    ds = ClipDataset(world, SETTINGS)
    assert len(ds) == 5 and [r.id for r in ds.records] == ["test-a", "test-b", "c", "test-d", "test-e"]
    items = [ds[i] for i in range(5)]
    assert [it["missing"] for it in items] == [[], [], ["audio"], ["audio"], ["video"]]
    assert items[0]["captions"] == ["a red ball", "red"] and items[2]["captions"] == ["silent"]
    assert [it["class_id"] for it in items] == [3, 1, None, 3, 1]
    assert ds.classes == [None, "drum", None, "ball"]
    assert ds.records[0].extra == {"factors": {"speed": 1}}
    assert items[0]["video"].shape == (3, 3, 16, 24) and items[4]["video"] is None
    assert items[0]["audio"].shape == (SR // 2,)  # cut to audio_seconds
    # the separate file replaces the video's track: same samples as decoding it directly
    direct = read_clip(world.parent / "videos/a.mp4", world.parent / "audio/a.wav", num_frames=3,
                       size=(16, 24), max_audio_seconds=0.5)
    assert torch.equal(items[0]["video"], direct.video) and torch.equal(items[0]["audio"], direct.audio)


def test_summary_counts_missing_modalities_with_reasons(world):
    ds = ClipDataset(world, SETTINGS)
    text = ds.summary()
    assert "5 clips, 6 captions" in text
    assert "video: 4 present, 1 missing (1 audio-only clip)" in text
    assert "audio: 3 present, 2 missing (1 audio file missing, 1 no audio track)" in text
    assert ds.missing(2) == {"audio": "no audio track"} and ds.missing(0) == {}
    assert text in repr(ds) and "test.jsonl" in repr(ds)


def test_unprobed_audio_tracks_are_learnt_by_check(world):
    ds = ClipDataset(world, SETTINGS, probe=False)
    assert ds.missing(1) is None and "not yet probed for 2 clips" in ds.summary()
    assert ds.check(progress=False) == {}
    assert "probed" not in ds.summary() and "1 no audio track" in ds.summary()


def test_broken_media_fail_only_when_loaded_naming_the_file(tmp_path):
    make_world(tmp_path)
    (tmp_path / "videos/b.mp4").write_bytes(b"not a video at all" * 100)
    (tmp_path / "videos/c.mp4").unlink()
    ds = ClipDataset(tmp_path / "test.jsonl", SETTINGS)  # construction still works
    assert ds[0]["id"] == "test-a"
    with pytest.raises(MediaError, match="b.mp4"):
        ds[1]
    with pytest.raises(MediaError, match="c.mp4: no such file"):
        ds[2]
    errors = ds.check(progress=False)
    assert sorted(Path(p).name for p in errors) == ["b.mp4", "c.mp4"]


def test_csv_rows_of_one_clip_merge_and_classes_are_numbered(tmp_path):
    for name in ("x", "y"):
        write_media(tmp_path / f"{name}.mkv", "h264", "aac", seconds=1)
    rows = [
        {"video": "x.mkv", "caption": "first", "captions": "", "class": "zebra"},
        {"video": "y.mkv", "caption": "", "captions": "one|two | three", "class": "ant"},
        {"video": "x.mkv", "caption": "second", "captions": "", "class": "zebra"},
    ]
    path = tmp_path / "clips.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, ["video", "caption", "captions", "class"])
        w.writeheader()
        w.writerows(rows)
    ds = ClipDataset(path, SETTINGS)
    assert [r.id for r in ds.records] == ["x", "y"]
    assert ds[0]["captions"] == ["first", "second"] and ds[1]["captions"] == ["one", "two", "three"]
    assert ds.classes == ["ant", "zebra"] and ds.class_ids == [1, 0]
    rows.append({"video": "x.mkv", "caption": "third", "captions": "", "class": "ant"})
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, ["video", "caption", "captions", "class"])
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(AnnotationError, match="clips.csv:5: clip 'x' has other media or class"):
        read_annotations(path)


def test_gram_json_finds_videos_by_id_with_any_extension(tmp_path):
    vids = tmp_path / "videos"
    vids.mkdir()
    write_media(vids / "video7020.mov", "h264", "aac", seconds=1)
    write_media(vids / "video9.mkv", "h264", None, seconds=1)
    (vids / "video9.txt").write_text("not a video")
    ann = [
        {"video_id": "video7020", "desc": "a woman sings"},
        {"video_id": "video9", "desc": ["a dog", "a puppy"]},
        {"video_id": "video7020", "desc": ["she sings loudly"]},
        {"video_id": "lost", "desc": "nowhere"},
    ]
    path = tmp_path / "ann" / "test.json"
    path.parent.mkdir()
    path.write_text(json.dumps(ann))
    ds = ClipDataset(path, SETTINGS, video_dir=vids)
    assert [r.id for r in ds.records] == ["video7020", "video9", "lost"]
    assert ds[0]["captions"] == ["a woman sings", "she sings loudly"] and ds[0]["audio"] is not None
    assert ds.records[1].video.name == "video9.mkv" and ds[1]["missing"] == ["audio"]
    with pytest.raises(MediaError, match="lost.mp4: no such file"):
        ds[2]
    with pytest.raises(AnnotationError, match="test.json: video folder .*nowhere does not exist"):
        read_annotations(path, video_dir=tmp_path / "nowhere")
    assert read_annotations(path)[0].video == path.parent / "video7020.mp4"  # default: the file's folder

@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "bad.jsonl:2: not valid JSON"),
        ('["a list"]', "bad.jsonl:2: expected a JSON object"),
        ('{"captions": ["x"]}', "bad.jsonl:2: needs a 'video' or an 'audio' path"),
        ('{"video": "v.mp4"}', "bad.jsonl:2: needs 'captions' or 'caption'"),
        ('{"video": "v.mp4", "captions": ["", " "]}', "bad.jsonl:2: 'captions' holds no non-empty caption"),
        ('{"video": "v.mp4", "caption": 5}', "bad.jsonl:2: 'caption' must be a string or a list"),
        ('{"video": "v.mp4", "caption": "x", "class_id": "three"}', "bad.jsonl:2: 'class_id' must be an integer"),
        ('{"video": "v.mp4", "caption": "x", "class_id": -1}', "bad.jsonl:2: 'class_id' must be a non-negative"),
        ('{"video": "w/ok.mp4", "caption": "x"}', "bad.jsonl: clip id 'ok' appears more than once"),
    ],
)
def test_malformed_annotations_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"video": "ok.mp4", "caption": "fine"}\n' + line + "\n")
    with pytest.raises(AnnotationError, match=message):
        read_annotations(path)


def test_annotation_file_errors(tmp_path):
    with pytest.raises(AnnotationError, match="missing.jsonl: no such annotation file"):
        ClipDataset(tmp_path / "missing.jsonl")
    with pytest.raises(AnnotationError, match="unknown annotation format '.yaml'"):
        read_annotations(tmp_path / "x.yaml")
    (tmp_path / "g.json").write_text('{"video_id": "a"}')
    with pytest.raises(AnnotationError, match="g.json: expected a JSON list"):
        read_annotations(tmp_path / "g.json")
    (tmp_path / "g.json").write_text('[{"video_id": "a"}]')
    with pytest.raises(AnnotationError, match="g.json: entry 0: needs 'video_id' and 'desc'"):
        read_annotations(tmp_path / "g.json")
    assert issubclass(AnnotationError, ValueError)


def test_number_classes_keeps_explicit_ids_and_numbers_the_rest():
    rec = lambda i, name, cid: ClipRecord(str(i), Path(f"{i}.mp4"), None, ("c",), name, cid)  # noqa: E731
    ids, names = number_classes([rec(0, "cat", 2), rec(1, "dog", None), rec(2, "cat", None), rec(3, None, None),
                                 rec(4, "ant", None), rec(5, None, 0)])
    assert ids == [2, 4, 2, None, 3, 0] and names == [None, None, "cat", "ant", "dog"]
    with pytest.raises(AnnotationError, match="class_id 1 names two classes: 'a' and 'b'"):
        number_classes([rec(0, "a", 1), rec(1, "b", 1)])


def test_collate_stacks_present_modalities_and_masks_missing_ones(world):
    ds = ClipDataset(world, SETTINGS)
    loader = torch.utils.data.DataLoader(ds, batch_size=5, collate_fn=ds.collate)
    batch = next(iter(loader))
    assert batch["id"] == ["test-a", "test-b", "c", "test-d", "test-e"]
    assert batch["video"].shape == (5, 3, 3, 16, 24) and batch["audio"].shape == (5, SR // 2)
    assert batch["present"]["video"].tolist() == [True, True, True, True, False]
    assert batch["present"]["audio"].tolist() == [True, True, False, False, True]
    assert batch["class_id"].tolist() == [3, 1, -1, 3, 1]
    assert batch["audio_lengths"].tolist() == [SR // 2, SR // 2, 0, 0, SR // 2]
    assert not batch["video"][4].any() and not batch["audio"][2:4].any()
    assert torch.equal(batch["video"][0], ds[0]["video"]) and batch["captions"][0] == ["a red ball", "red"]


def test_collate_pads_and_cuts_audio():
    item = lambda n: {"id": "i", "captions": ["c"], "video": None, "audio": torch.arange(1.0, n + 1),  # noqa: E731
                      "class_id": 0, "missing": ["video"]}
    settings = ClipSettings(num_frames=2, frame_size=(4, 4), sample_rate=10, audio_seconds=0.5)
    fixed = collate_clips([item(3), item(8)], settings)
    assert fixed["audio"].tolist() == [[1, 2, 3, 0, 0], [1, 2, 3, 4, 5]]
    assert fixed["audio_lengths"].tolist() == [3, 5]
    assert fixed["video"].shape == (2, 2, 3, 4, 4) and not fixed["present"]["video"].any()
    longest = collate_clips([item(3), item(8)])
    assert longest["audio"].shape == (2, 8) and longest["video"] is None
    with pytest.raises(ValueError, match="empty batch"):
        collate_clips([])


def test_settings_are_checked():
    with pytest.raises(ValueError, match="positive"):
        ClipSettings(num_frames=0)
    with pytest.raises(ValueError, match="audio_seconds"):
        ClipSettings(audio_seconds=0)
    assert ClipSettings(audio_seconds=1.5, sample_rate=8000).audio_samples == 12000
