"""Metric and training curves: CIs per model, training losses, sensitivity, the phase trajectory, sweep heatmaps,
scaling curves, the prior's training and observation model.
"""
from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import ticker as mticker

from ..names import metric_label, model_label
from .style import PAGE_WIDTH, _keyed, _legend_below, _nothing_to_plot, _plain, _width, data_ticks


# ----------------------------------------------------------------------------- comparisons


def _pooled(res: Mapping, metric: str) -> tuple[float, float, float]:
    """(mean, ci_low, ci_high) of ``res[metric]``, NaN where missing (drawn as a gap, never as a wrong value)."""
    m = res.get(metric) if isinstance(res, Mapping) else None
    if not isinstance(m, Mapping):
        return (np.nan, np.nan, np.nan)

    def num(k):
        v = m.get(k)
        try:
            return float(v)
        except (TypeError, ValueError):
            return np.nan

    return num("mean"), num("ci_low"), num("ci_high")


def metric_ci_plot(results: dict[str, dict], *, metrics=("psnr", "ssim", "pixel_r", "id2_within"),
                   reference: dict[str, tuple[str, float]] | None = None, empty_note: str | None = None):
    """Means with 95% CI bars, one panel per metric, one row per model (reader names).

    ``reference`` maps metric -> (label, value) drawn as a dashed vertical line (e.g. the best baseline). A model
    without a metric (or with a non-finite one) has no dot in that panel. Returns None (and shows a note) when
    ``results`` is empty.
    """
    names = list(results or {})
    if not names or not metrics:
        return _nothing_to_plot("no models were given" if not names else "no metrics were given", empty_note)
    fig, axes = plt.subplots(1, len(metrics), figsize=(PAGE_WIDTH, 0.3 * len(names) + 1.0), sharey=True,
                             squeeze=False)
    y = np.arange(len(names))
    for ax, k in zip(axes[0], metrics):
        mean, lo, hi = (np.array(v, dtype=float) for v in zip(*(_pooled(results[n], k) for n in names)))
        ok = np.isfinite(mean) & np.isfinite(lo) & np.isfinite(hi)
        ax.errorbar(mean[ok], y[ok], xerr=[mean[ok] - lo[ok], hi[ok] - mean[ok]], fmt="o", ms=4, capsize=2)
        if reference and k in reference:
            ax.axvline(reference[k][1], ls="--", c="0.5", lw=1)
        ax.set_xlabel(metric_label(k, short=True))
        ax.xaxis.set_major_locator(mticker.MaxNLocator(nbins=3))  # narrow panels: "0.55 0.60 0.65" labels touched
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_yticks(y)
    axes[0, 0].set_yticklabels([model_label(n) for n in names])
    axes[0, 0].invert_yaxis()
    if reference:
        labels = sorted({lab for lab, _ in reference.values()})
        fig.supxlabel("dashed: " + ", ".join(labels), fontsize=9)
    return fig


def training_curves(results: dict, *, stages: tuple[str, ...] | None = None, empty_note: str | None = None):
    """Train (solid) and validation (dashed) loss per epoch for each variant (first seed), one panel per stage.

    ``results`` maps names to :class:`ldm_core.study.runs.VariantResult`; their ``history`` holds aligned per-epoch
    lists ``stage``, ``train_loss`` and ``val_loss``. One legend, below the panels. Returns None (and shows a
    note) when there is no variant, no run, or no epoch of the requested stages.
    """
    results = {n: r for n, r in (results or {}).items() if getattr(r, "runs", None)}
    all_stages = []
    for res in results.values():
        for s in res.runs[0].history.get("stage", []):
            if s not in all_stages:
                all_stages.append(s)
    stages = tuple(s for s in all_stages if stages is None or s in stages)
    if not stages:
        return _nothing_to_plot("no training history" + (f" of the stages {', '.join(stages)}" if stages else ""),
                                empty_note)
    fig, axes = plt.subplots(1, len(stages), figsize=(PAGE_WIDTH, 2.6), squeeze=False, layout="constrained")
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
    axes[0, 0].set_ylabel("loss (solid: train,\ndashed: validation)")
    _legend_below(fig)
    return fig


