"""The ``rasp_transformer`` truth pass: the circuit of each task by exact intervention on the
compiled wiring (see ``_toy``'s docstring), the catalog's node masks, and the helpers ``verify``
shares with it."""

from __future__ import annotations

import numpy as np

from planted.groundtruth import CircuitTruth, Patch
from planted.toys._rasp._analysis import name_nodes
from planted.toys._rasp._catalog import MODES
from planted.toys._rasp._circuit import TransformerModel, TransformerTask
from planted.toys._rasp._compiler import Compiled
from planted.toys._rasp._language import NUMERICAL, Select, describe

TOLERANCE = 0.05
_CONSTANT_BLOCKS = ("one", "bos")


def _node_changes(model: TransformerModel, task: TransformerTask, clean: dict, corrupt: dict) -> np.ndarray:
    """(n_nodes, batch): the change of each input's metric when one node alone takes its corrupted
    write (clean minus patched)."""
    graph = model.graph
    base = task.per_input(clean["outputs"])
    out = np.zeros((graph.n_nodes, base.size))
    for node in range(graph.n_nodes):
        mask = np.zeros(graph.n_nodes, np.float32)
        mask[node] = 1.0
        patched = model.run_exact(task.clean, Patch(node_mask=mask, node_values=corrupt["activations"]))["outputs"]
        out[node] = base - task.per_input(patched)
    return out


def output_tokens(compiled: Compiled) -> np.ndarray:
    """(n_outputs,): the token id (``rasp.encode``'s: vocab[i] is i + 1) each output logit names, or -1."""
    ids = {tok: i + 1 for i, tok in enumerate(compiled.vocab)}
    if compiled.output_encoding == NUMERICAL:
        return np.full(compiled.params["unembed"].shape[1], -1, np.int64)
    return np.array([ids.get(v, -1) if v is not None else -1 for v in compiled.output_values], np.int64)


def backup_pairs(compiled: Compiled) -> list[tuple[int, int]]:
    """(node of the head, node of its backup) for every backup head of the catalog."""
    heads = {c.name: c for c in compiled.components if c.kind == "head"}
    return [(component_node(compiled, heads[c.name.removesuffix(".backup")]), component_node(compiled, c))
            for c in compiled.components if c.op == "backup"]


def component_node(compiled: Compiled, component) -> int:
    """The graph node of a compiled component (a head's, or its layer's MLP)."""
    if component.kind == "embedding":
        return 0 if component.op == "tokens" else 1
    n_heads = compiled.params["w_q"].shape[1]
    base = 2 + component.layer * (n_heads + 1)
    return base + component.head if component.kind == "head" else base + n_heads


def structural_edges(compiled: Compiled, graph) -> np.ndarray:
    """(n_nodes, n_nodes) bool: dst reads a non-constant residual block that src writes. The
    cancelling pair of the catalog is left out: it computes nothing (its two writes sum to zero)."""
    writers: dict[str, list[int]] = {}
    computing = [c for c in compiled.components if c.op != "cancellation"]
    for c in computing:
        for block in c.writes:
            writers.setdefault(block, []).append(component_node(compiled, c))
    structure = np.zeros((graph.n_nodes, graph.n_nodes), bool)
    for c in computing:
        for block in c.reads:
            if block not in _CONSTANT_BLOCKS:
                structure[writers[block], component_node(compiled, c)] = True
    structure[writers[compiled.output_name], graph.n_nodes - 1] = True
    np.fill_diagonal(structure, False)  # an MLP layer's ops never read each other (placement)
    return structure


def _listing(compiled: Compiled) -> str:
    """The program as one line per SOp: ``name = expression``."""
    order, names = name_nodes(compiled.program)
    return "; ".join(f"{names[id(n)]} = {describe(n, names)}" for n in order if not isinstance(n, Select))


def _reach(structure: np.ndarray) -> np.ndarray:
    """(n, n) bool: [a, b] when b is reachable from a along structural edges (a reaches itself)."""
    reach = structure | np.eye(structure.shape[0], dtype=bool)
    while True:
        more = reach | ((reach.astype(np.int64) @ reach.astype(np.int64)) > 0)
        if (more == reach).all():
            return reach
        reach = more


def _per_input_patched(model, task, src, dst, patched_edges, corrupt) -> np.ndarray:
    mask = np.zeros((model.graph.n_nodes, model.graph.n_nodes), np.float32)
    mask[src[patched_edges], dst[patched_edges]] = 1.0
    return task.per_input(model.run_exact(task.clean, Patch(edge_mask=mask, edge_source=corrupt["activations"]))["outputs"])


