"""RASP with total semantics and its compiler: the interpreter against the papers' examples, every
standard program compiled and compared with the interpreter on every input (outputs, every SOp's
residual block, every attention pattern, the BOS position), random programs (the soundness
property), the size formulas, and refusals that name the operation."""

from __future__ import annotations

import collections
import os

import numpy as np
import pytest
from hypothesis import given, settings

from planted.toys import rasp
from planted.toys import strategies as gst
from planted.toys.rasp import Aggregate, Comparison, Map, Select, SelectorWidth, SequenceMap, indices, numerical, tokens

SOUNDNESS_EXAMPLES = int(os.environ.get("PLANTED_SOUNDNESS_EXAMPLES", "300"))


# -- the interpreter is the specification -------------------------------------------------------

def test_the_interpreter_gives_the_rasp_papers_and_tracrs_documented_outputs():
    assert rasp.evaluate(rasp.make_length(), "abcdefg") == [7] * 7
    assert rasp.evaluate(rasp.make_reverse(tokens), "Hello") == list("olleH")
    assert rasp.evaluate(rasp.make_hist(), "abac") == [2, 1, 2, 1]
    assert rasp.evaluate(rasp.make_sort_unique(tokens, tokens), [2, 4, 3, 1]) == [1, 2, 3, 4]
    assert rasp.evaluate(rasp.make_sort(tokens, tokens, max_seq_len=5, min_key=1), [2, 4, 1, 2]) == [1, 2, 2, 4]
    frac = rasp.make_frac_prevs(Map(lambda t: t == "l", tokens))
    assert rasp.evaluate(frac, "hello") == pytest.approx([0, 0, 1 / 3, 1 / 2, 2 / 5])
    balance = rasp.evaluate(rasp.make_pair_balance(tokens, "(", ")"), "a()b(c))")
    assert balance == pytest.approx([0, 1 / 2, 0, 0, 1 / 5, 1 / 6, 0, -1 / 8])
    dyck2 = rasp.make_shuffle_dyck(["()", "{}"])
    assert rasp.evaluate(dyck2, "({)}") == [True] * 4
    assert rasp.evaluate(dyck2, "(){)}") == [False] * 5
    assert rasp.evaluate(rasp.detect_pattern(tokens, "abc"), "abcabc") == [None, None, True, False, False, True]
    assert rasp.evaluate(rasp.make_count(tokens, "a"), "aaabbc") == [3] * 6
    assert rasp.evaluate(rasp.make_count_less_freq(2), "aaabbc") == [3] * 6
    assert rasp.evaluate(rasp.make_sort_freq(5), [2, 4, 2, 1]) == [2, 2, 4, 1]
    assert rasp.evaluate(rasp.shift_by(1, tokens), "abc") == [None, "a", "b"]


def test_tracr_issue_25_has_its_rasp_answer_and_compiles_to_it_exactly():
    program = rasp.make_tracr_issue_25()
    assert rasp.evaluate(program, [1, 2, 3, 4]) == [2, 3, None, None]
    compiled = rasp.compile_program(program, vocab=[1, 2, 3, 4], max_seq_len=5)
    assert rasp.evaluate_model(compiled, [[1, 2, 3, 4]]) == [[2, 3, None, None]]
    assert rasp.differential(compiled).ok


