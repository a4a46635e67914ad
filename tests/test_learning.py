"""The trainer learns: a tiny model trained by `gramviz.training.train` fits a tiny world split.

For each contrastive loss option (gram, pairwise, fused) and for gram with the DAM head, a run of
the "smoke" preset on 8 generated clips (one batch of 8: every step sees every clip) must

* lower its training loss: the mean of the last logged steps is well below that of the first ones
  (the references are the run's own first steps, logged before the weights have moved much);
* rank the training clips: text -> video+audio R@1 of the trained model, under the measure the
  loss trains (`gramviz.losses.LOSSES[loss].measure`), far above chance (1 / clips);
* with DAM, also lower the DAM loss well below the best a head that only learnt the 1:2 label
  frequency can reach (its entropy H(1/3) = 0.637), and re-rank the clips by the head's matching
  probability far above chance.

Margins come from seeds 0-4 (DAM: 0-9): see the constants. A run that climbs its loss or does not
move (zero learning rate, detached loss) fails every test here, and a DAM head trained with swapped
labels fails the re-ranking check. GRAM trained on the wrong logits (-height / tau instead of
-volume / tau) still fits 8 clips and passes: test_losses.py's hand-written formula catches that.
"""

import json
import math

import pytest
import torch

from gramviz import ClipDataset, ClipSettings, open_cache
from gramviz.evaluation import evaluate
from gramviz.losses import LOSSES
from gramviz.training import PRESETS, load_config, train

CLIPS = 8  # the smoke preset's batch: one step per epoch, every clip in each step
CHANCE = 1 / CLIPS
FIRST, LAST = 3, 5  # logged steps averaged at the start and at the end of a run
# last/first mean loss: measured 0.24-0.37 (30 steps, seeds 0-4, all three losses), with DAM 0.23-0.25
# (loss_contrastive) and 0.08-0.45 (loss_dam); about 1 when nothing moves, above 1 when it climbs
LOSS_RATIO = 0.6
# t2va R@1 on the training clips: measured 1.0 for every loss and seed; chance is 0.125
R1_FLOOR = 0.5
# DAM: mean loss_dam of the last steps, measured 0.055-0.30 (seeds 0-9); H(1/3) = 0.637 is what the
# label frequency alone gives, ln 2 = 0.693 an untrained head
DAM_LOSS_CEILING = 0.45
# DAM re-ranking t2va_dam R@1, measured 0.71-1.0 (seeds 0-9); a head with swapped labels ranks the match last
DAM_R1_FLOOR = 0.5


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: on tensors this small two threads mostly wait on each other, and on a
    busy 2-core machine they make a run many times slower. Restored after the module."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """8 training clips (8 frames of 32x32) and their decoded-tensor cache, as the smoke model reads them."""
    import gramviz.world

    root = tmp_path_factory.mktemp("learning")
    gramviz.world.generate(root / "train", n=CLIPS, split="train", workers=2, progress=False, frames=8, size=32)
    model = PRESETS["smoke"]["model"]
    settings = ClipSettings(model["num_frames"], tuple(model["frame_size"]), 16000, 3.0)
    clips = open_cache(ClipDataset(root / "train" / "captions.jsonl", settings), root / "cache" / "train", progress=False)
    return root, clips


def train_run(world, out, *sets: str):
    """Train the smoke preset on the world's clips; the result and the training lines of its log."""
    root, _ = world
    cfg = load_config(preset="smoke", overrides=[
        "progress=false", f"train_data={root / 'train'}", f"cache_dir={root / 'cache'}", f"out_dir={out}",
        "val_data=none", "lr=3e-3", "warmup_steps=2", *sets,
    ])
    result = train(cfg)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, cfg.epochs + 1))  # log_every=1, one step per epoch
    return result, log


def mean(values) -> float:
    return sum(values) / len(values)


def assert_falls(log, key: str) -> None:
    first, last = mean([r[key] for r in log[:FIRST]]), mean([r[key] for r in log[-LAST:]])
    assert math.isfinite(last) and last < LOSS_RATIO * first, f"{key}: first steps {first:.4f}, last steps {last:.4f}"


@pytest.mark.parametrize("loss", ["gram", "pairwise", "fused"])
def test_training_lowers_the_loss_and_learns_to_retrieve_the_training_clips(world, tmp_path, loss):
    result, log = train_run(world, tmp_path / "run", f"loss={loss}", "epochs=30")
    assert_falls(log, "loss")
    # each loss is judged by the score it trains: a cosine-trained model need not rank well by volume
    metrics = evaluate(result.model, world[1], measure=LOSSES[loss].measure)
    assert metrics["t2va/n"] == CLIPS
    assert metrics["t2va/R@1"] >= R1_FLOOR, f"R@1 {metrics['t2va/R@1']:.3f}, chance {CHANCE:.3f}"


def test_dam_training_lowers_both_terms_and_the_head_learns_to_match(world, tmp_path):
    # the head first learns only the label frequency (loss_dam ~ H(1/3) for ~40 steps) and then to
    # match; weight 1 and no dropout make that happen within 120 steps for every seed tried
    result, log = train_run(world, tmp_path / "run", "loss=gram", "dam=true", "dam_weight=1", "model.dropout=0",
                            "epochs=120")
    assert_falls(log, "loss_contrastive")
    assert_falls(log, "loss_dam")
    dam_last = mean([r["loss_dam"] for r in log[-LAST:]])
    assert dam_last < DAM_LOSS_CEILING, f"loss_dam {dam_last:.4f}: not below the label-frequency level 0.637"
    # re-rank every clip (8 < DAM_TOP_K) by the head's matching probability alone
    metrics = evaluate(result.model, world[1], rerank=True)
    assert metrics["t2va/R@1"] >= R1_FLOOR, f"R@1 {metrics['t2va/R@1']:.3f}, chance {CHANCE:.3f}"
    assert metrics["t2va_dam/R@1"] >= DAM_R1_FLOOR, f"DAM R@1 {metrics['t2va_dam/R@1']:.3f}, chance {CHANCE:.3f}"
