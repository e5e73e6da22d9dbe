"""Reports from stored results: leaderboards with bootstrap confidence intervals, tables, figures.

Tables come as text, Markdown, CSV, LaTeX or JSON from one summary. Figures come from each task's
``figures`` hook (``evaluators.Task``), drawn from what the store keeps: a report reads the store
and never builds or trains a toy. Nothing here imports matplotlib; the figure code lives in
``evaluators._figures`` and imports it when it draws.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from planted import __version__
from planted.evaluators._figures import leaderboard_figures
from planted.evaluators._files import write_text
from planted.evaluators.store import CellResult
from planted.evaluators.tasks import TASKS

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
    """One ``Summary`` per (task, toy, method, metric) with at least one finite value.

    The mean is over toy seeds of each toy seed's mean over method seeds, and the interval
    resamples toy seeds: with method seeds of their own (``run(method_seeds=...)``) the runs of
    a method on one toy are not counted as independent toys."""
    groups: dict[tuple[str, str, str], list[CellResult]] = {}
    for r in results:
        groups.setdefault((r.task, r.toy, r.method), []).append(r)
    out = []
    for (task, toy, method), cells in groups.items():
        names = metrics or TASKS[task].metrics if task in TASKS else metrics or ()
        ok = [c for c in cells if c.status == "ok"]
        for m in names:
            by_seed = _by_toy_seed(ok, m)
            if not by_seed:
                continue
            values = [float(np.mean(v)) for v in by_seed.values()]
            lo, hi = bootstrap_ci(values)
            n = sum(len(v) for v in by_seed.values())
            out.append(Summary(task, toy, method, m, float(np.mean(values)), lo, hi, n, len(cells) - len(ok)))
    return out


def _by_toy_seed(cells: Sequence[CellResult], metric: str) -> dict[int, list[float]]:
    """{toy seed: finite values of ``metric`` over its method seeds}."""
    out: dict[int, list[float]] = {}
    for c in cells:
        v = c.metrics.get(metric)
        if isinstance(v, (int, float)) and math.isfinite(v):
            out.setdefault(c.seed, []).append(float(v))
    return out


@dataclasses.dataclass(frozen=True)
class Variance:
    """Where a metric's spread comes from, for one toy and method run on several toy seeds each
    with several method seeds: ``data`` the standard deviation across toy seeds of their means
    (toys drawn anew), ``method`` the root mean within-toy-seed variance (the method's own
    randomness on one toy)."""

    toy: str
    method: str
    metric: str
    toy_seeds: int
    method_seeds: int
    data: float
    method_sd: float


def variance(results: Sequence[CellResult], metric: str) -> list[Variance]:
    """``Variance`` per (toy, method) with at least 2 toy seeds of at least 2 method seeds each."""
    out = []
    for toy, method in sorted({(r.toy, r.method) for r in results}):
        by_seed = _by_toy_seed([r for r in results if (r.toy, r.method) == (toy, method) and r.status == "ok"], metric)
        full = {s: v for s, v in by_seed.items() if len(v) >= 2}
        if len(full) < 2:
            continue
        means = [np.mean(v) for v in full.values()]
        within = [np.var(v, ddof=1) for v in full.values()]
        out.append(Variance(toy, method, metric, len(full), min(len(v) for v in full.values()),
                            float(np.std(means, ddof=1)), float(np.sqrt(np.mean(within)))))
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


@dataclasses.dataclass(frozen=True)
class _Group:
    """The cells of one suite version, split into its grid and what was run beside it."""

    suite: str
    version: str
    cells: list  # the cells the table summarises: the grid's seeds (every method)
    extra_methods: frozenset  # methods run beside the suite's own
    other_seeds: list  # cells of seeds outside the grid, left out of the table


def _groups(results: Sequence[CellResult]) -> list[_Group]:
    """The results by (suite, version), in order. When the suite is a registered one at that
    version, its grid is known: cells of other seeds are set apart and methods outside it marked."""
    from planted.evaluators.suites import SUITES

    out = []
    for suite, version in sorted({(r.suite, r.suite_version) for r in results}):
        cells = [r for r in results if (r.suite, r.suite_version) == (suite, version)]
        declared = SUITES.get(suite)
        if declared is not None and declared.version == version.split("-private-")[0]:
            seeds = set(declared.seeds)
            extra = frozenset(r.method for r in cells) - {m.name for m in declared.methods}
            out.append(_Group(suite, version, [r for r in cells if r.seed in seeds], extra,
                              [r for r in cells if r.seed not in seeds]))
        else:
            out.append(_Group(suite, version, cells, frozenset(), []))
    return out


def _notes(group: _Group, n_seeds: int) -> list[str]:
    """What a table's reader must know: the interval, the grid, what was left out."""
    separate = any(r.key.method_seed != r.seed for r in group.cells)
    notes = ["mean ± half the 95% percentile-bootstrap interval over seeds (toy and method seeded together)"
             if not separate else "mean ± half the 95% percentile-bootstrap interval over toy seeds, each the mean "
             "over its method seeds"]
    if n_seeds < 5:
        notes.append(f"only {n_seeds} seed(s): intervals are rough (one seed has none); use 5 or more for a paper")
    if group.extra_methods:
        notes.append("* run beside the suite's grid (--add-method or --method): " + ", ".join(sorted(group.extra_methods)))
    if group.other_seeds:
        seeds = sorted({r.seed for r in group.other_seeds})
        notes.append(f"{len(group.other_seeds)} cell(s) of seeds {seeds}, outside the grid, are not in this table")
    return notes


