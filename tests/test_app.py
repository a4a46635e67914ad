"""The browser demo: its library (search, gallery cache, uploads, cards) and its API endpoints.

The search functions are checked against a float64 brute force; the endpoints are called with
gradio_client on a small generated gallery and on media files written here, good and bad: every
bad input gets a message (an error, or a note when the rest can still be scored) and the next
valid request still succeeds.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import threading
from fractions import Fraction
from pathlib import Path

import av
import gradio_client
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from web import free_port

import gramviz
import gramviz.evaluation
from gramviz.analysis import tuple_alignment
from gramviz.scores import measure_values
from gramviz.search import rank_captions, rank_clips

ROOT = Path(__file__).resolve().parents[1]
# Gradio's queue uses pandas options that pandas 3 deprecates: not ours to fix
pytestmark = [pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]


# --- the search library against a float64 brute force -------------------------------------------

def _unit(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=torch.float64), dim=-1)


def _brute_volume(*vectors):
    a = torch.stack(vectors).double()
    return float(torch.linalg.det(a @ a.T).clamp(min=0).sqrt())


def test_rank_clips_matches_brute_force_volumes():
    q, v, a = _unit(16, seed=1), _unit(30, 16, seed=2), _unit(30, 16, seed=3)
    r = rank_clips(q, {"video": v, "audio": a}, k=5)
    brute = torch.tensor([_brute_volume(q, v[j], a[j]) for j in range(30)], dtype=torch.float64)
    assert r.indices.tolist() == torch.argsort(brute)[:5].tolist()
    assert torch.allclose(r.values, brute[r.indices], atol=1e-9)


def _brute_triangle(t, v, a):
    u, w = (t - v).double(), (t - a).double()
    return 0.5 * float(torch.sqrt((u @ u) * (w @ w) - (u @ w) ** 2))


@pytest.mark.parametrize("measure", gramviz.MEASURES)
def test_rank_clips_by_every_measure_matches_score_matrix_and_reads_sizes_as_sizes(measure):
    q, v, a = _unit(1, 8, seed=4), _unit(12, 8, seed=5), _unit(12, 8, seed=6)
    r = rank_clips(q, {"video": v, "audio": a}, k=12, measure=measure)
    scores = gramviz.score_matrix(q, v, a, measure=measure)[0]
    assert r.indices.tolist() == torch.sort(scores, descending=True, stable=True).indices.tolist()
    assert torch.equal(r.scores, scores[r.indices])
    # people read a volume or an area as itself (>= 0, smaller = more aligned), every other score as is
    sizes = {"volume": _brute_volume, "triangle": _brute_triangle}
    if measure in sizes:
        assert torch.equal(r.values, -scores[r.indices]) and bool((r.values >= 0).all())
        brute = torch.tensor([sizes[measure](q[0], v[j], a[j]) for j in r.indices.tolist()], dtype=torch.float64)
        torch.testing.assert_close(r.values, brute, rtol=1e-9, atol=1e-12)
    else:
        assert torch.equal(r.values, scores[r.indices])
    assert torch.equal(r.values, measure_values(r.scores, measure))


def test_rank_clips_leaves_out_clips_missing_a_modality():
    v, a = _unit(6, 8, seed=7), _unit(6, 8, seed=8)
    a[2] = 0  # clip 2 has no audio: its zero volume must not rank it first
    r = rank_clips(v[2] + a[3], {"video": v, "audio": a}, k=6)
    assert 2 not in r.indices.tolist() and len(r.indices) == 5 and not bool(r.considered[2])


def test_rank_captions_matches_brute_force_and_checks_input():
    t, v, a = _unit(20, 8, seed=9), _unit(8, seed=10), _unit(8, seed=11)
    r = rank_captions(t, {"video": v, "audio": a}, k=3)
    brute = torch.tensor([_brute_volume(t[i], v, a) for i in range(20)], dtype=torch.float64)
    assert r.indices.tolist() == torch.argsort(brute)[:3].tolist()
    with pytest.raises(ValueError, match="zero vector"):
        rank_captions(t, {"video": torch.zeros(8)})
    with pytest.raises(ValueError, match="k must be"):
        rank_captions(t, {"video": v}, k=0)


def test_tuple_alignment_names_the_odd_one_out():
    t, v = torch.tensor([1.0, 0, 0]), torch.tensor([0.9, 0.1, 0])
    out = tuple_alignment({"audio": torch.tensor([0.0, 0, 1]), "text": t, "video": v})
    assert out["modalities"] == ["text", "video", "audio"] and out["least_aligned"] == "audio"
    assert out["volume"] == pytest.approx(_brute_volume(t, v, torch.tensor([0.0, 0, 1])), abs=1e-9)
    # volume = height(m) x volume(others), for every m
    assert out["heights"]["text"] * _brute_volume(v, torch.tensor([0.0, 0, 1])) == pytest.approx(out["volume"])
    two = tuple_alignment({"text": t, "video": v, "audio": None})
    assert two["least_aligned"] is None and set(two["cosines"]) == {"text-video"}
    with pytest.raises(ValueError, match="at least two"):
        tuple_alignment({"text": t})
    with pytest.raises(ValueError, match="NaN"):
        tuple_alignment({"text": t, "video": torch.tensor([float("nan"), 0, 0])})


# --- media files written here ------------------------------------------------------------------

def write_video(path, frames, fps=8, audio=None, sample_rate=16000):
    """(T, H, W, 3) uint8 frames and optional (S,) audio as an H.264 (+ AAC) mp4."""
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264" if "libx264" in av.codecs_available else "h264", rate=fps)
        v.width, v.height, v.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        s = out.add_stream("aac", rate=sample_rate, layout="mono") if audio is not None else None
        for i, f in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(f, format="rgb24")
            frame.pts = i
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        if s is not None:
            for start in range(0, audio.size, 1024):
                chunk = av.AudioFrame.from_ndarray(audio[None, start:start + 1024].astype(np.float32), format="fltp",
                                                   layout="mono")
                chunk.sample_rate, chunk.pts, chunk.time_base = sample_rate, start, Fraction(1, sample_rate)
                out.mux(s.encode(chunk))
            out.mux(s.encode(None))
    return Path(path)


@pytest.fixture(scope="module")
def media(tmp_path_factory, gallery_dir):
    """Bad and odd inputs by name (paths), plus a good clip of the gallery."""
    d = tmp_path_factory.mktemp("media")
    rng = np.random.default_rng(0)
    good = gallery_dir / "videos" / "test-000000.mp4"
    frames = rng.integers(0, 255, (16, 48, 64, 3), dtype=np.uint8)
    raw = {"empty.mp4": b"", "truncated.mp4": good.read_bytes()[: good.stat().st_size // 2],
           "noise.mp4": rng.bytes(30000), "notes.webm": b"this is a text file, not a video\n" * 50,
           "big.mp4": rng.bytes(1_500_000)}  # big: over the test app's 1 MB cap
    for name, data in raw.items():
        (d / name).write_bytes(data)
    files = {name.split(".")[0]: d / name for name in raw} | {"good": good, "text_as_video": d / "notes.webm"}
    files["wav_as_mp4"] = Path(shutil.copy(gallery_dir / "audio" / "test-000001.wav", d / "really_a_wav.mp4"))
    files["no_audio"] = write_video(d / "no_audio.mp4", frames)
    files["silent"] = write_video(d / "silent.mp4", frames, audio=np.zeros(32000))
    files["one_frame"] = write_video(d / "one_frame.mp4", frames[:1], audio=0.1 * rng.standard_normal(32000))
    files["huge"] = write_video(d / "huge.mp4", np.zeros((1, 3000, 4000, 3), dtype=np.uint8))
    files["silence_wav"] = gramviz.world.write_wav(d / "silence.wav", np.zeros(16000), 16000)
    return files


# --- the app, once for this module -------------------------------------------------------------


def load_app_module():
    """The demo's launcher, and a check that the repository's app.py is only its entry point."""
    from gramviz.app import launch

    spec = importlib.util.spec_from_file_location("gramviz_demo_app", ROOT / "app.py")
    entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entry)
    assert entry.main is launch.main
    return launch


@pytest.fixture(scope="module")
def gallery_dir(tmp_path_factory):
    from gramviz.app.gallery import ensure_world_gallery

    return ensure_world_gallery(tmp_path_factory.mktemp("app") / "gallery", n=24, workers=1, progress=False)


@pytest.fixture(scope="module")
def app(gallery_dir):
    """(client, url, state) of the demo served on a free local port with a 1 MB upload cap."""
    from gramviz.app.state import DemoState

    module = load_app_module()
    state = DemoState.start("world-small", gallery_dir, progress=False)
    demo = module.build_demo(state)
    args = module.parse_args(["--port", str(free_port()), "--max-file-size", "1mb"])
    demo.launch(prevent_thread_lock=True, quiet=True, **module.launch_options(state, args))
    client = gradio_client.Client(demo.local_url, verbose=False, download_files=False)
    yield client, demo.local_url, state
    demo.close()


def _captions(gallery_dir):
    return [json.loads(line) for line in (gallery_dir / "captions.jsonl").read_text().splitlines()]


def score(client, video=None, audio=None, text=""):
    handle = gradio_client.handle_file
    out = client.predict(handle(str(video)) if video else None, handle(str(audio)) if audio else None, text,
                         api_name="/score")
    return out[0]


def test_score_endpoint_on_a_gallery_clip(app, media, gallery_dir):
    client, _, _ = app
    caption = _captions(gallery_dir)[0]["captions"][0]
    result = score(client, media["good"], None, caption)
    assert result["modalities"] == ["text", "video", "audio"]
    assert 0 <= result["volume"] <= 1 and set(result["cosines"]) == {"text-video", "text-audio", "video-audio"}
    assert result["missing"] == {} and result["least_aligned"] in ("text", "video", "audio")
    assert result["reference"]["matching"] < result["reference"]["non_matching"]
    wrong = score(client, media["good"], None, "a green star spinning in front of a brick wall while rain falls")
    assert wrong["volume"] > result["volume"]


@pytest.mark.parametrize("name, text, message", [
    ("empty", "a ball", "empty.mp4: the file is empty"),
    ("truncated", "a ball", "truncated.mp4: the file is truncated"),
    ("noise", "a ball", "noise.mp4: not a readable video or audio file"),
    ("text_as_video", "a ball", "notes.webm: not a readable"),
    ("huge", "a ball", "huge.mp4: frames of 4000 x 3000 pixels are too large"),
    ("good", "", None),  # a clip alone: scored by video and audio, no error
    ("good", "你好 世界", "none of the words"),
    ("good", "🙂 🙂", "no words"),
    ("good", "ball " * 400, "at most 1,000"),
    (None, "a red ball", "at least two"),
])
def test_score_bad_input_gets_a_message_and_the_app_stays_up(app, media, name, text, message):
    client, _, _ = app
    if message is None:
        assert score(client, media[name], None, text)["modalities"] == ["video", "audio"]
    else:
        with pytest.raises(gradio_client.exceptions.AppError, match=message.replace("(", r"\(")):
            score(client, media[name] if name else None, None, text)
    assert score(client, media["good"], None, "a ball")["volume"] > 0  # the next request works


@pytest.mark.parametrize("name, audio, missing, note", [
    ("no_audio", None, {"audio": "no_audio.mp4 has no sound track"}, None),
    ("silent", None, {"audio": "the sound of silent.mp4 is silent"}, None),
    ("one_frame", None, {}, "one_frame.mp4 shows one still picture"),
    ("wav_as_mp4", None, {"video": "really_a_wav.mp4 holds no video stream"}, "its sound is used as the audio"),
    ("good", "silence_wav", {"audio": "the sound of silence.wav is silent"}, "replaces the clip's own sound"),
])
def test_score_scores_what_is_usable_and_says_what_is_missing(app, media, name, audio, missing, note):
    client, _, _ = app
    result = score(client, media[name], media[audio] if audio else None, "a ball bouncing")
    assert result["missing"] == missing
    assert set(result["modalities"]) == {"text", "video", "audio"} - set(missing)
    if note:
        assert any(note in n for n in result["notes"])


def test_score_refuses_a_sound_file_without_sound_stream_as_audio(app, media):
    client, _, _ = app
    with pytest.raises(gradio_client.exceptions.AppError, match="no_audio.mp4: has no audio stream"):
        score(client, media["good"], media["no_audio"], "a ball")


def test_search_by_text_endpoint(app, gallery_dir):
    client, _, state = app
    records = _captions(gallery_dir)
    results = client.predict(records[5]["captions"][0], 4, api_name="/search_by_text")
    assert len(results) == 4 and all({"id", "volume", "caption", "class"} <= set(r) for r in results)
    volumes = [r["volume"] for r in results]
    assert volumes == sorted(volumes) and all(0 <= v <= 1 for v in volumes)
    assert records[5]["id"] in [r["id"] for r in results[:3]]  # the caption finds its own clip


@pytest.mark.parametrize("text, k, message", [
    ("", 3, "the text is empty"), ("   ", 3, "the text is empty"), ("x" * 1001, 3, "at most 1,000"),
    ("Привет мир", 3, "none of the words"), ("a ball", 0, "minimum value 1|k must be"),
    ("a ball", 2.5, "k must be"), ("a ball", 500, "maximum value|k must be"),
])
def test_search_by_text_bad_input(app, text, k, message):
    client, _, _ = app
    with pytest.raises(gradio_client.exceptions.AppError, match=message):
        client.predict(text, k, api_name="/search_by_text")
    assert len(client.predict("a ball", 2, api_name="/search_by_text")) == 2


def test_search_by_clip_endpoint(app, media, gallery_dir):
    client, _, _ = app
    handle = gradio_client.handle_file
    results = client.predict(handle(str(media["good"])), None, 3, api_name="/search_by_clip")
    assert len(results) == 3 and all({"caption", "volume", "id"} <= set(r) for r in results)
    assert results[0]["id"] == "test-000000"  # a gallery clip finds its own captions
    silent = client.predict(handle(str(media["no_audio"])), None, 2, api_name="/search_by_clip")
    assert len(silent) == 2  # ranked by video alone
    with pytest.raises(gradio_client.exceptions.AppError, match="noise.mp4: not a readable"):
        client.predict(handle(str(media["noise"])), None, 3, api_name="/search_by_clip")
    with pytest.raises(gradio_client.exceptions.AppError, match="upload a clip"):
        client.predict(None, None, 3, api_name="/search_by_clip")
    assert len(client.predict(handle(str(media["good"])), None, 1, api_name="/search_by_clip")) == 1


def test_files_over_the_size_cap_are_refused(app, media):
    import httpx

    client, url, _ = app
    with pytest.raises(ValueError, match="exceeds the maximum file size"):  # checked by the client first
        score(client, media["big"], None, "a ball")
    with media["big"].open("rb") as f:  # and by the server, for clients that do not check
        response = httpx.post(f"{url}gradio_api/upload", files={"files": ("big.mp4", f, "video/mp4")})
    assert response.status_code == 413
    assert score(client, media["good"], None, "a ball")["volume"] > 0


def test_serves_only_gallery_media(app, gallery_dir):
    import httpx

    _, url, _ = app
    get = lambda p: httpx.get(f"{url}gradio_api/file={p}").status_code  # noqa: E731
    assert get((gallery_dir / "videos" / "test-000000.mp4").resolve()) == 200
    for outside in (ROOT / "README.md", gallery_dir / "captions.jsonl", Path("/etc/passwd")):
        assert get(outside.resolve()) == 403


def test_binds_to_localhost_and_shares_nothing_by_default(app):
    _, url, state = app
    module = load_app_module()
    args = module.parse_args([])
    options = module.launch_options(state, args)
    assert options["server_name"] == "127.0.0.1" and options["share"] is False
    assert url.startswith("http://127.0.0.1:")
    assert not module._is_local("0.0.0.0") and module._is_local("::1")


def test_concurrent_searches_all_succeed(app):
    client, url, _ = app
    errors, counts = [], []

    def user(i):
        try:
            c = gradio_client.Client(url, verbose=False, download_files=False)
            counts.append(sum(len(c.predict(f"a ball bouncing {w}", 3, api_name="/search_by_text"))
                              for w in ("fast", "slowly", "with a beep")))
        except Exception as e:  # noqa: BLE001 - collected and reported
            errors.append(e)

    threads = [threading.Thread(target=user, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()  # the suite's per-test timeout stops a hang
    assert not errors and counts == [9] * 6


# --- gallery cache, map, model card, state ----------------------------------------------------

def test_gallery_cache_is_reused_and_rebuilt_when_stale(gallery_dir, monkeypatch, tmp_path):
    from gramviz.app import gallery as gallery_module

    model = gramviz.load_model("world-small")
    first = gallery_module.open_gallery(gallery_dir, model)  # the app fixture may have cached it already
    calls = []
    real = gramviz.evaluation.embed_dataset
    monkeypatch.setattr(gramviz.evaluation, "embed_dataset", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = gallery_module.open_gallery(gallery_dir, model)
    assert calls == [] and again.key == first.key
    assert torch.equal(again.embeddings["video"], first.embeddings["video"])
    copy = Path(shutil.copytree(gallery_dir, tmp_path / "g", ignore=shutil.ignore_patterns(".gramviz-cache")))
    lines = (copy / "captions.jsonl").read_text().splitlines()
    (copy / "captions.jsonl").write_text("\n".join(lines[:10]) + "\n")
    changed = gallery_module.open_gallery(copy, model)
    assert calls == [1] and changed.key != first.key and changed.n_clips == 10
    other = gramviz.load_model("world-small")
    with torch.no_grad():
        next(other.parameters()).add_(1e-3)  # another model: another key, a fresh embedding
    assert gallery_module.open_gallery(copy, other).key != changed.key and calls == [1, 1]


def test_gallery_from_an_embedding_file_and_the_cached_map(gallery_dir, tmp_path):
    from gramviz.app.gallery import gallery_map, open_gallery
    from gramviz.app.searching import search_by_text

    model = gramviz.load_model("world-small")
    folder = open_gallery(gallery_dir, model)
    f = tmp_path / "gallery.safetensors"
    gramviz.save_embeddings(f, folder.embeddings, folder.meta)
    from_file = open_gallery(f, model)
    assert [r["id"] for r in search_by_text(model, from_file, "a red ball", 5).results] == \
           [r["id"] for r in search_by_text(model, folder, "a red ball", 5).results]
    assert from_file.videos == folder.videos  # absolute media paths: playable
    fig = gallery_map(from_file, "pca")
    assert list((tmp_path / ".gramviz-cache").glob("map-*-pca-0-0.json"))
    from_file._maps.clear()
    assert json.loads(gallery_map(from_file, "pca").to_json()) == json.loads(fig.to_json())  # read back from disk


def test_bad_galleries_and_models_are_refused_clearly(app, tmp_path):
    from gramviz.app.gallery import GalleryError

    _, _, state = app
    with pytest.raises(GalleryError, match="no such gallery"):
        state.load_gallery(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(GalleryError, match="no captions.jsonl"):
        state.load_gallery(str(tmp_path / "empty"))
    with pytest.raises(gramviz.ModelLoadError, match="neither a model directory"):
        state.load_model("no-such-model")
    from gramviz.app.state import DemoState

    model, name, gallery = state.snapshot()
    served = []
    fresh = DemoState(model, name, gallery, on_new_folders=served.extend)
    assert "loaded model world-small" in fresh.load_model("world-small")  # the gallery cache is reused
    assert "loaded gallery" in fresh.load_gallery(str(gallery.source)) and served == gallery.media_folders()
    assert fresh.snapshot()[0] is not model and state.snapshot()[0] is model
    locked = DemoState(model, name, gallery, allow_loading=False)
    with pytest.raises(PermissionError, match="--allow-loading"):
        locked.load_gallery(str(gallery.source))


def test_model_card_and_gallery_card(app):
    from gramviz.app.cards import gallery_card, model_card, model_directory

    _, _, state = app
    model, name, gallery = state.snapshot()
    card = model_card(model, name, model_directory(name))
    assert "Trained with" in card and "text -> video+audio" in card and "Test split" in card
    assert "Why this model" in card  # the bundled card says why it was chosen
    assert f"{gallery.n_clips:,} clips" in gallery_card(gallery)


def test_the_page_names_the_gallery_folder_not_where_the_server_keeps_it(app, monkeypatch, tmp_path):
    from gramviz.app.cards import gallery_card
    from gramviz.app.gallery_base import shown_path
    from gramviz.app.tab_explore import _about

    _, _, state = app
    gallery = state.snapshot()[2]
    for text in (gallery_card(gallery), _about(gallery)):
        assert str(gallery.source.resolve()) not in text and f"`{gallery.source.name}`" in text
    monkeypatch.chdir(gallery.source.parent.parent)  # inside the working directory: the relative path
    assert gallery.shown_source == f"{gallery.source.parent.name}/{gallery.source.name}"
    assert shown_path("/elsewhere/data/a/b", parts=2) == "a/b"
    monkeypatch.chdir(tmp_path)
    assert shown_path(tmp_path / "x" / "y") == "x/y" and shown_path(gallery.source) == gallery.source.name
