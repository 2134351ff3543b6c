"""The protocol of the image-prior chapter: guard, screens on validation, prior-size curve, baselines, robustness.

Chapter 07 (:mod:`ldm_core.prior`, :mod:`ldm_core.latent_map`, :mod:`ldm_core.prior_ldm`) chooses its model on the
validation trials in three greedy steps -- the kind of fMRI -> latent map, then the number of voxels it reads (both
scored by direct decoding), then the decoding (direct, refinement at several strengths and noise levels, from noise;
then guidance and a single sample for the best) -- and only then trains the chosen configuration with every seed
and scores the test trials. The functions here are those steps and the chapter's analyses (does the prior fit the
stimuli, the perception-distortion plane, the robustness checks), so the notebook holds the narrative and the
calls. Every selection fits on the fitting trials only and reads validation scores; none reads test numbers for a
choice.

Models are named for what they compute (:func:`model_name`): a model is called an LDM only when its decoder samples
with diffusion; trial counts in names come from the data.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..baselines import fit_latent_decoder, fit_pls, fit_ridge
from ..metrics import bootstrap_ci, evaluate, paired_comparison
from .names import ci_text, join_words, metric_label, model_label
from ..prior import PriorConfig, pretrain_prior, sample_quality
from ..leakage import drop_near_duplicates, max_shifted_correlation
from ..prior_images import FILE_SOURCE, NPZ_SOURCE, PRIOR_SHA256, PriorImages, load_prior_images
from ..prior_ldm import DecodeConfig
from .prior_runs import MapConfig, PriorVariant, autoencoder_decoder, build_decoder, run_prior_variants
from .runs import VariantResult
from ..splits import REPEAT_THRESHOLD, StudyData, stratified_subset
from .sweep import pooled_metrics

__all__ = ["guarded_prior_images", "guard_summary", "prior_phrase", "kid_axis_label", "budget_check", "screen_maps",
           "screen_decoders", "prior_size_curve", "baseline_decoders", "evaluate_baselines", "BaselineScores",
           "val_score", "leakage_table", "prior_table", "known_answer_display", "voxel_curve", "strength_curve",
           "decoder_name", "is_ldm", "model_name", "model_names", "prior_fit_rule", "prior_fit_check",
           "prior_fit_text", "Perception", "perception_model", "add_perception", "perception_distortion",
           "perception_distortion_text", "paired_rows", "guard_at", "leak_sensitivity", "leak_sensitivity_table",
           "seed_bootstrap_table", "selection_stability_table", "count_test_uses", "best_diffusion_pair",
           "stability_choices", "prior_fit_table", "DIRECT", "budget_display", "known_answer_text", "epsilon_findings",
           "large_number", "screen_followup_text", "prior_size_text", "kid_reference", "kid_text",
           "published_comparison", "resolved_params", "RUNAWAY", "prior_source_text"]

DIRECT = "direct decoding, diffusion off"  # the stage-3 screen's name of decoding the predicted latent directly


def val_score(result: VariantResult, metric: str) -> float:
    """The first seed's validation mean of ``metric``."""
    return float(result.runs[0].val_metrics[metric]["mean"])


def _best(results: Mapping[str, VariantResult], metric: str) -> str:
    return max(results, key=lambda n: val_score(results[n], metric))


def guarded_prior_images(data: StudyData, *, source: str, threshold: float,
                         max_shift: int) -> tuple[PriorImages, dict, np.ndarray]:
    """The unpaired images with every near-copy of a validation or test stimulus dropped.

    The images are found on their own (:func:`ldm_core.prior_images.load_prior_images` with ``source`` and the
    stimuli's side), never through the paired data's file or folder.

    Returns
    -------
    kept : PriorImages
    report : dict
        :func:`ldm_core.leakage.drop_near_duplicates`'s report, plus ``max_r_kept_test`` (the largest shifted r
        of a kept image with any test stimulus; NaN if none is kept) and ``raw`` (the images before the guard).
    pretrain_images : ndarray (M, S, S)
        The kept images followed by the fitting trials' images: what the prior trains on.
    """
    raw = load_prior_images(source=source, size=data.image_size, verbose=0)
    kept, report = drop_near_duplicates(raw, np.concatenate([data.images_val, data.images_test]), threshold=threshold,
                                        max_shift=max_shift, references_label="validation and test stimuli")
    r_test = max_shifted_correlation(kept.images, data.images_test, max_shift=max_shift)[0] if kept.n_images else []
    report = {**report, "max_r_kept_test": float(np.max(r_test)) if len(r_test) else float("nan"), "raw": raw}
    return kept, report, np.concatenate([kept.images, data.images_fit])


def guard_summary(leak: dict, *, max_shown: int = 10) -> dict:
    """What the page says about the guard: a sentence, and the dropped images beside their stimuli.

    Parameters
    ----------
    leak : dict
        :func:`guarded_prior_images`'s report (``n_before``, ``n_dropped``, ``n_after``, ``threshold``,
        ``max_shift``, ``max_r_kept_test``, ``dropped``, ``raw``).

    Returns
    -------
    dict
        ``text`` (one or two sentences, from the counts: no drop is said as such), ``dropped`` (the first
        ``max_shown`` dropped images, (k, S, S), possibly k = 0) and ``references`` (the index of each one's stimulus
        among the validation-then-test stimuli).
    """
    shown = leak["dropped"][:max_shown]
    raw = leak["raw"].images
    dropped = raw[[d["index"] for d in shown]] if shown else raw[:0]
    if leak["n_dropped"]:
        text = (f"The guard dropped {leak['n_dropped']:,} of {leak['n_before']:,} unpaired images (shifted pixel r "
                f"above {leak['threshold']:g} with a validation or test stimulus, shifts up to "
                f"{leak['max_shift']} px); {leak['n_after']:,} remain.")
    else:
        text = (f"No unpaired image is near a stimulus: none of the {leak['n_before']:,} has a shifted pixel r above "
                f"{leak['threshold']:g} with a validation or test stimulus (shifts up to {leak['max_shift']} px), so "
                "the guard dropped nothing.")
    if np.isfinite(leak.get("max_r_kept_test", float("nan"))):
        text += f" The closest kept image reaches r = {leak['max_r_kept_test']:.3f} with a test stimulus."
    return {"text": text, "dropped": dropped, "references": [d["reference"] for d in shown]}


def prior_phrase(prior_images: PriorImages) -> str:
    """What the unpaired images are, for prose: "unpaired MNIST digits" or "unpaired images from <file>"."""
    from ..prior_images import FILE_SOURCE

    return f"unpaired images from {prior_images.path.name}" if prior_images.source == FILE_SOURCE \
        else "unpaired MNIST digits"


def prior_source_text(raw: PriorImages) -> str:
    """The unpaired images in one sentence of prose for the page (instead of printing their description): how many of
    which classes, the file, its licence and whether its checksum matches the published one. No folder is named."""
    prov = raw.provenance()
    mnist = raw.source != FILE_SOURCE
    names = raw.class_names or {}
    if mnist:
        def plural(word: str) -> str:
            return word + ("es" if word.endswith(("s", "x")) else "s")

        counts = ", ".join(f"{n:,} {names.get(c, str(c)) if n == 1 else plural(names.get(c, str(c)))}"
                           for c, n in raw.counts().items())
    elif raw.class_names is None:
        counts = "unlabelled"
    else:
        counts = ", ".join(f"{names.get(c, f'class {c}')}: {n:,}" for c, n in raw.counts().items())
    what = f"{raw.n_images:,} MNIST training digits" if mnist else f"{raw.n_images:,} images"
    text = f"The unpaired images are {what} ({counts}) read from {prov['file']}; licence: {prov['licence']}"
    if raw.source == NPZ_SOURCE:
        text += ("; the file's SHA-256 matches the published checksum" if raw.sha256 == PRIOR_SHA256
                 else "; the file's SHA-256 differs from the published checksum")
    return text + ". No fMRI is paired with them; the results record their checksum."


