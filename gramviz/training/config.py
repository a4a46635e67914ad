"""Training configuration: a typed dataclass, named presets, TOML/JSON files and ``--set`` overrides.

Precedence, lowest first: the dataclass defaults, a preset (``--preset NAME`` or a ``preset`` key
in the file), the file, then each ``--set key=value`` in order. Values given with ``--set`` are
parsed by the type of their field; model fields are addressed as ``model.<field>``.

Example:
    >>> cfg = load_config(preset="smoke", overrides=["train_data=w/train", "model.embed_dim=16"])
    >>> cfg.model["embed_dim"], cfg.loss
    (16, 'gram')
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..losses import LOGIT_RANGES, LOSSES

__all__ = ["PRESETS", "TrainConfig", "add_train_arguments", "load_config", "parse_override"]

EXTRA_TERMS = (None, "video_audio")
AMP_MODES = ("auto", "bf16", "fp16", "off")
DTYPES = ("float32", "float64")
# fields that may change between a run and its --resume without changing what is trained
RUN_CONTROL = ("stop_at_step", "progress", "workers", "cache_dir", "checkpoint_every", "log_every")


@dataclass
class TrainConfig:
    """Everything a training run depends on. Data and output paths are folders."""

    train_data: str = ""  # folder with captions.jsonl (or an annotation file) of the training clips
    val_data: str | None = None  # the same for validation; None: no evaluation
    out_dir: str = "runs/gram"  # log.jsonl, checkpoint/ and final/ are written here
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig fields (vocab_size comes from the tokenizer)
    # pretrained towers, one table per modality: {"video": {"source": "hf", "name": ..., "tower": "vision"}}
    backbones: dict[str, dict[str, Any]] = field(default_factory=dict)
    frozen_features: bool = True  # all backbones frozen: train the heads from stored tower outputs
    loss: str = "gram"  # "gram" (volume), "pairwise" or "fused" (cosine baselines); text is the anchor
    dam: bool = False  # add the data-anchor matching head and its loss
    dam_weight: float = 0.1  # weight of the DAM loss (the paper's 0.1)
    extra_term: str | None = None  # None or "video_audio": symmetric InfoNCE between video and audio
    extra_weight: float = 0.0  # weight of the extra term
    init_from: str | None = None  # a saved model folder (or bundled name) whose weights and tokenizer start the run
    batch_size: int = 64  # clips per step on each process (the global batch is batch_size * world size)
    epochs: int = 10  # passes over the training clips; the schedule spans all of them
    stop_at_step: int | None = None  # end the run after this step as a kill would (no final model); resume later
    lr: float = 1e-3  # peak learning rate of AdamW
    min_lr_ratio: float = 0.0  # the cosine decays to lr * min_lr_ratio at the last step
    betas: tuple[float, float] = (0.9, 0.98)  # AdamW betas (the paper's)
    weight_decay: float = 0.01  # AdamW weight decay, on matrices only (not biases, norms, temperature)
    warmup_steps: int = 100  # linear warmup from 0 to lr over these steps
    grad_clip: float = 1.0  # clip the global gradient norm to this; 0 turns clipping off
    temperature: float = 0.07  # initial (learnable) temperature of the contrastive losses
    learn_temperature: bool = True  # false: the temperature stays at its initial value
    logit_range: str = "volume"  # GRAM: "volume" (-V/tau, over [-1/tau, 0]) or "matched" ((1 - 2V)/tau, as cosines)
    label_smoothing: float = 0.1  # label smoothing of the contrastive cross-entropy
    seed: int = 0  # seeds weights, data order, caption draws and every RNG
    device: str = "auto"  # "auto" (cuda if available), "cpu", "cuda", "cuda:1", ...
    amp: str = "auto"  # "auto" (CUDA: bf16 if supported, else fp16; CPU: off), "bf16" (CUDA or CPU), "fp16", "off"
    dtype: str = "float32"  # parameter dtype: "float32", or "float64" for exact comparisons in tests
    eval_every: int = 1  # evaluate on val_data every this many epochs (and after the last); 0: never
    checkpoint_every: int = 0  # also checkpoint every this many steps (0: at epoch ends only)
    log_every: int = 10  # write a training line to log.jsonl every this many steps
    workers: int = 0  # DataLoader worker processes
    cache_dir: str | None = None  # decoded-tensor cache folder (gramviz.open_cache): decode each clip once
    progress: bool = True  # show a progress bar (rank 0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly fields."""
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d


