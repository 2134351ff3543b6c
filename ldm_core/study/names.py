"""Reader-facing names: one mapping from the study's internal names to what tables and figures print.

Code and results files keep short internal names (``id2_within``, ``class_mean_reference``); every table and
figure of the book goes through :func:`metric_label`, :func:`model_label` and :func:`label_columns`, so one
reader sees one name for one thing everywhere. :func:`format_p` and :func:`display_number` format p-values and
table numbers for a page (no scientific notation).
"""
from __future__ import annotations

import math

import pandas as pd

__all__ = ["METRIC_LABELS", "METRIC_SHORT", "MODEL_LABELS", "FIX_LABELS", "metric_label", "model_label", "fix_label",
           "readable", "label_columns", "format_p", "display_number", "join_words", "ci_text"]

METRIC_LABELS = {
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
    "pixel_r": "pixel correlation r",
    "mse": "MSE",
    "id2": "2-way identification",
    "id2_within": "2-way identification within class",
    "id10": "10-way identification",
    "digit_acc": "class accuracy of a CNN",
    "feature_id2": "2-way identification in CNN features",
    "kid_digit": "KID in CNN features (lower is better)",
}
METRIC_SHORT = {  # column headers of wide tables
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
    "pixel_r": "pixel r",
    "mse": "MSE",
    "id2": "2-way id.",
    "id2_within": "2-way id. within class",
    "id10": "10-way id.",
    "digit_acc": "class acc. (CNN)",
    "feature_id2": "2-way id. (CNN features)",
    "kid_digit": "KID (lower better)",
}
MODEL_LABELS = {
    "uniform_noise": "uniform noise",
    "constant_0.5": "constant grey (0.5)",
    "constant_0": "blank (black)",
    "train_mean": "training-mean image",
    "class_mean_reference": "correct-class mean (reads the test labels)",
    "nearest_fmri_copy": "nearest training trial in fMRI (copy)",
    "ridge": "ridge regression to pixels",
    "pls": "PLS regression to pixels",
    "PLS": "PLS regression to pixels",
    "latent ridge": "ridge to the VAE latent, decoded",
    "original": "original Brain LDM (reproduced)",
    "mlp_original": "the report's MLP encoder",
    "mlp_regularised": "regularised MLP encoder",
    "brain_aware": "attention encoder over voxel groups",
    "rel_change_shuffled_fmri": "relative change with shuffled fMRI",
    "rel_change_other_t": "relative change with another timestep",
    "rel_change_timestep": "relative change with another timestep",
    "grad_norm_fmri": "gradient norm with respect to the fMRI",
}

FIX_LABELS = {  # chapter 01's fixes of the original's defects (diagnostics.LADDER_FIXES), as a phrase in a sentence
    "condition": "passing the fMRI condition to the denoiser",
    "VAE decoder training": "training the VAE decoder",
    "DDIM sampler": "sampling with DDIM instead of re-noising",
    "skip U-Net": "a U-Net with skip connections",
}


def metric_label(metric: str, *, short: bool = False) -> str:
    """Reader name of a metric (``short``: the header of wide tables); unknown names pass through."""
    return (METRIC_SHORT if short else METRIC_LABELS).get(metric, metric)


def model_label(name: str) -> str:
    """Reader name of a model or baseline; names that are already readable pass through."""
    return MODEL_LABELS.get(name, name)


def fix_label(fix: str) -> str:
    """Reader phrase of one of chapter 01's defect fixes; unknown names pass through."""
    return FIX_LABELS.get(fix, fix)


def readable(name: str) -> str:
    """Reader name of anything: a metric, a model, or ``snake_case`` turned into words."""
    if name in METRIC_LABELS:
        return METRIC_LABELS[name]
    if name in MODEL_LABELS:
        return MODEL_LABELS[name]
    return name.replace("_", " ") if "_" in name and " " not in name else name


def label_columns(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with metric columns and model index entries renamed to reader names."""
    out = df.rename(columns=lambda c: metric_label(c, short=True) if isinstance(c, str) else c)
    return out.rename(index=lambda i: model_label(i) if isinstance(i, str) else i)


def format_p(p: float, *, n_perm: int | None = None) -> str:
    """A p-value for a page: "< 0.001" below a thousandth (or "< 1/(n_perm+1)" bound), else three decimals."""
    if p != p:  # NaN
        return "not tested"
    floor = 1.0 / (n_perm + 1) if n_perm else None
    if floor is not None and p <= floor + 1e-12:
        return f"≤ {floor:.2g} (smallest possible)"
    if p < 0.001:
        return "< 0.001"
    return f"{p:.3f}"


def display_number(value: float) -> str:
    """A number for a page table: three significant digits, thousands separators, never scientific notation.

    >>> display_number(16843453.14), display_number(0.04383), display_number(-0.5)
    ('16,843,453', '0.0438', '-0.5')
    """
    v = float(value)
    if v != v:
        return "—"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if v == 0:
        return "0"
    digits = max(0, 2 - math.floor(math.log10(abs(v))))  # three significant digits
    text = f"{v:,.{digits}f}"
    return text.rstrip("0").rstrip(".") if digits else text


def join_words(items, word: str = "and") -> str:
    """Items as prose: "a", "a and b", "a, b and c" ("" for none); ``word`` joins the last two ("or")."""
    items = [str(i) for i in items]
    if not items:
        return ""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" {word} " + items[-1]


def ci_text(c, digits: int, *, sign: bool = False, unit: str = "") -> str:
    """A mean and its 95% CI from a mapping with ``mean``, ``ci_low``, ``ci_high``: "0.684 [0.638, 0.727]";
    ``sign`` writes + or - on every number (a difference), ``unit`` follows the mean ("+0.54 dB [+0.12, +1.08]")."""
    f = f"+.{digits}f" if sign else f".{digits}f"
    return f"{c['mean']:{f}}{unit} [{c['ci_low']:{f}}, {c['ci_high']:{f}}]"
