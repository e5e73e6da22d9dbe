import json
import re

import numpy as np
import pytest

from planted import toys
from planted.evaluators import make, score
from planted.evaluators import Store, external
from planted.evaluators.external import load_predictions


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make("sharkey2022", tmp_path_factory.mktemp("x") / "toy", seed=0, n_samples=2000)


def test_make_writes_the_artifact_and_no_truth(folder):
    with np.load(folder / "artifact.npz", allow_pickle=False) as npz:
        assert npz.files == ["activations"]
        assert npz["activations"].shape == (2000, 256) and npz["activations"].dtype == np.float32
    info = json.loads((folder / "artifact.json").read_text())
    assert info["tasks"] == ["features"] and "directions" in info["formats"]["features"]["predictions"]
    text = (folder / "artifact.json").read_text()
    assert "firing_probabilities" not in text and "codes\": {" not in text
    toy = toys.load(folder / "truth.sealed")
    assert toy.id == info["toy_id"]


def test_perfect_predictions_score_perfectly(folder, tmp_path):
    toy = toys.load(folder / "truth.sealed")
    path = tmp_path / "perfect.npz"
    np.savez(path, directions=toy.truth.directions, codes=toy.truth.codes.toarray())
    scores = score(folder, path)["features"]
    for name in ("mmcs", "matched_cosine", "recovered", "code_correlation"):
        assert scores[name] == pytest.approx(1.0, abs=1e-6)
    assert scores["spurious"] == 0 and scores["fvu"] == pytest.approx(0, abs=1e-8)


@pytest.mark.parametrize(
    "arrays, match",
    [
        (dict(codes=np.zeros((2000, 3), np.float32)), "no array 'directions'; expected a float array \\(n_latents, 256\\)"),
        (dict(directions=np.zeros((5, 100), np.float32)), "'directions' must be a float array \\(n_latents, 256\\), got float32 \\(5, 100\\)"),
        (dict(directions=np.zeros((5, 256), np.int64)), "'directions' must be a float array"),
        (dict(directions=np.ones((5, 256)), codes=np.ones((10, 5))), "'codes' must be a float array \\(2000, 5\\)"),
        (dict(directions=np.ones((5, 256)), decoder_bias=np.ones(3)), "'decoder_bias' must be a float array \\(256,\\)"),
        (dict(directions=np.full((5, 256), np.nan)), "directions contains 1280 NaN"),
        (dict(directions=np.ones((5, 256)), extra=np.ones(2)), "unexpected arrays \\['extra'\\]"),
    ],
)
def test_malformed_predictions_get_the_promised_error(tmp_path, arrays, match):
    path = tmp_path / "p.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=match):
        load_predictions(path, n_samples=2000, d_model=256)


