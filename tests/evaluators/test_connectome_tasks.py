"""The connectivity, modules and hubs tasks: methods see only the recording, predictions are
checked, and the baselines recover planted structure on a toy where synapses are visible."""

import numpy as np
import pytest

from planted import evaluators
from planted import toys
from planted.evaluators.suites import METHODS, SUITES, Suite, ToySpec
from planted.groundtruth import EdgeScores, Recording


@pytest.fixture(scope="module")
def spec():
    return ToySpec("small", "connectome", dict(n_neurons=200, n_modules=2, density=0.04, mixing=0.05, hub_fraction=0.05,
                                              hub_boost=4.0, exc_fraction=1.0, weight=24.0, depression=True,
                                              background_weight=2.8, dim=2, duration=200.0))


def _run(spec, task, names):
    suite = Suite(name=f"test-{task}", task=task, toys=(spec,), methods=tuple(METHODS[n] for n in names), seeds=(0,))
    return {r.method: r for r in evaluators.run(suite, store=None, progress=False)}


def test_connectivity_task_scores_the_baselines(spec):
    results = _run(spec, "connectivity", ["correlation-raw", "partial-correlation", "granger"])
    assert all(r.status == "ok" for r in results.values()), [r.error for r in results.values()]
    assert results["partial-correlation"].metrics["auroc"] > 0.7
    assert results["partial-correlation"].metrics["auroc"] > results["correlation-raw"].metrics["auroc"]
    assert all(np.isfinite(v) for r in results.values() for v in r.metrics.values() if v is not None)


def test_modules_and_hubs_tasks(spec):
    modules = _run(spec, "modules", ["louvain-granger", "leiden-granger"])
    assert all(r.status == "ok" for r in modules.values()), [r.error for r in modules.values()]
    assert all(r.metrics["nmi"] > 0.1 for r in modules.values()), {k: r.metrics for k, r in modules.items()}
    hubs = _run(spec, "hubs", ["strength-partial"])["strength-partial"]
    assert hubs.status == "ok", hubs.error
    assert hubs.metrics["hub_auroc"] > 0.75


def test_methods_see_a_copy_of_the_recording_only_and_bad_predictions_fail(spec):
    seen = {}

    def spy(recording, *, seed):
        seen["type"] = type(recording)
        recording.traces[:] = 0  # read-only: fails, and never reaches the toy
        return EdgeScores(np.zeros((recording.n_observed, recording.n_observed)))

    def zeros(recording, *, seed):
        return EdgeScores(np.zeros((recording.n_observed, recording.n_observed)))

    def wrong_shape(recording, *, seed):
        return EdgeScores(np.zeros((3, 3)))

    def bare(recording, *, seed):
        return np.zeros((recording.n_observed, recording.n_observed))

    suite = Suite(name="spy", task="connectivity", toys=(spec,), methods=(), seeds=(0,))
    methods = {"spy": spy, "zeros": zeros, "wrong": wrong_shape, "bare": bare}
    results = {r.method: r for r in evaluators.run(suite, methods=methods, store=None, progress=False)}
    assert seen["type"] is Recording
    assert results["spy"].status == "failed" and "read-only" in results["spy"].error
    assert results["zeros"].status == "ok" and results["zeros"].metrics["auroc"] == 0.5
    assert results["wrong"].status == "failed" and "shape" in results["wrong"].error
    assert results["bare"].status == "failed" and "planted.groundtruth.EdgeScores" in results["bare"].error
    assert toys.from_config(spec.make(0)).artifact.traces.std() > 0


def test_connectome_suites_are_registered():
    assert SUITES["connectome"].task == "connectivity"
    assert SUITES["connectome-modules"].task == "modules" and SUITES["connectome-hubs"].task == "hubs"
    config = SUITES["connectome"].toys[0].make(0)
    assert config.n_neurons == 1000 and config.duration == 300.0


def test_report_draws_adjacency_roc_and_activity(spec, tmp_path):
    from planted.evaluators.connectome import roc_curve, score_connectivity

    suite = Suite(name="fig", task="connectivity", toys=(spec,),
                  methods=tuple(METHODS[n] for n in ("correlation-raw", "granger")), seeds=(0,))
    store = evaluators.Store(tmp_path / "r.sqlite")
    results = evaluators.run(suite, store=store, progress=False)
    written = {p.name for p in evaluators.write_report(results, tmp_path / "report", store=store)}
    assert {"connectivity-fig-small.png", "activity-fig-small.png"} <= written
    toy = toys.from_config(spec.make(0))
    scores = np.random.default_rng(0).random((toy.artifact.n_observed,) * 2)
    fpr, tpr = roc_curve(scores, toy.truth)
    assert np.trapezoid(tpr, fpr) == pytest.approx(score_connectivity(scores, toy.truth).auroc, abs=1e-9)


def test_features_methods_recover_the_planted_tuning_from_binned_spikes():
    from planted import methods
    from planted.evaluators.connectome import score_tuning, tuning_truth
    from planted.evaluators.features import chance_mmcs

    toy = toys.preset("v1_flashes", seed=1, duration=60.0)
    recording = toy.artifact
    truth = tuning_truth(toy.truth)
    assert truth.n_features == 6 and truth.codes.shape == (recording.traces.shape[0], 6)
    nmf = score_tuning(methods.nmf(recording.traces, n_components=12, seed=0), toy.truth, recording)
    assert nmf.mmcs > 0.9 > 2 * chance_mmcs(12, recording.n_observed)
    assert nmf.code_correlation > 0.9
    with pytest.raises(ValueError, match="no stimulus features"):
        tuning_truth(toys.connectome(50, seed=0, duration=0.5).truth)
