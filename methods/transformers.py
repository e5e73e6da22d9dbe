"""Circuit-discovery baselines at the level of attention heads and MLPs of a transformer.

Every method takes ``(artifact, task)``: an artifact with a ``model`` (``run(ids, patch)`` with a
``groundtruth.Patch`` of components, positions and edges, ``run_fn`` and ``device_params`` for
gradients), its component ``graph`` (embeddings, heads, MLPs, the output) and ``tasks`` (clean and
corrupted token ids, ``per_input(outputs)`` metric), and a task index. It works only through that
interface and returns ``ComponentScores``. Node scores cover the embeddings, heads and MLPs (the
output is not a candidate: NaN); edge scores cover every edge of the graph.

References
----------
Vig et al. (2020), "Investigating gender bias in language models using causal mediation analysis"
    (activation patching); Meng et al. (2022), "Locating and editing factual associations in GPT".
Wang et al. (2023), "Interpretability in the wild: a circuit for indirect object identification in
    GPT-2 small" (path patching); Goldowsky-Dill et al. (2023), "Localizing model behavior with path patching".
Nanda (2023), "Attribution patching: activation patching at industrial scale".
Syed, Rager & Conmy (2023), "Attribution patching outperforms automated circuit discovery" (EAP).
Hanna, Pezzelle & Belinkov (2024), "Have faith in faithfulness" (EAP-IG).
Conmy et al. (2023), "Towards automated circuit discovery for mechanistic interpretability" (ACDC).
Olsson et al. (2022), "In-context learning and induction heads" (previous-token and prefix-matching scores).
Keinan, Sandbank, Hilgetag, Meilijson & Ruppin (2004), "Fair attribution of functional contribution in
    artificial and biological networks" (multi-perturbation Shapley analysis).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from planted.groundtruth import ABLATIONS, ComponentScores, Patch, Problems, ablation_values
from planted.methods import circuits

AGGREGATES = ("abs", "mean")
SOURCES = ("corrupted", "zero", "mean")
HEURISTICS = ("previous_token", "prefix_matching", "copying")


def _check(where: str, artifact, task: int, p: Problems | None = None, *, aggregate: str = "abs"):
    """The task ``task`` of a transformer circuit artifact, after one ValueError listing every problem."""
    model, tasks = getattr(artifact, "model", None), getattr(artifact, "tasks", None)
    if tasks is None or model is None or not hasattr(model, "run_fn") or "w_q" not in getattr(model, "params", {}):
        raise ValueError(f"{where}: artifact must be a transformer circuit artifact (model with run and run_fn, graph, "
                         f"tasks), got {type(artifact).__name__}")
    p = Problems() if p is None else p
    p.integer("task", task, low=0, high=len(tasks) - 1)
    p.choice("aggregate", aggregate, AGGREGATES)
    p.raise_if_any(where)
    for name, value in model.params.items():
        if not np.isfinite(np.asarray(value)).all():
            raise ValueError(f"{where}: model parameter {name!r} contains NaN or inf values; every entry must be finite")
    return tasks[task]


def _pool(changes: np.ndarray, aggregate: str) -> np.ndarray:
    return np.abs(changes).mean(axis=-1) if aggregate == "abs" else changes.mean(axis=-1)


def _nodes(graph, scores: np.ndarray) -> ComponentScores:
    """Node scores with the output (not a candidate) set to NaN."""
    out = np.asarray(scores, np.float64).copy()
    out[graph.layers == graph.layers.max()] = np.nan
    return ComponentScores(nodes=out)


def _each_node(model, task, values) -> np.ndarray:
    """Per-input metric (n_nodes, batch) with each node but the output alone taking ``values``
    (batch, n_nodes, n, d) or (n_nodes, n, d); the output's row is the clean metric."""
    n = model.graph.n_nodes
    values = np.asarray(values, np.float32)
    values = np.broadcast_to(values, (task.clean.shape[0],) + values.shape[-3:])
    out = np.zeros((n, task.clean.shape[0]))
    out[: n - 1] = task.per_input(model.patch_nodes(task.clean, np.arange(n - 1), values))
    out[n - 1] = task.per_input(model.run(task.clean)["outputs"])
    return out


def _intervene(where: str, artifact, task: int, values_of, aggregate: str) -> ComponentScores:
    t = _check(where, artifact, task, aggregate=aggregate)
    model = artifact.model
    clean = model.run(t.clean)
    base = t.per_input(clean["outputs"])
    changes = _each_node(model, t, values_of(model, t, clean)) - base[None]
    return _nodes(artifact.graph, _pool(changes, aggregate))


