"""GRAM heads on pretrained backbones, with tiny random transformers models saved to local
directories and loaded through ``from_pretrained(dir)``, the path a downloaded checkpoint takes:
tokenizers, each backbone's own preprocessing, freezing, saving by reference, clear errors."""

import json
import warnings

import pytest
import torch

pytest.importorskip("transformers")

from tiny_backbones import build_all

import gramviz
from gramviz import Backbone, pretrained_model
from gramviz.models import BackboneError, IgnoredWordsWarning, ModelLoadError, Tokenizer

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_all(tmp_path_factory.mktemp("backbones"))


def clip_clap(tiny, **kw):
    return pretrained_model({"text": Backbone("hf", str(tiny["clip"]), tower="text"),
                             "video": Backbone("hf", str(tiny["clip"]), tower="vision"),
                             "audio": Backbone("hf", str(tiny["clap"]), tower="audio")}, embed_dim=16, **kw)


def test_strings_outside_the_world_vocabulary_encode(tiny):
    model = clip_clap(tiny).eval()
    world_words = Tokenizer.build(["a red ball bounces", "a blue cube slides"])
    captions = ["A dog is barking", "A black cat is meowing", "rain falls on the car"]
    assert world_words.unknown_words(captions)  # the world's word tokenizer would ignore these
    ids, mask = model.tokenizer.encode(captions, 64)
    assert (ids[mask] != 1).all()  # no [UNK] token: every word spelled by the subword tokenizer
    emb = model.encode_text(captions)
    assert emb.shape == (3, 16) and torch.allclose(emb.norm(dim=1), torch.ones(3))
    assert (emb[0] - emb[1]).abs().max() > 1e-3  # different captions, different embeddings
    bert = pretrained_model({"text": Backbone("hf", str(tiny["bert"]))}, embed_dim=8)
    assert bert.encode_text(captions).shape == (3, 8)


def test_each_backbone_applies_its_own_preprocessing(tiny):
    model = clip_clap(tiny, num_frames=3, sample_rate=16000).eval()
    seen = {}
    vision = model.encoders["video"].tower.body
    vision.register_forward_pre_hook(lambda m, a, kw: seen.update(pixels=kw["pixel_values"]), with_kwargs=True)
    extractor = model.encoders["audio"].tower.extractor
    call = type(extractor).__call__

    def spy(self, raw, sampling_rate=None, **kw):
        seen.update(rate=sampling_rate, lengths=[len(r) for r in raw])
        return call(self, raw, sampling_rate=sampling_rate, **kw)

    colour = torch.tensor([0.2, 0.6, 0.9]).view(1, 1, 3, 1, 1)
    video = colour.expand(2, 10, 3, 45, 60).clone()  # any size and length: resized, cropped, sampled
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(type(extractor), "__call__", spy)
        model.encode({"video": video, "audio": torch.randn(2, 8000)})  # half a second at 16 kHz
    pixels = seen["pixels"]
    assert pixels.shape == (6, 3, 32, 32)  # 2 clips x 3 frames at the processor's crop size
    expected = (torch.tensor([0.2, 0.6, 0.9]) - torch.tensor([0.25, 0.5, 0.75])) / torch.tensor([0.5, 0.25, 0.125])
    torch.testing.assert_close(pixels.mean(dim=(0, 2, 3)), expected, atol=1e-5, rtol=0)
    assert seen["rate"] == 48000 and seen["lengths"] == [24000, 24000]  # resampled 16 kHz -> 48 kHz
    assert model.config.frame_size == (32, 32) and model.config.audio_seconds == 1.0


def test_one_clip_serves_text_and_video_and_parameters_are_counted_apart(tiny):
    model = clip_clap(tiny)
    text, video = model.encoders["text"].tower, model.encoders["video"].tower
    assert text.body is not video.body and text.body.config is not None
    total = model.num_parameters()
    heads = sum(p.numel() for m in model.encoders.values() for p in m.head.parameters())
    assert model.num_parameters(trainable=True) == heads < total
    assert "trainable" in repr(model)


def test_save_holds_no_frozen_weight_and_reloads_identical(tiny, tmp_path):
    from safetensors.torch import load_file

    model = clip_clap(tiny).eval()
    model.save_pretrained(tmp_path / "m")
    stored = load_file(str(tmp_path / "m" / "model.safetensors"))
    assert sorted(stored) == sorted(f"encoders.{m}.head.{p}" for m in ("text", "video", "audio") for p in ("weight", "bias"))
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["backbones"]["video"] == {"source": "hf", "name": str(tiny["clip"]), "tower": "vision", "freeze": True,
                                            "train_layers": 0, "revision": None, "pretrained": None}
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    assert card["trainable_parameters"] == model.num_parameters(trainable=True)
    loaded = gramviz.load_model(tmp_path / "m")
    batch = {"text": ["a dog is barking"], "video": torch.rand(1, 8, 3, 32, 32), "audio": torch.randn(1, 48000)}
    a, b = model.encode(batch), loaded.encode(batch)
    assert all(torch.equal(a[m], b[m]) for m in a)


