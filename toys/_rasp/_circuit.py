"""The circuit interface of a compiled (or trained) transformer: its component graph, one ``run``
with interventions on components, positions and edges, and the tasks a circuit method studies.

Components (the graph's nodes, as in ACDC and MIB): the token embedding ``embed`` and the position
embedding ``pos_embed`` (layer 0), every attention head ``a{l}.h{h}`` (graph layer 2l + 1), the MLP
of each layer ``m{l}`` (graph layer 2l + 2), and the output ``out`` (last layer). A component's
*activation* is what it writes into the residual stream, (n_positions, d_model) per input; the
output's is the residual stream it reads. Every component reads the sum of the writes of all
earlier ones, so an edge (src, dst) is src's write as dst reads it.

``run(ids, patch)`` takes a ``groundtruth.Patch``:

- ``node_mask`` (n_nodes,) or (n_nodes, n_positions) 0/1 and ``node_values`` (batch, n_nodes,
  n_positions, d_model) or without the batch axis: those writes replaced (at those positions);
- ``edge_mask`` (n_nodes, n_nodes) or (batch, n_nodes, n_nodes) 0/1 and ``edge_source`` like
  ``node_values``: along each masked edge, dst reads ``edge_source[src]`` instead of src's write (a
  head's queries, keys and values all read it);
- ``node_delta`` added to writes, ``pre_delta`` added to each component's input (for gradients).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from planted.groundtruth import ComponentGraph, NodeParameters, Patch, ablation_values


def component_graph(n_layers: int, n_heads: int) -> ComponentGraph:
    """The components of a transformer with ``n_layers`` layers of ``n_heads`` heads and an MLP."""
    labels = ["embed", "pos_embed"]
    layers = [0, 0]
    for layer in range(n_layers):
        labels += [f"a{layer}.h{h}" for h in range(n_heads)]
        layers += [2 * layer + 1] * n_heads
        labels.append(f"m{layer}")
        layers.append(2 * layer + 2)
    labels.append("out")
    layers.append(2 * n_layers + 1)
    return ComponentGraph(labels=tuple(labels), layers=np.array(layers))


def _softmax(x, xp):
    x = x - x.max(axis=-1, keepdims=True)
    e = xp.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def _run(params: dict, ids, patch: Patch, causal: bool, xp=jnp) -> dict:
    """Forward pass of token ids (batch, n) with interventions (see the module docstring), in JAX
    (``xp=jnp``, jit-compiled by ``run``) or in NumPy (``xp=np``: the float64 reference of
    ``run_exact``, which the truth and ``verify`` use)."""
    if patch.resid_mask is not None:
        raise ValueError("a transformer circuit model patches components, positions and edges; resid_mask is not supported "
                         "(patch the components that write the residual stream instead)")
    dtype = jnp.float32 if xp is jnp else np.float64

    def arr(value):
        return xp.asarray(value, dtype)

    ids = xp.asarray(ids, xp.int32)
    batch, n = ids.shape
    n_layers, n_heads, d = params["w_q"].shape[0], params["w_q"].shape[1], params["w_q"].shape[2]
    n_nodes = 2 + n_layers * (n_heads + 1) + 1
    full = (batch, n_nodes, n, d)
    node_mask = None
    if patch.node_mask is not None:
        node_mask = arr(patch.node_mask)
        node_mask = node_mask[:, :, None] if node_mask.ndim == 2 else node_mask[:, None, None]
        node_values = xp.broadcast_to(arr(patch.node_values), full)
    node_delta = None if patch.node_delta is None else xp.broadcast_to(arr(patch.node_delta), full)
    pre_delta = None if patch.pre_delta is None else xp.broadcast_to(arr(patch.pre_delta), full)
    edge_mask = None if patch.edge_mask is None else arr(patch.edge_mask)
    source = None if patch.edge_source is None else xp.broadcast_to(arr(patch.edge_source), full)
    allowed = xp.tril(xp.ones((n, n), bool)) if causal else xp.ones((n, n), bool)
    p = {k: arr(v) for k, v in params.items()}

    writes: list = []  # (batch, n, d) per node so far

    def finish(node: int, write):
        if node_mask is not None:
            write = write + node_mask[node] * (node_values[:, node] - write)
        if node_delta is not None:
            write = write + node_delta[:, node]
        writes.append(write)
        return write

    def read(node: int, resid):
        """What ``node`` reads: the residual stream, with its patched edges and pre_delta."""
        x = resid
        if edge_mask is not None and writes:
            k = len(writes)
            if xp is np:  # only the masked sources are read: most patches mask a few edges
                held = np.flatnonzero(edge_mask[..., :k, node].reshape(-1, k).any(axis=0))
                stack = np.stack([writes[s] for s in held], 1) if held.size else None
            else:  # under jit the mask is traced, so every earlier write is read
                held, stack = slice(0, k), xp.stack(writes, 1)  # (batch, k, n, d)
            if stack is not None:
                if edge_mask.ndim == 3:  # one mask per input
                    x = x + xp.einsum("bs,bsnd->bnd", edge_mask[:, held, node], source[:, held] - stack)
                else:
                    x = x + xp.einsum("s,bsnd->bnd", edge_mask[held, node], source[:, held] - stack)
        if pre_delta is not None:
            x = x + pre_delta[:, node]
        return x

    resid = finish(0, p["embed_tokens"][ids])
    resid = resid + finish(1, xp.broadcast_to(p["embed_positions"][:n], (batch, n, d)))
    patterns = []
    node = 2
    for layer in range(n_layers):
        added = 0.0
        layer_patterns = []
        for h in range(n_heads):
            x = read(node, resid)
            q = x @ p["w_q"][layer, h]
            k = x @ p["w_k"][layer, h]
            v = x @ p["w_v"][layer, h]
            pattern = _softmax(xp.where(allowed, xp.einsum("bqe,bke->bqk", q, k), -xp.inf), xp)
            layer_patterns.append(pattern)
            added = added + finish(node, xp.einsum("bqk,bke->bqe", pattern, v) @ p["w_o"][layer, h])
            node += 1
        resid = resid + added
        patterns.append(xp.stack(layer_patterns, 1))
        x = read(node, resid)
        resid = resid + finish(node, xp.maximum(x @ p["w_in"][layer], 0.0) @ p["w_out"][layer])
        node += 1
    final = finish(node, read(node, resid))
    activations = xp.stack(writes, 1)
    return {"outputs": final @ p["unembed"], "activations": activations, "patterns": xp.stack(patterns, 1)}


_run_jit = jax.jit(_run, static_argnums=(3, 4))


@functools.partial(jax.jit, static_argnums=4)
def _patch_each_jit(params, ids, values, masks, causal):
    """Outputs (k, batch, n, n_outputs) with each of the k one-hot node ``masks`` patched to ``values``."""
    return jax.vmap(lambda mask: _run(params, ids, Patch(node_mask=mask, node_values=values), causal)["outputs"])(masks)


@functools.partial(jax.jit, static_argnums=4)
def _patch_edges_jit(params, ids, source, masks, causal):
    """Outputs (k, batch, n, n_outputs) with each of the k edge ``masks`` carrying ``source``."""
    return jax.vmap(lambda mask: _run(params, ids, Patch(edge_mask=mask, edge_source=source), causal)["outputs"])(masks)


@dataclasses.dataclass(frozen=True, eq=False)
class TransformerModel:
    """A transformer with a circuit interface: parameters (the flat dict of ``rasp.apply``), its
    component graph, and ``run``. ``run_fn(params, ids, patch)`` is the pure JAX function for
    methods that differentiate or vmap it. ``output_tokens`` (n_outputs,): the token id each output
    logit names (its unembedding's labels, like a tokenizer's), -1 where it names none (null, a
    number, a value outside the vocabulary)."""

    params: dict
    graph: ComponentGraph
    causal: bool
    output_tokens: np.ndarray | None = None
    run_fn: object = dataclasses.field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", {k: np.asarray(v, np.float32) for k, v in self.params.items()})
        n_outputs = self.params["unembed"].shape[1]
        tokens = np.full(n_outputs, -1, np.int64) if self.output_tokens is None else np.asarray(self.output_tokens, np.int64)
        if tokens.shape != (n_outputs,):
            raise ValueError(f"output_tokens must have one entry per output logit ({n_outputs}), got shape {tokens.shape}")
        object.__setattr__(self, "output_tokens", tokens)
        object.__setattr__(self, "_device_params", jax.device_put(self.params))  # a copy, nothing to compile
        # One object per model, so jit-compiled callers that take it as a static argument reuse their traces.
        object.__setattr__(self, "run_fn", functools.partial(_run, causal=self.causal))

    @property
    def device_params(self) -> dict:
        return self._device_params

    def run(self, ids, patch: Patch | None = None) -> dict[str, np.ndarray]:
        """``outputs`` (batch, n, n_outputs) logits, ``activations`` (batch, n_nodes, n, d_model),
        ``patterns`` (batch, n_layers, n_heads, n, n), under ``patch``."""
        out = _run_jit(self._device_params, np.asarray(ids, np.int32), patch or Patch(), self.causal, jnp)
        return {k: np.asarray(v) for k, v in out.items()}

    def run_exact(self, ids, patch: Patch | None = None) -> dict[str, np.ndarray]:
        """``run`` in float64 NumPy: the reference the truth and ``verify`` are computed with (an
        implementation of its own, the same on every thread count, and with nothing to compile)."""
        return _run(self.params, np.asarray(ids), patch or Patch(), self.causal, np)

    def export(self) -> dict[str, np.ndarray]:
        """The parameters as a flat dict of NumPy arrays (copies)."""
        return {k: v.copy() for k, v in self.params.items()}

    def node_parameters(self) -> dict[int, NodeParameters]:
        """Which parameters belong to each component: an embedding its table (``out``), a head its
        query, key and value weights (``inputs``) and output weights, an MLP its two weight
        matrices, the output the unembedding (``inputs``). What damage to a component changes,
        and what a comparison of two networks' weights reads per component."""
        n_layers, n_heads = self.params["w_q"].shape[:2]
        nodes = {0: NodeParameters(out=(("embed_tokens", ()),)), 1: NodeParameters(out=(("embed_positions", ()),))}
        node = 2
        for layer in range(n_layers):
            for h in range(n_heads):
                nodes[node] = NodeParameters(inputs=tuple((name, (layer, h)) for name in ("w_q", "w_k", "w_v")),
                                             out=(("w_o", (layer, h)),))
                node += 1
            nodes[node] = NodeParameters(inputs=(("w_in", (layer,)),), out=(("w_out", (layer,)),))
            node += 1
        nodes[node] = NodeParameters(inputs=(("unembed", ()),))
        return nodes

    def ablated(self, ids, kind: str, *, seed: int = 0) -> np.ndarray:
        """What an ablation sets each component's write to on ``ids``: 0 (``zero``; (n_nodes, n, d_model)),
        its mean over the inputs at each position (``mean``; the same shape), or its write on another
        input (``resample``: a permutation drawn from ``seed``; (batch, n_nodes, n, d_model))."""
        if kind == "zero":
            return np.zeros((self.graph.n_nodes, np.shape(ids)[1], self.params["w_q"].shape[2]), np.float32)
        return ablation_values(self.run(ids)["activations"], kind, seed=seed)

    def residuals(self, ids) -> np.ndarray:
        """(n_layers * 2 + 1, batch * n, d_model) float32: the residual stream on ``ids`` after the
        embeddings and after each attention and each MLP sublayer, every position a row (what
        each layer of the component graph writes into; the layers a layer-matching method
        compares)."""
        writes = self.run(ids)["activations"]  # (batch, n_nodes, n, d)
        layers = self.graph.layers
        out = [writes[:, layers <= layer].sum(axis=1) for layer in range(int(layers.max()))]
        return np.stack([r.reshape(-1, r.shape[-1]) for r in out]).astype(np.float32)

    def patch_nodes(self, ids, nodes, values, *, chunk: int = 8) -> np.ndarray:
        """Outputs (len(nodes), batch, n, n_outputs) with each node in ``nodes`` alone taking
        ``values`` (batch, n_nodes, n, d_model) at every position: one ``run`` per node with
        ``Patch(node_mask=one_hot(node), node_values=values)``, vmapped over chunks of nodes."""
        nodes = np.asarray(nodes, np.int64)
        return self.patch_node_sets(ids, np.eye(self.graph.n_nodes, dtype=np.float32)[nodes], values, chunk=chunk)

    def patch_node_sets(self, ids, masks, values, *, chunk: int = 8) -> np.ndarray:
        """Outputs (len(masks), batch, n, n_outputs) with, for each row of ``masks`` (n_sets,
        n_nodes) 0/1, the nodes it marks set together to ``values`` ((batch, n_nodes, n, d_model) or
        (n_nodes, n, d_model)) at every position, vmapped in chunks. Lesions of several components
        at once (pairs, coalitions) go through here."""
        masks = np.asarray(masks, np.float32)
        if masks.ndim != 2 or masks.shape[1] != self.graph.n_nodes:
            raise ValueError(f"masks must be (n_sets, {self.graph.n_nodes}), got shape {masks.shape}")
        # Copied to the device once for every chunk (device_put compiles nothing; jnp.asarray would, per shape).
        ids, values = jax.device_put((np.asarray(ids, np.int32), np.asarray(values, np.float32)))
        if not masks.shape[0]:
            return np.zeros((0, ids.shape[0], ids.shape[1], self.params["unembed"].shape[1]), np.float32)
        padded = np.concatenate([masks, np.repeat(masks[:1], -masks.shape[0] % chunk, axis=0)])
        out = [np.asarray(_patch_each_jit(self._device_params, ids, values, padded[i:i + chunk], self.causal))
               for i in range(0, padded.shape[0], chunk)]
        return np.concatenate(out)[: masks.shape[0]]

    def patch_edges(self, ids, src, dst, source, *, chunk: int = 8) -> np.ndarray:
        """Outputs (len(src), batch, n, n_outputs) with each edge (src[i], dst[i]) alone carrying
        ``source[src[i]]`` ((batch, n_nodes, n, d_model) or (n_nodes, n, d_model)) instead of src's
        write."""
        src, dst = np.asarray(src, np.int64), np.asarray(dst, np.int64)
        ids, source = jax.device_put((np.asarray(ids, np.int32), np.asarray(source, np.float32)))
        n = self.graph.n_nodes
        if not src.size:
            return np.zeros((0, ids.shape[0], ids.shape[1], self.params["unembed"].shape[1]), np.float32)
        pad = -src.size % chunk
        ps, pd = np.concatenate([src, np.repeat(src[:1], pad)]), np.concatenate([dst, np.repeat(dst[:1], pad)])
        out = []
        for i in range(0, ps.size, chunk):
            masks = np.zeros((chunk, n, n), np.float32)
            masks[np.arange(chunk), ps[i:i + chunk], pd[i:i + chunk]] = 1.0
            out.append(np.asarray(_patch_edges_jit(self._device_params, ids, source, masks, self.causal)))
        return np.concatenate(out)[: src.size]


