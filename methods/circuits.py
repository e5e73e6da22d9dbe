"""Circuit-discovery baselines on a circuit artifact: ablation, patching, attribution, input attributions.

Every method takes ``(artifact, task)`` (a ``CircuitArtifact`` and a task index), works only
through the model's ``run`` interface (and, for edge scores, its ``edge_weights``), and returns
``ComponentScores``. Node methods score each node by the change in the task metric when it alone
is intervened on; ``aggregate`` chooses how per-input changes are pooled: ``"abs"`` (default) is
the mean of their absolute values, so changes of opposite sign on different inputs do not
cancel, ``"mean"`` the signed mean (the effect on the batch metric).

References
----------
Nanda (2023), "Attribution patching: activation patching at industrial scale".
Syed, Rager & Conmy (2023), "Attribution patching outperforms automated circuit discovery".
Hanna, Pezzelle & Belinkov (2024), "Have faith in faithfulness" (EAP-IG).
Conmy et al. (2023), "Towards automated circuit discovery for mechanistic interpretability" (ACDC).
Frankle & Carbin (2019), "The lottery ticket hypothesis"; Frankle, Dziugaite, Roy & Carbin
(2020), "Linear mode connectivity and the lottery ticket hypothesis" (rewinding); Frankle et al.
(2021), "Pruning neural networks at initialization: why are we missing the mark?" (random tickets).
Sundararajan, Taly & Yan (2017), "Axiomatic attribution for deep networks" (integrated gradients).
Bach et al. (2015), "On pixel-wise explanations for non-linear classifier decisions by layer-wise
relevance propagation".
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from planted.groundtruth import ABLATIONS, ComponentScores, Patch, Problems, as_matrix
from planted.methods import graphs

AGGREGATES = ("abs", "mean")


def _check(where: str, artifact, task: int, p: Problems | None = None, *, aggregate: str = "abs"):
    """The task ``task`` of ``artifact``. Raises one ValueError, from ``where``, listing every
    problem of ``task``, ``aggregate`` and those the caller already put in ``p``."""
    tasks = getattr(artifact, "tasks", None)
    if tasks is None or not hasattr(artifact, "model"):
        raise ValueError(f"artifact must be a circuit artifact (model, graph, tasks), got {type(artifact).__name__}")
    p = Problems() if p is None else p
    p.integer("task", task, low=0, high=len(tasks) - 1)
    p.choice("aggregate", aggregate, AGGREGATES)
    p.raise_if_any(where)
    t = tasks[task]
    for name in ("clean", "corrupted"):
        as_matrix(f"task {t.name!r} {name} inputs", getattr(t, name))
    for name, value in artifact.model.params.items():
        if not np.isfinite(np.asarray(value)).all():
            raise ValueError(f"model parameter {name!r} contains NaN or inf values; every entry must be finite")
    return t


def _per_input(task, outputs: np.ndarray, clean_outputs: np.ndarray) -> np.ndarray:
    """Per-input change of the task metric, (..., batch)."""
    sign = 2.0 * task.labels - 1.0
    return sign * (outputs[..., task.index] - clean_outputs[..., task.index])


def _pool(changes: np.ndarray, aggregate: str) -> np.ndarray:
    return np.abs(changes).mean(axis=-1) if aggregate == "abs" else changes.mean(axis=-1)


def _node_scores(artifact, scores: np.ndarray) -> ComponentScores:
    """Scores for inputs and neurons; outputs are not candidates (NaN)."""
    graph = artifact.graph
    out = np.full(graph.n_nodes, np.nan)
    inner = graph.layers <= graph.layers.max() - 1
    out[inner] = scores[inner]
    return ComponentScores(nodes=out)


def _intervene(artifact, task, values, aggregate: str) -> ComponentScores:
    model, graph = artifact.model, artifact.graph
    clean = model.run(task.clean)
    nodes = np.flatnonzero(graph.layers < graph.layers.max())
    patched = model.patch_nodes(task.clean, nodes, values)
    scores = np.zeros(graph.n_nodes)
    scores[nodes] = _pool(_per_input(task, patched, clean["outputs"][None]), aggregate)
    return _node_scores(artifact, scores)


def ablation(artifact, task: int, *, kind: str = "mean", aggregate: str = "abs", seed: int = 0) -> ComponentScores:
    """Ablate each node alone: set it to 0 (``zero``), its mean over the clean inputs (``mean``),
    or its value on another clean input (``resample``); score the metric change."""
    p = Problems()
    p.choice("kind", kind, ABLATIONS)
    t = _check("ablation", artifact, task, p, aggregate=aggregate)
    return _intervene(artifact, t, artifact.model.ablated(t.clean, kind, seed=seed), aggregate)


def msa(artifact, task: int, *, kind: str = "zero", n_permutations: int = 64, players=None,
        seed: int = 0) -> ComponentScores:
    """Multi-perturbation Shapley analysis (Keinan et al. 2004), by permutation sampling: each
    node's Shapley contribution to the task's accuracy, where a coalition's value is the accuracy
    with the players outside it lesioned (``kind``) and every other node intact. Each of
    ``n_permutations`` random orders adds the players one by one (one run per step); a node's
    estimate is its mean marginal gain, unbiased, with an error shrinking as
    ``1 / sqrt(n_permutations)`` (checked against ``toys.exact_shapley``, which enumerates every
    coalition of up to 16 players). ``players``: node indices (default: every input and neuron)."""
    p = Problems()
    p.choice("kind", kind, ABLATIONS)
    p.integer("n_permutations", n_permutations, low=1, high=1_000_000)
    t = _check("msa", artifact, task, p)
    graph = artifact.graph
    inner = np.flatnonzero(graph.layers < graph.layers.max())
    players = inner if players is None else np.asarray(players, np.int64)
    if players.ndim != 1 or not players.size or not np.isin(players, inner).all() or np.unique(players).size != players.size:
        raise ValueError(f"players must be distinct nodes before the outputs (in [0, {inner.size})), got {players!r}")
    k = players.size
    rng = np.random.default_rng([seed, 23])
    orders = np.stack([rng.permutation(k) for _ in range(n_permutations)])
    masks = np.zeros((n_permutations, k + 1, graph.n_nodes), np.float32)
    steps = np.arange(k + 1)[:, None] <= np.arange(k)[None, :]  # step j: the order's players from j on are lesioned
    for o, order in enumerate(orders):
        masks[o][:, players[order]] = steps
    outputs = artifact.model.patch_node_sets(t.clean, masks.reshape(-1, graph.n_nodes),
                                             artifact.model.ablated(t.clean, kind, seed=seed))
    accuracy = t.accuracy(outputs).reshape(n_permutations, k + 1)
    phi = np.zeros(k)
    np.add.at(phi, orders, np.diff(accuracy, axis=1))
    scores = np.full(graph.n_nodes, np.nan)
    scores[players] = phi / n_permutations
    return ComponentScores(nodes=scores)


PRUNING_CONTROLS = ("magnitude", "random")


@functools.partial(jax.jit, static_argnums=(0, 5, 6, 7))
def _finetune(run_fn, params, x, labels, mask, index, steps, rate):
    """``steps`` Adam steps of the squared error of output ``index`` against ``labels`` with the
    nodes outside ``mask`` held at 0; returns the parameters and the fine-tuned outputs."""
    import optax

    patch = lambda m: Patch(node_mask=1.0 - m, node_values=jnp.zeros_like(m))  # noqa: E731

    def loss(q):
        return jnp.mean((run_fn(q, x, patch(mask))["outputs"][:, index] - labels) ** 2)

    opt = optax.adam(rate)

    def step(carry, _):
        q, state = carry
        updates, state = opt.update(jax.grad(loss)(q), state, q)
        return (optax.apply_updates(q, updates), state), None

    (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    return params, run_fn(params, x, patch(mask))["outputs"]


def _ticket_magnitudes(model, t, x, labels, alive, floor: float, steps: int, learning_rate: float):
    """Each node's magnitude after fine-tuning the ticket ``alive`` (None when the fine-tuned
    ticket's accuracy falls below ``floor``)."""
    keep = alive | (model.graph.layers == model.graph.layers.max())  # the outputs are never pruned
    params, outputs = _finetune(model.run_fn, model.device_params, x, labels, jnp.asarray(keep, jnp.float32),
                                t.index, int(steps), float(learning_rate))
    if t.accuracy(np.asarray(outputs)) < floor:
        return None
    q = {k: np.asarray(v, np.float64) for k, v in params.items()}
    return np.concatenate([np.linalg.norm(q["embed"], axis=1),
                           (np.linalg.norm(q["w_in"], axis=2) * np.linalg.norm(q["w_out"], axis=2)).ravel(),
                           np.zeros(q["readout"].shape[0])])