PRESETS: dict[str, dict[str, Any]] = {
    # seconds on a CPU: a tiny model on a few clips, for tests and a first look
    "smoke": {
        "model": {"embed_dim": 32, "num_frames": 4, "frame_size": [32, 32], "n_mels": 32, "text_width": 32,
                  "text_layers": 1, "text_heads": 2, "video_width": 16, "audio_width": 16, "dam_width": 32},
        "epochs": 2, "batch_size": 8, "lr": 2e-3, "warmup_steps": 2, "log_every": 1, "out_dir": "runs/smoke",
    },
    # the bundled default model: the world's train split, evaluated on its val split
    "world-small": {
        "train_data": "data/world/train", "val_data": "data/world/val", "out_dir": "runs/world-small",
        "cache_dir": "data/cache/world-small",
        "model": {"embed_dim": 256, "num_frames": 8, "frame_size": [32, 32], "n_mels": 64, "text_width": 128,
                  "text_layers": 2, "text_heads": 4, "video_width": 64, "audio_width": 64},
        "epochs": 30, "batch_size": 64, "lr": 1e-3, "warmup_steps": 200, "min_lr_ratio": 0.01, "log_every": 10,
    },
}


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def _model_field_types() -> dict[str, Any] | None:
    try:
        from ..models import ModelConfig
    except ImportError:  # the model package is optional here: values are then read as JSON
        return None
    return typing.get_type_hints(ModelConfig)


def _suggest(name: str, known) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _parse_typed(text: str, tp: Any, key: str) -> Any:
    """``text`` read as a value of type ``tp`` (str, int, float, bool, tuple, Optional, dict)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and text.strip().lower() in ("none", "null", ""):
            return None
        for arg in (a for a in args if a is not type(None)):
            return _parse_typed(text, arg, key)
    if tp is bool:
        low = text.strip().lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"--set {key}: expected true or false, got {text!r}")
    if tp in (int, float):
        try:
            value = float(text) if tp is float else int(text)
        except ValueError:
            raise ValueError(f"--set {key}: expected {tp.__name__}, got {text!r}") from None
        return value
    if origin is tuple or tp is tuple:
        parts = json.loads(text) if text.strip().startswith("[") else [p for p in text.split(",") if p.strip()]
        inner = args[0] if args else str
        return tuple(_parse_typed(str(p), inner, key) for p in parts)
    if tp is str or tp is Any:
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(f"--set {key}: expected JSON for this field, got {text!r}") from None


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"key=value"`` -> (key path, typed value); ``model.<field>`` addresses a model field.

    Example:
        >>> parse_override("batch_size=16"), parse_override("val_data=none")
        ((['batch_size'], 16), (['val_data'], None))
    """
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"--set expects key=value, got {item!r}")
    path = key.split(".")
    types_ = _field_types()
    if path[0] not in types_:
        raise ValueError(f"--set {key}: unknown training option '{path[0]}'{_suggest(path[0], types_)}")
    if path[0] == "backbones":
        if len(path) != 3:
            raise ValueError(f"--set {key}: address a backbone field as backbones.<modality>.<field>")
        types_b = {"freeze": bool, "train_layers": int}
        return path, _parse_typed(text, types_b.get(path[2], str | None), key)
    if path[0] != "model":
        if len(path) > 1:
            raise ValueError(f"--set {key}: '{path[0]}' has no sub-fields")
        return path, _parse_typed(text, types_[path[0]], key)
    if len(path) != 2:
        raise ValueError(f"--set {key}: address a model field as model.<field>, e.g. model.embed_dim=128")
    model_types = _model_field_types()
    if model_types is None:
        try:
            return path, json.loads(text)
        except json.JSONDecodeError:
            return path, text
    if path[1] not in model_types:
        raise ValueError(f"--set {key}: unknown model option '{path[1]}'{_suggest(path[1], model_types)}")
    return path, _parse_typed(text, model_types[path[1]], key)


def _read_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
    elif path.suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{path}: not valid TOML ({e})") from None
    else:
        raise ValueError(f"{path}: a config file must end in .toml or .json")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the config must be a table/object of options")
    return data


def _merge(base: dict[str, Any], update: dict[str, Any], where: str) -> dict[str, Any]:
    known = _field_types()
    out = {**base, "model": dict(base.get("model", {})),
           "backbones": {m: dict(b) for m, b in base.get("backbones", {}).items()}}
    for key, value in update.items():
        if key not in known:
            raise ValueError(f"{where}: unknown training option '{key}'{_suggest(key, known)}")
        if key == "model":
            if not isinstance(value, dict):
                raise ValueError(f"{where}: 'model' must be a table of model options")
            out["model"].update(value)
        elif key == "backbones":
            if not isinstance(value, dict) or not all(isinstance(b, dict) for b in value.values()):
                raise ValueError(f"{where}: 'backbones' must hold one table per modality, e.g. [backbones.video]")
            for modality, table in value.items():
                out["backbones"].setdefault(modality, {}).update(table)
        else:
            out[key] = value
    return out


