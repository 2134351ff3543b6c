"""Reconstruction metrics, defined once and used by every chapter.

All functions take images as arrays of shape (N, S, S), float in [0, 1] (reconstructions first, targets
second) and return per-image values; :func:`evaluate` adds means, bootstrap 95% CIs over images and
permutation p-values for identification.

- :mod:`ldm_core.metrics.distortion`: PSNR, SSIM, pixel r, MSE, identification (overall, within class, n-way)
  with its permutation test, and :func:`evaluate`;
- :mod:`ldm_core.metrics.stats`: bootstrap CIs, paired comparisons (bootstrap + Wilcoxon), pooling over seeds,
  two-level bootstrap and selection stability;
- :mod:`ldm_core.metrics.perception`: digit accuracy, identification in a classifier's features, KID.

Every name is imported from here: ``from ldm_core.metrics import evaluate``.
"""
from .distortion import (
    SSIM_SETTINGS, METRIC_NAMES, mse, psnr, ssim, corr_matrix, pixel_corr, identification, n_way_top1,
    IDENTIFICATION_STATISTICS, identification_test, evaluate
)
from .perception import (PERCEPTION_METRICS, kid, kid_of_sets, perception_metrics)
from .stats import (
    bootstrap_ci, paired_comparison, paired_comparisons, pool_per_image, two_level_bootstrap_ci, selection_stability
)

__all__ = [
    "SSIM_SETTINGS", "METRIC_NAMES", "mse", "psnr", "ssim", "corr_matrix", "pixel_corr", "identification", "n_way_top1",
    "IDENTIFICATION_STATISTICS", "identification_test", "evaluate", "bootstrap_ci", "paired_comparison",
    "paired_comparisons", "pool_per_image", "two_level_bootstrap_ci", "selection_stability", "PERCEPTION_METRICS",
    "kid", "kid_of_sets", "perception_metrics"
]
