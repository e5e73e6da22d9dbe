"""Records of what was planted, what methods predict, and safe storage for both.

``Toy`` carries a config, the artifact a method may see and the truth; ``FeatureTruth`` is what a
sparse-feature toy planted, ``CircuitTruth`` a circuit toy's and ``ConnectomeTruth`` a synthetic
connectome's (whose ``Recording`` is what methods see); ``Dictionary`` is a features method's
prediction. ``save``/``load`` write and verify toys without pickle. ``groundtruth.strategies`` has hypothesis strategies.
"""

from planted.groundtruth._circuits import (
    FAILURE_MODES,
    CircuitPrediction,
    CircuitTruth,
    ComponentGraph,
    ComponentScores,
    Patch,
)
from planted.groundtruth._config import SCHEMA_VERSION, Config, Problems, config_from_json
from planted.groundtruth._connectome import ConnectomeTruth, Recording
from planted.groundtruth._geometry import (
    REPRESENTED_NORM,
    dimensionality,
    dimensions_per_feature,
)
from planted.groundtruth._records import (
    Dictionary,
    Encoder,
    FeatureBatch,
    FeatureToy,
    FeatureTruth,
    SuperpositionToy,
    Toy,
    TrainingDynamics,
)
from planted.groundtruth._storage import load, save

__all__ = [
    "FAILURE_MODES",
    "CircuitPrediction",
    "CircuitTruth",
    "ComponentGraph",
    "ComponentScores",
    "ConnectomeTruth",
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
    "SuperpositionToy",
    "Toy",
    "TrainingDynamics",
    "config_from_json",
    "dimensionality",
    "dimensions_per_feature",
    "load",
    "save",
]
