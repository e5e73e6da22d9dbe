"""The orchestrator: ``build(config)`` runs the passes (plan, place, directions, tasks, training
for the trained kind, weights, truth, verification) until a draw passes, and ``planted_mlp`` is
the public generator on top of it."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence

import numpy as np

from planted.toys._checks import as_float, require_memory
from planted.toys._family import Family
from planted.toys._planted_mlp._compiler import _directions, _place, _Plan, _plan, _weights
from planted.toys._planted_mlp._config import _STREAM_DATA, _STREAM_PLAN, _STREAM_WEIGHTS, PlantedMLPConfig
from planted.toys._planted_mlp._formula import GATES
from planted.toys._planted_mlp._model import CircuitModel, CircuitTask, _graph
from planted.toys._planted_mlp._storage import _check, _from_arrays, _to_arrays
from planted.toys._planted_mlp._trained import _TRAIN_DRAWS, _TWIN_ATTEMPTS, _train
from planted.toys._planted_mlp._truth import TOLERANCE, PlantedCircuitToy, _circuit_truth


def _tasks(plan: _Plan, cfg: PlantedMLPConfig) -> tuple[CircuitTask, ...]:
    """Each task's clean inputs, corrupted inputs that flip its answer, and labels."""
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


def build(config: PlantedMLPConfig) -> PlantedCircuitToy:
    """Compile the toy a ``PlantedMLPConfig`` describes and compute its truth by intervention.

    Formulas are drawn until one set is well formed, fits the width and passes ``verify``; the
    draws are a pure function of the seed.
    """
    if not isinstance(config, PlantedMLPConfig):
        raise ValueError(f"config must be a PlantedMLPConfig, got {type(config).__name__}")
    nodes = config.n_inputs + config.n_blocks * config.width + config.n_tasks
    mask = 8.0 * 2 * nodes * nodes  # the (n_nodes, n_nodes) edge masks and weights of verify and the truth
    runs = 8.0 * 6 * config.n_samples * nodes * config.n_tasks  # clean and corrupted float64 runs per task
    require_memory(config.kind, mask + runs, f"edge masks {mask / 2**30:.1f} GiB, runs {runs / 2**30:.1f} GiB",
                   "width or n_blocks" if mask >= runs else "n_samples, width or n_blocks")
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
        wrng = np.random.default_rng([config.weights_stream, _STREAM_WEIGHTS])
        dirs = _directions(plan.n_vars, config, wrng)
        tasks = _tasks(plan, config)
        # A config with its own weights_seed tries a plan from several starts before drawing the next,
        # so layer twins (one seed, other weights seeds) keep its formulas.
        attempts = range(_TWIN_ATTEMPTS) if config.trained and config.weights_seed is not None else (None,)
        fitted = False
        for attempt in attempts:
            draft, placed = copy.deepcopy((plan, blocks)) if attempt is not None else (plan, blocks)
            if config.trained and not _train(draft, placed, config, dirs, tasks, attempt=attempt):
                continue
            fitted = True
            model = CircuitModel(params=_weights(draft, placed, config, dirs, wrng), graph=_graph(config))
            truth = _circuit_truth(draft, placed, model, tasks, config)
            if draft.record is not None:
                truth = dataclasses.replace(truth, formation=draft.record)
            toy = PlantedCircuitToy(config=config, model=model, tasks=tasks, truth=truth, roots=tuple(draft.roots))
            check = toy.verify()
            if check.ok:
                return toy
            if any("output differs" in p for p in check.problems) and (config.superposition > 1 or config.naturalise):
                raise ValueError(
                    f"superposition={config.superposition} / noise={config.noise} make the compiled tasks inexact "
                    f"(worst output error {check.worst_output_error:.3f} > {TOLERANCE}); lower superposition or noise, "
                    "or the distractor_fraction"
                )
        if not fitted:
            untrained += 1
            if untrained == _TRAIN_DRAWS:
                raise ValueError(f"trained: no exact fit of the tasks in {_TRAIN_DRAWS} draws for {config.to_json()}; "
                                 "try fewer tasks, a lower depth or fan_in")
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
    weights_seed: int | None = None,
    snapshot_every: int = 0,
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
        The failure-mode catalog, in the order of ``toys.FAILURE_MODES``; each mode's
        ``description`` in the catalog (``planted.toys._planted_mlp._catalog.MODES``) says what
        it plants and what it does to which methods.
    noise : float
        Weight noise of ``naturalise``.
    trained : bool
        Learn the circuits' weights under structural masks instead of compiling them (see the
        package docstring); a few seconds per toy.
    n_samples : int
        Clean / corrupted input pairs per task.
    weights_seed : int, optional
        Where the residual directions, the weights and their training come from (default: ``seed``).
        Given, the orthonormal residual frame is a random rotation drawn from it (not the standard
        basis), and a trained toy tries each plan from a few starts before drawing another. Two
        toys of one ``seed`` and different ``weights_seed`` compute the same formulas with the same
        gates in the same blocks, in other frames (trained: with other learned values): layer
        twins, whose corresponding blocks are known.
    snapshot_every : int
        With ``trained``, record the first fit every this many steps (0: no record): the trained
        neurons' parameters, the loss and each gate's truth table at each snapshot, and so the
        step at which each gate formed (``truth.formation``, a ``groundtruth.CircuitFormation``).

    Returns
    -------
    PlantedCircuitToy
        ``artifact`` (model, graph, tasks) for methods; ``truth`` (``CircuitTruth``) for
        evaluators; ``verify()`` re-checks the circuits (``build`` only returns toys that pass).
    """
    # Numbers become floats and a list of gates a tuple only when they are what they should be:
    # anything else reaches the config's checks as given, which name the parameter.
    return build(PlantedMLPConfig(
        n_inputs=n_inputs, n_tasks=n_tasks, depth=depth, fan_in=fan_in, n_blocks=n_blocks, width=width,
        superposition=as_float(superposition), gates=tuple(gates) if isinstance(gates, (list, tuple)) else gates,
        distractor_fraction=as_float(distractor_fraction), redundancy=redundancy, cancellation=cancellation,
        saturation=saturation, shared=shared, naturalise=naturalise, noise=as_float(noise), trained=trained,
        n_samples=n_samples, seed=seed, weights_seed=weights_seed, snapshot_every=snapshot_every,
    ))


FAMILY = Family(kind=PlantedMLPConfig.kind, config=PlantedMLPConfig, toy=PlantedCircuitToy, build=build, generator=planted_mlp,
                to_arrays=_to_arrays, from_arrays=_from_arrays, check=_check)
