"""Figures and tables shared by the chapters (matplotlib / seaborn / pandas), sized for the book's page.

The book's text column is about 7 inches wide; figures are drawn at that width or less (:data:`PAGE_WIDTH`) with
10-point text, so that they are read at 100 % rather than shrunk, and every figure with several curves puts its
legend outside the axes. Names come from :mod:`ldm_core.names`. Tables of metrics put each mean over its 95% CI
(:func:`ci_table`), so a cell never wraps over several lines.
"""
from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .data import LABEL_NAMES
from .names import METRIC_LABELS, format_p, metric_label, model_label

__all__ = ["PAGE_WIDTH", "use_book_style", "image_grid", "metrics_table", "ci_table", "metric_ci_plot",
           "training_curves", "sensitivity_plot", "trajectory_plot", "sweep_heatmaps", "scaling_plot",
           "prior_training_curves", "observation_plot", "verdict_bars",
           "ladder_plot", "sampler_diagnosis_plot", "neighbour_correlation_plot",
           "METRIC_LABELS"]

PAGE_WIDTH = 7.0  # inches: the book's text column


def use_book_style() -> None:
    """matplotlib settings of the book: 10-point text, 110 dpi, no top/right spines, tight layout by default."""
    mpl.rcParams.update({
        "figure.dpi": 110, "savefig.dpi": 110, "font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10,
        "xtick.labelsize": 9, "ytick.labelsize": 9, "legend.fontsize": 9, "legend.frameon": False,
        "axes.spines.top": False, "axes.spines.right": False, "figure.constrained_layout.use": True,
    })


def _width(n_panels: int, per_panel: float) -> float:
    return min(PAGE_WIDTH, per_panel * n_panels)


