"""Planted circuits: a residual MLP into which boolean formulas are compiled as exact ReLU gates.

The network has a residual stream of width ``d_model``, ``n_blocks`` blocks of ``width`` ReLU
neurons that read from and write to it, and a linear readout per task. Each task is a random
formula of AND / OR / XOR / NOT / threshold gates over binary inputs. Every variable (an input or
a gate's output) gets a residual direction, orthonormal or, with ``superposition > 1``, a random
overcomplete frame. A gate at formula depth h is compiled into block h:

    AND(k)         ReLU(s - (k - 1))                      one neuron, s the sum of its inputs
    OR(k)          ReLU(s) - ReLU(s - 1)                  two neurons
    XOR(2)         ReLU(s) - 2 ReLU(s - 1)                two neurons
    NOT            ReLU(1 - a)                            one neuron
    THRESHOLD(k,t) ReLU(s - t + 1) - ReLU(s - t)  [s >= t]  two neurons, 1 <= t < k

so on binary inputs every gate outputs exactly 0 or 1. The rest of each block is distractor
computation: neurons that read random variables and write to junk directions no task reads (the
other tasks' circuits are distractors too). Every toy is verified by intervention: see
``PlantedCircuitToy.verify``.

The trained kind (``trained=True``) keeps the formulas and the wiring but learns the weights:
each gate gets three neurons in its block that may read only its children's residual directions
and write only its own (structural masks), the readout of each task reads only its root, and
the masked network is trained from a random start on the task labels alone (Adam, restarts,
the best kept per task). What a gate's variable carries is learned, not a 0/1 truth value, so
the weights look trained (no integer coefficients) while the sub-network each task may use is
fixed by construction. Neurons whose mean ablation barely moves their task are pruned and the
rest fine-tuned, so every circuit neuron is necessary; a draw whose training does not fit every
output within 0.02 is discarded. Redundancy and saturation, which are compiled constructions,
and superposition (trained variables are unbounded) are not available with it.

The failure-mode catalog (``FAILURE_MODES``) lists the situations in which circuit methods
fail, each a toggle of the config; ``_catalog.py`` holds each mode's description, constraints
and the passes it takes part in.

The passes, one module each: ``_config`` (the config and its validation), ``_formula`` (the
formula language), ``_neurons`` (a gate's exact neurons and the draft the planning passes
change), ``_catalog`` (the failure modes), ``_compiler`` (the plan, placement, directions and
weights), ``_trained`` (the trained kind), ``_model`` (the model and its intervention kernels),
``_truth`` (the truth and ``verify``), ``_lesions`` (the lesion census and exact Shapley
contributions), ``_storage`` (the storage halves) and ``_build``, which
runs them and declares the family.
"""

from planted.toys._planted_mlp._build import FAMILY, build, planted_mlp
from planted.toys._planted_mlp._catalog import FAILURE_MODES, MODES, Mode
from planted.toys._planted_mlp._config import PlantedMLPConfig
from planted.toys._planted_mlp._formula import GATES, parse_formula
from planted.toys._planted_mlp._model import CircuitArtifact, CircuitModel, CircuitTask
from planted.toys._planted_mlp._truth import TOLERANCE, PlantedCircuitToy, Verification

__all__ = [
    "FAILURE_MODES",
    "FAMILY",
    "GATES",
    "MODES",
    "TOLERANCE",
    "CircuitArtifact",
    "CircuitModel",
    "CircuitTask",
    "Mode",
    "PlantedCircuitToy",
    "PlantedMLPConfig",
    "Verification",
    "build",
    "parse_formula",
    "planted_mlp",
]