def _sensitivity_panel(ax, pts: list, intervals: dict | None, *, marks: dict, log_x: bool, ylabel: str,
                       ci_label: str) -> None:
    """One series' panel: its points joined by a line, its intervals ({x: (low, high)}) as bars, the marks."""
    xs = np.array([x for x, _ in pts], dtype=float)
    ys = np.array([np.nan if y is None else y for _, y in pts], dtype=float)
    ax.plot(xs, ys, "o-")
    if intervals:
        bx = np.array(list(intervals), dtype=float)
        blo, bhi = (np.array(v, dtype=float) for v in zip(*intervals.values()))
        ax.errorbar(bx, (blo + bhi) / 2, yerr=(bhi - blo) / 2, fmt="none", ecolor="C0", elinewidth=1, capsize=2.5,
                    label=ci_label)
    if log_x:
        ax.set_xscale("log")
    for mlabel, xv in marks.items():
        ax.axvline(float(xv), ls=":", c="C3", lw=1, label=mlabel)
    data_ticks(ax, xs)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def sensitivity_plot(series: dict[str, dict[float, float]], *, xlabel: str,
                     ylabel_by_series: dict[str, str] | None = None, log_x: bool = True,
                     marks: dict[str, float] | None = None,
                     ci: dict[str, dict[float, tuple[float, float]]] | None = None, ci_label: str = "95% CI",
                     empty_note: str | None = None):
    """Validation score(s) against a swept value, one panel per series, each point at its own x.

    Parameters
    ----------
    series : dict of str -> {x: y}
        Series name (e.g. "PSNR (dB)") -> the score at each swept value, in any order (sorted by x here). A
        non-finite y is left out (a gap in the line).
    xlabel : str
        What was swept (with units); shared by the panels.
    ylabel_by_series : dict of str -> str, optional
        The y label of a series' panel (default: the series' name).
    log_x : bool
        Log x axis. The ticks are the swept values as plain numbers, never overlapping.
    marks : dict of str -> float, optional
        Label -> x drawn as a dotted vertical line (e.g. the value the main comparison used).
    ci : dict of str -> {x: (low, high)}, optional
        Interval per series and x, drawn as a vertical bar (a flat curve of 0.07 dB then shows as flat); an x
        without an interval, or with a non-finite bound, has no bar. One legend entry ``ci_label``.
    empty_note : str, optional
        The reason shown when ``series`` is empty, or every series is (no figure, a one-line note).

    Returns
    -------
    matplotlib Figure, or None when there is no point to draw.

    Raises
    ------
    ValueError
        If a series is not a mapping or is empty while others are not, an x is not a finite number or occurs twice,
        or (``log_x``) an x or a mark is <= 0; if ``ci`` names a series not drawn or an x the series lacks, or an
        interval is not a (low, high) pair with low <= high. The message names the series.
    """
    if not isinstance(series, Mapping):
        raise TypeError("sensitivity_plot(series, *, xlabel, ...) takes series as {name: {x: y}}; the separate list "
                        f"of x values is gone: pass {{name: dict(zip(xs, ys))}} (got {type(series).__name__})")
    if not series or all(isinstance(s, Mapping) and not s for s in series.values()):
        return _nothing_to_plot("no series were given" if not series else "no series has a point", empty_note)
    points = {name: _keyed(name, s, log=log_x) for name, s in series.items()}
    for mlabel, xv in (marks or {}).items():
        if log_x and not float(xv) > 0:
            raise ValueError(f"mark {mlabel!r} at x = {xv!r} cannot be drawn on a log axis (pass log_x=False)")
    bars = _intervals(ci, points, log_x=log_x)
    fig, panels, axes = _panel_figure(1, len(points), figsize=(_width(len(points), 2.4), 2.3))
    for ax, (name, pts) in zip(axes[0], points.items()):
        _sensitivity_panel(ax, pts, bars.get(name), marks=marks or {}, log_x=log_x,
                           ylabel=(ylabel_by_series or {}).get(name, name), ci_label=ci_label)
    _shared_xlabel(panels, axes[0], xlabel)
    _legend_below(fig)
    return fig


