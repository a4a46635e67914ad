"""Training in stages: the trainer paused every few epochs to hand back the model, so that a lesson
(or a script) can look at the geometry while it changes.

Each stage is one `gramviz.training.train` call that stops at an epoch boundary and the next resumes
from its checkpoint; the trainer's resume is exact, so the weights at the end equal those of one
uninterrupted run of the same config.

Example:
    >>> options = ["train_data=data/smoke/train", "out_dir=runs/staged"]
    >>> cfg = load_config(preset="smoke", overrides=options)  # doctest: +SKIP
    >>> for stage in train_in_stages(cfg, epochs_per_stage=1):  # doctest: +SKIP
    ...     print(stage.epoch, stage.step, stage.model.encode_text(["a ball"]).shape)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from ..datasets import annotations_path, read_annotations
from .config import TrainConfig
from .loop import train
from .setup import build_model, build_tokenizer, seed_everything

__all__ = ["Stage", "initial_model", "train_in_stages"]


@dataclass
class Stage:
    """The model after ``epoch`` epochs (``step`` optimizer steps) of a staged run."""

    epoch: int
    step: int
    model: Any  # the GRAMModel at this point; training goes on from the checkpoint, not from this object


def initial_model(cfg: TrainConfig) -> Any:
    """The untrained model of ``cfg``: the weights `gramviz.training.train` starts from (same seed, on the CPU)."""
    tokenizer = build_tokenizer(_records(cfg))  # as the trainer's
    seed_everything(cfg.seed)  # as the trainer: nothing else draws from the RNG before the model is built
    return build_model(cfg, tokenizer, torch.device("cpu"))


def train_in_stages(cfg: TrainConfig, epochs_per_stage: int = 1, include_start: bool = True) -> Iterator[Stage]:
    """Train as ``gramviz.training.train(cfg)`` does, yielding the model every ``epochs_per_stage`` epochs.

    The run writes what the trainer writes (``out_dir/log.jsonl``, checkpoints, ``out_dir/final/``
    after the last epoch). Stopping the iteration early leaves a checkpoint that
    ``gramviz train --resume`` continues.

    Args:
        cfg: the training config; ``out_dir`` must not hold a checkpoint, ``stop_at_step`` must be
            None (the stages set it), one process (no ``torchrun``).
        epochs_per_stage: epochs between two looks at the model.
        include_start: first yield the untrained model (`initial_model`) as epoch 0.

    Yields:
        `Stage` (epoch, step, model) after each stage; the last one has ``epoch == cfg.epochs``.
    """
    if int(epochs_per_stage) != epochs_per_stage or epochs_per_stage < 1:
        raise ValueError(f"epochs_per_stage must be a positive integer, got {epochs_per_stage!r}")
    if cfg.stop_at_step is not None:
        raise ValueError("train_in_stages sets stop_at_step itself: leave it None in the config")
    clips = len(_records(cfg))
    steps_per_epoch = clips // cfg.batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"{clips} training clips do not fill one batch of batch_size {cfg.batch_size}")
    if include_start:
        yield Stage(0, 0, initial_model(cfg))
    # a checkpoint at each stage's last step (the epoch-end checkpoint comes after the stop)
    every = steps_per_epoch * int(epochs_per_stage)
    for end in [*range(int(epochs_per_stage), cfg.epochs, int(epochs_per_stage)), cfg.epochs]:
        last = end == cfg.epochs
        stop = None if last else end * steps_per_epoch
        stage_cfg = dataclasses.replace(cfg, checkpoint_every=every, stop_at_step=stop)
        result = train(stage_cfg, resume=end > int(epochs_per_stage))
        yield Stage(end, result.steps, result.model)


def _records(cfg: TrainConfig) -> list[Any]:
    """The training clips' annotation records, in the trainer's order."""
    return read_annotations(annotations_path(cfg.train_data))
