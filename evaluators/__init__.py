"""Scores of methods' predictions against planted truth, benchmark suites and the CLI.

``score_features(dictionary, truth)`` returns ``FeatureScores``; ``run_suite`` runs a named
suite; ``leaderboard`` tabulates its results.
"""

from evaluators.bench import FEATURE_METHODS, SUITES, CellResult, Suite, leaderboard, run_suite
from evaluators.features import FeatureScores, chance_mmcs, score_features

__all__ = [
    "FEATURE_METHODS",
    "SUITES",
    "CellResult",
    "FeatureScores",
    "Suite",
    "chance_mmcs",
    "leaderboard",
    "run_suite",
    "score_features",
]
