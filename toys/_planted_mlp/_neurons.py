"""Neurons: what one gate compiles to, and the draft the planning passes build up.

``_gate_neurons`` writes a gate as exact ReLU neurons over residual variables (the table in the
package docstring); ``_Draft`` holds a draw's formulas and compiled neurons while the failure
modes of the catalog change them.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from planted.toys._planted_mlp._formula import _Gate

if TYPE_CHECKING:
    from planted.toys._planted_mlp._config import PlantedMLPConfig


@dataclasses.dataclass(eq=False)
class _Neuron:
    block: int  # 1-based
    reads: dict  # var -> coefficient
    bias: float
    writes: dict  # var -> coefficient
    index: int = -1  # node index, set when placed


def _gate_neurons(gate: _Gate, read_vars: list[int]) -> list[_Neuron]:
    """Exact ReLU neurons computing ``gate`` from variables ``read_vars`` into ``gate.var``."""
    k = len(read_vars)
    ones = {v: 1.0 for v in read_vars}
    b, g = gate.level, gate.var
    if gate.saturating:
        # A ramp of slope 2 around the decision threshold, flat at every binary input.
        if gate.kind == "not":
            reads, t = {read_vars[0]: -2.0}, -0.5
        else:
            reads = {v: 2.0 for v in read_vars}
            t = {"and": k - 0.5, "or": 0.5, "majority": 1.5}.get(gate.kind, gate.theta - 0.5)
        return [_Neuron(b, reads, -2 * t + 0.5, {g: 1.0}), _Neuron(b, dict(reads), -2 * t - 0.5, {g: -1.0})]
    if gate.kind == "and":
        return [_Neuron(b, ones, -(k - 1.0), {g: 1.0})]
    if gate.kind == "not":
        return [_Neuron(b, {read_vars[0]: -1.0}, 1.0, {g: 1.0})]
    if gate.kind == "or":
        return [_Neuron(b, ones, 0.0, {g: 1.0}), _Neuron(b, dict(ones), -1.0, {g: -1.0})]
    if gate.kind == "xor":
        return [_Neuron(b, ones, 0.0, {g: 1.0}), _Neuron(b, dict(ones), -1.0, {g: -2.0})]
    theta = 2 if gate.kind == "majority" else gate.theta
    return [_Neuron(b, ones, -(theta - 1.0), {g: 1.0}), _Neuron(b, dict(ones), -float(theta), {g: -1.0})]


@dataclasses.dataclass(eq=False)
class _Draft:
    """One draw while it is planned: the formulas, their variables and their compiled neurons.

    ``roots[t]`` is task t's drawn formula and ``pools[t]`` every gate drawn for it;
    ``answer[t]`` the gate its readout reads (the root, or a vote over copies of it);
    ``by_gate[id(gate)]`` a gate's neurons and ``neurons`` every planted neuron in variable order;
    ``redundant`` the ids of neurons no single intervention can expose.
    """

    cfg: PlantedMLPConfig
    rng: np.random.Generator
    roots: list = dataclasses.field(default_factory=list)
    pools: list = dataclasses.field(default_factory=list)
    answer: list = dataclasses.field(default_factory=list)
    n_vars: int = 0
    neurons: list = dataclasses.field(default_factory=list)
    by_gate: dict = dataclasses.field(default_factory=dict)
    redundant: set = dataclasses.field(default_factory=set)

    @staticmethod
    def reads(gate: _Gate) -> list[int]:
        """The variables ``gate`` reads: its children's (a child gate's, or an input's)."""
        return [c.var if isinstance(c, _Gate) else c for c in gate.children]

    def compile_gate(self, gate: _Gate) -> list[_Neuron]:
        """Compile ``gate`` into exact neurons (replacing any it had) and return them."""
        self.by_gate[id(gate)] = _gate_neurons(gate, self.reads(gate))
        return self.by_gate[id(gate)]

    def circuit(self, t: int) -> list[_Neuron]:
        """The neurons of task t's circuit: those of every gate below its answer."""
        return [n for g in self.answer[t].walk() for n in self.by_gate[id(g)]]
