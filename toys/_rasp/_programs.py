"""The standard RASP programs (after the RASP paper and tracr's library) and the attention circuits
tracr lacks: induction, an IOI-like circuit, and a successor head.

``PROGRAMS`` is the one list: each entry names the program, the vocabulary and maximum length it is
tested at, and whether it is evaluated causally. Every entry is compiled and compared with the
interpreter on every input (or a stated sample) by the tests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

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


def make_length() -> SOp:
    """The length of the input at every position: the width of an all-true selector."""
    return SelectorWidth(Select(tokens, tokens, Comparison.TRUE)).named("length")


def make_reverse(sop: SOp) -> SOp:
    """``sop`` reversed: position i reads position length - 1 - i."""
    opp = SequenceMap(lambda n, i: n - i - 1, make_length(), indices).named("opp_index")
    return Aggregate(Select(indices, opp, Comparison.EQ).named("reverse_selector"), sop).named("reverse")


def make_hist() -> SOp:
    """How often each position's token occurs in the input."""
    return SelectorWidth(Select(tokens, tokens, Comparison.EQ)).named("hist")


def make_sort_unique(vals: SOp, keys: SOp) -> SOp:
    """``vals`` ordered by ``keys``. Where keys repeat, the positions they collide on are null."""
    smaller = Select(keys, keys, Comparison.LT).named("smaller")
    target = SelectorWidth(smaller).named("target_pos")
    return Aggregate(Select(target, indices, Comparison.EQ), vals).named("sort")


def make_sort(vals: SOp, keys: SOp, *, max_seq_len: int, min_key: float) -> SOp:
    """``vals`` ordered by ``keys`` with ties broken by position (keys made unique first)."""
    unique = SequenceMap(lambda x, i: x + min_key * i / max_seq_len, keys, indices).named("unique_keys")
    return make_sort_unique(vals, unique)


def make_frac_prevs(bools: SOp) -> SOp:
    """The fraction of positions up to and including each one where ``bools`` is true (numerical)."""
    prevs = Select(indices, indices, Comparison.LEQ).named("prevs")
    return numerical(Aggregate(prevs, numerical(bools))).named("frac_prevs")


def make_pair_balance(sop: SOp, open_token, close_token) -> SOp:
    """Fraction of open tokens so far minus fraction of close tokens so far (numerical)."""
    opens = make_frac_prevs(Map(lambda t: t == open_token, sop).named(f"is_{_label(open_token)}")).named(f"opens_{_label(open_token)}")
    closes = make_frac_prevs(Map(lambda t: t == close_token, sop).named(f"is_{_label(close_token)}")).named(f"closes_{_label(close_token)}")
    return numerical(SequenceMap(lambda a, b: a - b, opens, closes)).named(f"balance_{_label(open_token)}")


def _label(token) -> str:
    names = {"(": "paren", ")": "rparen", "{": "brace", "}": "rbrace", "[": "bracket", "]": "rbracket"}
    return names.get(token, str(token))


def make_shuffle_dyck(pairs: Sequence[str]) -> SOp:
    """True everywhere when every pair of brackets is balanced (interleaving allowed), else False."""
    if not pairs or any(len(p) != 2 for p in pairs):
        raise ValueError(f"pairs must be two-character strings such as '()', got {pairs!r}")
    balances = [make_pair_balance(tokens, p[0], p[1]) for p in pairs]
    negative = [Map(lambda b: b < 0, b).named(f"negative_{i}") for i, b in enumerate(balances)]
    zero = [Map(lambda b: b == 0, b).named(f"zero_{i}") for i, b in enumerate(balances)]
    any_negative, all_zero = negative[0], zero[0]
    for i in range(1, len(pairs)):
        any_negative = SequenceMap(lambda a, b: a or b, any_negative, negative[i]).named(f"any_negative_{i}")
        all_zero = SequenceMap(lambda a, b: a and b, all_zero, zero[i]).named(f"all_zero_{i}")
    any_negative = numerical(Map(lambda x: x, any_negative)).named("any_negative")
    select_all = Select(indices, indices, Comparison.TRUE).named("select_all")
    has_negative = numerical(Aggregate(select_all, any_negative)).named("has_negative")
    last = SequenceMap(lambda n, _: n - 1, make_length(), indices).named("last_index")
    last_zero = Aggregate(Select(indices, last, Comparison.EQ).named("select_last"), all_zero).named("last_zero")
    no_negative = Map(lambda x: x == 0, has_negative).named("no_negative")
    return SequenceMap(lambda a, b: a and b, last_zero, no_negative).named("shuffle_dyck")


