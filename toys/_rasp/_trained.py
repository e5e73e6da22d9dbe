"""The trained kind of ``rasp_transformer``: a transformer of the compiled model's shape, trained
from random initialisation to *be* the program's causal model under intervention (strict
interchange intervention training, Geiger et al. 2022; Gupta et al. 2024, "InterpBench").

The high-level model is the compiled transformer itself: it computes the program exactly, and its
components are aligned one to one with the trained model's (the same embeddings, heads and MLPs).
Each training example is a base input, a source input and one intervention: a component (its
write replaced by its write on the source input), an edge (its receiver reading the sender's
write on the source input), or none. The trained model under it is fitted (squared error on every
output logit of every position) to the compiled model under the same intervention. Components
and edges outside the circuit are interchanged as often as those inside, so they learn to have no
effect (SIIT's strictness); interchanging components alone was not enough (a trained reverse
routed its work along edges no component interchange sees). No weight is zero: the circuit cannot
be read off the support. With ``residual_fraction`` below 1 the trained residual stream is narrower
than the compiled one's one direction per value of every variable, so the trained model holds the
program's variables in superposition; the tolerance is verify's (every task metric within
``TOLERANCE`` of the compiled model's, strictness included).

The truth is then measured on the trained model with the compiled kind's interventions (the
compiled wiring gives the candidate edges), and ``verify`` must pass, with one more check for dense
weights: no edge outside the circuit moves an answer alone. Otherwise the toy is refused.
``interchange_accuracy`` is the fraction of 1,024 interchanges drawn apart from training (with
these small vocabularies the inputs themselves are seen in training) whose decoded answers at every
position equal the compiled model's.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from planted.groundtruth import Patch
from planted.toys._rasp._circuit import _run, _run_jit
from planted.toys._rasp._compiler import Compiled
from planted.toys._rasp._language import NUMERICAL

BATCH = 64
RATE = 3e-3
RESTARTS, PROBE = 4, 400
HELD_OUT = 1024


def _inputs(key, batch: int, n: int, n_vocab: int):
    """Token ids (batch, n + 1), BOS then uniform tokens."""
    return jnp.concatenate([jnp.zeros((batch, 1), jnp.int32), jax.random.randint(key, (batch, n), 1, n_vocab + 1)], 1)


def _interchanged(params, base, source, node, edge, causal: bool):
    """Logits (batch, n, n_outputs) of ``base`` with the write of component ``node[b]`` replaced by
    its write on ``source`` (a per-example node patch, as a delta on the write), and along edge
    ``edge[b]`` (src, dst) dst reading src's write on ``source``; ``n_nodes`` for none."""
    base_writes = _run(params, base, Patch(), causal)["activations"]
    source_writes = _run(params, source, Patch(), causal)["activations"]
    n_nodes = base_writes.shape[1]
    pick = jax.nn.one_hot(node, n_nodes + 1)[:, :n_nodes, None, None]  # (batch, n_nodes, 1, 1)
    edges = jax.nn.one_hot(edge[:, 0], n_nodes + 1)[:, :n_nodes, None] * jax.nn.one_hot(edge[:, 1], n_nodes + 1)[:, None, :n_nodes]
    # The patched component's own write does not depend on itself, so the delta is exact.
    patch = Patch(node_delta=pick * (source_writes - base_writes), edge_mask=edges, edge_source=source_writes)
    return _run(params, base, patch, causal)["outputs"]


# Compiled once per model shape for the held-out interchanges (run op by op, each operation compiled apart).
_interchanged_jit = jax.jit(_interchanged, static_argnums=5)


