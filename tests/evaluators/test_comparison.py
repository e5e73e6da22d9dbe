"""The comparison task: problems of several toys through the runner and the store, its scores
against independent implementations, and the oracle that scores perfectly on its truth."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from planted import evaluators, toys
from planted.evaluators import Store, run
from planted.evaluators.comparison import decodability, functional_differences, score_similarities, shared_fractions
from planted.evaluators.report import write_report
from planted.evaluators.store import problem_id
from planted.evaluators.suites import SUITES, ToySpec
from planted.evaluators.tasks import TASKS
from planted.groundtruth import Similarities

SUITE = SUITES["comparison"]


def _problem(name: str, seed: int = 0):
    spec = next(t for t in SUITE.toys if t.name == name)
    return tuple(toys.from_config(c) for c in spec.configs(seed))


def test_scores_against_scipy_and_sklearn():
    from scipy.stats import spearmanr
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(0)
    shared = np.array([[1, 1, .5, 0], [1, 1, .5, .25], [.5, .5, 1, 1], [0, .25, 1, 1]], float)
    values = rng.random((4, 4))
    scores = score_similarities(Similarities(values), shared)
    i, j = np.triu_indices(4, 1)
    sim, truth = ((values + values.T) / 2)[i, j], shared[i, j]
    assert scores.rank_correlation == pytest.approx(spearmanr(sim, truth).statistic, abs=1e-12)
    assert scores.within_auprc == pytest.approx(average_precision_score(truth == 1, sim), abs=1e-12)
    assert scores.violation_rate == pytest.approx(1 - roc_auc_score(truth == 1, sim), abs=1e-12)
    assert scores.inverted == float(sim[truth == 1].min() < sim[truth <= .5].max())
    assert scores.n_pairs == 6


@pytest.mark.parametrize("name", [t.name for t in SUITE.toys])
def test_the_truth_scores_perfectly_and_its_reverse_worst(name):
    """The oracles (the planted shared fractions, or minus the functional differences, as
    similarities) rank every pair right on their truth; their negations invert everything."""
    problem = _problem(name)
    shared, functional = shared_fractions(problem), functional_differences(problem)
    perfect = TASKS["comparison"].score(Similarities(shared), problem)
    worst = TASKS["comparison"].score(Similarities(-shared), problem)
    if np.ptp(shared) > 0:
        assert {k: perfect[k] for k in ("rank_correlation", "within_auprc", "violation_rate", "inverted")} == {
            "rank_correlation": 1.0, "within_auprc": 1.0, "violation_rate": 0.0, "inverted": 0.0}
        assert worst["rank_correlation"] == -1.0 and worst["violation_rate"] == 1.0 and worst["inverted"] == 1.0
    else:
        assert perfect["rank_correlation"] is None and perfect["within_auprc"] is None
    best = TASKS["comparison"].score(Similarities(-functional), problem)
    reverse = TASKS["comparison"].score(Similarities(functional), problem)
    assert best["sensitivity"] == pytest.approx(1.0) and reverse["sensitivity"] == pytest.approx(-1.0)
    assert best["specificity"] == 1.0 and reverse["specificity"] == 0.0


def test_decodability_is_the_r2_of_a_linear_probe():
    from sklearn.linear_model import LinearRegression

    problem = _problem("deletion")
    r2, labels = decodability(problem)
    for v in (0, 5, 8):
        x = np.asarray(problem[v].artifact, np.float64)
        truth = problem[v].truth
        for f in (0, 17, 40):
            code = truth.codes[:, f].toarray().ravel()
            expected = LinearRegression().fit(x, code).score(x, code)
            assert r2[v, labels.index(truth.labels[f])] == pytest.approx(expected, abs=1e-8)
    differences = functional_differences(problem)
    assert differences[0, 1] < 1e-9 and differences[0, 2] < 1e-9  # another frame: the same probes
    assert np.all(np.diff(differences[0, 3:]) > 0)  # each deletion of more top components loses more


def test_deleting_top_components_is_seen_by_cka_but_not_by_cca():
    """Ding et al. (2021): CKA is sensitive to the deletion of top principal components, CCA
    (which whitens) far less."""
    from planted.methods import similarity

    problem = _problem("deletion")
    scores = {m: TASKS["comparison"].score(similarity.similarities(tuple(t.artifact for t in problem), m), problem)
              for m in ("linear_cka", "cca")}
    assert scores["linear_cka"]["sensitivity"] > 0.9 and scores["linear_cka"]["specificity"] == 1.0
    assert scores["cca"]["sensitivity"] < scores["linear_cka"]["sensitivity"]


def test_the_shared_fractions_are_the_windows_overlap():
    problem = _problem("ladder")
    offsets = [t.config.offset for t in problem]
    expected = np.array([[max(0, 64 - abs(a - b)) / 64 for b in offsets] for a in offsets])
    np.testing.assert_allclose(shared_fractions(problem), expected)
    assert len({t.id for t in problem}) == len(problem)  # every member a toy of its own (its frame)


def test_a_comparison_task_refuses_one_toy_and_a_toy_task_a_tuple():
    problem = _problem("ladder")
    with pytest.raises(ValueError, match="needs a problem of several toys"):
        TASKS["comparison"].check_toy(problem[0])
    with pytest.raises(ValueError, match="needs one toy, got a tuple of 7 toys"):
        TASKS["features"].check_toy(problem)
    assert TASKS["comparison"].applies_to(problem) and not TASKS["comparison"].applies_to(problem[0])
    assert TASKS["features"].applies_to(problem[0]) and not TASKS["features"].applies_to(problem)
    with pytest.raises(ValueError, match="members must name at least 2 toys"):
        ToySpec("one", "feature_view", {}, members=({"view": 0},))


def test_the_suite_through_the_store_keys_each_cell_by_its_problem(tmp_path):
    store = tmp_path / "s.sqlite"
    results = run("comparison", methods=["linear-cka", "cca"], seeds=[0], store=store, progress=False)
    assert len(results) == 8 and all(r.status == "ok" for r in results), [r.error for r in results]
    for r in results:
        spec = next(t for t in SUITE.toys if t.name == r.toy)
        ids = tuple(c.id for c in spec.configs(0))
        assert r.toy_ids == ids and r.members == ids
        assert r.toy_id == problem_id(ids) == hashlib.sha256("+".join(ids).encode()).hexdigest()
        assert [json.dumps(c, sort_keys=True, separators=(",", ":")) for c in json.loads(r.config)] == \
               [c.to_json() for c in spec.configs(0)]
    by = {(r.toy, r.method): r.metrics for r in results}
    assert by[("ladder", "cca")]["rank_correlation"] > 0.95
    assert by[("superposition", "linear-cka")]["inverted"] == 1.0
    assert by[("rescaled", "cca")]["rank_correlation"] > by[("rescaled", "linear-cka")]["rank_correlation"]
    with Store(store) as s:
        stored = s.results()
        assert {r.key for r in stored} == {r.key for r in results}
        assert all(r.toy_ids == next(x for x in results if x.key == r.key).toy_ids for r in stored)
        assert s.toy_arrays(results[0].toy_id, task="comparison")["shared"].shape == (7, 7)
    again = run("comparison", methods=["linear-cka", "cca"], seeds=[0], store=store, progress=False)
    assert [r.seconds for r in again] == [r.seconds for r in results]  # every cell reused
    with Store(store) as s:
        paths = write_report(s.results(), tmp_path / "report", store=s)
    assert any(p.name == "comparison-comparison-superposition.png" for p in paths)


def test_a_one_toy_cell_keeps_its_key_and_an_old_store_gains_its_problems(tmp_path):
    """A one-toy cell's problem is its toy (the key it always had); a store from before problems of
    several toys is migrated in place: each row's problem lists its one toy, and a run reuses it."""
    store = tmp_path / "old.sqlite"
    fresh = run("quick", methods=["pca"], seeds=[0], store=store, progress=False)
    assert all(r.toy_id == toys.config_from_json(json.loads(r.config)).id for r in fresh)
    with sqlite3.connect(store) as db:  # back to the layout before problems of several toys
        db.execute("ALTER TABLE cells DROP COLUMN toy_ids")
        assert "toy_ids" not in [row[1] for row in db.execute("PRAGMA table_info(cells)")]
    with Store(store) as s:
        rows = s.results()
        assert len(rows) == 3 and all(r.toy_ids == () and r.members == (r.toy_id,) for r in rows)
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT toy_id, toy_ids FROM cells").fetchall()
        assert len(rows) == 3 and all(json.loads(listed) == [toy_id] for toy_id, listed in rows)
    again = run("quick", methods=["pca"], seeds=[0], store=store, progress=False)
    assert [r.seconds for r in again] == [r.seconds for r in fresh]


