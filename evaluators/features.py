"""Score a features prediction (a ``Dictionary``) against the planted ``FeatureTruth``.

Similarity metrics compare directions by absolute cosine, so they are invariant to permuting
and sign-flipping latents. Dictionaries of any size are scored in chunks of latents: a 65,536
latent dictionary against 16,384 features in d=768 needs well under 4 GiB.

References
----------
Sharkey, Braun & Millidge (2022), "Taking features out of superposition with sparse autoencoders"
(mean max cosine similarity). Chanin & Garriga-Alonso (2026), "SynthSAEBench" (one-to-one matched
cosine). Chanin et al. (2024), "A is for Absorption".
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import min_weight_full_bipartite_matching
from scipy.special import betainc

from planted.groundtruth import Dictionary, FeatureTruth, Problems
from planted.groundtruth import as_matrix

# Cosine entries up to which the matching is solved densely (16,384 x 8,192: 0.5 GiB, and SciPy's
# float64 copy). Exact assignment beats the candidate matching up to there and loses above (16,384
# features, d = 768: linear_sum_assignment 1.8 s against 13 s of candidate matching at 4,096
# latents, 4.8 s at 8,192, 23.5 s against about 5 s at 16,384), so the cost of scoring never rises
# as the latents fall (benchmarks/score_memory.py: 2.4, 5.4, 6.3, 7.4 s at 4k, 8k, 16k, 32k).
EXACT_LIMIT = 1 << 27


@dataclasses.dataclass(frozen=True)
class FeatureScores:
    """How well a dictionary recovers the planted features.

    Attributes
    ----------
    mmcs : float in [0, 1]
        Mean over represented true features of the largest |cosine| with any latent.
    matched_cosine : float in [0, 1]
        Mean over represented true features of the |cosine| of a one-to-one (Hungarian) matching
        of features to latents; a feature left without a latent counts 0, so a dictionary with
        fewer latents than features cannot reach 1.
    mcc : float in [0, 1]
        The same matching's mean |cosine| over its min(n_features, n_latents) matched pairs: the
        mean correlation coefficient of SAELens' ``mean_correlation_coefficient`` and
        SynthSAEBench. Equal to ``matched_cosine`` when there are at least as many latents as
        features; with fewer, it scores only the features that found a latent.
    recovered : float in [0, 1]
        Fraction of represented features whose matched latent has |cosine| >= ``threshold``.
    spurious : float in [0, 1]
        Fraction of latents whose |cosine| with every represented feature is below ``threshold``.
    n_features, n_latents : int
        Represented true features and latents scored.
    code_correlation : float in [-1, 1] | None
        Mean Pearson correlation between each matched feature's true code and its latent's code
        (signed by the cosine, so sign flips do not matter); needs codes.
    l0 : float | None
        Mean number of nonzero codes per sample.
    dead : float in [0, 1] | None
        Fraction of latents that never fire on the scored samples.
    fvu : float | None
        Fraction of variance unexplained by ``codes @ directions + decoder_bias``; needs activations.
    shrinkage : float | None
        ``1 - sum <x_hat - mu, x - mu> / sum |x - mu|^2``: how much reconstructions fall short along
        the input (0 none, positive shrunk); needs activations.
    absorption : float in [0, 1] | None
        On hierarchical toys: among samples where a parent feature and one of its children are
        both active, the fraction where the latent matched to the parent is silent (averaged over
        parents whose matched cosine is at least 0.5); needs codes.
    threshold : float
        The cosine threshold used by ``recovered`` and ``spurious``.
    """

    mmcs: float
    matched_cosine: float
    mcc: float
    recovered: float
    spurious: float
    n_features: int
    n_latents: int
    code_correlation: float | None = None
    l0: float | None = None
    dead: float | None = None
    fvu: float | None = None
    shrinkage: float | None = None
    absorption: float | None = None
    threshold: float = 0.9

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"FeatureScores.{f.name} is {value}; scores must be finite")

    def as_dict(self) -> dict[str, float | int | None]:
        return dataclasses.asdict(self)


def _unit_rows(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return np.where(norms > 0, m / np.where(norms > 0, norms, 1), 0).astype(np.float32)


def _as_dictionary(prediction) -> Dictionary:
    if isinstance(prediction, Dictionary):
        return prediction
    if isinstance(prediction, np.ndarray):
        return Dictionary(directions=prediction)
    raise ValueError(
        f"dictionary must be a groundtruth.Dictionary or a (n_latents, d_model) array, got {type(prediction).__name__}"
    )


def score_features(
    dictionary,
    truth: FeatureTruth,
    *,
    activations=None,
    threshold: float = 0.9,
    chunk_size: int = 4096,
    candidates: int = 32,
) -> FeatureScores:
    """Score a features prediction against what was planted.

    Parameters
    ----------
    dictionary : groundtruth.Dictionary or array (n_latents, d_model)
    truth : groundtruth.FeatureTruth
    activations : array (n_samples, d_model), optional
        The activations ``truth.codes`` describe (``toy.activations``). With them, codes come
        from the dictionary's encoder (or its ``codes`` when they cover these samples) and the
        code metrics, FVU and shrinkage are reported.
    threshold : float in (0, 1]
        Cosine at which a feature counts as recovered.
    chunk_size : int
        Latents compared at once (memory is about ``n_features * chunk_size * 8`` bytes).
    candidates : int
        Above 2^27 feature-latent pairs the matching uses each feature's ``candidates`` most
        similar latents (plus a zero-similarity fallback), which is exact whenever the optimal
        matching uses only those.

    Returns
    -------
    FeatureScores
    """
    d = _as_dictionary(dictionary)
    p = Problems()
    if not isinstance(truth, FeatureTruth):
        p.add(f"truth must be a groundtruth.FeatureTruth, got {type(truth).__name__}")
    elif d.d_model != truth.d_model:
        p.add(f"dictionary directions have d_model {d.d_model} but the truth has {truth.d_model}")
    p.number("threshold", threshold, low=0, high=1, low_open=True)
    p.integer("chunk_size", chunk_size, low=1)
    p.integer("candidates", candidates, low=1)
    p.raise_if_any("score_features")
    chunk_size, candidates = int(chunk_size), int(candidates)
    rep = np.flatnonzero(truth.represented)
    if rep.size == 0:
        raise ValueError("truth has no represented features; there is nothing to recover")
    true_dirs = truth.directions[rep]
    latents = _unit_rows(d.directions)
    n, k = rep.size, latents.shape[0]

    feature_max, latent_max, full, cand_val, cand_idx = _similarities(true_dirs, latents, chunk_size, candidates)
    match_latent, match_cos = _match(full, cand_val, cand_idx, n, k)

    scores = dict(
        mmcs=float(feature_max.mean()),
        matched_cosine=float(match_cos.sum() / n),
        mcc=float(match_cos.sum() / min(n, k)),
        recovered=float((match_cos >= threshold).sum() / n),
        spurious=float((latent_max < threshold).mean()),
        n_features=int(n),
        n_latents=int(k),
        threshold=float(threshold),
    )
    scores.update(_code_metrics(d, truth, rep, match_latent, match_cos, activations, chunk_size))
    return FeatureScores(**scores)


def _similarities(true_dirs: np.ndarray, latents: np.ndarray, chunk_size: int, candidates: int):
    """One pass over the latents in chunks of |cosine| with every feature: each feature's and each
    latent's best, and either the dense matrix (up to ``EXACT_LIMIT`` pairs) or each feature's
    ``candidates`` best latents, ``(values, indices)`` (n, m) with -1 where fewer exist.

    Each chunk is computed in tiles of ``_TILE_ROWS`` features into one reused buffer, so the
    passes after the matmul read the cache. After the first chunk only entries above a feature's
    current m-th best can enter its candidates; those few are merged by one sort per chunk.
    """
    n, k = true_dirs.shape[0], latents.shape[0]
    feature_max = np.zeros(n, np.float32)
    latent_max = np.zeros(k, np.float32)
    full = np.zeros((n, k), np.float32) if n * k <= EXACT_LIMIT else None
    m = min(candidates, k)
    cand_val = np.full((n, m), -1.0, np.float32)
    cand_idx = np.zeros((n, m), np.int64)
    rows_per_tile = min(n, _TILE_ROWS)
    buffer = np.empty((rows_per_tile, min(chunk_size, k)), np.float32)
    mask = np.empty(buffer.shape, bool)
    for start in range(0, k, chunk_size):
        chunk = latents[start : start + chunk_size].T
        width = chunk.shape[1]
        new_rows, new_vals, new_idx = [], [], []
        for top in range(0, n, rows_per_tile):
            height = min(rows_per_tile, n - top)
            sims = np.matmul(true_dirs[top : top + height], chunk, out=buffer[:height, :width])
            np.abs(sims, out=sims)
            row_max = sims.max(axis=1)
            np.maximum(feature_max[top : top + height], row_max, out=feature_max[top : top + height])
            np.maximum(latent_max[start : start + width], sims.max(axis=0), out=latent_max[start : start + width])
            if full is not None:
                full[top : top + height, start : start + width] = sims
            elif start == 0:
                if width > m:
                    keep = np.argpartition(sims, width - m, axis=1)[:, width - m :]
                else:
                    keep = np.broadcast_to(np.arange(width), (height, width))
                cand_val[top : top + height, : keep.shape[1]] = np.take_along_axis(sims, keep, axis=1)
                cand_idx[top : top + height, : keep.shape[1]] = keep
            else:
                floor = cand_val[top : top + height].min(axis=1)
                hit = np.flatnonzero(row_max > floor)  # only rows whose best beats their floor hold entries above it
                if hit.size:
                    part = sims[hit] if hit.size < height else sims
                    above = np.flatnonzero(np.greater(part, floor[hit, None], out=mask[: hit.size, :width]))
                    rows, cols = np.divmod(above, width)
                    new_rows.append(hit[rows] + top)
                    new_vals.append(part.ravel()[above])
                    new_idx.append(cols + start)
        if new_rows:
            _merge_candidates(cand_val, cand_idx, np.concatenate(new_rows), np.concatenate(new_vals),
                              np.concatenate(new_idx))
    return feature_max, latent_max, full, cand_val, cand_idx


_TILE_ROWS = 2048


def _merge_candidates(cand_val, cand_idx, rows, values, indices) -> None:
    """Keep, in place, each row's ``m`` best of its candidates and the new ``(rows, values, indices)``."""
    n, m = cand_val.shape
    touched = np.unique(rows)
    all_rows = np.concatenate([np.repeat(touched, m), rows])
    all_vals = np.concatenate([cand_val[touched].ravel(), values])
    all_idx = np.concatenate([cand_idx[touched].ravel(), indices])
    # One int64 key, row then value descending (a non-negative float32's bits order as its value;
    # an empty slot, -1, goes after every value, a cosine of 0 included).
    bits = all_vals.astype(np.float32).view(np.uint32).astype(np.int64)
    order = np.argsort(all_rows << 33 | np.where(all_vals < 0, 1 << 32, 0xFFFFFFFF - bits))
    all_rows, all_vals, all_idx = all_rows[order], all_vals[order], all_idx[order]
    first = np.searchsorted(all_rows, touched)
    rank = np.arange(all_rows.size) - np.repeat(first, np.diff(np.append(first, all_rows.size)))
    best = rank < m
    cand_val[all_rows[best], rank[best]] = all_vals[best]
    cand_idx[all_rows[best], rank[best]] = all_idx[best]


