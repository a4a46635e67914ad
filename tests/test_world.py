"""The generated world: factors, captions, rendering, media files, oracles and splits."""

import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from gramviz.media import read_clip
from gramviz.world import (
    CLASSES,
    HELD_OUT,
    VOCABULARY,
    WorldConfig,
    class_name,
    draw_sample,
    draw_samples,
    generate,
    render_sample,
    sample_factors,
    world_oracle,
    write_mp4,
    write_wav,
)
from gramviz.world.audio import PITCHES
from gramviz.world.factors import COLOURS, SHAPES, SIZES, sample_rng
from gramviz.world.motion import event_times
from gramviz.world.oracle import VIEWS, text_to_clip_oracle
from gramviz.world.video import object_track

N_SMALL, FRAMES = 12, 8
QUIET = dict(ambience="quiet", offscreen="none", distractor=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    return generate(out, n=N_SMALL, seed=3, split="val", workers=1, progress=False, frames=FRAMES)


def _records(world):
    return [json.loads(line) for line in (world / "captions.jsonl").read_text().splitlines()]


def test_captions_jsonl_schema(world):
    records = _records(world)
    assert len(records) == N_SMALL
    for i, r in enumerate(records):
        assert list(r) == ["id", "video", "audio", "captions", "class", "class_id", "factors"]
        assert r["id"] == f"val-{i:06d}"
        assert r["video"] == f"videos/{r['id']}.mp4" and (world / r["video"]).stat().st_size > 0
        assert r["audio"] == f"audio/{r['id']}.wav" and (world / r["audio"]).stat().st_size > 0
        assert len(r["captions"]) == 3 and all(isinstance(c, str) and c.endswith(".") for c in r["captions"])
        assert r["class"] == class_name(r["class_id"])
        assert CLASSES[r["class_id"]] == (r["factors"]["shape"], r["factors"]["motion"])
        assert set(r["factors"]) == set(VOCABULARY)
        assert r["factors"] == sample_factors(i, seed=3, split="val").as_dict()


def test_world_json_has_vocabulary_classes_knobs_and_oracles(world):
    meta = json.loads((world / "world.json").read_text())
    assert (meta["split"], meta["n"], meta["seed"]) == ("val", N_SMALL, 3)
    assert meta["generator"] and meta["knobs"]["frames"] == FRAMES
    assert len(meta["classes"]) == 20 and meta["classes"][0]["prompt"].startswith("a ")
    assert meta["vocabulary"]["colour"] == list(COLOURS)
    oracle = meta["oracle"]
    assert "random tie-breaking" in oracle["method"]
    for view in ("visible", "audible", "both"):
        assert 0 < oracle["text_to_clip"][view]["R@1"] <= oracle["text_to_clip"][view]["R@5"] <= 1
    assert 0 < oracle["video_to_audio"]["R@1"] <= 1
    assert oracle["mention_rate"]["onset"] == 0


def test_media_decode_with_the_right_shape_and_length(world):
    for r in _records(world)[:4]:
        clip = read_clip(world / r["video"], num_frames=FRAMES, size=(128, 128))
        assert clip.video.shape == (FRAMES, 3, 128, 128)
        assert clip.fps == pytest.approx(8.0)
        assert 0 <= clip.audio.numel() - FRAMES / 8 * 16000 < 1024  # AAC pads its last 1024-sample frame
        wav = read_clip(world / r["audio"])
        assert wav.video is None and wav.audio.numel() == FRAMES / 8 * 16000


def test_object_colour_is_recoverable_from_the_decoded_video(world):
    palette = np.array(list(COLOURS.values()), dtype=np.float64)
    config = WorldConfig(frames=FRAMES)
    for i, r in enumerate(_records(world)):
        frames = read_clip(world / r["video"], num_frames=FRAMES, size=(128, 128)).video.numpy() * 255
        track = object_track(sample_factors(i, 3, "val"), config, sample_rng(3, "val", i, 2))
        votes = Counter()
        for k in range(FRAMES):
            x, y = int(track["x"][k]), int(track["y"][k])
            rgb = frames[k, :, y, x]
            votes[list(COLOURS)[int(np.argmin(((palette - rgb) ** 2).sum(1)))]] += 1
        assert votes.most_common(1)[0][0] == r["factors"]["colour"], (r["id"], votes)


def _dominant_hz(audio: np.ndarray, sr: int = 16000) -> float:
    spectrum = np.abs(np.fft.rfft(audio))
    return float(np.argmax(spectrum)) * sr / audio.size


@pytest.mark.parametrize("shape", SHAPES)
def test_pitch_follows_size_for_every_timbre(shape):
    base = sample_factors(0).replace(shape=shape, motion="sliding", **QUIET)
    for size in SIZES:
        _, audio, _, _ = render_sample(0, factors=base.replace(size=size), frames=8, audio_noise=0)
        assert _dominant_hz(audio) == pytest.approx(PITCHES[size], rel=0.01), (shape, size)


def test_pitch_band_of_the_written_wavs_matches_the_size(world):
    """With ambience and off-screen sounds on: the half-octave band around the size's pitch is loudest."""
    for r in _records(world):
        audio = read_clip(world / r["audio"]).audio.numpy()
        spectrum = np.abs(np.fft.rfft(audio)) ** 2
        hz = np.fft.rfftfreq(audio.size, 1 / 16000)
        energy = {s: spectrum[(hz > f / 2**0.5) & (hz < f * 2**0.5)].sum() for s, f in PITCHES.items()}
        assert max(energy, key=energy.get) == r["factors"]["size"], (r["id"], energy)


def test_bounce_beeps_line_up_with_floor_contacts(tmp_path):
    factors = sample_factors(1).replace(motion="bouncing", speed="fast", onset=0.25, colour="red", **QUIET)
    frames, audio, _, _ = render_sample(1, factors=factors, frames=24, audio_noise=0)
    write_mp4(tmp_path / "b.mp4", frames, audio, 8, 16000)
    write_wav(tmp_path / "b.wav", audio, 16000)
    video = read_clip(tmp_path / "b.mp4", num_frames=24, size=(128, 128)).video.numpy() * 255
    red = np.abs(video - np.array(COLOURS["red"])[:, None, None]).sum(1) < 90  # (T, H, W)
    rows = np.arange(128)[None, :, None]
    height = (red * rows).sum((1, 2)) / red.sum((1, 2))  # object's mean row: largest at the floor
    contacts = [k for k in range(1, 23) if height[k] >= height[k - 1] and height[k] > height[k + 1]]
    expected = [round(t * 8) for t in event_times(factors, 3.0)]
    assert contacts == [k for k in expected if 0 < k < 23]
    wav = read_clip(tmp_path / "b.wav").audio.numpy()
    loud = np.abs(wav).reshape(-1, 80).max(1) > 0.2  # 5 ms windows
    onsets = np.flatnonzero(loud[1:] & ~loud[:-1]) + 1
    assert np.allclose(onsets * 0.005, np.array(expected) / 8, atol=0.011)


def test_samples_are_deterministic_per_seed_split_and_index():
    a, b = render_sample(5, seed=1, split="train", frames=4), render_sample(5, seed=1, split="train", frames=4)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.audio, b.audio)
    assert a.captions == b.captions and a.factors == b.factors
    assert a.frames.shape == (4, 128, 128, 3) and a.frames.dtype == np.uint8
    assert a.audio.shape == (8000,) and a.audio.dtype == np.float32 and np.abs(a.audio).max() <= 1
    c = render_sample(6, seed=1, split="train", frames=4)
    assert not np.array_equal(a.audio, c.audio)
    assert draw_sample(5, seed=2, split="train") != draw_sample(5, seed=1, split="train")


