"""The demo on a plain folder of the user's own clips, without captions; and the words a model ignores.

A folder holding only media files (the generated world's mp4s, copied without captions.jsonl) is a
gallery: typed text ranks its clips as a float64 brute force over embeddings computed here from the
files (`gramviz.media.read_clip`, the model's encoders) ranks them, a clip finds itself, the Explore
map names clips by file, damaged files are skipped with a note naming them, an empty folder is
refused by name, and the cache key follows the files. The endpoints answer on such a gallery
through gradio_client. Typed words the model does not know are named beside the score and the
ranking, in the page's text and in what the endpoints return.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import gradio_client
import pytest
import torch
from web import free_port

import gramviz
import gramviz.evaluation
from gramviz.app.gallery import GalleryError, gallery_map, open_gallery
from gramviz.app.scoring import describe_score, score_upload
from gramviz.app.searching import (
    captions_of_clip,
    clips_like_clip,
    describe_results,
    endpoint_results,
    search_by_caption,
    search_by_clip,
    search_by_text,
)
from gramviz.app.uploads import check_text
from gramviz.media import read_clip

pytestmark = [pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
              pytest.mark.filterwarnings("ignore:.*does not know these words")]  # the model warns about them too
AppError = gradio_client.exceptions.AppError
UNKNOWN = "A cat is meowing"  # "cat" and "meowing" are in no caption of the generated world


@pytest.fixture(scope="module")
def model():
    return gramviz.load_model("world-small")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Eight clips of the generated world (captions.jsonl, videos/*.mp4 with sound, audio/*.wav)."""
    from gramviz.app.gallery import ensure_world_gallery

    return ensure_world_gallery(tmp_path_factory.mktemp("folder") / "world", n=8, workers=1, progress=False)


def _records(world):
    return [json.loads(line) for line in (world / "captions.jsonl").read_text().splitlines()]


def _plain_copy(world, folder):
    """The world's mp4 files alone, the last two in a sub-folder: a user's folder of clips."""
    (folder / "more").mkdir(parents=True)
    videos = sorted((world / "videos").glob("*.mp4"))
    for i, v in enumerate(videos):
        shutil.copy(v, folder / ("more" if i >= 6 else "") / v.name)
    return folder


@pytest.fixture(scope="module")
def plain(world, tmp_path_factory):
    return _plain_copy(world, tmp_path_factory.mktemp("plain") / "clips")


@pytest.fixture(scope="module")
def gallery(plain, model):
    return open_gallery(plain, model, cache=False)


def _expected_ids(world):
    ids = [r["id"] for r in _records(world)]
    return sorted(ids[:6] + [f"more/{i}" for i in ids[6:]])


def test_a_folder_of_clips_without_captions_is_a_gallery(gallery, plain, world):
    assert gallery.meta.ids == _expected_ids(world)  # sorted by relative path, ids without suffix
    assert gallery.n_captions == 0 and "text" not in gallery.embeddings and gallery.notes == []
    assert set(gallery.embeddings) == {"video", "audio"} and all(v is not None and v.is_file() for v in gallery.videos)
    assert gallery.source == plain.resolve() and gallery.clip_labels() == gallery.meta.ids


