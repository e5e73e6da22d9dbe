"""The lesion census of a planted circuit toy or a transformer: every node and edge lesioned alone,
every pair of nodes together, and exact Shapley contributions over small sets of nodes, all by
intervention (through the model's ``ablated``, ``patch_nodes``, ``patch_node_sets`` and
``patch_edges``, and the tasks' ``accuracy``).

References
----------
Jonas & Kording (2017), "Could a neuroscientist understand a microprocessor?" (lesion censuses
and their histograms). Keinan, Sandbank, Hilgetag, Meilijson & Ruppin (2004), "Fair attribution of
functional contribution in artificial and biological networks" (multi-perturbation Shapley
analysis). Fakhar & Hilgetag (2022), "Systematic perturbation of an artificial neural network: a
step towards quantifying causal contributions in the brain".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from planted.groundtruth import ABLATIONS, LesionCensus, Problems, lesion_labels
MAX_EXACT_PLAYERS = 16  # 2^16 coalitions, each one run of the model
CENSUS_FAMILIES = ("planted_mlp", "rasp_transformer")  # the toys whose components can be lesioned


def _check_toy(toy) -> None:
    if getattr(toy, "kind", None) not in CENSUS_FAMILIES:
        raise ValueError(f"a lesion census needs a {' or '.join(CENSUS_FAMILIES)} toy, got "
                         f"{getattr(toy, 'kind', type(toy).__name__)!r}")


def lesion_census(toy, *, kinds: Sequence[str] = ABLATIONS, label_kind: str = "zero", edges: bool = True,
                  pairs: bool = True, seed: int = 0) -> LesionCensus:
    """Lesion every node (and edge) of a ``planted_mlp`` toy or a ``rasp_transformer`` alone, and
    every pair of nodes together (a transformer's nodes are its embeddings, heads and MLPs, each
    lesioned at every position).

    Parameters
    ----------
    toy : PlantedCircuitToy or RASPTransformerToy
    kinds : sequence of {"zero", "mean", "resample"}
        The ablations measured for single nodes and edges.
    label_kind : str
        The ablation of the pairs and the labels (one of ``kinds``).
    edges, pairs : bool
        Measure the single-edge lesions (one run per edge of the component graph) and the pairs
        of nodes (n (n - 1) / 2 runs).
    seed : int
        The permutation of ``resample``.

    Returns
    -------
    LesionCensus
        Exact deficits (accuracy drops on each task's inputs) and each node's label.
    """
    _check_toy(toy)
    p = Problems()
    for kind in kinds:
        p.choice("kinds", kind, ABLATIONS)
    if not kinds:
        p.add("kinds must name at least one ablation")
    p.choice("label_kind", label_kind, tuple(kinds))
    p.raise_if_any("lesion_census")
    artifact = toy.artifact
    model, graph, tasks = artifact.model, artifact.graph, artifact.tasks
    nodes = np.flatnonzero(graph.layers < graph.layers.max())
    n, n_tasks = nodes.size, len(tasks)
    intact = np.array([t.accuracy(model.run(t.clean)["outputs"]) for t in tasks])
    deficits = np.zeros((len(kinds), n, n_tasks))
    edge_deficits = np.zeros((len(kinds), graph.n_edges, n_tasks)) if edges else None
    src, dst = graph.edges()
    for k, kind in enumerate(kinds):
        for i, t in enumerate(tasks):
            values = model.ablated(t.clean, kind, seed=seed)
            deficits[k, :, i] = intact[i] - t.accuracy(model.patch_nodes(t.clean, nodes, values))
            if edges:
                edge_deficits[k, :, i] = intact[i] - t.accuracy(model.patch_edges(t.clean, src, dst, values))
    pair_deficits = None
    if pairs:
        pair_deficits = np.zeros((n, n, n_tasks))
        a, b = np.triu_indices(n, 1)
        masks = np.zeros((a.size, graph.n_nodes), np.float32)
        masks[np.arange(a.size), nodes[a]] = 1.0
        masks[np.arange(a.size), nodes[b]] = 1.0
        for i, t in enumerate(tasks):
            values = model.ablated(t.clean, label_kind, seed=seed)
            lost = intact[i] - t.accuracy(model.patch_node_sets(t.clean, masks, values))
            pair_deficits[a, b, i] = pair_deficits[b, a, i] = lost
            pair_deficits[np.arange(n), np.arange(n), i] = deficits[list(kinds).index(label_kind), :, i]
    labels = lesion_labels(deficits[list(kinds).index(label_kind)], pair_deficits)
    return LesionCensus(kinds=tuple(kinds), task_names=tuple(t.name for t in tasks), nodes=nodes, intact=intact,
                        deficits=deficits, label_kind=label_kind, labels=labels, edge_deficits=edge_deficits,
                        pair_deficits=pair_deficits)


def shapley_from_table(values: np.ndarray) -> np.ndarray:
    """The Shapley values of a game of ``k`` players given every coalition's value: ``values``
    (2^k,), entry ``S`` the value of the coalition whose members are the set bits of ``S``.
    ``phi_i = sum_S |S|! (k - |S| - 1)! / k! (v(S + i) - v(S))`` over the coalitions without i."""
    values = np.asarray(values, np.float64)
    k = int(round(math.log2(values.size))) if values.size else -1
    if values.ndim != 1 or k < 1 or values.size != 1 << k:
        raise ValueError(f"values must hold 2^k coalition values (k >= 1), got shape {values.shape}")
    coalitions = np.arange(values.size)
    sizes = np.array([bin(s).count("1") for s in range(values.size)])
    weights = np.array([math.factorial(s) * math.factorial(k - s - 1) / math.factorial(k) if s < k else 0.0
                        for s in range(k + 1)])
    phi = np.zeros(k)
    for i in range(k):
        without = coalitions[(coalitions >> i) & 1 == 0]
        phi[i] = (weights[sizes[without]] * (values[without | (1 << i)] - values[without])).sum()
    return phi


def exact_shapley(toy, task: int, players: Sequence[int], *, kind: str = "zero", seed: int = 0) -> np.ndarray:
    """Exact Shapley contributions of ``players`` (node indices, at most ``MAX_EXACT_PLAYERS``) to
    task ``task``'s accuracy: the game's value of a coalition is the accuracy with the players
    outside it lesioned (``kind``) and every other node intact (Keinan et al. 2004's MSA, by full
    enumeration). They sum to the accuracy intact minus with every player lesioned. (k,) float64."""
    _check_toy(toy)
    artifact = toy.artifact
    players = np.asarray(players, np.int64)
    p = Problems()
    p.integer("task", task, low=0, high=len(artifact.tasks) - 1)
    p.choice("kind", kind, ABLATIONS)
    if not 1 <= players.size <= MAX_EXACT_PLAYERS or np.unique(players).size != players.size:
        p.add(f"players must be 1 to {MAX_EXACT_PLAYERS} distinct nodes, got {players.size}")
    elif not np.isin(players, np.flatnonzero(artifact.graph.layers < artifact.graph.layers.max())).all():
        p.add(f"players must be nodes before the outputs, got {players.tolist()}")
    p.raise_if_any("exact_shapley")
    k = players.size
    coalitions = np.arange(1 << k)
    lesioned = ((coalitions[:, None] >> np.arange(k)[None, :]) & 1) == 0  # (2^k, k): outside the coalition
    masks = np.zeros((coalitions.size, artifact.graph.n_nodes), np.float32)
    masks[:, players] = lesioned
    t = artifact.tasks[task]
    values = t.accuracy(artifact.model.patch_node_sets(t.clean, masks, artifact.model.ablated(t.clean, kind, seed=seed)))
    return shapley_from_table(values)