def _pruning_rounds(layers, inner, fraction: float, magnitudes, n_rounds: int | None = None):
    """Rounds of pruning: ``magnitudes(alive)`` gives each node's magnitude (None: stop before
    this round); the ``fraction`` of each layer's survivors of smallest magnitude go. Returns each
    node's last round alive and its magnitude rank within its layer at the round it went."""
    alive = np.zeros(layers.size, bool)
    alive[inner] = True
    rounds, rank = np.zeros(layers.size), np.zeros(layers.size)
    r = 0
    while n_rounds is None or r < n_rounds:
        magnitude = magnitudes(alive)
        if magnitude is None:
            break
        r += 1
        rounds[alive] = r
        pruned = False
        for layer in np.unique(layers[inner]):
            nodes = np.flatnonzero(alive & (layers == layer))
            order = nodes[np.argsort(magnitude[nodes], kind="stable")]
            rank[order] = np.arange(order.size) / order.size
            cut = int(np.floor(fraction * order.size))
            alive[order[:cut]] = False
            pruned |= cut > 0
        if not pruned:
            break
    return rounds, rank


def magnitude_pruning(artifact, task: int, *, fraction: float = 0.2, tolerance: float = 0.02, steps: int = 50,
                      learning_rate: float = 0.01, control: str = "magnitude", seed: int = 0) -> ComponentScores:
    """Iterative magnitude pruning (Frankle & Carbin 2019, with rewinding to the given weights as
    Frankle et al. 2020) read as a circuit method: the surviving ticket is the circuit.

    Each round fine-tunes the network with the pruned nodes held at 0 (``steps`` Adam steps of
    the task's squared error on its clean inputs, from the given weights), then prunes the
    ``fraction`` of each layer's surviving nodes (the inputs, each block's neurons) of smallest
    magnitude: an input's embedding norm, a neuron's input-weight norm times its output-weight
    norm. Rounds go on while the fine-tuned ticket keeps the task's accuracy within
    ``tolerance`` of the intact network's. A node's score is the number of rounds it survived
    (the ticket's nodes score highest), plus its magnitude rank within its layer in [0, 1).

    ``control="random"`` is the random-ticket control (Frankle et al. 2021): the same number of
    nodes pruned from each layer in each round, chosen at random, so the same per-layer
    densities with no magnitude information.
    """
    p = Problems()
    p.number("fraction", fraction, low=0, high=1, low_open=True, high_open=True)
    p.number("tolerance", tolerance, low=0, high=1)
    p.integer("steps", steps, low=0, high=100_000)
    p.number("learning_rate", learning_rate, low=0, low_open=True)
    p.choice("control", control, PRUNING_CONTROLS)
    p.integer("seed", seed, low=0, high=2**63 - 1)
    t = _check("magnitude_pruning", artifact, task, p)
    model, graph = artifact.model, artifact.graph
    layers = graph.layers
    inner = np.flatnonzero(layers < layers.max())
    x, labels = jnp.asarray(t.clean, jnp.float32), jnp.asarray(t.labels, jnp.float32)
    intact = float(t.accuracy(model.run(t.clean)["outputs"]))
    rounds, rank = _pruning_rounds(layers, inner, fraction, lambda alive: _ticket_magnitudes(
        model, t, x, labels, alive, intact - tolerance, steps, learning_rate))
    if control == "random":  # the same schedule of per-layer counts, at random
        rng = np.random.default_rng([seed, 29])
        last = rounds.max()
        rounds, rank = _pruning_rounds(layers, inner, fraction, lambda alive: rng.random(graph.n_nodes),
                                       n_rounds=int(last))
    return _node_scores(artifact, rounds + rank)


