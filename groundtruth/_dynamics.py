"""Training records and formation times: the snapshots of a learned embedding
(``TrainingDynamics``), when each planted component formed, read exactly off them, and what a
dynamics method predicts."""

from __future__ import annotations

import dataclasses

import numpy as np

from planted.groundtruth._arrays import check_finite, frozen
from planted.groundtruth._geometry import GEOMETRY_JUMP, REPRESENTED_NORM, dimensionality

FORMATION_TOLERANCE = 0.1  # a feature has formed once its norm stays within 10% of its final norm


@dataclasses.dataclass(frozen=True, eq=False)
class TrainingDynamics:
    """Snapshots of a learned embedding during training, and the events they contain.

    Attributes
    ----------
    steps : (n_snapshots,) int64
        The optimiser step after which each snapshot was taken, increasing; 0 is the initialisation.
    weights : (n_snapshots, n_hidden, n_features) float32
        W at each snapshot.
    biases : (n_snapshots, n_features) float32
        The output bias at each snapshot.
    losses : (n_snapshots,) float32 or None
        The loss at each snapshot on the evaluation batch the final loss is measured on (the
        loss curve a researcher watches); None in records made before it was kept.

    The derived truth (``norms``, ``dimensionality``, ``represented_step``, ``geometry_changes``)
    is computed from the snapshots, so a loaded record can never disagree with its weights.
    """

    steps: np.ndarray
    weights: np.ndarray
    biases: np.ndarray
    losses: np.ndarray | None = None

    def __post_init__(self) -> None:
        steps = np.asarray(self.steps)
        if steps.ndim != 1 or steps.size == 0 or not np.issubdtype(steps.dtype, np.integer):
            raise ValueError(f"dynamics.steps must be a non-empty 1-D integer array, got {steps.dtype} {steps.shape}")
        if (np.diff(steps) <= 0).any() or steps[0] < 0:
            raise ValueError("dynamics.steps must be non-negative and strictly increasing")
        weights = np.asarray(self.weights, np.float32)
        if weights.ndim != 3 or weights.shape[0] != steps.size:
            raise ValueError(f"dynamics.weights must have shape ({steps.size}, n_hidden, n_features), got {weights.shape}")
        biases = np.asarray(self.biases, np.float32)
        if biases.shape != (steps.size, weights.shape[2]):
            raise ValueError(f"dynamics.biases must have shape ({steps.size}, {weights.shape[2]}), got {biases.shape}")
        if not (np.isfinite(weights).all() and np.isfinite(biases).all()):
            raise ValueError("dynamics.weights and dynamics.biases must be finite")
        object.__setattr__(self, "steps", steps.astype(np.int64))
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "biases", biases)
        if self.losses is not None:
            losses = np.asarray(self.losses, np.float32)
            if losses.shape != steps.shape or not np.isfinite(losses).all():
                raise ValueError(f"dynamics.losses must be {steps.size} finite values, got {losses.dtype} {losses.shape}")
            object.__setattr__(self, "losses", losses)

    @property
    def norms(self) -> np.ndarray:
        """(n_snapshots, n_features): each feature's embedding length at each snapshot."""
        return np.linalg.norm(self.weights, axis=1)

    @property
    def dimensionality(self) -> np.ndarray:
        """(n_snapshots, n_features): each feature's dimensionality D_i at each snapshot."""
        return dimensionality(self.weights)

    @property
    def represented_step(self) -> np.ndarray:
        """(n_features,) int64: the first snapshot step from which the feature stays represented
        (norm > 0.5) to the end of training; -1 for features not represented at the end."""
        above = self.norms > REPRESENTED_NORM
        # Snapshots from the last one back, while the feature is still above the threshold.
        staying = np.flip(np.cumprod(np.flip(above, axis=0), axis=0), axis=0).astype(bool)
        first = np.argmax(staying, axis=0)
        return np.where(above[-1], self.steps[first], -1)

    @property
    def geometry_changes(self) -> np.ndarray:
        """Steps at which the geometry changes: the set of represented features changes, or some
        feature's dimensionality moves by more than 0.1, since the previous snapshot. A run of
        consecutive changing snapshots is one change, reported at its first step."""
        above = self.norms > REPRESENTED_NORM
        dims = self.dimensionality
        changed = (above[1:] != above[:-1]).any(axis=1) | (np.abs(dims[1:] - dims[:-1]) > GEOMETRY_JUMP).any(axis=1)
        starts = changed & ~np.concatenate([[False], changed[:-1]])
        return self.steps[1:][starts]


