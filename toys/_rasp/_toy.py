"""The ``rasp_transformer`` family: a standard RASP program compiled into a transformer, the task a
circuit method studies, the circuit truth by exact intervention, and ``verify``.

The truth is built from both sides. Structurally, an edge (src, dst) can carry the computation
only if dst reads a residual block src writes (the compiler records every component's reads and
writes; the constant ``one`` and ``bos`` directions do not count). By intervention, a structural
edge is in the task's circuit when patching it alone to its corrupted-run activation moves the
metric of some input by at least ``TOLERANCE`` (a fraction of that input's clean-corrupted gap).
The circuit's nodes are the ends of its edges. ``verify`` then checks the model against the
program on the task inputs, faithfulness (every edge outside the circuit patched, the metric
stays within ``TOLERANCE`` of clean), the necessity of every node, and that every circuit node
but the inputs and the output has circuit edges in and out.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from planted.groundtruth import ADDED, CircuitFormation, CircuitTruth, Config, Patch, Problems, Toy
from planted.toys._checks import require_memory, shape, within
from planted.toys._family import Family
from planted.toys._rasp._circuit import TransformerArtifact, TransformerModel, TransformerTask, component_graph
from planted.toys._rasp._compiler import Compiled, compile_program
from planted.toys._rasp._language import NUMERICAL, evaluate
from planted.toys._rasp._model import encode
from planted.toys._rasp._catalog import MODES, backup_target, distractors, naturalise
from planted.toys._rasp._programs import PROGRAMS, RASP_PROGRAMS
from planted.toys._rasp._truth import (
    TOLERANCE,
    _circuit_truth,
    _node_changes,
    _per_input_patched,
    output_tokens,
)

_STREAM_DATA, _STREAM_DISTRACTORS, _STREAM_NATURALISE = 401, 402, 403
PROGRAM_NAMES = RASP_PROGRAMS


@dataclasses.dataclass(frozen=True)
class RASPTransformerConfig(Config):
    """Config of ``toys.rasp_transformer``; see that function for each field's meaning."""

    kind = "rasp_transformer"

    program: str = "induction"
    n_samples: int = 64
    # The failure-mode toggles: one per ``_catalog.MODES`` entry, named and ordered as it (a test checks).
    distractors: bool = False
    backup: bool = False
    cancellation: bool = False
    saturation: bool = False
    naturalise: bool = False
    noise: float = 1e-6
    trained: bool = False
    train_steps: int = 3000
    residual_fraction: float = 1.0
    seed: int = 0
    snapshot_every: int = dataclasses.field(default=0, metadata=ADDED)

    def _check(self, p: Problems) -> None:
        p.choice("program", self.program, PROGRAM_NAMES)
        p.integer("n_samples", self.n_samples, low=4, high=100_000)
        for mode in MODES:
            p.boolean(mode.name, getattr(self, mode.name))
        p.number("noise", self.noise, low=0, high=1e-3)
        p.boolean("trained", self.trained)
        p.integer("train_steps", self.train_steps, low=100, high=200_000)
        p.number("residual_fraction", self.residual_fraction, low=0.05, high=1.0)
        if self.trained is not True and self.residual_fraction != 1.0:
            p.add(f"residual_fraction={self.residual_fraction!r} narrows the trained kind's residual stream; "
                  "it needs trained=True (a compiled model has one direction per value)")
        on = [m.name for m in MODES if getattr(self, m.name) is True]
        if self.trained is True and on:
            p.add(f"trained=True with {', '.join(on)}: the catalog's constructions live in compiled weights; "
                  "use them with trained=False")
        p.integer("seed", self.seed, low=0, high=2**31 - 1)
        p.integer("snapshot_every", self.snapshot_every, low=0, high=200_000)
        if isinstance(self.snapshot_every, int) and self.snapshot_every > 0:
            from planted.toys._rasp._trained import PROBE

            if self.trained is not True:
                p.add(f"snapshot_every={self.snapshot_every} records training: it needs trained=True")
            elif isinstance(self.train_steps, int) and self.train_steps > 0 and \
                    math.gcd(min(PROBE, self.train_steps), self.train_steps) % self.snapshot_every:
                p.add(f"snapshot_every must divide {min(PROBE, self.train_steps)} (the restarts' probe) and "
                      f"train_steps ({self.train_steps}), got {self.snapshot_every}")


