"""Train a GRAM model on clips with captions: one process, one GPU, or many with ``torchrun``.

    gramviz train --config configs/world-small.toml [--set key=value ...] [--resume]
    torchrun --nproc_per_node=4 -m gramviz.training --config configs/world-small.toml

Read top to bottom: `train` checks the resume state, builds the run (distributed setup and
device, data: a seeded permutation per epoch sliced by rank; the model and its loss in one module,
so DDP also averages the temperature's gradient; AdamW with warmup + cosine), then runs the
epochs (the step loop with AMP and clipping, evaluation, checkpoints) and writes the final model.
Every run is a function of its config: the same seed gives the same weights, also after a kill and
``--resume``, and N processes with batch b equal one process with batch N * b.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .. import distributed
from ..models import GRAMModel, ModelConfig, Tokenizer, clip_settings, inference, load_model
from .checkpoint import find_checkpoint, load_checkpoint, save_checkpoint
from .config import RUN_CONTROL, TrainConfig, add_train_arguments, load_config
from .data import EpochBatches, IndexedClips, build_datasets, caption_draws, epoch_seed, seed_worker, to_model_batch
from .features import FeatureClips, all_frozen, feature_batch, identity, tower_features
from .log import JsonlLog, mean_terms
from .objective import GRAMObjective
from .setup import amp_dtype, build_model, build_optimizer, build_tokenizer, get_lr, init_weights, seed_everything

__all__ = ["TrainResult", "main", "run_evaluation", "train", "train_step"]

CHECKPOINT_FORMAT = {"format": "gramviz.train-checkpoint", "version": 1}


@dataclass
class TrainResult:
    """What `train` returns (on every rank)."""

    model: GRAMModel  # the trained model (not wrapped)
    metrics: dict[str, float]  # the last evaluation ({} without val_data)
    steps: int  # optimizer steps done
    clips_per_s: float  # training throughput of this process's run (all ranks together)
    stopped: bool  # True when stop_at_step ended the run early (no final model written)


def train(cfg: TrainConfig, resume: bool = False, command: str | None = None) -> TrainResult:
    """Train as ``cfg`` says; writes out_dir/log.jsonl, out_dir/checkpoint/ and out_dir/final/.

    Args:
        cfg: the run's config.
        resume: continue from out_dir/checkpoint (the config may differ only in `RUN_CONTROL`).
        command: the command line, recorded in the final model's card.
    """
    started = time.perf_counter()
    rank, world, device, opened = distributed.setup(cfg.device)
    state = _resume_state(cfg, resume, world)
    run = _build_run(cfg, state, rank, world, device)
    at = _restore(run, state, started)
    log = JsonlLog(Path(cfg.out_dir) / "log.jsonl", rank == 0, state["log_offset"] if state else None)

    bar = tqdm(total=run.total_steps, initial=at.step, desc="train", unit="step",
               disable=not (cfg.progress and rank == 0))
    run.objective.train()
    clock, stopped = _Clock(), False
    while at.epoch < cfg.epochs and not stopped:
        stopped = _train_epoch(run, at, log, bar, clock)
        if not stopped:
            _end_epoch(run, at, log, clock)
    bar.close()
    clock.lap()
    if not stopped and rank == 0:
        _write_final(run, at, clock.clips_per_s(), command)
    distributed.shutdown(opened)
    return TrainResult(run.objective.model, at.metrics, at.step, clock.clips_per_s(), stopped)


def train_step(forward: nn.Module, objective: nn.Module, optimizer: torch.optim.Optimizer,
               scaler: torch.amp.GradScaler, inputs: dict[str, Any], autocast: torch.dtype | None,
               grad_clip: float) -> tuple[dict[str, Tensor], Tensor]:
    """One optimizer step (AMP, loss scaling, clipping); returns the loss terms and the gradient norm.
    ``forward`` is the DDP wrapper when there is one, ``objective`` the module it wraps; ``autocast``
    the mixed-precision dtype on the parameters' device (CUDA, or bf16 on a CPU), None for none."""
    device = next(objective.parameters()).device.type
    with torch.autocast(device, dtype=autocast) if autocast else contextlib.nullcontext():
        terms = forward(inputs)
    scaler.scale(terms["loss"]).backward()
    scaler.unscale_(optimizer)  # clip the true gradients (a no-op without fp16 loss scaling)
    grad_norm = nn.utils.clip_grad_norm_(objective.parameters(), grad_clip or float("inf"))
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return terms, grad_norm


