"""Official GRAM checkpoints in gramviz: tiny random checkpoints in the official layout
(tests/official_layout.py) are converted, loaded with `gramviz.load_model`, and their embeddings
compared with computations written here from the raw state dict (EVA by explicit per-head einsums
in float64, BEATs built from torch's own weight-norm fold, BERT through transformers directly, the
heads by hand). Also: strictness, the refusal of pickles that carry code, determinism, bfloat16,
the command line, and ``gramviz embed`` / ``gramviz eval`` on a converted model."""

from __future__ import annotations

import json
import math
import os
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("transformers")

from official_layout import AUDIO, HPS, TEXT, VISION, write_official, write_vocab
from safetensors.torch import load_file, save_file

import gramviz
from gramviz.cli import main
from gramviz.models import CheckpointError, ModelConfig, ModelLoadError, convert_gram, load_model
from gramviz.models.gram_official.beats import BEATs, BEATsConfig
from gramviz.models.gram_official.checkpoint import read_checkpoint
from gramviz.models.gram_official.eva import EVAVisionTower, VisionConfig
from gramviz.models.gram_official.towers import Prepared

FLAGS = dict(vision_head_width=VISION["head_width"], text_heads=TEXT["heads"])
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
CAPTIONS = ["a dog is barking", "the red ball bounces on the grass", "a small bird sings on blue water"]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("official")
    state = write_official(root / "gram")
    out = convert_gram(root / "gram", root / "converted", tokenizer=write_vocab(root / "vocab"), **FLAGS)
    return root, {k: v.double() if v.is_floating_point() else v for k, v in state.items()}, out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("officialworld")
    gramviz.world.generate(root, n=4, split="test", workers=1, progress=False, frames=10, size=32)
    return root


# --- references from the raw state dict ------------------------------------------------------


def _ln(x, state, prefix, eps):
    mu = x.mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(((x - mu) ** 2).mean(-1, keepdim=True) + eps) * state[f"{prefix}.weight"] \
        + state[f"{prefix}.bias"]


