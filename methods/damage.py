"""Damage localisation: given a normal network and its damaged copy (two circuit artifacts, of a
planted circuit or of a transformer, with the same component graph and tasks), which nodes were
damaged, and what does it cost each task?

Each method returns a ``groundtruth.DamagePrediction``: a damage score per node and, where it
predicts them, each task's accuracy drop. ``weight_difference`` compares the parameters of each
node (its model's ``node_parameters()``; exact for damage that changes a node's own weights); ``activation_difference`` compares activity on
the tasks' inputs (as a recording of a patient and a control would; the damage shows in the
damaged neurons' activity and in everything downstream); ``lesion_explanation`` measures the
damaged copy's deficits on the tasks and ranks the normal network's nodes by how well lesioning
each alone explains them (lesion-effect ranking, as a lesion study of the normal network would
be used to read a patient's deficits).

On a synthetic connectome the twins are two ``Recording`` s of the same neurons under the same
stimulus (a patient's and a control's, as it were), and a method scores each recorded neuron:
``trace_difference`` compares activity, ``connectivity_difference`` the functional connectivity
each neuron takes part in (a lesion of a neuron's synapses changes its partners' correlations with
it, even where its own activity barely changes).

References
----------
Alstott, Breakspear, Hagmann, Cammoun & Sporns (2009), "Modeling the impact of lesions in the human
brain". Jonas & Kording (2017), "Could a neuroscientist understand a microprocessor?". Keinan et al.
(2004), "Fair attribution of functional contribution in artificial and biological networks".
"""

from __future__ import annotations

import numpy as np

from planted.groundtruth import DamagePrediction, Problems, Recording, as_matrix


def _pair(artifacts, where: str):
    """The (normal, damaged) circuit artifacts of a damage problem, checked to match."""
    if not isinstance(artifacts, tuple) or len(artifacts) != 2:
        raise ValueError(f"{where}: needs (normal, damaged) circuit artifacts, got {type(artifacts).__name__}")
    normal, damaged = artifacts
    for name, a in (("normal", normal), ("damaged", damaged)):
        if not hasattr(a, "model") or not hasattr(a, "tasks"):
            raise ValueError(f"{where}: the {name} artifact must be a circuit artifact (model, graph, tasks)")
        for key, value in a.model.params.items():
            if not np.isfinite(np.asarray(value)).all():
                raise ValueError(f"{where}: {name} model parameter {key!r} contains NaN or inf values")
        for t in a.tasks:
            as_matrix(f"{name} task {t.name!r} clean inputs", t.clean)
    if normal.graph.n_nodes != damaged.graph.n_nodes or len(normal.tasks) != len(damaged.tasks):
        raise ValueError(f"{where}: the two networks must share a component graph and tasks")
    return normal, damaged


def _inputs(artifact) -> np.ndarray:
    return np.concatenate([t.clean for t in artifact.tasks])


def _accuracy(artifact) -> np.ndarray:
    """Each task's accuracy of the artifact's model on the task's inputs."""
    return np.array([t.accuracy(artifact.model.run(t.clean)["outputs"]) for t in artifact.tasks])


def weight_difference(artifacts, *, seed: int = 0) -> DamagePrediction:
    """Each node's score: the sum over its parameters (input weights, biases, output weights; of a
    head: its query, key, value and output weights) of the Frobenius norm of their change."""
    normal, damaged = _pair(artifacts, "weight_difference")
    a, b = normal.model.params, damaged.model.params
    scores = np.zeros(normal.graph.n_nodes)
    for node, parts in normal.model.node_parameters().items():
        for name, index in parts.inputs + parts.bias + parts.out:
            change = np.asarray(b[name][index], np.float64) - np.asarray(a[name][index], np.float64)
            scores[node] += np.linalg.norm(change.reshape(-1))
    return DamagePrediction(nodes=scores)


def activation_difference(artifacts, *, seed: int = 0) -> DamagePrediction:
    """Each node's score: the mean absolute change of its activation (a transformer component's: of
    its write, over positions and dimensions) over every task's inputs; each task's predicted
    deficit: the mean absolute change of the output it reads (no labels used)."""
    normal, damaged = _pair(artifacts, "activation_difference")
    x = _inputs(normal)
    before, after = normal.model.run(x), damaged.model.run(x)
    change = np.abs(after["activations"] - before["activations"])
    nodes = change.mean(axis=tuple(a for a in range(change.ndim) if a != 1))
    deficits = [np.abs(t.readout(after["outputs"]) - t.readout(before["outputs"])).mean() for t in normal.tasks]
    return DamagePrediction(nodes=nodes, deficits=np.array(deficits))


