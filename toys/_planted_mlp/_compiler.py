"""The compiler's passes: draw and compile the formulas with the catalog's structures (the plan),
place the neurons in their blocks among distractors, give every variable a residual direction,
and write the weights."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from planted.toys._planted_mlp._catalog import active
from planted.toys._planted_mlp._config import PlantedMLPConfig
from planted.toys._planted_mlp._formula import _Gate, _random_gate, _well_formed
from planted.toys._planted_mlp._neurons import _Draft, _Neuron
from planted.toys._planted_mlp._trained import _trainable_neurons


@dataclasses.dataclass
class _Plan:
    """A planned draw: the formulas as compiled neurons, with the circuits and the catalog."""

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
    record: object = None  # the trained kind's CircuitFormation, when its config asks for snapshots


def _plan(cfg: PlantedMLPConfig, rng) -> _Plan | None:
    """Draw formulas and the catalog's structures; None when a draw is not well formed.

    Each mode switched on takes part where its catalog entry says: grafting while the formulas
    are drawn, shaping them before they are compiled, planting neurons after.
    """
    modes = active(cfg)
    draft = _Draft(cfg, rng)
    for t in range(cfg.n_tasks):
        pool: list[_Gate] = []
        root = _random_gate(rng, cfg.depth, cfg, pool)
        for mode in modes:
            if mode.graft is not None and not mode.graft(draft, t, root):
                return None
        if not _well_formed(root, cfg.n_inputs, rng):
            return None
        draft.roots.append(root)
        draft.pools.append(pool)
    for mode in modes:
        if mode.shape is not None and not mode.shape(draft):
            return None
    # Variables: inputs, then one per gate.
    draft.n_vars = cfg.n_inputs
    gates: list[_Gate] = []
    for root in draft.roots:
        for g in root.walk():
            if g.var < 0:
                g.var = draft.n_vars
                draft.n_vars += 1
                gates.append(g)
    gates.sort(key=lambda g: g.var)
    for g in gates:
        if cfg.trained:  # slots for training: each reads the gate's children and writes its variable
            draft.by_gate[id(g)] = _trainable_neurons(g, draft.reads(g))
        else:
            draft.compile_gate(g)
        draft.neurons += draft.by_gate[id(g)]
    draft.answer = list(draft.roots)
    catalog: dict[str, list] = {}
    for mode in modes:
        if mode.plant is not None:
            marked = mode.plant(draft)
            if marked is None:
                return None
            catalog[mode.name] = marked
    formulas = [a.text([f"in{i:02d}" for i in range(cfg.n_inputs)]) for a in draft.answer]
    return _Plan(roots=draft.answer, neurons=draft.neurons, n_vars=draft.n_vars, answer_vars=[a.var for a in draft.answer],
                 circuit_neurons=[draft.circuit(t) for t in range(cfg.n_tasks)], leaves=[sorted(r.leaves()) for r in draft.roots],
                 redundant=draft.redundant, catalog=catalog, formulas=formulas)


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
    """(n_vars, d_model) unit rows: orthonormal when superposition is 1 (the standard basis, or a
    random rotation of it when the config names its ``weights_seed``: the frame of a layer twin),
    a random frame otherwise."""
    if cfg.superposition == 1.0:
        if cfg.weights_seed is None:
            return np.eye(n_vars)
        q, r = np.linalg.qr(rng.normal(size=(n_vars, n_vars)))
        return q * np.sign(np.diag(r))
    d = math.ceil(n_vars / cfg.superposition)
    dirs = rng.normal(size=(n_vars, d))
    return dirs / np.linalg.norm(dirs, axis=1, keepdims=True)


def _weights(plan: _Plan, blocks, cfg: PlantedMLPConfig, dirs: np.ndarray, rng) -> dict[str, np.ndarray]:
    """The flat parameters (float64) of the placed neurons over the directions, perturbed by each
    mode switched on that perturbs weights."""
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
    params = {"embed": embed, "w_in": w_in, "b_in": b_in, "w_out": w_out, "readout": readout, "readout_bias": bias}
    for mode in active(cfg):
        if mode.perturb is not None:
            params = mode.perturb(params, cfg, rng)
    return params