def kid_axis_label(prior_images: PriorImages) -> str | None:
    """The perception-distortion plot's KID axis label when the unpaired images are not MNIST digits (None: the
    plot's default, which speaks of digits)."""
    from ..prior_images import FILE_SOURCE

    if prior_images.source != FILE_SOURCE:
        return None
    return f"KID to unseen images of {prior_images.path.name}\n(classifier features; lower = closer to them)"


# ----------------------------------------------------------------------------- names of models (contract C5)


def decoder_name(decode: DecodeConfig) -> str:
    """A stage-3 decoding in words, e.g. "refine 0.5, noise ×0.5, mean of 16 samples" or "direct, diffusion off"."""
    if decode.mode == "direct":
        return "direct, diffusion off"
    how = f"refine {decode.strength:g}" if decode.mode == "refine" else "from noise"
    parts = [how, f"noise ×{decode.noise_scale:g}"]
    if decode.n_samples == 1:
        parts.append("one sample")
    else:
        parts.append(f"mean code of {decode.n_samples} samples" if decode.average == "latent"
                     else f"mean of {decode.n_samples} samples")
    if decode.guidance != 1.0:
        parts.append(f"guidance {decode.guidance:g}")
    return ", ".join(parts)


def is_ldm(variant: PriorVariant) -> bool:
    """True only when the variant's decoder samples with diffusion (a model is called an LDM only then)."""
    return variant.decode.mode != "direct"


def model_name(variant: PriorVariant, n_trials: int) -> str:
    """The name of an image-prior model for what it computes (contract C5), with its trial count from the data.

    ``"prior VAE + ridge map, 400 voxels (diffusion off), 72 trials"`` for direct decoding;
    ``"image-prior LDM: ridge map, 400 voxels, refine 0.5, noise ×1, mean of 16 samples, 72 trials"`` otherwise.
    """
    m = variant.map
    voxels = f"{m.n_voxels:,} voxels" if m.n_voxels else "all voxels"
    if not is_ldm(variant):
        return f"prior VAE + {m.kind} map, {voxels} (diffusion off), {n_trials:,} trials"
    return f"image-prior LDM: {m.kind} map, {voxels}, {decoder_name(variant.decode)}, {n_trials:,} trials"


def model_names(variant: PriorVariant, data: StudyData, data_all: StudyData) -> dict:
    """``{"fit": name at the fitting trials, "all": name refitted on all training trials}`` (contract C5)."""
    return {"fit": model_name(variant, data.n_fit), "all": model_name(variant, data_all.n_fit)}


# ----------------------------------------------------------------------------- does the prior fit the stimuli?


def _holdout_index(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of a stratified held-out share (per label: round(fraction * n), at least 1, at most n - 1)."""
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) < 2:
            continue
        held.append(rng.permutation(idx)[:min(max(int(round(fraction * len(idx))), 1), len(idx) - 1)])
    return np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)


def _diff_ci(a: np.ndarray, b: np.ndarray, *, n_boot: int, seed: int) -> tuple[float, float]:
    """Percentile bootstrap 95% CI of mean(a) - mean(b) for two independent samples (each resampled on its own)."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    d = (a[rng.integers(0, len(a), size=(n_boot, len(a)))].mean(1)
         - b[rng.integers(0, len(b), size=(n_boot, len(b)))].mean(1))
    lo, hi = np.percentile(d, [2.5, 97.5], method="nearest")
    return float(lo), float(hi)


def _fit_rule_text(margin_db: float, margin_ssim: float) -> str:
    return (f"the prior does not fit the stimuli when the 95% CI of their mean round-trip PSNR minus that of unseen "
            f"prior images lies entirely below −{margin_db:g} dB, or that of SSIM entirely below −{margin_ssim:g}")


def prior_fit_rule(stimuli: Mapping[str, np.ndarray], prior: Mapping[str, np.ndarray], *, margin_db: float,
                   margin_ssim: float, n_boot: int = 2000, seed: int = 0) -> dict:
    """The declared rule: does the prior's VAE represent the stimuli about as well as unseen prior images?

    Parameters
    ----------
    stimuli, prior : {"psnr": (n,), "ssim": (n,)}
        Per-image round-trip scores (decode(encode(x)) against x) of the stimuli and of prior images the VAE never
        saw.
    margin_db, margin_ssim : float
        The prior does **not** fit when the 95% CI of the difference in mean round-trip PSNR (stimuli − prior images)
        lies entirely below ``-margin_db``, or that of SSIM entirely below ``-margin_ssim``.

    Returns
    -------
    dict
        ``fits`` (bool), ``rule`` (the rule in words), and per metric the two means with their CIs and the
        difference with its CI (two independent bootstrap samples).
    """
    out: dict = {"rule": _fit_rule_text(margin_db, margin_ssim)}
    fits = True
    for m, margin in (("psnr", margin_db), ("ssim", margin_ssim)):
        s, p = np.asarray(stimuli[m], dtype=np.float64), np.asarray(prior[m], dtype=np.float64)
        lo, hi = _diff_ci(s, p, n_boot=n_boot, seed=seed)
        out[m] = {"stimuli": {"mean": float(s.mean()), **dict(zip(("ci_low", "ci_high"),
                                                                   bootstrap_ci(s, n_boot=n_boot, seed=seed)))},
                  "prior_images": {"mean": float(p.mean()), **dict(zip(("ci_low", "ci_high"),
                                                                       bootstrap_ci(p, n_boot=n_boot, seed=seed)))},
                  "difference": {"mean": float(s.mean() - p.mean()), "ci_low": lo, "ci_high": hi},
                  "margin": float(margin), "out_of_domain": bool(hi < -margin)}
        fits = fits and not out[m]["out_of_domain"]
    out["fits"] = bool(fits)
    return out


