"""Reconstruction metrics, defined once and used by every chapter.

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
- Paired comparison of two models on the same images (:func:`paired_comparison`): the per-image
  differences, their mean with a percentile bootstrap CI, and a two-sided Wilcoxon signed-rank test
  (``scipy.stats.wilcoxon``; exact for small samples without ties or zeros).

PSNR, MSE and r are a few lines of numpy (scikit-image's versions return one value per call and
would not treat the zero-variance case explicitly); SSIM is scikit-image's.

Perception metrics
------------------
The metrics above measure distortion: how far a reconstruction is from its target. A blurred mean of many
plausible digits can score well on them while looking like no handwritten digit at all; Blau & Michaeli
(2018, "The perception-distortion tradeoff", CVPR) show that the two cannot in general be optimised
together. :func:`perception_metrics` adds the perception axis, in the features of a small classifier
(:class:`ldm_core.feature_net.PerceptionNet`) trained only on the guarded unpaired prior images:

- ``digit_acc``: per image, 1 if the classifier names the class of the trial's stimulus (dataset code ->
  name through ``class_names``), else 0; averaged over seeds. It is near its ceiling for most decoders
  (telling two digits apart is easy) and NaN, with a note, when a stimulus class is unknown to the net.
- ``feature_id2``: 2-way identification exactly as ``id2`` above (all other test targets as distractors,
  ties 1/2), but on Pearson r between the classifier's penultimate feature vectors of reconstruction and
  target; averaged over seeds. The field reports this in pretrained networks' features (Brain-Diffuser,
  Ozcelik & VanRullen 2023; MindEye, Scotti et al. 2023).
- ``kid_digit``: the kernel inception distance (Bińkowski et al. 2018, "Demystifying MMD GANs", ICLR): the
  unbiased estimate of the squared maximum mean discrepancy with the polynomial kernel
  k(x, y) = (x . y / d + 1)^3, d the feature dimension, between the reconstructions and real images the
  classifier never saw (``PerceptionNet.heldout_images``), on features divided by the reference set's
  root-mean-square feature value (a ReLU net's unit is arbitrary). With K seeds per image the within-set term
  pairs reconstructions of different images only (:func:`kid_of_sets`): the seeds of one image are not
  independent samples. Lower is better; 0 means the two sets have the same feature distribution up to the
  kernel's third moments. The estimator is unbiased, so it can be negative, and with 10-18 test images its
  CI is wide. It is a set statistic: no per-image values. Its CI resamples test images (all seeds of a
  resampled image together) with the reference set fixed.

Why KID is written here: torchmetrics' ``KernelInceptionDistance`` (and ``torch-fidelity``) are built
around InceptionV3's ImageNet weights, which cannot be downloaded here and have never seen a handwritten
digit; ours is the same estimator (a few lines of numpy) in the study's own classifier features, on sets
of tens of reconstructions, where the original's averaging over subsets of 1000 does not apply.

Robustness helpers: :func:`two_level_bootstrap_ci` resamples seeds and images (CIs above resample images
only); :func:`selection_stability` measures how often a validation choice holds under resampled trials.
"""
from __future__ import annotations

import warnings

import numpy as np
from skimage.metrics import structural_similarity

__all__ = [
    "SSIM_SETTINGS",
    "mse",
    "psnr",
    "ssim",
    "pixel_corr",
    "corr_matrix",
    "identification",
    "n_way_top1",
    "identification_test",
    "bootstrap_ci",
    "paired_comparison",
    "paired_comparisons",
    "pool_per_image",
    "evaluate",
    "METRIC_NAMES",
    "PERCEPTION_METRICS",
    "kid",
    "kid_of_sets",
    "perception_metrics",
    "two_level_bootstrap_ci",
    "selection_stability",
]

