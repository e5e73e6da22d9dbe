"""Proof by test that a compiled model computes its program: the decoded output at every position,
and inside the model every SOp's residual block, every head's attention pattern and the BOS
position, against the interpreter."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from planted.toys._rasp._analysis import selected_values_agree
from planted.toys._rasp._compiler import Compiled
from planted.toys._rasp._language import NUMERICAL, Aggregate, Select, SelectorWidth, nodes, trace
from planted.toys._rasp._model import decode, encode, run

TOLERANCE = 1e-4  # on one-hot blocks, numerical values (relative to max(1, |value|)) and attention weights


def _same(got: Any, want: Any, numerical: bool) -> bool:
    if got is None or want is None:
        return got is None and want is None
    if numerical:
        return abs(float(got) - float(want)) <= TOLERANCE * max(1.0, abs(float(want)))
    return got == want


def all_inputs(vocab: Sequence, max_seq_len: int, *, limit: int | None = None, seed: int = 0) -> tuple[list[list], bool]:
    """Every input of length 1 .. max_seq_len over ``vocab`` (``True``), or ``limit`` drawn at random
    (lengths uniform, tokens uniform; ``False``) when there are more than ``limit``."""
    total = sum(len(vocab) ** n for n in range(1, max_seq_len + 1))
    if limit is None or total <= limit:
        return [list(s) for n in range(1, max_seq_len + 1) for s in itertools.product(vocab, repeat=n)], True
    rng = np.random.default_rng([seed, 25])
    return [[vocab[i] for i in rng.integers(0, len(vocab), rng.integers(1, max_seq_len + 1))] for _ in range(limit)], False


@dataclasses.dataclass(frozen=True)
class Differential:
    """The result of comparing a compiled model with its program.

    n_inputs, n_positions : inputs and positions compared; exhaustive : every input up to max_seq_len
    mismatches : the first output mismatches as (input, position, compiled, interpreted)
    problems : the first internal violations (a block, an attention pattern, the BOS position)
    n_mismatches, n_problems : their counts
    """

    n_inputs: int
    n_positions: int
    exhaustive: bool
    n_mismatches: int
    n_problems: int
    mismatches: tuple
    problems: tuple

    @property
    def ok(self) -> bool:
        return self.n_mismatches == 0 and self.n_problems == 0


def differential(compiled: Compiled, inputs: Sequence[Sequence[Hashable]] | None = None, *, limit: int | None = 20_000,
                 seed: int = 0, internals: bool = True, keep: int = 10, backend: str = "jax") -> Differential:
    """Compare ``compiled`` with its program on ``inputs`` (default: every input up to max_seq_len,
    or ``limit`` random ones): outputs at every position, and with ``internals`` every SOp's block,
    every head's attention and the BOS position. ``backend`` is passed to ``run``."""
    exhaustive = False
    if inputs is None:
        inputs, exhaustive = all_inputs(compiled.vocab, compiled.max_seq_len, limit=limit, seed=seed)
    inputs = [list(s) for s in inputs]
    plan = _Plan(compiled)
    mismatches: list = []
    problems: list = []
    counts = [0, 0]
    numerical = compiled.output_encoding == NUMERICAL
    by_length: dict[int, list] = {}
    for s in inputs:
        by_length.setdefault(len(s), []).append(s)
    for n, group in sorted(by_length.items()):
        for start in range(0, len(group), 2048):
            batch = group[start:start + 2048]
            cache = run(compiled, encode(compiled, batch), backend=backend)
            outputs = decode(compiled, cache["logits"])
            for b, seq in enumerate(batch):
                values, chosen = trace(compiled.program, seq, causal=compiled.causal, order=plan.order)
                want = values[id(compiled.program)]
                for i in range(n):
                    if not _same(outputs[b][i], want[i], numerical):
                        counts[0] += 1
                        if len(mismatches) < keep:
                            mismatches.append((tuple(seq), i, outputs[b][i], want[i]))
                if internals:
                    found = plan.problems(cache["activations"][b, -1], cache["patterns"][b], seq, values, chosen)
                    counts[1] += len(found)
                    problems += found[:max(0, keep - len(problems))]
    return Differential(len(inputs), sum(len(s) for s in inputs), exhaustive, counts[0], counts[1], tuple(mismatches),
                        tuple(problems))