def _batch(key, n: int, n_vocab: int, edges: np.ndarray):
    """Base and source inputs and one intervention each: a third a component, two thirds an edge
    (``edges`` (n_edges, 2) lists the graph's), a few none."""
    k1, k2, k3, k4, k5 = jax.random.split(key, 5)
    n_nodes = int(np.max(edges)) + 1
    # Component index n_nodes - 1 is the output (nothing to interchange) and n_nodes "none".
    node = jax.random.randint(k3, (BATCH,), 0, n_nodes + 1)
    node = jnp.where(node >= n_nodes - 1, n_nodes, node)
    edge = jnp.asarray(edges)[jax.random.randint(k4, (BATCH,), 0, edges.shape[0])]
    on_edge = jax.random.uniform(k5, (BATCH,)) < 2 / 3
    node = jnp.where(on_edge, n_nodes, node)
    edge = jnp.where(on_edge[:, None], edge, n_nodes)
    return _inputs(k1, BATCH, n, n_vocab), _inputs(k2, BATCH, n, n_vocab), node, edge


def _edges(params) -> np.ndarray:
    """(n_edges, 2) every edge (src, dst) of the component graph of ``params``' shape."""
    from planted.toys._rasp._circuit import component_graph

    src, dst = component_graph(params["w_q"].shape[0], params["w_q"].shape[1]).edges()
    return np.stack([src, dst], 1).astype(np.int32)


def trained_shapes(compiled: Compiled, residual_fraction: float = 1.0) -> dict[str, tuple[int, ...]]:
    """The trained model's weight shapes: the compiled ones, with the residual stream (d_model, one
    direction per value of every variable in the compiled model) narrowed to
    ``ceil(residual_fraction * d_model)``: below 1, the program's variables share directions
    (superposition)."""
    shapes = {k: tuple(v.shape) for k, v in compiled.params.items()}
    n_layers, n_heads, d, d_head = shapes["w_q"]
    width = max(1, int(np.ceil(residual_fraction * d)))
    d_mlp = shapes["w_in"][2]
    shapes.update(embed_tokens=(shapes["embed_tokens"][0], width), embed_positions=(shapes["embed_positions"][0], width),
                  w_q=(n_layers, n_heads, width, d_head), w_k=(n_layers, n_heads, width, d_head),
                  w_v=(n_layers, n_heads, width, d_head), w_o=(n_layers, n_heads, d_head, width),
                  w_in=(n_layers, width, d_mlp), w_out=(n_layers, d_mlp, width), unembed=(width, shapes["unembed"][1]))
    return shapes


def _init(key, shapes: dict) -> dict:
    """Random weights of the compiled shapes: embeddings N(0, 1), matrices N(0, 1 / fan-in)."""
    keys = jax.random.split(key, len(shapes))
    out = {}
    for k, (name, shape) in zip(keys, sorted(shapes.items())):
        fan = 1 if name.startswith("embed") else shape[-2]
        out[name] = jax.random.normal(k, shape, jnp.float32) / np.sqrt(fan)
    return out