def _gelu(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def eva_reference(state, images, head_width, prefix="vision_encoder.visual."):
    """All tokens of EVA in float64: patches by unfold + einsum, attention head by head."""
    s = {k[len(prefix):]: v.double() for k, v in state.items() if k.startswith(prefix)}
    patch = s["patch_embed.proj.weight"].shape[-1]
    tiles = images.double().unfold(2, patch, patch).unfold(3, patch, patch)  # n, 3, gh, gw, p, p
    x = torch.einsum("ncijpq,dcpq->nijd", tiles, s["patch_embed.proj.weight"]).flatten(1, 2)
    x = x + s["patch_embed.proj.bias"]
    x = torch.cat([s["cls_token"].expand(len(x), -1, -1), x], dim=1) + s["pos_embed"]
    width = x.shape[-1]
    depth = len({k.split(".")[1] for k in s if k.startswith("blocks.")})
    for i in range(depth):
        b = f"blocks.{i}."
        h = _ln(x, s, b + "norm1", 1e-6)
        wq, wk, wv = s[b + "attn.qkv.weight"].split(width)
        q, k, v = h @ wq.T + s[b + "attn.q_bias"], h @ wk.T, h @ wv.T + s[b + "attn.v_bias"]
        out = torch.zeros_like(q)
        for j in range(width // head_width):
            sl = slice(j * head_width, (j + 1) * head_width)
            weights = torch.softmax(torch.einsum("ntd,nsd->nts", q[..., sl], k[..., sl]) / math.sqrt(head_width), -1)
            out[..., sl] = torch.einsum("nts,nsd->ntd", weights, v[..., sl])
        x = x + out @ s[b + "attn.proj.weight"].T + s[b + "attn.proj.bias"]
        h = _ln(x, s, b + "norm2", 1e-6)
        x = x + _gelu(h @ s[b + "mlp.fc1.weight"].T + s[b + "mlp.fc1.bias"]) @ s[b + "mlp.fc2.weight"].T \
            + s[b + "mlp.fc2.bias"]
    return _ln(x, s, "norm", 1e-6)


def video_reference(state, video, num_frames):
    """GRAM's feat_v: the middle frame of each np.array_split chunk, CLIP-normalised, CLS per frame, mean, head."""
    picks = [int(c[(len(c) + 1) // 2 - 1]) for c in np.array_split(np.arange(video.shape[1]), num_frames)]
    frames = (video[:, picks].double() - torch.tensor(CLIP_MEAN, dtype=torch.float64).view(3, 1, 1)) \
        / torch.tensor(CLIP_STD, dtype=torch.float64).view(3, 1, 1)
    cls = eva_reference(state, frames.flatten(0, 1), VISION["head_width"])[:, 0].view(len(video), num_frames, -1)
    return F.normalize(cls.mean(1) @ state["contra_head_v.linear.weight"].double().T, dim=-1)


def beats_from_raw(state):
    """gramviz's BEATs module given the raw tensors: weight norm folded by torch, layer 0's bias table."""
    s = {k[len("audio_encoder."):]: v.float() for k, v in state.items() if k.startswith("audio_encoder.")}
    g, v = s.pop("encoder.pos_conv.0.weight_g"), s.pop("encoder.pos_conv.0.weight_v")
    s["encoder.pos_conv.weight"] = torch._weight_norm(v, g, 2)
    s["encoder.pos_conv.bias"] = s.pop("encoder.pos_conv.0.bias")
    s["encoder.relative_attention_bias.weight"] = s["encoder.layers.0.self_attn.relative_attention_bias.weight"]
    s = {k: t for k, t in s.items() if not k.endswith("self_attn.relative_attention_bias.weight")}
    cfg = BEATsConfig(input_patch_size=AUDIO["patch"], embed_dim=AUDIO["embed"], encoder_layers=AUDIO["layers"],
                      encoder_embed_dim=AUDIO["width"], encoder_ffn_embed_dim=AUDIO["ffn"],
                      encoder_attention_heads=AUDIO["heads"], conv_pos=AUDIO["conv_pos"],
                      conv_pos_groups=AUDIO["groups"], num_buckets=AUDIO["buckets"])
    model = BEATs(cfg)
    model.load_state_dict(s, strict=True)
    return model.eval()


def audio_reference(state, waveform, target=128):
    """GRAM's feat_a of one 16 kHz waveform: Kaldi fbank by hand, normalised, padded, mean over BEATs' tokens."""
    from torchaudio.compliance import kaldi

    fbank = kaldi.fbank(waveform[None] * 2**15, num_mel_bins=64, sample_frequency=16000, frame_length=25,
                        frame_shift=10, dither=0.0)
    fbank = (fbank - 15.41663) / (2 * 6.55582)
    fbank = F.pad(fbank, (0, 0, 0, max(target - len(fbank), target - len(fbank) % target)))[:target]
    with torch.no_grad():
        tokens = beats_from_raw(state)(fbank[None].float()).double()
    return F.normalize(tokens.mean(1) @ state["contra_head_a.linear.weight"].double().T, dim=-1)


def text_reference(state, vocab_dir, captions):
    """GRAM's feat_t: transformers' BertModel on the raw tensors, the [CLS] token, the head."""
    from transformers import BertConfig, BertModel, BertTokenizer

    prefix = "multimodal_encoder.bert."
    s = {k[len(prefix):]: v.float() for k, v in state.items()
         if k.startswith(prefix) and "crossattention" not in k and not k.endswith("position_ids")}
    bert = BertModel(BertConfig(vocab_size=s["embeddings.word_embeddings.weight"].shape[0], hidden_size=TEXT["hidden"],
                                num_hidden_layers=TEXT["layers"], num_attention_heads=TEXT["heads"],
                                intermediate_size=TEXT["intermediate"], max_position_embeddings=TEXT["positions"]),
                     add_pooling_layer=False)
    bert.load_state_dict(s, strict=True)
    tokens = BertTokenizer.from_pretrained(str(vocab_dir))(captions, padding="max_length", truncation=True,
                                                           max_length=40, return_tensors="pt")
    with torch.no_grad():
        hidden = bert.eval()(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]).last_hidden_state
    cls = hidden[:, 0]
    return F.normalize(cls.double() @ state["contra_head_t.linear.weight"].double().T, dim=-1)


# --- the towers and the converted model ----------------------------------------------------------


def test_the_eva_tower_equals_an_einsum_reference():
    cfg = VisionConfig(image_size=21, patch_size=7, width=24, depth=3, head_width=8, mlp_hidden=40)
    tower = EVAVisionTower(cfg).eval()
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in tower.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * (0.5 if p.dim() == 1 else p[0].numel() ** -0.5) + 0.1)
    state = {f"vision_encoder.visual.{k}": v for k, v in tower.state_dict().items()}
    images = torch.randn(2, 3, 21, 21, generator=gen)
    with torch.no_grad():
        tokens = tower(images)
    assert tokens.shape == (2, 10, 24)
    torch.testing.assert_close(tokens.double(), eva_reference(state, images, 8), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match=r"\(N, 3, 21, 21\)"):
        tower(torch.zeros(1, 3, 28, 28))


def test_conversion_writes_a_self_contained_folder_from_the_highest_step(converted):
    root, _, out = converted
    assert sorted(p.name for p in out.iterdir()) == ["card.json", "config.json", "model.safetensors",
                                                     "text_tokenizer", "tokenizer.json"]
    card = json.loads((out / "card.json").read_text())
    path = root / "gram" / "ckpt" / "model_step_7.pt"
    import hashlib

    assert card["source"]["step"] == 7 and card["source"]["checkpoint"] == str(path.resolve())
    assert card["source"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert card["source"]["hps_values"]["audio_melbins"] == 64  # GRAM's default: hps.json does not set it
    assert card["source"]["hps_values"]["audio_target_length"] == 128
    assert card["aliases"]["relative_attention_bias"] == {"used": "layer 0", "other_layers": [1, 2], "differing": []}
    unused = set(card["unused_keys"])
    for key in ("contra_head_s.linear.weight", "contra_head_vas.bias", "itm_head.linear2.weight", "contra_temp",
                "vision_frame_embedding", "audio_type_embeddings", "multimodal_encoder.cls.predictions.bias",
                "multimodal_encoder.bert.embeddings.position_ids", "vision_encoder.logit_scale",
                "multimodal_encoder.bert.encoder.layer.1.crossattention.self.key.weight",
                "vision_encoder.text.token_embedding.weight", "vision_encoder.visual.head.weight"):
        assert key in unused, key
    assert not {k for k in unused if k.startswith(("contra_head_t.", "contra_head_v.", "contra_head_a."))}
    official = json.loads((out / "config.json").read_text())["official"]
    assert official["vision"] == dict(image_size=28, patch_size=14, width=32, depth=2, head_width=16, mlp_hidden=139)
    assert (official["audio"]["encoder_layers"], official["audio"]["encoder_attention_heads"]) == (3, 4)
    assert official["text"]["num_attention_heads"] == 4 and official["embed_dim"] == 24
    assert (official["frames"], official["melbins"], official["target_length"]) == ("evaluation", 64, 128)
    model = load_model(out)
    c = model.config
    assert (c.num_frames, c.frame_size, c.sample_rate, c.max_text_len, c.audio_samples) == (8, (28, 28), 16000, 40,
                                                                                           400 + 127 * 160)
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_embeddings_equal_an_independent_computation(converted):
    root, state, out = converted
    model = load_model(out)
    gen = torch.Generator().manual_seed(3)
    video = torch.rand(2, 11, 3, 28, 28, generator=gen)
    waveform = 0.2 * torch.randn(2, 16000, generator=gen)
    got = model.encode({"text": CAPTIONS, "video": video, "audio": waveform})
    torch.testing.assert_close(got["video"].double(), video_reference(state, video, 8), atol=1e-5, rtol=0)
    torch.testing.assert_close(got["text"].double(), text_reference(state, root / "vocab", CAPTIONS), atol=1e-5,
                               rtol=0)
    expected = torch.cat([audio_reference(state, w) for w in waveform])
    torch.testing.assert_close(got["audio"].double(), expected, atol=1e-5, rtol=0)


def test_two_runs_give_identical_embeddings(converted):
    out = converted[2]
    gen = torch.Generator().manual_seed(4)
    batch = {"text": CAPTIONS, "video": torch.rand(3, 9, 3, 40, 36, generator=gen),
             "audio": 0.1 * torch.randn(3, 30000, generator=gen)}
    first, again = load_model(out).encode(batch), load_model(out).encode(batch)
    assert all(torch.equal(first[m], again[m]) for m in ("text", "video", "audio"))
    model = load_model(out).train()  # no dropout, no drop-path, no layer drop: training mode changes nothing
    assert all(torch.equal(model.encode(batch)[m], first[m]) for m in first)


def test_bfloat16_loading_keeps_beats_in_float32(converted):
    out = converted[2]
    model = load_model(out, dtype=torch.bfloat16)
    dtypes = {m: {p.dtype for p in enc.parameters()} for m, enc in model.encoders.items()}
    assert dtypes == {"text": {torch.bfloat16}, "video": {torch.bfloat16}, "audio": {torch.float32}}
    batch = {"text": CAPTIONS[:2], "video": torch.rand(2, 8, 3, 28, 28), "audio": 0.1 * torch.randn(2, 16000)}
    half, full = model.encode(batch), load_model(out).encode(batch)
    assert all(e.dtype == torch.float32 for e in half.values())
    assert torch.equal(half["audio"], full["audio"])
    for m in ("text", "video"):
        torch.testing.assert_close(half[m], full[m], atol=3e-2, rtol=0)


# --- strictness and safety -----------------------------------------------------------------


def test_a_missing_required_tensor_fails_with_the_list_of_them(tmp_path):
    missing = ("vision_encoder.visual.blocks.1.mlp.fc2.bias", "contra_head_a.linear.weight",
               "multimodal_encoder.bert.encoder.layer.1.output.dense.weight")
    write_official(tmp_path / "gram", steps={5: 1}, drop=missing)
    with pytest.raises(CheckpointError, match="3 required tensor") as info:
        convert_gram(tmp_path / "gram", tmp_path / "out", tokenizer=write_vocab(tmp_path / "vocab"), **FLAGS)
    assert all(key in str(info.value) for key in missing) and "model_step_5.pt" in str(info.value)
    assert not (tmp_path / "out").exists()
    write_official(tmp_path / "beats", steps={5: 1}, drop=("audio_encoder.encoder.layers.2.fc1.bias",))
    with pytest.raises(CheckpointError, match=r"encoder\.layers\.2\.fc1\.bias"):
        convert_gram(tmp_path / "beats", tmp_path / "out", tokenizer=tmp_path / "vocab", **FLAGS)


def test_a_tensor_the_architecture_lacks_fails(tmp_path):
    write_official(tmp_path / "gram", steps={1: 1}, extra={"vision_encoder.visual.blocks.0.gamma_1": torch.ones(32)})
    with pytest.raises(CheckpointError, match=r"does not have .*vision_encoder\.visual\.blocks\.0\.gamma_1"):
        convert_gram(tmp_path / "gram", tmp_path / "out", tokenizer=write_vocab(tmp_path / "vocab"), **FLAGS)
    with pytest.raises(CheckpointError, match="would replace the checkpoint folder"):
        convert_gram(tmp_path / "gram", tmp_path, tokenizer=tmp_path / "vocab", **FLAGS)


def test_hps_json_sets_the_mel_bins_and_must_name_gram_towers(tmp_path):
    vocab = write_vocab(tmp_path / "vocab")
    hps = {**HPS, "model_cfg": {**HPS["model_cfg"], "audio_melbins": 32}}
    write_official(tmp_path / "gram", steps={1: 1}, hps=hps)
    model = load_model(convert_gram(tmp_path / "gram", tmp_path / "out", tokenizer=vocab, **FLAGS))
    assert model.config.official["melbins"] == model.config.n_mels == 32
    assert model.encoders["audio"].prepare_input(torch.zeros(1, 8000), model.config, model.device).shape == (1, 128, 32)
    write_official(tmp_path / "clip", steps={1: 1}, hps={**HPS, "model_cfg": {"vision_encoder_type": "clip_vit_base"}})
    with pytest.raises(CheckpointError, match="EVA-CLIP.*BEATs models only"):
        convert_gram(tmp_path / "clip", tmp_path / "out2", tokenizer=vocab, **FLAGS)
    (tmp_path / "clip" / "log" / "hps.json").unlink()
    with pytest.raises(CheckpointError, match=r"hps\.json: missing"):
        convert_gram(tmp_path / "clip", tmp_path / "out2", tokenizer=vocab, **FLAGS)


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_checkpoints_load_as_weights_only_and_a_pickle_carrying_code_is_refused(tmp_path, monkeypatch):
    marker = tmp_path / "code-ran"
    write_official(tmp_path / "gram", steps={2: 1})
    torch.save({"module.contra_temp": torch.tensor(0.07), "module.payload": _RunsCode(marker)},
               tmp_path / "gram" / "ckpt" / "model_step_9.pt")
    with pytest.raises(CheckpointError, match="refused.*weights_only=True") as info:
        convert_gram(tmp_path / "gram", tmp_path / "out", tokenizer=write_vocab(tmp_path / "vocab"), **FLAGS)
    assert "model_step_9.pt" in str(info.value) and not marker.exists() and not (tmp_path / "out").exists()

    calls = []
    original = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k) or original(*a, **k))
    legacy = tmp_path / "legacy.pt"  # torch's pre-zip format: read without memory mapping
    torch.save({"module.w": torch.arange(3.0)}, legacy, _use_new_zipfile_serialization=False)
    assert torch.equal(read_checkpoint(legacy)["module.w"], torch.arange(3.0))
    assert calls and all(k.get("weights_only") is True for k in calls)


def test_load_model_refuses_mismatching_weights_and_a_missing_tokenizer(converted, tmp_path):
    copy = shutil.copytree(converted[2], tmp_path / "copy")
    weights = load_file(str(copy / "model.safetensors"))
    del weights["encoders.video.visual.blocks.1.mlp.fc1.bias"]
    save_file(weights, str(copy / "model.safetensors"))
    with pytest.raises(ModelLoadError, match=r"missing encoders\.video\.visual\.blocks\.1\.mlp\.fc1\.bias"):
        load_model(copy)
    shutil.rmtree(copy / "text_tokenizer")
    with pytest.raises(ModelLoadError, match="text_tokenizer: missing BERT's tokenizer"):
        load_model(copy)


def test_the_config_records_the_architecture_and_refuses_contradictions(converted):
    config = load_model(converted[2]).config
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="num_frames"):
        config.replace(num_frames=3)
    with pytest.raises(ValueError, match="frames must be one of"):
        config.replace(official={**config.official, "frames": "all"})
    assert "official" not in ModelConfig().to_dict()  # gramviz's own models: config.json as before


# --- the command line and the rest of gramviz ----------------------------------------------


def test_convert_gram_on_the_command_line(converted, tmp_path, capsys):
    root = converted[0]
    args = ["convert-gram", str(root / "gram"), "--out", str(tmp_path / "two"), "--tokenizer", str(root / "vocab"),
            "--frames", "inference", "--vision-head-width", "16", "--text-heads", "4", "--beats", "max_distance=800"]
    assert main(args) == 0 and "wrote" in capsys.readouterr().out
    model, reference = load_model(tmp_path / "two"), load_model(converted[2])
    assert model.config.num_frames == 2 and model.config.official["frames"] == "inference"
    assert json.loads((tmp_path / "two" / "card.json").read_text())["command"].startswith("gramviz convert-gram")
    assert torch.equal(model.encode_text(CAPTIONS), reference.encode_text(CAPTIONS))
    with pytest.raises(SystemExit):
        main(["convert-gram", str(root / "gram"), "--out", str(tmp_path / "bad"), "--tokenizer",
              str(root / "vocab"), "--vision-head-width", "16", "--text-heads", "5"])
    assert "5 heads do not divide hidden_size 32" in capsys.readouterr().err


def test_encode_clip_files_decodes_clips_as_gram_does(converted, world):
    from gramviz.models.gram_official.preprocess import read_official_audio, read_official_frames

    model = load_model(converted[2])
    videos = sorted((world / "videos").glob("*.mp4"))[:2]
    audios = [world / "audio" / f"{p.stem}.wav" for p in videos]
    got = model.encode_clip_files(videos, [audios[0], None])
    frames = torch.stack([read_official_frames(p, 8, 28) for p in videos])
    fbanks = torch.stack([model.encoders["audio"].read_file(p) for p in (audios[0], videos[1])])
    expected = model.encode({"video": Prepared(frames), "audio": Prepared(fbanks)})
    assert torch.equal(got["video"], expected["video"]) and torch.equal(got["audio"], expected["audio"])
    wave, rate = read_official_audio(audios[0])
    assert rate == 16000  # the file's waveform given as a list of unpadded waveforms: the same embedding
    torch.testing.assert_close(got["audio"][0], model.encode({"audio": [wave]})["audio"][0], atol=1e-6, rtol=0)


def test_embed_and_eval_run_on_a_converted_model(converted, world, tmp_path):
    model, out = str(converted[2]), tmp_path / "emb.safetensors"
    assert main(["embed", "--model", model, "--data", str(world), "--out", str(out), "--workers", "0",
                 "--device", "cpu", "--quiet"]) == 0
    stored = load_file(str(out))
    assert any(v.shape[-1] == 24 for v in stored.values() if v.is_floating_point() and v.dim() == 2)
    assert main(["eval", "--model", model, "--data", str(world), "--json", "--quiet", "--device", "cpu",
                 "--dtype", "bfloat16"]) == 0
