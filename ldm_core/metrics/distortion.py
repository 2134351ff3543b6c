"""Distortion metrics of a reconstruction against its target, and :func:`evaluate`, which scores a model.

All functions take images as arrays of shape (N, S, S), float in [0, 1] (reconstructions first, targets
second) and return per-image values; :func:`evaluate` adds means, bootstrap 95% CIs over images and
permutation p-values for identification.

Definitions
-----------
- MSE: mean over pixels of (recon - target)^2.
- PSNR (dB): 10 log10(1 / MSE), data range 1. A perfect reconstruction (MSE 0) has PSNR = +inf.
- SSIM: scikit-image ``structural_similarity`` with ``data_range=1``, ``gaussian_weights=True``,
  ``sigma=1.5``, ``use_sample_covariance=False`` (11x11 Gaussian window, K1 0.01, K2 0.03) -- the
  convention of the MindEye and Brain-Diffuser evaluation code.
- Pixel r: Pearson correlation between the flattened recon and target, per image. A constant image
  (zero variance) has no defined r; we set r = 0 (no linear relation can be expressed) and report how
  many images were constant, rather than propagating NaN into means.
- 2-way identification: for reconstruction i, the fraction of other targets j != i with
  r(recon_i, target_i) > r(recon_i, target_j); a tie counts one half (so a constant reconstruction
  scores chance, 0.5). Within-class: distractors j restricted to targets of the same digit.
- n-way top-1: the fraction of draws of n-1 distractors in which recon_i correlates more with its own
  target than with every distractor (all N-1 distractors when n = N: exact, no draws).
- Permutation test (:func:`identification_test`, the one test of identification): shuffle the pairing of
  reconstructions and targets (within digit class for the within-class statistic) and recompute the
  identification mean; p = (1 + #{null >= observed}) / (1 + n_perm). For 2-way, within-class 2-way or
  n-way identification, and for several seeds' reconstructions at once (the same shuffle for every seed;
  the statistic is the mean over seeds).

PSNR, MSE and r are a few lines of numpy (scikit-image's versions return one value per call and
would not treat the zero-variance case explicitly); SSIM is scikit-image's.
"""
from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

from .stats import bootstrap_ci

__all__ = [
    "SSIM_SETTINGS", "METRIC_NAMES", "mse", "psnr", "ssim", "corr_matrix", "pixel_corr", "identification", "n_way_top1",
    "IDENTIFICATION_STATISTICS", "identification_test", "evaluate"
]


SSIM_SETTINGS = dict(data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)

METRIC_NAMES = ("psnr", "ssim", "pixel_r", "mse", "id2", "id2_within", "id10")

