"""Compile a RASP program into the weights of a transformer that computes it exactly.

The model (see ``_model``): token and position embeddings, then ``n_layers`` layers of an attention
sublayer and an MLP sublayer, each adding to a residual stream, then an unembedding. No layer norm.
Position 0 holds a BOS token; input position i is model position i + 1.

**The residual stream** has named directions: ``one`` (1 everywhere), ``bos`` (1 at the BOS
position), and a block per SOp: a categorical SOp has one direction per value it can take plus a
null direction (one-hot); a numerical SOp has a value direction and a null direction. Aggregates
that need a cleanup and selector widths also get a scratch block written by their head. At the BOS
position every SOp holds its value on a null position (``Info.bos``).

**Attention** (one head per ``Aggregate`` or ``SelectorWidth``): the query-key form gives
``scale`` to selected keys and 0 to the others; the BOS key gets ``scale / 2`` (so it wins only when
no key is selected) or ``scale`` for a selector width (so its weight is ``1 / (width + 1)``); a BOS
query attends to BOS alone. Causal programs mask later keys. With ``scale = 100`` the leaked weight
is below ``exp(-50)``, under float32 resolution.

**MLPs** are exact lookup tables on one-hot inputs, and exact step functions (clipped ramps of two
ReLUs with margins a quarter of the gap between neighbouring values) on numerical inputs.

Model size, checked by the tests: ``d_model = 2 + sum over categorical SOps (|values| + 1) +
2 * (numerical SOps) + sum over cleanups (|values| + 1) + (selector widths)``; MLP neurons per
operation: categorical Map ``|values in| + 1``; Map of a numerical SOp ``2 |values in|``;
categorical SequenceMap ``(|values a| + 1)(|values b| + 1)`` (``|values a| + 1`` when both
arguments are one SOp); numerical (affine) SequenceMap 6; SelectorWidth ``2 max_seq_len + 2``;
categorical Aggregate cleanup ``2 |values| + 1`` (none when the selected values provably agree);
heads per layer: the Aggregates and SelectorWidths placed there. ``|values|`` counts ``Info.encoded``.
The catalog's options add to these: ``extra`` SOps their own blocks, heads and MLPs by the same
formulas; each backup one head; ``cancel_gain`` two heads (and the ``indices`` block if the program
has none); ``saturate`` the readout's block and MLP: ``2 (|values| + 1)`` neurons for a categorical
output, a numerical Map's ``2 |values|`` for a numerical one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from planted.toys._rasp._analysis import Info, analyse, fail, holds, name_nodes, order_key, selected_values_agree
from planted.toys._rasp._language import (
    CATEGORICAL,
    NUMERICAL,
    Aggregate,
    Comparison,
    Indices,
    Map,
    Select,
    SelectorWidth,
    SequenceMap,
    SOp,
    Tokens,
    apply_map,
    apply_sequence_map,
    describe,
    indices,
    nodes,
)

MIN_GAP = 2e-4  # relative spacing a numerical value set needs for exact steps in float32


@dataclasses.dataclass(frozen=True)
class Component:
    """One placed operation of a compiled program.

    name, expression : the SOp's name and its RASP expression
    kind : "embedding", "head", "mlp" (a Map, SequenceMap, selector-width or cleanup MLP)
    op : "tokens", "indices", "map", "sequence_map", "aggregate", "selector_width", "cleanup"
    layer : model layer (-1 for the embedding); head : head index within the layer (heads)
    neurons : (start, stop) of its MLP neurons within the layer (MLPs)
    reads, writes : residual blocks (SOp names, "one", "bos", "<name>.scratch") read and written
    reads_q, reads_k, reads_v : a head's reads by input, read off its weights: the blocks its
        queries, keys and values read (empty for embeddings and MLPs)
    """

    name: str
    expression: str
    kind: str
    op: str
    layer: int
    head: int = -1
    neurons: tuple[int, int] = (0, 0)
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    reads_q: tuple[str, ...] = ()
    reads_k: tuple[str, ...] = ()
    reads_v: tuple[str, ...] = ()


class _Residual:
    """The named directions of the residual stream."""

    def __init__(self):
        self.labels: list[str] = []
        self.blocks: dict[str, dict[Any, int]] = {}

    def add(self, block: str, keys: Sequence[Any], labels: Sequence[str]) -> None:
        self.blocks[block] = {}
        for key, label in zip(keys, labels):
            self.blocks[block][key] = len(self.labels)
            self.labels.append(label)

    def categorical(self, block: str, values: Sequence[Any]) -> None:
        self.add(block, [("v", v) for v in values] + [("null",)], [f"{block}:{v!r}" for v in values] + [f"{block}:None"])

    def numerical(self, block: str) -> None:
        self.add(block, [("value",), ("null",)], [f"{block}", f"{block}:None"])

    def dims(self, block: str) -> list[int]:
        return list(self.blocks[block].values())

    def of(self, block: str, value: Any, numerical: bool = False) -> dict[int, float]:
        """The vector (as {dim: weight}) that encodes ``value`` in ``block``."""
        b = self.blocks[block]
        if value is None:
            return {b[("null",)]: 1.0}
        if numerical:
            return {b[("value",)]: float(value)} if float(value) != 0.0 else {}
        return {b[("v", value)]: 1.0}

    def keyed(self, block: str) -> list[tuple[int, Any]]:
        """(dim, value) for each direction of a categorical block; value None for the null one."""
        return [(d, None if key == ("null",) else key[1]) for key, d in self.blocks[block].items()]


def _plus(*vectors: dict[int, float], scales: Sequence[float] | None = None) -> dict[int, float]:
    out: dict[int, float] = {}
    for i, v in enumerate(vectors):
        s = 1.0 if scales is None else scales[i]
        for d, w in v.items():
            out[d] = out.get(d, 0.0) + s * w
    return out


@dataclasses.dataclass
class _Part:
    node: SOp
    kind: str  # "head" or "mlp"
    op: str
    label: str | None = None  # the component's name when it is not its node's
    sublayer: int = -1
    neurons: list = dataclasses.field(default_factory=list)  # [(in {dim: w}, out {dim: w})]
    qk: dict = dataclasses.field(default_factory=dict)  # {(query dim, key dim): w}
    ov: dict = dataclasses.field(default_factory=dict)  # {value dim: out {dim: w}}
    reads: tuple = ()
    writes: tuple = ()


def _clip_step(linear: dict[int, float], slope: float, write: dict[int, float], one: int) -> list:
    """Two neurons computing ``clip(slope * linear + 0.5, 0, 1) * write`` (``linear`` may use ``one``)."""
    pre = {d: slope * w for d, w in linear.items()}
    up = _plus(pre, {one: 0.5})
    down = _plus(pre, {one: -0.5})
    return [(up, write), (down, {d: -w for d, w in write.items()})]


def _gap_slope(node, names, xs: list[float]) -> float:
    """The slope of the steps between sorted numbers ``xs``: transitions a quarter gap wide."""
    if len(xs) < 2:
        return 1.0
    gap = min(b - a for a, b in zip(xs, xs[1:]))
    scale = max(1.0, max(abs(x) for x in xs))
    if gap < MIN_GAP * scale:
        raise fail(node, names, f"its numerical argument takes values only {gap:.3g} apart (at magnitude {scale:.3g}); "
                                "exact steps need a spacing of at least 2e-4 of the magnitude in float32")
    return 2.0 / gap


@dataclasses.dataclass(frozen=True, eq=False)
class Compiled:
    """A compiled program: the weights and everything needed to read them.

    params : flat dict of float32 NumPy arrays (``_model`` documents the shapes)
    residual_labels : the name of each residual direction
    components : the placed operations, embedding first, in the order of the model
    vocab : the input tokens (token id i + 1 is vocab[i]; id 0 is BOS)
    output_values : what each unembedding column decodes to (categorical: the values, then None;
        numerical: ``("value", None)``)
    blocks : residual block name -> {("v", value) | ("value",) | ("null",) | ...: dimension}
    """

    program: SOp
    vocab: tuple
    max_seq_len: int
    causal: bool
    scale: float
    params: dict
    residual_labels: tuple[str, ...]
    components: tuple[Component, ...]
    output_name: str
    output_encoding: str
    output_values: tuple
    blocks: dict = dataclasses.field(repr=False)
    info: dict = dataclasses.field(repr=False)
    names: dict = dataclasses.field(repr=False)
    extra: tuple = ()  # the extra SOps placed beside the program (distractors)


def compile_program(program: SOp, vocab: Sequence[Hashable], max_seq_len: int, *, causal: bool = False,
                    scale: float = 100.0, extra: Sequence[SOp] = (), backups: Sequence[Aggregate] = (),
                    cancel_gain: float = 0.0, saturate: bool = False) -> Compiled:
    """Compile ``program`` for inputs of 1 .. ``max_seq_len`` tokens from ``vocab``.

    Raises ``ValueError`` naming the operation and the reason when a program cannot be compiled
    exactly (a numerical Select, a mean of a possibly-null SOp, values too close for exact steps, a
    SequenceMap of numerical SOps that is not affine, ...). ``scale`` sets how sharp attention is.

    The failure-mode catalog's constructions, each exact on every input:

    - ``extra``: more SOps to place and compute (distractors): nothing reads them.
    - ``backups``: categorical Aggregates of the program (ones without a cleanup) that get a backup
      head one layer later. It attends like the first head and writes the same block, but only
      where that block is empty: where the first head's output is present (always, unless it is
      removed) the backup's query penalises every key and it attends to BOS, which writes nothing.
      What reads the block is placed after the backup.
    - ``cancel_gain``: two heads after the output, each copying the output at its own position
      into the output block, times +cancel_gain and -cancel_gain: together nothing, alone a lot.
    - ``saturate``: the output is read through a steep readout, an identity ``Map`` named
      ``{output}_readout`` whose MLP is a clipped ramp per value (a categorical output) or the usual
      exact steps (a numerical one), flat around every value the output takes: the answer is
      unchanged and its gradient with respect to everything upstream is zero.
    """
    if not isinstance(program, SOp):
        raise ValueError(f"program must be an SOp, got {type(program).__name__}")
    extra = tuple(extra)
    if any(not isinstance(e, SOp) for e in extra):
        raise ValueError("extra must be SOps")
    if not np.isfinite(cancel_gain) or cancel_gain < 0:
        raise ValueError(f"cancel_gain must be a finite number >= 0, got {cancel_gain!r}")
    if not isinstance(saturate, bool):
        raise ValueError(f"saturate must be True or False, got {saturate!r}")
    steep: set[int] = set()
    if saturate:
        inner_name = name_nodes(program, *extra)[1][id(program)]
        program = Map(_identity, program, encoding=program.encoding, null_safe=True).named(f"{inner_name}_readout")
        steep.add(id(program))
    if cancel_gain and not any(isinstance(n, Indices) for n in nodes(program, *extra)):
        extra = extra + (indices,)  # the cancelling heads find each position by its index
    vocab = tuple(vocab)
    try:
        distinct = len(set(vocab))
    except TypeError as error:
        raise ValueError(f"vocab must be hashable tokens (strings, numbers, tuples), got {vocab!r}") from error
    if not vocab or any(v is None for v in vocab) or distinct != len(vocab):
        raise ValueError(f"vocab must be distinct, non-null tokens, got {vocab!r}")
    if not isinstance(max_seq_len, int) or isinstance(max_seq_len, bool) or not 1 <= max_seq_len <= 512:
        raise ValueError(f"max_seq_len must be an integer from 1 to 512, got {max_seq_len!r}")
    if not np.isfinite(scale) or scale < 1:
        raise ValueError(f"scale must be a finite number >= 1, got {scale!r}")
    order, names = name_nodes(program, *extra)
    info = analyse(order, names, vocab, max_seq_len)
    sops = [n for n in order if not isinstance(n, Select)]
    backup_ids = {id(b) for b in backups}
    for b in backups:
        if not any(b is n for n in sops) or not isinstance(b, Aggregate) or b.encoding != CATEGORICAL or not selected_values_agree(b, info, names):
            raise ValueError(f"backups must be categorical Aggregates of the program whose selected values provably agree "
                             f"(a head without a cleanup); {names.get(id(b), b)!r} is not")
    consumers: dict[int, list] = {}
    for node in order:
        for child in node.children():
            consumers.setdefault(id(child), []).append(node)
    # A categorical Map read only by one categorical Aggregate is folded into that head's OV circuit.
    fused = {
        id(n) for n in sops
        if isinstance(n, Map) and n is not program and n.encoding == CATEGORICAL and n.inner.encoding == CATEGORICAL
        and len(consumers.get(id(n), [])) == 1 and isinstance(consumers[id(n)][0], Aggregate)
        and consumers[id(n)][0].inner is n and consumers[id(n)][0].encoding == CATEGORICAL
    }

    resid = _Residual()
    resid.add("one", [("one",)], ["one"])
    resid.add("bos", [("bos",)], ["bos"])
    one, bos_dim = resid.blocks["one"][("one",)], resid.blocks["bos"][("bos",)]
    parts: dict[int, list[_Part]] = {}
    for node in sops:
        if id(node) in fused:
            continue
        inf = info[id(node)]
        if node.encoding == CATEGORICAL:
            resid.categorical(inf.name, inf.encoded)
        else:
            resid.numerical(inf.name)
        parts[id(node)] = _build(node, info, names, resid, one, bos_dim, scale, max_seq_len, fused, id(node) in steep)
        if id(node) in backup_ids:
            parts[id(node)].append(_backup(node, parts[id(node)][0], info, names, resid, bos_dim, scale))
    if cancel_gain:
        index = next(n for n in sops if isinstance(n, Indices))
        copy = Aggregate(Select(index, index, Comparison.EQ), program, encoding=program.encoding)
        pair = _build(copy, info | {id(copy): info[id(program)]}, names | {id(copy): names[id(program)]}, resid, one,
                      bos_dim, scale, max_seq_len, set())
        head = pair[0]
        out = names[id(program)]
        for sign, label in ((1.0, f"{out}.cancel_plus"), (-1.0, f"{out}.cancel_minus")):
            ov = {src: ({src: sign * cancel_gain} if src != bos_dim else {}) for src in resid.dims(out)}
            parts.setdefault("cancel", []).append(_Part(copy, "head", "cancellation", label=label, qk=head.qk, ov=ov,
                                                        reads=tuple(dict.fromkeys((names[id(index)], out, "one", "bos"))),
                                                        writes=(out,)))
    # Placement: each part in the first sublayer of its kind after everything it reads.
    ready: dict[int, int] = {}
    for node in sops:
        if id(node) in fused:
            ready[id(node)] = ready[id(node.inner)]
            continue
        if isinstance(node, Tokens | Indices):
            ready[id(node)] = -1
            continue
        deps = [c for c in node.children() if not isinstance(c, Select)]
        if isinstance(node, Aggregate | SelectorWidth):
            deps += [node.selector.keys, node.selector.queries]
        at = max(ready[id(d)] for d in deps)
        for part in parts[id(node)]:
            want = 0 if part.kind == "head" else 1
            at = at + 1 if (at + 1) % 2 == want else at + 2
            part.sublayer = at
        ready[id(node)] = at
    for part in parts.get("cancel", []):
        at = ready[id(program)]
        part.sublayer = at + 1 if (at + 1) % 2 == 0 else at + 2
    placed = [p for n in sops if id(n) not in fused for p in parts[id(n)] if p.kind in ("head", "mlp")]
    placed += parts.get("cancel", [])
    n_layers = max([p.sublayer // 2 + 1 for p in placed], default=1)
    return _assemble(program, vocab, max_seq_len, causal, scale, resid, sops, parts, placed, n_layers, info, names, fused,
                     extra)


def _identity(value):
    return value


def _build(node, info, names, resid: _Residual, one, bos_dim, scale, max_seq_len, fused, steep=False) -> list[_Part]:
    """The parts (embedding, head, MLP) that compute ``node``, with their weights as sparse dicts.
    ``steep``: a categorical Map as clipped ramps, flat at 0 and 1 (the ``saturate`` readout)."""
    inf = info[id(node)]
    numerical = node.encoding == NUMERICAL
    enc = lambda value: resid.of(inf.name, value, numerical)  # noqa: E731
    name = inf.name
    if isinstance(node, Tokens | Indices):
        return [_Part(node, "embedding", type(node).__name__.lower(), writes=(name,))]
    if isinstance(node, Map):
        src = info[id(node.inner)]
        if node.inner.encoding == CATEGORICAL and steep:
            neurons = [n for d, v in resid.keyed(src.name) for n in _clip_step({d: 1.0, one: -0.5}, 4.0, enc(apply_map(node, v)), one)]
            return [_Part(node, "mlp", "map", neurons=neurons, reads=(src.name,), writes=(name,))]
        if node.inner.encoding == CATEGORICAL:
            neurons = [({d: 1.0}, enc(apply_map(node, v))) for d, v in resid.keyed(src.name)]
            return [_Part(node, "mlp", "map", neurons=neurons, reads=(src.name,), writes=(name,))]
        xs = sorted(float(v) for v in src.encoded)
        value_dim, null_dim = resid.blocks[src.name][("value",)], resid.blocks[src.name][("null",)]
        slope = _gap_slope(node, names, xs)
        neurons = [({null_dim: 1.0}, enc(apply_map(node, None)))]
        if xs:
            neurons.append(({one: 1.0, null_dim: -1.0}, enc(apply_map(node, xs[0]))))
            big = slope * max(abs(x) for x in xs) + 2.0
            for lo, hi in zip(xs, xs[1:]):
                mid = (lo + hi) / 2
                write = _plus(enc(apply_map(node, hi)), enc(apply_map(node, lo)), scales=(1.0, -1.0))
                neurons += _clip_step({value_dim: 1.0, one: -mid, null_dim: -big / slope}, slope, write, one)
        return [_Part(node, "mlp", "map", neurons=neurons, reads=(src.name,), writes=(name,))]
    if isinstance(node, SequenceMap):
        a, b = info[id(node.first)], info[id(node.second)]
        if node.first.encoding == CATEGORICAL and node.second.encoding == CATEGORICAL:
            if node.first is node.second:
                neurons = [({d: 2.0, one: -1.0}, enc(apply_sequence_map(node, v, v))) for d, v in resid.keyed(a.name)]
            else:
                neurons = [({da: 1.0, db: 1.0, one: -1.0}, enc(apply_sequence_map(node, va, vb)))
                           for da, va in resid.keyed(a.name) for db, vb in resid.keyed(b.name)]
            return [_Part(node, "mlp", "sequence_map", neurons=neurons, reads=(a.name, b.name), writes=(name,))]
        if node.first.encoding == NUMERICAL and node.second.encoding == NUMERICAL:
            return [_affine(node, a, b, names, resid, one, bos_dim, enc)]
        raise fail(node, names, "a SequenceMap needs two categorical arguments or two numerical ones; "
                                "convert one with a Map first")
    select = node.selector
    keys, queries = info[id(select.keys)], info[id(select.queries)]
    qk: dict[tuple[int, int], float] = {}
    for dq, q in resid.keyed(queries.name):
        for dk, k in resid.keyed(keys.name):
            if holds(select, k, q, names):
                qk[dq, dk] = scale
        if holds(select, keys.bos, q, names):
            qk[dq, bos_dim] = -scale
    qk[one, bos_dim] = scale if isinstance(node, SelectorWidth) else scale / 2
    qk[bos_dim, bos_dim] = qk.get((bos_dim, bos_dim), 0.0) + 2 * scale
    selector_reads = tuple(dict.fromkeys((keys.name, queries.name, "one", "bos")))
    if isinstance(node, SelectorWidth):
        scratch = f"{name}.scratch"
        resid.add(scratch, [("s",)], [scratch])
        s = resid.blocks[scratch][("s",)]
        head = _Part(node, "head", "selector_width", qk=qk, ov={bos_dim: {s: 1.0}}, reads=selector_reads, writes=(scratch,))
        ys = [1.0 / (w + 1) for w in range(max_seq_len + 1)]
        slope = 2.0 / (ys[-2] - ys[-1]) if max_seq_len >= 1 else 1.0
        neurons = [({bos_dim: 1.0}, enc(None)), ({one: 1.0, bos_dim: -1.0}, enc(0))]
        for w in range(max_seq_len):
            mid = (ys[w] + ys[w + 1]) / 2
            write = _plus(enc(w + 1), enc(w), scales=(1.0, -1.0))
            neurons += _clip_step({s: -1.0, one: mid}, slope, write, one)
        mlp = _Part(node, "mlp", "selector_width", neurons=neurons, reads=(scratch, "one", "bos"), writes=(name,))
        return [head, mlp]
    # Aggregate
    if numerical:
        src = info[id(node.inner)]
        value, null = resid.blocks[src.name][("value",)], resid.blocks[src.name][("null",)]
        out_value, out_null = resid.blocks[name][("value",)], resid.blocks[name][("null",)]
        ov = {value: {out_value: 1.0}, null: {}, bos_dim: {out_null: 1.0}}
        if src.bos is not None and src.bos != 0:
            ov[bos_dim][out_value] = -float(src.bos)
        return [_Part(node, "head", "aggregate", qk=qk, ov=ov, reads=selector_reads + (src.name,), writes=(name,))]
    mapped = node.inner if id(node.inner) in fused else None
    src = info[id(mapped.inner if mapped is not None else node.inner)]
    image = (lambda v: apply_map(mapped, v)) if mapped is not None else (lambda v: v)  # noqa: E731
    cleanup = not selected_values_agree(node, info, names)
    target = f"{name}.scratch" if cleanup else name
    if cleanup:
        resid.categorical(target, inf.encoded)
    tenc = lambda value: resid.of(target, value)  # noqa: E731
    ov = {d: tenc(image(v)) for d, v in resid.keyed(src.name)}
    ov[bos_dim] = _plus(tenc(None), tenc(image(src.bos)), scales=(1.0, -1.0))
    head = _Part(node, "head", "aggregate", qk=qk, ov=ov, reads=selector_reads + (src.name,), writes=(target,))
    if not cleanup:
        return [head]
    length = max_seq_len
    neurons = [({one: 1.0}, enc(None))]
    for d, v in resid.keyed(target):
        if v is not None:
            # 1 when every selected key holds v (x_v = 1), 0 when at most (L-1)/L of them do.
            neurons += _clip_step({d: 1.0, one: -(1 - 1 / (2 * length))}, 2.0 * length,
                                  _plus(enc(v), enc(None), scales=(1.0, -1.0)), one)
    mlp = _Part(node, "mlp", "cleanup", neurons=neurons, reads=(target, "one"), writes=(name,))
    return [head, mlp]


def _backup(node: Aggregate, head: _Part, info, names, resid: _Residual, bos_dim: int, scale: float) -> _Part:
    """The backup of ``head`` (see ``compile_program``): its selector, penalised by 2 * scale on
    every key where the block ``head`` writes holds anything, and its copy, with BOS writing nothing."""
    name = names[id(node)]
    keys = info[id(node.selector.keys)]
    qk = dict(head.qk)
    for dq in resid.dims(name):
        for dk, _ in resid.keyed(keys.name):
            qk[dq, dk] = qk.get((dq, dk), 0.0) - 2 * scale
        qk[dq, bos_dim] = qk.get((dq, bos_dim), 0.0) + 2 * scale  # BOS holds a key direction too: undo it there
    ov = {src: dict(out) for src, out in head.ov.items()}
    bos_row = ov[bos_dim]
    null = resid.blocks[name][("null",)]
    bos_row[null] = bos_row.get(null, 0.0) - 1.0  # BOS writes nothing: the first head's BOS writes null
    return _Part(node, "head", "backup", label=f"{name}.backup", qk=qk, ov=ov, reads=head.reads + (name,), writes=head.writes)


def _affine(node, a: Info, b: Info, names, resid, one, bos_dim, enc) -> _Part:
    """A SequenceMap of two numerical SOps that is affine on their values: 6 neurons."""
    for side in (a, b):
        if side.nullable or side.bos is not None or side.values is None or node.null_safe:
            raise fail(node, names, f"a SequenceMap of numerical SOps needs arguments that are never null and have "
                                    f"finitely many values, and is not null-safe; {side.name} does not qualify")
    xs, ys = sorted(a.values), sorted(b.values)
    grid = [(x, y, apply_sequence_map(node, x, y)) for x in xs for y in ys]
    if any(v is None or not isinstance(v, int | float | bool) for *_, v in grid):
        raise fail(node, names, "its function must return a number for every pair of argument values")
    design = np.array([[x, y, 1.0] for x, y, _ in grid], np.float64)
    target = np.array([float(v) for *_, v in grid], np.float64)
    coef = np.linalg.lstsq(design, target, rcond=None)[0]
    residual = np.abs(design @ coef - target).max() if grid else 0.0
    if residual > 1e-9 * max(1.0, np.abs(target).max(initial=0.0)):
        raise fail(node, names, "a SequenceMap of numerical SOps compiles only when its function is affine "
                                f"(alpha * a + beta * b + gamma) on their values; the best affine fit is off by {residual:.3g}")
    alpha, beta, gamma = (round(float(c), 12) for c in coef)
    va, vb = resid.blocks[a.name][("value",)], resid.blocks[b.name][("value",)]
    out = resid.blocks[names[id(node)]][("value",)]
    neurons = [({va: 1.0}, {out: alpha}), ({va: -1.0}, {out: -alpha}), ({vb: 1.0}, {out: beta}), ({vb: -1.0}, {out: -beta}),
               ({one: 1.0, bos_dim: -1.0}, {out: gamma}), ({bos_dim: 1.0}, enc(None))]
    return _Part(node, "mlp", "sequence_map", neurons=neurons, reads=(a.name, b.name, "one", "bos"), writes=(names[id(node)],))


def _assemble(program, vocab, max_seq_len, causal, scale, resid: _Residual, sops, parts, placed, n_layers, info, names, fused,
              extra) -> Compiled:
    d = len(resid.labels)
    block_of = {dim: block for block, keyed in resid.blocks.items() for dim in keyed.values()}
    heads_per_layer = [[p for p in placed if p.kind == "head" and p.sublayer == 2 * layer] for layer in range(n_layers)]
    mlps_per_layer = [[p for p in placed if p.kind == "mlp" and p.sublayer == 2 * layer + 1] for layer in range(n_layers)]
    n_heads = max(1, max(len(h) for h in heads_per_layer))
    d_head = max([1] + [len({k for _, k in p.qk}) for hs in heads_per_layer for p in hs]
                 + [len(p.ov) for hs in heads_per_layer for p in hs])
    d_mlp = max(1, max(sum(len(p.neurons) for p in ms) for ms in mlps_per_layer))
    w_q = np.zeros((n_layers, n_heads, d, d_head), np.float32)
    w_k = np.zeros_like(w_q)
    w_v = np.zeros_like(w_q)
    w_o = np.zeros((n_layers, n_heads, d_head, d), np.float32)
    w_in = np.zeros((n_layers, d, d_mlp), np.float32)
    w_out = np.zeros((n_layers, d_mlp, d), np.float32)
    components: list[Component] = []
    for node in sops:
        if isinstance(node, Tokens | Indices):
            components.append(Component(names[id(node)], describe(node, names), "embedding", type(node).__name__.lower(), -1,
                                        writes=(names[id(node)],)))

    def expression(node):
        if isinstance(node, Aggregate) and id(node.inner) in fused:
            return f"{node.encoding} Aggregate({describe(node.selector, names)}, {describe(node.inner, names)})"
        return describe(node, names)

    for layer in range(n_layers):
        for h, part in enumerate(heads_per_layer[layer]):
            key_dims = sorted({k for _, k in part.qk})
            column = {k: j for j, k in enumerate(key_dims)}
            for (q, k), w in part.qk.items():
                w_q[layer, h, q, column[k]] += w
            for k, j in column.items():
                w_k[layer, h, k, j] = 1.0
            for j, (src, out) in enumerate(sorted(part.ov.items())):
                w_v[layer, h, src, j] = 1.0
                for dim, w in out.items():
                    w_o[layer, h, j, dim] += w
            blocks = lambda dims: tuple(dict.fromkeys(block_of[dim] for dim in sorted(dims)))  # noqa: E731
            components.append(Component(part.label or names[id(part.node)], expression(part.node), "head", part.op, layer,
                                        head=h, reads=part.reads, writes=part.writes,
                                        reads_q=blocks({q for (q, _), w in part.qk.items() if w}),
                                        reads_k=blocks({k for (_, k), w in part.qk.items() if w}), reads_v=blocks(part.ov)))
        start = 0
        for part in mlps_per_layer[layer]:
            for i, (read, write) in enumerate(part.neurons):
                for dim, w in read.items():
                    w_in[layer, dim, start + i] += w
                for dim, w in write.items():
                    w_out[layer, start + i, dim] += w
            components.append(Component(names[id(part.node)], expression(part.node), "mlp", part.op, layer,
                                        neurons=(start, start + len(part.neurons)), reads=part.reads, writes=part.writes))
            start += len(part.neurons)
    embed_tokens = np.zeros((len(vocab) + 1, d), np.float32)
    embed_positions = np.zeros((max_seq_len + 1, d), np.float32)
    one, bos_dim = resid.blocks["one"][("one",)], resid.blocks["bos"][("bos",)]
    embed_tokens[:, one] = 1.0
    embed_tokens[0, bos_dim] = 1.0
    token_info = [n for n in sops if isinstance(n, Tokens)]
    index_info = [n for n in sops if isinstance(n, Indices)]
    for node in token_info:
        block = names[id(node)]
        for i, tok in enumerate(vocab):
            for dim, w in resid.of(block, tok).items():
                embed_tokens[i + 1, dim] = w
        for dim, w in resid.of(block, None).items():
            embed_tokens[0, dim] = w
    for node in index_info:
        block = names[id(node)]
        for p in range(max_seq_len):
            for dim, w in resid.of(block, p).items():
                embed_positions[p + 1, dim] = w
        for dim, w in resid.of(block, None).items():
            embed_positions[0, dim] = w
    out = info[id(program)]
    block = resid.blocks[out.name]
    if program.encoding == CATEGORICAL:
        keyed = resid.keyed(out.name)
        output_values = tuple(v for _, v in keyed)
        unembed = np.zeros((d, len(keyed)), np.float32)
        for j, (dim, _) in enumerate(keyed):
            unembed[dim, j] = 1.0
    else:
        output_values = ("value", None)
        unembed = np.zeros((d, 2), np.float32)
        unembed[block[("value",)], 0] = 1.0
        unembed[block[("null",)], 1] = 1.0
    params = {"embed_tokens": embed_tokens, "embed_positions": embed_positions, "w_q": w_q, "w_k": w_k, "w_v": w_v,
              "w_o": w_o, "w_in": w_in, "w_out": w_out, "unembed": unembed}
    order = {"embedding": 0, "head": 1, "mlp": 2}
    components.sort(key=lambda c: (c.layer, order[c.kind], c.head, c.neurons))
    return Compiled(program, vocab, max_seq_len, causal, float(scale), params, tuple(resid.labels), tuple(components),
                    out.name, program.encoding, output_values, resid.blocks, info, names, tuple(extra))


__all__ = ["Compiled", "Component", "compile_program", "order_key"]