@functools.partial(jax.jit, static_argnames=("shapes", "causal", "steps", "n", "n_vocab", "every"))
def _train(high, key, *, shapes: tuple, causal: bool, steps: int, n: int, n_vocab: int, every: int = 0):
    import optax

    edges = _edges(high)
    init_key, data_key = jax.random.split(key)
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(optax.cosine_decay_schedule(RATE, steps, 0.05)))

    def loss(q, base, source, node, edge):
        target = jax.lax.stop_gradient(_interchanged(high, base, source, node, edge, causal))
        # Squared error summed over the logits (a categorical output has one per value), averaged over positions.
        return jnp.mean(jnp.sum((_interchanged(q, base, source, node, edge, causal)[:, 1:] - target[:, 1:]) ** 2, axis=-1))

    def step(carry, k):
        q, state = carry
        value, grads = jax.value_and_grad(loss)(q, *_batch(k, n, n_vocab, edges))
        updates, state = opt.update(grads, state, q)
        return (optax.apply_updates(q, updates), state), value

    def chunk(carry, ks):  # ``every`` steps, then a snapshot of the parameters
        carry, values = jax.lax.scan(step, carry, ks)
        return carry, (carry[0], values)

    def run(carry, ks):
        """Train on the keys ``ks``; returns the state, the step losses and (with ``every``) the snapshots."""
        if not every:
            carry, values = jax.lax.scan(step, carry, ks)
            return carry, values, None
        carry, (kept, values) = jax.lax.scan(chunk, carry, ks.reshape(-1, every, *ks.shape[1:]))
        return carry, values.reshape(-1), kept

    # Restarts: RESTARTS initialisations train on the same first PROBE batches; the one with the
    # lowest loss goes on (some initialisations stall on a plateau the others leave).
    data = jax.random.split(data_key, steps)
    inits = jax.vmap(lambda k: _init(k, dict(shapes)))(jax.random.split(init_key, RESTARTS))
    probe = min(PROBE, steps)
    (ps, ss), probe_losses, probe_kept = jax.vmap(lambda p, s: run((p, s), data[:probe]))(inits, jax.vmap(opt.init)(inits))
    best = jnp.argmin(probe_losses[:, -probe // 8:].mean(axis=1))
    carry = jax.tree.map(lambda x: x[best], (ps, ss))
    (params, _), losses, kept = run(carry, data[probe:])
    losses = jnp.concatenate([probe_losses[best], losses])
    if not every:
        return params, losses, None
    first = jax.tree.map(lambda x: x[best][None], inits)
    snapshots = jax.tree.map(lambda a, b, c: jnp.concatenate([a, b[best], c]), first, probe_kept, kept)
    return params, losses, snapshots


INTENDED = 1e-3  # a key the compiled head gives at least this much attention is one it intends
HEAD_FORMED = 0.9  # a head has formed once this much of its attention stays on its intended keys


def _norms(params: dict, graph) -> np.ndarray:
    """(4, n_nodes) the norms of each component's weights: a head's query, key, value and output
    weights, an MLP's input and output weights, the embeddings' and the unembedding's."""
    out = np.zeros((4, graph.n_nodes), np.float32)
    labels = list(graph.labels)
    out[0, labels.index("embed")] = np.linalg.norm(params["embed_tokens"])
    out[0, labels.index("pos_embed")] = np.linalg.norm(params["embed_positions"])
    out[0, labels.index("out")] = np.linalg.norm(params["unembed"])
    n_layers, n_heads = params["w_q"].shape[:2]
    for layer in range(n_layers):
        for h in range(n_heads):
            node = labels.index(f"a{layer}.h{h}")
            for row, name in enumerate(("w_q", "w_k", "w_v", "w_o")):
                out[row, node] = np.linalg.norm(params[name][layer, h])
        node = labels.index(f"m{layer}")
        out[0, node], out[1, node] = np.linalg.norm(params["w_in"][layer]), np.linalg.norm(params["w_out"][layer])
    return out


def _patterns(params: dict, ids, causal: bool) -> np.ndarray:
    return np.asarray(_run_jit(jax.device_put(params), ids, Patch(), causal, jnp)["patterns"])


def head_attention(intended: np.ndarray, params: dict, ids, causal: bool) -> np.ndarray:
    """(n_layers, n_heads) the mean fraction of each head's attention, over the inputs ``ids``
    and every query after BOS, on the ``intended`` keys (the compiled twin's patterns at least
    ``INTENDED``, (batch, n_layers, n_heads, n, n) bool)."""
    on = np.where(intended, _patterns(params, ids, causal), 0.0).sum(axis=-1)  # (batch, L, H, queries)
    return on[..., 1:].mean(axis=(0, 3))


def _record(compiled: Compiled, snapshots: dict, losses: np.ndarray, every: int, seed: int):
    """The ``CircuitFormation`` of a training run: each head's attention on its intended keys and
    each component's weight norms at each snapshot, and the mean training loss since the last."""
    from planted.groundtruth import CircuitFormation
    from planted.toys._rasp._circuit import component_graph

    n_layers, n_heads = compiled.params["w_q"].shape[:2]
    graph = component_graph(n_layers, n_heads)
    ids = _inputs(jax.random.fold_in(jax.random.PRNGKey(seed), 2), 256, compiled.max_seq_len, len(compiled.vocab))
    n_snap = next(iter(snapshots.values())).shape[0]
    intended = _patterns(compiled.params, ids, compiled.causal) >= INTENDED
    attention, norms = [], []
    for s in range(n_snap):
        params = {k: np.asarray(v[s]) for k, v in snapshots.items()}
        attention.append(head_attention(intended, params, ids, compiled.causal).reshape(-1))
        norms.append(_norms(params, graph))
    labels = [f"a{layer}.h{h}" for layer in range(n_layers) for h in range(n_heads)]
    nodes = np.zeros((len(labels), graph.n_nodes), bool)
    nodes[np.arange(len(labels)), [graph.labels.index(label) for label in labels]] = True
    losses = np.asarray(losses, np.float64)
    per_snapshot = np.concatenate([losses[:1], losses.reshape(-1, every).mean(axis=1)])
    return CircuitFormation(steps=np.arange(n_snap) * every, losses=per_snapshot, parameters=np.stack(norms),
                            gates=tuple(labels), gate_accuracy=np.stack(attention), gate_nodes=nodes,
                            threshold=HEAD_FORMED)


def train(compiled: Compiled, steps: int, seed: int, residual_fraction: float = 1.0,
          snapshot_every: int = 0) -> tuple[dict, dict, object]:
    """Weights (of ``trained_shapes``) trained to match ``compiled`` under interchange, a report
    (``loss``: the last 100 steps' mean, ``interchange_accuracy`` on ``HELD_OUT`` interchanges,
    ``steps``, ``d_model``: the trained residual width) and, with ``snapshot_every``, the
    training record (``CircuitFormation``; else None)."""
    high = jax.device_put(compiled.params)
    n, n_vocab = compiled.max_seq_len, len(compiled.vocab)
    key = jax.random.PRNGKey(seed)
    shapes = tuple(sorted(trained_shapes(compiled, residual_fraction).items()))
    params, losses, snapshots = _train(high, jax.random.fold_in(key, 0), shapes=shapes, causal=compiled.causal,
                                       steps=steps, n=n, n_vocab=n_vocab, every=snapshot_every)
    params = {k: np.asarray(v, np.float32) for k, v in params.items()}
    accuracy = interchange_accuracy(compiled, params, seed)
    record = None if snapshots is None else _record(compiled, snapshots, np.asarray(losses), snapshot_every, seed)
    return params, {"loss": float(np.mean(np.asarray(losses)[-100:])), "interchange_accuracy": accuracy, "steps": steps,
                    "d_model": int(params["w_q"].shape[2])}, record


def interchange_accuracy(compiled: Compiled, params: dict, seed: int) -> float:
    """The fraction of ``HELD_OUT`` interchanges (base, source, and a component, an edge or none;
    drawn from a stream apart from training's) on which ``params`` decodes to the compiled model's
    answers at every input position (numerical answers: within a quarter of the smallest gap
    between the output's values)."""
    edges = _edges(compiled.params)
    key = jax.random.fold_in(jax.random.PRNGKey(seed), 1)
    high, low = jax.device_put((compiled.params, params))
    hits = []
    for k in jax.random.split(key, HELD_OUT // BATCH):
        base, source, node, edge = _batch(k, compiled.max_seq_len, len(compiled.vocab), edges)
        want = np.asarray(_interchanged_jit(high, base, source, node, edge, compiled.causal))[:, 1:]
        got = np.asarray(_interchanged_jit(low, base, source, node, edge, compiled.causal))[:, 1:]
        hits.append(_agree(compiled, got, want))
    return float(np.concatenate(hits).mean())


def _agree(compiled: Compiled, got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """(batch,) whether two logit arrays (batch, n, n_outputs) decode alike at every position."""
    if compiled.output_encoding == NUMERICAL:
        values = sorted({float(v) for v in compiled.info[id(compiled.program)].encoded if v is not None})
        gap = min((b - a for a, b in zip(values, values[1:])), default=1.0)
        null_got, null_want = got[..., 1] > 0.5, want[..., 1] > 0.5
        close = np.abs(got[..., 0] - want[..., 0]) < gap / 4
        return ((null_got == null_want) & (null_want | close)).all(axis=1)
    return (got.argmax(-1) == want.argmax(-1)).all(axis=1)
