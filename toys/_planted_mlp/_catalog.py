"""The failure-mode catalog: the situations in which circuit methods fail, as data.

``MODES`` is the one list of failure modes, in order. Each ``Mode`` names its toggle (a config
field, the truth's catalog key and the suite's toy name), says what it plants and which methods
it fools, checks the config it needs, and gives a function for each pass it takes part in; the
passes call them in catalog order. ``FAILURE_MODES``, the config's validation of the modes and
the strategies' draws derive from this table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from planted.groundtruth import Problems
from planted.toys._planted_mlp._formula import _Gate
from planted.toys._planted_mlp._neurons import _Draft, _Neuron

if TYPE_CHECKING:
    from planted.toys._planted_mlp._config import PlantedMLPConfig

_CANCEL_GAIN = 4.0


@dataclasses.dataclass(frozen=True)
class Mode:
    """One failure mode of the catalog.

    Attributes
    ----------
    name : str
        The config's boolean toggle, the key of ``CircuitTruth.catalog`` and the suite's toy name.
    description : str
        What the mode plants and what it does to which methods.
    constraints : callable(config, problems) -> None, or None
        Adds a message to ``problems`` for each field value the mode cannot be planted with
        (called when the mode is on).
    trainable : bool
        False for a compiled construction that training would undo (not allowed with ``trained``).
    blocks_above : int
        Blocks above the formulas' depth the mode may need (redundancy's vote, cancellation's
        pair). Each mode's constraints ask for its own; a config with ``depth`` plus the sum over
        its modes ``<= n_blocks`` never runs out of blocks (what the strategies draw).
    graft : callable(draft, t, root) -> bool, or None
        While the formulas are drawn: changes task t's fresh formula ``root`` before it is checked.
        False rejects the draw.
    shape : callable(draft) -> bool, or None
        On the drawn formulas, before they are compiled. False rejects the draw.
    plant : callable(draft) -> list of neurons or None, or None
        On the compiled neurons: adds or rewires neurons, and returns those the truth's catalog
        marks. None rejects the draw.
    perturb : callable(params, config, rng) -> params, or None
        On the compiled weights (the flat parameter dict, float64).
    involves : callable(nodes) -> (n_nodes,) bool, or None
        For a mode that plants no neurons of its own: the nodes the truth's catalog marks, from
        the circuits' nodes ``(n_tasks, n_nodes)``.
    """

    name: str
    description: str
    constraints: Callable[[PlantedMLPConfig, Problems], None] | None = None
    trainable: bool = True
    blocks_above: int = 0
    graft: Callable[[_Draft, int, _Gate], bool] | None = None
    shape: Callable[[_Draft], bool] | None = None
    plant: Callable[[_Draft], list | None] | None = None
    perturb: Callable[[dict, PlantedMLPConfig, np.random.Generator], dict] | None = None
    involves: Callable[[np.ndarray], np.ndarray] | None = None


def _ints(*values) -> bool:
    return all(isinstance(v, int) for v in values)


# --- redundancy ---------------------------------------------------------------------------------


def _redundancy_constraints(cfg: PlantedMLPConfig, p: Problems) -> None:
    if _ints(cfg.depth, cfg.n_blocks) and cfg.depth >= cfg.n_blocks:
        p.add(f"redundancy votes in the block after the copied gate: depth ({cfg.depth}) must be < n_blocks ({cfg.n_blocks})")
    if isinstance(cfg.gates, tuple) and not {"and", "not"} & set(cfg.gates):
        p.add(f"redundancy copies a one-neuron gate: gates must include 'and' or 'not', got {cfg.gates}")
    if cfg.saturation is True and _ints(cfg.depth) and cfg.depth < 2:
        p.add("redundancy with saturation copies a gate below the saturated root: depth must be >= 2")


def _redundancy(draft: _Draft) -> list[_Neuron] | None:
    """Three copies of a one-neuron gate of task 0 (AND or NOT: a copy's value stays in [0, 1]
    under any single intervention) and a majority vote of them where the gate was read."""
    roots, answer = draft.roots, draft.answer
    others = {id(g) for r in roots[1:] for g in r.walk()}
    single = [g for g in roots[0].walk() if g.kind in ("and", "not") and not g.saturating and id(g) not in others]
    if not single:
        return None
    gate = single[int(draft.rng.integers(len(single)))]
    copies = [gate]
    for _ in range(2):
        twin = _Gate(gate.kind, list(gate.children), gate.theta, level=gate.level, var=draft.n_vars)
        draft.n_vars += 1
        draft.neurons += draft.compile_gate(twin)
        copies.append(twin)
    vote = _Gate("majority", copies, level=gate.level + 1, var=draft.n_vars)
    draft.n_vars += 1
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

    if max(relevel(r) for r in answer) > draft.cfg.n_blocks:
        return None
    every = {id(g): g for r in answer for g in r.walk()}
    for g in every.values():
        draft.compile_gate(g)
    draft.neurons = [n for g in sorted(every.values(), key=lambda g: g.var) for n in draft.by_gate[id(g)]]
    for c in copies:
        draft.redundant |= {id(n) for n in draft.by_gate[id(c)]}
    return [n for c in copies for n in draft.by_gate[id(c)]]


# --- cancellation -------------------------------------------------------------------------------


def _cancellation_constraints(cfg: PlantedMLPConfig, p: Problems) -> None:
    if _ints(cfg.depth, cfg.n_blocks) and cfg.depth >= cfg.n_blocks:
        p.add(f"cancellation needs a block after task 0's root: depth ({cfg.depth}) must be < n_blocks ({cfg.n_blocks})")


def _cancellation(draft: _Draft) -> list[_Neuron] | None:
    """Read task 0's root in the next block and write +-gain of it to the variable the readout
    reads (the root itself, or the vote when the root is copied)."""
    root, a = draft.roots[0], draft.answer[0]
    if root.level + 1 > draft.cfg.n_blocks:
        return None
    cancel = [
        _Neuron(root.level + 1, {root.var: 1.0}, 0.0, {a.var: _CANCEL_GAIN}),
        _Neuron(root.level + 1, {root.var: 1.0}, 0.0, {a.var: -_CANCEL_GAIN}),
    ]
    draft.neurons += cancel
    return cancel


# --- saturation ---------------------------------------------------------------------------------


def _saturate_root(draft: _Draft) -> bool:
    """Mark task 0's root to be compiled as a saturating ramp (XOR has no single threshold)."""
    if draft.roots[0].kind == "xor":
        return False
    draft.roots[0].saturating = True
    return True


