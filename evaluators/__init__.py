"""Scores of methods' predictions against planted truth, and the benchmark runner around them.

``score_features(dictionary, truth)`` returns ``FeatureScores``; ``score_circuit(scores, toy,
task)`` returns ``CircuitScores`` and ``score_modules`` ``ModuleScores``;
``score_connectivity(scores, truth)`` returns ``ConnectivityScores`` and ``hub_precision_at_k``
scores hub detection. ``run(suite)`` runs a named, versioned suite into a resumable SQLite
``Store``; ``leaderboard`` and ``write_report`` turn stored results into tables and figures;
``make``/``score`` let methods written in any framework be benchmarked through files.
"""

from planted.evaluators.circuits import (
    CircuitScores,
    ModuleScores,
    plot_circuit,
    score_circuit,
    score_modules,
)
from planted.evaluators.connectome import (
    ConnectivityScores,
    hub_precision_at_k,
    score_connectivity,
)
from planted.evaluators.external import make, score
from planted.evaluators.features import FeatureScores, chance_mmcs, score_features
from planted.evaluators.report import (
    bootstrap_ci,
    catalog,
    leaderboard,
    plot_axis,
    plot_cosines,
    plot_leaderboard,
    summarize,
    write_report,
)
from planted.evaluators.runner import DEFAULT_STORE, run
from planted.evaluators.store import CellResult, Store
from planted.evaluators.suites import METHODS, SUITES, MethodSpec, Suite, ToySpec
from planted.evaluators.tasks import TASKS, Task

__all__ = [
    "DEFAULT_STORE",
    "METHODS",
    "SUITES",
    "TASKS",
    "CellResult",
    "CircuitScores",
    "ConnectivityScores",
    "FeatureScores",
    "MethodSpec",
    "ModuleScores",
    "Store",
    "Suite",
    "Task",
    "ToySpec",
    "bootstrap_ci",
    "catalog",
    "chance_mmcs",
    "hub_precision_at_k",
    "leaderboard",
    "make",
    "plot_axis",
    "plot_circuit",
    "plot_cosines",
    "plot_leaderboard",
    "run",
    "score",
    "score_circuit",
    "score_connectivity",
    "score_features",
    "score_modules",
    "summarize",
    "write_report",
]
