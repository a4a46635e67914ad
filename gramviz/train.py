"""Train a GRAM model on clips with captions: one process, one GPU, or many with ``torchrun``.

    gramviz train --config configs/world-small.toml [--set key=value ...] [--resume]
    torchrun --nproc_per_node=4 -m gramviz.train --config configs/world-small.toml

Read top to bottom: distributed setup and device, data (a seeded permutation per epoch, sliced
by rank), the model and its loss in one module (so DDP also averages the temperature's gradient),
AdamW with warmup + cosine, the step loop with AMP and clipping, evaluation, checkpoints and the
final model. Every run is a function of its config: the same seed gives the same weights, also
after a kill and ``--resume``, and N processes with batch b equal one process with batch N * b.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from .datasets import ClipSettings
from .gram import volume_matrix
from .losses import FusedInfoNCELoss, GRAMLoss, PairwiseInfoNCELoss
from .training.checkpoint import find_checkpoint, load_checkpoint, save_checkpoint
from .training.config import PRESETS, RUN_CONTROL, TrainConfig, add_train_arguments, load_config
from .training.data import EpochBatches, IndexedClips, build_datasets, caption_draws, seed_worker, to_model_batch

__all__ = ["TrainConfig", "PRESETS", "TrainResult", "GRAMObjective", "get_lr", "train", "main"]

LOSSES = {"gram": GRAMLoss, "pairwise": PairwiseInfoNCELoss, "fused": FusedInfoNCELoss}


# ----------------------------------------------------------------------------- setup

def setup_distributed(device_name: str) -> tuple[int, int, torch.device, bool]:
    """(rank, world size, device, whether we opened the process group) under torchrun or not."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and device_name != "cpu"
    if device_name == "auto":
        device_name = f"cuda:{local_rank}" if cuda else "cpu"
    elif device_name == "cuda" and world > 1:
        device_name = f"cuda:{local_rank}"
    device = torch.device(device_name)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    opened = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        opened = True
    rank = dist.get_rank() if dist.is_initialized() else 0
    return rank, (dist.get_world_size() if dist.is_initialized() else 1), device, opened


def amp_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype: bf16 where the GPU supports it, else fp16; None (off) on the CPU."""
    if device.type != "cuda" or cfg.amp == "off" or cfg.dtype == "float64":
        return None
    if cfg.amp == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[cfg.amp]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------- model and loss

class GRAMObjective(nn.Module):
    """The model and every loss term in one module, so that DDP averages all their gradients.

    ``forward(batch)`` returns ``{"loss", "loss_contrastive", "temperature"[, "loss_dam"][, "loss_extra"]}``.
    """

    def __init__(self, model: nn.Module, cfg: TrainConfig) -> None:
        super().__init__()
        self.model = model
        self.modalities = tuple(model.config.modalities)
        kw = {"temperature": cfg.temperature, "label_smoothing": cfg.label_smoothing}
        self.loss = LOSSES[cfg.loss](**kw)  # text anchor against the other modalities
        # symmetric InfoNCE between video and audio, with its own temperature
        self.extra = PairwiseInfoNCELoss(**kw) if cfg.extra_term == "video_audio" else None
        self.extra_weight, self.dam_weight = cfg.extra_weight, (cfg.dam_weight if cfg.dam else 0.0)

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        if self.dam_weight:  # the DAM head reads the unpooled tokens, computed in the same pass
            emb, tokens = self.model.encode(batch, return_tokens=True)
        else:
            emb = self.model.encode(batch)  # {modality: (B, D)}, L2-normalised
        anchor, others = emb["text"], [emb[m] for m in self.modalities if m != "text"]
        terms = self.loss(anchor, *others, return_terms=True)
        out = {"loss_contrastive": terms["loss"], "temperature": terms["temperature"]}
        loss = terms["loss"]
        if self.extra is not None:
            out["loss_extra"] = self.extra(emb["video"], emb["audio"])
            loss = loss + self.extra_weight * out["loss_extra"]
        if self.dam_weight:
            from .models import dam_loss

            volumes = volume_matrix(anchor.detach().float(), *(o.detach().float() for o in others))  # (B, B), local
            out["loss_dam"] = dam_loss(self.model, tokens, volumes, temperature=terms["temperature"])
            loss = loss + self.dam_weight * out["loss_dam"]
        out["loss"] = loss
        return out


def _cast_inputs(dtype: torch.dtype):
    def hook(module: nn.Module, args: tuple) -> tuple:
        cast = lambda x: x.to(dtype) if isinstance(x, Tensor) and x.is_floating_point() else x  # noqa: E731
        return tuple(tuple(map(cast, a)) if isinstance(a, tuple) else cast(a) for a in args)

    return hook


def build_model(cfg: TrainConfig, tokenizer, device: torch.device) -> nn.Module:
    """A `GRAMModel` from ``cfg.model``, its vocabulary taken from the tokenizer."""
    from .models import GRAMModel, ModelConfig

    config = ModelConfig.from_dict({**cfg.model, "dam": cfg.dam})
    if config.vocab_size == 0:
        config = config.replace(vocab_size=len(tokenizer))
    model = GRAMModel(config, tokenizer)
    if cfg.dtype == "float64":  # preprocessing runs in float32: the encoders cast their inputs
        model = model.double()
        for encoder in model.encoders.values():
            encoder.register_forward_pre_hook(_cast_inputs(torch.float64))
    return model.to(device)


def init_weights(model: nn.Module, start: nn.Module, source: str) -> None:
    """Copy ``start``'s weights into ``model`` (a run that starts from a saved model); a ValueError
    names ``source`` and the first parameter whose name or shape differs."""
    target, given = model.state_dict(), start.state_dict()
    for name, value in target.items():
        if name not in given or given[name].shape != value.shape:
            found = "missing" if name not in given else f"of shape {tuple(given[name].shape)}"
            raise ValueError(f"init_from {source}: parameter {name} of shape {tuple(value.shape)} is {found} there; "
                             "the model options must match the saved model's")
    model.load_state_dict({name: given[name] for name in target})


def get_lr(step: int, cfg: TrainConfig, total_steps: int) -> float:
    """Learning rate of step ``step`` (0-based): linear warmup, then cosine decay to lr * min_lr_ratio.

    Example:
        >>> cfg = TrainConfig(lr=1.0, warmup_steps=2)
        >>> [round(get_lr(s, cfg, 6), 3) for s in range(6)]
        [0.5, 1.0, 1.0, 0.854, 0.5, 0.146]
    """
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, total_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def build_optimizer(module: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not biases, norms or the temperature)."""
    params = [p for p in module.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)


