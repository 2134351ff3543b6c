"""The benchmark chapter's analyses: identification tables, learning curves against paired trials, samples.

- :func:`identification_table`: 2-way, within-digit 2-way and 10-way identification with permutation p-values
  (:func:`ldm_core.metrics.identification_test`; the same shuffle for every seed of a model).
- :func:`learning_curve`: validation quality against the number of fitting trials for several decoders, each size a
  stratified draw of the fitting trials (:func:`ldm_core.splits.subsample_fit`, fMRI z-scored again with the drawn
  trials' statistics), several draws per size, seeds pooled per image; the decoders are given as *fitters*
  (:func:`ridge_fitter`, :func:`latent_ridge_fitter`, :func:`spatial_ldm_fitter`, :func:`prior_ldm_fitter`): callables
  ``fitter(sub_data, draw) -> validation reconstructions``.
- :func:`gain_per_doubling`: the least-squares slope of a curve in log2(trials), and the extrapolated number of
  trials a target would need (an extrapolation, reported as such).
- :func:`more_trials_rows`: claim-14 proxy rows -- does the last step of a learning curve still gain (paired, per
  image)?
- :func:`week1_sweep`: the report's week-1 grid (learning rate x batch size x encoder width), one seed, validation.
- :func:`grid_edges`: on which axes a grid's best cell sits at the edge of the grid (a grid that does not bracket
  its optimum).
- :func:`compute_table`, :func:`sampling_steps`, :func:`sampling_steps_table`, :func:`steps_range`: parameters and
  seconds per model; reconstruction time and validation quality against the number of DDIM steps
  (:func:`format_seconds`, :func:`device_label` write them for a reader).
- :func:`spatial_samples`, :func:`sample_spread`, :func:`stage_steps`, :func:`chapter01_x0_errors`: does a
  decoder use diffusion at all? How much its samples of one trial differ, against how much the trials' images
  differ (:data:`NEGLIGIBLE_SPREAD`); how many optimiser steps a training took; what chapter 01 measured about the
  x0 estimate of an eps-predicting denoiser (why eps-prediction fails at a short budget).
- :func:`prior_model_names`: the names chapter 07 gives its selected model (``extra.model_names``, contract C5), and
  whether it samples with diffusion; a model is called an LDM only when it does.
- :func:`with_perception`: each model's perception metrics (:func:`ldm_core.metrics.perception_metrics`) beside its
  pixel metrics; :func:`ceiling_note` says for how many decoders a metric sits at its ceiling.
- :func:`test_set_use`: how many models the study scores on the same test images (distinct reconstructions,
  decoders apart from references, plus the models a chapter scores without keeping their reconstructions), one row
  per chapter under its title (:func:`chapter_label`); :func:`comparison_roles` marks the planned comparison and
  the exploratory ones.
- :data:`UNPAIRED_BASELINES`: the baselines that learn from the unpaired prior images (a claim about what paired
  trials alone allow cannot rest on them).
- :func:`curve_sizes`: the learning-curve sizes a dataset allows (the full fitting set is always added).
- :func:`decoder_samples`, :func:`samples_figure`: several samples per trial of a diffusion decoder, beside their
  mean, their spread and the direct decoding.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from . import claims
from .ledger import TRIVIAL_REFERENCES
from ..metrics import bootstrap_ci, evaluate, identification_test, paired_comparison, pool_per_image
from .names import format_p, metric_label, model_label
from ..splits import StudyData, subsample_fit

__all__ = ["identification_table", "eps_budget_rows", "learning_curve", "curve_sizes", "gain_per_doubling", "ridge_fitter",
           "latent_ridge_fitter", "spatial_ldm_fitter", "prior_ldm_fitter", "more_trials_rows", "week1_sweep",
           "format_seconds", "device_label", "compute_table", "sampling_steps", "sampling_steps_table", "steps_range",
           "grid_edges", "spatial_samples", "sample_spread", "NEGLIGIBLE_SPREAD", "stage_steps", "chapter01_x0_errors",
           "prior_model_names", "with_perception", "ceiling_note", "is_reference", "UNPAIRED_BASELINES",
           "chapter_label", "test_set_use", "SAME_RECONSTRUCTION_ATOL", "earlier_reconstructions", "comparisons_table",
           "comparison_roles", "decoder_samples", "samples_figure"]

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


# ----------------------------------------------------------------------------- the week-1 sweep and compute


def week1_sweep(data: StudyData, ldm_cfg, train_cfg: dict, *, lrs: Sequence[float], batch_sizes: Sequence[int],
                encoder_dims: Sequence[int], sample_cfg: dict, select_metric: str, **run_kw) -> dict[tuple, float]:
    """The report's week-1 grid on one seed: ``{(lr, batch_size, encoder_dim): validation select_metric}``.

    Each cell is ``ldm_cfg`` with ``encoder_dim`` and ``train_cfg`` with ``lr`` / ``batch_size`` replaced;
    ``run_kw`` goes to :func:`ldm_core.study.experiment.run_variants` (cache, bootstrap, executor).
    """
    from ..config import LDMConfig
    from .experiment import Variant, run_variants

    grid = {(g, int(bs), int(d)): Variant(LDMConfig.from_dict({**ldm_cfg.to_dict(), "encoder_dim": int(d)}),
                                         {**train_cfg, "lr": g, "batch_size": int(bs)}, dict(sample_cfg))
            for d in encoder_dims for bs in batch_sizes for g in lrs}
    runs = run_variants({f"lr={g:g}, batch={bs}, dim={d}": v for (g, bs, d), v in grid.items()}, data, seeds=[0],
                        **run_kw)
    return {k: r.seed_mean(select_metric, "val")[0] for k, r in zip(grid, runs.values())}


def grid_edges(best: Sequence, axes: Sequence[Sequence]) -> list[int]:
    """The axes on which ``best`` (one value per axis) sits at the edge of its grid: its smallest or largest value.

    An axis with one value is an edge too: a grid of one value cannot bracket anything. A best cell at an edge says
    that the grid does not bracket the optimum along that axis.

    Parameters
    ----------
    best : sequence
        The best cell, e.g. ``(lr, batch_size, encoder_dim)``.
    axes : sequence of sequences
        The values of each axis, in the same order.

    Returns
    -------
    list of int
        Indices of the axes where ``best`` is the smallest or largest value.

    Raises
    ------
    ValueError
        If ``best`` and ``axes`` differ in length, or a value of ``best`` is not on its axis.
    """
    if len(best) != len(axes):
        raise ValueError(f"best has {len(best)} values but there are {len(axes)} axes")
    out = []
    for i, (b, axis) in enumerate(zip(best, axes)):
        values = sorted(axis)
        if b not in values:
            raise ValueError(f"value {b!r} of axis {i} is not on that axis {values}")
        if len(values) == 1 or b in (values[0], values[-1]):
            out.append(i)
    return out


def format_seconds(seconds: float | None) -> str:
    """A duration for a table, in seconds with sensible precision: "< 0.01", "0.39", "2.0", "116", "1,234";
    "not recorded" for None or NaN (runs cached before timings were kept)."""
    if seconds is None or not np.isfinite(seconds):
        return "not recorded"
    s = float(seconds)
    if s < 0.01:
        return "< 0.01"
    if s < 1:
        return f"{s:.2f}"
    if s < 10:
        return f"{s:.1f}"
    return f"{s:,.0f}"


def device_label(device: str) -> str:
    """A device as a reader reads it: "cpu (1 threads)" -> "CPU, 1 thread"; "cpu (2 threads)" -> "CPU, 2 threads";
    "cuda (NVIDIA H100 80GB HBM3)" -> "GPU (NVIDIA H100 80GB HBM3)"; "mps" -> "Apple GPU (MPS)"; other text
    unchanged."""
    import re

    text = str(device).strip()
    m = re.fullmatch(r"cpu(?:\s*\((\d+)\s*threads?\))?", text, flags=re.IGNORECASE)
    if m:
        n = m.group(1)
        return "CPU" if n is None else f"CPU, {int(n)} thread{'' if int(n) == 1 else 's'}"
    m = re.fullmatch(r"cuda(?::\d+)?(?:\s*\((.*)\))?", text, flags=re.IGNORECASE)
    if m:
        return f"GPU ({m.group(1)})" if m.group(1) else "GPU"
    if text.lower() == "mps":
        return "Apple GPU (MPS)"
    return text


def compute_table(models: Mapping[str, object], notes: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Parameters, training and reconstruction seconds (means over seeds) and device per model.

    models : {name: :class:`~ldm_core.study.runs.VariantResult`}; notes : {name: text appended to its training time}.
    Seconds are written by :func:`format_seconds`, devices by :func:`device_label`.
    """
    rows = {}
    for name, res in models.items():
        runs, note = res.runs, (notes or {}).get(name)
        train_s = [r.train_time_s for r in runs if r.train_time_s is not None]
        recon_s = [r.recon_test_s for r in runs if r.recon_test_s is not None]
        train = format_seconds(np.mean(train_s) if train_s else None)
        rows[name] = {"parameters": f"{runs[0].n_parameters['total']:,}",
                      "training per seed (s)": f"{train} ({note})" if note else train,
                      "reconstructing the test trials (s)": format_seconds(np.mean(recon_s) if recon_s else None),
                      "device": device_label(runs[0].device)}
    return pd.DataFrame(rows).T.rename_axis("model")


