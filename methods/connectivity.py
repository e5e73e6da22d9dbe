"""Connectivity inference from a recording: which recorded neuron synapses onto which.

Every method takes a ``groundtruth._connectome.Recording`` (never the wiring) and returns a
dense ``(n_observed, n_observed)`` float64 matrix ``scores[pre, post]``, higher = more likely a
synapse from ``pre`` onto ``post`` (the ranking the ChaLearn challenge scored). Scores are finite,
the diagonal is 0, and a neuron whose (preprocessed) trace is constant scores 0 with every other
neuron. The methods are signed: a strongly negative score suggests an inhibitory synapse
(``evaluators.score_connectivity(..., absolute=True)`` ranks by ``|score|`` to credit them). On
filtered traces the activity weighting lowers the zero-lag correlation of every pair, so
unconnected pairs score below 0 in ``correlation`` and ``partial_correlation`` and their signs
are relative; the lagged methods keep theirs. ``correlation`` and ``partial_correlation`` are
symmetric (one score per pair); ``lagged_correlation`` and ``granger`` are directed.

``preprocess`` is the one filtering pipeline every method uses with ``preprocess="filtered"``: it
turns calcium fluorescence into weighted spike-onset events (Sutera et al. 2014). Its threshold
is in fluorescence units (the ChaLearn scale, where one spike raises the signal by ~0.1); for
another scale, filter the traces with ``preprocess(traces, kind, threshold=...)``, wrap them in a
new ``Recording`` and call a method with ``preprocess="raw"``.

Statistics are accumulated over chunks of frames with float32 matrix products (float64
accumulators), so 1000 neurons x 180,000 frames take seconds and memory stays near one copy of
the traces.

References
----------
Stetter, Battaglia, Soriano & Geisel (2012), "Model-free reconstruction of excitatory neuronal
connectivity from calcium imaging signals".
Sutera et al. (2014), "Simple connectome inference from partial correlation statistics in calcium
imaging" (winners of the ChaLearn connectomics challenge).
Ledoit & Wolf (2004), "A well-conditioned estimator for large-dimensional covariance matrices".
Friedman, Hastie & Tibshirani (2008), "Sparse inverse covariance estimation with the graphical
lasso".
Granger (1969), "Investigating causal relations by econometric models and cross-spectral methods".
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from sklearn.covariance import graphical_lasso

from planted.groundtruth import Problems, as_matrix
from planted.groundtruth import RECORDING_KINDS, Recording
from planted.groundtruth import Progress

PREPROCESSING = ("raw", "filtered")
SHRINKAGES = ("ledoit-wolf", "glasso")
CHUNK = 16384  # frames per matrix product
MAX_SHRINKAGE = 0.99  # Ledoit-Wolf coefficient cap: at 1 every partial correlation would be 0


def preprocess(traces: np.ndarray, kind: str = "calcium", *, threshold: float = 0.11, weighting: bool = True) -> np.ndarray:
    """Filter traces into weighted activity events, as Sutera et al. (2014).

    For calcium fluorescence ``x`` (one column per neuron):

    1. low-pass ``l_t = x_{t-1} + x_t + x_{t+1}`` (averages out shot noise);
    2. high-pass ``d_t = l_t - l_{t-1} = x_{t+1} - x_{t-2}`` (keeps the fast rise of a spike,
       drops the slow decay and the baseline);
    3. hard threshold ``h_t = d_t`` where ``d_t >= threshold``, else 0 (keeps spike onsets);
    4. weighting ``w_t = (h_t + 1) ** (1 + 1 / sum_j h_{t,j})`` per frame (1 in a silent frame):
       a frame where few neurons are active is amplified, a network burst (a large sum) barely,
       so the many co-activations of a burst weigh less than the few informative ones. As a
       neuron's event weighs less when others fire with it, the weighting also lowers the
       zero-lag correlation of every pair.

    Spike counts are events already: steps 1-3 are skipped and only the weighting applies.

    Parameters
    ----------
    traces : (n_frames, n_neurons) array
        Fluorescence (``kind="calcium"``) or spike counts per frame (``kind="spikes"``, >= 0);
        finite.
    kind : {"calcium", "spikes"}
    threshold : float >= 0, default 0.11
        Smallest rise kept by the hard threshold (fluorescence units; the paper's value for the
        ChaLearn data). Unused for spikes.
    weighting : bool, default True
        Apply step 4.

    Returns
    -------
    (n_frames - 3, n_neurons) float32 for calcium, (n_frames, n_neurons) float32 for spikes;
    row ``t`` of the calcium output is frame ``t + 2`` of the input.

    References
    ----------
    Sutera et al. (2014), "Simple connectome inference from partial correlation statistics in
    calcium imaging".
    """
    x = as_matrix("traces", traces)
    problems = Problems()
    problems.choice("kind", kind, RECORDING_KINDS)
    problems.number("threshold", threshold, low=0)
    problems.raise_if_any("preprocess")
    if kind == "spikes" and (x < 0).any():
        raise ValueError(f"spike counts must be >= 0, got a minimum of {x.min()}")
    n = x.shape[0] - 3 if kind == "calcium" else x.shape[0]
    if n < 2:
        raise ValueError(f"traces must have at least {2 + x.shape[0] - n} frames to filter, got {x.shape[0]}")
    out = np.empty((n, x.shape[1]), np.float32)
    for a in range(0, n, CHUNK):
        b = min(a + CHUNK, n)
        if kind == "calcium":
            h = x[a + 3 : b + 3] - x[a:b]
            h[h < threshold] = 0.0
        else:
            h = x[a:b].copy()
        if weighting:
            total = h.sum(axis=1, dtype=np.float64)
            exponent = 1.0 + 1.0 / np.where(total > 0, total, np.inf)
            h += 1.0
            np.power(h, exponent.astype(np.float32)[:, None], out=h)
        out[a:b] = h
    return out


def _traces(recording, mode: str, problems: Problems) -> np.ndarray | None:
    """The traces a method works on (as recorded, or preprocessed); None, after adding them to
    ``problems``, when ``recording`` or ``mode`` is invalid."""
    known = len(problems.messages)
    if not isinstance(recording, Recording):
        problems.add(f"recording must be a groundtruth Recording, got {type(recording).__name__}")
    problems.choice("preprocess", mode, PREPROCESSING)
    if len(problems.messages) > known:
        return None
    return recording.traces if mode == "raw" else preprocess(recording.traces, recording.kind)


def _lags(x: np.ndarray | None) -> int | None:
    """The most lags the frames of ``x`` allow (each regression needs two frames), None without ``x``."""
    return None if x is None else max(1, x.shape[0] - 2)


def _mean_std(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations (ddof 0) in float64, two passes over chunks."""
    n = x.shape[0]
    total = np.zeros(x.shape[1])
    for a in range(0, n, CHUNK):
        total += x[a : a + CHUNK].sum(axis=0, dtype=np.float64)
    mean = total / n
    squares = np.zeros(x.shape[1])
    for a in range(0, n, CHUNK):
        d = x[a : a + CHUNK] - mean
        squares += np.einsum("ij,ij->j", d, d)
    return mean, np.sqrt(squares / n)


