"""GRAM models: encoders, the modality-keyed GRAMModel, the DAM head, and safe save/load.

The DAM head's loss, hard negatives and re-ranking are checked in test_dam.py.
"""

import json
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import gramviz
from gramviz.models import (
    GRAMModel,
    ModelConfig,
    ModelLoadError,
    Tokenizer,
    bundled_models,
    load_model,
)

CAPTIONS = ["a red ball bounces on grass", "a blue cube spins while rain falls", "a small star grows, a dog barks"]
SMALL = dict(embed_dim=32, text_width=32, text_heads=2, video_width=16, audio_width=16, dam_width=32,
             audio_seconds=0.5, n_mels=32, num_frames=4, frame_size=(16, 16))


def small_model(**changes) -> GRAMModel:
    return GRAMModel(ModelConfig(**{**SMALL, **changes}), Tokenizer.build(CAPTIONS))


def batch(b: int = 3, t: int = 6, h: int = 24, w: int = 20, samples: int = 9000) -> dict:
    return {
        "text": [CAPTIONS[i % 3] for i in range(b)],
        "video": torch.rand(b, t, 3, h, w),
        "audio": torch.randn(b, samples) * 0.1,
        "id": [str(i) for i in range(b)],  # extra keys are ignored
    }


# ---------------------------------------------------------------- encode


SUBSETS = [("text", "video", "audio"), ("text",), ("video",), ("audio",), ("video", "audio"), ("text", "audio")]


@pytest.mark.parametrize("present", SUBSETS)
def test_encode_gives_unit_vectors_for_any_subset(present):
    model = small_model().eval()
    emb = model.encode({k: v for k, v in batch().items() if k in present or k == "id"})
    assert set(emb) == set(present)
    for e in emb.values():
        assert e.shape == (3, 32)
        torch.testing.assert_close(e.norm(dim=-1), torch.ones(3))


@pytest.mark.parametrize("t,h,w,samples", [(1, 8, 8, 2000), (4, 16, 16, 8000), (30, 33, 57, 30000), (3, 128, 96, 801)])
def test_encode_accepts_any_clip_size(t, h, w, samples):
    emb = small_model().eval().encode(batch(2, t, h, w, samples))
    assert all(e.shape == (2, 32) and torch.isfinite(e).all() for e in emb.values())


def test_prepared_inputs_have_the_configured_shapes():
    model = small_model()
    inputs = model.prepare(batch(2, t=9, h=40, w=30, samples=100))
    assert inputs["video"].shape == (2, 4, 3, 16, 16)
    assert inputs["audio"].shape == (2, 32, 51)  # 0.5 s at 16 kHz, 10 ms hop
    ids, mask = inputs["text"]
    assert ids.shape == mask.shape and (ids[:, 0] == 2).all()


def test_encode_with_tokens_matches_encode():
    model = small_model(dam=True).eval()
    data = batch()
    emb, tokens = model.encode(data, return_tokens=True)
    plain = model.encode(data)
    for m in emb:
        torch.testing.assert_close(emb[m], plain[m])
    assert tokens["video"].shape == (3, 4, 16) and tokens["audio"].shape[::2] == (3, 16)
    assert tokens["text"].shape[::2] == (3, 32) and tokens.masks["text"].shape == tokens["text"].shape[:2]


def test_bad_inputs_are_explained():
    model = small_model()
    with pytest.raises(ValueError, match="video must be"):
        model.encode({"video": torch.rand(2, 3, 16, 16)})
    with pytest.raises(TypeError, match="audio must be"):
        model.encode({"audio": torch.zeros(2, 100, dtype=torch.long)})
    with pytest.raises(TypeError, match="list of strings"):
        model.encode({"text": "one string"})


def test_encode_text_and_mode_is_restored():
    model = small_model().train()
    e = model.encode_text(["a red ball", "unknown words only"])
    assert e.shape == (2, 32) and model.training
    torch.testing.assert_close(e, model.eval().encode({"text": ["a red ball", "unknown words only"]})["text"])


