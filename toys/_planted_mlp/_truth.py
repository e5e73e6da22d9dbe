"""The truth and its verification: what each task's circuit is, its true effects by
intervention, and ``PlantedCircuitToy.verify``, which checks a built toy by intervention."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from planted.groundtruth import Toy
from planted.groundtruth import CircuitTruth
from planted.toys._planted_mlp._catalog import active
from planted.toys._planted_mlp._config import _STREAM_DATA, PlantedMLPConfig
from planted.toys._planted_mlp._exact import _Exact
from planted.toys._planted_mlp._model import CircuitModel, CircuitParts, CircuitTask

if TYPE_CHECKING:
    from planted.toys._planted_mlp._compiler import _Plan

# verify(): an ablated or patched run must stay within this fraction of the clean-corrupted gap,
# and a necessary node or edge must move the output by at least this much on some input; the
# truth's edges are exactly the structural edges that do.
TOLERANCE = 0.05
# verify(): the largest |output| difference allowed between the model's own (float32) run and
# the float64 evaluation the truth is computed with.
_AGREEMENT = 1e-4


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
class PlantedCircuitToy(CircuitParts, Toy):
    """A network with planted circuits: ``artifact`` for methods, ``truth`` for evaluators."""

    model: CircuitModel = dataclasses.field(default=None, repr=False)
    tasks: tuple[CircuitTask, ...] = dataclasses.field(default=(), repr=False)
    roots: tuple = dataclasses.field(default=(), repr=False)  # the formulas, for exhaustive checks


    def formula(self, task: int, x: np.ndarray) -> np.ndarray:
        """The planted formula of ``task`` on binary inputs (batch, n_inputs)."""
        return self.roots[task].evaluate(np.asarray(x, np.float64))

    def verify(self) -> Verification:
        """Check the planted circuits by intervention.

        For every task: (1) the output equals the formula within ``TOLERANCE`` on the clean and
        the corrupted inputs; (2) faithfulness: with every edge outside the circuit ablated (mean
        ablation: the clean mean activation; resample ablation: the activation on another clean
        input), the task metric stays within ``TOLERANCE`` of the clean-corrupted gap; (3)
        necessity: mean-ablating any one circuit node (input or neuron), or any one circuit edge
        (the edge alone carries its source's clean mean), changes the output by at least
        ``TOLERANCE`` on some clean input (a formula input matters only where it is pivotal),
        unless the catalog marks the node redundant, in which case it changes no output by that
        much (the copy really is redundant); an edge into or out of a redundant node is in the
        circuit whatever its effect alone (a wrong value carried into a copy can move the output,
        a missing one cannot); (4) every circuit node
        but an output has a circuit edge out, and every one but an input a circuit edge in.

        The checks run in float64 from the model's weights (``_exact``), the evaluation the truth
        is computed with; (0) the model's own run must agree with it within ``_AGREEMENT``.
        """
        problems: list[str] = []
        faithfulness: dict = {}
        worst = 0.0
        graph = self.graph
        src, dst = graph.edges()
        exact = _Exact(self.model.params)
        for task in self.tasks:
            t = task.index
            clean = exact.run(task.clean)
            corrupt = exact.run(task.corrupted)
            own = np.abs(self.model.run(task.clean)["outputs"] - clean.outputs).max()
            if own > _AGREEMENT:
                problems.append(f"{task.name}: the model's run differs from its float64 evaluation by {own:.2e} (> {_AGREEMENT})")
            for name, x, run in (("clean", task.clean, clean), ("corrupted", task.corrupted, corrupt)):
                err = np.abs(run.outputs[:, t] - self.formula(t, x))
                worst = max(worst, float(err.max()))
                if err.max() > TOLERANCE:
                    problems.append(f"{task.name}: output differs from the formula by {err.max():.3f} on {name} inputs")
            gap = float(task.metric(clean.outputs) - task.metric(corrupt.outputs))
            edges = self.truth.edges[t]
            outside = np.ones(graph.n_edges, bool)
            outside[edges] = False
            mask = np.zeros((graph.n_nodes, graph.n_nodes), bool)
            mask[src[outside], dst[outside]] = True
            mean = clean.acts.mean(axis=0)
            perm = np.random.default_rng([self.config.seed, _STREAM_DATA, t]).permutation(task.clean.shape[0])
            for ablation, source in (("mean", mean), ("resample", clean.acts[perm])):
                out = exact.run_edges(task.clean, mask, source)
                f = float((task.metric(out) - task.metric(corrupt.outputs)) / gap)
                faithfulness[(task.name, ablation)] = f
                if abs(1 - f) > TOLERANCE:
                    problems.append(f"{task.name}: circuit alone ({ablation} ablation of the rest) keeps {f:.3f} of the metric")
            redundant = self.truth.redundant[t]
            nodes = np.flatnonzero(self.truth.nodes[t] & (graph.layers <= self.config.n_blocks))
            change = _largest_change(exact.set_nodes(clean, nodes, np.broadcast_to(mean[nodes, None], (nodes.size, task.clean.shape[0]))), clean, t)
            for node, c in zip(nodes, change):
                label = graph.labels[node]
                if redundant[node] and c >= TOLERANCE:
                    problems.append(f"{task.name}: redundant node {label} changes the output by {c:.3f} when ablated alone")
                if not redundant[node] and c < TOLERANCE:
                    problems.append(f"{task.name}: circuit node {label} is not necessary (mean ablation moves no output by {TOLERANCE})")
            change = _largest_change(exact.ablate_edges(clean, src[edges], dst[edges], mean), clean, t)
            for s, d, c in zip(src[edges], dst[edges], change):
                label = f"{graph.labels[s]} -> {graph.labels[d]}"
                if not (redundant[s] or redundant[d]) and c < TOLERANCE:
                    problems.append(f"{task.name}: circuit edge {label} is not necessary (mean ablation moves no output by {TOLERANCE})")
            members = np.flatnonzero(self.truth.nodes[t])
            for node in members[graph.layers[members] <= self.config.n_blocks]:
                if not np.any(src[edges] == node):
                    problems.append(f"{task.name}: circuit node {graph.labels[node]} has no circuit edge out")
            for node in members[graph.layers[members] > 0]:
                if not np.any(dst[edges] == node):
                    problems.append(f"{task.name}: circuit node {graph.labels[node]} has no circuit edge in")
        return Verification(ok=not problems, problems=tuple(problems), faithfulness=faithfulness, worst_output_error=worst)


def _largest_change(outputs: np.ndarray, run, t: int) -> np.ndarray:
    """(k,) the largest |change| of output t over the inputs, of outputs (k, batch, n_tasks) against ``run``."""
    return np.abs(outputs[:, :, t] - run.outputs[None, :, t]).max(axis=1)


def _circuit_truth(plan: _Plan, blocks, model: CircuitModel, tasks, cfg: PlantedMLPConfig) -> CircuitTruth:
    """The truth of a built draw: each task's nodes and edges, their true effects (patching each
    alone to its corrupted-run activation), the redundant nodes, the catalog and the modules.

    A task's edges are the connections its gates' wiring allows between its circuit nodes (a
    writer of a variable to a reader of it) that matter: mean-ablated alone, the edge moves the
    task's output by at least ``TOLERANCE`` on some clean input (the test of ``verify``). An edge
    of a redundant node is kept whatever its effect, as redundant nodes are. Effects are computed
    in float64 from the weights (``_exact``).
    """
    graph = model.graph
    n, n_in = graph.n_nodes, cfg.n_inputs
    out0 = n_in + cfg.n_blocks * cfg.width
    nodes = np.zeros((cfg.n_tasks, n), bool)
    redundant = np.zeros((cfg.n_tasks, n), bool)
    exact = _Exact(model.params)
    runs = [(exact.run(task.clean), exact.run(task.corrupted)) for task in tasks]
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
        clean = runs[t][0]
        change = np.abs(exact.ablate_edges(clean, src, dst, clean.acts.mean(axis=0))[:, :, t] - clean.outputs[None, :, t]).max(axis=1)
        keep = (change >= TOLERANCE) | redundant[t, src] | redundant[t, dst]
        src, dst = src[keep], dst[keep]
        index = graph.edge_index(src, dst)
        order = np.argsort(index)
        edges.append(index[order])
        edge_pairs.append((src[order], dst[order]))
    node_effects = np.zeros((cfg.n_tasks, n))
    edge_effect_values = []
    for task, (clean, corrupt) in zip(tasks, runs):
        t = task.index
        m_clean, m_corrupt = float(task.metric(clean.outputs)), float(task.metric(corrupt.outputs))
        gap = m_clean - m_corrupt
        patched = exact.set_nodes(clean, np.arange(n), corrupt.acts.T)
        node_effects[t] = (m_clean - task.metric(patched)) / gap
        src, dst = edge_pairs[t]
        patched = exact.ablate_edges(clean, src, dst, corrupt.acts)
        edge_effect_values.append((m_clean - task.metric(patched)) / gap)
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
