"""Controlled comparisons of training variants: the study behind ``docs/results.md``.

    gramviz experiment --config configs/study.toml [--set key=value ...] [--only gram,pairwise] [--seeds 0]
    gramviz experiment --config configs/study.toml --finished     (summarise the finished runs only)

A study file names a base training config, the seeds, the splits to evaluate on, and variants
(each a few training options on top of the base). Every (variant, seed) is trained with the same
data and budget, then evaluated on every split: retrieval in every direction, zero-shot
classification and where the positives' small volumes come from (`geometry`). Each finished run
writes ``<out>/<variant>/seed-<s>/result.json``, so an interrupted study picks up where it stopped.
The summary (``summary.json``, ``table.md``) gives mean +- std over seeds and checks the goal:
a GRAM variant beating the best cosine baseline on text -> video+audio R@1 by more than the
seed-to-seed spread (``goal_t2va = "beat"``; ``"match"``: no worse than it by more than the spread)
while its video -> audio R@1 reaches ``goal_v2a_share`` (default 90%) of the world's ceiling.
``--seeds`` runs some seeds only (e.g. the first seed of every variant before the others), and
``--finished`` trains nothing and summarises the finished runs; a variant with fewer seeds than the
study names is marked with its count in the tables.

Example study file::

    base = "configs/world-small.toml"
    seeds = [0, 1, 2]
    out_dir = "runs/study"
    set = ["epochs=8"]
    [eval]
    test = "data/world/test"
    [variants.gram]
    loss = "gram"
    [variants.pairwise]
    loss = "pairwise"

An option's ``{seed}`` is replaced by the run's seed, so a variant can start from another
variant's model of the same seed (``init_from = "runs/study/pairwise/seed-{seed}/final"``).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .analysis import clip_tuples, matching_volumes, negative_partners
from .gram import base_height
from .losses import LOSSES

__all__ = ["Study", "load_study", "geometry", "run", "run_options", "run_study", "summarise", "format_summary", "main"]

HEADLINE = ("t2va/R@1", "own/t2va/R@1", "va2t/R@1", "t2v/R@1", "t2a/R@1", "v2a/R@1", "cos/v2a/R@1", "a2v/R@1",
            "cls/top1")
GEOMETRY = ("pos/base", "pos/height", "neg/height", "pos/volume", "neg/volume", "pos/cos_va")


@dataclass
class Study:
    """A study: ``variants`` (name -> training options) x ``seeds``, evaluated on ``eval`` splits."""

    base: str
    variants: dict[str, dict[str, Any]]
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    eval: dict[str, str] = field(default_factory=dict)
    out_dir: str = "runs/study"
    set: list[str] = field(default_factory=list)
    ceiling_split: str = "test"  # whose world.json gives the video -> audio ceiling of the goal
    goal_t2va: str = "beat"  # "beat": more than the spread above the best cosine; "match": not below it by more
    goal_v2a_share: float = 0.9  # the share of the video -> audio ceiling the goal asks for
    goal_baselines: list[str] | None = None  # the cosine variants to compare with (default: every one)


def load_study(path: str | Path, overrides: Sequence[str] = ()) -> Study:
    """Read a study TOML file; ``overrides`` (``key=value``) are added to every variant's options.

    Relative paths in the file (base, eval splits) are taken from the working directory, as the
    training configs' are. Raises ValueError naming the file and the problem.
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ValueError(f"{path}: cannot read the study file: {err}") from None
    unknown = set(raw) - {f for f in Study.__dataclass_fields__}
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}; known: {sorted(Study.__dataclass_fields__)}")
    if not raw.get("base") or not raw.get("variants"):
        raise ValueError(f"{path}: a study needs 'base' (a training config) and at least one [variants.NAME]")
    study = Study(**raw)
    if not study.seeds or any(not isinstance(s, int) for s in study.seeds):
        raise ValueError(f"{path}: seeds must be a non-empty list of integers, got {study.seeds!r}")
    if study.goal_t2va not in ("beat", "match") or not 0 <= study.goal_v2a_share <= 1:
        raise ValueError(f"{path}: goal_t2va must be 'beat' or 'match' and goal_v2a_share in [0, 1], got "
                         f"{study.goal_t2va!r} and {study.goal_v2a_share!r}")
    if study.goal_baselines is not None and set(study.goal_baselines) - set(study.variants):
        raise ValueError(f"{path}: goal_baselines {sorted(set(study.goal_baselines) - set(study.variants))} "
                         f"are not variants of the study")
    study.set = [*study.set, *overrides]
    return study


