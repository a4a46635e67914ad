"""The gramviz embedding file: per-modality embedding matrices and what their rows are.

One ``.safetensors`` file holds one ``(rows, D)`` float tensor per modality, keyed by the modality
name (``"text"``, ``"video"``, ``"audio"``, ...), and, in the safetensors header metadata under
``"gramviz.embeddings"``, a JSON object: clip ids, captions, classes, media paths, model name and
the caption -> clip map. Every non-text modality has one row per clip; ``"text"`` has one row per
caption, which may be more than one per clip. See docs/embeddings.md.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

__all__ = ["EmbeddingFileError", "EmbeddingMetadata", "describe_unreadable", "load_embeddings", "save_embeddings"]

METADATA_KEY = "gramviz.embeddings"
FORMAT_VERSION = 1
TEXT = "text"  # the modality whose rows are captions


class EmbeddingFileError(ValueError):
    """Embeddings or metadata that do not make a valid embedding file, naming the file and key."""


@dataclass
class EmbeddingMetadata:
    """What the rows of an embedding file are.

    Attributes:
        ids: clip id of each clip row (the rows of every non-text modality).
        captions: the caption of each text row, or None.
        caption_clip: the clip row of each text row; required when there are more (or fewer) text
            rows than clips, None means text row i belongs to clip i.
        class_ids: class index of each clip (None for a clip without a class), or None.
        classes: class names by class index, or None.
        paths: media file of each clip by modality, e.g. ``{"video": [...], "audio": [...]}``.
        model: the model that produced the embeddings (name or checkpoint path).
        extra: any other JSON-serialisable information.
    """

    ids: list[str]
    captions: list[str] | None = None
    caption_clip: list[int] | None = None
    class_ids: list[int | None] | None = None
    classes: list[str] | None = None
    paths: dict[str, list[str]] = field(default_factory=dict)
    model: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def text_clips(self) -> list[int]:
        """The clip row of each text row (``caption_clip``, or the identity when it is None)."""
        return list(self.caption_clip) if self.caption_clip is not None else list(range(len(self.ids)))


_MAX_HEADER = 100_000_000  # safetensors refuses headers above 100 MB: a larger length is not a header


def describe_unreadable(path: Path) -> str | None:
    """What is wrong with a file safetensors cannot read, in plain words; None when it looks whole.

    Reads the 8-byte header length and the JSON header only (never the tensors).

    Example:
        >>> import tempfile
        >>> f = Path(tempfile.mkdtemp()) / "x.safetensors"; _ = f.write_bytes(b"")
        >>> describe_unreadable(f)
        'the file is empty (0 bytes)'
    """
    size = path.stat().st_size
    if size == 0:
        return "the file is empty (0 bytes)"
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return f"the file is truncated: {size} bytes, too short to hold a safetensors header"
        length = int.from_bytes(head, "little")
        if length > _MAX_HEADER:
            return "not a safetensors file (its first 8 bytes are not a header length)"
        if 8 + length > size:
            return (f"the file is truncated: its header alone should take {length:,} bytes, but the file has "
                    f"{size - 8:,} after the length (copy it again)")
        raw = f.read(length)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "not a safetensors file (its header is not JSON)"
    if not isinstance(header, dict):
        return "not a safetensors file (its header is not a JSON object)"
    ends = [entry["data_offsets"][1] for name, entry in header.items()
            if name != "__metadata__" and isinstance(entry, dict) and len(entry.get("data_offsets", [])) == 2]
    have = size - 8 - length
    if ends and max(ends) > have:
        return (f"the file is truncated: its header describes {max(ends):,} bytes of tensors but only {have:,} "
                "follow it (an interrupted copy or download: copy it again)")
    return None


def _fail(path: Path, key: str, problem: str) -> EmbeddingFileError:
    return EmbeddingFileError(f"{path}: '{key}' {problem}")


def _check_tensors(path: Path, embeddings: dict[str, Tensor]) -> None:
    if not isinstance(embeddings, dict) or not embeddings:
        raise EmbeddingFileError(f"{path}: needs a non-empty dict of modality name -> (N, D) tensor")
    for key, x in embeddings.items():
        if not isinstance(key, str) or not key:
            raise EmbeddingFileError(f"{path}: modality names must be non-empty strings, got {key!r}")
        if not isinstance(x, Tensor):
            raise _fail(path, key, f"is a {type(x).__name__}, expected a torch.Tensor")
        if not x.is_floating_point():
            raise _fail(path, key, f"has dtype {x.dtype}, expected a floating dtype")
        if x.dim() != 2:
            raise _fail(path, key, f"must be 2-D (rows, D), got shape {tuple(x.shape)}")
        if not bool(torch.isfinite(x).all()):
            bad = int((~torch.isfinite(x)).any(dim=1).nonzero()[0])
            raise _fail(path, key, f"has NaN or Inf values (first in row {bad})")


def _check_list(path: Path, key: str, values: Any, length: int | None, kind: type, what: str = "") -> None:
    """A list of ``kind`` values (None too for class_ids), of ``length`` entries unless None."""
    if not isinstance(values, list):
        raise _fail(path, key, f"must be a list, got {type(values).__name__}")
    if length is not None and len(values) != length:
        raise _fail(path, key, f"has {len(values)} entries for {length} {what}")
    for i, v in enumerate(values):
        if not (isinstance(v, kind) and not isinstance(v, bool)) and not (v is None and key == "class_ids"):
            raise _fail(path, key, f"entry {i} is {v!r}, expected {kind.__name__}")


def _check_metadata(path: Path, embeddings: dict[str, Tensor], meta: EmbeddingMetadata) -> None:
    _check_list(path, "ids", meta.ids, None, str)
    n = len(meta.ids)
    if len(set(meta.ids)) != n:
        raise _fail(path, "ids", "holds duplicate clip ids")
    for key, x in embeddings.items():
        if key != TEXT and x.shape[0] != n:
            raise _fail(path, key, f"has {x.shape[0]} rows but there are {n} clip ids")
    texts = embeddings[TEXT].shape[0] if TEXT in embeddings else None
    if meta.caption_clip is not None:
        _check_list(path, "caption_clip", meta.caption_clip, texts, int, "text rows")
        bad = [c for c in meta.caption_clip if not 0 <= c < n]
        if bad:
            raise _fail(path, "caption_clip", f"points at clip row {bad[0]}, outside [0, {n})")
        texts = len(meta.caption_clip)
    elif texts is not None and texts != n:
        raise _fail(path, TEXT, f"has {texts} rows for {n} clips: give caption_clip (the clip of each text row)")
    if meta.captions is not None:
        _check_list(path, "captions", meta.captions, texts if texts is not None else n, str, "text rows")
    if meta.class_ids is not None:
        _check_list(path, "class_ids", meta.class_ids, n, int, "clips")
        top = len(meta.classes) if meta.classes is not None else math.inf
        bad = [c for c in meta.class_ids if c is not None and not 0 <= c < top]
        if bad:
            raise _fail(path, "class_ids", f"holds {bad[0]}, outside [0, {top}) (the classes)")
    if meta.classes is not None:
        _check_list(path, "classes", meta.classes, None, str)
    if not isinstance(meta.paths, dict):
        raise _fail(path, "paths", "must be a dict of modality -> list of file paths")
    for modality, files in meta.paths.items():
        _check_list(path, f"paths.{modality}", files, n, str, "clips")


def save_embeddings(
    path: str | Path, embeddings: dict[str, Tensor], metadata: EmbeddingMetadata | dict[str, Any]
) -> None:
    """Write embeddings and their metadata to one ``.safetensors`` file.

    Tensors are stored as given (dtype kept, moved to the CPU); the file loads back bit-exact.

    Args:
        path: the file to write.
        embeddings: modality name -> (rows, D) float tensor; every modality but ``"text"`` has
            one row per clip id.
        metadata: an `EmbeddingMetadata` or a dict of its fields.

    Raises:
        EmbeddingFileError: a tensor or a metadata field is invalid (the message names the key).

    Example:
        >>> import tempfile, os
        >>> f = os.path.join(tempfile.mkdtemp(), "emb.safetensors")
        >>> save_embeddings(f, {"text": torch.ones(3, 4), "video": torch.ones(2, 4)},
        ...                 {"ids": ["a", "b"], "captions": ["x", "y", "z"], "caption_clip": [0, 0, 1]})
        >>> tensors, meta = load_embeddings(f)
        >>> tensors["text"].shape, meta.text_clips()
        (torch.Size([3, 4]), [0, 0, 1])
    """
    from safetensors.torch import save_file

    path = Path(path)
    meta = _as_metadata(path, metadata)
    _check_tensors(path, embeddings)
    _check_metadata(path, embeddings, meta)
    try:
        header = json.dumps({"version": FORMAT_VERSION, **asdict(meta)}, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise _fail(path, "extra", f"is not JSON-serialisable ({e})") from None
    tensors = {k: v.detach().cpu().contiguous() for k, v in embeddings.items()}
    save_file(tensors, str(path), metadata={METADATA_KEY: header})


def load_embeddings(path: str | Path) -> tuple[dict[str, Tensor], EmbeddingMetadata]:
    """Read a file written by `save_embeddings`, checking it as `save_embeddings` does.

    Returns:
        (modality name -> (rows, D) tensor, `EmbeddingMetadata`).

    Raises:
        EmbeddingFileError: no such file, not a safetensors file, no gramviz metadata, or invalid
            tensors or metadata (the message names the file and key).
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise EmbeddingFileError(f"{path}: no such embedding file")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = (f.metadata() or {}).get(METADATA_KEY)
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as e:
        plain = describe_unreadable(path)  # truncated, empty, not safetensors: said in plain words
        raise EmbeddingFileError(f"{path}: {plain}" if plain else f"{path}: not a readable safetensors file ({e})") from None
    if header is None:
        raise EmbeddingFileError(f"{path}: no '{METADATA_KEY}' metadata; write it with save_embeddings")
    try:
        fields = json.loads(header)
    except json.JSONDecodeError as e:
        raise _fail(path, METADATA_KEY, f"is not valid JSON ({e.msg})") from None
    if not isinstance(fields, dict) or fields.pop("version", None) != FORMAT_VERSION:
        raise _fail(path, METADATA_KEY, f"is not version {FORMAT_VERSION} metadata")
    meta = _as_metadata(path, fields)
    _check_tensors(path, tensors)
    _check_metadata(path, tensors, meta)
    return tensors, meta


def _as_metadata(path: Path, metadata: EmbeddingMetadata | dict[str, Any]) -> EmbeddingMetadata:
    if isinstance(metadata, EmbeddingMetadata):
        return metadata
    if not isinstance(metadata, dict):
        got = type(metadata).__name__
        raise EmbeddingFileError(f"{path}: metadata must be an EmbeddingMetadata or a dict, got {got}")
    unknown = set(metadata) - set(EmbeddingMetadata.__dataclass_fields__)
    if unknown:
        raise _fail(path, sorted(unknown)[0], "is not a metadata field (put custom values in 'extra')")
    if "ids" not in metadata:
        raise _fail(path, "ids", "is required: the id of each clip row")
    return EmbeddingMetadata(**metadata)
