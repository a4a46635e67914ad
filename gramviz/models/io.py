"""The model directory on disk: safetensors weights + JSON, never pickle.

`save_pretrained` writes it (frozen pretrained towers by reference only: `trained_state`); the readers here (`resolve`, `refuse_pickles`, `read_parts`,
`check_weights`) are what `gramviz.models.loading.load_model` builds on. A model directory holds ``model.safetensors`` (weights), ``config.json`` (`ModelConfig`),
``tokenizer.json`` (`Tokenizer`) and ``card.json`` (how it was made: command, config, seed,
data, time, machine, metrics). Bundled models live in ``gramviz/models/bundled/<name>/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import ModelConfig
from .tokenizer import Tokenizer

__all__ = ["BUNDLED_DIR", "MODEL_FILES", "ModelLoadError", "bundled_models", "check_weights", "model_fingerprint",
           "read_parts", "read_weights", "refuse_pickles", "resolve", "save_pretrained", "trained_state",
           "write_weights"]

WEIGHTS, CONFIG, TOKENIZER, CARD = "model.safetensors", "config.json", "tokenizer.json", "card.json"
MODEL_FILES = (WEIGHTS, CONFIG, TOKENIZER, CARD)
BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"
# Bundled names announced before their weights ship, with how to make them meanwhile.
_PLANNED = {
    "world-small": "make train-default  (or: gramviz train --preset world-small), then load_model(<its out_dir>/final)",
}
# Suffixes of checkpoints that need unpickling; refused without being opened by torch.
_PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle", ".tar")


class ModelLoadError(ValueError):
    """A model that cannot be loaded: unknown name, missing or unsafe file, mismatched weights."""


def bundled_models() -> list[str]:
    """Names of the models shipped inside the package (directories with weights)."""
    if not BUNDLED_DIR.is_dir():
        return []
    return sorted(p.name for p in BUNDLED_DIR.iterdir() if (p / WEIGHTS).is_file())


def _machine() -> dict[str, Any]:
    cuda = torch.cuda.is_available()
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
    }


def model_fingerprint(model: nn.Module) -> str:
    """16 hex digits identifying a model: its config, tokenizer and every weight, bit for bit.

    Example:
        >>> a, b = nn.Linear(2, 2), nn.Linear(2, 2)
        >>> model_fingerprint(a) == model_fingerprint(a), model_fingerprint(a) == model_fingerprint(b)
        (True, False)
    """
    h = hashlib.sha256()
    config = getattr(model, "config", None)
    if hasattr(config, "to_dict"):
        h.update(json.dumps(config.to_dict(), sort_keys=True).encode())
    tokenizer = getattr(model, "tokenizer", None)
    if hasattr(tokenizer, "to_dict"):
        h.update(json.dumps(tokenizer.to_dict(), sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def trained_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """``module.state_dict()`` without the weights of frozen pretrained towers (modules marked
    ``by_reference``, rebuilt from their `Backbone` reference); their trainable blocks stay in.

    Example:
        >>> class Tower(nn.Linear):
        ...     by_reference = True
        >>> m = nn.Sequential(Tower(2, 2), nn.Linear(2, 1))
        >>> _ = m[0].weight.requires_grad_(False)
        >>> sorted(trained_state(m))
        ['0.bias', '1.bias', '1.weight']
    """
    state = module.state_dict()
    refs = tuple(f"{n}." for n, m in module.named_modules(remove_duplicate=False) if getattr(m, "by_reference", False))
    if not refs:
        return state
    trainable = {n for n, p in module.named_parameters(remove_duplicate=False) if p.requires_grad}
    return {k: v for k, v in state.items() if not k.startswith(refs) or k in trainable}


def write_weights(tensors: Mapping[str, torch.Tensor], path: Path, metadata: Mapping[str, str] | None = None) -> None:
    """Write tensors as safetensors; a tensor that shares its memory with an earlier one (one
    module serving two towers) is stored once and recorded as an alias in the metadata."""
    from safetensors.torch import save_file

    out, aliases, storages = {}, {}, set()
    seen: dict[tuple, str] = {}
    for name, tensor in tensors.items():
        t = tensor.detach().to("cpu")
        ptr = t.untyped_storage().data_ptr() if t.numel() else None
        key = (ptr, t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)
        if ptr is not None and key in seen:
            aliases[name] = seen[key]
            continue
        shared = ptr is not None and ptr in storages
        storages.add(ptr)
        seen[key] = name
        out[name] = t.clone() if shared else t.contiguous()
    meta = {**dict(metadata or {}), **({"aliases": json.dumps(aliases)} if aliases else {})}
    save_file(out, str(path), metadata=meta)


def read_weights(path: Path, dtype: torch.dtype | None = None, keep: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """The tensors of a file `write_weights` wrote, aliases expanded; floating-point tensors cast to
    ``dtype`` one by one as they are read (None: as stored), except those whose names start with a
    prefix in ``keep``."""
    from safetensors import safe_open

    tensors = {}
    with safe_open(str(path), framework="pt") as f:
        aliases = json.loads((f.metadata() or {}).get("aliases", "{}"))
        for name in f.keys():
            t = f.get_tensor(name)
            cast = dtype is not None and t.is_floating_point() and not name.startswith(keep)
            # with a dtype, nothing may keep the file's mapping alive: its pages, all read while
            # casting, would stay resident beside the cast copies
            tensors[name] = t.to(dtype) if cast else (t.clone() if dtype is not None else t)
    tensors.update({alias: tensors[name] for alias, name in aliases.items()})
    return tensors


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def save_pretrained(model: nn.Module, directory: str | Path, card: Mapping[str, Any] | None = None) -> Path:
    """Write a `GRAMModel` to ``directory`` atomically (a sibling temp dir renamed into place).

    Frozen pretrained towers are recorded by reference in ``config.json`` (``backbones``), not
    stored: the weights file holds what was trained (heads, unfrozen blocks).

    Args:
        model: the model.
        directory: the model directory; an existing one is replaced as a whole.
        card: facts for ``card.json``; ``saved``, ``machine``, ``gramviz`` and ``parameters`` are added.

    Returns:
        The directory as a Path.
    """
    from .._version import __version__

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    full_card = {**dict(card or {}), "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": _machine(),
                 "gramviz": __version__, "parameters": sum(p.numel() for p in model.parameters()),
                 "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad)}
    backbones = getattr(model.config, "backbones", {})
    if backbones:
        full_card["backbones"] = backbones
    tokenizer = model.tokenizer if isinstance(model.tokenizer, Tokenizer) else None  # a backbone brings its own
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        if getattr(model.config, "official", None) and model.tokenizer is not None:  # BERT's files, in the folder
            from .gram_official.model import save_tokenizer

            save_tokenizer(model.tokenizer, tmp)
        write_weights(trained_state(model), tmp / WEIGHTS, {"format": "pt", "library": "gramviz"})
        _write_json(tmp / CONFIG, model.config.to_dict())
        _write_json(tmp / TOKENIZER, tokenizer.to_dict() if tokenizer is not None else None)
        _write_json(tmp / CARD, full_card)
        _replace_dir(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    model.card = full_card
    return directory


def _replace_dir(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``; an existing target is moved aside first and removed after."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{time.time_ns()}")
        target.rename(old)
    new.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def resolve(name_or_dir: str | Path) -> Path:
    """The model directory of a directory path or a bundled name; ModelLoadError otherwise."""
    path = Path(name_or_dir)
    if path.is_dir():
        return path
    name = str(name_or_dir)
    if name in bundled_models():
        return BUNDLED_DIR / name
    bundled = ", ".join(bundled_models()) or "none yet"
    if name in _PLANNED:
        raise ModelLoadError(
            f"the model {name!r} is not bundled yet (bundled: {bundled}); train it with: {_PLANNED[name]}"
        )
    if path.exists():
        raise ModelLoadError(f"{path}: not a model directory (expected a folder with {', '.join(MODEL_FILES)})")
    raise ModelLoadError(
        f"{name!r} is neither a model directory nor a bundled model name (bundled: {bundled}; "
        f"planned: {', '.join(_PLANNED)}); a directory written by save_pretrained also works"
    )


def refuse_pickles(directory: Path) -> None:
    """Refuse checkpoints that would need unpickling, by file name and by content."""
    for path in sorted(directory.iterdir()):
        if path.is_file() and path.name.lower().endswith(_PICKLE_SUFFIXES):
            raise ModelLoadError(
                f"{path}: a pickle checkpoint; gramviz never unpickles (it can run arbitrary code). "
                f"Save models with GRAMModel.save_pretrained (safetensors + JSON)"
            )
    weights = directory / WEIGHTS
    if weights.is_file():
        head, size = _head(weights), weights.stat().st_size
        # safetensors: an 8-byte little-endian header length, then the JSON header
        if len(head) < 9 or head[8:9] != b"{" or int.from_bytes(head[:8], "little") + 8 > size:
            raise ModelLoadError(
                f"{weights}: not a safetensors file (a torch.save/pickle checkpoint or a damaged file); "
                f"gramviz never unpickles. Save models with GRAMModel.save_pretrained"
            )


def _head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(9)


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise ModelLoadError(f"{path}: missing {what} (a model directory holds {', '.join(MODEL_FILES)})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelLoadError(f"{path}: not valid JSON ({e})") from e


def read_parts(directory: Path) -> tuple[ModelConfig, Tokenizer | None, dict[str, Any]]:
    """The config, tokenizer (None when saved without one) and card of a model directory."""
    try:
        config = ModelConfig.from_dict(_read_json(directory / CONFIG, "the model config"))
    except (TypeError, ValueError) as e:
        if isinstance(e, ModelLoadError):
            raise
        raise ModelLoadError(f"{directory / CONFIG}: invalid model config ({e})") from e
    tok = _read_json(directory / TOKENIZER, "the tokenizer")
    try:
        tokenizer = None if tok is None else Tokenizer.from_dict(tok)
    except ValueError as e:
        raise ModelLoadError(f"{directory / TOKENIZER}: invalid tokenizer ({e})") from e
    card = _read_json(directory / CARD, "the model card") if (directory / CARD).is_file() else {}
    return config, tokenizer, card


def check_weights(weights: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], path: Path) -> None:
    """Raise ModelLoadError listing missing, unexpected and mis-shaped tensors."""
    problems = [f"missing {k} {tuple(v.shape)}" for k, v in expected.items() if k not in weights]
    problems += [f"unexpected {k} {tuple(v.shape)}" for k, v in weights.items() if k not in expected]
    problems += [
        f"{k}: file {tuple(weights[k].shape)} vs config {tuple(v.shape)}"
        for k, v in expected.items()
        if k in weights and weights[k].shape != v.shape
    ]
    if problems:
        more = f" (and {len(problems) - 8} more)" if len(problems) > 8 else ""
        raise ModelLoadError(
            f"{path}: the weights do not match config.json / tokenizer.json: " + "; ".join(problems[:8]) + more
        )
