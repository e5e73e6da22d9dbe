"""Figures of the connectome tasks (connectivity, modules, hubs): the planted adjacency sorted by
module beside a method's inferred one, ROC curves, and a raster above the recording."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from planted.evaluators._figures._common import figure, lowest_seeds, save, stored_arrays, stored_panels, text
from planted.evaluators.connectome import roc_curve, score_connectivity

# The recording excerpt the store keeps for ``plot_activity``: seconds, neurons in the raster, traces.
ACTIVITY_WINDOW, ACTIVITY_NEURONS, ACTIVITY_TRACES = 20.0, 100, 5


def _new_axes(ax, size):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=size)
    return ax


def plot_adjacency(truth, scores=None, *, ax=None, title: str = ""):
    """The planted adjacency among the recorded neurons of a ``ConnectomeTruth`` sorted by module
    (``scores`` None), or a method's (n_observed, n_observed) scores in the same order, its top
    pairs (as many as planted edges) shown. Returns the Axes."""
    return adjacency_panel(truth.adjacency(), truth.modules[truth.observed], scores, ax=_new_axes(ax, (3, 3)),
                           title=title)


def adjacency_panel(adjacency: np.ndarray, modules: np.ndarray, scores=None, *, ax, title: str = ""):
    """``plot_adjacency`` from the planted weights (m, m) ``[pre, post]`` and each recorded
    neuron's module (m,)."""
    adjacency = np.asarray(adjacency)
    modules = np.asarray(modules)
    order = np.argsort(modules, kind="stable")
    if scores is None:
        shown = adjacency != 0
    else:
        s = np.array(scores, np.float64)
        np.fill_diagonal(s, -np.inf)
        k = int((adjacency != 0).sum())
        cut = np.sort(s.ravel())[-k] if k else np.inf
        shown = s >= cut
    ax.imshow(shown[np.ix_(order, order)], cmap="Greys", interpolation="nearest")
    for b in np.flatnonzero(np.diff(modules[order])) + 0.5:
        ax.axhline(b, color="tab:red", lw=0.4)
        ax.axvline(b, color="tab:red", lw=0.4)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("post", fontsize=7)
    ax.set_ylabel("pre", fontsize=7)
    ax.set_title(title or ("planted" if scores is None else "inferred"), fontsize=8)
    return ax


def plot_roc(scores_by_method: Mapping[str, np.ndarray], truth, *, ax=None, title: str = ""):
    """ROC curves over ordered pairs (diagonal masked) of each method's score matrix against a
    ``ConnectomeTruth``, with their AUROC. Returns the Axes."""
    return roc_panel(scores_by_method, truth.adjacency(), ax=_new_axes(ax, (3.2, 3.2)), title=title)


def roc_panel(scores_by_method: Mapping[str, np.ndarray], adjacency: np.ndarray, *, ax, title: str = ""):
    """``plot_roc`` from the planted weights (m, m) ``[pre, post]``."""
    for name, scores in scores_by_method.items():
        fpr, tpr = roc_curve(scores, adjacency)
        ax.plot(fpr, tpr, lw=1, label=f"{name} ({score_connectivity(scores, adjacency).auroc:.2f})")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.5, ls="--")
    ax.set_xlabel("false positive rate", fontsize=7)
    ax.set_ylabel("true positive rate", fontsize=7)
    ax.legend(fontsize=6, loc="lower right")
    ax.set_title(title, fontsize=8)
    return ax


def plot_activity(truth, recording, *, window: float = ACTIVITY_WINDOW, neurons: int = ACTIVITY_NEURONS,
                  traces: int = ACTIVITY_TRACES, axes=None):
    """A raster of ``neurons`` recorded neurons over the first ``window`` seconds, above the
    recording's traces of ``traces`` of them. Returns the two Axes."""
    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(2, 1, figsize=(6, 4), sharex=True, constrained_layout=True)
    d = activity_excerpt(truth, recording, window=window, neurons=neurons, traces=traces)
    return activity_panel(d["spike_times"], d["spike_rows"], int(d["n_shown"]), d["traces"], float(d["frame_rate"]),
                          text(d["kind"]), axes=axes)


