"""Perception metrics: how much a reconstruction looks like an image of its class, beside how far it is from
its target (:mod:`ldm_core.metrics.distortion`).

The distortion metrics measure how far a reconstruction is from its target. A blurred mean of many
plausible digits can score well on them while looking like no handwritten digit at all; Blau & Michaeli
(2018, "The perception-distortion tradeoff", CVPR) show that the two cannot in general be optimised
together. :func:`perception_metrics` adds the perception axis, in the features of a small classifier
(:class:`ldm_core.perception_net.PerceptionNet`) trained only on the guarded unpaired prior images:

- ``digit_acc``: per image, 1 if the classifier names the class of the trial's stimulus (dataset code ->
  name through ``class_names``), else 0; averaged over seeds. It is near its ceiling for most decoders
  (telling two digits apart is easy) and NaN, with a note, when a stimulus class is unknown to the net.
- ``feature_id2``: 2-way identification exactly as ``id2`` (:mod:`ldm_core.metrics.distortion`) (all other test
  targets as distractors, ties 1/2), but on Pearson r between the classifier's penultimate feature vectors of
  reconstruction and target; averaged over seeds. The field reports this in pretrained networks' features
  (Brain-Diffuser, Ozcelik & VanRullen 2023; MindEye, Scotti et al. 2023).
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
"""
from __future__ import annotations

import numpy as np

from .distortion import _flat_standardised, _identification_from_corr
from .stats import bootstrap_ci

__all__ = ["PERCEPTION_METRICS", "kid", "kid_of_sets", "perception_metrics"]


PERCEPTION_METRICS = ("digit_acc", "feature_id2", "kid_digit")  # computed by perception_metrics

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

def _check_perception_inputs(recons, targets, labels, class_names) -> tuple:
    """perception_metrics' checks; reconstructions (K, N, S, S), targets (N, S, S), labels (N,), {code: name}."""
    r = np.asarray(recons, dtype=np.float64)
    sets = r[None] if r.ndim == 3 else r
    t = np.asarray(targets, dtype=np.float64)
    if sets.ndim != 4 or t.ndim != 3 or sets.shape[1:] != t.shape:
        raise ValueError(f"recons must have shape (N, S, S) or (K, N, S, S) and targets (N, S, S) with the same "
                         f"N and S; got {r.shape} and {t.shape}")
    N = sets.shape[1]
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
    return sets, t, lab, names

def _seed_summary(per_seed: np.ndarray, *, n_boot: int, seed: int) -> dict:
    """Mean and bootstrap CI over images of the seed-averaged per-image values of ``per_seed`` (K, N)."""
    per = per_seed.mean(axis=0)
    lo, hi = bootstrap_ci(per, n_boot=n_boot, seed=seed)
    return {"mean": float(np.nanmean(per)), "ci_low": lo, "ci_high": hi, "per_image": per.tolist(),
            "per_image_by_seed": per_seed.tolist()}

def _kid_digit(net, feats: np.ndarray, *, n_boot: int, seed: int) -> dict:
    """``kid_digit`` of the reconstructions' features ``feats`` (K, N, F) against ``net``'s held-out images."""
    K, N = feats.shape[:2]
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
    return {"mean": value, "ci_low": float(lo), "ci_high": float(hi), "n_recons": int(K * N),
            "n_reference": int(len(ref)), "feature_scale": scale}

def _digit_acc(net, sets: np.ndarray, lab: np.ndarray, names: dict, *, n_boot: int, seed: int) -> dict:
    """``digit_acc``: 1 where ``net`` names a reconstruction (K, N, S, S) by its stimulus's class, else 0."""
    K, N, S, _ = sets.shape
    true = np.array([names[int(c)] for c in lab], dtype=object)
    unknown = sorted(set(true) - set(net.class_names))
    if unknown:
        return {
            "mean": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "per_image": [float("nan")] * N,
            "per_image_by_seed": [[float("nan")] * N for _ in range(K)],
            "note": (f"the classifier knows the classes {list(net.class_names)} but the stimuli include "
                     f"{unknown}: the prior's classes differ from the stimuli's, so digit accuracy is undefined"),
        }
    pred = net.predict(sets.reshape(K * N, S, S)).reshape(K, N)
    return _seed_summary((pred == true.astype(str)[None]).astype(np.float64), n_boot=n_boot, seed=seed)

def perception_metrics(recons: np.ndarray, targets: np.ndarray, labels: np.ndarray, *, net, class_names: dict,
                       n_boot: int = 2000, seed: int = 0) -> dict[str, dict]:
    """Digit accuracy, 2-way identification in classifier features and KID for one decoder.

    Parameters
    ----------
    recons : ndarray of shape (N, S, S) or (K, N, S, S), float in [0, 1]
        Reconstructions of the N test targets, optionally by K seeds (or samples).
    targets : ndarray of shape (N, S, S), float in [0, 1]
    labels : ndarray of shape (N,), int
        Dataset label codes of the targets.
    net : ldm_core.perception_net.PerceptionNet
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
        ``per_image`` and ``per_image_by_seed`` (K lists of N, for :func:`ldm_core.metrics.two_level_bootstrap_ci`).
        ``digit_acc`` gets NaNs and a ``note`` when a target's class name is not among ``net.class_names``.
        ``kid_digit`` holds ``mean`` (:func:`kid_of_sets` of the K x N reconstructions against
        ``net.heldout_images``), ``ci_low``, ``ci_high`` (percentile bootstrap over test images, each with all
        its seeds; the reference set fixed), ``n_recons``, ``n_reference`` and ``feature_scale``; no per-image
        values. Lower is better; it can be negative, and with 10-18 test images its CI is wide: compare KIDs
        only between rows with the same number of seeds and call CIs that overlap "not separable".

    Notes
    -----
    KID is computed on features divided by ``feature_scale``, the root-mean-square feature value of the reference
    set: a ReLU network's activation scale is arbitrary, and without this the cubic kernel's x . y / d, and so KID,
    would scale with it (Pearson r, ``feature_id2``, does not). Reconstructions of one test image (its K seeds, or
    two bootstrap copies) are never paired in KID's within term: they are not independent samples, and pairing them
    would bias a multi-seed KID upward. With K = 1 the estimate is :func:`kid`.

    Raises
    ------
    ValueError
        On shapes that do not match, fewer than 2 test images, or a label code with no entry in ``class_names``.
    """
    sets, t, lab, names = _check_perception_inputs(recons, targets, labels, class_names)
    K, N, S, _ = sets.shape
    feats = net.features(sets.reshape(K * N, S, S)).reshape(K, N, -1)  # (K, N, F)
    feats_t = net.features(t)  # (N, F)
    out: dict[str, dict] = {"digit_acc": _digit_acc(net, sets, lab, names, n_boot=n_boot, seed=seed)}
    zt, _ = _flat_standardised(feats_t)  # rows z-scored; a constant (e.g. all-zero) feature vector -> r = 0
    out["feature_id2"] = _seed_summary(np.stack([
        _identification_from_corr(_flat_standardised(f)[0] @ zt.T, labels=None, within_class=False) for f in feats
    ]), n_boot=n_boot, seed=seed)
    out["kid_digit"] = _kid_digit(net, feats, n_boot=n_boot, seed=seed)
    return out
