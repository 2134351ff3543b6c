"""Runs of the image-prior Brain LDM: each variant per seed, cached, evaluated on validation and test.

A :class:`PriorVariant` names the three stages' settings: the prior (:class:`~ldm_core.prior.PriorConfig`), the
fMRI -> latent map (:class:`MapConfig`) and the decoding (:class:`~ldm_core.prior_ldm.DecodeConfig`).
:func:`run_prior_variants` pretrains each distinct prior once per seed (cached by :func:`ldm_core.prior.pretrain_prior`,
so every chapter shares it), fits each distinct map once per (prior, seed) on the fitting trials, decodes the
validation and test trials with each variant's decoding and evaluates them. Finished runs are cached under a key
of everything they depend on, as :func:`ldm_core.study.experiment.run_variants` caches the spatial LDM's runs, and come
back as the same :class:`~ldm_core.study.runs.VariantResult` objects, so every table and estimator of the study applies.

The prior's training images are an argument (``pretrain_images``): the chapter passes the guarded unpaired images
plus the 72 fitting trials' images, also for the refit on all 90 training trials (:func:`ldm_core.splits.refit_all`),
which retrains the map, not the prior.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io import content_key
from ..latent_map import MAP_KINDS, fit_latent_map, observation_model
from ..metrics import evaluate
from ..prior import PriorConfig, images_checksum, pretrain_autoencoder, pretrain_prior
from ..prior_ldm import DecodeConfig, PriorBrainLDM
from .runs import Run, VariantResult, run_unit
from ..splits import StudyData

__all__ = ["MapConfig", "PriorVariant", "build_decoder", "autoencoder_decoder", "run_prior_variants", "prior_seed_unit"]


@dataclass(frozen=True)
class MapConfig:
    """Settings of stage 2 (:func:`ldm_core.latent_map.fit_latent_map`).

    Raises
    ------
    ValueError
        On an unknown kind or a bad ``n_voxels`` / ``n_folds``.
    """

    kind: str = "ridge"  # "ridge", "pls" or "mlp"
    n_voxels: int | None = 800  # voxels with the best encoding R² the map reads; None: all
    n_folds: int = 5  # K of the CV inside the fitting trials (hyperparameters, voxel ranking, calibration)

    def __post_init__(self) -> None:
        if self.kind not in MAP_KINDS:
            raise ValueError(f"MapConfig.kind must be one of {MAP_KINDS}, got {self.kind!r}.")
        if self.n_voxels is not None and (isinstance(self.n_voxels, bool) or not isinstance(self.n_voxels, int)
                                          or self.n_voxels < 1):
            raise ValueError(f"MapConfig.n_voxels must be an int >= 1 or None, got {self.n_voxels!r}.")
        if isinstance(self.n_folds, bool) or not isinstance(self.n_folds, int) or self.n_folds < 2:
            raise ValueError(f"MapConfig.n_folds must be an int >= 2, got {self.n_folds!r}.")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class PriorVariant:
    """One configuration of the image-prior Brain LDM: prior, map and decoding settings."""

    prior: PriorConfig = PriorConfig()
    map: MapConfig = MapConfig()
    decode: DecodeConfig = DecodeConfig()

    def replace(self, *, prior: Mapping | None = None, map: Mapping | None = None,
                decode: Mapping | None = None) -> "PriorVariant":
        """This variant with some fields of each stage changed (unknown fields raise)."""
        return PriorVariant(
            PriorConfig.from_dict({**self.prior.to_dict(), **dict(prior or {})}),
            MapConfig(**{**self.map.to_dict(), **dict(map or {})}),
            DecodeConfig.from_dict({**self.decode.to_dict(), **dict(decode or {})}),
        )

    def to_dict(self) -> dict:
        return {"prior": self.prior.to_dict(), "map": self.map.to_dict(), "decode": self.decode.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping) -> "PriorVariant":
        """Inverse of :meth:`to_dict` (e.g. a variant recorded in a results file); unknown fields raise."""
        return cls(PriorConfig.from_dict(dict(d["prior"])), MapConfig(**dict(d["map"])),
                   DecodeConfig.from_dict(dict(d["decode"])))


def build_decoder(data: StudyData, pretrain_images: np.ndarray, variant: PriorVariant, *, seed: int,
                  cache_dir: str | Path | None = None, progress: bool = True, vae_only: bool = False) -> PriorBrainLDM:
    """Stages 1 and 2 of ``variant`` for one seed: the (cached) prior, the map fitted on ``data``'s fitting trials
    and its cross-validated observation model.

    ``vae_only``: pretrain only the prior's VAE (:func:`ldm_core.prior.pretrain_autoencoder`, the same cached VAE as
    the full prior's), enough for direct decoding, which never calls the denoiser: its images are those of the full
    prior's direct decoding, without the diffusion training.
    """
    pretrain = pretrain_autoencoder if vae_only else pretrain_prior
    prior = pretrain(pretrain_images, cfg=variant.prior, seed=seed, cache_dir=cache_dir, progress=progress)
    codes = prior.codes(data.images_fit)
    m = variant.map
    lmap = fit_latent_map(data.fmri_fit, codes, kind=m.kind, n_voxels=m.n_voxels, n_folds=m.n_folds, seed=seed)
    obs = observation_model(lmap, data.fmri_fit, codes, n_folds=m.n_folds, seed=seed)
    return PriorBrainLDM(prior, lmap, obs)


def autoencoder_decoder(data: StudyData, pretrain_images: np.ndarray, *, cfg: PriorConfig, seed: int,
                        map_cfg: MapConfig = MapConfig(n_voxels=None), cache_dir: str | Path | None = None,
                        progress: bool = True) -> PriorBrainLDM:
    """A reference decoder without diffusion: the prior's autoencoder (``cfg``'s VAE fields, e.g. ``kl_weight=0``
    for a plain autoencoder) and a map from fMRI to its code, decoded directly (``DecodeConfig(mode="direct")``)."""
    prior = pretrain_autoencoder(pretrain_images, cfg=cfg, seed=seed, cache_dir=cache_dir, progress=progress)
    codes = prior.codes(data.images_fit)
    lmap = fit_latent_map(data.fmri_fit, codes, kind=map_cfg.kind, n_voxels=map_cfg.n_voxels, n_folds=map_cfg.n_folds,
                          seed=seed)
    return PriorBrainLDM(prior, lmap, observation_model(lmap, data.fmri_fit, codes, n_folds=map_cfg.n_folds, seed=seed))


def _run_key(data: StudyData, images_sha: str, variant: PriorVariant, *, seed: int, n_boot: int, n_perm: int) -> str:
    return content_key({"kind": "prior_ldm/1", "data": data.fingerprint(), "images": images_sha, **variant.to_dict(),
                        "seed": int(seed), "n_boot": n_boot, "n_perm": n_perm}, default=str)


def run_prior_variants(variants: Mapping[str, PriorVariant], data: StudyData, pretrain_images: np.ndarray, *,
                       seeds: Sequence[int], n_boot: int = 1000, n_perm: int = 0,
                       cache_dir: str | Path | None = None, progress: bool = True,
                       executor=None) -> dict[str, VariantResult]:
    """Train and evaluate every variant for every seed (see the module docstring).

    Parameters
    ----------
    variants : mapping of name -> PriorVariant
    data : StudyData
        Its fitting trials fit the map; validation trials are scored for selection, test trials once per run.
    pretrain_images : ndarray (M, S, S) in [0, 1]
        The prior's training images.
    seeds : sequence of int
        Each seeds the prior's pretraining, the map's CV folds and the sampling.
    n_boot, n_perm : int
        Bootstrap resamples of each evaluation; permutations of the test identification p-values.
    cache_dir : path, optional
        Runs and priors are cached here (priors as ``prior-<key>.pt``).
    executor : concurrent.futures-style executor, optional
        Each seed (all variants: they share its pretraining) is one unit of work submitted to it
        (:func:`ldm_core.study.cluster.map_units`); None computes them here.

    Returns
    -------
    dict of name -> VariantResult, in the order given; ``ldm_cfg`` holds the three stages' settings.

    Raises
    ------
    ValueError
        If ``seeds`` or ``variants`` is empty.
    """
    from .cluster import map_units

    if not seeds or not variants:
        raise ValueError("run_prior_variants needs at least one variant and one seed")
    units = [dict(pretrain_images=pretrain_images, variants=dict(variants), seed=int(seed), n_boot=n_boot,
                  n_perm=n_perm, cache_dir=cache_dir, progress=progress) for seed in seeds]
    per_seed = map_units(prior_seed_unit, data, units, executor=executor)
    return {n: VariantResult(n, variants[n].to_dict(), {}, variants[n].decode.to_dict(), [out[n] for out in per_seed])
            for n in variants}


def prior_seed_unit(data: StudyData, *, pretrain_images: np.ndarray, variants: Mapping[str, PriorVariant], seed: int,
                    n_boot: int, n_perm: int, cache_dir: str | Path | None, progress: bool) -> dict[str, Run]:
    """The unit of work of :func:`run_prior_variants`: every variant for one seed (plain, picklable arguments)."""
    sha = images_checksum(pretrain_images)
    return run_unit(
        variants, seed=seed, cache_dir=cache_dir,
        key_of=lambda v: _run_key(data, sha, v, seed=seed, n_boot=n_boot, n_perm=n_perm),
        group_of=lambda v: f"{v.prior.to_dict()}{v.map.to_dict()}",  # variants sharing a decoder
        build=lambda v: build_decoder(data, pretrain_images, v, seed=seed, cache_dir=cache_dir, progress=progress),
        evaluate=lambda dec, name, v, fit_s: _evaluate(dec, v, data, name=name, seed=seed, n_boot=n_boot,
                                                       n_perm=n_perm, fit_s=fit_s))


def _evaluate(dec: PriorBrainLDM, v: PriorVariant, data: StudyData, *, name: str, seed: int, n_boot: int,
              n_perm: int, fit_s: float) -> Run:
    t0 = time.perf_counter()
    recon_val = dec.reconstruct(data.fmri_val, v.decode, seed=seed)
    t1 = time.perf_counter()
    recon_test = dec.reconstruct(data.fmri_test, v.decode, seed=seed)
    recon_test_s = time.perf_counter() - t1
    h = dec.prior.history
    history = {"vae_loss": list(h.get("vae_loss", [])), "diffusion_loss": list(h.get("diffusion_loss", [])),
               "vae_log_every": h.get("vae_log_every"), "diffusion_log_every": h.get("diffusion_log_every"),
               "map": {k: v for k, v in dec.latent_map.params.items() if k != "cv_scores"},
               "n_voxels_read": int(len(dec.latent_map.voxels)),
               "observation_slope": dec.observation.slope.tolist(), "observation_noise": dec.observation.noise.tolist(),
               "observation_r2": dec.observation.r2.tolist(), "prior_images": dec.prior.n_images}
    pretrain_s = float(h.get("vae_time_s", 0.0) + h.get("diffusion_time_s", 0.0))
    return Run(variant=name, seed=seed, recon_val=recon_val, recon_test=recon_test,
               val_metrics=evaluate(recon_val, data.images_val, data.labels_val, n_boot=n_boot, n_perm=0, seed=seed),
               test_metrics=evaluate(recon_test, data.images_test, data.labels_test, n_boot=n_boot, n_perm=n_perm,
                                     seed=seed),
               history=history, wall_time_s=pretrain_s + fit_s + (time.perf_counter() - t0),
               steps_per_s=float(v.prior.diffusion_steps / h["diffusion_time_s"]) if h.get("diffusion_time_s") else 0.0,
               n_parameters=dec.n_parameters(), device="cpu", train_time_s=pretrain_s, recon_test_s=recon_test_s)
