"""Sparse autoencoders in JAX + optax: ReLU (L1), TopK, BatchTopK and JumpReLU.

One training loop serves every kind: batches are fed in blocks to a jit-compiled loop over steps
(the number of steps and the schedule traced, so runs of any length share the compiled loop); the
decoder's rows are kept at unit norm (the gradient's radial part is removed and rows are
renormalised after each step); latents that have not fired for ``dead_after`` steps are
revived by the auxiliary-k loss of Gao et al. (2024) for every kind. Inputs are scaled so their
mean squared norm is ``d_model`` and the returned dictionary is expressed back in input units.
TopK and its AuxK work from the chosen latents only: one dense product picks them and gives their
values; decoding and gradients touch only those columns and rows, one latent slot at a time (on a
CPU a loop of (batch, d) gathers and scatter-adds runs several times faster than one (batch, k, d)
gather). The dense kinds' AuxK picks its latents by an exact per-row bisection and
decodes densely, as their main loss does: a top-k and gathers cost more there than matmuls.

References
----------
Bricken et al. (2023), "Towards Monosemanticity" (ReLU SAE, L1, unit-norm decoder).
Gao et al. (2024), "Scaling and evaluating sparse autoencoders" (TopK, AuxK).
Bussmann, Leask & Nanda (2024), "BatchTopK Sparse Autoencoders".
Rajamanoharan et al. (2024), "Jumping Ahead: Improving Reconstruction Fidelity with JumpReLU
Sparse Autoencoders".
"""

from planted.methods._sae._fit import KINDS, sae

__all__ = ["KINDS", "sae"]
