"""Statistics over per-image scores: bootstrap CIs of a mean, paired comparisons of two models on the same images,
pooling seeds, and the robustness helpers.

- Paired comparison of two models on the same images (:func:`paired_comparison`): the per-image
  differences, their mean with a percentile bootstrap CI, and a two-sided Wilcoxon signed-rank test
  (``scipy.stats.wilcoxon``; exact for small samples without ties or zeros).

Robustness helpers: :func:`two_level_bootstrap_ci` resamples seeds and images (:func:`bootstrap_ci` resamples
images only); :func:`selection_stability` measures how often a validation choice holds under resampled trials.
"""
from __future__ import annotations

import warnings

import numpy as np

__all__ = [
    "bootstrap_ci", "paired_comparison", "paired_comparisons", "pool_per_image", "two_level_bootstrap_ci",
    "selection_stability"
]


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

    ``a`` and ``b`` map each metric to a result with ``per_image`` values (e.g. :func:`ldm_core.metrics.evaluate` or
    a seed-pooled
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