def _check_type(key: str, value: Any, tp: Any) -> Any:
    """The value converted to the field's type where that is lossless, else a ValueError."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        tp = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(tp), typing.get_args(tp)
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
    }
    if tp in ok:
        if not ok[tp]:
            raise ValueError(f"option '{key}' must be {tp.__name__}, got {value!r}")
        return float(value) if tp is float else value
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ValueError(f"option '{key}' must be a list of {len(args)} numbers, got {value!r}")
        return tuple(_check_type(key, v, a) for v, a in zip(value, args))
    return value


def validate(cfg: TrainConfig) -> TrainConfig:
    """Raise a ValueError that names the option when a value is out of range."""

    def need(cond: bool, message: str) -> None:
        if not cond:
            raise ValueError(message)

    need(bool(cfg.train_data), "train_data is required (a folder with captions.jsonl)")
    need(cfg.loss in LOSSES, f"loss must be one of {tuple(LOSSES)}, got {cfg.loss!r}")
    need(cfg.extra_term in EXTRA_TERMS, f"extra_term must be one of {EXTRA_TERMS}, got {cfg.extra_term!r}")
    need(cfg.amp in AMP_MODES, f"amp must be one of {AMP_MODES}, got {cfg.amp!r}")
    need(cfg.dtype in DTYPES, f"dtype must be one of {DTYPES}, got {cfg.dtype!r}")
    need(cfg.batch_size >= 1, f"batch_size must be at least 1, got {cfg.batch_size}")
    need(cfg.epochs >= 1, f"epochs must be at least 1, got {cfg.epochs}")
    need(cfg.stop_at_step is None or cfg.stop_at_step >= 1, f"stop_at_step must be positive, got {cfg.stop_at_step}")
    need(cfg.lr > 0, f"lr must be positive, got {cfg.lr}")
    need(0 <= cfg.min_lr_ratio <= 1, f"min_lr_ratio must lie in [0, 1], got {cfg.min_lr_ratio}")
    need(all(0 <= b < 1 for b in cfg.betas), f"betas must lie in [0, 1), got {cfg.betas}")
    for name in ("weight_decay", "warmup_steps", "grad_clip", "dam_weight", "extra_weight", "eval_every",
                 "checkpoint_every", "workers"):
        need(getattr(cfg, name) >= 0, f"{name} must not be negative, got {getattr(cfg, name)}")
    need(cfg.log_every >= 1, f"log_every must be at least 1, got {cfg.log_every}")
    need(cfg.temperature > 0, f"temperature must be positive, got {cfg.temperature}")
    need(cfg.logit_range in LOGIT_RANGES, f"logit_range must be one of {LOGIT_RANGES}, got {cfg.logit_range!r}")
    need(cfg.logit_range == "volume" or cfg.loss == "gram",
         f"logit_range = {cfg.logit_range!r} applies to the GRAM loss only, not to loss = {cfg.loss!r}")
    need(0 <= cfg.label_smoothing < 1, f"label_smoothing must lie in [0, 1), got {cfg.label_smoothing}")
    need(cfg.device == "auto" or cfg.device == "cpu" or cfg.device.startswith("cuda"),
         f"device must be 'auto', 'cpu' or 'cuda[:N]', got {cfg.device!r}")
    need(cfg.model.get("dam", cfg.dam) == cfg.dam, "set the training option dam, not model.dam: it adds the head and its loss")
    try:
        from ..models.backbones import Backbone

        [Backbone.from_dict(b) for b in cfg.backbones.values()]
    except ValueError as e:
        raise ValueError(f"backbones: {e}") from None
    need(cfg.extra_term is not None or cfg.extra_weight == 0,
         "extra_weight is set but extra_term is None: name the extra term, e.g. extra_term=video_audio")
    return cfg


def load_config(path: str | Path | None = None, preset: str | None = None, overrides: list[str] = ()) -> TrainConfig:
    """The training config from a preset, a TOML/JSON file and ``key=value`` overrides, validated."""
    file = _read_file(path) if path is not None else {}
    preset = preset or file.pop("preset", None)
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
    values = _merge({}, PRESETS.get(preset, {}), f"preset {preset}")
    values = _merge(values, file, str(path))
    for item in overrides:
        (key, *sub), value = parse_override(item)
        nested = {sub[0]: {sub[1]: value}} if len(sub) == 2 else {sub[0]: value} if sub else value
        values = _merge(values, {key: nested}, f"--set {item}")
    types_ = _field_types()
    values = {k: _check_type(k, v, types_[k]) if k not in ("model", "backbones") else v for k, v in values.items()}
    return validate(TrainConfig(**values))


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``gramviz train`` (shared by the CLI and `gramviz.training.main`)."""
    parser.add_argument("--config", help="a TOML or JSON file of training options")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="start from a named preset")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override an option (repeatable), e.g. --set batch_size=32 --set model.embed_dim=128",
    )
    parser.add_argument("--resume", action="store_true", help="continue from out_dir/checkpoint")
    return parser
