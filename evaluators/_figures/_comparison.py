"""The comparison task's figure: each measure's similarity of every pair against the fraction of
planted features the pair shares (the figure a paper on similarity measures shows)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from planted.evaluators._figures._common import axes, figure, lowest_seeds, method_colours, save, stored_arrays


def comparison_figure_data(problem) -> dict[str, np.ndarray]:
    """The planted shared fraction of every pair of the problem's representations (k, k)."""
    from planted.evaluators.comparison import shared_fractions

    return {"shared": shared_fractions(problem).astype(np.float32)}


def plot_similarity(shared: np.ndarray, similarity: np.ndarray, *, ax=None, label: str = "", colour: str | None = None):
    """Scatter one measure's similarity of each pair (upper triangle) against its shared fraction."""
    ax = axes(ax, (3.2, 2.8))
    i, j = np.triu_indices(shared.shape[0], 1)
    ax.scatter(shared[i, j], similarity[i, j], s=14, alpha=0.8, label=label, color=colour)
    ax.set_xlabel("planted shared fraction")
    ax.set_ylabel("similarity")
    return ax


def comparison_figures(results: Sequence, store, folder: Path) -> list[Path]:
    """Per problem (its lowest seed): one panel per measure, similarity against shared fraction."""
    written: list[Path] = []
    if store is None:
        return written
    for suite, toy, seed, cells in lowest_seeds(results):
        shared = stored_arrays(store, cells[0]).get("shared")
        panels = [(c, store.directions(c.key)) for c in cells]
        panels = [(c, v) for c, v in panels if v is not None and shared is not None and v.shape == shared.shape]
        if not panels:
            continue
        colours = method_colours(c.method for c, _ in panels)
        fig = figure((2.6 * len(panels), 2.6))
        for n, (cell, values) in enumerate(panels):
            ax = fig.add_subplot(1, len(panels), n + 1)
            plot_similarity(shared, values, ax=ax, colour=colours[cell.method])
            rho = cell.metrics.get("rank_correlation")
            ax.set_title(f"{cell.method}" + ("" if rho is None else f"\nSpearman {rho:.2f}"), fontsize=8)
            if n:
                ax.set_ylabel("")
        fig.suptitle(f"{suite}: {toy} (seed {seed})", fontsize=9)
        save(fig, folder / f"comparison-{suite}-{toy}.png", written)
    return written