# ----------------------------------------------------------------------------- before the first step

def _resume_state(cfg: TrainConfig, resume: bool, world: int) -> dict[str, Any] | None:
    """The checkpoint's JSON state when resuming, else None; refuses a resume without a checkpoint,
    a fresh run over one, and a resume whose config or world size differs from the checkpoint's."""
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = find_checkpoint(out_dir)
    if resume and path is None:
        raise ValueError(f"--resume: no checkpoint in {out_dir}")
    if not resume:
        if path is not None:
            raise ValueError(f"{out_dir} holds a checkpoint: pass --resume to continue it, or choose another out_dir")
        return None
    state = json.loads((path / "state.json").read_text())
    old, new = state["config"], cfg.to_dict()
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}
    # a field added since the checkpoint was written compares as its default
    changed = [k for k in new if k not in RUN_CONTROL and old.get(k, defaults.get(k)) != new[k]]
    if changed:
        raise ValueError(f"--resume: the config differs from the checkpoint's in {changed}; "
                         "only these may change: " + ", ".join(RUN_CONTROL))
    if state["world_size"] != world:
        raise ValueError(f"--resume: the checkpoint was written by {state['world_size']} processes, now {world}")
    return state


@dataclass
class _Run:
    """What `_build_run` makes for `train`: the data, the model and what steps it."""

    cfg: TrainConfig
    rank: int
    world: int
    device: torch.device
    datasets: dict[str, tuple[Dataset, Dataset]]  # {"train"[, "val"]: (annotated clips, clips to load)}
    tokenizer: Any  # the word Tokenizer, or the text backbone's own
    sampler: EpochBatches
    loader: DataLoader
    objective: GRAMObjective
    forward: nn.Module  # the DDP wrapper (keep it: its hooks average the gradients), else the objective
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    autocast: torch.dtype | None
    steps_per_epoch: int

    @property
    def total_steps(self) -> int:
        """Optimizer steps of the whole run (the schedule spans them all)."""
        return self.steps_per_epoch * self.cfg.epochs


def _build_run(cfg: TrainConfig, state: dict[str, Any] | None, rank: int, world: int, device: torch.device) -> _Run:
    """Data, tokenizer, model, objective, DDP wrapper, optimizer and scaler, in the order that
    fixes what each draws from the seeded RNGs."""
    seed_everything(cfg.seed)
    # clip settings follow the model's preprocessing (a backbone's: its image size, its audio rate)
    backbone_model = build_model(cfg, None, device) if cfg.backbones else None
    settings = clip_settings(backbone_model or ModelConfig.from_dict({**cfg.model, "dam": cfg.dam}))
    datasets = build_datasets(cfg, settings, rank)
    train_records, train_clips = datasets["train"]
    steps_per_epoch = len(train_clips) // (cfg.batch_size * world)
    if steps_per_epoch < 1:
        raise ValueError(f"{len(train_clips)} training clips do not fill one batch of "
                         f"batch_size {cfg.batch_size} x {world} processes")
    start = load_model(cfg.init_from, device="cpu") if cfg.init_from and state is None else None
    tokenizer = backbone_model.tokenizer if backbone_model is not None else _tokenizer(state, start, train_records)
    sampler = EpochBatches(len(train_clips), cfg.batch_size, cfg.seed, rank, world)
    model = backbone_model or build_model(cfg, tokenizer, device)
    loader = _loader(cfg, model, datasets["train"], sampler, rank, device)
    if start is not None:
        init_weights(model, start, cfg.init_from)
    objective = GRAMObjective(model, cfg).to(device)
    if cfg.dtype == "float64":
        objective = objective.double()
    forward = objective if world == 1 else \
        nn.parallel.DistributedDataParallel(objective, device_ids=[device] if device.type == "cuda" else None)
    autocast = amp_dtype(cfg, device)
    return _Run(cfg, rank, world, device, datasets, tokenizer, sampler, loader, objective, forward,
                build_optimizer(objective, cfg), torch.amp.GradScaler(device.type, enabled=autocast == torch.float16),
                autocast, steps_per_epoch)


