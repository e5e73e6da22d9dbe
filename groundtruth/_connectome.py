"""Records of a synthetic connectome: what an experimenter records, and what was planted."""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp

from planted.groundtruth._arrays import as_matrix, as_vector, check_finite, frozen
from planted.groundtruth._config import Problems

RECORDING_KINDS = ("calcium", "spikes")


@dataclasses.dataclass(frozen=True, eq=False)
class Recording:
    """What an experimenter records and a connectome method sees; never the wiring.

    Attributes
    ----------
    traces : (n_frames, n_observed) float32
        Fluorescence (``kind="calcium"``) or spike counts per frame (``kind="spikes"``) of each
        recorded neuron.
    frame_rate : float
        Frames per second.
    kind : {"calcium", "spikes"}
    positions : (n_observed, dim) float or None
        Where each recorded neuron is (mm), as an experimenter who images them would know; None
        when the network has no geometry.
    """

    traces: np.ndarray
    frame_rate: float
    kind: str
    positions: np.ndarray | None = None

    def __post_init__(self) -> None:
        traces = np.asarray(self.traces, np.float32)
        if traces.ndim != 2 or traces.shape[1] < 1:
            raise ValueError(f"traces must be (n_frames, n_observed), got shape {traces.shape}")
        check_finite("traces", traces)
        object.__setattr__(self, "traces", traces)
        p = Problems()
        p.number("frame_rate", self.frame_rate, low=0, low_open=True)  # frames per second
        p.choice("kind", self.kind, RECORDING_KINDS)
        positions = None if self.positions is None else np.asarray(self.positions, np.float64)
        if positions is not None and (positions.ndim != 2 or positions.shape[0] != traces.shape[1]):
            p.add(f"positions must be (n_observed={traces.shape[1]}, dim), got {positions.shape}")
        p.raise_if_any("Recording")
        if positions is not None:
            object.__setattr__(self, "positions", positions)

    @property
    def n_observed(self) -> int:
        return self.traces.shape[1]


