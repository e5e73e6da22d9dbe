"""The lesion census figure: how many components are lethal, task-specific, partial, redundant or
silent (the histogram of Jonas & Kording 2017), beside the distribution of single-lesion deficits."""

from __future__ import annotations

import numpy as np

from planted.evaluators._figures._common import axes

_COLOURS = {"lethal": "#C44E52", "task-specific": "#DD8452", "partial": "#CCB974", "redundant": "#8172B3",
            "silent": "#8C8C8C"}


def plot_lesion_census(census, *, ax=None, title: str = ""):
    """Bars of the census labels (``LesionCensus.counts``), each annotated with its count."""
    ax = axes(ax, (4.0, 2.6))
    counts = census.counts()
    names = list(counts)
    bars = ax.bar(range(len(names)), [counts[n] for n in names], color=[_COLOURS[n] for n in names])
    for bar, name in zip(bars, names):
        ax.annotate(str(counts[name]), (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                    va="bottom", fontsize=8)
    ax.set_xticks(range(len(names)), names, fontsize=8)
    ax.set_ylabel("nodes")
    worst = census.deficit(census.label_kind).max(axis=1)
    ax.set_title(title or f"{census.label_kind} lesions of {worst.size} nodes "
                 f"(median worst deficit {np.median(worst):.2f})", fontsize=9)
    return ax
