"""The decoded-tensor cache: items equal direct decoding exactly, stale caches are detected."""

import json
import os

import pytest
import torch
from test_datasets import SETTINGS, make_world

import gramviz.cache
from gramviz.cache import CacheError, CachedClipDataset, StaleCacheError, build_cache, open_cache
from gramviz.datasets import ClipDataset, ClipSettings
from gramviz.media import MediaError


@pytest.fixture()
def world(tmp_path):
    return make_world(tmp_path / "world")


def assert_same_items(a, b):
    assert len(a) == len(b)
    for i in range(len(a)):
        x, y = a[i], b[i]
        assert x.keys() == y.keys()
        for k in x:
            if isinstance(x[k], torch.Tensor):
                assert x[k].dtype == y[k].dtype and torch.equal(x[k], y[k]), (i, k)
            else:
                assert x[k] == y[k], (i, k)


def test_cached_items_equal_direct_decoding_exactly(world, tmp_path):
    ds = ClipDataset(world, SETTINGS)
    cached = build_cache(ds, tmp_path / "cache", shard_size=2, progress=False)
    assert_same_items(cached, ds)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [
        "index.json", "shard-00000.safetensors", "shard-00001.safetensors", "shard-00002.safetensors"]
    assert cached.summary().splitlines()[1:] == ds.summary().splitlines()[1:]
    assert cached.classes == ds.classes and cached.settings == ds.settings
    assert "CachedClipDataset" in repr(cached) and "1 audio file missing" in repr(cached)
    assert cached[-1]["id"] == "test-e"
    with pytest.raises(IndexError):
        cached[5]


def test_cached_batches_equal_decoded_batches(world, tmp_path):
    ds = ClipDataset(world, SETTINGS)
    cached = build_cache(ds, tmp_path / "cache", progress=False)
    a = cached.collate([cached[i] for i in range(5)])
    b = ds.collate([ds[i] for i in range(5)])
    for key in ("video", "audio", "audio_lengths", "class_id"):
        assert torch.equal(a[key], b[key]), key
    assert all(torch.equal(a["present"][m], b["present"][m]) for m in ("video", "audio"))


def test_two_worker_processes_write_the_same_cache(world, tmp_path):
    ds = ClipDataset(world, SETTINGS)
    pooled = build_cache(ds, tmp_path / "pooled", shard_size=3, workers=2, progress=False)
    assert_same_items(pooled, ds)
    assert pooled.index["clips"] == build_cache(ds, tmp_path / "serial", shard_size=3, progress=False).index["clips"]


def test_open_cache_builds_once_then_reuses(world, tmp_path, monkeypatch):
    ds = ClipDataset(world, SETTINGS)
    first = open_cache(ds, tmp_path / "cache", progress=False)
    monkeypatch.setattr(gramviz.cache, "build_cache", lambda *a, **k: pytest.fail("rebuilt a fresh cache"))
    again = open_cache(ds, tmp_path / "cache", on_stale="error")
    assert again.index["fingerprint"] == first.index["fingerprint"]


def test_changed_media_file_makes_the_cache_stale(world, tmp_path):
    ds = ClipDataset(world, SETTINGS)
    build_cache(ds, tmp_path / "cache", progress=False)
    video = world.parent / "videos/b.mp4"
    st = video.stat()
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched: same size, newer
    with pytest.raises(StaleCacheError, match=r"cache: the cache is stale: .*videos/b.mp4 changed"):
        open_cache(ds, tmp_path / "cache", on_stale="error")
    rebuilt = open_cache(ds, tmp_path / "cache", on_stale="rebuild", progress=False)
    assert CachedClipDataset(tmp_path / "cache", expect=ds).index["fingerprint"] == rebuilt.index["fingerprint"]
    (world.parent / "audio/gone.wav").write_bytes(b"")  # a missing file appears
    with pytest.raises(StaleCacheError, match="gone.wav changed"):
        CachedClipDataset(tmp_path / "cache", expect=ds)


def test_changed_settings_or_captions_make_the_cache_stale(world, tmp_path):
    build_cache(ClipDataset(world, SETTINGS), tmp_path / "cache", progress=False)
    other = ClipSettings(num_frames=4, frame_size=(16, 24), sample_rate=SETTINGS.sample_rate, audio_seconds=0.5)
    with pytest.raises(StaleCacheError, match="settings differ: num_frames is 3 in the cache, 4 now"):
        CachedClipDataset(tmp_path / "cache", expect=ClipDataset(world, other))
    lines = world.read_text().splitlines()
    world.write_text("\n".join(lines[:1] + [lines[1].replace("own track", "new words")] + lines[2:]))
    with pytest.raises(StaleCacheError, match="captions or class of clip 'test-b' changed"):
        CachedClipDataset(tmp_path / "cache", expect=ClipDataset(world, SETTINGS))
    world.write_text("\n".join(lines[:4]))
    with pytest.raises(StaleCacheError, match="the clips differ \\(5 cached, 4 now"):
        CachedClipDataset(tmp_path / "cache", expect=ClipDataset(world, SETTINGS))


def test_undecodable_clips_are_all_listed_and_no_index_is_written(world, tmp_path):
    (world.parent / "videos/b.mp4").write_bytes(b"garbage" * 500)
    (world.parent / "audio/e.wav").unlink()
    with pytest.raises(MediaError, match=r"2 of 5 clips could not be decoded:\n.*b.mp4.*\n.*e.wav: no such file"):
        build_cache(ClipDataset(world, SETTINGS), tmp_path / "cache", progress=False)
    assert not (tmp_path / "cache/index.json").exists()
    with pytest.raises(CacheError, match="not a clip cache \\(no index.json\\)"):
        CachedClipDataset(tmp_path / "cache")


def test_damaged_caches_are_refused(world, tmp_path):
    ds = ClipDataset(world, SETTINGS)
    build_cache(ds, tmp_path / "cache", shard_size=2, progress=False)
    (tmp_path / "cache/shard-00001.safetensors").unlink()
    with pytest.raises(CacheError, match="shard shard-00001.safetensors is missing"):
        CachedClipDataset(tmp_path / "cache")
    with pytest.raises(CacheError, match="is missing"):
        open_cache(ds, tmp_path / "cache", on_stale="error")
    assert_same_items(open_cache(ds, tmp_path / "cache", progress=False), ds)  # rebuilt
    (tmp_path / "cache/index.json").write_text("{ truncated")
    with pytest.raises(CacheError, match="damaged cache index"):
        CachedClipDataset(tmp_path / "cache")
    index = tmp_path / "cache/index.json"
    index.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(CacheError, match="not a gramviz.clip-cache index"):
        CachedClipDataset(tmp_path / "cache")
    with pytest.raises(CacheError, match="not a gramviz.clip-cache index"):
        open_cache(ds, tmp_path / "cache")  # another program's index.json is never overwritten
    with pytest.raises(ValueError, match="on_stale"):
        open_cache(ds, tmp_path / "cache", on_stale="ignore")
