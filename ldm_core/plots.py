"""Figures and tables shared by the chapters (matplotlib / seaborn / pandas)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .data import LABEL_NAMES

__all__ = ["image_grid", "metrics_table", "metric_ci_plot", "METRIC_LABELS"]

METRIC_LABELS = {
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
    "pixel_r": "pixel r",
    "mse": "MSE",
    "id2": "2-way id.",
    "id2_within": "2-way id. within class",
    "id10": "10-way top-1",
}


def image_grid(rows: dict[str, np.ndarray], *, labels: np.ndarray | None = None, max_cols: int = 10, scale: float = 1.0):
    """One row per entry of ``rows`` (name -> (N, S, S) in [0, 1]), one column per image, upright.

    ``labels`` (N,), if given, titles the columns with the digit names.
    """
    names = list(rows)
    n = min(max_cols, min(len(v) for v in rows.values()))
    fig, axes = plt.subplots(len(names), n, figsize=(scale * 1.1 * n, scale * 1.15 * len(names)), squeeze=False)
    for r, name in enumerate(names):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(rows[name][c], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
            if r == 0 and labels is not None:
                ax.set_title(LABEL_NAMES.get(int(labels[c]), str(labels[c])), fontsize=9)
    fig.tight_layout()
    return fig


def _fmt(m: dict, digits: int) -> str:
    mean, lo, hi = m["mean"], m["ci_low"], m["ci_high"]
    if not np.isfinite(mean):
        return f"{mean}"
    return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def metrics_table(results: dict[str, dict], *, metrics=("psnr", "ssim", "pixel_r", "mse", "id2", "id2_within"),
                  digits: int = 3, with_p: bool = True) -> pd.DataFrame:
    """A table, one row per model: 'mean [95% CI]' for each metric and identification p-values."""
    rows = {}
    for name, res in results.items():
        row = {METRIC_LABELS[k]: _fmt(res[k], 2 if k == "psnr" else digits) for k in metrics if k in res}
        if with_p:
            for k in ("p_id2", "p_id2_within"):
                if k in res:
                    row[f"p ({METRIC_LABELS[k[2:]]})"] = f"{res[k]:.3f}"
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def metric_ci_plot(results: dict[str, dict], *, metrics=("psnr", "ssim", "pixel_r", "id2", "id2_within"), reference: dict | None = None):
    """Means with 95% CI bars, one panel per metric, one row per model; ``reference`` adds dashed lines."""
    names = list(results)
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 0.45 * len(names) + 1.2), sharey=True)
    for ax, k in zip(np.atleast_1d(axes), metrics):
        y = np.arange(len(names))
        mean = np.array([results[n][k]["mean"] for n in names])
        lo = np.array([results[n][k]["ci_low"] for n in names])
        hi = np.array([results[n][k]["ci_high"] for n in names])
        finite = np.isfinite(mean) & np.isfinite(lo) & np.isfinite(hi)
        ax.errorbar(mean[finite], y[finite], xerr=[mean[finite] - lo[finite], hi[finite] - mean[finite]], fmt="o", capsize=3)
        if reference and k in reference:
            ax.axvline(reference[k], ls="--", c="gray", lw=1)
        ax.set_xlabel(METRIC_LABELS[k])
        ax.grid(axis="x", alpha=0.3)
    ax0 = np.atleast_1d(axes)[0]
    ax0.set_yticks(np.arange(len(names)))
    ax0.set_yticklabels(names)
    ax0.invert_yaxis()
    fig.tight_layout()
    return fig


def training_curves(results: dict, *, stages: tuple[str, ...] | None = None):
    """Train and validation loss per epoch for each variant (first seed), one panel per training stage.

    ``results`` maps names to :class:`ldm_core.experiment.VariantResult`; their ``history`` holds aligned
    per-epoch lists ``stage``, ``train_loss`` and ``val_loss``.
    """
    all_stages = []
    for res in results.values():
        for s in res.runs[0].history["stage"]:
            if s not in all_stages:
                all_stages.append(s)
    stages = tuple(s for s in all_stages if stages is None or s in stages)
    fig, axes = plt.subplots(1, len(stages), figsize=(4.2 * len(stages), 3.2), squeeze=False)
    for ax, stage in zip(axes[0], stages):
        for i, (name, res) in enumerate(results.items()):
            h = res.runs[0].history
            idx = [k for k, s in enumerate(h["stage"]) if s == stage]
            if not idx:
                continue
            x = np.arange(1, len(idx) + 1)
            c = f"C{i % 10}"
            ax.plot(x, [h["train_loss"][k] for k in idx], c=c, lw=1, label=f"{name} train")
            val = [h["val_loss"][k] for k in idx]
            if np.any(np.isfinite(val)):
                ax.plot(x, val, c=c, lw=1, ls="--", label=f"{name} val")
        ax.set_title(f"stage: {stage}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def sensitivity_plot(values, scores: dict[str, list[float]], *, xlabel: str, log_x: bool = True):
    """Validation metric(s) against a swept hyperparameter: ``scores`` maps metric label -> one value per x."""
    fig, axes = plt.subplots(1, len(scores), figsize=(3.6 * len(scores), 3), squeeze=False)
    for ax, (label, ys) in zip(axes[0], scores.items()):
        ax.plot(values, ys, "o-")
        if log_x:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
