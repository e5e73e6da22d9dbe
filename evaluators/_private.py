"""The private split of a leaderboard: toy seeds derived from a maintainer's secret.

A public suite or preset is deterministic, so anyone can rebuild its toys and read their truth.
With a secret, each toy's seed is ``HMAC-SHA256(secret, what it is)`` reduced to 31 bits: the
maintainer rebuilds the same toys from the same secret, a method author cannot (finding a seed
by search means building on the order of 2^31 toys). The seed a method is called with stays the
public one, and nothing a method is given records the private seed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

SECRET_ENV = "PLANTED_SECRET"
MIN_SECRET_BYTES = 16


def secret_bytes(secret: str | bytes) -> bytes:
    """``secret`` as bytes, checked to be long enough to resist a search."""
    value = secret.encode() if isinstance(secret, str) else bytes(secret)
    if len(value) < MIN_SECRET_BYTES:
        raise ValueError(f"secret must be at least {MIN_SECRET_BYTES} bytes, got {len(value)}")
    return value


def read_secret(path: str | os.PathLike) -> bytes:
    """The secret in the file ``path`` (surrounding whitespace removed)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the secret file ({exc.strerror})") from None
    try:
        return secret_bytes(raw.strip())
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def private_seed(secret: bytes, *parts: object) -> int:
    """The private seed of the toy named by ``parts`` (say suite, toy and public seed)."""
    message = "\x1f".join(str(p) for p in parts).encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") % (2**31 - 1)


def tag(secret: bytes) -> str:
    """A short public tag of a secret (which private split a version belongs to), not the secret."""
    return hmac.new(secret, b"planted private split", hashlib.sha256).hexdigest()[:10]


__all__ = ["SECRET_ENV", "private_seed", "read_secret", "secret_bytes", "tag"]
