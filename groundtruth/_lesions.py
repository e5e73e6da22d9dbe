"""The record of a lesion census: what removing each component (and each pair) of a network costs
every task, measured exactly by intervention, and the label that follows from it."""

from __future__ import annotations

import dataclasses

import numpy as np

from planted.groundtruth._arrays import check_finite, frozen

LESION_LABELS = ("lethal", "task-specific", "partial", "redundant", "silent")
SILENT_DEFICIT = 0.01  # a deficit below this (fewer than 1 in 100 inputs answered differently) is none
LETHAL_DEFICIT = 0.1  # a deficit of at least this (1 in 10 inputs wrong) is lethal for the task


@dataclasses.dataclass(frozen=True, eq=False)
class LesionCensus:
    """Every single lesion (and every pair of node lesions) of a network, with its exact cost.

    A deficit is the drop in a task's accuracy (the fraction of its inputs answered right),
    intact minus lesioned, over the task's inputs; a lesion sets the component to 0 (``zero``),
    to its mean over the task's inputs (``mean``) or to its value on another of them
    (``resample``).

    Attributes
    ----------
    kinds : tuple[str, ...]
        The ablations measured.
    task_names : tuple[str, ...]
    nodes : (n_lesioned,) int64
        The nodes lesioned (every node but the outputs), in graph order.
    intact : (n_tasks,) float64
        Each task's accuracy with nothing lesioned.
    deficits : (n_kinds, n_lesioned, n_tasks) float64
        The deficit of each node lesioned alone.
    edge_deficits : (n_kinds, n_edges, n_tasks) float64 or None
        The deficit of each edge of the component graph lesioned alone (its destination sees the
        ablated value of its source along that edge only); None when not measured.
    pair_deficits : (n_lesioned, n_lesioned, n_tasks) float64 or None
        Under ``label_kind``, the deficit of each pair of nodes lesioned together (the diagonal:
        alone); None when not measured.
    label_kind : str
        The ablation the labels come from.
    labels : tuple[str, ...]
        Per lesioned node, one of ``LESION_LABELS``: ``lethal`` (a deficit of at least
        ``LETHAL_DEFICIT`` on every task), ``task-specific`` (lethal on some task, none on
        another), ``partial`` (any other deficit), ``redundant`` (none alone, but lethal on some
        task together with another node that is also silent alone: a backup) and ``silent``.
    """

    kinds: tuple[str, ...]
    task_names: tuple[str, ...]
    nodes: np.ndarray
    intact: np.ndarray
    deficits: np.ndarray
    label_kind: str
    labels: tuple[str, ...]
    edge_deficits: np.ndarray | None = None
    pair_deficits: np.ndarray | None = None

    def __post_init__(self) -> None:
        k, n, t = len(self.kinds), np.asarray(self.nodes).size, len(self.task_names)
        object.__setattr__(self, "nodes", frozen(np.asarray(self.nodes, np.int64)))
        for name, shape in (("intact", (t,)), ("deficits", (k, n, t)), ("pair_deficits", (n, n, t))):
            value = getattr(self, name)
            if value is None and name == "pair_deficits":
                continue
            value = np.asarray(value, np.float64)
            if value.shape != shape:
                raise ValueError(f"LesionCensus.{name} must have shape {shape}, got {value.shape}")
            check_finite(f"LesionCensus.{name}", value)
            object.__setattr__(self, name, frozen(value))
        if self.edge_deficits is not None:
            edges = np.asarray(self.edge_deficits, np.float64)
            if edges.ndim != 3 or edges.shape[0] != k or edges.shape[2] != t:
                raise ValueError(f"LesionCensus.edge_deficits must be ({k}, n_edges, {t}), got {edges.shape}")
            check_finite("LesionCensus.edge_deficits", edges)
            object.__setattr__(self, "edge_deficits", frozen(edges))
        if self.label_kind not in self.kinds:
            raise ValueError(f"label_kind must be one of the kinds measured {self.kinds}, got {self.label_kind!r}")
        labels = tuple(self.labels)
        if len(labels) != n or not set(labels) <= set(LESION_LABELS):
            raise ValueError(f"labels must be {n} of {LESION_LABELS}")
        object.__setattr__(self, "labels", labels)

    def deficit(self, kind: str) -> np.ndarray:
        """(n_lesioned, n_tasks): the single-node deficits under ``kind``."""
        return self.deficits[self.kinds.index(kind)]

    def counts(self) -> dict[str, int]:
        """How many nodes carry each label (the census histogram), in ``LESION_LABELS`` order."""
        return {label: self.labels.count(label) for label in LESION_LABELS}

    def interactions(self) -> np.ndarray | None:
        """(n_lesioned, n_lesioned, n_tasks): the pair deficit minus the two single deficits
        (positive: the pair costs more than its parts, as backups do; 0 on the diagonal)."""
        if self.pair_deficits is None:
            return None
        single = np.diagonal(self.pair_deficits, axis1=0, axis2=1).T  # (n, t)
        out = self.pair_deficits - single[:, None, :] - single[None, :, :]
        idx = np.arange(single.shape[0])
        out[idx, idx] = 0.0
        return out


