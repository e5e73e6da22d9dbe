"""Tasks as files, for methods written in any framework: each task's artifact as plain arrays with
a description of what they are, and its prediction read back from a predictions ``.npz``.

A task declares these two halves in its ``Task`` record (``files`` and ``read``); ``planted make``
writes the artifact of every task that applies to a toy, and ``planted score`` scores each task
whose prediction the file holds. Nothing here is pickled in either direction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from planted.groundtruth import (
    CircuitPrediction,
    ComponentScores,
    Dictionary,
    EdgeScores,
    Encoder,
    NodeScores,
    DamagePrediction,
    Formation,
    Partition,
    Similarities,
    Toy,
)

Arrays = dict[str, np.ndarray]


def _floats(arrays: Arrays, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """``arrays[name]`` checked to be a float array of ``shape``."""
    a = arrays[name]
    if a.shape != shape or not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"'{name}' must be a float array {shape}, got {a.dtype} {a.shape}")
    return a


# --- features --------------------------------------------------------------------------------------


def features_files(toy: Toy) -> tuple[Arrays, dict[str, Any]]:
    n, d = toy.activations.shape
    return {"activations": toy.activations}, {
        "arrays": {"activations": f"float32 ({n}, {d}): the activations (n_samples, d_model)"},
        "predictions": {
            "directions": f"required: float array (n_latents, {d}), one learned direction per row",
            "codes": f"optional: float array ({n}, n_latents), the codes of the activations",
            "decoder_bias": f"optional: float array ({d},), added to codes @ directions",
            "W_enc": f"optional: float array ({d}, n_latents), an encoder: codes = act((x - decoder_bias) @ W_enc + b_enc)",
            "b_enc": "optional: float array (n_latents,), the encoder's bias (default 0)",
            "threshold": "optional: float array (n_latents,), JumpReLU thresholds (act keeps pre > threshold)",
            "k": "optional: integer scalar, TopK (act keeps the k largest positive pre-activations; default: ReLU)",
            "or": "a SAELens checkpoint folder (cfg.json + sae_weights.safetensors, as SAE.save_model writes it)",
        },
    }


FEATURE_ARRAYS = ("directions", "codes", "decoder_bias", "W_enc", "b_enc", "threshold", "k")


def features_read(arrays: Arrays, toy: Toy) -> Dictionary | None:
    """The ``Dictionary`` of a predictions file (None when it has no ``directions``)."""
    if "directions" not in arrays:
        stray = sorted(set(arrays) & set(FEATURE_ARRAYS))
        if stray:
            raise ValueError(f"{stray} given without 'directions'")
        return None
    return dictionary_from_arrays(arrays, *toy.activations.shape)


def dictionary_from_arrays(arrays: Arrays, n_samples: int, d_model: int) -> Dictionary:
    """A ``Dictionary`` from the arrays of the features format, for activations (n_samples, d_model)."""
    if "directions" not in arrays:
        raise ValueError(f"no array 'directions'; expected a float array (n_latents, {d_model}); found {sorted(arrays)}")
    directions = arrays["directions"]
    if directions.ndim != 2 or directions.shape[1] != d_model or not np.issubdtype(directions.dtype, np.floating):
        raise ValueError(f"'directions' must be a float array (n_latents, {d_model}), got {directions.dtype} {directions.shape}")
    k = directions.shape[0]
    codes = _floats(arrays, "codes", (n_samples, k)) if "codes" in arrays else None
    bias = _floats(arrays, "decoder_bias", (d_model,)) if "decoder_bias" in arrays else None
    return Dictionary(directions=directions, codes=codes, decoder_bias=bias, encoder=_encoder(arrays, k, d_model, bias))


def _encoder(arrays: Arrays, k: int, d_model: int, pre_bias) -> Encoder | None:
    if "W_enc" not in arrays:
        stray = sorted({"b_enc", "threshold", "k"} & set(arrays))
        if stray:
            raise ValueError(f"{stray} given without 'W_enc' ({d_model}, {k})")
        return None
    w = _floats(arrays, "W_enc", (d_model, k))
    if "threshold" in arrays and "k" in arrays:
        raise ValueError("give 'threshold' (JumpReLU) or 'k' (TopK), not both")
    b = _floats(arrays, "b_enc", (k,)) if "b_enc" in arrays else np.zeros(k, np.float32)
    pre = np.zeros(d_model, np.float32) if pre_bias is None else pre_bias
    if "k" in arrays:
        top = arrays["k"]
        if top.shape != () or top.dtype.kind not in "iu":
            raise ValueError(f"'k' must be an integer scalar, got {top.dtype} {top.shape}")
        return Encoder(weights=w, bias=b, pre_bias=pre, activation="topk", k=int(top))
    if "threshold" in arrays:
        return Encoder(weights=w, bias=b, pre_bias=pre, activation="threshold", threshold=_floats(arrays, "threshold", (k,)))
    return Encoder(weights=w, bias=b, pre_bias=pre, activation="relu")


# --- circuits --------------------------------------------------------------------------------------


def _circuit_predictions(graph, n_tasks: int) -> dict[str, str]:
    """The predictions format of a circuit task."""
    return {
        "nodes.{t}": f"float array ({graph.n_nodes},): how much each node belongs to task t's circuit (higher: more)",
        "edges.{t}": f"float array ({graph.n_edges},): the same per edge, in the edge order above",
        "note": f"for each task t in 0..{n_tasks - 1}, nodes.{{t}}, edges.{{t}} or both",
    }


def _circuit_arrays(toy: Toy, task_fields: tuple[str, ...]):
    """A circuit model as arrays: its parameters, its graph's layers and each task's ``task_fields``;
    with their shapes, the graph's description and the number of tasks."""
    graph = toy.graph
    arrays = {f"params.{k}": v for k, v in toy.model.params.items()}
    arrays["graph.layers"] = graph.layers
    for task in toy.tasks:
        arrays.update({f"task{task.index}.{name}": getattr(task, name) for name in task_fields})
    shapes = {k: list(v.shape) for k, v in arrays.items()}
    graph_info = {"labels": list(graph.labels), "n_nodes": graph.n_nodes, "n_edges": graph.n_edges}
    return arrays, shapes, graph_info, len(toy.tasks)