@dataclasses.dataclass(frozen=True, eq=False)
class TransformerTask:
    """One task: clean and corrupted token ids (batch, n) with BOS first, and the answers read at
    ``position`` (an index into the ids).

    For a categorical output, ``clean_answer`` and ``corrupted_answer`` are output columns and the
    per-input metric is ``(logit[clean] - logit[corrupted] + 1) / 2``: 1 on the clean run of a
    compiled model, 0 on the corrupted one. For a numerical output they are values and the metric
    is ``(value - corrupted) / (clean - corrupted)``. ``metric(outputs)`` is its mean.
    """

    name: str
    index: int
    clean: np.ndarray
    corrupted: np.ndarray
    position: int
    clean_answer: np.ndarray
    corrupted_answer: np.ndarray
    numerical: bool

    def per_input(self, outputs):
        """The metric of each input (batch,); outputs (batch, n, n_outputs), NumPy or JAX."""
        at = outputs[..., self.position, :]
        if self.numerical:
            return (at[..., 0] - self.corrupted_answer) / (self.clean_answer - self.corrupted_answer)
        rows = np.arange(self.clean.shape[0])
        return (at[..., rows, self.clean_answer] - at[..., rows, self.corrupted_answer] + 1.0) / 2.0

    def metric(self, outputs):
        """The task metric of model outputs (batch, n, n_outputs): the mean of ``per_input``."""
        return self.per_input(outputs).mean(axis=-1)

    def accuracy(self, outputs) -> np.ndarray:
        """The fraction of the clean inputs answered right by model outputs (..., batch, n,
        n_outputs): a categorical answer's logit strictly above every other logit (a tie, as when
        a lesion zeroes every logit, is wrong), a numerical value nearer the clean answer than the
        corrupted one. What a lesion or a damage costs."""
        at = np.asarray(outputs, np.float64)[..., self.position, :]
        if self.numerical:
            return (np.abs(at[..., 0] - self.clean_answer) < np.abs(at[..., 0] - self.corrupted_answer)).mean(axis=-1)
        rows = np.arange(at.shape[-2])
        right = at[..., rows, self.clean_answer]
        others = at.copy()
        others[..., rows, self.clean_answer] = -np.inf
        return (right > others.max(axis=-1)).mean(axis=-1)

    def readout(self, outputs) -> np.ndarray:
        """What the task reads of model outputs (..., batch, n, n_outputs): the logits at its
        position (..., batch, n_outputs)."""
        return np.asarray(outputs)[..., self.position, :]


@dataclasses.dataclass(frozen=True, eq=False)
class TransformerArtifact:
    """What a transformer circuit method sees: the model, its component graph and the tasks."""

    model: TransformerModel
    graph: ComponentGraph
    tasks: tuple[TransformerTask, ...]
