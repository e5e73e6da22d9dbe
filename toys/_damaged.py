"""Damaged twins ("disease vs normal"): a copy of a planted circuit toy, of a compiled (or trained)
transformer or of a synthetic connectome with some components damaged, and exactly which ones and
what it costs.

The config names its normal twin by that toy's canonical config JSON (``base``), so the pair is
two ordinary toys: a comparison cell holds both. The damage changes the parameters of the chosen
components only (a neuron of a planted circuit's blocks; a head or an MLP of a transformer; what
belongs to each is its model's ``node_parameters()``): their output weights zeroed (``ablate``:
the neuron or head removed) or scaled (``scale``), Gaussian noise added to their input weights and
biases (``noise``), their input weights permuted over the residual dimensions (``rewire``: the
same weights, other connections), or the smallest of their nonzero input and output weights
zeroed (``prune``: magnitude pruning of a fraction ``strength`` of each weight array).
The deficit of each task is measured by running both networks on its inputs. A connectome's
damage changes the synapses of the chosen neurons (planted hubs, or any), and the damaged network
is simulated and recorded again with the twin's stimulus and noise (see ``_damage_synapses``).

References
----------
Jonas & Kording (2017), "Could a neuroscientist understand a microprocessor?". Morcos, Barrett,
Rabinowitz & Botvinick (2018), "On the importance of single directions for generalization".
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import scipy.sparse as sp

from planted.groundtruth import (
    DAMAGES,
    ComponentGraph,
    Config,
    DamageTruth,
    NodeParameters,
    Problems,
    Recording,
    Toy,
    damage_candidates,
)
from planted.toys._checks import as_float, binary, shape
from planted.toys._family import Family, config_from_json, from_config
from planted.toys._planted_mlp._model import CircuitArtifact, CircuitModel, CircuitParts, CircuitTask
from planted.toys._rasp._circuit import TransformerArtifact, TransformerModel, TransformerTask, component_graph
from planted.toys._storage import csr

TARGETS = ("circuit", "any", "hubs")
BASES = ("planted_mlp", "rasp_transformer", "connectome")  # the families a damaged twin copies
_CIRCUIT_TARGETS, _CONNECTOME_TARGETS = ("circuit", "any"), ("hubs", "any")
_BASES_TEXT = f"{', '.join(BASES[:-1])} or {BASES[-1]}"
_STREAM_DAMAGE = 505


@dataclasses.dataclass(frozen=True)
class DamagedConfig(Config):
    """Config of ``toys.damaged``; see that function for each field's meaning."""

    kind = "damaged"

    base: str
    damage: str = "ablate"
    fraction: float = 0.1
    strength: float = 0.5
    target: str = "circuit"
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("fraction", "strength"):
            object.__setattr__(self, name, as_float(getattr(self, name)))
        super().__post_init__()

    def _check(self, p: Problems) -> None:
        try:
            base = self.base_config()
        except (ValueError, TypeError) as exc:
            p.add(f"base must be the canonical JSON of a {_BASES_TEXT} config: {exc}")
        else:
            if base.kind not in BASES:
                p.add(f"base must be a {_BASES_TEXT} config, got a {base.kind!r} one")
            allowed = _CONNECTOME_TARGETS if base.kind == "connectome" else _CIRCUIT_TARGETS
            if self.target in TARGETS and self.target not in allowed:
                p.add(f"target must be one of {allowed} for a {base.kind} twin, got {self.target!r}")
        p.choice("damage", self.damage, DAMAGES)
        p.number("fraction", self.fraction, low=0, high=1, low_open=True)
        p.choice("target", self.target, TARGETS)
        p.integer("seed", self.seed, low=0, high=2**63 - 1)
        if self.damage == "scale":
            p.number("strength", self.strength, low=0, high=1, high_open=True)
        elif self.damage == "prune":
            p.number("strength", self.strength, low=0, high=1, low_open=True)
        elif self.damage == "noise":
            p.number("strength", self.strength, low=0, low_open=True)
        else:
            p.number("strength", self.strength)

    def base_config(self) -> Config:
        """The normal twin's config."""
        if not isinstance(self.base, str):
            raise TypeError(f"got {type(self.base).__name__}")
        return config_from_json(json.loads(self.base))


