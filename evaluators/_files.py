"""Writing report files atomically: each file appears whole or not at all.

A file is written under a temporary name in its own folder and renamed over the target, so a
report killed at any moment leaves every file either as it was or as it is meant to be, never
empty or cut short. A temporary left by a kill is swept away by the next write of the same file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``; when the block ends without an error it replaces ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with replacing(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def save_figure(fig, path: Path, *, dpi: int = 150) -> Path:
    """Save a matplotlib figure to ``path`` atomically (the format from the suffix)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".")
    # No creation date in the file: the same figure gives the same bytes (reproducible reports).
    metadata = {"pdf": {"CreationDate": None}, "svg": {"Date": None}, "png": {"Software": None}}.get(fmt)
    import matplotlib

    with replacing(path) as tmp, matplotlib.rc_context({"svg.hashsalt": "planted"}):  # fixed SVG element ids
        fig.savefig(tmp, dpi=dpi, format=fmt, metadata=metadata)
    return path
