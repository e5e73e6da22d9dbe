"""What the compiler knows about each node before it places it: the values it can take, whether it
can be null, its value at the BOS position, and the facts that let an aggregate skip its cleanup.

Every fact is an over-approximation over *all* inputs of length 1 .. max_seq_len, so a proof made
here holds on every input; where a fact cannot be established the compiler takes the general path
(a cleanup MLP) or refuses the program, never the shortcut.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from typing import Any

from planted.toys._rasp._language import (
    CATEGORICAL,
    NUMERICAL,
    Aggregate,
    Comparison,
    Indices,
    Map,
    RASPExpr,
    Select,
    SelectorWidth,
    SequenceMap,
    SOp,
    Tokens,
    apply_map,
    apply_sequence_map,
    describe,
    nodes,
)

MAX_CATEGORIES = 2048  # directions of one categorical SOp
MAX_MEANS = 4096  # distinct means a numerical aggregate may take before its value set counts as unbounded


@dataclasses.dataclass
class Info:
    """Static facts about one SOp.

    values : the non-null values it can take at an input position (None: too many to list)
    nullable : whether it can be null at an input position
    bos : its value at the BOS position (every SOp has one: the program run on a null position)
    encoded : the values that get a residual direction (values and the BOS value), sorted
    injective : distinct positions never hold equal non-null values
    """

    node: SOp
    name: str
    values: frozenset | None
    nullable: bool
    bos: Any
    injective: bool = False
    encoded: tuple = ()


def order_key(value: Any) -> tuple:
    """A total order over the values a program may use (numbers, then strings, then the rest)."""
    if isinstance(value, bool | int | float | Fraction):
        return (0, float(value), "")
    if isinstance(value, str):
        return (1, 0.0, value)
    return (2, 0.0, repr(value))


def _where(info_name: str, node: RASPExpr, names: dict[int, str]) -> str:
    return f"{info_name} = {describe(node, names)}"


def fail(node: RASPExpr, names: dict[int, str], reason: str) -> ValueError:
    """The compiler's refusal: the operation (its name and expression) and why."""
    return ValueError(f"cannot compile {_where(names.get(id(node), '?'), node, names)}: {reason}")


def _number(value: Any) -> bool:
    return isinstance(value, bool | int | float | Fraction) and math.isfinite(float(value))


def merge_close(values) -> frozenset:
    """Numbers with values within 1e-9 (relative) of a neighbour merged into one: the same value
    reached by different float roundings (1/3 - 1/6 and 1/6)."""
    out: list[float] = []
    for v in sorted(values):
        if not out or v - out[-1] > 1e-9 * max(1.0, abs(v)):
            out.append(v)
    return frozenset(out)


def name_nodes(program: SOp, *more: SOp) -> tuple[list[RASPExpr], dict[int, str]]:
    """The program's nodes (children first; then those only ``more`` roots reach) and a unique name
    for each: its own name, or ``map_3``-style names in topological order; a repeated name gets a
    suffix ``_2``, ``_3`` ..."""
    order = nodes(program, *more)
    names: dict[int, str] = {}
    used: set[str] = set()
    for i, node in enumerate(order):
        base = node.name or f"{type(node).__name__.lower()}_{i}"
        name, k = base, 2
        while name in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name)
        names[id(node)] = name
    return order, names


def holds(select: Select, key: Any, query: Any, names: dict[int, str]) -> bool:
    """``select.holds(key, query)``; a predicate that raises is the compiler's ``ValueError``."""
    try:
        return select.holds(key, query)
    except Exception as error:
        raise fail(select, names, f"its predicate raised {type(error).__name__}: {error} on (key {key!r}, query {query!r})") from error


def pairs(select: Select, keys: Info, queries: Info, names: dict[int, str]) -> list[tuple[Any, Any, bool]]:
    """(key value, query value, selected) for every pair a user position can show (nulls included)."""
    key_values = sorted(keys.values or (), key=order_key) + ([None] if keys.nullable else [])
    query_values = sorted(queries.values or (), key=order_key) + ([None] if queries.nullable else [])
    return [(k, q, holds(select, k, q, names)) for k in key_values for q in query_values]


