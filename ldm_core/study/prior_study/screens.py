"""The validation screens of chapter 07 -- the sampler budget check, the fMRI -> latent maps, the decoders, the
prior-size curve -- and the baselines fitted and scored beside the selected model.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ...baselines import fit_latent_decoder, fit_pls, fit_ridge
from ...metrics import evaluate, paired_comparison
from ..names import join_words
from ...prior import PriorConfig, pretrain_prior, sample_quality
from ...prior_images import PriorImages
from ...prior_ldm import DecodeConfig
from ..prior_runs import MapConfig, PriorVariant, autoencoder_decoder, run_prior_variants
from ..runs import VariantResult
from ...splits import StudyData, stratified_subset
from ..sweep import pooled_metrics
from .guard import DIRECT, _best, val_score
from .naming import is_ldm


def budget_check(data: StudyData, pretrain_images: np.ndarray, reference_images: np.ndarray, base: PriorConfig, *,
                 budgets: Sequence[int], map_cfg: MapConfig, n_samples: int, steps: int, seed: int, n_boot: int,
                 cache_dir: str | Path | None,
                 parameterisations: Sequence[tuple[str, str]] = (("x0", "cosine"), ("eps", "cosine"), ("eps", "linear")),
                 return_results: bool = False) -> pd.DataFrame | tuple[pd.DataFrame, dict[str, VariantResult]]:
    """The prior trained with each (prediction, schedule) at each diffusion budget: sample quality and reconstructions.

    Each row: the unconditional samples' covariance error, variance ratio and realism
    (:func:`ldm_core.prior.sample_quality`), and the validation PSNR / SSIM of conditional sampling from pure noise
    (``n_samples`` averaged) with ``map_cfg``. Rows are named ``"<prediction>, <schedule> schedule, <steps> steps"``;
    ``return_results`` also returns the runs by row name (per-image validation scores, for :func:`epsilon_findings`).
    """
    rows, variants = {}, {}
    for pred, schedule in parameterisations:
        for n_steps in dict.fromkeys(int(b) for b in budgets):
            cfg = PriorConfig(**{**base.to_dict(), "prediction": pred, "schedule": schedule,
                                 "diffusion_steps": n_steps})
            prior = pretrain_prior(pretrain_images, cfg=cfg, seed=seed, cache_dir=cache_dir)
            q = sample_quality(prior, prior.codes(pretrain_images), reference_images, steps=steps, seed=seed)
            name = f"{pred}, {schedule} schedule, {n_steps:,} steps"
            variants[name] = PriorVariant(cfg, map_cfg, DecodeConfig(mode="noise", n_samples=n_samples, steps=steps))
            rows[name] = {"sample covariance error": q["cov_error"], "sample variance ratio": q["variance_ratio"],
                          "samples' best r with a prior image": q["nn_r"]}
    res = run_prior_variants(variants, data, pretrain_images, seeds=[seed], n_boot=n_boot, cache_dir=cache_dir)
    for name, r in res.items():
        rows[name].update({"validation PSNR (dB)": val_score(r, "psnr"), "validation SSIM": val_score(r, "ssim")})
    table = pd.DataFrame(rows).T.rename_axis("prior (prediction, schedule, diffusion steps)")
    return (table, res) if return_results else table


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
RUNAWAY = 10.0  # a sample variance more than this many times the data's (or less than its inverse) is a sampler running away


def large_number(value: float, *, digits: int = 2) -> str:
    """A number for a page: "2.0 × 10⁵" from 10⁴ up (``digits`` significant digits), else three significant digits
    with thousands separators (:func:`ldm_core.study.names.display_number`: "723", "0.923", "1,234")."""
    from ..names import display_number

    v = float(value)
    if not np.isfinite(v) or abs(v) < 1e4:
        return display_number(v)
    exp = int(np.floor(np.log10(abs(v))))
    mant = round(v / 10 ** exp, digits - 1)
    if abs(mant) >= 10:
        mant, exp = mant / 10, exp + 1
    return f"{mant:.{digits - 1}f} × 10{str(exp).translate(_SUPERSCRIPT)}"


def budget_display(budget: pd.DataFrame) -> pd.DataFrame:
    """:func:`budget_check`'s table for a page: "ε-prediction, linear schedule, 500 steps" rows, numbers written by
    :func:`large_number` (no "1.86e+05")."""
    def row(name: str) -> str:
        pred, rest = name.split(", ", 1)
        return f"{'ε' if pred == 'eps' else pred}-prediction, {rest}"

    out = budget.map(large_number)
    out.index = [row(n) for n in budget.index]
    return out.rename_axis(budget.index.name)


def known_answer_text(known: pd.DataFrame, *, last_signal: float, sampler: str = "ddim, 50 steps") -> str:
    """Where each parameterisation is fragile, read off :func:`ldm_core.study.sampler_check.known_answer_table`'s
    amplification column for ``sampler``: a clause per schedule, with the cosine schedule's last-step signal
    fraction ``last_signal`` (ᾱ at the last timestep)."""
    amp = known["bias amplification"]
    parts = []
    for kind in dict.fromkeys(known.index.get_level_values(0)):
        if (kind, sampler, "eps") not in amp.index or (kind, sampler, "x0") not in amp.index:
            continue
        e, x = amp[(kind, sampler, "eps")], amp[(kind, sampler, "x0")]
        where = f", whose last step leaves a signal fraction ᾱ of only {last_signal:.1e}," if kind == "cosine" else ""
        parts.append(f"with the {kind} schedule{where} DDIM from the last timestep multiplies a small error of the "
                     f"denoiser's output {large_number(e)}-fold when it predicts ε and {large_number(x)}-fold when it "
                     f"predicts x0")
    return "; ".join(parts)


def _side(c: Mapping, unit: str, what: str) -> str:
    """ "behind x0 by 0.81 dB [0.30, 1.30]" / "ahead of x0 by ..." / "not separable from x0, +0.05 dB [-0.2, 0.3]"
    (a mean that rounds to zero is written 0.00)."""
    if c["ci_high"] < 0:
        return f"behind {what} by {-c['mean']:.2f}{unit} [{-c['ci_high']:.2f}, {-c['ci_low']:.2f}]"
    if c["ci_low"] > 0:
        return f"ahead of {what} by {c['mean']:.2f}{unit} [{c['ci_low']:.2f}, {c['ci_high']:.2f}]"
    mean = f"{c['mean']:+.2f}".replace("-0.00", "0.00").replace("+0.00", "0.00")
    return f"not separable from {what}, {mean}{unit} [{c['ci_low']:+.2f}, {c['ci_high']:+.2f}]"


def _runaway_clauses(kind: str, away: list, amp: pd.Series, *, runaway: float, sampler: str) -> tuple[str, str]:
    """The section's and the summary's clauses on whether ``kind``'s samples run away (``away``: (budget, ratio)s)."""
    if not away:
        return (f"; its unconditional samples do not run away (sample variance within a factor {runaway:g} of "
                "the data's)"), ""
    worst = max(away, key=lambda a: abs(np.log(a[1])))[1]
    clause = ("; its unconditional samples run away (sample variance "
              + join_words([f"{large_number(v)} times the data's after {b:,} steps" for b, v in away]) + ")")
    short = f" and its samples run away (variance up to {large_number(worst)} times the data's)"
    e, x = amp.get((kind, sampler, "eps"), np.nan), amp.get((kind, sampler, "x0"), np.nan)
    if np.isfinite(e) and np.isfinite(x) and e >= runaway * x:
        clause += (f", as the known-answer table predicts: DDIM from the last timestep multiplies an ε error "
                   f"{large_number(e)}-fold on this schedule, an x0 error {large_number(x)}-fold")
        short += f", as DDIM's {large_number(e)}-fold amplification of an ε error on this schedule predicts"
    elif np.isfinite(e):
        clause += (f"; the known-answer amplification of an ε error on this schedule ({large_number(e)}-fold) "
                   "does not account for it")
        short += f", which DDIM's {large_number(e)}-fold amplification of an ε error here does not account for"
    return clause, short