def prior_fit_check(prior_images: PriorImages, data: StudyData, cfg: PriorConfig, *, holdout_fraction: float,
                    margin_db: float, margin_ssim: float, seed: int, n_boot: int, cache_dir: str | Path | None,
                    probe_steps: int | None = None, near_copy: float = REPEAT_THRESHOLD) -> dict:
    """Can the prior represent the paired stimuli? A probe VAE, unseen stimuli against unseen prior images.

    A VAE with the prior's settings (``cfg``'s VAE fields, ``seed``) is trained on the prior's training images less a
    stratified ``holdout_fraction`` of the unpaired images (the fitting trials' images stay in, as in the prior): the
    published prior's own images are left unchanged, so its cache stays valid. Its round trip is scored on the
    held-out unpaired images and on the validation stimuli that have no near copy (pixel r above ``near_copy``,
    :func:`ldm_core.splits.test_in_training`) among the probe's training images -- so both sets are unseen by it -- and
    :func:`prior_fit_rule` decides. On a dataset that shows a few images many times every validation stimulus may
    repeat a fitting stimulus; then nothing unseen is left and the check is not made (``fits`` is None).
    ``probe_steps`` trains the probe for that many optimiser steps instead of ``cfg.vae_steps`` (a quick profile's
    barely trained VAE represents nothing well, so it could not tell the two sets apart).

    Returns
    -------
    dict
        :func:`prior_fit_rule`'s result (``fits`` None and no per-metric entries when no validation stimulus is left)
        plus ``tested`` (bool), ``n_stimuli`` (validation stimuli scored), ``n_val`` (all of them), ``n_near_copies``
        (those left out), ``near_copy`` (the threshold), ``n_heldout_prior``, ``holdout_fraction``,
        ``probe_vae_steps`` and ``recon`` (the round trips of the first scored validation stimuli and held-out prior
        images, for a figure).

    Raises
    ------
    ValueError
        If fewer than 2 unpaired images can be held out.
    """
    from ..splits import test_in_training
    from ..metrics import psnr, ssim
    from ..prior import pretrain_autoencoder

    held = _holdout_index(prior_images.labels, holdout_fraction, seed)
    if len(held) < 2:
        raise ValueError(f"prior_fit_check needs at least 2 held-out prior images; {prior_images.n_images} images and "
                         f"holdout_fraction={holdout_fraction} give {len(held)}")
    keep = np.ones(prior_images.n_images, dtype=bool)
    keep[held] = False
    if probe_steps:
        cfg = PriorConfig.from_dict({**cfg.to_dict(), "vae_steps": int(probe_steps)})
    probe_train = np.concatenate([prior_images.images[keep], data.images_fit])
    copies = test_in_training(probe_train, data.images_val, threshold=near_copy)
    unseen = np.setdiff1d(np.arange(len(data.images_val)), np.asarray(copies["repeated"], dtype=np.int64))
    facts = {"n_stimuli": int(len(unseen)), "n_val": int(len(data.images_val)),
             "n_near_copies": int(len(data.images_val) - len(unseen)), "near_copy": float(near_copy),
             "n_heldout_prior": int(len(held)), "holdout_fraction": float(holdout_fraction),
             "probe_vae_steps": int(cfg.vae_steps)}
    if not len(unseen):
        return {"rule": _fit_rule_text(margin_db, margin_ssim), "fits": None, "tested": False, **facts, "recon": {}}
    probe = pretrain_autoencoder(probe_train, cfg=cfg, seed=seed, cache_dir=cache_dir, progress=False)
    sets = {"stimuli": data.images_val[unseen], "prior": prior_images.images[held]}
    rt = {k: probe.decode(probe.codes(x)) for k, x in sets.items()}
    scores = {k: {"psnr": psnr(rt[k], sets[k]), "ssim": ssim(rt[k], sets[k])} for k in sets}
    out = prior_fit_rule(scores["stimuli"], scores["prior"], margin_db=margin_db, margin_ssim=margin_ssim,
                         n_boot=n_boot, seed=seed)
    return {**out, "tested": True, **facts,
            "recon": {k: {"images": sets[k][:10], "round_trip": rt[k][:10]} for k in sets}}


def prior_fit_text(check: Mapping) -> str:
    """The page's sentence on :func:`prior_fit_check`: the numbers and the rule's outcome, plain when the prior does
    not fit, and what was left out (or that nothing was left to score). No final full stop, in every case (for
    :func:`ldm_core.study.claims.sentences`, or the caller's ".")."""
    n_copies, n_val = check.get("n_near_copies", 0), check.get("n_val", check["n_stimuli"])
    if not check.get("tested", True):
        return (f"The prior-fit check cannot be made: each of the {n_val} validation stimuli has a near copy (pixel r "
                f"above {check['near_copy']:g}) among the probe VAE's training images, so no stimulus is left that the "
                "probe has not seen, and whether the prior represents new stimuli of this dataset is untested")
    p, s = check["psnr"], check["ssim"]
    scored = (f"the {check['n_stimuli']} validation stimuli" if not n_copies else
              f"the {check['n_stimuli']} validation stimuli without a near copy among its training images ({n_copies} "
              f"of the {n_val} have one, pixel r above {check['near_copy']:g}, and are left out)")
    numbers = (f"its VAE's round trip scores {p['stimuli']['mean']:.1f} dB (SSIM {s['stimuli']['mean']:.2f}) on "
               f"{scored} and {p['prior_images']['mean']:.1f} dB (SSIM {s['prior_images']['mean']:.2f}) on "
               f"{check['n_heldout_prior']} unpaired images it never saw, a difference of "
               f"{ci_text(p['difference'], 2, sign=True, unit=' dB')} "
               f"and SSIM {ci_text(s['difference'], 3, sign=True)}")
    if check["fits"]:
        return f"The prior fits these stimuli by the declared rule: {numbers}"
    return (f"The prior does not fit these stimuli: {numbers}. Its decodes can only be images like its unpaired "
            "images, so the reconstructions below are limited by the prior, not only by the fMRI; a prior_source of "
            "images like the stimuli is needed")


def prior_fit_table(check: Mapping) -> pd.DataFrame:
    """:func:`prior_fit_check` for a page: the round trip on each image set and their difference, mean [95% CI]
    ("—" throughout when the check could not be made)."""
    n_copies = check.get("n_near_copies", 0)
    stim = (f"validation stimuli ({check['n_stimuli']})" if not n_copies else
            f"validation stimuli without a near copy ({check['n_stimuli']} of {check['n_val']})")
    rows = {}
    for key, label in (("stimuli", stim), ("prior_images", f"held-out unpaired images ({check['n_heldout_prior']})"),
                       ("difference", "difference (stimuli − unpaired)")):
        rows[label] = {metric_label(m, short=True): (ci_text(check[m][key], 2 if m == "psnr" else 3,
                                                             sign=key == "difference")
                                                     if check.get("tested", True) else "—")
                       for m in ("psnr", "ssim")}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("probe VAE round trip, unseen images")


