"""A subset of RASP (Weiss, Goldberg & Yahav 2021, "Thinking Like Transformers") with total semantics.

The language follows tracr (Lindner et al. 2023, "Tracr: Compiled Transformers as a Laboratory for
Interpretability"): sequence operations (SOps) built from ``tokens`` and ``indices`` with ``Map``,
``SequenceMap``, ``Aggregate`` and ``SelectorWidth``, and selectors built with ``Select``.

What differs is that every operation is defined on every input, so a compiled model can be compared
with the program at *every* position:

- **Null.** ``None`` is a first-class value. A ``Map`` or ``SequenceMap`` of a null argument is null
  and a ``Select`` predicate with a null argument is false, unless the operation is declared
  ``null_safe=True``, in which case the function receives ``None`` and its result is used. (So the
  induction pattern ``Select(shift_by(1, tokens), tokens, EQ)`` is an ordinary program.) ``TRUE``
  and ``FALSE`` ignore their arguments and are null-safe by nature.
- **Aggregate.** At each query position the selected key positions are those where the predicate
  holds (and, under causal evaluation, the key is not after the query). A *categorical* aggregate
  returns the value all selected positions share, and null when none is selected or they disagree.
  A *numerical* aggregate returns the mean of the selected values, and null when none is selected
  or one of them is null.
- **SelectorWidth** is the number of selected keys (an integer from 0 to the length).

``evaluate(program, tokens, causal=...)`` is the interpreter, and the specification a compiled
model is tested against. Functions given to ``Map``, ``SequenceMap`` and ``Select`` must be pure.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable, Hashable, Sequence
from typing import Any

CATEGORICAL = "categorical"
NUMERICAL = "numerical"
ENCODINGS = (CATEGORICAL, NUMERICAL)


class Comparison(enum.Enum):
    """The predicates of ``Select``, called as ``predicate(key, query)`` (tracr's convention)."""

    EQ = "=="
    LT = "<"
    LEQ = "<="
    GT = ">"
    GEQ = ">="
    NEQ = "!="
    TRUE = "true"
    FALSE = "false"

    def __call__(self, key: Any, query: Any) -> bool:
        if (key is None or query is None) and self in _ORDERED:
            return False  # null is not ordered: a null-safe LT/LEQ/GT/GEQ is false on it
        return bool(_COMPARE[self](key, query))


_ORDERED = frozenset({Comparison.LT, Comparison.LEQ, Comparison.GT, Comparison.GEQ})
_COMPARE: dict[Comparison, Callable[[Any, Any], Any]] = {
    Comparison.EQ: lambda k, q: k == q,
    Comparison.LT: lambda k, q: k < q,
    Comparison.LEQ: lambda k, q: k <= q,
    Comparison.GT: lambda k, q: k > q,
    Comparison.GEQ: lambda k, q: k >= q,
    Comparison.NEQ: lambda k, q: k != q,
    Comparison.TRUE: lambda k, q: True,
    Comparison.FALSE: lambda k, q: False,
}


def _describe(f: Callable) -> str:
    if isinstance(f, Comparison):
        return f.name
    return getattr(f, "__name__", type(f).__name__)


@dataclasses.dataclass(frozen=True, eq=False)
class RASPExpr:
    """A node of a RASP program. Nodes compare by identity; ``named`` returns a renamed copy."""

    name: str | None = dataclasses.field(default=None, kw_only=True)

    def children(self) -> tuple[RASPExpr, ...]:
        return ()

    def named(self, name: str) -> RASPExpr:
        if not isinstance(name, str) or not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"name must be a non-empty string of letters, digits, '_' and '-', got {name!r}")
        return dataclasses.replace(self, name=name)

    def __repr__(self) -> str:  # short: a program's nodes can nest deeply
        return f"{type(self).__name__}({self.name or '…'})"


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class SOp(RASPExpr):
    """A sequence operation: maps an input sequence to a sequence of the same length."""

    encoding: str = dataclasses.field(default=CATEGORICAL, kw_only=True)

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {self.encoding!r}")


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Tokens(SOp):
    """The input tokens (categorical)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.encoding != CATEGORICAL:
            raise ValueError("tokens are categorical; numerical(tokens) is not allowed (use a numerical Map)")


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Indices(SOp):
    """The positions 0 .. length - 1 (categorical)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.encoding != CATEGORICAL:
            raise ValueError("indices are categorical; numerical(indices) is not allowed (use a numerical Map)")


