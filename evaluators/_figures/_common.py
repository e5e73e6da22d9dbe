"""What every figure module shares: a pyplot-free Figure, saving, and the stored panels of a task.

Figures written by a report are ``matplotlib.figure.Figure`` objects made without pyplot, so
writing a report neither changes nor needs an interactive backend, and leaves no open figures.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np


def axes(ax, size: tuple[float, float]):
    """``ax``, or the Axes of a new pyplot figure of ``size`` inches (for interactive use)."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=size, constrained_layout=True)
    return ax


def figure(size: tuple[float, float]):
    """A new Figure of ``size`` inches with constrained layout, not registered with pyplot."""
    from matplotlib.figure import Figure

    return Figure(figsize=size, layout="constrained")


# Each figure is written as PNG (for pages and slides) and as SVG and PDF (vector, for papers).
FORMATS = ("png", "svg", "pdf")


def save(fig, path: Path, written: list[Path], *, dpi: int = 150) -> None:
    """Write ``fig`` to ``path`` (PNG) and beside it as SVG and PDF, each atomically; record the paths."""
    from planted.evaluators._files import save_figure

    for fmt in FORMATS:
        written.append(save_figure(fig, Path(path).with_suffix(f".{fmt}"), dpi=dpi))


def method_colours(methods) -> dict[str, str]:
    """A colour per method, the same in every figure of a report (methods in sorted order)."""
    palette = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C", "#CCB974",
               "#64B5CD", "#1B9E77", "#D95F02", "#7570B3", "#E7298A", "#66A61E", "#E6AB02")
    return {m: palette[i % len(palette)] for i, m in enumerate(sorted(set(methods)))}


def lowest_seeds(results: Sequence) -> Iterator[tuple[str, str, int, list]]:
    """Per (suite, toy), sorted: the lowest seed with a finished cell and the ok cells of that
    seed's toy (one toy id), sorted by method."""
    by_toy: dict[tuple[str, str], list] = {}
    for r in results:
        if r.status == "ok":
            by_toy.setdefault((r.suite, r.toy), []).append(r)
    for (suite, toy), cells in sorted(by_toy.items()):
        seed = min(c.seed for c in cells)
        toy_id = min(c.toy_id for c in cells if c.seed == seed)
        yield suite, toy, seed, sorted((c for c in cells if c.toy_id == toy_id), key=lambda c: c.method)


def stored_arrays(store, cell) -> dict[str, np.ndarray]:
    """The truth arrays the store keeps for ``cell``'s toy and task ({} without a store)."""
    return {} if store is None else store.toy_arrays(cell.toy_id, task=cell.task)


def stored_panels(cells: Sequence, store) -> list[tuple[object, np.ndarray]]:
    """(cell, stored prediction array) of each cell whose prediction the store kept."""
    if store is None:
        return []
    panels = [(c, store.directions(c.key)) for c in cells]
    return [(c, array) for c, array in panels if array is not None]


def text(array: np.ndarray) -> str:
    """A stored 0-d (or 1-element) string array as a str."""
    return str(np.asarray(array).reshape(()))
