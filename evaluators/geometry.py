"""Figures of learned geometry (Elhage et al. 2022): feature directions, W^T W, the D* curve, phase diagrams.

Each function draws on a given matplotlib Axes (or a new figure) and returns the Figure, sized for
a paper column. ``write_geometry_figures`` draws them all for the superposition toys of a suite.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
from matplotlib.colors import ListedColormap

from planted import toys
from planted.groundtruth import SuperpositionToy

# Dimensionalities that features settle at (Elhage et al. 2022, "Feature Dimensionality"):
# tetrahedra 3/4, triangles 2/3, antipodal pairs 1/2, pentagons 2/5, square antiprisms 3/8.
STICKY_FRACTIONS = (1.0, 3 / 4, 2 / 3, 1 / 2, 2 / 5, 3 / 8)


def _axes(ax, size):
    if ax is None:
        _, ax = plt.subplots(figsize=size, constrained_layout=True)
    return ax


def plot_directions(toy: SuperpositionToy, *, ax=None, title: str = ""):
    """Each feature's embedding W_i as an arrow in the 2-D hidden space, coloured by importance rank
    (dark: most important)."""
    w = np.asarray(toy.weights, np.float64)
    if w.shape[0] != 2:
        raise ValueError(f"plot_directions draws 2-D hidden spaces; this toy has n_hidden={w.shape[0]}")
    ax = _axes(ax, (2.4, 2.4))
    rank = np.argsort(np.argsort(-toy.config.importances(), kind="stable"))
    for i in range(w.shape[1]):
        colour = plt.cm.viridis(0.85 * rank[i] / max(w.shape[1] - 1, 1))
        ax.annotate("", xy=(w[0, i], w[1, i]), xytext=(0, 0),
                    arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 1.2})
        ax.plot([w[0, i]], [w[1, i]], "o", ms=3, color=colour)
    lim = max(1.2, float(np.abs(w).max()) * 1.15)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.axhline(0, color="0.85", lw=0.5, zorder=0)
    ax.axvline(0, color="0.85", lw=0.5, zorder=0)
    ax.tick_params(labelsize=6)
    ax.set_title(title or f"n={w.shape[1]}, m=2, sparsity {toy.config.sparsity:g}", fontsize=8)
    return ax.figure


def plot_gram(toy: SuperpositionToy, *, ax=None, title: str = ""):
    """The heatmap of W^T W (features x features): the diagonal is each feature's squared norm,
    off-diagonal entries its interference with the others. The bias is drawn as a last column."""
    w = np.asarray(toy.weights, np.float64)
    gram = w.T @ w
    ax = _axes(ax, (2.8, 2.5))
    lim = max(1.0, float(np.abs(gram).max()))
    n = gram.shape[0]
    image = ax.imshow(np.column_stack([gram, np.asarray(toy.bias)]), cmap="RdBu_r", vmin=-lim, vmax=lim,
                      interpolation="nearest", aspect="auto")
    ax.axvline(n - 0.5, color="k", lw=0.6)
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xticks([n])
    ax.set_xticklabels(["b"], fontsize=6)
    ax.tick_params(labelsize=6)
    ax.set_ylabel("feature", fontsize=7)
    ax.set_title(title or f"W\u1d40W, sparsity {toy.config.sparsity:g}", fontsize=8)
    ax.figure.colorbar(image, ax=ax, shrink=0.8)
    return ax.figure


def plot_dimensionality(sweep: Sequence[SuperpositionToy], *, ax=None, title: str = ""):
    """The D* curve: dimensions per feature against 1/(1 - sparsity), with each represented
    feature's dimensionality D_i as a dot and the sticky fractions as lines."""
    if len(sweep) < 2:
        raise ValueError(f"plot_dimensionality needs a sweep of at least 2 toys, got {len(sweep)}")
    order = sorted(sweep, key=lambda t: t.config.sparsity)
    x = np.array([1 / (1 - t.config.sparsity) for t in order])
    ax = _axes(ax, (3.4, 2.4))
    for frac in STICKY_FRACTIONS:
        ax.axhline(frac, color="0.85", lw=0.6, zorder=0)
    for xi, t in zip(x, order):
        d = t.truth.dimensionality[t.truth.represented]
        ax.plot(np.full(d.size, xi), d, ".", ms=2, color="tab:blue", alpha=0.3)
    ax.plot(x, [t.truth.dimensions_per_feature for t in order], "-", color="k", lw=1.2, label="D* = m / |W|_F\u00b2")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.1)
    ax.set_yticks([0, *STICKY_FRACTIONS[:5]])
    ax.set_yticklabels(["0", "1", "3/4", "2/3", "1/2", "2/5"], fontsize=6)
    ax.text(1.01, 3 / 8, "3/8", transform=ax.get_yaxis_transform(), fontsize=6, va="center")
    ax.set_xticks([v for v in (1, 1.5, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000) if x.min() / 1.05 <= v <= x.max() * 1.05])
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("1 / (1 - sparsity)", fontsize=8)
    ax.set_ylabel("dimensions per feature", fontsize=8)
    ax.tick_params(labelsize=6)
    ax.legend(fontsize=6, frameon=False)
    first = order[0].config
    ax.set_title(title or f"n={first.n_features}, m={first.n_hidden}", fontsize=8)
    return ax.figure


