"""The storage halves of planted circuits: a toy as named arrays and JSON extras, and back."""

from __future__ import annotations

from typing import Any

import numpy as np

from planted.groundtruth import CircuitFormation, CircuitTruth, ComponentGraph
from planted.toys._planted_mlp._config import PlantedMLPConfig
from planted.toys._planted_mlp._formula import parse_formula
from planted.toys._checks import binary, shape, within
from planted.toys._planted_mlp._catalog import MODES
from planted.toys._planted_mlp._model import CircuitModel, CircuitTask, _graph
from planted.toys._planted_mlp._truth import PlantedCircuitToy


def _to_arrays(toy: PlantedCircuitToy) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The model's parameters, each task's inputs and labels, and the truth's arrays; the labels,
    task names, formulas and catalog keys as extras."""
    truth = toy.truth
    arrays = {f"model.{k}": v for k, v in toy.model.params.items()}
    for task in toy.tasks:
        arrays.update({f"task{task.index}.clean": task.clean, f"task{task.index}.corrupted": task.corrupted,
                       f"task{task.index}.labels": task.labels})
    arrays.update({
        "truth.layers": truth.graph.layers, "truth.nodes": truth.nodes, "truth.redundant": truth.redundant,
        "truth.node_effects": truth.node_effects, "truth.relevant_inputs": truth.relevant_inputs,
        "truth.modules": truth.modules,
    })
    for t in range(truth.n_tasks):
        arrays[f"truth.edges.{t}"] = truth.edges[t]
        arrays[f"truth.edge_effects.{t}"] = truth.edge_effects[t]
    arrays.update({f"truth.catalog.{mode}": mask for mode, mask in truth.catalog.items()})
    extra = {"labels": list(truth.graph.labels), "task_names": list(truth.task_names), "formulas": list(truth.formulas),
             "catalog": sorted(truth.catalog)}
    if truth.formation is not None:
        record, more = truth.formation.to_arrays()
        arrays.update(record)
        extra.update(more)
    return arrays, extra


def _from_arrays(config: PlantedMLPConfig, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> PlantedCircuitToy:
    """The toy ``_to_arrays`` wrote (the formulas parsed back into gate trees)."""
    graph = ComponentGraph(labels=tuple(extra["labels"]), layers=arrays["truth.layers"])
    n_tasks = len(extra["task_names"])
    truth = CircuitTruth(
        graph=graph, task_names=tuple(extra["task_names"]), formulas=tuple(extra["formulas"]),
        nodes=arrays["truth.nodes"], edges=tuple(arrays[f"truth.edges.{t}"] for t in range(n_tasks)),
        node_effects=arrays["truth.node_effects"],
        edge_effects=tuple(arrays[f"truth.edge_effects.{t}"] for t in range(n_tasks)),
        relevant_inputs=arrays["truth.relevant_inputs"], redundant=arrays["truth.redundant"],
        catalog={mode: arrays[f"truth.catalog.{mode}"] for mode in extra["catalog"]}, modules=arrays["truth.modules"],
        formation=CircuitFormation.from_arrays(arrays, extra),
    )
    model = CircuitModel(params={k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")}, graph=graph)
    tasks = tuple(
        CircuitTask(name=extra["task_names"][t], index=t, clean=arrays[f"task{t}.clean"],
                    corrupted=arrays[f"task{t}.corrupted"], labels=arrays[f"task{t}.labels"])
        for t in range(n_tasks)
    )
    roots = tuple(parse_formula(f) for f in extra["formulas"])
    return PlantedCircuitToy(config=config, truth=truth, model=model, tasks=tasks, roots=roots)


def _check(toy: PlantedCircuitToy) -> list[str]:
    """A loaded circuit toy against its config (``Family.check``): the graph, the parameters'
    sizes, each task's binary inputs with labels equal to its formula and corrupted inputs that
    flip it, and the truth's sizes and index ranges."""
    c, truth, p = toy.config, toy.truth, []
    graph = _graph(c)
    n = graph.n_nodes
    if toy.graph.labels != graph.labels or not np.array_equal(toy.graph.layers, graph.layers):
        p.append("the component graph is not the one the config makes")
        return p
    params = toy.model.params
    d = params["embed"].shape[-1] if params["embed"].ndim == 2 else -1
    sizes = {"embed": (c.n_inputs, d), "w_in": (c.n_blocks, c.width, d), "b_in": (c.n_blocks, c.width),
             "w_out": (c.n_blocks, c.width, d), "readout": (c.n_tasks, d), "readout_bias": (c.n_tasks,)}
    if sorted(params) != sorted(sizes):
        p.append(f"model parameters {sorted(params)}, expected {sorted(sizes)}")
        return p
    for name, size in sizes.items():
        shape(p, f"model.{name}", params[name], size)
    if len(toy.tasks) != c.n_tasks or len(toy.roots) != c.n_tasks:
        p.append(f"{len(toy.tasks)} tasks and {len(toy.roots)} formulas, the config makes {c.n_tasks}")
        return p
    for t, task in enumerate(toy.tasks):
        ok = all([shape(p, f"task{t}.clean", task.clean, (c.n_samples, c.n_inputs)),
                  shape(p, f"task{t}.corrupted", task.corrupted, (c.n_samples, c.n_inputs)),
                  shape(p, f"task{t}.labels", task.labels, (c.n_samples,))])
        for name in ("clean", "corrupted", "labels"):
            binary(p, f"task{t}.{name}", getattr(task, name))
        if ok and not p:
            if not np.array_equal(toy.formula(t, task.clean), task.labels):
                p.append(f"task{t}.labels are not the formula's values on the clean inputs")
            if np.any(toy.formula(t, task.corrupted) == task.labels):
                p.append(f"task{t}.corrupted inputs do not all flip the formula's value")
    for name in ("nodes", "redundant", "node_effects"):
        shape(p, f"truth.{name}", getattr(truth, name), (c.n_tasks, n))
    shape(p, "truth.relevant_inputs", truth.relevant_inputs, (c.n_tasks, c.n_inputs))
    if not p and (truth.redundant & ~truth.nodes).any():
        p.append("truth.redundant marks nodes outside the circuit")
    shape(p, "truth.modules", truth.modules, (n,))
    within(p, "truth.modules", truth.modules, -1, n)
    for t, (edges, effects) in enumerate(zip(truth.edges, truth.edge_effects)):
        within(p, f"truth.edges.{t}", edges, 0, graph.n_edges)
        if edges.ndim != 1 or (np.diff(edges) <= 0).any():
            p.append(f"truth.edges.{t} must be increasing edge indices")
        shape(p, f"truth.edge_effects.{t}", effects, edges.shape)
    unknown = sorted(set(truth.catalog) - {m.name for m in MODES})
    if unknown:
        p.append(f"truth.catalog names unknown failure modes {unknown}")
    for mode, mask in truth.catalog.items():
        shape(p, f"truth.catalog.{mode}", mask, (n,))
    if (truth.formation is not None) != bool(c.snapshot_every):
        p.append("a training record is kept exactly when the config has snapshot_every > 0"
                 f" (snapshot_every={c.snapshot_every}, record {'present' if truth.formation is not None else 'absent'})")
    elif truth.formation is not None:
        steps = truth.formation.steps
        expected = np.unique(np.minimum(np.arange(steps.size) * c.snapshot_every, steps[-1]))
        if steps.size != expected.size or not np.array_equal(steps, expected):
            p.append(f"formation.steps are not every {c.snapshot_every} steps from 0")
    return p