def sampling_steps(model, data: StudyData, steps_grid: Sequence[int], *, sample_cfg: dict, n_boot: int,
                   metrics: Sequence[str] = ("psnr", "ssim", "pixel_r")) -> dict[int, dict]:
    """Reconstruction time and validation quality of a trained :class:`~ldm_core.pipeline.BrainLDM` per number of
    DDIM steps.

    Parameters
    ----------
    model : BrainLDM
        Trained (e.g. seed 0 of the selected spatial LDM).
    data : StudyData
    steps_grid : sequence of int
        Step counts, each in [1, the model's training steps].
    sample_cfg : dict
        The run's sampling settings (guidance, n_samples, sampler); its ``steps`` is replaced by each step count.

    Returns
    -------
    dict
        ``{steps: {"seconds": seconds to reconstruct the test trials (after one warm-up call), metric: evaluate()
        output on the validation trials}}``, in the order of ``steps_grid``.
    """
    sample_cfg = {k: v for k, v in sample_cfg.items() if k != "steps"}
    model.reconstruct(data.fmri_test[:1], steps=2)  # warm-up
    out = {}
    for s in steps_grid:
        t = time.perf_counter()
        model.reconstruct(data.fmri_test, steps=int(s), seed=0, **sample_cfg)
        dt = time.perf_counter() - t
        ev = evaluate(model.reconstruct(data.fmri_val, steps=int(s), seed=0, **sample_cfg), data.images_val,
                      data.labels_val, n_boot=n_boot, n_perm=0)
        out[int(s)] = {"seconds": float(dt), **{m: ev[m] for m in metrics}}
    return out


