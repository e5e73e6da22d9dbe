"""The model: one pure JAX function with interventions, its batched patching kernels, and the
records a circuit method sees (``CircuitModel``, ``CircuitTask``, ``CircuitArtifact``)."""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from planted.groundtruth import ComponentGraph, NodeParameters, Patch, ablation_values

if TYPE_CHECKING:
    from planted.toys._planted_mlp._config import PlantedMLPConfig


def _writes(params: dict, xp=jnp):
    """(n_inputs + n_blocks * width, d_model): what a unit of each source node adds to the residual."""
    return xp.concatenate([params["embed"], params["w_out"].reshape(-1, params["w_out"].shape[-1])])


def _reads(params: dict, xp=jnp):
    """(n_blocks * width + n_tasks, d_model): the residual direction each destination node reads."""
    return xp.concatenate([params["w_in"].reshape(-1, params["w_in"].shape[-1]), params["readout"]])


def _run(params: dict, x, patch: Patch):
    """Forward pass with interventions; returns outputs (batch, n_tasks), activations and pre (batch, n_nodes)."""
    embed, w_in, b_in, w_out = params["embed"], params["w_in"], params["b_in"], params["w_out"]
    readout, readout_bias = params["readout"], params["readout_bias"]
    n_in, n_blocks, width = embed.shape[0], w_in.shape[0], w_in.shape[1]
    x = jnp.asarray(x, jnp.float32)
    batch = x.shape[0]
    if patch.edge_mask is not None:
        # Edge weights: what a unit of src's activation adds to dst's input, through the residual.
        writes = _writes(params)
        edge_weights = writes @ _reads(params).T  # (sources, destinations after the inputs)
        source = jnp.broadcast_to(jnp.asarray(patch.edge_source, jnp.float32), (batch, writes.shape[0] + readout.shape[0]))

    def node_slice(value, start, stop):
        return None if value is None else jnp.broadcast_to(jnp.asarray(value, jnp.float32), (batch, value.shape[-1]))[:, start:stop]

    def finish(pre, start, stop, activation, acts_so_far):
        if patch.edge_mask is not None and start > 0:
            mask = jnp.asarray(patch.edge_mask, jnp.float32)[:start, start:stop]
            weights = edge_weights[:start, start - n_in : stop - n_in] * mask
            pre = pre + (source[:, :start] - acts_so_far) @ weights
        if patch.pre_delta is not None:
            pre = pre + node_slice(patch.pre_delta, start, stop)
        act = activation(pre)
        if patch.node_mask is not None:
            m = jnp.asarray(patch.node_mask, jnp.float32)[start:stop]
            act = act + m * (node_slice(patch.node_values, start, stop) - act)
        if patch.node_delta is not None:
            act = act + node_slice(patch.node_delta, start, stop)
        return pre, act

    def resid_patch(r, position):
        if patch.resid_mask is None:
            return r
        m = jnp.asarray(patch.resid_mask, jnp.float32)[position]
        return r + m * (jnp.asarray(patch.resid_values, jnp.float32)[:, position] - r)

    pre, act = finish(x, 0, n_in, lambda v: v, None)
    pres, acts = [pre], [act]
    r = resid_patch(act @ embed, 0)
    for block in range(n_blocks):
        start = n_in + block * width
        pre, act = finish(r @ w_in[block].T + b_in[block], start, start + width, jax.nn.relu, jnp.concatenate(acts, axis=1))
        pres.append(pre)
        acts.append(act)
        r = resid_patch(r + act @ w_out[block], block + 1)
    start = n_in + n_blocks * width
    pre, out = finish(r @ readout.T + readout_bias, start, start + readout.shape[0], lambda v: v, jnp.concatenate(acts, axis=1))
    pres.append(pre)
    acts.append(out)
    return {"outputs": out, "activations": jnp.concatenate(acts, axis=1), "pre": jnp.concatenate(pres, axis=1)}


_run_jit = jax.jit(_run)


def _pad(index: np.ndarray, chunk: int) -> np.ndarray:
    """``index`` padded with its first entry to a multiple of ``chunk``."""
    if index.size == 0:
        return index
    return np.concatenate([index, np.full(-index.size % chunk, index[0])])