def _loader(cfg: TrainConfig, model: GRAMModel, train: tuple[Dataset, Dataset], sampler: EpochBatches, rank: int,
            device: torch.device) -> DataLoader:
    """The training batches: decoded clips, or stored tower outputs when every backbone is frozen
    (`gramviz.training.features`: the towers see each clip and caption once, rank 0 computes)."""
    generator = torch.Generator().manual_seed(cfg.seed)
    if cfg.frozen_features and all_frozen(model):
        folder = Path(cfg.cache_dir or cfg.out_dir) / "features" / "train"
        if rank == 0:
            features = tower_features(model, *train, folder, cfg.batch_size, cfg.progress)
        distributed.barrier()
        if rank != 0:
            features = tower_features(model, *train, folder, cfg.batch_size, progress=False)
        return DataLoader(FeatureClips(features), sampler=sampler, batch_size=None, collate_fn=identity,
                          generator=generator)
    data = IndexedClips(train[1])
    return DataLoader(data, batch_sampler=sampler, collate_fn=data.collate, num_workers=cfg.workers,
                      worker_init_fn=seed_worker, generator=generator, pin_memory=device.type == "cuda")


def _tokenizer(state: dict[str, Any] | None, start: GRAMModel | None, records: Dataset) -> Tokenizer:
    """The checkpoint's tokenizer on resume; else that of the saved model the run starts from (the
    embedding rows are its words); else one built from every training caption."""
    if state is not None:
        return Tokenizer.from_dict(state["tokenizer"])
    if start is not None:
        return start.tokenizer
    return build_tokenizer(records.records)


@dataclass
class _Position:
    """Where a run stands: what a checkpoint records besides the tensors."""

    step: int = 0  # optimizer steps done
    epoch: int = 0  # the epoch under way
    batch: int = 0  # its batches done
    elapsed_s: float = 0.0  # wall time of the runs this one resumes
    metrics: dict[str, float] = field(default_factory=dict)  # the last evaluation
    started: float = 0.0  # time.perf_counter() when this process's run began

    def wall_s(self) -> float:
        """Wall time of the run so far, the resumed runs' included."""
        return self.elapsed_s + time.perf_counter() - self.started


def _restore(run: _Run, state: dict[str, Any] | None, started: float) -> _Position:
    """Where the run starts: step 0, or the checkpoint's position, with the weights, optimizer,
    scaler and every RNG restored from it."""
    if state is None:
        return _Position(started=started)
    load_checkpoint(find_checkpoint(run.cfg.out_dir), run.objective, run.optimizer, run.scaler)
    return _Position(state["step"], state["epoch"], state["batch"], state["elapsed_s"], state["metrics"], started)


# ----------------------------------------------------------------------------- the epochs

class _Clock:
    """Training throughput: the clips stepped over the time spent stepping (evaluation left out)."""

    def __init__(self) -> None:
        self.clips, self.seconds, self.tick = 0, 0.0, time.perf_counter()

    def lap(self) -> None:
        """Count the time since the last lap (or `restart`) as training time."""
        now = time.perf_counter()
        self.seconds, self.tick = self.seconds + now - self.tick, now

    def restart(self) -> None:
        """Start timing again after a pause (the time since the last lap is not counted)."""
        self.tick = time.perf_counter()

    def clips_per_s(self) -> float:
        """Clips per second of training time (all ranks' clips together)."""
        return self.clips / max(self.seconds, 1e-9)


def _train_epoch(run: _Run, at: _Position, log: JsonlLog, bar: tqdm, clock: _Clock) -> bool:
    """The remaining steps of epoch ``at.epoch``; True when stop_at_step ended the run in it."""
    cfg = run.cfg
    run.sampler.set_epoch(at.epoch, at.batch)
    run.loader.generator.manual_seed(epoch_seed(cfg.seed, at.epoch))  # worker seeds: a function of (seed, epoch)
    draws = caption_draws(cfg.seed, at.epoch, len(run.loader.dataset))  # one per training clip
    for batch in run.loader:
        lr = get_lr(at.step, cfg, run.total_steps)
        for group in run.optimizer.param_groups:
            group["lr"] = lr
        to_inputs = feature_batch if isinstance(run.loader.dataset, FeatureClips) else to_model_batch
        inputs = to_inputs(batch, draws, run.objective.modalities, run.device)
        terms, grad_norm = train_step(run.forward, run.objective, run.optimizer, run.scaler, inputs, run.autocast,
                                      cfg.grad_clip)
        at.step, at.batch = at.step + 1, at.batch + 1
        clock.clips += cfg.batch_size * run.world
        bar.update()
        if at.step % cfg.log_every == 0:  # the only host synchronisation of a step: once per log interval
            clock.lap()
            record = {"step": at.step, "epoch": at.epoch + at.batch / run.steps_per_epoch, "lr": lr,
                      "grad_norm": float(grad_norm), **mean_terms(terms)}
            bar.set_postfix(loss=f"{record['loss']:.4f}", temp=f"{record['temperature']:.4f}")
            log.write({**record, "clips_per_s": clock.clips_per_s()})
        if cfg.checkpoint_every and at.step % cfg.checkpoint_every == 0:
            _checkpoint(run, at, log)
        if cfg.stop_at_step is not None and at.step >= cfg.stop_at_step:
            return True  # as if killed here: nothing more is written
    return False