def sampling_steps_table(steps: Mapping[int, dict], *, n_test: int) -> pd.DataFrame:
    """:func:`sampling_steps` as a page table: one row per step count, the seconds for the ``n_test`` test trials
    (:func:`format_seconds`) and each validation mean (PSNR to 2 decimals, the others to 3)."""
    rows = {}
    for s, r in steps.items():
        row = {f"reconstructing {n_test} test trials (s)": format_seconds(r["seconds"])}
        for m, v in r.items():
            if m != "seconds":
                row[f"validation {metric_label(m, short=True)}"] = f"{v['mean']:.{2 if m == 'psnr' else 3}f}"
        rows[int(s)] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def steps_range(steps: Mapping[int, dict], metric: str = "psnr") -> float:
    """Largest minus smallest validation mean of ``metric`` over the step counts of :func:`sampling_steps` (0 for
    one step count): how much the number of sampling steps changes the result."""
    values = [float(r[metric]["mean"]) for r in steps.values()]
    return float(max(values) - min(values)) if values else float("nan")


# ----------------------------------------------------------------------------- does a decoder use diffusion?

NEGLIGIBLE_SPREAD = 0.05
"""Samples of one trial whose spread (:func:`sample_spread`) is below this share of the spread between the trials'
images are, for any practical purpose, one image: the sampler's starting noise does not change the output, so the
decoder is in effect a deterministic regressor from fMRI, not a sampler (a convention of this study, stated where
used)."""


def spatial_samples(model, fmri: np.ndarray, *, n_samples: int, sample_cfg: Mapping, seed: int = 0) -> np.ndarray:
    """``n_samples`` samples per trial of a trained :class:`~ldm_core.pipeline.BrainLDM`, each from its own starting
    noise, with a run's sampling settings (``steps``, ``guidance``, ``sampler``; its ``n_samples`` is replaced).

    Returns
    -------
    ndarray (N, n_samples, S, S), float32 in [0, 1]
    """
    kw = {k: sample_cfg[k] for k in ("steps", "guidance", "sampler") if sample_cfg.get(k) is not None}
    return np.asarray(model.reconstruct(fmri, n_samples=int(n_samples), average=False, seed=seed, **kw))


def sample_spread(samples: np.ndarray, targets: np.ndarray, *, n_boot: int = 2000, seed: int = 0) -> dict:
    """How much a decoder's samples of one trial differ, against how much the trials' own images differ.

    Parameters
    ----------
    samples : ndarray (N, K, S, S), K >= 2
        K samples per trial, each from its own starting noise (:func:`spatial_samples`, :func:`decoder_samples`).
    targets : ndarray (N, S, S)
        The trials' images.

    Returns
    -------
    dict
        ``mean``: the per-pixel standard deviation over the K samples, averaged over pixels and then over trials
        (image units, [0, 1] scale); ``ci_low``, ``ci_high``: its 95% bootstrap CI over trials; ``per_trial`` (N,);
        ``between_trials``: the per-pixel standard deviation of ``targets`` across the N trials, averaged over
        pixels (how much the images differ from one another); ``share``: ``mean / between_trials``;
        ``negligible``: ``share`` < :data:`NEGLIGIBLE_SPREAD`; ``n_samples`` K; ``n_trials`` N.

    Raises
    ------
    ValueError
        If ``samples`` is not (N, K, S, S) with K >= 2, or ``targets`` is not (N, S, S) for the same N and S.
    """
    samples, targets = np.asarray(samples, dtype=np.float64), np.asarray(targets, dtype=np.float64)
    if samples.ndim != 4 or samples.shape[1] < 2:
        raise ValueError(f"samples must have shape (N, K, S, S) with K >= 2 samples per trial, got {samples.shape}")
    if targets.shape != (samples.shape[0], *samples.shape[2:]):
        raise ValueError(f"targets must have shape {(samples.shape[0], *samples.shape[2:])} (one image per trial), "
                         f"got {targets.shape}")
    per_trial = samples.std(axis=1).mean(axis=(1, 2))  # (N,)
    lo, hi = bootstrap_ci(per_trial, n_boot=n_boot, seed=seed)
    between = float(targets.std(axis=0).mean())
    mean = float(per_trial.mean())
    share = mean / between if between > 0 else float("nan")
    return {"mean": mean, "ci_low": lo, "ci_high": hi, "per_trial": per_trial.tolist(), "between_trials": between,
            "share": share, "negligible": bool(share < NEGLIGIBLE_SPREAD), "n_samples": int(samples.shape[1]),
            "n_trials": int(samples.shape[0])}


