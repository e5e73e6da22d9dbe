"""Records of damaged twins: what was damaged in a copy of a network and what it cost, and what
a method that compares the two predicts."""

from __future__ import annotations

import dataclasses

import numpy as np

from planted.groundtruth._arrays import as_vector, check_finite, frozen

DAMAGES = ("ablate", "scale", "noise", "rewire", "prune")


@dataclasses.dataclass(frozen=True, eq=False)
class DamageTruth:
    """What was damaged in a copy of a network (its twin: ``base_id``), and what it cost.

    Attributes
    ----------
    base_id : str
        The id of the normal toy the damaged one was copied from.
    damage : str
        One of ``DAMAGES``: output weights zeroed (``ablate``) or scaled (``scale``), noise added
        to the input weights (``noise``), the input weights permuted (``rewire``), the smallest
        input and output weights zeroed (``prune``).
    damaged : (n_nodes,) bool
        The nodes whose weights were changed; every other weight is the twin's, bit for bit.
    intact : (n_tasks,) float64
        Each task's accuracy in the normal twin.
    deficits : (n_tasks,) float64
        Each task's accuracy drop in the damaged copy (normal minus damaged, on the task's inputs).
    """

    base_id: str
    damage: str
    damaged: np.ndarray
    intact: np.ndarray
    deficits: np.ndarray

    def __post_init__(self) -> None:
        if self.damage not in DAMAGES:
            raise ValueError(f"damage must be one of {DAMAGES}, got {self.damage!r}")
        damaged = np.asarray(self.damaged)
        if damaged.ndim != 1 or damaged.dtype != bool or not damaged.any():
            raise ValueError(f"damaged must be a 1-D bool array marking at least one node, got {damaged.dtype} {damaged.shape}")
        object.__setattr__(self, "damaged", frozen(damaged))
        for name in ("intact", "deficits"):
            value = np.asarray(getattr(self, name), np.float64)
            if value.ndim != 1 or value.shape != np.shape(self.intact):
                raise ValueError(f"{name} must be one value per task, shape {np.shape(self.intact)}, got {value.shape}")
            check_finite(f"DamageTruth.{name}", value)
            object.__setattr__(self, name, frozen(value))


@dataclasses.dataclass(frozen=True, eq=False)
class DamagePrediction:
    """A damage method's prediction from a normal network and its damaged copy.

    Attributes
    ----------
    nodes : (n_nodes,) float64
        How likely each node is to be damaged (higher: more); finite.
    deficits : (n_tasks,) float64 or None
        The predicted accuracy drop of each task; None when the method does not predict them.
    """

    nodes: np.ndarray
    deficits: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", frozen(as_vector("DamagePrediction.nodes", self.nodes, dtype=np.float64)))
        if self.deficits is not None:
            deficits = as_vector("DamagePrediction.deficits", self.deficits, dtype=np.float64)
            object.__setattr__(self, "deficits", frozen(deficits))


def damage_candidates(model) -> np.ndarray:
    """(n_nodes,) bool: the nodes of a circuit model (a planted circuit's or a transformer's) that
    a damaged twin may damage and over which localisation is scored: the live nodes (see
    ``NodeParameters.live``) between the inputs and the outputs (a block's neurons; a
    transformer's heads and MLPs)."""
    layers = model.graph.layers
    live = np.zeros(layers.size, bool)
    for node, parts in model.node_parameters().items():
        live[node] = parts.live(model.params)
    return live & (layers > 0) & (layers < layers.max())