def activation_patching(artifact, task: int, *, aggregate: str = "abs") -> ComponentScores:
    """Patch each component alone (at every position) to its corrupted-run write; score the change
    of the task metric (pooled over inputs: mean |change| for ``"abs"``, signed mean for ``"mean"``)."""
    return _intervene("activation_patching", artifact, task, lambda m, t, clean: m.run(t.corrupted)["activations"], aggregate)


def ablation(artifact, task: int, *, kind: str = "mean", aggregate: str = "abs", seed: int = 0) -> ComponentScores:
    """Ablate each component alone: its write set to zero (``zero``), to its mean over the clean inputs
    at each position (``mean``), or to its write on another clean input (``resample``)."""
    p = Problems()
    p.choice("kind", kind, ABLATIONS)
    p.raise_if_any("ablation")

    # the clean run _intervene already made gives the values: no second run
    return _intervene("ablation", artifact, task,
                      lambda m, t, clean: ablation_values(clean["activations"], kind, seed=seed), aggregate)


def msa(artifact, task: int, *, kind: str = "zero", n_permutations: int = 64, players=None, seed: int = 0) -> ComponentScores:
    """Multi-perturbation Shapley analysis (Keinan et al. 2004) over the components (embeddings,
    heads, MLPs; each lesioned at every position): each one's Shapley contribution to the task's
    accuracy, sampled over ``n_permutations`` random orders (``methods.circuits.msa``, which
    works on any circuit model; checked against ``toys.exact_shapley``)."""
    _check("msa", artifact, task)
    return circuits.msa(artifact, task, kind=kind, n_permutations=n_permutations, players=players, seed=seed)


@functools.partial(jax.jit, static_argnames=("run_fn", "wrt", "position", "numerical"))
def _grad_jit(run_fn, params, ids, node_mask, node_values, clean_answer, corrupted_answer, *, wrt, position, numerical):
    """Gradient of the summed per-input metric with respect to ``wrt`` ("node_delta" or "pre_delta");
    each input's metric depends only on its own row, so row b of the gradient is input b's."""
    n_layers, n_heads, d = params["w_q"].shape[:3]
    shape = (ids.shape[0], 2 + n_layers * (n_heads + 1) + 1, ids.shape[1], d)

    def metric(delta):
        patch = Patch(node_mask=node_mask, node_values=node_values, **{wrt: delta})
        out = run_fn(params, ids, patch)["outputs"][:, position]
        if numerical:
            per = (out[:, 0] - corrupted_answer) / (clean_answer - corrupted_answer)
        else:
            rows = jnp.arange(out.shape[0])
            per = (out[rows, clean_answer] - out[rows, corrupted_answer] + 1.0) / 2.0
        return per.sum()

    return jax.grad(metric)(jnp.zeros(shape, jnp.float32))


def _gradients(model, t, ids, wrt: str, node_mask=None, node_values=None) -> np.ndarray:
    """(batch, n_nodes, n, d): gradient of each input's metric with respect to each node's write
    (``node_delta``) or input (``pre_delta``), with ``node_mask``/``node_values`` patched in."""
    return np.asarray(_grad_jit(
        model.run_fn, model.device_params, jnp.asarray(ids, jnp.int32),
        None if node_mask is None else jnp.asarray(node_mask), None if node_values is None else jnp.asarray(node_values),
        jnp.asarray(t.clean_answer), jnp.asarray(t.corrupted_answer), wrt=wrt, position=int(t.position),
        numerical=bool(t.numerical)))


def attribution_patching(artifact, task: int, *, aggregate: str = "abs") -> ComponentScores:
    """Linear estimate of activation patching (Nanda 2023): the metric's gradient with respect to
    each component's write at the clean input, times (corrupted - clean) write, summed over
    positions and dimensions."""
    t = _check("attribution_patching", artifact, task, aggregate=aggregate)
    model = artifact.model
    clean, corrupt = model.run(t.clean), model.run(t.corrupted)
    grads = _gradients(model, t, t.clean, "node_delta")
    change = (grads * (corrupt["activations"] - clean["activations"])).sum(axis=(2, 3))  # (batch, n_nodes)
    return _nodes(artifact.graph, _pool(change.T, aggregate))


