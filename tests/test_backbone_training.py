"""Training, evaluating and embedding GRAM models on tiny pretrained backbones: frozen towers stay
fixed while the heads learn, the frozen-feature cache gives the towers' loss without running them,
and ``gramviz eval`` / ``gramviz embed`` take such a model."""

import dataclasses
import json

import pytest
import torch

pytest.importorskip("transformers")

from tiny_backbones import build_all

import gramviz
from gramviz.cli import main
from gramviz.models import GRAMModel
from gramviz.models.backbones import Tower
from gramviz.training import train
from gramviz.training.config import load_config
from gramviz.training.objective import GRAMObjective
from gramviz.training.setup import build_optimizer

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("bbworld")
    for split, n in (("train", 16), ("val", 6)):
        gramviz.world.generate(root / split, n=n, split=split, workers=1, progress=False, frames=8, size=32)
    return root, build_all(root / "backbones")


def config(world, out, **changes):
    root, tiny = world
    cfg = load_config(overrides=[f"train_data={root / 'train'}", f"out_dir={out}", "batch_size=8", "epochs=2",
                                 "model.embed_dim=16", "log_every=1", "warmup_steps=1", "progress=false"])
    backbones = {"text": {"source": "hf", "name": str(tiny["clip"]), "tower": "text"},
                 "video": {"source": "hf", "name": str(tiny["clip"]), "tower": "vision"},
                 "audio": {"source": "hf", "name": str(tiny["clap"]), "tower": "audio"}}
    return dataclasses.replace(cfg, backbones=backbones, **changes)


def losses(out):
    return [json.loads(line)["loss"] for line in (out / "log.jsonl").read_text().splitlines() if '"loss"' in line]


def test_the_feature_cache_gives_the_towers_loss_and_never_runs_them(world, tmp_path, monkeypatch):
    towers = train(config(world, tmp_path / "towers", frozen_features=False))
    cached = train(config(world, tmp_path / "cached", cache_dir=str(tmp_path / "cache")))
    assert len(list((tmp_path / "cache" / "features" / "train").glob("*.safetensors"))) == 1
    reference = losses(tmp_path / "towers")
    assert len(reference) == 4 and losses(tmp_path / "cached") == pytest.approx(reference, abs=1e-5)

    def refuse(self, inputs):
        raise AssertionError("a tower ran while training from stored features")

    monkeypatch.setattr(Tower, "forward", refuse)
    again = train(config(world, tmp_path / "again", cache_dir=str(tmp_path / "cache")))
    assert losses(tmp_path / "again") == pytest.approx(reference, abs=1e-5)
    for result in (cached, again):
        for name, p in towers.model.named_parameters():
            if ".head." in name:
                torch.testing.assert_close(dict(result.model.named_parameters())[name], p, atol=1e-5, rtol=0)


def test_frozen_towers_do_not_change_while_the_heads_learn(world):
    root, tiny = world
    cfg = config(world, root / "unused")
    model = gramviz.pretrained_model(cfg.backbones, embed_dim=16)
    objective = GRAMObjective(model, cfg)
    optimizer = build_optimizer(objective, cfg)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(".tower." in n for n in frozen) and all(".head." in n for n in set(before) - frozen)
    dataset = gramviz.ClipDataset(root / "train" / "captions.jsonl", gramviz.models.clip_settings(model))
    batch = dataset.collate([dataset[i] for i in range(8)])
    inputs = {"text": [c[0] for c in batch["captions"]], "video": batch["video"], "audio": batch["audio"]}
    objective.train()
    for _ in range(3):
        objective(inputs)["loss"].backward()
        optimizer.step()
        optimizer.zero_grad()
    after = dict(model.named_parameters())
    assert all(torch.equal(after[n], before[n]) for n in frozen)
    assert all(not torch.equal(after[n], before[n]) for n in set(before) - frozen if n.endswith("weight"))
    assert not model.encoders["video"].tower.training  # frozen towers stay in eval mode (no dropout)