@dataclasses.dataclass(frozen=True)
class Verification:
    """The outcome of ``RASPTransformerToy.verify``: ``ok`` and, when not, every problem found.
    ``faithfulness[task]``: the metric of the circuit alone as a fraction of the clean-corrupted gap."""

    ok: bool
    problems: tuple[str, ...]
    faithfulness: dict


@dataclasses.dataclass(frozen=True, eq=False)
class RASPTransformerToy(Toy):
    """A compiled transformer with its circuit: ``artifact`` for methods, ``truth`` for evaluators.
    ``compiled`` holds the compiler's table (what each head and MLP computes, what it reads and
    writes). ``training`` (the trained kind): the final ``loss``, ``interchange_accuracy`` and ``steps``."""

    model: TransformerModel = dataclasses.field(default=None, repr=False)
    tasks: tuple[TransformerTask, ...] = dataclasses.field(default=(), repr=False)
    compiled: Compiled = dataclasses.field(default=None, repr=False)
    training: dict | None = dataclasses.field(default=None, repr=False)

    @property
    def graph(self):
        return self.model.graph

    @property
    def artifact(self) -> TransformerArtifact:
        return TransformerArtifact(model=self.model, graph=self.graph, tasks=self.tasks)

    def verify(self) -> Verification:
        """Check the circuit truth by intervention (see the module docstring)."""
        problems: list[str] = []
        faithfulness = {}
        truth, graph, model = self.truth, self.graph, self.model
        outputs = {"clean": None, "corrupted": None}
        for t, task in enumerate(self.tasks):
            clean, corrupt = model.run_exact(task.clean), model.run_exact(task.corrupted)
            outputs.update(clean=clean, corrupted=corrupt)
            per_clean, per_corrupt = task.per_input(clean["outputs"]), task.per_input(corrupt["outputs"])
            if np.abs(per_clean - 1).max() > TOLERANCE or np.abs(per_corrupt).max() > TOLERANCE:
                problems.append(f"task {task.name}: the model's answers differ from the program's "
                                f"(clean metric {per_clean.min():.3f}, corrupted {per_corrupt.max():.3f})")
            m_clean, m_corrupt = float(task.metric(clean["outputs"])), float(task.metric(corrupt["outputs"]))
            src, dst = graph.edges()
            mask = np.ones((graph.n_nodes, graph.n_nodes), np.float32)
            mask[src[truth.edges[t]], dst[truth.edges[t]]] = 0.0
            kept = model.run_exact(task.clean, Patch(edge_mask=mask, edge_source=corrupt["activations"]))["outputs"]
            faithfulness[t] = (float(task.metric(kept)) - m_corrupt) / (m_clean - m_corrupt)
            if abs(faithfulness[t] - 1) > TOLERANCE:
                problems.append(f"task {task.name}: the circuit alone keeps {faithfulness[t]:.3f} of the metric")
            if self.config.trained is True:
                # Strictness (the trained kind's weights are dense): no edge outside the circuit
                # moves any answer alone, so single-edge effects rank the circuit first.
                base = task.per_input(clean["outputs"])
                outside = np.setdiff1d(np.arange(graph.n_edges), truth.edges[t])
                for e in outside:
                    moved = np.abs(_per_input_patched(model, task, src, dst, [e], corrupt) - base).max()
                    if moved >= TOLERANCE:
                        problems.append(f"task {task.name}: edge {graph.labels[src[e]]} -> {graph.labels[dst[e]]} is outside "
                                        f"the circuit but moves an answer by {moved:.3f} alone")
            changes = np.abs(_node_changes(model, task, clean, corrupt)).max(axis=1)
            for node in np.flatnonzero(truth.nodes[t]):
                if graph.layers[node] == graph.layers.max():
                    continue
                necessary = changes[node] >= TOLERANCE
                if truth.redundant[t, node] == necessary:
                    what = "is marked redundant but is necessary" if necessary else "is in the circuit but patching it alone changes no answer"
                    problems.append(f"task {task.name}: {graph.labels[node]} {what}")
            in_circuit = np.zeros(graph.n_nodes, int), np.zeros(graph.n_nodes, int)
            np.add.at(in_circuit[0], src[truth.edges[t]], 1)
            np.add.at(in_circuit[1], dst[truth.edges[t]], 1)
            for node in np.flatnonzero(truth.nodes[t]):
                layer = graph.layers[node]
                if layer < graph.layers.max() and not in_circuit[0][node]:
                    problems.append(f"task {task.name}: circuit node {graph.labels[node]} has no circuit edge out")
                if layer > 0 and not in_circuit[1][node]:
                    problems.append(f"task {task.name}: circuit node {graph.labels[node]} has no circuit edge in")
        return Verification(not problems, tuple(problems), faithfulness)