def _eap(where: str, artifact, task: int, steps: int, name: str) -> ComponentScores:
    p = Problems()
    p.integer(name, steps, low=0)
    t = _check(where, artifact, task, p)
    model, graph = artifact.model, artifact.graph
    clean, corrupt = model.run(t.clean), model.run(t.corrupted)
    delta = (corrupt["activations"] - clean["activations"]).astype(np.float64)  # (batch, n_nodes, n, d)
    if steps:
        # Integrated gradients along the embeddings, from the corrupted to the clean input.
        mask = (graph.layers == 0).astype(np.float32)
        grads = np.zeros_like(delta)
        for a in (np.arange(steps) + 1) / steps:
            values = corrupt["activations"] + a * (clean["activations"] - corrupt["activations"])
            grads += _gradients(model, t, t.clean, "pre_delta", node_mask=mask, node_values=values) / steps
    else:
        grads = _gradients(model, t, t.clean, "pre_delta")
    matrix = np.einsum("bsnd,btnd->st", delta, grads.astype(np.float64)) / delta.shape[0]
    src, dst = graph.edges()
    return ComponentScores(edges=matrix[src, dst])


def edge_attribution_patching(artifact, task: int) -> ComponentScores:
    """Edge attribution patching (Syed et al. 2023): for edge (u, v), (corrupted - clean write of u)
    dotted with the gradient of the metric with respect to v's input, averaged over inputs."""
    return _eap("edge_attribution_patching", artifact, task, 0, "steps")


def eap_ig(artifact, task: int, *, steps: int = 5) -> ComponentScores:
    """EAP-IG (Hanna et al. 2024): edge attribution patching with the gradient averaged over
    ``steps`` points on the line from the corrupted to the clean embeddings."""
    if isinstance(steps, int) and not isinstance(steps, bool) and steps == 0:
        raise ValueError("eap_ig: steps must be in [1, inf), got 0 (steps=0 is edge_attribution_patching)")
    return _eap("eap_ig", artifact, task, steps, "steps")


def _edge_source(model, t, clean, kind: str) -> np.ndarray:
    if kind == "corrupted":
        return model.run(t.corrupted)["activations"]
    if kind == "zero":
        return np.zeros(clean["activations"].shape[1:], np.float32)
    return clean["activations"].mean(axis=0)


def edge_activation_patching(artifact, task: int, *, source: str = "corrupted", aggregate: str = "abs") -> ComponentScores:
    """Path patching of every edge (Wang et al. 2023; Goldowsky-Dill et al. 2023): the receiver
    alone reads the sender's ``source`` write (the corrupted run's, zero, or the clean mean) while
    every other component reads the clean one, and the change flows on to the output; the score
    is the change of the task metric."""
    p = Problems()
    p.choice("source", source, SOURCES)
    t = _check("edge_activation_patching", artifact, task, p, aggregate=aggregate)
    model, graph = artifact.model, artifact.graph
    clean = model.run(t.clean)
    base = t.per_input(clean["outputs"])
    values = _edge_source(model, t, clean, source)
    src, dst = graph.edges()
    scores = np.zeros(graph.n_edges)
    for e in range(graph.n_edges):
        mask = np.zeros((graph.n_nodes, graph.n_nodes), np.float32)
        mask[src[e], dst[e]] = 1.0
        out = model.run(t.clean, Patch(edge_mask=mask, edge_source=values))["outputs"]
        scores[e] = _pool((t.per_input(out) - base)[None], aggregate)[0]
    return ComponentScores(edges=scores)


def acdc(artifact, task: int, *, threshold: float = 0.01, source: str = "corrupted") -> ComponentScores:
    """ACDC (Conmy et al. 2023): prune edges greedily from the output back.

    Receivers are visited in reverse topological order, and each of their incoming edges is
    tentatively patched to the sender's ``source`` write (the corrupted run's: patching; ``"zero"``:
    zero ablation, as in ACDC's tracr experiments; ``"mean"``: the clean mean); the removal stays
    when the task metric moves by less than ``threshold`` (a fraction of the clean-corrupted gap)
    from the current circuit's. An edge's score is the move measured when it was tried.
    """
    p = Problems()
    p.number("threshold", threshold, low=0, high=1, high_open=True)
    p.choice("source", source, SOURCES)
    t = _check("acdc", artifact, task, p)
    model, graph = artifact.model, artifact.graph
    clean = model.run(t.clean)
    values = _edge_source(model, t, clean, source)
    clean_metric = float(t.metric(clean["outputs"]))
    gap = clean_metric - float(t.metric(model.run(t.corrupted)["outputs"]))
    change = circuits.acdc_prune(graph, lambda mask: float(t.metric(model.run(t.clean, Patch(edge_mask=mask, edge_source=values))["outputs"])),
                        clean_metric, gap, threshold)
    s, d = graph.edges()
    return ComponentScores(edges=change[s, d])


