"""Figures of learned geometry (Elhage et al. 2022, "Toy Models of Superposition"): feature
directions, W^T W, the D* curve of a sparsity sweep, phase diagrams.

Each function draws a ``SuperpositionToy`` (a sweep of them, or a ``toys.PhaseDiagram``) on a
given matplotlib Axes, or on a new figure, and returns the Figure, sized for a paper column.
matplotlib is imported when a function draws, not when this module is imported. (The figure code
lives in ``evaluators._figures``; this is its public face.)
"""

from planted.evaluators._figures import (
    STICKY_FRACTIONS,
    plot_dimensionality,
    plot_directions,
    plot_gram,
    plot_phase_diagram,
)

__all__ = [
    "STICKY_FRACTIONS",
    "plot_dimensionality",
    "plot_directions",
    "plot_gram",
    "plot_phase_diagram",
]