def budget_check(data: StudyData, pretrain_images: np.ndarray, reference_images: np.ndarray, base: PriorConfig, *,
                 budgets: Sequence[int], map_cfg: MapConfig, n_samples: int, steps: int, seed: int, n_boot: int,
                 cache_dir: str | Path | None,
                 parameterisations: Sequence[tuple[str, str]] = (("x0", "cosine"), ("eps", "cosine"), ("eps", "linear")),
                 return_results: bool = False) -> pd.DataFrame | tuple[pd.DataFrame, dict[str, VariantResult]]:
    """The prior trained with each (prediction, schedule) at each diffusion budget: sample quality and reconstructions.

    For each prediction, noise schedule and number of optimiser steps: the unconditional samples' covariance error,
    variance ratio and realism (:func:`ldm_core.prior.sample_quality`), and the validation PSNR / SSIM of conditional
    sampling from pure noise (``n_samples`` averaged) with ``map_cfg``. Rows are named
    ``"<prediction>, <schedule> schedule, <steps> steps"`` (e.g. ``"eps, linear schedule, 500 steps"``);
    ``return_results`` also returns the runs under the same names (their per-image validation scores, for
    :func:`epsilon_findings`).
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
    from .names import display_number

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


def epsilon_findings(budget: pd.DataFrame, results: Mapping[str, VariantResult], known: pd.DataFrame, *,
                     budgets: Sequence[int], spatial_schedule: str, n_boot: int, runaway: float = RUNAWAY,
                     sampler: str = "ddim, 50 steps") -> dict:
    """What the budget check shows about ε-prediction, each statement conditioned on its numbers.

    For each ε schedule and budget of :func:`budget_check` (``return_results=True``): the validation PSNR, its paired
    difference from x0-prediction (cosine schedule) at the same budget (behind / ahead when the 95% CI excludes 0,
    else not separable), and whether the unconditional samples run away (variance ratio above ``runaway`` or below
    its inverse). A run-away is attributed to the known-answer amplification only when DDIM multiplies an ε error at
    least ``runaway`` times more than an x0 error on that schedule. The last statement is about chapter 08's spatial
    ε candidates, which use ``spatial_schedule``: the cosine schedule's amplification is said not to bear on them
    unless they use it.

    Returns
    -------
    dict
        ``text`` (for the section), ``summary`` (for the answer), ``sampler_bug_ruled_out`` (every sampler passes the
        known-answer test) and ``rows`` ({row name: {"psnr", "x0_psnr", "difference", "variance_ratio", "runs_away"}}).
    """
    budgets = list(dict.fromkeys(int(b) for b in budgets))
    passes = bool(known["library passes"].all())
    amp = known["bias amplification"]
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
        clause = f"with the {kind} schedule ε-prediction reaches {join_words(sched_parts)} on the validation trials"
        short = f"with the {kind} schedule ε-prediction is {join_words(short_parts)} on validation"
        if away:
            worst = max(away, key=lambda a: abs(np.log(a[1])))[1]
            clause += ("; its unconditional samples run away (sample variance "
                       + join_words([f"{large_number(v)} times the data's after {b:,} steps" for b, v in away]) + ")")
            short += f" and its samples run away (variance up to {large_number(worst)} times the data's)"
            e, x = amp.get((kind, sampler, "eps"), np.nan), amp.get((kind, sampler, "x0"), np.nan)
            if np.isfinite(e) and np.isfinite(x) and e >= runaway * x:
                clause += (f", as the known-answer table predicts: DDIM from the last timestep multiplies an ε error "
                           f"{large_number(e)}-fold on this schedule, an x0 error {large_number(x)}-fold")
                short += f", as DDIM's {large_number(e)}-fold amplification of an ε error on this schedule predicts"
            elif np.isfinite(e):
                clause += (f"; the known-answer amplification of an ε error on this schedule ({large_number(e)}-fold) "
                           "does not account for it")
                short += f", which DDIM's {large_number(e)}-fold amplification of an ε error here does not account for"
        else:
            clause += (f"; its unconditional samples do not run away (sample variance within a factor {runaway:g} of "
                       "the data's)")
        per_schedule.append(clause)
        short_clauses.append(short)
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
    data_all}}`` (two keys, in that order, the same for every baseline); the keys come back as
    :attr:`BaselineScores.keys`.
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
        "VAE round trip on validation images: PSNR (dB)": f"{ceiling['psnr']['mean']:.2f}",
        "VAE round trip: SSIM": f"{ceiling['ssim']['mean']:.3f}",
        "unconditional samples: largest mean error (data std)": f"{quality['mean_error']:.3f}",
        "unconditional samples: covariance error (relative)": f"{quality['cov_error']:.3f}",
        "unconditional samples: variance / data variance": f"{quality['variance_ratio']:.3f}",
        "unconditional samples: best r with a prior image (mean)": f"{quality['nn_r']:.3f}",
        "VAE training (s)": f"{h['vae_time_s']:,.1f}",
        f"diffusion training, {prior.cfg.diffusion_steps:,} steps (s)": f"{h['diffusion_time_s']:,.1f}"}})


def _sampler_label(sampler: str) -> str:
    """ "ddpm, 1000 steps" -> "DDPM (ancestral), 1,000 steps": chapter 01's names of the samplers."""
    from .diagnostics import SAMPLER_LABELS

    kind, _, steps = sampler.partition(", ")
    n = steps.split()[0] if steps else ""
    return SAMPLER_LABELS.get(kind, kind) + (f", {int(n):,} steps" if n.isdigit() else (f", {steps}" if steps else ""))


def known_answer_display(known: pd.DataFrame) -> pd.DataFrame:
    """:func:`ldm_core.study.sampler_check.known_answer_table` for a page: one row per (schedule, sampler), short headers.

    The closed-form columns do not depend on the prediction (the denoiser is exact), so they are shown once; whether
    the library passes and how far a small denoiser error moves the final sample are shown per prediction, as
    "yes" / "no" and as a factor.
    """
    rows = {}
    for (kind, sampler), g in known.groupby(level=[0, 1], sort=False):
        g = g.droplevel([0, 1])
        first = g.iloc[0]
        row = {"cov. error (exact)": f"{first['covariance error (closed form)']:.3f}",
               "variance ratio (exact)": f"{first['variance ratio (closed form)']:.3f}",
               "library − exact (MC)": " / ".join(f"{g.loc[p, 'library vs closed form (MC)']:.3f}" for p in g.index),
               "MC s.e.": f"{first['MC standard error']:.3f}",
               "passes": " / ".join("yes" if g.loc[p, "library passes"] else "no" for p in g.index)}
        for p in g.index:
            row[f"error ×, {'ε' if p == 'eps' else p}-prediction"] = large_number(g.loc[p, "bias amplification"])
        rows[(kind, _sampler_label(sampler))] = row
    preds = " / ".join("ε" if p == "eps" else p for p in known.index.get_level_values(2).unique())
    out = pd.DataFrame.from_dict(rows, orient="index").rename_axis(["schedule", "sampler"])
    return out.rename(columns={"library − exact (MC)": f"library − exact (MC, {preds})",
                               "passes": f"passes ({preds})"})


def _val_point(result: VariantResult, metric: str, interval: bool):
    """The first seed's validation mean of ``metric``, or (``interval``) its 95% CI as (low, high)."""
    if not interval:
        return val_score(result, metric)
    v = result.runs[0].val_metrics[metric]
    return float(v["ci_low"]), float(v["ci_high"])


def voxel_curve(results: Mapping[str, VariantResult], *, kind: str, n_voxels_all: int,
                metrics: Sequence[str] = ("psnr", "ssim", "pixel_r"), interval: bool = False) -> dict[str, dict]:
    """Validation score against the number of voxels read, for the maps of ``kind``, keyed by the runs' own settings.

    Each x is read from the result's recorded map (``ldm_cfg["map"]["n_voxels"]``; None: ``n_voxels_all``), never
    from a list position, so a value cannot be drawn at another count's place. Returns ``{metric label: {x: y}}``
    (:func:`ldm_core.study.plots.sensitivity_plot`'s input), or with ``interval`` ``{metric label: {x: (ci_low, ci_high)}}``
    (its ``ci``).
    """
    out: dict = {metric_label(m, short=True): {} for m in metrics}
    for r in results.values():
        cfg = r.ldm_cfg["map"]
        if cfg["kind"] != kind:
            continue
        x = int(cfg["n_voxels"] or n_voxels_all)
        for m in metrics:
            out[metric_label(m, short=True)][x] = _val_point(r, m, interval)
    return out


def strength_curve(results: Mapping[str, VariantResult], variants: Mapping[str, PriorVariant], *, noise_scale: float,
                   n_samples: int, average: str = "image", direct: str | None = None,
                   metrics: Sequence[str] = ("psnr", "ssim", "pixel_r"), interval: bool = False) -> dict[str, dict]:
    """Validation score against the refinement strength for one family of refinement decoders (``noise_scale``,
    ``average`` "image" or "latent", guidance 1, ``n_samples`` samples), keyed by each variant's own strength:
    ``{metric label: {strength: y}}``. ``direct`` names the direct decoder in ``results``, drawn at strength 0 (refining
    by 0 steps decodes the predicted code unchanged). ``interval``: each value is the 95% CI (low, high) instead."""
    out: dict = {metric_label(m, short=True): {} for m in metrics}
    for name, v in variants.items():
        d = v.decode
        if (d.mode == "refine" and d.average == average and d.noise_scale == noise_scale and d.guidance == 1.0
                and d.n_samples == n_samples and name in results):
            for m in metrics:
                out[metric_label(m, short=True)][float(d.strength)] = _val_point(results[name], m, interval)
    if direct is not None:
        for m in metrics:
            out[metric_label(m, short=True)][0.0] = _val_point(results[direct], m, interval)
    return out


def screen_followup_text(variants: Mapping[str, PriorVariant], *, chosen: str, guidance_grid: Sequence[float]) -> str:
    """Whether stage 3's second round (other guidance scales, a single sample of the winning diffusion decoder) ran,
    and why not when it did not, read from the screen's own variants (:func:`screen_decoders`)."""
    more = [n for n, v in variants.items()
            if is_ldm(v) and (v.decode.guidance != 1.0 or v.decode.n_samples == 1)]
    others = [f"{g:g}" for g in guidance_grid if g != 1.0]
    tried = (f"the guidance scale{'s' if len(others) > 1 else ''} {join_words(others)}" if others else "") + \
        (" and " if others else "") + "a single-sample version"
    if not more:
        return (f"Direct decoding won the first round, so {tried} were not screened: the protocol tries them only to "
                "refine a winning diffusion decoder. Every diffusion decoder here therefore lost at guidance 1 (no "
                "classifier-free guidance); section 8 shows the best one with a single sample, outside the selection.")
    first = next(iter(dict.fromkeys(n.rsplit(", ", 1)[0] for n in more)))
    return (f"A diffusion decoder ({first}) won the first round, so {tried} of it were screened too (the table's "
            f"last rows); the decoder chosen over both rounds is {chosen}.")