def _moments(x: np.ndarray, lags, *, fourth: bool = False):
    """Lagged covariances of the standardised columns of ``x`` (n_frames, m).

    Returns ``(cov, active, fourth_sum)``: ``cov[lag][a, b] = sum_t z_a(t) z_b(t + lag) / n_frames``
    (the biased estimator, which keeps Yule-Walker systems positive semi-definite) for each lag;
    ``active`` (m,) marks the columns that vary (a constant column has z = 0); ``fourth_sum`` is
    ``sum_t |z(t)|^4`` over the active columns (for Ledoit-Wolf) when ``fourth``, else 0.
    """
    n, m = x.shape
    mean, std = _mean_std(x)
    active = std > 1e-6 * np.abs(mean)
    shift = mean.astype(np.float32)
    scale = np.where(active, 1.0 / np.where(active, std, 1.0), 0.0).astype(np.float32)
    cov, fourth_sum = {}, 0.0
    with Progress(sum(n - lag for lag in lags), "connectivity") as bar:
        for lag in lags:
            acc = np.zeros((m, m))
            for a in range(0, n - lag, CHUNK):
                b = min(a + CHUNK, n - lag)
                pre = (x[a:b] - shift) * scale
                if lag == 0:
                    acc += pre.T @ pre
                    if fourth:
                        fourth_sum += float(np.sum(np.einsum("ij,ij->i", pre, pre, dtype=np.float64) ** 2))
                else:
                    acc += pre.T @ ((x[a + lag : b + lag] - shift) * scale)
                bar.update(b - a)
            cov[lag] = (acc + acc.T) / (2 * n) if lag == 0 else acc / n
    return cov, active, fourth_sum


