"""Reference interpretability methods: the baselines every benchmark runs.

A method receives an artifact (never a truth object) and returns a prediction record from
``planted.groundtruth``. Features methods take activations (n_samples, d_model) and return a
``Dictionary``. Circuit methods (``planted.methods.circuits``) take a circuit artifact and a task
and return ``ComponentScores``; ``planted.methods.graphs`` holds the graph measures (centralities,
communities, functional connectivity) shared with the connectome toys. Connectivity methods
(``planted.methods.connectivity``) take a connectome ``Recording`` and return a
``(n_observed, n_observed)`` score matrix ``scores[pre, post]``. Similarity measures
(``planted.methods.similarity``: CKA, CCA, SVCCA, PWCCA, RSA, Procrustes, regression) compare
representations of the same inputs; ``similarities`` gives a ``Similarities`` over every pair. Damage methods
(``planted.methods.damage``) localise the damage in a damaged copy of a circuit network; dynamics methods
(``planted.methods.dynamics``) date formation in a training record. Names load on first use, so
``import planted.methods`` imports neither JAX nor scikit-learn.
"""

from planted._lazy import exports

_NAMES = {
    "circuits": ".circuits",
    "connectivity": ".connectivity",
    "damage": ".damage",
    "dynamics": ".dynamics",
    "correlation": ".connectivity",
    "granger": ".connectivity",
    "graphs": ".graphs",
    "ica": "._decomposition",
    "lagged_correlation": ".connectivity",
    "nmf": "._decomposition",
    "partial_correlation": ".connectivity",
    "pca": "._decomposition",
    "sae": "._sae",
    "similarity": ".similarity",
    "similarities": ".similarity",
    "SklearnMethod": "._sklearn",
    "sklearn_method": "._sklearn",
}
__getattr__, __dir__ = exports(__name__, globals(), _NAMES)

__all__ = sorted(_NAMES)