def activation_patching(artifact, task: int, *, aggregate: str = "abs") -> ComponentScores:
    """Patch each node alone from the clean run to its corrupted-run activation; score the metric change."""
    t = _check("activation_patching", artifact, task, aggregate=aggregate)
    return _intervene(artifact, t, artifact.model.run(t.corrupted)["activations"], aggregate)


def _gradients(artifact, task, inputs, wrt: str) -> np.ndarray:
    """Per-input gradient of the task metric with respect to each node's activation ("node_delta")
    or input ("pre_delta"), at ``inputs``; (batch, n_nodes)."""
    model = artifact.model
    return np.asarray(_grad_jit(model.run_fn, model.device_params, jnp.asarray(inputs, jnp.float32),
                                jnp.asarray(2.0 * task.labels - 1.0), task.index, artifact.graph.n_nodes, wrt))


@functools.partial(jax.jit, static_argnums=(0, 4, 5, 6))
def _grad_jit(run_fn, params, x, sign, index, n_nodes, wrt):
    def per_input_metric(delta):
        out = run_fn(params, x, Patch(**{wrt: delta}))["outputs"][:, index]
        return jnp.sum(sign * (out - 0.5))  # sum over inputs: each row of the gradient is one input's

    return jax.grad(per_input_metric)(jnp.zeros((x.shape[0], n_nodes)))