def _check_callable(name: str, f: Any) -> None:
    if not callable(f):
        raise ValueError(f"{name} must be a function, got {type(f).__name__}")


def _check_sop(name: str, value: Any) -> None:
    if not isinstance(value, SOp):
        raise ValueError(f"{name} must be an SOp (tokens, indices, Map, ...), got {type(value).__name__}")


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Map(SOp):
    """``f`` applied at every position: ``Map(f, sop)[i] = f(sop[i])``."""

    f: Callable[[Any], Any]
    inner: SOp
    null_safe: bool = dataclasses.field(default=False, kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_callable("Map's f", self.f)
        _check_sop("Map's argument", self.inner)

    def children(self) -> tuple[RASPExpr, ...]:
        return (self.inner,)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class SequenceMap(SOp):
    """``f`` applied pairwise: ``SequenceMap(f, a, b)[i] = f(a[i], b[i])``."""

    f: Callable[[Any, Any], Any]
    first: SOp
    second: SOp
    null_safe: bool = dataclasses.field(default=False, kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_callable("SequenceMap's f", self.f)
        _check_sop("SequenceMap's first argument", self.first)
        _check_sop("SequenceMap's second argument", self.second)

    def children(self) -> tuple[RASPExpr, ...]:
        return (self.first, self.second)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Select(RASPExpr):
    """A selector: query position q selects key position k when ``predicate(keys[k], queries[q])``."""

    keys: SOp
    queries: SOp
    predicate: Comparison | Callable[[Any, Any], Any]
    null_safe: bool = dataclasses.field(default=False, kw_only=True)

    def __post_init__(self) -> None:
        _check_sop("Select's keys", self.keys)
        _check_sop("Select's queries", self.queries)
        _check_callable("Select's predicate", self.predicate)

    def children(self) -> tuple[RASPExpr, ...]:
        return (self.keys, self.queries)

    def holds(self, key: Any, query: Any) -> bool:
        """The predicate with the null rule applied."""
        if (key is None or query is None) and not self.null_safe and self.predicate not in (Comparison.TRUE, Comparison.FALSE):
            return False
        return bool(self.predicate(key, query))


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Aggregate(SOp):
    """At each query, the selected values of ``sop``: shared value (categorical) or mean (numerical)."""

    selector: Select
    inner: SOp

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.selector, Select):
            raise ValueError(f"Aggregate's selector must be a Select, got {type(self.selector).__name__}")
        _check_sop("Aggregate's argument", self.inner)

    def children(self) -> tuple[RASPExpr, ...]:
        return (self.selector, self.inner)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class SelectorWidth(SOp):
    """At each query, the number of selected keys."""

    selector: Select

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.selector, Select):
            raise ValueError(f"SelectorWidth's selector must be a Select, got {type(self.selector).__name__}")

    def children(self) -> tuple[RASPExpr, ...]:
        return (self.selector,)


tokens = Tokens(name="tokens")
indices = Indices(name="indices")


def numerical(sop: SOp) -> SOp:
    """``sop`` with a numerical encoding (one residual dimension holding the value)."""
    _check_sop("numerical's argument", sop)
    return dataclasses.replace(sop, encoding=NUMERICAL)


def categorical(sop: SOp) -> SOp:
    """``sop`` with a categorical encoding (one residual dimension per value, plus null)."""
    _check_sop("categorical's argument", sop)
    return dataclasses.replace(sop, encoding=CATEGORICAL)


def nodes(program: RASPExpr, *more: RASPExpr) -> list[RASPExpr]:
    """Every node of ``program`` (and of ``more`` roots after it), children before parents, each
    once (by identity)."""
    order: list[RASPExpr] = []
    seen: set[int] = set()
    stack: list[tuple[RASPExpr, bool]] = [(root, False) for root in reversed((program, *more))]
    while stack:
        node, expanded = stack.pop()
        if id(node) in seen:
            continue
        if expanded:
            seen.add(id(node))
            order.append(node)
            continue
        stack.append((node, True))
        for child in reversed(node.children()):
            if id(child) not in seen:
                stack.append((child, False))
    return order