@dataclasses.dataclass(frozen=True, eq=False)
class DamagedToy(CircuitParts, Toy):
    """A damaged copy of a circuit toy, a transformer or a connectome; ``truth`` is a
    ``DamageTruth``. A circuit's or a transformer's copy has the same component graph and tasks
    and other weights at the damaged components, and its artifact is the twin's kind (a
    ``CircuitArtifact`` or a ``TransformerArtifact``). A connectome's copy has other synapses at
    the damaged neurons (``weights``, the whole damaged wiring) and its artifact is the
    ``Recording`` of the damaged network under the twin's stimulus and noise."""

    model: CircuitModel | TransformerModel | None = dataclasses.field(default=None, repr=False)
    tasks: tuple[CircuitTask, ...] | tuple[TransformerTask, ...] = dataclasses.field(default=(), repr=False)
    recording: Recording | None = dataclasses.field(default=None, repr=False)
    weights: sp.csr_matrix | None = dataclasses.field(default=None, repr=False)

    @property
    def artifact(self) -> CircuitArtifact | TransformerArtifact | Recording:
        if self.recording is not None:
            return self.recording
        kind = TransformerArtifact if isinstance(self.model, TransformerModel) else CircuitArtifact
        return kind(model=self.model, graph=self.graph, tasks=self.tasks)


def damaged(base: Config | str, *, damage: str = "ablate", fraction: float = 0.1, strength: float = 0.5,
            target: str = "circuit", seed: int) -> DamagedToy:
    """A damaged copy of the planted circuit toy, transformer or connectome ``base`` (its config,
    or that config's JSON).

    Parameters
    ----------
    base : PlantedMLPConfig or RASPTransformerConfig or ConnectomeConfig or str
        The normal twin (``toys.from_config(base)`` builds it). A connectome's damage is to the
        chosen neurons' synapses (see ``_damage_synapses``: outgoing removed or scaled, incoming
        given log-normal noise of mean 1 or moved to partners of the same type, or pruned), and
        its copy is simulated and recorded again under the twin's stimulus and noise.
    damage : {"ablate", "scale", "noise", "rewire", "prune"}
        What is done to each chosen component (a neuron; a head or an MLP): its output weights
        zeroed, multiplied by ``strength`` (in [0, 1)), its input weights and biases given Gaussian
        noise of ``strength`` times their root mean square (> 0), its input weights permuted over
        the residual dimensions (one permutation for a head's queries, keys and values), or the
        fraction ``strength`` (in (0, 1]; at least one) of the nonzero entries of each of its input
        and output weight arrays smallest in magnitude zeroed.
    fraction : float
        The fraction of the candidate components damaged (at least one), in (0, 1].
    strength : float
        The scale, the noise level or the pruned fraction (unused by ``ablate`` and ``rewire``).
    target : {"circuit", "any", "hubs"}
        Candidates: the components of the planted circuits, or every neuron (every live head and
        MLP; distractors included); for a connectome (which must say ``"hubs"`` or ``"any"``), the
        planted hubs or every neuron, with the synapses the damage changes.
    seed : int
        Which components, and the noise or permutation.

    Returns
    -------
    DamagedToy
        ``artifact`` (the damaged model, the twin's graph and tasks) and ``truth`` (``DamageTruth``:
        the damaged nodes and each task's deficit).
    """
    if isinstance(base, Config):
        base = base.to_json()
    return build(DamagedConfig(base=base, damage=damage, fraction=fraction, strength=strength, target=target,
                               seed=seed))


def _accuracy(model, tasks) -> np.ndarray:
    return np.array([t.accuracy(model.run(t.clean)["outputs"]) for t in tasks])