def _count(path):
    with sqlite3.connect(path) as db:
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'cells'").fetchone() is None:
            return 0, 0
        return db.execute("SELECT COUNT(*), COUNT(DISTINCT toy_id || method || seed) FROM cells").fetchone()


@pytest.mark.slow
def test_problems_of_several_toys_resume_after_kill_9(tmp_path, monkeypatch):
    (tmp_path / "slow_measures.py").write_text(textwrap.dedent('''
        import time
        from planted.methods import similarity

        def slow_cka(views, *, seed):
            time.sleep(0.5)
            return similarity.similarities(views, "linear_cka")
    '''))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    store = tmp_path / "s.sqlite"
    cmd = [sys.executable, "-m", "planted", "bench", "--suite", "comparison", "--method", "slow_measures:slow_cka",
           "--seeds", "3", "--store", str(store)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and not (store.exists() and _count(store)[0] >= 2):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = _count(store)[0]
    assert 2 <= partial < 12, "the run should have been killed mid-suite"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert _count(store) == (12, 12)
    with Store(store) as s:
        assert all(len(r.toy_ids) in (6, 7, 9) and r.status == "ok" for r in s.results())


def test_every_comparison_measure_is_in_the_suite():
    served = {n for n, m in evaluators.METHODS.items() if m.task == "comparison"}
    assert {m.name for m in SUITE.methods} == served and len(served) == 10


# --- damaged twins ---------------------------------------------------------------------------------


def _twins(name: str = "noise", seed: int = 0):
    spec = next(t for t in SUITES["damage"].toys if t.name == name)
    return tuple(toys.from_config(c) for c in spec.configs(seed))


@pytest.mark.parametrize("name", [t.name for t in SUITES["damage"].toys])
def test_the_damage_truth_scores_perfectly_and_its_reverse_worst(name):
    from planted.groundtruth import DamagePrediction

    problem = _twins(name)
    truth = problem[1].truth
    perfect = TASKS["damage"].score(DamagePrediction(truth.damaged.astype(float), truth.deficits), problem)
    assert perfect["damage_auroc"] == perfect["damage_auprc"] == perfect["damage_precision"] == 1.0
    assert perfect["deficit_error"] == 0.0
    assert perfect["deficit_spearman"] == (None if np.ptp(truth.deficits) == 0 else 1.0)
    worst = TASKS["damage"].score(DamagePrediction(-truth.damaged.astype(float)), problem)
    assert worst["damage_auroc"] == 0.0 and worst["deficit_spearman"] is None


def test_damage_scores_against_sklearn_and_the_pair_is_checked():
    from sklearn.metrics import average_precision_score, roc_auc_score

    from planted.groundtruth import damage_candidates
    from planted.groundtruth import DamagePrediction

    normal, damaged = _twins("rewire")
    scores = np.random.default_rng(0).random(normal.graph.n_nodes)
    got = TASKS["damage"].score(DamagePrediction(scores), (normal, damaged))
    keep = damage_candidates(normal.model)
    assert keep.sum() == 96 and not damaged.truth.damaged[~keep].any()
    assert got["damage_auroc"] == pytest.approx(roc_auc_score(damaged.truth.damaged[keep], scores[keep]), abs=1e-12)
    assert got["damage_auprc"] == pytest.approx(average_precision_score(damaged.truth.damaged[keep], scores[keep]), abs=1e-12)
    other = _twins("rewire", seed=1)[0]
    with pytest.raises(ValueError, match="must be a damaged copy of the first"):
        TASKS["damage"].score(DamagePrediction(scores), (other, damaged))


@pytest.mark.parametrize("name", ["hubs-ablate", "any-noise"])
def test_the_connectome_damage_truth_scores_perfectly_over_the_recorded_neurons(name):
    from planted.groundtruth import DamagePrediction

    spec = next(t for t in SUITES["connectome-damage"].toys if t.name == name)
    configs = [dataclasses.replace(c, duration=5.0) if c.kind == "connectome" else c for c in spec.configs(0)]
    configs[1] = dataclasses.replace(spec.configs(0)[1], base=configs[0].to_json())
    problem = tuple(toys.from_config(c) for c in configs)
    truth, observed = problem[1].truth, problem[0].truth.observed
    perfect = TASKS["connectome_damage"].score(DamagePrediction(truth.damaged[observed].astype(float)), problem)
    assert perfect == {"damage_auroc": 1.0, "damage_auprc": 1.0, "damage_precision": 1.0}
    worst = TASKS["connectome_damage"].score(DamagePrediction(-truth.damaged[observed].astype(float)), problem)
    assert worst["damage_auroc"] == 0.0
    with pytest.raises(ValueError, match="one score per recorded neuron"):
        TASKS["connectome_damage"].score(DamagePrediction(np.zeros(observed.size + 1)), problem)
    # Ranking the hubs first, blind to the damage, earns nothing: a hub damage is localised among hubs.
    if name.startswith("hubs"):
        hubs_first = problem[0].truth.hubs[observed].astype(float)
        assert TASKS["connectome_damage"].score(DamagePrediction(hubs_first), problem)["damage_auroc"] == 0.5


@pytest.mark.slow
def test_the_damage_suite_runs_through_the_store(tmp_path):
    results = run("damage", seeds=[0], store=tmp_path / "s.sqlite", progress=False)
    assert len(results) == 24 and all(r.status == "ok" for r in results), [r.error for r in results if r.error]
    by = {(r.toy, r.method): r.metrics for r in results}
    assert all(by[(d, "weight-difference")]["damage_auroc"] == 1.0
               for d in ("ablate", "scale", "noise", "rewire", "prune", "tf-ablate", "tf-noise", "tf-prune"))
    # ablation leaves a neuron's own activity as it was: activity alone cannot find it
    assert by[("ablate", "activation-difference")]["damage_auroc"] < 0.7 < by[("noise", "activation-difference")]["damage_auroc"]
    assert all(len(r.toy_ids) == 2 for r in results)


# --- layer twins -----------------------------------------------------------------------------------


@functools.cache
def _layer_twins(name: str = "compiled", seed: int = 0):
    spec = next(t for t in SUITES["layers"].toys if t.name == name)
    return tuple(toys.from_config(c) for c in spec.configs(seed))


def test_layer_twins_share_formulas_and_blocks_in_other_frames():
    a, b = _layer_twins()
    assert a.truth.formulas == b.truth.formulas and np.array_equal(a.truth.nodes, b.truth.nodes)
    assert a.config.weights_seed == 0 and b.config.weights_seed == 10_000
    assert not np.allclose(a.model.params["embed"], b.model.params["embed"])


def test_the_layer_truth_scores_perfectly_and_positions_tell_nothing():
    from planted.evaluators.comparison import layer_orders, layer_representations

    problem = _layer_twins()
    order_a, order_b = layer_orders(problem)
    assert sorted(order_a) == sorted(order_b) == [0, 1, 2, 3]
    assert [tuple(o) for o in layer_orders(problem)] == [tuple(order_a), tuple(order_b)]  # deterministic
    shown = layer_representations(problem)
    x = np.concatenate([t.clean for t in problem[0].tasks])
    np.testing.assert_array_equal(shown[0], problem[0].model.residuals(x)[1 + order_a[0]])
    n = order_a.size
    oracle = np.zeros((2 * n, 2 * n))
    oracle[:n, n:] = order_a[:, None] == order_b[None, :]
    perfect = TASKS["layers"].score(Similarities(oracle + oracle.T), problem)
    assert perfect == {"layer_accuracy": 1.0, "layer_auroc": 1.0}
    blind = TASKS["layers"].score(Similarities(np.ones((2 * n, 2 * n))), problem)
    assert blind == {"layer_accuracy": 1 / n, "layer_auroc": 0.5}  # a tie of n layers earns 1/n each
    # matching by position (shown i of one to shown i of the other) is no better than chance over problems
    by_position = np.zeros((2 * n, 2 * n))
    by_position[np.arange(n), n + np.arange(n)] = 1
    assert TASKS["layers"].score(Similarities(by_position + by_position.T), problem)["layer_accuracy"] == \
        pytest.approx(float(np.mean(order_a == order_b)))


def test_cka_matches_compiled_twins_and_cca_cannot():
    """The residual stream after block h holds every variable computed so far, so each layer's
    span contains the earlier ones': mean CCA is 1 between any two layers and cannot tell them apart."""
    problem = _layer_twins()
    views = TASKS["layers"].artifact(problem)
    from planted.methods import similarity

    assert TASKS["layers"].score(similarity.similarities(views, "linear_cka"), problem)["layer_accuracy"] == 1.0
    assert TASKS["layers"].score(similarity.similarities(views, "cca"), problem)["layer_accuracy"] == 0.25


def test_a_layer_problem_refuses_toys_of_other_formulas():
    a = _layer_twins()[0]
    other = toys.planted_mlp(seed=5, n_blocks=4, depth=3)
    with pytest.raises(ValueError, match="must compute the same formulas"):
        TASKS["layers"].score(Similarities(np.eye(8)), (a, other))


def test_transformer_twins_are_one_program_in_two_frames():
    """Compiled transformer twins: the same program and circuit in residual frames of their own;
    each layer's residual stream is the sum of what the components up to it write; the oracle
    scores 1; an attention layer is told apart from the others by CKA, but a sublayer that
    writes nothing leaves the stream as it was (a tie of two equal layers)."""
    a, b = _layer_twins("tf-reverse")
    assert a.truth.formulas == b.truth.formulas and np.array_equal(a.truth.nodes, b.truth.nodes)
    assert not np.allclose(a.model.params["embed_tokens"], b.model.params["embed_tokens"])
    x = np.concatenate([t.clean for t in a.tasks])
    writes = a.model.run(x)["activations"]
    residuals = a.model.residuals(x)
    n_layers = int(a.graph.layers.max())
    assert residuals.shape == (n_layers, x.size, writes.shape[-1])
    after_first = writes[:, a.graph.layers <= 1].sum(axis=1).reshape(-1, writes.shape[-1])
    np.testing.assert_allclose(residuals[1], after_first, atol=1e-5)
    order_a, order_b = __import__("planted.evaluators.comparison", fromlist=["layer_orders"]).layer_orders((a, b))
    n = order_a.size
    oracle = np.zeros((2 * n, 2 * n))
    oracle[:n, n:] = order_a[:, None] == order_b[None, :]
    assert TASKS["layers"].score(Similarities(oracle + oracle.T), (a, b)) == {"layer_accuracy": 1.0, "layer_auroc": 1.0}
    from planted.methods import similarity

    cka = TASKS["layers"].score(similarity.similarities(TASKS["layers"].artifact((a, b)), "linear_cka"), (a, b))
    assert 0.5 <= cka["layer_accuracy"] < 1.0 and cka["layer_auroc"] > 0.9
    with pytest.raises(ValueError, match="must compute the same formulas"):
        TASKS["layers"].score(Similarities(np.eye(2 * n)), (a, _layer_twins()[0]))
