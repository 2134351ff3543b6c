"""Chapter 07's page tables and curves: leakage, prior, known answers, voxel and strength curves, and their sentences.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from ...metrics import paired_comparison
from ..names import ci_text, join_words, metric_label
from ..prior_runs import PriorVariant
from ..runs import VariantResult
from .guard import val_score
from .naming import is_ldm
from .screens import large_number


# ----------------------------------------------------------------------------- page tables


def leakage_table(leak: dict, n_pretrain: int) -> pd.DataFrame:
    """What the leakage guard (:func:`ldm_core.study.prior_study.guarded_prior_images`'s ``leak``) found, dropped and
    kept, as one column."""
    return pd.DataFrame({"value": {
        "unpaired images found": f"{leak['n_before']:,}",
        "dropped as near-copies of a stimulus": f"{leak['n_dropped']:,}",
        "kept": f"{leak['n_after']:,}",
        "largest shifted r of a kept image with a test stimulus": f"{leak['max_r_kept_test']:.3f}",
        "prior training images (kept + the fitting trials)": f"{n_pretrain:,}"}}).rename_axis("leakage guard")


def prior_table(prior, ceiling: dict, quality: dict) -> pd.DataFrame:
    """A pretrained prior at a glance: its VAE round trip on validation (``ceiling``, an
    :func:`ldm_core.metrics.evaluate` result), its
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
    from ..diagnostics import SAMPLER_LABELS

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
    and why not when it did not, read from the screen's own variants
    (:func:`ldm_core.study.prior_study.screen_decoders`)."""
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
    """One sentence on :func:`ldm_core.study.prior_study.prior_size_curve` for the decoder ``name``: the validation
    score with the fewest and with
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