def _differs(a, b) -> bool:
    """Two answers differ: categorical ones by value, numerical ones by more than float rounding."""
    if isinstance(a, float) or isinstance(b, float):
        return abs(float(a) - float(b)) > 1e-6 * max(1.0, abs(float(b)))
    return a != b


def _spec(name: str):
    return next(s for s in PROGRAMS if s.name == name)


def _answer(program, seq, causal):
    return evaluate(program, seq, causal=causal)[-1]


def _task(config: RASPTransformerConfig, compiled: Compiled) -> TransformerTask:
    """Clean inputs of the program's maximum length with a defined answer at the last position, and
    corrupted inputs: the clean one with positions resampled until that answer changes."""
    spec = _spec(config.program)
    rng = np.random.default_rng([config.seed, _STREAM_DATA])
    vocab, length, program, causal = compiled.vocab, compiled.max_seq_len, compiled.program, compiled.causal
    clean, corrupted = [], []
    attempts = 0
    while len(clean) < config.n_samples:
        attempts += 1
        if attempts > 400 * config.n_samples:
            raise ValueError(f"program {spec.name!r}: found {len(clean)} of n_samples={config.n_samples} inputs whose answer "
                             "can be flipped after many draws; lower n_samples")
        seq = [vocab[i] for i in rng.integers(0, len(vocab), length)]
        answer = _answer(program, seq, causal)
        if answer is None:
            continue
        for _ in range(50):
            other = list(seq)
            for pos in rng.choice(length, size=int(rng.integers(1, length + 1)), replace=False):
                other[pos] = vocab[int(rng.integers(len(vocab)))]
            flipped = _answer(program, other, causal)
            if flipped is not None and _differs(flipped, answer):
                clean.append(seq)
                corrupted.append(other)
                break
    numerical = compiled.output_encoding == NUMERICAL

    def answers(seqs):
        values = [_answer(program, s, causal) for s in seqs]
        if numerical:
            return np.array(values, np.float32)
        return np.array([next(j for j, v in enumerate(compiled.output_values) if v is not None and v == a) for a in values],
                        np.int64)

    return TransformerTask(name=spec.name, index=0, clean=encode(compiled, clean), corrupted=encode(compiled, corrupted),
                           position=length, clean_answer=answers(clean), corrupted_answer=answers(corrupted),
                           numerical=numerical)


def _compile(config: RASPTransformerConfig) -> Compiled:
    """The compiled program with the config's failure modes (the weights: ``_weights``)."""
    spec = _spec(config.program)
    program = spec.make()
    kwargs: dict[str, Any] = {"causal": spec.causal}
    if config.backup:
        target = backup_target(program, spec)
        if target is None:
            raise ValueError(f"backup: program {spec.name!r} has no head a backup can copy (a categorical Aggregate "
                             "without a cleanup); choose another program or backup=False")
        kwargs["backups"] = (target,)
    if config.cancellation:
        kwargs["cancel_gain"] = 4.0
    if config.saturation:
        kwargs["saturate"] = True
    if config.distractors:
        rng = np.random.default_rng([config.seed, _STREAM_DISTRACTORS])
        for _ in range(50):  # a draw the compiler refuses (values too many to tabulate ...) is drawn again
            try:
                compiled = compile_program(program, spec.vocab, spec.max_seq_len, extra=distractors(program, spec, rng), **kwargs)
                break
            except ValueError:
                continue
        else:
            raise ValueError(f"distractors: no draw of distractor heads for program {spec.name!r} compiles")
    else:
        compiled = compile_program(program, spec.vocab, spec.max_seq_len, **kwargs)
    return compiled


def _weights(config: RASPTransformerConfig, compiled: Compiled) -> dict:
    """The model's weights: the compiled ones, naturalised when the config says so (not the trained kind's)."""
    if not config.naturalise:
        return compiled.params
    return naturalise(compiled.params, config.noise, np.random.default_rng([config.seed, _STREAM_NATURALISE]))