def _embed(sub: np.ndarray, active: np.ndarray) -> np.ndarray:
    out = np.zeros((active.size, active.size))
    out[np.ix_(active, active)] = sub
    np.fill_diagonal(out, 0.0)
    return out


def _check_frames(x: np.ndarray, needed: int, what: str) -> None:
    if x.shape[0] < needed:
        raise ValueError(f"{what} needs at least {needed} (preprocessed) frames, the recording gives {x.shape[0]}")


def correlation(recording: Recording, *, preprocess: str = "raw") -> np.ndarray:
    """Pearson correlation between every pair of recorded neurons (symmetric).

    Parameters
    ----------
    recording : Recording
        Traces (n_frames, n_observed).
    preprocess : {"raw", "filtered"}, default "raw"
        Correlate the traces as recorded, or the events of ``methods.connectivity.preprocess``.

    Returns
    -------
    scores : (n_observed, n_observed) float64 in [-1, 1]
        ``scores[pre, post] = scores[post, pre]``; 0 on the diagonal and for constant traces.

    References
    ----------
    Stetter et al. (2012); Sutera et al. (2014) (filtered correlation as a baseline).
    """
    problems = Problems()
    x = _traces(recording, preprocess, problems)
    problems.raise_if_any("correlation")
    _check_frames(x, 2, "correlation")
    cov, _, _ = _moments(x, (0,))
    scores = np.clip(cov[0], -1.0, 1.0)
    np.fill_diagonal(scores, 0.0)
    return scores


def _ledoit_wolf(corr: np.ndarray, fourth_sum: float, n: int) -> np.ndarray:
    """Ledoit-Wolf shrinkage of the covariance of standardised data towards ``mu * I``, from their
    moments: ``sklearn.covariance.LedoitWolf`` on those data, the coefficient capped at
    ``MAX_SHRINKAGE``."""
    p = corr.shape[0]
    mu = np.trace(corr) / p
    delta_ = float(np.sum(corr**2))
    beta = (fourth_sum / n - delta_) / (p * n)
    delta = (delta_ - 2.0 * mu * np.trace(corr) + p * mu**2) / p
    beta = min(beta, delta)
    shrink = 0.0 if beta <= 0 or delta <= 0 else min(beta / delta, MAX_SHRINKAGE)
    return (1.0 - shrink) * corr + shrink * mu * np.eye(p)


