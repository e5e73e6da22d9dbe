"""Records of what was planted, what methods predict, and safe storage for both.

``Toy`` carries a config, the artifact a method may see and the truth; ``FeatureTruth`` is what a
sparse-feature toy planted, ``CircuitTruth`` a circuit toy's and ``ConnectomeTruth`` a synthetic
connectome's (whose ``Recording`` is what methods see); ``Dictionary`` is a features method's
prediction, ``CircuitPrediction`` a circuit method's, and ``EdgeScores``, ``Partition`` and
``NodeScores`` a connectome method's, and ``Similarities`` a comparison method's (scored against the planted
``correspondence`` of features); ``LesionCensus`` is what lesioning every component of a network costs, ``DamageTruth`` what
was damaged in a copy of one and ``DamagePrediction`` a damage method's guess; ``formation_steps`` dates each feature's formation
in a training record and ``Formation`` is a dynamics method's prediction. ``Config`` is the base of every generator's config; ``Problems`` and ``nearest`` are the
validation helpers every package shares. This package imports nothing from the rest of planted.
"""

from planted.groundtruth._arrays import as_matrix, as_vector
from planted.groundtruth._circuits import (
    ABLATIONS,
    ablation_values,
    CircuitPrediction,
    CircuitTruth,
    ComponentGraph,
    ComponentScores,
    NodeParameters,
    Patch,
)
from planted.groundtruth._comparison import Similarities, correspondence, shared_fraction
from planted.groundtruth._damage import DAMAGES, DamagePrediction, DamageTruth, damage_candidates
from planted.groundtruth._dynamics import (
    FORMATION_TOLERANCE,
    GATE_ACCURACY,
    CircuitFormation,
    Formation,
    TrainingDynamics,
    formation_steps,
    settled_steps,
)
from planted.groundtruth._config import ADDED, SCHEMA_VERSION, Config, Problems, nearest, suggest
from planted.groundtruth._connectome import (
    RECORDING_KINDS,
    ConnectomeTruth,
    EdgeScores,
    NodeScores,
    Partition,
    Recording,
)
from planted.groundtruth._files import (
    available_memory,
    read_json,
    read_npz,
    read_safetensors,
    read_torch_state_dict,
    regular_file,
)
from planted.groundtruth._lesions import (
    LESION_LABELS,
    LETHAL_DEFICIT,
    SILENT_DEFICIT,
    ConnectomeLesions,
    LesionCensus,
    lesion_labels,
)
from planted.groundtruth._geometry import (
    REPRESENTED_NORM,
    dimensionality,
    dimensions_per_feature,
)
from planted.groundtruth._progress import Progress
from planted.groundtruth._records import (
    Dictionary,
    Encoder,
    FeatureBatch,
    FeatureToy,
    FeatureTruth,
    SuperpositionToy,
    Toy,
)

__all__ = [
    "ABLATIONS",
    "FORMATION_TOLERANCE",
    "GATE_ACCURACY",
    "CircuitFormation",
    "Formation",
    "ablation_values",
    "damage_candidates",
    "formation_steps",
    "settled_steps",
    "ConnectomeLesions",
    "ADDED",
    "DAMAGES",
    "DamagePrediction",
    "DamageTruth",
    "LESION_LABELS",
    "LETHAL_DEFICIT",
    "LesionCensus",
    "SILENT_DEFICIT",
    "lesion_labels",
    "RECORDING_KINDS",
    "Progress",
    "as_matrix",
    "as_vector",
    "available_memory",
    "read_json",
    "read_npz",
    "read_safetensors",
    "read_torch_state_dict",
    "regular_file",
    "CircuitPrediction",
    "CircuitTruth",
    "ComponentGraph",
    "ComponentScores",
    "ConnectomeTruth",
    "EdgeScores",
    "NodeScores",
    "Partition",
    "NodeParameters",
    "Patch",
    "REPRESENTED_NORM",
    "SCHEMA_VERSION",
    "Config",
    "Dictionary",
    "Encoder",
    "FeatureBatch",
    "FeatureToy",
    "FeatureTruth",
    "Problems",
    "Recording",
    "Similarities",
    "SuperpositionToy",
    "Toy",
    "TrainingDynamics",
    "dimensionality",
    "dimensions_per_feature",
    "correspondence",
    "nearest",
    "shared_fraction",
    "suggest",
]
