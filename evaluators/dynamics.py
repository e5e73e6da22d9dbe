"""Scores of formation times: a dynamics method's dates against the exact formation of each
planted feature in the training record.

Per dated feature: the error in log steps, the Kendall tau of the order, and whether it says
rightly that a feature formed at all; per event (a method's change points, or the distinct
dates it gives): precision and recall within a window of the true formation steps, and how far
ahead of them the events come (lead time). Each planted feature of a toy model of superposition,
or each trained gate's neurons of a planted circuit, is a component.

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
WINDOW_LOG = 0.05  # ... or within this many log10 steps (about 12%), whichever is wider


def _log(steps: np.ndarray, after: float) -> np.ndarray:
    """log10(1 + step), a "never" (-1) counted as ``after`` (beyond the end)."""
    return np.log10(1.0 + np.where(steps >= 0, steps, after))


def has_record(toy) -> bool:
    """Whether a toy keeps a training record a dynamics method can read: a toy model of
    superposition trained with snapshots (and its loss curve), or a trained planted circuit or
    transformer with snapshots."""
    truth = getattr(toy, "truth", None)
    if getattr(truth, "formation", None) is not None:
        return True
    dynamics = getattr(truth, "dynamics", None)
    return dynamics is not None and dynamics.losses is not None


def training_record(toy) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """What a dynamics method sees of a toy's training, the true formation step of each column of
    its weights, and which columns have one (a circuit's nodes outside every trained gate or head
    have none: embeddings, MLPs and outputs of a transformer, inputs and distractors of a planted
    circuit): ``{"steps", "losses", "weights"}`` (and ``"biases"`` for a toy model of
    superposition), where ``weights`` is (n_snapshots, n_parameters, n_components): W's columns
    (one per feature), each node's trained parameters (reads, bias, write; one column per node
    of a planted circuit, zeros where training does not reach) or each transformer component's
    weight norms (one column per component)."""
    if not has_record(toy):
        raise ValueError("the dynamics task needs a toy trained with snapshot_every > 0 (its snapshots and loss curve)")
    circuit = getattr(toy.truth, "formation", None)
    if circuit is not None:
        return ({"steps": circuit.steps, "losses": circuit.losses, "weights": circuit.parameters}, circuit.node_steps(),
                circuit.gate_nodes.any(axis=0))
    d = toy.truth.dynamics
    truth = formation_steps(d)
    return ({"steps": d.steps, "losses": d.losses, "weights": d.weights, "biases": d.biases}, truth,
            np.ones(truth.size, bool))


def score_formation(prediction: Formation, dynamics) -> dict[str, float | None]:
    """Score a ``Formation`` against a toy model of superposition's ``TrainingDynamics``
    (``score_dates`` against ``formation_steps(dynamics)``)."""
    return score_dates(prediction, formation_steps(dynamics), dynamics.steps)


def score_dates(prediction: Formation, truth: np.ndarray, snapshots: np.ndarray,
                scored: np.ndarray | None = None) -> dict[str, float | None]:
    """Score a ``Formation`` against the true formation step of each component (``truth``, -1:
    never) of a record with snapshots at ``snapshots``; the dates are scored over the components
    ``scored`` marks (default: all; the others have no formation to date).

    ``log_step_error``: mean over the components formed in truth of |log10(1 + predicted) -
    log10(1 + true)|, a predicted "never" counted at twice the last step; ``order_tau``: Kendall
    tau of the dates of the components both say formed; ``formed_accuracy``: agreement on
    whether each formed; ``event_precision``, ``event_recall``, ``event_f1``: the events against
    the distinct true formation steps after the initialisation (a component settled from step 0
    makes no event), an event matching a true step within ``WINDOW_SNAPSHOTS`` snapshot intervals
    or ``WINDOW_LOG`` log10 steps, whichever is wider (a window that scales with the step, so
    early and late formations are held to the same relative precision); ``lead_time``: over the
    true events found, the mean of log10(1 + true) - log10(1 + the nearest event within the
    window) (positive: the method signals just before the component settles; an event further
    ahead is not matched, so this measures how a found event sits, not early warning; None when
    none is found)."""
    truth = np.asarray(truth, np.int64)
    snapshots = np.asarray(snapshots)
    scored = np.ones(truth.size, bool) if scored is None else np.asarray(scored, bool)
    last = float(snapshots[-1])
    out: dict[str, float | None] = dict.fromkeys(("log_step_error", "order_tau", "formed_accuracy"))
    if prediction.steps is not None:
        if prediction.steps.shape != truth.shape:
            raise ValueError(f"Formation.steps must date every component, shape {truth.shape}, got "
                             f"{prediction.steps.shape}")
        predicted, true = prediction.steps[scored], truth[scored]
        formed = true >= 0
        if formed.any():
            out["log_step_error"] = float(np.abs(_log(predicted, 2 * last) - _log(true, 2 * last))[formed].mean())
        both = formed & (predicted >= 0)
        if both.sum() >= 2 and np.ptp(true[both]) > 0:
            tau = kendalltau(predicted[both], true[both]).statistic
            out["order_tau"] = 0.0 if np.isnan(tau) else float(tau)
        if true.size:
            out["formed_accuracy"] = float(np.mean(formed == (predicted >= 0)))
    truth = truth[scored]
    events = np.unique(truth[truth > 0])
    found = prediction.event_steps
    near = WINDOW_SNAPSHOTS * float(np.median(np.diff(snapshots)))

    def matched(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(len(a), len(b)): whether a[i] and b[j] are within the window of each other."""
        return (np.abs(a[:, None] - b[None, :]) <= near) | (
            np.abs(np.log10(1.0 + a[:, None]) - np.log10(1.0 + b[None, :])) <= WINDOW_LOG)

    precision = recall = None
    if found.size and events.size:
        precision = float(np.mean(matched(found, events).any(axis=1)))
    elif events.size:
        precision = 0.0
    if events.size:
        recall = float(np.mean(matched(events, found).any(axis=1))) if found.size else 0.0
    out["event_precision"], out["event_recall"] = precision, recall
    out["lead_time"] = None
    if events.size and found.size:
        gap = np.log10(1.0 + events[:, None]) - np.log10(1.0 + found[None, :])  # > 0: the event came first
        hits = matched(events, found)
        found_any = hits.any(axis=1)
        if found_any.any():
            nearest = np.where(hits, np.abs(gap), np.inf).argmin(axis=1)  # the nearest event within the window
            out["lead_time"] = float(gap[np.arange(events.size), nearest][found_any].mean())
    out["event_f1"] = (None if precision is None or recall is None else
                       0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))
    return out


__all__ = ["WINDOW_LOG", "WINDOW_SNAPSHOTS", "has_record", "score_dates", "score_formation", "training_record"]