def lesion_explanation(artifacts, *, kind: str = "zero", seed: int = 0) -> DamagePrediction:
    """Measure the damaged copy's deficit on each task (its accuracy against the normal one's, on
    the tasks' labelled inputs), lesion each node of the normal network alone (``kind``
    ablation) and score it by how much of the observed deficit its lesion reproduces minus how
    much deficit it adds where none is observed: ``sum_t min(p_t, d_t) - sum_t max(p_t - d_t, 0)``.
    The predicted deficits are the measured ones."""
    normal, damaged = _pair(artifacts, "lesion_explanation")
    model, graph = normal.model, normal.graph
    intact = _accuracy(normal)
    observed = intact - _accuracy(damaged)
    inner = np.flatnonzero(graph.layers < graph.layers.max())
    profile = np.zeros((inner.size, len(normal.tasks)))
    for i, t in enumerate(normal.tasks):
        lesioned = model.patch_nodes(t.clean, inner, model.ablated(t.clean, kind, seed=seed))
        profile[:, i] = intact[i] - t.accuracy(lesioned)
    profile = np.maximum(profile, 0.0)
    d = np.maximum(observed, 0.0)[None, :]
    explained = np.minimum(profile, d).sum(axis=1) - np.maximum(profile - d, 0.0).sum(axis=1)
    scores = np.full(graph.n_nodes, explained.min() - 1.0)  # the outputs, never damaged, rank last
    scores[inner] = explained
    return DamagePrediction(nodes=scores, deficits=observed)


def _recordings(recordings, where: str) -> tuple[Recording, Recording]:
    """The (normal, damaged) recordings of a connectome damage problem, checked to match."""
    if not isinstance(recordings, tuple) or len(recordings) != 2 or \
            not all(isinstance(r, Recording) for r in recordings):
        raise ValueError(f"{where}: needs (normal, damaged) recordings, got {type(recordings).__name__}")
    normal, damaged = recordings
    for name, r in (("normal", normal), ("damaged", damaged)):
        if not np.isfinite(r.traces).all():
            raise ValueError(f"{where}: the {name} recording's traces contain NaN or inf values")
    if normal.traces.shape != damaged.traces.shape or normal.kind != damaged.kind or normal.frame_rate != damaged.frame_rate:
        raise ValueError(f"{where}: the two recordings must be of the same neurons, frames, rate and kind, got "
                         f"{normal.traces.shape} {normal.kind} and {damaged.traces.shape} {damaged.kind}")
    return normal, damaged


def trace_difference(recordings, *, seed: int = 0) -> DamagePrediction:
    """Each recorded neuron's score: the mean absolute change of its trace, frame by frame (the
    same stimulus and noise drive both networks)."""
    normal, damaged = _recordings(recordings, "trace_difference")
    change = np.abs(damaged.traces.astype(np.float64) - normal.traces.astype(np.float64))
    return DamagePrediction(nodes=change.mean(axis=0))


CONNECTIVITY_MEASURES = ("correlation", "partial_correlation")


def connectivity_difference(recordings, *, measure: str = "correlation", preprocess: str = "filtered",
                            seed: int = 0) -> DamagePrediction:
    """Each recorded neuron's score: the summed absolute change of its functional connectivity
    with every other neuron (``measure``, a ``methods.connectivity`` method, on ``preprocess``ed
    traces), incoming and outgoing."""
    from planted.methods import connectivity

    p = Problems()
    p.choice("measure", measure, CONNECTIVITY_MEASURES)
    p.raise_if_any("connectivity_difference")
    normal, damaged = _recordings(recordings, "connectivity_difference")
    before, after = (getattr(connectivity, measure)(r, preprocess=preprocess) for r in (normal, damaged))
    change = np.abs(np.asarray(after, np.float64) - np.asarray(before, np.float64))
    return DamagePrediction(nodes=change.sum(axis=0) + change.sum(axis=1))


__all__ = ["CONNECTIVITY_MEASURES", "activation_difference", "connectivity_difference", "lesion_explanation",
           "trace_difference", "weight_difference"]