def prior_size_text(curve: Mapping[str, Mapping], name: str, *, n_fit: int, n_boot: int, metric: str = "psnr") -> str:
    """One sentence on :func:`prior_size_curve` for the decoder ``name``: the validation score with the fewest and with
    all unpaired images, their paired difference per validation image (95% CI), and the share of that gain each
    intermediate size reaches (only when the gain's CI lies above 0)."""
    pts = {int(k): v for k, v in curve[name].items()}
    sizes = sorted(pts)
    lo, hi = sizes[0], sizes[-1]
    unit, digits = (" dB", 2) if metric == "psnr" else ("", 3)
    fmt = f".{digits}f"
    label = metric_label(metric, short=True).replace(" (dB)", "")
    if lo == hi:
        return (f"With the decoder '{name}', the validation {label} is {pts[lo][metric]['mean']:{fmt}}{unit} with {hi:,} unpaired "
                "images, the only size measured.")
    c = paired_comparison(pts[hi][metric]["per_image"], pts[lo][metric]["per_image"], n_boot=n_boot)
    fewest = "no unpaired images (the fitting images alone)" if lo == 0 else f"{lo:,} unpaired images"
    text = (f"With the decoder '{name}', the validation {label} goes from {pts[lo][metric]['mean']:{fmt}}{unit} with {fewest} to "
            f"{pts[hi][metric]['mean']:{fmt}}{unit} with all {hi:,}, a difference of "
            f"{ci_text(c, digits, sign=True, unit=unit)} per validation image")
    mids = sizes[1:-1]
    if c["ci_low"] > 0 and mids:
        gain = pts[hi][metric]["mean"] - pts[lo][metric]["mean"]
        text += "; " + join_words([f"{n:,} images reach {(pts[n][metric]['mean'] - pts[lo][metric]['mean']) / gain:.0%}"
                             for n in mids]) + " of that gain"
    elif c["ci_low"] <= 0:
        text += ", not separable from no gain"
    return text + f" (one draw of images per size, seed 0; {n_fit} paired trials throughout)."


# ----------------------------------------------------------------------------- perception (issue 17 §4)


_NAN = float("nan")


@dataclass
class Perception:
    """The chapter's perception classifier (:func:`ldm_core.perception_net.train_perception_net`), or why there is none.

    net : PerceptionNet or None; class_names : the dataset's code -> class name; note : why the perception metrics
    are unavailable ("" when they are available).
    """

    net: object | None
    class_names: dict
    note: str = ""

    @property
    def available(self) -> bool:
        return self.net is not None

    def scores(self, recons: np.ndarray, targets: np.ndarray, labels: np.ndarray, *, n_boot: int,
               seed: int = 0) -> dict[str, dict]:
        """:func:`ldm_core.metrics.perception_metrics` of ``recons`` ((N, S, S) or (K, N, S, S)), or NaN with the
        note for each of ``digit_acc``, ``feature_id2``, ``kid_digit`` when no classifier is available."""
        from ..metrics import PERCEPTION_METRICS, perception_metrics

        if self.net is None:
            return {m: {"mean": _NAN, "ci_low": _NAN, "ci_high": _NAN, "note": self.note} for m in PERCEPTION_METRICS}
        return perception_metrics(recons, targets, labels, net=self.net, class_names=self.class_names, n_boot=n_boot,
                                  seed=seed)


def perception_model(prior_images: PriorImages, data: StudyData, *, seed: int = 0,
                     cache_dir: str | Path | None = None) -> Perception:
    """The perception classifier, trained on the guarded unpaired prior images only (their labels and class names).

    It is unavailable -- :class:`Perception` with ``net=None`` and a note, never an error -- when the prior images
    carry no labels, when a class of the stimuli is not among the prior's classes, or when the classifier cannot be
    trained on them (e.g. a single class).
    """
    from ..perception_net import train_perception_net

    stim_names = {int(k): str(v) for k, v in data.class_names.items()}
    names = getattr(prior_images, "class_names", None)
    codes = sorted({int(c) for c in np.unique(prior_images.labels)})
    if not names or any(c not in names for c in codes):
        return Perception(None, stim_names, "the perception metrics are unavailable: the unpaired prior images carry no "
                                            "class labels, so no classifier can be trained on them")
    prior_classes = sorted({names[c] for c in codes})
    missing = sorted(set(stim_names.values()) - set(prior_classes))
    if missing:
        stimuli = ", ".join(sorted(set(stim_names.values())))
        return Perception(None, stim_names, f"the perception metrics are unavailable: the prior's classes "
                                            f"({', '.join(prior_classes)}) differ from the stimuli's ({stimuli})")
    try:
        net = train_perception_net(prior_images.images, prior_images.labels, class_names=dict(names), seed=seed,
                                   cache_dir=cache_dir)
    except ValueError as e:
        return Perception(None, stim_names, f"the perception metrics are unavailable: no classifier could be trained "
                                            f"on the prior images ({e})")
    return Perception(net, stim_names)


def add_perception(metrics: Mapping[str, dict], recons: Mapping[str, np.ndarray], targets: np.ndarray,
                   labels: np.ndarray, perception: Perception, *, n_boot: int) -> dict[str, dict]:
    """Every model's evaluation with ``digit_acc``, ``feature_id2`` and ``kid_digit`` added beside ``psnr``.

    ``metrics`` and ``recons`` share their keys (e.g. :func:`ldm_core.study.runs.chapter_metrics`' ``"<model>@seed<k>"``
    and the baselines); returns a new dict, the inputs unchanged.
    """
    return {k: {**v, **perception.scores(recons[k], targets, labels, n_boot=n_boot)} for k, v in metrics.items()}


def perception_distortion(recons: Mapping[str, np.ndarray], images: np.ndarray, labels: np.ndarray,
                          perception: Perception, *, n_boot: int) -> dict[str, dict]:
    """Each decoder's place on the perception-distortion plane (Blau and Michaeli 2018) on one split.

    Parameters
    ----------
    recons : {decoder: ndarray (N, S, S)}
        Reconstructions of the same N trials (``images``, ``labels``).

    Returns
    -------
    {decoder: {"psnr", "ssim", "pixel_r", "digit_acc", "feature_id2", "kid_digit": {"mean", "ci_low", "ci_high", ...}}}
    """
    out = {}
    for name, r in recons.items():
        ev = evaluate(r, images, labels, n_boot=n_boot, n_perm=0)
        out[name] = {**{m: ev[m] for m in ("psnr", "ssim", "pixel_r")},
                     **perception.scores(r, images, labels, n_boot=n_boot)}
    return out


def _ci_apart(a: dict, b: dict) -> int:
    """+1 if a's 95% CI lies wholly above b's, -1 wholly below, 0 if they overlap or are undefined."""
    if not all(np.isfinite([a["ci_low"], a["ci_high"], b["ci_low"], b["ci_high"]])):
        return 0
    return 1 if a["ci_low"] > b["ci_high"] else -1 if a["ci_high"] < b["ci_low"] else 0


