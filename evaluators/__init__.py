"""Scores of methods' predictions against planted truth, and the benchmark runner around them.

``score_features(dictionary, truth)`` returns ``FeatureScores``; ``score_circuit(scores, toy,
task)`` returns ``CircuitScores`` and ``score_modules`` ``ModuleScores``;
``score_connectivity(scores, truth)`` returns ``ConnectivityScores`` and ``hub_precision_at_k``
scores hub detection; ``score_similarities(similarities, shared)`` scores a comparison of
representations against the fractions of planted features they share (``shared_fractions``). ``TASKS`` are the benchmark tasks and ``METHODS`` the built-in methods, each
naming its task; ``run(suite)`` runs a named, versioned suite (``SUITES``) into a resumable SQLite
``Store``; ``leaderboard`` and ``write_report`` turn stored results into tables and figures;
``make``/``score`` let methods written in any framework be benchmarked through files. Names load on
first use, so ``import planted.evaluators`` is cheap.
"""

from planted._lazy import exports

_NAMES = {
    "CellResult": ".store",
    "CircuitScores": ".circuits",
    "ConnectivityScores": ".connectome",
    "DEFAULT_STORE": ".store",
    "FeatureScores": ".features",
    "METHODS": "._methods",
    "MethodSpec": "._methods",
    "ModuleScores": ".circuits",
    "SUITES": ".suites",
    "Store": ".store",
    "Suite": ".suites",
    "TASKS": ".tasks",
    "Task": ".tasks",
    "ToySpec": ".suites",
    "bootstrap_ci": ".report",
    "catalog": ".report",
    "chance_mmcs": ".features",
    "hub_precision_at_k": ".connectome",
    "leaderboard": ".report",
    "paired": ".report",
    "variance": ".report",
    "make": ".external",
    "load_predictions": ".external",
    "load_saelens": ".external",
    "load_dictionary_learning": ".external",
    "score_report": ".external",
    "score_to_store": ".external",
    "torch_circuit": "._torch",
    "methods_for": "._methods",
    "plot_axis": "._figures",
    "plot_circuit": "._figures",
    "plot_cosines": "._figures",
    "plot_leaderboard": "._figures",
    "plot_formation": "._figures",
    "plot_lesion_census": "._figures",
    "plot_similarity": "._figures",
    "run": ".runner",
    "TamperingDetected": ".store",
    "Interrupted": ".runner",
    "score": ".external",
    "score_circuit": ".circuits",
    "score_similarities": ".comparison",
    "ComparisonScores": ".comparison",
    "shared_fractions": ".comparison",
    "score_connectivity": ".connectome",
    "score_features": ".features",
    "score_modules": ".circuits",
    "summarize": ".report",
    "write_report": ".report",
}
__getattr__, __dir__ = exports(__name__, globals(), _NAMES)

__all__ = sorted(_NAMES)
