"""The protocol of the image-prior chapter: guard, screens on validation, prior-size curve, baselines.

Chapter 07 (:mod:`ldm_core.prior`, :mod:`ldm_core.latent_map`, :mod:`ldm_core.prior_ldm`) chooses its model on the
validation trials in three greedy steps -- the kind of fMRI -> latent map, then the number of voxels it reads (both
scored by direct decoding), then the decoding (direct, refinement at several strengths and noise levels, from noise;
then guidance and a single sample for the best) -- and only then trains the chosen configuration with every seed
and scores the test trials once. The functions here are those steps, so the notebook holds the narrative and the
calls. Every function fits on the fitting trials only and returns validation scores; none reads test numbers for a
choice.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .baselines import fit_latent_decoder, fit_pls, fit_ridge
from .metrics import evaluate
from .prior import PriorConfig, pretrain_prior, sample_quality
from .prior_images import PriorImages, drop_near_duplicates, load_prior_images, max_shifted_correlation, stratified_subset
from .prior_ldm import DecodeConfig
from .prior_runs import MapConfig, PriorVariant, autoencoder_decoder, run_prior_variants
from .runs import VariantResult
from .splits import StudyData
from .sweep import pooled_metrics

__all__ = ["guarded_prior_images", "budget_check", "screen_maps", "screen_decoders", "prior_size_curve",
           "baseline_decoders", "evaluate_baselines", "BaselineScores", "val_score", "leakage_table", "prior_table",
           "DIRECT"]

DIRECT = "direct (no diffusion)"


def val_score(result: VariantResult, metric: str) -> float:
    """The first seed's validation mean of ``metric``."""
    return float(result.runs[0].val_metrics[metric]["mean"])


def _best(results: Mapping[str, VariantResult], metric: str) -> str:
    return max(results, key=lambda n: val_score(results[n], metric))


def guarded_prior_images(data: StudyData, *, data_dir: str | None, source: str, threshold: float,
                         max_shift: int) -> tuple[PriorImages, dict, np.ndarray]:
    """The unpaired images with every near-copy of a validation or test stimulus dropped.

    Returns
    -------
    kept : PriorImages
    report : dict
        :func:`ldm_core.prior_images.drop_near_duplicates`'s report, plus ``max_r_kept_test`` (the largest shifted r
        of a kept image with any test stimulus) and ``raw`` (the images before the guard).
    pretrain_images : ndarray (M, S, S)
        The kept images followed by the fitting trials' images: what the prior trains on.
    """
    raw = load_prior_images(data_dir or None, source=source, verbose=0)
    kept, report = drop_near_duplicates(raw, np.concatenate([data.images_val, data.images_test]), threshold=threshold,
                                        max_shift=max_shift, references_label="digit69 validation and test stimuli")
    r_test, _, _ = max_shifted_correlation(kept.images, data.images_test, max_shift=max_shift)
    report = {**report, "max_r_kept_test": float(r_test.max()), "raw": raw}
    return kept, report, np.concatenate([kept.images, data.images_fit])


def budget_check(data: StudyData, pretrain_images: np.ndarray, reference_images: np.ndarray, base: PriorConfig, *,
                 budgets: Sequence[int], map_cfg: MapConfig, n_samples: int, steps: int, seed: int, n_boot: int,
                 cache_dir: str | Path | None,
                 parameterisations: Sequence[tuple[str, str]] = (("x0", "cosine"), ("eps", "cosine"), ("eps", "linear"))
                 ) -> pd.DataFrame:
    """The prior trained with each (prediction, schedule) at each diffusion budget: sample quality and reconstructions.

    For each prediction, noise schedule and number of optimiser steps: the unconditional samples' covariance error,
    variance ratio and realism (:func:`ldm_core.prior.sample_quality`), and the validation PSNR / SSIM of conditional
    sampling from pure noise (``n_samples`` averaged) with ``map_cfg``.
    """
    rows, variants = {}, {}
    for pred, schedule in parameterisations:
        for n_steps in dict.fromkeys(int(b) for b in budgets):
            cfg = PriorConfig(**{**base.to_dict(), "prediction": pred, "schedule": schedule, "diffusion_steps": n_steps})
            prior = pretrain_prior(pretrain_images, cfg=cfg, seed=seed, cache_dir=cache_dir)
            q = sample_quality(prior, prior.codes(pretrain_images), reference_images, steps=steps, seed=seed)
            name = f"{pred}, {schedule} schedule, {n_steps:,} steps"
            variants[name] = PriorVariant(cfg, map_cfg, DecodeConfig(mode="noise", n_samples=n_samples, steps=steps))
            rows[name] = {"sample covariance error": q["cov_error"], "sample variance ratio": q["variance_ratio"],
                          "samples' best r with a prior image": q["nn_r"]}
    res = run_prior_variants(variants, data, pretrain_images, seeds=[seed], n_boot=n_boot, cache_dir=cache_dir)
    for name, r in res.items():
        rows[name].update({"validation PSNR (dB)": val_score(r, "psnr"), "validation SSIM": val_score(r, "ssim")})
    return pd.DataFrame(rows).T.rename_axis("prior (prediction, schedule, diffusion steps)")


