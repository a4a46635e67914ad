"""Training checkpoints in safetensors + JSON (never pickle), written atomically.

A checkpoint folder holds ``tensors.safetensors`` (the module's state, the optimizer's state
tensors and the torch RNG states) and ``state.json`` (the optimizer's structure and
hyperparameters, the gradient scaler, the numpy and python RNG states, the position in the data
and anything else the trainer passes). It is written to a temporary folder first and swapped in
with renames, so a kill at any moment leaves either the old or the new checkpoint complete.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..models.io import read_weights, trained_state, write_weights

__all__ = ["find_checkpoint", "load_checkpoint", "rng_state", "save_checkpoint", "set_rng_state"]

TENSORS, STATE = "tensors.safetensors", "state.json"


def rng_state() -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The torch (CPU and every CUDA device), numpy and python RNG states as (tensors, JSON)."""
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors.update({f"rng/cuda/{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, state, gauss_next = random.getstate()
    return tensors, {
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
        "python": [version, list(state), gauss_next],
    }


def set_rng_state(tensors: dict[str, Tensor], state: dict[str, Any]) -> None:
    """Restore what `rng_state` returned."""
    torch.set_rng_state(tensors["rng/torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng/cuda/"))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, inner, gauss_next = state["python"]
    random.setstate((version, tuple(inner), gauss_next))


def _split_optimizer(state: dict[str, Any]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """An optimizer state_dict as (flat tensors "optim/<param>/<name>", JSON of everything else)."""
    tensors, scalars = {}, {}
    for pid, per_param in state["state"].items():
        for name, value in per_param.items():
            if isinstance(value, Tensor):
                tensors[f"optim/{pid}/{name}"] = value.detach().contiguous()
            else:
                scalars.setdefault(str(pid), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _join_optimizer(tensors: dict[str, Tensor], structure: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, pid, name = key.split("/", 2)
            state.setdefault(int(pid), {})[name] = value
    for pid, values in structure["scalars"].items():
        state.setdefault(int(pid), {}).update(values)
    groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in structure["param_groups"]]
    return {"state": state, "param_groups": groups}


def find_checkpoint(out_dir: str | Path) -> Path | None:
    """``out_dir/checkpoint``, or the previous one if a kill fell between the two renames."""
    for name in ("checkpoint", "checkpoint.old"):
        path = Path(out_dir) / name
        if (path / STATE).is_file() and (path / TENSORS).is_file():
            return path
    return None


def save_checkpoint(
    out_dir: str | Path,
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    extra: dict[str, Any],
) -> Path:
    """Write ``out_dir/checkpoint`` atomically; ``extra`` is JSON (position, log offset, config, ...).
    Frozen pretrained towers are left out (`gramviz.models.trained_state`): they are rebuilt from
    their references."""
    out_dir = Path(out_dir)
    tensors = {f"module/{k}": v for k, v in trained_state(module).items()}
    optim_tensors, optim_json = _split_optimizer(optimizer.state_dict())
    rng_tensors, rng_json = rng_state()
    state = {
        **extra,
        "optimizer": optim_json,
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "rng": rng_json,
    }
    tmp = Path(tempfile.mkdtemp(prefix=".checkpoint-", dir=out_dir))
    write_weights({**tensors, **optim_tensors, **rng_tensors}, tmp / TENSORS)
    (tmp / STATE).write_text(json.dumps(state, indent=1))
    final, old = out_dir / "checkpoint", out_dir / "checkpoint.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(
    path: str | Path,
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
) -> dict[str, Any]:
    """Restore module, optimizer, scaler and every RNG from a checkpoint; returns its JSON state."""
    path = Path(path)
    tensors = read_weights(path / TENSORS)
    state = json.loads((path / STATE).read_text())
    device = next(module.parameters()).device
    saved = {k[len("module/"):]: v for k, v in tensors.items() if k.startswith("module/")}
    expected = trained_state(module)
    if set(saved) != set(expected):
        raise ValueError(f"{path}: the checkpoint's tensors differ from the model's: "
                         f"{sorted(set(saved) ^ set(expected))[:8]}")
    module.load_state_dict(saved, strict=len(expected) == len(module.state_dict()))
    optim = _join_optimizer({k: v.to(device) if not k.endswith("/step") else v for k, v in tensors.items()},
                            state["optimizer"])
    optimizer.load_state_dict(optim)
    if scaler is not None and state["scaler"] is not None:
        scaler.load_state_dict(state["scaler"])
    set_rng_state(tensors, state["rng"])
    return state