def _match(full, cand_val, cand_idx, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching maximising total |cosine|: per feature, its latent (-1) and cosine."""
    match_latent = np.full(n, -1, np.int64)
    match_cos = np.zeros(n, np.float32)
    if full is not None:
        rows, cols = linear_sum_assignment(full, maximize=True)
        match_latent[rows] = cols
        match_cos[rows] = full[rows, cols]
        return match_latent, match_cos
    # Sparse candidates; each feature also gets a private dummy latent of similarity 0, so a full
    # matching always exists. Costs are 2 - |cos| > 0 (explicit zeros would vanish from the graph).
    m = cand_idx.shape[1]
    real = cand_val.ravel() >= 0  # -1 marks a slot no latent filled
    rows = np.concatenate([np.repeat(np.arange(n), m)[real], np.arange(n)])
    cols = np.concatenate([cand_idx.ravel()[real], k + np.arange(n)])
    cost = np.concatenate([2.0 - cand_val.ravel()[real].astype(np.float64), np.full(n, 2.0)])
    graph = sp.csr_matrix((cost, (rows, cols)), shape=(n, k + n))
    r, c = min_weight_full_bipartite_matching(graph)
    real = c < k
    match_latent[r[real]] = c[real]
    match_cos[r[real]] = 2.0 - np.asarray(graph[r[real], c[real]]).ravel()
    return match_latent, match_cos


def _code_metrics(d: Dictionary, truth: FeatureTruth, rep, match_latent, match_cos, activations, chunk_size) -> dict:
    n_samples = truth.codes.shape[0]
    x = None
    if activations is not None:
        x = as_matrix("activations", activations, cols=truth.d_model)
        if x.shape[0] != n_samples:
            raise ValueError(
                f"activations have {x.shape[0]} samples but truth.codes describes {n_samples}; "
                "pass the activations of the toy the truth came from"
            )
    if x is not None and d.encoder is not None:
        codes = d.encoder.sparse(x)
    elif d.codes is not None and d.codes.shape[0] == n_samples:
        codes = sp.csr_matrix(d.codes) if not sp.issparse(d.codes) else d.codes.tocsr()
    else:
        return {}
    active = codes.copy()
    active.data = (active.data != 0).astype(np.float32)
    out: dict[str, float | None] = {
        "l0": float(active.sum() / n_samples),
        "dead": float((np.asarray(active.sum(axis=0)).ravel() == 0).mean()),
    }
    out["code_correlation"] = _code_correlation(truth, codes, rep, match_latent, match_cos, d, chunk_size)
    out["absorption"] = _absorption(truth, codes, rep, match_latent, match_cos)
    if x is not None:
        recon = d.reconstruct(codes)
        centred = x - x.mean(axis=0)
        total = float(np.sum(centred.astype(np.float64) ** 2))
        if total > 0:
            out["fvu"] = float(np.sum((x - recon).astype(np.float64) ** 2) / total)
            out["shrinkage"] = float(1.0 - np.sum((recon - x.mean(axis=0)).astype(np.float64) * centred) / total)
    return out


def _code_correlation(truth, codes: sp.csr_matrix, rep, match_latent, match_cos, d: Dictionary, chunk_size) -> float:
    """Mean Pearson correlation of matched (feature, latent) code pairs, computed on sparse columns.

    Pairs whose directions are orthogonal (cosine 0) are not matches and are left out, so the
    dense and the candidate matching count the same pairs.
    """
    pairs = np.flatnonzero((match_latent >= 0) & (match_cos > 0))
    if pairs.size == 0:
        return 0.0
    latents = _unit_rows(d.directions)
    n = codes.shape[0]
    true_codes = truth.codes.tocsc()
    est_codes = codes.tocsc()
    total, counted = 0.0, 0
    for start in range(0, pairs.size, chunk_size):
        p = pairs[start : start + chunk_size]
        feats, lats = rep[p], match_latent[p]
        a = true_codes[:, feats].astype(np.float64)
        b = est_codes[:, lats].astype(np.float64)
        ma, mb = np.asarray(a.mean(axis=0)).ravel(), np.asarray(b.mean(axis=0)).ravel()
        cov = np.asarray(a.multiply(b).sum(axis=0)).ravel() / n - ma * mb
        va = np.asarray(a.multiply(a).sum(axis=0)).ravel() / n - ma**2
        vb = np.asarray(b.multiply(b).sum(axis=0)).ravel() / n - mb**2
        has_signal = va > 1e-12 * np.maximum(ma**2, 1)
        denom = np.sqrt(np.maximum(va, 0) * np.maximum(vb, 0))
        corr = np.where(has_signal & (denom > 0), cov / np.where(denom > 0, denom, 1), 0.0)
        sign = np.sign(np.einsum("ij,ij->i", truth.directions[feats], latents[lats]))
        total += float((np.clip(corr, -1, 1) * np.where(sign == 0, 1, sign))[has_signal].sum())
        counted += int(has_signal.sum())
    return total / counted if counted else 0.0


def _absorption(truth, codes, rep, match_latent, match_cos) -> float | None:
    if truth.parents is None:
        return None
    latent_of = np.full(truth.n_features, -1, np.int64)
    latent_of[rep] = np.where(match_cos >= 0.5, match_latent, -1)
    parents = np.unique(truth.parents[truth.parents >= 0])
    active = truth.codes.tocsc()
    latent_active = codes.tocsc()
    rates = []
    for p in parents:
        j = latent_of[p]
        if j < 0:
            continue
        children = truth.children(p)
        both = (active[:, [p]].toarray().ravel() > 0) & (active[:, children].getnnz(axis=1) > 0)
        if both.sum() < 5:
            continue
        silent = latent_active[:, [j]].toarray().ravel()[both] == 0
        rates.append(silent.mean())
    return float(np.mean(rates)) if rates else None


def chance_mmcs(n_latents: int, d_model: int) -> float:
    """Expected MMCS of ``n_latents`` random unit directions in ``d_model`` dimensions.

    For a fixed unit vector and a uniformly random one, ``c = cos^2`` follows Beta(1/2, (d-1)/2),
    so ``P(|cos| <= t) = I_{t^2}(1/2, (d-1)/2)``; the expected maximum of ``n_latents`` independent
    draws is ``integral_0^1 1 - P(|cos| <= t)^n dt``.
    """
    p = Problems()
    p.integer("n_latents", n_latents, low=1)
    p.integer("d_model", d_model, low=2)
    p.raise_if_any("chance_mmcs")
    t = np.linspace(0.0, 1.0, 20001)
    cdf = betainc(0.5, (d_model - 1) / 2.0, t**2)
    return float(np.trapezoid(1.0 - cdf**n_latents, t))

__all__ = [
    "EXACT_LIMIT",
    "FeatureScores",
    "chance_mmcs",
    "score_features",
]
