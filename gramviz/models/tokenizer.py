"""A word-level tokenizer built from training captions, stored as JSON (no hub downloads, no pickle)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = ["SPECIAL_TOKENS", "IgnoredWordsWarning", "Tokenizer"]

PAD, UNK, CLS = "[PAD]", "[UNK]", "[CLS]"
SPECIAL_TOKENS = (PAD, UNK, CLS)  # ids 0, 1, 2
# runs of letters (any script); digits, punctuation and spaces separate words
_WORD = re.compile(r"[^\W\d_]+")


class IgnoredWordsWarning(UserWarning):
    """Text was encoded with words its tokenizer does not know: they were read as [UNK]."""


class Tokenizer:
    """Lower-cased words to ids; [PAD] = 0, [UNK] = 1, [CLS] = 2, then the vocabulary.

    Args:
        words: the vocabulary after the special tokens, in id order.

    Example:
        >>> tok = Tokenizer.build(["A red ball bounces.", "a blue cube"])
        >>> ids, mask = tok.encode(["a red cube!", "zebra"], max_len=8)
        >>> ids.tolist(), mask.tolist()
        ([[2, 3, 8, 7], [2, 1, 0, 0]], [[True, True, True, True], [True, True, False, False]])
        >>> tok.decode(ids[0])
        'a red cube'
    """

    def __init__(self, words: Sequence[str]) -> None:
        words = list(words)
        if len(set(words)) != len(words) or set(words) & set(SPECIAL_TOKENS):
            raise ValueError("Tokenizer: words must be distinct and must not repeat the special tokens")
        self.vocab: list[str] = [*SPECIAL_TOKENS, *words]
        self.index: dict[str, int] = {w: i for i, w in enumerate(self.vocab)}

    @staticmethod
    def split(text: str) -> list[str]:
        """Lower-cased words of ``text`` (letters only)."""
        return _WORD.findall(text.lower())

    @classmethod
    def build(cls, captions: Iterable[str], min_count: int = 1) -> Tokenizer:
        """Vocabulary of the words seen at least ``min_count`` times, most frequent first (ties alphabetical)."""
        counts = Counter(w for c in captions for w in cls.split(c))
        kept = [w for w, n in counts.items() if n >= min_count and w not in SPECIAL_TOKENS]
        return cls(sorted(kept, key=lambda w: (-counts[w], w)))

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, texts: Sequence[str], max_len: int = 32) -> tuple[Tensor, Tensor]:
        """Token ids with [CLS] first, padded with [PAD] to the longest text (at most ``max_len``).

        Args:
            texts: B strings; unknown words become [UNK].
            max_len: tokens per text including [CLS]; longer texts are truncated.

        Returns:
            ``ids`` (B, L) long and ``mask`` (B, L) bool (True on real tokens), L <= max_len.
        """
        if isinstance(texts, str):
            raise TypeError("Tokenizer.encode: expected a list of strings, got one string")
        if max_len < 1:
            raise ValueError(f"Tokenizer.encode: max_len must be positive, got {max_len}")
        unk = self.index[UNK]
        rows = [[self.index[CLS], *(self.index.get(w, unk) for w in self.split(t))][:max_len] for t in texts]
        length = max((len(r) for r in rows), default=1)
        ids = torch.zeros(len(rows), length, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        return ids, ids != self.index[PAD]

    def unknown_words(self, texts: Sequence[str] | str) -> list[str]:
        """The distinct words of ``texts`` that are not in the vocabulary (encoded as [UNK]), in order.

        Every tokenizer of gramviz offers this method: a word-level tokenizer ignores the words it
        lists; a subword tokenizer (`gramviz.models.backbones.PretrainedTokenizer`) spells almost
        every word and lists only those it reads as its unknown token.

        Example:
            >>> Tokenizer.build(["a red ball"]).unknown_words(["A dog is barking", "a red dog"])
            ['dog', 'is', 'barking']
        """
        texts = [texts] if isinstance(texts, str) else texts
        return list(dict.fromkeys(w for t in texts for w in self.split(t) if w not in self.index))

    def decode(self, ids: Tensor | Sequence[int]) -> str:
        """Words of one id sequence, special tokens dropped except [UNK]."""
        skip = {self.index[PAD], self.index[CLS]}
        return " ".join(self.vocab[int(i)] for i in ids if int(i) not in skip)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form, written as ``tokenizer.json``."""
        return {"type": "word", "lowercase": True, "special_tokens": list(SPECIAL_TOKENS), "vocab": list(self.vocab)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Tokenizer:
        """Inverse of `to_dict`; raises ValueError on anything else."""
        if not isinstance(d, dict) or d.get("type") != "word" or not isinstance(d.get("vocab"), list):
            raise ValueError("Tokenizer.from_dict: expected {'type': 'word', 'vocab': [...]}")
        vocab = d["vocab"]
        if tuple(vocab[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"Tokenizer.from_dict: the vocabulary must start with {list(SPECIAL_TOKENS)}")
        return cls(vocab[len(SPECIAL_TOKENS):])

    def __repr__(self) -> str:
        return f"Tokenizer({len(self)} tokens)"
