"""Planted circuits: a residual MLP into which boolean formulas are compiled as exact ReLU gates.

The network has a residual stream of width ``d_model``, ``n_blocks`` blocks of ``width`` ReLU
neurons that read from and write to it, and a linear readout per task. Each task is a random
formula of AND / OR / XOR / NOT / threshold gates over binary inputs. Every variable (an input or
a gate's output) gets a residual direction, orthonormal or, with ``superposition > 1``, a random
overcomplete frame. A gate at formula depth h is compiled into block h:

    AND(k)         ReLU(s - (k - 1))                      one neuron, s the sum of its inputs
    OR(k)          ReLU(s) - ReLU(s - 1)                  two neurons
    XOR(2)         ReLU(s) - 2 ReLU(s - 1)                two neurons
    NOT            ReLU(1 - a)                            one neuron
    THRESHOLD(k,t) ReLU(s - t + 1) - ReLU(s - t)  [s >= t]  two neurons, 1 <= t < k

so on binary inputs every gate outputs exactly 0 or 1. The rest of each block is distractor
computation: neurons that read random variables and write to junk directions no task reads (the
other tasks' circuits are distractors too). Every toy is verified by intervention: see
``PlantedCircuitToy.verify``.

The trained kind (``trained=True``) keeps the formulas and the wiring but learns the weights:
each gate gets three neurons in its block that may read only its children's residual directions
and write only its own (structural masks), the readout of each task reads only its root, and
the masked network is trained from a random start on the task labels alone (Adam, restarts,
the best kept per task). What a gate's variable carries is learned, not a 0/1 truth value, so
the weights look trained (no integer coefficients) while the sub-network each task may use is
fixed by construction. Neurons whose mean ablation barely moves their task are pruned and the
rest fine-tuned, so every circuit neuron is necessary; a draw whose training does not fit every
output within 0.02 is discarded. Redundancy and saturation, which are compiled constructions,
and superposition (trained variables are unbounded) are not available with it.

The failure-mode catalog (each a toggle; the effect on methods is what the tests check):

redundancy
    A one-neuron gate (AND or NOT) of task 0 is computed three times and a majority vote of the
    copies feeds its parent (which moves up a block if it must). Any single intervention on one
    copy (zero, mean or resample ablation, or patching) leaves the vote and the output unchanged,
    so single-node ablation and activation patching score each copy at zero: false negatives.
    (With two copies and an OR, as sometimes described, patching one copy from 0 to 1 would still
    flip the OR; the vote hides a copy from every single intervention, and one-neuron copies keep
    a copy's value in [0, 1] whatever is done to it.) The copies are marked ``redundant``.
cancellation
    Two large neurons P = ReLU(root) and N = ReLU(root) in the block after task 0's root write +4
    and -4 of it to the output. Together they cancel on every input, so they are not in the planted (minimal,
    faithful) circuit; alone each has a large effect. Single-node patching, ablation, attribution
    patching and edge attribution score them highly: false positives. Input attributions, which
    see only the net effect, are unaffected. Needs ``depth < n_blocks``.
saturation
    Task 0's root gate is compiled as a saturating ramp ReLU(2(s - t) + 1/2) - ReLU(2(s - t) - 1/2)
    that is flat at every clean input, so the gradient reaching everything upstream of it is zero:
    attribution patching, edge attribution patching and gradient x input miss the upstream
    circuit. Activation patching, which intervenes, is unaffected. EAP-IG and integrated gradients
    integrate along a path through the ramp and recover part of it.
shared
    Task 1 reuses a gate of task 0: those neurons belong to both circuits (module label -1).
    Community detection, which gives each node one module, cannot be right about them; per-task
    patching is unaffected. Needs ``n_tasks >= 2``.
naturalisation
    A random rotation of the residual basis plus Gaussian noise (std ``noise``, default 3e-4) on
    every read and write weight, so no weight is exactly zero and the circuit cannot be read off
    the weights' support: binary degree centrality, which counts nonzero connections, falls to
    chance. Each task stays exact within ``verify``'s tolerance (outputs within 0.05; about 0.01
    at the default noise, 0.03 at 1e-3). Methods that intervene, and weighted graph measures, are
    unaffected.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Sequence
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from planted.groundtruth import Config, Problems, Toy
from planted.groundtruth._circuits import CircuitTruth, ComponentGraph, Patch

GATES = ("and", "or", "xor", "not", "threshold")
_STREAM_PLAN, _STREAM_DATA, _STREAM_WEIGHTS = 301, 302, 303
_CANCEL_GAIN = 4.0
# verify(): an ablated or patched run must stay within this fraction of the clean-corrupted gap,
# and a necessary node must move the output by at least this much on some input.
TOLERANCE = 0.05


@dataclasses.dataclass(frozen=True)
class PlantedMLPConfig(Config):
    """Config of ``toys.planted_mlp``; see that function for each field's meaning."""

    kind = "planted_mlp"

    n_inputs: int = 12
    n_tasks: int = 2
    depth: int = 2
    fan_in: int = 2
    n_blocks: int = 3
    width: int = 32
    superposition: float = 1.0
    gates: tuple[str, ...] = GATES
    distractor_fraction: float = 1.0
    redundancy: bool = False
    cancellation: bool = False
    saturation: bool = False
    shared: bool = False
    naturalise: bool = False
    noise: float = 3e-4
    trained: bool = False
    n_samples: int = 256
    seed: int = 0

    def _check(self, p: Problems) -> None:
        p.integer("n_inputs", self.n_inputs, low=2, high=64)
        p.integer("n_tasks", self.n_tasks, low=1, high=64)
        p.integer("n_blocks", self.n_blocks, low=1, high=64)
        p.integer("depth", self.depth, low=1, high=self.n_blocks if isinstance(self.n_blocks, int) else None)
        p.integer("fan_in", self.fan_in, low=2, high=8)
        p.integer("width", self.width, low=1, high=65_536)
        p.number("superposition", self.superposition, low=1.0, high=8.0)
        if not isinstance(self.gates, tuple) or not self.gates:
            p.add(f"gates must be a non-empty tuple drawn from {GATES}, got {self.gates!r}")
        else:
            for g in self.gates:
                p.choice("gates[]", g, GATES)
            if set(self.gates) == {"not"}:
                p.add("gates must include a gate with two or more inputs, not only 'not'")
        p.number("distractor_fraction", self.distractor_fraction, low=0, high=1)
        for name in ("redundancy", "cancellation", "saturation", "shared", "naturalise"):
            p.boolean(name, getattr(self, name))
        if self.cancellation is True and isinstance(self.depth, int) and isinstance(self.n_blocks, int) and self.depth >= self.n_blocks:
            p.add(f"cancellation needs a block after task 0's root: depth ({self.depth}) must be < n_blocks ({self.n_blocks})")
        if self.shared is True and isinstance(self.n_tasks, int) and self.n_tasks < 2:
            p.add(f"shared needs two tasks to share a gate: n_tasks must be >= 2, got {self.n_tasks}")
        if self.shared is True and isinstance(self.depth, int) and self.depth < 2:
            p.add(f"shared reuses a gate below task 1's root: depth must be >= 2, got {self.depth}")
        if self.redundancy is True and isinstance(self.depth, int) and isinstance(self.n_blocks, int) and self.depth >= self.n_blocks:
            p.add(f"redundancy votes in the block after the copied gate: depth ({self.depth}) must be < n_blocks ({self.n_blocks})")
        if self.redundancy is True and isinstance(self.gates, tuple) and not {"and", "not"} & set(self.gates):
            p.add(f"redundancy copies a one-neuron gate: gates must include 'and' or 'not', got {self.gates}")
        if self.redundancy is True and self.saturation is True and isinstance(self.depth, int) and self.depth < 2:
            p.add("redundancy with saturation copies a gate below the saturated root: depth must be >= 2")
        p.number("noise", self.noise, low=0, high=0.1)
        p.boolean("trained", self.trained)
        for mode in ("redundancy", "saturation"):
            if self.trained is True and getattr(self, mode) is True:
                p.add(f"trained cannot be combined with {mode}, a compiled construction training would undo: set {mode}=False")
        if self.trained is True and isinstance(self.superposition, (int, float)) and self.superposition != 1.0:
            p.add(f"trained needs superposition=1.0 (trained variables are unbounded, so their interference in a shared frame is not controlled), got {self.superposition}")
        p.integer("n_samples", self.n_samples, low=8, high=1_000_000)
        p.integer("seed", self.seed, low=0, high=2**31 - 1)