def screen_maps(data: StudyData, pretrain_images: np.ndarray, prior: PriorConfig, *, kinds: Sequence[str],
                n_voxels: int | None, n_voxels_grid: Sequence[int | None], select_metric: str, steps: int, seed: int,
                n_boot: int, cache_dir: str | Path | None) -> tuple[dict[str, VariantResult], MapConfig]:
    """Stage-2 screen by direct decoding on validation: first each kind at ``n_voxels``, then the best kind at
    each count of ``n_voxels_grid`` (None = all voxels). Returns every result and the chosen map."""
    direct = DecodeConfig(mode="direct", steps=steps)

    def label(kind, k):
        return f"{kind}, {k or 'all'} voxels"

    run = dict(data=data, pretrain_images=pretrain_images, seeds=[seed], n_boot=n_boot, cache_dir=cache_dir)
    kinds_res = run_prior_variants({label(k, n_voxels): PriorVariant(prior, MapConfig(kind=k, n_voxels=n_voxels), direct)
                                    for k in kinds}, **run)
    kind = kinds_res[_best(kinds_res, select_metric)].ldm_cfg["map"]["kind"]
    counts = run_prior_variants({label(kind, k): PriorVariant(prior, MapConfig(kind=kind, n_voxels=k), direct)
                                 for k in n_voxels_grid}, **run)
    chosen = MapConfig(**counts[_best(counts, select_metric)].ldm_cfg["map"])
    return {**kinds_res, **counts}, chosen


def screen_decoders(data: StudyData, pretrain_images: np.ndarray, prior: PriorConfig, map_cfg: MapConfig, *,
                    strengths: Sequence[float], noise_scales: Sequence[float], guidance_grid: Sequence[float],
                    n_samples: int, steps: int, select_metric: str, seed: int, n_boot: int,
                    cache_dir: str | Path | None) -> tuple[dict[str, VariantResult], dict[str, PriorVariant], str]:
    """Stage-3 screen on validation; returns the results, the variants and the chosen name.

    Candidates: direct decoding; refinement at every strength and noise scale, averaging the ``n_samples`` decoded
    images or decoding their mean code ("mean code"); sampling from noise at every noise scale. If a diffusion decoder wins, it is also tried at each guidance scale and with
    a single sample, and the overall best is chosen.
    """
    def dc(**kw):
        return PriorVariant(prior, map_cfg, DecodeConfig(n_samples=n_samples, steps=steps, **kw))

    variants = {DIRECT: dc(mode="direct")}
    for u in noise_scales:
        for s in strengths:
            variants[f"refine, strength {s:g}, noise ×{u:g}"] = dc(mode="refine", strength=s, noise_scale=u)
            variants[f"refine, strength {s:g}, noise ×{u:g}, mean code"] = dc(mode="refine", strength=s, noise_scale=u,
                                                                              average="latent")
        variants[f"from noise, noise ×{u:g}"] = dc(mode="noise", noise_scale=u)
    run = dict(data=data, pretrain_images=pretrain_images, seeds=[seed], n_boot=n_boot, cache_dir=cache_dir)
    results = run_prior_variants(variants, **run)
    best = _best(results, select_metric)
    if best != DIRECT:
        more = {f"{best}, guidance {g:g}": variants[best].replace(decode={"guidance": g}) for g in guidance_grid
                if g != 1.0}
        more[f"{best}, one sample"] = variants[best].replace(decode={"n_samples": 1})
        results.update(run_prior_variants(more, **run))
        variants.update(more)
    return results, variants, _best(results, select_metric)


def prior_size_curve(data: StudyData, prior_images: PriorImages, variants: Mapping[str, PriorVariant],
                     sizes: Sequence[int], *, seed: int, n_boot: int, cache_dir: str | Path | None) -> dict:
    """Validation quality against the number of unpaired prior images (each size: a stratified draw plus the fitting
    images, the same optimiser steps): ``{variant: {size: {metric: pooled}}}``."""
    curves: dict = {name: {} for name in variants}
    for n_img in sorted(set(int(n) for n in sizes)):
        imgs = np.concatenate([stratified_subset(prior_images, n_img, seed=seed).images, data.images_fit])
        res = run_prior_variants(dict(variants), data, imgs, seeds=[seed], n_boot=n_boot, cache_dir=cache_dir)
        for name, r in res.items():
            curves[name][n_img] = pooled_metrics(r, split="val", n_boot=n_boot)
    return curves


