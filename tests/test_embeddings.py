"""The embedding file: bit-exact round trips of tensors and metadata, and every validation error."""

import json

import pytest
import torch
from safetensors.torch import save_file

from gramviz.embeddings import EmbeddingFileError, EmbeddingMetadata, load_embeddings, save_embeddings


def example():
    g = torch.Generator().manual_seed(1)
    tensors = {
        "text": torch.randn(5, 8, generator=g),  # 5 captions for 3 clips
        "video": torch.randn(3, 8, generator=g, dtype=torch.float64),
        "audio": torch.randn(3, 8, generator=g).half(),
    }
    meta = EmbeddingMetadata(
        ids=["c0", "c1", "c2"],
        captions=["a dog", "a barking dog", "rain", "a car", "a fast car"],
        caption_clip=[0, 0, 1, 2, 2],
        class_ids=[1, None, 0],
        classes=["vehicle", "animal"],
        paths={"video": ["v/c0.mp4", "v/c1.mp4", "v/c2.mp4"]},
        model="gram-base@step1000",
        extra={"temperature": 0.07, "note": "ünïcode"},
    )
    return tensors, meta


def test_round_trip_is_bit_exact(tmp_path):
    tensors, meta = example()
    tensors["text"][1, 2] = 1e-40  # a subnormal survives too
    f = tmp_path / "emb.safetensors"
    save_embeddings(f, tensors, meta)
    loaded, loaded_meta = load_embeddings(f)
    assert set(loaded) == set(tensors)
    for k, x in tensors.items():
        assert loaded[k].dtype == x.dtype and torch.equal(loaded[k], x), k
    assert loaded_meta == meta
    assert loaded_meta.text_clips() == [0, 0, 1, 2, 2]


def test_file_is_plain_safetensors_with_json_metadata(tmp_path):
    from safetensors import safe_open

    tensors, meta = example()
    f = tmp_path / "emb.safetensors"
    save_embeddings(f, tensors, meta)
    with safe_open(str(f), framework="pt") as h:
        header = json.loads(h.metadata()["gramviz.embeddings"])
        assert sorted(h.keys()) == ["audio", "text", "video"]
    assert header["version"] == 1 and header["caption_clip"] == [0, 0, 1, 2, 2]


def test_metadata_as_dict_and_identity_caption_map(tmp_path):
    f = tmp_path / "e.safetensors"
    t = torch.randn(2, 4)
    save_embeddings(f, {"text": t, "video": t.clone()}, {"ids": ["x", "y"], "captions": ["p", "q"]})
    loaded, meta = load_embeddings(f)
    assert meta.caption_clip is None and meta.text_clips() == [0, 1]
    assert torch.equal(loaded["text"], t) and meta.paths == {} and meta.model is None


def test_non_contiguous_and_grad_tensors_are_saved(tmp_path):
    x = torch.randn(4, 3, requires_grad=True)
    save_embeddings(tmp_path / "e.safetensors", {"video": x.t()}, {"ids": ["a", "b", "c"]})
    loaded, _ = load_embeddings(tmp_path / "e.safetensors")
    assert torch.equal(loaded["video"], x.detach().t())


