"""Robustness of chapter 07's choices: other leakage-guard thresholds, seed bootstrap, selection stability, and the
count of test-set uses.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ...metrics import evaluate
from ..names import ci_text, metric_label, model_label
from ...leakage import max_shifted_correlation
from ...prior_images import PriorImages
from ..prior_runs import MapConfig, PriorVariant, build_decoder, run_prior_variants
from ..runs import VariantResult
from ...splits import StudyData
from .guard import DIRECT, val_score
from .naming import is_ldm
from .perception import _NAN


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

    from ...prior import images_checksum

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
    from ...metrics import two_level_bootstrap_ci

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
    from ...metrics import selection_stability

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
    from ..param_labels import param_value

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