def _damage(params: dict[str, np.ndarray], parts: NodeParameters, config: DamagedConfig, rng) -> None:
    """Damage one component's parameters (``parts`` of ``params``) in place."""
    if config.damage == "ablate":
        for name, index in parts.out:
            params[name][index] = 0.0
    elif config.damage == "scale":
        for name, index in parts.out:
            params[name][index] *= config.strength
    elif config.damage == "noise":
        weights = np.concatenate([params[name][index].astype(np.float64).ravel() for name, index in parts.inputs])
        rms = float(np.sqrt(np.mean(weights ** 2))) or 1.0
        for name, index in parts.inputs:
            params[name][index] += (config.strength * rms * rng.standard_normal(params[name][index].shape)).astype(np.float32)
        for name, index in parts.bias:
            params[name][index] += np.float32(config.strength * rms * rng.standard_normal())
    elif config.damage == "prune":
        for name, index in parts.inputs + parts.out:
            weights = params[name][index].copy()
            flat = weights.reshape(-1)
            nonzero = np.flatnonzero(flat)
            cut = max(1, int(round(config.strength * nonzero.size)))
            flat[nonzero[np.argsort(np.abs(flat[nonzero]), kind="stable")[:cut]]] = 0.0
            params[name][index] = weights
    else:  # rewire: one permutation of the residual dimensions for every input weight of the component
        first_name, first_index = parts.inputs[0]
        order = rng.permutation(params[first_name][first_index].shape[0])
        for name, index in parts.inputs:
            params[name][index] = params[name][index][order]


def _damage_synapses(weights: sp.csr_matrix, cell_types: np.ndarray, chosen: np.ndarray, config: DamagedConfig,
                     rng) -> sp.csr_matrix:
    """A connectome's wiring (``weights[pre, post]``) with the chosen neurons' synapses damaged:
    their outgoing synapses removed (``ablate``) or scaled (``scale``), their incoming ones
    multiplied by exp(s z - s^2 / 2), z ~ N(0, 1), s = strength (``noise``: log-normal with mean 1,
    the sign, so Dale's law, kept), moved to other presynaptic neurons of the same cell type
    (``rewire``: the same weights, other partners), or the fraction ``strength`` of their
    remaining incoming and of their outgoing synapses smallest in magnitude removed (``prune``)."""
    coo = weights.tocoo()
    pre, post, w = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data.astype(np.float32).copy()
    n = weights.shape[0]
    for i in chosen:
        out, into = np.flatnonzero(pre == i), np.flatnonzero(post == i)
        if config.damage == "ablate":
            w[out] = 0.0
        elif config.damage == "scale":
            w[out] *= np.float32(config.strength)
        elif config.damage == "noise":
            s = config.strength
            w[into] *= np.exp(s * rng.standard_normal(into.size) - s * s / 2).astype(np.float32)
        elif config.damage == "prune":
            for group in (into, out):
                group = group[w[group] != 0]  # a synapse an earlier neuron's pruning removed is gone
                cut = max(1, int(round(config.strength * group.size))) if group.size else 0
                w[group[np.argsort(np.abs(w[group]), kind="stable")[:cut]]] = 0.0
        else:  # rewire: each incoming synapse to a presynaptic neuron of its own type not yet wired to i
            taken = set(pre[into].tolist()) | {int(i)}
            for e in into:
                free = np.flatnonzero((cell_types == cell_types[pre[e]]) & ~np.isin(np.arange(n), list(taken)))
                if free.size:
                    taken.discard(int(pre[e]))
                    pre[e] = rng.choice(free)
                    taken.add(int(pre[e]))
    damaged = sp.csr_matrix((w, (pre, post)), shape=weights.shape, dtype=np.float32)
    damaged.eliminate_zeros()
    damaged.sort_indices()
    return damaged


def connectome_candidates(truth, target: str, damage: str) -> np.ndarray:
    """(n_neurons,) bool: the neurons of a connectome that a ``damage`` of ``target`` may choose:
    the planted hubs (``"hubs"``) or every neuron (``"any"``), with the synapses the damage changes
    (outgoing for ``ablate`` and ``scale``, incoming for ``noise`` and ``rewire``, either for
    ``prune``). Localisation is scored over them."""
    w = truth.weights
    out_degree, in_degree = np.diff(w.indptr), np.bincount(w.indices, minlength=w.shape[0])
    has = {"ablate": out_degree > 0, "scale": out_degree > 0, "noise": in_degree > 0, "rewire": in_degree > 0,
           "prune": (out_degree > 0) | (in_degree > 0)}[damage]
    return has & (np.asarray(truth.hubs, bool) if target == "hubs" else True)


