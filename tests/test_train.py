"""The trainer end to end on a tiny generated world: smoke run, save/load, kill and resume, DDP.

Every run uses the "smoke" preset (a tiny model, batch 8, 2 steps per epoch on 16 clips) and one
decoded-tensor cache built once for the module, so that a run takes a second or two.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gramviz.cli import main as cli_main
from gramviz.models import load_model
from gramviz.training import PRESETS, TrainConfig, get_lr, load_config, main, parse_override, train
from gramviz.training.data import EpochBatches, caption_draws

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """16 training and 8 validation clips (8 frames of 32x32) and their decoded-tensor cache."""
    import gramviz.world
    from gramviz import ClipDataset, ClipSettings, open_cache

    root = tmp_path_factory.mktemp("world")
    for split, n in (("train", 16), ("val", 8)):
        gramviz.world.generate(root / split, n=n, split=split, workers=2, progress=False, frames=8, size=32)
        model = PRESETS["smoke"]["model"]  # the cache holds clips decoded as this model wants them
        settings = ClipSettings(model["num_frames"], tuple(model["frame_size"]), 16000, 3.0)
        open_cache(ClipDataset(root / split / "captions.jsonl", settings), root / "cache" / split, progress=False)
    return root


def smoke_args(world: Path, out: Path, *sets: str, val: bool = True) -> list[str]:
    sets = ("progress=false", f"train_data={world / 'train'}", f"out_dir={out}", f"cache_dir={world / 'cache'}",
            f"val_data={world / 'val' if val else 'none'}", *sets)
    return ["--preset", "smoke", *(x for s in sets for x in ("--set", s))]


def read_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def without_timing(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "clips_per_s"} for r in records]


def test_smoke_training_through_the_cli_writes_log_checkpoint_and_final(world, tmp_path):
    out = tmp_path / "run"
    assert cli_main(["train", *smoke_args(world, out)]) == 0
    log = read_log(out)
    steps = [r for r in log if "loss" in r]
    evals = [r for r in log if "val/t2va/R@1" in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4]  # 2 epochs of 16 // 8 steps
    assert all({"loss", "temperature", "lr", "grad_norm", "clips_per_s"} <= set(r) for r in steps)
    assert all(torch.isfinite(torch.tensor(r["loss"])) and r["clips_per_s"] > 0 for r in steps)
    assert [(r["step"], r["epoch"]) for r in evals] == [(2, 1), (4, 2)]
    assert 0 <= evals[-1]["val/t2va/R@1"] <= 1 and "val/cls/top1" in evals[-1]
    card = json.loads((out / "final" / "card.json").read_text())
    assert card["command"].startswith("gramviz train --preset smoke") and card["seed"] == 0
    assert card["config"]["batch_size"] == 8 and card["data"]["train"]["clips"] == 16
    assert card["data"]["val"] == {"path": str(world / "val"), "clips": 8, "captions": 24}
    assert card["training"]["steps"] == 4 and card["training"]["clips_per_s"] > 0
    assert card["metrics"] == {k: v for k, v in evals[-1].items() if k.startswith("val/")}
    assert {"machine", "saved"} <= set(card)
    assert (out / "checkpoint" / "state.json").is_file() and not (out / "checkpoint.old").exists()


def test_init_from_starts_from_the_saved_weights_and_tokenizer(world, tmp_path):
    from gramviz.models import load_model
    from gramviz.training.setup import init_weights

    first = tmp_path / "first"
    assert cli_main(["train", *smoke_args(world, first, "epochs=1", "loss=pairwise", val=False)]) == 0
    saved = load_model(first / "final")
    # lr = 0: the second run's weights stay exactly where it started (AdamW's decay is scaled by lr)
    second = tmp_path / "second"
    assert cli_main(["train", *smoke_args(world, second, "epochs=1", "lr=1e-12", "warmup_steps=0", "min_lr_ratio=1",
                                          f"init_from={first / 'final'}", val=False)]) == 0
    after = load_model(second / "final")
    assert after.tokenizer.to_dict() == saved.tokenizer.to_dict()
    for name, value in saved.state_dict().items():
        assert torch.allclose(after.state_dict()[name], value, atol=1e-9), name
    bigger = load_model(first / "final")
    with pytest.raises(ValueError, match=r"init_from SRC: parameter .* shape"):
        from gramviz.models import GRAMModel

        wide = GRAMModel(bigger.config.replace(embed_dim=bigger.config.embed_dim * 2), bigger.tokenizer)
        init_weights(wide, bigger, "SRC")


def test_resume_after_a_kill_gives_the_uninterrupted_run(world, tmp_path):
    # DAM (random hard negatives) and dropout make every RNG matter; 3 epochs of 2 steps
    sets = ("dam=true", "epochs=3", "checkpoint_every=3")
    reference = train(load_config(preset="smoke", overrides=[*smoke_args(world, tmp_path / "ref", *sets)[3::2]]))
    killed = tmp_path / "killed"
    assert main([*smoke_args(world, killed, *sets), "--set", "stop_at_step=4"]) == 0
    assert not (killed / "final").exists()  # killed after step 4; the last checkpoint is step 3's
    assert json.loads((killed / "checkpoint" / "state.json").read_text())["step"] == 3
    assert main([*smoke_args(world, killed, *sets), "--resume"]) == 0

    final, resumed = load_file(tmp_path / "ref" / "final" / "model.safetensors"), load_file(killed / "final" / "model.safetensors")
    assert final.keys() == resumed.keys()
    assert all(torch.equal(final[k], resumed[k]) for k in final)
    assert without_timing(read_log(killed)) == without_timing(read_log(tmp_path / "ref"))
    assert json.loads((killed / "final" / "card.json").read_text())["metrics"] == reference.metrics != {}

    # the saved model gives the in-memory model's embeddings
    loaded = load_model(tmp_path / "ref" / "final")
    batch = {"text": ["a red ball bounces", "something else"], "video": torch.rand(2, 8, 3, 32, 32), "audio": torch.randn(2, 48000)}
    reference.model.eval()
    for m, e in reference.model.encode(batch).items():
        assert torch.equal(loaded.encode(batch)[m], e)


def test_two_process_ddp_equals_one_process_on_the_global_batch(world, tmp_path):
    sets = ("dtype=float64", "model.dropout=0", "epochs=2")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "gramviz.training",
           *smoke_args(world, tmp_path / "ddp", *sets, "batch_size=4", val=False)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, "\n".join(line for line in proc.stderr.splitlines() if "Error" in line)[-3000:]
    assert main(smoke_args(world, tmp_path / "one", *sets, "batch_size=8", val=False)) == 0

    ddp, one = (load_file(tmp_path / name / "final" / "model.safetensors") for name in ("ddp", "one"))
    for k in one:
        torch.testing.assert_close(ddp[k], one[k], rtol=1e-9, atol=1e-9)
    log_ddp, log_one = read_log(tmp_path / "ddp"), read_log(tmp_path / "one")
    assert [r["step"] for r in log_ddp] == [r["step"] for r in log_one] == [1, 2, 3, 4]
    for a, b in zip(log_ddp, log_one):  # the temperature is shared through DDP's gradient averaging
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-9) and a["temperature"] == pytest.approx(b["temperature"], rel=1e-9)
    card = json.loads((tmp_path / "ddp" / "final" / "card.json").read_text())
    assert card["training"]["world_size"] == 2 and card["training"]["global_batch"] == 8


@pytest.mark.parametrize(
    "sets, term",
    [
        (("loss=gram",), None),
        (("loss=pairwise",), None),
        (("loss=fused",), None),
        (("loss=gram", "dam=true", "dam_weight=0.5"), "loss_dam"),
        (("loss=fused", "extra_term=video_audio", "extra_weight=0.3"), "loss_extra"),
    ],
)
def test_each_loss_option_trains(world, tmp_path, sets, term):
    result = main(smoke_args(world, tmp_path, *sets, "epochs=1", val=False))
    assert result == 0
    (last,) = [r for r in read_log(tmp_path) if r["step"] == 2]
    assert torch.isfinite(torch.tensor(last["loss"]))
    if term == "loss_dam":
        assert last["loss"] == pytest.approx(last["loss_contrastive"] + 0.5 * last["loss_dam"], rel=1e-6)
    elif term == "loss_extra":
        assert last["loss"] == pytest.approx(last["loss_contrastive"] + 0.3 * last["loss_extra"], rel=1e-6)
    else:
        assert last["loss"] == last["loss_contrastive"]


def test_set_values_are_parsed_by_field_type():
    assert parse_override("batch_size=16") == (["batch_size"], 16)
    assert parse_override("lr=3e-4") == (["lr"], 3e-4)
    assert parse_override("dam=yes") == (["dam"], True)
    assert parse_override("val_data=none") == (["val_data"], None)
    assert parse_override("betas=0.9,0.95") == (["betas"], (0.9, 0.95))
    assert parse_override("model.embed_dim=128") == (["model", "embed_dim"], 128)
    assert parse_override("model.frame_size=[16, 24]") == (["model", "frame_size"], (16, 24))
    cfg = load_config(preset="smoke", overrides=["train_data=d", "model.embed_dim=16", "lr=1"])
    assert cfg.model["embed_dim"] == 16 and cfg.model["text_width"] == 32 and cfg.lr == 1.0


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["batch_sze=4"], "unknown training option 'batch_sze' (did you mean 'batch_size'?)"),
        (["batch_size=four"], "expected int"),
        (["batch_size=0"], "batch_size must be at least 1"),
        (["loss=cosine"], "loss must be one of"),
        (["dam=maybe"], "expected true or false"),
        (["model.embed_dimm=4"], "unknown model option 'embed_dimm'"),
        (["model.dam=true"], "set the training option dam"),
        (["epochs"], "expects key=value"),
        (["extra_weight=0.5"], "extra_weight is set but extra_term is None"),
        (["train_data="], "train_data is required"),
        (["logit_range=wide"], "logit_range must be one of"),
        (["loss=pairwise", "logit_range=matched"], "applies to the GRAM loss only"),
    ],
)
def test_bad_options_give_clear_errors(overrides, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        load_config(preset="smoke", overrides=["train_data=d", *overrides])


def test_config_files_and_presets(tmp_path, capsys):
    world_small = load_config(REPO / "configs" / "world-small.toml")
    # the file is the preset (the study's base, configs/study-base.toml) plus the video-audio term
    plus_term = ["extra_term=video_audio", "extra_weight=0.5"]
    assert world_small == load_config(preset="world-small", overrides=plus_term)
    assert load_config(REPO / "configs" / "study-base.toml") == load_config(preset="world-small")
    smoke = load_config(REPO / "configs" / "smoke.toml", overrides=["train_data=x"])
    assert smoke.model["embed_dim"] == PRESETS["smoke"]["model"]["embed_dim"]
    (tmp_path / "c.json").write_text(json.dumps({"preset": "smoke", "train_data": "d", "batch_size": 4, "model": {"embed_dim": 8}}))
    cfg = load_config(tmp_path / "c.json", overrides=["batch_size=2"])
    assert (cfg.batch_size, cfg.model["embed_dim"], cfg.epochs) == (2, 8, 2)
    (tmp_path / "bad.toml").write_text('train_data = "d"\nlearning_rate = 0.1\n')
    with pytest.raises(ValueError, match="unknown training option 'learning_rate'"):
        load_config(tmp_path / "bad.toml")
    with pytest.raises(SystemExit) as e:  # the command line reports it with status 2
        cli_main(["train", "--config", str(tmp_path / "bad.toml")])
    assert e.value.code == 2 and "learning_rate" in capsys.readouterr().err


def test_fresh_run_refuses_to_overwrite_a_checkpoint_and_resume_needs_one(world, tmp_path):
    with pytest.raises(ValueError, match="no checkpoint"):
        main([*smoke_args(world, tmp_path), "--resume"])
    (tmp_path / "checkpoint").mkdir()
    for name in ("state.json", "tensors.safetensors"):
        (tmp_path / "checkpoint" / name).write_text("{}")
    with pytest.raises(ValueError, match="holds a checkpoint: pass --resume"):
        main(smoke_args(world, tmp_path))


def test_schedule_and_batches():
    cfg = TrainConfig(lr=1.0, warmup_steps=3, min_lr_ratio=0.1)
    lrs = [get_lr(s, cfg, 13) for s in range(13)]
    assert lrs[:3] == pytest.approx([1 / 3, 2 / 3, 1.0]) and lrs[3] == 1.0
    assert lrs[-1] > 0.1 and all(a >= b for a, b in zip(lrs[3:], lrs[4:]))
    assert get_lr(13, cfg, 13) == pytest.approx(0.1)
    # two ranks with batch 3 see the global batches of one process with batch 6, in rank order
    one, ranks = EpochBatches(20, 6, seed=5), [EpochBatches(20, 3, seed=5, rank=r, world=2) for r in range(2)]
    for s in (one, *ranks):
        s.set_epoch(2)
    assert [a + b for a, b in zip(*ranks)] == list(one) and len(one) == 3
    full = list(one)
    one.set_epoch(2, start=1)  # resume: the first batch is skipped
    assert len(one) == 2 and list(one) == full[1:]
    first = EpochBatches(20, 6, seed=5)
    first.set_epoch(3)
    assert list(first) != list(EpochBatches(20, 6, seed=5))  # a new permutation each epoch
    assert torch.equal(caption_draws(0, 1, 10), caption_draws(0, 1, 10)) and not torch.equal(caption_draws(0, 1, 10), caption_draws(0, 2, 10))


def test_the_log_carries_the_volume_collapse_statistics_of_the_validation_clips(world, tmp_path):
    import math

    from gramviz.evaluation import embed_dataset, open_dataset

    out = tmp_path / "run"
    assert cli_main(["train", *smoke_args(world, out, "epochs=1")]) == 0
    logged = [r for r in read_log(out) if "val/geom/pos_volume_mean" in r][-1]
    model = load_model(out / "final")
    emb, meta = embed_dataset(model, open_dataset(world / "val", model), batch_size=3, progress=False)
    # independently: float64 determinants of Gram matrices, each clip's first caption as its positive
    first = {}
    for row, clip in enumerate(meta.text_clips()):
        first.setdefault(clip, row)
    clips = sorted(first)
    t, v, a = (emb["text"][[first[c] for c in clips]].double(), emb["video"][clips].double(),
               emb["audio"][clips].double())

    def vol(*xs):
        m = torch.stack([x / x.norm() for x in xs])
        return math.sqrt(max(float(torch.det(m @ m.T)), 0.0))

    n = len(clips)
    pos = torch.tensor([vol(t[i], v[i], a[i]) for i in range(n)])
    neg = torch.tensor([vol(t[i], v[j], a[j]) for i in range(n) for j in range(n) if i != j])
    base = torch.tensor([vol(v[i], a[i]) for i in range(n)])
    cos = torch.tensor([float(v[i] @ a[i] / v[i].norm() / a[i].norm()) for i in range(n)])
    expected = {"pos_volume_mean": pos.mean(), "pos_volume_std": pos.std(), "neg_volume_mean": neg.mean(),
                "neg_volume_std": neg.std(), "base_median": base.median(), "height_median": (pos / base).median(),
                "cos_va_median": cos.median()}
    for name, value in expected.items():
        assert logged[f"val/geom/{name}"] == pytest.approx(float(value), abs=1e-5), name


def test_the_batch_collapse_means_match_float64_determinants():
    from gramviz.gram import volume_matrix
    from gramviz.training.objective import batch_collapse

    g = torch.Generator().manual_seed(11)
    t, v, a = (torch.nn.functional.normalize(torch.randn(5, 6, generator=g), dim=1) for _ in range(3))
    v[1] = a[1]  # a clip with its video equal to its audio: a flat (zero-volume) positive

    def vol(*xs):
        m = torch.stack([x.double() for x in xs])
        return float(torch.det(m @ m.T).clamp_min(0).sqrt())

    pos = [vol(t[i], v[i], a[i]) for i in range(5)]
    neg = [vol(t[i], v[j], a[j]) for i in range(5) for j in range(5) if i != j]
    got = batch_collapse(volume_matrix(t, v, a))
    assert got["geom/batch_pos_volume"] == pytest.approx(sum(pos) / 5, abs=1e-5)
    assert got["geom/batch_neg_volume"] == pytest.approx(sum(neg) / 20, abs=1e-5)
    assert set(batch_collapse(volume_matrix(t[:1], v[:1], a[:1]))) == {"geom/batch_pos_volume"}  # no negatives


def test_a_fixed_temperature_stays_and_the_matched_range_trains(world, tmp_path):
    out = tmp_path / "run"
    assert cli_main(["train", *smoke_args(world, out, "epochs=1", "learn_temperature=false", "temperature=0.14",
                                          "logit_range=matched", val=False)]) == 0
    steps = [r for r in read_log(out) if "loss" in r]
    assert steps and all(r["temperature"] == pytest.approx(0.14) for r in steps)
    assert all(0 <= r["geom/batch_pos_volume"] <= 1 and 0 <= r["geom/batch_neg_volume"] <= 1 for r in steps)
    card = json.loads((out / "final" / "card.json").read_text())
    assert card["config"]["logit_range"] == "matched" and card["config"]["learn_temperature"] is False