def _circuit_edges(model, task, structure, clean, corrupt) -> np.ndarray:
    """The task's circuit edges (canonical indices): the structural edges that move some input's
    metric by ``TOLERANCE`` when patched alone, and the silent ones that matter jointly: restoring
    a silent edge's paths (every structural edge on a path through it) while the other silent
    edges stay patched, the edge itself moves some input's metric by ``TOLERANCE`` (so of two
    redundant chains, both count, not whichever an order happens to keep)."""
    graph = model.graph
    src, dst = graph.edges()
    candidates = np.flatnonzero(structure[src, dst])
    base = task.per_input(clean["outputs"])
    single = np.array([np.abs(_per_input_patched(model, task, src, dst, [e], corrupt) - base).max() for e in candidates])
    core = candidates[single >= TOLERANCE]
    silent = candidates[single < TOLERANCE]
    if silent.size == 0:
        return core
    reach = _reach(structure)
    joint = []
    for e in silent:
        u, v = src[e], dst[e]
        # Structural edges on a path through (u, v): into u's ancestry, or out of v's descendants.
        through = (reach[dst[silent], u] & reach[src[silent], u]) | (reach[v, src[silent]] & reach[v, dst[silent]])
        through |= silent == e
        # e's own part: its path restored with e, against the same path restored without it.
        with_e = _per_input_patched(model, task, src, dst, silent[~through], corrupt)
        without_e = _per_input_patched(model, task, src, dst, np.append(silent[~through], e), corrupt)
        if np.abs(with_e - without_e).max() >= TOLERANCE:
            joint.append(e)
    kept = np.sort(np.concatenate([core, np.array(joint, np.int64)]))
    # Completion: where those are not faithful on every input (chains that matter only together
    # without sharing a path), the remaining silent edges are patched one at a time from the output
    # back, and an edge whose patch moves some input's answer away from clean joins the circuit.
    taken = set(kept.tolist())
    rest = [e for e in silent[::-1] if e not in taken]
    patched: list[int] = []
    for e in rest:
        trial = _per_input_patched(model, task, src, dst, patched + rest[rest.index(e):], corrupt)
        if np.abs(trial - base).max() < TOLERANCE:
            break  # every remaining silent edge can be patched together
        alone = _per_input_patched(model, task, src, dst, patched + [e], corrupt)
        if np.abs(alone - base).max() < TOLERANCE:
            patched.append(e)
        else:
            kept = np.append(kept, e)
    return np.sort(kept)


def _circuit_truth(compiled: Compiled, model: TransformerModel, tasks: tuple[TransformerTask, ...],
                   config) -> CircuitTruth:
    graph = model.graph
    structure = structural_edges(compiled, graph)
    backups = backup_pairs(compiled)
    src, dst = graph.edges()
    nodes, edges, node_effects, edge_effects, redundant = [], [], [], [], []
    for task in tasks:
        clean, corrupt = model.run_exact(task.clean), model.run_exact(task.corrupted)
        base = task.per_input(clean["outputs"])
        gap = float(task.metric(clean["outputs"]) - task.metric(corrupt["outputs"]))
        kept = _circuit_edges(model, task, structure, clean, corrupt)
        for first, backup in backups:
            # A backup head computes its head's value when that head's output is removed: it is in
            # the circuit by construction, though no patch from the clean run moves it, wired as its
            # head is (the same circuit inputs and readers) and reading its head's output.
            mirrored = [(s, backup) for s in src[kept][dst[kept] == first]]
            mirrored += [(backup, d) for d in dst[kept][src[kept] == first] if d != backup]
            mirrored.append((first, backup))
            kept = np.union1d(kept, graph.edge_index([a for a, _ in mirrored], [b for _, b in mirrored])).astype(np.int64)
        effects = [float((base - _per_input_patched(model, task, src, dst, [e], corrupt)).mean()) / gap for e in kept]
        in_circuit = np.zeros(graph.n_nodes, bool)
        in_circuit[src[kept]] = True
        in_circuit[dst[kept]] = True
        in_circuit[-1] = True
        changes = _node_changes(model, task, clean, corrupt)
        per_node = changes.mean(axis=1) / gap
        silent = in_circuit & (np.abs(changes).max(axis=1) < TOLERANCE)
        silent[-1] = False
        silent[[b for _, b in backups]] = True
        nodes.append(in_circuit)
        redundant.append(silent)
        edges.append(kept)
        node_effects.append(per_node)
        edge_effects.append(np.array(effects))
    nodes = np.array(nodes)
    n_tasks = len(tasks)
    modules = np.where(nodes.sum(0) == 1, nodes.argmax(0), -1)
    modules[-1] = -1
    return CircuitTruth(
        graph=graph, task_names=tuple(t.name for t in tasks), formulas=(_listing(compiled),) * n_tasks, nodes=nodes,
        edges=tuple(edges), node_effects=np.array(node_effects), edge_effects=tuple(edge_effects),
        relevant_inputs=nodes[:, :2].copy(), redundant=np.array(redundant), catalog=_catalog_masks(compiled, config, nodes),
        modules=modules,
    )


def _catalog_masks(compiled: Compiled, config, nodes: np.ndarray) -> dict:
    """For each failure mode switched on, the graph nodes it involves."""
    extra_names = {compiled.names[id(e)] for e in compiled.extra}
    involved = {
        "distractors": [component_node(compiled, c) for c in compiled.components if c.kind == "head" and c.name in extra_names],
        "backup": [node for pair in backup_pairs(compiled) for node in pair],
        "cancellation": [component_node(compiled, c) for c in compiled.components if c.op == "cancellation"],
        "saturation": [component_node(compiled, c) for c in compiled.components
                       if c.kind == "mlp" and compiled.output_name in c.writes],
    }
    masks = {}
    for mode in MODES:
        if getattr(config, mode.name) is not True:
            continue
        if mode.name == "naturalise":
            masks[mode.name] = nodes.any(axis=0)
        else:
            masks[mode.name] = np.zeros(nodes.shape[1], bool)
            masks[mode.name][involved[mode.name]] = True
    return masks
