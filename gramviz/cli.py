"""The ``gramviz`` command line: one subcommand per task (``gramviz world ...``).

Each subcommand is an ``_add_<name>(subparsers)`` function that declares its arguments and sets
``func`` to a ``_run_<name>(args) -> int`` function; adding one means writing the pair and
listing the first in `_SUBCOMMANDS`. Heavy modules are imported inside the run functions, so
``gramviz --help`` stays fast.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence

__all__ = ["main", "build_parser"]


def _coverage(text: str) -> tuple[str, float]:
    name, _, value = text.partition("=")
    try:
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FACTOR=PROBABILITY, got {text!r}") from None


def _add_world(subparsers) -> None:
    p = subparsers.add_parser(
        "world",
        help="generate a split of the audio-video-text world as mp4 + wav files with captions",
        description="Generate clips (videos/*.mp4, audio/*.wav), captions.jsonl and world.json in --out.",
    )
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--n", type=int, default=1000, help="number of clips (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="world seed (default 0)")
    p.add_argument("--split", default="test", choices=["train", "val", "test", "compositional"])
    p.add_argument("--frames", type=int, default=24, help="frames per clip (default 24)")
    p.add_argument("--fps", type=float, default=8.0, help="frames per second (default 8)")
    p.add_argument("--size", type=int, default=128, help="frame height and width in pixels (default 128)")
    p.add_argument("--captions", type=int, default=3, help="captions per clip (default 3)")
    p.add_argument("--video-noise", type=float, default=0.01, help="std of pixel noise in [0, 1] units")
    p.add_argument("--audio-noise", type=float, default=0.005, help="std of white noise added to the audio")
    p.add_argument("--distractor-prob", type=float, default=0.5, help="probability of a silent distractor shape")
    p.add_argument(
        "--coverage", type=_coverage, action="append", default=[], metavar="FACTOR=P",
        help="probability that a caption names FACTOR (repeatable), e.g. --coverage size=0.5",
    )
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_world)


def _run_world(args: argparse.Namespace) -> int:
    from .world import generate

    start = time.perf_counter()
    out = generate(
        args.out,
        n=args.n,
        seed=args.seed,
        split=args.split,
        workers=args.workers,
        progress=not args.quiet,
        frames=args.frames,
        fps=args.fps,
        size=args.size,
        captions_per_clip=args.captions,
        video_noise=args.video_noise,
        audio_noise=args.audio_noise,
        distractor_prob=args.distractor_prob,
        coverage=dict(args.coverage),
    )
    if not args.quiet:
        import json

        oracle = json.loads((out / "world.json").read_text())["oracle"]
        r1 = {view: round(m["R@1"], 3) for view, m in oracle["text_to_clip"].items()}
        print(f"wrote {args.n} clips to {out} in {time.perf_counter() - start:.1f} s")
        print(f"oracle text->clip R@1 {r1}; video->audio R@1 {oracle['video_to_audio']['R@1']:.3f}")
    return 0


def _add_train(subparsers) -> None:
    from .training.config import add_train_arguments

    p = subparsers.add_parser(
        "train",
        help="train a GRAM model (one process, a GPU, or many with torchrun)",
        description="Train a GRAM model from a TOML/JSON config, a preset and --set overrides; "
        "writes OUT_DIR/log.jsonl, OUT_DIR/checkpoint/ and OUT_DIR/final/.",
    )
    add_train_arguments(p)
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from .training import load_config, train

    cfg = load_config(args.config, args.preset, args.overrides)
    train(cfg, resume=args.resume, command=args.command_line)
    return 0


def _add_model_and_data(p: argparse.ArgumentParser) -> None:
    """Arguments shared by ``eval`` and ``embed``."""
    p.add_argument("--model", required=True, help="a bundled model name (e.g. world-small) or a saved model folder")
    p.add_argument("--data", required=True, help="a folder with captions.jsonl, or a .jsonl/.csv/.json annotation file")
    p.add_argument("--batch-size", type=int, default=64, help="clips per batch (default 64)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                   help="the weights' type once loaded (bfloat16: half the memory, e.g. for an official GRAM model)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_eval(subparsers) -> None:
    from .scores import MEASURES

    p = subparsers.add_parser(
        "eval",
        help="evaluate a model: retrieval in every direction and zero-shot classification",
        description="Text -> video+audio and back, text -> video, text -> audio, video <-> audio (R@1/5/10, "
        "median and mean rank) and zero-shot classification with class prompts (top-1, top-5).",
    )
    _add_model_and_data(p)
    p.add_argument("--json", action="store_true", help="print one JSON object with flat keys <direction>/<metric>")
    p.add_argument("--measure", default="volume", choices=MEASURES, help="the score that ranks (default volume)")
    p.add_argument(
        "--no-rerank", action="store_true", help="skip the DAM re-ranking of a model with a DAM head (minutes on a CPU)"
    )
    p.set_defaults(func=_run_eval)


def _load_model_and_data(args: argparse.Namespace):
    import torch

    from .evaluation import open_dataset
    from .models import load_model

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be a positive integer, got {args.batch_size}")
    model = load_model(args.model, device=args.device or ("cuda" if torch.cuda.is_available() else "cpu"),
                       dtype=getattr(torch, args.dtype))
    return model, open_dataset(args.data, model)


def _run_eval(args: argparse.Namespace) -> int:
    import json

    from .evaluation import evaluate, format_table

    model, dataset = _load_model_and_data(args)
    metrics = evaluate(
        model, dataset, args.measure, args.batch_size, progress=not args.quiet, rerank=not args.no_rerank
    )
    print(json.dumps(metrics) if args.json else format_table(metrics, f"{args.model} on {args.data} ({args.measure})"))
    return 0


def _add_embed(subparsers) -> None:
    p = subparsers.add_parser(
        "embed",
        help="write the embeddings of a dataset's captions and clips to a .safetensors file",
        description="Embed every caption and clip with a model; the file (docs/embeddings.md) holds the ids, "
        "captions, classes and media paths, and which clips miss a modality. The work is written in parts to "
        "OUT.parts/ as it goes: the same command run again continues from them. Under torchrun "
        "(torchrun --nproc_per_node=N -m gramviz embed ...) the ranks share the parts and rank 0 writes OUT.",
    )
    _add_model_and_data(p)
    p.add_argument("--out", required=True, help="the embedding file to write (.safetensors)")
    p.add_argument("--workers", type=int, default=2, help="DataLoader processes decoding clips (default 2; 0: none)")
    p.add_argument(
        "--amp", choices=["on", "off"], default="on",
        help="autocast (bf16, else fp16) on CUDA; embeddings are stored in float32 (default on; CPU: no effect)",
    )
    p.add_argument(
        "--batches-per-part", type=int, default=16, metavar="N",
        help="batches per part file in OUT.parts/, the unit of resume and of work per rank (default 16)",
    )
    p.set_defaults(func=_run_embed)


def _run_embed(args: argparse.Namespace) -> int:
    from . import distributed
    from .evaluation import embed_to_file

    _, _, device, opened = distributed.setup(args.device or "auto")  # this rank's GPU under torchrun
    args.device = str(device)
    model, dataset = _load_model_and_data(args)
    run = embed_to_file(
        model, dataset, args.out, batch_size=args.batch_size, batches_per_part=args.batches_per_part,
        workers=args.workers, amp=args.amp == "on", progress=not args.quiet, model_name=args.model,
        log=None if args.quiet else (lambda note: print(note, file=sys.stderr)),
    )
    distributed.shutdown(opened)
    if run.merged and not args.quiet:
        print(f"wrote {run.clips} clips and {run.captions} captions to {args.out}")
    return 0


def _add_experiment(subparsers) -> None:
    from .experiment import add_arguments

    p = subparsers.add_parser(
        "experiment",
        help="run a study: training variants x seeds, evaluated on every split, summarised",
        description="Train every variant of a study file with every seed (same data and budget), evaluate "
        "each on the study's splits, and write OUT_DIR/summary.json and OUT_DIR/table.md (mean +- std).",
    )
    add_arguments(p)
    p.set_defaults(func=_run_experiment)


def _run_experiment(args: argparse.Namespace) -> int:
    from .experiment import run

    return run(args)


def _add_demo(subparsers) -> None:
    from .app.launch import add_arguments

    p = subparsers.add_parser(
        "demo",
        help="the browser demo: score clips and captions, search a gallery, map it",
        description="Start the Gradio demo on a model and a gallery (generated from the world's test split on "
        "first use) at http://127.0.0.1:7860; `python app.py` is the same.",
    )
    add_arguments(p)
    p.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from .app.launch import run

    return run(args)


def _setting(text: str) -> tuple[str, object]:
    import json

    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        raise argparse.ArgumentTypeError(f"{text!r}: the value must be JSON (800, true, false)") from None


def _add_convert_gram(subparsers) -> None:
    p = subparsers.add_parser(
        "convert-gram",
        help="convert an official GRAM checkpoint folder (ckpt/, log/hps.json) into a gramviz model folder",
        description="Read the highest ckpt/model_step_N.pt of DIR (weights only, never code) and log/hps.json, map "
        "every key, check that no required tensor is missing, and write a gramviz model folder OUT (safetensors, "
        "config.json with the architecture, BERT's tokenizer, card.json naming the source and its sha256). "
        "gramviz.load_model(OUT), gramviz eval/embed/demo --model OUT then use it.",
    )
    p.add_argument("directory", metavar="DIR", help="the official model folder (ckpt/model_step_N.pt, log/hps.json)")
    p.add_argument("--out", required=True, help="the gramviz model folder to write (replaced if it exists)")
    p.add_argument("--tokenizer", default="bert-base-uncased", metavar="NAME_OR_DIR",
                   help="BERT's tokenizer, not part of GRAM's download: a folder with vocab.txt or tokenizer files, "
                   "or a hub name (default bert-base-uncased)")
    p.add_argument("--frames", default="evaluation", choices=["evaluation", "inference"],
                   help="frames per clip: evaluation (8, GRAM's benchmark; default) or inference (2, its example)")
    p.add_argument("--vision-head-width", type=int, default=88, metavar="N",
                   help="EVA's attention head width (default 88, EVA01-CLIP-g/14; no tensor shape records it)")
    p.add_argument("--text-heads", type=int, default=12, metavar="N",
                   help="BERT's attention heads (default 12, BERT-base; no tensor shape records them)")
    p.add_argument("--beats", type=_setting, action="append", default=[], metavar="NAME=VALUE",
                   help="a BEATs setting without a shape, replacing BEATs iter3+'s (repeatable), e.g. max_distance=800")
    p.set_defaults(func=_run_convert_gram)


def _run_convert_gram(args: argparse.Namespace) -> int:
    from .models import convert_gram

    out = convert_gram(args.directory, args.out, tokenizer=args.tokenizer, frames=args.frames,
                       vision_head_width=args.vision_head_width, text_heads=args.text_heads,
                       beats=dict(args.beats), command=args.command_line)
    print(f"wrote {out} (load it with gramviz.load_model({str(out)!r}) or --model {out})")
    return 0


_SUBCOMMANDS = (_add_world, _add_train, _add_eval, _add_embed, _add_experiment, _add_demo, _add_convert_gram)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand.

    Example:
        >>> build_parser().parse_args(["world", "--out", "w", "--n", "8"]).n
        8
    """
    parser = argparse.ArgumentParser(prog="gramviz", description="GRAM: data, training, evaluation and demos.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gramviz COMMAND ...``; returns the exit status.

    Bad arguments exit with status 2 and a message naming the argument.
    """
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.command_line = shlex.join(["gramviz", *argv])  # recorded in what a run writes (a model card)
    try:
        return args.func(args)
    except ValueError as e:
        parser.exit(2, f"gramviz {args.command}: error: {e}\n")
        return 2  # unreachable; parser.exit raises SystemExit


if __name__ == "__main__":
    sys.exit(main())