def stage_steps(history: Mapping, stage: str = "diffusion") -> int:
    """Optimiser steps a training spent in ``stage``, from its history (columns ``stage`` and ``steps`` per epoch,
    :class:`~ldm_core.study.runs.Run`); 0 when the stage did not run or the history has no step counts."""
    stages, steps = history.get("stage") or [], history.get("steps") or []
    return int(sum(int(n) for st, n in zip(stages, steps) if st == stage))


def chapter01_x0_errors(metrics01: Mapping, *, n_fit: int | None = None) -> dict:
    """What chapter 01 measured about the x0 estimate of its denoisers on the validation latents (its section 7).

    Chapter 01 probes the fully fixed model (the fixed preset, which predicts eps), the same model trained longer,
    and the same model predicting x0: at each probed timestep t, the mean squared error of the x0 estimate in units
    of the latents' variance, beside the exact denoiser of a Gaussian with the latents' statistics. An
    eps-predictor's x0 estimate divides by sqrt(abar_t), so at high t a small eps error becomes a huge x0 error, and
    DDIM carries it into the sample.

    Parameters
    ----------
    metrics01 : mapping
        Chapter 01's ``metrics.json`` (``extra.x0_error_val``; ``extra.x0_error_models`` when chapter 01 records each
        model's prediction, schedule and optimiser steps; else ``extra.summary`` and ``params`` for the models it
        holds).
    n_fit : int, optional
        Fitting trials, to count the optimiser steps of a model chapter 01 summarises but does not count.

    Returns
    -------
    dict
        ``{"t_low", "t_high", "models": {name: {"prediction": "eps" | "x0", "schedule": str | None,
        "optimiser_steps": int | None, "x0_error": {t: value}, "x0_error_gaussian": {t: value}}}}``, models in
        chapter 01's order; ``{}`` when chapter 01's results hold no such measurement.
    """
    import math

    extra = metrics01.get("extra", {}) or {}
    errors = extra.get("x0_error_val") or {}
    if not errors:
        return {}
    recorded = extra.get("x0_error_models") or {}
    summary = extra.get("summary") or {}
    models = {}
    for name, rows in errors.items():
        info = dict(recorded.get(name) or {})
        entry = summary.get(name) or {}
        ldm, train = entry.get("ldm_cfg") or {}, entry.get("train_cfg") or {}
        prediction = info.get("prediction") or ldm.get("prediction") or ("x0" if "x0" in name else "eps")
        steps = info.get("optimiser_steps")
        if steps is None and n_fit and train.get("epochs") and train.get("batch_size"):
            steps = int(train["epochs"]) * math.ceil(n_fit / int(train["batch_size"]))
        models[name] = {"prediction": prediction, "schedule": info.get("schedule") or ldm.get("schedule"),
                        "optimiser_steps": steps,
                        "x0_error": {int(r["t"]): float(r["x0 error, model"]) for r in rows},
                        "x0_error_gaussian": {int(r["t"]): float(r["x0 error, Gaussian denoiser"]) for r in rows}}
    ts = sorted({t for m in models.values() for t in m["x0_error"]})
    return {"t_low": ts[0], "t_high": ts[-1], "models": models}


# ----------------------------------------------------------------------------- fitters


def ridge_fitter(n_folds: int = 5) -> Fitter:
    """Ridge from fMRI to pixels, alpha by K-fold CV inside the drawn trials."""
    from ..baselines import fit_ridge

    def fit(sub: StudyData, draw: int) -> np.ndarray:
        return fit_ridge(sub.fmri_fit, sub.images_fit, n_folds=min(n_folds, len(sub.images_fit))).predict(sub.fmri_val)

    return fit