def _options(options: dict[str, Any]) -> list[str]:
    """``{"loss": "gram", "model": {"embed_dim": 64}}`` -> ``["loss=gram", "model.embed_dim=64"]``."""
    out = []
    for key, value in options.items():
        if key == "label":
            continue
        if isinstance(value, dict):
            out += [f"{key}.{item}" for item in _options(value)]
        else:
            out.append(f"{key}={json.dumps(value) if not isinstance(value, str) else value}")
    return out


def geometry(emb: dict[str, Tensor], caption_clip: Sequence[int], seed: int = 0) -> dict[str, float]:
    """Medians of the decomposition volume(text, video, audio) = base x height, over clips.

    Each clip's first caption is its text. Positives: (text_i, video_i, audio_i); negatives:
    (text_i, video_j, audio_j) for a seeded derangement j. base = area spanned by video and audio
    (small when the two are collinear); height = distance of the text from their plane (small when
    the three are coplanar). A negative shares its clip's base, so only heights tell them apart.
    Also the median cosine between a clip's video and audio (``pos/cos_va``).

    Example:
        >>> e = {m: torch.nn.functional.normalize(torch.randn(6, 8), dim=1) for m in ("text", "video", "audio")}
        >>> sorted(geometry(e, list(range(6))))[:3]
        ['neg/height', 'neg/volume', 'pos/base']
    """
    tuples = clip_tuples(emb, caption_clip)
    if len(tuples.clips) < 2:
        raise ValueError("geometry needs at least two clips with a caption, a video and an audio embedding")
    t, v, a = tuples.text.double(), tuples.video.double(), tuples.audio.double()
    pos, neg = matching_volumes(t, v, a, negatives="random", seed=seed)
    other = negative_partners(len(tuples.clips), "random", seed)  # the candidates of those negatives
    base, height = base_height(t, v, a)
    _, neg_height = base_height(t, v[other], a[other])
    med = lambda x: float(x.median())  # noqa: E731
    return {
        "pos/base": med(base), "pos/height": med(height), "neg/height": med(neg_height),
        "pos/volume": med(pos), "neg/volume": med(neg), "pos/cos_va": med((v * a).sum(1)),
    }


def _own_measure(loss: str) -> str | None:
    """The measure a model trained with ``loss`` ranks by, when it is not GRAM's volume."""
    measure = LOSSES[loss].measure
    return None if measure == "volume" else measure


def _eval_split(
    model: Any, path: str, cache: Path | None, own: str | None = None
) -> tuple[dict[str, float], dict[str, Tensor], Any]:
    """Metrics, embeddings and metadata of one split (decoded once into ``cache`` when given).

    Every model is ranked by the GRAM volume; with ``own`` (a cosine model's measure) also by
    that measure, under the keys ``own/<direction>/<metric>``. Video -> audio is also ranked by the
    cosine (``cos/v2a/...``, ``cos/a2v/...``): the area of two vectors, sqrt(1 - cos^2), cannot tell
    an aligned pair from an anti-aligned one, while a video-audio InfoNCE term trains the cosine.
    """
    from .cache import open_cache
    from .evaluation import class_prompts, embed_dataset, encode_class_prompts, evaluate_embeddings, open_dataset

    dataset = open_dataset(path, model)
    loaded = open_cache(dataset, cache, progress=False) if cache is not None else dataset
    emb, meta = embed_dataset(model, loaded, progress=False)
    prompts = class_prompts(dataset)
    anchors = encode_class_prompts(model, prompts) if prompts else None
    metrics = evaluate_embeddings(emb, meta, anchors)
    if own is not None:
        metrics |= {f"own/{k}": v for k, v in evaluate_embeddings(emb, meta, anchors, own).items()
                    if k.split("/")[0] in ("t2va", "va2t", "cls")}
    metrics |= {f"cos/{k}": v for k, v in evaluate_embeddings(emb, meta, None, "cosine_pairwise").items()
                if k.split("/")[0] in ("v2a", "a2v")}
    return metrics, emb, meta


def run_options(study: Study, variant: str, seed: int, progress: bool = True) -> list[str]:
    """The ``key=value`` training options of one run, on top of ``study.base``: the variant's own, then
    the study's ``set``, the seed and the run's folder (``{seed}`` in a value becomes the seed)."""
    out = Path(study.out_dir) / variant / f"seed-{seed}"
    options = [*_options(study.variants[variant]), *study.set, f"seed={seed}", f"out_dir={out}",
               f"progress={'true' if progress else 'false'}"]
    return [o.replace("{seed}", str(seed)) for o in options]  # e.g. init_from = "runs/a/seed-{seed}/final"


