"""The bundled default model: it loads by name, says how it was made, and retrieves world clips."""

import json

import pytest

import gramviz
from gramviz.evaluation import evaluate
from gramviz.models import bundled_models


@pytest.fixture(scope="module")
def model():
    return gramviz.load_model("world-small")  # a package without it is broken: the load must fail loudly


def test_world_small_is_bundled():
    assert "world-small" in bundled_models()


def test_card_records_how_it_was_trained(model):
    from gramviz.models.io import BUNDLED_DIR

    card = json.loads((BUNDLED_DIR / "world-small" / "card.json").read_text())
    assert card["command"].startswith("gramviz train --config configs/world-small.toml")
    assert card["data"]["train"]["clips"] > 0 and card["training"]["steps"] > 0
    assert card["config"]["loss"] == "gram" and card["seed"] == 0
    assert "choice" in card  # why this variant (plain GRAM, DAM, an extra term) was bundled
    assert (BUNDLED_DIR / "world-small" / "model.safetensors").stat().st_size < 20e6


def test_card_config_is_the_committed_config(model):
    """`make train-default` reproduces the bundled model: its config file gives the card's config."""
    from pathlib import Path

    from gramviz.models.io import BUNDLED_DIR
    from gramviz.training.config import load_config

    card = json.loads((BUNDLED_DIR / "world-small" / "card.json").read_text())
    config = load_config(Path(__file__).parents[1] / "configs" / "world-small.toml").to_dict()
    from gramviz.training.config import TrainConfig

    saved = {**TrainConfig().to_dict(), **card["config"]}  # options added since it was trained: their defaults
    skip = {"progress", "out_dir"}  # run control, not the model
    assert {k: v for k, v in config.items() if k not in skip} == {k: v for k, v in saved.items() if k not in skip}


def test_retrieves_freshly_generated_test_clips(model, tmp_path):
    # 40 clips of the test split drawn with another seed than the shipped evaluation
    gramviz.world.generate(tmp_path, n=40, seed=123, split="test", progress=False)
    dataset = gramviz.ClipDataset(tmp_path / "captions.jsonl")
    metrics = evaluate(model, dataset)
    assert metrics["t2va/R@1"] >= 0.8 and metrics["va2t/R@1"] >= 0.8