# --- formulas ---------------------------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class _Gate:
    kind: str
    children: list  # of _Gate or int (an input index)
    theta: int = 0
    level: int = 0
    var: int = -1
    neurons: list = dataclasses.field(default_factory=list)  # node indices
    saturating: bool = False

    def evaluate(self, x: np.ndarray, override: dict | None = None) -> np.ndarray:
        if override and id(self) in override:
            return override[id(self)]
        vals = [c.evaluate(x, override) if isinstance(c, _Gate) else x[:, c] for c in self.children]
        s = np.sum(vals, axis=0)
        k = len(vals)
        if self.kind == "and":
            return (s == k).astype(np.float64)
        if self.kind == "or":
            return (s >= 1).astype(np.float64)
        if self.kind == "xor":
            return (s == 1).astype(np.float64)
        if self.kind == "not":
            return 1.0 - vals[0]
        if self.kind == "majority":
            return (s >= 2).astype(np.float64)
        return (s >= self.theta).astype(np.float64)

    def text(self, names) -> str:
        args = ", ".join(c.text(names) if isinstance(c, _Gate) else names[c] for c in self.children)
        return f"{self.kind}{self.theta if self.kind == 'threshold' else ''}({args})"

    def walk(self):
        seen = set()
        stack = [self]
        while stack:
            g = stack.pop()
            if id(g) in seen:
                continue
            seen.add(id(g))
            yield g
            stack.extend(c for c in g.children if isinstance(c, _Gate))

    def leaves(self) -> set[int]:
        return {c for g in self.walk() for c in g.children if not isinstance(c, _Gate)}


def parse_formula(text: str) -> _Gate:
    """The gate tree of a formula written by ``_Gate.text`` (e.g. ``"and(in02, threshold2(in01, in03, in05))"``)."""
    position = 0

    def node():
        nonlocal position
        j = position
        while j < len(text) and text[j].isalnum():
            j += 1
        word = text[position:j]
        position = j
        if word.startswith("in") and word[2:].isdigit():
            return int(word[2:])
        theta = 0
        kind = word
        if word.startswith("threshold"):
            kind, theta = "threshold", int(word[len("threshold"):])
        if kind not in (*GATES, "majority") or text[position : position + 1] != "(":
            raise ValueError(f"formula {text!r}: cannot read {word!r} at position {j - len(word)}")
        position += 1
        children = [node()]
        while text[position : position + 2] == ", ":
            position += 2
            children.append(node())
        if text[position : position + 1] != ")":
            raise ValueError(f"formula {text!r}: expected ')' at position {position}")
        position += 1
        return _Gate(kind, children, theta)

    root = node()
    if position != len(text) or not isinstance(root, _Gate):
        raise ValueError(f"formula {text!r} is not a gate expression")
    return root


