"""The official GRAM checkpoints' architectures: the towers and heads of the models that GRAM's
authors publish (EVA01-CLIP-g/14 vision, BEATs audio, BERT-base text), written for gramviz so
that a converted checkpoint embeds deterministically on a CPU, equal to the official model in
evaluation mode.

- `convert` (``gramviz convert-gram``): an official folder -> a gramviz model directory;
- `checkpoint`: reading the checkpoint safely and mapping its keys;
- `config`: `OfficialConfig`, the architecture recorded in ``config.json``;
- `eva`, `beats`, `towers`: the vision and audio towers, BERT, the heads and pooling;
- `preprocess`: GRAM's frames, fbank and tokens;
- `model`: building on the meta device and loading (float32 or bfloat16).

Only the configuration classes are imported here; the rest loads with `gramviz.models`.
"""

from .beats import BEATsConfig
from .config import OfficialConfig, TextConfig
from .eva import VisionConfig

__all__ = ["BEATsConfig", "OfficialConfig", "TextConfig", "VisionConfig"]