def _end_epoch(run: _Run, at: _Position, log: JsonlLog, clock: _Clock) -> None:
    """Move on to the next epoch; evaluate when due (rank 0, not timed) and checkpoint."""
    cfg = run.cfg
    at.epoch, at.batch = at.epoch + 1, 0
    if "val" in run.datasets and cfg.eval_every and (at.epoch % cfg.eval_every == 0 or at.epoch == cfg.epochs):
        clock.lap()
        if run.rank == 0:
            at.metrics = run_evaluation(run.objective.model, run.datasets["val"][1], cfg.batch_size)
            log.write({"step": at.step, "epoch": at.epoch, **at.metrics})
        clock.restart()
    _checkpoint(run, at, log)


def _checkpoint(run: _Run, at: _Position, log: JsonlLog) -> None:
    """Write out_dir/checkpoint (rank 0): the run resumes at ``at``."""
    if run.rank != 0:
        return
    log_offset = log.offset()
    save_checkpoint(run.cfg.out_dir, run.objective, run.optimizer, run.scaler, {
        **CHECKPOINT_FORMAT, "step": at.step, "epoch": at.epoch, "batch": at.batch, "log_offset": log_offset,
        "elapsed_s": at.wall_s(), "metrics": at.metrics, "world_size": run.world, "config": run.cfg.to_dict(),
        "tokenizer": run.tokenizer.to_dict() if isinstance(run.tokenizer, Tokenizer) else None,
    })


def run_evaluation(model: nn.Module, dataset: Dataset, batch_size: int) -> dict[str, float]:
    """`gramviz.evaluation.evaluate` on the validation clips, in eval mode, without touching any RNG,
    with the volume statistics that show a collapse (``val/geom/...``).

    Returns:
        The metrics, each name prefixed with ``val/``.
    """
    from ..evaluation import (
        evaluate,  # the evaluation package loads with the first evaluation
    )

    with inference(model) as device:
        devices = [torch.cuda.current_device()] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            metrics = evaluate(model, dataset, batch_size=batch_size, geometry=True)
    return {f"val/{k}": float(v) for k, v in metrics.items()}


# ----------------------------------------------------------------------------- the final model

def _data_summary(path: str | None, ds: Dataset | None) -> dict[str, Any] | None:
    if ds is None:
        return None
    return {"path": str(path), "clips": len(ds), "captions": sum(len(r.captions) for r in ds.records)}


def _write_final(run: _Run, at: _Position, clips_per_s: float, command: str | None) -> None:
    """Save the trained model to out_dir/final with its card: how it was made and how it scores."""
    cfg, datasets = run.cfg, run.datasets
    card = {
        "command": command, "config": cfg.to_dict(), "seed": cfg.seed,
        "data": {name: _data_summary(path, datasets[name][0] if name in datasets else None)
                 for name, path in (("train", cfg.train_data), ("val", cfg.val_data))},
        "training": {"steps": at.step, "epochs": cfg.epochs, "world_size": run.world,
                     "global_batch": cfg.batch_size * run.world, "device": str(run.device),
                     "amp": str(run.autocast).replace("torch.", "") if run.autocast else "off",
                     "wall_time_s": round(at.wall_s(), 2), "clips_per_s": round(clips_per_s, 2)},
        "metrics": at.metrics,
    }
    run.objective.model.save_pretrained(Path(cfg.out_dir) / "final", card=card)


def main(argv: Sequence[str] | None = None) -> int:
    """``gramviz train`` and ``python -m gramviz.training``: parse the options, train, return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = add_train_arguments(argparse.ArgumentParser(prog="gramviz train", description=__doc__.split("\n")[0]))
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.preset, args.overrides)
    train(cfg, resume=args.resume, command=shlex.join(["gramviz", "train", *argv]))
    return 0
