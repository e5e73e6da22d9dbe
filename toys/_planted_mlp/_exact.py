"""The truth's evaluator: the model's interventions recomputed in float64 NumPy from its weights.

The truth (which nodes and edges are in a circuit, and their effects) and ``verify`` are computed
here rather than with the JAX model, for two reasons: float64 is exact on the compiled circuits'
integer weights and about 1e-16 relative elsewhere (float32 patching is about 1e-7), and the result
does not depend on how many threads run it. XLA's CPU matrix products split their sums by thread
count (results move by about 1e-7 with ``--xla_cpu_multi_thread_eigen=false``), so every product
here runs in NumPy with the BLAS limited to one thread (``threadpoolctl``), and a truth is the same
bit for bit whatever the thread settings of the process that builds it.

Interventions, each on one node or edge at a time, with the rest of the network recomputed:

    set_nodes    node i's activation replaced by a value (per input)
    ablate_edges edge (s, d) carries source[s] instead of s's activation: only d's input changes,
                 by w[s, d] (source[s] - a[s]), so it is d set to its new activation
    run_edges    many edges at once carrying source values (the faithfulness check)

``w[s, d]`` is what a unit of s's activation adds to d's input through the residual stream
(``CircuitModel.edge_weights``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from planted.groundtruth._threads import one_blas_thread

# Rows of (nodes x inputs) evaluated at once when many single interventions run together.
_CHUNK_ROWS = 1 << 15


@dataclasses.dataclass(frozen=True)
class _Run:
    """A clean float64 run: ``acts`` and ``pre`` (batch, n_nodes), ``residuals`` after the
    embedding and after each block (n_blocks + 1 arrays of (batch, d_model)), ``outputs``
    (batch, n_tasks)."""

    acts: np.ndarray
    pre: np.ndarray
    residuals: tuple
    outputs: np.ndarray


class _Exact:
    """Float64 evaluation of a planted-circuit model's parameters (the flat dict of ``CircuitModel``)."""

    def __init__(self, params: dict) -> None:
        p = {k: np.asarray(v, np.float64) for k, v in params.items()}
        self.embed, self.w_in, self.b_in, self.w_out = p["embed"], p["w_in"], p["b_in"], p["w_out"]
        self.readout, self.readout_bias = p["readout"], p["readout_bias"]
        self.n_in = self.embed.shape[0]
        self.n_blocks, self.width, d = self.w_in.shape
        self.n_tasks = self.readout.shape[0]
        self.n_nodes = self.n_in + self.n_blocks * self.width + self.n_tasks
        self.writes = np.concatenate([self.embed, self.w_out.reshape(-1, d)])  # (sources, d)
        self.reads = np.concatenate([self.w_in.reshape(-1, d), self.readout])  # (destinations, d)
        self.layers = np.concatenate([np.zeros(self.n_in, np.int64), np.repeat(np.arange(1, self.n_blocks + 1), self.width),
                                      np.full(self.n_tasks, self.n_blocks + 1)])

    def edge_weight(self, src, dst) -> np.ndarray:
        """(len(src),) the weight of each edge (src[i], dst[i]); dst must be a neuron or an output."""
        src, dst = np.asarray(src, np.int64), np.asarray(dst, np.int64)
        return (self.writes[src] * self.reads[dst - self.n_in]).sum(axis=1)

    def run(self, x) -> _Run:
        """The clean run on inputs (batch, n_inputs)."""
        x = np.asarray(x, np.float64)
        with one_blas_thread():
            r = x @ self.embed
            acts, pres, residuals = [x], [x], [r]
            for b in range(self.n_blocks):
                pre = r @ self.w_in[b].T + self.b_in[b]
                act = np.maximum(pre, 0.0)
                r = r + act @ self.w_out[b]
                acts.append(act)
                pres.append(pre)
                residuals.append(r)
            out = r @ self.readout.T + self.readout_bias
        acts.append(out)
        pres.append(out)
        return _Run(acts=np.concatenate(acts, axis=1), pre=np.concatenate(pres, axis=1), residuals=tuple(residuals),
                    outputs=out)

    def set_nodes(self, run: _Run, nodes, values) -> np.ndarray:
        """Outputs (len(nodes), batch, n_tasks) with node ``nodes[i]`` alone set to ``values[i]``
        (len(nodes), batch) on the inputs of ``run``; the blocks after its layer run again."""
        nodes = np.asarray(nodes, np.int64)
        values = np.asarray(values, np.float64)
        batch = run.acts.shape[0]
        out = np.empty((nodes.size, batch, self.n_tasks))
        layers = self.layers[nodes]
        chunk = max(1, _CHUNK_ROWS // max(batch, 1))
        with one_blas_thread():
            for layer in np.unique(layers):
                where = np.flatnonzero(layers == layer)
                if layer == self.n_blocks + 1:  # an output: only its own column changes
                    for i in where:
                        out[i] = run.outputs
                        out[i, :, nodes[i] - (self.n_in + self.n_blocks * self.width)] = values[i]
                    continue
                for start in range(0, where.size, chunk):
                    idx = where[start : start + chunk]
                    delta = values[idx] - run.acts[:, nodes[idx]].T  # (c, batch)
                    r = run.residuals[layer][None] + delta[:, :, None] * self.writes[nodes[idx]][:, None, :]
                    for b in range(layer, self.n_blocks):
                        r = r + np.maximum(r @ self.w_in[b].T + self.b_in[b], 0.0) @ self.w_out[b]
                    out[idx] = r @ self.readout.T + self.readout_bias
        return out

    def ablate_edges(self, run: _Run, src, dst, source) -> np.ndarray:
        """Outputs (len(src), batch, n_tasks) with edge (src[i], dst[i]) alone carrying
        ``source[..., src[i]]`` ((batch, n_nodes) or (n_nodes,)) instead of src's activation."""
        src, dst = np.asarray(src, np.int64), np.asarray(dst, np.int64)
        source = np.broadcast_to(np.asarray(source, np.float64), run.acts.shape)
        pre = run.pre[:, dst] + self.edge_weight(src, dst) * (source[:, src] - run.acts[:, src])  # (batch, edges)
        is_neuron = self.layers[dst] <= self.n_blocks
        new = np.where(is_neuron, np.maximum(pre, 0.0), pre)
        return self.set_nodes(run, dst, new.T)

    def run_edges(self, x, edge_mask: np.ndarray, source) -> np.ndarray:
        """Outputs (batch, n_tasks) with every edge where ``edge_mask`` (n_nodes, n_nodes) is set
        carrying ``source`` ((batch, n_nodes) or (n_nodes,)) instead of its source's activation."""
        x = np.asarray(x, np.float64)
        mask = np.asarray(edge_mask, bool)
        source = np.broadcast_to(np.asarray(source, np.float64), (x.shape[0], self.n_nodes))
        with one_blas_thread():
            r = x @ self.embed
            acts = x

            def pre(start, reads, bias):
                value = r @ reads.T + bias
                m = mask[:start, start : start + reads.shape[0]]
                if m.any():
                    value = value + (source[:, :start] - acts) @ ((self.writes[:start] @ reads.T) * m)
                return value

            for b in range(self.n_blocks):
                act = np.maximum(pre(self.n_in + b * self.width, self.w_in[b], self.b_in[b]), 0.0)
                r = r + act @ self.w_out[b]
                acts = np.concatenate([acts, act], axis=1)
            return pre(self.n_in + self.n_blocks * self.width, self.readout, self.readout_bias)