def attribution_patching(artifact, task: int, *, aggregate: str = "abs") -> ComponentScores:
    """Linear estimate of activation patching (Nanda 2023): gradient of the metric at the clean
    input times (corrupted - clean) activation, per node."""
    t = _check("attribution_patching", artifact, task, aggregate=aggregate)
    model = artifact.model
    delta = model.run(t.corrupted)["activations"] - model.run(t.clean)["activations"]
    grads = _gradients(artifact, t, t.clean, "node_delta")
    return _node_scores(artifact, _pool((grads * delta).T, aggregate))


def _edge_scores(artifact, matrix: np.ndarray) -> ComponentScores:
    src, dst = artifact.graph.edges()
    return ComponentScores(edges=matrix[src, dst])


def edge_attribution_patching(artifact, task: int, *, ig_steps: int = 0) -> ComponentScores:
    """Edge attribution patching (Syed et al. 2023): for edge (u, v), (corrupted - clean activation
    of u) x weight(u, v) x gradient of the metric with respect to v's input, averaged over inputs.
    With ``ig_steps`` > 0 the gradient is averaged over that many inputs interpolated from the
    corrupted to the clean ones (EAP-IG, Hanna et al. 2024)."""
    return _eap("edge_attribution_patching", artifact, task, ig_steps, "ig_steps")


def _eap(where: str, artifact, task: int, ig_steps: int, name: str) -> ComponentScores:
    """Edge attribution patching, with ``ig_steps`` checked under the caller's parameter ``name``."""
    p = Problems()
    p.integer(name, ig_steps, low=0)
    t = _check(where, artifact, task, p)
    ig_steps = int(ig_steps)
    model = artifact.model
    delta = model.run(t.corrupted)["activations"] - model.run(t.clean)["activations"]
    if ig_steps:
        alphas = (np.arange(ig_steps) + 1) / ig_steps
        grads = np.mean([_gradients(artifact, t, t.corrupted + a * (t.clean - t.corrupted), "pre_delta") for a in alphas], axis=0)
    else:
        grads = _gradients(artifact, t, t.clean, "pre_delta")
    matrix = model.edge_weights() * (delta.T.astype(np.float64) @ grads.astype(np.float64)) / delta.shape[0]
    return _edge_scores(artifact, matrix)


