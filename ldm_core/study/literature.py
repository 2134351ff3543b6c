"""Published results on digit69, quoted with their sources -- never measured here, never in a measured column.

:data:`PUBLISHED` holds Table 2 ("Dataset 2") of Du, Du & He, "Sharing deep generative representation for perceived
image reconstruction from human brain activity", IJCNN 2017 (arXiv:1704.07575), as quoted in the study's
``shared/report/LITERATURE.md``: Pearson correlation (PCC), MSE and SSIM of six methods on the same 90/10 split of
digit69, mean ± std over 20 random seeds and subjects. The paper does not define its metrics precisely (PCC per image
or pooled, SSIM windowed or global; MSE on the [0, 1] pixel scale, judging by the code); DGMM is transductive (each
test trial's latent is pulled toward the latents of its nearest training trials in fMRI space) and averages many
decoded samples; its voxels were selected by encoding R² on the training data. :data:`CAVEATS` says so, and every
comparison table prints it.

:func:`comparison_table` puts one of this study's measured models beside the quoted rows, the quoted numbers in
columns of their own ("as published") and ours under our definitions (:data:`OUR_METRICS`), with a verdict per
metric that is only "higher than the published value under our definitions" -- not a claim that the conventions
agree. :func:`caveats_markdown` gives the caveats as a paragraph a reader can read (for the benchmark chapter and
the first page), with the one that concerns this study's own models (unpaired images DGMM did not use) when asked.
:data:`REPORT_LITERATURE` holds the analysed report's own "literature comparison" rows (claim 15), which the
report gives without a source.
"""
from __future__ import annotations

import pandas as pd

__all__ = ["SOURCE", "CAVEATS", "OUR_METRICS", "PUBLISHED", "REPORT_LITERATURE", "published_table",
           "comparison_table", "caveats_markdown", "SOURCE_SHORT"]

SOURCE = ("C. Du, C. Du, H. He, 'Sharing deep generative representation for perceived image reconstruction from "
          "human brain activity', IJCNN 2017, arXiv:1704.07575, Table 2 ('Dataset 2' = digit69)")

CAVEATS = (
    "Quoted, not measured: mean ± std over 20 random seeds and subjects as the paper reports them. The paper does not "
    "define its metrics (correlation per image or pooled, SSIM windowed or global); its MSE is on the [0, 1] pixel "
    "scale (judging by its code). DGMM is transductive -- at test time each trial's latent is pulled toward its "
    "nearest training trials in fMRI space -- and averages many decoded samples; its voxels were kept by encoding R² "
    "> 0 under 10-fold CV on the training data."
)

SOURCE_SHORT = "Du, Du & He, IJCNN 2017 (arXiv:1704.07575), Table 2"

OUR_METRICS = (
    "This study: images in [0, 1]; PSNR = 10 log10(1 / MSE) per image; SSIM windowed (Gaussian, sigma 1.5, "
    "scikit-image, data range 1) per image; pixel r = Pearson r per image; all averaged over the 10 test "
    "images (95% bootstrap CI over images); the official 90/10 split; no test fMRI is used except as the input "
    "of its own reconstruction."
)

# Table 2 of arXiv:1704.07575, as quoted in shared/report/LITERATURE.md: (mean, std) or a plain value.
PUBLISHED: tuple[dict, ...] = (
    {"method": "Miyawaki et al. (fixed multi-scale bases)", "pixel_r": (0.767, 0.033), "mse": (0.042, 0.007),
     "ssim": (0.466, 0.030), "acc_svm": 1.00, "acc_cnn": 1.00},
    {"method": "BCCA (Fujiwara et al.)", "pixel_r": (0.411, 0.157), "mse": (0.119, 0.017), "ssim": (0.192, 0.035),
     "acc_svm": 1.00, "acc_cnn": 1.00},
    {"method": "DCCAE-A", "pixel_r": (0.548, 0.044), "mse": (0.074, 0.010), "ssim": (0.358, 0.097), "acc_svm": 0.900,
     "acc_cnn": (0.967, 0.047)},
    {"method": "DCCAE-S", "pixel_r": (0.511, 0.057), "mse": (0.080, 0.016), "ssim": (0.552, 0.088), "acc_svm": 1.00,
     "acc_cnn": 1.00},
    {"method": "De-CNN (linear regression to feature maps + deconvolution net)", "pixel_r": (0.799, 0.062),
     "mse": (0.038, 0.010), "ssim": (0.613, 0.043), "acc_svm": 1.00, "acc_cnn": 1.00},
    {"method": "DGMM", "pixel_r": (0.803, 0.063), "mse": (0.037, 0.014), "ssim": (0.645, 0.054), "acc_svm": 1.00,
     "acc_cnn": 1.00},
)
BEST_PUBLISHED = "DGMM"

