"""The rasp_transformer family: every program with a task builds a truth that verifies, the truth
agrees with exact interventions from the other side (what an oracle of single-edge patches finds),
and the intervention interface does what its docstring says."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from planted import toys
from planted.groundtruth import Patch
from planted.toys._rasp._toy import PROGRAM_NAMES, TOLERANCE
from planted.toys._rasp._truth import structural_edges

FAST = [name for name in PROGRAM_NAMES if name != "shuffle_dyck3"]
ORACLE = [name for name in FAST if name != "shuffle_dyck2"]  # shuffle_dyck2: the redundancy test below


@pytest.fixture(scope="module")
def built():
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = toys.rasp_transformer(name, 16, seed=3)
        return cache[name]

    return get


@pytest.mark.parametrize("name", FAST)  # shuffle_dyck3: see test_redundant_chains_are_all_in_the_circuit_and_marked
def test_every_program_with_a_task_builds_a_truth_that_verifies(name, built):
    toy = built(name)
    result = toy.verify()
    assert result.ok, result.problems
    assert result.faithfulness[0] == pytest.approx(1.0, abs=TOLERANCE)
    truth = toy.truth
    assert truth.nodes[0, -1] and truth.edges[0].size >= 1
    # Every circuit edge is one the compiler wired: its destination reads a block its source writes.
    src, dst = toy.graph.edges()
    structure = structural_edges(toy.compiled, toy.graph)
    assert structure[src[truth.edges[0]], dst[truth.edges[0]]].all()


@pytest.mark.parametrize("name", ORACLE)
def test_single_edge_patches_agree_with_the_truth_from_the_other_side(name, built):
    """An oracle that patches each edge of the whole graph alone: every edge that moves some answer
    is in the truth, every edge the compiler did not wire moves nothing, and where the truth marks
    no node redundant the oracle's scores rank the circuit perfectly (edge AUROC 1)."""
    from planted.evaluators import score_circuit

    toy = built(name)
    graph, model, task = toy.graph, toy.model, toy.tasks[0]
    src, dst = graph.edges()
    clean, corrupt = model.run(task.clean), model.run(task.corrupted)
    base = task.per_input(clean["outputs"])
    effect = np.zeros(graph.n_edges)
    for e in range(graph.n_edges):
        mask = np.zeros((graph.n_nodes, graph.n_nodes), np.float32)
        mask[src[e], dst[e]] = 1.0
        patched = model.run(task.clean, Patch(edge_mask=mask, edge_source=corrupt["activations"]))["outputs"]
        effect[e] = np.abs(task.per_input(patched) - base).max()
    in_truth = toy.truth.edge_mask(0)
    structure = structural_edges(toy.compiled, graph)[src, dst]
    assert (effect[~structure] < 1e-4).all()
    assert in_truth[effect >= TOLERANCE].all()
    if not toy.truth.redundant.any():
        assert not in_truth[effect < TOLERANCE].any()
        from planted.groundtruth import ComponentScores

        scores = score_circuit(ComponentScores(edges=effect), toy, 0)
        assert scores.edge_auroc == 1.0 and scores.edge_precision_at_k == 1.0
        assert scores.faithfulness[-1] == pytest.approx(1.0, abs=1e-4)


def test_redundant_chains_are_all_in_the_circuit_and_marked():
    """shuffle_dyck ORs its bracket types: on inputs unbalanced in both, neither chain matters
    alone, yet the circuit without them is unfaithful. Both are in the truth, their silent nodes
    marked redundant. (shuffle_dyck3, the same circuit with three types, verifies likewise; the
    suite leaves it out for time.)"""
    toy = toys.rasp_transformer("shuffle_dyck2", 32, seed=1)  # a draw whose inputs need the chains jointly
    assert toy.truth.redundant[0].any()
    assert toy.verify().ok
    heads = [toy.graph.labels[i] for i in np.flatnonzero(toy.truth.nodes[0]) if toy.graph.labels[i].startswith("a1.")]
    assert len(heads) == 4  # opens and closes of each of the two bracket types


def test_length_has_no_circuit_task_and_the_config_says_which_programs_do():
    with pytest.raises(ValueError, match="program must be one of") as error:
        toys.rasp_transformer("length", seed=0)
    assert "induction" in str(error.value)
    with pytest.raises(ValueError, match="n_samples"):
        toys.rasp_transformer("induction", 2, seed=0)