_PHASE_COLOURS = ListedColormap(["#d9d9d9", "#4a7fb5", "#d0543f"])


def plot_phase_diagram(diagram: toys.PhaseDiagram, *, ax=None, title: str = ""):
    """The phase of the last feature over feature density (x) and its relative importance (y)."""
    ax = _axes(ax, (3.2, 2.6))
    dens, rel = diagram.densities, diagram.relative_importances

    def edges(v):
        lv = np.log10(v)
        mid = (lv[1:] + lv[:-1]) / 2 if lv.size > 1 else np.array([])
        step = (lv[-1] - lv[0]) / max(lv.size - 1, 1) if lv.size > 1 else 0.5
        return 10 ** np.concatenate([[lv[0] - step / 2], mid, [lv[-1] + step / 2]])

    ax.pcolormesh(edges(dens), edges(rel), diagram.phase, cmap=_PHASE_COLOURS, vmin=-0.5, vmax=2.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("feature density 1 - S", fontsize=8)
    ax.set_ylabel("relative importance", fontsize=8)
    ax.tick_params(labelsize=6)
    handles = [plt.Rectangle((0, 0), 1, 1, color=_PHASE_COLOURS(i)) for i in range(3)]
    ax.legend(handles, toys.PHASES, fontsize=6, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    first = diagram.toys[0].config
    ax.set_title(title or f"last feature, n={first.n_features}, m={first.n_hidden}", fontsize=8)
    return ax.figure


def write_geometry_figures(results, folder: Path, *, build, phase_diagrams: Sequence[str] = ()) -> list[Path]:
    """PNGs of the learned geometry of every superposition toy in ``results``, on its lowest seed.

    Per toy: ``directions-{suite}-{toy}.png`` (when n_hidden is 2) and ``gram-{suite}-{toy}.png``;
    per suite whose superposition toys share (n, m) at 3 or more sparsities:
    ``dimensionality-{suite}.png``; per suite named in ``phase_diagrams``:
    ``phase-diagram-{suite}.png`` (n=2, m=1, 12 x 12 grid, 5000 steps of 512). ``build(config_json)``
    returns the toy a stored config describes (the report caches them).
    """
    written: list[Path] = []
    lowest: dict[tuple[str, str], str] = {}
    seeds: dict[tuple[str, str], int] = {}
    for r in results:
        if r.status != "ok" or not r.config or json.loads(r.config).get("kind") != "superposition":
            continue
        key = (r.suite, r.toy)
        if key not in seeds or r.seed < seeds[key]:
            seeds[key], lowest[key] = r.seed, r.config

    def save(fig, name):
        path = folder / name
        fig.savefig(path, dpi=200)
        plt.close(fig)
        written.append(path)

    by_suite: dict[str, list[SuperpositionToy]] = {}
    for (suite, name), config in sorted(lowest.items()):
        toy = build(config)
        by_suite.setdefault(suite, []).append(toy)
        if toy.weights.shape[0] == 2:
            save(plot_directions(toy, title=f"{name} (seed {seeds[suite, name]})"), f"directions-{suite}-{name}.png")
        save(plot_gram(toy, title=f"{name}: W\u1d40W"), f"gram-{suite}-{name}.png")
    for suite, built in sorted(by_suite.items()):
        shapes: dict[tuple[int, int], list[SuperpositionToy]] = {}
        for toy in built:
            shapes.setdefault((toy.config.n_features, toy.config.n_hidden), []).append(toy)
        sweeps = [s for s in shapes.values() if len({t.config.sparsity for t in s}) >= 3]
        if sweeps:
            save(plot_dimensionality(max(sweeps, key=len)), f"dimensionality-{suite}.png")
    for suite in sorted(set(phase_diagrams) & {r.suite for r in results}):
        save(plot_phase_diagram(toys.phase_diagram(n_steps=5000, batch_size=512)), f"phase-diagram-{suite}.png")
    return written