def test_splits_draw_from_disjoint_streams():
    streams = {}
    for split in ("train", "val", "test", "compositional"):
        streams[split] = [tuple(sample_rng(0, split, i, 0).integers(0, 2**62, 2)) for i in range(200)]
        ids = {s.id for s in draw_samples(5, split=split)}
        assert all(i.startswith(split + "-") for i in ids)
    seen = [v for values in streams.values() for v in values]
    assert len(set(seen)) == len(seen)
    renders = {split: render_sample(0, split=split, frames=2).audio for split in streams}
    assert len({a.tobytes() for a in renders.values()}) == 4


def test_compositional_combinations_never_occur_in_train_val_test():
    for split, n in (("train", 3000), ("val", 500), ("test", 1000)):
        combos = {(f.shape, f.motion, f.colour) for f in (sample_factors(i, split=split) for i in range(n))}
        assert not combos & HELD_OUT
    held = [sample_factors(i, split="compositional") for i in range(300)]
    assert {(f.shape, f.motion, f.colour) for f in held} == set(HELD_OUT)
    assert len({(s, m) for s, m, _ in HELD_OUT}) == len(CLASSES)  # one held-out colour per class


def test_oracles_of_the_default_test_split():
    """Text names visible and audible factors: either modality alone is ambiguous, both identify."""
    oracle = world_oracle(1000, seed=0, split="test")
    t2c = oracle["text_to_clip"]
    assert t2c["visible"]["R@1"] <= 0.5
    assert t2c["audible"]["R@1"] <= 0.5
    assert t2c["both"]["R@1"] >= 0.9
    assert 0.2 < oracle["video_to_audio"]["R@1"] < 1


