"""Reports from stored results: leaderboards with bootstrap confidence intervals, tables, figures.

Tables come as text, Markdown, CSV, LaTeX or JSON from one summary; figures are matplotlib
Figures (no ``show()``), sized for a paper column and readable there.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402

from planted import toys  # noqa: E402
from planted.evaluators.geometry import write_geometry_figures  # noqa: E402
from planted.evaluators.store import CellResult  # noqa: E402
from planted.evaluators.suites import SUITES  # noqa: E402
from planted.evaluators.tasks import TASKS  # noqa: E402
from planted.groundtruth import FeatureTruth, config_from_json  # noqa: E402

FORMATS = ("text", "markdown", "csv", "latex", "json")


@dataclasses.dataclass(frozen=True)
class Summary:
    """A metric of one (toy, method) over seeds: mean and a 95% percentile-bootstrap interval."""

    task: str
    toy: str
    method: str
    metric: str
    mean: float
    low: float
    high: float
    n: int
    failed: int


def bootstrap_ci(values: Sequence[float], *, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (the value itself when there is one sample)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    if v.size == 1:
        return float(v[0]), float(v[0])
    rng = np.random.default_rng([seed, v.size])
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def summarize(results: Sequence[CellResult], metrics: Sequence[str] | None = None) -> list[Summary]:
    """One ``Summary`` per (task, toy, method, metric) with at least one finite value."""
    groups: dict[tuple[str, str, str], list[CellResult]] = {}
    for r in results:
        groups.setdefault((r.task, r.toy, r.method), []).append(r)
    out = []
    for (task, toy, method), cells in groups.items():
        names = metrics or TASKS[task].metrics if task in TASKS else metrics or ()
        ok = [c for c in cells if c.status == "ok"]
        for m in names:
            values = [c.metrics[m] for c in ok if isinstance(c.metrics.get(m), (int, float)) and math.isfinite(c.metrics[m])]
            if not values:
                continue
            lo, hi = bootstrap_ci(values)
            out.append(Summary(task, toy, method, m, float(np.mean(values)), lo, hi, len(values), len(cells) - len(ok)))
    return out


def _rows(results: Sequence[CellResult], metrics: Sequence[str] | None):
    summaries = summarize(results, metrics)
    by_key: dict[tuple[str, str], dict[str, Summary]] = {}
    for s in summaries:
        by_key.setdefault((s.toy, s.method), {})[s.metric] = s
    tasks = {r.task for r in results}
    if metrics is None:
        metrics = TASKS[next(iter(tasks))].metrics if len(tasks) == 1 and next(iter(tasks)) in TASKS else sorted({s.metric for s in summaries})
    headline = TASKS[next(iter(tasks))].headline if len(tasks) == 1 and next(iter(tasks)) in TASKS else metrics[0]
    counts: dict[tuple[str, str], tuple[int, int]] = {}
    for r in results:
        ok, total = counts.get((r.toy, r.method), (0, 0))
        counts[(r.toy, r.method)] = (ok + (r.status == "ok"), total + 1)
    keys = sorted(counts, key=lambda k: (k[0], -(by_key.get(k, {}).get(headline).mean if headline in by_key.get(k, {}) else -1)))
    return list(metrics), [(k, counts[k], by_key.get(k, {})) for k in keys]


def leaderboard(results: Sequence[CellResult], metrics: Sequence[str] | None = None, *, fmt: str = "text") -> str:
    """The leaderboard: per toy and method, each metric's mean and 95% bootstrap CI over seeds.

    ``fmt`` is one of "text", "markdown", "csv", "latex", "json". Rows are sorted by toy, then by
    the task's headline metric (best first). Failed cells are counted in the ``seeds`` column.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
    metrics, rows = _rows(results, metrics)
    if fmt == "json":
        payload = [
            {"toy": toy, "method": method, "ok": ok, "cells": total,
             **{m: ({"mean": s.mean, "low": s.low, "high": s.high, "n": s.n} if (s := sm.get(m)) else None) for m in metrics}}
            for (toy, method), (ok, total), sm in rows
        ]
        return json.dumps(payload, indent=1)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["toy", "method", "ok", "cells"] + [f"{m}_{p}" for m in metrics for p in ("mean", "low", "high")])
        for (toy, method), (ok, total), sm in rows:
            vals = []
            for m in metrics:
                s = sm.get(m)
                vals += [f"{s.mean:.6g}", f"{s.low:.6g}", f"{s.high:.6g}"] if s else ["", "", ""]
            w.writerow([toy, method, ok, total] + vals)
        return buf.getvalue()

    def cell(s: Summary | None, latex: bool = False) -> str:
        if s is None:
            return "-"
        half = (s.high - s.low) / 2
        return f"{s.mean:.3f} $\\pm$ {half:.3f}" if latex else f"{s.mean:.3f} ± {half:.3f}"

    header = ["toy", "method", "seeds", *metrics]
    table = [[toy, method, f"{ok}/{total}", *[cell(sm.get(m), fmt == "latex") for m in metrics]]
             for (toy, method), (ok, total), sm in rows]
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in table]
        return "\n".join(lines) + "\n\n95% bootstrap intervals over seeds (± half-width).\n"
    if fmt == "latex":
        esc = lambda s: s.replace("_", r"\_")  # noqa: E731
        lines = [r"\begin{tabular}{ll" + "c" * (len(header) - 2) + "}", r"\toprule",
                 " & ".join(esc(h) for h in header) + r" \\", r"\midrule"]
        lines += [" & ".join(esc(x) if i < 3 else x for i, x in enumerate(r)) + r" \\" for r in table]
        lines += [r"\bottomrule", r"\end{tabular}"]
        return "\n".join(lines) + "\n"
    widths = [max(len(str(x)) for x in col) for col in zip(header, *table)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(x).ljust(w) for x, w in zip(r, widths)) for r in table]
    failed = [r for r in results if r.status != "ok"]
    lines += [f"FAILED {r.toy} {r.method} seed {r.seed}: {r.error}" for r in failed]
    return "\n".join(lines)


