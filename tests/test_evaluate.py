"""Evaluation: metrics against hand-computed ranks, missing modalities, embedding a generated world
with a stand-in model, and the ``eval`` / ``embed`` subcommands."""

import json
import types
import zlib
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import gramviz
from gramviz.cli import main
from gramviz.datasets import ClipDataset, ClipRecord, ClipSettings
from gramviz.embeddings import EmbeddingMetadata
from gramviz.evaluation import (
    DIRECTIONS,
    METRICS,
    class_prompts,
    confusion,
    embed_dataset,
    encode_class_prompts,
    evaluate,
    evaluate_embeddings,
    format_table,
    open_dataset,
)

KEYS = {f"{d}/{m}" for d in DIRECTIONS for m in (*METRICS, "n")}
CLS_KEYS = {"cls/top1", "cls/top5", "cls/n"}
MISSING_KEYS = {"missing/video", "missing/audio"}

# ---------------------------------------------------------------- a hand-computed case
# 3 clips in D = 6: video_j = e_j, audio_j = (e_j + e_{j+3}) / sqrt 2, so every clip's base
# volume is sin 45 deg and a unit caption t with t_j = p (its component along e_j) lies at height
# sqrt(1 - p^2) from span(video_j, audio_j): the best clip has the largest p. Captions hold
# weights w over (e_0, e_1, e_2); p = w / |w| (below, rounded):
WEIGHTS = [
    (0.2, 0.5, 0.8),  # caption 0 of clip 0: p = (.207, .518, .830): clip 0 third  -> rank 3
    (0.9, 0.3, 0.1),  # caption 1 of clip 0: p = (.943, .314, .105)                 -> rank 1
    (0.1, 0.9, 0.2),  # caption 0 of clip 1: p = (.108, .970, .216)                 -> rank 1
    (0.7, 0.6, 0.1),  # caption 1 of clip 1: p = (.755, .647, .108): clip 0 first   -> rank 2
    (0.5, 0.2, 0.6),  # caption 0 of clip 2: p = (.620, .248, .744)                 -> rank 1
    (0.2, 0.9, 0.4),  # caption 1 of clip 2: p = (.199, .896, .398): clip 1 first   -> rank 2
]
CAPTION_CLIP = [0, 0, 1, 1, 2, 2]
# t2va ranks [3, 1, 1, 2, 1, 2]: R@1 = 3/6, R@5 = R@10 = 1, MedR = (1 + 2) / 2, MnR = 10/6.
T2VA = {"R@1": 0.5, "R@5": 1.0, "R@10": 1.0, "MedR": 1.5, "MnR": 10 / 6}
# va2t, each clip against the 6 captions by p in its column:
#   clip 0: .207 .943 .108 .755 .620 .199 -> its caption 1 (.943) is first: rank 1, although its
#           caption 0 is fifth (a clip is found by ANY of its captions)
#   clip 1: .518 .314 .970 .647 .248 .896 -> its caption 0 (.970) first: rank 1
#   clip 2: .830 .105 .216 .108 .744 .398 -> its best (.744) below caption 0 of clip 0: rank 2
VA2T = {"R@1": 2 / 3, "R@5": 1.0, "R@10": 1.0, "MedR": 1.0, "MnR": 4 / 3}
# video and audio alone: cos(t, video_j) = p and cos(t, audio_j) = p / sqrt 2 rank as above;
# video_i . audio_j = 1/sqrt 2 if i == j else 0: v2a and a2v are perfect.
PERFECT = {"R@1": 1.0, "R@5": 1.0, "R@10": 1.0, "MedR": 1.0, "MnR": 1.0}
# Class prompts k0 ~ (1, 0, .3), k1 ~ (0, 1, .5): clip 0 -> class 0 (.958 vs 0), clip 1 -> class 1
# (0 vs .894), clip 2 -> class 1 (.287 vs .447); true classes [0, 1, 0]: top-1 = 2/3.
CLASS_WEIGHTS = [(1.0, 0.0, 0.3), (0.0, 1.0, 0.5)]
CLASS_IDS = [0, 1, 0]
CONFUSION = [[1, 1], [0, 1]]


