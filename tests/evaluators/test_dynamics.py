"""Formation times: the truth read off the snapshots by an independent rule, the loss curve
checked against the final loss, the oracle scoring perfectly, and the dynamics suite."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from planted import toys
from planted.evaluators import run
from planted.evaluators.dynamics import score_formation, training_record
from planted.evaluators.tasks import TASKS
from planted.groundtruth import FORMATION_TOLERANCE, REPRESENTED_NORM, Formation, formation_steps


@functools.cache
def _toy(sparsity: float = 0.9, seed: int = 0):
    return toys.superposition(20, 5, n_samples=2000, sparsity=sparsity, n_steps=3000, snapshot_every=30, seed=seed)


def test_formation_steps_follow_the_snapshots():
    """Recomputed feature by feature, walking back from the end while the length stays settled."""
    dynamics = _toy().truth.dynamics
    norms = np.linalg.norm(dynamics.weights.astype(np.float64), axis=1)
    expected = []
    for i in range(norms.shape[1]):
        final = norms[-1, i]
        if final <= REPRESENTED_NORM:
            expected.append(-1)
            continue
        k = norms.shape[0] - 1
        while k > 0 and abs(norms[k - 1, i] - final) <= FORMATION_TOLERANCE * final:
            k -= 1
        expected.append(int(dynamics.steps[k]))
    assert formation_steps(dynamics).tolist() == expected
    assert len(set(expected) - {-1}) >= 5  # the features form at many different steps: a staircase


def test_the_loss_curve_ends_at_the_reported_loss():
    toy = _toy()
    losses = toy.truth.dynamics.losses
    assert losses.shape == toy.truth.dynamics.steps.shape
    assert losses[-1] == pytest.approx(float(toy.restart_losses.min()), rel=1e-5)
    assert losses[-1] < 0.6 * losses[0]


def test_the_truth_scores_perfectly():
    for sparsity in (0.7, 0.97):
        toy = _toy(sparsity)
        truth = formation_steps(toy.truth.dynamics)
        scores = TASKS["dynamics"].score(Formation(steps=truth), toy)
        assert scores == {"log_step_error": 0.0, "order_tau": 1.0, "formed_accuracy": 1.0, "event_precision": 1.0,
                          "event_recall": 1.0, "event_f1": 1.0, "lead_time": 0.0}


def _near(a, b) -> bool:
    """The event window, restated: two snapshot intervals (60 steps) or 0.05 log10 steps."""
    return abs(a - b) <= 60 or abs(np.log10(1 + a) - np.log10(1 + b)) <= 0.05


def test_event_scores_by_hand():
    dynamics = _toy().truth.dynamics
    truth = formation_steps(dynamics)
    events = np.unique(truth[truth > 0])
    far = int(events.max() * 1.2 + 61)
    got = score_formation(Formation(events=np.array([events[0], far])), dynamics)
    assert got["event_precision"] == 0.5
    assert got["event_recall"] == pytest.approx(np.mean([_near(e, events[0]) for e in events]))
    assert got["log_step_error"] is None and got["order_tau"] is None
    late = score_formation(Formation(events=np.array([2000])), dynamics)  # 1.12x a step of 1800 is near it
    assert late["event_precision"] == float(any(_near(2000, e) for e in events))
    with pytest.raises(ValueError, match="must date every component"):
        score_formation(Formation(steps=np.zeros(3, int)), dynamics)
    with pytest.raises(ValueError, match="integer steps"):
        Formation(steps=np.array([0.5]))


def test_lead_time_by_hand():
    """Events ahead of every true formation lead: each true event counts its log-step gap to
    the nearest event (another formation's, when two are close); an event outside every window
    leads nothing."""
    dynamics = _toy().truth.dynamics
    truth = formation_steps(dynamics)
    events = np.unique(truth[truth > 0])
    for shift in (-30, 60):
        predicted = events + shift
        gaps = []
        for e in events:
            nearest = min(predicted, key=lambda p: (abs(np.log10(1 + e) - np.log10(1 + p)), p))
            if _near(e, nearest):
                gaps.append(np.log10(1 + e) - np.log10(1 + nearest))
        got = score_formation(Formation(events=predicted), dynamics)["lead_time"]
        assert got == pytest.approx(np.mean(gaps))
    first = score_formation(Formation(events=np.array([events[0] - 30])), dynamics)["lead_time"]
    assert first == pytest.approx(np.log10(1 + events[0]) - np.log10(events[0] - 29))
    assert score_formation(Formation(events=np.array([events.max() * 2 + 1000])), dynamics)["lead_time"] is None


def test_lead_time_takes_the_nearest_event_that_matches():
    """A farther event never hides one within the window (snapshots every 3 steps, a formation
    at step 10: an event at 5 is 5 steps ahead, within the two snapshots (6 steps) of the window)."""
    from planted.evaluators.dynamics import score_dates

    snapshots = np.arange(0, 31, 3)
    alone = score_dates(Formation(events=np.array([5])), np.array([10]), snapshots)
    both = score_dates(Formation(events=np.array([5, 17])), np.array([10]), snapshots)
    assert alone["lead_time"] == both["lead_time"] == pytest.approx(np.log10(11) - np.log10(6))
    assert both["event_recall"] == 1.0 and both["event_precision"] == 0.5


def test_gini_against_its_mean_difference_form():
    from planted.methods.dynamics import gini

    rng = np.random.default_rng(0)
    x = rng.random((5, 17))
    expected = np.abs(x[:, :, None] - x[:, None, :]).sum(axis=(1, 2)) / (2 * 17**2 * x.mean(axis=1))
    np.testing.assert_allclose(gini(x), expected, atol=1e-12)
    assert gini(np.ones(4)) == pytest.approx(0.0) and gini(np.array([0, 0, 0, 1.0])) == pytest.approx(0.75)
    assert gini(np.zeros(3)) == 0.0


def test_the_gini_progress_measure_finds_the_staircase():
    """As the features form one by one, the inequality of their lengths moves: its change points
    fall near the formation steps (event F1 above 0.6 at every sparsity of the suite)."""
    from planted.methods.dynamics import gini_change_points

    for sparsity in (0.7, 0.97):
        toy = _toy(sparsity)
        got = TASKS["dynamics"].score(gini_change_points(TASKS["dynamics"].artifact(toy)), toy)
        assert got["event_f1"] > 0.6, (sparsity, got)


def test_the_dynamics_task_refuses_a_toy_without_a_record():
    toy = toys.superposition(6, 2, n_samples=64, sparsity=0.8, n_steps=50, seed=0)
    with pytest.raises(ValueError, match="snapshot_every > 0"):
        TASKS["dynamics"].artifact(toy)


def test_the_dynamics_suite_runs():
    """Its toy models and its planted circuit (the transformer is tested on its own, below)."""
    import dataclasses

    from planted.evaluators.suites import SUITES

    suite = SUITES["dynamics"]
    assert [t.name for t in suite.toys][-1] == "tf-shift_by"
    results = run(dataclasses.replace(suite, toys=suite.toys[:-1]), seeds=[0], store=None, progress=False)
    assert len(results) == 16 and all(r.status == "ok" for r in results), [r.error for r in results if r.error]
    by = {(r.toy, r.method): r.metrics for r in results}
    assert by[("tms-s0.9", "loss-change-points")]["log_step_error"] is None
    assert all(0 <= by[(t, "norm-growth")]["event_f1"] <= 1 for t in ("tms-s0.7", "tms-s0.9", "tms-s0.97"))


def test_a_features_folder_never_carries_the_training_record(tmp_path):
    """The record's last weights are the features: ``make`` leaves the dynamics task out of a
    folder that serves the features task, and a toy without a record is not a dynamics toy."""
    import json

    from planted.evaluators import external

    with_record = external.make("superposition", tmp_path / "a", n_features=6, n_hidden=2, n_samples=64,
                                n_steps=40, snapshot_every=10, sparsity=0.8)
    info = json.loads((with_record / "artifact.json").read_text())
    assert info["tasks"] == ["features"] and "weights" not in info["artifact"]["arrays"]
    plain = external.make("tms_5_2", tmp_path / "b", n_steps=40, n_samples=64)
    assert json.loads((plain / "artifact.json").read_text())["tasks"] == ["features"]
    assert not TASKS["dynamics"].applies_to(toys.superposition(6, 2, n_samples=64, n_steps=20, seed=0))


def test_a_feature_settled_from_the_start_makes_no_event():
    dynamics = _toy(0.9).truth.dynamics
    truth = formation_steps(dynamics)
    scores = score_formation(Formation(steps=truth), dynamics)
    assert scores["event_f1"] == 1.0 and Formation(steps=np.array([0, 0, 5])).event_steps.tolist() == [5]


# --- a trained planted circuit's formation ---------------------------------------------------------


@functools.cache
def _circuit(seed: int = 0):
    return toys.planted_mlp(12, 2, seed=seed, depth=2, n_blocks=3, width=48, trained=True, snapshot_every=2)


def _best_threshold(values: np.ndarray, labels: np.ndarray) -> float:
    """The best accuracy of any threshold, either way round, by trying each one."""
    best = 0.0
    for c in np.concatenate([np.unique(values), [np.inf]]):
        right = np.mean((values >= c) == labels)
        best = max(best, right, 1 - right)
    return best


def test_a_formed_gate_is_right_in_the_final_model_and_its_step_follows_the_record():
    """Independently of the record: in the built model, each formed gate's variable (what its
    neurons write along their shared output direction) separates its truth table on every task's
    inputs; and each gate's step is the first snapshot from which its accuracy stays >= 0.99."""
    from planted.groundtruth import GATE_ACCURACY
    from planted.toys._planted_mlp._formula import parse_formula

    for seed in range(2):
        toy = _circuit(seed)
        f = toy.truth.formation
        steps = f.gate_steps()
        x = np.concatenate([t.clean for t in toy.tasks])
        acts = toy.model.run(x)["activations"]
        n_in, width = toy.model.params["embed"].shape[0], toy.model.params["w_in"].shape[1]
        for g, text in enumerate(f.gates):
            k = f.gate_accuracy.shape[0] - 1  # walk back while the gate stays right
            while k > 0 and f.gate_accuracy[k - 1, g] >= GATE_ACCURACY:
                k -= 1
            assert steps[g] == (f.steps[k] if f.gate_accuracy[-1, g] >= GATE_ACCURACY else -1)
            nodes = [n for n in np.flatnonzero(f.gate_nodes[g]) if toy.graph.layers[n] > 0]
            rows = [toy.model.params["w_out"][divmod(n - n_in, width)] for n in nodes]
            kept = [(n, r) for n, r in zip(nodes, rows) if np.linalg.norm(r) > 0]  # pruned neurons are gone
            if steps[g] < 0 or not kept:
                continue
            direction = kept[0][1] / np.linalg.norm(kept[0][1])
            value = sum(acts[:, n] * float(r @ direction) for n, r in kept)
            assert _best_threshold(value, parse_formula(text).evaluate(x).astype(bool)) >= GATE_ACCURACY, text
        assert (steps > 0).sum() >= 3  # the gates form at steps of their own, none at the initialisation
        assert f.losses[-1] < 1e-3 * f.losses[0]


