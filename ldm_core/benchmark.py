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
- :func:`compute_table`, :func:`sampling_steps_table`: parameters and seconds per model; reconstruction time and
  validation quality against the number of DDIM steps.
- :func:`samples_figure`: several samples per trial of a diffusion decoder, their mean and their spread.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from . import claims
from .metrics import evaluate, identification_test, paired_comparison, pool_per_image
from .names import format_p, metric_label, model_label
from .splits import StudyData, subsample_fit

__all__ = ["identification_table", "learning_curve", "gain_per_doubling", "ridge_fitter", "latent_ridge_fitter",
           "spatial_ldm_fitter", "prior_ldm_fitter", "more_trials_rows", "week1_sweep", "compute_table",
           "sampling_steps_table", "samples_figure"]

Fitter = Callable[[StudyData, int], np.ndarray]


def identification_table(models: Mapping[str, np.ndarray], targets: np.ndarray, labels: np.ndarray, *,
                         n_perm: int, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Identification accuracy and permutation p-value of each model, overall, within digit and 10-way.

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
    """Claim 14 (proxy) per model and metric: the gain from the second-largest to the largest size of its curve,
    paired over validation images (:func:`ldm_core.metrics.paired_comparison`), tested against "no gain"."""
    rows = []
    for name, curve in curves.items():
        prev, top = sorted(curve)[-2:]
        for m in metrics:
            gain = paired_comparison(curve[top][m]["per_image"], curve[prev][m]["per_image"], n_boot=n_boot)
            rows.append({**claims.claim_row("14 (proxy)", f"more paired trials still help at the top of the range: "
                                            f"{metric_label(m)} gain from {prev} to {top} trials (validation)", gain,
                                            low=0.0, digits=3), "model": name})
    return rows


# ----------------------------------------------------------------------------- the week-1 sweep and compute


def week1_sweep(data: StudyData, ldm_cfg, train_cfg: dict, *, lrs: Sequence[float], batch_sizes: Sequence[int],
                encoder_dims: Sequence[int], sample_cfg: dict, select_metric: str, **run_kw) -> dict[tuple, float]:
    """The report's week-1 grid on one seed: ``{(lr, batch_size, encoder_dim): validation select_metric}``.

    Each cell is ``ldm_cfg`` with ``encoder_dim`` and ``train_cfg`` with ``lr`` / ``batch_size`` replaced;
    ``run_kw`` goes to :func:`ldm_core.experiment.run_variants` (cache, bootstrap, executor).
    """
    from .config import LDMConfig
    from .experiment import Variant, run_variants

    grid = {(g, int(bs), int(d)): Variant(LDMConfig.from_dict({**ldm_cfg.to_dict(), "encoder_dim": int(d)}),
                                         {**train_cfg, "lr": g, "batch_size": int(bs)}, dict(sample_cfg))
            for d in encoder_dims for bs in batch_sizes for g in lrs}
    runs = run_variants({f"lr={g:g}, batch={bs}, dim={d}": v for (g, bs, d), v in grid.items()}, data, seeds=[0],
                        **run_kw)
    return {k: r.seed_mean(select_metric, "val")[0] for k, r in zip(grid, runs.values())}


def compute_table(models: Mapping[str, object], notes: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Parameters, training and reconstruction seconds (means over seeds) and device per model.

    models : {name: :class:`~ldm_core.runs.VariantResult`}; notes : {name: text appended to its training time}.
    """
    rows = {}
    for name, res in models.items():
        runs, note = res.runs, (notes or {}).get(name)
        train = f"{np.mean([r.train_time_s or 0 for r in runs]):.0f}"
        rows[name] = {"parameters": f"{runs[0].n_parameters['total']:,}",
                      "training per seed (s)": f"{train} ({note})" if note else train,
                      "reconstructing the test trials (s)": f"{np.mean([r.recon_test_s or 0 for r in runs]):.2f}",
                      "device": runs[0].device}
    return pd.DataFrame(rows).T.rename_axis("model")


def sampling_steps_table(model, data: StudyData, steps_grid: Sequence[int], *, sample_cfg: dict,
                         n_boot: int) -> pd.DataFrame:
    """Per number of DDIM steps: seconds to reconstruct the test trials (after one warm-up call) and validation
    PSNR / SSIM / pixel r of a trained :class:`~ldm_core.pipeline.BrainLDM` (seed 0); one row per step count."""
    sample_cfg = {k: v for k, v in sample_cfg.items() if k != "steps"}
    model.reconstruct(data.fmri_test[:1], steps=2)  # warm-up
    rows = {}
    for s in steps_grid:
        t = time.perf_counter()
        model.reconstruct(data.fmri_test, steps=int(s), seed=0, **sample_cfg)
        dt = time.perf_counter() - t
        ev = evaluate(model.reconstruct(data.fmri_val, steps=int(s), seed=0, **sample_cfg), data.images_val,
                      data.labels_val, n_boot=n_boot, n_perm=0)
        rows[int(s)] = {f"reconstructing {len(data.fmri_test)} test trials (s)": round(dt, 2),
                        **{f"validation {metric_label(m, short=True)}": round(ev[m]["mean"], 3)
                           for m in ("psnr", "ssim", "pixel_r")}}
    return pd.DataFrame(rows).T


# ----------------------------------------------------------------------------- fitters


def ridge_fitter(n_folds: int = 5) -> Fitter:
    """Ridge from fMRI to pixels, alpha by K-fold CV inside the drawn trials."""
    from .baselines import fit_ridge

    def fit(sub: StudyData, draw: int) -> np.ndarray:
        return fit_ridge(sub.fmri_fit, sub.images_fit, n_folds=min(n_folds, len(sub.images_fit))).predict(sub.fmri_val)

    return fit


def latent_ridge_fitter(*, ldm_cfg, train_cfg: dict, cache_dir, n_trials_reference: int, n_folds: int = 5) -> Fitter:
    """Ridge to the latent of the spatial VAE trained on the drawn trials' images (equal optimiser steps per size)."""
    from .baselines import fit_latent_decoder
    from .experiment import equal_steps_train_cfg, stage1_vae

    def fit(sub: StudyData, draw: int) -> np.ndarray:
        tcfg = equal_steps_train_cfg(train_cfg, n_trials=len(sub.images_fit), n_reference=n_trials_reference)
        vae = stage1_vae(sub, ldm_cfg=ldm_cfg, train_cfg=tcfg, seed=draw, cache_dir=cache_dir)
        dec = fit_latent_decoder(vae, sub.fmri_fit, sub.images_fit, n_folds=min(n_folds, len(sub.images_fit)))
        return dec.predict(sub.fmri_val)

    return fit


def spatial_ldm_fitter(variant, *, cache_dir, n_trials_reference: int, n_boot: int = 200) -> Fitter:
    """The spatial Brain LDM of chapters 02-06 (a :class:`~ldm_core.experiment.Variant`), trained on the drawn trials
    with as many optimiser steps as on the full set, seeded by the draw."""
    import dataclasses

    from .experiment import equal_steps_train_cfg, run_variants

    def fit(sub: StudyData, draw: int) -> np.ndarray:
        tcfg = equal_steps_train_cfg(variant.train_cfg, n_trials=len(sub.images_fit), n_reference=n_trials_reference)
        v = dataclasses.replace(variant, train_cfg=tcfg)
        return run_variants({"v": v}, sub, seeds=[draw], n_boot=n_boot, cache_dir=cache_dir)["v"].runs[0].recon_val

    return fit


def prior_ldm_fitter(variant, *, pretrain_images: np.ndarray, cache_dir, n_boot: int = 200) -> Fitter:
    """The image-prior Brain LDM (a :class:`~ldm_core.prior_runs.PriorVariant`): its prior pretrained once per seed on
    ``pretrain_images`` (shared by every size), its map fitted on the drawn trials."""
    from .prior_runs import run_prior_variants

    def fit(sub: StudyData, draw: int) -> np.ndarray:
        return run_prior_variants({"v": variant}, sub, pretrain_images, seeds=[draw], n_boot=n_boot,
                                  cache_dir=cache_dir)["v"].runs[0].recon_val

    return fit


# ----------------------------------------------------------------------------- figures


def samples_figure(samples: np.ndarray, targets: np.ndarray, labels: np.ndarray, *, class_names=None):
    """Targets, each sample, their mean and their per-pixel spread (own colour scale), one column per trial.

    samples : ndarray (N, k, S, S), k >= 2 samples per trial.
    """
    from .plots import image_grid

    k = samples.shape[1]
    rows = {"target": targets, **{f"sample {j + 1}": samples[:, j] for j in range(k)},
            f"mean of {k}": samples.mean(axis=1), "per-pixel std": samples.std(axis=1)}
    return image_grid(rows, labels=labels, class_names=class_names, colour_rows={"per-pixel std": "magma"})