def test_encode_clip_files_reads_real_media(tmp_path):
    gramviz.world.generate(tmp_path, n=2, seed=0, split="test")
    rows = [json.loads(line) for line in (tmp_path / "captions.jsonl").read_text().splitlines()]
    paths = [tmp_path / r["video"] for r in rows]
    model = small_model()
    emb = model.encode_clip_files(paths)
    assert emb["video"].shape == (2, 32) and emb["audio"].shape == (2, 32)
    wav = tmp_path / rows[1]["audio"]
    mixed = model.encode_clip_files(paths[:1], audio_paths=[wav])  # clip 0's frames, clip 1's wav
    alone = model.encode_clip_files([wav])  # an audio file: no video, a zero row
    assert torch.equal(mixed["audio"], alone["audio"])
    torch.testing.assert_close(mixed["video"][0], emb["video"][0])  # batch of 1 vs 2: float rounding only
    assert torch.equal(alone["video"], torch.zeros(1, 32))


# ---------------------------------------------------------------- custom encoders


class MeanColour(nn.Module):
    """A user video encoder: mean colour of the prepared frames, projected."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(3, dim)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.proj(video.mean(dim=(1, 3, 4)))


def test_a_user_module_stands_in_for_an_encoder(tmp_path):
    model = small_model()
    model = GRAMModel(model.config, model.tokenizer, encoders={"video": MeanColour(32)})
    emb = model.encode(batch())
    gramviz.GRAMLoss()(emb["text"], emb["video"], emb["audio"]).backward()
    assert model.encoders["video"].proj.weight.grad is not None
    model.save_pretrained(tmp_path / "custom")
    again = load_model(tmp_path / "custom", encoders={"video": MeanColour(32)})
    data = batch()
    assert torch.equal(again.encode(data)["video"], model.eval().encode(data)["video"])
    with pytest.raises(ModelLoadError, match="do not match"):
        load_model(tmp_path / "custom")  # the built-in video encoder has other weights


def test_encoder_for_an_unknown_modality_is_refused():
    with pytest.raises(ValueError, match="not among config.modalities"):
        GRAMModel(ModelConfig(**SMALL), Tokenizer.build(CAPTIONS), encoders={"depth": MeanColour(32)})


# ---------------------------------------------------------------- tokenizer and config


def test_tokenizer_round_trip_and_unknown_words():
    tok = Tokenizer.build(CAPTIONS + ["red red"], min_count=1)
    assert tok.vocab[:4] == ["[PAD]", "[UNK]", "[CLS]", "a"] and tok.vocab[4] == "red"
    again = Tokenizer.from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again.vocab == tok.vocab and len(again) == len(tok)
    ids, mask = tok.encode(["A Red BALL, 42 zebras!", "red"], max_len=32)
    assert ids[0, 0] == 2 and ids[0, 4] == 1  # [CLS] first; "zebras" is unknown
    assert tok.decode(ids[0]) == "a red ball [UNK]" and mask.sum(1).tolist() == [5, 2]
    assert tok.encode(["a red ball bounces on grass"], max_len=3)[0].shape == (1, 3)
    assert Tokenizer.build(CAPTIONS + ["red"], min_count=2).vocab == ["[PAD]", "[UNK]", "[CLS]", "a", "red"]
    with pytest.raises(ValueError):
        Tokenizer.from_dict({"type": "word", "vocab": ["a", "b"]})


def test_model_config_round_trip_and_unknown_keys():
    config = ModelConfig(embed_dim=64, modalities=("text", "audio"), frame_size=(24, 32))
    assert ModelConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="unknown keys"):
        ModelConfig.from_dict({**config.to_dict(), "embed_dimm": 3})
    with pytest.raises(ValueError):
        ModelConfig(text_width=30, text_heads=4)


# ---------------------------------------------------------------- save and load


def test_save_load_round_trip_gives_identical_embeddings(tmp_path):
    model = small_model(dam=True)
    model.save_pretrained(tmp_path / "m", card={"seed": 0, "command": "test"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temp dirs left
    torch.manual_seed(123)  # the fresh model starts from other weights
    again = load_model(tmp_path / "m")
    b = batch()
    expected, got = model.eval().encode(b), again.encode(b)
    assert all(torch.equal(expected[m], got[m]) for m in expected)
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    assert card["seed"] == 0 and card["parameters"] == model.num_parameters() and "machine" in card and "saved" in card
    assert again.card["command"] == "test" and again.config == model.config and not again.training


def test_save_replaces_an_existing_directory(tmp_path):
    small_model().save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "stale.txt").write_text("x")
    small_model(embed_dim=16).save_pretrained(tmp_path / "m")
    assert not (tmp_path / "m" / "stale.txt").exists() and load_model(tmp_path / "m").config.embed_dim == 16


def _forbid_torch_load(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("torch.load must never be called")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)


def test_a_torch_save_checkpoint_is_refused_without_unpickling(tmp_path, monkeypatch):
    model = small_model()
    model.save_pretrained(tmp_path / "m")
    torch.save(model.state_dict(), tmp_path / "m" / "model.safetensors")  # a zip of pickles under the right name
    _forbid_torch_load(monkeypatch)
    with pytest.raises(ModelLoadError, match=r"model\.safetensors.*not a safetensors file"):
        load_model(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ModelLoadError, match="never unpickles"):
        load_model(tmp_path / "m")


@pytest.mark.parametrize("name", ["pytorch_model.bin", "weights.pt", "last.ckpt"])
def test_pickle_files_in_the_directory_are_refused(tmp_path, monkeypatch, name):
    model = small_model()
    model.save_pretrained(tmp_path / "m")
    torch.save({"x": torch.zeros(1)}, tmp_path / "m" / name)
    _forbid_torch_load(monkeypatch)
    with pytest.raises(ModelLoadError, match=name.replace(".", r"\.")):
        load_model(tmp_path / "m")


@pytest.mark.parametrize("missing", ["model.safetensors", "config.json", "tokenizer.json"])
def test_a_missing_file_is_named(tmp_path, missing):
    small_model().save_pretrained(tmp_path / "m")
    (tmp_path / "m" / missing).unlink()
    with pytest.raises(ModelLoadError, match=rf"{missing.replace('.', '[.]')}: missing"):
        load_model(tmp_path / "m")


def test_mismatched_shapes_are_listed(tmp_path):
    small_model().save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["embed_dim"] = 48
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match=r"do not match.*head\.1\.weight: file \(32, 16\) vs config \(48, 16\)"):
        load_model(tmp_path / "m")
    config["embed_dimm"] = config.pop("embed_dim")
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="unknown keys"):
        load_model(tmp_path / "m")


def test_unknown_names_list_what_is_bundled(tmp_path):
    with pytest.raises(ModelLoadError, match=r"bundled: .*planned: world-small"):
        load_model("no-such-model")
    if "world-small" not in bundled_models():
        with pytest.raises(ModelLoadError, match="not bundled yet.*make train-default"):
            load_model("world-small")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ModelLoadError, match="not a model directory"):
        load_model(tmp_path / "file.txt")


# ---------------------------------------------------------------- training properties


def test_gram_loss_gradients_reach_every_encoder():
    model = small_model()
    emb = model.encode(batch())
    gramviz.GRAMLoss()(emb["text"], emb["video"], emb["audio"]).backward()
    for m, encoder in model.encoders.items():
        grads = [p.grad for p in encoder.parameters() if p.requires_grad]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), m
        assert sum(g.abs().sum() for g in grads) > 0, m


def test_a_fixed_seed_gives_the_same_model_and_embeddings():
    torch.manual_seed(7)
    a = small_model(dam=True)
    torch.manual_seed(7)
    b = small_model(dam=True)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    data = batch()
    ea, eb = a.eval().encode(data), b.eval().encode(data)
    assert all(torch.equal(ea[m], eb[m]) for m in ea)


def test_default_model_is_small():
    tok = Tokenizer.build(CAPTIONS)
    model = GRAMModel(ModelConfig(), tok)
    assert 0.5e6 < model.num_parameters() < 3e6
    assert F.normalize(model.encode_text(["a red ball"]), dim=-1).shape == (1, 256)
