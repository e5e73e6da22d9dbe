"""Records of planted circuits: the component graph, what each task's circuit is, and method scores."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import numpy as np

from planted.groundtruth._arrays import check_finite


@dataclasses.dataclass(frozen=True, eq=False)
class ComponentGraph:
    """The components of a layered network and every edge a computation can flow along.

    Nodes are ordered by layer: inputs (layer 0), the neurons of block 1 .. L, then the outputs
    (layer L + 1). Every node of a layer reads every node of all earlier layers (through the
    residual stream), so the edges are all pairs ``(src, dst)`` with ``layers[src] < layers[dst]``.
    They are numbered canonically: by destination, then by source; ``edges()`` lists them and
    ``edge_index(src, dst)`` finds them, without storing the (possibly 10^6) pairs.

    Attributes
    ----------
    labels : tuple[str, ...]
        A deterministic name per node: ``"in03"``, ``"b2.n017"`` (block 2, neuron 17), ``"out1"``.
    layers : (n_nodes,) int64
        Non-decreasing layer of each node.
    """

    labels: tuple[str, ...]
    layers: np.ndarray

    def __post_init__(self) -> None:
        layers = np.asarray(self.layers)
        if layers.ndim != 1 or not np.issubdtype(layers.dtype, np.integer) or layers.size == 0:
            raise ValueError(f"layers must be a non-empty 1-D integer array, got {layers.dtype} {layers.shape}")
        if (np.diff(layers) < 0).any() or layers[0] != 0:
            raise ValueError("layers must start at 0 (the inputs) and never decrease")
        labels = tuple(str(v) for v in self.labels)
        if len(labels) != layers.size or len(set(labels)) != len(labels):
            raise ValueError(f"labels must be {layers.size} distinct names, got {len(labels)} ({len(set(labels))} distinct)")
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "layers", layers.astype(np.int64))
        # Edges into node d come from nodes 0 .. start[layer d] - 1.
        starts = np.searchsorted(self.layers, np.arange(self.layers.max() + 2))
        sources = np.where(self.layers > 0, starts[self.layers], 0)
        object.__setattr__(self, "_sources", sources)
        object.__setattr__(self, "_offsets", np.concatenate([[0], np.cumsum(sources)]))

    @property
    def n_nodes(self) -> int:
        return self.layers.size

    @property
    def n_edges(self) -> int:
        return int(self._offsets[-1])

    def layer_slice(self, layer: int) -> slice:
        idx = np.flatnonzero(self.layers == layer)
        return slice(int(idx[0]), int(idx[-1]) + 1) if idx.size else slice(0, 0)

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """All edges as (src, dst) int64 arrays in canonical order."""
        dst = np.repeat(np.arange(self.n_nodes), self._sources)
        src = np.arange(self.n_edges) - self._offsets[dst]
        return src, dst

    def edge_index(self, src, dst) -> np.ndarray:
        """Canonical indices of edges (src, dst); ``ValueError`` if a pair is not an edge."""
        src, dst = np.asarray(src, np.int64), np.asarray(dst, np.int64)
        bad = (dst < 0) | (dst >= self.n_nodes) | (src < 0)
        bad |= np.where(bad, True, src >= self._sources[np.clip(dst, 0, self.n_nodes - 1)])
        if bad.any():
            i = int(np.flatnonzero(np.atleast_1d(bad))[0])
            raise ValueError(f"({np.atleast_1d(src)[i]}, {np.atleast_1d(dst)[i]}) is not an edge: a source must be in an earlier layer")
        return self._offsets[dst] + src

    def to_networkx(self, **edge_values: np.ndarray):
        """The graph as a ``networkx.DiGraph``: nodes 0..n_nodes-1 with ``label`` and ``layer``, every
        edge (src, dst) in canonical order with its ``index``, and each array of ``edge_values``
        (n_edges,) as an edge attribute of that name (say ``score=`` a method's edge scores, or
        ``circuit=truth.edge_mask(t)``)."""
        import networkx as nx

        src, dst = self.edges()
        values = {}
        for name, v in edge_values.items():
            v = np.asarray(v)
            if v.shape != (self.n_edges,):
                raise ValueError(f"edge values {name!r} must have shape ({self.n_edges},), got {v.shape}")
            values[name] = v.tolist()
        g = nx.DiGraph()
        g.add_nodes_from((i, {"label": label, "layer": int(layer)}) for i, (label, layer) in enumerate(zip(self.labels, self.layers)))
        g.add_edges_from((int(s), int(d), {"index": i, **{name: v[i] for name, v in values.items()}})
                         for i, (s, d) in enumerate(zip(src, dst)))
        return g

    def dense(self, values: np.ndarray) -> np.ndarray:
        """An (n_nodes, n_nodes) matrix with ``values`` (one per edge) at [src, dst], 0 elsewhere."""
        out = np.zeros((self.n_nodes, self.n_nodes), np.float64)
        src, dst = self.edges()
        out[src, dst] = values
        return out


class Patch(NamedTuple):
    """Interventions for ``CircuitModel.run``; every field is optional (None: no intervention).

    node_mask : (n_nodes,) 0/1 -- nodes whose activation is replaced by ``node_values``
    node_values : (batch, n_nodes) or (n_nodes,)
    edge_mask : (n_nodes, n_nodes) 0/1 -- edges [src, dst] along which dst sees ``edge_source[src]``
        instead of src's activation in this run
    edge_source : (batch, n_nodes) or (n_nodes,) -- what patched edges carry (e.g. the corrupted
        run's activations, or their mean for mean ablation)
    node_delta : (batch, n_nodes) -- added to activations (zero, to take gradients with respect to them)
    pre_delta : (batch, n_nodes) -- added to each node's input (pre-activation) likewise
    resid_mask : (n_blocks + 1,) 0/1 -- residual positions (after the embedding, after block l)
        replaced by ``resid_values`` (batch, n_blocks + 1, d_model)
    """

    node_mask: Any = None
    node_values: Any = None
    edge_mask: Any = None
    edge_source: Any = None
    node_delta: Any = None
    pre_delta: Any = None
    resid_mask: Any = None
    resid_values: Any = None


ABLATIONS = ("zero", "mean", "resample")
"""What a lesion sets a component to: 0, its mean over the inputs, or its value on another input
(a circuit model's ``ablated``)."""


def ablation_values(activations: np.ndarray, kind: str, *, seed: int = 0) -> np.ndarray:
    """What an ablation sets each node to, from the nodes' activations on the inputs (batch first):
    their mean over the inputs (``mean``; the batch axis dropped) or their values on another input
    (``resample``: a permutation drawn from ``seed``). A circuit model's ``ablated`` (which gives
    ``zero`` itself, without a run) and the methods that already hold a clean run share it."""
    if kind not in ABLATIONS:
        raise ValueError(f"kind must be one of {', '.join(repr(k) for k in ABLATIONS)}, got {kind!r}")
    if kind == "zero":
        return np.zeros(activations.shape[1:], np.float32)
    if kind == "mean":
        return activations.mean(axis=0)
    return activations[np.random.default_rng([seed, 17]).permutation(activations.shape[0])]


class NodeParameters(NamedTuple):
    """The parameters of one node of a circuit model, each ``(name, index)``: ``params[name][index]``.

    inputs : the weights it reads the residual stream with (the residual dimension first)
    bias : its biases
    out : the weights it writes with (the residual dimension last)

    A circuit model's ``node_parameters()`` maps each node to them: what damage to the node
    changes, and what a comparison of two networks' weights reads per node.
    """

    inputs: tuple = ()
    bias: tuple = ()
    out: tuple = ()

    def live(self, params: dict) -> bool:
        """Whether the node exists in ``params``: some input weight nonzero (where it has input
        weights) and some output weight nonzero (where it has output weights). A compiled
        transformer's unused heads and empty MLPs are not live."""
        return all(not names or any(np.any(params[name][index]) for name, index in names)
                   for names in (self.inputs, self.out))


@dataclasses.dataclass(frozen=True, eq=False)
class ComponentScores:
    """A circuit method's prediction: a score per node and/or per edge (higher: more important).

    ``nodes`` (n_nodes,) and ``edges`` (n_edges, in ``ComponentGraph`` order) are float64; NaN
    marks components the method does not score (input attributions score only the inputs). At
    least one of them is given. Signs are kept; evaluators rank by absolute value.
    """

    nodes: np.ndarray | None = None
    edges: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.nodes is None and self.edges is None:
            raise ValueError("ComponentScores needs node scores, edge scores or both")
        for name in ("nodes", "edges"):
            value = getattr(self, name)
            if value is None:
                continue
            array = np.asarray(value, np.float64)
            if array.ndim != 1:
                raise ValueError(f"{name} scores must be 1-D, got shape {array.shape}")
            if np.isinf(array).any():
                raise ValueError(f"{name} scores must not be infinite")
            if np.isnan(array).all():
                raise ValueError(f"{name} scores are all NaN: no component is scored")
            object.__setattr__(self, name, array)


@dataclasses.dataclass(frozen=True, eq=False)
class CircuitPrediction:
    """A circuit method's output for every task of a toy: one ``ComponentScores`` per task."""

    scores: tuple

    def __post_init__(self) -> None:
        scores = tuple(self.scores)
        if not scores or not all(isinstance(s, ComponentScores) for s in scores):
            raise ValueError("CircuitPrediction needs one ComponentScores per task")
        object.__setattr__(self, "scores", scores)


@dataclasses.dataclass(frozen=True, eq=False)
class CircuitTruth:
    """What a circuit toy planted, per task.

    Attributes
    ----------
    graph : ComponentGraph
    task_names : tuple[str, ...]
    formulas : tuple[str, ...]
        Each task's boolean formula over the inputs, e.g. ``"and(in02, or(in05, in07))"``.
    nodes : (n_tasks, n_nodes) bool
        The circuit's nodes: the inputs the formula depends on, the neurons that compute its gates,
        and the task's output.
    edges : tuple of (k_t,) int64 arrays
        The circuit's edges (canonical indices, sorted): the compiled connections between its nodes.
    node_effects : (n_tasks, n_nodes) float
        Each node's true effect: the drop of the task metric, as a fraction of the clean-corrupted
        gap, when that node alone is patched to its corrupted-run activation (exact intervention).
    edge_effects : tuple of (k_t,) float arrays
        The same for each circuit edge, patched alone.
    relevant_inputs : (n_tasks, n_inputs) bool
        The inputs each formula really depends on (flipping one changes the output somewhere).
    redundant : (n_tasks, n_nodes) bool
        Circuit nodes that are not individually necessary by construction (a redundant copy).
    catalog : dict[str, (n_nodes,) bool]
        For each failure mode planted (named by the toy family's catalog, e.g. ``toys.FAILURE_MODES``),
        the nodes it involves.
    modules : (n_nodes,) int64
        The planted module of each node: the task whose circuit holds it when exactly one does,
        -1 otherwise (inputs, shared and distractor neurons, outputs of no task).
    formation : CircuitFormation or None
        For a circuit learned by training with snapshots: the training record and each gate's
        truth table through it (``groundtruth.CircuitFormation``); None otherwise.
    """

    graph: ComponentGraph
    task_names: tuple[str, ...]
    formulas: tuple[str, ...]
    nodes: np.ndarray
    edges: tuple[np.ndarray, ...]
    node_effects: np.ndarray
    edge_effects: tuple[np.ndarray, ...]
    relevant_inputs: np.ndarray
    redundant: np.ndarray
    catalog: dict
    modules: np.ndarray
    formation: Any = None

    def __post_init__(self) -> None:
        n_tasks, n = len(self.task_names), self.graph.n_nodes
        if self.formation is not None and self.formation.gate_nodes.shape[1] != n:
            raise ValueError(f"formation must record the graph's {n} nodes, got {self.formation.gate_nodes.shape[1]}")
        if len(self.formulas) != n_tasks:
            raise ValueError(f"formulas must have one entry per task ({n_tasks}), got {len(self.formulas)}")
        for name in ("nodes", "redundant"):
            value = np.asarray(getattr(self, name))
            if value.shape != (n_tasks, n) or value.dtype != bool:
                raise ValueError(f"{name} must be a bool array of shape ({n_tasks}, {n}), got {value.dtype} {value.shape}")
            object.__setattr__(self, name, value)
        effects = np.asarray(self.node_effects, np.float64)
        check_finite("node_effects", effects)
        if effects.shape != (n_tasks, n):
            raise ValueError(f"node_effects must have shape ({n_tasks}, {n}), got {effects.shape}")
        object.__setattr__(self, "node_effects", effects)
        if len(self.edges) != n_tasks or len(self.edge_effects) != n_tasks:
            raise ValueError(f"edges and edge_effects must have one array per task ({n_tasks})")
        edges, edge_effects = [], []
        for t, (e, f) in enumerate(zip(self.edges, self.edge_effects)):
            e = np.asarray(e, np.int64)
            f = np.asarray(f, np.float64)
            check_finite(f"edge_effects[{t}]", f)
            if e.ndim != 1 or f.shape != e.shape or (e.size and (e.min() < 0 or e.max() >= self.graph.n_edges)):
                raise ValueError(f"edges[{t}] must be edge indices in [0, {self.graph.n_edges}) with one effect each")
            if (np.diff(e) <= 0).any():
                raise ValueError(f"edges[{t}] must be sorted and distinct")
            edges.append(e)
            edge_effects.append(f)
        object.__setattr__(self, "edges", tuple(edges))
        object.__setattr__(self, "edge_effects", tuple(edge_effects))
        n_inputs = int((self.graph.layers == 0).sum())
        relevant = np.asarray(self.relevant_inputs)
        if relevant.shape != (n_tasks, n_inputs) or relevant.dtype != bool:
            raise ValueError(f"relevant_inputs must be a bool array of shape ({n_tasks}, {n_inputs})")
        object.__setattr__(self, "relevant_inputs", relevant)
        catalog = {}
        for mode, mask in dict(self.catalog).items():
            if not isinstance(mode, str) or not mode:
                raise ValueError(f"catalog keys must be failure-mode names (non-empty strings), got {mode!r}")
            mask = np.asarray(mask)
            if mask.shape != (n,) or mask.dtype != bool:
                raise ValueError(f"catalog[{mode!r}] must be a bool array of shape ({n},)")
            catalog[mode] = mask
        object.__setattr__(self, "catalog", catalog)
        modules = np.asarray(self.modules, np.int64)
        if modules.shape != (n,) or (modules < -1).any() or (modules >= n_tasks).any():
            raise ValueError(f"modules must be ({n},) task indices or -1")
        object.__setattr__(self, "modules", modules)

    @property
    def n_tasks(self) -> int:
        return len(self.task_names)

    def edge_mask(self, task: int) -> np.ndarray:
        """(n_edges,) bool: the circuit edges of ``task``."""
        mask = np.zeros(self.graph.n_edges, bool)
        mask[self.edges[task]] = True
        return mask