def test_null_is_a_value_with_its_own_rules():
    shifted = rasp.shift_by(1, tokens)
    assert rasp.evaluate(Map(lambda t: t * 2, shifted), [1, 2]) == [None, 2]
    assert rasp.evaluate(Map(lambda t: t is None, shifted, null_safe=True), [1, 2]) == [True, False]
    # A null key is never selected unless the predicate is null-safe; TRUE ignores its arguments.
    # shifted is [None, 1, 2] against tokens [1, 2, 3].
    assert rasp.evaluate(SelectorWidth(Select(shifted, tokens, Comparison.NEQ)), [1, 2, 3]) == [1, 1, 2]
    assert rasp.evaluate(SelectorWidth(Select(shifted, tokens, Comparison.NEQ, null_safe=True)), [1, 2, 3]) == [2, 2, 3]
    assert rasp.evaluate(SelectorWidth(Select(shifted, tokens, Comparison.TRUE)), [1, 2, 3]) == [3, 3, 3]
    # Null is not ordered: a null-safe LT is still false on it.
    assert rasp.evaluate(SelectorWidth(Select(shifted, tokens, Comparison.LT, null_safe=True)), [1, 2, 3]) == [0, 1, 2]
    # A categorical aggregate is the shared value, null when none is selected or they disagree.
    same = Aggregate(Select(tokens, tokens, Comparison.EQ), indices)
    assert rasp.evaluate(same, [7, 8, 7]) == [None, 1, None]
    assert rasp.evaluate(Aggregate(Select(tokens, tokens, Comparison.EQ), tokens), [7, 8, 7]) == [7, 8, 7]
    mean = numerical(Aggregate(Select(indices, tokens, Comparison.LT), numerical(Map(float, indices))))
    assert rasp.evaluate(mean, [0, 3, 1]) == [None, 1.0, 0.0]
    # Causal evaluation never selects a later key.
    assert rasp.evaluate(rasp.make_length(), "abc", causal=True) == [1, 2, 3]


def test_the_induction_ioi_and_successor_programs_do_what_their_circuits_are_known_for():
    assert rasp.evaluate(rasp.make_induction(), "abcab", causal=True) == [None, None, None, "b", "c"]
    assert rasp.evaluate(rasp.make_ioi("ABC"), ["A", "B", "x", "A", "x"], causal=True)[-2:] == ["B", "B"]
    assert rasp.evaluate(rasp.make_ioi("ABC"), ["A", "B", "C", "A"], causal=True)[-1] is None  # two candidates
    assert rasp.evaluate(rasp.make_successor(lambda t: (t + 1) % 5), [4, 0, 2], causal=True) == [None, 0, 1]


# -- every standard program, every input ----------------------------------------------------------

@pytest.mark.parametrize("spec", rasp.PROGRAMS, ids=lambda s: s.name)
def test_every_standard_program_compiles_to_a_model_equal_to_it_on_every_input(spec):
    compiled = rasp.compile_program(spec.make(), spec.vocab, spec.max_seq_len, causal=spec.causal)
    result = rasp.differential(compiled, limit=spec.sample, backend="numpy")
    assert result.exhaustive == (spec.sample is None)
    assert result.n_inputs >= (spec.sample or 0)
    assert result.ok, (result.mismatches, result.problems)


@pytest.mark.parametrize("name", ["reverse", "frac_prevs", "ioi"])
def test_the_jit_compiled_forward_and_the_nnx_module_agree_with_the_float64_reference(name):
    spec = next(s for s in rasp.PROGRAMS if s.name == name)
    compiled = rasp.compile_program(spec.make(), spec.vocab, spec.max_seq_len, causal=spec.causal)
    seqs, _ = rasp.all_inputs(spec.vocab, spec.max_seq_len, limit=300, seed=1)
    seqs = [s for s in seqs if len(s) == spec.max_seq_len][:64] or seqs[:1]
    ids = rasp.encode(compiled, seqs)
    reference = rasp.run(compiled, ids, backend="numpy")
    jitted = rasp.run(compiled, ids)
    for key in ("logits", "activations", "patterns"):
        np.testing.assert_allclose(jitted[key], reference[key], atol=1e-4)
    module = rasp.CompiledTransformer(compiled)
    np.testing.assert_allclose(np.asarray(module(ids)), reference["logits"], atol=1e-4)
    np.testing.assert_array_equal(rasp.apply(module.params(), ids, causal=compiled.causal), rasp.apply(compiled.params, ids, causal=compiled.causal))
    assert rasp.differential(compiled, seqs).ok  # the JAX path, internals included