def _unit(rows, dim=6):
    x = torch.zeros(len(rows), dim, dtype=torch.float64)
    x[:, : len(rows[0])] = torch.tensor(rows, dtype=torch.float64)
    return F.normalize(x, dim=-1)


def hand_case(extra_clip=False):
    eye = torch.eye(6, dtype=torch.float64)
    emb = {
        "text": _unit(WEIGHTS),
        "video": eye[:3].clone(),
        "audio": F.normalize(eye[:3] + eye[3:6], dim=-1),
    }
    meta = EmbeddingMetadata(
        ids=["c0", "c1", "c2"], captions=[f"caption {i}" for i in range(6)], caption_clip=list(CAPTION_CLIP),
        class_ids=list(CLASS_IDS), classes=["zero", "one"],
    )
    if extra_clip:  # clip 3 has video (e_0 + e_1) but no audio (a zero row), and two captions
        emb["video"] = torch.cat([emb["video"], _unit([(1.0, 1.0, 0.0)])])
        emb["audio"] = torch.cat([emb["audio"], torch.zeros(1, 6, dtype=torch.float64)])
        emb["text"] = torch.cat([emb["text"], _unit([(1.0, 0.9, 0.0), (0.1, 0.1, 1.0)])])
        meta.ids.append("c3")
        meta.captions += ["caption 6", "caption 7"]
        meta.caption_clip += [3, 3]
        meta.class_ids.append(1)
    return emb, meta


def _direction(metrics, d):
    return {m: metrics[f"{d}/{m}"] for m in METRICS}


def test_metrics_equal_the_hand_computed_ranks():
    emb, meta = hand_case()
    out = evaluate_embeddings(emb, meta)
    assert _direction(out, "t2va") == pytest.approx(T2VA)
    assert _direction(out, "va2t") == pytest.approx(VA2T)
    assert _direction(out, "t2v") == pytest.approx(T2VA)
    assert _direction(out, "t2a") == pytest.approx(T2VA)
    assert _direction(out, "v2a") == pytest.approx(PERFECT) and _direction(out, "a2v") == pytest.approx(PERFECT)
    assert {d: out[f"{d}/n"] for d in DIRECTIONS} == dict.fromkeys(DIRECTIONS, 3)
    assert out["missing/video"] == out["missing/audio"] == 0


def test_the_key_set_is_exactly_the_specified_one():
    emb, meta = hand_case()
    assert set(evaluate_embeddings(emb, meta)) == KEYS | MISSING_KEYS
    out = evaluate_embeddings(emb, meta, class_text=_unit(CLASS_WEIGHTS))
    assert set(out) == KEYS | CLS_KEYS | MISSING_KEYS
    assert all(0 <= out[f"{d}/R@{k}"] <= 1 for d in DIRECTIONS for k in (1, 5, 10))
    assert json.loads(json.dumps(out)) == out  # flat, JSON-ready


