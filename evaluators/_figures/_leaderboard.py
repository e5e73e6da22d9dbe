"""Leaderboard figures: a metric per method with bootstrap CIs, and a metric along a difficulty axis."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from planted.evaluators._figures._common import axes, figure, save


def plot_leaderboard(results: Sequence, metric: str, *, toy: str | None = None, ax=None):
    """Horizontal bars of ``metric`` per method with 95% bootstrap CIs (one toy, or every toy).

    Parameters
    ----------
    results : sequence of CellResult
    metric : str
        A metric the cells carry.
    toy : str, optional
        Only this toy (labels are then the method names alone).
    ax : matplotlib Axes, optional
        Draw here; default a new figure sized for a paper column.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from planted.evaluators.report import summarize

    summaries = [s for s in summarize(results, [metric]) if toy is None or s.toy == toy]
    if not summaries:
        raise ValueError(f"no finite values of {metric!r} to plot")
    summaries.sort(key=lambda s: (s.toy, s.mean))
    ax = axes(ax, leaderboard_size(len(summaries)))
    labels = [f"{s.method}" if toy else f"{s.toy} · {s.method}" for s in summaries]
    means = np.array([s.mean for s in summaries])
    err = np.array([[s.mean - s.low for s in summaries], [s.high - s.mean for s in summaries]])
    ax.barh(np.arange(len(summaries)), means, xerr=err, color="#4C72B0", ecolor="black", capsize=2)
    ax.set_yticks(np.arange(len(summaries)), labels, fontsize=7)
    ax.set_xlabel(f"{metric} (mean, 95% CI)", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    if toy:
        ax.set_title(toy, fontsize=8)
    return ax.figure


def leaderboard_size(n_bars: int) -> tuple[float, float]:
    return 3.4, 0.25 * n_bars + 0.9


def plot_axis(results: Sequence, metric: str, axis: str, *, ax=None):
    """``metric`` against one difficulty ``axis`` per method, averaged over the other axes and
    seeds, with 95% bootstrap CIs; returns the Figure."""
    from planted.evaluators.report import bootstrap_ci

    points: dict[str, dict[float, list[float]]] = {}
    for r in results:
        value = r.metrics.get(metric)
        if r.status != "ok" or axis not in r.axes or not isinstance(value, (int, float)):
            continue
        points.setdefault(r.method, {}).setdefault(float(r.axes[axis]), []).append(float(value))
    if not points:
        raise ValueError(f"no cells carry both the axis {axis!r} and the metric {metric!r}")
    ax = axes(ax, (3.4, 2.4))
    for method, by_x in sorted(points.items()):
        xs = sorted(by_x)
        ys = [np.mean(by_x[x]) for x in xs]
        cis = [bootstrap_ci(by_x[x]) for x in xs]
        ax.errorbar(xs, ys, yerr=[[y - c[0] for y, c in zip(ys, cis)], [c[1] - y for y, c in zip(ys, cis)]],
                    marker="o", markersize=3, capsize=2, label=method, linewidth=1)
    xs_all = sorted({x for by_x in points.values() for x in by_x})
    if axis == "superposition" and xs_all[0] > 0:
        ax.set_xscale("log", base=2)
    ax.set_xticks(xs_all, [f"{x:g}" for x in xs_all])
    ax.minorticks_off()
    ax.set_xlabel(axis.replace("_", " "), fontsize=8)
    ax.set_ylabel(metric, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, frameon=False)
    return ax.figure


def leaderboard_figures(results: Sequence, metrics: Sequence[str], folder: Path) -> list[Path]:
    """``leaderboard-{metric}.png`` per metric with finite values, and ``{metric}-vs-{axis}.png``
    per difficulty axis that takes at least two values."""
    from planted.evaluators.report import summarize

    written: list[Path] = []
    axis_names = sorted({a for r in results for a in r.axes})
    for metric in metrics:
        n_bars = len(summarize(results, [metric]))
        if not n_bars:
            continue
        fig = figure(leaderboard_size(n_bars))
        plot_leaderboard(results, metric, ax=fig.subplots())
        save(fig, folder / f"leaderboard-{metric}.png", written, dpi=200)
        for axis in axis_names:
            if len({r.axes.get(axis) for r in results if axis in r.axes}) < 2:
                continue
            fig = figure((3.4, 2.4))
            try:
                plot_axis(results, metric, axis, ax=fig.subplots())
            except ValueError:
                continue
            save(fig, folder / f"{metric}-vs-{axis}.png", written, dpi=200)
    return written