def lesion_labels(single: np.ndarray, pairs: np.ndarray | None) -> tuple[str, ...]:
    """The label of each node from its single deficits (n, n_tasks) and, for the backups, the pair
    deficits (n, n, n_tasks) (None: no node is found redundant). See ``LesionCensus.labels``."""
    single = np.asarray(single, np.float64)
    none = single < SILENT_DEFICIT
    lethal = single >= LETHAL_DEFICIT
    silent_alone = none.all(axis=1)
    backup = np.zeros(single.shape[0], bool)
    if pairs is not None:
        pair_lethal = (np.asarray(pairs) >= LETHAL_DEFICIT).any(axis=2)
        np.fill_diagonal(pair_lethal, False)
        backup = silent_alone & (pair_lethal & silent_alone[None, :]).any(axis=1)
    labels = []
    for i in range(single.shape[0]):
        if lethal[i].all():
            labels.append("lethal")
        elif lethal[i].any() and none[i].any():
            labels.append("task-specific")
        elif not silent_alone[i]:
            labels.append("partial")
        else:
            labels.append("redundant" if backup[i] else "silent")
    return tuple(labels)


@dataclasses.dataclass(frozen=True, eq=False)
class ConnectomeLesions:
    """Groups of neurons of a synthetic connectome lesioned (every synapse in and out removed) and
    the network simulated again with the same drive and noise: how the activity of the spared
    neurons changed.

    Attributes
    ----------
    names : tuple[str, ...]
        The groups: ``hubs``, ``non-hubs`` (as many non-hubs drawn at random), ``module <k>``, or a
        caller's.
    members : tuple of (size,) int64 arrays
        The neurons of each group.
    rates : (n,) float64
        Each neuron's firing rate (Hz) in the intact network.
    lesioned_rates : (n_groups, n) float64
        The same after each group's lesion (0 for the lesioned neurons).
    bursts : float
        Network bursts per second intact (the ChaLearn definition, ``toys.network_bursts``).
    lesioned_bursts : (n_groups,) float64
    """

    names: tuple[str, ...]
    members: tuple[np.ndarray, ...]
    rates: np.ndarray
    lesioned_rates: np.ndarray
    bursts: float
    lesioned_bursts: np.ndarray

    def __post_init__(self) -> None:
        k = len(self.names)
        if len(self.members) != k:
            raise ValueError(f"members must hold one array per group ({k}), got {len(self.members)}")
        object.__setattr__(self, "members", tuple(frozen(np.asarray(m, np.int64)) for m in self.members))
        rates = frozen(np.asarray(self.rates, np.float64))
        after = frozen(np.asarray(self.lesioned_rates, np.float64))
        if after.shape != (k, rates.size):
            raise ValueError(f"lesioned_rates must be ({k}, {rates.size}), got {after.shape}")
        object.__setattr__(self, "rates", rates)
        object.__setattr__(self, "lesioned_rates", after)
        object.__setattr__(self, "lesioned_bursts", frozen(np.asarray(self.lesioned_bursts, np.float64)))

    def rate_change(self) -> np.ndarray:
        """(n_groups,) the relative change of the spared neurons' mean rate after each lesion
        (-0.3: they fire 30% less)."""
        out = np.zeros(len(self.names))
        for g, members in enumerate(self.members):
            spared = np.ones(self.rates.size, bool)
            spared[members] = False
            before = self.rates[spared].mean()
            out[g] = self.lesioned_rates[g, spared].mean() / before - 1.0 if before > 0 else 0.0
        return out