def describe(node: RASPExpr, names: dict[int, str]) -> str:
    """One line: the operation and the names of its arguments, e.g. ``Aggregate(sel_3, tokens)``."""
    arg = lambda child: names.get(id(child), "?")  # noqa: E731
    if isinstance(node, Tokens | Indices):
        return type(node).__name__.lower()
    if isinstance(node, Map):
        return f"Map({_describe(node.f)}, {arg(node.inner)})"
    if isinstance(node, SequenceMap):
        return f"SequenceMap({_describe(node.f)}, {arg(node.first)}, {arg(node.second)})"
    if isinstance(node, Select):
        return f"Select({arg(node.keys)}, {arg(node.queries)}, {_describe(node.predicate)})"
    if isinstance(node, Aggregate):
        return f"{node.encoding} Aggregate({describe(node.selector, names)}, {arg(node.inner)})"
    if isinstance(node, SelectorWidth):
        return f"SelectorWidth({describe(node.selector, names)})"
    raise TypeError(f"not a RASP node: {type(node).__name__}")


def apply_map(node: Map, value: Any) -> Any:
    """``Map``'s value for one argument value, with the null rule."""
    if value is None and not node.null_safe:
        return None
    return node.f(value)


def apply_sequence_map(node: SequenceMap, a: Any, b: Any) -> Any:
    """``SequenceMap``'s value for one pair of argument values, with the null rule."""
    if (a is None or b is None) and not node.null_safe:
        return None
    return node.f(a, b)


def selection(selector: Select, keys: Sequence, queries: Sequence, causal: bool) -> list[list[int]]:
    """For each query position, the selected key positions."""
    n = len(keys)
    return [[k for k in range(n if not causal else q + 1) if selector.holds(keys[k], queries[q])] for q in range(n)]


def aggregate_value(encoding: str, values: list) -> Any:
    """The aggregate of the selected ``values`` (the semantics in the module docstring)."""
    if not values:
        return None
    if encoding == NUMERICAL:
        if any(v is None for v in values):
            return None
        return math.fsum(float(v) for v in values) / len(values)
    first = values[0]
    return first if all(v == first and (v is None) == (first is None) for v in values) else None


def trace(program: SOp, input_tokens: Sequence[Hashable], *, causal: bool = False,
          order: list | None = None) -> tuple[dict[int, list], dict[int, list]]:
    """The interpreter's value of every SOp of ``program`` (by node id) at every position, and each
    Aggregate's and SelectorWidth's selected keys per query. ``order``: the nodes to evaluate
    (default ``nodes(program)``; pass ``nodes(program, *more)`` for more roots)."""
    seq = list(input_tokens)
    n = len(seq)
    values: dict[int, list] = {}
    chosen: dict[int, list] = {}
    for node in order if order is not None else nodes(program):
        if isinstance(node, Select):
            continue
        if isinstance(node, Tokens):
            out = list(seq)
        elif isinstance(node, Indices):
            out = list(range(n))
        elif isinstance(node, Map):
            out = [apply_map(node, v) for v in values[id(node.inner)]]
        elif isinstance(node, SequenceMap):
            out = [apply_sequence_map(node, a, b) for a, b in zip(values[id(node.first)], values[id(node.second)])]
        elif isinstance(node, Aggregate | SelectorWidth):
            sel = node.selector
            chosen[id(node)] = selection(sel, values[id(sel.keys)], values[id(sel.queries)], causal)
            if isinstance(node, Aggregate):
                inner = values[id(node.inner)]
                out = [aggregate_value(node.encoding, [inner[k] for k in ks]) for ks in chosen[id(node)]]
            else:
                out = [len(ks) for ks in chosen[id(node)]]
        else:
            raise TypeError(f"not a RASP node: {type(node).__name__}")
        if node.encoding == NUMERICAL:
            out = [None if v is None else float(v) for v in out]
        values[id(node)] = out
    return values, chosen


def evaluate(program: SOp, input_tokens: Sequence[Hashable], *, causal: bool = False) -> list:
    """The program's output on ``input_tokens`` (one value or ``None`` per position).

    ``causal=True`` evaluates as a decoder does: a query never selects a later key.
    """
    _check_sop("program", program)
    return trace(program, input_tokens, causal=causal)[0][id(program)]
