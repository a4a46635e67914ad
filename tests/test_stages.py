"""Training in stages: the same weights and log as one uninterrupted run, and the untrained model
is exactly where the trainer starts."""

import json

import pytest
import torch

from gramviz.training import initial_model, load_config, train, train_in_stages


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    import gramviz.world

    root = tmp_path_factory.mktemp("world")
    for split, n in (("train", 16), ("val", 8)):
        gramviz.world.generate(root / split, n=n, split=split, workers=1, progress=False, frames=8, size=32)
    return root


def config(world, out, **options):
    overrides = [f"train_data={world / 'train'}", f"val_data={world / 'val'}", f"out_dir={out}", "epochs=3",
                 "batch_size=8", "progress=false", *(f"{k}={v}" for k, v in options.items())]
    return load_config(preset="smoke", overrides=overrides)


def log_lines(path):
    return [{k: v for k, v in json.loads(line).items() if k != "clips_per_s"} for line in path.read_text().splitlines()]


def test_stages_end_where_one_uninterrupted_run_ends(world, tmp_path):
    stages = list(train_in_stages(config(world, tmp_path / "staged"), epochs_per_stage=1))
    # 16 clips in batches of 8: 2 steps per epoch
    assert [(s.epoch, s.step) for s in stages] == [(0, 0), (1, 2), (2, 4), (3, 6)]
    whole = train(config(world, tmp_path / "whole"))
    staged, straight = stages[-1].model.state_dict(), whole.model.state_dict()
    assert staged.keys() == straight.keys()
    assert all(torch.equal(staged[k], straight[k]) for k in staged)
    assert log_lines(tmp_path / "staged" / "log.jsonl") == log_lines(tmp_path / "whole" / "log.jsonl")
    assert (tmp_path / "staged" / "final" / "model.safetensors").exists()
    # each stage hands back its own model: the first stages' weights differ from the last's
    first = stages[1].model.state_dict()
    assert any(not torch.equal(first[k], staged[k]) for k in staged)


def test_the_untrained_model_is_where_the_trainer_starts(world, tmp_path):
    cfg = config(world, tmp_path / "start", lr=1e-12, epochs=1, val_data="none")
    start = initial_model(cfg).state_dict()
    after_two_tiny_steps = train(cfg).model.state_dict()
    assert max(float((start[k] - after_two_tiny_steps[k]).abs().max()) for k in start) < 1e-8
    other_seed = initial_model(config(world, tmp_path / "other", seed=1)).state_dict()
    assert any(float((start[k] - other_seed[k]).abs().max()) > 1e-3 for k in start)


def test_bad_stage_options_are_refused(world, tmp_path):
    with pytest.raises(ValueError, match="epochs_per_stage"):
        next(train_in_stages(config(world, tmp_path / "a"), epochs_per_stage=0))
    with pytest.raises(ValueError, match="stop_at_step"):
        next(train_in_stages(config(world, tmp_path / "b", stop_at_step=1)))
    with pytest.raises(ValueError, match="do not fill one batch"):
        next(train_in_stages(config(world, tmp_path / "c", batch_size=32)))