@jax.jit
def _clean_pass(params, x):
    """The clean run and the residual stream after the embedding and after each block."""
    r = x @ params["embed"]
    residuals = [r]
    for block in range(params["w_in"].shape[0]):
        r = r + jax.nn.relu(r @ params["w_in"][block].T + params["b_in"][block]) @ params["w_out"][block]
        residuals.append(r)
    return residuals, _run(params, x, Patch())


@functools.partial(jax.jit, static_argnums=4)
def _patch_layer_jit(params, residual, delta, writes, start):
    """Outputs for nodes of one layer: residual (batch, d) after layer ``start`` (0: the
    embedding), delta (c, batch) each node's change, writes (c, d) their write vectors."""

    def one(change, write):
        r = residual + change[:, None] * write[None, :]
        for block in range(start, params["w_in"].shape[0]):
            r = r + jax.nn.relu(r @ params["w_in"][block].T + params["b_in"][block]) @ params["w_out"][block]
        return r @ params["readout"].T + params["readout_bias"]

    return jax.vmap(one)(delta, writes)


@functools.partial(jax.jit, static_argnums=5)
def _patch_edges_jit(params, x, src, dst, source, n_nodes):
    def one(s, d):
        mask = jnp.zeros((n_nodes, n_nodes)).at[s, d].set(1.0)
        return _run(params, x, Patch(edge_mask=mask, edge_source=source))["outputs"]

    return jax.vmap(one)(src, dst)




@jax.jit
def _patch_sets_jit(params, x, masks, values):
    return jax.vmap(lambda m: _run(params, x, Patch(node_mask=m, node_values=values))["outputs"])(masks)


