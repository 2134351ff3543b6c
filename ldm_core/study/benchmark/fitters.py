"""The learning curve's fitters: ridge, latent ridge, spatial LDM and prior LDM at a given number of trials.
"""
from __future__ import annotations


import numpy as np

from ...splits import StudyData
from .curves import Fitter


# ----------------------------------------------------------------------------- fitters


def ridge_fitter(n_folds: int = 5) -> Fitter:
    """Ridge from fMRI to pixels, alpha by K-fold CV inside the drawn trials."""
    from ...baselines import fit_ridge

    def fit(sub: StudyData, draw: int) -> np.ndarray:
        return fit_ridge(sub.fmri_fit, sub.images_fit, n_folds=min(n_folds, len(sub.images_fit))).predict(sub.fmri_val)

    return fit


def latent_ridge_fitter(*, ldm_cfg, train_cfg: dict, cache_dir, n_trials_reference: int, n_folds: int = 5) -> Fitter:
    """Ridge to the latent of the spatial VAE trained on the drawn trials' images (equal optimiser steps per size)."""
    from ...baselines import fit_latent_decoder
    from ..experiment import equal_steps_train_cfg, stage1_vae

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

    from ..experiment import equal_steps_train_cfg, run_variants

    def fit(sub: StudyData, draw: int) -> np.ndarray:
        tcfg = equal_steps_train_cfg(variant.train_cfg, n_trials=len(sub.images_fit), n_reference=n_trials_reference)
        v = dataclasses.replace(variant, train_cfg=tcfg)
        return run_variants({"v": v}, sub, seeds=[draw], n_boot=n_boot, cache_dir=cache_dir)["v"].runs[0].recon_val

    return fit


def prior_ldm_fitter(variant, *, pretrain_images: np.ndarray, cache_dir, n_boot: int = 200) -> Fitter:
    """The image-prior Brain LDM (a :class:`~ldm_core.study.prior_runs.PriorVariant`): its prior pretrained once per seed on
    ``pretrain_images`` (shared by every size), its map fitted on the drawn trials."""
    from ..prior_runs import run_prior_variants

    def fit(sub: StudyData, draw: int) -> np.ndarray:
        return run_prior_variants({"v": variant}, sub, pretrain_images, seeds=[draw], n_boot=n_boot,
                                  cache_dir=cache_dir)["v"].runs[0].recon_val

    return fit