def build(config: RASPTransformerConfig) -> RASPTransformerToy:
    """Compile the config's program, draw its task and compute the circuit truth by intervention."""
    if not isinstance(config, RASPTransformerConfig):
        raise ValueError(f"config must be a RASPTransformerConfig, got {type(config).__name__}")
    compiled = _compile(config)
    training = record = None
    if config.trained:
        from planted.toys._rasp._trained import train

        params, training, record = train(compiled, config.train_steps, config.seed, config.residual_fraction,
                                         config.snapshot_every)
    else:
        params = _weights(config, compiled)
    n_layers, n_heads, d_model = params["w_q"].shape[:3]
    n_nodes = 2 + n_layers * (n_heads + 1) + 1
    run = 4.0 * config.n_samples * n_nodes * (compiled.max_seq_len + 1) * d_model  # one run's activations, float32
    require_memory(config.kind, 8 * run, f"8 runs' activations of {run / 2**30:.2f} GiB each", "n_samples")
    graph = component_graph(compiled.params["w_q"].shape[0], compiled.params["w_q"].shape[1])
    model = TransformerModel(params=params, graph=graph, causal=compiled.causal, output_tokens=output_tokens(compiled))
    tasks = (_task(config, compiled),)
    truth = _circuit_truth(compiled, model, tasks, config)
    if config.trained and record is not None:
        truth = dataclasses.replace(truth, formation=record)
    toy = RASPTransformerToy(config=config, truth=truth, model=model, tasks=tasks, compiled=compiled, training=training)
    result = toy.verify()
    if not result.ok:
        hint = "; lower noise" if config.naturalise else ""
        if config.trained:
            hint = (f"; the trained model matched {training['interchange_accuracy']:.3f} of fresh interchanges: raise "
                    "train_steps or try another seed")
        raise ValueError(f"rasp_transformer {config.program!r}: the toy does not verify ({'; '.join(result.problems[:3])}){hint}")
    return toy


def rasp_transformer(program: str = "induction", n_samples: int = 64, *, distractors: bool = False, backup: bool = False,
                     cancellation: bool = False, saturation: bool = False, naturalise: bool = False, noise: float = 1e-6,
                     trained: bool = False, train_steps: int = 3000, residual_fraction: float = 1.0,
                     seed: int, snapshot_every: int = 0) -> RASPTransformerToy:
    """A standard RASP program compiled into a transformer, with its circuit known by construction.

    Parameters
    ----------
    program : str
        One of the ``rasp.PROGRAMS`` with a circuit task (``"induction"``, ``"ioi"``, ``"reverse"``,
        ``"frac_prevs"``, ...; every one but ``"length"``, whose answer is the same on every input of
        the maximum length); its vocabulary, maximum length and causality come with it.
    n_samples : int
        Clean / corrupted input pairs of the task (answer at the last position).
    distractors, backup, cancellation, saturation, naturalise : bool
        The failure-mode catalog (``toys.TRANSFORMER_FAILURE_MODES``; each mode's description says
        what it plants and which methods it fools): three distractor heads nothing reads; a backup
        head that takes over when a head's output is removed (self-repair); two heads whose writes
        cancel; a steep readout that zeroes every gradient; a random rotation of the residual basis
        and ``noise`` on every weight.
    noise : float
        The std of naturalise's weight noise relative to each weight's root mean square, in [0, 1e-3].
        Compiled steps are steep: above about 3e-6 the programs with chained selector widths
        (count_less_freq, sort_freq) give wrong answers, and ``build`` refuses the toy.
    trained : bool
        The trained kind: a transformer of the compiled shape trained from random initialisation
        by strict interchange intervention training against the compiled model (every component
        aligned with its compiled twin; see ``_trained``), so its weights are dense and look
        trained while the circuit is known by construction. Its truth is measured on the trained
        weights by the same interventions (the compiled model's wiring gives the candidate edges)
        and must verify, strictness included (no edge outside the circuit moves an answer alone),
        or the toy is refused.
        ``toy.training`` reports the final loss and the interchange accuracy. Not combined with
        the catalog's modes.
    train_steps : int
        Adam steps of the trained kind (batches of 64 interchanges).
    residual_fraction : float
        The trained kind's residual width as a fraction of the compiled d_model (one direction per
        value of every variable), in [0.05, 1]. Below 1 the trained model holds the program's
        variables in superposition, within verify's tolerance; reverse and successor verify at 0.5.
    seed : int
        Draws the task's inputs, the distractors, the naturalising rotation and noise, and the
        trained kind's initialisation and training data.
    snapshot_every : int
        With ``trained``, record training every this many steps (0: no record; it must divide 400
        and ``train_steps``): each component's weight norms, the loss, and each head's attention
        on the keys its compiled twin attends to, so the step at which each head formed (at least
        0.9 of its attention there from then on; ``truth.formation``, a
        ``groundtruth.CircuitFormation``).

    The model is exact: its output equals the program's at every position of every input up to
    the maximum length (``rasp.differential``). The truth is a ``CircuitTruth`` over the component
    graph (embeddings, heads, MLPs, output) with effects measured by exact intervention;
    ``toy.verify()`` checks it. Follows Lindner et al. (2023), "Tracr", with total semantics.
    """
    return build(RASPTransformerConfig(program=program, n_samples=n_samples, distractors=distractors, backup=backup,
                                       cancellation=cancellation, saturation=saturation, naturalise=naturalise,
                                       noise=noise, trained=trained, train_steps=train_steps,
                                       residual_fraction=residual_fraction, seed=seed,
                                       snapshot_every=snapshot_every))


