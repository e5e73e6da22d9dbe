"""Checks of a loaded toy against its config: the shapes and ranges a family's ``check`` states.

A toy folder whose checksums were recomputed after an edit passes ``load``'s hash checks; these
checks make sure that what it describes is still a toy of its config, so no method or evaluator
meets an index out of range or an array of the wrong size deep inside a computation.
"""

from __future__ import annotations

from typing import Any

import numpy as np


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


__all__ = ["binary", "shape", "within"]