def _random_gate(rng, level: int, cfg: PlantedMLPConfig, pool: list[_Gate]) -> _Gate:
    kinds = [g for g in cfg.gates if not (g == "not" and level == 1 and len(cfg.gates) > 1 and rng.random() < 0.5)]
    kind = str(rng.choice(kinds))
    k = 1 if kind == "not" else 2 if kind == "xor" else int(cfg.fan_in)
    children: list = []
    if level > 1:
        children.append(_random_gate(rng, level - 1, cfg, pool))
    while len(children) < k:
        if level > 1 and rng.random() < 0.3:
            children.append(_random_gate(rng, int(rng.integers(1, level)), cfg, pool))
        else:
            used = {c for c in children if not isinstance(c, _Gate)}
            free = [i for i in range(cfg.n_inputs) if i not in used]
            children.append(int(rng.choice(free)))
    rng.shuffle(children)
    theta = int(rng.integers(1, k)) if kind == "threshold" else 0
    gate = _Gate(kind, children, theta, level=1 + max((c.level for c in children if isinstance(c, _Gate)), default=0))
    pool.append(gate)
    return gate


def _inputs_domain(leaves: Sequence[int], n_inputs: int, rng, limit: int = 4096) -> np.ndarray:
    """Every assignment of the leaves (others 0), or ``limit`` random ones when there are too many."""
    leaves = sorted(leaves)
    if len(leaves) <= 12:
        grid = np.array(list(itertools.product([0.0, 1.0], repeat=len(leaves))))
    else:
        grid = rng.integers(0, 2, size=(limit, len(leaves))).astype(np.float64)
    x = np.zeros((grid.shape[0], n_inputs))
    x[:, leaves] = grid
    return x


def _well_formed(root: _Gate, n_inputs: int, rng) -> bool:
    """Non-constant, and every gate and leaf can change the output."""
    x = _inputs_domain(root.leaves(), n_inputs, rng)
    y = root.evaluate(x)
    if y.min() == y.max():
        return False
    for g in root.walk():
        if g is root:
            continue
        flipped = 1.0 - g.evaluate(x)
        if np.array_equal(root.evaluate(x, {id(g): flipped}), y):
            return False
    for leaf in root.leaves():
        x2 = x.copy()
        x2[:, leaf] = 1 - x2[:, leaf]
        if np.array_equal(root.evaluate(x2), y):
            return False
    return True


