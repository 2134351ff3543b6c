"""Stage 3 of the image-prior Brain LDM: from a predicted latent to an image, with or without diffusion.

:class:`PriorBrainLDM` joins the pretrained prior (:mod:`ldm_core.prior`), the fMRI -> latent map and its
cross-validated observation model (:mod:`ldm_core.latent_map`). :meth:`PriorBrainLDM.reconstruct` decodes a trial's
fMRI in one of three modes (:class:`DecodeConfig`):

- ``"direct"``: decode the predicted code with the VAE; no diffusion (stages 1 and 2 only);
- ``"refine"``: noise the predicted code to level ``strength`` (a fraction of the diffusion steps) and run the
  reverse diffusion from there, each step conditioned on the observation ``[prediction - b, lambda, sigma]``
  (SDEdit-style refinement, Meng et al. 2022, with the condition of Brain-Diffuser / MindEye-style decoders);
- ``"noise"``: conditional diffusion from pure noise, the fMRI entering only through the condition.

With ``n_samples > 1`` each trial is sampled several times from independent noise and the decoded images are
averaged (``average="image"``, an estimate of E[image | fMRI]) or the codes are averaged and decoded once
(``average="latent"``). Classifier-free guidance scales the conditional prediction (``guidance``; 1 = none).

The reverse loop is :func:`ldm_core.pipeline.sample_latents`, the same function the spatial Brain LDM samples with.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from .latent_map import LatentMap, ObservationModel
from .pipeline import SAMPLERS, sample_latents
from .prior import ImagePrior

__all__ = ["DECODE_MODES", "AVERAGES", "DecodeConfig", "PriorBrainLDM"]

DECODE_MODES = ("direct", "refine", "noise")
AVERAGES = ("image", "latent")


@dataclass(frozen=True)
class DecodeConfig:
    """How stage 3 turns a predicted code into an image (see the module docstring).

    Raises
    ------
    ValueError
        From ``__post_init__``: a value outside its range (named).
    """

    mode: str = "refine"  # "direct", "refine" or "noise"
    strength: float = 0.3  # "refine": noise level the predicted code starts from, as a fraction of the T steps, in (0, 1)
    n_samples: int = 16  # samples per trial ("refine", "noise"); their decoded images are averaged
    average: str = "image"  # "image": mean of the decoded samples; "latent": decode the mean code
    steps: int = 100  # DDIM steps over the whole schedule ("refine" takes those below its start)
    guidance: float = 1.0  # classifier-free guidance scale (1: conditional prediction only; 0: unconditional)
    noise_scale: float = 1.0  # multiplies the calibrated observation noise sigma in the condition
    sampler: str = "ddim"  # reverse steps: "ddim" (deterministic given the start) or "ddpm" (ancestral)

    def __post_init__(self) -> None:
        if self.mode not in DECODE_MODES:
            raise ValueError(f"DecodeConfig.mode must be one of {DECODE_MODES}, got {self.mode!r}.")
        if self.average not in AVERAGES:
            raise ValueError(f"DecodeConfig.average must be one of {AVERAGES}, got {self.average!r}.")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"DecodeConfig.sampler must be one of {SAMPLERS}, got {self.sampler!r}.")
        if self.mode == "refine" and not 0 < self.strength < 1:
            raise ValueError(f"DecodeConfig.strength must be in (0, 1) for mode 'refine', got {self.strength!r}.")
        for name in ("n_samples", "steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"DecodeConfig.{name} must be an int >= 1, got {v!r}.")
        for name in ("guidance", "noise_scale"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
                raise ValueError(f"DecodeConfig.{name} must be a number >= 0, got {v!r}.")
        if self.noise_scale == 0:
            raise ValueError("DecodeConfig.noise_scale must be > 0 (the condition's noise level).")

    @classmethod
    def from_dict(cls, d: dict) -> "DecodeConfig":
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(valid))
        if unknown:
            raise ValueError(f"unknown DecodeConfig key(s) {unknown}; valid keys are {valid}.")
        return cls(**d)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class PriorBrainLDM:
    """The image-prior Brain LDM: pretrained prior + fMRI -> latent map + its observation model."""

    prior: ImagePrior
    latent_map: LatentMap
    observation: ObservationModel

    def predicted_codes(self, fmri: np.ndarray) -> np.ndarray:
        """Stage 2: fmri (N, V), z-scored with the fitting statistics -> predicted standardised codes (N, d)."""
        return self.latent_map.predict(fmri)

    @torch.no_grad()
    def sample_codes(self, fmri: np.ndarray, decode: DecodeConfig, *, seed: int = 0) -> np.ndarray:
        """Stage 3 in latent space: codes (N, n_samples, d) for ``decode.mode`` "refine" or "noise"."""
        if decode.mode == "direct":
            return self.predicted_codes(fmri)[:, None]
        if self.prior.denoiser is None:
            raise ValueError(f"decode mode {decode.mode!r} needs a prior with a denoiser; this one is an autoencoder "
                             "only (pretrain_autoencoder): use mode 'direct'")
        pred = self.predicted_codes(fmri)  # (N, d)
        N, d, n = len(pred), pred.shape[1], decode.n_samples
        cond = self.observation.condition(pred, noise_scale=decode.noise_scale).repeat_interleave(n, dim=0)
        gen = torch.Generator().manual_seed(int(seed))
        noise = torch.randn((N * n, d), generator=gen)
        sched = self.prior.schedule
        t_start = None
        if decode.mode == "refine":
            t_start = int(round(decode.strength * (sched.n_train_steps - 1)))
            x0 = torch.as_tensor(pred).repeat_interleave(n, dim=0)
            x_T = sched.q_sample(x0, torch.full((N * n,), t_start), noise)
        else:
            x_T = noise
        z = sample_latents(self.prior, cond, x_T=x_T, steps=decode.steps, guidance=decode.guidance,
                           sampler=decode.sampler, generator=gen, t_start=t_start)
        return z.reshape(N, n, d).numpy()

    def reconstruct(self, fmri: np.ndarray, decode: DecodeConfig, *, seed: int = 0) -> np.ndarray:
        """Images (N, S, S) float32 in [0, 1] reconstructed from z-scored fMRI (N, V) (see the module docstring)."""
        codes = self.sample_codes(fmri, decode, seed=seed)  # (N, n, d)
        N, n, d = codes.shape
        if decode.average == "latent" or n == 1:
            return self.prior.decode(codes.mean(axis=1))
        S = self.prior.vae.image_size
        return self.prior.decode(codes.reshape(N * n, d)).reshape(N, n, S, S).mean(axis=1)

    def predict(self, fmri: np.ndarray) -> np.ndarray:
        """Direct decoding (stages 1 and 2 only): images (N, S, S) of the predicted codes, like a baseline's ``predict``."""
        return self.prior.decode(self.predicted_codes(fmri))

    def n_parameters(self) -> dict:
        """Parameter counts: VAE, denoiser, map coefficients, total."""
        vae = sum(p.numel() for p in self.prior.vae.parameters())
        den = sum(p.numel() for p in self.prior.denoiser.parameters()) if self.prior.denoiser is not None else 0
        est = self.latent_map.estimator
        if hasattr(est, "net"):
            lm = sum(p.numel() for p in est.net.parameters())
        else:
            lm = int(sum(np.size(getattr(est, a)) for a in ("coef_", "intercept_", "x_weights_", "y_loadings_")
                         if hasattr(est, a)))
        return {"vae": vae, "denoiser": den, "map": lm, "total": vae + den + lm}
