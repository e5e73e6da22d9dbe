"""Tasks: what a method receives, what it must return, and how that is scored.

A task is the contract of a benchmark cell: features, circuits, and on synthetic connectomes
connectivity, modules and hubs; comparison takes a problem of several toys (feature views) and
scores a similarity measure against the features they share, damage a normal toy and its
damaged copy, and lesions scores circuit methods against a toy's exact lesion census. A family registers more by adding a ``Task`` to ``TASKS``; the
runner, the store and the reports work on any task unchanged.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from planted.evaluators import _exchange, _figures
from planted.evaluators.comparison import (
    check_twins,
    functional_differences,
    layer_representations,
    score_damage,
    score_recorded_damage,
    score_layer_matching,
    score_similarities,
    shared_fractions,
)
from planted.evaluators.circuits import auroc, score_circuit, score_modules, with_edges
from planted.evaluators.connectome import hub_precision_at_k, score_connectivity
from planted.evaluators.dynamics import has_record, score_dates, training_record
from planted.evaluators.features import score_features
from planted.evaluators.lesions import census_of, score_lesions
from planted.groundtruth import (
    CircuitPrediction,
    CircuitTruth,
    ConnectomeTruth,
    DamagePrediction,
    DamageTruth,
    Dictionary,
    EdgeScores,
    Formation,
    FeatureToy,
    FeatureTruth,
    NodeScores,
    Partition,
    Similarities,
    Toy,
)


def private_copy(value: Any) -> Any:
    """A private, read-only copy of an artifact: every array copied and made read-only, every
    record (all its attributes, private ones included), tuple and dict rebuilt around the copies. A method that writes into its input gets
    NumPy's "assignment destination is read-only"; whatever it does, the next method and the
    scoring see the toy as it was built."""
    if isinstance(value, np.ndarray):
        array = value.copy()
        array.flags.writeable = False
        return array
    if isinstance(value, Mapping):
        return {k: private_copy(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)) and not hasattr(value, "_fields"):
        return tuple(private_copy(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        clone = copy.copy(value)
        # Every attribute, not only the fields: a record's private caches (a graph's edge
        # offsets) must not be shared with the toy either.
        for name, attribute in vars(value).items():
            object.__setattr__(clone, name, private_copy(attribute))
        return clone
    return value


def toy_artifact(toy: Toy | tuple[Toy, ...]) -> Any:
    """What a method receives: a private, read-only copy of the toy's artifact, never its truth
    (for a problem of several toys, the tuple of their artifacts, in order)."""
    if isinstance(toy, tuple):
        return tuple(private_copy(t.artifact) for t in toy)
    return private_copy(toy.artifact)


def _keep_nothing(prediction: Any, toy: Toy) -> None:
    return None


def _no_figures(results: Sequence[Any], store: Any, folder: Path) -> list[Path]:
    return []


def _no_figure_data(toy: Toy) -> dict[str, np.ndarray]:
    return {}


def _any_toy(toy: Toy) -> bool:
    return True


@dataclasses.dataclass(frozen=True)
class Task:
    """A benchmark task.

    Attributes
    ----------
    name : str
    description : str
    truth_type : type or tuple of types
        The truth of the toys this task applies to (``FeatureTruth``, ``CircuitTruth``,
        ``ConnectomeTruth``; a tuple where a problem's toys differ, as a damaged twin's).
    prediction_type : type
        What a method must return.
    artifact : callable(toy) -> object
        What a method receives (never the truth): by default ``toy_artifact``, a private, read-only
        copy of ``toy.artifact``, made afresh for every method.
    score : callable(prediction, toy) -> dict[str, float | None]
        The metrics of a prediction.
    headline : str
        The metric leaderboards sort by (higher is better).
    metrics : tuple[str, ...]
        The metrics tables show by default.
    keep : callable(prediction, toy) -> array or None
        The array of a prediction the store keeps for report figures (feature directions; a
        circuit method's edge scores on the first task, induced from node scores if need be).
    figure_data : callable(toy) -> dict[str, np.ndarray]
        The truth arrays this task's figures draw (planted directions, a circuit's graph and
        edges, a connectome's adjacency and a recording excerpt, a superposition toy's W ...).
        The runner calls it once per toy, on the cell that builds it first, and the store keeps
        the arrays under (toy id, task name): ``Store.toy_arrays(toy_id, task=name)``. Keep them
        small (arrays over ``store.KEEP_PREDICTION_LIMIT`` entries are not kept) and of numeric,
        bool or string dtype (they are read back without pickle). Default: no arrays.
    families : tuple[str, ...] or None
        The toy families the task applies to (``toys.FAMILY_KINDS``); None: any whose truth is a
        ``truth_type``. Two tasks may share a truth type but not a model interface.
    accepts : callable(toy) -> bool
        What the task needs of a toy beyond its truth type and family (a training record, say);
        default: nothing more.
    conflicts : tuple[str, ...]
        Tasks whose truth this task's artifact reveals (a toy model of superposition's training
        record holds its final weights, whose columns are the features; a trained circuit's record
        moves only its circuit's neurons): ``planted make`` leaves this task out of a folder that
        serves any of them.
    several : bool
        Whether a cell of this task holds a problem of several toys (a tuple, as a suite's
        ``ToySpec.members`` make it): every callable above then receives that tuple where it
        would receive a toy, and ``artifact``'s default hands the method the tuple of their
        artifacts. Each toy must be of ``truth_type`` (and ``families``).
    catalog : bool
        Whether reports show its catalog table (methods x toys, ``report.catalog``).
    files : callable(toy) -> (arrays, description), optional
        The artifact as plain arrays for ``planted make`` (tasks sharing an artifact give the same
        arrays), with a JSON-able description of them and of the predictions format; None: the
        task cannot be exported.
    read : callable(arrays, toy) -> prediction or None, optional
        The task's prediction from a predictions file's arrays (None when the file holds none for
        this task; a ValueError naming the array when it is malformed), for ``planted score``.
    figures : callable(results, store, folder) -> list[Path]
        Writes this task's report figures (and tables): ``results`` are the task's
        ``CellResult``s (every suite, seed and status), ``store`` the ``Store`` they came from or
        None, ``folder`` the existing output folder; returns the paths written. It reads what it
        draws from the store (``store.toy_arrays(r.toy_id, task=r.task)``, the kept predictions
        ``store.directions(r.key)``) and never builds or trains a toy; what is not stored (or
        every figure, when ``store`` is None) is skipped silently. ``write_report`` calls it once
        per task present in the results. Default: no figures.

    Every callable is a module-level function, so a task (built-in or registered by a user in
    ``TASKS``) travels to worker processes and Ray tasks with the cell that uses it.
    """

    name: str
    description: str
    truth_type: type
    prediction_type: type
    score: Callable[[Any, Toy], dict[str, Any]]
    headline: str
    metrics: tuple[str, ...]
    artifact: Callable[[Toy], Any] = toy_artifact
    keep: Callable[[Any, Toy], Any] = _keep_nothing
    figure_data: Callable[[Toy], dict[str, np.ndarray]] = _no_figure_data
    figures: Callable[..., list[Path]] = _no_figures
    families: tuple[str, ...] | None = None
    accepts: Callable[[Toy], bool] = _any_toy
    conflicts: tuple[str, ...] = ()
    several: bool = False
    catalog: bool = False
    files: Callable[[Toy], tuple[dict[str, np.ndarray], dict[str, Any]]] | None = None
    read: Callable[[dict[str, np.ndarray], Toy], Any] | None = None

    def applies_to(self, toy: Toy | tuple[Toy, ...]) -> bool:
        """Whether the task can score ``toy``: one toy (a tuple of at least 2 for a task of
        ``several``) of its truth type, and of its families where ``families`` says."""
        if self.several != isinstance(toy, tuple) or (self.several and len(toy) < 2):
            return False
        return all(isinstance(getattr(t, "truth", None), self.truth_type) and (
            self.families is None or getattr(t, "kind", None) in self.families) and self.accepts(t)
            for t in (toy if self.several else (toy,)))

    def check_toy(self, toy: Toy | tuple[Toy, ...]) -> None:
        if self.several != isinstance(toy, tuple):
            raise ValueError(f"the {self.name} task needs " + (
                "a problem of several toys (a suite's ToySpec with members)" if self.several else "one toy")
                + f", got {'a tuple of ' + str(len(toy)) + ' toys' if isinstance(toy, tuple) else 'one toy'}")
        if self.several:
            if len(toy) < 2:
                raise ValueError(f"the {self.name} task needs at least 2 toys, got {len(toy)}")
            for member in toy:
                self.check_toy_one(member)
            return
        self.check_toy_one(toy)

    def check_toy_one(self, toy: Toy) -> None:
        if not isinstance(getattr(toy, "truth", None), self.truth_type):
            wanted = " or ".join(t.__name__ for t in np.atleast_1d(np.array(self.truth_type, dtype=object)))
            raise ValueError(f"the {self.name} task needs a toy whose truth is a {wanted}, got a {type(toy).__name__}")
        if self.families is not None and getattr(toy, "kind", None) not in self.families:
            raise ValueError(f"the {self.name} task applies to toys of the families {', '.join(self.families)}; "
                             f"got a {getattr(toy, 'kind', type(toy).__name__)!r} toy")
        if not self.accepts(toy):
            raise ValueError(f"the {self.name} task cannot use this {toy.kind} toy: {self.description}")

    def check_prediction(self, prediction: Any, method: str) -> None:
        if not isinstance(prediction, self.prediction_type):
            raise ValueError(
                f"method {method!r} returned {type(prediction).__name__}; the {self.name} task needs a "
                f"planted.groundtruth.{self.prediction_type.__name__}"
            )


def _feature_metrics(prediction: Dictionary, toy: FeatureToy) -> dict[str, Any]:
    scores = score_features(prediction, toy.truth, activations=toy.activations).as_dict()
    scores.pop("threshold")
    return scores


def _circuit_metrics(prediction: CircuitPrediction, toy) -> dict[str, Any]:
    """Mean over the toy's tasks of ``score_circuit``; node-only methods are scored on edges too,
    each edge as important as its weaker end (min of the two |node scores|)."""
    if len(prediction.scores) != toy.truth.n_tasks:
        raise ValueError(f"the prediction has {len(prediction.scores)} ComponentScores; the toy has {toy.truth.n_tasks} tasks")
    rows = [score_circuit(with_edges(s, toy.graph), toy, t).to_dict() for t, s in enumerate(prediction.scores)]
    out = {}
    for name in rows[0]:
        values = [r[name] for r in rows if r[name] is not None]
        out[name] = float(np.mean(values)) if values else None
    return out


def _feature_keep(prediction: Dictionary, toy) -> np.ndarray:
    return prediction.directions


def _circuit_keep(prediction: CircuitPrediction, toy):
    first = with_edges(prediction.scores[0], toy.graph)
    return None if first.edges is None else first.edges.astype(np.float32)


def _per_neuron(values: np.ndarray, toy, what: str) -> np.ndarray:
    m = toy.truth.observed.size
    if values.shape != (m,):
        raise ValueError(f"a {what} prediction must be one value per recorded neuron, shape ({m},), got {values.shape}")
    return values


def _connectivity_metrics(prediction: EdgeScores, toy) -> dict[str, Any]:
    scores = score_connectivity(prediction.scores, toy.truth).to_dict()
    scores.pop("n_pairs")
    scores.pop("n_edges")
    return scores


def _connectivity_keep(prediction: EdgeScores, toy) -> np.ndarray:
    return prediction.scores.astype(np.float32)


def _module_metrics(prediction: Partition, toy) -> dict[str, Any]:
    labels = _per_neuron(prediction.labels, toy, "modules")
    scores = score_modules(labels, toy.truth.modules[toy.truth.observed])
    return {"nmi": scores.nmi, "ari": scores.ari, "n_modules": float(np.unique(labels).size)}


def _hub_metrics(prediction: NodeScores, toy) -> dict[str, Any]:
    centrality = _per_neuron(prediction.values, toy, "hubs")
    hubs = toy.truth.hubs[toy.truth.observed]
    if not hubs.any() or hubs.all():
        raise ValueError("the hubs task needs a toy whose recorded neurons include hubs and non-hubs")
    return {"hub_precision": hub_precision_at_k(centrality, hubs), "hub_auroc": auroc(centrality, hubs)}


def _circuit_task(name: str, description: str, families: tuple[str, ...], files) -> Task:
    """A circuit-finding task: ``CircuitTruth`` against ``CircuitPrediction``, scored by
    ``score_circuit`` with the catalog table and circuit figures; ``families`` and ``files`` differ
    by the model interface."""
    return Task(
        name=name, description=description, truth_type=CircuitTruth, prediction_type=CircuitPrediction,
        score=_circuit_metrics, headline="edge_auroc",
        metrics=("edge_auroc", "edge_auprc", "node_auroc", "node_precision_at_k", "cpr", "cmd"), keep=_circuit_keep,
        figure_data=_figures.circuits_figure_data, figures=_figures.circuits_figures, families=families, catalog=True,
        files=files, read=_exchange.circuit_read,
    )


def _lesion_metrics(prediction: CircuitPrediction, toy) -> dict[str, Any]:
    return score_lesions(prediction, census_of(toy), toy.graph.n_nodes)


def _lesion_task(name: str, description: str, families: tuple[str, ...], files) -> Task:
    """A lesion task: a circuit method's node scores ranked against the toy's exact lesion census;
    ``families`` and ``files`` differ by the model interface."""
    return Task(
        name=name,
        description=f"{description}: node scores ranked against the exact lesion census (every node zeroed alone, "
        "every pair together): AUROC of the costly nodes, Spearman with the deficits, and AUROC of the backups, "
        "silent alone but lethal in a pair",
        truth_type=CircuitTruth, prediction_type=CircuitPrediction, score=_lesion_metrics, headline="lesion_auroc",
        metrics=("lesion_auroc", "lesion_spearman", "backup_auroc"), figure_data=_figures.lesions_figure_data,
        figures=_figures.lesions_figures, families=families, files=files, read=_exchange.circuit_read,
    )


def _comparison_metrics(prediction: Similarities, problem) -> dict[str, Any]:
    scores = score_similarities(prediction, shared_fractions(problem), functional_differences(problem)).to_dict()
    scores.pop("n_pairs")
    return scores


def _damage_metrics(prediction: DamagePrediction, problem) -> dict[str, Any]:
    normal, damaged = check_twins(problem)
    return score_damage(prediction, damaged.truth, normal.model)


def _connectome_damage_metrics(prediction: DamagePrediction, problem) -> dict[str, Any]:
    from planted.toys._damaged import connectome_candidates

    normal, damaged = check_twins(problem)
    candidates = connectome_candidates(normal.truth, damaged.config.target, damaged.config.damage)
    return score_recorded_damage(prediction, damaged.truth, normal.truth.observed, candidates)


def _layer_artifact(problem) -> tuple[np.ndarray, ...]:
    return private_copy(layer_representations(problem))


def _dynamics_artifact(toy) -> dict[str, np.ndarray]:
    return private_copy(training_record(toy)[0])


def _dynamics_keep(prediction: Formation, toy) -> np.ndarray | None:
    return None if prediction.steps is None else prediction.steps.astype(np.float32)


def _dynamics_metrics(prediction: Formation, toy) -> dict[str, Any]:
    record, truth, scored = training_record(toy)
    return score_dates(prediction, truth, record["steps"], scored)


def _comparison_keep(prediction: Similarities, problem) -> np.ndarray:
    return prediction.symmetric.astype(np.float32)


TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task(
            name="features",
            description="recover planted feature directions from activations (n_samples, d_model)",
            truth_type=FeatureTruth,
            prediction_type=Dictionary,
            score=_feature_metrics,
            headline="mmcs",
            metrics=("mmcs", "matched_cosine", "mcc", "recovered", "spurious", "code_correlation", "fvu", "l0"),
            keep=_feature_keep,
            figure_data=_figures.features_figure_data,
            figures=_figures.features_figures,
            files=_exchange.features_files,
            read=_exchange.features_read,
        ),
        _circuit_task("circuits", "find each task's planted circuit (nodes and edges) in a network, through its "
                      "intervention interface", ("planted_mlp",), _exchange.circuit_files),
        _circuit_task("transformer_circuits", "find the attention-head circuit of a compiled transformer (embeddings, "
                      "heads, MLPs and the edges between them), through its intervention interface over components, "
                      "positions and edges", ("rasp_transformer",), _exchange.transformer_circuit_files),
        _lesion_task("lesions", "say what lesioning each input and neuron of a planted circuit toy costs each task (the "
                     "same interface and predictions as circuits)", ("planted_mlp",), _exchange.circuit_files),
        _lesion_task("transformer_lesions", "say what lesioning each embedding, head and MLP of a transformer costs its "
                     "task (the same interface and predictions as transformer_circuits)", ("rasp_transformer",),
                     _exchange.transformer_circuit_files),
        Task(
            name="comparison",
            description="compare representations of the same inputs (feature views of one code stream, each in a "
            "frame of its own): a similarity for every pair, scored by its rank correlation with the fraction of "
            "planted features the pair shares, and by how it tells identical pairs from the rest",
            truth_type=FeatureTruth,
            prediction_type=Similarities,
            score=_comparison_metrics,
            headline="rank_correlation",
            metrics=("rank_correlation", "within_auprc", "violation_rate", "inverted", "sensitivity", "specificity"),
            keep=_comparison_keep,
            figure_data=_figures.comparison_figure_data,
            figures=_figures.comparison_figures,
            families=("feature_view",),
            several=True,
            files=_exchange.comparison_files,
            read=_exchange.comparison_read,
        ),
        Task(
            name="layers",
            description="match the layers of two planted circuit toys (or compiled transformers) that compute the "
            "same formulas in other frames (layer twins): a similarity for every pair of their residual streams "
            "after each block (sublayer), shown in a shuffled order; scored by the fraction of layers whose most "
            "similar layer of the other twin is its counterpart (Kornblith et al. 2019)",
            truth_type=CircuitTruth,
            prediction_type=Similarities,
            artifact=_layer_artifact,
            score=score_layer_matching,
            headline="layer_accuracy",
            metrics=("layer_accuracy", "layer_auroc"),
            keep=_comparison_keep,
            families=("planted_mlp", "rasp_transformer"),
            several=True,
            files=_exchange.layer_files,
            read=_exchange.layer_read,
        ),
        Task(
            name="dynamics",
            description="date the formation of each planted component from a training record (snapshots of the "
            "weights and the loss curve) of a toy trained with snapshot_every > 0: each feature of a toy model of "
            "superposition, each trained gate's neurons of a planted circuit, each head of a trained transformer; "
            "log-step error and Kendall tau of the dates, precision and recall of change points within a window",
            truth_type=(FeatureTruth, CircuitTruth),
            prediction_type=Formation,
            artifact=_dynamics_artifact,
            score=_dynamics_metrics,
            headline="event_f1",
            metrics=("event_f1", "event_precision", "event_recall", "lead_time", "log_step_error", "order_tau",
                     "formed_accuracy"),
            families=("superposition", "planted_mlp", "rasp_transformer"),
            accepts=has_record,
            # the record shows which weights training moved: W's columns are the features, a circuit's
            # trained neurons are its circuit
            conflicts=("features", "circuits", "lesions", "transformer_circuits", "transformer_lesions"),
            keep=_dynamics_keep,
            figure_data=_figures.dynamics_figure_data,
            figures=_figures.dynamics_figures,
            files=_exchange.dynamics_files,
            read=_exchange.dynamics_read,
        ),
        Task(
            name="damage",
            description="localise the damage in a damaged copy of a planted circuit toy or a transformer from the normal "
            "network and the copy (both models, graphs and tasks): a damage score per node (AUROC over the blocks' "
            "neurons, or the transformer's live heads and MLPs) and, "
            "optionally, each task's accuracy drop (Spearman; measurable from the artifacts, whose tasks carry "
            "labels, so it tells apart only methods that do not run both networks on them)",
            truth_type=(CircuitTruth, DamageTruth),
            prediction_type=DamagePrediction,
            score=_damage_metrics,
            headline="damage_auroc",
            metrics=("damage_auroc", "damage_auprc", "damage_precision", "deficit_spearman", "deficit_error"),
            families=("planted_mlp", "rasp_transformer", "damaged"),
            several=True,
            files=_exchange.damage_files,
            read=_exchange.damage_read,
        ),
        Task(
            name="connectome_damage",
            description="localise the damage in a damaged copy of a synthetic connectome (synapses of hubs or of any "
            "neurons removed, scaled, noised, rewired or pruned) from two recordings of the same neurons under the "
            "same stimulus, the normal network's and the damaged one's: a damage score per recorded neuron, scored "
            "by AUROC over the recorded neurons",
            truth_type=(ConnectomeTruth, DamageTruth),
            prediction_type=DamagePrediction,
            score=_connectome_damage_metrics,
            headline="damage_auroc",
            metrics=("damage_auroc", "damage_auprc", "damage_precision"),
            families=("connectome", "damaged"),
            several=True,
            files=_exchange.connectome_damage_files,
            read=_exchange.connectome_damage_read,
        ),
        Task(
            name="connectivity",
            description="infer the synapses among recorded neurons from their recording: a score per ordered pair "
            "(n_observed, n_observed), scored by AUROC over pairs with the diagonal masked (the ChaLearn metric)",
            truth_type=ConnectomeTruth,
            prediction_type=EdgeScores,
            score=_connectivity_metrics,
            headline="auroc",
            metrics=("auroc", "auprc", "sign_accuracy"),
            keep=_connectivity_keep,
            figure_data=_figures.connectome_figure_data,
            figures=_figures.connectome_figures,
            files=_exchange.recording_files,
            read=_exchange.connectivity_read,
        ),
        Task(
            name="modules",
            description="find the planted modules from a recording: a module label per recorded neuron (NMI, ARI)",
            truth_type=ConnectomeTruth,
            prediction_type=Partition,
            score=_module_metrics,
            headline="nmi",
            metrics=("nmi", "ari", "n_modules"),
            figure_data=_figures.connectome_figure_data,
            figures=_figures.connectome_figures,
            files=_exchange.recording_files,
            read=_exchange.modules_read,
        ),
        Task(
            name="hubs",
            description="find the planted hubs from a recording: a centrality per recorded neuron (precision at "
            "the number of hubs, AUROC)",
            truth_type=ConnectomeTruth,
            prediction_type=NodeScores,
            score=_hub_metrics,
            headline="hub_precision",
            metrics=("hub_precision", "hub_auroc"),
            figure_data=_figures.connectome_figure_data,
            figures=_figures.connectome_figures,
            files=_exchange.recording_files,
            read=_exchange.hubs_read,
        ),
    )
}

__all__ = [
    "TASKS",
    "Task",
    "private_copy",
    "toy_artifact",
]
