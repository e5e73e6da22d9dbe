"""Export a compiled, naturalised or trained transformer to TransformerLens.

``transformer_lens_weights`` needs nothing beyond NumPy: it gives the keyword arguments of a
``HookedTransformerConfig`` and the state dict, so the weights can be written anywhere (a
safetensors file, another framework). ``to_hooked_transformer`` builds the ``HookedTransformer``
itself; it needs the ``transformer-lens`` extra (TransformerLens 2.16 to 3.x, since version 4.0
replaced ``HookedTransformer`` with ``TransformerBridge``; and PyTorch).

The two models are the same function: no layer norm, no attention scaling (``use_attn_scale=False``:
the compiled weights carry the scale), ReLU MLPs, learned position embeddings, every bias zero,
and the unembedding as the compiler made it (``d_vocab_out`` is the number of output logits, not
the vocabulary). Token ids are the ones ``rasp.encode`` gives: BOS is id 0 and must come first;
TransformerLens never prepends one to a tensor of ids.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _params_of(source) -> tuple[dict, bool]:
    from planted.toys._rasp._circuit import TransformerModel
    from planted.toys._rasp._compiler import Compiled

    if isinstance(source, Compiled):
        return source.params, source.causal
    model = getattr(source, "model", None)  # a RASPTransformerToy
    if isinstance(model, TransformerModel):
        return model.params, model.causal
    if isinstance(source, TransformerModel):
        return source.params, source.causal
    raise ValueError(f"source must be a compiled program (rasp.compile_program), a rasp_transformer toy or its model, "
                     f"got {type(source).__name__}")


def transformer_lens_weights(source) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(config, state_dict)`` of ``source`` (a ``Compiled``, a ``rasp_transformer`` toy or its
    model) for TransformerLens: ``HookedTransformerConfig(**config)`` and
    ``HookedTransformer.load_state_dict`` of the state dict's tensors give the same logits as
    ``rasp.apply``. Arrays are float32 NumPy."""
    params, causal = _params_of(source)
    w_q = np.asarray(params["w_q"], np.float32)
    n_layers, n_heads, d_model, d_head = w_q.shape
    d_mlp = int(params["w_in"].shape[2])
    n_vocab, n_ctx = params["embed_tokens"].shape[0], params["embed_positions"].shape[0]
    d_out = params["unembed"].shape[1]
    config = {
        "n_layers": int(n_layers), "d_model": int(d_model), "n_ctx": int(n_ctx), "d_head": int(d_head),
        "n_heads": int(n_heads), "d_vocab": int(n_vocab), "d_vocab_out": int(d_out), "act_fn": "relu",
        "normalization_type": None, "attention_dir": "causal" if causal else "bidirectional", "use_attn_scale": False,
        "positional_embedding_type": "standard", "default_prepend_bos": False, "attn_only": d_mlp == 0,
        "d_mlp": d_mlp if d_mlp else None, "dtype": "float32",
    }
    f32 = lambda a: np.ascontiguousarray(a, np.float32)  # noqa: E731
    state = {"embed.W_E": f32(params["embed_tokens"]), "pos_embed.W_pos": f32(params["embed_positions"]),
             "unembed.W_U": f32(params["unembed"]), "unembed.b_U": np.zeros(d_out, np.float32)}
    for layer in range(n_layers):
        attn = f"blocks.{layer}.attn"
        for name in ("q", "k", "v"):
            state[f"{attn}.W_{name.upper()}"] = f32(params[f"w_{name}"][layer])
            state[f"{attn}.b_{name.upper()}"] = np.zeros((n_heads, d_head), np.float32)
        state[f"{attn}.W_O"] = f32(params["w_o"][layer])
        state[f"{attn}.b_O"] = np.zeros(d_model, np.float32)
        if d_mlp:
            mlp = f"blocks.{layer}.mlp"
            state.update({f"{mlp}.W_in": f32(params["w_in"][layer]), f"{mlp}.b_in": np.zeros(d_mlp, np.float32),
                          f"{mlp}.W_out": f32(params["w_out"][layer]), f"{mlp}.b_out": np.zeros(d_model, np.float32)})
    return config, state


def to_hooked_transformer(source, *, device: str = "cpu"):
    """``source`` (see ``transformer_lens_weights``) as a TransformerLens ``HookedTransformer`` in
    eval mode. Needs the ``transformer-lens`` extra: ``pip install "planted[transformer-lens]"``."""
    try:
        import torch
        from transformer_lens import HookedTransformer, HookedTransformerConfig
    except ImportError as error:
        raise ImportError("to_hooked_transformer needs TransformerLens 2.16 to 3.x and PyTorch: "
                          "pip install \"planted[transformer-lens]\"") from error
    config, state = transformer_lens_weights(source)
    model = HookedTransformer(HookedTransformerConfig(**{**config, "dtype": torch.float32, "device": device}))
    tensors = {k: torch.from_numpy(v).to(device) for k, v in state.items()}
    # The attention modules' buffers (mask, IGNORE) are the model's own, not weights.
    buffers = {k: v for k, v in model.state_dict().items() if k not in tensors}
    unknown = sorted(k for k in buffers if not k.endswith((".mask", ".IGNORE")))
    if unknown:
        raise ValueError(f"this TransformerLens version has parameters the export does not fill: {unknown[:5]}; "
                         "use TransformerLens 2.16 to 3.x")
    model.load_state_dict({**buffers, **tensors}, strict=True)
    return model.eval()
