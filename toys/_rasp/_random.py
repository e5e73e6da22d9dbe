"""Random well-typed RASP programs, for property tests of the compiler and of circuit methods.

A program is grown from ``tokens`` and ``indices`` by ``n_ops`` operations, each drawn from every
kind the language has (categorical and numerical Maps, SequenceMaps, Selects with every comparison
and with arbitrary predicates, null-safe variants, categorical and numerical Aggregates, and
SelectorWidths), with arguments drawn from the SOps made so far. Functions are lookup tables and
modular arithmetic over small integers, so values stay few and every function is total. The same
seed gives the same program.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from planted.toys._rasp._language import (
    Aggregate,
    Comparison,
    Map,
    Select,
    SelectorWidth,
    SequenceMap,
    SOp,
    indices,
    numerical,
    tokens,
)

KINDS = ("map", "sequence_map", "aggregate", "selector_width", "numerical_map", "numerical_aggregate", "threshold")


@dataclasses.dataclass(frozen=True)
class RandomProgram:
    """A random program and the setting to compile it in; ``ops`` lists the operations drawn."""

    program: SOp
    vocab: tuple
    max_seq_len: int
    causal: bool
    seed: int
    ops: tuple[str, ...]


class _Table:
    """A total function given by a table over small integers (and None), with a default."""

    def __init__(self, table: dict, default, label: str):
        self.table, self.default, self.__name__ = table, default, label

    def __call__(self, *args):
        return self.table.get(args if len(args) > 1 else args[0], self.default)


class _Modular:
    """x -> (a x + b y + c) mod m: a SequenceMap or Map over small integers."""

    def __init__(self, coef: tuple, m: int):
        self.coef, self.m = coef, m
        self.__name__ = f"mod{m}"

    def __call__(self, *args):
        return int(sum(int(c) * int(a) for c, a in zip(self.coef, args)) + self.coef[-1]) % self.m


class _Predicate:
    """A predicate drawn as a table over pairs of small integers."""

    def __init__(self, table: dict, label: str):
        self.table, self.__name__ = table, label

    def __call__(self, key, query):
        return self.table.get((key, query), False)


_UNIVERSE = list(range(8))


def random_program(seed: int, *, vocab_size: int = 3, max_seq_len: int = 4, n_ops: int = 3) -> RandomProgram:
    """A random program of ``n_ops`` operations over tokens ``0 .. vocab_size - 1``."""
    for name, value, low, high in (("vocab_size", vocab_size, 1, 6), ("max_seq_len", max_seq_len, 1, 8), ("n_ops", n_ops, 1, 12)):
        if not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")
    rng = np.random.default_rng([seed, 16])
    causal = bool(rng.integers(2))
    categorical_pool: list[SOp] = [tokens, indices]
    numerical_pool: list[SOp] = []
    ops: list[str] = []

    def pick(pool):
        # Favour recent SOps so programs grow deep rather than wide.
        weights = np.arange(1, len(pool) + 1, dtype=float) ** 2
        return pool[int(rng.choice(len(pool), p=weights / weights.sum()))]

    def values_out(allow_null: bool):
        m = int(rng.integers(2, 5))
        return lambda: (None if allow_null and rng.random() < 0.15 else int(rng.integers(m)))

    def table_map(arity: int, null_safe: bool):
        out = values_out(null_safe)
        keys = [None] + _UNIVERSE if null_safe else _UNIVERSE
        if arity == 1:
            table = {k: out() for k in keys}
        else:
            table = {(a, b): out() for a in keys for b in keys}
        return _Table(table, 0, f"table{len(table)}")

    def predicate():
        if rng.random() < 0.7:
            return list(Comparison)[int(rng.integers(len(Comparison)))]
        density = rng.uniform(0.1, 0.6)
        return _Predicate({(a, b): bool(rng.random() < density) for a in _UNIVERSE for b in _UNIVERSE}, "pred")

    last: SOp = tokens
    for _ in range(n_ops):
        kind = KINDS[int(rng.choice(len(KINDS), p=[0.2, 0.15, 0.25, 0.12, 0.1, 0.1, 0.08]))]
        null_safe = bool(rng.random() < 0.2)
        if kind in ("numerical_aggregate", "threshold") and not numerical_pool:
            kind = "numerical_map"
        if kind == "map":
            arg = pick(categorical_pool)
            f = table_map(1, null_safe) if rng.random() < 0.6 else _Modular((int(rng.integers(1, 4)), int(rng.integers(3))), int(rng.integers(2, 5)))
            new = Map(f, arg, null_safe=null_safe and isinstance(f, _Table))
            categorical_pool.append(new)
        elif kind == "sequence_map":
            a, b = pick(categorical_pool), pick(categorical_pool)
            if rng.random() < 0.5:
                f = table_map(2, null_safe)
            else:
                f = _Modular((int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(3))), int(rng.integers(2, 5)))
                null_safe = False
            new = SequenceMap(f, a, b, null_safe=null_safe)
            categorical_pool.append(new)
        elif kind == "aggregate":
            select = Select(pick(categorical_pool), pick(categorical_pool), predicate(), null_safe=null_safe)
            new = Aggregate(select, pick(categorical_pool))
            categorical_pool.append(new)
        elif kind == "selector_width":
            select = Select(pick(categorical_pool), pick(categorical_pool), predicate(), null_safe=null_safe)
            new = SelectorWidth(select)
            if rng.random() < 0.3:
                new = numerical(new)
                numerical_pool.append(new)
            else:
                categorical_pool.append(new)
        elif kind == "numerical_map":
            arg = pick(categorical_pool)
            levels = [0.0, 1.0, 0.5, 2.0]
            table = {k: levels[int(rng.integers(len(levels)))] for k in _UNIVERSE}
            new = numerical(Map(_Table(table, 0.0, "level"), arg))
            numerical_pool.append(new)
        elif kind == "numerical_aggregate":
            select = Select(pick(categorical_pool), pick(categorical_pool), predicate(), null_safe=null_safe)
            new = numerical(Aggregate(select, pick(numerical_pool)))
            numerical_pool.append(new)
        else:  # threshold: numerical -> categorical
            arg = pick(numerical_pool)
            cut = float(rng.choice([0.0, 0.25, 0.5, 1.0]))
            new = Map(lambda x, cut=cut: int(x > cut), arg)
            categorical_pool.append(new)
        ops.append(kind)
        last = new
    vocab = tuple(range(vocab_size))
    return RandomProgram(last, vocab, max_seq_len, causal, seed, tuple(ops))