def test_oracle_matches_a_brute_force_ranking():
    samples = draw_samples(60, seed=4, split="train")
    factors = [s.factors for s in samples]
    mentions = [[c.mentions for c in s.captions] for s in samples]
    fast = text_to_clip_oracle(factors, mentions, ks=(1, 5))
    for view, known in VIEWS.items():
        r1, r5 = [], []
        for i, said in enumerate(mentions):
            for m in said:
                used = [name for name in known if name in m]
                score = np.array([sum(getattr(f, u) == getattr(factors[i], u) for u in used) for f in factors])
                tied = int((score == score.max()).sum())  # the correct clip always scores the max
                r1.append(1 / tied)
                r5.append(min(5, tied) / tied)
        assert fast[view]["R@1"] == pytest.approx(np.mean(r1))
        assert fast[view]["R@5"] == pytest.approx(np.mean(r5))


def test_captions_name_what_the_coverage_asks():
    factors = sample_factors(0).replace(colour="green", background="brick", ambience="rain")
    every = {name: 1.0 for name in VOCABULARY if name not in ("onset", "distractor")}
    for c in draw_sample(0, config=WorldConfig(coverage=every), factors=factors).captions:
        assert "green" in c.text and "brick" in c.text and "rain" in c.text
        assert "onset" not in c.mentions
    none = {name: 0.0 for name in VOCABULARY}
    for c in draw_sample(0, config=WorldConfig(coverage=none), factors=factors).captions:
        assert not c.mentions and "green" not in c.text and "rain" not in c.text
    texts = [c.text for i in range(30) for c in draw_sample(i).captions]
    assert len(set(texts)) == len(texts)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        (dict(n=0), "n must"),
        (dict(split="holdout"), "split must"),
        (dict(seed=-1), "seed must"),
        (dict(workers=0), "workers must"),
        (dict(frames=0), "frames must"),
        (dict(colour_noise=1), "unknown knobs"),
        (dict(coverage={"mood": 1.0}), "coverage"),
    ],
)
def test_bad_arguments_name_the_argument(tmp_path, kwargs, word):
    with pytest.raises(ValueError, match=word):
        generate(tmp_path / "w", **{"n": 2, "progress": False, **kwargs})


def test_out_dir_that_is_a_file_is_rejected(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="out_dir"):
        generate(tmp_path / "file", n=1, progress=False)


def test_importing_the_world_does_not_load_pyav():
    code = "import sys, gramviz, gramviz.world; print('av' in sys.modules, 'gramviz.world' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]
    code = "import sys, gramviz; print('gramviz.world' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