@dataclasses.dataclass(frozen=True, eq=False)
class CircuitModel:
    """A planted-circuit network: its parameters and the one function that runs it.

    ``run(x, patch)`` is the only way in: it runs binary inputs (batch, n_inputs) and returns the
    outputs (batch, n_tasks) with every node's activation and input (pre-activation), under any
    ``Patch`` of nodes, edges and residual positions. ``run_fn`` is the pure JAX function
    ``(params, x, patch) -> dict`` for methods that vmap or differentiate it.
    """

    params: dict
    graph: ComponentGraph

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", {k: np.asarray(v, np.float32) for k, v in self.params.items()})
        object.__setattr__(self, "_device_params", jax.device_put(self.params))  # a copy, nothing to compile

    run_fn = staticmethod(_run)

    @property
    def device_params(self) -> dict:
        return self._device_params

    def run(self, x, patch: Patch | None = None) -> dict[str, np.ndarray]:
        out = _run_jit(self._device_params, np.asarray(x, np.float32), patch or Patch())
        return {k: np.asarray(v) for k, v in out.items()}

    def edge_weights(self) -> np.ndarray:
        """(n_nodes, n_nodes) float64: [src, dst] is what one unit of src's activation adds to dst's
        input through the residual stream (0 unless src is in an earlier layer). The weight graph
        of connectomics methods, read from the parameters."""
        p = {k: v.astype(np.float64) for k, v in self.params.items()}
        writes, reads = _writes(p, np), _reads(p, np)
        n_in, n = p["embed"].shape[0], self.graph.n_nodes
        weights = np.zeros((n, n))
        weights[: writes.shape[0], n_in:] = writes @ reads.T
        layers = self.graph.layers
        return np.where(layers[:, None] < layers[None, :], weights, 0.0)

    def export(self) -> dict[str, np.ndarray]:
        """The parameters as a flat dict of NumPy arrays (copies)."""
        return {k: v.copy() for k, v in self.params.items()}

    def node_parameters(self) -> dict[int, NodeParameters]:
        """Which parameters belong to each node: an input its embedding row (``out``), a neuron its
        input weights (``in``), bias and output weights, an output its readout row and bias. What
        damage to a node changes, and what a weight comparison reads."""
        n_in, (n_blocks, width, _) = self.params["embed"].shape[0], self.params["w_in"].shape
        nodes = {i: NodeParameters(out=(("embed", (i,)),)) for i in range(n_in)}
        for b in range(n_blocks):
            for s in range(width):
                nodes[n_in + b * width + s] = NodeParameters(inputs=(("w_in", (b, s)),), bias=(("b_in", (b, s)),),
                                                             out=(("w_out", (b, s)),))
        for t in range(self.params["readout"].shape[0]):
            nodes[n_in + n_blocks * width + t] = NodeParameters(inputs=(("readout", (t,)),), bias=(("readout_bias", (t,)),))
        return nodes

    def patch_nodes(self, x, nodes, values, *, chunk: int = 64) -> np.ndarray:
        """Outputs (len(nodes), batch, n_tasks) with each node in ``nodes`` alone set to ``values``
        ((batch, n_nodes) or (n_nodes,)).

        Equal to one ``run`` per node with ``Patch(node_mask=one_hot(node), node_values=values)``,
        computed from what the patch can change: a node's new value adds (value - clean value) x
        its write vector to the clean residual stream after its layer, and only the blocks after
        it run again, vmapped over the nodes of a layer in chunks.
        """
        nodes = np.asarray(nodes, np.int64)
        x = np.asarray(x, np.float32)  # NumPy on the host: jitted calls take it as it is, nothing compiles per shape
        graph, p = self.graph, self._device_params
        n_in, n_blocks, width = p["embed"].shape[0], p["w_in"].shape[0], p["w_in"].shape[1]
        values = np.broadcast_to(np.asarray(values, np.float32), (x.shape[0], graph.n_nodes))
        residuals, clean = _clean_pass(p, x)
        delta = (values - np.asarray(clean["activations"])).T  # (n_nodes, batch)
        writes = np.asarray(_writes(p))
        out = np.empty((nodes.size, x.shape[0], p["readout"].shape[0]), np.float32)
        layers = graph.layers[nodes]
        for layer in np.unique(layers):
            where = np.flatnonzero(layers == layer)
            if layer == n_blocks + 1:  # an output: only its own column changes
                base = np.asarray(clean["outputs"])
                for i in where:
                    out[i] = base
                    out[i][:, nodes[i] - (n_in + n_blocks * width)] = np.asarray(values[:, nodes[i]])
                continue
            padded = _pad(where, chunk)
            for i in range(0, padded.size, chunk):
                idx = nodes[padded[i : i + chunk]]
                out[padded[i : i + chunk]] = np.asarray(
                    _patch_layer_jit(p, residuals[layer], delta[idx], writes[idx], int(layer))
                )
        return out

    def residuals(self, x) -> np.ndarray:
        """(n_blocks + 1, batch, d_model) float32: the residual stream on inputs ``x`` after the
        embedding and after each block (what each layer writes into; the layers a layer-matching
        method compares)."""
        residuals, _ = _clean_pass(self._device_params, np.asarray(x, np.float32))
        return np.stack([np.asarray(r) for r in residuals])

    def ablated(self, x, kind: str, *, seed: int = 0) -> np.ndarray:
        """What an ablation sets each node to on inputs ``x``: 0 (``zero``), the node's mean over
        them (``mean``; (n_nodes,)), or its value on another of them (``resample``: a
        permutation drawn from ``seed``; (batch, n_nodes))."""
        if kind == "zero":
            return np.zeros(self.graph.n_nodes, np.float32)
        return ablation_values(self.run(x)["activations"], kind, seed=seed)

    def patch_node_sets(self, x, masks, values, *, chunk: int = 64) -> np.ndarray:
        """Outputs (len(masks), batch, n_tasks) with, for each row of ``masks`` (n_sets,
        n_nodes) 0/1, the nodes it marks set together to ``values`` ((batch, n_nodes) or
        (n_nodes,)): one ``run`` per set with ``Patch(node_mask=row, node_values=values)``,
        vmapped in chunks. Lesions of several nodes at once (pairs, coalitions) go through here."""
        masks = np.asarray(masks, np.float32)
        if masks.ndim != 2 or masks.shape[1] != self.graph.n_nodes:
            raise ValueError(f"masks must be (n_sets, {self.graph.n_nodes}), got shape {masks.shape}")
        x = np.asarray(x, np.float32)
        # Copied to the device once for every chunk (device_put compiles nothing; jnp.asarray would, per shape).
        x, values = jax.device_put((x, np.broadcast_to(np.asarray(values, np.float32), (x.shape[0], self.graph.n_nodes))))
        n_tasks = self.params["readout"].shape[0]
        if not masks.shape[0]:
            return np.zeros((0, x.shape[0], n_tasks), np.float32)
        padded = _pad(np.arange(masks.shape[0]), chunk)
        out = [np.asarray(_patch_sets_jit(self._device_params, x, masks[padded[i : i + chunk]], values))
               for i in range(0, padded.size, chunk)]
        return np.concatenate(out)[: masks.shape[0]]

    def patch_edges(self, x, src, dst, source, *, chunk: int = 64) -> np.ndarray:
        """Outputs (len(src), batch, n_tasks) with each edge (src[i], dst[i]) alone carrying
        ``source[src[i]]`` instead of src's activation. Up to ``chunk`` edges per compiled call,
        fewer on a large graph: each holds an (n_nodes, n_nodes) mask, and a call's masks stay
        within 2^22 floats."""
        src, dst = np.asarray(src, np.int64), np.asarray(dst, np.int64)
        chunk = max(1, min(chunk, (1 << 22) // self.graph.n_nodes**2))
        source, x = jax.device_put((np.asarray(source, np.float32), np.asarray(x, np.float32)))
        ps, pd = _pad(src, chunk), _pad(dst, chunk)
        out = [
            np.asarray(_patch_edges_jit(self._device_params, x, ps[i : i + chunk], pd[i : i + chunk], source,
                                        self.graph.n_nodes))
            for i in range(0, ps.size, chunk)
        ]
        return np.concatenate(out)[: src.size] if out else np.zeros((0, x.shape[0], self.params["readout"].shape[0]), np.float32)


@dataclasses.dataclass(frozen=True, eq=False)
class CircuitTask:
    """One task a method may study: clean inputs, corrupted inputs that flip the answer, a metric.

    ``labels`` are the formula's values on the clean inputs (the corrupted inputs have the other
    value). ``metric(outputs)`` is ``mean((2 * label - 1) * (output - 1/2))``: 0.5 when every output
    is right, -0.5 when every output is the corrupted answer.
    """

    name: str
    index: int
    clean: np.ndarray
    corrupted: np.ndarray
    labels: np.ndarray

    def metric(self, outputs):
        """The task metric of model outputs (batch, n_tasks); works on NumPy and JAX arrays."""
        sign = 2.0 * self.labels - 1.0
        return (sign * (outputs[..., self.index] - 0.5)).mean(axis=-1)

    def accuracy(self, outputs) -> np.ndarray:
        """The fraction of the clean inputs answered right (output above 1/2 where the label is 1)
        by model outputs (..., batch, n_tasks): what a lesion or a damage costs."""
        return ((np.asarray(outputs)[..., self.index] > 0.5) == self.labels.astype(bool)).mean(axis=-1)

    def readout(self, outputs) -> np.ndarray:
        """What the task reads of model outputs (..., batch, n_tasks): its own column (..., batch)."""
        return np.asarray(outputs)[..., self.index]


@dataclasses.dataclass(frozen=True, eq=False)
class CircuitArtifact:
    """What a circuit method sees: the model, its component graph and the tasks; never the truth."""

    model: CircuitModel
    graph: ComponentGraph
    tasks: tuple[CircuitTask, ...]


class CircuitParts:
    """What a toy holding a circuit ``model`` and its ``tasks`` shows a method (a planted circuit
    toy, a damaged copy of one): the model's graph and the ``CircuitArtifact``."""

    @property
    def graph(self) -> ComponentGraph:
        return self.model.graph

    @property
    def artifact(self) -> CircuitArtifact:
        return CircuitArtifact(model=self.model, graph=self.graph, tasks=self.tasks)


def _graph(cfg: PlantedMLPConfig) -> ComponentGraph:
    """The component graph of a config: inputs, each block's neurons and the outputs, labelled, by layer."""
    labels = [f"in{i:02d}" for i in range(cfg.n_inputs)]
    labels += [f"b{b + 1}.n{s:03d}" for b in range(cfg.n_blocks) for s in range(cfg.width)]
    labels += [f"out{t}" for t in range(cfg.n_tasks)]
    layers = [0] * cfg.n_inputs + [b + 1 for b in range(cfg.n_blocks) for _ in range(cfg.width)] + [cfg.n_blocks + 1] * cfg.n_tasks
    return ComponentGraph(labels=tuple(labels), layers=np.array(layers))

