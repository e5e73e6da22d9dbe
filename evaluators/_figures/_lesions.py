"""The lesion census figure: how many components are lethal, task-specific, partial, redundant or
silent (the histogram of Jonas & Kording 2017), beside the distribution of single-lesion deficits."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from planted.evaluators._figures._common import axes, figure, lowest_seeds, save, stored_arrays, text

_COLOURS = {"lethal": "#C44E52", "task-specific": "#DD8452", "partial": "#CCB974", "redundant": "#8172B3",
            "silent": "#8C8C8C"}


def plot_lesion_census(census, *, ax=None, title: str = ""):
    """Bars of the census labels (``LesionCensus.counts``), each annotated with its count."""
    return census_panel(census.labels, census.deficit(census.label_kind), census.label_kind, ax=axes(ax, (4.0, 2.6)),
                        title=title)


def census_panel(labels: Sequence[str], deficits: np.ndarray, kind: str, *, ax, title: str = ""):
    """The census bars from each node's label and its single deficits (n_nodes, n_tasks)."""
    from planted.groundtruth import LESION_LABELS

    labels = [str(label) for label in labels]
    counts = [labels.count(name) for name in LESION_LABELS]
    bars = ax.bar(range(len(counts)), counts, color=[_COLOURS[n] for n in LESION_LABELS])
    for bar, count in zip(bars, counts):
        ax.annotate(str(count), (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                    fontsize=8)
    ax.set_xticks(range(len(counts)), LESION_LABELS, fontsize=7, rotation=20)
    ax.set_ylabel("nodes")
    worst = np.asarray(deficits).max(axis=1)
    ax.set_title(title or f"{kind} lesions of {worst.size} nodes (median worst deficit {np.median(worst):.2f})",
                 fontsize=9)
    return ax


def lesions_figure_data(toy) -> dict[str, np.ndarray]:
    """Each node's census label and single zero-lesion deficit per task."""
    from planted.evaluators.lesions import census_of

    census = census_of(toy)
    return {"labels": np.array(census.labels), "deficits": census.deficit(census.label_kind).astype(np.float32),
            "kind": np.array(census.label_kind)}


def lesions_figures(results: Sequence, store, folder: Path) -> list[Path]:
    """Per toy (lowest seed): the census histogram beside the histogram of the worst single-lesion
    deficit of each node (log counts: most lesions cost nothing)."""
    written: list[Path] = []
    if store is None:
        return written
    for suite, toy, seed, cells in lowest_seeds(results):
        d = stored_arrays(store, cells[0])
        if "labels" not in d:
            continue
        fig = figure((7.0, 2.8))
        left, right = fig.subplots(1, 2)
        census_panel(d["labels"], d["deficits"], text(d["kind"]), ax=left, title=f"{suite}: {toy} (seed {seed})")
        worst = d["deficits"].max(axis=1)
        right.hist(worst, bins=np.linspace(min(0.0, worst.min()), max(0.5, worst.max()), 26), color="0.35")
        right.set_yscale("log")
        right.set_xlabel("worst accuracy drop over the tasks")
        right.set_ylabel("nodes")
        right.set_title("single-lesion deficits", fontsize=9)
        save(fig, folder / f"lesions-{suite}-{toy}.png", written)
    return written