def epsilon_findings(budget: pd.DataFrame, results: Mapping[str, VariantResult], known: pd.DataFrame, *,
                     budgets: Sequence[int], spatial_schedule: str, n_boot: int, runaway: float = RUNAWAY,
                     sampler: str = "ddim, 50 steps") -> dict:
    """What the budget check shows about ε-prediction, each statement conditioned on its numbers.

    For each ε schedule and budget of :func:`budget_check` (``return_results=True``): the validation PSNR, its paired
    difference from x0-prediction (cosine schedule) at the same budget (behind / ahead when the 95% CI excludes 0,
    else not separable), and whether the unconditional samples run away (variance ratio above ``runaway`` or below
    its inverse), attributed to the known-answer amplification only when DDIM multiplies an ε error at least
    ``runaway`` times more than an x0 error on that schedule. Chapter 08's spatial ε candidates use
    ``spatial_schedule``: unless it is cosine, the cosine schedule's amplification is said not to bear on them.

    Returns
    -------
    dict
        ``text`` (for the section), ``summary`` (for the answer), ``sampler_bug_ruled_out`` (every sampler passes the
        known-answer test) and ``rows`` ({row name: {"psnr", "x0_psnr", "difference", "variance_ratio", "runs_away"}}).
    """
    budgets = list(dict.fromkeys(int(b) for b in budgets))
    passes, amp = bool(known["library passes"].all()), known["bias amplification"]
    rows, per_schedule, short_clauses = {}, [], []
    schedules = [n.split(", ")[1].split()[0] for n in budget.index if n.startswith("eps, ")]
    for kind in dict.fromkeys(schedules):
        sched_parts, short_parts, away = [], [], []
        for b in budgets:
            name, ref = f"eps, {kind} schedule, {b:,} steps", f"x0, cosine schedule, {b:,} steps"
            if name not in results or ref not in results:
                continue
            c = paired_comparison(results[name].pooled("psnr", "val")["per_image"],
                                  results[ref].pooled("psnr", "val")["per_image"], n_boot=n_boot)
            vr = float(budget.loc[name, "sample variance ratio"])
            runs_away = bool(vr > runaway or vr < 1 / runaway)
            rows[name] = {"psnr": float(val_score(results[name], "psnr")), "x0_psnr": float(val_score(results[ref], "psnr")),
                          "difference": {k: c[k] for k in ("mean", "ci_low", "ci_high")}, "variance_ratio": vr,
                          "runs_away": runs_away}
            sched_parts.append(f"{rows[name]['psnr']:.2f} dB after {b:,} steps ({_side(c, ' dB', 'x0')})")
            short_parts.append(f"{_side(c, ' dB', 'x0')} after {b:,} steps")
            if runs_away:
                away.append((b, vr))
        if not sched_parts:
            continue
        more, more_short = _runaway_clauses(kind, away, amp, runaway=runaway, sampler=sampler)
        per_schedule.append(f"with the {kind} schedule ε-prediction reaches {join_words(sched_parts)} on the "
                            "validation trials" + more)
        short_clauses.append(f"with the {kind} schedule ε-prediction is {join_words(short_parts)} on validation"
                             + more_short)
    bug = ("every sampler passes the known-answer test, so no sampler bug is behind these numbers" if passes else
           "some samplers fail the known-answer test (see the table), so a sampler bug is not ruled out")
    spatial = f"chapter 8's spatial ε candidates use the {spatial_schedule} schedule"
    if spatial_schedule != "cosine":
        spatial += ", so the cosine schedule's amplification does not bear on them"
    text = (f"{bug[0].upper()}{bug[1:]}. On the prior, " + "; ".join(per_schedule) + ". "
            f"{spatial[0].upper()}{spatial[1:]}; chapter 8 compares ε and x0 for its own pipeline on validation.")
    summary = bug + ": on the prior, " + "; ".join(short_clauses) + "; " + spatial
    return {"text": text, "summary": summary, "sampler_bug_ruled_out": passes, "rows": rows}