def _saturated_neurons(draft: _Draft) -> list[_Neuron]:
    return list(draft.by_gate[id(draft.roots[0])])


# --- shared -------------------------------------------------------------------------------------


def _shared_constraints(cfg: PlantedMLPConfig, p: Problems) -> None:
    if _ints(cfg.n_tasks) and cfg.n_tasks < 2:
        p.add(f"shared needs two tasks to share a gate: n_tasks must be >= 2, got {cfg.n_tasks}")
    if _ints(cfg.depth) and cfg.depth < 2:
        p.add(f"shared reuses a gate below task 1's root: depth must be >= 2, got {cfg.depth}")


def _share_a_gate(draft: _Draft, t: int, root: _Gate) -> bool:
    """Replace a child gate of task 1's formula by a gate of task 0 that fits below it."""
    if t != 1:
        return True
    rng, depth = draft.rng, draft.cfg.depth
    donors = [g for g in draft.pools[0] if g.level < depth and g is not draft.roots[0]]
    slots = [(g, i) for g in root.walk() for i, c in enumerate(g.children) if isinstance(c, _Gate)]
    slots = [(g, i) for g, i in slots if any(d.level <= g.level - 1 for d in donors)]
    if not donors or not slots:
        return False
    parent, i = slots[int(rng.integers(len(slots)))]
    fits = [d for d in donors if d.level <= parent.level - 1]
    parent.children[i] = fits[int(rng.integers(len(fits)))]
    return True


def _shared_neurons(draft: _Draft) -> list[_Neuron]:
    circuit = draft.circuit(1)
    both = {id(n) for n in draft.circuit(0)} & {id(n) for n in circuit}
    return [n for n in circuit if id(n) in both]


