"""The storage halves of planted circuits: a toy as named arrays and JSON extras, and back."""

from __future__ import annotations

from typing import Any

import numpy as np

from planted.groundtruth import CircuitTruth, ComponentGraph
from planted.toys._planted_mlp._config import PlantedMLPConfig
from planted.toys._planted_mlp._formula import parse_formula
from planted.toys._planted_mlp._model import CircuitModel, CircuitTask
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
    )
    model = CircuitModel(params={k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")}, graph=graph)
    tasks = tuple(
        CircuitTask(name=extra["task_names"][t], index=t, clean=arrays[f"task{t}.clean"],
                    corrupted=arrays[f"task{t}.corrupted"], labels=arrays[f"task{t}.labels"])
        for t in range(n_tasks)
    )
    roots = tuple(parse_formula(f) for f in extra["formulas"])
    return PlantedCircuitToy(config=config, truth=truth, model=model, tasks=tasks, roots=roots)