def always_selects(select: Select, keys: Info, queries: Info, names: dict[int, str]) -> bool:
    """True when every query position selects at least one key (itself, or every key)."""
    if select.predicate is Comparison.TRUE:
        return True
    if select.keys is not select.queries:
        return False
    own = sorted(keys.values or (), key=order_key) + ([None] if keys.nullable else [])
    return keys.values is not None and all(holds(select, v, v, names) for v in own)


def _chain(sop: SOp, keys: SOp) -> list[Map] | None:
    """The Maps that lead from ``keys`` to ``sop`` (``[]`` when they are the same SOp), else None."""
    chain: list[Map] = []
    while sop is not keys:
        if not isinstance(sop, Map):
            return None
        chain.append(sop)
        sop = sop.inner
    return chain[::-1]


def selected_values_agree(node: Aggregate, info: dict[int, Info], names: dict[int, str]) -> bool:
    """True when, on every input, the positions a query selects hold one value of the aggregated SOp
    (so a categorical aggregate is exact without a cleanup). Two proofs:

    - width <= 1: the keys are injective, each query value selects at most one key value, and a
      null key is never selected;
    - the aggregated SOp is a function of the keys (a chain of Maps) and each query value selects
      keys that all map to one value.
    """
    select = node.selector
    keys, queries = info[id(select.keys)], info[id(select.queries)]
    if keys.values is None or queries.values is None:
        return False
    table = pairs(select, keys, queries, names)
    by_query: dict[Any, list] = {}
    for k, q, chosen in table:
        if chosen:
            by_query.setdefault(("q", q), []).append(k)
    if keys.injective and all(None not in ks and len(ks) <= 1 for ks in by_query.values()):
        return True
    chain = _chain(node.inner, select.keys)
    if chain is None:
        return False

    def through(value):
        for step in chain:
            value = apply_map(step, value)
        return value

    for ks in by_query.values():
        images = [through(k) for k in ks]
        if any((a is None) != (images[0] is None) or a != images[0] for a in images):
            return False
    return True


def _means(values: frozenset, max_len: int) -> frozenset | None:
    """Every mean of 1 .. max_len values drawn (with repetition) from ``values``; None if too many."""
    xs = sorted({Fraction(v) for v in values})
    if not xs:
        return frozenset()
    sums: set[Fraction] = {Fraction(0)}
    means: set[Fraction] = set()
    for width in range(1, max_len + 1):
        sums = {s + x for s in sums for x in xs}
        if len(sums) > MAX_MEANS:
            return None
        means |= {s / width for s in sums}
        if len(means) > MAX_MEANS:
            return None
    return frozenset(float(m) for m in means)