# --- naturalise ---------------------------------------------------------------------------------


def _naturalise(params: dict, cfg: PlantedMLPConfig, rng: np.random.Generator) -> dict:
    """A random rotation of the residual basis, then Gaussian noise on every read and write."""
    d = params["embed"].shape[1]
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    q = q * np.sign(np.diag(r))
    rotated = {k: params[k] @ q for k in ("embed", "w_in", "w_out", "readout")}
    return {**params, **{k: v + cfg.noise * rng.normal(size=v.shape) for k, v in rotated.items()}}


def _every_circuit_node(nodes: np.ndarray) -> np.ndarray:
    return nodes.any(axis=0)


MODES: tuple[Mode, ...] = (
    Mode(
        "redundancy",
        "A one-neuron gate (AND or NOT) of task 0 is computed three times and a majority vote of the "
        "copies feeds its parent (which moves up a block if it must). Any single intervention on one "
        "copy (zero, mean or resample ablation, or patching) leaves the vote and the output unchanged, "
        "so single-node ablation and activation patching score each copy at zero: false negatives. "
        "(With two copies and an OR, as sometimes described, patching one copy from 0 to 1 would still "
        "flip the OR; the vote hides a copy from every single intervention, and one-neuron copies keep "
        "a copy's value in [0, 1] whatever is done to it.) The copies are marked ``redundant``. "
        "Needs ``depth < n_blocks``.",
        constraints=_redundancy_constraints,
        trainable=False,
        blocks_above=1,
        plant=_redundancy,
    ),
    Mode(
        "cancellation",
        "Two large neurons P = ReLU(root) and N = ReLU(root) in the block after task 0's root write +4 "
        "and -4 of it to the output. Together they cancel on every input, so they are not in the planted "
        "(minimal, faithful) circuit; alone each has a large effect. Single-node patching, ablation, "
        "attribution patching and edge attribution score them highly: false positives. Input "
        "attributions, which see only the net effect, are unaffected. Needs ``depth < n_blocks``.",
        constraints=_cancellation_constraints,
        blocks_above=1,
        plant=_cancellation,
    ),
    Mode(
        "saturation",
        "Task 0's root gate is compiled as a saturating ramp ReLU(2(s - t) + 1/2) - ReLU(2(s - t) - 1/2) "
        "that is flat at every clean input, so the gradient reaching everything upstream of it is zero: "
        "attribution patching, edge attribution patching and gradient x input miss the upstream "
        "circuit. Activation patching, which intervenes, is unaffected. EAP-IG and integrated gradients "
        "integrate along a path through the ramp and recover part of it.",
        trainable=False,
        shape=_saturate_root,
        plant=_saturated_neurons,
    ),
    Mode(
        "shared",
        "Task 1 reuses a gate of task 0: those neurons belong to both circuits (module label -1). "
        "Community detection, which gives each node one module, cannot be right about them; per-task "
        "patching is unaffected. Needs ``n_tasks >= 2`` and ``depth >= 2``.",
        constraints=_shared_constraints,
        graft=_share_a_gate,
        plant=_shared_neurons,
    ),
    Mode(
        "naturalise",
        "A random rotation of the residual basis plus Gaussian noise (std ``noise``, default 3e-4) on "
        "every read and write weight, so no weight is exactly zero and the circuit cannot be read off "
        "the weights' support: binary degree centrality, which counts nonzero connections, falls to "
        "chance. Each task stays exact within ``verify``'s tolerance (outputs within 0.05; about 0.01 "
        "at the default noise, 0.03 at 1e-3). Methods that intervene, and weighted graph measures, are "
        "unaffected. The catalog marks every circuit node.",
        perturb=_naturalise,
        involves=_every_circuit_node,
    ),
)

FAILURE_MODES: tuple[str, ...] = tuple(mode.name for mode in MODES)


def active(cfg: PlantedMLPConfig) -> tuple[Mode, ...]:
    """The modes ``cfg`` switches on, in catalog order."""
    return tuple(mode for mode in MODES if getattr(cfg, mode.name) is True)
