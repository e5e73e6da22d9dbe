"""Records of comparisons across networks: what a similarity method predicts, and the planted
correspondence between two representations it is scored against."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from planted.groundtruth._arrays import as_matrix, frozen


@dataclasses.dataclass(frozen=True, eq=False)
class Similarities:
    """A comparison method's prediction: how alike each pair of a problem's artifacts is.

    Attributes
    ----------
    values : (k, k) float64
        ``values[i, j]``: the similarity of artifacts ``i`` and ``j`` (higher: more alike), on any
        scale; only the order of the pairs is scored. A measure that is not symmetric is scored
        on ``(values + values.T) / 2``; the diagonal is ignored. Finite.
    method : str
        The measure's name, for tables.
    """

    values: np.ndarray
    method: str = ""

    def __post_init__(self) -> None:
        values = as_matrix("Similarities.values", self.values, dtype=np.float64)
        if values.shape[0] != values.shape[1]:
            raise ValueError(f"Similarities.values must be square (one row and column per artifact), got shape "
                             f"{values.shape}")
        object.__setattr__(self, "values", frozen(values))

    @property
    def symmetric(self) -> np.ndarray:
        """``(values + values.T) / 2``: what is scored."""
        return (self.values + self.values.T) / 2


def correspondence(labels_a: Sequence[str], labels_b: Sequence[str]) -> np.ndarray:
    """The planted correspondence of two representations' features: ``(len(labels_a),
    len(labels_b))`` bool, True where feature ``i`` of one and ``j`` of the other are the same
    planted feature (the same label). Labels within one representation must be unique."""
    for name, labels in (("labels_a", labels_a), ("labels_b", labels_b)):
        if len(set(labels)) != len(labels):
            raise ValueError(f"{name} must be unique within a representation; {len(labels) - len(set(labels))} repeat")
    index = {label: j for j, label in enumerate(labels_b)}
    out = np.zeros((len(labels_a), len(labels_b)), dtype=bool)
    for i, label in enumerate(labels_a):
        j = index.get(label)
        if j is not None:
            out[i, j] = True
    return out


def shared_fraction(labels_a: Sequence[str], labels_b: Sequence[str]) -> float:
    """The fraction of planted features two representations share: ``|A & B| / sqrt(|A| |B|)``,
    which is ``k / n`` for two representations of ``n`` features sharing ``k``, 1 for the same
    features in any frame and 0 for disjoint ones."""
    if not labels_a or not labels_b:
        return 0.0
    shared = len(set(labels_a) & set(labels_b))
    return float(shared / np.sqrt(len(set(labels_a)) * len(set(labels_b))))