def partial_correlation(
    recording: Recording, *, preprocess: str = "filtered", shrinkage="ledoit-wolf", alpha: float = 0.005
) -> np.ndarray:
    """Partial correlation of every pair given all other recorded neurons (symmetric).

    The correlation matrix of the (preprocessed) traces is regularised, inverted to a precision
    matrix ``P`` and normalised: ``scores[i, j] = -P[i, j] / sqrt(P[i, i] P[j, j])``. Conditioning
    on every other neuron removes the correlation that a common input or an indirect path
    induces between unconnected neurons, when the source is recorded. Eigenvalues of the
    regularised matrix are floored at 1e-10 of the largest, so a singular estimate still gives
    finite scores.

    Parameters
    ----------
    recording : Recording
        Traces (n_frames, n_observed).
    preprocess : {"raw", "filtered"}, default "filtered"
    shrinkage : "ledoit-wolf", "glasso" or float in [0, 1], default "ledoit-wolf"
        ``"ledoit-wolf"``: shrink towards the identity by the Ledoit-Wolf coefficient (equal to
        ``sklearn.covariance.LedoitWolf`` on the standardised traces), capped at 0.99: when the
        frames are too few to tell the correlations from noise (sparse events need many), the
        ranking then tends to plain correlation's instead of every score becoming 0; a float:
        that fixed coefficient; ``"glasso"``: the graphical lasso's sparse precision
        (``sklearn.covariance.graphical_lasso`` on the correlation matrix, up to 1000
        iterations; slow above a few hundred neurons).
    alpha : float > 0, default 0.005
        The graphical lasso's L1 penalty on the correlation scale (``shrinkage="glasso"`` only);
        filtered events correlate weakly (~0.01), so a penalty much above that zeroes every pair.

    Returns
    -------
    scores : (n_observed, n_observed) float64 in [-1, 1]
        0 on the diagonal and for constant traces.

    References
    ----------
    Sutera et al. (2014); Ledoit & Wolf (2004); Friedman, Hastie & Tibshirani (2008).
    """
    problems = Problems()
    x = _traces(recording, preprocess, problems)
    if isinstance(shrinkage, str):
        problems.choice("shrinkage", shrinkage, SHRINKAGES)
    else:
        problems.number("shrinkage", shrinkage, low=0, high=1)
    problems.number("alpha", alpha, low=0, low_open=True)
    problems.raise_if_any("partial_correlation")
    alpha = float(alpha)
    _check_frames(x, 2, "partial_correlation")
    cov, active, fourth_sum = _moments(x, (0,), fourth=shrinkage == "ledoit-wolf")
    corr = cov[0][np.ix_(active, active)]
    p = corr.shape[0]
    if p < 2:
        return np.zeros((active.size, active.size))
    if shrinkage == "glasso":
        precision = graphical_lasso(corr, alpha=alpha, max_iter=1000)[1]
    else:
        if shrinkage == "ledoit-wolf":
            shrunk = _ledoit_wolf(corr, fourth_sum, x.shape[0])
        else:
            mu = np.trace(corr) / p
            shrunk = (1.0 - shrinkage) * corr + shrinkage * mu * np.eye(p)
        values, vectors = np.linalg.eigh(shrunk)
        values = np.maximum(values, 1e-10 * max(values[-1], 1e-300))
        precision = (vectors / values) @ vectors.T
    d = np.sqrt(np.abs(np.diag(precision)))
    scores = np.clip(-precision / np.outer(d, d), -1.0, 1.0)
    return _embed(scores, active)