def _against_direct(better: Sequence[str], worse: Sequence[str], tied: Sequence[str]) -> str:
    """ "is worse than direct decoding on PSNR and SSIM and not separable from it on KID" and the like."""
    parts = []
    if better:
        parts.append(f"better than direct decoding on {join_words(better)}")
    if worse:
        parts.append(f"worse {'than direct decoding ' if not parts else ''}on {join_words(worse)}")
    if tied:
        parts.append(f"not separable from {'it' if parts else 'direct decoding'} on {join_words(tied, 'or')}")
    return "is " + join_words(parts)


def perception_distortion_text(points: Mapping[str, dict], *, direct: str, diffusion: Mapping[str, str],
                               perception: Perception, n_boot: int = 2000) -> dict:
    """What each diffusion decoder gains and loses against direct decoding, axis by axis, generated from ``points``.

    ``diffusion`` maps a phrase ("a single diffusion sample", "the mean of 16 decoded samples") to its decoder in
    ``points``; each decoder gets its own clause, so a single sample's cost is never read as the mean's. PSNR and
    SSIM are compared image by image (paired bootstrap CI of the difference: better or worse when the CI excludes 0,
    else not separable); KID is a set statistic, so its values are compared by their CIs (apart, or overlapping: not
    separable). Lower KID is better.

    Returns
    -------
    dict
        ``text`` (one sentence per decoder with its numbers, for the section), ``summary`` (one clause per decoder,
        for the answer), ``by_decoder`` ({decoder: {"better", "worse", "not_separable": [axes]}}), and ``gains`` /
        ``costs`` (the axes on which any decoder is better / worse, in the order PSNR, SSIM, KID).
    """
    d = points[direct]
    sentences, clauses, by = [], [], {}
    for phrase, name in diffusion.items():
        p = points[name]
        axes: dict[str, list] = {"better": [], "worse": [], "not_separable": []}
        nums = []
        for m, axis, unit, digits in (("psnr", "PSNR", " dB", 2), ("ssim", "SSIM", "", 3)):
            c = paired_comparison(p[m]["per_image"], d[m]["per_image"], n_boot=n_boot)
            nums.append(f"{axis} {ci_text(c, digits, sign=True, unit=unit)}")
            axes["better" if c["ci_low"] > 0 else "worse" if c["ci_high"] < 0 else "not_separable"].append(axis)
        kid_part = ""
        if perception.available:
            k, kd = p["kid_digit"], d["kid_digit"]
            side = _ci_apart(k, kd)
            axes["better" if side < 0 else "worse" if side > 0 else "not_separable"].append("KID")
            where = "lower, CIs apart" if side < 0 else "higher, CIs apart" if side > 0 else "CIs overlap"
            kid_part = f"; its KID is {ci_text(k, 3)} against direct decoding's {ci_text(kd, 3)} ({where})"
        verdict = _against_direct(axes["better"], axes["worse"], axes["not_separable"])
        sentences.append(f"{phrase[0].upper()}{phrase[1:]} {verdict}: per image, {join_words(nums)} against direct "
                         f"decoding{kid_part}.")
        clauses.append(f"{phrase} {verdict}")
        by[name] = axes
    order = ["PSNR", "SSIM", "KID"]
    gains = [a for a in order if any(a in v["better"] for v in by.values())]
    costs = [a for a in order if any(a in v["worse"] for v in by.values())]
    summary = "on the validation trials, " + "; ".join(clauses)
    if perception.available:
        text = " ".join(sentences) + " Lower KID is better."
    else:
        summary += f"; {perception.note}"
        text = " ".join(sentences) + f" {perception.note[0].upper()}{perception.note[1:]}."
    return {"text": text, "summary": summary, "by_decoder": by, "gains": gains, "costs": costs}


def _row_set(images: np.ndarray) -> set[bytes]:
    return {r.tobytes() for r in np.ascontiguousarray(images, dtype=np.float32).reshape(len(images), -1)}


def kid_reference(perception: Perception, pretrain_images: np.ndarray) -> dict:
    """Where KID's reference images come from, and how many of them the image prior was trained on.

    The reference is the perception classifier's held-out share of the guarded unpaired images: unseen by the
    classifier, but (when the prior trained on every guarded image) part of the image prior's training set, which
    favours decoders built on that prior on the KID axis. Counted, not assumed: each reference image is looked up,
    bit for bit, among ``pretrain_images``.

    Returns
    -------
    dict
        ``available``; when available ``n_images``, ``in_prior_training_set`` (count), ``unseen_by_classifier``
        (True) and ``note`` (a sentence for the page and for ``metrics.json``).
    """
    if not perception.available:
        return {"available": False, "note": perception.note}
    ref = np.asarray(perception.net.heldout_images)
    prior_rows = _row_set(pretrain_images)
    n_in = sum(r in prior_rows for r in _row_set(ref)) if len(ref) else 0
    note = (f"KID's reference set is the {len(ref):,} guarded unpaired images held out from the perception "
            "classifier's training, so the classifier never saw them")
    if n_in:
        note += (f"; {n_in:,} of them are also among the image prior's training images, which favours the decoders "
                 "built on that prior (the image-prior decoders and autoencoder + ridge) on this axis")
    else:
        note += "; none of them is among the image prior's training images"
    return {"available": True, "n_images": int(len(ref)), "in_prior_training_set": int(n_in),
            "unseen_by_classifier": True, "note": note}


def kid_text(rows: Mapping[str, dict], *, n_images: int, split: str, n_recons: Mapping[str, int] | None = None,
             reference: Mapping | None = None) -> str:
    """What a reader needs to read a KID column, from the rows shown: the estimator can be negative, how wide its
    CIs are here, the reference set, and -- when rows have different numbers of reconstructions per image -- which
    rows are compared (only CIs that do not overlap separate two rows).

    Parameters
    ----------
    rows : {row label: {"kid_digit": {"mean", "ci_low", "ci_high"}, ...}}
    n_images : int
        The images each row reconstructs (KID's sample size).
    split : str
        "validation" or "test", for the sentence.
    n_recons : {row label: K}, optional
        Reconstructions per image (seeds or samples); rows with more than the fewest are compared with the others
        by CI overlap only.
    reference : dict, optional
        :func:`kid_reference`'s result (its note is appended).
    """
    kids = {n: r["kid_digit"] for n, r in rows.items() if "kid_digit" in r and np.isfinite(r["kid_digit"]["mean"])}
    if not kids:
        return reference["note"] + "." if reference and reference.get("note") else ""
    half = max((k["ci_high"] - k["ci_low"]) / 2 for k in kids.values())
    text = (f"KID is an unbiased estimator of a squared distance between feature distributions, so it can be negative "
            f"(0: no difference beyond sampling noise); with {n_images} {split} images its 95% CIs are wide (half-widths"
            f" up to {half:.2f} here; they resample the reconstructions, with the reference images held fixed, so a set of "
            "identical reconstructions gets a CI of zero width), so two KIDs are told apart only when their CIs do not "
            "overlap.")
    if n_recons:
        counts = {n: int(n_recons.get(n, 1)) for n in kids}
        if len(set(counts.values())) > 1:
            few = min(counts.values())
            many = {n: c for n, c in counts.items() if c > few}
            others = [n for n in kids if counts[n] == few]
            them = "it" if len(many) == 1 else "both" if len(many) == 2 else "all of them"
            sides = {o: {_ci_apart(kids[o], kids[n]) for n in many} for o in others}
            higher = [o for o in others if sides[o] == {1}]
            lower = [o for o in others if sides[o] == {-1}]
            mixed = [f"{o} ({'higher' if _ci_apart(kids[o], kids[n]) > 0 else 'lower'} than {n})"
                     for o in others if o not in higher + lower for n in many if _ci_apart(kids[o], kids[n])]
            found = ([f"{join_words(higher)} lie{'s' if len(higher) == 1 else ''} higher than {them}"] if higher else []) \
                + ([f"{join_words(lower)} lie{'s' if len(lower) == 1 else ''} lower than {them}"] if lower else []) + mixed
            text += (f" {join_words(list(many))} pool{'s' if len(many) == 1 else ''} "
                     f"{join_words(sorted({str(c) for c in many.values()}))} reconstructions per image (reconstructions of "
                     f"one image are never paired with each other) and the other rows {few} each; "
                     + ("; ".join(found) + ", CIs apart; the other rows' KIDs are not separable from "
                        + ("it" if len(many) == 1 else "them") if found
                        else f"no other row's KID is separable from {'it' if len(many) == 1 else 'them'}") + ".")
    if reference and reference.get("note"):
        text += f" {reference['note']}."
    return text


