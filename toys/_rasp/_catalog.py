"""The failure-mode catalog of attention circuits, as data, and the constructions it uses.

``MODES`` is the one list: each ``Mode`` names its toggle (a field of ``RASPTransformerConfig``, the
key of ``CircuitTruth.catalog`` and the suite's toy name) and says what it plants and which methods
it fools. ``TRANSFORMER_FAILURE_MODES``, the config's validation and the suite derive from it. The
constructions are compiler options (``compile_program``'s ``extra``, ``backups``, ``cancel_gain``)
or a change of the compiled weights (``naturalise``); every toy is verified either way.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from planted.toys._rasp._analysis import analyse, name_nodes, selected_values_agree
from planted.toys._rasp._language import CATEGORICAL, Aggregate, Comparison, Select, SOp, nodes

N_DISTRACTORS = 3


@dataclasses.dataclass(frozen=True)
class Mode:
    """One failure mode: its toggle's name and what it plants and does to which methods."""

    name: str
    description: str


MODES: tuple[Mode, ...] = (
    Mode(
        "distractors",
        f"{N_DISTRACTORS} extra heads, each a random categorical Aggregate over the program's own SOps (random "
        "keys, queries, comparison and copied SOp), placed where their inputs are ready. They attend as sharply "
        "as circuit heads and write blocks nothing reads, so they are never in the circuit. Attention-pattern "
        "heuristics (previous-token, prefix matching) and anything that reads weights score them like circuit "
        "heads when their patterns look alike: false positives. Interventions, which see no effect, are "
        "unaffected. The catalog marks the distractor heads.",
    ),
    Mode(
        "backup",
        "A backup head (self-repair, as IOI's backup name movers) one layer after a head of the circuit (the "
        "program's last categorical Aggregate without a cleanup). It attends like that head but only where that "
        "head's output block is empty: on clean and corrupted runs, and under mean or resample ablation or "
        "patching, the block holds a value and the backup attends to BOS, writing nothing; when the first "
        "head's output is zeroed, the backup computes it again (exactly where some key is selected). So "
        "zero-ablating the first head alone changes little (a false negative for zero ablation), and no "
        "single intervention from the clean run ever moves the backup (a false negative for every method). "
        "The backup and its wiring are in the circuit, marked redundant; the catalog marks both heads.",
    ),
    Mode(
        "cancellation",
        "Two heads after the output, each attending to its own position and copying the output block into "
        "itself, times +4 and -4. Together they write nothing on every input, so they are not in the (minimal, "
        "faithful) circuit; alone each moves the answer a lot. Activation patching, ablation, attribution "
        "patching and edge attribution score them highly: false positives. ACDC, which prunes one edge at a "
        "time against the current circuit, keeps the first of the pair it tries. The catalog marks both heads.",
    ),
    Mode(
        "saturation",
        "The output read through a steep readout: an identity Map whose MLP is a clipped ramp per output value, "
        "flat around every value the output takes, so the answer is unchanged and the gradient of the answer with "
        "respect to everything upstream is zero. Compiled attention is already saturated in every toy (each "
        "weight within exp(-50) of 0 or 1), so gradients through queries and keys vanish everywhere; this mode "
        "flattens the value path too. Attribution patching and edge attribution patching (gradients at the clean "
        "run) then score nothing upstream of the readout: false negatives. EAP-IG, which integrates gradients "
        "from the corrupted run to the clean one across the ramp, and every intervention are unaffected. The "
        "readout MLP is in the circuit; the catalog marks it.",
    ),
    Mode(
        "naturalise",
        "A random rotation of the residual basis, random rotations of each head's query-key and value-output "
        "spaces, random positive rescaling of each MLP neuron's input and output, and Gaussian noise (std "
        "``noise`` times each weight's root mean square, default 1e-6) on every weight. No weight is exactly zero "
        "and no block lines up with a basis direction, so the circuit cannot be read off the weights' support; "
        "the answers stay exact (compiled steps are steep: from about 1e-5 the programs with chained selector "
        "widths break, and the toy is refused). Interventions are unaffected. The catalog marks every circuit node.",
    ),
)

TRANSFORMER_FAILURE_MODES: tuple[str, ...] = tuple(mode.name for mode in MODES)


def distractors(program: SOp, spec, rng: np.random.Generator) -> tuple[SOp, ...]:
    """``N_DISTRACTORS`` random categorical Aggregates over the program's categorical SOps."""
    pool = [n for n in nodes(program) if not isinstance(n, Select) and n.encoding == CATEGORICAL]
    comparisons = [Comparison.EQ, Comparison.LT, Comparison.LEQ, Comparison.GT, Comparison.GEQ, Comparison.NEQ]
    out = []
    for i in range(N_DISTRACTORS):
        keys, queries, value = (pool[int(rng.integers(len(pool)))] for _ in range(3))
        predicate = comparisons[int(rng.integers(len(comparisons)))]
        out.append(Aggregate(Select(keys, queries, predicate), value).named(f"distractor_{i}"))
    return tuple(out)


def backup_target(program: SOp, spec) -> Aggregate | None:
    """The program's last categorical Aggregate whose selected values provably agree (no cleanup)."""
    order, names = name_nodes(program)
    info = analyse(order, names, spec.vocab, spec.max_seq_len)
    for node in reversed(order):
        if isinstance(node, Aggregate) and node.encoding == CATEGORICAL and selected_values_agree(node, info, names):
            return node
    return None


def _rotation(rng: np.random.Generator, n: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(n, n)))
    return q * np.sign(np.diag(r))


def naturalise(params: dict, noise: float, rng: np.random.Generator) -> dict:
    """The same function in a random basis (see the mode's description), plus weight noise."""
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    n_layers, n_heads, d, d_head = p["w_q"].shape
    d_mlp = p["w_in"].shape[2]
    q = _rotation(rng, d)
    out = {"embed_tokens": p["embed_tokens"] @ q, "embed_positions": p["embed_positions"] @ q, "unembed": q.T @ p["unembed"]}
    w_q, w_k, w_v, w_o = (np.empty_like(p[k]) for k in ("w_q", "w_k", "w_v", "w_o"))
    w_in, w_out = np.empty_like(p["w_in"]), np.empty_like(p["w_out"])
    for layer in range(n_layers):
        for h in range(n_heads):
            qk, vo = _rotation(rng, d_head), _rotation(rng, d_head)
            w_q[layer, h] = q.T @ p["w_q"][layer, h] @ qk
            w_k[layer, h] = q.T @ p["w_k"][layer, h] @ qk
            w_v[layer, h] = q.T @ p["w_v"][layer, h] @ vo
            w_o[layer, h] = vo.T @ p["w_o"][layer, h] @ q
        gain = np.exp(rng.uniform(np.log(0.5), np.log(2.0), size=d_mlp))
        w_in[layer] = q.T @ p["w_in"][layer] * gain
        w_out[layer] = (p["w_out"][layer] / gain[:, None]) @ q
    out.update(w_q=w_q, w_k=w_k, w_v=w_v, w_o=w_o, w_in=w_in, w_out=w_out)
    # Noise relative to each weight's scale (its root mean square): attention logits reach 3 x
    # scale, so absolute noise on a key weight would be multiplied by the query's 300.
    return {k: (v + noise * np.sqrt(np.mean(v**2)) * rng.normal(size=v.shape)).astype(np.float32) for k, v in out.items()}