def test_train_layers_unfreezes_the_last_blocks_and_saves_them(tiny, tmp_path):
    from safetensors.torch import load_file

    model = pretrained_model({"text": Backbone("hf", str(tiny["bert"]), train_layers=1)}, embed_dim=8)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(".layer.1." in n for n in trainable) and not any(".layer.0." in n for n in trainable)
    with torch.no_grad():
        model.encoders["text"].tower.body.encoder.layer[1].output.dense.weight.add_(1.0)  # "trained"
    model.save_pretrained(tmp_path / "m")
    stored = set(load_file(str(tmp_path / "m" / "model.safetensors")))
    assert stored == trainable and not any("embeddings" in n for n in stored)
    loaded = gramviz.load_model(tmp_path / "m")
    torch.testing.assert_close(loaded.encode_text(["a dog"]), model.eval().encode_text(["a dog"]), rtol=0, atol=0)


def test_a_missing_backbone_directory_is_named(tiny, tmp_path):
    with pytest.raises(BackboneError, match=r"no local directory or file .*missing-clip"):
        pretrained_model({"video": Backbone("hf", str(tmp_path / "missing-clip"))})
    with pytest.raises(BackboneError, match=r"hf:not-a/real-model.*hub is not reachable"):
        pretrained_model({"text": Backbone("hf", "not-a/real-model")})
    with pytest.raises(BackboneError, match=r"towers \['text', 'vision'\], not 'audio'"):
        pretrained_model({"audio": Backbone("hf", str(tiny["clip"]))})
    # a saved model whose backbone directory has gone
    import shutil

    bert = tmp_path / "bert"
    shutil.copytree(tiny["bert"], bert)
    pretrained_model({"text": Backbone("hf", str(bert))}, embed_dim=8).save_pretrained(tmp_path / "m")
    shutil.rmtree(bert)
    with pytest.raises(ModelLoadError, match=rf"backbone hf:{bert}.*no local directory"):
        gramviz.load_model(tmp_path / "m")


def test_the_world_model_warns_which_words_it_ignores():
    model = gramviz.load_model("world-small")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.encode_text(["A zebra is galloping", "a dog is howling"])
    messages = [str(w.message) for w in caught if issubclass(w.category, IgnoredWordsWarning)]
    assert len(messages) == 1 and messages[0].endswith("(read as [UNK]): zebra, galloping, howling")


def test_open_clip_towers_when_installed(tmp_path):
    open_clip = pytest.importorskip("open_clip")
    config = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
              "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}}
    (tmp_path / "tiny-clip.json").write_text(json.dumps(config))
    open_clip.add_model_config(tmp_path / "tiny-clip.json")
    torch.manual_seed(0)
    weights = tmp_path / "tiny.bin"
    torch.save(open_clip.create_model("tiny-clip").state_dict(), weights)
    model = pretrained_model({"text": Backbone("open_clip", "tiny-clip", pretrained=str(weights)),
                              "video": Backbone("open_clip", "tiny-clip", pretrained=str(weights))}, embed_dim=8)
    emb = model.encode({"text": ["a dog is barking"], "video": torch.rand(1, 4, 3, 40, 40)})
    assert emb["text"].shape == emb["video"].shape == (1, 8)
    assert model.encoders["text"].tower.body is model.encoders["video"].tower.body  # one model, two towers
    model.save_pretrained(tmp_path / "m")
    torch.testing.assert_close(gramviz.load_model(tmp_path / "m").encode_text(["a dog"]),
                               model.eval().encode_text(["a dog"]), rtol=0, atol=0)


def test_a_safetensors_header_whose_length_starts_with_0x80_is_not_taken_for_a_pickle(tmp_path):
    from safetensors.torch import save_file

    from gramviz.models.io import refuse_pickles

    for pad in range(300):  # find metadata that makes the header length's first byte 0x80 (a pickle's first byte)
        save_file({"w": torch.zeros(2)}, str(tmp_path / "model.safetensors"), metadata={"pad": "x" * pad})
        if (tmp_path / "model.safetensors").read_bytes()[0] == 0x80:
            break
    assert (tmp_path / "model.safetensors").read_bytes()[0] == 0x80
    refuse_pickles(tmp_path)  # a real safetensors file: accepted
    (tmp_path / "model.safetensors").write_bytes(b"\x80\x04\x95" + b"\x00" * 40)  # a pickle: refused
    with pytest.raises(ModelLoadError, match="never unpickles"):
        refuse_pickles(tmp_path)