SSIM_SETTINGS = dict(data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
METRIC_NAMES = ("psnr", "ssim", "pixel_r", "mse", "id2", "id2_within", "id10")
PERCEPTION_METRICS = ("digit_acc", "feature_id2", "kid_digit")  # computed by perception_metrics


# ----------------------------------------------------------------------------- helpers


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


# ----------------------------------------------------------------------------- per-image metrics


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


# ----------------------------------------------------------------------------- identification


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


def identification_test(
    recons: np.ndarray,
    targets: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    statistic: str = "id2",
    n_perm: int = 1000,
    n_draws: int = 100,
    seed: int = 0,
) -> dict:
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
    within = statistic == "id2_within"
    lab = None if labels is None else np.asarray(labels).reshape(-1)
    if within and lab is None:
        raise ValueError("statistic='id2_within' needs the target labels (labels=...)")
    n = min(10, N)

    def per_image(C: np.ndarray, lab_perm) -> np.ndarray:
        if statistic == "id10":
            return _n_way_from_corr(C, n=n, n_draws=n_draws, rng=np.random.default_rng(seed))
        return _identification_from_corr(C, labels=lab_perm, within_class=within)

    per = np.mean([per_image(C, lab) for C in Cs], axis=0)
    observed = float(np.nanmean(per))
    rng = np.random.default_rng(seed)
    null = np.empty(n_perm)
    for k in range(n_perm):
        perm = np.arange(N)
        if within:
            for c in np.unique(lab):
                idx = np.flatnonzero(lab == c)
                perm[idx] = rng.permutation(idx)
        else:
            perm = rng.permutation(N)
        lab_perm = None if lab is None else lab[perm]
        null[k] = np.mean([np.nanmean(per_image(C[:, perm], lab_perm)) for C in Cs])
    p = (1.0 + np.sum(null >= observed - 1e-12)) / (1.0 + n_perm) if n_perm > 0 else float("nan")
    return {"mean": observed, "per_image": per.tolist(), "p_value": float(p), "n_perm": int(n_perm),
            "n_sets": len(Cs), "n_way": n if statistic == "id10" else 2}


# ----------------------------------------------------------------------------- summaries


def bootstrap_ci(values: np.ndarray, *, n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean over images (NaN entries dropped; +inf kept)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1)
    # "nearest" avoids interpolating between two +inf means (a perfect reconstruction has PSNR +inf)
    lo, hi = np.percentile(means, [100 * (1 - ci) / 2, 100 * (1 + ci) / 2], method="nearest")
    return float(lo), float(hi)


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


def paired_comparison(
    a_per_image: np.ndarray,
    b_per_image: np.ndarray,
    *,
    n_boot: int = 2000,
    ci: float = 0.95,
    seed: int = 0,
) -> dict:
    """Compare two models on the same images: per-image differences a - b.

    Parameters
    ----------
    a_per_image, b_per_image : array of shape (N,)
        One metric per image for models a and b, in the same image order (e.g. ``evaluate(...)[m]["per_image"]``).
    n_boot, ci, seed
        Percentile bootstrap of the mean difference over images (:func:`bootstrap_ci`).

    Returns
    -------
    dict
        ``mean`` (mean of a - b), ``ci_low``, ``ci_high``, ``median``, ``per_image`` (the differences),
        ``n`` (pairs used), ``n_dropped`` (pairs with a NaN or an infinite difference, left out),
        ``n_a_better`` / ``n_b_better`` / ``n_ties`` (signs of the differences), ``wilcoxon_statistic`` and
        ``p_wilcoxon``: scipy's two-sided Wilcoxon signed-rank test of a median difference of 0 (zero
        differences dropped, ``zero_method="wilcox"``; p = 1 and statistic NaN when every difference is 0).

    Raises
    ------
    ValueError
        If the arrays are not 1-D of the same length, or no pair has a finite difference.
    """
    from scipy.stats import wilcoxon

    a = np.asarray(a_per_image, dtype=np.float64)
    b = np.asarray(b_per_image, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"a_per_image and b_per_image must be 1-D arrays of the same length (one value per image); "
                         f"got shapes {a.shape} and {b.shape}")
    with np.errstate(invalid="ignore"):
        d_all = a - b
    ok = np.isfinite(d_all)
    d = d_all[ok]
    if len(d) == 0:
        raise ValueError(f"no finite per-image difference among {len(a)} pairs (NaN or infinite values in both)")
    lo, hi = bootstrap_ci(d, n_boot=n_boot, ci=ci, seed=seed)
    if np.all(d == 0):
        stat, p = float("nan"), 1.0
    else:
        res = wilcoxon(d, zero_method="wilcox", alternative="two-sided")
        stat, p = float(res.statistic), float(res.pvalue)
    return {
        "mean": float(d.mean()), "ci_low": lo, "ci_high": hi, "median": float(np.median(d)), "per_image": d.tolist(),
        "n": int(len(d)), "n_dropped": int((~ok).sum()), "n_a_better": int((d > 0).sum()),
        "n_b_better": int((d < 0).sum()), "n_ties": int((d == 0).sum()),
        "wilcoxon_statistic": stat, "p_wilcoxon": p,
    }


def paired_comparisons(a: dict, b: dict, *, metrics=("psnr", "ssim", "pixel_r"), n_boot: int = 2000,
                       seed: int = 0) -> dict:
    """:func:`paired_comparison` of two models for several metrics: ``{metric: comparison}``.

    ``a`` and ``b`` map each metric to a result with ``per_image`` values (e.g. :func:`evaluate` or a seed-pooled
    summary), on the same images in the same order.
    """
    return {m: paired_comparison(a[m]["per_image"], b[m]["per_image"], n_boot=n_boot, seed=seed) for m in metrics}


def pool_per_image(per_image_sets, *, n_boot: int = 2000, seed: int = 0) -> dict:
    """Per-image values of several evaluations of the same images (seeds, draws) averaged, with a bootstrap CI.

    Parameters
    ----------
    per_image_sets : array-like of shape (K, N)
        One row per evaluation (e.g. ``evaluate(...)[metric]["per_image"]`` of K seeds), same image order.

    Returns
    -------
    dict
        ``mean`` (over images of the K-average), ``ci_low``, ``ci_high`` (:func:`bootstrap_ci` over images),
        ``per_image`` (N,) and ``n_sets`` (K).

    Raises
    ------
    ValueError
        If the input is not 2-D with at least one row.
    """
    v = np.asarray(per_image_sets, dtype=np.float64)
    if v.ndim != 2 or len(v) == 0:
        raise ValueError(f"per_image_sets must have shape (K >= 1, N), got {v.shape}")
    per = v.mean(axis=0)
    lo, hi = bootstrap_ci(per, n_boot=n_boot, seed=seed)
    return {"mean": float(np.nanmean(per)), "ci_low": lo, "ci_high": hi, "per_image": per.tolist(), "n_sets": len(v)}


# ----------------------------------------------------------------------------- perception metrics


def _poly_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """k(x, y) = (x . y / d + 1)^3 for all rows of a (n, d) and b (m, d): shape (n, m)."""
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def _check_features(x, arg: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2 or x.shape[1] < 1:
        raise ValueError(f"{arg} must have shape (n, d) with n >= 2 feature vectors; got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{arg} contain NaN or infinite values")
    return x


def kid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Kernel inception distance: unbiased MMD^2 with the kernel k(x, y) = (x . y / d + 1)^3.

    Parameters
    ----------
    features_a : ndarray of shape (n, d), n >= 2
    features_b : ndarray of shape (m, d), m >= 2

    Returns
    -------
    float
        sum_{i != j} k(a_i, a_j) / (n (n - 1)) + sum_{i != j} k(b_i, b_j) / (m (m - 1))
        - 2 sum_{i, j} k(a_i, b_j) / (n m). Lower is better; unbiased, so it can be slightly negative
        when the two sets come from the same distribution (Bińkowski et al. 2018).

    Raises
    ------
    ValueError
        If a set is not 2-D with at least 2 rows, is not finite, or the feature dimensions differ.
    """
    a = _check_features(features_a, "features_a")
    b = _check_features(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"features_a and features_b must have the same feature dimension d; got {a.shape[1]} "
                         f"and {b.shape[1]}")
    n, m = len(a), len(b)
    kaa, kbb = _poly_kernel(a, a), _poly_kernel(b, b)
    term_a = (kaa.sum() - np.trace(kaa)) / (n * (n - 1))
    term_b = (kbb.sum() - np.trace(kbb)) / (m * (m - 1))
    return float(term_a + term_b - 2.0 * _poly_kernel(a, b).mean())


def kid_of_sets(feature_sets: np.ndarray, features_b: np.ndarray) -> float:
    """KID of K reconstructions of each of N images (K seeds or samples) against a reference set.

    Parameters
    ----------
    feature_sets : ndarray of shape (K, N, d), N >= 2
        Row [k, i]: features of reconstruction k of image i. K = 1 is a single set.
    features_b : ndarray of shape (m, d), m >= 2
        The reference set.

    Returns
    -------
    float
        term_a + term_b - 2 cross, with term_a = sum_{i != j} sum_{k, l} k(x_ki, x_lj) / (K^2 N (N - 1)): the
        within-reconstruction term pairs reconstructions of DIFFERENT images only, since the K reconstructions
        of one image are not independent samples (pairing them, as :func:`kid` of the pooled K N rows does,
        biases KID upward by roughly the within-image similarity); cross averages k(x_ki, b_j) over all K N
        reconstructions; term_b is :func:`kid`'s. With K = 1 it equals :func:`kid`. Unbiased over images,
        so it can be negative; K near-identical copies give about the K = 1 value.

    Raises
    ------
    ValueError
        If ``feature_sets`` is not 3-D with N >= 2, a set is not finite, or the feature dimensions differ.
    """
    f = np.asarray(feature_sets, dtype=np.float64)
    if f.ndim != 3 or f.shape[1] < 2 or f.shape[0] < 1:
        raise ValueError(f"feature_sets must have shape (K, N, d) with K >= 1 and N >= 2 images; got shape {f.shape}")
    K, N, d = f.shape
    a = _check_features(f.reshape(K * N, d), "feature_sets")
    b = _check_features(features_b, "features_b")
    if d != b.shape[1]:
        raise ValueError(f"feature_sets and features_b must have the same feature dimension d; got {d} and "
                         f"{b.shape[1]}")
    blocks = _poly_kernel(a, a).reshape(K, N, K, N).sum(axis=(0, 2))  # (N, N): all seed pairs of images i, j
    term_a = (blocks.sum() - np.trace(blocks)) / (K**2 * N * (N - 1))
    kbb = _poly_kernel(b, b)
    term_b = (kbb.sum() - np.trace(kbb)) / (len(b) * (len(b) - 1))
    return float(term_a + term_b - 2.0 * _poly_kernel(a, b).mean())


def _kid_resampled(kaa: np.ndarray, kab_mean: np.ndarray, term_b: float, weights: np.ndarray, *,
                   n_sets: int = 1) -> np.ndarray:
    """KID of resampled test images (all sets of each together) against a fixed set b, one value per resample.

    Parameters
    ----------
    kaa : ndarray of shape (K N, K N)
        Kernel among the reconstructions, rows set-major (row k N + i: set k, image i).
    kab_mean : ndarray of shape (K N,)
        Mean kernel of each reconstruction with set b.
    term_b : float
        The within-b term of :func:`kid`.
    weights : ndarray of shape (R, N)
        How many times each test image is drawn in each of R resamples.
    n_sets : int
        K.

    Returns
    -------
    ndarray of shape (R,)
        The within-a term averages the kernel over pairs of reconstructions of different draws of different
        images only (weight w_i w_j, all K x K set pairs): reconstructions of one image (its K seeds, or two
        draws of it) are never paired, because they are not independent samples, the U-statistic's i != j
        rule applied to the test images. All weights 1 give :func:`kid_of_sets`. NaN when no pair is left
        (every draw is of one image).
    """
    K = int(n_sets)
    N = kaa.shape[0] // K
    w = np.asarray(weights, dtype=np.float64)  # (R, N)
    blocks = kaa.reshape(K, N, K, N).sum(axis=(0, 2))  # (N, N): all set pairs of images i and j
    total = w.sum(axis=1)
    within = np.einsum("ri,ij,rj->r", w, blocks, w) - (w**2) @ np.diag(blocks)  # pairs of different images
    pairs = K**2 * (total**2 - (w**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        term_a = np.where(pairs > 0, within / pairs, np.nan)
    cross = w @ kab_mean.reshape(K, N).sum(axis=0) / (K * total)
    return term_a + term_b - 2.0 * cross


def perception_metrics(
    recons: np.ndarray,
    targets: np.ndarray,
    labels: np.ndarray,
    *,
    net,
    class_names: dict,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, dict]:
    """Digit accuracy, 2-way identification in classifier features and KID for one decoder.

    Parameters
    ----------
    recons : ndarray of shape (N, S, S) or (K, N, S, S), float in [0, 1]
        Reconstructions of the N test targets, optionally by K seeds (or samples).
    targets : ndarray of shape (N, S, S), float in [0, 1]
    labels : ndarray of shape (N,), int
        Dataset label codes of the targets.
    net : ldm_core.feature_net.PerceptionNet
        The frozen classifier; S must be its image size.
    class_names : dict of int -> str
        Dataset code -> class name (e.g. ``StudyData.class_names``, ``{1: "six", 2: "nine"}``); compared with
        ``net.class_names``.
    n_boot : int
        Bootstrap resamples of the test images for every CI.
    seed : int
        Seeds the bootstrap.

    Returns
    -------
    dict
        ``{"digit_acc": {...}, "feature_id2": {...}, "kid_digit": {...}}``. The first two hold ``mean``,
        ``ci_low``, ``ci_high`` (:func:`bootstrap_ci` over images of the seed-averaged ``per_image`` (N,)),
        ``per_image`` and ``per_image_by_seed`` (K lists of N, for :func:`two_level_bootstrap_ci`).
        ``digit_acc`` gets NaNs and a ``note`` when a target's class name is not among ``net.class_names``.
        ``kid_digit`` holds ``mean`` (:func:`kid_of_sets` of the K x N reconstructions against
        ``net.heldout_images``: reconstructions of the same image are never paired in the within term),
        ``ci_low``, ``ci_high`` (percentile bootstrap over test images, each resampled image with all its
        seeds; the reference set fixed), ``n_recons``, ``n_reference`` and ``feature_scale``; no per-image
        values (a set statistic). Lower KID is better. It is an unbiased estimator, so it can be negative, and
        with 10-18 test images its CI is wide (often wider than the differences between decoders): compare
        KIDs only between rows with the same number of seeds and call CIs that overlap "not separable".

    Notes
    -----
    KID is computed on features divided by ``feature_scale``, the root-mean-square feature value of the
    reference set: a ReLU network's activation scale is arbitrary, and without it the cubic kernel's
    x . y / d, and so KID, would scale with it. Pearson r (``feature_id2``) does not depend on it. KID's
    within-reconstruction term pairs reconstructions of different test images only, both in the estimate and
    in every bootstrap resample (where two copies of one test image are not paired either): K seeds of one
    image are not independent samples, and pairing them would bias a multi-seed KID upward (K near-identical
    seeds would look further from real images than one). With K = 1 the estimate is :func:`kid`.

    Raises
    ------
    ValueError
        On shapes that do not match, fewer than 2 test images, or a label code with no entry in ``class_names``.
    """
    r = np.asarray(recons, dtype=np.float64)
    sets = r[None] if r.ndim == 3 else r
    t = np.asarray(targets, dtype=np.float64)
    if sets.ndim != 4 or t.ndim != 3 or sets.shape[1:] != t.shape:
        raise ValueError(f"recons must have shape (N, S, S) or (K, N, S, S) and targets (N, S, S) with the same "
                         f"N and S; got {r.shape} and {t.shape}")
    K, N, S, _ = sets.shape
    if N < 2:
        raise ValueError(f"perception_metrics needs at least 2 test images (distractors for feature_id2); got {N}")
    lab = np.asarray(labels).reshape(-1)
    if len(lab) != N:
        raise ValueError(f"labels has {len(lab)} entries for {N} test images")
    names = {}
    for code, name in dict(class_names).items():
        try:
            names[int(code)] = str(name)
        except (TypeError, ValueError):
            raise ValueError(f"class_names has the key {code!r}, which is not an integer label code") from None
    missing = sorted({int(c) for c in lab} - set(names))
    if missing:
        raise ValueError(f"class_names has no name for the label code(s) {missing}; it maps {names}")

    feats = net.features(sets.reshape(K * N, S, S)).reshape(K, N, -1)  # (K, N, F)
    feats_t = net.features(t)  # (N, F)
    out: dict[str, dict] = {}

    def summary(per_seed: np.ndarray) -> dict:
        per = per_seed.mean(axis=0)
        lo, hi = bootstrap_ci(per, n_boot=n_boot, seed=seed)
        return {"mean": float(np.nanmean(per)), "ci_low": lo, "ci_high": hi, "per_image": per.tolist(),
                "per_image_by_seed": per_seed.tolist()}

    # digit_acc
    true = np.array([names[int(c)] for c in lab], dtype=object)
    unknown = sorted(set(true) - set(net.class_names))
    if unknown:
        out["digit_acc"] = {
            "mean": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "per_image": [float("nan")] * N,
            "per_image_by_seed": [[float("nan")] * N for _ in range(K)],
            "note": (f"the classifier knows the classes {list(net.class_names)} but the stimuli include "
                     f"{unknown}: the prior's classes differ from the stimuli's, so digit accuracy is undefined"),
        }
    else:
        pred = net.predict(sets.reshape(K * N, S, S)).reshape(K, N)
        out["digit_acc"] = summary((pred == true.astype(str)[None]).astype(np.float64))

    # feature_id2
    zt, _ = _flat_standardised(feats_t)  # rows z-scored; a constant (e.g. all-zero) feature vector -> r = 0
    out["feature_id2"] = summary(np.stack([
        _identification_from_corr(_flat_standardised(f)[0] @ zt.T, labels=None, within_class=False) for f in feats
    ]))

    # kid_digit
    ref = np.asarray(net.heldout_features if hasattr(net, "heldout_features") else net.features(net.heldout_images))
    scale = float(np.sqrt(np.mean(ref**2)))  # root-mean-square reference feature: the net's arbitrary unit
    scale = scale if scale > 0 else 1.0
    ref = ref / scale
    a = feats.reshape(K * N, -1) / scale  # rows: seed-major, row k * N + i is seed k, image i
    value = kid_of_sets(a.reshape(K, N, -1), ref)  # seeds of one image never paired with each other
    kaa = _poly_kernel(a, a)
    kab_mean = _poly_kernel(a, ref).mean(axis=1)
    kbb = _poly_kernel(ref, ref)
    term_b = (kbb.sum() - np.trace(kbb)) / (len(ref) * (len(ref) - 1))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, N, size=(n_boot, N))  # resampled test images
    counts = np.stack([np.bincount(i, minlength=N) for i in idx])  # (n_boot, N)
    boots = _kid_resampled(kaa, kab_mean, term_b, counts, n_sets=K)  # every seed of an image together
    boots = boots[np.isfinite(boots)]
    lo, hi = (np.percentile(boots, [2.5, 97.5], method="nearest") if len(boots) else (np.nan, np.nan))
    out["kid_digit"] = {"mean": value, "ci_low": float(lo), "ci_high": float(hi), "n_recons": int(K * N),
                        "n_reference": int(len(ref)), "feature_scale": scale}
    return out


# ----------------------------------------------------------------------------- robustness


def two_level_bootstrap_ci(
    per_image: np.ndarray, *, n_boot: int = 2000, seed: int = 0, ci: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap CI of the grand mean over seeds and images, resampling both.

    Parameters
    ----------
    per_image : array of shape (n_seeds, N)
        One value per seed (training seed or sample) and image, same image order in every row.
    n_boot, seed, ci
        Resamples, their seed, the coverage.

    Returns
    -------
    (ci_low, ci_high) : tuple of float
        Each resample draws n_seeds seeds with replacement and N images with replacement (crossed: every
        drawn seed with every drawn image) and takes the mean of that sub-table (NaN entries dropped). The
        images are drawn with the same generator calls as :func:`bootstrap_ci`, so with identical rows
        (seeds that agree) the interval equals ``bootstrap_ci(per_image[0])``; seeds that differ widen it.

    Raises
    ------
    ValueError
        If ``per_image`` is not 2-D with at least one seed and one image.
    """
    v = np.asarray(per_image, dtype=np.float64)
    if v.ndim != 2 or v.shape[0] < 1 or v.shape[1] < 1:
        raise ValueError(f"per_image must have shape (n_seeds >= 1, N >= 1); got {v.shape}")
    if np.all(np.isnan(v)):
        return (float("nan"), float("nan"))
    K, N = v.shape
    rng = np.random.default_rng(seed)
    img = rng.integers(0, N, size=(n_boot, N))  # the draws bootstrap_ci makes for N values
    seeds = rng.integers(0, K, size=(n_boot, K))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample of NaNs only -> NaN mean, dropped below
        means = np.nanmean(v[seeds[:, :, None], img[:, None, :]], axis=(1, 2))  # (n_boot, K, N) -> (n_boot,)
    means = means[~np.isnan(means)]
    lo, hi = np.percentile(means, [100 * (1 - ci) / 2, 100 * (1 + ci) / 2], method="nearest")
    return float(lo), float(hi)


def selection_stability(
    per_image: dict[str, np.ndarray], *, n_boot: int = 2000, seed: int = 0, higher_is_better: bool = True
) -> dict[str, float]:
    """How often each candidate would be selected if the validation trials were resampled.

    Parameters
    ----------
    per_image : dict of str -> array of shape (N,)
        Validation score of each candidate on the SAME N trials, in the same order.
    n_boot, seed
        Bootstrap resamples of the trials (with replacement) and their seed.
    higher_is_better : bool
        False for scores where lower wins (MSE, KID).

    Returns
    -------
    dict of str -> float
        Share of resamples in which the candidate has the best mean, in the input order; a tie splits a
        resample evenly among the tied candidates, so the shares sum to 1.

    Raises
    ------
    ValueError
        If there is no candidate, the arrays are not 1-D of one common length >= 1, or hold NaN.
    """
    if not per_image:
        raise ValueError("per_image is empty; give at least one candidate name -> per-trial scores")
    names = list(per_image)
    values = [np.asarray(per_image[k], dtype=np.float64) for k in names]
    shapes = {k: v.shape for k, v in zip(names, values)}
    if any(v.ndim != 1 for v in values) or len(set(shapes.values())) != 1 or values[0].size == 0:
        raise ValueError(f"per_image must map every candidate to a 1-D array over the same N >= 1 trials; "
                         f"got shapes {shapes}")
    bad = [k for k, v in zip(names, values) if np.isnan(v).any()]
    if bad:
        raise ValueError(f"per_image of {bad} hold NaN; drop those trials from every candidate first")
    V = np.stack(values)  # (C, N)
    N = V.shape[1]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, N, size=(n_boot, N))
    means = V[:, idx].mean(axis=2).T  # (C, n_boot, N) -> (n_boot, C)
    best = means.max(axis=1, keepdims=True) if higher_is_better else means.min(axis=1, keepdims=True)
    winners = (means == best).astype(np.float64)
    shares = (winners / winners.sum(axis=1, keepdims=True)).mean(axis=0)
    return {k: float(s) for k, s in zip(names, shares)}