def _legend_outside(ax, **kw) -> None:
    """One legend right of ``ax`` with the (unique) labelled artists of every panel of its figure."""
    seen: dict[str, object] = {}
    for a in ax.figure.axes:
        for h, lab in zip(*a.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    if seen:
        ax.legend(list(seen.values()), list(seen), loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **kw)


# ----------------------------------------------------------------------------- images


def image_grid(rows: dict[str, np.ndarray], *, labels: np.ndarray | None = None, max_cols: int = 10,
               class_names: dict[int, str] | None = None, colour_rows: dict[str, str] | None = None):
    """One row per entry of ``rows`` (name -> (N, S, S)), one column per image, upright, at most :data:`PAGE_WIDTH`.

    Parameters
    ----------
    rows : dict of str -> ndarray (N, S, S)
        Images in [0, 1] (grey scale, 0 black), unless the row is in ``colour_rows``.
    labels : ndarray (N,), optional
        Class codes of the columns; titles them with ``class_names`` (default digit69's :data:`LABEL_NAMES`).
    colour_rows : dict of str -> str, optional
        Rows drawn with their own colour scale (0 to the row's maximum) and this colormap, e.g. a per-pixel
        standard deviation, which would be black on the [0, 1] scale.
    """
    class_names = LABEL_NAMES if class_names is None else class_names
    colour_rows = colour_rows or {}
    names = list(rows)
    n = min(max_cols, min(len(v) for v in rows.values()))
    cell = min(0.62, (PAGE_WIDTH - 1.6) / n)
    fig, axes = plt.subplots(len(names), n, figsize=(1.6 + cell * n, 0.2 + cell * len(names)), squeeze=False,
                             layout="constrained")
    for r, name in enumerate(names):
        data = np.asarray(rows[name])
        if name in colour_rows:
            kw = dict(cmap=colour_rows[name], vmin=0, vmax=max(float(data[:n].max()), 1e-6))
        else:
            kw = dict(cmap="gray", vmin=0, vmax=1)
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(data[c], **kw)
            ax.set_xticks([]), ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if c == 0:
                ax.set_ylabel(model_label(name), rotation=0, ha="right", va="center", fontsize=9)
            if r == 0 and labels is not None:
                ax.set_title(class_names.get(int(labels[c]), str(labels[c])), fontsize=9)
    return fig


# ----------------------------------------------------------------------------- tables


def _fmt(m: dict, digits: int) -> str:
    mean, lo, hi = m["mean"], m["ci_low"], m["ci_high"]
    if not np.isfinite(mean):
        return "∞" if mean > 0 else "—"
    return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _digits(metric: str, digits: int) -> int:
    return 2 if metric == "psnr" else digits


def metrics_table(results: dict[str, dict], *, metrics=("psnr", "ssim", "pixel_r", "mse", "id2", "id2_within"),
                  digits: int = 3, with_p: bool = True) -> pd.DataFrame:
    """A plain table, one row per model (reader names): 'mean [95% CI]' per metric, identification p-values."""
    rows = {}
    for name, res in results.items():
        row = {metric_label(k, short=True): _fmt(res[k], _digits(k, digits)) for k in metrics if k in res}
        if with_p:
            for k in ("p_id2", "p_id2_within"):
                if k in res:
                    row[f"p, {metric_label(k[2:], short=True)}"] = format_p(res[k])
        rows[model_label(name)] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def ci_table(results: dict[str, dict], *, metrics=("psnr", "ssim", "pixel_r", "id2", "id2_within"), digits: int = 3,
             index_name: str = "", extra: dict[str, dict] | None = None):
    """A table for the page: one row per model, each cell the mean over its 95% CI in small grey type.

    Parameters
    ----------
    results : dict of str -> {metric: {"mean", "ci_low", "ci_high"}}
    extra : dict of str -> dict, optional
        Further plain columns per model (e.g. "trained on"), shown first.

    Returns
    -------
    pandas Styler
        Renders as HTML in notebooks and in the book; ``.data`` is the DataFrame of plain strings.
    """
    rows = {}
    for name, res in results.items():
        row = dict((extra or {}).get(name, {}))
        for k in metrics:
            if k not in res:
                row[metric_label(k, short=True)] = "—"
                continue
            m = res[k]
            d = _digits(k, digits)
            if not np.isfinite(m["mean"]):
                row[metric_label(k, short=True)] = _fmt(m, d)
            else:
                row[metric_label(k, short=True)] = (f"{m['mean']:.{d}f}<br><span class='ci'>[{m['ci_low']:.{d}f}, "
                                                    f"{m['ci_high']:.{d}f}]</span>")
        rows[model_label(name)] = row
    df = pd.DataFrame.from_dict(rows, orient="index").rename_axis(index_name or None)
    styles = [{"selector": "td", "props": "white-space: nowrap; text-align: right;"},
              {"selector": "th", "props": "text-align: left;"},
              {"selector": ".ci", "props": "color: #777; font-size: 80%;"}]
    return df.style.set_table_styles(styles).format(escape=None)


# ----------------------------------------------------------------------------- comparisons


def metric_ci_plot(results: dict[str, dict], *, metrics=("psnr", "ssim", "pixel_r", "id2_within"),
                   reference: dict[str, tuple[str, float]] | None = None):
    """Means with 95% CI bars, one panel per metric, one row per model (reader names).

    ``reference`` maps metric -> (label, value) drawn as a dashed vertical line (e.g. the best baseline).
    """
    names = list(results)
    fig, axes = plt.subplots(1, len(metrics), figsize=(PAGE_WIDTH, 0.3 * len(names) + 1.0), sharey=True,
                             squeeze=False)
    y = np.arange(len(names))
    for ax, k in zip(axes[0], metrics):
        mean = np.array([results[n][k]["mean"] for n in names], dtype=float)
        lo = np.array([results[n][k]["ci_low"] for n in names], dtype=float)
        hi = np.array([results[n][k]["ci_high"] for n in names], dtype=float)
        ok = np.isfinite(mean) & np.isfinite(lo) & np.isfinite(hi)
        ax.errorbar(mean[ok], y[ok], xerr=[mean[ok] - lo[ok], hi[ok] - mean[ok]], fmt="o", ms=4, capsize=2)
        if reference and k in reference:
            ax.axvline(reference[k][1], ls="--", c="0.5", lw=1)
        ax.set_xlabel(metric_label(k, short=True))
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_yticks(y)
    axes[0, 0].set_yticklabels([model_label(n) for n in names])
    axes[0, 0].invert_yaxis()
    if reference:
        labels = sorted({lab for lab, _ in reference.values()})
        fig.supxlabel("dashed: " + ", ".join(labels), fontsize=9)
    return fig


def training_curves(results: dict, *, stages: tuple[str, ...] | None = None):
    """Train (solid) and validation (dashed) loss per epoch for each variant (first seed), one panel per stage.

    ``results`` maps names to :class:`ldm_core.runs.VariantResult`; their ``history`` holds aligned per-epoch
    lists ``stage``, ``train_loss`` and ``val_loss``. One legend, outside the last panel.
    """
    all_stages = []
    for res in results.values():
        for s in res.runs[0].history["stage"]:
            if s not in all_stages:
                all_stages.append(s)
    stages = tuple(s for s in all_stages if stages is None or s in stages)
    fig, axes = plt.subplots(1, len(stages), figsize=(PAGE_WIDTH, 2.6), squeeze=False)
    for ax, stage in zip(axes[0], stages):
        for i, (name, res) in enumerate(results.items()):
            h = res.runs[0].history
            idx = [k for k, s in enumerate(h["stage"]) if s == stage]
            if not idx:
                continue
            x = np.arange(1, len(idx) + 1)
            c = f"C{i % 10}"
            ax.plot(x, [h["train_loss"][k] for k in idx], c=c, lw=1, label=model_label(name))
            val = np.array([h["val_loss"][k] for k in idx], dtype=float)
            ok = np.isfinite(val)
            if ok.any():
                ax.plot(x[ok], val[ok], c=c, lw=1, ls="--")
        ax.set_title(f"stage: {stage}")
        ax.set_xlabel("epoch")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("loss (solid: train, dashed: validation)")
    _legend_outside(axes[0, -1])
    return fig


def sensitivity_plot(values, scores: dict[str, list[float]], *, xlabel: str, log_x: bool = True,
                     marks: dict[str, float] | None = None):
    """Validation metric(s) against a swept value: ``scores`` maps a metric label to one value per x.

    ``marks`` maps a label to an x drawn as a dotted vertical line (e.g. the value the main comparison used).
    """
    fig, axes = plt.subplots(1, len(scores), figsize=(_width(len(scores), 2.4), 2.3), squeeze=False)
    for ax, (label, ys) in zip(axes[0], scores.items()):
        ax.plot(values, ys, "o-")
        if log_x:
            ax.set_xscale("log")
        for mlabel, xv in (marks or {}).items():
            ax.axvline(xv, ls=":", c="C3", lw=1, label=mlabel)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    _shared_xlabel(fig, axes[0], xlabel)
    if marks:
        _legend_outside(axes[0, -1])
    return fig


def trajectory_plot(traj: pd.DataFrame, *, metrics=("psnr", "ssim", "pixel_r"),
                    references: dict[str, dict[str, float]] | None = None):
    """Measured mean and 95% CI per stage (dots) over the report's expected range (grey bars, quoted).

    ``traj`` is :func:`ldm_core.ledger.trajectory`'s table; ``references`` maps a label (e.g. "latent ridge")
    to ``{metric: value}``, drawn as dashed lines so a reader can compare each stage with that baseline.
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(PAGE_WIDTH, 0.32 * len(traj) + 1.3), sharey=True,
                             squeeze=False)
    y = np.arange(len(traj))
    for ax, m in zip(axes[0], metrics):
        for i, (lo, hi) in enumerate(traj[f"{m}_expected"]):
            ax.barh(i, hi - lo, left=lo, height=0.6, color="0.87", label="report's expectation" if i == 0 else None)
        mean, lo, hi = traj[m].to_numpy(), traj[f"{m}_lo"].to_numpy(), traj[f"{m}_hi"].to_numpy()
        ax.errorbar(mean, y, xerr=[mean - lo, hi - mean], fmt="o", ms=4, c="C0", capsize=2,
                    label="measured (test, 95% CI)")
        for j, (lab, vals) in enumerate((references or {}).items()):
            if m in vals:
                ax.axvline(vals[m], ls="--", lw=1, c=f"C{j + 1}", label=lab)
        ax.set_xlabel(metric_label(m, short=True))
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_yticks(y)
    axes[0, 0].set_yticklabels(traj["stage"])
    axes[0, 0].invert_yaxis()
    _legend_outside(axes[0, -1])
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
    fig, axes = plt.subplots(1, len(panels), figsize=(_width(len(panels), 2.5), 0.4 * len(rows) + 1.4), squeeze=False)
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
    return fig


def scaling_plot(curves: dict[str, dict], *, metrics=("psnr", "ssim", "pixel_r"), bands: dict | None = None,
                 band_label: str = "", xlabel: str = "training trials", log_x: bool = True,
                 references: dict[str, dict[str, float]] | None = None):
    """Metric against a size (trials, images) with 95% CI bars, one line per model, one panel per metric.

    ``curves[model][n][metric]`` is a dict with mean, ci_low, ci_high; ``bands[metric] = (low, high)`` shades a
    (quoted) range labelled ``band_label``; ``references`` maps a label to ``{metric: value}`` (dashed lines).
    A size of 0 is drawn on a linear axis (``log_x`` is then ignored).
    """
    from matplotlib.ticker import ScalarFormatter

    sizes = sorted({n for c in curves.values() for n in c})
    log_x = log_x and min(sizes) > 0
    fig, axes = plt.subplots(1, len(metrics), figsize=(PAGE_WIDTH, 2.5), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        if bands and m in bands:
            lo, hi = bands[m]
            ax.axhspan(lo, hi, color="0.88", label=band_label or None)
        for j, (lab, vals) in enumerate((references or {}).items()):
            if m in vals:
                ax.axhline(vals[m], ls="--", lw=1, c=f"C{len(curves) + j}", label=lab)
        for i, (name, curve) in enumerate(curves.items()):
            ns = sorted(curve)
            mean = np.array([curve[n][m]["mean"] for n in ns])
            lo = np.array([curve[n][m]["ci_low"] for n in ns])
            hi = np.array([curve[n][m]["ci_high"] for n in ns])
            span = (max(sizes) - min(sizes)) or 1
            off = (0.02 * (i - (len(curves) - 1) / 2))
            x = np.array(ns, dtype=float) * (1 + off) if log_x else np.array(ns, dtype=float) + off * span
            ax.errorbar(x, mean, yerr=[mean - lo, hi - mean], fmt="o-", ms=4, capsize=2, c=f"C{i % 10}",
                        label=model_label(name))
        if log_x:
            ax.set_xscale("log")
            ax.get_xaxis().set_major_formatter(ScalarFormatter())
            ax.minorticks_off()
        ax.set_xticks(sizes)
        ax.set_ylabel(metric_label(m, short=True))
        ax.grid(alpha=0.3)
    _shared_xlabel(fig, axes[0], xlabel)
    _legend_outside(axes[0, -1])
    return fig


def _shared_xlabel(fig, axes, xlabel: str) -> None:
    """One x label under a row of panels that share it (a label per panel overlaps its neighbours)."""
    if len(axes) == 1:
        axes[0].set_xlabel(xlabel)
    else:
        fig.supxlabel(xlabel, fontsize=plt.rcParams["axes.labelsize"])


def prior_training_curves(histories: dict[str, dict]):
    """Training losses of image priors: the VAE's negative ELBO (left) and the denoiser's MSE (right) per step.

    ``histories`` maps a name to :attr:`ldm_core.prior.ImagePrior.history` (``vae_loss``, ``vae_log_every``,
    ``diffusion_loss``, ``diffusion_log_every``): losses averaged over blocks of steps.
    """
    fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 2.4), squeeze=False)
    for i, (name, h) in enumerate(histories.items()):
        for ax, key in zip(axes[0], ("vae", "diffusion")):
            y = np.asarray(h.get(f"{key}_loss", []), dtype=float)
            if len(y):
                x = (np.arange(len(y)) + 1) * int(h.get(f"{key}_log_every") or 1)
                ax.plot(x, y, lw=1, c=f"C{i % 10}", label=model_label(name))
    axes[0, 0].set_title("VAE: negative ELBO (nats per image)")
    axes[0, 1].set_title("latent diffusion: denoising MSE")
    for ax in axes[0]:
        ax.set_xlabel("optimiser step")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    _legend_outside(axes[0, -1])
    return fig


def observation_plot(slope: np.ndarray, noise: np.ndarray, r2: np.ndarray):
    """Per latent dimension: the map's cross-validated slope lambda, noise sigma and R² (stage-2 calibration)."""
    d = len(slope)
    fig, axes = plt.subplots(1, 3, figsize=(PAGE_WIDTH, 2.2), sharex=True, squeeze=False)
    for ax, vals, title in zip(axes[0], (slope, noise, r2), ("slope λ", "noise σ (code std units)", "cross-validated R²")):
        ax.bar(np.arange(1, d + 1), vals, color="C0")
        ax.set_title(title)
        ax.set_xlabel("latent dimension")
        ax.grid(axis="y", alpha=0.3)
    return fig


# ----------------------------------------------------------------------------- diagnostics (chapters 01 and 04)


def ladder_plot(results: dict[str, dict], *, groups: dict[str, str], metrics=("psnr", "ssim", "pixel_r"),
                references: dict[str, dict[str, float]] | None = None):
    """Mean and 95% CI per model as horizontal bars, one panel per metric, bars coloured by group.

    Parameters
    ----------
    results : dict of str -> {metric: {"mean", "ci_low", "ci_high"}}
        In the order to draw, top to bottom (reader names via :func:`~ldm_core.names.model_label`).
    groups : dict of str -> str
        Model -> group label (e.g. "cumulative fixes", "leave-one-out"); one colour and one legend entry per group.
    references : dict of str -> {metric: value}, optional
        Baselines drawn as dashed vertical lines, one colour each. One legend (groups and baselines) below the panels.
    """
    names = list(results)
    labels = list(dict.fromkeys(groups[n] for n in names))
    colour = {g: f"C{i}" for i, g in enumerate(labels)}
    fig, axes = plt.subplots(1, len(metrics), figsize=(PAGE_WIDTH, 0.28 * len(names) + 1.6), sharey=True,
                             squeeze=False)
    y = np.arange(len(names))
    for ax, m in zip(axes[0], metrics):
        for g in labels:
            idx = [i for i, n in enumerate(names) if groups[n] == g]
            mean = np.array([results[names[i]][m]["mean"] for i in idx])
            err = np.array([[results[names[i]][m]["mean"] - results[names[i]][m]["ci_low"],
                             results[names[i]][m]["ci_high"] - results[names[i]][m]["mean"]] for i in idx]).T
            ax.barh(y[idx], mean, xerr=err, color=colour[g], alpha=0.8, capsize=2, label=g)
        for j, (lab, vals) in enumerate((references or {}).items()):
            if m in vals:
                ax.axvline(vals[m], ls="--", lw=1, c=f"C{len(labels) + j}", label=lab)
        ax.set_xlabel(metric_label(m, short=True))
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_yticks(y)
    axes[0, 0].set_yticklabels([model_label(n) for n in names])
    axes[0, 0].invert_yaxis()
    handles, labels_ = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels_, loc="outside lower center", ncols=min(len(labels_), 3))
    return fig