# --- the model: one pure function with interventions -------------------------------------------


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
        object.__setattr__(self, "_device_params", {k: jnp.asarray(v) for k, v in self.params.items()})

    run_fn = staticmethod(_run)

    @property
    def device_params(self) -> dict:
        return self._device_params

    def run(self, x, patch: Patch | None = None) -> dict[str, np.ndarray]:
        out = _run_jit(self._device_params, jnp.asarray(x, jnp.float32), patch or Patch())
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

    def patch_nodes(self, x, nodes, values, *, chunk: int = 64) -> np.ndarray:
        """Outputs (len(nodes), batch, n_tasks) with each node in ``nodes`` alone set to ``values``
        ((batch, n_nodes) or (n_nodes,)).

        Equal to one ``run`` per node with ``Patch(node_mask=one_hot(node), node_values=values)``,
        computed from what the patch can change: a node's new value adds (value - clean value) x
        its write vector to the clean residual stream after its layer, and only the blocks after
        it run again, vmapped over the nodes of a layer in chunks.
        """
        nodes = np.asarray(nodes, np.int64)
        x = jnp.asarray(x, jnp.float32)
        graph, p = self.graph, self._device_params
        n_in, n_blocks, width = p["embed"].shape[0], p["w_in"].shape[0], p["w_in"].shape[1]
        values = jnp.broadcast_to(jnp.asarray(values, jnp.float32), (x.shape[0], graph.n_nodes))
        residuals, clean = _clean_pass(p, x)
        delta = np.asarray(values - clean["activations"]).T  # (n_nodes, batch)
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
                    _patch_layer_jit(p, residuals[layer], jnp.asarray(delta[idx]), jnp.asarray(writes[idx]), int(layer))
                )
        return out

    def patch_edges(self, x, src, dst, source, *, chunk: int = 8) -> np.ndarray:
        """Outputs (len(src), batch, n_tasks) with each edge (src[i], dst[i]) alone carrying
        ``source[src[i]]`` instead of src's activation."""
        src, dst = np.asarray(src, np.int64), np.asarray(dst, np.int64)
        source = jnp.asarray(source, jnp.float32)
        x = jnp.asarray(x, jnp.float32)
        ps, pd = _pad(src, chunk), _pad(dst, chunk)
        out = [
            np.asarray(_patch_edges_jit(self._device_params, x, jnp.asarray(ps[i : i + chunk]),
                                        jnp.asarray(pd[i : i + chunk]), source, self.graph.n_nodes))
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


@dataclasses.dataclass(frozen=True, eq=False)
class CircuitArtifact:
    """What a circuit method sees: the model, its component graph and the tasks; never the truth."""

    model: CircuitModel
    graph: ComponentGraph
    tasks: tuple[CircuitTask, ...]


# --- compiling formulas into neurons ------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class _Neuron:
    block: int  # 1-based
    reads: dict  # var -> coefficient
    bias: float
    writes: dict  # var -> coefficient
    index: int = -1  # node index, set when placed


def _gate_neurons(gate: _Gate, read_vars: list[int]) -> list[_Neuron]:
    """Exact ReLU neurons computing ``gate`` from variables ``read_vars`` into ``gate.var``."""
    k = len(read_vars)
    ones = {v: 1.0 for v in read_vars}
    b, g = gate.level, gate.var
    if gate.saturating:
        # A ramp of slope 2 around the decision threshold, flat at every binary input.
        if gate.kind == "not":
            reads, t = {read_vars[0]: -2.0}, -0.5
        else:
            reads = {v: 2.0 for v in read_vars}
            t = {"and": k - 0.5, "or": 0.5, "majority": 1.5}.get(gate.kind, gate.theta - 0.5)
        return [_Neuron(b, reads, -2 * t + 0.5, {g: 1.0}), _Neuron(b, dict(reads), -2 * t - 0.5, {g: -1.0})]
    if gate.kind == "and":
        return [_Neuron(b, ones, -(k - 1.0), {g: 1.0})]
    if gate.kind == "not":
        return [_Neuron(b, {read_vars[0]: -1.0}, 1.0, {g: 1.0})]
    if gate.kind == "or":
        return [_Neuron(b, ones, 0.0, {g: 1.0}), _Neuron(b, dict(ones), -1.0, {g: -1.0})]
    if gate.kind == "xor":
        return [_Neuron(b, ones, 0.0, {g: 1.0}), _Neuron(b, dict(ones), -1.0, {g: -2.0})]
    theta = 2 if gate.kind == "majority" else gate.theta
    return [_Neuron(b, ones, -(theta - 1.0), {g: 1.0}), _Neuron(b, dict(ones), -float(theta), {g: -1.0})]


@dataclasses.dataclass
class _Plan:
    roots: list  # per task: the gate whose value the readout reads
    neurons: list  # every _Neuron, planted and distractor
    n_vars: int
    answer_vars: list
    circuit_neurons: list  # per task: list of _Neuron
    leaves: list  # per task: sorted input indices
    redundant: set  # ids of redundant neurons
    catalog: dict  # mode -> list of _Neuron (or input indices)
    formulas: list
    readout: list = dataclasses.field(default_factory=list)  # per task (gain, bias); (1, 0) unless trained


def _plan(cfg: PlantedMLPConfig, rng) -> _Plan | None:
    """Draw formulas and the catalog's structures; None when a draw is not well formed."""
    roots, pools = [], []
    for t in range(cfg.n_tasks):
        pool: list[_Gate] = []
        root = _random_gate(rng, cfg.depth, cfg, pool)
        if cfg.shared and t == 1:
            donors = [g for g in pools[0] if g.level < cfg.depth and g is not roots[0]]
            slots = [(g, i) for g in root.walk() for i, c in enumerate(g.children) if isinstance(c, _Gate)]
            slots = [(g, i) for g, i in slots if any(d.level <= g.level - 1 for d in donors)]
            if not donors or not slots:
                return None
            parent, i = slots[int(rng.integers(len(slots)))]
            fits = [d for d in donors if d.level <= parent.level - 1]
            parent.children[i] = fits[int(rng.integers(len(fits)))]
        if not _well_formed(root, cfg.n_inputs, rng):
            return None
        roots.append(root)
        pools.append(pool)
    if cfg.saturation:
        if roots[0].kind == "xor":
            return None
        roots[0].saturating = True
    # Variables: inputs, then one per gate.
    n_vars = cfg.n_inputs
    gates: list[_Gate] = []
    for root in roots:
        for g in root.walk():
            if g.var < 0:
                g.var = n_vars
                n_vars += 1
                gates.append(g)
    gates.sort(key=lambda g: g.var)
    neurons: list[_Neuron] = []
    by_gate: dict[int, list[_Neuron]] = {}
    for g in gates:
        reads = [c.var if isinstance(c, _Gate) else c for c in g.children]
        if cfg.trained:  # slots for training: each reads the gate's children and writes its variable
            by_gate[id(g)] = [_Neuron(g.level, dict.fromkeys(reads, 1.0), 0.0, {g.var: 1.0}) for _ in range(_TRAINED_NEURONS)]
        else:
            by_gate[id(g)] = _gate_neurons(g, reads)
        neurons += by_gate[id(g)]
    answer = [r for r in roots]
    redundant: set[int] = set()
    catalog: dict[str, list] = {}
    if cfg.redundancy:
        # Three copies of a one-neuron gate of task 0 (AND or NOT: a copy's value stays in [0, 1]
        # under any single intervention) and a majority vote of them where the gate was read.
        others = {id(g) for r in roots[1:] for g in r.walk()}
        single = [g for g in roots[0].walk() if g.kind in ("and", "not") and not g.saturating and id(g) not in others]
        if not single:
            return None
        gate = single[int(rng.integers(len(single)))]
        copies = [gate]
        for _ in range(2):
            twin = _Gate(gate.kind, list(gate.children), gate.theta, level=gate.level, var=n_vars)
            n_vars += 1
            by_gate[id(twin)] = _gate_neurons(twin, [c.var if isinstance(c, _Gate) else c for c in twin.children])
            neurons += by_gate[id(twin)]
            copies.append(twin)
        vote = _Gate("majority", copies, level=gate.level + 1, var=n_vars)
        n_vars += 1
        if gate is roots[0]:
            answer[0] = vote
        else:
            for g in list(roots[0].walk()):
                if g is not vote:
                    g.children = [vote if c is gate else c for c in g.children]
        # Everything above the vote moves up a block where it must.
        def relevel(g):
            if isinstance(g, _Gate):
                g.level = 1 + max((relevel(c) for c in g.children), default=0)
                return g.level
            return 0
        if max(relevel(r) for r in answer) > cfg.n_blocks:
            return None
        every = {id(g): g for r in answer for g in r.walk()}
        for g in every.values():
            by_gate[id(g)] = _gate_neurons(g, [c.var if isinstance(c, _Gate) else c for c in g.children])
        neurons = [n for g in sorted(every.values(), key=lambda g: g.var) for n in by_gate[id(g)]]
        for c in copies:
            redundant |= {id(n) for n in by_gate[id(c)]}
        catalog["redundancy"] = [n for c in copies for n in by_gate[id(c)]]
    if cfg.cancellation:
        # Read task 0's root in the next block and write +-gain of it to the variable the readout
        # reads (the root itself, or the vote when the root is copied).
        root, a = roots[0], answer[0]
        if root.level + 1 > cfg.n_blocks:
            return None
        cancel = [
            _Neuron(root.level + 1, {root.var: 1.0}, 0.0, {a.var: _CANCEL_GAIN}),
            _Neuron(root.level + 1, {root.var: 1.0}, 0.0, {a.var: -_CANCEL_GAIN}),
        ]
        neurons += cancel
        catalog["cancellation"] = cancel
    if cfg.saturation:
        catalog["saturation"] = list(by_gate[id(roots[0])])
    circuit_neurons = []
    for a in answer:
        seen = []
        for g in a.walk():
            seen += by_gate[id(g)]
        circuit_neurons.append(seen)
    if cfg.shared:
        shared_ids = {id(n) for n in circuit_neurons[0]} & {id(n) for n in circuit_neurons[1]}
        catalog["shared"] = [n for n in circuit_neurons[1] if id(n) in shared_ids]
    formulas = [a.text([f"in{i:02d}" for i in range(cfg.n_inputs)]) for a in answer]
    leaves = [sorted(r.leaves()) for r in roots]
    return _Plan(roots=answer, neurons=neurons, n_vars=n_vars, answer_vars=[a.var for a in answer],
                 circuit_neurons=circuit_neurons, leaves=leaves, redundant=redundant, catalog=catalog, formulas=formulas)


def _place(plan: _Plan, cfg: PlantedMLPConfig, rng) -> list[list[_Neuron]]:
    """Assign node indices: planted neurons at random positions of their block, distractors in the rest."""
    blocks: list[list[_Neuron | None]] = [[None] * cfg.width for _ in range(cfg.n_blocks)]
    per_block: dict[int, list[_Neuron]] = {}
    for n in plan.neurons:
        per_block.setdefault(n.block, []).append(n)
    for b, items in per_block.items():
        if len(items) > cfg.width:
            raise ValueError(
                f"width={cfg.width} cannot hold block {b}'s {len(items)} planted neurons; "
                f"raise width to at least {len(items)} or lower n_tasks / fan_in"
            )
        slots = rng.permutation(cfg.width)[: len(items)]
        for n, s in zip(items, slots):
            blocks[b - 1][s] = n
    # Distractors read two variables written before their block and write to junk directions
    # that no planted neuron reads.
    var_block = {v: 0 for v in range(cfg.n_inputs)}
    for n in plan.neurons:
        for v in n.writes:
            var_block.setdefault(v, n.block)
    n_vars = plan.n_vars
    junk_per_block = max(1, cfg.width // 8)
    for b in range(1, cfg.n_blocks + 1):
        available = sorted(v for v, blk in var_block.items() if blk < b)
        junk = list(range(n_vars, n_vars + junk_per_block))
        n_vars += junk_per_block
        for s in range(cfg.width):
            if blocks[b - 1][s] is not None or rng.random() >= cfg.distractor_fraction:
                continue
            chosen = rng.choice(available, size=min(2, len(available)), replace=False)
            # Reads and writes scaled so that activations stay of order 1 through the blocks (about
            # width / junk_per_block distractors write to each junk direction).
            reads = {int(v): float(rng.normal(0, 1 / math.sqrt(len(chosen)))) for v in chosen}
            write = float(rng.normal(0, math.sqrt(junk_per_block / cfg.width)))
            blocks[b - 1][s] = _Neuron(b, reads, float(rng.normal(0, 0.5)), {int(rng.choice(junk)): write})
        var_block.update({v: b for v in junk})
    plan.n_vars = n_vars
    for b in range(cfg.n_blocks):
        for s in range(cfg.width):
            if blocks[b][s] is not None:
                blocks[b][s].index = cfg.n_inputs + b * cfg.width + s
    return blocks


def _directions(n_vars: int, cfg: PlantedMLPConfig, rng) -> np.ndarray:
    """(n_vars, d_model) unit rows: orthonormal when superposition is 1, a random frame otherwise."""
    if cfg.superposition == 1.0:
        return np.eye(n_vars)
    d = math.ceil(n_vars / cfg.superposition)
    dirs = rng.normal(size=(n_vars, d))
    return dirs / np.linalg.norm(dirs, axis=1, keepdims=True)


def _weights(plan: _Plan, blocks, cfg: PlantedMLPConfig, dirs: np.ndarray, rng) -> dict[str, np.ndarray]:
    d = dirs.shape[1]
    embed = dirs[: cfg.n_inputs].copy()
    w_in = np.zeros((cfg.n_blocks, cfg.width, d))
    b_in = np.zeros((cfg.n_blocks, cfg.width))
    w_out = np.zeros((cfg.n_blocks, cfg.width, d))
    for b in range(cfg.n_blocks):
        for s, n in enumerate(blocks[b]):
            if n is None:
                continue
            w_in[b, s] = sum(c * dirs[v] for v, c in n.reads.items())
            b_in[b, s] = n.bias
            w_out[b, s] = sum(c * dirs[v] for v, c in n.writes.items())
    gain, bias = (np.array(v, np.float64) for v in zip(*plan.readout)) if plan.readout else (np.ones(len(plan.answer_vars)), np.zeros(len(plan.answer_vars)))
    readout = gain[:, None] * dirs[plan.answer_vars]
    if cfg.naturalise:
        q, r = np.linalg.qr(rng.normal(size=(d, d)))
        q = q * np.sign(np.diag(r))
        embed, w_in, w_out, readout = embed @ q, w_in @ q, w_out @ q, readout @ q
        embed = embed + cfg.noise * rng.normal(size=embed.shape)
        w_in = w_in + cfg.noise * rng.normal(size=w_in.shape)
        w_out = w_out + cfg.noise * rng.normal(size=w_out.shape)
        readout = readout + cfg.noise * rng.normal(size=readout.shape)
    return {"embed": embed, "w_in": w_in, "b_in": b_in, "w_out": w_out, "readout": readout, "readout_bias": bias}


# --- the trained kind -----------------------------------------------------------------------------

_TRAINED_NEURONS = 3  # neurons per gate, each confined to the gate's children and its variable
_TRAIN_RESTARTS, _TRAIN_STEPS, _TRAIN_FINE, _TRAIN_ROUNDS, _TRAIN_ROWS, _TRAIN_RATE = 8, 2000, 500, 4, 256, 0.02
_TRAIN_DRAWS = 20  # draws whose training fails before build gives up
_TRAINED_ERROR = 0.02  # the largest output error a trained draw may keep (verify allows TOLERANCE)
_TRAINED_EFFECT = 2 * TOLERANCE  # a trained neuron whose mean ablation moves less is pruned


def _masked_net(q, x, alive, structure, n_blocks: int, values=None):
    """Outputs (batch, n_tasks) and activations (batch, c) of the circuit neurons alone; a neuron
    whose ``alive`` is 0 outputs its entry of ``values`` (default 0: removed).

    ``q``: read coefficients (c, k), biases (c,), write gains (c,), readout gains and offsets
    (n_tasks,). ``structure``: the directions each neuron may read (c, k, d) and write (c, d),
    the embedding, the answer directions, and each neuron's block. The structural masks are the
    zeros of the read directions: a neuron reads nothing but its gate's children.
    """
    read_dirs, write_dirs, embed, answer_dirs, block_of = structure
    w_in = jnp.einsum("ik,ikd->id", q["reads"], read_dirs)
    w_out = q["writes"][:, None] * write_dirs
    r = x @ embed
    acts = jnp.zeros((x.shape[0], w_in.shape[0]))
    for b in range(1, n_blocks + 1):
        here = (block_of == b).astype(jnp.float32)
        act = jax.nn.relu(r @ w_in.T + q["bias"]) * alive
        if values is not None:
            act = act + (1 - alive) * values
        act = act * here
        acts = acts + act
        r = r + act @ w_out
    return r @ (q["gain"][:, None] * answer_dirs).T + q["offset"], acts


@functools.partial(jax.jit, static_argnums=(5, 6))
def _fit(q, x, y, alive, structure, n_blocks: int, steps: int):
    """``steps`` of full-batch Adam on the squared output error, vmapped over restarts; returns
    the parameters and each restart's error per task (restarts, n_tasks)."""
    import optax

    def loss(q1):
        return jnp.mean((_masked_net(q1, x, alive, structure, n_blocks)[0] - y) ** 2)

    opt = optax.adam(_TRAIN_RATE)

    def step(carry, _):
        q, state = carry
        updates, state = opt.update(jax.vmap(jax.grad(loss))(q), state)
        return (optax.apply_updates(q, updates), state), None

    (q, _), _ = jax.lax.scan(step, (q, opt.init(q)), None, length=steps)
    return q, jax.vmap(lambda q1: jnp.mean((_masked_net(q1, x, alive, structure, n_blocks)[0] - y) ** 2, axis=0))(q)


@functools.partial(jax.jit, static_argnums=5)
def _check_trained(q, clean, corrupted, alive, structure, n_blocks: int):
    """Outputs on clean and corrupted inputs, and per neuron the largest output change (c, n_tasks)
    over the clean inputs when its activation is replaced by its clean mean (mean ablation)."""
    out, acts = _masked_net(q, clean, alive, structure, n_blocks)
    means = acts.mean(axis=0)

    def ablated(i):
        return _masked_net(q, clean, alive.at[i].set(0.0), structure, n_blocks, means)[0]

    change = jnp.abs(jax.vmap(ablated)(jnp.arange(alive.shape[0])) - out[None]).max(axis=1)
    return out, _masked_net(q, corrupted, alive, structure, n_blocks)[0], change


def _train(plan: _Plan, blocks, cfg: PlantedMLPConfig, dirs: np.ndarray, tasks) -> bool:
    """Train the circuit neurons' weights on the task labels under structural masks.

    Each gate has ``_TRAINED_NEURONS`` neurons that may read only its children's residual
    directions and write only its own; the readout of task t reads only its root's direction.
    Training (Adam, full batch, restarts vmapped; the best restart kept) sees only the outputs,
    so what a gate's variable carries is learned. Neurons whose mean ablation moves their task's
    output by less than ``_TRAINED_EFFECT`` are then pruned and the rest fine-tuned, until every
    remaining neuron is necessary and every output within ``_TRAINED_ERROR`` of its formula. The
    coefficients are written back into the neurons; False when training fails (the draw is
    discarded). Shapes are padded so that draws of one config share compiled code.
    """
    circuit = sorted({id(n): n for ns in plan.circuit_neurons for n in ns}.values(), key=lambda n: n.index)
    c = -(-len(circuit) // 8) * 8
    k = max(2, cfg.fan_in)
    d = -(-dirs.shape[1] // 16) * 16
    padded = np.zeros((dirs.shape[0], d))
    padded[:, : dirs.shape[1]] = dirs
    read_vars = [list(n.reads) for n in circuit]
    read_dirs = np.zeros((c, k, d))
    write_dirs = np.zeros((c, d))
    block_of = np.zeros(c)
    for i, n in enumerate(circuit):
        read_dirs[i, : len(read_vars[i])] = padded[read_vars[i]]
        write_dirs[i] = padded[next(iter(n.writes))]
        block_of[i] = n.block
    structure = tuple(jnp.asarray(v, jnp.float32) for v in (read_dirs, write_dirs, padded[: cfg.n_inputs], padded[plan.answer_vars], block_of))
    rng = np.random.default_rng([cfg.seed, _STREAM_WEIGHTS, 1])
    # Training inputs: every assignment of the tasks' leaves (or random ones), repeated to
    # _TRAIN_ROWS rows, with the other inputs random (they matter only through superposition).
    leaves = sorted(set().union(*map(set, plan.leaves)))
    if 2 ** len(leaves) <= _TRAIN_ROWS:
        x = np.resize(_inputs_domain(leaves, cfg.n_inputs, rng), (_TRAIN_ROWS, cfg.n_inputs))
    else:
        x = rng.integers(0, 2, size=(_TRAIN_ROWS, cfg.n_inputs)).astype(np.float64)
    free = ~np.isin(np.arange(cfg.n_inputs), np.concatenate(plan.leaves))
    x[:, free] = rng.integers(0, 2, size=(x.shape[0], int(free.sum())))
    y = np.stack([root.evaluate(x) for root in plan.roots], axis=1)
    r = _TRAIN_RESTARTS
    q = {"reads": rng.normal(0, 1, (r, c, k)), "bias": rng.normal(0, 0.5, (r, c)),
         "writes": rng.normal(0, 1 / math.sqrt(_TRAINED_NEURONS), (r, c)),
         "gain": rng.normal(0, 1, (r, cfg.n_tasks)), "offset": np.full((r, cfg.n_tasks), 0.5)}
    q = {key: jnp.asarray(v, jnp.float32) for key, v in q.items()}
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    alive = np.zeros(c, np.float32)
    alive[: len(circuit)] = 1.0
    q, losses = _fit(q, x, y, jnp.asarray(alive), structure, cfg.n_blocks, _TRAIN_STEPS)
    member = np.zeros((cfg.n_tasks, c), bool)
    for t, ns in enumerate(plan.circuit_neurons):
        member[t, : len(circuit)] = np.isin([id(n) for n in circuit], [id(n) for n in ns])
    # Tasks that share no neuron train independently: keep each task's best restart.
    losses = np.asarray(losses)
    best = losses.argmin(axis=0) if not cfg.shared else np.full(cfg.n_tasks, losses.sum(axis=1).argmin())
    owner = np.where(member.any(axis=0), member.argmax(axis=0), 0)
    # Per-neuron parameters come from the restart of their task, gains and offsets from each task's.
    chosen = {key: best if key in ("gain", "offset") else best[owner] for key in q}
    q = {key: jnp.asarray(np.asarray(v)[chosen[key], np.arange(v.shape[1])][None]) for key, v in q.items()}
    for _ in range(_TRAIN_ROUNDS):
        one = {key: v[0] for key, v in q.items()}
        worst, weak = 0.0, np.zeros(c, bool)
        for t, task in enumerate(tasks):
            out, corrupt, change = (np.asarray(v) for v in _check_trained(
                one, jnp.asarray(task.clean), jnp.asarray(task.corrupted), jnp.asarray(alive), structure, cfg.n_blocks))
            worst = max(worst, float(np.abs(out[:, t] - plan.roots[t].evaluate(task.clean)).max()),
                        float(np.abs(corrupt[:, t] - plan.roots[t].evaluate(task.corrupted)).max()))
            weak |= member[t] & (alive > 0) & (change[:, t] < _TRAINED_EFFECT)
        if not weak.any() and worst < _TRAINED_ERROR:
            break
        alive[weak] = 0.0
        q, _ = _fit(q, x, y, jnp.asarray(alive), structure, cfg.n_blocks, _TRAIN_FINE)
    else:
        return False
    one = {key: np.asarray(v[0], np.float64) for key, v in q.items()}
    pruned = {id(n) for n, a in zip(circuit, alive) if a == 0}
    for i, n in enumerate(circuit):
        n.reads = {v: float(one["reads"][i, j]) for j, v in enumerate(read_vars[i])}
        n.bias = float(one["bias"][i])
        n.writes = {next(iter(n.writes)): float(one["writes"][i])}
    plan.neurons = [n for n in plan.neurons if id(n) not in pruned]
    plan.circuit_neurons = [[n for n in ns if id(n) not in pruned] for ns in plan.circuit_neurons]
    plan.catalog = {mode: [n for n in items if id(n) not in pruned] for mode, items in plan.catalog.items()}
    for block in blocks:
        for s, n in enumerate(block):
            if n is not None and id(n) in pruned:
                block[s] = None  # the slot is left empty
    plan.readout = list(zip(one["gain"].tolist(), one["offset"].tolist()))
    return True


def _graph(cfg: PlantedMLPConfig) -> ComponentGraph:
    labels = [f"in{i:02d}" for i in range(cfg.n_inputs)]
    labels += [f"b{b + 1}.n{s:03d}" for b in range(cfg.n_blocks) for s in range(cfg.width)]
    labels += [f"out{t}" for t in range(cfg.n_tasks)]
    layers = [0] * cfg.n_inputs + [b + 1 for b in range(cfg.n_blocks) for _ in range(cfg.width)] + [cfg.n_blocks + 1] * cfg.n_tasks
    return ComponentGraph(labels=tuple(labels), layers=np.array(layers))


def _tasks(plan: _Plan, cfg: PlantedMLPConfig) -> tuple[CircuitTask, ...]:
    rng = np.random.default_rng([cfg.seed, _STREAM_DATA])
    tasks = []
    for t, (root, leaves) in enumerate(zip(plan.roots, plan.leaves)):
        clean = rng.integers(0, 2, size=(cfg.n_samples, cfg.n_inputs)).astype(np.float64)
        labels = root.evaluate(clean)
        corrupted = clean.copy()
        todo = np.arange(cfg.n_samples)
        while todo.size:  # resample the task's inputs until the answer flips (non-task inputs stay)
            trial = clean[todo].copy()
            trial[:, leaves] = rng.integers(0, 2, size=(todo.size, len(leaves)))
            flipped = root.evaluate(trial) != labels[todo]
            corrupted[todo[flipped]] = trial[flipped]
            todo = todo[~flipped]
        tasks.append(CircuitTask(name=f"task{t}", index=t, clean=clean.astype(np.float32),
                                 corrupted=corrupted.astype(np.float32), labels=labels.astype(np.float32)))
    return tuple(tasks)


# --- the toy ------------------------------------------------------------------------------------


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

    kind: ClassVar[str] = "circuits"

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


def _truth(plan: _Plan, blocks, model: CircuitModel, tasks, cfg: PlantedMLPConfig) -> CircuitTruth:
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
    if cfg.naturalise:
        catalog["naturalisation"] = nodes.any(axis=0)
    return CircuitTruth(
        graph=graph, task_names=tuple(t.name for t in tasks), formulas=tuple(plan.formulas), nodes=nodes,
        edges=tuple(edges), node_effects=node_effects, edge_effects=tuple(edge_effect_values),
        relevant_inputs=nodes[:, :n_in].copy(), redundant=redundant, catalog=catalog, modules=modules,
    )


def build(config: PlantedMLPConfig) -> PlantedCircuitToy:
    """Compile the toy a ``PlantedMLPConfig`` describes and compute its truth by intervention.

    Formulas are drawn until one set is well formed, fits the width and passes ``verify``; the
    draws are a pure function of the seed.
    """
    if not isinstance(config, PlantedMLPConfig):
        raise ValueError(f"config must be a PlantedMLPConfig, got {type(config).__name__}")
    rng = np.random.default_rng([config.seed, _STREAM_PLAN])
    too_wide, untrained = None, 0
    for _ in range(500):
        plan = _plan(config, rng)
        if plan is None:
            continue
        try:
            blocks = _place(plan, config, rng)
        except ValueError as exc:  # this draw's circuits do not fit the width: draw again
            too_wide = exc
            continue
        wrng = np.random.default_rng([config.seed, _STREAM_WEIGHTS])
        dirs = _directions(plan.n_vars, config, wrng)
        tasks = _tasks(plan, config)
        if config.trained and not _train(plan, blocks, config, dirs, tasks):
            untrained += 1
            if untrained == _TRAIN_DRAWS:
                raise ValueError(f"trained: no exact fit of the tasks in {_TRAIN_DRAWS} draws for {config.to_json()}; "
                                 "try fewer tasks, a lower depth or fan_in")
            continue
        model = CircuitModel(params=_weights(plan, blocks, config, dirs, wrng), graph=_graph(config))
        truth = _truth(plan, blocks, model, tasks, config)
        toy = PlantedCircuitToy(config=config, model=model, tasks=tasks, truth=truth, roots=tuple(plan.roots))
        check = toy.verify()
        if check.ok:
            return toy
        if any("output differs" in p for p in check.problems) and (config.superposition > 1 or config.naturalise):
            raise ValueError(
                f"superposition={config.superposition} / noise={config.noise} make the compiled tasks inexact "
                f"(worst output error {check.worst_output_error:.3f} > {TOLERANCE}); lower superposition or noise, "
                "or the distractor_fraction"
            )
    if too_wide is not None:
        raise too_wide
    raise ValueError(f"no well-formed circuits found for {config.to_json()} in 500 draws; try other gates, fan_in or depth")


def planted_mlp(
    n_inputs: int = 12,
    n_tasks: int = 2,
    *,
    seed: int,
    depth: int = 2,
    fan_in: int = 2,
    n_blocks: int = 3,
    width: int = 32,
    superposition: float = 1.0,
    gates: Sequence[str] = GATES,
    distractor_fraction: float = 1.0,
    redundancy: bool = False,
    cancellation: bool = False,
    saturation: bool = False,
    shared: bool = False,
    naturalise: bool = False,
    noise: float = 3e-4,
    trained: bool = False,
    n_samples: int = 256,
) -> PlantedCircuitToy:
    """A residual MLP with ``n_tasks`` boolean formulas compiled into exact ReLU circuits.

    Parameters
    ----------
    n_inputs : int
        Binary input variables.
    n_tasks : int
        Formulas (tasks), each read out by its own output.
    seed : int
    depth : int
        Gate depth of every formula (<= n_blocks); a gate at depth h is computed in block h.
    fan_in : int
        Inputs of AND / OR / threshold gates (XOR takes 2, NOT 1).
    n_blocks, width : int
        Residual MLP blocks and neurons per block; planted neurons sit at random positions.
    superposition : float in [1, 8]
        Variables per residual dimension: 1 gives orthonormal directions, more a random frame
        whose interference the gates must tolerate (a ValueError says when they cannot).
    gates : sequence of {"and", "or", "xor", "not", "threshold"}
    distractor_fraction : float in [0, 1]
        Of the neurons no circuit uses, the fraction that compute distractors (the rest are 0).
    redundancy, cancellation, saturation, shared, naturalise : bool
        The failure-mode catalog; see the module docstring for what each does to which methods.
    noise : float
        Weight noise of ``naturalise``.
    trained : bool
        Learn the circuits' weights under structural masks instead of compiling them (see the
        module docstring); a few seconds per toy.
    n_samples : int
        Clean / corrupted input pairs per task.

    Returns
    -------
    PlantedCircuitToy
        ``artifact`` (model, graph, tasks) for methods; ``truth`` (``CircuitTruth``) for
        evaluators; ``verify()`` re-checks the circuits (``build`` only returns toys that pass).
    """
    return build(PlantedMLPConfig(
        n_inputs=n_inputs, n_tasks=n_tasks, depth=depth, fan_in=fan_in, n_blocks=n_blocks, width=width,
        superposition=float(superposition), gates=tuple(gates), distractor_fraction=float(distractor_fraction),
        redundancy=redundancy, cancellation=cancellation, saturation=saturation, shared=shared,
        naturalise=naturalise, noise=float(noise), trained=trained, n_samples=n_samples, seed=seed,
    ))