def analyse(order: list[RASPExpr], names: dict[int, str], vocab: tuple, max_seq_len: int) -> dict[int, Info]:
    """Static facts for every SOp of the program (``order``: children first)."""
    info: dict[int, Info] = {}

    def call(node, f, *args):
        shown = ", ".join(repr(a) for a in args[1:])
        try:
            value = f(*args)
        except Exception as error:  # a user function failing on a reachable value is the user's bug
            raise fail(node, names, f"its function raised {type(error).__name__}: {error} on ({shown})") from error
        try:
            hash(value)
        except TypeError as error:
            raise fail(node, names, f"its values must be hashable (use tuples, not lists); it gave {value!r} on ({shown})") from error
        return value

    for node in order:
        extra: list = []
        if isinstance(node, Select):
            for side in (node.keys, node.queries):
                if side.encoding != CATEGORICAL:
                    raise fail(node, names, f"Select needs categorical keys and queries; {names[id(side)]} is numerical")
            continue
        name = names[id(node)]
        if isinstance(node, Tokens):
            new = Info(node, name, frozenset(vocab), False, None)
        elif isinstance(node, Indices):
            new = Info(node, name, frozenset(range(max_seq_len)), False, None, injective=True)
        elif isinstance(node, Map):
            inner = info[id(node.inner)]
            if inner.values is None:
                raise fail(node, names, f"its argument {inner.name} takes too many values to tabulate")
            reach = list(inner.values) + ([None] if inner.nullable else [])
            outs = [call(node, apply_map, node, v) for v in reach]
            bos = call(node, apply_map, node, inner.bos)
            images = [o for o in outs if o is not None]
            # What the MLP may write: the image of every direction of the argument, null included.
            extra = [call(node, apply_map, node, v) for v in list(inner.encoded) + [None]]
            injective = (inner.injective and len(set(images)) == len(images) == len(inner.values)
                         and (not inner.nullable or apply_map(node, None) is None))
            new = Info(node, name, frozenset(images), None in outs, bos, injective=injective)
        elif isinstance(node, SequenceMap):
            a, b = info[id(node.first)], info[id(node.second)]
            if a.values is None or b.values is None:
                raise fail(node, names, "an argument takes too many values to tabulate")
            ra = list(a.values) + ([None] if a.nullable else [])
            rb = list(b.values) + ([None] if b.nullable else [])
            if node.first is node.second:
                grid = {(x, x): call(node, apply_sequence_map, node, x, x) for x in ra}
                extra = [call(node, apply_sequence_map, node, x, x) for x in list(a.encoded) + [None]]
            else:
                grid = {(x, y): call(node, apply_sequence_map, node, x, y) for x in ra for y in rb}
                extra = [call(node, apply_sequence_map, node, x, y)
                         for x in list(a.encoded) + [None] for y in list(b.encoded) + [None]]
            bos = call(node, apply_sequence_map, node, a.bos, b.bos)
            images = [o for o in grid.values() if o is not None]

            def determines(side: int) -> bool:  # the output's non-null value fixes this argument
                seen: dict[Any, Any] = {}
                for args, out in grid.items():
                    if out is not None and seen.setdefault(out, args[side]) != args[side]:
                        return False
                return True

            injective = not node.null_safe and ((a.injective and determines(0)) or (b.injective and determines(1)))
            new = Info(node, name, frozenset(images), None in grid.values(), bos, injective=injective)
        elif isinstance(node, Aggregate):
            inner = info[id(node.inner)]
            keys, queries = info[id(node.selector.keys)], info[id(node.selector.queries)]
            nonempty = always_selects(node.selector, keys, queries, names)
            if node.encoding == CATEGORICAL:
                if node.inner.encoding != CATEGORICAL:
                    raise fail(node, names, f"a categorical Aggregate needs a categorical argument; {inner.name} is numerical (wrap the Aggregate in numerical())")
                agree = selected_values_agree(node, info, names)
                new = Info(node, name, inner.values, inner.nullable or not (nonempty and agree), None)
            else:
                if node.inner.encoding != NUMERICAL:
                    raise fail(node, names, f"a numerical Aggregate (a mean) needs a numerical argument; {inner.name} is categorical (wrap it in numerical(Map(...)))")
                if inner.nullable:
                    raise fail(node, names, f"a numerical Aggregate needs an argument that is never null; {inner.name} can be null")
                values = None if inner.values is None else _means(inner.values, max_seq_len)
                new = Info(node, name, values, not nonempty, None)
        elif isinstance(node, SelectorWidth):
            keys, queries = info[id(node.selector.keys)], info[id(node.selector.queries)]
            low = 1 if always_selects(node.selector, keys, queries, names) else 0
            new = Info(node, name, frozenset(range(low, max_seq_len + 1)), False, None)
            extra = list(range(max_seq_len + 1))
        else:
            raise TypeError(f"not a RASP node: {type(node).__name__}")
        if isinstance(node, Aggregate) and node.encoding == CATEGORICAL:
            extra += list(info[id(node.inner)].encoded)  # every value a selected key may carry
        extra = [v for v in extra + [new.bos] if v is not None]
        if node.encoding == NUMERICAL:
            bad = [v for v in list(new.values or ()) + extra if not _number(v)]
            if bad:
                raise fail(node, names, f"a numerical SOp must take finite real values, got {bad[0]!r}")
            new.values = None if new.values is None else merge_close(float(v) for v in new.values)
            new.bos = None if new.bos is None else float(new.bos)
            extra = sorted(merge_close(float(v) for v in extra))
        if new.values is not None:
            new.encoded = tuple(sorted(set(new.values) | set(extra), key=order_key))
            if node.encoding == CATEGORICAL and len(new.encoded) > MAX_CATEGORIES:
                raise fail(node, names, f"it takes {len(new.encoded)} values, more than {MAX_CATEGORIES} residual directions")
        info[id(node)] = new
    return info