def _heads(graph) -> list[tuple[int, int, int]]:
    """(node, layer, head) for every attention head of the graph (labels ``a{layer}.h{head}``)."""
    out = []
    for node, label in enumerate(graph.labels):
        if label.startswith("a") and ".h" in label:
            layer, head = label[1:].split(".h")
            out.append((node, int(layer), int(head)))
    return out


def attention_heuristic(artifact, task: int, *, kind: str = "previous_token", seed: int = 0) -> ComponentScores:
    """Attention-pattern scores of each head (Olsson et al. 2022); other components are not scored.

    ``"previous_token"``: the mean attention from each position to the one before it, on the task's
    clean inputs. ``"prefix_matching"``: on random token sequences repeated twice (as many as fit; distinct
    tokens within a copy when the vocabulary allows),
    the mean attention from each token of the second copy to the token after its first
    occurrence — an induction head's signature. ``"copying"``: the copying score of each head's OV
    circuit, from the weights alone: the eigenvalues of the token-to-token matrix
    ``W_E W_V W_O W_U`` (rows the tokens the output logits name, ``model.output_tokens``; columns
    those logits), ``sum(Re λ) / sum(|λ|)`` — 1 for a head that raises the logit of the token it
    attends to, -1 for one that lowers it, 0 for a head whose values do not read tokens (and for
    every head of a model whose outputs name no token).
    """
    p = Problems()
    p.choice("kind", kind, HEURISTICS)
    t = _check("attention_heuristic", artifact, task, p)
    model, graph = artifact.model, artifact.graph
    n = t.clean.shape[1]
    if kind == "copying":
        per_head = _copying_scores(model)
    elif kind == "previous_token":
        patterns = model.run(t.clean)["patterns"]  # (batch, layers, heads, n, n)
        rows = np.arange(2, n)
        per_head = patterns[:, :, :, rows, rows - 1].mean(axis=(0, 3))
    else:
        half = (n - 1) // 2
        if half < 1:
            raise ValueError(f"attention_heuristic: prefix matching needs room for a repeated token, the task's inputs have {n - 1}")
        rng = np.random.default_rng([seed, 29])
        n_tokens = model.params["embed_tokens"].shape[0] - 1
        if n_tokens >= half:  # distinct tokens, as in a large vocabulary: each has one earlier occurrence
            first = np.stack([rng.permutation(n_tokens)[:half] + 1 for _ in range(64)])
        else:
            first = rng.integers(1, n_tokens + 1, size=(64, half))
        ids = np.concatenate([np.zeros((64, 1), np.int64), first, first], axis=1)
        patterns = model.run(ids)["patterns"]
        queries = np.arange(1 + half + 1, 1 + 2 * half)  # second-copy tokens with a successor in the first
        per_head = patterns[:, :, :, queries, queries - half + 1].mean(axis=(0, 3))
    scores = np.full(graph.n_nodes, np.nan)
    for node, layer, head in _heads(graph):
        scores[node] = per_head[layer, head]
    return ComponentScores(nodes=scores)


def _copying_scores(model) -> np.ndarray:
    """(n_layers, n_heads) copying scores (see ``attention_heuristic``)."""
    p = model.params
    n_layers, n_heads = p["w_q"].shape[:2]
    columns = np.flatnonzero(model.output_tokens >= 0)
    scores = np.zeros((n_layers, n_heads))
    if columns.size == 0:
        return scores
    embed = p["embed_tokens"][model.output_tokens[columns]].astype(np.float64)
    for layer in range(n_layers):
        for head in range(n_heads):
            ov = embed @ p["w_v"][layer, head] @ p["w_o"][layer, head] @ p["unembed"][:, columns]
            eig = np.linalg.eigvals(ov)
            total = np.abs(eig).sum()
            scores[layer, head] = eig.real.sum() / total if total > 1e-9 * max(1.0, np.abs(ov).max()) else 0.0
    return scores


__all__ = [
    "ABLATIONS", "AGGREGATES", "HEURISTICS", "SOURCES", "ablation", "acdc", "activation_patching", "attention_heuristic",
    "attribution_patching", "eap_ig", "edge_activation_patching", "edge_attribution_patching", "msa",
]