def test_patching_a_head_at_one_position_changes_only_what_reads_that_position(built):
    """The position-resolved node patch: the previous-token head of induction patched at one
    position changes the induction head's output only at queries whose match moved."""
    toy = built("induction")
    model, task = toy.model, toy.tasks[0]
    clean, corrupt = model.run(task.clean), model.run(task.corrupted)
    n_positions = task.clean.shape[1]
    mask = np.zeros((toy.graph.n_nodes, n_positions), np.float32)
    head = toy.graph.labels.index("a0.h0")
    mask[head, 2] = 1.0
    patched = model.run(task.clean, Patch(node_mask=mask, node_values=corrupt["activations"]))
    changed = np.abs(patched["activations"][:, head] - clean["activations"][:, head]).max(axis=-1)
    assert (changed[:, [0, 1, 3, 4, 5, 6]] == 0).all()
    same_token = task.clean[:, 1] == task.corrupted[:, 1]  # position 2 writes the previous (model position 1) token
    assert (changed[same_token, 2] == 0).all() and (changed[~same_token, 2] > 0.5).all()


def test_the_metric_is_one_on_clean_and_zero_on_corrupted_inputs(built):
    for name in ("induction", "frac_prevs", "ioi"):
        toy = built(name)
        task = toy.tasks[0]
        np.testing.assert_allclose(task.per_input(toy.model.run(task.clean)["outputs"]), 1.0, atol=1e-4)
        np.testing.assert_allclose(task.per_input(toy.model.run(task.corrupted)["outputs"]), 0.0, atol=1e-4)


def test_resid_patches_are_refused_with_the_alternative(built):
    toy = built("successor")
    with pytest.raises(ValueError, match="resid_mask"):
        toy.model.run(toy.tasks[0].clean, Patch(resid_mask=np.ones(3)))


# -- the failure-mode catalog -----------------------------------------------------------------------

def test_the_config_toggles_are_the_catalog_in_order():
    import dataclasses

    from planted.toys._rasp._catalog import MODES

    fields = [f.name for f in dataclasses.fields(toys.RASPTransformerConfig)]
    names = [m.name for m in MODES]
    assert [f for f in fields if f in names] == names == list(toys.TRANSFORMER_FAILURE_MODES)
    for mode in MODES:
        assert mode.name in toys.rasp_transformer.__doc__ and len(mode.description) > 100


@functools.cache
def _catalog_toy(program: str, mode: str):
    return toys.rasp_transformer(program, 16, seed=0, **{mode: True})


CATALOG_CASES = [(p, m) for p in ("induction", "ioi") for m in toys.TRANSFORMER_FAILURE_MODES]
CATALOG_CASES.append(("frac_prevs", "cancellation"))  # a numerical output
CATALOG_CASES += [("reverse", "saturation"), ("frac_prevs", "saturation")]  # a value-path circuit; a numerical output


def test_a_backup_needs_a_head_to_copy():
    with pytest.raises(ValueError, match="backup: program 'frac_prevs' has no head a backup can copy"):
        toys.rasp_transformer("frac_prevs", 16, seed=0, backup=True)


@pytest.mark.parametrize("program, mode", CATALOG_CASES)
def test_every_mode_verifies_and_marks_its_nodes(program, mode):
    toy = _catalog_toy(program, mode)
    assert toy.verify().ok
    assert set(toy.truth.catalog) == {mode} and toy.truth.catalog[mode].any()
    if mode != "naturalise":
        from planted.toys import rasp

        assert rasp.differential(toy.compiled, backend="numpy", limit=1500).ok


def _patching(toy):
    from planted.methods import transformers

    return np.abs(transformers.activation_patching(toy.artifact, 0).nodes)


def test_distractor_heads_are_never_in_the_circuit_and_interventions_see_nothing():
    toy = _catalog_toy("ioi", "distractors")
    marked = toy.truth.catalog["distractors"]
    assert not (marked & toy.truth.nodes[0]).any()
    assert (_patching(toy)[marked] == 0).all()


def test_a_backup_head_hides_its_head_from_zero_ablation_and_itself_from_every_single_intervention():
    from planted.methods import transformers

    toy = _catalog_toy("induction", "backup")
    labels = toy.graph.labels
    first, backup = (i for i in np.flatnonzero(toy.truth.catalog["backup"]))
    assert toy.truth.redundant[0, backup] and toy.truth.nodes[0, first] and not toy.truth.redundant[0, first]
    zero = np.abs(transformers.ablation(toy.artifact, 0, kind="zero").nodes)
    assert _patching(toy)[first] > 0.3 and zero[first] < 0.05, (labels[first], zero[first])
    for scores in (_patching(toy), zero, np.abs(transformers.ablation(toy.artifact, 0, kind="mean").nodes)):
        assert scores[backup] < 1e-6


def test_cancelling_heads_are_false_positives_of_single_interventions():
    toy = _catalog_toy("induction", "cancellation")
    marked = toy.truth.catalog["cancellation"]
    assert not (marked & toy.truth.nodes[0]).any()
    scores = _patching(toy)
    assert scores[marked].min() > np.nanmax(scores[toy.truth.nodes[0] & ~marked][:-1])