def published_comparison(models: Mapping[str, dict], *, method: str = "DGMM") -> pd.DataFrame:
    """Our models beside a published method's quoted means (:data:`ldm_core.study.literature.PUBLISHED`), metric by metric.

    ``models`` maps a row label to ``{metric: {"mean", "ci_low", "ci_high"}}`` (test, seeds pooled) with pixel_r, mse
    and ssim. The comparison only says where our whole 95% CI lies: above or below the published mean, else not
    separable -- never "better": the published metrics are not defined like ours and the published methods used no
    unpaired images (:func:`ldm_core.study.literature.caveats_markdown`), so it is a loose comparison.

    Raises
    ------
    KeyError
        If ``method`` is not a row of the published table.
    """
    from .literature import PUBLISHED

    entry = next((e for e in PUBLISHED if e["method"] == method), None)
    if entry is None:
        raise KeyError(f"no published row {method!r}; rows: {[e['method'] for e in PUBLISHED]}")
    rows = {}
    for label, pooled in models.items():
        for m, shown in (("pixel_r", "PCC"), ("mse", "MSE (lower is better)"), ("ssim", "SSIM")):
            pub = entry[m][0] if isinstance(entry[m], tuple) else entry[m]
            v = pooled[m]
            if v["ci_low"] > pub:
                where = "above the published mean (loose comparison)"
            elif v["ci_high"] < pub:
                where = "below the published mean (loose comparison)"
            else:
                where = "not separable (the CI contains the published mean)"
            rows[(label, shown)] = {f"{method}, as published (quoted)": f"{pub:.3f}",
                                    "measured here (our definitions)": ci_text(v, 3), "comparison": where}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["our model", "metric"])


def paired_rows(selected_fit: dict, selected_all: dict, bases: BaselineScores, *, n_fit: int, n_all: int,
                reference: str = "autoencoder + ridge", n_boot: int) -> dict:
    """The paired test comparisons of the selected model, each shown once.

    Against the best baseline (chosen on validation) fitted on the fitting trials and refitted on all, and against
    ``reference`` (the image prior alone) at the fitting trials -- unless the reference is the best baseline, when
    that row would repeat the first. Returns ``{"rows": {label: paired_comparisons}, "best_fit": label, "best_all":
    label, "reference_fit": label}`` (``reference_fit`` is ``best_fit`` when they coincide).
    """
    from ..metrics import paired_comparisons

    best = bases.best
    same = best == reference
    tag = " (best baseline on validation" + ("; the image prior alone)" if same else ")")
    best_fit = f"fitted on {n_fit} trials − {model_label(best)}{tag}"
    best_all = f"refitted on {n_all} trials − {model_label(best)}{tag}"
    rows = {best_fit: paired_comparisons(selected_fit, bases.test[best], n_boot=n_boot),
            best_all: paired_comparisons(selected_all, bases.test_all[best], n_boot=n_boot)}
    ref_fit = best_fit
    if not same and reference in bases.test:
        ref_fit = f"fitted on {n_fit} trials − {model_label(reference)} (the image prior alone)"
        rows[ref_fit] = paired_comparisons(selected_fit, bases.test[reference], n_boot=n_boot)
    return {"rows": rows, "best_fit": best_fit, "best_all": best_all, "reference_fit": ref_fit}


# ----------------------------------------------------------------------------- robustness (issue 17 §5, exploratory)


def guard_at(raw: PriorImages, references: np.ndarray, threshold: float, *, max_shift: int) -> np.ndarray:
    """Boolean mask of the images the leakage guard keeps at ``threshold`` (shifted r <= threshold with every
    reference): :func:`ldm_core.leakage.drop_near_duplicates`'s rule, also for thresholds looser than the 0.9 it
    accepts (a sensitivity analysis only; the published guard is drop_near_duplicates')."""
    r = max_shifted_correlation(raw.images, references, max_shift=max_shift)[0]
    return r <= threshold


def leak_sensitivity(data: StudyData, raw: PriorImages, variant: PriorVariant, thresholds: Sequence[float], *,
                     published: float, max_shift: int, seed: int, n_boot: int, cache_dir: str | Path | None,
                     pretrain_images: np.ndarray | None = None) -> dict[float, dict]:
    """The selected model's test scores (one seed, map on the fitting trials) with the guard at each threshold.

    At each threshold of ``thresholds`` and ``published`` the prior is retrained on the images the guard keeps plus the
    fitting trials' images. A direct decoder uses only the prior's VAE, so only the VAE is trained (the denoiser would
    not change its images); a diffusion decoder retrains the whole prior. ``pretrain_images``, when given, must be the
    published threshold's image set (checked: the published row is the published model).

    Returns
    -------
    {threshold: {"n_kept", "n_dropped", "max_r_kept_test", "published", "seconds", "test": {metric: mean and CI},
                 "evaluation": the full :func:`ldm_core.metrics.evaluate` result, "recon_test": ndarray (N, S, S)}}
        (``evaluation`` and ``recon_test`` are for the results files, not for ``metrics.json``'s extra.)
    """
    import time

    from ..prior import images_checksum

    refs = np.concatenate([data.images_val, data.images_test])
    r_test = max_shifted_correlation(raw.images, data.images_test, max_shift=max_shift)[0]
    out = {}
    for t in sorted({float(x) for x in thresholds} | {float(published)}):
        t0 = time.perf_counter()
        keep = guard_at(raw, refs, t, max_shift=max_shift)
        images = np.concatenate([raw.images[keep], data.images_fit])
        if t == float(published) and pretrain_images is not None \
                and images_checksum(images) != images_checksum(pretrain_images):
            raise ValueError(f"leak_sensitivity: the guard at the published threshold {published:g} keeps another "
                             "image set than the chapter's prior was trained on")
        if is_ldm(variant):
            res = run_prior_variants({"selected": variant}, data, images, seeds=[seed], n_boot=n_boot,
                                     cache_dir=cache_dir, progress=False)["selected"]
            test, recon = res.runs[0].test_metrics, res.runs[0].recon_test
        else:
            dec = build_decoder(data, images, variant, seed=seed, cache_dir=cache_dir, progress=False, vae_only=True)
            recon = dec.reconstruct(data.fmri_test, variant.decode, seed=seed)
            test = evaluate(recon, data.images_test, data.labels_test, n_boot=n_boot, n_perm=0)
        out[t] = {"n_kept": int(keep.sum()), "n_dropped": int((~keep).sum()),
                  "max_r_kept_test": float(r_test[keep].max()) if keep.any() else _NAN,
                  "published": t == float(published), "seconds": time.perf_counter() - t0,
                  "test": {m: {k: test[m][k] for k in ("mean", "ci_low", "ci_high")}
                           for m in ("psnr", "ssim", "pixel_r")},
                  "evaluation": test, "recon_test": np.asarray(recon)}
    return out


