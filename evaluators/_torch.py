"""A planted circuit model as a PyTorch module (the ``torch`` extra), so that a circuit method
written for PyTorch, with forward hooks as TransformerLens users write them, runs on a toy made
with ``planted make`` and is scored through files like any other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from planted.groundtruth import read_npz


def torch_circuit(source: Any):
    """The planted-circuit model of ``source`` as a ``torch.nn.Module``.

    Parameters
    ----------
    source : path, dict or CircuitModel
        A folder written by ``planted make`` for a circuit toy (its ``artifact.npz`` holds the
        parameters as ``params.*``), a flat dict of the parameters (``CircuitModel.params``), or a
        ``CircuitModel``.

    Returns
    -------
    torch.nn.Module
        ``forward(x)``: inputs (batch, n_inputs) to outputs (batch, n_tasks), float32, the same
        computation as ``CircuitModel.run`` without a patch. Submodules, to hook: ``embed``
        (x to the residual stream), ``blocks[b].w_in`` (a block's neuron inputs, pre-activation),
        ``blocks[b].act`` (its ReLU: the neurons' activations, the nodes of the component graph's
        layer b + 1), ``blocks[b].w_out`` (what the neurons write), ``readout`` (the outputs).
        A forward hook on ``blocks[b].act`` that returns a tensor replaces those activations.
    """
    try:
        import torch
        from torch import nn
    except ImportError:
        raise ValueError("torch_circuit needs PyTorch: pip install 'planted[torch]'") from None
    if isinstance(source, (str, Path)):
        arrays = read_npz(Path(source) / "artifact.npz")
        params = {k[len("params."):]: v for k, v in arrays.items() if k.startswith("params.")}
        if not params:
            raise ValueError(f"{source}: artifact.npz holds no params.*; is it a circuit toy made by `planted make`?")
    else:
        params = getattr(source, "params", source)
    needed = ("embed", "w_in", "b_in", "w_out", "readout", "readout_bias")
    missing = [k for k in needed if k not in params]
    if missing:
        raise ValueError(f"torch_circuit: the parameters lack {missing}")
    p = {k: torch.from_numpy(np.asarray(params[k], np.float32).copy()) for k in needed}
    n_in, d = p["embed"].shape
    n_blocks, width, _ = p["w_in"].shape
    n_tasks = p["readout"].shape[0]

    def linear(weight, bias=None):
        layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
        with torch.no_grad():
            layer.weight.copy_(weight)
            if bias is not None:
                layer.bias.copy_(bias)
        return layer

    class Block(nn.Module):
        def __init__(self, b: int):
            super().__init__()
            self.w_in = linear(p["w_in"][b], p["b_in"][b])
            self.act = nn.ReLU()
            self.w_out = linear(p["w_out"][b].T)

        def forward(self, r):
            return r + self.w_out(self.act(self.w_in(r)))

    class PlantedCircuit(nn.Module):
        """A residual MLP with planted circuits (planted.toys.planted_mlp)."""

        def __init__(self):
            super().__init__()
            self.embed = linear(p["embed"].T)
            self.blocks = nn.ModuleList(Block(b) for b in range(n_blocks))
            self.readout = linear(p["readout"], p["readout_bias"])
            self.n_inputs, self.d_model, self.width, self.n_tasks = n_in, d, width, n_tasks

        def forward(self, x):
            r = self.embed(x)
            for block in self.blocks:
                r = block(r)
            return self.readout(r)

    return PlantedCircuit().eval()


__all__ = ["torch_circuit"]
