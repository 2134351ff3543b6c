"""Identification tables and learning curves against training-set size (gain per doubling, the claim-14 proxy rows).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from .. import claims
from ...metrics import evaluate, identification_test, paired_comparison, pool_per_image
from ..names import format_p, metric_label, model_label
from ...splits import StudyData, subsample_fit


Fitter = Callable[[StudyData, int], np.ndarray]


def identification_table(models: Mapping[str, np.ndarray], targets: np.ndarray, labels: np.ndarray, *,
                         n_perm: int, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Identification accuracy and permutation p-value of each model, overall, within class and N-way.

    Parameters
    ----------
    models : mapping of name -> ndarray (N, S, S) or (K, N, S, S)
        Reconstructions of the N targets (K seeds of one model are tested together).
    targets : ndarray (N, S, S); labels : ndarray (N,)
    n_perm : int >= 1

    Returns
    -------
    table : DataFrame
        One row per model (reader names): accuracy and p-value per statistic.
    raw : dict
        ``{model: {statistic: identification_test output}}``.
    """
    raw = {name: {s: identification_test(rec, targets, labels=labels, statistic=s, n_perm=n_perm, seed=seed)
                  for s in ("id2", "id2_within", "id10")} for name, rec in models.items()}
    rows = {}
    for name, per in raw.items():
        row = {}
        for s, r in per.items():
            row[metric_label(s, short=True)] = f"{r['mean']:.3f}"
            row[f"p, {metric_label(s, short=True)}"] = format_p(r["p_value"], n_perm=n_perm)
        rows[model_label(name)] = row
    return pd.DataFrame.from_dict(rows, orient="index"), raw


def learning_curve(data: StudyData, sizes: Sequence[int], fitters: Mapping[str, Fitter], *, draws: int,
                   metrics: Sequence[str] = ("psnr", "ssim", "pixel_r"), n_boot: int = 2000) -> dict:
    """Validation quality of each decoder against the number of fitting trials.

    Parameters
    ----------
    data : StudyData
        The full split; every size draws from its fitting trials, the validation trials stay the same.
    sizes : sequence of int
        Sizes below the number of fitting trials; the full set is added.
    fitters : mapping of name -> fitter(sub_data, draw) -> reconstructions of ``sub_data``'s validation trials
    draws : int >= 1
        Stratified draws per size (at the full size the draws differ by seed only).

    Returns
    -------
    dict
        ``{name: {size: {metric: pooled over draws (per-image mean, bootstrap CI over validation images)}}}``.

    Raises
    ------
    ValueError
        If a size is outside [number of digit classes, number of fitting trials - 1] or ``draws`` < 1.
    """
    n_fit = len(data.images_fit)
    bad = [n for n in sizes if not len(np.unique(data.labels_fit)) <= int(n) < n_fit]
    if bad or draws < 1:
        raise ValueError(f"sizes must lie in [{len(np.unique(data.labels_fit))}, {n_fit - 1}] (the full set of {n_fit} "
                         f"fitting trials is added) and draws >= 1; got sizes {list(sizes)}, draws {draws}")
    all_sizes = [*sorted(set(int(n) for n in sizes)), n_fit]
    evals: dict = {name: {n: [] for n in all_sizes} for name in fitters}
    for n in all_sizes:
        for draw in range(draws):
            sub = subsample_fit(data, n, seed=draw)
            for name, fit in fitters.items():
                rec = fit(sub, draw)
                evals[name][n].append(evaluate(rec, data.images_val, data.labels_val, n_boot=n_boot, n_perm=0))
    return {name: {n: {m: pool_per_image([e[m]["per_image"] for e in evs], n_boot=n_boot) for m in metrics}
                   for n, evs in per_n.items()} for name, per_n in evals.items()}


def curve_sizes(sizes: Sequence[int], data: StudyData) -> tuple[list[int], str]:
    """The sizes of ``sizes`` that a learning curve on ``data`` can draw, and a sentence on any dropped.

    A size must leave one trial per class at least and lie below the number of fitting trials (``data.n_fit``, which
    :func:`learning_curve` adds itself). Returns ``(sorted usable sizes, note)``; the note is "" when none is
    dropped, so a dataset with fewer trials than the parameters assumed still gets a curve.
    """
    n_fit, n_classes = len(data.images_fit), len(np.unique(data.labels_fit))
    keep = sorted({int(n) for n in sizes if n_classes <= int(n) < n_fit})
    dropped = sorted({int(n) for n in sizes} - set(keep))
    note = (f"Sizes {dropped} are outside [{n_classes}, {n_fit - 1}] for this dataset ({n_classes} classes, {n_fit} "
            f"fitting trials) and are left out." if dropped else "")
    return keep, note


def gain_per_doubling(curve: Mapping[int, dict], *, metric: str = "psnr", reach: float | None = None) -> dict:
    """Least-squares slope of ``metric`` against log2(trials), and the trials a value ``reach`` would need on that line.

    Returns
    -------
    dict
        ``slope`` (metric units per doubling), ``trials_needed`` (NaN when not rising, already reached or no
        ``reach``; capped at 1e9) -- an extrapolation far outside the measured range.
    """
    ns = np.array(sorted(curve), dtype=float)
    ys = np.array([curve[n][metric]["mean"] for n in sorted(curve)])
    slope = float(np.polyfit(np.log2(ns), ys, 1)[0]) if len(ns) > 1 else float("nan")
    need = float("nan")
    if reach is not None and slope > 0 and reach > ys[-1]:
        doublings = min((reach - ys[-1]) / slope, np.log2(1e9 / ns[-1]))  # capped before the power: no overflow
        need = float(min(ns[-1] * 2.0 ** doublings, 1e9))
    return {"slope": slope, "trials_needed": need}


def more_trials_rows(curves: Mapping[str, Mapping[int, dict]], *, n_boot: int,
                     metrics: Sequence[str] = ("psnr", "ssim", "pixel_r")) -> list[dict]:
    """Claim 14 per model and metric, as *proxy* rows: the gain from the second-largest to the largest size of its
    curve, paired over validation images (:func:`ldm_core.metrics.paired_comparison`), tested against "no gain".

    The claim is "brain decoding needs > 1,000 samples"; a gain at the top of a curve that ends far below 1,000
    trials measures something else, so every row carries ``proxy=True`` (shown, never counted), ``split``
    "validation", its ``metric`` and ``model`` (contract C2). Curves with fewer than two sizes give no rows.
    """
    rows = []
    for name, curve in curves.items():
        if len(curve) < 2:
            continue
        prev, top = sorted(curve)[-2:]
        for m in metrics:
            gain = paired_comparison(curve[top][m]["per_image"], curve[prev][m]["per_image"], n_boot=n_boot)
            rows.append(claims.paired_claim_row(
                "14", f"proxy for 'decoding needs > 1,000 samples': {metric_label(m)} gain from {prev} to {top} "
                      "trials", gain, low=0.0, digits=3, split="validation", metric=m, model=name, proxy=True))
    return rows
