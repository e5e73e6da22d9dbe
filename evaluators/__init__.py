"""Scores of methods' predictions against planted truth, and the benchmark runner around them.

``score_features(dictionary, truth)`` returns ``FeatureScores``. ``run(suite)`` runs a named,
versioned suite into a resumable SQLite ``Store``; ``leaderboard`` and ``write_report`` turn
stored results into tables and figures; ``make``/``score`` let methods written in any framework
be benchmarked through files.
"""

from evaluators.external import make, score
from evaluators.features import FeatureScores, chance_mmcs, score_features
from evaluators.report import (
    bootstrap_ci,
    leaderboard,
    plot_axis,
    plot_cosines,
    plot_leaderboard,
    summarize,
    write_report,
)
from evaluators.runner import DEFAULT_STORE, run
from evaluators.store import CellResult, Store
from evaluators.suites import METHODS, SUITES, MethodSpec, Suite, ToySpec
from evaluators.tasks import TASKS, Task

__all__ = [
    "DEFAULT_STORE",
    "METHODS",
    "SUITES",
    "TASKS",
    "CellResult",
    "FeatureScores",
    "MethodSpec",
    "Store",
    "Suite",
    "Task",
    "ToySpec",
    "bootstrap_ci",
    "chance_mmcs",
    "leaderboard",
    "make",
    "plot_axis",
    "plot_cosines",
    "plot_leaderboard",
    "run",
    "score",
    "score_features",
    "summarize",
    "write_report",
]
