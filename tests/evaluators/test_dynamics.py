"""Formation times: the truth read off the snapshots by an independent rule, the loss curve
checked against the final loss, the oracle scoring perfectly, and the dynamics suite."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from planted import toys
from planted.evaluators import run
from planted.evaluators.dynamics import score_formation
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


def test_event_scores_by_hand():
    dynamics = _toy().truth.dynamics
    truth = formation_steps(dynamics)
    events = np.unique(truth[truth > 0])
    window = max(60.0, 0.05 * 3000)  # two snapshot intervals or 5% of training
    far = int(events.max() + window + 1)
    got = score_formation(Formation(events=np.array([events[0], far])), dynamics)
    assert got["event_precision"] == 0.5
    near = np.abs(events - events[0]) <= window
    assert got["event_recall"] == pytest.approx(near.mean())
    assert got["log_step_error"] is None and got["order_tau"] is None
    with pytest.raises(ValueError, match="must date every feature"):
        score_formation(Formation(steps=np.zeros(3, int)), dynamics)
    with pytest.raises(ValueError, match="integer steps"):
        Formation(steps=np.array([0.5]))


def test_lead_time_by_hand():
    """Events 30 steps ahead of every true formation lead: each true event counts its gap to the
    nearest event (another formation's, when two are close); events behind lag; an event
    outside every window leads nothing."""
    dynamics = _toy().truth.dynamics
    truth = formation_steps(dynamics)
    events = np.unique(truth[truth > 0])
    window = max(60.0, 0.05 * 3000)
    for shift in (-30, 60):
        predicted = events + shift
        gaps = []
        for e in events:
            nearest = min(predicted, key=lambda p: (abs(e - p), p))
            if abs(e - nearest) <= window:
                gaps.append(e - nearest)
        got = score_formation(Formation(events=predicted), dynamics)["lead_time"]
        assert got == pytest.approx(np.mean(gaps) / 3000)
    first = score_formation(Formation(events=np.array([events[0] - 30])), dynamics)["lead_time"]
    assert first > 0  # alone, an event ahead of the first formation leads it
    assert score_formation(Formation(events=np.array([events.max() + 1000])), dynamics)["lead_time"] is None


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
    results = run("dynamics", seeds=[0], store=None, progress=False)
    assert len(results) == 12 and all(r.status == "ok" for r in results), [r.error for r in results if r.error]
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