def circuit_files(toy: Toy) -> tuple[Arrays, dict[str, Any]]:
    """The model's parameters, its component graph and each task's inputs and labels."""
    graph = toy.graph
    arrays, shapes, graph_info, n_tasks = _circuit_arrays(toy, ("clean", "corrupted", "labels"))
    return arrays, {
        "arrays": shapes,
        "graph": graph_info,
        "model": (
            "x (batch, n_inputs) of 0/1; r = x @ params.embed; for each block b: pre = r @ params.w_in[b].T + "
            "params.b_in[b], a = relu(pre), r = r + a @ params.w_out[b]; outputs = r @ params.readout.T + "
            "params.readout_bias (batch, n_tasks). Nodes, in order: the inputs, each block's neurons, the outputs "
            "(graph.labels; graph.layers gives each node's layer). An edge (s, d) is what node s adds to node d's "
            "input through the residual stream; edges are ordered by destination d, then source s = 0 .. (first node "
            "of d's layer) - 1."
        ),
        "tasks": (
            f"{n_tasks} task(s): task{{t}}.clean inputs with their labels (the formula's value), task{{t}}.corrupted "
            "inputs that flip it; the metric of outputs is mean((2 * label - 1) * (outputs[:, t] - 1/2))."
        ),
        "predictions": _circuit_predictions(graph, n_tasks),
    }