def plot_leaderboard(results: Sequence[CellResult], metric: str, *, toy: str | None = None, ax=None):
    """Horizontal bars of ``metric`` per method with 95% bootstrap CIs (one toy, or all toys pooled per toy)."""
    summaries = [s for s in summarize(results, [metric]) if toy is None or s.toy == toy]
    if not summaries:
        raise ValueError(f"no finite values of {metric!r} to plot")
    summaries.sort(key=lambda s: (s.toy, s.mean))
    if ax is None:
        fig, ax = plt.subplots(figsize=(3.4, 0.25 * len(summaries) + 0.9), constrained_layout=True)
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


def plot_axis(results: Sequence[CellResult], metric: str, axis: str, *, ax=None):
    """``metric`` against one difficulty ``axis`` per method, averaged over the other axes and seeds."""
    points: dict[str, dict[float, list[float]]] = {}
    for r in results:
        value = r.metrics.get(metric)
        if r.status != "ok" or axis not in r.axes or not isinstance(value, (int, float)):
            continue
        points.setdefault(r.method, {}).setdefault(float(r.axes[axis]), []).append(float(value))
    if not points:
        raise ValueError(f"no cells carry both the axis {axis!r} and the metric {metric!r}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(3.4, 2.4), constrained_layout=True)
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


def plot_cosines(directions: np.ndarray, truth: FeatureTruth, *, max_features: int = 40, ax=None, title: str = ""):
    """Learned vs true directions: |cosine| of the most frequent true features with their matched latents.

    Rows are the ``max_features`` represented features that fire most often; columns the latents
    a one-to-one matching pairs with them, in row order, so a perfect dictionary shows a bright
    diagonal and absorption or splitting show up as off-diagonal mass.
    """
    rep = np.flatnonzero(truth.represented)
    rep = rep[np.argsort(-truth.firing_probabilities[rep], kind="stable")][:max_features]
    latents = np.asarray(directions, np.float64)
    norms = np.linalg.norm(latents, axis=1, keepdims=True)
    latents = np.where(norms > 0, latents / np.where(norms > 0, norms, 1), 0)
    sims = np.abs(truth.directions[rep].astype(np.float64) @ latents.T)
    rows, cols = linear_sum_assignment(sims, maximize=True)
    order = cols[np.argsort(rows)]
    if ax is None:
        fig, ax = plt.subplots(figsize=(3.0, 2.8), constrained_layout=True)
    image = ax.imshow(sims[:, order], vmin=0, vmax=1, cmap="viridis", aspect="auto", interpolation="nearest")
    ax.set_xlabel("matched latent", fontsize=8)
    ax.set_ylabel("true feature (most frequent first)", fontsize=8)
    ax.tick_params(labelsize=6)
    if title:
        ax.set_title(title, fontsize=8)
    ax.figure.colorbar(image, ax=ax, shrink=0.8).set_label("|cos|", fontsize=7)
    return ax.figure


def _stored_panels(results: Sequence[CellResult], store, task: str):
    """Per (suite, toy) of ``task``: the lowest seed and its cells' stored prediction arrays, by method."""
    by_toy: dict[tuple[str, str], list[CellResult]] = {}
    for r in results:
        if r.status == "ok" and r.config and r.task == task:
            by_toy.setdefault((r.suite, r.toy), []).append(r)
    for (suite, toy_name), cells in sorted(by_toy.items()):
        seed = min(c.seed for c in cells)
        panels = [(c, store.directions(c.key)) for c in sorted(cells, key=lambda c: c.method) if c.seed == seed]
        panels = [(c, array) for c, array in panels if array is not None]
        if panels:
            yield suite, toy_name, seed, panels


def _diagnostics(results: Sequence[CellResult], store, folder: Path, build) -> list[Path]:
    """Per toy: a cosine heatmap for each method's prediction on the lowest seed."""
    written = []
    for suite, toy_name, seed, panels in _stored_panels(results, store, "features"):
        truth = build(panels[0][0].config).truth
        fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.6), constrained_layout=True, squeeze=False)
        for ax, (c, directions) in zip(axes[0], panels):
            plot_cosines(directions, truth, ax=ax, title=f"{c.method} (seed {seed})")
        path = folder / f"cosines-{suite}-{toy_name}.png"
        fig.savefig(path, dpi=150)
        plt.close(fig)
        written.append(path)
    return written