@pytest.mark.parametrize("program", ["reverse", "frac_prevs"])
def test_saturation_hides_the_circuit_from_gradients_but_not_from_interventions_or_integrated_gradients(program, built):
    """On value-path circuits attribution patching and EAP find everything in the plain toy and
    nothing upstream of the steep readout in the saturated one; patching and EAP-IG are unaffected."""
    from planted.evaluators.circuits import score_circuit
    from planted.methods import transformers

    plain, toy = built(program), _catalog_toy(program, "saturation")
    readout = np.flatnonzero(toy.truth.catalog["saturation"])
    assert toy.truth.nodes[0, readout].all()
    upstream = toy.truth.nodes[0].copy()
    upstream[readout] = upstream[-1] = False
    assert upstream.sum() >= 2
    attribution = transformers.attribution_patching(toy.artifact, 0).nodes
    assert np.abs(attribution[upstream]).max() < 1e-6 < np.abs(attribution[readout]).min()

    def auroc(method, t):
        result = score_circuit(method(t.artifact, 0), t, 0, faithfulness=False)
        return result.node_auroc if result.node_auroc is not None else result.edge_auroc

    for method in (transformers.attribution_patching, transformers.edge_attribution_patching):
        assert auroc(method, plain) > 0.99 and auroc(method, toy) < 0.75, method.__name__
    for method in (transformers.activation_patching, transformers.eap_ig):
        assert auroc(method, toy) > 0.99, method.__name__


def test_naturalise_leaves_no_zero_weight_and_the_same_interventional_answers():
    plain = toys.rasp_transformer("induction", 16, seed=0)
    toy = _catalog_toy("induction", "naturalise")
    for name, value in toy.model.params.items():
        assert (value != 0).all(), name
        assert not np.allclose(value, plain.model.params[name])
    np.testing.assert_allclose(_patching(toy), _patching(plain), atol=1e-3)
    np.testing.assert_array_equal(toy.truth.nodes, plain.truth.nodes)


@pytest.mark.parametrize("name", ["ioi", "frac_prevs"])
def test_the_jit_compiled_run_and_the_float64_reference_agree_under_random_patches(name, built):
    """The truth and verify use ``run_exact`` (float64 NumPy); methods use ``run`` (JAX, float32)."""
    toy = built(name)
    model, task = toy.model, toy.tasks[0]
    rng = np.random.default_rng(7)
    n, positions = toy.graph.n_nodes, task.clean.shape[1]
    corrupt = model.run(task.corrupted)["activations"]
    patches = [
        Patch(edge_mask=(rng.random((n, n)) < 0.3).astype(np.float32), edge_source=corrupt),
        Patch(node_mask=(rng.random((n, positions)) < 0.3).astype(np.float32), node_values=corrupt),
        Patch(node_delta=rng.normal(size=corrupt.shape).astype(np.float32) * 0.01,
              pre_delta=rng.normal(size=corrupt.shape).astype(np.float32) * 0.01),
    ]
    for patch in patches:
        fast, exact = model.run(task.clean, patch), model.run_exact(task.clean, patch)
        for key in ("outputs", "activations", "patterns"):
            np.testing.assert_allclose(fast[key], exact[key], atol=1e-4, err_msg=key)


def test_a_loaded_toy_whose_task_ids_lose_their_bos_is_refused(built):
    import dataclasses

    from planted.toys._rasp._toy import _check

    toy = built("successor")
    assert _check(toy) == []
    task = toy.tasks[0]
    shifted = task.clean.copy()
    shifted[:, 0] = shifted[:, 1]  # no BOS at position 0
    bad = dataclasses.replace(toy, tasks=(dataclasses.replace(task, clean=shifted),))
    assert any("BOS" in problem for problem in _check(bad))


@functools.cache
def _trained(program: str):
    return toys.rasp_transformer(program, 16, seed=0, trained=True, residual_fraction=0.5)