def baseline_decoders(datasets: Mapping[str, StudyData], pretrain_images: np.ndarray, *, autoencoder: PriorConfig,
                      spatial_vae: dict, cache_dir: str | Path | None, shared_cache: str | Path | None) -> dict:
    """The baselines, each fitted on every dataset of ``datasets`` (e.g. the 72 fitting trials and all 90):

    ridge and PLS from fMRI to pixels; ridge to the latent of the spatial VAE of chapters 02-06 (``spatial_vae``: the
    :func:`ldm_core.experiment.stage1_vae` arguments ``ldm_cfg``, ``train_cfg``, ``seed``, trained on that dataset's
    fitting images); and a plain autoencoder (``autoencoder``, e.g. ``kl_weight=0``) trained on ``pretrain_images``
    with ridge from every voxel to its code. Returns ``{baseline: {dataset: decoder}}``; each decoder has
    ``predict(fmri) -> images``.
    """
    from .experiment import stage1_vae

    out: dict = {"ridge": {}, "pls": {}, "latent ridge": {}, "autoencoder + ridge": {}}
    for key, d in datasets.items():
        out["ridge"][key] = fit_ridge(d.fmri_fit, d.images_fit)
        out["pls"][key] = fit_pls(d.fmri_fit, d.images_fit)
        out["latent ridge"][key] = fit_latent_decoder(stage1_vae(d, cache_dir=shared_cache, **spatial_vae),
                                                      d.fmri_fit, d.images_fit)
        out["autoencoder + ridge"][key] = autoencoder_decoder(d, pretrain_images, cfg=autoencoder, seed=0,
                                                              cache_dir=cache_dir)
    return out


@dataclass
class BaselineScores:
    """Every baseline's reconstructions and scores: fitted on 72 trials (validation and test) and refitted on 90 (test).

    recon : {baseline: {"val", "test", "test90"}: ndarray (N, S, S)}; val, test, test90 : {baseline: evaluate(...)};
    best : the baseline with the best validation ``select_metric`` (chosen before any test number is read).
    """

    recon: dict
    val: dict
    test: dict
    test90: dict
    best: str

    def by_trials(self) -> tuple[dict, dict]:
        """Test scores and test reconstructions keyed ``(baseline, "72" | "90")``, each baseline's 72 before its 90."""
        keys = [(n, k) for n in self.test for k in ("72", "90")]
        scores = {(n, k): (self.test if k == "72" else self.test90)[n] for n, k in keys}
        return scores, {(n, k): self.recon[n]["test" if k == "72" else "test90"] for n, k in keys}


def evaluate_baselines(decoders: Mapping[str, Mapping[str, object]], data: StudyData, data90: StudyData, *,
                       select_metric: str, n_boot: int, n_perm: int) -> BaselineScores:
    """Score :func:`baseline_decoders` (``{baseline: {"72": decoder, "90": decoder}}``) on validation and test."""
    recon = {n: {"val": d["72"].predict(data.fmri_val), "test": d["72"].predict(data.fmri_test),
                 "test90": d["90"].predict(data90.fmri_test)} for n, d in decoders.items()}
    val = {n: evaluate(r["val"], data.images_val, data.labels_val, n_boot=n_boot, n_perm=0) for n, r in recon.items()}
    best = max(val, key=lambda n: val[n][select_metric]["mean"])
    test, test90 = ({n: evaluate(r[k], data.images_test, data.labels_test, n_boot=n_boot, n_perm=n_perm)
                     for n, r in recon.items()} for k in ("test", "test90"))
    return BaselineScores(recon, val, test, test90, best)


# ----------------------------------------------------------------------------- page tables


def leakage_table(leak: dict, n_pretrain: int) -> pd.DataFrame:
    """What the leakage guard (:func:`guarded_prior_images`'s ``leak``) found, dropped and kept, as one column."""
    return pd.DataFrame({"value": {
        "unpaired images found": f"{leak['n_before']:,}",
        "dropped as near-copies of a stimulus": f"{leak['n_dropped']:,}",
        "kept": f"{leak['n_after']:,}",
        "largest shifted r of a kept image with a test stimulus": f"{leak['max_r_kept_test']:.3f}",
        "prior training images (kept + the fitting trials)": f"{n_pretrain:,}"}}).rename_axis("leakage guard")


def prior_table(prior, ceiling: dict, quality: dict) -> pd.DataFrame:
    """A pretrained prior at a glance: its VAE round trip on validation (``ceiling``, an :func:`evaluate` result), its
    unconditional samples (``quality``, :func:`ldm_core.prior.sample_quality`) and its training times."""
    h = prior.history
    return pd.DataFrame({"value": {
        "VAE round trip on validation images: PSNR (dB)": round(ceiling["psnr"]["mean"], 2),
        "VAE round trip: SSIM": round(ceiling["ssim"]["mean"], 3),
        "unconditional samples: largest mean error (data std)": round(quality["mean_error"], 3),
        "unconditional samples: covariance error (relative)": round(quality["cov_error"], 3),
        "unconditional samples: variance / data variance": round(quality["variance_ratio"], 3),
        "unconditional samples: best r with a prior image (mean)": round(quality["nn_r"], 3),
        "VAE training (s)": round(h["vae_time_s"], 1),
        f"diffusion training, {prior.cfg.diffusion_steps:,} steps (s)": round(h["diffusion_time_s"], 1)}})