def shift_by(offset: int, sop: SOp) -> SOp:
    """``sop`` shifted right by ``offset`` positions; the first ``offset`` positions are null."""
    select = Select(indices, indices, lambda k, q: q == k + offset).named(f"shift_{offset}_selector")
    return Aggregate(select, sop).named(f"shift_by_{offset}")


def detect_pattern(sop: SOp, pattern: Sequence) -> SOp:
    """True at the last element of each occurrence of ``pattern``; null before a full pattern fits."""
    if len(pattern) < 1:
        raise ValueError(f"pattern must have at least one element, got {pattern!r}")
    detectors = []
    for i, element in enumerate(reversed(pattern)):
        detector = Map(lambda t, e=element: t == e, sop).named(f"is_{_label(element)}_{i}")
        detectors.append(shift_by(i, detector).named(f"was_{_label(element)}_{i}") if i else detector)
    found = detectors.pop()
    while detectors:
        found = SequenceMap(lambda a, b: a and b, found, detectors.pop()).named(f"pattern_{len(detectors)}")
    return found.named("detect_pattern")


def make_count(sop: SOp, token) -> SOp:
    """How often ``token`` occurs in ``sop``, at every position."""
    return SelectorWidth(Select(sop, sop, lambda k, q: k == token)).named(f"count_{_label(token)}")


def make_count_less_freq(n: int) -> SOp:
    """How many positions hold a token that occurs at most ``n`` times."""
    hist = make_hist()
    return SelectorWidth(Select(hist, hist, lambda k, q: k <= n)).named("count_less_freq")


def make_sort_freq(max_seq_len: int) -> SOp:
    """Tokens ordered by decreasing frequency (ties by position)."""
    hist = Map(lambda h: -h, make_hist()).named("minus_hist")
    return make_sort(tokens, hist, max_seq_len=max_seq_len, min_key=1).named("sort_freq")


def make_induction() -> SOp:
    """Induction (Olsson et al. 2022): at each position, the token that followed an earlier
    occurrence of the current token. A previous-token head writes each position's previous token;
    the induction head matches it against the current token and copies the token found. Null when
    there is no earlier occurrence or the occurrences disagree. Evaluate causally."""
    previous = shift_by(1, tokens).named("previous_token")
    match = Select(previous, tokens, Comparison.EQ).named("induction_selector")
    return Aggregate(match, tokens).named("induction")


def make_ioi(names: Sequence) -> SOp:
    """An IOI-like circuit (after Wang et al. 2023): at each position, the name that occurred once
    when exactly one other name occurred twice. Three heads in sequence:

    - duplicate-token head: at a repeated name, attends to its earlier occurrence and writes it;
    - S-inhibition head: moves the duplicated name (the subject) to every later position;
    - name-mover head: copies the names that are not the subject.

    Null where the pattern does not hold (no duplicate, several, or several candidate names).
    Evaluate causally."""
    names = frozenset(names)
    if not names:
        raise ValueError("names must not be empty")
    token_index = SequenceMap(lambda t, i: (t, i), tokens, indices).named("token_at")
    earlier_same = Select(token_index, token_index, lambda k, q: k[0] == q[0] and k[1] < q[1] and k[0] in names)
    duplicate = Aggregate(earlier_same.named("duplicate_selector"), Map(lambda ti: ti[0], token_index).named("token_of")).named("duplicate")
    subject = Aggregate(Select(duplicate, indices, lambda k, q: True).named("inhibition_selector"), duplicate).named("subject")
    movers = Select(tokens, subject, lambda k, q: k in names and k != q).named("mover_selector")
    return Aggregate(movers, tokens).named("indirect_object")