def _intervals(ci, points: dict, *, log_x: bool) -> dict[str, dict[float, tuple[float, float]]]:
    """``sensitivity_plot``'s ``ci`` checked against its series: {series: {x: (low, high)}} with finite bounds only."""
    if ci is None:
        return {}
    if not isinstance(ci, Mapping):
        raise ValueError(f"ci must map a series name to {{x: (low, high)}}; got {type(ci).__name__}")
    out = {}
    for name, intervals in ci.items():
        if name not in points:
            raise ValueError(f"ci names the series {name!r}, which is not drawn (series: {list(points)})")
        xs = {x for x, _ in points[name]}
        out[name] = {}
        for x, pair in (_keyed(name, intervals, log=log_x, what="ci of series")
                        if not isinstance(intervals, Mapping) or intervals else []):
            if x not in xs:
                raise ValueError(f"ci of series {name!r}: x value {_plain(x)} is not among the series' x values")
            try:
                lo, hi = (float(v) for v in pair)
            except (TypeError, ValueError):
                raise ValueError(f"ci of series {name!r} at x = {_plain(x)}: expected a (low, high) pair, got "
                                 f"{pair!r}") from None
            if np.isfinite(lo) and np.isfinite(hi):
                if lo > hi:
                    raise ValueError(f"ci of series {name!r} at x = {_plain(x)}: low {lo:g} is above high {hi:g}")
                out[name][x] = (lo, hi)
    return out


