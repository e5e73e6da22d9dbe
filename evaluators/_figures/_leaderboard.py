"""Leaderboard figures: a metric per method with bootstrap CIs, and a metric along a difficulty axis."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from planted.evaluators._figures._common import axes, figure, method_colours, save


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
    colours = method_colours(s.method for s in summaries)
    ax.barh(np.arange(len(summaries)), means, xerr=err, color=[colours[s.method] for s in summaries], ecolor="black",
            capsize=2)
    ax.set_yticks(np.arange(len(summaries)), labels, fontsize=7)
    ax.set_xlabel(f"{metric} (mean, 95% CI)", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    if toy:
        ax.set_title(toy, fontsize=8)
    return ax.figure


def leaderboard_size(n_bars: int) -> tuple[float, float]:
    return 3.4, 0.25 * n_bars + 0.9


def axis_series(results: Sequence, metric: str, axis: str) -> dict[tuple, dict[str, dict[float, list[float]]]]:
    """The cells to draw ``metric`` along ``axis`` from: grouped by every other axis's value, so a
    curve only joins toys that differ in ``axis`` alone; {other axes: {method: {x: values}}} with
    the groups that hold at least two values of ``axis``."""
    groups: dict[tuple, dict[str, dict[float, list[float]]]] = {}
    for r in results:
        value = r.metrics.get(metric)
        if r.status != "ok" or axis not in r.axes or not isinstance(value, (int, float)):
            continue
        others = tuple(sorted((k, v) for k, v in r.axes.items() if k != axis))
        groups.setdefault((r.suite, others), {}).setdefault(r.method, {}).setdefault(float(r.axes[axis]), []).append(float(value))
    return {k: g for k, g in groups.items() if len({x for by_x in g.values() for x in by_x}) >= 2}


def plot_axis(results: Sequence, metric: str, axis: str, *, ax=None):
    """``metric`` against one difficulty ``axis`` per method, with 95% bootstrap CIs over seeds.

    A curve joins only toys that differ in ``axis`` alone (every other axis equal), so a trend is
    the axis's effect, not a difference between unrelated toys; several such families of toys
    are drawn with different line styles. Returns the Figure; ``ValueError`` when no two toys
    differ in ``axis`` alone.
    """
    from planted.evaluators.report import bootstrap_ci

    groups = axis_series(results, metric, axis)
    if not groups:
        raise ValueError(f"no two toys differ in the axis {axis!r} alone, with the metric {metric!r}")
    ax = axes(ax, (3.4, 2.4))
    colours = method_colours(m for g in groups.values() for m in g)
    styles = ("-", "--", ":", "-.")
    xs_all: set[float] = set()
    for i, (key, points) in enumerate(sorted(groups.items(), key=lambda kv: str(kv[0]))):
        for method, by_x in sorted(points.items()):
            xs = sorted(by_x)
            xs_all.update(xs)
            ys = [np.mean(by_x[x]) for x in xs]
            cis = [bootstrap_ci(by_x[x]) for x in xs]
            label = method if len(groups) == 1 else f"{method} ({', '.join(f'{k}={v:g}' for k, v in key[1])})"
            ax.errorbar(xs, ys, yerr=[[y - c[0] for y, c in zip(ys, cis)], [c[1] - y for y, c in zip(ys, cis)]],
                        marker="o", markersize=3, capsize=2, label=label, linewidth=1, color=colours[method],
                        linestyle=styles[i % len(styles)])
    xs_all_sorted = sorted(xs_all)
    if axis == "superposition" and xs_all_sorted[0] > 0:
        ax.set_xscale("log", base=2)
    ax.set_xticks(xs_all_sorted, [f"{x:g}" for x in xs_all_sorted])
    ax.minorticks_off()
    ax.set_xlabel(axis.replace("_", " "), fontsize=8)
    ax.set_ylabel(f"{metric} (mean, 95% CI over seeds)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, frameon=False)
    return ax.figure


def leaderboard_figures(results: Sequence, metrics: Sequence[str], folder: Path) -> list[Path]:
    """Per suite (and per metric of its task among ``metrics`` with finite values):
    ``{suite}-leaderboard-{metric}.png`` with bars coloured by method, and
    ``{suite}-{metric}-vs-{axis}.png`` for each difficulty axis along which at least two of its
    toys differ alone (``plot_axis``); each also as SVG and PDF."""
    from planted.evaluators.report import summarize
    from planted.evaluators.tasks import TASKS

    written: list[Path] = []
    for suite in sorted({r.suite for r in results}):
        cells = [r for r in results if r.suite == suite]
        tasks = {r.task for r in cells}
        suite_metrics = [m for m in metrics if any(t in TASKS and m in TASKS[t].metrics for t in tasks)]
        axis_names = sorted({a for r in cells for a in r.axes})
        name = suite.replace(":", "_")
        for metric in suite_metrics:
            n_bars = len(summarize(cells, [metric]))
            if not n_bars:
                continue
            fig = figure(leaderboard_size(n_bars))
            plot_leaderboard(cells, metric, ax=fig.subplots())
            save(fig, folder / f"{name}-leaderboard-{metric}.png", written, dpi=200)
            for axis in axis_names:
                if not axis_series(cells, metric, axis):
                    continue
                fig = figure((3.4, 2.4))
                plot_axis(cells, metric, axis, ax=fig.subplots())
                save(fig, folder / f"{name}-{metric}-vs-{axis}.png", written, dpi=200)
    return written