def test_the_differential_check_catches_a_broken_weight():
    import dataclasses

    compiled = rasp.compile_program(rasp.make_reverse(tokens), ["a", "b", "c"], 4)
    head = next(c for c in compiled.components if c.name == "reverse")

    def with_head_output_scaled(factor):
        w_o = compiled.params["w_o"].copy()
        w_o[head.layer, head.head] *= factor
        return dataclasses.replace(compiled, params=compiled.params | {"w_o": w_o})

    # A weakened head still decodes right: only the check inside the model sees it.
    weak = rasp.differential(with_head_output_scaled(0.4), backend="numpy")
    assert weak.n_mismatches == 0 and weak.n_problems > 0
    flipped = rasp.differential(with_head_output_scaled(-1.0), backend="numpy")
    assert flipped.n_mismatches > 0 and flipped.n_problems > 0
    cold = dict(compiled.params)
    cold["w_q"] = compiled.params["w_q"] * 0.02  # cold attention: the head no longer picks one key
    result = rasp.differential(dataclasses.replace(compiled, params=cold), backend="numpy")
    assert any("attends off its selector" in p for p in result.problems)


# -- the size formulas stated in the compiler's docstring ---------------------------------------

def _expected_neurons(compiled, comp, node) -> int:
    info, length = compiled.info, compiled.max_seq_len
    if comp.op == "selector_width":
        return 2 * length + 2
    if comp.op == "cleanup":
        return 2 * len(info[id(node)].encoded) + 1
    if comp.op == "map":
        source = info[id(node.inner)]
        return len(source.encoded) + 1 if node.inner.encoding == "categorical" else 2 * len(source.encoded)
    if node.first.encoding == "numerical":
        return 6
    a, b = info[id(node.first)], info[id(node.second)]
    return len(a.encoded) + 1 if node.first is node.second else (len(a.encoded) + 1) * (len(b.encoded) + 1)


@pytest.mark.parametrize("spec", rasp.PROGRAMS, ids=lambda s: s.name)
def test_model_sizes_follow_the_stated_formulas(spec):
    from planted.toys._rasp._language import nodes

    compiled = rasp.compile_program(spec.make(), spec.vocab, spec.max_seq_len, causal=spec.causal)
    by_name = {compiled.names[id(n)]: n for n in nodes(compiled.program) if id(n) in compiled.names}
    placed = {c.name for c in compiled.components}
    d_model = 2
    for name in placed:
        node = by_name[name]
        d_model += len(compiled.info[id(node)].encoded) + 1 if node.encoding == "categorical" else 2
    for comp in compiled.components:
        if comp.op == "cleanup":
            d_model += len(compiled.info[id(by_name[comp.name])].encoded) + 1
        if comp.op == "selector_width" and comp.kind == "head":
            d_model += 1
    assert compiled.params["w_q"].shape[2] == d_model == len(compiled.residual_labels)
    widths = collections.Counter()
    for comp in compiled.components:
        if comp.kind == "mlp":
            assert comp.neurons[1] - comp.neurons[0] == _expected_neurons(compiled, comp, by_name[comp.name]), comp
            widths[comp.layer] += comp.neurons[1] - comp.neurons[0]
    heads = collections.Counter(c.layer for c in compiled.components if c.kind == "head")
    n_heads_expected = sum(isinstance(n, Aggregate | SelectorWidth) and compiled.names[id(n)] in placed for n in by_name.values())
    assert sum(heads.values()) == n_heads_expected
    assert compiled.params["w_q"].shape[1] == max(heads.values(), default=1)
    assert compiled.params["w_in"].shape[2] == max(widths.values(), default=1)


# -- refusals name the operation and the reason ---------------------------------------------------

@pytest.mark.parametrize("make, words", [
    (lambda: Aggregate(Select(numerical(Map(float, tokens)).named("x"), tokens, Comparison.EQ), tokens), ["Select", "categorical", "x"]),
    (lambda: numerical(Aggregate(Select(indices, indices, Comparison.TRUE), numerical(Map(float, rasp.shift_by(1, tokens))).named("late"))),
     ["never null", "late"]),
    (lambda: numerical(Aggregate(Select(indices, indices, Comparison.TRUE), tokens)).named("mean"), ["numerical argument", "mean"]),
    (lambda: numerical(SequenceMap(lambda a, b: a * b, numerical(Map(float, tokens)), numerical(Map(float, indices)))).named("product"),
     ["affine", "product"]),
    (lambda: Map(lambda x: x > 0.5, numerical(Map(lambda t: t * 1e-6, tokens))).named("tiny"), ["apart", "tiny"]),
    (lambda: SequenceMap(lambda a, b: a, tokens, numerical(Map(float, indices))).named("mixed"), ["two categorical", "mixed"]),
    (lambda: Map(lambda t: 1 / (t - 2), tokens).named("divide"), ["ZeroDivisionError", "divide"]),
    (lambda: SelectorWidth(Select(tokens, tokens, lambda k, q: k.missing)).named("attr"), ["predicate raised", "AttributeError"]),
    (lambda: Map(lambda t: [t], tokens).named("lists"), ["hashable", "lists"]),
])
def test_a_program_that_cannot_be_compiled_exactly_is_refused_naming_the_operation(make, words):
    with pytest.raises(ValueError, match="cannot compile") as error:
        rasp.compile_program(make(), vocab=[1, 2, 3], max_seq_len=3)
    for word in words:
        assert word in str(error.value)