def _check_pair(recons: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    recons = np.asarray(recons, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if recons.ndim == 2 and targets.ndim == 2:  # one image each -> (1, S, S)
        recons, targets = recons[None], targets[None]
    if recons.shape != targets.shape or recons.ndim != 3:
        raise ValueError(
            f"reconstructions and targets must both have shape (N, S, S); got {recons.shape} and {targets.shape}"
        )
    if not (np.all(np.isfinite(recons)) and np.all(np.isfinite(targets))):
        raise ValueError("reconstructions or targets contain NaN or infinite values")
    return recons, targets

def _flat_standardised(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, S, S) -> z-scored rows (N, P) and a mask of constant rows (zero variance rows are all zero)."""
    flat = x.reshape(len(x), -1)
    centred = flat - flat.mean(axis=1, keepdims=True)
    norm = np.sqrt((centred**2).sum(axis=1, keepdims=True))
    constant = norm[:, 0] <= 1e-12
    z = np.divide(centred, norm, out=np.zeros_like(centred), where=~constant[:, None])
    return z, constant

def mse(recons: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per-image mean squared error, shape (N,)."""
    r, t = _check_pair(recons, targets)
    return ((r - t) ** 2).mean(axis=(1, 2))

def psnr(recons: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per-image PSNR in dB for data range 1, shape (N,); +inf where MSE is 0."""
    m = mse(recons, targets)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(1.0 / m)

def ssim(recons: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per-image SSIM with :data:`SSIM_SETTINGS`, shape (N,)."""
    r, t = _check_pair(recons, targets)
    return np.array([structural_similarity(a, b, **SSIM_SETTINGS) for a, b in zip(r, t)])

def corr_matrix(recons: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """C[i, j] = Pearson r(recon_i, target_j), shape (N, N); rows/columns of constant images are 0."""
    r, t = _check_pair(recons, targets)
    zr, _ = _flat_standardised(r)
    zt, _ = _flat_standardised(t)
    return zr @ zt.T

def pixel_corr(recons: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per-image Pearson r between recon and its target, shape (N,); 0 for constant images."""
    return np.diag(corr_matrix(recons, targets)).copy()

def identification(
    recons: np.ndarray, targets: np.ndarray, *, labels: np.ndarray | None = None, within_class: bool = False
) -> np.ndarray:
    """Per-image 2-way identification accuracy, shape (N,), in [0, 1].

    Parameters
    ----------
    labels : ndarray of shape (N,), optional
        Digit labels of the targets; required when ``within_class`` is True.
    within_class : bool
        Only distractors of the same digit. An image with no same-class distractor gets NaN.
    """
    C = corr_matrix(recons, targets)
    return _identification_from_corr(C, labels=labels, within_class=within_class)

def _identification_from_corr(C: np.ndarray, *, labels, within_class: bool) -> np.ndarray:
    N = len(C)
    if within_class:
        if labels is None:
            raise ValueError("within_class identification needs the target labels (labels=...)")
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != N:
            raise ValueError(f"labels has {len(labels)} entries for {N} images")
    own = np.diag(C)[:, None]
    wins = (own > C).astype(float) + 0.5 * (own == C)
    mask = ~np.eye(N, dtype=bool)
    if within_class:
        mask &= labels[:, None] == labels[None, :]
    counts = mask.sum(axis=1)
    out = np.full(N, np.nan)
    ok = counts > 0
    out[ok] = (wins * mask).sum(axis=1)[ok] / counts[ok]
    return out

def n_way_top1(
    recons: np.ndarray, targets: np.ndarray, *, n: int = 10, n_draws: int = 1000, seed: int = 0
) -> np.ndarray:
    """Per-image n-way top-1 identification, shape (N,).

    Exact (all N-1 distractors, no sampling) when n == N; otherwise the mean over ``n_draws`` random
    sets of n-1 distractors. Ties count as losses except a full tie, which scores 1/n.
    """
    C = corr_matrix(recons, targets)
    N = len(C)
    if not 2 <= n <= N:
        raise ValueError(f"n-way identification needs 2 <= n <= number of images ({N}); got n={n}")
    return _n_way_from_corr(C, n=n, n_draws=n_draws, rng=np.random.default_rng(seed))

def _n_way_from_corr(C: np.ndarray, *, n: int, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    N = len(C)
    own = np.diag(C)
    out = np.zeros(N)
    for i in range(N):
        others = np.delete(np.arange(N), i)
        draws = [others] if n == N else [rng.choice(others, n - 1, replace=False) for _ in range(n_draws)]
        score = 0.0
        for d in draws:
            if np.all(C[i, d] == own[i]):
                score += 1.0 / n
            else:
                score += float(np.all(own[i] > C[i, d]))
        out[i] = score / len(draws)
    return out

IDENTIFICATION_STATISTICS = ("id2", "id2_within", "id10")

def _shuffled_pairing(n: int, lab, *, within: bool, rng: np.random.Generator) -> np.ndarray:
    """A random permutation of the n targets; within each class of ``lab`` when ``within``."""
    if not within:
        return rng.permutation(n)
    perm = np.arange(n)
    for c in np.unique(lab):
        idx = np.flatnonzero(lab == c)
        perm[idx] = rng.permutation(idx)
    return perm

def identification_test(recons: np.ndarray, targets: np.ndarray, *, labels: np.ndarray | None = None,
                        statistic: str = "id2", n_perm: int = 1000, n_draws: int = 100, seed: int = 0) -> dict:
    """Identification accuracy and its permutation p-value, for one or several sets of reconstructions.

    Parameters
    ----------
    recons : ndarray of shape (N, S, S) or (K, N, S, S), float in [0, 1]
        Reconstructions of the N targets, optionally by K models (e.g. K training seeds).
    targets : ndarray of shape (N, S, S)
    labels : ndarray of shape (N,), optional
        Digit labels of the targets; required for ``"id2_within"``.
    statistic : {"id2", "id2_within", "id10"}
        2-way identification over all distractors, 2-way within class, or n-way top-1 with n = min(10, N)
        (exact when n = N, else ``n_draws`` random distractor sets per image).
    n_perm : int
        Shuffles of the recon-target pairing (within class for ``"id2_within"``); the same shuffle is applied
        to all K sets. 0 skips the test (p is NaN).
    seed : int
        Seeds the shuffles and the distractor draws.

    Returns
    -------
    dict
        ``mean`` (mean over sets of the mean over images), ``per_image`` (N,) averaged over sets, ``p_value``
        ((1 + #{null >= observed}) / (1 + n_perm)), ``n_perm``, ``n_sets`` (K), ``n_way`` (2 or n).

    Raises
    ------
    ValueError
        On an unknown statistic (allowed ones named), ``"id2_within"`` without labels, or shapes that differ.
    """
    if statistic not in IDENTIFICATION_STATISTICS:
        raise ValueError(f"statistic must be one of {IDENTIFICATION_STATISTICS}, got {statistic!r}")
    r = np.asarray(recons, dtype=np.float64)
    sets = r[None] if r.ndim == 3 else r
    if sets.ndim != 4:
        raise ValueError(f"recons must have shape (N, S, S) or (K, N, S, S), got {r.shape}")
    Cs = [corr_matrix(x, targets) for x in sets]  # K of (N, N); also checks shapes
    N = len(Cs[0])
    n, within = min(10, N), statistic == "id2_within"
    lab = None if labels is None else np.asarray(labels).reshape(-1)
    if within and lab is None:
        raise ValueError("statistic='id2_within' needs the target labels (labels=...)")

    def per_image(C: np.ndarray, lab_perm) -> np.ndarray:
        if statistic == "id10":
            return _n_way_from_corr(C, n=n, n_draws=n_draws, rng=np.random.default_rng(seed))
        return _identification_from_corr(C, labels=lab_perm, within_class=within)

    per = np.mean([per_image(C, lab) for C in Cs], axis=0)
    observed = float(np.nanmean(per))
    rng = np.random.default_rng(seed)
    null = np.empty(n_perm)
    for k in range(n_perm):
        perm = _shuffled_pairing(N, lab, within=within, rng=rng)
        lab_perm = None if lab is None else lab[perm]
        null[k] = np.mean([np.nanmean(per_image(C[:, perm], lab_perm)) for C in Cs])
    p = (1.0 + np.sum(null >= observed - 1e-12)) / (1.0 + n_perm) if n_perm > 0 else float("nan")
    return {"mean": observed, "per_image": per.tolist(), "p_value": float(p), "n_perm": int(n_perm),
            "n_sets": len(Cs), "n_way": n if statistic == "id10" else 2}

def evaluate(
    recons: np.ndarray,
    targets: np.ndarray,
    labels: np.ndarray,
    *,
    n_boot: int = 2000,
    n_perm: int = 1000,
    seed: int = 0,
) -> dict:
    """Every metric for one set of reconstructions.

    Parameters
    ----------
    recons, targets : ndarray of shape (N, S, S), float in [0, 1]
    labels : ndarray of shape (N,)
        Digit labels of the targets (for within-class identification).
    n_boot, n_perm : int
        Bootstrap resamples for CIs; permutations for identification p-values (0 skips the test).

    Returns
    -------
    result : dict
        ``{metric: {"mean", "ci_low", "ci_high", "per_image"}}`` for each of :data:`METRIC_NAMES`
        (id10 is n-way top-1 with n = min(10, N)), plus ``"p_id2"``, ``"p_id2_within"``,
        ``"n_constant"`` (constant reconstructions, whose r is set to 0) and ``"n_images"``.
    """
    r, t = _check_pair(recons, targets)
    labels = np.asarray(labels).reshape(-1)
    per_image = {
        "psnr": psnr(r, t),
        "ssim": ssim(r, t),
        "pixel_r": pixel_corr(r, t),
        "mse": mse(r, t),
        "id2": identification(r, t),
        "id2_within": identification(r, t, labels=labels, within_class=True),
        "id10": n_way_top1(r, t, n=min(10, len(r)), seed=seed),
    }
    out: dict = {}
    for name, v in per_image.items():
        lo, hi = bootstrap_ci(v, n_boot=n_boot, seed=seed)
        out[name] = {
            "mean": float(np.nanmean(v)),
            "ci_low": lo,
            "ci_high": hi,
            "per_image": [float(x) for x in v],
        }
    if n_perm > 0:
        out["p_id2"] = identification_test(r, t, statistic="id2", n_perm=n_perm, seed=seed)["p_value"]
        out["p_id2_within"] = identification_test(r, t, labels=labels, statistic="id2_within", n_perm=n_perm,
                                                  seed=seed)["p_value"]
    _, constant = _flat_standardised(r)
    out["n_constant"] = int(constant.sum())
    out["n_images"] = int(len(r))
    return out
