"""`FieldsDict`: ``to_dict`` and ``from_dict`` for the dataclasses that describe an official GRAM model.

`VisionConfig`, `BEATsConfig`, `TextConfig` and `OfficialConfig` are written to and read back from a
converted model's ``config.json``; they share this round trip and its check for unknown keys.

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Sizes(FieldsDict):
    ...     width: int = 8
    >>> Sizes.from_dict(Sizes(width=4).to_dict())
    Sizes(width=4)
    >>> Sizes.from_dict({"depth": 2})
    Traceback (most recent call last):
    ...
    ValueError: Sizes: unknown keys ['depth']; known: ['width']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any, TypeVar

__all__ = ["FieldsDict"]

T = TypeVar("T", bound="FieldsDict")


class FieldsDict:
    """Mixin for a dataclass: a JSON-ready dict of its fields and the inverse, which names unknown keys."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of every field."""
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def field_names(cls) -> set[str]:
        """The names of the dataclass's fields."""
        return {f.name for f in fields(cls)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[T], d: Mapping[str, Any] | T) -> T:
        """Inverse of `to_dict` (an instance passes through); absent fields take their defaults.

        Raises:
            ValueError: ``d`` is not a mapping, or has keys that are not fields (named, with the known ones).
        """
        if isinstance(d, cls):
            return d
        if not isinstance(d, Mapping):
            raise ValueError(f"{cls.__name__}: expected a table, got {type(d).__name__}")
        unknown = sorted(set(d) - cls.field_names())
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown keys {unknown}; known: {sorted(cls.field_names())}")
        return cls(**d)
