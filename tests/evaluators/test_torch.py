"""A circuit toy as a PyTorch module: the same outputs as the model, hookable activations, and a
PyTorch circuit method benchmarked through files (skipped where torch is not installed)."""

import json

import numpy as np
import pytest

from planted import toys

torch = pytest.importorskip("torch")


def test_the_module_computes_what_the_model_computes_and_its_hooks_see_the_neurons(tmp_path):
    from planted.evaluators import make, torch_circuit

    folder = make("planted_mlp", tmp_path / "c", n_inputs=8, n_samples=32)
    toy = toys.load(folder / "truth.sealed")
    module = torch_circuit(folder)
    x = np.concatenate([t.clean for t in toy.tasks] + [t.corrupted for t in toy.tasks])
    seen = []
    handle = module.blocks[1].act.register_forward_hook(lambda m, i, out: seen.append(out.detach().numpy()))
    with torch.no_grad():
        out = module(torch.from_numpy(x)).numpy()
    handle.remove()
    run = toy.model.run(x)
    np.testing.assert_allclose(out, run["outputs"], atol=1e-5)
    layer = toy.graph.layer_slice(2)
    np.testing.assert_allclose(seen[0], run["activations"][:, layer], atol=1e-5)
    assert torch_circuit(toy.model)(torch.from_numpy(x)).detach().numpy() == pytest.approx(out, abs=1e-6)
    with pytest.raises(ValueError, match="holds no params"):
        make("sharkey2022", tmp_path / "f", n_samples=100)
        torch_circuit(tmp_path / "f")


def test_a_pytorch_patching_method_is_scored_through_files(tmp_path, capsys):
    """Activation patching written with forward hooks, on a made folder, scored by planted score."""
    from planted.evaluators import cli, make, torch_circuit

    folder = make("planted_mlp", tmp_path / "c", n_inputs=8, n_samples=64, seed=2)
    with np.load(folder / "artifact.npz") as npz:
        a = {k: npz[k] for k in npz.files}
    info = json.loads((folder / "artifact.json").read_text())
    n_nodes = info["formats"]["circuits"]["graph"]["n_nodes"]
    layers = a["graph.layers"]
    module = torch_circuit(folder)
    n_blocks = len(module.blocks)
    predictions = {}
    for t in range(module.n_tasks):
        clean, corrupt = torch.from_numpy(a[f"task{t}.clean"]), torch.from_numpy(a[f"task{t}.corrupted"])
        sign = torch.from_numpy(2 * a[f"task{t}.labels"] - 1)

        def metric(outputs):
            return float((sign * (outputs[:, t] - 0.5)).mean())

        acts = {}
        hooks = [module.blocks[b].act.register_forward_hook(lambda m, i, o, b=b: acts.__setitem__(b, o.detach()))
                 for b in range(n_blocks)]
        with torch.no_grad():
            module(corrupt)
            corrupted_acts = dict(acts)
            base = metric(module(clean))
        for h in hooks:
            h.remove()
        scores = np.zeros(n_nodes)
        for b in range(n_blocks):
            nodes = np.flatnonzero(layers == b + 1)
            for j, node in enumerate(nodes):
                def patch(m, i, o, b=b, j=j):
                    o = o.clone()
                    o[:, j] = corrupted_acts[b][:, j]
                    return o
                handle = module.blocks[b].act.register_forward_hook(patch)
                with torch.no_grad():
                    scores[node] = abs(base - metric(module(clean)))
                handle.remove()
        with torch.no_grad():
            for i in np.flatnonzero(layers == 0):  # an input: its clean value replaced by the corrupted one
                x = clean.clone()
                x[:, i] = corrupt[:, i]
                scores[i] = abs(base - metric(module(x)))
            corrupted_out = module(corrupt)
            for k, node in enumerate(np.flatnonzero(layers == n_blocks + 1)):  # an output likewise
                out = module(clean).clone()
                out[:, k] = corrupted_out[:, k]
                scores[node] = abs(base - metric(out))
        predictions[f"nodes.{t}"] = scores
    np.savez(tmp_path / "torch_patching.npz", **predictions)
    assert cli.main(["score", str(folder), str(tmp_path / "torch_patching.npz")]) == 0
    scores = json.loads(capsys.readouterr().out)["scores"]["circuits"]
    # planted's own activation patching on the same toy, through the runner's path.
    from planted.evaluators import score_circuit
    from planted.methods.circuits import activation_patching

    toy = toys.load(folder / "truth.sealed")
    own = np.mean([score_circuit(activation_patching(toy.artifact, t), toy, t, faithfulness=False).node_auroc
                   for t in range(toy.truth.n_tasks)])
    assert scores["node_auroc"] == pytest.approx(own, abs=0.02) and scores["node_auroc"] > 0.9