def test_the_circuit_record_scores_its_truth_perfectly_and_survives_storage(tmp_path):
    toy = _circuit()
    record = TASKS["dynamics"].artifact(toy)
    assert sorted(record) == ["losses", "steps", "weights"] and record["weights"].shape[2] == toy.graph.n_nodes
    truth = toy.truth.formation.node_steps()
    assert (truth[toy.graph.layers == 0] == -1).all() and (truth >= 0).sum() >= 4
    scores = TASKS["dynamics"].score(Formation(steps=truth), toy)
    assert scores["log_step_error"] == 0.0 and scores["event_f1"] == 1.0 and scores["formed_accuracy"] == 1.0
    toys.save(toy, tmp_path / "t")
    again = toys.load(tmp_path / "t")
    np.testing.assert_array_equal(again.truth.formation.node_steps(), truth)
    plain = toys.planted_mlp(12, 2, seed=0, depth=2, n_blocks=3, width=48, trained=True)
    assert again.id == toy.id != plain.id and not TASKS["dynamics"].applies_to(plain)
    for name, value in plain.model.params.items():  # recording leaves the training as it was, bit for bit
        np.testing.assert_array_equal(value, toy.model.params[name])


def test_snapshot_every_needs_a_trained_circuit():
    with pytest.raises(ValueError, match="snapshot_every=5 records training: it needs trained=True"):
        toys.PlantedMLPConfig(snapshot_every=5)
    with pytest.raises(ValueError, match="snapshot_every"):
        toys.PlantedMLPConfig(trained=True, snapshot_every=-1)


