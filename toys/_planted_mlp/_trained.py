"""The trained kind: the circuits' weights learned under structural masks instead of compiled.

Each gate gets ``_TRAINED_NEURONS`` neurons in its block that may read only its children's
residual directions and write only its own; the masked network is trained on the task labels
alone, and neurons whose mean ablation barely moves their task are pruned.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from planted.toys._planted_mlp._config import _STREAM_WEIGHTS, PlantedMLPConfig
from planted.toys._planted_mlp._formula import _Gate, _inputs_domain
from planted.toys._planted_mlp._neurons import _Neuron
from planted.toys._planted_mlp._truth import TOLERANCE

if TYPE_CHECKING:
    from planted.toys._planted_mlp._compiler import _Plan

_TRAINED_NEURONS = 3  # neurons per gate, each confined to the gate's children and its variable
_TRAIN_RESTARTS, _TRAIN_STEPS, _TRAIN_FINE, _TRAIN_ROUNDS, _TRAIN_ROWS, _TRAIN_RATE = 8, 2000, 500, 4, 256, 0.02
_TRAIN_DRAWS = 20  # draws whose training fails before build gives up
# With a weights_seed, the starts tried on one plan before the next is drawn: twins of one seed
# (other weights seeds) then keep the same formulas unless one of them fails them all.
_TWIN_ATTEMPTS = 4
_TRAINED_ERROR = 0.02  # the largest output error a trained draw may keep (verify allows TOLERANCE)
_TRAINED_EFFECT = 2 * TOLERANCE  # a trained neuron whose mean ablation moves less is pruned


def _trainable_neurons(gate: _Gate, read_vars: list[int]) -> list[_Neuron]:
    """``gate``'s neurons before training: each reads the gate's children and writes its variable."""
    return [_Neuron(gate.level, dict.fromkeys(read_vars, 1.0), 0.0, {gate.var: 1.0}) for _ in range(_TRAINED_NEURONS)]



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


def _adam(x, y, alive, structure, n_blocks: int):
    """The optimiser and one full-batch Adam step on the squared output error, vmapped over
    restarts (the step of ``scan``)."""
    import optax

    def loss(q1):
        return jnp.mean((_masked_net(q1, x, alive, structure, n_blocks)[0] - y) ** 2)

    opt = optax.adam(_TRAIN_RATE)

    def step(carry, _):
        q1, state = carry
        updates, state = opt.update(jax.vmap(jax.grad(loss))(q1), state)
        return (optax.apply_updates(q1, updates), state), None

    return opt, step


def _errors(q, x, y, alive, structure, n_blocks: int):
    return jax.vmap(lambda q1: jnp.mean((_masked_net(q1, x, alive, structure, n_blocks)[0] - y) ** 2, axis=0))(q)


@functools.partial(jax.jit, static_argnums=(5, 6))
def _fit(q, x, y, alive, structure, n_blocks: int, steps: int):
    """``steps`` of full-batch Adam on the squared output error, vmapped over restarts; returns
    the parameters and each restart's error per task (restarts, n_tasks)."""
    opt, step = _adam(x, y, alive, structure, n_blocks)
    (q, _), _ = jax.lax.scan(step, (q, opt.init(q)), None, length=steps)
    return q, _errors(q, x, y, alive, structure, n_blocks)


@functools.partial(jax.jit, static_argnums=(5, 6, 7))
def _fit_snapshots(q, x, y, alive, structure, n_blocks: int, steps: int, every: int):
    """``_fit`` keeping the parameters every ``every`` steps (and after the last step): returns
    the final parameters, each restart's error per task, and the snapshots (n_snapshots, ...)
    of every parameter, the first being the initialisation."""
    opt, step = _adam(x, y, alive, structure, n_blocks)

    def chunk(carry, _):
        carry, _ = jax.lax.scan(step, carry, None, length=every)
        return carry, carry[0]

    carry, kept = jax.lax.scan(chunk, (q, opt.init(q)), None, length=steps // every)
    snapshots = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None], b]), q, kept)
    if steps % every:
        carry, _ = jax.lax.scan(step, carry, None, length=steps % every)
        snapshots = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b[None]]), snapshots, carry[0])
    q = carry[0]
    return q, _errors(q, x, y, alive, structure, n_blocks), snapshots