def formation_steps(dynamics, tolerance: float = FORMATION_TOLERANCE) -> np.ndarray:
    """(n_features,) int64: the step at which each feature of a toy model of superposition formed,
    the first snapshot from which its embedding length stays within ``tolerance`` of its final
    length to the end of training; -1 for features not represented at the end (final length at
    most ``REPRESENTED_NORM``). ``dynamics`` is a ``TrainingDynamics``."""
    norms = dynamics.norms
    final = norms[-1]
    settled = np.abs(norms - final) <= tolerance * final
    return np.where(final > REPRESENTED_NORM, settled_steps(settled, dynamics.steps), -1).astype(np.int64)


GATE_ACCURACY = 0.99  # a gate has formed once its variable is right on this fraction of inputs from then on


def settled_steps(ok: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Per column of ``ok`` (n_snapshots, k) bool: the step of the first snapshot from which it
    stays True to the end of the record, -1 when it is False at the end."""
    staying = np.flip(np.cumprod(np.flip(ok, axis=0), axis=0), axis=0).astype(bool)
    return np.where(ok[-1], steps[np.argmax(staying, axis=0)], -1).astype(np.int64)


@dataclasses.dataclass(frozen=True, eq=False)
class CircuitFormation:
    """The training record of a planted circuit learned by training (``planted_mlp(trained=True,
    snapshot_every=k)``, ``rasp_transformer(trained=True, snapshot_every=k)``): snapshots of the
    trained parameters and of how far each planted component has formed: a gate's truth table
    (planted MLPs), a head's attention on its intended keys (transformers).

    Attributes
    ----------
    steps : (n_snapshots,) int64
        The optimiser steps of the snapshots, increasing from 0 (the initialisation).
    losses : (n_snapshots,) float32
        The training loss at each snapshot: a planted circuit's mean squared output error there; a
        transformer's interchange loss, the first step's and then the mean over the steps since
        the previous snapshot.
    parameters : (n_snapshots, n_parameters, n_nodes) float32
        Each node's trainable parameters at each snapshot (a neuron's read coefficients, its
        bias and its write gain; zeros for the nodes training does not touch: inputs,
        distractors, outputs), or their norms (a transformer component's: the norms of its
        query, key, value and output weights, or of an MLP's input and output weights).
    gates : tuple[str, ...]
        Each trained gate's formula (its subformula of a task's formula), or each head's label.
    gate_accuracy : (n_snapshots, n_gates) float64
        The fraction of the training inputs on which the gate's variable (what its neurons write
        into its residual direction) is right when read with its final code: the polarity and
        threshold that separate its true and false inputs at the last snapshot (a trained gate
        may carry its truth table either way round, at any scale; what forms is that code); for
        a head, the fraction of its attention on the keys its compiled twin attends to.
    gate_nodes : (n_gates, n_nodes) bool
        The neurons computing each gate in the built toy (neurons pruned after the first fit are
        left out), or the node of each head.
    threshold : float
        The level from which a component has formed: ``GATE_ACCURACY`` (0.99) for gates, 0.9
        for heads.

    ``gate_steps()`` and ``node_steps()`` read the formation of each gate and node off the record.
    """

    steps: np.ndarray
    losses: np.ndarray
    parameters: np.ndarray
    gates: tuple[str, ...]
    gate_accuracy: np.ndarray
    gate_nodes: np.ndarray
    threshold: float = GATE_ACCURACY

    def __post_init__(self) -> None:
        steps = np.asarray(self.steps)
        if steps.ndim != 1 or steps.size < 2 or not np.issubdtype(steps.dtype, np.integer) or steps[0] != 0 \
                or (np.diff(steps) <= 0).any():
            raise ValueError(f"CircuitFormation.steps must be increasing integer steps from 0, got {steps.dtype} {steps.shape}")
        n, g = steps.size, len(self.gates)
        parameters = np.asarray(self.parameters, np.float32)
        if parameters.ndim != 3 or parameters.shape[0] != n:
            raise ValueError(f"CircuitFormation.parameters must be ({n}, n_parameters, n_nodes), got {parameters.shape}")
        nodes = np.asarray(self.gate_nodes)
        if nodes.dtype != bool or nodes.shape != (g, parameters.shape[2]):
            raise ValueError(f"CircuitFormation.gate_nodes must be bool ({g}, {parameters.shape[2]}), got {nodes.dtype} {nodes.shape}")
        accuracy = np.asarray(self.gate_accuracy, np.float64)
        losses = np.asarray(self.losses, np.float32)
        if accuracy.shape != (n, g) or losses.shape != (n,):
            raise ValueError(f"CircuitFormation.gate_accuracy must be ({n}, {g}) and losses ({n},)")
        for name, value in (("parameters", parameters), ("gate_accuracy", accuracy), ("losses", losses)):
            check_finite(f"CircuitFormation.{name}", value)
        for name, value in (("steps", steps.astype(np.int64)), ("losses", losses), ("parameters", parameters),
                            ("gate_accuracy", accuracy), ("gate_nodes", nodes)):
            object.__setattr__(self, name, frozen(value))
        object.__setattr__(self, "gates", tuple(str(x) for x in self.gates))
        if not 0 < float(self.threshold) <= 1:
            raise ValueError(f"CircuitFormation.threshold must be in (0, 1], got {self.threshold!r}")
        object.__setattr__(self, "threshold", float(self.threshold))

    def gate_steps(self, threshold: float | None = None) -> np.ndarray:
        """(n_gates,) int64: the first snapshot step from which each component's measure stays at
        least ``threshold`` (default: the record's); -1 when it is not at the end."""
        return settled_steps(self.gate_accuracy >= (self.threshold if threshold is None else threshold), self.steps)

    def to_arrays(self, prefix: str = "formation.") -> tuple[dict[str, np.ndarray], dict]:
        """The record as named arrays and JSON extras (``from_arrays`` reads them back)."""
        arrays = {f"{prefix}{name}": getattr(self, name) for name in ("steps", "losses", "parameters", "gate_accuracy",
                                                                       "gate_nodes")}
        return arrays, {"formation_gates": list(self.gates), "formation_threshold": self.threshold}

    @classmethod
    def from_arrays(cls, arrays: dict, extra: dict, prefix: str = "formation.") -> CircuitFormation | None:
        """The record ``to_arrays`` wrote, or None when there is none."""
        if "formation_gates" not in extra:
            return None
        return cls(**{name: arrays[f"{prefix}{name}"] for name in ("steps", "losses", "parameters", "gate_accuracy",
                                                                    "gate_nodes")},
                   gates=tuple(extra["formation_gates"]), threshold=extra.get("formation_threshold", GATE_ACCURACY))

    def node_steps(self, threshold: float | None = None) -> np.ndarray:
        """(n_nodes,) int64: each neuron's formation, its gate's (the latest of them, should one
        neuron serve several); -1 for the nodes of no trained gate."""
        gate = self.gate_steps(threshold)
        never = np.where(gate < 0, np.iinfo(np.int64).max, gate)
        out = np.where(self.gate_nodes, never[:, None], -2).max(axis=0)
        return np.where((out == np.iinfo(np.int64).max) | (out == -2), -1, out).astype(np.int64)


@dataclasses.dataclass(frozen=True, eq=False)
class Formation:
    """A dynamics method's prediction from a training record.

    Attributes
    ----------
    steps : (n_features,) int64 or None
        The step at which each feature formed; -1: never. None when the method dates no feature.
    events : (k,) int64 or None
        Steps at which the method sees something form (a change point of the loss, say); None:
        the distinct ``steps``. Step 0 (the initialisation) is never an event.
    """

    steps: np.ndarray | None = None
    events: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.steps is None and self.events is None:
            raise ValueError("a Formation needs steps, events or both")
        for name in ("steps", "events"):
            value = getattr(self, name)
            if value is None:
                continue
            array = np.asarray(value)
            if array.ndim != 1 or not (np.issubdtype(array.dtype, np.integer) or
                                       (np.issubdtype(array.dtype, np.floating) and np.isfinite(array).all()
                                        and (array == np.round(array)).all())):
                raise ValueError(f"Formation.{name} must be a 1-D array of integer steps, got {array.dtype} {array.shape}")
            array = array.astype(np.int64)
            if (array < -1).any() or (name == "events" and (array < 0).any()):
                raise ValueError(f"Formation.{name} must be steps >= 0" + (" (or -1: never)" if name == "steps" else ""))
            object.__setattr__(self, name, frozen(np.unique(array) if name == "events" else array))

    @property
    def event_steps(self) -> np.ndarray:
        """The events after the initialisation (step 0 is no event): as given, or the distinct
        steps at which a feature formed."""
        events = self.events if self.events is not None else np.unique(self.steps)
        return events[events > 0]
