"""A scikit-learn decomposition as a features method in one line."""

import dataclasses

import numpy as np
import pytest
from sklearn.decomposition import PCA, FastICA, MiniBatchDictionaryLearning

from planted import evaluators, methods, toys
from planted.groundtruth import Dictionary


@pytest.fixture(scope="module")
def toy():
    return toys.sparse_features(32, 16, 2000, mean_active=3, seed=0)


def test_an_estimator_becomes_a_method_equal_to_the_builtin(toy):
    fn = methods.sklearn_method(PCA(svd_solver="full"), components=1.0)
    mine = fn(toy.activations, seed=0)
    builtin = methods.pca(toy.activations, n_components=16)
    assert isinstance(mine, Dictionary) and mine.directions.shape == (16, 16)
    np.testing.assert_allclose(np.abs(mine.directions), np.abs(builtin.directions), atol=1e-4)
    assert mine.codes.shape == (2000, 16)


def test_the_seed_reaches_random_state_and_each_call_gets_a_fresh_clone(toy):
    estimator = FastICA(whiten="unit-variance", max_iter=50)
    fn = methods.sklearn_method(estimator, components=0.5)
    a, b, c = fn(toy.activations, seed=1), fn(toy.activations, seed=1), fn(toy.activations, seed=2)
    np.testing.assert_array_equal(a.directions, b.directions)
    assert not np.array_equal(a.directions, c.directions) and a.directions.shape == (8, 16)
    assert not hasattr(estimator, "components_")  # the estimator given was never fitted


def test_it_runs_in_a_suite_isolated_and_its_configuration_is_its_fingerprint():
    dl = methods.sklearn_method(MiniBatchDictionaryLearning(alpha=0.1, max_iter=1, fit_algorithm="cd"), components=2.0)
    quick = evaluators.SUITES["quick"]
    small = dataclasses.replace(quick, toys=tuple(t for t in quick.toys if t.name == "sparse-r2"))
    results = evaluators.run(small, methods={"dict-learning": dl}, seeds=[0], store=None)
    assert all(r.status == "ok" for r in results), [r.error for r in results]
    assert {r.metrics["n_latents"] for r in results if r.toy == "sparse-r2"} == {128}
    other = methods.sklearn_method(MiniBatchDictionaryLearning(alpha=0.2, max_iter=5, batch_size=256), components=2.0)
    assert dl.fingerprint != other.fingerprint == methods.sklearn_method(
        MiniBatchDictionaryLearning(alpha=0.2, max_iter=5, batch_size=256), components=2.0).fingerprint
    spec = evaluators.MethodSpec("dl", dl)
    assert spec.fingerprint.startswith(f"{dl.fingerprint} planted ") and not spec.builtin  # and planted's own code


@pytest.mark.parametrize("kwargs, match", [
    (dict(estimator="PCA"), "estimator must be a scikit-learn estimator"),
    (dict(estimator=PCA(), components=0), "components must be in"),
    (dict(estimator=PCA(), components=float("nan")), "components must be a finite number"),
])
def test_bad_arguments_name_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        methods.sklearn_method(**kwargs)
