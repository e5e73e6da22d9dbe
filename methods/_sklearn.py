"""Any scikit-learn decomposition as a features method, in one line.

``sklearn_method(FastICA(whiten="unit-variance"), components=1.0)`` is a method
``fn(activations, *, seed) -> Dictionary`` that the runner, suites and tests take like a built-in
one: a fresh clone of the estimator for every call, ``random_state`` set to the seed, the number
of components sized from the activations (never from the truth), ``components_`` as the
dictionary's directions and ``transform`` (when the estimator has one) as its codes.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import numpy as np
from sklearn.base import clone

from planted.groundtruth import Dictionary, Problems, as_matrix


@dataclasses.dataclass(frozen=True)
class SklearnMethod:
    """A scikit-learn estimator with ``fit`` and ``components_`` (n_components, d_model) as a features
    method; see ``sklearn_method``."""

    estimator: Any
    components: float | None = None
    name: str = ""

    def __call__(self, activations, *, seed: int) -> Dictionary:
        x = as_matrix("activations", activations)
        model = clone(self.estimator)
        params = model.get_params()
        changes: dict[str, Any] = {}
        if "random_state" in params:
            changes["random_state"] = int(seed)
        if self.components is not None:
            changes["n_components"] = max(1, int(round(self.components * x.shape[1])))
        model.set_params(**changes)
        model.fit(x)
        directions = getattr(model, "components_", None)
        if directions is None or np.ndim(directions) != 2 or np.shape(directions)[1] != x.shape[1]:
            raise ValueError(f"{type(model).__name__} has no components_ of shape (n_components, {x.shape[1]}) after "
                             "fit; sklearn_method needs a decomposition (PCA, FastICA, NMF, DictionaryLearning ...)")
        codes = np.asarray(model.transform(x), np.float32) if hasattr(model, "transform") else None
        return Dictionary(directions=np.asarray(directions, np.float32), codes=codes,
                          method=self.name or type(model).__name__)

    @property
    def fingerprint(self) -> str:
        """What the method computes: the estimator's class and parameters, and the sizing."""
        text = f"{type(self.estimator).__module__}.{type(self.estimator).__qualname__}|{self.estimator.get_params(deep=True)!r}|{self.components!r}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def sklearn_method(estimator: Any, *, components: float | None = None, name: str = "") -> SklearnMethod:
    """Wrap a scikit-learn decomposition as a features method ``fn(activations, *, seed)``.

    Parameters
    ----------
    estimator : scikit-learn estimator
        Unfitted, with ``fit`` and, after it, ``components_`` (n_components, d_model): PCA,
        FastICA, NMF (non-negative data), DictionaryLearning, MiniBatchDictionaryLearning,
        SparsePCA ... It is cloned for every call, so calls never share state.
    components : float, optional
        Set ``n_components`` to ``round(components * d_model)`` (2.0: an overcomplete dictionary
        of twice the dimension); default: the estimator's own ``n_components``.
    name : str
        The dictionary's ``method`` (default: the estimator's class name).

    Returns
    -------
    SklearnMethod
        Callable as ``fn(activations, *, seed) -> Dictionary``: directions ``components_``,
        codes ``transform(activations)`` where the estimator has ``transform``. ``random_state``
        is set to ``seed`` when the estimator takes one.

    Examples
    --------
    >>> from sklearn.decomposition import MiniBatchDictionaryLearning
    >>> dl = sklearn_method(MiniBatchDictionaryLearning(alpha=0.1, max_iter=20), components=2.0)
    >>> evaluators.run("quick", methods={"dict-learning": dl}, store=None)  # doctest: +SKIP
    """
    p = Problems()
    if not (hasattr(estimator, "fit") and hasattr(estimator, "get_params")):
        p.add(f"estimator must be a scikit-learn estimator (with fit and get_params), got {type(estimator).__name__}")
    if components is not None:
        p.number("components", components, low=0, high=64, low_open=True)
    p.raise_if_any("sklearn_method")
    if "n_components" not in estimator.get_params() and components is not None:
        raise ValueError(f"sklearn_method: components is set but {type(estimator).__name__} has no n_components")
    return SklearnMethod(estimator=estimator, components=None if components is None else float(components), name=name)


__all__ = ["SklearnMethod", "sklearn_method"]