def latent_ridge_fitter(*, ldm_cfg, train_cfg: dict, cache_dir, n_trials_reference: int, n_folds: int = 5) -> Fitter:
    """Ridge to the latent of the spatial VAE trained on the drawn trials' images (equal optimiser steps per size)."""
    from ..baselines import fit_latent_decoder
    from .experiment import equal_steps_train_cfg, stage1_vae

    def fit(sub: StudyData, draw: int) -> np.ndarray:
        tcfg = equal_steps_train_cfg(train_cfg, n_trials=len(sub.images_fit), n_reference=n_trials_reference)
        vae = stage1_vae(sub, ldm_cfg=ldm_cfg, train_cfg=tcfg, seed=draw, cache_dir=cache_dir)
        dec = fit_latent_decoder(vae, sub.fmri_fit, sub.images_fit, n_folds=min(n_folds, len(sub.images_fit)))
        return dec.predict(sub.fmri_val)

    return fit


def spatial_ldm_fitter(variant, *, cache_dir, n_trials_reference: int, n_boot: int = 200) -> Fitter:
    """The spatial Brain LDM of chapters 02-06 (a :class:`~ldm_core.study.experiment.Variant`), trained on the drawn trials
    with as many optimiser steps as on the full set, seeded by the draw."""
    import dataclasses

    from .experiment import equal_steps_train_cfg, run_variants

    def fit(sub: StudyData, draw: int) -> np.ndarray:
        tcfg = equal_steps_train_cfg(variant.train_cfg, n_trials=len(sub.images_fit), n_reference=n_trials_reference)
        v = dataclasses.replace(variant, train_cfg=tcfg)
        return run_variants({"v": v}, sub, seeds=[draw], n_boot=n_boot, cache_dir=cache_dir)["v"].runs[0].recon_val

    return fit


def prior_ldm_fitter(variant, *, pretrain_images: np.ndarray, cache_dir, n_boot: int = 200) -> Fitter:
    """The image-prior Brain LDM (a :class:`~ldm_core.study.prior_runs.PriorVariant`): its prior pretrained once per seed on
    ``pretrain_images`` (shared by every size), its map fitted on the drawn trials."""
    from .prior_runs import run_prior_variants

    def fit(sub: StudyData, draw: int) -> np.ndarray:
        return run_prior_variants({"v": variant}, sub, pretrain_images, seeds=[draw], n_boot=n_boot,
                                  cache_dir=cache_dir)["v"].runs[0].recon_val

    return fit


# ----------------------------------------------------------------------------- names, perception, test-set use


def prior_model_names(extra07: Mapping, *, n_fit: int, n_all: int) -> dict:
    """What chapter 07's selected model is called, at the fitting trials and refitted on all training trials.

    Chapter 07 names its models for what they compute (contract C5): ``extra["model_names"] = {"fit", "all"}`` and
    ``extra["selected_is_ldm"]`` (True only when the selected decoder samples with diffusion). Those are returned
    as they are. A record written before chapter 07 kept them gets names built here from its selected variant
    (map and decoding), with the trial counts ``n_fit`` / ``n_all`` of the data.

    Returns
    -------
    dict
        ``{"fit": str, "all": str, "is_ldm": bool, "what": str}``; ``what`` is the name without its trial count
        (for curves over trial counts).
    """
    import re

    def strip(name: str) -> str:
        return re.sub(r",?\s*\(?\d[\d,]*\s+trials\)?\s*$", "", name)

    names = extra07.get("model_names")
    if names and "fit" in names and "all" in names and "selected_is_ldm" in extra07:
        return {"fit": str(names["fit"]), "all": str(names["all"]), "is_ldm": bool(extra07["selected_is_ldm"]),
                "what": strip(str(names["fit"]))}
    v = extra07.get("selected_variant") or {}
    mode = (v.get("decode") or {}).get("mode", "direct")
    m = v.get("map") or {}
    voxels = f"{m['n_voxels']} voxels" if m.get("n_voxels") else "all voxels"
    what = (f"prior VAE + {m.get('kind', 'ridge')} map, {voxels} (diffusion off)" if mode == "direct" else
            f"prior LDM ({extra07.get('selected_on_validation', mode)}), {m.get('kind', 'ridge')} map, {voxels}")
    return {"fit": f"{what}, {n_fit} trials", "all": f"{what}, {n_all} trials", "is_ldm": mode != "direct",
            "what": what}