def leaderboard(results: Sequence[CellResult], metrics: Sequence[str] | None = None, *, fmt: str = "text") -> str:
    """The leaderboard: per suite version, toy and method, each metric's mean and 95% bootstrap CI
    over seeds.

    ``fmt`` is one of "text", "markdown", "csv", "latex", "json". Each suite version gets its own
    table (its task's metrics); rows are sorted by toy, then by the task's headline metric (best
    first); failed cells are counted in the ``seeds`` column. For a registered suite whose version
    matches, the table is exactly its grid: cells of seeds outside it are left out and counted in
    a note, and methods run beside it are marked. JSON is one document:
    ``{"planted": version, "interval": ..., "suites": [{"suite", "version", "rows", ...}]}``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
    groups = _groups(results)
    if fmt == "json":
        return json.dumps({"planted": __version__, "interval": "95% percentile bootstrap of the mean over seeds",
                           "suites": [_json_group(g, metrics) for g in groups]}, indent=1)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        header = None
        for g in groups:
            names, rows = _rows(g.cells, metrics)
            if header is None:
                header = names
                w.writerow(["suite", "version", "toy", "method", "in_grid", "ok", "cells"]
                           + [f"{m}_{p}" for m in names for p in ("mean", "low", "high")])
            for (toy, method), (ok, total), sm in rows:
                vals = []
                for m in header:
                    s = sm.get(m)
                    vals += [f"{s.mean:.6g}", f"{s.low:.6g}", f"{s.high:.6g}"] if s else ["", "", ""]
                w.writerow([g.suite, g.version, toy, method, int(method not in g.extra_methods), ok, total] + vals)
        return buf.getvalue()
    parts = [_table(g, metrics, fmt, heading=len(groups) > 1) for g in groups]
    text = "\n".join(parts)
    if fmt == "text":
        failed = [r for r in results if r.status != "ok"]
        text += "".join(f"\nFAILED {r.toy} {r.method} seed {r.seed}: {r.error}" for r in failed)
    return text


def _json_group(group: _Group, metrics: Sequence[str] | None) -> dict:
    names, rows = _rows(group.cells, metrics)
    seeds = sorted({r.seed for r in group.cells})
    return {
        "suite": group.suite, "version": group.version, "tasks": sorted({r.task for r in group.cells}), "seeds": seeds,
        "notes": _notes(group, len(seeds)),
        "rows": [{"toy": toy, "method": method, "in_grid": method not in group.extra_methods, "ok": ok, "cells": total,
                  **{m: ({"mean": s.mean, "low": s.low, "high": s.high, "n": s.n} if (s := sm.get(m)) else None)
                     for m in names}} for (toy, method), (ok, total), sm in rows],
        "failed": [{"toy": r.toy, "method": r.method, "seed": r.seed, "error": r.error}
                   for r in group.cells if r.status != "ok"],
    }


def _table(group: _Group, metrics: Sequence[str] | None, fmt: str, *, heading: bool) -> str:
    names, rows = _rows(group.cells, metrics)
    n_seeds = len({r.seed for r in group.cells})
    notes = _notes(group, n_seeds)

    def cell(s: Summary | None, latex: bool = False) -> str:
        if s is None:
            return "-"
        half = (s.high - s.low) / 2
        return f"{s.mean:.3f} $\\pm$ {half:.3f}" if latex else f"{s.mean:.3f} ± {half:.3f}"

    header = ["toy", "method", "seeds", *names]
    table = [[toy, method + ("*" if method in group.extra_methods else ""), f"{ok}/{total}",
              *[cell(sm.get(m), fmt == "latex") for m in names]]
             for (toy, method), (ok, total), sm in rows]
    title = f"suite {group.suite} v{group.version}"
    if fmt == "markdown":
        lines = ([f"## {title}", ""] if heading else [])
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in table]
        return "\n".join(lines) + "\n\n" + "".join(f"{n[0].upper()}{n[1:]}.\n" for n in notes)
    if fmt == "latex":
        esc = lambda s: s.replace("_", r"\_")  # noqa: E731
        lines = [f"% {title}"] if heading else []
        lines += [r"\begin{tabular}{ll" + "c" * (len(header) - 2) + "}", r"\toprule",
                  " & ".join(esc(h) for h in header) + r" \\", r"\midrule"]
        lines += [" & ".join(esc(x) if i < 3 else x for i, x in enumerate(r)) + r" \\" for r in table]
        lines += [r"\bottomrule", r"\end{tabular}"] + [f"% {n}" for n in notes]
        return "\n".join(lines) + "\n"
    widths = [max(len(str(x)) for x in col) for col in zip(header, *table)]
    lines = [f"{title}: {len(group.cells)} cells"] if heading else []
    lines += ["  ".join(str(x).ljust(w) for x, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(x).ljust(w) for x, w in zip(r, widths)) for r in table]
    lines += [f"({n})" for n in notes]
    return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class Paired:
    """Method ``a`` against ``b`` on one toy over the seeds both ran: the mean of a - b with a 95%
    paired-bootstrap interval, and the two-sided Wilcoxon signed-rank p-value (None below 5 seeds,
    where it cannot reach 0.05, or when every difference is 0)."""

    toy: str
    metric: str
    a: str
    b: str
    n: int
    mean: float
    low: float
    high: float
    p_value: float | None


def paired(results: Sequence[CellResult], metric: str, a: str, b: str) -> list[Paired]:
    """``a`` against ``b`` per toy on ``metric``, over the seeds where both have a finite value.

    The cells of the two methods on a seed share the toy (same config and seed), so the
    difference removes the toy's own variation: the comparison a reviewer asks for, rather than
    two overlapping intervals.
    """
    values: dict[tuple[str, str], dict[int, float]] = {}
    for toy, method in {(r.toy, r.method) for r in results if r.method in (a, b)}:
        cells = [r for r in results if (r.toy, r.method) == (toy, method) and r.status == "ok"]
        values[(toy, method)] = {s: float(np.mean(v)) for s, v in _by_toy_seed(cells, metric).items()}
    out = []
    for toy in sorted({t for t, _ in values}):
        left, right = values.get((toy, a), {}), values.get((toy, b), {})
        seeds = sorted(set(left) & set(right))
        if not seeds:
            continue
        diff = np.array([left[s] - right[s] for s in seeds])
        low, high = bootstrap_ci(diff)
        p = None
        if diff.size >= 5 and np.any(diff != 0):
            from scipy.stats import wilcoxon

            p = float(wilcoxon(diff).pvalue)
        out.append(Paired(toy, metric, a, b, int(diff.size), float(diff.mean()), low, high, p))
    return out


def catalog(results: Sequence[CellResult], metric: str = "edge_auroc", *, fmt: str = "markdown") -> str:
    """The failure-mode catalog of a circuits suite: methods (rows) x toys (columns, the plain toy
    first), each cell the mean of ``metric`` over seeds with its 95% bootstrap interval."""
    if fmt not in ("markdown", "csv"):
        raise ValueError(f"fmt must be 'markdown' or 'csv', got {fmt!r}")
    summaries = {(s.toy, s.method): s for s in summarize(results, [metric])}
    if not summaries:
        raise ValueError(f"no results carry the metric {metric!r}")
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


def write_report(results: Sequence[CellResult], out: str | Path, *, store=None) -> list[Path]:
    """Write ``report.html`` (one self-contained page: every suite's leaderboard with its metrics
    explained, chance levels, paired comparisons, the catalog, failures and every figure), the
    leaderboard as Markdown, CSV, LaTeX and JSON, and the figures as PNG, SVG and PDF; return the
    paths.

    Figures: leaderboard bars with CIs per metric and each metric against each difficulty axis
    per method; then, for each task present in ``results`` (and in ``TASKS``), what its
    ``figures`` hook writes from the ``store`` the results came from (built-in tasks: cosine
    heatmaps per toy and the learned geometry of toy models of superposition, with the phase
    diagram a ``tms`` run stored; the failure-mode catalog and each circuit toy's planted circuit
    beside the methods' top edges; a connectome's planted adjacency, ROC curves and activity).
    Without a store, figures that need stored arrays are skipped. Nothing is built or trained.
    """
    if not results:
        raise ValueError("there are no results to report; run `planted bench` first")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt, ext in (("markdown", "md"), ("csv", "csv"), ("latex", "tex"), ("json", "json")):
        written.append(write_text(folder / f"leaderboard.{ext}", leaderboard(results, fmt=fmt)))
    tasks = sorted({r.task for r in results} & set(TASKS))
    metrics = sorted({m for t in tasks for m in TASKS[t].metrics})
    written += leaderboard_figures(results, metrics, folder)
    for name in tasks:
        written += TASKS[name].figures([r for r in results if r.task == name], store, folder)
    from planted.evaluators._html import html_page

    page = html_page(results, written, store_name=str(getattr(store, "path", "") or ""))
    written.append(write_text(folder / "report.html", page))
    return written

__all__ = [
    "FORMATS",
    "Paired",
    "Summary",
    "bootstrap_ci",
    "catalog",
    "leaderboard",
    "paired",
    "summarize",
    "variance",
    "Variance",
    "write_report",
]
