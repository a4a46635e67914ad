"""GRAM heads on frozen pretrained backbones: head training from stored features, and the
one-time backbone pass that stores them.

    python benchmarks/bench_backbones.py               # both tables
    python benchmarks/bench_backbones.py --vit-b32     # also a random ViT-B/32-sized CLIP (GPU advised)

1. Head training: a `GRAMModel` on tiny CLIP (text, frames) and CLAP (audio) towers whose
   projections give D = 512 features, trained by the trainer's own step (`train_step`: GRAM
   loss, AdamW, clipping) from a `FeatureClips` set of random features, as
   `gramviz train` does when every backbone is frozen (frames stored averaged over time).
   Samples (clips with a caption) per second over ``--steps`` steps after 5 warm-up steps, in
   float32 and with bf16 autocast (``amp = "bf16"``, fast on CPUs with bf16 matrix units).
2. The backbone pass (`gramviz.training.features.tower_features`) over a generated world of
   ``--clips`` clips (3 captions each), decoded once before timing: clips per second for the tiny
   towers and, with ``--vit-b32``, for randomly initialised CLIP ViT-B/32-sized towers.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import gramviz
from gramviz.training import features as feats
from gramviz.training.config import TrainConfig
from gramviz.training.loop import train_step
from gramviz.training.objective import GRAMObjective
from gramviz.training.setup import build_optimizer


def tiny_towers(root: Path, projection: int) -> dict[str, gramviz.Backbone]:
    from tiny_backbones import tiny_clap, tiny_clip

    clip, clap = tiny_clip(root / "clip", projection=projection), tiny_clap(root / "clap", projection=projection)
    return {"text": gramviz.Backbone("hf", str(clip), tower="text"),
            "video": gramviz.Backbone("hf", str(clip), tower="vision"),
            "audio": gramviz.Backbone("hf", str(clap), tower="audio")}


def head_training(backbones, batch: int, steps: int, autocast: torch.dtype | None = None, n: int = 8192) -> float:
    model = gramviz.pretrained_model(backbones, embed_dim=512)
    width = 512
    # frames are stored averaged over time (the model pools them by their mean)
    data = feats.FeatureClips({"video": torch.randn(n, 1, width), "audio": torch.randn(n, width),
                               "text": torch.randn(n, width), "caption_start": torch.arange(n),
                               "caption_count": torch.ones(n, dtype=torch.long)})
    cfg = TrainConfig(train_data="-", batch_size=batch)
    objective = GRAMObjective(model, cfg)
    optimizer, scaler = build_optimizer(objective, cfg), torch.amp.GradScaler("cpu", enabled=False)
    draws = torch.zeros(n, dtype=torch.long)
    objective.train()
    order = torch.randperm(n)
    for s in range(steps + 5):
        if s == 5:
            start = time.perf_counter()
        i = (s * batch) % (n - batch)
        inputs = feats.feature_batch(data[order[i : i + batch].tolist()], draws, objective.modalities, torch.device("cpu"))
        train_step(objective, objective, optimizer, scaler, inputs, autocast, cfg.grad_clip)
    return steps * batch / (time.perf_counter() - start)


def backbone_pass(backbones, root: Path, clips: int) -> float:
    model = gramviz.pretrained_model(backbones, embed_dim=512)
    world = gramviz.world.generate(root / "world", n=clips, split="test", workers=2, progress=False, frames=8, size=64)
    dataset = gramviz.ClipDataset(world / "captions.jsonl", gramviz.models.clip_settings(model))
    decoded = [dataset[i] for i in range(len(dataset))]

    class Decoded(torch.utils.data.Dataset):
        def __len__(self):
            return len(decoded)

        def __getitem__(self, i):
            return decoded[i]

        collate = staticmethod(dataset.collate)

    start = time.perf_counter()
    feats.tower_features(model, dataset, Decoded(), root / "features", batch_size=32, progress=False)
    return clips / (time.perf_counter() - start)


def vit_b32(root: Path) -> dict[str, gramviz.Backbone]:
    """A randomly initialised CLIP ViT-B/32 (text and vision towers at full size) saved locally."""
    from tiny_backbones import save_tokenizer
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    directory = root / "vit-b32"
    n = save_tokenizer(directory, max_len=77)
    config = CLIPConfig(text_config={"vocab_size": n, "eos_token_id": 3, "bos_token_id": 2, "pad_token_id": 0},
                        vision_config={"image_size": 224, "patch_size": 32}, projection_dim=512)
    CLIPModel(config).save_pretrained(directory)
    CLIPImageProcessor().save_pretrained(directory)
    return {"text": gramviz.Backbone("hf", str(directory), tower="text"),
            "video": gramviz.Backbone("hf", str(directory), tower="vision")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--vit-b32", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU only"
    print(f"{platform.processor() or platform.machine()}, {args.threads} threads, torch {torch.__version__}, {device}\n")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        backbones = tiny_towers(root, projection=512)
        print("| measurement | result |\n|---|---:|")
        for name, dtype in (("float32", None), ("bf16 mixed precision (`amp = \"bf16\"`)", torch.bfloat16)):
            rate = head_training(backbones, args.batch, args.steps, dtype)
            row = f"head training from stored features (D = 512, batch {args.batch}), {name}"
            print(f"| {row} | {rate:,.0f} samples/s |")
        rate = backbone_pass(backbones, root / "tiny", args.clips)
        print(f"| backbone pass, tiny CLIP + CLAP towers ({args.clips} clips, 3 captions each) | {rate:,.1f} clips/s |")
        if args.vit_b32:
            rate = backbone_pass(vit_b32(root), root / "vit", args.clips)
            print(f"| backbone pass, random CLIP ViT-B/32 text + vision, 8 frames | {rate:,.1f} clips/s |")


if __name__ == "__main__":
    main()