def eap_ig(artifact, task: int, *, steps: int = 5) -> ComponentScores:
    """EAP-IG (Hanna et al. 2024): edge attribution patching with integrated gradients, ``steps`` points."""
    return _eap("eap_ig", artifact, task, steps, "steps")


def _input_scores(artifact, values: np.ndarray) -> ComponentScores:
    out = np.full(artifact.graph.n_nodes, np.nan)
    n_in = int((artifact.graph.layers == 0).sum())
    out[:n_in] = values
    return ComponentScores(nodes=out)


def gradient_x_input(artifact, task: int) -> ComponentScores:
    """Input attribution: mean over clean inputs of |input x gradient of the task output|; inputs only."""
    t = _check("gradient_x_input", artifact, task)
    n_in = t.clean.shape[1]
    grads = _gradients(artifact, t, t.clean, "node_delta")[:, :n_in]
    return _input_scores(artifact, np.abs(grads * t.clean).mean(axis=0))


def integrated_gradients(artifact, task: int, *, steps: int = 32, baseline: str = "corrupted") -> ComponentScores:
    """Integrated gradients (Sundararajan et al. 2017) of the task output with respect to the inputs,
    from a ``baseline`` of the corrupted inputs (or ``"zeros"``); mean |attribution| per input."""
    p = Problems()
    p.choice("baseline", baseline, ("corrupted", "zeros"))
    p.integer("steps", steps, low=1)
    t = _check("integrated_gradients", artifact, task, p)
    steps = int(steps)
    n_in = t.clean.shape[1]
    start = t.corrupted if baseline == "corrupted" else np.zeros_like(t.clean)
    alphas = (np.arange(steps) + 0.5) / steps
    grads = np.mean([_gradients(artifact, t, start + a * (t.clean - start), "node_delta")[:, :n_in] for a in alphas], axis=0)
    return _input_scores(artifact, np.abs(grads * (t.clean - start)).mean(axis=0))


def weight_centrality(artifact, task: int, *, kind: str = "strength") -> ComponentScores:
    """Connectomics baseline: each node's centrality in the network's weight graph (the edge
    weights through the residual stream, ``model.edge_weights()``). Blind to the task: the same
    ranking is scored against every task's circuit."""
    _check("weight_centrality", artifact, task)
    return _node_scores(artifact, graphs.centrality(artifact.model.edge_weights(), kind))


def weight_communities(artifact, *, resolution: float = 1.0, seed: int = 0) -> np.ndarray:
    """Louvain communities of the weight graph; (n_nodes,) labels, to score against planted modules."""
    return graphs.communities(artifact.model.edge_weights(), resolution=resolution, seed=seed)


def functional_communities(artifact, *, resolution: float = 1.0, seed: int = 0) -> np.ndarray:
    """Louvain communities of functional connectivity: |correlation| of node activations over every
    task's clean inputs; (n_nodes,) labels."""
    inputs = np.concatenate([t.clean for t in artifact.tasks])
    corr = graphs.functional_connectivity(artifact.model.run(inputs)["activations"])
    return graphs.communities(corr, resolution=resolution, seed=seed)


def acdc(artifact, task: int, *, threshold: float = 0.01) -> ComponentScores:
    """ACDC (Conmy et al. 2023): prune edges greedily from the outputs back.

    Destinations are visited in reverse topological order, and each of their incoming edges is
    tentatively patched to its corrupted-run activation; the removal stays when the task metric
    moves by less than ``threshold`` (as a fraction of the clean-corrupted gap) from the current
    circuit's, otherwise the edge is restored. An edge's score is the move measured when it was
    tried: kept edges score at least ``threshold``, pruned ones below it. Edges of exactly zero
    weight move nothing and are pruned without a run.
    """
    p = Problems()
    p.number("threshold", threshold, low=0, high=1, high_open=True)
    t = _check("acdc", artifact, task, p)
    model, graph = artifact.model, artifact.graph
    corrupt = model.run(t.corrupted)["activations"]
    clean_metric = float(t.metric(model.run(t.clean)["outputs"]))
    gap = clean_metric - float(t.metric(model.run(t.corrupted)["outputs"]))
    weights = model.edge_weights()
    change = acdc_prune(graph, lambda mask: float(t.metric(model.run(t.clean, Patch(edge_mask=mask, edge_source=corrupt))["outputs"])),
                        clean_metric, gap, threshold, skip=weights == 0)
    return _edge_scores(artifact, change)