def transformer_circuit_files(toy: Toy) -> tuple[Arrays, dict[str, Any]]:
    """The transformer's parameters, its component graph and each task's token ids and answers."""
    model, graph = toy.model, toy.graph
    arrays, shapes, graph_info, n_tasks = _circuit_arrays(toy, ("clean", "corrupted", "clean_answer", "corrupted_answer"))
    return arrays, {
        "arrays": shapes,
        "graph": graph_info,
        "model": (
            f"ids (batch, n) of token ids, BOS (id 0) first{'; causal attention' if model.causal else ''}. "
            "x = params.embed_tokens[ids] + params.embed_positions[:n]; for each layer l: for each head h: "
            "q = x @ params.w_q[l, h], k = x @ params.w_k[l, h], v = x @ params.w_v[l, h], pattern = softmax(q @ k.T) "
            "(no scaling), head output = pattern @ v @ params.w_o[l, h]; x += the sum of the head outputs; then "
            "x += relu(x @ params.w_in[l]) @ params.w_out[l]; logits = x @ params.unembed. Nodes, in order: embed "
            "(the token embedding), pos_embed, then per layer l its heads a{l}.h{h} and its MLP m{l}, then out. "
            "A node's activation is what it adds to x (out: the final x). An edge (s, d) is s's activation as d "
            "reads it; edges are ordered by destination d, then source s = 0 .. (first node of d's layer) - 1."
        ),
        "tasks": (
            f"{n_tasks} task(s): task{{t}}.clean and task{{t}}.corrupted token ids; the answer is read at the last "
            "position: for a categorical output, columns clean_answer and corrupted_answer of the logits, per-input "
            "metric (logit[clean] - logit[corrupted] + 1) / 2; for a numerical one (a single logit column), values, "
            "metric (logit - corrupted) / (clean - corrupted). The task metric is the mean."
        ),
        "predictions": _circuit_predictions(graph, n_tasks),
    }


def circuit_read(arrays: Arrays, toy: Toy) -> CircuitPrediction | None:
    names = [n for n in arrays if n.startswith(("nodes.", "edges."))]
    if not names:
        return None
    graph, n_tasks = toy.graph, len(toy.tasks)
    expected = {f"{kind}.{t}" for kind in ("nodes", "edges") for t in range(n_tasks)}
    unknown = sorted(set(names) - expected)
    if unknown:
        raise ValueError(f"unexpected arrays {unknown}; this toy has {n_tasks} task(s): nodes.t and edges.t for t < {n_tasks}")
    scores = []
    for t in range(n_tasks):
        nodes = _floats(arrays, f"nodes.{t}", (graph.n_nodes,)) if f"nodes.{t}" in arrays else None
        edges = _floats(arrays, f"edges.{t}", (graph.n_edges,)) if f"edges.{t}" in arrays else None
        if nodes is None and edges is None:
            raise ValueError(f"task {t} has neither nodes.{t} ({graph.n_nodes},) nor edges.{t} ({graph.n_edges},)")
        scores.append(ComponentScores(nodes=nodes, edges=edges))
    return CircuitPrediction(tuple(scores))


# --- connectomes -----------------------------------------------------------------------------------


def recording_files(toy: Toy) -> tuple[Arrays, dict[str, Any]]:
    """The recording: traces, and positions where the network has a geometry."""
    recording = toy.artifact
    arrays = {"traces": recording.traces}
    if recording.positions is not None:
        arrays["positions"] = recording.positions
    t, m = recording.traces.shape
    return arrays, {
        "arrays": {"traces": f"float32 ({t}, {m}): {recording.kind} of each recorded neuron per frame",
                   **({"positions": f"float ({m}, {recording.positions.shape[1]}): where each recorded neuron is (mm)"}
                      if recording.positions is not None else {})},
        "recording": {"frame_rate": recording.frame_rate, "kind": recording.kind},
        "predictions": {
            "scores": f"float array ({m}, {m}): scores[pre, post] of a synapse from pre to post (connectivity)",
            "labels": f"integer array ({m},): a module label per recorded neuron (modules)",
            "values": f"float array ({m},): a centrality per recorded neuron, hubs highest (hubs)",
        },
    }


def _neurons(toy: Toy) -> int:
    return toy.artifact.traces.shape[1]


def connectivity_read(arrays: Arrays, toy: Toy) -> EdgeScores | None:
    if "scores" not in arrays:
        return None
    m = _neurons(toy)
    return EdgeScores(_floats(arrays, "scores", (m, m)))