def activity_excerpt(truth, recording, *, window: float = ACTIVITY_WINDOW, neurons: int = ACTIVITY_NEURONS,
                     traces: int = ACTIVITY_TRACES) -> dict[str, np.ndarray]:
    """The excerpt ``plot_activity`` draws: the spikes of the first ``neurons`` recorded neurons in
    the first ``window`` seconds (``spike_times``, ``spike_rows``: their row in the raster), and the
    first ``traces`` traces over that window (frames, traces) float32."""
    shown = truth.observed[: min(neurons, truth.observed.size)]
    row = np.full(int(max(truth.observed.max(), truth.spike_neurons.max(initial=0))) + 1, -1, np.int64)
    row[shown] = np.arange(shown.size)
    keep = (truth.spike_times < window) & np.isin(truth.spike_neurons, shown)
    frames = int(min(window * recording.frame_rate, recording.traces.shape[0]))
    return {
        "spike_times": np.asarray(truth.spike_times[keep], np.float64),
        "spike_rows": row[truth.spike_neurons[keep]].astype(np.int32),
        "n_shown": np.asarray(shown.size, np.int64),
        "traces": np.asarray(recording.traces[:frames, :traces], np.float32),
        "frame_rate": np.asarray(recording.frame_rate, np.float64),
        "kind": np.asarray(recording.kind),
    }


def activity_panel(spike_times: np.ndarray, spike_rows: np.ndarray, n_shown: int, traces: np.ndarray,
                   frame_rate: float, kind: str, *, axes):
    """``plot_activity`` from a stored excerpt (``activity_excerpt``)."""
    axes[0].scatter(spike_times, spike_rows, s=0.5, c="k", marker="|")
    axes[0].set_ylabel("neuron", fontsize=7)
    axes[0].set_title(f"spikes of {n_shown} recorded neurons", fontsize=8)
    t = np.arange(traces.shape[0]) / frame_rate
    spacing = np.ptp(traces) if traces.size else 0.0
    for j in range(traces.shape[1]):
        axes[1].plot(t, traces[:, j] + j * spacing, lw=0.6)
    axes[1].set_xlabel("time (s)", fontsize=7)
    axes[1].set_ylabel("fluorescence" if kind == "calcium" else "spikes per frame", fontsize=7)
    return axes


def connectome_figure_data(toy) -> dict[str, np.ndarray]:
    """What the connectome figures draw: ``adjacency`` among the recorded neurons (m, m) float32,
    their ``modules`` (m,), and the recording excerpt of ``activity_excerpt``."""
    truth = toy.truth
    return {
        "adjacency": np.asarray(truth.adjacency(), np.float32),
        "modules": np.asarray(truth.modules[truth.observed], np.int64),
        **activity_excerpt(truth, toy.artifact),
    }


def connectome_figures(results: Sequence, store, folder: Path) -> list[Path]:
    """Per connectome toy (lowest seed) with stored arrays: where the cells' score matrices are
    stored (connectivity), ``connectivity-{suite}-{toy}.png``: the planted adjacency sorted by
    module beside the best method's top pairs and every method's ROC curve; otherwise
    ``adjacency-{suite}-{toy}.png``, the planted adjacency alone; and ``activity-{suite}-{toy}.png``,
    a raster above the recorded traces."""
    written: list[Path] = []
    for suite, toy, seed, cells in lowest_seeds(results):
        d = stored_arrays(store, cells[0])
        if "adjacency" not in d:
            continue
        adjacency, modules = d["adjacency"], d["modules"]
        panels = [(c, s) for c, s in stored_panels(cells, store) if s.shape == adjacency.shape]
        if panels:
            best = max(panels, key=lambda p: p[0].metrics.get("auroc") or 0.0)
            fig = figure((9.6, 3.2))
            axes = fig.subplots(1, 3)
            adjacency_panel(adjacency, modules, ax=axes[0])
            adjacency_panel(adjacency, modules, best[1], ax=axes[1], title=f"{best[0].method}: top pairs")
            roc_panel({c.method: s for c, s in panels}, adjacency, ax=axes[2], title=f"{toy} (seed {seed})")
            save(fig, folder / f"connectivity-{suite}-{toy}.png", written)
        else:
            fig = figure((3.2, 3.2))
            adjacency_panel(adjacency, modules, ax=fig.subplots(), title=f"{toy} (seed {seed}): planted")
            save(fig, folder / f"adjacency-{suite}-{toy}.png", written)
        fig = figure((6, 4))
        activity_panel(d["spike_times"], d["spike_rows"], int(d["n_shown"]), d["traces"], float(d["frame_rate"]),
                       text(d["kind"]), axes=fig.subplots(2, 1, sharex=True))
        save(fig, folder / f"activity-{suite}-{toy}.png", written)
    return written
