"""Training throughput of `gramviz train`: clips per second of training time (evaluation left out).

    python benchmarks/bench_train.py                      # CPU: world-small, then a ViT-B/32-sized model
    python benchmarks/bench_train.py --device cuda --amp  # also with AMP (bf16) on a CUDA GPU

1. **world-small**: `configs/world-small.toml`'s model and batch (64) on a generated world of
   ``--clips`` clips, read from the decoded-tensor cache (built before timing), one epoch;
   ``--workers`` DataLoader processes.
2. **ViT-B/32-sized**: a randomly initialised CLIP ViT-B/32 (its text and vision towers at full
   size, saved locally, trained end to end: ``freeze = false``) on the same clips' captions and
   frames (decoded as it trains), batch ``--vit-batch``, ``--vit-steps`` steps.

The trainer's own clock (`TrainResult.clips_per_s`) is reported: the time inside the step loop,
data loading included.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gramviz  # noqa: E402
from gramviz.training import train  # noqa: E402
from gramviz.training.config import load_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def world_small(root: Path, clips: int, device: str, amp: str, workers: int) -> float:
    data = root / "world"
    if not (data / "captions.jsonl").exists():
        gramviz.world.generate(data, n=clips, split="train", workers=2, progress=False)
    cfg = load_config(ROOT / "configs" / "world-small.toml", overrides=[
        f"train_data={data}", "val_data=none", f"out_dir={root / 'run-world'}", f"cache_dir={root / 'cache'}",
        "epochs=1", f"device={device}", f"amp={amp}", f"workers={workers}", "progress=false", "warmup_steps=1"])
    warm = root / f"warm-{amp}-{workers}"
    train(dataclasses.replace(cfg, out_dir=str(warm), stop_at_step=2))  # builds the decoded cache, warms up
    cfg = dataclasses.replace(cfg, out_dir=str(root / f"run-world-{amp}-{workers}"))
    return train(cfg).clips_per_s


def vit_b32(root: Path, device: str, amp: str, batch: int, steps: int) -> float:
    from bench_backbones import vit_b32 as make_vit

    backbones = {m: {**b.to_dict(), "freeze": False} for m, b in make_vit(root).items()}
    data = root / "world"
    cfg = load_config(overrides=[
        f"train_data={data}", "val_data=none", f"out_dir={root / f'run-vit-{amp}'}",
        f"batch_size={batch}", f"stop_at_step={steps}", f"device={device}", f"amp={amp}", "progress=false",
        "model.embed_dim=512"])
    return train(dataclasses.replace(cfg, backbones=backbones)).clips_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action="store_true", help="also measure with AMP (CUDA only)")
    parser.add_argument("--clips", type=int, default=640)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--vit-batch", type=int, default=8)
    parser.add_argument("--vit-steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else f"CPU, {args.threads} threads"
    print(f"{platform.machine()}, {name}, torch {torch.__version__}\n")
    amps = ["off", "bf16"] if args.amp else ["off"]
    print("| configuration | AMP | workers | clips/s |\n|---|---|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for amp in amps:
            for workers in args.workers:
                rate = world_small(root, args.clips, args.device, amp, workers)
                print(f"| world-small, batch 64, decoded cache | {amp} | {workers} | {rate:,.0f} |", flush=True)
        for amp in amps:
            rate = vit_b32(root, args.device, amp, args.vit_batch, args.vit_steps)
            print(f"| ViT-B/32-sized CLIP text + vision (trained end to end), batch {args.vit_batch} | {amp} | 0 "
                  f"| {rate:,.1f} |", flush=True)


if __name__ == "__main__":
    main()