def _build_connectome(config: DamagedConfig, base) -> DamagedToy:
    """Damage the chosen neurons' synapses and simulate and record the network again with the
    twin's stimulus and noise (an undamaged copy reproduces the twin spike for spike)."""
    from planted.toys._connectome._build import _stimulus
    from planted.toys._connectome._dynamics import _simulate
    from planted.toys._connectome._observation import _observe

    truth, cfg = base.truth, base.config
    if config.target == "hubs" and not truth.hubs.any():
        raise ValueError("target='hubs' needs a connectome with planted hubs (hub_fraction > 0)")
    candidates = connectome_candidates(truth, config.target, config.damage)
    if not candidates.any():
        raise ValueError(f"no neuron of the {config.target!r} target has the synapses a {config.damage!r} damage changes")
    rng = np.random.default_rng([config.seed, _STREAM_DAMAGE])
    pool = np.flatnonzero(candidates)
    chosen = np.sort(rng.choice(pool, max(1, int(round(config.fraction * pool.size))), replace=False))
    weights = _damage_synapses(truth.weights, truth.cell_types, chosen, config, rng)
    # the truth is what changed: a neuron whose synapses the damage left as they were is not damaged
    change = abs(weights - truth.weights).tocoo()
    moved = change.data > 0
    rows, cols = change.row[moved], change.col[moved]
    side = {"ablate": rows, "scale": rows, "noise": cols, "rewire": cols}.get(config.damage, np.concatenate([rows, cols]))
    changed = np.zeros(truth.n_neurons, bool)
    changed[side] = True  # each kind changes only the chosen neurons' own side of the wiring
    chosen = chosen[changed[chosen]]
    if not chosen.size:
        raise ValueError(f"the {config.damage!r} damage changed no synapse of the chosen neurons; try another seed")
    tuning, features = _stimulus(cfg)
    times, neurons = _simulate(cfg, weights, tuning, features)
    _, traces = _observe(cfg, times, neurons, truth.positions)
    recording = Recording(traces=traces, frame_rate=base.recording.frame_rate, kind=base.recording.kind,
                          positions=base.recording.positions)
    mask = np.zeros(truth.n_neurons, bool)
    mask[chosen] = True
    empty = np.zeros(0)  # a connectome has no tasks: no deficits
    return DamagedToy(config=config, truth=DamageTruth(base_id=base.id, damage=config.damage, damaged=mask, intact=empty,
                                                       deficits=empty), recording=recording, weights=weights)


def build(config: DamagedConfig) -> DamagedToy:
    """Build the normal twin, damage its chosen components and measure each task's deficit (a
    connectome: simulate and record the damaged network)."""
    if not isinstance(config, DamagedConfig):
        raise ValueError(f"config must be a DamagedConfig, got {type(config).__name__}")
    base = from_config(config.base_config())
    if base.kind == "connectome":
        return _build_connectome(config, base)
    graph, params = base.graph, base.model.export()
    parts = base.model.node_parameters()
    candidates = np.flatnonzero(damage_candidates(base.model))
    if config.target == "circuit":
        candidates = candidates[base.truth.nodes[:, candidates].any(axis=0)]
    rng = np.random.default_rng([config.seed, _STREAM_DAMAGE])
    chosen = np.sort(rng.choice(candidates, max(1, int(round(config.fraction * candidates.size))), replace=False))
    for node in chosen:
        _damage(params, parts[int(node)], config, rng)
    if isinstance(base.model, TransformerModel):
        model = TransformerModel(params=params, graph=graph, causal=base.model.causal, output_tokens=base.model.output_tokens)
    else:
        model = CircuitModel(params=params, graph=graph)
    mask = np.zeros(graph.n_nodes, bool)
    mask[chosen] = True
    intact = _accuracy(base.model, base.tasks)
    truth = DamageTruth(base_id=base.id, damage=config.damage, damaged=mask, intact=intact,
                        deficits=intact - _accuracy(model, base.tasks))
    return DamagedToy(config=config, truth=truth, model=model, tasks=base.tasks)


_TASK_ARRAYS = {"planted_mlp": ("clean", "corrupted", "labels"),
                "rasp_transformer": ("clean", "corrupted", "clean_answer", "corrupted_answer")}