def with_perception(scores: Mapping[str, Mapping], recons: Mapping[str, np.ndarray], targets: np.ndarray,
                    labels: np.ndarray, *, perception, n_boot: int, seed: int = 0) -> dict:
    """Each model's scores with its perception metrics added.

    Parameters
    ----------
    scores : mapping of name -> {metric: {...}}
        Pixel metrics per model (e.g. :func:`ldm_core.metrics.evaluate`); left as they are.
    recons : mapping of name -> ndarray (N, S, S) or (K, N, S, S)
        Test reconstructions of the models to score (K seeds: per-image values averaged over seeds). A model of
        ``scores`` without reconstructions keeps its pixel metrics only.
    targets : ndarray (N, S, S); labels : ndarray (N,) of label codes
    perception : :class:`ldm_core.study.prior_study.Perception`
        Chapter 07's classifier (:func:`ldm_core.study.prior_study.perception_model`): its ``scores(recons, targets,
        labels, n_boot=, seed=)`` gives ``digit_acc``, ``feature_id2`` and ``kid_digit``
        (:func:`ldm_core.metrics.perception_metrics`), or NaN with a note when no classifier is available.

    Returns
    -------
    dict
        ``{name: {**scores[name], "digit_acc": ..., "feature_id2": ..., "kid_digit": ...}}`` in the order of
        ``scores``, then models only in ``recons``.
    """
    out = {n: dict(v) for n, v in scores.items()}
    for name, rec in recons.items():
        out.setdefault(name, {}).update(perception.scores(rec, targets, labels, n_boot=n_boot, seed=seed))
    return out


def ceiling_note(scores: Mapping[str, Mapping], metric: str = "digit_acc", *, ceiling: float = 1.0,
                 exclude: Sequence[str] = ()) -> dict:
    """How many models reach ``ceiling`` on ``metric`` (mean): ``{"n_at": k, "n": n, "at": [names]}``.

    Models without the metric (or with NaN) and those in ``exclude`` are not counted.
    """
    vals = {n: v[metric]["mean"] for n, v in scores.items() if n not in exclude and metric in v
            and np.isfinite(v[metric]["mean"])}
    at = [n for n, x in vals.items() if x >= ceiling - 1e-12]
    return {"n_at": len(at), "n": len(vals), "at": at}


FLOOR_NAMES = TRIVIAL_REFERENCES  # chapter 00's floors and the correct-class mean (one list: ldm_core.study.ledger)

# Baselines of chapters 07 / 08 that learn from the unpaired prior images (ldm_core.study.prior_study.baseline_decoders:
# a plain autoencoder trained on them, then a ridge map from fMRI to its code).
UNPAIRED_BASELINES = ("autoencoder + ridge",)


def is_reference(name: str) -> bool:
    """True for a model that decodes no fMRI or reads the test images: chapter 00's floors and the correct-class
    mean (:data:`FLOOR_NAMES`), VAE round trips and ceilings."""
    base = _seedless(name)
    low = base.lower()
    return base in FLOOR_NAMES or "round trip" in low or "ceiling" in low or "correct-class mean" in low


def _seedless(key: str) -> str:
    import re

    return re.sub(r"@seed\d+$", "", key)


def _seed_order(key: str) -> tuple[str, int]:
    """Sort key: the model, then its seed as a number (seed10 after seed2)."""
    import re

    m = re.search(r"@seed(\d+)$", key)
    return (_seedless(key), int(m.group(1)) if m else -1)


def chapter_label(chapter: str, *, max_length: int = 40) -> str:
    """A chapter as a table row reads it: its title (:func:`ldm_core.study.ledger.chapter_title`, e.g. "2. Phase 1.1: a
    real U-Net"), cut before its colon when longer than ``max_length`` ("8. Benchmarks", "0. Data and metrics");
    the internal name when the notebook is not found."""
    from .ledger import chapter_title

    try:
        title = chapter_title(chapter)
    except FileNotFoundError:
        return chapter
    return title.split(":")[0] if len(title) > max_length and ":" in title else title


SAME_RECONSTRUCTION_ATOL = 1e-5  # two reconstructions this close everywhere come from one model (float round-off)
DECODERS = "decoders scored on the test trials"
NEW = "of them new (not in an earlier chapter)"
REFERENCES = "references (no fMRI, or reading the test images)"
TOTAL = "all chapters (distinct)"


