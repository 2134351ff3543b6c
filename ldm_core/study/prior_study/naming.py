"""Models named for what they compute: a model is called an LDM only when its decoder samples with diffusion.
"""
from __future__ import annotations

from ...prior_ldm import DecodeConfig
from ..prior_runs import PriorVariant
from ...splits import StudyData


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
