"""Every figure of planted, and each task's figure hooks (private; the public names are
re-exported by ``planted.evaluators`` and ``planted.evaluators.geometry``).

This package is the only code of planted that imports matplotlib, and it does so inside functions:
importing it (or ``planted.evaluators``) neither imports matplotlib nor touches its backend. A
report's figures are pyplot-free ``Figure`` objects, so writing one leaves an interactive session
as it was; the public ``plot_*`` functions draw on a given Axes, or on a new pyplot figure.

Each task carries two hooks (``evaluators.Task``): ``figure_data(toy)``, run by the runner once
per toy, picks the small truth arrays its figures need and the store keeps them;
``figures(results, store, folder)`` draws them, with the stored predictions, without building or
training anything.
"""

from planted.evaluators._figures._circuits import circuit_panel, circuits_figure_data, circuits_figures, plot_circuit
from planted.evaluators._figures._comparison import comparison_figure_data, comparison_figures, plot_similarity
from planted.evaluators._figures._connectome import (
    activity_excerpt,
    connectome_figure_data,
    connectome_figures,
    plot_activity,
    plot_adjacency,
    plot_roc,
)
from planted.evaluators._figures._dynamics import dynamics_figure_data, dynamics_figures, plot_formation
from planted.evaluators._figures._features import COSINE_FEATURES, features_figure_data, features_figures, plot_cosines
from planted.evaluators._figures._geometry import (
    STICKY_FRACTIONS,
    geometry_figures,
    phase_diagram_data,
    plot_dimensionality,
    plot_directions,
    plot_gram,
    plot_phase_diagram,
)
from planted.evaluators._figures._lesions import lesions_figure_data, lesions_figures, plot_lesion_census
from planted.evaluators._figures._leaderboard import leaderboard_figures, plot_axis, plot_leaderboard

__all__ = [
    "COSINE_FEATURES",
    "STICKY_FRACTIONS",
    "activity_excerpt",
    "circuit_panel",
    "comparison_figure_data",
    "comparison_figures",
    "dynamics_figure_data",
    "dynamics_figures",
    "circuits_figure_data",
    "circuits_figures",
    "connectome_figure_data",
    "connectome_figures",
    "features_figure_data",
    "features_figures",
    "geometry_figures",
    "leaderboard_figures",
    "phase_diagram_data",
    "plot_activity",
    "plot_adjacency",
    "plot_axis",
    "plot_circuit",
    "plot_cosines",
    "plot_dimensionality",
    "plot_directions",
    "plot_gram",
    "plot_leaderboard",
    "plot_phase_diagram",
    "plot_formation",
    "lesions_figure_data",
    "lesions_figures",
    "plot_lesion_census",
    "plot_roc",
    "plot_similarity",
]
