"""One chapter's figures: the defect ladder and sampler diagnosis (chapter 01), voxel-neighbour correlation, the
verdict bars of the ledger, and the perception-distortion plane (Blau & Michaeli 2018).
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import ticker as mticker
from matplotlib.lines import Line2D

from ..names import metric_label, model_label
from .curves import _pooled
from .style import PAGE_WIDTH, _keyed, _legend_below, _nothing_to_plot, data_ticks


# ----------------------------------------------------------------------------- diagnostics (chapters 01 and 04)


def ladder_plot(results: dict[str, dict], *, groups: dict[str, str], metrics=("psnr", "ssim", "pixel_r"),
                references: dict[str, dict[str, float]] | None = None, empty_note: str | None = None):
    """Mean and 95% CI per model as horizontal bars, one panel per metric, bars coloured by group.

    Parameters
    ----------
    results : dict of str -> {metric: {"mean", "ci_low", "ci_high"}}
        In the order to draw, top to bottom (reader names via :func:`~ldm_core.study.names.model_label`). A missing or
        non-finite metric draws no bar.
    groups : dict of str -> str
        Model -> group label (e.g. "cumulative fixes", "leave-one-out"); one colour and one legend entry per group.
    references : dict of str -> {metric: value}, optional
        Baselines drawn as dashed vertical lines, one colour each. One legend (groups and baselines) below the panels.
    empty_note : str, optional
        The reason shown when ``results`` is empty (no figure, a one-line note).

    Raises
    ------
    ValueError
        If a model has no group.
    """
    names = list(results or {})
    if not names:
        return _nothing_to_plot("no models were given", empty_note)
    missing = [n for n in names if n not in groups]
    if missing:
        raise ValueError(f"ladder_plot: no group for {missing} (groups names {sorted(groups)})")
    labels = list(dict.fromkeys(groups[n] for n in names))
    colour = {g: f"C{i}" for i, g in enumerate(labels)}
    fig, axes = plt.subplots(1, len(metrics), figsize=(PAGE_WIDTH, 0.28 * len(names) + 1.6), sharey=True,
                             squeeze=False)
    y = np.arange(len(names))
    for ax, m in zip(axes[0], metrics):
        for g in labels:
            idx = [i for i, n in enumerate(names) if groups[n] == g]
            mean, lo, hi = (np.array(v, dtype=float) for v in zip(*(_pooled(results[names[i]], m) for i in idx)))
            ok = np.isfinite(mean)
            err = np.array([np.where(np.isfinite(lo), mean - lo, 0.0), np.where(np.isfinite(hi), hi - mean, 0.0)])
            ax.barh(y[idx][ok], mean[ok], xerr=err[:, ok], color=colour[g], alpha=0.8, capsize=2, label=g)
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


def sampler_diagnosis_plot(study, *, empty_note: str | None = None):
    """Two panels: each denoiser's x0 error against t beside the exact Gaussian denoiser's, and the size of x_t
    along each sampling run against the forward process.

    Parameters
    ----------
    study : SamplerStudy
        :func:`ldm_core.study.diagnostics.sampler_study`'s result: ``x0_error_table()`` (index t, one column per model, then
        "exact Gaussian denoiser", drawn dashed grey) and ``trajectories`` ((model, sampler) -> run, each with
        ``t``, ``x_t_rms`` and ``forward_rms``; each run is drawn against its own ``t``). Colour is the model (as in
        the left panel), line style the sampler; the legend keys the samplers in neutral grey, so that no sampler
        key carries one model's colour. One legend below both panels. Returns None (and shows a note) when there
        are no errors and no runs.
    """
    errors = study.x0_error_table() if getattr(study, "errors", None) else None
    trajectories = dict(study.trajectories or {})
    if (errors is None or errors.empty) and not trajectories:
        return _nothing_to_plot("the sampler study has no models", empty_note)
    fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 3.0), layout="constrained")
    ax = axes[0]
    model_cols = list(errors.columns[:-1]) if errors is not None and len(errors.columns) else []
    if errors is not None and not errors.empty:
        errors = errors.sort_index()
        for i, name in enumerate(model_cols):
            ax.plot(errors.index, errors[name], "o-", ms=3, c=f"C{i}", label=f"x0 error: {model_label(name)}")
        ax.plot(errors.index, errors.iloc[:, -1], "s--", ms=3, c="0.4", label=f"x0 error: {errors.columns[-1]}")
        ax.set_yscale("log")
    ax.set_xlabel("timestep t (noise level)")
    ax.set_ylabel("x0 error / latent variance")
    ax.grid(alpha=0.3)
    ax = axes[1]
    colours = {name: f"C{i}" for i, name in enumerate(model_cols)}
    styles = {}
    if trajectories:
        first = next(iter(trajectories.values()))
        order = np.argsort(np.asarray(first["t"]))
        ax.plot(np.asarray(first["t"])[order], np.asarray(first["forward_rms"])[order], c="0.4", ls="--", lw=1,
                label="x_t of the forward process")
        for (name, sampler), tr in trajectories.items():
            ls = styles.setdefault(sampler, ("-", ":", "-.")[len(styles) % 3])
            order = np.argsort(np.asarray(tr["t"]))
            ax.plot(np.asarray(tr["t"])[order], np.asarray(tr["x_t_rms"])[order], c=colours.get(name, "k"), ls=ls,
                    lw=1.5)
        ax.set_yscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("timestep t (sampling runs from 999 to 0)")
    ax.set_ylabel("RMS of x_t (colour: model)")
    ax.grid(alpha=0.3)
    handles, names = [], []
    for a in axes:
        for h, lab in zip(*a.get_legend_handles_labels()):
            handles.append(h), names.append(lab)
    for sampler, ls in styles.items():  # line style = sampler, in neutral grey: colour stays the model's
        handles.append(Line2D([], [], c="0.3", ls=ls, lw=1.5)), names.append(f"x_t: {sampler}")
    if handles:
        fig.legend(handles, names, loc="outside lower center", ncols=2)
    return fig


def neighbour_correlation_plot(curve: dict[int, dict], *, marks: dict[str, float] | None = None,
                               empty_note: str | None = None):
    """Mean across-trial correlation of voxels a given distance apart in file order, with the random-pair level.

    ``curve`` is :func:`ldm_core.study.diagnostics.neighbour_correlation_curve`'s output ({distance: {"adjacent",
    "random"}}, any key order); ``marks`` maps a label to a distance drawn as a dotted vertical line (e.g. the voxels
    of one token). Log distance axis ticked at the smallest and largest measured distance, the powers of ten
    between them and the marks (the tens of measured distances could not all carry a label). Returns None (and shows
    a note) when ``curve`` is empty.

    Raises
    ------
    ValueError
        If a distance is not a finite number > 0.
    """
    if not curve:
        return _nothing_to_plot("no distances were measured", empty_note)
    pts = _keyed("voxel pairs this far apart", curve, log=True, what="curve")
    lags = np.array([x for x, _ in pts])
    fig, ax = plt.subplots(figsize=(0.7 * PAGE_WIDTH, 2.5), layout="constrained")
    ax.plot(lags, [p["adjacent"] for _, p in pts], "o-", ms=3, label="voxel pairs this far apart")
    ax.axhline(pts[0][1]["random"], ls="--", c="0.5", lw=1, label="random voxel pairs")
    for j, (lab, x) in enumerate((marks or {}).items()):
        ax.axvline(x, ls=":", c=f"C{3 + j}", lw=1.2, label=lab)
    ax.set_xscale("log")
    # tens of measured distances cannot all carry a label: tick the powers of ten, the extremes and the marks
    decades = 10.0 ** np.arange(math.ceil(math.log10(lags[0])), math.floor(math.log10(lags[-1])) + 1)
    data_ticks(ax, [lags[0], lags[-1], *decades, *[float(x) for x in (marks or {}).values() if float(x) > 0]])
    ax.set_xlabel("distance in file order (voxels)")
    ax.set_ylabel("mean r over trials")
    ax.grid(alpha=0.3)
    _legend_below(fig)
    return fig


def verdict_bars(counts: dict[str, int], *, xlabel: str = "rows of the ledger", empty_note: str | None = None):
    """Horizontal bars: how many ledger rows (or claims: ``xlabel="claims"``) got each kind of verdict
    (:func:`ldm_core.study.ledger.verdict_counts`). Returns None (and shows a note) when ``counts`` is empty."""
    colours = {"confirmed": "C2", "refuted (below the claim)": "C3", "refuted (above the claim)": "C1",
               "refuted (both sides)": "C4", "inconclusive": "0.6",
               "target levels (not a prediction)": "C9", "untestable": "0.8"}
    names = list(counts or {})
    if not names:
        return _nothing_to_plot("there are no verdicts", empty_note)
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH * 0.7, 0.35 * len(names) + 0.8))
    ax.barh(range(len(names)), [counts[n] for n in names], color=[colours.get(n, "C0") for n in names])
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.xaxis.set_major_locator(mticker.MaxNLocator(integer=True))
    for i, n in enumerate(names):
        ax.text(counts[n] + 0.2, i, str(counts[n]), va="center", fontsize=9)
    return fig


# ----------------------------------------------------------------------------- perception and distortion

_PD_LABELS = {
    "psnr": "PSNR to the seen image (dB)\nhigher = closer to the target",
    "ssim": "SSIM to the seen image\nhigher = closer to the target",
    "pixel_r": "pixel correlation r with the seen image\nhigher = closer to the target",
    "mse": "MSE to the seen image\nlower = closer to the target",
    "kid_digit": "KID to real digits\n(digit classifier's features)\nlower = closer to real digits",
    "digit_acc": "digit classified as the one seen\n(share of images, higher = better)",
    "feature_id2": "2-way identification in classifier features\nhigher = better",
}
_MARKERS = ("o", "s", "D", "^", "v", "P", "X", "<", ">", "p", "h", "*")


def perception_distortion_plot(points: dict[str, dict[str, dict]], *, x: str = "psnr", y: str = "kid_digit",
                               xlabel: str | None = None, ylabel: str | None = None, zero_line: bool | None = None,
                               empty_note: str | None = None):
    """The perception-distortion plane (Blau and Michaeli, CVPR 2018): one marker per decoder, 95% CIs both ways.

    Distortion (x, default PSNR to the seen image, higher = closer) against perception (y, default KID between the
    reconstructions and real digits the classifier never saw, in its penultimate features; lower = closer to
    real digits). A decoder that averages samples moves right and up (less distortion, less realistic); a
    sampler moves left and down. Each point has its own marker and colour and is named in the legend, below the
    axes (the plane keeps the page width).

    Parameters
    ----------
    points : dict of str -> {metric: {"mean", "ci_low", "ci_high"}}
        Decoder name -> its metrics (e.g. :func:`ldm_core.metrics.perception_metrics` merged with ``evaluate``).
        A decoder without a finite mean on both axes is not drawn (a note above the axes names it); a missing CI
        draws the point without that bar.
    x, y : str
        The metrics on each axis. Axis labels say the unit and which way is better (``xlabel`` / ``ylabel``
        override them, e.g. for a dataset whose images are not digits).
    zero_line : bool, optional
        Draw the line y = 0 (the KID of two samples of one distribution). Default: when ``y`` starts with "kid".
    empty_note : str, optional
        The reason shown when no decoder can be drawn (no figure, a one-line note).

    Returns
    -------
    matplotlib Figure, or None when no decoder has both metrics.
    """
    points = points or {}
    drawable, skipped = {}, []
    for name, res in points.items():
        px, py = _pooled(res, x), _pooled(res, y)
        if np.isfinite(px[0]) and np.isfinite(py[0]):
            drawable[name] = (px, py)
        else:
            skipped.append(name)
    if not drawable:
        reason = ("no decoders were given" if not points
                  else f"no decoder has both {metric_label(x, short=True)} and {metric_label(y, short=True)}")
        return _nothing_to_plot(reason, empty_note)
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 3.4), layout="constrained")
    for i, (name, ((mx, lx, hx), (my, ly, hy))) in enumerate(drawable.items()):
        xerr = [[mx - lx], [hx - mx]] if np.isfinite(lx) and np.isfinite(hx) else None
        yerr = [[my - ly], [hy - my]] if np.isfinite(ly) and np.isfinite(hy) else None
        ax.errorbar([mx], [my], xerr=xerr, yerr=yerr, fmt=_MARKERS[i % len(_MARKERS)], ms=6, capsize=2.5, lw=1,
                    c=f"C{i % 10}", label=model_label(name))
    zero_label = ("KID 0: indistinguishable from real digits (the unbiased estimate can fall below 0)"
                  if y.startswith("kid") else "0")
    if zero_line if zero_line is not None else y.startswith("kid"):
        ax.axhline(0.0, ls=":", lw=1, c="0.5", label=zero_label)
    ax.set_xlabel(xlabel or _PD_LABELS.get(x, metric_label(x)))
    ax.set_ylabel(ylabel or _PD_LABELS.get(y, metric_label(y)))
    ax.grid(alpha=0.3)
    if skipped:
        ax.set_title("not drawn (a metric missing): " + ", ".join(model_label(n) for n in skipped), fontsize=8,
                     loc="left")
    _legend_below(fig, last=(zero_label,))
    return fig