def _to_arrays(toy: RASPTransformerToy) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    truth, task = toy.truth, toy.tasks[0]
    arrays = {f"model.{k}": v for k, v in toy.model.params.items()}
    arrays.update({"task.clean": task.clean, "task.corrupted": task.corrupted, "task.clean_answer": task.clean_answer,
                   "task.corrupted_answer": task.corrupted_answer})
    arrays.update({"truth.layers": truth.graph.layers, "truth.nodes": truth.nodes, "truth.redundant": truth.redundant,
                   "truth.node_effects": truth.node_effects, "truth.relevant_inputs": truth.relevant_inputs,
                   "truth.modules": truth.modules, "truth.edges.0": truth.edges[0], "truth.edge_effects.0": truth.edge_effects[0]})
    arrays.update({f"truth.catalog.{mode}": mask for mode, mask in truth.catalog.items()})
    extra = {"labels": list(truth.graph.labels), "task_names": list(truth.task_names), "formulas": list(truth.formulas),
             "position": task.position, "numerical": task.numerical, "causal": toy.model.causal,
             "catalog": sorted(truth.catalog)}
    if toy.training is not None:
        extra["training"] = dict(toy.training)
    if truth.formation is not None:
        record, more = truth.formation.to_arrays()
        arrays.update(record)
        extra.update(more)
    return arrays, extra