def test_set_use(chapters: Mapping[str, Mapping[str, np.ndarray]], *, declared: Mapping[str, int] | None = None,
                 labels: Mapping[str, str] | None = None) -> tuple[pd.DataFrame, dict]:
    """How many models the study scores on the same test images.

    Parameters
    ----------
    chapters : mapping of chapter -> {model key: test reconstructions (N, S, S) or (K, N, S, S)}
        Each chapter's ``reconstructions.npz`` (:func:`ldm_core.study.results.load_results`), in chapter order; keys
        ``"<model>@seed<k>"`` are seeds of one model, as is one (K, N, S, S) array of K seeds.
    declared : mapping of chapter -> int, optional
        How many models a chapter says it scores on the test trials (e.g. chapter 07's ``extra.test_uses.models``,
        which counts its leakage-guard settings without keeping their reconstructions). The models beyond those whose
        reconstructions the chapter keeps (decoders only) are added to its decoders, and as new ones (they are other
        models); a chapter that keeps all of them adds nothing.
    labels : mapping of chapter -> str, optional
        Row labels (e.g. :func:`chapter_label`); default the chapter keys.

    Returns
    -------
    table : DataFrame
        One row per chapter: decoders scored on the test trials, of them not already scored by an earlier chapter,
        references (:func:`is_reference`); then a total row.
    counts : dict
        ``{"decoders", "references", "unstored", "per_chapter": {chapter: new decoders}}``: distinct models over all
        chapters (``unstored``: {chapter: decoders it scores without keeping their reconstructions}). Two entries whose
        reconstructions agree to within :data:`SAME_RECONSTRUCTION_ATOL` at every pixel of every seed are one model
        (e.g. a baseline that two chapters both report, refitted with float round-off of 1e-7).

    Raises
    ------
    ValueError
        If a ``declared`` count is negative or names a chapter not in ``chapters``.
    """
    declared = dict(declared or {})
    bad = {c: n for c, n in declared.items() if c not in chapters or int(n) < 0}
    if bad:
        raise ValueError(f"declared counts must be >= 0 and name chapters of the table {list(chapters)}; got {bad}")
    unstored: dict[str, int] = {}
    labels = dict(labels or {})
    seen: list[np.ndarray] = []  # one (K, N, S, S) array per distinct decoder
    seen_ref: list[np.ndarray] = []

    def known(x: np.ndarray, pool: list[np.ndarray]) -> bool:
        return any(y.shape == x.shape and np.allclose(x, y, rtol=0.0, atol=SAME_RECONSTRUCTION_ATOL) for y in pool)

    rows, per = {}, {}
    for chapter, recons in chapters.items():
        groups: dict[str, list[str]] = {}
        for key in sorted(recons, key=_seed_order):
            groups.setdefault(_seedless(key), []).append(key)
        n_dec = n_new = n_ref = 0
        for model, keys in groups.items():
            arrays = [np.asarray(recons[k], dtype=np.float32) for k in keys]
            x = np.concatenate([a if a.ndim == 4 else a[None] for a in arrays])  # (K, N, S, S): every seed
            if is_reference(model):
                n_ref += 1
                if not known(x, seen_ref):
                    seen_ref.append(x)
                continue
            n_dec += 1
            if not known(x, seen):
                n_new += 1
                seen.append(x)
        extra = max(0, int(declared[chapter]) - n_dec) if chapter in declared else 0
        if extra:
            unstored[chapter] = extra
        per[chapter] = n_new + extra
        rows[labels.get(chapter, chapter)] = {DECODERS: n_dec + extra, NEW: n_new + extra, REFERENCES: n_ref}
    n_unstored = sum(int(n) for n in unstored.values())
    rows[TOTAL] = {DECODERS: len(seen) + n_unstored, NEW: len(seen) + n_unstored, REFERENCES: len(seen_ref)}
    return (pd.DataFrame.from_dict(rows, orient="index").rename_axis("chapter"),
            {"decoders": len(seen) + n_unstored, "references": len(seen_ref), "unstored": unstored,
             "per_chapter": per})


PLANNED = "planned (fixed by the validation rule)"
EXPLORATORY = "exploratory"


def comparisons_table(planned: Mapping[str, Mapping[str, dict]], exploratory: Mapping[str, Mapping[str, dict]], *,
                      title: str = "per test image") -> pd.DataFrame:
    """:func:`ldm_core.study.claims.paired_table` of the planned comparison(s) first, then the exploratory ones, with a
    first column saying which is which (:data:`PLANNED`, :data:`EXPLORATORY`).

    Raises
    ------
    ValueError
        If a label is in both, or there is no comparison at all.
    """
    both = sorted(set(planned) & set(exploratory))
    if both:
        raise ValueError(f"comparison(s) {both} are both planned and exploratory")
    if not planned and not exploratory:
        raise ValueError("comparisons_table needs at least one comparison")
    table = claims.paired_table({**planned, **exploratory}, title=title)
    table.insert(0, "planned or exploratory",
                 [PLANNED if label in planned else EXPLORATORY for label in table.index.get_level_values(0)])
    return table


def earlier_reconstructions(inputs_root, chapters: Sequence[str]) -> tuple[dict[str, dict], list[str]]:
    """The test reconstructions of each chapter of ``chapters`` whose results exist under ``inputs_root``.

    Returns ``({chapter: {model key: (N, S, S)}}, [chapters without results])``; a results folder that exists but
    is damaged raises (:func:`ldm_core.study.results.load_results`).
    """
    from pathlib import Path

    from .results import load_results

    found, missing = {}, []
    for c in chapters:
        folder = Path(inputs_root) / c
        if not (folder / "metrics.json").is_file():
            missing.append(c)
            continue
        found[c] = load_results(folder)[1]
    return found, missing


