"""Pretrained backbones by reference: Hugging Face transformers and open_clip towers, each with
its own preprocessing (tokenizer, image processor settings, audio feature extractor).

A `Backbone` names a tower; `gramviz.models.towers.load_tower` builds it:

- ``source="hf"``: ``transformers`` ``from_pretrained(name)``, a hub name or a local directory
  (``config.json``, weights, and the tokenizer / image processor / feature extractor files).
  Dual models (CLIP, CLAP, SigLIP) need a ``tower``: ``"text"``, ``"vision"`` or ``"audio"``.
  Plain ``AutoModel`` encoders (BERT-like text, ViT-like images, AST / wav2vec2 / HuBERT-like
  audio) need none; they are pooled by their pooler output where they have one, else by the mean
  of the last hidden states over the real tokens.
- ``source="open_clip"``: ``open_clip.create_model_and_transforms(name, pretrained=...)`` with a
  pretrained tag or a local checkpoint file; towers ``"text"`` and ``"vision"``.

Towers are marked ``by_reference``: a saved GRAM model records the `Backbone` in its config and
stores only the weights that were trained (`gramviz.models.io`).
"""

from __future__ import annotations

import inspect
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from torch import Tensor, nn

__all__ = ["Backbone", "BackboneError", "ImageSpec", "PretrainedTokenizer", "Tower", "check_local"]

SOURCES = ("hf", "open_clip")
TOWERS = {"text": "text", "video": "vision", "image": "vision", "audio": "audio"}  # modality -> default tower
_DUAL = {  # model_type -> {tower: (body attribute, projection attribute)}
    "clip": {"text": ("text_model", "text_projection"), "vision": ("vision_model", "visual_projection")},
    "clap": {"text": ("text_model", "text_projection"), "audio": ("audio_model", "audio_projection")},
    "siglip": {"text": ("text_model", None), "vision": ("vision_model", None)},
}
_WORD = re.compile(r"[^\W\d_]+")


class BackboneError(ValueError):
    """A backbone that cannot be built: unknown source or tower, missing directory, no hub access."""


@dataclass(frozen=True)
class Backbone:
    """A pretrained tower, by reference (what a saved model records instead of its weights).

    Attributes:
        source: ``"hf"`` (transformers) or ``"open_clip"``.
        name: a hub name (``"openai/clip-vit-base-patch32"``), a local directory, or an open_clip
            model name (``"ViT-B-32"``).
        tower: which tower of a dual model: ``"text"``, ``"vision"`` or ``"audio"``; None: the
            modality's own (text -> text, video -> vision, audio -> audio) for dual models.
        freeze: keep the backbone's weights fixed (only the GRAM head trains).
        train_layers: with ``freeze``, train the last N transformer blocks all the same.
        revision: the hub revision (commit) the weights came from, where known.
        pretrained: open_clip only: a pretrained tag (``"openai"``) or a local checkpoint file.

    Example:
        >>> b = Backbone("hf", "openai/clip-vit-base-patch32", tower="vision")
        >>> Backbone.from_dict(b.to_dict()) == b
        True
    """

    source: str
    name: str
    tower: str | None = None
    freeze: bool = True
    train_layers: int = 0
    revision: str | None = None
    pretrained: str | None = None

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise BackboneError(f"Backbone: source must be one of {SOURCES}, got {self.source!r}")
        if not isinstance(self.name, str) or not self.name:
            raise BackboneError("Backbone: name must be a hub name, a local directory or an open_clip model name")
        if self.tower is not None and self.tower not in ("text", "vision", "audio"):
            raise BackboneError(f"Backbone {self.name}: tower must be 'text', 'vision' or 'audio', got {self.tower!r}")
        if self.train_layers < 0:
            raise BackboneError(f"Backbone {self.name}: train_layers must be >= 0, got {self.train_layers}")

    @property
    def label(self) -> str:
        """How errors and cards name this backbone."""
        return f"{self.source}:{self.name}" + (f" ({self.tower} tower)" if self.tower else "")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly fields (what ``config.json`` records)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | Backbone) -> Backbone:
        """From `to_dict` output (or a Backbone); unknown keys raise BackboneError."""
        if isinstance(d, Backbone):
            return d
        known = {f.name for f in fields(cls)}
        if not isinstance(d, dict) or set(d) - known:
            raise BackboneError(f"Backbone: expected a table with keys among {sorted(known)}, got {d!r}")
        return cls(**d)


