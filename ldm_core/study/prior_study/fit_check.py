"""Does the prior represent the stimuli? A probe VAE's round trip on the validation stimuli against held-out
prior images (:func:`prior_fit_check`), with its rule, sentence and table.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ...metrics import bootstrap_ci
from ..names import ci_text, metric_label
from ...prior import PriorConfig
from ...prior_images import PriorImages
from ...splits import REPEAT_THRESHOLD, StudyData


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
    from ...splits import test_in_training
    from ...metrics import psnr, ssim
    from ...prior import pretrain_autoencoder

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
