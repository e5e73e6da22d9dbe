"""Scores of formation times: a dynamics method's dates against the exact formation of each
planted feature in the training record.

Per dated feature: the error in log steps, the Kendall tau of the order, and whether it says
rightly that a feature formed at all; per event (a method's change points, or the distinct
dates it gives): precision and recall within a window of the true formation steps, and how far
ahead of them the events come (lead time).

References
----------
Truong, Oudre & Vayatis (2020), "Selective review of offline change point detection methods"
(precision and recall of change points within a margin).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import kendalltau

from planted.groundtruth import Formation, formation_steps

WINDOW_SNAPSHOTS = 2  # an event is found when within this many snapshot intervals of a true one
WINDOW_FRACTION = 0.05  # ... or within this fraction of training, whichever is wider


def _log(steps: np.ndarray, after: float) -> np.ndarray:
    """log10(1 + step), a "never" (-1) counted as ``after`` (beyond the end)."""
    return np.log10(1.0 + np.where(steps >= 0, steps, after))


def score_formation(prediction: Formation, dynamics) -> dict[str, float | None]:
    """Score a ``Formation`` against a ``TrainingDynamics``: ``log_step_error`` (mean over the
    features formed in truth of |log10(1 + predicted) - log10(1 + true)|, a predicted "never"
    counted at twice the last step), ``order_tau`` (Kendall tau of the dates of the features
    both say formed), ``formed_accuracy`` (agreement on whether each feature formed), and
    ``event_precision``, ``event_recall``, ``event_f1`` of the events against the distinct true
    formation steps after the initialisation (a feature settled from step 0 makes no event),
    within the larger of ``WINDOW_SNAPSHOTS`` snapshot intervals and ``WINDOW_FRACTION`` of
    training; ``lead_time``: over the true events found, the mean of true minus nearest predicted
    step as a fraction of training (positive: the method signals before the feature has settled,
    as a progress measure should; None when none is found)."""
    truth = formation_steps(dynamics)
    last = float(dynamics.steps[-1])
    out: dict[str, float | None] = dict.fromkeys(("log_step_error", "order_tau", "formed_accuracy"))
    if prediction.steps is not None:
        if prediction.steps.shape != truth.shape:
            raise ValueError(f"Formation.steps must date every feature, shape {truth.shape}, got {prediction.steps.shape}")
        formed = truth >= 0
        if formed.any():
            out["log_step_error"] = float(np.abs(_log(prediction.steps, 2 * last) - _log(truth, 2 * last))[formed].mean())
        both = formed & (prediction.steps >= 0)
        if both.sum() >= 2 and np.ptp(truth[both]) > 0:
            tau = kendalltau(prediction.steps[both], truth[both]).statistic
            out["order_tau"] = 0.0 if np.isnan(tau) else float(tau)
        out["formed_accuracy"] = float(np.mean(formed == (prediction.steps >= 0)))
    events = np.unique(truth[truth > 0])
    found = prediction.event_steps
    window = max(WINDOW_SNAPSHOTS * float(np.median(np.diff(dynamics.steps))), WINDOW_FRACTION * last)
    precision = recall = None
    if found.size and events.size:
        precision = float(np.mean(np.abs(found[:, None] - events[None, :]).min(axis=1) <= window))
    elif events.size:
        precision = 0.0
    if events.size:
        recall = float(np.mean(np.abs(events[:, None] - found[None, :]).min(axis=1) <= window)) if found.size else 0.0
    out["event_precision"], out["event_recall"] = precision, recall
    out["lead_time"] = None
    if events.size and found.size:
        gap = events[:, None] - found[None, :]  # > 0: the event came before the formation
        nearest = gap[np.arange(events.size), np.abs(gap).argmin(axis=1)]
        matched = np.abs(nearest) <= window
        if matched.any():
            out["lead_time"] = float(nearest[matched].mean() / last)
    out["event_f1"] = (None if precision is None or recall is None else
                       0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))
    return out


__all__ = ["WINDOW_FRACTION", "WINDOW_SNAPSHOTS", "score_formation"]