# --- a trained transformer's heads -----------------------------------------------------------------


@functools.cache
def _transformer():
    return toys.rasp_transformer("shift_by", 16, seed=0, trained=True, snapshot_every=50)


@pytest.mark.slow
def test_a_heads_formation_is_its_attention_on_the_compiled_keys(tmp_path):
    """The record's last snapshot is the trained model: each head's attention on the keys its
    compiled twin attends to, recomputed from both built models' patterns, equals the record's
    last row; the step is the first snapshot from which it stays at 0.9 or more; only the heads
    are dated; the record survives storage and leaves the id alone."""
    toy = _transformer()
    f = toy.truth.formation
    assert f.threshold == 0.9 and f.steps[-1] == 3000 and f.gates == ("a0.h0",)
    compiled = toys.rasp_transformer("shift_by", 16, seed=0)
    ids = np.concatenate([t.clean for t in toy.tasks])
    want = compiled.model.run(ids)["patterns"]
    got = toy.model.run(ids)["patterns"]
    recomputed = np.where(want >= 1e-3, got, 0.0).sum(axis=-1)[..., 1:].mean(axis=(0, 3)).reshape(-1)
    np.testing.assert_allclose(recomputed, f.gate_accuracy[-1], atol=0.02)  # other inputs, the same head
    k = f.steps.size - 1
    while k > 0 and f.gate_accuracy[k - 1, 0] >= 0.9:
        k -= 1
    assert f.gate_steps()[0] == f.steps[k] > 0 and f.gate_accuracy[0, 0] < 0.5
    record, truth, scored = training_record(toy)
    assert record["weights"].shape == (f.steps.size, 4, toy.graph.n_nodes)
    assert scored.tolist() == [label.startswith("a") for label in toy.graph.labels]
    perfect = TASKS["dynamics"].score(Formation(steps=truth), toy)
    assert perfect["log_step_error"] == 0.0 and perfect["formed_accuracy"] == 1.0 and perfect["event_f1"] == 1.0
    toys.save(toy, tmp_path / "t")
    again = toys.load(tmp_path / "t")
    assert again.truth.formation.gate_steps().tolist() == f.gate_steps().tolist() and again.truth.formation.threshold == 0.9
    assert toy.id != toys.RASPTransformerConfig(program="shift_by", n_samples=16, trained=True).id
    with pytest.raises(ValueError, match="snapshot_every must divide 400"):
        toys.RASPTransformerConfig(program="shift_by", trained=True, snapshot_every=300)