# The report's "Literature comparison" table (claim 15), quoted; the report names no paper for these rows.
# Column names are a reader's ("PSNR", "SSIM"); ranges are written with an en dash (the report's "15-20 dB").
REPORT_LITERATURE: tuple[dict, ...] = (
    {"method": "Basic CNN", "dataset size": "1000+", "PSNR": "15–20 dB", "SSIM": "0.3–0.5",
     "source": "the analysed report, 'Benchmarking context' (no paper cited)"},
    {"method": "Advanced GAN", "dataset size": "5000+", "PSNR": "20–25 dB", "SSIM": "0.5–0.7",
     "source": "the analysed report, 'Benchmarking context' (no paper cited)"},
)

_COLUMNS = {"pixel_r": "PCC", "mse": "MSE", "ssim": "SSIM", "acc_svm": "digit accuracy (SVM)",
            "acc_cnn": "digit accuracy (CNN)"}


def _fmt(v) -> str:
    if isinstance(v, tuple):
        return f"{v[0]:.3f} ± {v[1]:.3f}"
    return f"{v:.3f}"


def caveats_markdown(*, n_unpaired: int | None = None, n_test: int | None = None, method: str = BEST_PUBLISHED) -> str:
    """The caveats of any comparison with the published table, as Markdown prose (one paragraph of sentences).

    Parameters
    ----------
    n_unpaired : int, optional
        When given, the paragraph adds that this study's image-prior models and autoencoder baseline learn from this
        many unpaired handwritten digits, which the published methods did not use.
    n_test : int, optional
        The number of test trials this study averages over (said when given).
    method : str
        The published method named (default DGMM).

    Returns
    -------
    str
        Markdown: where the numbers come from (quoted, not measured) and why the comparison is loose. Every number
        in it is quoted from the paper.

    Raises
    ------
    KeyError
        If ``method`` is not a row of :data:`PUBLISHED`.
    """
    _published(method, "pixel_r")  # the method must exist
    over = f"over the {n_test} test images" if n_test is not None else "over the test images"
    parts = [
        f"{method}'s numbers are quoted from {SOURCE_SHORT}, not measured here: the paper gives each as a mean ± "
        "standard deviation over 20 random seeds and subjects, while this study gives a mean with a 95% bootstrap CI "
        f"{over}.",
        "The metrics are not defined alike: the paper does not say whether its correlation is per image or pooled, "
        "or whether its SSIM is windowed or global (its MSE appears to be on the [0, 1] pixel scale, judging by its "
        "code), so equal names need not mean equal measurements.",
        f"{method} is transductive -- at test time each trial's latent is pulled toward its nearest training trials in "
        "fMRI space -- and averages many decoded samples; its voxels were chosen by encoding R² > 0 under 10-fold "
        "cross-validation on the training data.",
    ]
    if n_unpaired is not None:
        parts.append(f"This study's image-prior models and its autoencoder baseline also learn from {n_unpaired:,} "
                     f"unpaired handwritten digits, which {method} and the other published methods did not use.")
    parts.append("A difference from the published value is therefore a loose comparison, never a verdict on the "
                 "method.")
    return " ".join(parts)


def published_table() -> pd.DataFrame:
    """:data:`PUBLISHED` as printed (mean ± std over 20 seeds), one row per method; the source is :data:`SOURCE`."""
    rows = {e["method"]: {col: _fmt(e[k]) for k, col in _COLUMNS.items()} for e in PUBLISHED}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("published method (quoted)")


def _published(method: str, metric: str) -> float:
    for e in PUBLISHED:
        if e["method"] == method:
            v = e[metric]
            return v[0] if isinstance(v, tuple) else v
    raise KeyError(f"no published row {method!r}; rows: {[e['method'] for e in PUBLISHED]}")


def comparison_table(name: str, pooled: dict, *, method: str = BEST_PUBLISHED) -> pd.DataFrame:
    """One of our models beside a published method, metric by metric, in separate quoted and measured columns.

    Parameters
    ----------
    name : str
        Our model's name.
    pooled : dict
        ``{metric: {"mean", "ci_low", "ci_high"}}`` on the test trials (seeds pooled), with pixel_r, mse, ssim.
    method : str
        A method of :data:`PUBLISHED` (default DGMM, the best published).

    Returns
    -------
    DataFrame
        One row per metric (PCC, MSE, SSIM): the published value (quoted), ours (measured, 95% CI), and whether ours
        is better under our definitions: "higher" / "lower" MSE when the whole CI is on the better side, else
        "not separable (CI contains it)".
    """
    rows = {}
    for m, better_high in (("pixel_r", True), ("mse", False), ("ssim", True)):
        pub = _published(method, m)
        p = pooled[m]
        lo, hi = p["ci_low"], p["ci_high"]
        if (lo > pub) if better_high else (hi < pub):
            verdict = "ours better (whole 95% CI on the better side)"
        elif (hi < pub) if better_high else (lo > pub):
            verdict = "published better (whole 95% CI on the worse side)"
        else:
            verdict = "not separable (CI contains the published value)"
        rows[_COLUMNS[m]] = {f"{method}, as published (quoted)": _published(method, m),
                             f"{name}, measured (our definitions)": f"{p['mean']:.3f} [{lo:.3f}, {hi:.3f}]",
                             "comparison": verdict}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("metric")