@dataclasses.dataclass(frozen=True, eq=False)
class ConnectomeTruth:
    """What a synthetic connectome planted.

    Attributes
    ----------
    weights : (n, n) scipy.sparse.csr_matrix float32
        ``weights[pre, post]``: the synaptic weight from neuron ``pre`` onto ``post`` (mV of
        postsynaptic current jump for the LIF network), negative for inhibitory neurons (Dale's
        law). The diagonal is empty.
    cell_types : (n,) int8
        +1 excitatory, -1 inhibitory.
    positions : (n, dim) float
        Positions in mm (dim 0 when the wiring ignores space).
    modules : (n,) int64
        The planted module (block) of each neuron.
    hubs : (n,) bool
        Planted hubs (raised degree; the rich club when one is planted).
    tuning : (n, n_features) float
        How strongly each stimulus feature drives each neuron (mixed selectivity: several
        nonzero entries per row).
    stimulus : (n_frames, n_features) float
        Each stimulus feature's time course, sampled at the recording's frames.
    spike_times : (n_spikes,) float64 and spike_neurons : (n_spikes,) int32
        Every spike of every neuron (seconds), ordered by time.
    observed : (n_observed,) int64
        Which neurons the recording holds, in the recording's column order.
    duration : float
        Seconds simulated (and recorded).
    """

    weights: sp.csr_matrix
    cell_types: np.ndarray
    positions: np.ndarray
    modules: np.ndarray
    hubs: np.ndarray
    tuning: np.ndarray
    stimulus: np.ndarray
    spike_times: np.ndarray
    spike_neurons: np.ndarray
    observed: np.ndarray
    duration: float

    def __post_init__(self) -> None:
        w = self.weights
        if not sp.issparse(w) or w.ndim != 2 or w.shape[0] != w.shape[1]:
            raise ValueError(f"weights must be a square scipy.sparse matrix, got {type(w).__name__}")
        w = sp.csr_matrix(w, dtype=np.float32)
        w.sort_indices()
        check_finite("weights", w.data)
        n = w.shape[0]
        object.__setattr__(self, "weights", w)
        types = np.asarray(self.cell_types, np.int8)
        if types.shape != (n,) or not np.isin(types, (-1, 1)).all():
            raise ValueError(f"cell_types must be ({n},) values in {{+1, -1}}")
        object.__setattr__(self, "cell_types", types)
        positions = np.asarray(self.positions, np.float64).reshape(n, -1)
        check_finite("positions", positions)
        object.__setattr__(self, "positions", positions)
        modules = np.asarray(self.modules, np.int64)
        if modules.shape != (n,) or (modules < 0).any():
            raise ValueError(f"modules must be ({n},) non-negative labels")
        object.__setattr__(self, "modules", modules)
        hubs = np.asarray(self.hubs)
        if hubs.shape != (n,) or hubs.dtype != bool:
            raise ValueError(f"hubs must be a ({n},) bool array")
        tuning = np.asarray(self.tuning, np.float64)
        if tuning.ndim != 2 or tuning.shape[0] != n:
            raise ValueError(f"tuning must be ({n}, n_features), got {tuning.shape}")
        check_finite("tuning", tuning)
        object.__setattr__(self, "tuning", tuning)
        stimulus = np.asarray(self.stimulus, np.float64)
        if stimulus.ndim != 2 or stimulus.shape[1] != tuning.shape[1]:
            raise ValueError(f"stimulus must be (n_frames, n_features={tuning.shape[1]}), got {stimulus.shape}")
        check_finite("stimulus", stimulus)
        object.__setattr__(self, "stimulus", stimulus)
        times = np.asarray(self.spike_times, np.float64)
        neurons = np.asarray(self.spike_neurons, np.int32)
        if times.ndim != 1 or neurons.shape != times.shape:
            raise ValueError("spike_times and spike_neurons must be 1-D arrays of one length")
        if times.size and ((np.diff(times) < 0).any() or neurons.min() < 0 or neurons.max() >= n):
            raise ValueError(f"spikes must be ordered by time, with neurons in [0, {n})")
        object.__setattr__(self, "spike_times", times)
        object.__setattr__(self, "spike_neurons", neurons)
        observed = np.asarray(self.observed, np.int64)
        if observed.ndim != 1 or observed.size == 0 or observed.min() < 0 or observed.max() >= n or np.unique(observed).size != observed.size:
            raise ValueError(f"observed must be distinct neuron indices in [0, {n})")
        object.__setattr__(self, "observed", observed)
        p = Problems()
        p.number("duration", self.duration, low=0, low_open=True)  # seconds
        p.raise_if_any("ConnectomeTruth")

    @property
    def n_neurons(self) -> int:
        return self.weights.shape[0]

    def adjacency(self, observed: bool = True) -> np.ndarray:
        """Dense (m, m) float64 weights ``[pre, post]`` among the recorded neurons (in the
        recording's order), or among all neurons when ``observed`` is False."""
        w = self.weights[self.observed][:, self.observed] if observed else self.weights
        return np.asarray(w.toarray(), np.float64)

    def to_networkx(self, observed: bool = False):
        """The wiring as a ``networkx.DiGraph`` (edge ``weight`` [pre, post], signed), its nodes with
        ``module``, ``hub``, ``cell_type`` (+1 excitatory, -1 inhibitory), ``position`` and
        ``observed``; only the recorded neurons (in the recording's order, numbered 0..m-1 with
        their ``neuron`` index) when ``observed`` is True."""
        import networkx as nx

        recorded = np.zeros(self.n_neurons, bool)
        recorded[self.observed] = True
        keep = self.observed if observed else np.arange(self.n_neurons)
        w = self.weights[keep][:, keep].tocoo()
        g = nx.DiGraph()
        g.add_nodes_from((i, {"neuron": int(n), "module": int(self.modules[n]), "hub": bool(self.hubs[n]),
                              "cell_type": int(self.cell_types[n]), "position": tuple(self.positions[n].tolist()),
                              "observed": bool(recorded[n])}) for i, n in enumerate(keep))
        g.add_weighted_edges_from(zip(w.row.tolist(), w.col.tolist(), w.data.astype(float).tolist()))
        return g

    def rates(self) -> np.ndarray:
        """(n,) mean firing rate of each neuron (Hz) over the simulation."""
        return np.bincount(self.spike_neurons, minlength=self.n_neurons) / self.duration


@dataclasses.dataclass(frozen=True, eq=False)
class EdgeScores:
    """A connectivity method's prediction: a score per ordered pair of recorded neurons.

    Attributes
    ----------
    scores : (n_observed, n_observed) float64
        ``scores[pre, post]``: higher means a synapse pre -> post is more likely. The diagonal is
        ignored by the scores. Finite.
    """

    scores: np.ndarray

    def __post_init__(self) -> None:
        scores = frozen(as_matrix("EdgeScores.scores", self.scores, dtype=np.float64))
        if scores.shape[0] != scores.shape[1]:
            raise ValueError(f"EdgeScores.scores must be square (n_observed, n_observed), got shape {scores.shape}")
        object.__setattr__(self, "scores", scores)


@dataclasses.dataclass(frozen=True, eq=False)
class Partition:
    """A community method's prediction: a module label per recorded neuron.

    Attributes
    ----------
    labels : (n_observed,) int64
        Any integers; only which neurons share a label matters.
    """

    labels: np.ndarray

    def __post_init__(self) -> None:
        raw = np.asarray(self.labels)
        if raw.dtype.kind not in "iub":
            if raw.dtype.kind != "f" or not np.all(np.isfinite(raw)) or not np.all(raw == np.round(raw)):
                raise ValueError(f"Partition.labels must be integers, got dtype {raw.dtype}")
        object.__setattr__(self, "labels", frozen(as_vector("Partition.labels", raw, dtype=np.int64)))


@dataclasses.dataclass(frozen=True, eq=False)
class NodeScores:
    """A centrality method's prediction: a value per recorded neuron (higher: more hub-like).

    Attributes
    ----------
    values : (n_observed,) float64
        Finite.
    """

    values: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", frozen(as_vector("NodeScores.values", self.values, dtype=np.float64)))