def comparison_roles(names: Sequence[str], *, planned: Sequence[str]) -> dict[str, dict[str, str]]:
    """``{name: {"comparison": "planned" | "exploratory" | "reference"}}`` for a table's extra column.

    ``planned``: the models of the one comparison fixed by the validation rule (the validation-selected
    model and the validation-selected baseline); references (:func:`is_reference`) are neither.
    """
    return {n: {"comparison": "planned" if n in planned else "reference" if is_reference(n) else "exploratory"}
            for n in names}


# ----------------------------------------------------------------------------- figures


def decoder_samples(decoder, fmri: np.ndarray, decode, *, n_show: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A diffusion decoder's samples for each trial, and its output made from exactly those samples.

    Parameters
    ----------
    decoder : :class:`ldm_core.prior_ldm.PriorBrainLDM`
    fmri : ndarray (N, V)
    decode : :class:`ldm_core.prior_ldm.DecodeConfig`
        A diffusion decoding (mode "refine" or "noise"); its ``n_samples`` samples are drawn per trial.
    n_show : int >= 1
        Samples kept for the figure (the first ``n_show`` of them).

    Returns
    -------
    dict
        ``"samples"`` (N, n_show, S, S): decoded samples; ``"output"`` (N, S, S): what the decoder returns from all
        ``decode.n_samples`` of them (the mean of the decoded images, or the decoded mean code when
        ``decode.average == "latent"``); ``"direct"`` (N, S, S): the predicted code decoded without diffusion.

    Raises
    ------
    ValueError
        If ``decode.mode`` is "direct" (no samples) or ``n_show`` < 1.
    """
    if decode.mode == "direct":
        raise ValueError("decoder_samples needs a diffusion decoding (mode 'refine' or 'noise'), got mode 'direct'")
    if n_show < 1:
        raise ValueError(f"n_show must be >= 1, got {n_show!r}")
    codes = decoder.sample_codes(fmri, decode, seed=seed)  # (N, n, d)
    N, n, d = codes.shape
    images = decoder.prior.decode(codes.reshape(N * n, d))
    images = np.asarray(images).reshape(N, n, *np.asarray(images).shape[1:])  # (N, n, S, S)
    output = (np.asarray(decoder.prior.decode(codes.mean(axis=1))) if decode.average == "latent"
              else images.mean(axis=1))
    direct = np.asarray(decoder.prior.decode(decoder.predicted_codes(fmri)))
    return {"samples": images[:, :min(n_show, n)], "output": output, "direct": direct}


def samples_figure(samples: np.ndarray, targets: np.ndarray, labels: np.ndarray, *, class_names=None,
                   mean: np.ndarray | None = None, mean_label: str | None = None,
                   beside: Mapping[str, np.ndarray] | None = None):
    """Targets, each sample, their mean and their per-pixel spread (own colour scale), one column per trial.

    Parameters
    ----------
    samples : ndarray (N, k, S, S), k >= 1 samples per trial
    mean : ndarray (N, S, S), optional
        The mean to show (e.g. the decoder's own output from more samples); default: the mean of ``samples``.
    mean_label : str, optional
        Its row label; default "mean of k".
    beside : mapping of row label -> ndarray (N, S, S), optional
        Rows shown after the mean (e.g. the direct decoding, without diffusion).
    """
    from .plots import image_grid

    k = samples.shape[1]
    rows = {"target": targets, **{f"sample {j + 1}": samples[:, j] for j in range(k)},
            (mean_label or f"mean of {k}"): samples.mean(axis=1) if mean is None else mean,
            **dict(beside or {}), "std of the samples": samples.std(axis=1)}
    return image_grid(rows, labels=labels, class_names=class_names, colour_rows={"std of the samples": "magma"},
                      colour_labels={"std of the samples": "per-pixel std of the samples"})



def eps_budget_rows(findings: Mapping, *, schedule: str) -> dict[int, dict]:
    """Chapter 07's ε-against-x0 rows on the image prior's latents for one noise schedule, by training budget.

    Parameters
    ----------
    findings : mapping
        Chapter 07's ``extra["epsilon_findings"]``: ``rows`` keyed "eps, <schedule> schedule, <n> steps", each with
        ``difference`` (ε − x0 validation PSNR: mean, ci_low, ci_high), ``variance_ratio`` and ``runs_away``.
    schedule : str
        "linear" or "cosine".

    Returns
    -------
    dict
        ``{optimiser steps: row}``, fewest steps first; ``{}`` when chapter 07 measured none for that schedule.
    """
    import re

    out = {}
    for key, row in (findings.get("rows") or {}).items():
        m = re.fullmatch(rf"eps, {re.escape(schedule)} schedule, ([\d,]+) steps", key)
        if m and {"difference", "variance_ratio", "runs_away"} <= set(row):
            out[int(m.group(1).replace(",", ""))] = row
    return dict(sorted(out.items()))