def modules_read(arrays: Arrays, toy: Toy) -> Partition | None:
    if "labels" not in arrays:
        return None
    labels, m = arrays["labels"], _neurons(toy)
    if labels.shape != (m,) or labels.dtype.kind not in "iu":
        raise ValueError(f"'labels' must be an integer array ({m},), got {labels.dtype} {labels.shape}")
    return Partition(labels)


def hubs_read(arrays: Arrays, toy: Toy) -> NodeScores | None:
    if "values" not in arrays:
        return None
    return NodeScores(_floats(arrays, "values", (_neurons(toy),)))


__all__ = [
    "FEATURE_ARRAYS",
    "dictionary_from_arrays",
    "circuit_files",
    "circuit_read",
    "connectivity_read",
    "features_files",
    "features_read",
    "hubs_read",
    "modules_read",
    "recording_files",
]


# --- comparison --------------------------------------------------------------------------------------


def comparison_files(problem: tuple[Toy, ...]) -> tuple[Arrays, dict[str, Any]]:
    """A comparison problem's representations, ``activations.<i>`` in order."""
    return _representation_files([t.activations for t in problem])


def layer_files(problem: tuple[Toy, ...]) -> tuple[Arrays, dict[str, Any]]:
    """A layer-matching problem's shown layers (the first twin's, then the second's), ``activations.<i>``."""
    from planted.evaluators.comparison import layer_representations

    arrays, about = _representation_files(list(layer_representations(problem)))
    half = len(arrays) // 2
    about["layers"] = f"activations.0 to .{half - 1}: the first network's layers, in a shuffled order; .{half} on: the second's"
    return arrays, about


def _representation_files(representations: list[np.ndarray]) -> tuple[Arrays, dict[str, Any]]:
    arrays = {f"activations.{i}": a for i, a in enumerate(representations)}
    k = len(arrays)
    return arrays, {
        "arrays": {name: f"float32 {a.shape}: representation {name.split('.')[1]} of the same samples (n_samples, d_i)"
                   for name, a in arrays.items()},
        "predictions": {"similarities": f"required: float array ({k}, {k}), similarities[i, j] of representations i "
                                        "and j (higher: more alike; scored on (S + S.T) / 2, the diagonal ignored)"},
    }


def comparison_read(arrays: Arrays, problem: tuple[Toy, ...]) -> Similarities | None:
    """The ``Similarities`` of a predictions file (None when it has no ``similarities``), one row
    per toy of the problem."""
    return _similarities(arrays, len(problem))


def layer_read(arrays: Arrays, problem: tuple[Toy, ...]) -> Similarities | None:
    """The ``Similarities`` of a predictions file, one row per layer shown (both twins')."""
    from planted.evaluators.comparison import layer_orders

    return _similarities(arrays, 2 * layer_orders(problem)[0].size)


def _similarities(arrays: Arrays, k: int) -> Similarities | None:
    if "similarities" not in arrays:
        return None
    return Similarities(_floats(arrays, "similarities", (k, k)))


# --- damage ----------------------------------------------------------------------------------------


def damage_files(problem: tuple[Toy, ...]) -> tuple[Arrays, dict[str, Any]]:
    """Both networks of a damage problem as circuit (or transformer circuit) files, ``normal.*``
    and ``damaged.*``."""
    arrays: Arrays = {}
    about: dict[str, Any] = {}
    files = transformer_circuit_files if problem[0].kind == "rasp_transformer" else circuit_files
    for name, toy in zip(("normal", "damaged"), problem):
        part, description = files(toy)
        arrays.update({f"{name}.{k}": v for k, v in part.items()})
        about[name] = {k: v for k, v in description.items() if k != "predictions"}
    graph = problem[0].graph
    about["predictions"] = {
        "damage": f"required: float array ({graph.n_nodes},), how likely each node is damaged (higher: more)",
        "deficits": f"optional: float array ({len(problem[0].tasks)},), each task's predicted accuracy drop (a "
                    "transformer's accuracy: the clean answer's logit strictly above every other, a numerical value "
                    "nearer the clean answer than the corrupted one)",
    }
    return arrays, about