def acdc_prune(graph, metric, clean_metric: float, gap: float, threshold: float, skip: np.ndarray | None = None) -> np.ndarray:
    """ACDC's loop (Conmy et al. 2023) over any model: receivers in reverse topological order, each
    incoming edge tentatively patched (``metric(mask)``: the task metric with the (n_nodes,
    n_nodes) 0/1 edges of ``mask`` patched), the removal kept when the metric moves by less than
    ``threshold`` x |gap| from the current circuit's. Edges where ``skip`` is True are removed
    without a run. Returns each edge's measured move as a fraction of the gap, (n_nodes, n_nodes)."""
    layers = graph.layers
    mask = np.zeros((graph.n_nodes, graph.n_nodes), np.float32)
    change = np.zeros((graph.n_nodes, graph.n_nodes))
    current = clean_metric
    for dst in range(graph.n_nodes - 1, -1, -1):
        if layers[dst] == 0:
            break
        for src in np.flatnonzero(layers < layers[dst])[::-1]:
            mask[src, dst] = 1.0
            if skip is not None and skip[src, dst]:
                continue
            value = metric(mask)
            change[src, dst] = abs(value - current) / abs(gap)
            if change[src, dst] < threshold:
                current = value
            else:
                mask[src, dst] = 0.0
    return change


def layerwise_relevance(artifact, task: int, *, epsilon: float = 1e-6) -> ComponentScores:
    """Layer-wise relevance propagation, epsilon rule (Bach et al. 2015), on the component graph.

    The task's output value is its relevance; going back layer by layer, each node's relevance is
    shared among the nodes feeding it in proportion to their contributions w(u, v) a(u) to its
    input (the epsilon term stabilises near-zero inputs; biases keep their share). Scores are the
    mean |relevance| of each input over the clean inputs; inputs only.
    """
    p = Problems()
    p.number("epsilon", epsilon, low=0, low_open=True)
    t = _check("layerwise_relevance", artifact, task, p)
    model, graph = artifact.model, artifact.graph
    run = model.run(t.clean)
    acts, pre = run["activations"].astype(np.float64), run["pre"].astype(np.float64)
    weights = model.edge_weights()
    layers = graph.layers
    relevance = np.zeros_like(acts)
    out = np.flatnonzero(layers == layers.max())[t.index]
    relevance[:, out] = acts[:, out]
    for layer in range(layers.max(), 0, -1):
        dst = np.flatnonzero(layers == layer)
        src = np.flatnonzero(layers < layer)
        denom = pre[:, dst] + epsilon * np.where(pre[:, dst] >= 0, 1.0, -1.0)
        relevance[:, src] += acts[:, src] * ((relevance[:, dst] / denom) @ weights[np.ix_(src, dst)].T)
    n_in = int((layers == 0).sum())
    return _input_scores(artifact, np.abs(relevance[:, :n_in]).mean(axis=0))

__all__ = [
    "ABLATIONS",
    "AGGREGATES",
    "ablation",
    "acdc",
    "acdc_prune",
    "activation_patching",
    "attribution_patching",
    "eap_ig",
    "magnitude_pruning",
    "edge_attribution_patching",
    "functional_communities",
    "gradient_x_input",
    "integrated_gradients",
    "layerwise_relevance",
    "msa",
    "weight_centrality",
    "weight_communities",
]
