"""Checks of a loaded toy against its config: the shapes and ranges a family's ``check`` states.

A toy folder whose checksums were recomputed after an edit passes ``load``'s hash checks; these
checks make sure that what it describes is still a toy of its config, so no method or evaluator
meets an index out of range or an array of the wrong size deep inside a computation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from planted.groundtruth import available_memory


def shape(problems: list[str], name: str, array: Any, expected: tuple) -> bool:
    """Record a problem unless ``array`` has shape ``expected``; return whether it has."""
    got = getattr(array, "shape", None)
    if got != tuple(expected):
        problems.append(f"{name} has shape {got}, the config makes {tuple(expected)}")
        return False
    return True


def within(problems: list[str], name: str, array: np.ndarray, low: float, high: float) -> None:
    """Record a problem unless every value of ``array`` lies in [low, high)."""
    array = np.asarray(array)
    if array.size and (array.min() < low or array.max() >= high):
        problems.append(f"{name} holds values outside [{low}, {high}): {array.min()}..{array.max()}")


def binary(problems: list[str], name: str, array: np.ndarray) -> None:
    """Record a problem unless ``array`` holds only 0 and 1."""
    if not np.isin(np.asarray(array), (0, 1)).all():
        problems.append(f"{name} must hold only 0 and 1")


def require_memory(kind: str, needed: float, parts: str, parameters: str) -> None:
    """Refuse to build a toy whose estimated memory (``needed`` bytes, made of ``parts``) exceeds
    what this machine has available now, before anything is allocated; the message names the
    ``parameters`` that set the size."""
    available = available_memory()
    if needed > available:
        raise ValueError(
            f"{kind}: this config needs about {needed / 2**30:.1f} GiB ({parts}), more than the "
            f"{available / 2**30:.1f} GiB this machine has available; lower {parameters}"
        )


def as_float(value: Any) -> Any:
    """``value`` as a float when it is a real number (not a bool), else unchanged, so that a
    config's checks see (and name) a wrong value instead of ``float()`` failing first."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        return float(value)
    return value


__all__ = ["as_float", "binary", "require_memory", "shape", "within"]