def test_va2t_finds_a_clip_by_any_of_its_captions():
    emb, meta = hand_case()
    # with only the first caption of each clip, clip 0 is found by its caption 0 alone: its column
    # (.207, .108, .620) puts it second; clips 1 and 2 keep ranks 1 and 2
    only_first = EmbeddingMetadata(ids=meta.ids, caption_clip=[0, 1, 2])
    out = evaluate_embeddings({**emb, "text": emb["text"][[0, 2, 4]]}, only_first)
    assert out["va2t/R@1"] == pytest.approx(1 / 3) and out["va2t/MnR"] == pytest.approx(5 / 3)
    assert evaluate_embeddings(emb, meta)["va2t/R@1"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("measure", gramviz.MEASURES)
def test_two_modality_directions_use_the_measure_and_every_measure_ranks(measure):
    emb, meta = hand_case()
    out = evaluate_embeddings(emb, meta, class_text=_unit(CLASS_WEIGHTS), measure=measure)
    assert set(out) == KEYS | CLS_KEYS | MISSING_KEYS
    # with two modalities volume is -sin(theta): the same ranking as cosine
    volume = evaluate_embeddings(emb, meta, measure="volume")
    cosine = evaluate_embeddings(emb, meta, measure="cosine_pairwise")
    for d in ("t2v", "t2a", "v2a", "a2v"):
        assert _direction(volume, d) == pytest.approx(_direction(cosine, d))


def test_classification_and_confusion_on_the_hand_case():
    emb, meta = hand_case()
    class_text = _unit(CLASS_WEIGHTS)
    out = evaluate_embeddings(emb, meta, class_text=class_text)
    assert (out["cls/top1"], out["cls/top5"], out["cls/n"]) == (pytest.approx(2 / 3), 1.0, 3)
    assert confusion(emb, meta, class_text).tolist() == CONFUSION
    with pytest.raises(ValueError, match="class id 1 has no prompt"):
        evaluate_embeddings(emb, meta, class_text=class_text[:1])
    with pytest.raises(ValueError, match="unknown measure 'cosine'"):
        evaluate_embeddings(emb, meta, measure="cosine")


@pytest.mark.parametrize("listed", [True, False])
def test_clips_missing_a_modality_are_counted_and_ranked_where_possible(listed):
    emb, meta = hand_case(extra_clip=True)
    if listed:  # as embed_dataset writes it; without the list the zero row alone says it
        meta.extra = {"missing": {"video": [], "audio": [3]}}
    out = evaluate_embeddings(emb, meta, class_text=_unit(CLASS_WEIGHTS))
    assert (out["missing/video"], out["missing/audio"]) == (0, 1)
    # directions that need audio rank the 3 clips that have it, exactly as without clip 3
    assert _direction(out, "t2va") == pytest.approx(T2VA) and _direction(out, "va2t") == pytest.approx(VA2T)
    assert (out["t2va/n"], out["va2t/n"], out["t2a/n"], out["v2a/n"], out["a2v/n"]) == (3, 3, 3, 3, 3)
    assert _direction(out, "t2a") == pytest.approx(T2VA) and out["cls/n"] == 3
    # text -> video ranks all 4 clips: 8 captions
    assert out["t2v/n"] == 4 and set(out) == KEYS | CLS_KEYS | MISSING_KEYS


def test_a_modality_without_embeddings_leaves_its_directions_empty():
    emb, meta = hand_case()
    out = evaluate_embeddings({"text": emb["text"], "video": emb["video"]}, meta)
    assert out["missing/audio"] == 3 and out["missing/video"] == 0
    assert all(out[f"{d}/n"] == 0 for d in ("t2va", "va2t", "t2a", "v2a", "a2v"))
    assert set(out) == {f"t2v/{m}" for m in METRICS} | {f"{d}/n" for d in DIRECTIONS} | MISSING_KEYS
    assert "t2va" in format_table(out) and "-" in format_table(out)


# ---------------------------------------------------------------- a stand-in model on real clips


class StandIn(nn.Module):
    """Deterministic embeddings: words hashed into buckets; frame colour means; audio loudness."""

    modalities = ("text", "video", "audio")

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.dim = dim
        self.gain = nn.Parameter(torch.ones(()))  # so that the model has a device
        self.modes: list[bool] = []

    def _finish(self, x):
        x = torch.cat([torch.ones(len(x), 1), x], dim=1)  # never a zero vector
        return F.normalize(F.pad(x, (0, self.dim - x.shape[1])) * self.gain, dim=-1)

    def encode(self, batch):
        self.modes.append(self.training)
        out = {}
        if "text" in batch:
            rows = torch.zeros(len(batch["text"]), self.dim - 1)
            for i, text in enumerate(batch["text"]):
                for word in text.lower().split():
                    rows[i, zlib.crc32(word.encode()) % (self.dim - 1)] += 1
            out["text"] = self._finish(rows)
        if "video" in batch:
            out["video"] = self._finish(batch["video"].mean(dim=(1, 3, 4)))  # (B, 3)
        if "audio" in batch:
            a = batch["audio"]
            out["audio"] = self._finish(torch.stack([a.abs().mean(1), a.std(1)], dim=1) * 10)  # (B, 2)
        return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    return gramviz.world.generate(out, n=8, seed=3, split="test", workers=1, progress=False, frames=8, size=32)


SETTINGS = ClipSettings(num_frames=4, frame_size=(32, 32), audio_seconds=3.0)


def test_embed_dataset_over_a_generated_world(world):
    dataset = ClipDataset(world / "captions.jsonl", SETTINGS)
    model = StandIn().train()
    emb, meta = embed_dataset(model, dataset, batch_size=3, progress=False)
    assert model.training and model.modes and not any(model.modes)  # eval inside, mode restored after
    assert emb["text"].shape == (24, 16) and emb["video"].shape == emb["audio"].shape == (8, 16)
    assert meta.ids == [r.id for r in dataset.records]
    assert meta.caption_clip == [i for i in range(8) for _ in range(3)]
    assert meta.captions == [c for r in dataset.records for c in r.captions]
    assert meta.class_ids == dataset.class_ids and meta.classes[0] == "bouncing ball" and len(meta.classes) == 20
    assert meta.paths["video"][0].endswith("videos/test-000000.mp4")
    assert meta.extra["missing"] == {"video": [], "audio": []}
    # one batch or many: the same rows
    whole, _ = embed_dataset(model, dataset, batch_size=8, progress=False)
    assert all(torch.allclose(whole[m], emb[m]) for m in emb)
    assert torch.allclose(emb["text"][4], model.encode({"text": [meta.captions[4]]})["text"][0])


def test_evaluate_a_model_on_a_generated_world(world):
    dataset = ClipDataset(world / "captions.jsonl", SETTINGS)
    prompts = class_prompts(dataset)
    assert prompts == [gramviz.world.class_prompt_ensemble(i) for i in range(20)]
    assert prompts[0][0] == "a bouncing ball" and "A ball hops." in prompts[0]
    assert all(gramviz.world.class_prompt(i) == prompts[i][0] for i in range(20))
    out = evaluate(StandIn(), dataset, batch_size=4)
    assert set(out) == KEYS | CLS_KEYS | MISSING_KEYS
    assert out["t2va/n"] == out["cls/n"] == 8 and out["missing/audio"] == 0


def test_class_anchors_are_the_renormalised_mean_of_the_prompt_embeddings():
    model = StandIn()
    prompts = [["a bouncing ball", "A ball hops.", "A disc bounces."], ["a sliding block"]]
    anchors = encode_class_prompts(model, prompts, batch_size=2)  # batches split across classes
    for c, group in enumerate(prompts):
        rows = torch.stack([model.encode({"text": [p]})["text"][0] for p in group]).double()
        mean = rows.mean(0)
        assert torch.allclose(anchors[c].double(), mean / mean.norm(), atol=1e-6)
    assert torch.allclose(anchors.norm(dim=1), torch.ones(2))
    for bad in ([], [[]], ["a bouncing ball"]):
        with pytest.raises(ValueError, match="one list per class"):
            encode_class_prompts(model, bad)


def test_datasets_with_plain_class_names_get_one_prompt_per_class():
    dataset = types.SimpleNamespace(classes=["dog", "cat"])
    assert class_prompts(dataset) == [["dog"], ["cat"]]
    assert class_prompts(types.SimpleNamespace(classes=[])) is None


def test_clips_missing_audio_are_embedded_as_zero_rows_and_counted(world):
    records = list(ClipDataset(world / "captions.jsonl", SETTINGS).records)[:5]
    records[2] = ClipRecord(records[2].id, records[2].video, Path(world / "no-such.wav"), records[2].captions)
    dataset = ClipDataset(records, SETTINGS)
    emb, meta = embed_dataset(StandIn(), dataset, batch_size=2, progress=False)
    assert meta.extra["missing"] == {"video": [], "audio": [2]} and meta.paths["audio"][2] == ""
    assert not emb["audio"][2].any() and emb["audio"][[0, 1, 3, 4]].norm(dim=1).gt(0).all()
    out = evaluate(StandIn(), dataset)
    assert out["missing/audio"] == 1 and (out["t2va/n"], out["t2a/n"], out["t2v/n"], out["cls/n"]) == (4, 4, 5, 4)


# ---------------------------------------------------------------- the command line


@pytest.fixture(scope="module")
def bundled():
    """The model a user evaluates first: the bundled world-small, loaded as the CLI loads it."""
    return gramviz.load_model("world-small")


def test_cli_eval_json_prints_one_json_object_equal_to_the_library(world, bundled, capsys):
    assert main(["eval", "--model", "world-small", "--data", str(world), "--json", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    metrics = json.loads(captured.out)  # exactly one JSON document: progress went to stderr
    assert set(metrics) == KEYS | CLS_KEYS | MISSING_KEYS and metrics["t2va/n"] == 8
    expected = evaluate(bundled, open_dataset(world, bundled))  # the same model, data and measure
    assert metrics == pytest.approx(expected, abs=1e-9)


def test_cli_eval_prints_a_table_and_rejects_a_bad_measure(world, bundled, capsys):
    assert main(["eval", "--model", "world-small", "--data", str(world), "--quiet", "--measure", "cosine_fused"]) == 0
    out = capsys.readouterr().out
    assert "t2va" in out and "a2v" in out and "classification: top-1" in out and "0 without audio" in out
    expected = evaluate(bundled, open_dataset(world, bundled), measure="cosine_fused")
    assert f"{expected['t2va/R@1']:>8.3f}" in next(line for line in out.splitlines() if line.startswith("t2va "))
    with pytest.raises(SystemExit) as e:
        main(["eval", "--model", "world-small", "--data", str(world), "--measure", "cosine"])
    assert e.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_cli_embed_writes_the_models_embeddings_to_a_file_that_loads_back(world, bundled, tmp_path, capsys):
    out = tmp_path / "emb.safetensors"
    assert main(["embed", "--model", "world-small", "--data", str(world / "captions.jsonl"), "--out", str(out)]) == 0
    assert "wrote 8 clips and 24 captions" in capsys.readouterr().out
    emb, meta = gramviz.load_embeddings(out)
    assert emb["text"].shape == (24, bundled.config.embed_dim) and meta.model == "world-small" and len(meta.ids) == 8
    assert meta.caption_clip[:4] == [0, 0, 0, 1] and meta.extra["missing"]["audio"] == []
    # the rows are the model's own embeddings of each caption and clip, in order
    torch.testing.assert_close(emb["text"], bundled.encode_text(meta.captions), atol=1e-5, rtol=0)
    clips = bundled.encode_clip_files([world / p for p in meta.paths["video"]], [world / p for p in meta.paths["audio"]])
    torch.testing.assert_close(emb["video"], clips["video"], atol=1e-5, rtol=0)
    torch.testing.assert_close(emb["audio"], clips["audio"], atol=1e-5, rtol=0)
    assert evaluate_embeddings(emb, meta)["t2va/n"] == 8


# ---------------------------------------------------------------- DAM re-ranking (with the models package)


def test_a_model_with_a_dam_head_is_reranked(world):
    models = gramviz.models
    dataset = ClipDataset(world / "captions.jsonl", SETTINGS)
    tokenizer = models.Tokenizer.build([c for r in dataset.records for c in r.captions])
    config = models.ModelConfig(embed_dim=16, dam=True, dam_width=16, text_width=16, video_width=16, audio_width=16)
    model = models.GRAMModel(config, tokenizer)
    out = evaluate(model, dataset, batch_size=4, rerank=True)
    dam_keys = {f"{d}/{m}" for d in ("t2va_dam", "va2t_dam") for m in (*METRICS, "n")}
    assert set(out) == KEYS | CLS_KEYS | MISSING_KEYS | dam_keys
    assert out["t2va_dam/n"] == 8 and "t2va_dam" in format_table(out)
    assert set(evaluate(model, dataset)) == KEYS | CLS_KEYS | MISSING_KEYS  # only when asked for