def _to_arrays(toy: DamagedToy) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    truth = {"truth.damaged": toy.truth.damaged, "truth.intact": toy.truth.intact, "truth.deficits": toy.truth.deficits}
    if toy.recording is not None:
        w, recording = toy.weights, toy.recording
        arrays = {"weights.data": w.data, "weights.indices": w.indices, "weights.indptr": w.indptr,
                  "recording.traces": recording.traces, **truth}
        if recording.positions is not None:
            arrays["recording.positions"] = recording.positions
        return arrays, {"n_neurons": w.shape[0], "frame_rate": recording.frame_rate, "recording_kind": recording.kind,
                        "base_id": toy.truth.base_id}
    arrays = {f"model.{k}": v for k, v in toy.model.params.items()}
    fields = _TASK_ARRAYS[toy.config.base_config().kind]
    for task in toy.tasks:
        arrays.update({f"task{task.index}.{name}": getattr(task, name) for name in fields})
    arrays.update({"graph.layers": toy.graph.layers, "truth.damaged": toy.truth.damaged,
                   "truth.intact": toy.truth.intact, "truth.deficits": toy.truth.deficits})
    extra = {"labels": list(toy.graph.labels), "task_names": [t.name for t in toy.tasks], "base_id": toy.truth.base_id}
    if isinstance(toy.model, TransformerModel):
        arrays["model_output_tokens"] = toy.model.output_tokens
        extra.update(causal=toy.model.causal, positions=[t.position for t in toy.tasks],
                     numerical=[t.numerical for t in toy.tasks])
    return arrays, extra


