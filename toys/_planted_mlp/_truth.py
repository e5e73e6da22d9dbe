"""The truth and its verification: what each task's circuit is, its true effects by
intervention, and ``PlantedCircuitToy.verify``, which checks a built toy by intervention."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from planted.groundtruth import Toy
from planted.groundtruth import CircuitTruth, ComponentGraph, Patch
from planted.toys._planted_mlp._catalog import active
from planted.toys._planted_mlp._config import _STREAM_DATA, PlantedMLPConfig
from planted.toys._planted_mlp._model import CircuitArtifact, CircuitModel, CircuitTask

if TYPE_CHECKING:
    from planted.toys._planted_mlp._compiler import _Plan

# verify(): an ablated or patched run must stay within this fraction of the clean-corrupted gap,
# and a necessary node must move the output by at least this much on some input.
TOLERANCE = 0.05


@dataclasses.dataclass(frozen=True)
class Verification:
    """The outcome of ``PlantedCircuitToy.verify``: ``ok`` and, when not, every problem found.

    ``faithfulness[(task, ablation)]`` is the metric of the circuit alone (every other edge
    ablated) as a fraction of the clean-corrupted gap, 1.0 when perfect; ``worst_output_error``
    the largest |output - formula| over each task's clean and corrupted inputs.
    """

    ok: bool
    problems: tuple[str, ...]
    faithfulness: dict
    worst_output_error: float


@dataclasses.dataclass(frozen=True, eq=False)
class PlantedCircuitToy(Toy):
    """A network with planted circuits: ``artifact`` for methods, ``truth`` for evaluators."""

    model: CircuitModel = dataclasses.field(default=None, repr=False)
    tasks: tuple[CircuitTask, ...] = dataclasses.field(default=(), repr=False)
    roots: tuple = dataclasses.field(default=(), repr=False)  # the formulas, for exhaustive checks

    @property
    def graph(self) -> ComponentGraph:
        return self.model.graph

    @property
    def artifact(self) -> CircuitArtifact:
        return CircuitArtifact(model=self.model, graph=self.graph, tasks=self.tasks)

    def formula(self, task: int, x: np.ndarray) -> np.ndarray:
        """The planted formula of ``task`` on binary inputs (batch, n_inputs)."""
        return self.roots[task].evaluate(np.asarray(x, np.float64))

    def verify(self) -> Verification:
        """Check the planted circuits by intervention.

        For every task: (1) the output equals the formula within ``TOLERANCE`` on the clean and
        the corrupted inputs; (2) faithfulness: with every edge outside the circuit ablated (mean
        ablation: the clean mean activation; resample ablation: the activation on another clean
        input), the task metric stays within ``TOLERANCE`` of the clean-corrupted gap; (3)
        necessity: mean-ablating any one circuit node (input or neuron) changes the output by at
        least ``TOLERANCE`` on some clean input (a formula input matters only where it is pivotal),
        unless the catalog marks it redundant, in which case it changes no output by that much
        (the copy really is redundant).
        """
        problems: list[str] = []
        faithfulness: dict = {}
        worst = 0.0
        graph = self.graph
        src, dst = graph.edges()
        for task in self.tasks:
            t = task.index
            clean = self.model.run(task.clean)
            corrupt = self.model.run(task.corrupted)
            for name, x, run in (("clean", task.clean, clean), ("corrupted", task.corrupted, corrupt)):
                err = np.abs(run["outputs"][:, t] - self.formula(t, x))
                worst = max(worst, float(err.max()))
                if err.max() > TOLERANCE:
                    problems.append(f"{task.name}: output differs from the formula by {err.max():.3f} on {name} inputs")
            gap = float(task.metric(clean["outputs"]) - task.metric(corrupt["outputs"]))
            outside = np.ones(graph.n_edges, bool)
            outside[self.truth.edges[t]] = False
            mask = np.zeros((graph.n_nodes, graph.n_nodes), np.float32)
            mask[src[outside], dst[outside]] = 1.0
            perm = np.random.default_rng([self.config.seed, _STREAM_DATA, t]).permutation(task.clean.shape[0])
            for ablation, source in (("mean", clean["activations"].mean(axis=0)), ("resample", clean["activations"][perm])):
                out = self.model.run(task.clean, Patch(edge_mask=mask, edge_source=source))["outputs"]
                f = float((task.metric(out) - task.metric(corrupt["outputs"])) / gap)
                faithfulness[(task.name, ablation)] = f
                if abs(1 - f) > TOLERANCE:
                    problems.append(f"{task.name}: circuit alone ({ablation} ablation of the rest) keeps {f:.3f} of the metric")
            nodes = np.flatnonzero(self.truth.nodes[t] & (graph.layers <= self.config.n_blocks))
            change = np.abs(self.model.patch_nodes(task.clean, nodes, clean["activations"].mean(axis=0))[:, :, t]
                            - clean["outputs"][None, :, t]).max(axis=1)
            for node, c in zip(nodes, change):
                label = graph.labels[node]
                if self.truth.redundant[t, node] and c >= TOLERANCE:
                    problems.append(f"{task.name}: redundant node {label} changes the output by {c:.3f} when ablated alone")
                if not self.truth.redundant[t, node] and c < TOLERANCE:
                    problems.append(f"{task.name}: circuit node {label} is not necessary (mean ablation moves no output by {TOLERANCE})")
        return Verification(ok=not problems, problems=tuple(problems), faithfulness=faithfulness, worst_output_error=worst)


def _circuit_truth(plan: _Plan, blocks, model: CircuitModel, tasks, cfg: PlantedMLPConfig) -> CircuitTruth:
    """The truth of a built draw: each task's nodes and edges, their true effects (patching each
    alone to its corrupted-run activation), the redundant nodes, the catalog and the modules."""
    graph = model.graph
    n, n_in = graph.n_nodes, cfg.n_inputs
    out0 = n_in + cfg.n_blocks * cfg.width
    nodes = np.zeros((cfg.n_tasks, n), bool)
    redundant = np.zeros((cfg.n_tasks, n), bool)
    # Who writes each variable: input nodes write their input; neurons write their targets.
    writers: dict[int, list[int]] = {i: [i] for i in range(n_in)}
    placed = [nrn for block in blocks for nrn in block if nrn is not None]
    for nrn in placed:
        for v in nrn.writes:
            writers.setdefault(v, []).append(nrn.index)
    edges, edge_pairs = [], []
    for t in range(cfg.n_tasks):
        members = {nrn.index for nrn in plan.circuit_neurons[t]}
        nodes[t, plan.leaves[t]] = True
        nodes[t, list(members)] = True
        nodes[t, out0 + t] = True
        redundant[t, [nrn.index for nrn in plan.circuit_neurons[t] if id(nrn) in plan.redundant]] = True
        pairs = set()
        for nrn in plan.circuit_neurons[t]:
            for v in nrn.reads:
                pairs |= {(w, nrn.index) for w in writers.get(v, []) if nodes[t, w]}
        pairs |= {(w, out0 + t) for w in writers[plan.answer_vars[t]] if nodes[t, w]}
        pairs = sorted(pairs, key=lambda p: (p[1], p[0]))
        src = np.array([p[0] for p in pairs], np.int64)
        dst = np.array([p[1] for p in pairs], np.int64)
        index = graph.edge_index(src, dst)
        order = np.argsort(index)
        edges.append(index[order])
        edge_pairs.append((src[order], dst[order]))
    node_effects = np.zeros((cfg.n_tasks, n))
    edge_effect_values = []
    for task in tasks:
        t = task.index
        clean = model.run(task.clean)
        corrupt = model.run(task.corrupted)
        m_clean, m_corrupt = float(task.metric(clean["outputs"])), float(task.metric(corrupt["outputs"]))
        gap = m_clean - m_corrupt
        patched = model.patch_nodes(task.clean, np.arange(n), corrupt["activations"])
        node_effects[t] = (m_clean - np.asarray(task.metric(patched))) / gap
        src, dst = edge_pairs[t]
        patched = model.patch_edges(task.clean, src, dst, corrupt["activations"])
        edge_effect_values.append((m_clean - np.asarray(task.metric(patched))) / gap)
    modules = np.full(n, -1, np.int64)
    neuron_nodes = nodes.copy()
    neuron_nodes[:, :n_in] = False
    counts = neuron_nodes.sum(axis=0)
    for t in range(cfg.n_tasks):
        modules[(counts == 1) & neuron_nodes[t]] = t
    catalog = {mode: np.zeros(n, bool) for mode in plan.catalog}
    for mode, items in plan.catalog.items():
        catalog[mode][[nrn.index for nrn in items]] = True
    for mode in active(cfg):
        if mode.involves is not None:
            catalog[mode.name] = mode.involves(nodes)
    return CircuitTruth(
        graph=graph, task_names=tuple(t.name for t in tasks), formulas=tuple(plan.formulas), nodes=nodes,
        edges=tuple(edges), node_effects=node_effects, edge_effects=tuple(edge_effect_values),
        relevant_inputs=nodes[:, :n_in].copy(), redundant=redundant, catalog=catalog, modules=modules,
    )
