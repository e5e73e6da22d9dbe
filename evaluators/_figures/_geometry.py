"""Figures of learned geometry (Elhage et al. 2022, "Toy Models of Superposition"): feature
directions, W^T W, the D* curve and the phase diagram.

Each public function takes a toy (or a sweep, or a ``toys.PhaseDiagram``), draws on a given
matplotlib Axes or a new figure, and returns the Figure, sized for a paper column. The
``*_panel`` functions draw the same from arrays, which is how a report draws them from the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from planted.evaluators._figures._common import axes, figure, lowest_seeds, save, stored_arrays, text
from planted.evaluators.store import suite_key

# Dimensionalities that features settle at (Elhage et al. 2022, "Feature Dimensionality"):
# tetrahedra 3/4, triangles 2/3, antipodal pairs 1/2, pentagons 2/5, square antiprisms 3/8.
STICKY_FRACTIONS = (1.0, 3 / 4, 2 / 3, 1 / 2, 2 / 5, 3 / 8)
_PHASE_COLOURS = ("#d9d9d9", "#4a7fb5", "#d0543f")


def plot_directions(toy, *, ax=None, title: str = ""):
    """Each feature's embedding W_i of a ``SuperpositionToy`` as an arrow in its 2-D hidden space,
    coloured by importance rank (dark: most important); returns the Figure."""
    return directions_panel(toy.weights, toy.config.importances(), toy.config.sparsity,
                            ax=axes(ax, (2.4, 2.4)), title=title)


def directions_panel(weights: np.ndarray, importances: np.ndarray, sparsity: float, *, ax, title: str = ""):
    """``plot_directions`` from W (2, n_features) and the importances (n_features,)."""
    import matplotlib

    w = np.asarray(weights, np.float64)
    if w.shape[0] != 2:
        raise ValueError(f"plot_directions draws 2-D hidden spaces; this toy has n_hidden={w.shape[0]}")
    rank = np.argsort(np.argsort(-np.asarray(importances), kind="stable"))
    cmap = matplotlib.colormaps["viridis"]
    for i in range(w.shape[1]):
        colour = cmap(0.85 * rank[i] / max(w.shape[1] - 1, 1))
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
    ax.set_title(title or f"n={w.shape[1]}, m=2, sparsity {sparsity:g}", fontsize=8)
    return ax.figure


def plot_gram(toy, *, ax=None, title: str = ""):
    """The heatmap of W^T W (features x features) of a ``SuperpositionToy``: the diagonal is each
    feature's squared norm, off-diagonal entries its interference with the others. The bias is
    drawn as a last column. Returns the Figure."""
    return gram_panel(toy.weights, toy.bias, toy.config.sparsity, ax=axes(ax, (2.8, 2.5)), title=title)


def gram_panel(weights: np.ndarray, bias: np.ndarray, sparsity: float, *, ax, title: str = ""):
    """``plot_gram`` from W (n_hidden, n_features) and b (n_features,)."""
    import matplotlib.ticker

    w = np.asarray(weights, np.float64)
    gram = w.T @ w
    lim = max(1.0, float(np.abs(gram).max()))
    n = gram.shape[0]
    image = ax.imshow(np.column_stack([gram, np.asarray(bias)]), cmap="RdBu_r", vmin=-lim, vmax=lim,
                      interpolation="nearest", aspect="auto")
    ax.axvline(n - 0.5, color="k", lw=0.6)
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xticks([n])
    ax.set_xticklabels(["b"], fontsize=6)
    ax.tick_params(labelsize=6)
    ax.set_ylabel("feature", fontsize=7)
    ax.set_title(title or f"W\u1d40W, sparsity {sparsity:g}", fontsize=8)
    ax.figure.colorbar(image, ax=ax, shrink=0.8)
    return ax.figure


def plot_dimensionality(sweep: Sequence, *, ax=None, title: str = ""):
    """The D* curve of a sparsity sweep of ``SuperpositionToy``s: dimensions per feature against
    1/(1 - sparsity), with each represented feature's dimensionality D_i as a dot and the sticky
    fractions as lines. Returns the Figure."""
    if len(sweep) < 2:
        raise ValueError(f"plot_dimensionality needs a sweep of at least 2 toys, got {len(sweep)}")
    points = [(t.config.sparsity, t.truth.dimensionality[t.truth.represented], t.truth.dimensions_per_feature)
              for t in sweep]
    first = sweep[0].config
    return dimensionality_panel(points, first.n_features, first.n_hidden, ax=axes(ax, (3.4, 2.4)), title=title)


def dimensionality_panel(points: Sequence[tuple[float, np.ndarray, float]], n_features: int, n_hidden: int, *, ax,
                         title: str = ""):
    """``plot_dimensionality`` from (sparsity, D_i of the represented features, D*) per toy."""
    import matplotlib.ticker

    order = sorted(points, key=lambda p: p[0])
    x = np.array([1 / (1 - p[0]) for p in order])
    for frac in STICKY_FRACTIONS:
        ax.axhline(frac, color="0.85", lw=0.6, zorder=0)
    for xi, (_, d, _) in zip(x, order):
        ax.plot(np.full(d.size, xi), d, ".", ms=2, color="tab:blue", alpha=0.3)
    ax.plot(x, [p[2] for p in order], "-", color="k", lw=1.2, label="D* = m / |W|_F\u00b2")
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
    ax.set_title(title or f"n={n_features}, m={n_hidden}", fontsize=8)
    return ax.figure


def plot_phase_diagram(diagram, *, ax=None, title: str = ""):
    """The phase of the last feature of a ``toys.PhaseDiagram`` over feature density (x) and its
    relative importance (y); returns the Figure."""
    from planted.toys import PHASES

    first = diagram.toys[0].config
    return phase_panel(diagram.densities, diagram.relative_importances, diagram.phase, PHASES, first.n_features,
                       first.n_hidden, ax=axes(ax, (3.2, 2.6)), title=title)


def phase_panel(densities: np.ndarray, relative_importances: np.ndarray, phase: np.ndarray, phases: Sequence[str],
                n_features: int, n_hidden: int, *, ax, title: str = ""):
    """``plot_phase_diagram`` from densities (k,), relative importances (l,), phase (l, k) int
    indexing ``phases``."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Rectangle

    colours = ListedColormap(_PHASE_COLOURS)

    def edges(v):
        lv = np.log10(np.asarray(v, np.float64))
        mid = (lv[1:] + lv[:-1]) / 2 if lv.size > 1 else np.array([])
        step = (lv[-1] - lv[0]) / max(lv.size - 1, 1) if lv.size > 1 else 0.5
        return 10 ** np.concatenate([[lv[0] - step / 2], mid, [lv[-1] + step / 2]])

    ax.pcolormesh(edges(densities), edges(relative_importances), phase, cmap=colours, vmin=-0.5, vmax=2.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("feature density 1 - S", fontsize=8)
    ax.set_ylabel("relative importance", fontsize=8)
    ax.tick_params(labelsize=6)
    handles = [Rectangle((0, 0), 1, 1, color=colours(i)) for i in range(3)]
    ax.legend(handles, list(phases), fontsize=6, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(title or f"last feature, n={n_features}, m={n_hidden}", fontsize=8)
    return ax.figure


def geometry_figure_data(toy) -> dict[str, np.ndarray]:
    """What the geometry figures of a ``SuperpositionToy`` draw: ``weights`` W (n_hidden,
    n_features), ``bias`` and ``importances`` (n_features,), ``dimensionality`` D_i and
    ``represented`` (n_features,), and the 0-d ``sparsity`` and ``dimensions_per_feature`` D*."""
    truth = toy.truth
    return {
        "weights": np.asarray(toy.weights, np.float32),
        "bias": np.asarray(toy.bias, np.float32),
        "importances": np.asarray(toy.config.importances(), np.float32),
        "dimensionality": np.asarray(truth.dimensionality, np.float32),
        "represented": np.asarray(truth.represented, bool),
        "sparsity": np.asarray(toy.config.sparsity, np.float64),
        "dimensions_per_feature": np.asarray(truth.dimensions_per_feature, np.float64),
    }


def phase_diagram_data(diagram) -> dict[str, np.ndarray]:
    """A ``toys.PhaseDiagram`` as the arrays ``geometry_figures`` draws (its toys left out)."""
    from planted.toys import PHASES

    first = diagram.toys[0].config
    return {
        "densities": np.asarray(diagram.densities, np.float64),
        "relative_importances": np.asarray(diagram.relative_importances, np.float64),
        "phase": np.asarray(diagram.phase, np.int8),
        "norms": np.asarray(diagram.norms, np.float32),
        "dimensionality": np.asarray(diagram.dimensionality, np.float32),
        "phases": np.asarray(PHASES),
        "n_features": np.asarray(first.n_features, np.int64),
        "n_hidden": np.asarray(first.n_hidden, np.int64),
    }


def geometry_figures(results: Sequence, store, folder: Path) -> list[Path]:
    """PNGs of the learned geometry of every superposition toy in ``results`` whose arrays the
    store keeps, on its lowest seed.

    Per toy: ``directions-{suite}-{toy}.png`` (when n_hidden is 2) and ``gram-{suite}-{toy}.png``;
    per suite whose superposition toys share (n, m) at 3 or more sparsities:
    ``dimensionality-{suite}.png``; per suite whose run stored a phase diagram (a suite listing
    ``figures=("phase_diagram",)``): ``phase-diagram-{suite}.png``. Nothing is built or trained.
    """
    written: list[Path] = []
    by_suite: dict[str, list[dict[str, np.ndarray]]] = {}
    for suite, name, seed, cells in lowest_seeds(results):
        arrays = stored_arrays(store, cells[0])
        if "weights" not in arrays:
            continue
        by_suite.setdefault(suite, []).append(arrays)
        w, sparsity = arrays["weights"], float(arrays["sparsity"])
        if w.shape[0] == 2:
            fig = figure((2.4, 2.4))
            directions_panel(w, arrays["importances"], sparsity, ax=fig.subplots(), title=f"{name} (seed {seed})")
            save(fig, folder / f"directions-{suite}-{name}.png", written, dpi=200)
        fig = figure((2.8, 2.5))
        gram_panel(w, arrays["bias"], sparsity, ax=fig.subplots(), title=f"{name}: W\u1d40W")
        save(fig, folder / f"gram-{suite}-{name}.png", written, dpi=200)
    for suite, stored in sorted(by_suite.items()):
        shapes: dict[tuple[int, int], list[dict[str, np.ndarray]]] = {}
        for arrays in stored:
            shapes.setdefault(tuple(arrays["weights"].shape[::-1]), []).append(arrays)
        sweeps = [s for s in shapes.values() if len({float(a["sparsity"]) for a in s}) >= 3]
        if sweeps:
            sweep = max(sweeps, key=len)
            points = [(float(a["sparsity"]), a["dimensionality"][a["represented"]], float(a["dimensions_per_feature"]))
                      for a in sweep]
            n_hidden, n_features = sweep[0]["weights"].shape
            fig = figure((3.4, 2.4))
            dimensionality_panel(points, n_features, n_hidden, ax=fig.subplots())
            save(fig, folder / f"dimensionality-{suite}.png", written, dpi=200)
    if store is None:
        return written
    for suite, version, task in sorted({(r.suite, r.suite_version, r.task) for r in results}):
        d = store.toy_arrays(suite_key(suite, version, "phase_diagram"), task=task)
        if "phase" in d:
            fig = figure((3.2, 2.6))
            phase_panel(d["densities"], d["relative_importances"], d["phase"], [text(p) for p in d["phases"]],
                        int(d["n_features"]), int(d["n_hidden"]), ax=fig.subplots())
            save(fig, folder / f"phase-diagram-{suite}.png", written, dpi=200)
    return written