@pytest.mark.parametrize("kwargs, words", [
    (dict(vocab=[]), ["vocab"]), (dict(vocab=[1, 1]), ["vocab"]), (dict(vocab=[None]), ["vocab"]),
    (dict(max_seq_len=0), ["max_seq_len", "0"]), (dict(max_seq_len=2.5), ["max_seq_len"]), (dict(scale=0.5), ["scale"]),
])
def test_bad_compile_arguments_are_refused_naming_the_parameter(kwargs, words):
    arguments = dict(vocab=["a", "b"], max_seq_len=3) | kwargs
    with pytest.raises(ValueError) as error:
        rasp.compile_program(rasp.make_length(), **arguments)
    for word in words:
        assert word in str(error.value)


def test_inputs_outside_the_compiled_domain_are_refused():
    compiled = rasp.compile_program(rasp.make_length(), ["a", "b"], 3)
    with pytest.raises(ValueError, match="'z'.*not in the vocab"):
        rasp.encode(compiled, [["a", "z"]])
    with pytest.raises(ValueError, match="max_seq_len"):
        rasp.encode(compiled, [["a"] * 4])
    with pytest.raises(ValueError, match="one length"):
        rasp.encode(compiled, [["a"], ["a", "b"]])
    with pytest.raises(ValueError, match="backend"):
        rasp.run(compiled, rasp.encode(compiled, [["a"]]), backend="torch")


def test_language_constructors_refuse_wrong_arguments():
    with pytest.raises(ValueError, match="function"):
        Map(3, tokens)
    with pytest.raises(ValueError, match="SOp"):
        Map(abs, "tokens")
    with pytest.raises(ValueError, match="Select"):
        Aggregate(tokens, tokens)
    with pytest.raises(ValueError, match="numerical"):
        numerical(tokens)
    with pytest.raises(ValueError, match="name"):
        tokens.named("has space")


# -- the soundness property -----------------------------------------------------------------------

@settings(max_examples=SOUNDNESS_EXAMPLES, deadline=None, derandomize=True)
@given(drawn=gst.rasp_programs(max_vocab_size=4, max_seq_len=4, max_ops=4))
def test_random_programs_compile_to_models_equal_to_them_on_every_input_or_are_refused(drawn):
    try:
        compiled = rasp.compile_program(drawn.program, drawn.vocab, drawn.max_seq_len, causal=drawn.causal)
    except ValueError as error:
        assert "cannot compile" in str(error)
        return
    result = rasp.differential(compiled, backend="numpy")
    assert result.exhaustive
    assert result.ok, (drawn.ops, result.mismatches, result.problems)


def test_random_programs_are_reproducible_and_cover_every_kind_of_operation():
    a, b = rasp.random_program(11), rasp.random_program(11)
    seqs, _ = rasp.all_inputs(a.vocab, a.max_seq_len)
    assert a.ops == b.ops and all(rasp.evaluate(a.program, s, causal=a.causal) == rasp.evaluate(b.program, s, causal=b.causal) for s in seqs)
    seen = collections.Counter(op for seed in range(200) for op in rasp.random_program(seed, n_ops=4).ops)
    from planted.toys._rasp._random import KINDS

    assert set(seen) == set(KINDS)
    with pytest.raises(ValueError, match="n_ops"):
        rasp.random_program(0, n_ops=0)