def test_a_folder_is_read_as_one_record_per_media_file(tmp_path):
    from gramviz.datasets import read_media_folder

    for name in ("dog.mp4", "dog.WAV", "b/c.MKV", "b/.d.mp4", ".cache/e.mp4", "notes.txt", "f.flac"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    records = read_media_folder(tmp_path)
    assert [r.id for r in records] == ["b/c", "dog.WAV", "dog.mp4", "f"]  # a shared stem keeps its suffix
    assert [(r.video is not None, r.audio is not None, r.captions) for r in records] == [
        (True, False, ()), (False, True, ()), (True, False, ()), (False, True, ())]


def _brute_volumes(query, video, audio):
    """Float64 sqrt(det(Gram)) of (query, video_j, audio_j) for every clip j."""
    out = []
    for v, a in zip(video.double(), audio.double()):
        m = torch.stack([query.double(), v, a])
        out.append(torch.linalg.det(m @ m.T).clamp(min=0).sqrt())
    return torch.stack(out)


def _embed_files(model, files):
    """Each file's video and audio embedding, decoded and encoded here (not through the gallery)."""
    c, rows = model.config, {"video": [], "audio": []}
    with torch.no_grad():
        for f in files:
            clip = read_clip(f, None, c.num_frames, tuple(c.frame_size), c.sample_rate, c.audio_seconds)
            emb = model.encode({"video": clip.video[None], "audio": clip.audio[None]})
            rows["video"].append(emb["video"][0])
            rows["audio"].append(emb["audio"][0])
    return {m: torch.stack(x) for m, x in rows.items()}


def test_text_search_ranks_clips_without_captions_as_a_brute_force(gallery, model, world):
    records = _records(world)
    emb = _embed_files(model, gallery.videos)
    torch.testing.assert_close(gallery.embeddings["video"], emb["video"], atol=1e-4, rtol=1e-4)
    own_first = 0
    for j, record in enumerate(records):
        caption = record["captions"][0]
        result = search_by_text(model, gallery, caption, k=8)
        reference = _brute_volumes(model.encode_text([caption])[0], emb["video"], emb["audio"])
        order = torch.sort(reference, stable=True).indices
        assert [r["id"] for r in result.results] == [gallery.meta.ids[i] for i in order]
        torch.testing.assert_close(torch.tensor([r["volume"] for r in result.results]), reference[order].float(),
                                   atol=1e-4, rtol=1e-4)
        assert all(r["caption"] == "" and r["class"] is None for r in result.results)
        own_first += result.results[0]["id"].endswith(record["id"])
    assert own_first >= 6  # a clip's true caption finds that clip first (with no caption stored for it)
    first = search_by_text(model, gallery, records[2]["captions"][0], k=3).results[0]
    assert first["id"] == records[2]["id"]


def test_a_clip_finds_the_clips_most_like_it(gallery, model, plain, world):
    ids = gallery.meta.ids
    upload = plain / "test-000003.mp4"
    result = search_by_clip(model, gallery, upload, None, k=4)
    assert result.results[0]["id"] == "test-000003" and result.correct == [ids.index("test-000003")]
    assert len(result.results) == 4 and any("no captions" in n for n in result.notes)
    volumes = [r["volume"] for r in result.results]
    assert volumes == sorted(volumes) and volumes[0] < 0.05  # the clip's own video and audio span its anchor
    own = clips_like_clip(gallery, "more/test-000007", k=3)
    assert own.results[0]["id"] == "more/test-000007" and own.query == "clip more/test-000007"
    empty = captions_of_clip(gallery, "test-000001")
    assert empty.results == [] and "holds no captions" in empty.notes[0]
    with pytest.raises(ValueError, match="holds no captions"):
        search_by_caption(gallery, "a red ball", model=model)


def test_the_explore_map_draws_clips_named_by_file(gallery):
    fig = gallery_map(gallery, "pca")
    assert [t.name for t in fig.data] == ["video", "audio"]  # no caption points: no clip has one
    shown = json.dumps(fig.to_plotly_json()["data"])
    assert "test-000000.mp4" in shown and "more/test-000006" in shown


def test_damaged_files_are_skipped_with_a_note_naming_them(world, tmp_path, model, monkeypatch):
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = sorted((world / "videos").glob("*.mp4"))
    for v in good[:3]:
        shutil.copy(v, folder)
    shutil.copy(world / "audio" / "test-000004.wav", folder / "sound.wav")  # a sound file: an audio-only clip
    (folder / "cut.mp4").write_bytes(good[5].read_bytes()[: good[5].stat().st_size // 2])
    (folder / "notes.mov").write_text("not a video\n" * 40)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "readme.txt").write_text("not media: ignored")
    gallery = open_gallery(folder, model)
    assert gallery.meta.ids == ["sound", "test-000000", "test-000001", "test-000002"]
    notes = "\n".join(gallery.notes)
    assert "skipped cut.mp4: the file is truncated" in notes and "skipped notes.mov: not a readable" in notes
    assert "skipped empty.wav: the file is empty" in notes and "readme" not in notes and len(gallery.notes) == 3
    assert gallery.videos[0] is None and gallery.index.present.tolist() == [False, True, True, True]
    assert "1 clips lacking video or audio were left out" in search_by_text(model, gallery, "a red ball").notes[0]
    calls = []
    real = gramviz.evaluation.embed_dataset
    monkeypatch.setattr(gramviz.evaluation, "embed_dataset", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = open_gallery(folder, model)  # from the cache: the same notes, no file decoded
    assert calls == [] and again.notes == gallery.notes and again.key == gallery.key


def test_a_file_that_fails_only_when_decoded_is_skipped_too(world, tmp_path, model, monkeypatch):
    from gramviz.app import gallery_folder
    from gramviz.app.uploads import MediaInfo

    folder = tmp_path / "late"
    folder.mkdir()
    for v in sorted((world / "videos").glob("*.mp4"))[:2]:
        shutil.copy(v, folder)
    (folder / "z-noise.mp4").write_bytes(os.urandom(20000))
    passes = lambda path: MediaInfo(Path(path).name, True, True, 64, 64, 1.0)
    monkeypatch.setattr(gallery_folder, "probe_media", passes)  # only decoding finds the damage
    gallery = open_gallery(folder, model, cache=False)
    assert gallery.meta.ids == ["test-000000", "test-000001"]
    assert len(gallery.notes) == 1 and gallery.notes[0].startswith("skipped z-noise.mp4: not a readable media file")


def test_an_empty_folder_or_one_without_media_is_refused_by_name(tmp_path, model, world):
    (tmp_path / "empty").mkdir()
    with pytest.raises(GalleryError, match=r"empty: holds no captions.jsonl and no video or audio files"):
        open_gallery(tmp_path / "empty", model)
    (tmp_path / "docs" / ".hidden").mkdir(parents=True)
    (tmp_path / "docs" / "notes.txt").write_text("hello")
    shutil.copy(min((world / "videos").glob("*.mp4")), tmp_path / "docs" / ".hidden" / "a.mp4")
    with pytest.raises(GalleryError, match="docs: holds no captions.jsonl"):
        open_gallery(tmp_path / "docs", model)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "a.mp4").write_bytes(b"\x00" * 1000)
    with pytest.raises(GalleryError, match=r"broken: none of its 1 media files can be read \(a.mp4: not a readable"):
        open_gallery(tmp_path / "broken", model)


def test_the_cache_key_follows_the_folders_files(world, tmp_path, model):
    folder = _plain_copy(world, tmp_path / "clips")
    first = open_gallery(folder, model)
    assert open_gallery(folder, model).key == first.key
    clip = folder / "test-000001.mp4"
    os.utime(clip, ns=(clip.stat().st_atime_ns, clip.stat().st_mtime_ns + 10**9))  # rewritten
    touched = open_gallery(folder, model)
    assert touched.key != first.key
    clip.unlink()
    fewer = open_gallery(folder, model)
    assert fewer.key not in (first.key, touched.key) and fewer.n_clips == 7 and "test-000001" not in fewer.meta.ids


def test_a_folder_with_captions_for_some_clips_opens_as_before(world, tmp_path, model):
    folder = Path(shutil.copytree(world, tmp_path / "some", ignore=shutil.ignore_patterns(".gramviz-cache")))
    lines = (folder / "captions.jsonl").read_text().splitlines()
    (folder / "captions.jsonl").write_text("\n".join(lines[:3]) + "\n")
    gallery = open_gallery(folder, model, cache=False)
    assert gallery.meta.ids == [r["id"] for r in _records(world)[:3]] and gallery.n_captions == 9


# --- the words the model ignored ---------------------------------------------------------------

def test_the_score_names_the_ignored_words_beside_the_volume(model, world):
    assert {"cat", "meowing"}.isdisjoint(model.tokenizer.vocab) and {"a", "is"} <= set(model.tokenizer.vocab)
    gallery = open_gallery(world, model, cache=False)
    out = score_upload(model, world / "videos" / "test-000000.mp4", None, UNKNOWN, gallery)
    assert out.summary["ignored_words"] == ["cat", "meowing"]
    text = describe_score(out.summary)
    first = text.split("\n\n")[0]  # the volume's own paragraph
    assert first.startswith("**GRAM volume") and "ignored words (not in the model's vocabulary): cat, meowing" in first
    assert "only 'a is' was scored" in first
    known = score_upload(model, world / "videos" / "test-000000.mp4", None, _records(world)[0]["captions"][0])
    assert known.summary["ignored_words"] == [] and "ignored" not in describe_score(known.summary)


def test_the_text_search_names_the_ignored_words_beside_the_ranking(model, gallery):
    result = search_by_text(model, gallery, UNKNOWN, k=3)
    line = describe_results(result, gallery.n_clips, "clips")
    assert line.startswith('Top 3 of 8 clips for "A cat is meowing"')
    assert "Ignored words (not in the model's vocabulary): cat, meowing — only 'a is' was scored" in line
    assert all("cat, meowing" in item["notes"][0] for item in endpoint_results(result))


class _SubwordTokenizer:
    """Only the text protocol: ``unknown_words`` and ``encode``; no vocab, split or index."""

    def __init__(self, inner, unknown):
        self.inner, self.unknown = inner, unknown

    def unknown_words(self, texts):
        return list(self.unknown)

    def encode(self, texts, max_len):
        return self.inner.encode(texts, max_len)


def test_check_text_needs_only_the_tokenizer_protocol(model):
    class Model:
        config = model.config
        tokenizer = _SubwordTokenizer(model.tokenizer, [])

    assert check_text("Ein Hund bellt", Model()) == ("Ein Hund bellt", [])  # a subword tokenizer reads every word
    Model.tokenizer = _SubwordTokenizer(model.tokenizer, ["bellt"])
    assert check_text("Ein Hund bellt", Model())[1] == [
        "ignored words (not in the model's vocabulary): bellt — only 'ein hund' was scored"]
    Model.tokenizer = _SubwordTokenizer(model.tokenizer, ["ein", "hund", "bellt"])  # no vocab: no refusal
    assert "ein, hund, bellt" in check_text("Ein Hund bellt", Model())[1][0]
    long = check_text("ball " * 40, Model())[1]
    assert long[-1] == "the model reads the first 32 tokens; 9 more were ignored"
    with pytest.raises(ValueError, match="none of the words of the text"):
        check_text("Ein Hund bellt", model)  # word-level: nothing it knows


# --- the endpoints on a folder gallery --------------------------------------------------------

@pytest.fixture(scope="module")
def app(plain):
    from gramviz.app import launch
    from gramviz.app.state import DemoState

    state = DemoState.start("world-small", plain, progress=False)
    demo = launch.build_demo(state)
    args = launch.parse_args(["--port", str(free_port())])
    demo.launch(prevent_thread_lock=True, quiet=True, **launch.launch_options(state, args))
    client = gradio_client.Client(demo.local_url, verbose=False, download_files=False)
    yield client, state
    demo.close()


def test_the_endpoints_answer_on_a_folder_without_captions(app, plain, world):
    client, state = app
    assert state.snapshot()[2].n_captions == 0
    caption = _records(world)[2]["captions"][0]
    hits = client.predict(caption, 3, api_name="/search_by_text")
    assert hits[0]["id"] == "test-000002" and [h["rank"] for h in hits] == [1, 2, 3]
    assert all(h["caption"] == "" and h["notes"] == [] for h in hits)
    unknown = client.predict(UNKNOWN, 2, api_name="/search_by_text")
    assert "cat, meowing" in unknown[0]["notes"][0]
    like = client.predict(gradio_client.handle_file(str(plain / "more" / "test-000006.mp4")), None, 3,
                          api_name="/search_by_clip")
    assert like[0]["id"] == "more/test-000006" and "no captions" in like[0]["notes"][-1]
    assert client.predict("test-000001", 5, "volume", api_name="/captions_of_clip") == []
    with pytest.raises(AppError, match="holds no captions"):
        client.predict("a red ball", 5, "volume", api_name="/search_by_caption")
    summary, words, *_ = client.predict(gradio_client.handle_file(str(plain / "test-000000.mp4")), None, UNKNOWN,
                                        api_name="/score")
    assert summary["ignored_words"] == ["cat", "meowing"] and "cat, meowing" in words.split("\n\n")[0]
    assert summary["reference"] is None  # no captions: no matching (caption, clip) tuples to compare with