# ----------------------------------------------------------------------------- log, eval, card

def mean_over_ranks(terms: dict[str, Tensor]) -> dict[str, float]:
    """Loss terms averaged over the ranks: each rank's loss covers its own rows of the global
    batch, and their mean is the loss of the whole batch (one collective, at log steps only)."""
    values = torch.stack([v.detach().double() for v in terms.values()])
    if dist.is_initialized():
        dist.all_reduce(values)
        values /= dist.get_world_size()
    return dict(zip(terms, values.tolist()))


class JsonlLog:
    """out_dir/log.jsonl, one JSON object per line; truncated to a checkpoint's offset on resume."""

    def __init__(self, path: Path, enabled: bool, offset: int | None) -> None:
        self.path, self.enabled = path, enabled
        if enabled and (offset is None or not path.exists()):
            path.write_text("")
        elif enabled:
            os.truncate(path, offset)  # drop lines written after the checkpoint

    def write(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    def offset(self) -> int:
        return self.path.stat().st_size if self.enabled else 0


def run_evaluation(model: nn.Module, dataset: Dataset, batch_size: int) -> dict[str, float]:
    """``gramviz.evaluate.evaluate`` on the validation clips, without touching any RNG."""
    from .evaluate import evaluate

    was_training = model.training
    model.eval()
    devices = [torch.cuda.current_device()] if next(model.parameters()).is_cuda else []
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        metrics = evaluate(model, dataset, batch_size=batch_size)
    model.train(was_training)
    return {f"val/{k}": float(v) for k, v in metrics.items()}


def _data_summary(path: str | None, ds: Dataset | None) -> dict[str, Any] | None:
    if ds is None:
        return None
    return {"path": str(path), "clips": len(ds), "captions": sum(len(r.captions) for r in ds.records)}


# ----------------------------------------------------------------------------- the loop

@dataclass
class TrainResult:
    """What `train` returns (on every rank)."""

    model: nn.Module  # the trained GRAMModel (not wrapped)
    metrics: dict[str, float]  # the last evaluation ({} without val_data)
    steps: int  # optimizer steps done
    clips_per_s: float  # training throughput of this process's run (all ranks together)
    stopped: bool  # True when stop_at_step ended the run early (no final model written)


def train_step(forward: nn.Module, objective: nn.Module, optimizer: torch.optim.Optimizer,
               scaler: torch.amp.GradScaler, inputs: dict[str, Any], autocast: torch.dtype | None,
               grad_clip: float) -> tuple[dict[str, Tensor], Tensor]:
    """One optimizer step (AMP, loss scaling, clipping); returns the loss terms and the gradient norm.
    ``forward`` is the DDP wrapper when there is one, ``objective`` the module it wraps."""
    with torch.autocast("cuda", dtype=autocast) if autocast else contextlib.nullcontext():  # AMP: CUDA only
        terms = forward(inputs)
    scaler.scale(terms["loss"]).backward()
    scaler.unscale_(optimizer)  # clip the true gradients (a no-op without fp16 loss scaling)
    grad_norm = nn.utils.clip_grad_norm_(objective.parameters(), grad_clip or float("inf"))
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return terms, grad_norm


def _check_resume(state: dict[str, Any], cfg: TrainConfig, world: int) -> None:
    old, new = state["config"], cfg.to_dict()
    changed = [k for k in new if k not in RUN_CONTROL and old.get(k) != new[k]]
    if changed:
        raise ValueError(f"--resume: the config differs from the checkpoint's in {changed}; "
                         "only these may change: " + ", ".join(RUN_CONTROL))
    if state["world_size"] != world:
        raise ValueError(f"--resume: the checkpoint was written by {state['world_size']} processes, now {world}")


def train(cfg: TrainConfig, resume: bool = False, command: str | None = None) -> TrainResult:
    """Train as ``cfg`` says; writes out_dir/log.jsonl, out_dir/checkpoint/ and out_dir/final/."""
    from .models import Tokenizer

    start_time = time.perf_counter()
    rank, world, device, opened = setup_distributed(cfg.device)
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = find_checkpoint(out_dir)
    if resume and ckpt_path is None:
        raise ValueError(f"--resume: no checkpoint in {out_dir}")
    if not resume and ckpt_path is not None:
        raise ValueError(f"{out_dir} holds a checkpoint: pass --resume to continue it, or choose another out_dir")
    state = json.loads((ckpt_path / "state.json").read_text()) if resume else None
    if state is not None:
        _check_resume(state, cfg, world)

    # data: clip settings follow the model's preprocessing; the tokenizer the training captions
    seed_everything(cfg.seed)
    from .models import ModelConfig

    mc = ModelConfig.from_dict({**cfg.model, "dam": cfg.dam})
    settings = ClipSettings(num_frames=mc.num_frames, frame_size=mc.frame_size, sample_rate=mc.sample_rate,
                            audio_seconds=mc.audio_seconds)
    datasets = build_datasets(cfg, settings, rank)
    train_records, train_clips = datasets["train"]
    val_clips = datasets["val"][1] if "val" in datasets else None
    steps_per_epoch = len(train_clips) // (cfg.batch_size * world)
    if steps_per_epoch < 1:
        raise ValueError(f"{len(train_clips)} training clips do not fill one batch of "
                         f"batch_size {cfg.batch_size} x {world} processes")
    total_steps = steps_per_epoch * cfg.epochs
    start = None
    if cfg.init_from and state is None:
        from .models import load_model

        start = load_model(cfg.init_from, device="cpu")  # its tokenizer too: the embedding rows are its words
    if state is not None:
        tokenizer = Tokenizer.from_dict(state["tokenizer"])
    elif start is not None:
        tokenizer = start.tokenizer
    else:
        tokenizer = Tokenizer.build(c for r in train_records.records for c in r.captions)
    sampler = EpochBatches(len(train_clips), cfg.batch_size, cfg.seed, rank, world)
    data = IndexedClips(train_clips)
    loader = DataLoader(data, batch_sampler=sampler, collate_fn=data.collate, num_workers=cfg.workers,
                        worker_init_fn=seed_worker, generator=torch.Generator().manual_seed(cfg.seed),
                        pin_memory=device.type == "cuda")

    # model + loss in one module; DDP averages gradients (keep the wrapper: its hooks do the work)
    model = build_model(cfg, tokenizer, device)
    if start is not None:
        init_weights(model, start, cfg.init_from)
    objective = GRAMObjective(model, cfg).to(device)
    if cfg.dtype == "float64":
        objective = objective.double()
    ddp = nn.parallel.DistributedDataParallel(objective, device_ids=[device] if device.type == "cuda" else None) \
        if world > 1 else None
    forward = ddp if ddp is not None else objective
    optimizer = build_optimizer(objective, cfg)
    autocast = amp_dtype(cfg, device)
    scaler = torch.amp.GradScaler(device.type, enabled=autocast == torch.float16)

    step, epoch, batch_in_epoch, elapsed, metrics = 0, 0, 0, 0.0, {}
    if state is not None:
        state = load_checkpoint(ckpt_path, objective, optimizer, scaler)
        step, epoch, batch_in_epoch = state["step"], state["epoch"], state["batch"]
        elapsed, metrics = state["elapsed_s"], state["metrics"]
    log = JsonlLog(out_dir / "log.jsonl", rank == 0, state["log_offset"] if state else None)

    def checkpoint(next_epoch: int, next_batch: int) -> None:
        if rank != 0:
            return
        log_offset = log.offset()
        save_checkpoint(out_dir, objective, optimizer, scaler, {
            "format": "gramviz.train-checkpoint", "version": 1, "step": step, "epoch": next_epoch,
            "batch": next_batch, "log_offset": log_offset, "elapsed_s": elapsed + time.perf_counter() - start_time,
            "metrics": metrics, "world_size": world, "config": cfg.to_dict(), "tokenizer": tokenizer.to_dict(),
        })

    from tqdm.auto import tqdm

    bar = tqdm(total=total_steps, initial=step, desc="train", unit="step", disable=not (cfg.progress and rank == 0))
    objective.train()
    clips_done, loop_time, stopped = 0, 0.0, False
    tick = time.perf_counter()
    while epoch < cfg.epochs and not stopped:
        sampler.set_epoch(epoch, batch_in_epoch)
        loader.generator.manual_seed(cfg.seed * 100_003 + epoch)  # worker seeds: a function of (seed, epoch)
        draws = caption_draws(cfg.seed, epoch, len(train_clips))
        for batch in loader:
            lr = get_lr(step, cfg, total_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            inputs = to_model_batch(batch, draws, objective.modalities, device)
            terms, grad_norm = train_step(forward, objective, optimizer, scaler, inputs, autocast, cfg.grad_clip)
            step, batch_in_epoch = step + 1, batch_in_epoch + 1
            clips_done += cfg.batch_size * world
            bar.update()
            bar.set_postfix(loss=f"{terms['loss'].item():.4f}", temp=f"{terms['temperature'].item():.4f}")
            if step % cfg.log_every == 0:
                now = time.perf_counter()
                loop_time, tick = loop_time + now - tick, now
                record = {"step": step, "epoch": epoch + batch_in_epoch / steps_per_epoch, "lr": lr,
                          "grad_norm": float(grad_norm), **mean_over_ranks(terms)}
                log.write({**record, "clips_per_s": clips_done / max(loop_time, 1e-9)})
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                checkpoint(epoch, batch_in_epoch)
            if cfg.stop_at_step is not None and step >= cfg.stop_at_step:
                stopped = True  # as if killed here: nothing more is written
                break
        if stopped:
            break
        epoch, batch_in_epoch = epoch + 1, 0
        if val_clips is not None and cfg.eval_every and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs):
            loop_time += time.perf_counter() - tick
            if rank == 0:
                metrics = run_evaluation(objective.model, val_clips, cfg.batch_size)
                log.write({"step": step, "epoch": epoch, **metrics})
            tick = time.perf_counter()
        checkpoint(epoch, 0)
    bar.close()
    loop_time += time.perf_counter() - tick
    throughput = clips_done / max(loop_time, 1e-9)

    if not stopped and rank == 0:
        wall = elapsed + time.perf_counter() - start_time
        card = {
            "command": command, "config": cfg.to_dict(), "seed": cfg.seed,
            "data": {name: _data_summary(path, datasets[name][0] if name in datasets else None)
                     for name, path in (("train", cfg.train_data), ("val", cfg.val_data))},
            "training": {"steps": step, "epochs": cfg.epochs, "world_size": world, "global_batch": cfg.batch_size * world,
                         "device": str(device), "amp": str(autocast).replace("torch.", "") if autocast else "off",
                         "wall_time_s": round(wall, 2), "clips_per_s": round(throughput, 2)},
            "metrics": metrics,
        }
        objective.model.save_pretrained(out_dir / "final", card=card)
    if opened:
        dist.barrier()
        dist.destroy_process_group()
    return TrainResult(objective.model, metrics, step, throughput, stopped)


def main(argv: Sequence[str] | None = None) -> int:
    """``gramviz train``: parse the options, train, return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = add_train_arguments(argparse.ArgumentParser(prog="gramviz train", description=__doc__.split("\n")[0]))
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.preset, args.overrides)
    train(cfg, resume=args.resume, command=shlex.join(["gramviz", "train", *argv]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