@dataclass(frozen=True)
class ImageSpec:
    """An image processor's resize, crop and normalisation, applied to frame tensors in [0, 1]."""

    resize: int | tuple[int, int]  # shortest edge (int) or exact (H, W)
    crop: tuple[int, int] | None  # centre crop after the resize
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the frames the tower receives."""
        return self.crop or (self.resize if isinstance(self.resize, tuple) else (self.resize, self.resize))


class PretrainedTokenizer:
    """A Hugging Face or open_clip tokenizer behind gramviz's text protocol: ``encode(texts,
    max_len) -> (ids, mask)`` and ``unknown_words(texts)`` (the words it reads only as its unknown
    token; a subword tokenizer spells almost every word)."""

    def __init__(self, tokenizer: Any, kind: str = "hf", max_len: int | None = None) -> None:
        self.tokenizer, self.kind, self.max_len = tokenizer, kind, max_len

    def encode(self, texts: list[str], max_len: int = 64) -> tuple[Tensor, Tensor]:
        """Token ids and mask (B, L) of B strings, truncated to ``max_len`` tokens."""
        if isinstance(texts, str):
            raise TypeError("PretrainedTokenizer.encode: expected a list of strings, got one string")
        if self.kind == "open_clip":  # a fixed context length, zero-padded, that its text tower expects
            ids = self.tokenizer(list(texts))
            return ids, ids != 0
        limit = min(max_len, self.max_len or max_len)
        out = self.tokenizer(list(texts), padding=True, truncation=True, max_length=limit, return_tensors="pt")
        return out["input_ids"], out["attention_mask"].bool()

    def unknown_words(self, texts: list[str] | str) -> list[str]:
        """Distinct words of ``texts`` that the tokenizer reads only as its unknown token."""
        unk = getattr(self.tokenizer, "unk_token", None) if self.kind == "hf" else None
        if unk is None:
            return []
        texts = [texts] if isinstance(texts, str) else texts
        words = dict.fromkeys(w for t in texts for w in _WORD.findall(t.lower()))
        return [w for w in words if set(self.tokenizer.tokenize(w)) <= {unk}]

    def __len__(self) -> int:
        return len(self.tokenizer) if self.kind == "hf" else int(getattr(self.tokenizer, "vocab_size", 0))

    def __repr__(self) -> str:
        return f"PretrainedTokenizer({type(self.tokenizer).__name__}, {len(self)} tokens)"


class Tower(nn.Module):
    """One pretrained tower: ``forward(inputs: dict) -> (B, width)`` pooled features.

    Attributes:
        kind: ``"text"``, ``"vision"`` or ``"audio"``.
        width: size of the pooled features.
        tokenizer / image / extractor: its preprocessing (text, vision, audio).
        blocks: its transformer blocks, last ones trainable with ``train_layers``.
    """

    by_reference = True  # saved models record the Backbone, not these weights

    def __init__(self, backbone: Backbone, kind: str, body: nn.Module, projection: nn.Module | None,
                 width: int, call: str = "hf", pooling: str = "pooler", skip: str | None = None) -> None:
        super().__init__()
        self.backbone, self.kind, self.width, self.call, self.pooling = backbone, kind, width, call, pooling
        self.body, self.projection = body, projection
        self.skip = skip  # a prefix of body's parameters that belong to another tower (open_clip's shared model)
        self.tokenizer: PretrainedTokenizer | None = None
        self.image: ImageSpec | None = None
        self.extractor: Any = None
        self._accepts = set(inspect.signature(body.forward).parameters) if call == "hf" else set()

    def forward(self, inputs: dict[str, Tensor]) -> Tensor:
        if self.call == "open_clip":
            if self.kind == "text":
                return self.body.encode_text(inputs["input_ids"])
            return self.body.encode_image(inputs["pixel_values"])
        given = {k: v for k, v in inputs.items() if k in self._accepts}
        out = self.body(**given)
        pooled = getattr(out, "pooler_output", None) if self.pooling == "pooler" else None
        if pooled is None:
            hidden = out.last_hidden_state
            mask = inputs.get("attention_mask")
            if mask is None or mask.shape[1] != hidden.shape[1]:
                pooled = hidden.mean(dim=1)
            else:
                w = mask.to(hidden.dtype).unsqueeze(-1)
                pooled = (hidden * w).sum(1) / w.sum(1).clamp_min(1)
        return self.projection(pooled) if self.projection is not None else pooled

    def own_parameters(self) -> list[nn.Parameter]:
        """The parameters of this tower (not of another tower sharing its body)."""
        return [p for n, p in self.named_parameters() if not (self.skip and n.startswith(f"body.{self.skip}"))]

    def blocks(self) -> list[nn.Module]:
        """The transformer blocks (the largest ModuleList of the tower), in order."""
        lists = [m for n, m in self.named_modules() if isinstance(m, nn.ModuleList) and len(m) > 0
                 and not (self.skip and n.startswith(f"body.{self.skip}"))]
        if not lists:
            return []
        return list(max(lists, key=lambda m: sum(p.numel() for p in m.parameters())))

    def set_trainable(self) -> None:
        """Freeze per the backbone: all weights, or all but the last ``train_layers`` blocks."""
        b = self.backbone
        for p in self.own_parameters():
            p.requires_grad_(not b.freeze)
        if b.freeze and b.train_layers:
            blocks = self.blocks()
            if b.train_layers > len(blocks):
                raise BackboneError(f"{b.label}: train_layers={b.train_layers} but the tower has {len(blocks)} blocks")
            for block in blocks[-b.train_layers:]:
                block.requires_grad_(True)

    @property
    def frozen(self) -> bool:
        """No weight of the tower trains."""
        return not any(p.requires_grad for p in self.own_parameters())


def check_local(backbone: Backbone, path: str) -> None:
    """Refuse a path-like name whose directory or file does not exist, naming the backbone."""
    looks_local = path.startswith(("/", "./", "../", "~")) or Path(path).suffix in (".bin", ".pt", ".safetensors")
    if looks_local and not Path(path).expanduser().exists():
        raise BackboneError(f"backbone {backbone.label}: no local directory or file {path}")
