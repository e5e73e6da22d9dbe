"""Damaged twins ("disease vs normal"): a copy of a planted circuit toy with some neurons damaged,
and exactly which ones and what it costs each task.

The config names its normal twin by that toy's canonical config JSON (``base``), so the pair is
two ordinary toys: a comparison cell holds both. The damage changes the weights of the chosen
neurons only: their output weights zeroed (``ablate``: the neuron removed) or scaled
(``scale``), Gaussian noise added to their input weights and bias (``noise``), or their input
weights permuted over the residual dimensions (``rewire``: the same weights, other connections), or
the smallest of their nonzero input and output weights zeroed (``prune``: magnitude pruning of a
fraction ``strength`` of each chosen neuron's weights).
The deficit of each task is measured by running both networks on its inputs.

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

from planted.groundtruth import DAMAGES, ComponentGraph, Config, DamageTruth, Problems, Toy
from planted.toys._checks import as_float, binary, shape
from planted.toys._family import Family, config_from_json, from_config
from planted.toys._planted_mlp._model import CircuitModel, CircuitParts, CircuitTask

TARGETS = ("circuit", "any")
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
            p.add(f"base must be the canonical JSON of a planted_mlp config: {exc}")
        else:
            if base.kind != "planted_mlp":
                p.add(f"base must be a planted_mlp config, got a {base.kind!r} one")
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
    """A damaged copy of a circuit toy: the same component graph and tasks, other weights at the
    damaged neurons; ``truth`` is a ``DamageTruth``."""

    model: CircuitModel = dataclasses.field(default=None, repr=False)
    tasks: tuple[CircuitTask, ...] = dataclasses.field(default=(), repr=False)



def damaged(base: Config | str, *, damage: str = "ablate", fraction: float = 0.1, strength: float = 0.5,
            target: str = "circuit", seed: int) -> DamagedToy:
    """A damaged copy of the planted circuit toy ``base`` (its config, or that config's JSON).

    Parameters
    ----------
    base : PlantedMLPConfig or str
        The normal twin (``toys.from_config(base)`` builds it).
    damage : {"ablate", "scale", "noise", "rewire", "prune"}
        What is done to each chosen neuron: its output weights zeroed, multiplied by ``strength``
        (in [0, 1)), its input weights and bias given Gaussian noise of ``strength`` times their
        root mean square (> 0), its input weights permuted over the residual dimensions, or the
        fraction ``strength`` (in (0, 1]; at least one) of its nonzero input and of its nonzero
        output weights smallest in magnitude zeroed.
    fraction : float
        The fraction of the candidate neurons damaged (at least one), in (0, 1].
    strength : float
        The scale, the noise level or the pruned fraction (unused by ``ablate`` and ``rewire``).
    target : {"circuit", "any"}
        Candidates: the neurons of the planted circuits, or every neuron (distractors included).
    seed : int
        Which neurons, and the noise or permutation.

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


def _accuracy(model: CircuitModel, tasks) -> np.ndarray:
    return np.array([t.accuracy(model.run(t.clean)["outputs"]) for t in tasks])


def build(config: DamagedConfig) -> DamagedToy:
    """Build the normal twin, damage its chosen neurons and measure each task's deficit."""
    if not isinstance(config, DamagedConfig):
        raise ValueError(f"config must be a DamagedConfig, got {type(config).__name__}")
    base = from_config(config.base_config())
    graph, params = base.graph, base.model.export()
    n_in, (n_blocks, width, _) = params["embed"].shape[0], params["w_in"].shape
    neurons = np.flatnonzero((graph.layers >= 1) & (graph.layers <= n_blocks))
    if config.target == "circuit":
        neurons = neurons[base.truth.nodes[:, neurons].any(axis=0)]
    rng = np.random.default_rng([config.seed, _STREAM_DAMAGE])
    chosen = np.sort(rng.choice(neurons, max(1, int(round(config.fraction * neurons.size))), replace=False))
    for node in chosen:
        b, s = divmod(int(node) - n_in, width)
        if config.damage == "ablate":
            params["w_out"][b, s] = 0.0
        elif config.damage == "scale":
            params["w_out"][b, s] *= config.strength
        elif config.damage == "noise":
            rms = float(np.sqrt(np.mean(params["w_in"][b, s].astype(np.float64) ** 2))) or 1.0
            params["w_in"][b, s] += (config.strength * rms * rng.standard_normal(params["w_in"].shape[-1])).astype(np.float32)
            params["b_in"][b, s] += np.float32(config.strength * rms * rng.standard_normal())
        elif config.damage == "prune":
            for name in ("w_in", "w_out"):
                row = params[name][b, s]
                nonzero = np.flatnonzero(row)
                cut = max(1, int(round(config.strength * nonzero.size)))
                row[nonzero[np.argsort(np.abs(row[nonzero]), kind="stable")[:cut]]] = 0.0
        else:
            params["w_in"][b, s] = params["w_in"][b, s][rng.permutation(params["w_in"].shape[-1])]
    model = CircuitModel(params=params, graph=graph)
    mask = np.zeros(graph.n_nodes, bool)
    mask[chosen] = True
    intact = _accuracy(base.model, base.tasks)
    truth = DamageTruth(base_id=base.id, damage=config.damage, damaged=mask, intact=intact,
                        deficits=intact - _accuracy(model, base.tasks))
    return DamagedToy(config=config, truth=truth, model=model, tasks=base.tasks)


def _to_arrays(toy: DamagedToy) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    arrays = {f"model.{k}": v for k, v in toy.model.params.items()}
    for task in toy.tasks:
        arrays.update({f"task{task.index}.{name}": getattr(task, name) for name in ("clean", "corrupted", "labels")})
    arrays.update({"graph.layers": toy.graph.layers, "truth.damaged": toy.truth.damaged,
                   "truth.intact": toy.truth.intact, "truth.deficits": toy.truth.deficits})
    extra = {"labels": list(toy.graph.labels), "task_names": [t.name for t in toy.tasks], "base_id": toy.truth.base_id}
    return arrays, extra


def _from_arrays(config: DamagedConfig, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> DamagedToy:
    graph = ComponentGraph(labels=tuple(extra["labels"]), layers=arrays["graph.layers"])
    model = CircuitModel(params={k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")}, graph=graph)
    tasks = tuple(CircuitTask(name=name, index=t, clean=arrays[f"task{t}.clean"], corrupted=arrays[f"task{t}.corrupted"],
                              labels=arrays[f"task{t}.labels"]) for t, name in enumerate(extra["task_names"]))
    truth = DamageTruth(base_id=str(extra["base_id"]), damage=config.damage, damaged=arrays["truth.damaged"],
                        intact=arrays["truth.intact"], deficits=arrays["truth.deficits"])
    return DamagedToy(config=config, truth=truth, model=model, tasks=tasks)


def _check(toy: DamagedToy) -> list[str]:
    """A loaded damaged toy against its config: the base's graph, parameter and task sizes, and
    the truth's; the twin's id is the base config's."""
    base, p = toy.config.base_config(), []
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
    shape(p, "truth.damaged", toy.truth.damaged, (n_nodes,))
    shape(p, "truth.deficits", toy.truth.deficits, (base.n_tasks,))
    if toy.truth.base_id != base.id:
        p.append(f"truth.base_id {toy.truth.base_id[:12]} is not the base config's id {base.id[:12]}")
    return p


FAMILY = Family(kind=DamagedConfig.kind, config=DamagedConfig, toy=DamagedToy, build=build, generator=damaged,
                to_arrays=_to_arrays, from_arrays=_from_arrays, check=_check)