def test_eval_and_embed_take_a_backbone_model(world, tmp_path, capsys):
    root, tiny = world
    model = gramviz.pretrained_model(config(world, tmp_path).backbones, embed_dim=16)
    model.save_pretrained(tmp_path / "model")
    assert main(["eval", "--model", str(tmp_path / "model"), "--data", str(root / "val"), "--json", "--quiet",
                 "--device", "cpu"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["t2va/n"] == 6 and 0 <= metrics["t2va/R@1"] <= 1
    out = tmp_path / "emb.safetensors"
    assert main(["embed", "--model", str(tmp_path / "model"), "--data", str(root / "val"), "--out", str(out),
                 "--workers", "0"]) == 0
    emb, meta = gramviz.load_embeddings(out)
    assert emb["text"].shape == (18, 16) and emb["video"].shape == emb["audio"].shape == (6, 16)
    loaded = gramviz.load_model(tmp_path / "model")
    torch.testing.assert_close(emb["text"], loaded.encode_text(meta.captions), atol=1e-5, rtol=0)
    clips = loaded.encode_clip_files([root / "val" / p for p in meta.paths["video"]])
    torch.testing.assert_close(emb["video"], clips["video"], atol=1e-5, rtol=0)


def test_a_toml_config_names_backbones_per_modality(world, tmp_path):
    root, tiny = world
    path = tmp_path / "run.toml"
    path.write_text(f'train_data = "{root / "train"}"\n[model]\nembed_dim = 16\nhead = "mlp"\n'
                    f'[backbones.text]\nsource = "hf"\nname = "{tiny["bert"]}"\n'
                    f'[backbones.audio]\nsource = "hf"\nname = "{tiny["ast"]}"\nfreeze = true\n')
    cfg = load_config(path, overrides=["backbones.text.train_layers=1"])
    assert cfg.backbones["text"] == {"source": "hf", "name": str(tiny["bert"]), "train_layers": 1}
    result = train(dataclasses.replace(cfg, out_dir=str(tmp_path / "run"), epochs=1, batch_size=8, progress=False))
    assert isinstance(result.model, GRAMModel) and result.steps == 2
    saved = gramviz.load_model(tmp_path / "run" / "final")
    assert saved.config.head == "mlp" and saved.config.backbones["text"]["train_layers"] == 1
    torch.testing.assert_close(saved.encode_text(["a dog"]), result.model.eval().encode_text(["a dog"]), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="backbones: .*source must be one of"):
        load_config(path, overrides=["backbones.audio.source=torchhub"])


@pytest.mark.parametrize("name", ["clip-clap", "bert-clip-clap"])
def test_the_hub_configs_parse_and_name_their_towers(name):
    from pathlib import Path

    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / f"{name}.toml")
    assert cfg.backbones["video"] == {"source": "hf", "name": "openai/clip-vit-base-patch32", "tower": "vision"}
    assert cfg.backbones["audio"]["name"] == "laion/clap-htsat-unfused" and cfg.model["embed_dim"] == 512


def test_bf16_mixed_precision_on_the_cpu_trains_the_heads_in_bf16(world, tmp_path):
    from gramviz.training.loop import train_step
    from gramviz.training.setup import amp_dtype

    cpu = torch.device("cpu")
    assert amp_dtype(config(world, tmp_path / "a"), cpu) is None  # "auto": off on a CPU
    assert amp_dtype(config(world, tmp_path / "b", amp="bf16"), cpu) is torch.bfloat16
    assert amp_dtype(config(world, tmp_path / "c", amp="bf16", dtype="float64"), cpu) is None
    full = train(config(world, tmp_path / "fp32", cache_dir=str(tmp_path / "cache")))
    mixed = train(config(world, tmp_path / "bf16", amp="bf16", cache_dir=str(tmp_path / "cache")))
    assert json.loads((tmp_path / "bf16" / "final" / "card.json").read_text())["training"]["amp"] == "bfloat16"
    # bf16 products round to about 3 significant digits: the same losses to that precision, not exactly
    reference, got = losses(tmp_path / "fp32"), losses(tmp_path / "bf16")
    assert got == pytest.approx(reference, rel=2e-2) and got != reference
    assert all(p.dtype == torch.float32 for p in mixed.model.parameters())
    # inside the step the heads run in bf16 and the loss in float32
    seen = {}
    head = mixed.model.encoders["audio"].head
    handle = head.register_forward_hook(lambda m, i, o: seen.update(head=o.dtype))  # returns None: output kept
    cfg = config(world, tmp_path / "unused", amp="bf16")
    objective = GRAMObjective(mixed.model, cfg)
    optimizer, scaler = build_optimizer(objective, cfg), torch.amp.GradScaler("cpu", enabled=False)
    inputs = {"text": ["a red ball bounces"] * 4, "video": torch.rand(4, 8, 3, 32, 32), "audio": torch.randn(4, 16000)}
    terms, norm = train_step(objective, objective, optimizer, scaler, inputs, torch.bfloat16, 1.0)
    handle.remove()
    assert seen["head"] is torch.bfloat16 and terms["loss"].dtype is torch.float32 and bool(torch.isfinite(norm))
    assert full.model is not mixed.model