def _from_arrays(config: RASPTransformerConfig, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> RASPTransformerToy:
    params = {k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")}
    w_q = params.get("w_q")
    if w_q is None or w_q.ndim != 4:
        raise ValueError("model.w_q must be a 4-D array (n_layers, n_heads, d_model, d_head)")
    graph = component_graph(w_q.shape[0], w_q.shape[1])
    if tuple(extra["labels"]) != graph.labels or not np.array_equal(arrays["truth.layers"], graph.layers):
        raise ValueError("the stored component graph is not the one the model's shape makes")
    truth = CircuitTruth(
        graph=graph, task_names=tuple(extra["task_names"]), formulas=tuple(extra["formulas"]), nodes=arrays["truth.nodes"],
        edges=(arrays["truth.edges.0"],), node_effects=arrays["truth.node_effects"], edge_effects=(arrays["truth.edge_effects.0"],),
        relevant_inputs=arrays["truth.relevant_inputs"], redundant=arrays["truth.redundant"], catalog={}, modules=arrays["truth.modules"],
        formation=CircuitFormation.from_arrays(arrays, extra),
    )
    compiled = _compile(config)
    model = TransformerModel(params=params, graph=graph, causal=bool(extra["causal"]), output_tokens=output_tokens(compiled))
    task = TransformerTask(name=extra["task_names"][0], index=0, clean=arrays["task.clean"], corrupted=arrays["task.corrupted"],
                           position=int(extra["position"]), clean_answer=arrays["task.clean_answer"],
                           corrupted_answer=arrays["task.corrupted_answer"], numerical=bool(extra["numerical"]))
    training = extra.get("training")
    if config.trained is True and not (isinstance(training, dict) and {"loss", "interchange_accuracy", "steps"} <= set(training)):
        raise ValueError("a trained rasp_transformer's manifest must hold its training report (loss, interchange_accuracy, steps)")
    return RASPTransformerToy(config=config, truth=truth, model=model, tasks=(task,), compiled=compiled,
                              training=training if config.trained is True else None)


def _check(toy: RASPTransformerToy) -> list[str]:
    """A loaded toy against its config: the weights are the compiler's for the config's program, the
    task's ids are in range with answers equal to the program's, and the truth has the graph's sizes."""
    p: list[str] = []
    c = toy.config
    compiled = toy.compiled  # compiled from the config by the loader
    if c.trained:
        from planted.toys._rasp._trained import trained_shapes

        weights = {k: np.zeros(v, np.float32) for k, v in trained_shapes(compiled, c.residual_fraction).items()}
    else:
        weights = _weights(c, compiled)
    if sorted(toy.model.params) != sorted(weights):
        return [f"model parameters {sorted(toy.model.params)}, the compiler makes {sorted(weights)}"]
    for name, value in weights.items():
        if not shape(p, f"model.{name}", toy.model.params[name], value.shape):
            continue
        if c.trained:  # trained weights are checked by what they compute (verify, below)
            if not np.isfinite(toy.model.params[name]).all():
                p.append(f"model.{name} holds non-finite values")
        elif not np.array_equal(toy.model.params[name], value):
            p.append(f"model.{name} is not the compiled weight of program {c.program!r}")
    if toy.model.causal != compiled.causal:
        p.append(f"the model's causal flag is {toy.model.causal}, program {c.program!r} is {'' if compiled.causal else 'not '}causal")
    task = toy.tasks[0]
    n = compiled.max_seq_len + 1
    for name in ("clean", "corrupted"):
        ids = getattr(task, name)
        if shape(p, f"task.{name}", ids, (c.n_samples, n)):
            within(p, f"task.{name}", ids, 0, len(compiled.vocab) + 1)
            if ids.size and (not (ids[:, 0] == 0).all() or (ids[:, 1:] == 0).any()):
                p.append(f"task.{name} must start with BOS (id 0) and hold tokens after it")
    if task.position != compiled.max_seq_len:
        p.append(f"task position {task.position}, expected the last position {compiled.max_seq_len}")
    if not p:
        for name in ("clean", "corrupted"):
            want = _answers_of(compiled, getattr(task, name))
            got = getattr(task, f"{name}_answer")
            if not shape(p, f"task.{name}_answer", got, (c.n_samples,)):
                continue
            if task.numerical:
                if not np.allclose(got, want):
                    p.append(f"task.{name}_answer is not the program's answer")
            elif not np.array_equal(got, want):
                p.append(f"task.{name}_answer is not the program's answer")
    truth, graph = toy.truth, toy.graph
    for name in ("nodes", "redundant", "node_effects"):
        shape(p, f"truth.{name}", getattr(truth, name), (1, graph.n_nodes))
    shape(p, "truth.relevant_inputs", truth.relevant_inputs, (1, 2))
    within(p, "truth.edges.0", truth.edges[0], 0, graph.n_edges)
    on = sorted(m.name for m in MODES if getattr(c, m.name) is True)
    if sorted(truth.catalog) != on:
        p.append(f"truth.catalog names {sorted(truth.catalog)}, the config switches on {on}")
    for mode, mask in truth.catalog.items():
        shape(p, f"truth.catalog.{mode}", mask, (graph.n_nodes,))
    if c.trained and not p:
        p += [f"the trained model does not verify: {problem}" for problem in toy.verify().problems]
    return p


def expected_parts(config: RASPTransformerConfig) -> tuple[dict[str, tuple[int, ...]], TransformerTask, Compiled]:
    """What a toy of ``config`` must hold, without training it: its weights' shapes, its task and
    the compiled program (for checking a loaded copy of it, such as a damaged twin)."""
    compiled = _compile(config)
    if config.trained:
        from planted.toys._rasp._trained import trained_shapes

        shapes = dict(trained_shapes(compiled, config.residual_fraction))
    else:
        shapes = {k: tuple(v.shape) for k, v in _weights(config, compiled).items()}
    return shapes, _task(config, compiled), compiled


def _answers_of(compiled: Compiled, ids: np.ndarray) -> np.ndarray:
    seqs = [[compiled.vocab[i - 1] for i in row[1:]] for row in ids]
    values = [_answer(compiled.program, s, compiled.causal) for s in seqs]
    if compiled.output_encoding == NUMERICAL:
        return np.array([np.nan if v is None else v for v in values], np.float32)
    return np.array([next((j for j, o in enumerate(compiled.output_values) if o is not None and o == v), -1) for v in values])


FAMILY = Family(
    kind="rasp_transformer",
    config=RASPTransformerConfig,
    toy=RASPTransformerToy,
    build=build,
    generator=rasp_transformer,
    to_arrays=_to_arrays,
    from_arrays=_from_arrays,
    check=_check,
)
