"""`GRAMModel`: one encoder per modality in a modality-keyed dict, a shared L2-normalised space."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..gram import unit_and_length
from ..modalities import MEDIA
from .config import ModelConfig
from .dam import DAMHead, ModalityTokens
from .encoders import build_encoder
from .gram_official.towers import Prepared, official_encoders, read_clip_inputs
from .inference import inference
from .io import save_pretrained, trained_state
from .preprocess import prepare
from .pretrained import BackboneEncoder, backbone_encoders
from .tokenizer import IgnoredWordsWarning, Tokenizer

__all__ = ["GRAMModel"]


class GRAMModel(nn.Module):
    """Encoders for text, video and audio whose normalised embeddings GRAM aligns by volume.

    ``self.encoders`` is an ``nn.ModuleDict`` keyed by modality. Any ``nn.Module`` can stand in
    for an encoder: it receives the modality's prepared input and returns ``(B, embed_dim)``
    (before normalisation):

    - text: one argument, the pair ``(ids, mask)``, both (B, L) ([CLS] first, mask True on tokens);
    - video: (B, num_frames, 3, *frame_size) frames normalised per channel;
    - audio: (B, n_mels, frames) normalised log-mel;
    - any other modality named in ``config.modalities``: ``batch[modality]`` as given.

    A stand-in that also has ``tokens(inputs) -> (tokens (B, L, width), mask or None)`` works
    with `encode_tokens` and the DAM head (width: the config's ``<modality>_width``); one with
    ``prepare_input(value, config, device)`` prepares its own raw input.

    The modalities that ``config.backbones`` names get a `BackboneEncoder`: a pretrained tower
    (Hugging Face or open_clip), its own preprocessing, and a trainable head
    (`gramviz.pretrained_model` builds such a model); a text backbone brings its tokenizer.

    A config with ``official`` set (a converted official GRAM checkpoint, ``gramviz convert-gram``)
    gets GRAM's own EVA, BEATs and BERT encoders with GRAM's preprocessing
    (`gramviz.models.gram_official`); ``tokenizer`` is then BERT's.

    Args:
        config: sizes and preprocessing; ``vocab_size`` 0 is filled in from ``tokenizer``.
        tokenizer: the word tokenizer (needed for text given as strings to the built-in encoder).
        encoders: modules replacing the built-in encoder of some modalities.

    Example:
        >>> tok = Tokenizer.build(["a red ball", "a blue cube"])
        >>> model = GRAMModel(ModelConfig(embed_dim=32), tok)
        >>> emb = model.encode({"text": ["a red cube"], "audio": torch.zeros(1, 16000)})
        >>> {m: tuple(e.shape) for m, e in emb.items()}
        {'text': (1, 32), 'audio': (1, 32)}

        A custom video encoder:

        >>> class MeanColour(nn.Module):
        ...     def __init__(self): super().__init__(); self.proj = nn.Linear(3, 32)
        ...     def forward(self, video): return self.proj(video.mean(dim=(1, 3, 4)))
        >>> model = GRAMModel(ModelConfig(embed_dim=32), tok, encoders={"video": MeanColour()})
        >>> model.encode({"video": torch.rand(2, 5, 3, 40, 40)})["video"].shape
        torch.Size([2, 32])
    """

    def __init__(
        self, config: ModelConfig, tokenizer: Tokenizer | None = None, encoders: Mapping[str, nn.Module] | None = None
    ) -> None:
        super().__init__()
        encoders = dict(encoders or {})
        unknown = sorted(set(encoders) - set(config.modalities))
        if unknown:
            raise ValueError(f"GRAMModel: encoders for {unknown} are not among config.modalities {config.modalities}")
        if config.backbones:
            encoders.update(backbone_encoders(config, skip=encoders))
            if tokenizer is None and isinstance(encoders.get("text"), BackboneEncoder):
                tokenizer = encoders["text"].tokenizer
        if config.official:
            encoders.update(official_encoders(config, tokenizer, skip=encoders))
        if isinstance(tokenizer, Tokenizer) and not isinstance(encoders.get("text"), BackboneEncoder):
            if config.vocab_size == 0:
                config = config.replace(vocab_size=len(tokenizer))
            elif config.vocab_size != len(tokenizer):
                raise ValueError(f"GRAMModel: config.vocab_size {config.vocab_size} != tokenizer size {len(tokenizer)}")
        if "text" in config.modalities and "text" not in encoders and tokenizer is None:
            raise ValueError("GRAMModel: the built-in text encoder needs a tokenizer (Tokenizer.build(captions))")
        self.config = config
        self.tokenizer = tokenizer
        self.encoders = nn.ModuleDict(
            {m: encoders[m] if m in encoders else build_encoder(m, config) for m in config.modalities}
        )
        self.dam = DAMHead(config) if config.dam else None
        self.card: dict[str, Any] = {}
        self.register_buffer("_device_probe", torch.zeros(()), persistent=False)

    @property
    def device(self) -> torch.device:
        """Where the model's tensors live."""
        return self._device_probe.device

    @property
    def anchor(self) -> str:
        """The anchor modality of the GRAM volume: text when the model has it."""
        return "text" if "text" in self.config.modalities else self.config.modalities[0]

    def num_parameters(self, trainable: bool = False) -> int:
        """Number of parameters: all of them, or only those that train (frozen backbones left out)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable)

    def trained_state_dict(self) -> dict[str, Tensor]:
        """The state a saved model stores: everything but the weights of frozen backbone towers
        (recorded by reference in ``config.backbones``)."""
        return trained_state(self)

    def prepare(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Encoder inputs of the modalities present in ``batch`` (None values and extra keys skipped).

        Strings are tokenised by the text encoder's tokenizer; words it ignores (read as [UNK])
        raise an `IgnoredWordsWarning` that names them.
        """
        out = {}
        for m in self.config.modalities:
            value = batch.get(m)
            if value is None:
                continue
            if m == "text" and isinstance(value, (list, tuple)) and value and all(isinstance(t, str) for t in value):
                self._warn_ignored(value)
            encoder = self.encoders[m]
            if hasattr(encoder, "prepare_input"):
                out[m] = encoder.prepare_input(value, self.config, self.device)
            else:
                out[m] = prepare(m, value, self.config, self.tokenizer, self.device)
        return out

    def _warn_ignored(self, texts: Sequence[str]) -> None:
        unknown = getattr(self.tokenizer, "unknown_words", None)
        words = unknown(list(texts)) if unknown is not None else []
        if words:
            shown = ", ".join(words[:12]) + (f", ... ({len(words)} in all)" if len(words) > 12 else "")
            warnings.warn(f"the model's tokenizer does not know these words and ignores them (read as [UNK]): {shown}",
                          IgnoredWordsWarning, stacklevel=4)

    def encode(self, batch: Mapping[str, Any], return_tokens: bool = False):
        """L2-normalised embeddings of every modality present in ``batch``.

        Args:
            batch: ``{"text": list[str] or (ids, mask), "video": (B, T, 3, H, W) in [0, 1],
                "audio": (B, S) at config.sample_rate}``, any subset; other keys are ignored.
            return_tokens: also return the unpooled tokens (as `encode_tokens`), computed once.

        Returns:
            ``{modality: (B, embed_dim)}``, or ``(embeddings, tokens)`` with ``return_tokens``.
        """
        inputs = self.prepare(batch)
        if not return_tokens:
            return {m: unit_and_length(self.encoders[m](x))[0] for m, x in inputs.items()}
        tokens = self._tokens(inputs)
        pooled = {m: self.encoders[m].pool(tokens[m], tokens.masks.get(m)) for m in tokens}
        return {m: unit_and_length(z)[0] for m, z in pooled.items()}, tokens

    def forward(self, batch: Mapping[str, Any], return_tokens: bool = False):
        """Same as `encode`; calling the module itself keeps wrappers such as DDP in the loop."""
        return self.encode(batch, return_tokens=return_tokens)

    def encode_tokens(self, batch: Mapping[str, Any]) -> ModalityTokens:
        """Unpooled token features ``{modality: (B, L_m, width_m)}`` for the DAM head.

        The result is a dict whose ``masks`` attribute holds ``{modality: (B, L_m) bool}`` for
        modalities with padding (text).
        """
        return self._tokens(self.prepare(batch))

    def _tokens(self, inputs: Mapping[str, Any]) -> ModalityTokens:
        out = ModalityTokens()
        for m, x in inputs.items():
            encoder = self.encoders[m]
            if not hasattr(encoder, "tokens"):
                raise TypeError(f"the {m} encoder {type(encoder).__name__} has no tokens() method (needed for DAM)")
            out[m], mask = encoder.tokens(x)
            if mask is not None:
                out.masks[m] = mask
        return out

    def encode_text(self, texts: Sequence[str], batch_size: int = 256) -> Tensor:
        """(N, embed_dim) embeddings of N strings, in evaluation mode.

        Example:
            >>> model = GRAMModel(ModelConfig(embed_dim=16), Tokenizer.build(["a cat"]))
            >>> model.encode_text(["a cat", "a dog"]).shape
            torch.Size([2, 16])
        """
        if isinstance(texts, str):
            texts = [texts]
        with inference(self):
            parts = [
                self.encode({"text": list(texts[i : i + batch_size])})["text"] for i in range(0, len(texts), batch_size)
            ]
        return torch.cat(parts) if parts else torch.zeros(0, self.config.embed_dim, device=self.device)

    def encode_clip_files(
        self, paths: Sequence[str | Path], audio_paths: Sequence[str | Path | None] | None = None, batch_size: int = 32
    ) -> dict[str, Tensor]:
        """Read clips with `gramviz.read_clip` and embed them, in evaluation mode.

        A model whose media encoders read files themselves (``read_file``: an official GRAM model)
        decodes each clip its own way instead (GRAM's frames and fbank: its exact path).

        Args:
            paths: video (or audio-only) files.
            audio_paths: optional separate audio file per clip (None entries: the clip's own track).
            batch_size: clips per forward pass.

        Returns:
            ``{"video": (N, D), "audio": (N, D)}`` for the media modalities of the model; the row
            of a clip that lacks a modality is a zero vector (GRAM's convention for "missing").
        """
        from ..media import read_clip

        audio_paths = list(audio_paths) if audio_paths is not None else [None] * len(paths)
        if len(audio_paths) != len(paths):
            raise ValueError(f"encode_clip_files: {len(paths)} paths but {len(audio_paths)} audio paths")
        c = self.config
        out: dict[str, list[Tensor]] = {m: [] for m in MEDIA if m in c.modalities}
        own = bool(out) and all(hasattr(self.encoders[m], "read_file") for m in out)
        for i in range(0, len(paths), batch_size):
            pairs = list(zip(paths[i : i + batch_size], audio_paths[i : i + batch_size]))
            if own:
                clips = [read_clip_inputs({m: self.encoders[m] for m in out}, p, a) for p, a in pairs]
                for m in out:
                    out[m].append(self._embed_present(m, [clip[m] for clip in clips], prepared=True))
                continue
            clips = [read_clip(p, a, c.num_frames, c.frame_size, c.sample_rate, c.audio_seconds) for p, a in pairs]
            for m in out:
                out[m].append(self._embed_present(m, [getattr(clip, m) for clip in clips]))
        return {m: torch.cat(v) if v else torch.zeros(0, c.embed_dim, device=self.device) for m, v in out.items()}

    def _embed_present(self, modality: str, values: list[Tensor | None], prepared: bool = False) -> Tensor:
        """(N, D) embeddings of the non-None values (encoder inputs already with ``prepared``), zero rows
        for the None ones."""
        out = torch.zeros(len(values), self.config.embed_dim, device=self.device)
        present = [i for i, v in enumerate(values) if v is not None]
        if present:
            if prepared:
                stacked = Prepared(torch.stack([values[i] for i in present]))
            elif modality == "audio":
                n = max(values[i].numel() for i in present)
                stacked = torch.stack([F.pad(values[i], (0, n - values[i].numel())) for i in present])
            else:
                stacked = torch.stack([values[i] for i in present])
            with inference(self):
                out[present] = self.encode({modality: stacked})[modality].float()
        return out

    def save_pretrained(self, directory: str | Path, card: Mapping[str, Any] | None = None) -> Path:
        """Write ``model.safetensors``, ``config.json``, ``tokenizer.json`` and ``card.json`` atomically.

        Args:
            directory: the model directory (replaced as a whole if it exists).
            card: facts for the model card (training command, config, seed, data, metrics);
                the time, machine, versions and parameter count are added.

        Returns:
            The directory.
        """
        return save_pretrained(self, directory, card)

    def extra_repr(self) -> str:
        c = self.config
        return (f"modalities={list(c.modalities)}, embed_dim={c.embed_dim}, parameters={self.num_parameters():,} "
                f"({self.num_parameters(trainable=True):,} trainable)")