@pytest.mark.parametrize("name, naturalised", [("induction", False), ("frac_prevs", False), ("sort", False),
                                               ("induction", True)])
def test_the_transformer_lens_export_gives_the_same_logits_and_patterns(name, naturalised):
    """Causal and non-causal programs, categorical and numerical outputs, compiled and naturalised weights."""
    transformer_lens = pytest.importorskip("transformer_lens")
    if not hasattr(transformer_lens, "HookedTransformer"):
        pytest.skip("TransformerLens 4 has no HookedTransformer")
    import torch

    from planted import toys

    spec = next(s for s in rasp.PROGRAMS if s.name == name)
    compiled = rasp.compile_program(spec.make(), spec.vocab, spec.max_seq_len, causal=spec.causal)
    source = toys.rasp_transformer(name, 8, seed=1, naturalise=True) if naturalised else compiled
    params = source.model.params if naturalised else compiled.params
    rng = np.random.default_rng(0)
    ids = rasp.encode(compiled, [[spec.vocab[i] for i in rng.integers(0, len(spec.vocab), spec.max_seq_len)]
                                 for _ in range(200)])
    model = rasp.to_hooked_transformer(source)
    with torch.no_grad():
        logits, cache = model.run_with_cache(torch.from_numpy(ids.astype(np.int64)))
    want = rasp.run(compiled, ids) if not naturalised else source.model.run(ids)
    want_logits = rasp.apply(params, ids, causal=compiled.causal)
    np.testing.assert_allclose(logits.numpy(), want_logits, atol=1e-4 * max(1.0, np.abs(want_logits).max()))
    assert rasp.decode(compiled, logits.numpy()) == rasp.decode(compiled, want_logits)
    for layer in range(params["w_q"].shape[0]):
        np.testing.assert_allclose(cache["pattern", layer].numpy(), want["patterns"][:, layer], atol=1e-4)


def test_the_transformer_lens_weights_need_no_transformer_lens():
    compiled = rasp.compile_program(rasp.make_reverse(rasp.tokens), ["a", "b"], 3)
    config, state = rasp.transformer_lens_weights(compiled)
    assert config["attention_dir"] == "bidirectional" and config["use_attn_scale"] is False
    assert config["d_vocab"] == 3 and config["n_ctx"] == 4 and config["d_vocab_out"] == compiled.params["unembed"].shape[1]
    np.testing.assert_array_equal(state["blocks.0.attn.W_Q"], compiled.params["w_q"][0])
    assert all(v.dtype == np.float32 for v in state.values())
    with pytest.raises(ValueError, match="source must be a compiled program"):
        rasp.transformer_lens_weights({"w_q": 1})


@pytest.mark.parametrize("name", ["induction", "ioi", "sort", "frac_prevs"])
def test_each_head_records_what_its_queries_keys_and_values_read(name):
    """The Q, K and V reads are the blocks whose rows of w_q, w_k and w_v are non-zero, and lie
    within the head's reads; induction's head matches queries' tokens against keys' previous tokens."""
    spec = next(s for s in rasp.PROGRAMS if s.name == name)
    compiled = rasp.compile_program(spec.make(), spec.vocab, spec.max_seq_len, causal=spec.causal)
    block_of = {dim: block for block, keyed in compiled.blocks.items() for dim in keyed.values()}
    for c in compiled.components:
        if c.kind != "head":
            assert c.reads_q == c.reads_k == c.reads_v == ()
            continue
        for reads, weight in ((c.reads_q, "w_q"), (c.reads_k, "w_k"), (c.reads_v, "w_v")):
            rows = np.flatnonzero(np.abs(compiled.params[weight][c.layer, c.head]).sum(axis=1))
            assert set(reads) == {block_of[int(r)] for r in rows}, (c.name, weight)
            assert set(reads) <= set(c.reads)
    if name == "induction":
        head = next(c for c in compiled.components if c.name == "induction" and c.kind == "head")
        assert "tokens" in head.reads_q and "previous_token" in head.reads_k and "tokens" in head.reads_v
        assert "previous_token" not in head.reads_q + head.reads_v