def catalog(results: Sequence[CellResult], metric: str = "edge_auroc", *, fmt: str = "markdown") -> str:
    """The failure-mode catalog of a circuits suite: methods (rows) x toys (columns, the plain toy
    first), each cell the mean of ``metric`` over seeds with its 95% bootstrap interval."""
    if fmt not in ("markdown", "csv"):
        raise ValueError(f"fmt must be 'markdown' or 'csv', got {fmt!r}")
    cells = [r for r in results if r.task == "circuits"]
    summaries = {(s.toy, s.method): s for s in summarize(cells, [metric])}
    if not summaries:
        raise ValueError(f"no circuits results carry the metric {metric!r}")
    toy_names = sorted({t for t, _ in summaries}, key=lambda t: (t != "plain", t))
    method_names = sorted({m for _, m in summaries},
                          key=lambda m: -(summaries[("plain", m)].mean if ("plain", m) in summaries else 0))

    def cell(toy, method, sep):
        s = summaries.get((toy, method))
        if s is None:
            return "-"
        return f"{s.mean:.3f}{sep}{(s.high - s.low) / 2:.3f}"

    if fmt == "csv":
        lines = ["method," + ",".join(f"{t},{t}_ci" for t in toy_names)]
        lines += [m + "," + ",".join(cell(t, m, ",") for t in toy_names) for m in method_names]
        return "\n".join(lines) + "\n"
    lines = [f"| method | {' | '.join(toy_names)} |", "|" + "---|" * (len(toy_names) + 1)]
    lines += [f"| {m} | " + " | ".join(cell(t, m, " ± ") for t in toy_names) + " |" for m in method_names]
    return "\n".join(lines) + f"\n\n{metric}: mean over seeds ± half the 95% bootstrap interval.\n"


def _circuit_figures(results: Sequence[CellResult], store, folder: Path, build) -> list[Path]:
    """Per circuits toy (lowest seed): the planted circuit of task 0 beside each method's top edges."""
    from planted.evaluators.circuits import plot_circuit

    written = []
    for suite, toy_name, seed, panels in _stored_panels(results, store, "circuits"):
        toy = build(panels[0][0].config)
        cols = min(4, len(panels))
        rows = -(-len(panels) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.2 * rows), constrained_layout=True, squeeze=False)
        for ax, (c, scores) in zip(axes.ravel(), panels):
            plot_circuit(toy, 0, scores, ax=ax, title=f"{c.method}")
        for ax in axes.ravel()[len(panels):]:
            ax.axis("off")
        fig.suptitle(f"{toy_name} (seed {seed}), task 0: planted (grey), top edges found (green: planted, red: not)", fontsize=7)
        path = folder / f"circuit-{suite}-{toy_name}.png"
        fig.savefig(path, dpi=150)
        plt.close(fig)
        written.append(path)
    return written


