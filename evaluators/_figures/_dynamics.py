"""The dynamics task's figure: the formation timeline, each feature's true formation step beside
the step each method dates it at (the figure a paper on progress measures shows)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from planted.evaluators._figures._common import axes, figure, lowest_seeds, method_colours, save, stored_arrays


def dynamics_figure_data(toy) -> dict[str, np.ndarray]:
    """The true formation step of each component and the loss curve of the training record."""
    from planted.evaluators.dynamics import training_record

    record, truth, scored = training_record(toy)
    return {"formation": np.where(scored, truth, -1), "steps": record["steps"], "losses": record["losses"]}


def plot_formation(truth: np.ndarray, dates: dict[str, np.ndarray], *, last: int, ax=None, title: str = ""):
    """Each feature's true formation step (x) against the step each method dates it at (y), a
    "never" (-1) drawn beyond the end; the diagonal is a perfect method."""
    ax = axes(ax, (3.4, 3.2))
    beyond = 1.15 * last
    colours = method_colours(dates)
    shown = truth >= 0
    for method, steps in sorted(dates.items()):
        y = np.where(steps >= 0, steps, beyond)
        ax.scatter(truth[shown], y[shown], s=14, alpha=0.8, color=colours[method], label=method)
    ax.plot([0, last], [0, last], color="0.6", lw=0.8, ls="--")
    ax.axhline(beyond, color="0.85", lw=0.6)
    ax.set_xlabel("true formation step")
    ax.set_ylabel("dated at (top line: never)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6, frameon=False)
    return ax


def dynamics_figures(results: Sequence, store, folder: Path) -> list[Path]:
    """Per toy (lowest seed): the loss curve with the true formation steps marked, beside the
    formation timeline of every method that dates features."""
    written: list[Path] = []
    if store is None:
        return written
    for suite, toy, seed, cells in lowest_seeds(results):
        d = stored_arrays(store, cells[0])
        if "formation" not in d:
            continue
        dates = {c.method: store.directions(c.key) for c in cells}
        dates = {m: v.astype(np.int64) for m, v in dates.items() if v is not None and v.shape == d["formation"].shape}
        fig = figure((7.0, 3.0))
        left, right = fig.subplots(1, 2)
        left.plot(d["steps"], d["losses"], color="0.2", lw=1)
        for step in np.unique(d["formation"][d["formation"] > 0]):
            left.axvline(step, color="#C44E52", lw=0.5, alpha=0.6)
        left.set_yscale("log")
        left.set_xlabel("step")
        left.set_ylabel("loss (red: a feature formed)")
        left.set_title(f"{suite}: {toy} (seed {seed})", fontsize=9)
        plot_formation(d["formation"], dates, last=int(d["steps"][-1]), ax=right, title="formation timeline")
        save(fig, folder / f"dynamics-{suite}-{toy}.png", written)
    return written