class _Plan:
    """What the internal check compares, worked out once per compiled model."""

    def __init__(self, compiled: Compiled):
        self.compiled = compiled
        self.order = nodes(compiled.program, *compiled.extra)
        placed = {c.name for c in compiled.components}
        by_name = {compiled.names[id(n)]: n for n in self.order if not isinstance(n, Select)}
        # Each placed SOp's block: (node, name, dims, {key: column within the concatenation}).
        self.blocks = []
        dims: list[int] = []
        for name, node in by_name.items():
            if name not in placed:
                continue  # a Map folded into its head is not in the residual stream
            block = compiled.blocks[name]
            columns = {key: len(dims) + j for j, key in enumerate(block)}
            dims += list(block.values())
            self.blocks.append((node, name, columns))
        self.dims = np.array(dims, np.int64)
        # A backup head attends to BOS wherever its head's output is present (always, in a clean
        # run); a cancelling head attends to its own position.
        self.fixed = [c for c in compiled.components if c.op in ("backup", "cancellation")]
        self.heads = [(c, by_name[c.name]) for c in compiled.components if c.kind == "head" and c not in self.fixed]
        self.no_cleanup = {id(node) for c, node in self.heads
                           if isinstance(node, Aggregate) and node.encoding != NUMERICAL and c.writes == (c.name,)
                           and selected_values_agree(node, compiled.info, compiled.names)}

    def problems(self, final: np.ndarray, patterns: np.ndarray, seq: list, values: dict, chosen: dict) -> list[str]:
        """Violations inside the model on one input: final (n + 1, d_model), patterns (layers, heads, n + 1, n + 1)."""
        out: list[str] = []
        n = len(seq)
        want = np.zeros((n + 1, len(self.dims)))
        for node, name, columns in self.blocks:
            numerical = node.encoding == NUMERICAL
            for pos, value in enumerate([self.compiled.info[id(node)].bos] + values[id(node)]):
                if value is None:
                    want[pos, columns[("null",)]] = 1.0
                elif numerical:
                    want[pos, columns[("value",)]] = float(value)
                else:
                    want[pos, columns[("v", value)]] = 1.0
        got = final[:, self.dims]
        if (np.abs(got - want) > TOLERANCE * np.maximum(1.0, np.abs(want))).any():
            for node, name, columns in self.blocks:
                cols = list(columns.values())
                for pos in range(n + 1):
                    if (np.abs(got[pos, cols] - want[pos, cols]) > TOLERANCE * np.maximum(1.0, np.abs(want[pos, cols]))).any():
                        where = "BOS" if pos == 0 else f"position {pos - 1}"
                        value = ([self.compiled.info[id(node)].bos] + values[id(node)])[pos]
                        out.append(f"{seq}: block {name} at {where} is {np.round(got[pos, cols], 4).tolist()}, expected {value!r}")
        for comp, node in self.heads:
            expected = np.zeros((n + 1, n + 1))
            expected[0, 0] = 1.0
            for q, ks in enumerate(chosen[id(node)]):
                if isinstance(node, SelectorWidth):
                    expected[q + 1, [0] + [k + 1 for k in ks]] = 1.0 / (len(ks) + 1)
                elif ks:
                    expected[q + 1, [k + 1 for k in ks]] = 1.0 / len(ks)
                else:
                    expected[q + 1, 0] = 1.0
            off = np.abs(patterns[comp.layer, comp.head] - expected).max()
            if off > TOLERANCE:
                out.append(f"{seq}: head {comp.name} (layer {comp.layer}, head {comp.head}) attends off its selector by {off:.3g}")
        for comp in self.fixed:
            expected = np.zeros((n + 1, n + 1))
            if comp.op == "backup":
                expected[:, 0] = 1.0
            else:
                expected[np.arange(n + 1), np.arange(n + 1)] = 1.0
            off = np.abs(patterns[comp.layer, comp.head] - expected).max()
            if off > TOLERANCE:
                out.append(f"{seq}: {comp.op} head {comp.name} attends off its fixed pattern by {off:.3g}")
            if id(node) in self.no_cleanup:
                inner = values[id(node.inner)]
                for q, ks in enumerate(chosen[id(node)]):
                    picked = {repr(inner[k]) for k in ks}
                    if len(picked) > 1:
                        out.append(f"{seq}: head {comp.name} has no cleanup but selects differing values {sorted(picked)} at position {q}")
        return out