BAD = [
    (lambda t, m: t.update(video=torch.randn(2, 8)), "'video' has 2 rows but there are 3 clip ids"),
    (lambda t, m: t.update(audio=torch.randn(3, 2, 4)), "'audio' must be 2-D"),
    (lambda t, m: t.update(audio=torch.ones(3, 8, dtype=torch.int64)), "'audio' has dtype torch.int64"),
    (lambda t, m: t["video"].__setitem__((2, 0), float("nan")), "'video' has NaN or Inf values \\(first in row 2\\)"),
    (lambda t, m: t.update(audio=[[0.0]]), "'audio' is a list"),
    (lambda t, m: setattr(m, "caption_clip", None), "'text' has 5 rows for 3 clips: give caption_clip"),
    (lambda t, m: setattr(m, "caption_clip", [0, 0, 1, 2]), "'caption_clip' has 4 entries for 5 text rows"),
    (lambda t, m: setattr(m, "caption_clip", [0, 0, 1, 2, 3]), "'caption_clip' points at clip row 3"),
    (lambda t, m: setattr(m, "captions", ["a"] * 4), "'captions' has 4 entries for 5 text rows"),
    (lambda t, m: setattr(m, "ids", ["c0", "c1", "c1"]), "'ids' holds duplicate"),
    (lambda t, m: setattr(m, "ids", ["c0", "c1", 2]), "'ids' entry 2 is 2"),
    (lambda t, m: setattr(m, "class_ids", [0, 1, 2]), "'class_ids' holds 2, outside"),
    (lambda t, m: setattr(m, "class_ids", [0, 1]), "'class_ids' has 2 entries for 3 clips"),
    (lambda t, m: setattr(m, "paths", {"audio": ["a.wav"]}), "'paths.audio' has 1 entries for 3 clips"),
    (lambda t, m: setattr(m, "extra", {"x": torch.ones(1)}), "'extra' is not JSON-serialisable"),
    (lambda t, m: t.clear(), "needs a non-empty dict"),
]


@pytest.mark.parametrize("spoil, message", BAD)
def test_save_rejects_invalid_input_naming_file_and_key(tmp_path, spoil, message):
    tensors, meta = example()
    spoil(tensors, meta)
    f = tmp_path / "bad.safetensors"
    with pytest.raises(EmbeddingFileError, match="bad.safetensors: .*" + message):
        save_embeddings(f, tensors, meta)
    assert not f.exists()
    assert issubclass(EmbeddingFileError, ValueError)


def test_dict_metadata_errors(tmp_path):
    f = tmp_path / "e.safetensors"
    with pytest.raises(EmbeddingFileError, match="'ids' is required"):
        save_embeddings(f, {"video": torch.ones(1, 2)}, {"captions": ["x"]})
    with pytest.raises(EmbeddingFileError, match="'clip_ids' is not a metadata field"):
        save_embeddings(f, {"video": torch.ones(1, 2)}, {"ids": ["a"], "clip_ids": ["a"]})


def test_load_rejects_foreign_and_damaged_files(tmp_path):
    with pytest.raises(EmbeddingFileError, match="nope.safetensors: no such embedding file"):
        load_embeddings(tmp_path / "nope.safetensors")
    plain = tmp_path / "plain.safetensors"
    save_file({"video": torch.ones(2, 2)}, str(plain))
    with pytest.raises(EmbeddingFileError, match="plain.safetensors: no 'gramviz.embeddings' metadata"):
        load_embeddings(plain)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(EmbeddingFileError, match=r"junk.safetensors: not a safetensors file \(its header is not JSON\)"):
        load_embeddings(junk)
    # an interrupted copy: the header promises more tensor bytes than follow it
    whole = tmp_path / "whole.safetensors"
    save_embeddings(whole, {"video": torch.ones(50, 8)}, EmbeddingMetadata(ids=[str(i) for i in range(50)]))
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(whole.read_bytes()[:-100])
    with pytest.raises(EmbeddingFileError, match=r"cut.safetensors: the file is truncated: .* 1,600 bytes of tensors but only 1,500"):
        load_embeddings(cut)
    (tmp_path / "empty.safetensors").write_bytes(b"")
    with pytest.raises(EmbeddingFileError, match=r"empty.safetensors: the file is empty \(0 bytes\)"):
        load_embeddings(tmp_path / "empty.safetensors")
    # a file written by hand with inconsistent rows is refused on load, too
    forged = tmp_path / "forged.safetensors"
    header = json.dumps({"version": 1, "ids": ["a", "b", "c"]})
    save_file({"video": torch.ones(2, 2)}, str(forged), metadata={"gramviz.embeddings": header})
    with pytest.raises(EmbeddingFileError, match="forged.safetensors: 'video' has 2 rows but there are 3"):
        load_embeddings(forged)
    old = tmp_path / "old.safetensors"
    save_file({"video": torch.ones(1, 2)}, str(old), metadata={"gramviz.embeddings": '{"ids": ["a"]}'})
    with pytest.raises(EmbeddingFileError, match="is not version 1 metadata"):
        load_embeddings(old)