def test_object_arrays_and_garbage_are_refused(tmp_path):
    path = tmp_path / "p.npz"
    np.savez(path, directions=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="object array"):
        load_predictions(path, n_samples=1, d_model=1)
    (tmp_path / "g.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_predictions(tmp_path / "g.npz", n_samples=1, d_model=1)


def test_swapped_truth_is_detected(folder, tmp_path):
    other = make("sharkey2022", tmp_path / "other", seed=1, n_samples=2000)
    import shutil

    target = tmp_path / "mixed"
    shutil.copytree(folder, target)
    shutil.rmtree(target / "truth.sealed")
    shutil.copytree(other / "truth.sealed", target / "truth.sealed")
    np.savez(tmp_path / "p.npz", directions=np.ones((3, 256), np.float32))
    with pytest.raises(ValueError, match="sealed truth is missing or does not match"):
        score(target, tmp_path / "p.npz")


@pytest.mark.parametrize(
    "content, match",
    [
        ('{"tasks": ["nonsense"]}', "'tasks' is \\['nonsense'\\]"),
        ("{}", "'tasks' is \\[None\\]"),
        ("[1, 2]", "not a JSON object"),
        ('{"task": "feat', "not valid JSON"),
        ("[" * 5000 + "]" * 5000, "nested 5000 deep"),
        (b"\xff\xfe\x00", "not UTF-8"),
    ],
)
def test_a_bad_artifact_json_gets_one_line(folder, tmp_path, capsys, content, match):
    """``planted score`` on a folder whose artifact.json is broken: exit 2 and one line naming the file."""
    import shutil

    from planted.evaluators import cli

    target = tmp_path / "f"
    shutil.copytree(folder, target)
    info = target / "artifact.json"
    info.write_bytes(content if isinstance(content, bytes) else content.encode())
    np.savez(tmp_path / "p.npz", directions=np.ones((3, 256), np.float32))
    assert cli.main(["score", str(target), str(tmp_path / "p.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"planted: error: {info}:") and "Traceback" not in err, err
    assert re.search(match, err), err


def test_a_corrupt_sealed_truth_gets_one_line(folder, tmp_path, capsys):
    """The truth archive of a made folder broken in several ways (its hash re-recorded, so the
    archive itself is what is read): exit 2 and one line, never a traceback."""
    import shutil

    from planted.evaluators import cli

    np.savez(tmp_path / "p.npz", directions=np.ones((3, 256), np.float32))
    faults = {
        "truncated": lambda b: b[: len(b) // 3],
        "an .npy": lambda b: b"\x93NUMPY\x01\x00" + b[8:200],
        "bit flips": lambda b: bytes(x ^ (0x10 if i % 997 == 5 else 0) for i, x in enumerate(b)),
        "empty": lambda b: b"",
    }
    for name, fault in faults.items():
        target = tmp_path / name.replace(" ", "_").replace(".", "")
        shutil.copytree(folder, target)
        arrays = target / "truth.sealed" / "arrays.npz"
        arrays.write_bytes(fault(arrays.read_bytes()))
        assert cli.main(["score", str(target), str(tmp_path / "p.npz")]) == 2, name
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{arrays}:" in err and "Traceback" not in err, (name, err)
    # The manifest's own hash is recorded in artifact.json: an edited truth manifest is refused too.
    target = tmp_path / "manifest"
    shutil.copytree(folder, target)
    manifest = target / "truth.sealed" / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"seed": 0', '"seed": 1'))
    assert cli.main(["score", str(target), str(tmp_path / "p.npz")]) == 2
    assert "does not match artifact.json" in capsys.readouterr().err


def test_the_private_split_hands_out_nothing_that_rebuilds_the_truth(tmp_path, capsys):
    """``planted make --secret-file``: artifact.json holds no seed, id or config; the truth lies in a
    folder beside the artifact's; the public configs of the preset do not rebuild the toy; the
    maintainer scores with ``--truth``, and a truth sealed for another artifact is refused."""
    from planted.evaluators import cli

    secret = tmp_path / "secret"
    secret.write_text("the maintainer's secret, long enough")
    out = tmp_path / "private"
    assert cli.main(["make", "sharkey2022", "--out", str(out), "--secret-file", str(secret)]) == 0
    assert f"{out}.truth/" in capsys.readouterr().out
    info = json.loads((out / "artifact.json").read_text())
    assert info["split"] == "private" and not {"seed", "toy_id", "truth_manifest_sha256", "config"} & set(info)
    assert sorted(p.name for p in out.iterdir()) == ["artifact.json", "artifact.npz"]
    truth = toys.load(tmp_path / "private.truth")
    with np.load(out / "artifact.npz") as npz:
        x = npz["activations"]
    for seed in range(3):  # the public seeds do not give this toy
        public = toys.preset_config("sharkey2022", seed=seed)
        assert public.id != truth.id
    np.savez(tmp_path / "p.npz", directions=truth.truth.directions)
    assert cli.main(["score", str(out), str(tmp_path / "p.npz"), "--truth", str(tmp_path / "private.truth")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["scores"]["features"]["mmcs"] == pytest.approx(1.0) and "toy_id" not in printed["toy"]
    assert x.shape == truth.activations.shape
    # Without the truth folder there is nothing to score against; another artifact's truth is refused.
    assert cli.main(["score", str(out), str(tmp_path / "p.npz")]) == 2
    other = tmp_path / "other"
    cli.main(["make", "sharkey2022", "--out", str(other), "--seed", "1", "--secret-file", str(secret)])
    capsys.readouterr()
    assert cli.main(["score", str(out), str(tmp_path / "p.npz"), "--truth", str(tmp_path / "other.truth")]) == 2
    assert "was not sealed for" in capsys.readouterr().err
    # The same secret and seed make the same toy again.
    again = tmp_path / "again"
    cli.main(["make", "sharkey2022", "--out", str(again), "--secret-file", str(secret)])
    assert toys.load(tmp_path / "again.truth").id == truth.id


def _saelens_checkpoint(folder, toy, architecture: str, **cfg):
    """A SAELens-format checkpoint written with the safetensors library: the truth's directions as
    the decoder, their transposes as the encoder."""
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    d_sae, d_in = toy.truth.directions.shape
    w_dec = toy.truth.directions.astype(np.float32)
    weights = {"W_enc": np.ascontiguousarray(w_dec.T), "b_enc": np.full(d_sae, -0.01, np.float32), "W_dec": w_dec,
               "b_dec": np.zeros(d_in, np.float32)}
    if architecture == "jumprelu":
        weights["threshold"] = np.full(d_sae, 0.05, np.float32)
    folder.mkdir()
    safetensors_numpy.save_file(weights, str(folder / "sae_weights.safetensors"))
    config = {"d_in": d_in, "d_sae": d_sae, "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": True,
              "normalize_activations": "none", "reshape_activations": "none", "architecture": architecture,
              "meta": {"model_name": "toy"}, **cfg}
    (folder / "cfg.json").write_text(json.dumps(config))
    return weights


@pytest.mark.parametrize("architecture, cfg", [("standard", {}), ("jumprelu", {}), ("topk", {"k": 8})])
def test_a_saelens_checkpoint_is_read_without_torch_and_scored(folder, tmp_path, architecture, cfg):
    """The checkpoint's decoder rows are the directions and its encoder is SAELens' own; an SAE
    whose decoder is the truth scores perfectly, its codes computed by that encoder."""
    from planted.evaluators import load_saelens

    toy = toys.load(folder / "truth.sealed")
    weights = _saelens_checkpoint(tmp_path / "sae", toy, architecture, **cfg)
    dictionary = load_saelens(tmp_path / "sae")
    np.testing.assert_array_equal(dictionary.directions, weights["W_dec"])
    x = toy.activations[:50]
    pre = (x - weights["b_dec"]) @ weights["W_enc"] + weights["b_enc"]  # SAELens' encode, written out
    if architecture == "standard":
        expected = np.maximum(pre, 0)
    elif architecture == "jumprelu":
        expected = np.maximum(pre, 0) * (pre > weights["threshold"])
    else:
        expected = np.zeros_like(pre)
        top = np.argsort(-pre, axis=1)[:, :8]
        np.put_along_axis(expected, top, np.maximum(np.take_along_axis(pre, top, axis=1), 0), axis=1)
    np.testing.assert_allclose(dictionary.encoder(x), expected, atol=1e-5)
    scores = score(folder, tmp_path / "sae")["features"]
    assert scores["mmcs"] == pytest.approx(1.0) and scores["code_correlation"] > 0.5


def test_a_saelens_checkpoint_that_cannot_be_read_says_why(folder, tmp_path):
    from planted.evaluators import load_saelens

    toy = toys.load(folder / "truth.sealed")
    _saelens_checkpoint(tmp_path / "gated", toy, "gated")
    with pytest.raises(ValueError, match="architecture 'gated' is not read"):
        load_saelens(tmp_path / "gated")
    _saelens_checkpoint(tmp_path / "norm", toy, "standard", normalize_activations="expected_average_only_in")
    with pytest.raises(ValueError, match="normalize_activations is 'expected_average_only_in'"):
        load_saelens(tmp_path / "norm")
    _saelens_checkpoint(tmp_path / "cut", toy, "standard")
    data = (tmp_path / "cut" / "sae_weights.safetensors").read_bytes()
    (tmp_path / "cut" / "sae_weights.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="sae_weights.safetensors: tensor .* do not hold"):
        load_saelens(tmp_path / "cut")


def test_an_npz_encoder_is_used_for_codes_and_scores_reach_a_leaderboard(folder, tmp_path, capsys):
    from planted.evaluators import cli
    from planted.evaluators.store import Store

    toy = toys.load(folder / "truth.sealed")
    d = toy.truth.directions
    np.savez(tmp_path / "enc.npz", directions=d, W_enc=d.T.copy(), k=np.int64(5))
    dictionary = load_predictions(tmp_path / "enc.npz", n_samples=2000, d_model=256)
    assert dictionary.encoder.activation == "topk" and dictionary.encoder.k == 5
    np.savez(tmp_path / "bad.npz", directions=d, threshold=np.zeros(d.shape[0]))
    with pytest.raises(ValueError, match=r"\['threshold'\] given without 'W_enc'"):
        load_predictions(tmp_path / "bad.npz", n_samples=2000, d_model=256)
    store = tmp_path / "s.sqlite"
    assert cli.main(["score", str(folder), str(tmp_path / "enc.npz"), "--store", str(store), "--method", "oracle"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["scores"]["features"]["code_correlation"] > 0.5 and printed["chance"]["features"]["mmcs"] < 0.5
    with Store(store) as s:
        rows = s.results()
    assert [(r.suite, r.method, r.toy) for r in rows] == [("make:sharkey2022", "oracle", "sharkey2022")]
    assert rows[0].metrics["mmcs"] == pytest.approx(1.0)
    assert cli.main(["report", "--store", str(store)]) == 0
    assert "oracle" in capsys.readouterr().out


def test_a_circuit_toy_as_files_an_oracle_scores_perfectly_and_the_model_runs_from_them(tmp_path, capsys):
    """``planted make planted_mlp``: the artifact holds the parameters, the graph and the task
    inputs; the forward pass written in artifact.json, run here from the arrays alone, gives the
    labels; predictions naming the truth's nodes and edges score 1.0; they reach a leaderboard."""
    from planted.evaluators import cli

    out = tmp_path / "circuit"
    assert cli.main(["make", "planted_mlp", "--out", str(out), "--set", "n_inputs=8", "--n-samples", "32"]) == 0
    capsys.readouterr()
    info = json.loads((out / "artifact.json").read_text())
    assert info["tasks"] == ["circuits", "lesions"]  # one artifact, two truths: the circuit and the census
    truth = toys.load(out / "truth.sealed").truth
    with np.load(out / "artifact.npz") as npz:
        a = {k: npz[k] for k in npz.files}
    assert not any(k.startswith("truth") for k in a)
    r = a["task0.clean"] @ a["params.embed"]
    for b in range(a["params.w_in"].shape[0]):
        r = r + np.maximum(r @ a["params.w_in"][b].T + a["params.b_in"][b], 0) @ a["params.w_out"][b]
    outputs = r @ a["params.readout"].T + a["params.readout_bias"]
    np.testing.assert_allclose(outputs[:, 0], a["task0.labels"], atol=0.05)
    assert len(info["formats"]["circuits"]["graph"]["labels"]) == truth.graph.n_nodes
    oracle = {}
    for t in range(truth.n_tasks):
        oracle[f"nodes.{t}"] = truth.nodes[t].astype(np.float64)
        oracle[f"edges.{t}"] = truth.edge_mask(t).astype(np.float64)
    np.savez(tmp_path / "oracle.npz", **oracle)
    store = tmp_path / "s.sqlite"
    assert cli.main(["score", str(out), str(tmp_path / "oracle.npz"), "--store", str(store)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["scores"]["circuits"]["edge_auroc"] == pytest.approx(1.0)
    assert printed["scores"]["circuits"]["node_auroc"] == pytest.approx(1.0)
    # only planted circuit nodes cost anything when lesioned, though some of them cost nothing
    assert 0.8 < printed["scores"]["lesions"]["lesion_auroc"] < 1.0
    assert printed["chance"]["circuits"]["auroc"] == 0.5
    np.savez(tmp_path / "short.npz", **{"nodes.0": np.zeros(3)})
    assert cli.main(["score", str(out), str(tmp_path / "short.npz")]) == 2
    assert "'nodes.0' must be a float array (" in capsys.readouterr().err


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_a_compiled_transformer_as_files_runs_from_its_description_and_an_oracle_scores_perfectly(tmp_path, capsys):
    """``planted make rasp_transformer``: the forward pass written in artifact.json, run here in
    NumPy from the arrays alone, gives the task's answers (metric 1 on clean, 0 on corrupted); the
    truth's edges as predictions score 1.0; the artifact serves the transformer tasks only."""
    from planted.evaluators import cli

    out = tmp_path / "transformer"
    assert cli.main(["make", "rasp_transformer", "--out", str(out), "--set", "program=ioi", "--n-samples", "16"]) == 0
    capsys.readouterr()
    info = json.loads((out / "artifact.json").read_text())
    assert info["tasks"] == ["transformer_circuits", "transformer_lesions"]  # one artifact, the circuit and the census
    truth = toys.load(out / "truth.sealed").truth
    with np.load(out / "artifact.npz") as npz:
        a = {k: npz[k] for k in npz.files}
    assert not any(k.startswith("truth") for k in a)
    for name, want in (("clean", 1.0), ("corrupted", 0.0)):
        ids = a[f"task0.{name}"]
        n = ids.shape[1]
        x = a["params.embed_tokens"][ids] + a["params.embed_positions"][:n]
        causal = np.tril(np.ones((n, n), bool))  # ioi is causal, as the description says
        assert "causal" in info["formats"]["transformer_circuits"]["model"]
        for layer in range(a["params.w_q"].shape[0]):
            added = 0
            for h in range(a["params.w_q"].shape[1]):
                q, k, v = (x @ a[f"params.w_{m}"][layer, h] for m in "qkv")
                pattern = _softmax(np.where(causal, q @ k.transpose(0, 2, 1), -np.inf))
                added = added + pattern @ v @ a["params.w_o"][layer, h]
            x = x + added
            x = x + np.maximum(x @ a["params.w_in"][layer], 0) @ a["params.w_out"][layer]
        logits = (x @ a["params.unembed"])[:, -1]
        rows = np.arange(ids.shape[0])
        metric = (logits[rows, a["task0.clean_answer"]] - logits[rows, a["task0.corrupted_answer"]] + 1) / 2
        np.testing.assert_allclose(metric, want, atol=1e-4)
    np.savez(tmp_path / "oracle.npz", **{"edges.0": truth.edge_mask(0).astype(np.float64)})
    assert cli.main(["score", str(out), str(tmp_path / "oracle.npz")]) == 0
    assert json.loads(capsys.readouterr().out)["scores"]["transformer_circuits"]["edge_auroc"] == pytest.approx(1.0)


def test_a_connectome_as_files_serves_three_tasks(tmp_path, capsys):
    from planted.evaluators import cli

    out = tmp_path / "recording"
    assert cli.main(["make", "connectome", "--out", str(out), "--set", "n_neurons=60", "--set", "duration=4.0",
                     "--set", "hub_fraction=0.1", "--set", "n_modules=3"]) == 0
    capsys.readouterr()
    info = json.loads((out / "artifact.json").read_text())
    assert info["tasks"] == ["connectivity", "modules", "hubs"]
    truth = toys.load(out / "truth.sealed").truth
    with np.load(out / "artifact.npz") as npz:
        assert sorted(npz.files) == ["positions", "traces"]
    observed = truth.observed
    np.savez(tmp_path / "oracle.npz", scores=(truth.adjacency() != 0).astype(np.float64),
             labels=truth.modules[observed], values=truth.hubs[observed].astype(np.float64))
    assert cli.main(["score", str(out), str(tmp_path / "oracle.npz")]) == 0
    scores = json.loads(capsys.readouterr().out)["scores"]
    assert scores["connectivity"]["auroc"] == pytest.approx(1.0)
    assert scores["modules"]["nmi"] == pytest.approx(1.0)
    assert scores["hubs"]["hub_precision"] == pytest.approx(1.0)
    np.savez(tmp_path / "only.npz", labels=truth.modules[observed])
    assert cli.main(["score", str(out), str(tmp_path / "only.npz")]) == 0
    assert list(json.loads(capsys.readouterr().out)["scores"]) == ["modules"]


@pytest.mark.parametrize("architecture", ["relu", "topk", "jumprelu"])
def test_a_dictionary_learning_checkpoint_is_read_without_torch_and_scored(folder, tmp_path, architecture):
    """ae.pt files as dictionary_learning's AutoEncoder, AutoEncoderTopK and JumpReluAutoEncoder
    save them (torch.save of the state dict), read without torch; their encoders as the library
    writes them."""
    torch = pytest.importorskip("torch")
    from collections import OrderedDict

    from planted.evaluators import load_dictionary_learning

    toy = toys.load(folder / "truth.sealed")
    d = toy.truth.directions.astype(np.float32)  # (k, d_in)
    rng = np.random.default_rng(0)
    bias = (0.01 * rng.standard_normal(d.shape[1])).astype(np.float32)
    if architecture == "jumprelu":
        scale = (1 + rng.random(d.shape[0])).astype(np.float32)  # decoder rows of other norms
        state = OrderedDict(W_enc=torch.from_numpy(d.T.copy()), b_enc=torch.full((d.shape[0],), -0.01),
                            W_dec=torch.from_numpy(d * scale[:, None]), b_dec=torch.from_numpy(bias),
                            threshold=torch.full((d.shape[0],), 0.05))
    else:
        state = OrderedDict(**{"encoder.weight": torch.from_numpy(d.copy()), "encoder.bias": torch.full((d.shape[0],), -0.01),
                               "decoder.weight": torch.from_numpy(d.T.copy())})
        state["b_dec" if architecture == "topk" else "bias"] = torch.from_numpy(bias)
        if architecture == "topk":
            state["k"] = torch.tensor(8, dtype=torch.int32)
    (tmp_path / "sae").mkdir()
    torch.save(state, tmp_path / "sae" / "ae.pt")
    dictionary = load_dictionary_learning(tmp_path / "sae")
    x = torch.from_numpy(toy.activations[:40])
    with torch.no_grad():  # the library's encode, written out in torch
        if architecture == "jumprelu":
            pre = x @ state["W_enc"] + state["b_enc"]
            codes = torch.relu(pre * (pre > state["threshold"])) * state["W_dec"].norm(dim=1)
        else:
            pre = torch.relu((x - bias) @ state["encoder.weight"].T + state["encoder.bias"])
            codes = pre
            if architecture == "topk":
                top = pre.topk(8, dim=-1)
                codes = torch.zeros_like(pre).scatter_(-1, top.indices, top.values)
    np.testing.assert_allclose(dictionary.encoder(toy.activations[:40]), codes.numpy(), atol=1e-5)
    if architecture == "jumprelu":  # unit directions times the scaled codes reconstruct as the library decodes
        np.testing.assert_allclose(codes.numpy() @ dictionary.directions,
                                   (codes / state["W_dec"].norm(dim=1)).numpy() @ state["W_dec"].numpy(), atol=1e-4)
    assert score(folder, tmp_path / "sae" / "ae.pt")["features"]["mmcs"] == pytest.approx(1.0)


def test_a_checkpoint_torch_wrote_reads_without_torch():
    """tests/data/dictionary_learning/ae.pt was written by torch.save (torch 2.13) as
    dictionary_learning's AutoEncoder saves itself, with its codes of five inputs computed by torch:
    ``relu((x - bias) @ encoder.weight.T + encoder.bias)``."""
    from pathlib import Path

    from planted.evaluators import load_dictionary_learning

    data = Path(__file__).resolve().parents[1] / "data" / "dictionary_learning"
    expected = json.loads((data / "expected.json").read_text())
    dictionary = load_dictionary_learning(data / "ae.pt")
    np.testing.assert_allclose(dictionary.encoder(np.array(expected["inputs"], np.float32)), expected["codes"], atol=1e-5)
    np.testing.assert_allclose(dictionary.directions, np.array(expected["decoder_weight"]).T, atol=1e-7)


# --- problems of several toys, and a chosen task ------------------------------------------------


def test_a_suites_problem_goes_to_files_and_its_oracle_scores_perfectly(tmp_path, capsys):
    """``planted make comparison:ladder``: the views side by side, each toy's truth sealed apart;
    the planted shared fractions as predictions rank every pair right, and reach a store with
    the problem's toys."""
    from planted.evaluators import cli
    from planted.evaluators.comparison import shared_fractions
    from planted.evaluators.store import problem_id
    from planted.evaluators.suites import SUITES

    out = tmp_path / "views"
    assert cli.main(["make", "comparison:ladder", "--out", str(out), "--seed", "1"]) == 0
    capsys.readouterr()
    info = json.loads((out / "artifact.json").read_text())
    spec = next(t for t in SUITES["comparison"].toys if t.name == "ladder")
    ids = [c.id for c in spec.configs(1)]
    assert info["tasks"] == ["comparison"] and info["toy_ids"] == ids and info["toy_id"] == problem_id(ids)
    assert sorted(p.name for p in (out / "truth.sealed").iterdir()) == sorted(
        [str(i) for i in range(7)] + ["problem.json", "sealed-for.json"])
    problem = tuple(toys.load(out / "truth.sealed" / str(i)) for i in range(7))
    np.savez(tmp_path / "oracle.npz", similarities=shared_fractions(problem))
    store = tmp_path / "s.sqlite"
    assert cli.main(["score", str(out), str(tmp_path / "oracle.npz"), "--store", str(store), "--method", "oracle"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["scores"]["comparison"]["rank_correlation"] == pytest.approx(1.0)
    assert printed["toy"]["toy_ids"] == ids
    with Store(store) as s:
        (row,) = s.results()
    assert row.toy_ids == tuple(ids) and row.toy_id == problem_id(ids) and len(json.loads(row.config)) == 7


def test_a_damage_problem_and_a_tampered_member_truth(tmp_path):
    out = external.make("damage:noise", tmp_path / "pair")
    info = json.loads((out / "artifact.json").read_text())
    assert info["tasks"] == ["damage"] and len(info["toy_ids"]) == 2
    damaged = toys.load(out / "truth.sealed" / "1")
    np.savez(tmp_path / "oracle.npz", damage=damaged.truth.damaged.astype(np.float64))
    assert external.score(out, tmp_path / "oracle.npz")["damage"]["damage_auroc"] == 1.0
    listing = out / "truth.sealed" / "problem.json"
    members = json.loads(listing.read_text())
    members["members"][1]["folder"] = "0"
    listing.write_text(json.dumps(members))
    with pytest.raises(ValueError, match="sealed truth is missing or does not match"):
        external.score(out, tmp_path / "oracle.npz")


def test_bad_problem_names_and_overrides_are_refused(tmp_path):
    with pytest.raises(ValueError, match="ladder"):
        external.make("comparison:ladderr", tmp_path / "a")
    with pytest.raises(ValueError, match="comparison"):
        external.make("comparisn:ladder", tmp_path / "a")
    with pytest.raises(ValueError, match="is one toy, not a problem of several"):
        external.make("circuits:plain", tmp_path / "a")
    with pytest.raises(ValueError, match="takes no overrides"):
        external.make("comparison:ladder", tmp_path / "a", n_samples=10)
    with pytest.raises(ValueError, match="can be exported for"):
        external.make("planted_mlp", tmp_path / "a", tasks=["features"], n_inputs=8, n_samples=32)
    assert not (tmp_path / "a").exists()


def test_the_dynamics_task_alone_exports_the_training_record(tmp_path):
    """Beside the features task it would reveal the features; chosen alone it exports the record,
    and the true formation steps score perfectly."""
    from planted.groundtruth import formation_steps

    out = external.make("superposition", tmp_path / "record", tasks=["dynamics"], n_features=6, n_hidden=2,
                        n_samples=64, n_steps=200, snapshot_every=20, sparsity=0.8)
    info = json.loads((out / "artifact.json").read_text())
    assert info["tasks"] == ["dynamics"] and "weights" in info["artifact"]["arrays"]
    toy = toys.load(out / "truth.sealed")
    np.savez(tmp_path / "oracle.npz", formation_steps=formation_steps(toy.truth.dynamics))
    assert external.score(out, tmp_path / "oracle.npz")["dynamics"]["log_step_error"] == 0.0


@pytest.mark.slow
def test_a_trained_circuits_record_is_never_exported_beside_its_circuit(tmp_path):
    """The record moves only the circuit's neurons: the circuits and lesions tasks leave it out."""
    fields = dict(n_inputs=8, n_tasks=2, depth=2, n_blocks=3, width=24, n_samples=32, trained=True, snapshot_every=20)
    out = external.make("planted_mlp", tmp_path / "c", **fields)
    info = json.loads((out / "artifact.json").read_text())
    assert info["tasks"] == ["circuits", "lesions"] and "weights" not in info["artifact"]["arrays"]
    alone = external.make("planted_mlp", tmp_path / "d", tasks=["dynamics"], **fields)
    assert json.loads((alone / "artifact.json").read_text())["tasks"] == ["dynamics"]
    with pytest.raises(ValueError, match="list of task names"):
        external.make("planted_mlp", tmp_path / "e", tasks="dynamics", **fields)


def test_making_again_into_a_folder_replaces_the_truth_of_either_layout(tmp_path):
    out = tmp_path / "x"
    external.make("damage:noise", out)
    external.make("planted_mlp", out, n_inputs=8, n_samples=32)
    assert not (out / "truth.sealed" / "problem.json").exists() and not (out / "truth.sealed" / "0").exists()
    truth = toys.load(out / "truth.sealed").truth
    np.savez(tmp_path / "p.npz", **{f"nodes.{t}": truth.nodes[t].astype(float) for t in range(truth.n_tasks)})
    assert external.score(out, tmp_path / "p.npz")["circuits"]["node_auroc"] == 1.0
    external.make("damage:noise", out)
    assert not (out / "truth.sealed" / "manifest.json").exists() and (out / "truth.sealed" / "problem.json").exists()


def test_a_member_of_a_sealed_problem_must_be_its_own_folder(tmp_path):
    out = external.make("damage:noise", tmp_path / "pair")
    elsewhere = tmp_path / "elsewhere"
    (out / "truth.sealed" / "1").rename(elsewhere)
    (out / "truth.sealed" / "1").symlink_to(elsewhere, target_is_directory=True)
    np.savez(tmp_path / "p.npz", damage=np.zeros(toys.load(elsewhere).graph.n_nodes))
    with pytest.raises(ValueError, match="must be a folder of"):
        external.score(out, tmp_path / "p.npz")