def sampler_diagnosis_plot(study):
    """Two panels: each denoiser's x0 error against t beside the exact Gaussian denoiser's, and the size of x_t
    along each sampling run against the forward process.

    Parameters
    ----------
    study : SamplerStudy
        :func:`ldm_core.diagnostics.sampler_study`'s result: ``x0_error_table()`` (index t, one column per model, then
        "exact Gaussian denoiser", drawn dashed grey) and ``trajectories`` ((model, sampler) -> run, each with
        ``forward_rms``). One legend below both panels.
    """
    errors = study.x0_error_table()
    fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 3.0))
    ax = axes[0]
    for i, name in enumerate(errors.columns[:-1]):
        ax.plot(errors.index, errors[name], "o-", ms=3, c=f"C{i}", label=f"x0 error: {model_label(name)}")
    ax.plot(errors.index, errors.iloc[:, -1], "s--", ms=3, c="0.4", label=f"x0 error: {errors.columns[-1]}")
    ax.set_yscale("log")
    ax.set_xlabel("timestep t (noise level)")
    ax.set_ylabel("x0 error / latent variance")
    ax.grid(alpha=0.3)
    ax = axes[1]
    colours = {name: f"C{i}" for i, name in enumerate(errors.columns[:-1])}
    styles = {}
    first = next(iter(study.trajectories.values()))
    ax.plot(first["t"], first["forward_rms"], c="0.4", ls="--", lw=1, label="x_t of the forward process")
    for (name, sampler), tr in study.trajectories.items():
        ls = styles.setdefault(sampler, ("-", ":", "-.")[len(styles) % 3])
        ax.plot(tr["t"], tr["x_t_rms"], c=colours.get(name, "k"), ls=ls, lw=1.5, label=f"x_t: {sampler}" if
                name == errors.columns[0] else None)
    ax.set_yscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("timestep t (sampling runs from 999 to 0)")
    ax.set_ylabel("RMS of x_t (colour: model)")
    ax.grid(alpha=0.3)
    handles, names = [], []
    for a in axes:
        for h, lab in zip(*a.get_legend_handles_labels()):
            handles.append(h), names.append(lab)
    fig.legend(handles, names, loc="outside lower center", ncols=2)
    return fig