def lagged_correlation(recording: Recording, *, preprocess: str = "filtered", max_lag: int = 2) -> np.ndarray:
    """Directed lagged correlation: how well ``pre`` now predicts ``post`` a few frames later.

    ``scores[pre, post] = corr(z_pre(t), z_post(t + lag))`` at the lag in ``1..max_lag`` where it
    is largest in absolute value, its sign kept (the sign of the interaction). The reverse
    direction is not subtracted: a signed score's magnitude must stay the evidence for this
    direction, and a cause leads its effect, so ``scores[post, pre]`` is smaller for a synapse
    ``pre -> post`` whenever the frames resolve the delay.

    Parameters
    ----------
    recording : Recording
        Traces (n_frames, n_observed).
    preprocess : {"raw", "filtered"}, default "filtered"
    max_lag : int >= 1, default 2
        Largest lag in frames.

    Returns
    -------
    scores : (n_observed, n_observed) float64 in [-1, 1], not symmetric
        0 on the diagonal and for constant traces.

    References
    ----------
    Stetter et al. (2012) (delayed cross-correlation baseline); Sutera et al. (2014).
    """
    problems = Problems()
    x = _traces(recording, preprocess, problems)
    problems.integer("max_lag", max_lag, low=1, high=_lags(x))
    problems.raise_if_any("lagged_correlation")
    max_lag = int(max_lag)
    _check_frames(x, max_lag + 2, "lagged_correlation")
    cov, _, _ = _moments(x, range(1, max_lag + 1))
    stack = np.stack([cov[lag] for lag in range(1, max_lag + 1)])
    best = np.take_along_axis(stack, np.abs(stack).argmax(axis=0)[None], axis=0)[0]
    scores = np.clip(best, -1.0, 1.0)
    np.fill_diagonal(scores, 0.0)
    return scores


def granger(recording: Recording, *, preprocess: str = "filtered", order: int = 1, ridge: float = 1e-3) -> np.ndarray:
    """Linear Granger causality: ridge-regularised vector autoregression of every neuron on the
    recent past of all recorded neurons.

    Each standardised trace ``z_post(t)`` is regressed on ``z(t - 1), ..., z(t - order)`` of all
    neurons (a Gaussian GLM). The normal equations of all these regressions share one matrix,
    the block-Toeplitz covariance of the lagged signals (Yule-Walker), so one symmetric solve
    gives every coefficient ``B[lag][pre, post]``. ``scores[pre, post] = sum_lag B[lag][pre,
    post]``: the signed total effect of ``pre``'s past on ``post`` in standard deviations, whose
    sign is the sign of the interaction.

    Parameters
    ----------
    recording : Recording
        Traces (n_frames, n_observed).
    preprocess : {"raw", "filtered"}, default "filtered"
    order : int >= 1, default 1
        Frames of the past each regression sees.
    ridge : float > 0, default 1e-3
        L2 penalty, in units of the (unit) variance of a standardised trace: ``ridge * n_frames``
        on the sum of squared errors.

    Returns
    -------
    scores : (n_observed, n_observed) float64, not symmetric
        0 on the diagonal and for constant traces.

    References
    ----------
    Granger (1969); Stetter et al. (2012).
    """
    problems = Problems()
    x = _traces(recording, preprocess, problems)
    problems.integer("order", order, low=1, high=_lags(x))
    problems.number("ridge", ridge, low=0, low_open=True)
    problems.raise_if_any("granger")
    order, ridge = int(order), float(ridge)
    _check_frames(x, order + 2, "granger")
    cov, active, _ = _moments(x, range(order + 1))
    idx = np.ix_(active, active)
    lagged = [cov[lag][idx] for lag in range(order + 1)]
    p = lagged[0].shape[0]
    if p < 2:
        return np.zeros((active.size, active.size))
    # gram[i, j] = E[z(t - i) z(t - j)^T] for lags i, j in 1..order; rhs[i] = E[z(t - i) z(t)^T].
    gram = np.block(
        [[lagged[i - j] if i >= j else lagged[j - i].T for j in range(1, order + 1)] for i in range(1, order + 1)]
    )
    gram[np.diag_indices_from(gram)] += ridge
    rhs = np.concatenate(lagged[1:], axis=0)
    coef = scipy.linalg.solve(gram, rhs, assume_a="pos")
    return _embed(coef.reshape(order, p, p).sum(axis=0), active)

__all__ = [
    "CHUNK",
    "MAX_SHRINKAGE",
    "PREPROCESSING",
    "SHRINKAGES",
    "correlation",
    "granger",
    "lagged_correlation",
    "partial_correlation",
    "preprocess",
]