def leak_sensitivity_table(rows: Mapping[float, dict]) -> pd.DataFrame:
    """:func:`leak_sensitivity` for a page: one row per guard threshold."""
    def cell(m, v):
        return ci_text(v, 2 if m == "psnr" else 3)

    table = {f"{t:g}" + (" (published)" if r["published"] else ""): {
        "prior images kept": f"{r['n_kept']:,}", "dropped": f"{r['n_dropped']:,}",
        "largest r of a kept image with a test stimulus": f"{r['max_r_kept_test']:.3f}",
        **{metric_label(m, short=True): cell(m, r["test"][m]) for m in ("psnr", "ssim", "pixel_r")}}
        for t, r in rows.items()}
    return pd.DataFrame.from_dict(table, orient="index").rename_axis("guard threshold (shifted r)")


def seed_bootstrap_table(results: Mapping[str, VariantResult], *, metrics: Sequence[str] = ("psnr", "ssim", "pixel_r"),
                         n_boot: int) -> tuple[pd.DataFrame, dict]:
    """How much resampling seeds as well as images widens each model's test CI.

    For each model and metric: the mean, the CI over images of the seed-averaged per-image values (the chapter's
    CIs), and :func:`ldm_core.metrics.two_level_bootstrap_ci` over the (seeds x images) table, with the ratio of their
    widths. Returns the page table and the record ``{model: {metric: {...}}}``.
    """
    from ..metrics import two_level_bootstrap_ci

    record: dict = {}
    rows = {}
    for name, res in results.items():
        record[name] = {}
        for m in metrics:
            per = np.array([r.test_metrics[m]["per_image"] for r in res.runs], dtype=np.float64)  # (seeds, N)
            pooled = res.pooled(m, "test", n_boot=n_boot)
            lo2, hi2 = two_level_bootstrap_ci(per, n_boot=n_boot)
            w1, w2 = pooled["ci_high"] - pooled["ci_low"], hi2 - lo2
            record[name][m] = {"mean": pooled["mean"], "ci_images": [pooled["ci_low"], pooled["ci_high"]],
                               "ci_seeds_and_images": [lo2, hi2], "width_ratio": float(w2 / w1) if w1 > 0 else _NAN,
                               "n_seeds": int(per.shape[0])}
            digits = 2 if m == "psnr" else 3
            rows[(model_label(name), metric_label(m, short=True))] = {
                "mean": f"{pooled['mean']:.{digits}f}",
                "95% CI over images": f"[{pooled['ci_low']:.{digits}f}, {pooled['ci_high']:.{digits}f}]",
                f"95% CI over seeds ({per.shape[0]}) and images": f"[{lo2:.{digits}f}, {hi2:.{digits}f}]",
                "width ratio": f"{record[name][m]['width_ratio']:.2f}"}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["model", "metric"]), record


def stability_choices(screen2: Mapping[str, VariantResult], chosen_map: MapConfig, screen3: Mapping[str, VariantResult],
                      chosen: str, best_diffusion: str, *, n_voxels: int | None, select_metric: str) -> dict:
    """The chapter's validation choices for :func:`selection_stability_table`, read from the screens' own settings:
    the map kind (at the screen's ``n_voxels``), the voxel count (of the chosen kind), direct decoding against the best
    diffusion decoder, and the decoder among every stage-3 candidate. A choice with a single candidate is left out."""
    kinds = {n: r for n, r in screen2.items() if r.ldm_cfg["map"]["n_voxels"] == n_voxels}
    counts = {n: r for n, r in screen2.items() if r.ldm_cfg["map"]["kind"] == chosen_map.kind}

    def named(results, **want):
        return next(n for n, r in results.items() if all(r.ldm_cfg["map"][k] == v for k, v in want.items()))

    pair = {n: screen3[n] for n in (DIRECT, best_diffusion)}
    choices = {
        "fMRI → latent map kind": (named(kinds, kind=chosen_map.kind), kinds),
        "voxels read": (named(counts, n_voxels=chosen_map.n_voxels), counts),
        "direct decoding or the best diffusion decoder": (max(pair, key=lambda n: val_score(pair[n], select_metric)),
                                                          pair),
        "decoder among every stage-3 candidate": (chosen, dict(screen3)),
    }
    return {k: v for k, v in choices.items() if len(v[1]) > 1}


def selection_stability_table(choices: Mapping[str, tuple[str, Mapping[str, VariantResult]]], *, metric: str,
                              n_boot: int, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """How often each validation choice holds when the validation trials are resampled.

    ``choices`` maps a choice (e.g. "voxel count") to (the name chosen on validation, {candidate: result}); the
    candidates' first-seed validation per-trial ``metric`` values go to :func:`ldm_core.metrics.selection_stability`.
    Returns the page table and ``{choice: {"chosen", "shares"}}``.
    """
    from ..metrics import selection_stability

    record, rows = {}, {}
    for choice, (chosen, cands) in choices.items():
        per = {n: np.asarray(r.runs[0].val_metrics[metric]["per_image"], dtype=np.float64) for n, r in cands.items()}
        shares = selection_stability(per, n_boot=n_boot, seed=seed, higher_is_better=metric != "mse")
        record[choice] = {"chosen": chosen, "shares": shares}
        others = sorted(((s, n) for n, s in shares.items() if n != chosen), reverse=True)
        rows[choice] = {"chosen on validation": chosen, "candidates": len(cands),
                        "share of resamples it stays best": f"{shares[chosen]:.2f}",
                        "most frequent alternative": f"{others[0][1]} ({others[0][0]:.2f})" if others else "–"}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("validation choice"), record


def count_test_uses(*, n_seeds: int, baselines: Sequence[str], n_leak: int) -> dict:
    """How many decoders this chapter scores on the test trials, planned and exploratory, with a sentence for the page.

    Planned: the selected model fitted on the fitting trials and refitted on all (each over ``n_seeds`` seeds) and
    every baseline both ways. Exploratory: ``n_leak`` extra leakage-guard settings of the selected model (seed 0). The
    chapter saves the test reconstructions of every one of them in its ``reconstructions.npz``, which is what chapter
    08's test-use table counts, so the two chapters count the same decoders. The perception metrics and the two-level
    bootstrap re-score the same reconstructions and add no decoder.
    """
    planned = 2 + 2 * len(baselines)
    runs = 2 * n_seeds + 2 * len(baselines) + n_leak
    text = (f"This chapter scores {planned + n_leak} decoders on the test trials: {planned} by design -- the selected "
            f"model fitted on the fitting trials and refitted on all training trials ({n_seeds} "
            f"seed{'s' * (n_seeds > 1)} each) and the {len(baselines)} baselines both ways -- and {n_leak} exploratory "
            f"(the selected model with other leakage-guard thresholds); {runs} test evaluations in all, counting "
            "seeds. Its results hold the test reconstructions of all of them, which is what chapter 8's count of "
            "test-set use reads. No test number enters a choice.")
    return {"planned": planned, "exploratory": n_leak, "models": planned + n_leak, "saved": planned + n_leak,
            "evaluations": runs, "text": text}


def resolved_params(params: Mapping, prior_images: PriorImages) -> dict[str, str]:
    """What the page's parameter table shows for chapter 07's placeholder values (:meth:`ldm_core.study.chapter.Chapter.show`
    ``resolved``): the unpaired images ``auto`` found, the probe's steps when 0 means the prior's, and what the
    screen's voxel count and the guidance grid are for."""
    from .chapter import param_value

    src = params["prior_source"]
    file = prior_images.provenance()["file"]
    found = f"{Path(file).name} ({prior_images.n_images:,} images)"
    out = {"prior_source": found if Path(str(src)).name == Path(file).name else f"{src}: {found}"}
    steps = params["fit_probe_steps"]
    out["fit_probe_steps"] = f"{steps:,}" if steps else f"{params['vae_steps']:,} (the prior's)"
    nv = params["n_voxels"]
    out["n_voxels"] = f"{f'{nv:,}' if nv else 'all'} (the map-kind screen; section 4 then screens the count)"
    out["guidance_grid"] = (param_value(list(params["guidance_grid"])) + " (screened only if a diffusion decoder wins "
                            "stage 3)")
    return out