def screen_maps(data: StudyData, pretrain_images: np.ndarray, prior: PriorConfig, *, kinds: Sequence[str],
                n_voxels: int | None, n_voxels_grid: Sequence[int | None], select_metric: str, steps: int, seed: int,
                n_boot: int, cache_dir: str | Path | None) -> tuple[dict[str, VariantResult], MapConfig]:
    """Stage-2 screen by direct decoding on validation: first each kind at ``n_voxels``, then the best kind at
    each count of ``n_voxels_grid`` (None = all voxels). Returns every result and the chosen map."""
    direct = DecodeConfig(mode="direct", steps=steps)

    def label(kind, k):
        return f"{kind}, {k or 'all'} voxels"

    run = dict(data=data, pretrain_images=pretrain_images, seeds=[seed], n_boot=n_boot, cache_dir=cache_dir)
    kinds_res = run_prior_variants({label(k, n_voxels): PriorVariant(prior, MapConfig(kind=k, n_voxels=n_voxels),
                                                                     direct) for k in kinds}, **run)
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
    images or decoding their mean code ("mean code"); sampling from noise at every noise scale. If a diffusion decoder
    wins, it is also tried at each guidance scale and with a single sample, and the overall best is chosen.
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


def best_diffusion_pair(results: Mapping[str, VariantResult], variants: Mapping[str, PriorVariant], *,
                        select_metric: str, data: StudyData, pretrain_images: np.ndarray, seed: int, n_boot: int,
                        cache_dir: str | Path | None) -> tuple[str, str, dict[str, VariantResult]]:
    """The stage-3 screen's best diffusion decoder that averages several samples (validation ``select_metric``) and
    the same decoder with a single sample, run now if the screen did not (cached like every run).

    Returns (name of the k-sample decoder, name of its one-sample version, {name: result} of both).
    """
    cands = [n for n, v in variants.items() if is_ldm(v) and v.decode.n_samples > 1 and n in results]
    if not cands:
        raise ValueError("best_diffusion_pair: the screen holds no diffusion decoder that averages several samples")
    best_k = max(cands, key=lambda n: val_score(results[n], select_metric))
    one = variants[best_k].replace(decode={"n_samples": 1})
    name_1 = next((n for n, v in variants.items() if v == one and n in results), f"{best_k}, one sample")
    res_1 = results.get(name_1) or run_prior_variants({name_1: one}, data, pretrain_images, seeds=[seed], n_boot=n_boot,
                                                      cache_dir=cache_dir)[name_1]
    return best_k, name_1, {best_k: results[best_k], name_1: res_1}


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
    """The baselines, each fitted on every dataset of ``datasets`` (e.g. ``{"fit": data, "all": refit_all(data)}``):

    ridge and PLS from fMRI to pixels; ridge to the latent of the spatial VAE of chapters 02-06 (``spatial_vae``: the
    :func:`ldm_core.study.experiment.stage1_vae` arguments ``ldm_cfg``, ``train_cfg``, ``seed``, trained on that dataset's
    fitting images); and a plain autoencoder (``autoencoder``, e.g. ``kl_weight=0``) trained on ``pretrain_images``
    with ridge from every voxel to its code. Returns ``{baseline: {dataset key: decoder}}``; each decoder has
    ``predict(fmri) -> images``.
    """
    from ..experiment import stage1_vae

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
    """Every baseline's reconstructions and scores, fitted on the fitting trials (validation and test) and refitted on
    all training trials (test).

    recon : {baseline: {"val", "test", "test_all"}: ndarray (N, S, S)}; val, test, test_all : {baseline: evaluate(...)};
    best : the baseline with the best validation ``select_metric`` (chosen before any test number is read);
    keys : the caller's names of the two fits, (fitting trials, all training trials), e.g. ("fit", "all").
    """

    recon: dict
    val: dict
    test: dict
    test_all: dict
    best: str
    keys: tuple = ("fit", "all")

    def by_trials(self) -> tuple[dict, dict]:
        """Test scores and test reconstructions keyed ``(baseline, key)`` with :attr:`keys`, each baseline's fit on the
        fitting trials before its refit on all training trials."""
        fit, full = self.keys
        pairs = [(n, k) for n in self.test for k in (fit, full)]
        scores = {(n, k): (self.test if k == fit else self.test_all)[n] for n, k in pairs}
        return scores, {(n, k): self.recon[n]["test" if k == fit else "test_all"] for n, k in pairs}


