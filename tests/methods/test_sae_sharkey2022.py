"""The Sharkey et al. (2022) reproduction, in a file of its own: at about a minute it is the longest
test, and the test processes share out whole files."""

import pytest

from planted import methods
from planted import toys
from planted.evaluators import score_features


@pytest.mark.slow
def test_relu_sae_recovers_sharkey2022():
    """Sharkey et al. (2022): a ReLU SAE with 2x latents recovers the 512 features (MMCS ~ 1).

    The preset itself, at the default hyperparameters (4000 steps of 1024, lr 3e-3, L1 2.0):
    measured MMCS 0.997 with every feature recovered at |cos| >= 0.9.
    """
    toy = toys.preset("sharkey2022", seed=0)
    d = methods.sae(toy.activations, 1024, kind="relu", seed=0, batch_size=1024)
    s = score_features(d, toy.truth, activations=toy.activations)
    assert s.mmcs >= 0.95
    assert s.recovered >= 0.95
