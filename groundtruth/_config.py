"""The base of every generator's config (frozen, validated, canonical JSON, a content id), and the
validation helpers every package shares: ``Problems`` and ``nearest``."""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

SCHEMA_VERSION = 1  # of a config's canonical JSON (part of every content id)
# The metadata of a config field added to a published family: absent from the canonical JSON (and
# so from the id) while it holds its default: ``field(default=None, metadata=ADDED)``.
ADDED = {"added": True}


def suggest(name: Any, options, *, n: int = 3, cutoff: float = 0.3) -> list[str]:
    """The valid options closest to ``name`` (for "did you mean" messages)."""
    return difflib.get_close_matches(str(name), [str(o) for o in options], n=n, cutoff=cutoff)


def nearest(name: Any, options, what: str) -> ValueError:
    """A one-line ``ValueError`` for an unknown name, with the closest valid ones."""
    close = suggest(name, options)
    hint = f"; did you mean {', '.join(close)}?" if close else "."
    return ValueError(f"unknown {what} {name!r}{hint} Choose from: {', '.join(sorted(str(o) for o in options))}")


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python number it holds, so messages read ``3``, not ``np.int64(3)``."""
    return value.item() if isinstance(value, np.generic) else value


class Problems:
    """Collects every problem of a multi-part spec so they are raised once, together.

    ``integer`` accepts Python and NumPy integers (never ``bool``); ``number`` accepts Python and
    NumPy integers and floats that are finite (never ``bool``). A bound of None is unbounded.
    ``raise_if_any(where)`` raises one ``ValueError``: ``"where: message"`` for one problem,
    ``"where: N problems:"`` and a bulleted list for several.

    Examples
    --------
    >>> p = Problems()
    >>> p.integer("n_latents", 0, low=1)
    >>> p.number("threshold", 1.5, low=0, high=1, low_open=True)
    >>> p.raise_if_any("score")
    Traceback (most recent call last):
    ValueError: score: 2 problems:
      - n_latents must be in [1, inf), got 0
      - threshold must be in (0, 1], got 1.5
    """

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        self.messages.append(message)

    def integer(self, name: str, value: Any, *, low: int | None = None, high: int | None = None) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            self.add(f"{name} must be an integer, got {value!r}")
            return
        self._range(name, value, low, high)

    def number(
        self,
        name: str,
        value: Any,
        *,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
        high_open: bool = False,
    ) -> None:
        real = (int, float, np.integer, np.floating)
        if isinstance(value, bool) or not isinstance(value, real) or not math.isfinite(value):
            self.add(f"{name} must be a finite number, got {value!r}")
            return
        self._range(name, value, low, high, low_open, high_open)

    def boolean(self, name: str, value: Any) -> None:
        if not isinstance(value, bool):
            self.add(f"{name} must be True or False, got {value!r}")

    def choice(self, name: str, value: Any, allowed: Sequence[str]) -> None:
        if value not in allowed:
            options = ", ".join(repr(a) for a in allowed)
            self.add(f"{name} must be one of {options}, got {value!r}")

    def _range(self, name, value, low, high, low_open=False, high_open=False) -> None:
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high:
            left = "(" if low_open or low is None else "["
            right = ")" if high_open or high is None else "]"
            lo = "-inf" if low is None else repr(_plain(low))
            hi = "inf" if high is None else repr(_plain(high))
            self.add(f"{name} must be in {left}{lo}, {hi}{right}, got {_plain(value)!r}")

    def raise_if_any(self, where: str) -> None:
        if self.messages:
            if len(self.messages) == 1:
                raise ValueError(f"{where}: {self.messages[0]}")
            listed = "\n  - ".join(self.messages)
            raise ValueError(f"{where}: {len(self.messages)} problems:\n  - {listed}")


@dataclasses.dataclass(frozen=True)
class Config:
    """Base class of generator configs.

    Subclasses are frozen dataclasses whose fields are JSON scalars (or tuples of them), declare
    their family's ``kind`` and implement ``_check(problems)``. Construction validates every field and raises
    one ``ValueError`` listing all problems. ``config.id`` is the sha256 of the canonical JSON (with
    the kind and the schema version), so two equal configs have the same id on every machine.
    """

    kind: ClassVar[str] = ""

    def __post_init__(self) -> None:
        problems = Problems()
        self._check(problems)
        problems.raise_if_any(type(self).__name__)

    def _check(self, problems: Problems) -> None:
        """Add a message to ``problems`` for every invalid field."""

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON values (tuples become lists). A field declared with
        ``metadata=ADDED`` (added after configs of its family were published) is left out while it
        holds its default, so the ids of every config made before it stay as they were."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("added") and value == f.default:
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces, with the kind and the schema version."""
        payload = {"kind": self.kind, "schema": SCHEMA_VERSION, "fields": self.to_dict()}
        return json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)

    @property
    def id(self) -> str:
        """sha256 hex digest of the canonical JSON."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def replace(self, **changes: Any) -> Config:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> Config:
        """Build from ``to_dict`` output; unknown or missing keys raise ``ValueError``."""
        if not isinstance(fields, dict):
            raise ValueError(f"{cls.__name__} fields must be a JSON object, got {type(fields).__name__}")
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - set(names))
        if unknown:
            raise ValueError(f"{cls.__name__} has no field(s) {unknown}; fields are {sorted(names)}")
        values = {}
        for key, value in fields.items():
            values[key] = tuple(value) if isinstance(value, list) else value
        return cls(**values)
