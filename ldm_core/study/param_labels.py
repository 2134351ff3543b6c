"""What a reader sees of a chapter's parameters: reader names (:data:`PARAM_LABELS`, else the first clause of the
parameter's doc line, cut at :data:`LABEL_LENGTH`) and values written for people (:func:`param_value`: powers of ten,
thousands separators, file names without folders, words for choices), for the table
:meth:`ldm_core.study.chapter.Chapter.param_table`
(:mod:`ldm_core.study.chapter`) shows.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["PARAM_LABELS", "PARAM_FORMATTERS", "LABEL_LENGTH", "param_label", "param_value"]


#: Reader names of parameters in the table a page shows; others get their doc's first clause (see :func:`param_label`).
PARAM_LABELS = {
    "data_dir": "data file",
    "class_names": "class names",
    "seed": "seed",
    "split_seed": "seed of the validation split",
    "val_fraction": "validation share of the training trials",
    "cv_folds": "cross-validation folds",
    "n_boot": "bootstrap resamples",
    "n_perm": "permutations",
    "n_perm_decoding": "permutations of the class-decoding test",
    "n_seeds": "training seeds",
    "epochs": "epochs",
    "vae_epochs": "VAE epochs",
    "align_epochs": "alignment epochs",
    "batch_size": "batch size (trials)",
    "lr": "learning rate",
    "lr_grid": "learning rates swept",
    "unet_channels": "U-Net widths",
    "prediction": "denoiser predicts",
    "steps": "sampling steps",
    "n_samples": "samples averaged per trial",
    "select_metric": "selection metric (validation)",
    "targets": "targets (test, seeds pooled)",
    "candidates": "candidates",
    "prior_source": "unpaired prior images",
    "leak_threshold": "leakage guard: drop above pixel r",
    "leak_max_shift": "leakage guard: largest shift (pixels)",
    "latent_dim": "prior latent size",
    "kl_weight": "prior VAE KL weight (β)",
    "vae_steps": "prior VAE steps",
    "diffusion_steps": "prior diffusion steps",
    "n_voxels": "voxels read by the map",
    "n_voxels_grid": "voxel counts screened",
    "decode_steps": "decoding steps",
    "guidance_grid": "guidance scales screened",
    "original_epochs": "epochs of the original model",
    "longer_epochs": "epochs of the longer training",
    "probe_timesteps": "timesteps probed",
    "w_perceptual": "perceptual loss weight",
    "w_ssim": "SSIM loss weight",
    "w_adv": "adversarial loss weight",
    "adv_kind": "adversarial loss",
    "img_loss_t_frac": "image losses: share of timesteps",
    "perceptual_net": "perceptual feature network",
    "weight_decay": "weight decay",
    "encoder_tokens": "attention encoder: tokens",
    "brain_aware_dropout": "attention encoder: dropout",
    "conditionings": "conditionings compared",
    "cfg_dropout": "condition dropout (for guidance)",
    "vae_kl_weight": "VAE KL weight",
    "kl_grid": "VAE KL weights compared",
    "fmri_noise_grid": "fMRI noise levels (std)",
    "voxel_dropout_grid": "voxel dropout rates",
    "augment_degrees": "image jitter: rotation (degrees)",
    "augment_translate": "image jitter: shift (share of the side)",
    "w_coarse": "coarse-scale loss weight",
    "short_diffusion_steps": "short diffusion budget (x0 vs eps)",
    "map_kinds": "fMRI → latent maps screened",
    "strengths": "refinement strengths screened",
    "noise_scales": "observation-noise scales screened",
    "prior_sizes": "prior sizes (unpaired images)",
    "spatial_vae_epochs": "spatial VAE epochs (latent-ridge baseline)",
    "n_show_samples": "samples shown per trial",
    "n_spread_samples": "samples per trial for the sample spread",
    "sweep_lrs": "sweep: learning rates",
    "sweep_batch_sizes": "sweep: batch sizes",
    "sweep_encoder_dims": "sweep: encoder widths",
    "sweep_epochs": "sweep: diffusion epochs",
    "sweep_vae_epochs": "sweep: VAE epochs",
    "sweep_align_epochs": "sweep: alignment epochs",
    "scaling_sizes": "learning curve: fitting-trial counts",
    "scaling_draws": "learning curve: draws per size",
    "scaling_epochs": "learning curve: diffusion epochs (full size)",
    "scaling_vae_epochs": "learning curve: VAE epochs (full size)",
    "scaling_align_epochs": "learning curve: alignment epochs (full size)",
    "recon_steps_grid": "sampling steps timed",
    "leak_sensitivity": "leakage guard: other thresholds tried",
    "prior_holdout_fraction": "prior-fit check: held-out share",
    "fit_probe_steps": "prior-fit check: probe VAE steps",
    "fit_margin_db": "prior-fit check: PSNR margin (dB)",
    "fit_margin_ssim": "prior-fit check: SSIM margin",
}


def _candidates_text(value) -> str:
    from .sweep import describe_candidates  # lazy: the sweep module imports the training code

    return describe_candidates(value)


_CONDITIONING_WORDS = {"film": "FiLM", "add": "additive", "cross_attn": "cross-attention"}


def _metric_text(value) -> str:
    from .names import metric_label

    return metric_label(str(value))


def _feature_net_text(value) -> str:
    v = str(value)
    if v == "digits":
        return "self-trained digit CNN (scikit-learn's digits)"
    if v.startswith("vgg16:"):
        return f"VGG16, local weights {Path(v.split(':', 1)[1]).name}"
    return v


PARAM_FORMATTERS = {  # parameters whose value a reader needs in words, not as raw fields (name -> value -> text)
    "candidates": _candidates_text,
    "conditionings": lambda v: ", ".join(_CONDITIONING_WORDS.get(str(c), str(c)) for c in v),
    "select_metric": _metric_text,
    "perceptual_net": _feature_net_text,
    "prediction": lambda v: {"x0": "the clean latent x0", "eps": "the noise ε"}.get(str(v), str(v)),
}


LABEL_LENGTH = 50  # a fallback label longer than this is cut at its first ", " or " (" when that makes it fit


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def param_label(name: str, doc: str = "") -> str:
    """Reader name of a parameter: :data:`PARAM_LABELS`, else its doc's first clause (before ";"), without a
    closing parenthesis, else the name in words."""
    if name in PARAM_LABELS:
        return PARAM_LABELS[name]
    text = doc.split(";")[0].strip()
    if text.endswith(")") and " (" in text:
        text = text[: text.rindex(" (")].strip()
    if len(text) > LABEL_LENGTH:
        cuts = [i for i in (text.find(", "), text.find(" (")) if 15 <= i <= LABEL_LENGTH]
        text = text[: min(cuts)] if cuts else text
    return text or name.replace("_", " ")


def _number(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v.is_integer() and abs(v) >= 1000:
            return f"{v:,.0f}"
        if v != 0 and abs(v) < 1e-3:  # 1e-05 -> 10⁻⁵, 5e-04 -> 5×10⁻⁴
            mantissa, exponent = f"{v:e}".split("e")
            m = f"{float(mantissa):g}"
            power = "10" + str(int(exponent)).translate(_SUPERSCRIPT)
            return power if m == "1" else (f"−{power}" if m == "-1" else f"{m}×{power}")
        return f"{v:g}"
    return str(v)


def param_value(value, doc: str = "", *, kind: str = "") -> str:
    """A parameter's value written for people: lists as "200, 400, 800", mappings as "psnr ≥ 17, ssim ≥ 0.75"
    (a doc saying "-> minimum") or "1: six, 2: nine", nested mappings as "name (key value, ...); ...", a path (also
    one inside a text value) as its file name only (never a machine folder), 0 as "all" where the doc says "0: all"."""
    from .names import metric_label

    zero_all = "0: all" in doc

    def one(v):
        if zero_all and isinstance(v, int) and not isinstance(v, bool) and v == 0:
            return "all"
        return _number(v)

    if kind == "path" and isinstance(value, str):
        return Path(value).name or value
    if isinstance(value, str) and os.sep in value:  # a path inside a value ("vgg16:/x/y.pth", a prior .npz): its name
        return re.sub(r"[^\s:]*" + re.escape(os.sep) + r"[^\s:]*", lambda m: Path(m.group()).name or m.group(), value)
    if isinstance(value, dict):
        if "-> minimum" in doc:
            return ", ".join(f"{metric_label(k, short=True)} ≥ {one(v)}" for k, v in value.items())
        if any(isinstance(v, dict) for v in value.values()):
            return "; ".join(f"{k} (" + ", ".join(f"{a.replace('_', ' ')} {one(b)}" for a, b in v.items()) + ")"
                             if isinstance(v, dict) else f"{k}: {one(v)}" for k, v in value.items())
        return ", ".join(f"{k}: {one(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(param_value(v, doc) for v in value)
    return one(value)