def run_one(study: Study, variant: str, seed: int, progress: bool = True) -> dict[str, Any]:
    """Train one (variant, seed) unless its result exists, evaluate it; the result dict."""
    from .models import load_model
    from .training import load_config, train

    out = Path(study.out_dir) / variant / f"seed-{seed}"
    done = out / "result.json"
    own = _own_measure(dict(study.variants[variant]).get("loss", "gram"))
    if done.exists():
        result = json.loads(done.read_text())
        if all("cos/v2a/R@1" in m and (own is None or "own/t2va/R@1" in m) for m in result["splits"].values()):
            return result  # else evaluated again below: it was written before those metrics existed
    options = run_options(study, variant, seed, progress)
    cfg = load_config(study.base, None, options)
    if not (out / "final").exists():  # resume a run killed mid-way
        command = shlex.join(["gramviz", "train", "--config", study.base, *(f"--set={o}" for o in options)])
        train(cfg, resume=(out / "checkpoint").exists(), command=command)
    model = load_model(out / "final")
    card = json.loads((out / "final" / "card.json").read_text())
    result = {"variant": variant, "seed": seed, "options": options,
              "training": card.get("training", {}), "splits": {}}
    cache_root = Path(cfg.cache_dir) if cfg.cache_dir else None
    for name, path in study.eval.items():
        t0 = time.perf_counter()
        metrics, emb, meta = _eval_split(model, path, None if cache_root is None else cache_root / name, own)
        result["splits"][name] = {**metrics, **geometry(emb, meta.caption_clip, seed),
                                  "eval_s": round(time.perf_counter() - t0, 2)}
        if seed == study.seeds[0]:
            torch.save({m: e.half() for m, e in emb.items()} | {"caption_clip": torch.tensor(meta.caption_clip)},
                       out / f"embeddings-{name}.pt")
    done.write_text(json.dumps(result, indent=1))
    return result


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((x - mean) ** 2 for x in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, std


def _ceiling(study: Study) -> float | None:
    path = study.eval.get(study.ceiling_split)
    world = Path(path) / "world.json" if path else None
    if world is None or not world.exists():
        return None
    return float(json.loads(world.read_text())["oracle"]["video_to_audio"]["R@1"])


def summarise(study: Study, results: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample std over seeds of every metric, per variant and split, and the goal check."""
    table: dict[str, dict[str, dict[str, list[float]]]] = {}
    for r in results:
        for split, metrics in r["splits"].items():
            cell = table.setdefault(r["variant"], {}).setdefault(split, {})
            for key, value in metrics.items():
                cell.setdefault(key, []).append(float(value))
    stats = {v: {s: {k: _mean_std(x) for k, x in cell.items()} for s, cell in splits.items()}
             for v, splits in table.items()}
    runs: dict[str, list[int]] = {}
    for r in results:
        runs.setdefault(r["variant"], []).append(r["seed"])
    summary: dict[str, Any] = {"seeds": study.seeds, "runs": runs, "stats": stats, "ceiling_v2a": _ceiling(study)}
    split = study.ceiling_split
    loss_of = {v: dict(o).get("loss", "gram") for v, o in study.variants.items()}
    cosine = [v for v in stats if v in loss_of and _own_measure(loss_of[v]) is not None and split in stats[v]
              and (study.goal_baselines is None or v in study.goal_baselines)]
    gram = [v for v in stats if loss_of.get(v) == "gram" and split in stats[v]]
    if cosine and gram:
        best_cos = max(cosine, key=lambda v: stats[v][split]["t2va/R@1"][0])
        goal = {}
        for v in gram:
            (m, s), (mc, sc) = stats[v][split]["t2va/R@1"], stats[best_cos][split]["t2va/R@1"]
            # the better of the two video -> audio rankings: by area (GRAM's) or by cosine
            v2a = max(stats[v][split]["v2a/R@1"][0], stats[v][split].get("cos/v2a/R@1", (0.0, 0.0))[0])
            ceiling = summary["ceiling_v2a"]
            spread = max(s, sc)
            good = m - mc > spread if study.goal_t2va == "beat" else m - mc >= -spread
            goal[v] = {"t2va_gain": m - mc, "spread": spread, "beats_cosine": m - mc > spread, "t2va_ok": good,
                       "v2a_of_ceiling": v2a / ceiling if ceiling else None,
                       "aligns_va": bool(ceiling) and v2a >= study.goal_v2a_share * ceiling}
            goal[v]["met"] = good and goal[v]["aligns_va"]
        summary["goal"] = {"split": split, "best_cosine": best_cos, "variants": goal,
                           "t2va": study.goal_t2va, "v2a_share": study.goal_v2a_share}
    return summary


def format_summary(summary: dict[str, Any], keys: Sequence[str] = HEADLINE + GEOMETRY) -> str:
    """Markdown tables, one per split: a row per variant, ``mean +- std`` per metric (``own/...``:
    a cosine model ranked by its own measure; "-" where a metric does not apply)."""
    lines = []
    splits = sorted({s for v in summary["stats"].values() for s in v})
    for split in splits:
        lines += [f"**{split}** (mean ± std over seeds {summary['seeds']})", "",
                  "| variant | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        for variant, per in summary["stats"].items():
            n = len(summary.get("runs", {}).get(variant, summary["seeds"]))
            label = variant if n == len(summary["seeds"]) else f"{variant} (n={n})"
            cells = [f"{per[split][k][0]:.3f} ± {per[split][k][1]:.3f}" if k in per.get(split, {}) else "-"
                     for k in keys]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    goal = summary.get("goal")
    if goal:
        ceiling = summary.get("ceiling_v2a")
        ask = "beat" if goal.get("t2va", "beat") == "beat" else "match"
        lines.append(f"Goal on {goal['split']} ({ask} the best cosine baseline, {goal['best_cosine']}, on t2va R@1 "
                     f"within the spread; v2a R@1 at {goal.get('v2a_share', 0.9):.0%} of the ceiling "
                     f"{'unknown' if ceiling is None else format(ceiling, '.3g')}):")
        lines.append("")
        for v, g in goal["variants"].items():
            share = "n/a" if g["v2a_of_ceiling"] is None else f"{g['v2a_of_ceiling']:.0%}"
            verdict = "met" if g["met"] else "not met"
            lines.append(f"- {v}: t2va R@1 {g['t2va_gain']:+.3f} vs {goal['best_cosine']} (spread "
                         f"{g['spread']:.3f}), v2a R@1 at {share} of the ceiling: goal {verdict}")
    return "\n".join(lines) + "\n"


def run_study(study: Study, only: Sequence[str] | None = None, progress: bool = True,
              seeds: Sequence[int] | None = None, finished: bool = False) -> dict[str, Any]:
    """Train and evaluate every (variant, seed) not yet done; write summary.json and table.md.

    ``seeds`` restricts the runs to some of the study's seeds; ``finished`` trains nothing and
    summarises only the runs that have a result (a ValueError when there is none).
    """
    names = list(only) if only else list(study.variants)
    missing = [n for n in names if n not in study.variants]
    if missing:
        raise ValueError(f"unknown variants {missing}; the study has {list(study.variants)}")
    seeds = list(study.seeds if seeds is None else seeds)
    if set(seeds) - set(study.seeds):
        raise ValueError(f"seeds {sorted(set(seeds) - set(study.seeds))} are not in the study's {study.seeds}")
    results = []
    for seed in seeds if not finished else []:  # seed-major: every variant's first seed comes first
        for variant in names:
            if progress:
                print(f"== {variant}, seed {seed}", file=sys.stderr)
            results.append(run_one(study, variant, seed, progress))
    if finished:
        found = [Path(study.out_dir) / v / f"seed-{s}" / "result.json" for v in names for s in seeds]
        results = [json.loads(p.read_text()) for p in found if p.exists()]
        if not results:
            raise ValueError(f"{study.out_dir}: no finished run of {names} yet")
    results.sort(key=lambda r: (names.index(r["variant"]), r["seed"]))
    summary = summarise(study, results)
    out = Path(study.out_dir)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "table.md").write_text(format_summary(summary))
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``gramviz experiment``."""
    parser.add_argument("--config", required=True, help="a study TOML file (e.g. configs/study.toml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a training option for every run, e.g. --set epochs=2 (repeatable)")
    parser.add_argument("--only", default=None, help="comma-separated variants to run (default: all)")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds to run (default: the study's)")
    parser.add_argument("--finished", action="store_true", help="train nothing; summarise the finished runs")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run (or finish) the study that parsed ``gramviz experiment`` arguments name; print its tables."""
    study = load_study(args.config, args.overrides)
    try:
        seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else None
    except ValueError:
        raise ValueError(f"--seeds wants comma-separated integers, got {args.seeds!r}") from None
    summary = run_study(study, args.only.split(",") if args.only else None, progress=not args.quiet,
                        seeds=seeds, finished=args.finished)
    print(format_summary(summary), end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gramviz.experiment``: the same as ``gramviz experiment``."""
    parser = add_arguments(argparse.ArgumentParser(prog="gramviz experiment", description=__doc__.split("\n")[0]))
    return run(parser.parse_args(list(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    sys.exit(main())
