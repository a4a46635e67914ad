"""Everything about training a GRAM model, one module per role:

- ``config``: `TrainConfig`, the presets, TOML/JSON files and ``--set`` overrides;
- ``data``: the seeded per-epoch batches sliced by rank, the caption draws and the decoded-tensor cache;
- ``setup``: seeds, the model and the weights it may start from, AMP dtype, AdamW and its schedule;
- ``objective``: `GRAMObjective`, the model and every loss term in one module (for DDP);
- ``log``: ``out_dir/log.jsonl`` and the loss terms averaged over ranks;
- ``checkpoint``: atomic safetensors + JSON checkpoints (model, optimizer, RNGs, position);
- ``loop``: `train`, `train_step` and `main` (``gramviz train``, ``python -m gramviz.training``);
- ``stages``: `train_in_stages`, the trainer paused every few epochs to hand back the model.

Example:
    >>> from gramviz.training import load_config
    >>> load_config(preset="smoke", overrides=["train_data=w/train"]).batch_size
    8
"""

from .checkpoint import find_checkpoint, load_checkpoint, save_checkpoint
from .config import PRESETS, TrainConfig, add_train_arguments, load_config, parse_override
from .loop import TrainResult, main, train, train_step
from .objective import GRAMObjective
from .setup import get_lr
from .stages import Stage, initial_model, train_in_stages

__all__ = [
    "PRESETS",
    "GRAMObjective",
    "Stage",
    "TrainConfig",
    "TrainResult",
    "add_train_arguments",
    "find_checkpoint",
    "get_lr",
    "initial_model",
    "load_checkpoint",
    "load_config",
    "main",
    "parse_override",
    "save_checkpoint",
    "train",
    "train_in_stages",
    "train_step",
]
