"""Figures and tables shared by the chapters (matplotlib / seaborn / pandas)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .data import LABEL_NAMES

__all__ = ["image_grid", "metrics_table", "metric_ci_plot", "trajectory_plot", "sweep_heatmaps", "scaling_plot", "METRIC_LABELS"]

METRIC_LABELS = {
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
    "pixel_r": "pixel r",
    "mse": "MSE",
    "id2": "2-way id.",
    "id2_within": "2-way id. within class",
    "id10": "10-way top-1",
}


def image_grid(rows: dict[str, np.ndarray], *, labels: np.ndarray | None = None, max_cols: int = 10, scale: float = 1.0,
               class_names: dict[int, str] | None = None):
    """One row per entry of ``rows`` (name -> (N, S, S) in [0, 1]), one column per image, upright.

    ``labels`` (N,), if given, titles the columns with the class names: ``class_names`` (code -> name, e.g.
    ``Digit69.class_names``; default digit69's :data:`LABEL_NAMES`), the code itself where a code has no name.
    """
    class_names = LABEL_NAMES if class_names is None else class_names
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
                ax.set_title(class_names.get(int(labels[c]), str(labels[c])), fontsize=9)
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


def trajectory_plot(traj: pd.DataFrame, *, metrics=("psnr", "ssim", "pixel_r")):
    """Measured mean and 95% CI per stage (dots) over the report's expected range (grey bars, quoted).

    ``traj`` is :func:`ldm_core.ledger.trajectory`'s table.
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 0.5 * len(traj) + 1.5), sharey=True)
    y = np.arange(len(traj))
    for ax, m in zip(np.atleast_1d(axes), metrics):
        for i, (lo, hi) in enumerate(traj[f"{m}_expected"]):
            ax.barh(i, hi - lo, left=lo, height=0.6, color="0.85", label="report's expectation" if i == 0 else None)
        mean, lo, hi = traj[m].to_numpy(), traj[f"{m}_lo"].to_numpy(), traj[f"{m}_hi"].to_numpy()
        ax.errorbar(mean, y, xerr=[mean - lo, hi - mean], fmt="o", c="C0", capsize=3, label="measured (test, 95% CI)")
        ax.set_xlabel(METRIC_LABELS[m])
        ax.grid(axis="x", alpha=0.3)
    ax0 = np.atleast_1d(axes)[0]
    ax0.set_yticks(y)
    ax0.set_yticklabels(traj["stage"])
    ax0.invert_yaxis()
    ax0.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def sweep_heatmaps(scores: dict, *, rows: list, cols: list, panels: list, row_label: str, col_label: str,
                   panel_label: str, value_label: str, fmt: str = ".3f"):
    """One seaborn heat map per panel value: ``scores[(row, col, panel)]`` -> value, shared colour scale.

    The best cell over all panels (highest value) is outlined; missing cells are blank.
    """
    import seaborn as sns
    from matplotlib.patches import Rectangle

    vals = [v for v in scores.values() if np.isfinite(v)]
    vmin, vmax = (min(vals), max(vals)) if vals else (0.0, 1.0)
    best = max(scores, key=lambda k: scores[k] if np.isfinite(scores[k]) else -np.inf) if vals else None
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels) + 0.8, 0.55 * len(rows) + 1.6), squeeze=False)
    for j, (ax, pv) in enumerate(zip(axes[0], panels)):
        grid = pd.DataFrame([[scores.get((r, c, pv), np.nan) for c in cols] for r in rows],
                            index=[f"{r:g}" if isinstance(r, float) else str(r) for r in rows],
                            columns=[str(c) for c in cols])
        sns.heatmap(grid, ax=ax, annot=True, fmt=fmt, vmin=vmin, vmax=vmax, cmap="viridis", cbar=j == len(panels) - 1,
                    cbar_kws={"label": value_label} if j == len(panels) - 1 else None, annot_kws={"fontsize": 8})
        if best is not None and best[2] == pv:
            ax.add_patch(Rectangle((cols.index(best[1]), rows.index(best[0])), 1, 1, fill=False, ec="red", lw=2))
        ax.set_title(f"{panel_label} = {pv}")
        ax.set_xlabel(col_label)
        ax.set_ylabel(row_label if j == 0 else "")
    fig.tight_layout()
    return fig


def scaling_plot(curves: dict[str, dict], *, metrics=("psnr", "ssim", "pixel_r"), bands: dict | None = None,
                 band_label: str = "", xlabel: str = "training trials"):
    """Metric against training-set size with 95% CI bars, one line per model, one panel per metric.

    ``curves[model][n][metric]`` is a dict with mean, ci_low, ci_high; ``bands[metric] = (low, high)`` shades a
    (quoted) range labelled ``band_label``.
    """
    from matplotlib.ticker import ScalarFormatter

    fig, axes = plt.subplots(1, len(metrics), figsize=(4.0 * len(metrics), 3.2), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        if bands and m in bands:
            lo, hi = bands[m]
            ax.axhspan(lo, hi, color="0.88", label=band_label or None)
        for i, (name, curve) in enumerate(curves.items()):
            ns = sorted(curve)
            mean = np.array([curve[n][m]["mean"] for n in ns])
            lo = np.array([curve[n][m]["ci_low"] for n in ns])
            hi = np.array([curve[n][m]["ci_high"] for n in ns])
            x = np.array(ns, dtype=float) * (1 + 0.02 * (i - (len(curves) - 1) / 2))  # small offset: bars apart
            ax.errorbar(x, mean, yerr=[mean - lo, hi - mean], fmt="o-", capsize=3, c=f"C{i % 10}", label=name)
        ax.set_xscale("log")
        ax.set_xticks(sorted({n for c in curves.values() for n in c}))
        ax.get_xaxis().set_major_formatter(ScalarFormatter())
        ax.minorticks_off()
        ax.set_xlabel(xlabel)
        ax.set_ylabel(METRIC_LABELS[m])
        ax.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig
