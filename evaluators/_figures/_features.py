"""Figures of the features task: learned vs true directions, and the geometry of superposition toys."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from planted.evaluators._figures._common import axes, figure, lowest_seeds, save, stored_arrays, stored_panels
from planted.evaluators._figures._geometry import geometry_figure_data, geometry_figures
from planted.groundtruth import FeatureTruth, SuperpositionToy

# True features a cosine heatmap shows (the most frequent represented ones); the store keeps these.
COSINE_FEATURES = 40


def _most_frequent(truth: FeatureTruth, max_features: int) -> np.ndarray:
    rep = np.flatnonzero(truth.represented)
    return rep[np.argsort(-truth.firing_probabilities[rep], kind="stable")][:max_features]


def plot_cosines(directions: np.ndarray, truth: FeatureTruth, *, max_features: int = COSINE_FEATURES, ax=None,
                 title: str = ""):
    """Learned vs true directions: |cosine| of the most frequent true features with their matched latents.

    Rows are the ``max_features`` represented features that fire most often; columns the latents
    a one-to-one matching pairs with them, in row order, so a perfect dictionary shows a bright
    diagonal and absorption or splitting show up as off-diagonal mass.

    Parameters
    ----------
    directions : (k, d_model) array
        A dictionary's directions (any norm; zero rows stay zero).
    truth : FeatureTruth
    max_features : int
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    rows = truth.directions[_most_frequent(truth, max_features)]
    return cosine_panel(directions, rows, ax=axes(ax, (3.0, 2.8)), title=title)


def cosine_panel(directions: np.ndarray, true_directions: np.ndarray, *, ax, title: str = ""):
    """``plot_cosines`` from the true directions already chosen and ordered (rows, top to bottom)."""
    latents = np.asarray(directions, np.float64)
    norms = np.linalg.norm(latents, axis=1, keepdims=True)
    latents = np.where(norms > 0, latents / np.where(norms > 0, norms, 1), 0)
    sims = np.abs(np.asarray(true_directions, np.float64) @ latents.T)
    rows, cols = linear_sum_assignment(sims, maximize=True)
    order = cols[np.argsort(rows)]
    image = ax.imshow(sims[:, order], vmin=0, vmax=1, cmap="viridis", aspect="auto", interpolation="nearest")
    ax.set_xlabel("matched latent", fontsize=8)
    ax.set_ylabel("true feature (most frequent first)", fontsize=8)
    ax.tick_params(labelsize=6)
    if title:
        ax.set_title(title, fontsize=8)
    ax.figure.colorbar(image, ax=ax, shrink=0.8).set_label("|cos|", fontsize=7)
    return ax.figure


def features_figure_data(toy) -> dict[str, np.ndarray]:
    """The truth the features figures draw: ``cosine_truth`` (<= 40, d_model) float32, the most
    frequent represented features' directions in row order; for a toy model of superposition
    also its W, b, importances, sparsity and dimensionality (``geometry_figure_data``)."""
    truth = toy.truth
    out = {"cosine_truth": np.asarray(truth.directions[_most_frequent(truth, COSINE_FEATURES)], np.float32)}
    if isinstance(toy, SuperpositionToy):
        out.update(geometry_figure_data(toy))
    return out


def features_figures(results: Sequence, store, folder: Path) -> list[Path]:
    """Per toy (lowest seed) with stored truth and predictions: ``cosines-{suite}-{toy}.png``, a
    cosine heatmap per method; then the geometry of superposition toys (``geometry_figures``)."""
    written: list[Path] = []
    for suite, toy, seed, cells in lowest_seeds(results):
        truth = stored_arrays(store, cells[0]).get("cosine_truth")
        panels = stored_panels(cells, store)
        if truth is None or not truth.shape[0] or not panels:
            continue
        cols = min(4, len(panels))
        rows = -(-len(panels) // cols)
        fig = figure((2.3 * cols, 2.2 * rows + 0.5))
        grid = fig.subplots(rows, cols, squeeze=False).ravel()
        for ax, (c, directions) in zip(grid, panels):
            cosine_panel(directions, truth, ax=ax, title=c.method)
        for ax in grid[len(panels):]:
            ax.set_axis_off()
        fig.suptitle(f"{suite} / {toy}, seed {seed}: |cos| of the {truth.shape[0]} most frequent true features (rows) "
                     "with their matched latents", fontsize=8)
        save(fig, folder / f"cosines-{suite}-{toy}.png", written)
    return written + geometry_figures(results, store, folder)