def neighbour_correlation_plot(curve: dict[int, dict], *, marks: dict[str, float] | None = None):
    """Mean across-trial correlation of voxels a given distance apart in file order, with the random-pair level.

    ``curve`` is :func:`ldm_core.diagnostics.neighbour_correlation_curve`'s output; ``marks`` maps a label to a
    distance drawn as a dotted vertical line (e.g. the voxels of one token).
    """
    lags = sorted(curve)
    fig, ax = plt.subplots(figsize=(0.62 * PAGE_WIDTH, 2.5))
    ax.plot(lags, [curve[k]["adjacent"] for k in lags], "o-", ms=3, label="voxel pairs this far apart")
    ax.axhline(curve[lags[0]]["random"], ls="--", c="0.5", lw=1, label="random voxel pairs")
    for j, (lab, x) in enumerate((marks or {}).items()):
        ax.axvline(x, ls=":", c=f"C{3 + j}", lw=1.2, label=lab)
    ax.set_xscale("log")
    ax.set_xlabel("distance in file order (voxels)")
    ax.set_ylabel("mean r over trials")
    ax.grid(alpha=0.3)
    _legend_outside(ax)
    return fig


def verdict_bars(counts: dict[str, int]):
    """Horizontal bars: ledger rows per kind of verdict (:func:`ldm_core.ledger.verdict_counts`)."""
    colours = {"confirmed": "C2", "refuted (below the claim)": "C3", "refuted (above the claim)": "C1",
               "inconclusive": "0.6", "untestable": "0.8"}
    names = list(counts)
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH * 0.7, 0.35 * len(names) + 0.8))
    ax.barh(range(len(names)), [counts[n] for n in names], color=[colours.get(n, "C0") for n in names])
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    ax.set_xlabel("rows of the ledger")
    for i, n in enumerate(names):
        ax.text(counts[n] + 0.2, i, str(counts[n]), va="center", fontsize=9)
    return fig