@pytest.mark.slow
def test_the_trained_kind_learns_the_compiled_circuit_with_dense_weights_in_superposition(tmp_path):
    """Interchange training against the compiled model, in a residual stream half as wide as the
    compiled one's one direction per value: no zero weight, every fresh interchange decoded alike,
    the compiled kind's circuit verified on the trained weights (strictness included), and the
    trained truth equal to the compiled one; a save/load round trip keeps it."""
    from planted.methods import transformers

    toy, compiled = _trained("successor"), toys.rasp_transformer("successor", 16, seed=0)
    assert toy.training["interchange_accuracy"] == 1.0 and toy.training["loss"] < 1e-3
    d_model = compiled.model.params["w_q"].shape[2]
    assert toy.training["d_model"] == toy.model.params["w_q"].shape[2] == d_model // 2
    for name, value in toy.model.params.items():
        assert (value != 0).all(), name
        want = tuple(d_model // 2 if size == d_model else size for size in compiled.model.params[name].shape)
        assert value.shape == want, name
    assert toy.verify().ok
    np.testing.assert_array_equal(toy.truth.nodes, compiled.truth.nodes)
    np.testing.assert_array_equal(toy.truth.edges[0], compiled.truth.edges[0])
    patching = np.abs(transformers.activation_patching(toy.artifact, 0).nodes)
    inside = toy.truth.nodes[0].copy()
    inside[-1] = False
    assert patching[inside].min() > np.nanmax(patching[~toy.truth.nodes[0]])
    path = toys.save(toy, tmp_path / "trained")
    loaded = toys.load(path)
    assert loaded.training == toy.training and loaded.config.trained
    for name, value in toy.model.params.items():
        np.testing.assert_array_equal(loaded.model.params[name], value)


def test_a_loaded_trained_toy_is_checked_by_what_it_computes():
    import dataclasses

    from planted.toys._rasp._toy import _check

    toy = _trained("successor")
    assert _check(toy) == []
    params = dict(toy.model.params)
    params["w_o"] = params["w_o"] * 0.5  # the head's output halved: answers and strictness break
    from planted.toys._rasp._circuit import TransformerModel

    model = TransformerModel(params=params, graph=toy.graph, causal=toy.model.causal, output_tokens=toy.model.output_tokens)
    problems = _check(dataclasses.replace(toy, model=model))
    assert problems and all("does not verify" in p for p in problems)


def test_the_trained_kind_refuses_the_catalog_modes_and_bad_steps():
    with pytest.raises(ValueError, match="trained=True with backup"):
        toys.rasp_transformer("induction", 16, seed=0, trained=True, backup=True)
    with pytest.raises(ValueError, match="train_steps"):
        toys.rasp_transformer("induction", 16, seed=0, trained=True, train_steps=10)
    with pytest.raises(ValueError, match="residual_fraction=0.5 narrows the trained kind's residual stream"):
        toys.rasp_transformer("induction", 16, seed=0, residual_fraction=0.5)


def test_a_per_input_edge_mask_patches_each_input_alone(built):
    """Interchange training patches a different edge in each input of a batch: (batch, n, n) masks
    give what one (n, n) mask per input gives."""
    toy = built("reverse")
    model, task = toy.model, toy.tasks[0]
    src, dst = toy.graph.edges()
    rng = np.random.default_rng(3)
    k = 6
    masks = np.zeros((k, toy.graph.n_nodes, toy.graph.n_nodes), np.float32)
    picked = rng.choice(toy.graph.n_edges, size=k)
    masks[np.arange(k), src[picked], dst[picked]] = 1.0
    source = model.run_exact(task.corrupted[:k])["activations"]
    together = model.run_exact(task.clean[:k], Patch(edge_mask=masks, edge_source=source))["outputs"]
    for b in range(k):
        alone = model.run_exact(task.clean[b:b + 1], Patch(edge_mask=masks[b], edge_source=source[b:b + 1]))["outputs"]
        np.testing.assert_allclose(together[b], alone[0], atol=1e-9)


def test_sets_of_components_and_single_edges_patch_as_plain_runs_do():
    """``patch_node_sets`` and ``patch_edges`` (the lesion census's vmapped runs) equal one plain
    ``run`` per set or edge; the accuracy is the argmax's."""
    toy = toys.rasp_transformer("ioi", 16, seed=0, distractors=True)
    model, task = toy.model, toy.tasks[0]
    values = model.ablated(task.clean, "mean")
    masks = np.zeros((5, toy.graph.n_nodes), np.float32)
    masks[0, [2, 5]] = masks[1, 8] = masks[3, [4, 7, 10]] = 1.0  # row 2 and 4: nothing patched
    got = model.patch_node_sets(task.clean, masks, values)
    for row, out in zip(masks, got, strict=True):
        np.testing.assert_allclose(out, model.run(task.clean, Patch(node_mask=row, node_values=values))["outputs"], atol=1e-5)
    src, dst = toy.graph.edges()
    pick = np.random.default_rng(0).choice(src.size, 9, replace=False)
    got = model.patch_edges(task.clean, src[pick], dst[pick], values)
    for i, e in enumerate(pick):
        mask = np.zeros((toy.graph.n_nodes,) * 2, np.float32)
        mask[src[e], dst[e]] = 1.0
        np.testing.assert_allclose(got[i], model.run(task.clean, Patch(edge_mask=mask, edge_source=values))["outputs"], atol=1e-5)
    clean = model.run(task.clean)["outputs"]
    assert task.accuracy(clean) == 1.0 and task.accuracy(model.run(task.corrupted)["outputs"]) == 0.0