def _from_arrays(config: DamagedConfig, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> DamagedToy:
    truth = DamageTruth(base_id=str(extra["base_id"]), damage=config.damage, damaged=arrays["truth.damaged"],
                        intact=arrays["truth.intact"], deficits=arrays["truth.deficits"])
    if config.base_config().kind == "connectome":
        n = int(extra["n_neurons"])
        recording = Recording(traces=arrays["recording.traces"], frame_rate=float(extra["frame_rate"]),
                              kind=extra["recording_kind"], positions=arrays.get("recording.positions"))
        return DamagedToy(config=config, truth=truth, recording=recording, weights=csr(arrays, "weights", (n, n)))
    params = {k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")}
    graph = ComponentGraph(labels=tuple(extra["labels"]), layers=arrays["graph.layers"])
    names = extra["task_names"]
    if config.base_config().kind == "rasp_transformer":
        w_q = params.get("w_q")
        if w_q is None or w_q.ndim != 4 or component_graph(w_q.shape[0], w_q.shape[1]).labels != graph.labels:
            raise ValueError("the stored component graph is not the one the transformer's shape makes")
        model = TransformerModel(params=params, graph=graph, causal=bool(extra["causal"]),
                                 output_tokens=arrays.get("model_output_tokens"))
        tasks = tuple(TransformerTask(name=name, index=t, clean=arrays[f"task{t}.clean"], corrupted=arrays[f"task{t}.corrupted"],
                                      position=int(extra["positions"][t]), clean_answer=arrays[f"task{t}.clean_answer"],
                                      corrupted_answer=arrays[f"task{t}.corrupted_answer"], numerical=bool(extra["numerical"][t]))
                      for t, name in enumerate(names))
    else:
        model = CircuitModel(params=params, graph=graph)
        tasks = tuple(CircuitTask(name=name, index=t, clean=arrays[f"task{t}.clean"], corrupted=arrays[f"task{t}.corrupted"],
                                  labels=arrays[f"task{t}.labels"]) for t, name in enumerate(names))
    return DamagedToy(config=config, truth=truth, model=model, tasks=tasks)


def _check_connectome(toy: DamagedToy, base) -> list[str]:
    """A loaded damaged connectome against its base config: the wiring's size, the recording's
    frames, neurons, rate and kind."""
    p: list[str] = []
    if toy.recording is None or toy.weights is None:
        return ["a damaged connectome needs its recording and its wiring"]
    n, recording = base.n_neurons, toy.recording
    shape(p, "weights", toy.weights, (n, n))
    observed = max(1, int(round(base.observed_fraction * n)))
    frames = recording.traces.shape[0]
    shape(p, "recording.traces", recording.traces, (frames, observed))
    if recording.frame_rate != base.frame_rate or recording.kind != base.observation:
        p.append("the recording's frame rate or kind differ from the base config's")
    if abs(frames - base.duration * base.frame_rate) > 1:
        p.append(f"the recording has {frames} frames, the base config's duration makes {base.duration * base.frame_rate:.0f}")
    if recording.positions is not None:
        shape(p, "recording.positions", recording.positions, (observed, base.dim))
    shape(p, "truth.intact", toy.truth.intact, (0,))  # a connectome has no tasks
    return p


def _check_transformer(toy: DamagedToy, base) -> list[str]:
    """A loaded damaged transformer against its base config: the weights' shapes, the task (drawn
    again from the config) and the output tokens."""
    from planted.toys._rasp._toy import expected_parts
    from planted.toys._rasp._truth import output_tokens

    shapes, task, compiled = expected_parts(base)
    p: list[str] = []
    if sorted(toy.model.params) != sorted(shapes):
        return [f"model parameters {sorted(toy.model.params)}, the base config makes {sorted(shapes)}"]
    for name, size in shapes.items():
        shape(p, f"model.{name}", toy.model.params[name], size)
    if toy.model.causal != compiled.causal:
        p.append(f"the model's causal flag is {toy.model.causal}, the base program's is {compiled.causal}")
    if not np.array_equal(toy.model.output_tokens, output_tokens(compiled)):
        p.append("model_output_tokens are not the base program's")
    if len(toy.tasks) != 1:
        return p + [f"{len(toy.tasks)} tasks, the base config makes 1"]
    got = toy.tasks[0]
    for name in ("clean", "corrupted", "clean_answer", "corrupted_answer"):
        if not np.array_equal(getattr(got, name), getattr(task, name)):
            p.append(f"task0.{name} is not the base config's task")
    if (got.position, got.numerical) != (task.position, task.numerical):
        p.append("the task's position or encoding is not the base config's")
    return p


def _check(toy: DamagedToy) -> list[str]:
    """A loaded damaged toy against its config: the base's graph, parameter and task sizes, and
    the truth's; the twin's id is the base config's."""
    base, p = toy.config.base_config(), []
    if base.kind == "connectome":
        p = _check_connectome(toy, base)
        n_nodes, n_tasks = base.n_neurons, 0
    elif base.kind == "rasp_transformer":
        p = _check_transformer(toy, base)
        n_nodes, n_tasks = toy.graph.n_nodes, 1
    else:
        p = _check_circuit(toy, base)
        n_nodes, n_tasks = base.n_inputs + base.n_blocks * base.width + base.n_tasks, base.n_tasks
    if p:
        return p
    shape(p, "truth.damaged", toy.truth.damaged, (n_nodes,))
    shape(p, "truth.deficits", toy.truth.deficits, (n_tasks,))
    if toy.truth.base_id != base.id:
        p.append(f"truth.base_id {toy.truth.base_id[:12]} is not the base config's id {base.id[:12]}")
    return p


def _check_circuit(toy: DamagedToy, base) -> list[str]:
    """A loaded damaged circuit toy against its base config: the graph, parameter and task sizes."""
    p: list[str] = []
    n_nodes = base.n_inputs + base.n_blocks * base.width + base.n_tasks
    if toy.graph.n_nodes != n_nodes:
        p.append(f"the component graph has {toy.graph.n_nodes} nodes, the base config makes {n_nodes}")
        return p
    d = toy.model.params.get("embed", np.zeros((0, 0))).shape[-1]
    sizes = {"embed": (base.n_inputs, d), "w_in": (base.n_blocks, base.width, d), "b_in": (base.n_blocks, base.width),
             "w_out": (base.n_blocks, base.width, d), "readout": (base.n_tasks, d), "readout_bias": (base.n_tasks,)}
    if sorted(toy.model.params) != sorted(sizes):
        p.append(f"model parameters {sorted(toy.model.params)}, expected {sorted(sizes)}")
        return p
    for name, size in sizes.items():
        shape(p, f"model.{name}", toy.model.params[name], size)
    if len(toy.tasks) != base.n_tasks:
        p.append(f"{len(toy.tasks)} tasks, the base config makes {base.n_tasks}")
    for t, task in enumerate(toy.tasks):
        for name, size in (("clean", (base.n_samples, base.n_inputs)), ("corrupted", (base.n_samples, base.n_inputs)),
                           ("labels", (base.n_samples,))):
            shape(p, f"task{t}.{name}", getattr(task, name), size)
            binary(p, f"task{t}.{name}", getattr(task, name))
    return p


FAMILY = Family(kind=DamagedConfig.kind, config=DamagedConfig, toy=DamagedToy, build=build, generator=damaged,
                to_arrays=_to_arrays, from_arrays=_from_arrays, check=_check)