def _final_code_accuracy(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(n_snapshots,) the fraction of inputs on which a gate's variable (``values``, (n_snapshots,
    n_inputs)) is right when read with its final code: the polarity and threshold that best
    separate its true and false inputs at the last snapshot (the midpoint between the classes
    there, when they separate)."""
    last, y = values[-1], labels.astype(bool)
    if y.all() or not y.any():
        return np.ones(values.shape[0])
    sign = 1.0 if last[y].mean() >= last[~y].mean() else -1.0
    low, high = (sign * last)[~y], (sign * last)[y]
    if high.min() > low.max():
        threshold = (high.min() + low.max()) / 2
    else:  # the classes overlap at the end: the threshold that labels the most inputs right
        candidates = np.unique(sign * last)
        threshold = max(candidates, key=lambda c: ((sign * last >= c) == y).mean())
    return ((sign * values >= threshold) == y[None, :]).mean(axis=1)


def _record(plan, circuit, snapshots, chosen, x, y, alive, structure, cfg, n_nodes: int):
    """The ``CircuitFormation`` of the kept restart's trajectory: its loss, each neuron's
    parameters and each trained gate's truth table (best threshold on what its neurons write)
    at each snapshot."""
    from planted.groundtruth import CircuitFormation

    n_snap = next(iter(snapshots.values())).shape[0]
    k = snapshots["reads"].shape[-1]
    traj = {key: np.asarray(v)[:, chosen[key], np.arange(v.shape[2])] for key, v in snapshots.items()}
    gates = {g.var: g for root in plan.roots for g in root.walk()}
    var_of = [next(iter(n.writes)) for n in circuit]
    trained_vars = sorted({v for v in var_of if v in gates}, key=lambda v: (gates[v].level, v))
    names = [f"in{i:02d}" for i in range(cfg.n_inputs)]
    xs = np.asarray(x)
    labels = [gates[v].evaluate(xs) for v in trained_vars]
    c = len(circuit)
    out, acts = (np.asarray(a) for a in jax.vmap(lambda q: _masked_net(q, x, alive, structure, cfg.n_blocks))(
        {key: jnp.asarray(v, jnp.float32) for key, v in traj.items()}))  # every snapshot at once
    losses = np.mean((out - np.asarray(y)) ** 2, axis=(1, 2))
    written = acts[:, :, :c] * traj["writes"][:, None, :c]  # (n_snap, inputs, neurons)
    values = np.stack([written[:, :, np.array([w == v for w in var_of])].sum(axis=2) for v in trained_vars])
    idx = np.array([n.index for n in circuit])
    parameters = np.zeros((n_snap, k + 2, n_nodes), np.float32)
    parameters[:, :k, idx] = traj["reads"][:, :c].transpose(0, 2, 1)
    parameters[:, k, idx] = traj["bias"][:, :c]
    parameters[:, k + 1, idx] = traj["writes"][:, :c]
    accuracy = np.stack([_final_code_accuracy(values[j], labels[j]) for j in range(len(trained_vars))], axis=1)
    gate_nodes = np.zeros((len(trained_vars), n_nodes), bool)
    for j, v in enumerate(trained_vars):
        gate_nodes[j, [n.index for n, w in zip(circuit, var_of) if w == v]] = True
    steps = np.minimum(np.arange(n_snap) * cfg.snapshot_every, _TRAIN_STEPS)
    return CircuitFormation(steps=steps, losses=losses, parameters=parameters,
                            gates=tuple(gates[v].text(names) for v in trained_vars), gate_accuracy=accuracy,
                            gate_nodes=gate_nodes)


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


def _train(plan: _Plan, blocks, cfg: PlantedMLPConfig, dirs: np.ndarray, tasks, attempt: int | None = None) -> bool:
    """Train the circuit neurons' weights on the task labels under structural masks.

    Each gate has ``_TRAINED_NEURONS`` neurons that may read only its children's residual
    directions and write only its own; the readout of task t reads only its root's direction.
    Training (Adam, full batch, restarts vmapped; the best restart kept) sees only the outputs,
    so what a gate's variable carries is learned. Neurons whose mean ablation moves their task's
    output by less than ``_TRAINED_EFFECT`` are then pruned and the rest fine-tuned, until every
    remaining neuron is necessary and every output within ``_TRAINED_ERROR`` of its formula. The
    coefficients are written back into the neurons; False when training fails (the draw is
    discarded). Shapes are padded so that draws of one config share compiled code. ``attempt``
    (given when a config names its ``weights_seed``) draws the start from a stream of its own, so
    a plan can be tried again before the next is drawn.
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
    rng = np.random.default_rng([cfg.weights_stream, _STREAM_WEIGHTS, 1] + ([] if attempt is None else [attempt]))
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
    snapshots = None
    if cfg.snapshot_every:
        q, losses, snapshots = _fit_snapshots(q, x, y, jnp.asarray(alive), structure, cfg.n_blocks, _TRAIN_STEPS,
                                              min(cfg.snapshot_every, _TRAIN_STEPS))
    else:
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
    if snapshots is not None:
        n_nodes = cfg.n_inputs + cfg.n_blocks * cfg.width + cfg.n_tasks
        plan.record = _record(plan, circuit, snapshots, chosen, x, y, jnp.asarray(alive), structure, cfg, n_nodes)
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
    if plan.record is not None:  # neurons pruned after the first fit are not in the toy: no date for them
        gone = np.zeros(plan.record.gate_nodes.shape[1], bool)
        gone[[n.index for n in circuit if id(n) in pruned]] = True
        plan.record = dataclasses.replace(plan.record, gate_nodes=plan.record.gate_nodes & ~gone[None, :])
    plan.neurons = [n for n in plan.neurons if id(n) not in pruned]
    plan.circuit_neurons = [[n for n in ns if id(n) not in pruned] for ns in plan.circuit_neurons]
    plan.catalog = {mode: [n for n in items if id(n) not in pruned] for mode, items in plan.catalog.items()}
    for block in blocks:
        for s, n in enumerate(block):
            if n is not None and id(n) in pruned:
                block[s] = None  # the slot is left empty
    plan.readout = list(zip(one["gain"].tolist(), one["offset"].tolist()))
    return True