def make_successor(successor: Callable) -> SOp:
    """A successor head (after Gould et al. 2023): each position outputs ``successor`` of the
    previous token; the head's OV circuit maps each token to its successor. Null at position 0."""
    select = Select(indices, indices, lambda k, q: q == k + 1).named("previous_selector")
    return Aggregate(select, Map(successor, tokens).named("successor_of")).named("successor")


def make_tracr_issue_25() -> SOp:
    """google-deepmind/tracr issue 25: ``Aggregate(sel, Aggregate(sel, indices))`` with
    ``sel = Select(indices, tokens, EQ)``. On [1, 2, 3, 4] RASP gives [2, 3, None, None]."""
    select = Select(indices, tokens, Comparison.EQ).named("token_as_index")
    return Aggregate(select, Aggregate(select, indices).named("inner")).named("outer")


@dataclasses.dataclass(frozen=True)
class ProgramSpec:
    """A standard program and the setting it is compiled and tested in."""

    name: str
    make: Callable[[], SOp]
    vocab: tuple
    max_seq_len: int
    causal: bool = False
    sample: int | None = None  # inputs drawn at random when enumerating all of them is too many
    task: bool = True  # has a circuit task: an answer at the last position that a corruption can change


PROGRAMS: tuple[ProgramSpec, ...] = (
    ProgramSpec("length", make_length, ("a", "b", "c"), 5, task=False),
    ProgramSpec("reverse", lambda: make_reverse(tokens), ("a", "b", "c"), 5),
    ProgramSpec("hist", make_hist, ("a", "b", "c"), 5),
    ProgramSpec("sort_unique", lambda: make_sort_unique(tokens, tokens), (1, 2, 3, 4), 5),
    ProgramSpec("sort", lambda: make_sort(tokens, tokens, max_seq_len=5, min_key=1), (1, 2, 3, 4), 5),
    ProgramSpec("frac_prevs", lambda: make_frac_prevs(Map(lambda t: t == "x", tokens).named("is_x")), ("x", "y", "z"), 5,
                causal=True),
    ProgramSpec("pair_balance", lambda: make_pair_balance(tokens, "(", ")"), ("(", ")", "a"), 5, causal=True),
    ProgramSpec("shuffle_dyck2", lambda: make_shuffle_dyck(["()", "{}"]), ("(", ")", "{", "}", "a"), 5),
    ProgramSpec("shuffle_dyck3", lambda: make_shuffle_dyck(["()", "{}", "[]"]), ("(", ")", "{", "}", "[", "]", "a"), 6,
                sample=2000),
    ProgramSpec("shift_by", lambda: shift_by(2, tokens), ("a", "b", "c"), 5, causal=True),
    ProgramSpec("detect_pattern", lambda: detect_pattern(tokens, "abc"), ("a", "b", "c"), 6, causal=True),
    ProgramSpec("count", lambda: make_count(tokens, "a"), ("a", "b", "c"), 5),
    ProgramSpec("count_less_freq", lambda: make_count_less_freq(2), ("a", "b", "c"), 5),
    ProgramSpec("sort_freq", lambda: make_sort_freq(5), ("a", "b", "c"), 5),
    ProgramSpec("induction", make_induction, ("a", "b", "c", "d"), 6, causal=True),
    ProgramSpec("ioi", lambda: make_ioi("ABC"), ("A", "B", "C", "x"), 6, causal=True),
    ProgramSpec("successor", lambda: make_successor(lambda t: (t + 1) % 5), (0, 1, 2, 3, 4), 5, causal=True),
    ProgramSpec("tracr_issue_25", make_tracr_issue_25, (1, 2, 3, 4), 5),
)

# The programs with a circuit task, the choices of ``toys.rasp_transformer``.
RASP_PROGRAMS: tuple[str, ...] = tuple(spec.name for spec in PROGRAMS if spec.task)
# The programs whose trained kind (``rasp_transformer(..., trained=True)``) verifies at the default
# training steps for seeds 0, 1 and 2 (measured; the suite's trained toys).
TRAINED_PROGRAMS: tuple[str, ...] = ("successor", "shift_by", "reverse")
# Those that also verify in superposition, at ``residual_fraction=0.5`` (seeds 0, 1 and 2).
SUPERPOSED_PROGRAMS: tuple[str, ...] = ("successor", "reverse")