def _connectome_figures(results: Sequence[CellResult], store, folder: Path, build) -> list[Path]:
    """Per connectivity toy (lowest seed): the planted adjacency sorted by module beside the best
    method's inferred one, the ROC curves of every method, and a raster above the recording."""
    from planted.evaluators.connectome import plot_activity, plot_adjacency, plot_roc

    written = []
    for suite, toy_name, seed, panels in _stored_panels(results, store, "connectivity"):
        toy = build(panels[0][0].config)
        best = max(panels, key=lambda p: p[0].metrics.get("auroc") or 0.0)
        fig, axes = plt.subplots(1, 3, figsize=(9.6, 3.2), constrained_layout=True)
        plot_adjacency(toy.truth, ax=axes[0])
        plot_adjacency(toy.truth, best[1], ax=axes[1], title=f"{best[0].method}: top pairs")
        plot_roc({c.method: scores for c, scores in panels}, toy.truth, ax=axes[2], title=f"{toy_name} (seed {seed})")
        path = folder / f"connectivity-{suite}-{toy_name}.png"
        fig.savefig(path, dpi=150)
        plt.close(fig)
        written.append(path)
        fig, axes = plt.subplots(2, 1, figsize=(6, 4), sharex=True, constrained_layout=True)
        plot_activity(toy.truth, toy.artifact, axes=axes)
        path = folder / f"activity-{suite}-{toy_name}.png"
        fig.savefig(path, dpi=150)
        plt.close(fig)
        written.append(path)
    return written


def write_report(results: Sequence[CellResult], out: str | Path, *, store=None) -> list[Path]:
    """Write the leaderboard as Markdown, CSV, LaTeX and JSON, and the figures as PNGs; return the paths.

    Figures: leaderboard bars with CIs per metric; each metric against each difficulty axis per
    method; given the ``store`` the results came from, a learned-vs-true cosine heatmap per toy;
    for toy models of superposition their learned geometry (``evaluators.geometry``): feature
    directions, W^T W, the D* curve of a sparsity sweep, and the phase diagram for suites that ask
    for it; for circuits, the failure-mode ``catalog`` (methods x toys, edge AUROC with CIs) and
    per toy the planted circuit beside each method's top edges.
    """
    if not results:
        raise ValueError("there are no results to report; run `planted bench` first")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt, ext in (("markdown", "md"), ("csv", "csv"), ("latex", "tex"), ("json", "json")):
        path = folder / f"leaderboard.{ext}"
        path.write_text(leaderboard(results, fmt=fmt))
        written.append(path)
    tasks = {r.task for r in results}
    metrics = sorted({m for t in tasks if t in TASKS for m in TASKS[t].metrics})
    axes = sorted({a for r in results for a in r.axes})
    for metric in metrics:
        try:
            fig = plot_leaderboard(results, metric)
        except ValueError:
            continue
        path = folder / f"leaderboard-{metric}.png"
        fig.savefig(path, dpi=200)
        plt.close(fig)
        written.append(path)
        for axis in axes:
            values = {r.axes.get(axis) for r in results if axis in r.axes}
            if len(values) < 2:
                continue
            fig = plot_axis(results, metric, axis)
            path = folder / f"{metric}-vs-{axis}.png"
            fig.savefig(path, dpi=200)
            plt.close(fig)
            written.append(path)
    built: dict[str, object] = {}

    def build(config_json: str):
        """The toy a stored config describes, built once per report (trained toys take seconds)."""
        if config_json not in built:
            built[config_json] = toys.from_config(config_from_json(json.loads(config_json)))
        return built[config_json]

    if any(r.task == "circuits" for r in results):
        for fmt, ext in (("markdown", "md"), ("csv", "csv")):
            try:
                text = catalog(results, fmt=fmt)
            except ValueError:
                break
            path = folder / f"catalog.{ext}"
            path.write_text(text)
            written.append(path)
    if store is not None:
        written += _diagnostics(results, store, folder, build)
        written += _circuit_figures(results, store, folder, build)
        written += _connectome_figures(results, store, folder, build)
    with_phase = [name for name, suite in SUITES.items() if "phase_diagram" in suite.figures]
    written += write_geometry_figures(results, folder, build=build, phase_diagrams=with_phase)
    return written