def _expected_range(value) -> tuple[float, float] | None:
    """(low, high) of a quoted range, or None when the stage has none (None, NaN, a malformed value)."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return (lo, hi) if np.isfinite(lo) and np.isfinite(hi) else None


def trajectory_plot(traj: pd.DataFrame, *, metrics=("psnr", "ssim", "pixel_r"),
                    references: dict[str, dict[str, float]] | None = None, empty_note: str | None = None):
    """Measured mean and 95% CI per stage (dots) over the report's expected range (grey bars, quoted).

    ``traj`` is :func:`ldm_core.study.ledger.trajectory`'s table (a DataFrame, or its records); each row is drawn on the
    line of its own ``stage`` label, top to bottom in the table's order. ``references`` maps a label (e.g. "latent
    ridge") to ``{metric: value}``, drawn as dashed lines so a reader can compare each stage with that baseline. A
    stage without an expected range has no grey bar; a metric missing from the table has no panel. Returns None
    (and shows a note) when there is no stage or no metric to draw.
    """
    traj = pd.DataFrame(traj) if not isinstance(traj, pd.DataFrame) else traj
    metrics = [m for m in metrics if m in traj.columns]
    if traj.empty or "stage" not in traj.columns or not metrics:
        return _nothing_to_plot("the trajectory has no stages" if traj.empty or "stage" not in traj.columns
                                else "the trajectory has none of the metrics", empty_note)
    traj = traj.reset_index(drop=True)
    fig, axes = plt.subplots(1, len(metrics), figsize=(PAGE_WIDTH, 0.32 * len(traj) + 1.9), sharey=True,
                             squeeze=False, layout="constrained")
    y = np.arange(len(traj))
    for ax, m in zip(axes[0], metrics):
        first = True
        for i, rng in enumerate(traj[f"{m}_expected"] if f"{m}_expected" in traj.columns else []):
            rng = _expected_range(rng)
            if rng is not None:
                ax.barh(i, rng[1] - rng[0], left=rng[0], height=0.6, color="0.87",
                        label="report's expectation" if first else None)
                first = False
        mean = traj[m].to_numpy(dtype=float)
        lo = traj[f"{m}_lo"].to_numpy(dtype=float) if f"{m}_lo" in traj.columns else mean
        hi = traj[f"{m}_hi"].to_numpy(dtype=float) if f"{m}_hi" in traj.columns else mean
        ok = np.isfinite(mean) & np.isfinite(lo) & np.isfinite(hi)
        ax.errorbar(mean[ok], y[ok], xerr=[mean[ok] - lo[ok], hi[ok] - mean[ok]], fmt="o", ms=4, c="C0", capsize=2,
                    label="measured (test, 95% CI)", zorder=3)  # above the reference lines, which cross the dots
        for j, (lab, vals) in enumerate((references or {}).items()):
            if m in vals and np.isfinite(vals[m]):
                ax.axvline(vals[m], ls="--", lw=1, c=f"C{j + 1}", label=lab, alpha=0.7, zorder=1)
        ax.set_xlabel(metric_label(m, short=True))
        ax.xaxis.set_major_locator(mticker.MaxNLocator(nbins=3))  # few ticks: the panels are narrow
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_yticks(y)
    axes[0, 0].set_yticklabels([str(s) for s in traj["stage"]])
    axes[0, 0].invert_yaxis()
    handles, labels = axes[0, -1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, frameon=False)  # below: the panels keep the width
    return fig


def sweep_heatmaps(scores: dict, *, rows: list, cols: list, panels: list, row_label: str, col_label: str,
                   panel_label: str, value_label: str, fmt: str = ".3f", empty_note: str | None = None):
    """One seaborn heat map per panel value: ``scores[(row, col, panel)]`` -> value, one shared colour scale.

    The colour bar (right of the last panel) is labelled ``value_label``; the best cell over all panels (highest
    value) is outlined; missing cells are blank. Returns None (and shows a note) when there are no scores, rows,
    columns or panels.
    """
    import seaborn as sns
    from matplotlib.patches import Rectangle

    rows, cols, panels = list(rows or []), list(cols or []), list(panels or [])
    if not scores or not rows or not cols or not panels:
        return _nothing_to_plot("the sweep has no scores" if not scores else "the sweep grid is empty", empty_note)
    grid_keys = [(r, c, p) for p in panels for r in rows for c in cols]
    vals = [float(scores[k]) for k in grid_keys if k in scores and np.isfinite(scores[k])]
    vmin, vmax = (min(vals), max(vals)) if vals else (0.0, 1.0)
    if vmin == vmax:
        vmin, vmax = vmin - 0.5, vmax + 0.5  # one value: a visible colour, a readable bar
    best = max((k for k in grid_keys if k in scores and np.isfinite(scores[k])), key=lambda k: scores[k],
               default=None)
    fig, axes = plt.subplots(1, len(panels), figsize=(_width(len(panels), 2.5), 0.4 * len(rows) + 1.4), squeeze=False)
    for j, (ax, pv) in enumerate(zip(axes[0], panels)):
        grid = pd.DataFrame([[scores.get((r, c, pv), np.nan) for c in cols] for r in rows],
                            index=[f"{r:g}" if isinstance(r, float) else str(r) for r in rows],
                            columns=[str(c) for c in cols], dtype=float)
        last = j == len(panels) - 1
        sns.heatmap(grid, ax=ax, annot=True, fmt=fmt, vmin=vmin, vmax=vmax, cmap="viridis", cbar=last,
                    cbar_kws={"label": value_label} if last else None, annot_kws={"fontsize": 8})
        if best is not None and best[2] == pv:
            ax.add_patch(Rectangle((cols.index(best[1]), rows.index(best[0])), 1, 1, fill=False, ec="red", lw=2))
        ax.set_title(f"{panel_label} = {pv}")
        ax.set_xlabel(col_label)
        ax.set_ylabel(row_label if j == 0 else "")
    return fig


def scaling_plot(curves: dict[str, dict], *, metrics=("psnr", "ssim", "pixel_r"), bands: dict | None = None,
                 band_label: str = "", xlabel: str = "training trials", log_x: bool = True,
                 references: dict[str, dict[str, float]] | None = None, empty_note: str | None = None):
    """Metric against a size (trials, images) with 95% CI bars, one line per model, one panel per metric.

    Parameters
    ----------
    curves : dict of str -> {size: {metric: {"mean", "ci_low", "ci_high"}}}
        :func:`ldm_core.study.benchmark.learning_curve` / :func:`ldm_core.study.prior_study.prior_size_curve`'s
        output, sizes in any order (numeric strings too); a size without a finite value of the metric is left out.
    bands : dict of metric -> (low, high), optional
        A (quoted) range shaded grey, labelled ``band_label``.
    log_x : bool
        Log size axis; ignored (linear) when a size is 0. The ticks are the sizes as plain numbers, never
        overlapping. Lines of several models are nudged sideways (2 % of a step) so their CI bars stay apart.
    references : dict of str -> {metric: value}, optional
        Dashed horizontal lines (e.g. a baseline). One legend (curves, band, references) below the panels.
    empty_note : str, optional
        The reason shown when ``curves`` is empty, or every curve is (no figure, a one-line note).

    Raises
    ------
    ValueError
        If a curve is empty while others are not, or a size is not a finite number >= 0 (negative on a log axis),
        or occurs twice; the message names the curve.
    """
    if not curves or all(isinstance(c, Mapping) and not c for c in curves.values()):
        return _nothing_to_plot("no curves were given" if not curves else "no curve has a point", empty_note)
    points = {name: _keyed(name, c, log=False, what="curve") for name, c in curves.items()}
    sizes = sorted({x for pts in points.values() for x, _ in pts})
    if min(sizes) < 0:
        bad = next(name for name, pts in points.items() if pts[0][0] < 0)
        raise ValueError(f"curve {bad!r}: a size is negative ({_plain(min(sizes))})")
    log_x = log_x and min(sizes) > 0
    fig, panels, axes = _panel_figure(1, len(metrics), figsize=(PAGE_WIDTH, 2.5))
    span = (max(sizes) - min(sizes)) or 1.0
    for ax, m in zip(axes[0], metrics):
        if bands and m in bands:
            lo, hi = bands[m]
            ax.axhspan(lo, hi, color="0.88", label=band_label or None)
        for j, (lab, vals) in enumerate((references or {}).items()):
            if m in vals:
                ax.axhline(vals[m], ls="--", lw=1, c=f"C{len(curves) + j}", label=lab)
        for i, (name, pts) in enumerate(points.items()):
            xs = np.array([x for x, _ in pts], dtype=float)
            mean, lo, hi = (np.array(v, dtype=float) for v in zip(*(_pooled(p, m) for _, p in pts)))
            ok = np.isfinite(mean)
            lo, hi = np.where(np.isfinite(lo), lo, mean), np.where(np.isfinite(hi), hi, mean)
            off = 0.02 * (i - (len(points) - 1) / 2)
            x = xs * (1 + off) if log_x else xs + off * span
            ax.errorbar(x[ok], mean[ok], yerr=[mean[ok] - lo[ok], hi[ok] - mean[ok]], fmt="o-", ms=4, capsize=2,
                        c=f"C{i % 10}", label=model_label(name))
        if log_x:
            ax.set_xscale("log")
        data_ticks(ax, sizes)
        ax.set_ylabel(metric_label(m, short=True))
        ax.grid(alpha=0.3)
    _shared_xlabel(panels, axes[0], xlabel)
    _legend_below(fig)
    return fig


def _panel_figure(nrows: int, ncols: int, *, figsize, **kw):
    """(figure, panels, axes): a constrained-layout figure whose panels sit in one subfigure.

    The subfigure carries the panels' shared x label (:func:`_shared_xlabel`), so that a legend below the panels
    (:func:`_legend_below`, on the figure) comes under that label instead of on top of it: constrained layout does
    not stack a figure's supxlabel and its outside legend. ``figure.axes`` lists the panels as usual; the shared
    label is the middle panel's x label (:func:`_shared_xlabel`).
    """
    fig = plt.figure(figsize=figsize, layout="constrained")
    panels = fig.subfigures(1, 1)
    axes = panels.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, panels, axes


def _shared_xlabel(fig, axes, xlabel: str) -> None:
    """One x label under a row of panels that share it (a label per panel overlaps its neighbours).

    The label is the middle panel's own x label (for an even count, the left-middle panel's, moved to the gap between
    the two middle panels), not the subfigure's ``supxlabel``: constrained layout places an axis label below that
    axis's tick labels however :class:`ldm_core.study.plots.DataTickFormatter` angles them at draw time, while it
    left a ``supxlabel`` on top of angled tick labels.
    """
    axes = list(axes)
    mid = axes[(len(axes) - 1) // 2]
    mid.set_xlabel(xlabel)
    if len(axes) > 1 and len(axes) % 2 == 0:
        mid.xaxis.label.set_x(1.08)  # about half the gap between panels beyond the panel's right edge (axes units)


def prior_training_curves(histories: dict[str, dict], *, empty_note: str | None = None):
    """Training losses of image priors: the VAE's negative ELBO (left) and the denoiser's MSE (right) per step.

    ``histories`` maps a name to :attr:`ldm_core.prior.ImagePrior.history` (``vae_loss``, ``vae_log_every``,
    ``diffusion_loss``, ``diffusion_log_every``): losses averaged over blocks of steps. Returns None (and shows a
    note) when no history holds a loss.
    """
    histories = histories or {}
    if not any(len(h.get(f"{k}_loss", []) or []) for h in histories.values() for k in ("vae", "diffusion")):
        return _nothing_to_plot("no training losses were recorded", empty_note)
    fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 2.4), squeeze=False, layout="constrained")
    for i, (name, h) in enumerate(histories.items()):
        for ax, key in zip(axes[0], ("vae", "diffusion")):
            y = np.asarray(h.get(f"{key}_loss", []) or [], dtype=float)
            if len(y):
                x = (np.arange(len(y)) + 1) * int(h.get(f"{key}_log_every") or 1)
                ax.plot(x, y, lw=1, c=f"C{i % 10}", label=model_label(name))
    axes[0, 0].set_title("VAE")
    axes[0, 0].set_ylabel("negative ELBO (nats per image)")
    axes[0, 1].set_title("latent diffusion")
    axes[0, 1].set_ylabel("denoising MSE")
    for ax in axes[0]:
        ax.set_xlabel("optimiser step")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    _legend_below(fig)
    return fig


def observation_plot(slope: np.ndarray, noise: np.ndarray, r2: np.ndarray, *, empty_note: str | None = None):
    """Per latent dimension: the map's cross-validated slope lambda, noise sigma and R² (stage-2 calibration).

    Three panels stacked over the page width, sharing the dimension axis (each dimension keeps its label); a line at
    0 (an R² below it: the map predicts that dimension worse than its mean). The three arrays hold one value per
    latent dimension (numbered from 1). Returns None (and shows a note) when they are empty.

    Raises
    ------
    ValueError
        If the three arrays differ in length.
    """
    slope, noise, r2 = (np.asarray(v, dtype=float).ravel() for v in (slope, noise, r2))
    if not (len(slope) == len(noise) == len(r2)):
        raise ValueError(f"slope, noise and r2 need one value per latent dimension each; got lengths "
                         f"{len(slope)}, {len(noise)}, {len(r2)}")
    d = len(slope)
    if d == 0:
        return _nothing_to_plot("the map has no latent dimensions", empty_note)
    fig, axes = plt.subplots(3, 1, figsize=(PAGE_WIDTH, 3.9), sharex=True, squeeze=False, layout="constrained")
    for ax, vals, label in zip(axes[:, 0], (slope, noise, r2), ("slope λ", "noise σ\n(code std units)",
                                                                  "cross-validated\nR²")):
        ax.bar(np.arange(1, d + 1), vals, color="C0")
        ax.axhline(0.0, c="0.3", lw=0.8)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    data_ticks(axes[0, 0], np.arange(1, d + 1))  # shared by the three panels
    axes[-1, 0].set_xlabel("latent dimension")
    return fig
