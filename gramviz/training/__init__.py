"""The parts of the trainer (`gramviz.train`): its configuration and its checkpoints.

Importing this package loads no model code; `gramviz.train` holds the loop.
"""

from .checkpoint import find_checkpoint, load_checkpoint, save_checkpoint
from .config import PRESETS, TrainConfig, load_config, parse_override

__all__ = ["PRESETS", "TrainConfig", "find_checkpoint", "load_checkpoint", "load_config", "parse_override", "save_checkpoint"]