def damage_read(arrays: Arrays, problem: tuple[Toy, ...]) -> DamagePrediction | None:
    """The ``DamagePrediction`` of a predictions file (None when it has no ``damage``)."""
    if "damage" not in arrays:
        return None
    n_nodes, n_tasks = problem[0].graph.n_nodes, len(problem[0].tasks)
    deficits = _floats(arrays, "deficits", (n_tasks,)) if "deficits" in arrays else None
    return DamagePrediction(nodes=_floats(arrays, "damage", (n_nodes,)), deficits=deficits)


def connectome_damage_files(problem: tuple[Toy, ...]) -> tuple[Arrays, dict[str, Any]]:
    """Both recordings of a connectome damage problem, ``normal.*`` and ``damaged.*``."""
    arrays: Arrays = {}
    about: dict[str, Any] = {}
    for name, toy in zip(("normal", "damaged"), problem):
        part, description = recording_files(toy)
        arrays.update({f"{name}.{k}": v for k, v in part.items()})
        about[name] = {k: v for k, v in description.items() if k != "predictions"}
    m = problem[0].artifact.traces.shape[1]
    about["predictions"] = {"damage": f"required: float array ({m},), how likely each recorded neuron's synapses were "
                                      "damaged (higher: more)"}
    return arrays, about


def connectome_damage_read(arrays: Arrays, problem: tuple[Toy, ...]) -> DamagePrediction | None:
    """The ``DamagePrediction`` of a predictions file (None when it has no ``damage``)."""
    if "damage" not in arrays:
        return None
    return DamagePrediction(nodes=_floats(arrays, "damage", (problem[0].artifact.traces.shape[1],)))


# --- dynamics --------------------------------------------------------------------------------------


def dynamics_files(toy: Toy) -> tuple[Arrays, dict[str, Any]]:
    """A training record: the snapshots' steps, losses and weights (and a toy model of
    superposition's biases)."""
    from planted.evaluators.dynamics import training_record

    arrays, truth, _ = training_record(toy)
    n, circuit = truth.size, "biases" not in arrays
    weights = {
        "planted_mlp": "each node's trained parameters (its read coefficients, bias and write gain; zeros where "
                       "training does not reach: inputs, distractors, outputs), one column per node of the graph",
        "rasp_transformer": "the norms of each component's weights (a head's query, key, value and output weights; "
                            "an MLP's input and output weights; an embedding's or the unembedding's), one column per "
                            "node of the graph",
    }.get(getattr(toy, "kind", None), "W (n_hidden, n_features)")
    described = {"steps": f"int64 {arrays['steps'].shape}: the optimiser step of each snapshot (0: the initialisation)",
                 "losses": f"float32 {arrays['losses'].shape}: the training loss at each snapshot",
                 "weights": f"float32 {arrays['weights'].shape}: {weights} at each snapshot"}
    if not circuit:
        described["biases"] = f"float32 {arrays['biases'].shape}: the output bias at each snapshot"
    what = "node" if circuit else "feature"
    return dict(arrays), {
        "arrays": described,
        "predictions": {"formation_steps": f"optional: int array ({n},), the step each {what} formed (-1: never)",
                        "events": "optional: int array (k,), steps at which something formed (change points)",
                        "note": "formation_steps, events or both"},
    }


def dynamics_read(arrays: Arrays, toy: Toy) -> Formation | None:
    """The ``Formation`` of a predictions file (None when it has neither array)."""
    from planted.evaluators.dynamics import training_record

    if "formation_steps" not in arrays and "events" not in arrays:
        return None
    n = training_record(toy)[1].size
    steps = arrays.get("formation_steps")
    if steps is not None and steps.shape != (n,):
        raise ValueError(f"'formation_steps' must be an int array ({n},), got {steps.dtype} {steps.shape}")
    return Formation(steps=steps, events=arrays.get("events"))