def evaluate_baselines(decoders: Mapping[str, Mapping[str, object]], data: StudyData, data_all: StudyData, *,
                       select_metric: str, n_boot: int, n_perm: int) -> BaselineScores:
    """Score :func:`baseline_decoders` on validation and test.

    ``decoders`` is ``{baseline: {fit key: decoder fitted on data's fitting trials, all key: decoder refitted on
    data_all}}`` (two keys, in that order, the same for every baseline), returned as :attr:`BaselineScores.keys`.
    """
    keys = tuple(next(iter(decoders.values())))
    if len(keys) != 2 or any(tuple(d) != keys for d in decoders.values()):
        raise ValueError(f"evaluate_baselines needs the same two fits per baseline (fitting trials, all training "
                         f"trials); got {[list(d) for d in decoders.values()]}")
    fit, full = keys
    recon = {n: {"val": d[fit].predict(data.fmri_val), "test": d[fit].predict(data.fmri_test),
                 "test_all": d[full].predict(data_all.fmri_test)} for n, d in decoders.items()}
    val = {n: evaluate(r["val"], data.images_val, data.labels_val, n_boot=n_boot, n_perm=0) for n, r in recon.items()}
    best = max(val, key=lambda n: val[n][select_metric]["mean"])
    test, test_all = ({n: evaluate(r[k], data.images_test, data.labels_test, n_boot=n_boot, n_perm=n_perm)
                       for n, r in recon.items()} for k in ("test", "test_all"))
    return BaselineScores(recon, val, test, test_all, best, keys)
