"""An official GRAM model at full size on a CPU: time to embed one 10 s clip and 1,000 captions, and
the peak memory, in float32 and bfloat16.

    python benchmarks/bench_gram_official.py [--workdir DIR] [--threads 2] [--frames 8]

The weights are random (the real ones are not needed to measure time and memory), written in the
official layout at the real sizes: EVA01-CLIP-g/14 (40 blocks, width 1408), BEATs (12 layers, 768)
and BERT-base (12 layers, 768) with GRAM's 512-d heads, converted once with ``gramviz convert-gram``.
Each precision is measured in a fresh process (so that its memory is its own): the resident memory
after loading, and the peak, which includes the weight file's pages mapped while it is read;
loading, the clip (decoded with GRAM's deterministic preprocessing: 8 frames, the middle 1,024-frame
fbank slice), then 1,000 captions in batches of 100. Needs about 15 GB of free memory and 15 GB of
disk for the checkpoint, its conversion and the temporary files.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

FULL = {"EMBED": 512,
        "VISION": dict(width=1408, depth=40, patch=14, image=224, head_width=88, mlp=6144),
        "AUDIO": dict(patch=16, embed=512, width=768, ffn=3072, heads=12, layers=12, conv_pos=128, groups=16,
                      buckets=320),
        "TEXT": dict(hidden=768, layers=12, heads=12, intermediate=3072, positions=512, types=2)}


def write_checkpoint(folder: Path) -> Path:
    """A random full-size checkpoint in GRAM's layout (``tests/official_layout.py`` at the real sizes)."""
    import official_layout as layout

    for name, value in FULL.items():
        setattr(layout, name, value)
    hps = dict(layout.HPS, model_cfg={**layout.HPS["model_cfg"], "audio_target_length": 1024})
    layout.write_official(folder / "gram", steps={1: 0}, hps=hps)
    layout.write_vocab(folder / "tokenizer")
    return folder / "gram"


def write_clip(path: Path, seconds: float = 10.0) -> Path:
    """A 10 s H.264/AAC clip of moving noise with a tone, 320x240 at 25 fps."""
    import av
    import numpy as np

    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        audio = out.add_stream("aac", rate=44100)
        for i in range(int(seconds * 25)):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), format="rgb24")
            out.mux(video.encode(frame))
        out.mux(video.encode())
        t = np.arange(int(seconds * 44100)) / 44100
        wave = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
        for start in range(0, wave.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave[:, start : start + 1024]), format="fltp",
                                               layout="mono")
            frame.sample_rate = 44100
            out.mux(audio.encode(frame))
        out.mux(audio.encode())
    return path


def resident_gb() -> float:
    """The process's resident memory now (Linux), in GB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**30


def measure(model_dir: str, clip: str, dtype: str, threads: int) -> dict:
    """Load, embed the clip and 1,000 captions; run in its own process by ``main``."""
    import gramviz

    torch.set_num_threads(threads)
    start = time.perf_counter()
    model = gramviz.load_model(model_dir, dtype=getattr(torch, dtype))
    loaded, resident = time.perf_counter(), resident_gb()
    with torch.inference_mode():
        emb = model.encode_clip_files([clip])
        clip_done = time.perf_counter()
        words = ["a dog is barking on the grass", "the red car bounces", "a small bird sings on the water"]
        captions = [words[i % 3] for i in range(1000)]
        text = torch.cat([model.encode({"text": captions[i : i + 100]})["text"] for i in range(0, 1000, 100)])
        text_done = time.perf_counter()
    finite = all(bool(torch.isfinite(x).all()) for x in [*emb.values(), text])
    return {"dtype": dtype, "load_s": loaded - start, "clip_s": clip_done - loaded, "captions_s": text_done - clip_done,
            "resident_gb": resident, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "finite": finite}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default=None,
                        help="where the checkpoint and its conversion go (default: a temp dir)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frames", default="evaluation", choices=["evaluation", "inference"])
    parser.add_argument("--measure", nargs=3, metavar=("MODEL", "CLIP", "DTYPE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure, threads=args.threads)))
        return
    import gramviz

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        source = write_checkpoint(work)
        gramviz.convert_gram(source, work / "converted", tokenizer=str(work / "tokenizer"), frames=args.frames)
        print(f"random full-size checkpoint written and converted in {time.perf_counter() - start:.0f} s")
        clip = write_clip(work / "clip.mp4")
        print(f"{platform.processor() or platform.machine()}, {args.threads} threads, torch {torch.__version__}\n")
        print("| weights | load | one 10 s clip | 1,000 captions | resident after loading | peak resident |\n"
              "|---|---:|---:|---:|---:|---:|")
        for dtype in ("float32", "bfloat16"):
            command = [sys.executable, __file__, "--threads", str(args.threads), "--measure",
                       str(work / "converted"), str(clip), dtype]
            out = subprocess.run(command, capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            assert r["finite"], f"non-finite embeddings in {dtype}"
            print(f"| {dtype} | {r['load_s']:.1f} s | {r['clip_s']:.1f} s | {r['captions_s']:.1f} s "
                  f"| {r['resident_gb']:.1f} GB | {r['peak_rss_gb']:.1f} GB |")


if __name__ == "__main__":
    main()
