"""The formula language: gates, formula text and its parser, random formulas and their check.

A formula is a tree of ``_Gate`` over input indices; ``_Gate.text`` writes it (e.g.
``"and(in02, threshold2(in01, in03, in05))"``) and ``parse_formula`` reads it back.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from planted.toys._planted_mlp._config import PlantedMLPConfig

GATES = ("and", "or", "xor", "not", "threshold")


@dataclasses.dataclass(eq=False)
class _Gate:
    kind: str
    children: list  # of _Gate or int (an input index)
    theta: int = 0
    level: int = 0
    var: int = -1
    neurons: list = dataclasses.field(default_factory=list)  # node indices
    saturating: bool = False

    def evaluate(self, x: np.ndarray, override: dict | None = None) -> np.ndarray:
        if override and id(self) in override:
            return override[id(self)]
        vals = [c.evaluate(x, override) if isinstance(c, _Gate) else x[:, c] for c in self.children]
        s = np.sum(vals, axis=0)
        k = len(vals)
        if self.kind == "and":
            return (s == k).astype(np.float64)
        if self.kind == "or":
            return (s >= 1).astype(np.float64)
        if self.kind == "xor":
            return (s == 1).astype(np.float64)
        if self.kind == "not":
            return 1.0 - vals[0]
        if self.kind == "majority":
            return (s >= 2).astype(np.float64)
        return (s >= self.theta).astype(np.float64)

    def text(self, names) -> str:
        args = ", ".join(c.text(names) if isinstance(c, _Gate) else names[c] for c in self.children)
        return f"{self.kind}{self.theta if self.kind == 'threshold' else ''}({args})"

    def walk(self):
        seen = set()
        stack = [self]
        while stack:
            g = stack.pop()
            if id(g) in seen:
                continue
            seen.add(id(g))
            yield g
            stack.extend(c for c in g.children if isinstance(c, _Gate))

    def leaves(self) -> set[int]:
        return {c for g in self.walk() for c in g.children if not isinstance(c, _Gate)}


def parse_formula(text: str) -> _Gate:
    """The gate tree of a formula written by ``_Gate.text`` (e.g. ``"and(in02, threshold2(in01, in03, in05))"``)."""
    position = 0

    def node():
        nonlocal position
        j = position
        while j < len(text) and text[j].isalnum():
            j += 1
        word = text[position:j]
        position = j
        if word.startswith("in") and word[2:].isdigit():
            return int(word[2:])
        theta = 0
        kind = word
        if word.startswith("threshold"):
            kind, theta = "threshold", int(word[len("threshold"):])
        if kind not in (*GATES, "majority") or text[position : position + 1] != "(":
            raise ValueError(f"formula {text!r}: cannot read {word!r} at position {j - len(word)}")
        position += 1
        children = [node()]
        while text[position : position + 2] == ", ":
            position += 2
            children.append(node())
        if text[position : position + 1] != ")":
            raise ValueError(f"formula {text!r}: expected ')' at position {position}")
        position += 1
        return _Gate(kind, children, theta)

    root = node()
    if position != len(text) or not isinstance(root, _Gate):
        raise ValueError(f"formula {text!r} is not a gate expression")
    return root


def _random_gate(rng, level: int, cfg: PlantedMLPConfig, pool: list[_Gate]) -> _Gate:
    kinds = [g for g in cfg.gates if not (g == "not" and level == 1 and len(cfg.gates) > 1 and rng.random() < 0.5)]
    kind = str(rng.choice(kinds))
    k = 1 if kind == "not" else 2 if kind == "xor" else int(cfg.fan_in)
    children: list = []
    if level > 1:
        children.append(_random_gate(rng, level - 1, cfg, pool))
    while len(children) < k:
        if level > 1 and rng.random() < 0.3:
            children.append(_random_gate(rng, int(rng.integers(1, level)), cfg, pool))
        else:
            used = {c for c in children if not isinstance(c, _Gate)}
            free = [i for i in range(cfg.n_inputs) if i not in used]
            children.append(int(rng.choice(free)))
    rng.shuffle(children)
    theta = int(rng.integers(1, k)) if kind == "threshold" else 0
    gate = _Gate(kind, children, theta, level=1 + max((c.level for c in children if isinstance(c, _Gate)), default=0))
    pool.append(gate)
    return gate


def _inputs_domain(leaves: Sequence[int], n_inputs: int, rng, limit: int = 4096) -> np.ndarray:
    """Every assignment of the leaves (others 0), or ``limit`` random ones when there are too many."""
    leaves = sorted(leaves)
    if len(leaves) <= 12:
        grid = np.array(list(itertools.product([0.0, 1.0], repeat=len(leaves))))
    else:
        grid = rng.integers(0, 2, size=(limit, len(leaves))).astype(np.float64)
    x = np.zeros((grid.shape[0], n_inputs))
    x[:, leaves] = grid
    return x


def _well_formed(root: _Gate, n_inputs: int, rng) -> bool:
    """Non-constant, and every gate and leaf can change the output."""
    x = _inputs_domain(root.leaves(), n_inputs, rng)
    y = root.evaluate(x)
    if y.min() == y.max():
        return False
    for g in root.walk():
        if g is root:
            continue
        flipped = 1.0 - g.evaluate(x)
        if np.array_equal(root.evaluate(x, {id(g): flipped}), y):
            return False
    for leaf in root.leaves():
        x2 = x.copy()
        x2[:, leaf] = 1 - x2[:, leaf]
        if np.array_equal(root.evaluate(x2), y):
            return False
    return True
