"""BrainLDM: the assembled model (fMRI encoder, VAE, U-Net, noise schedule) and its sampler.

:class:`BrainLDM` builds its four parts from an :class:`~ldm_core.config.LDMConfig` and the voxel count read from
the data, and turns fMRI patterns into 28x28 images with :meth:`BrainLDM.reconstruct`: encode the fMRI into condition
tokens, run a reverse diffusion from Gaussian noise in the VAE's latent space, decode.

The sampling loop is :func:`sample_latents`, one short function in the style of diffusers'
``pipelines/ddim/pipeline_ddim.py``: predict, ``schedule.<sampler>_step``, repeat. Classifier-free guidance (Ho &
Salimans 2022, :func:`~ldm_core.models.schedule.classifier_free_guidance`) combines a conditional and an unconditional
prediction, computed in one batched U-Net call (the unconditional half uses the U-Net's learned null token through
``cond_drop_mask``).

Checkpoints (:meth:`BrainLDM.save` / :meth:`BrainLDM.load`) hold only tensors and plain types (the config as a dict),
so ``torch.load(path, weights_only=True)`` reads them without running pickled code.

References
----------
- Rombach et al. 2022, "High-resolution image synthesis with latent diffusion models".
- Song, Meng & Ermon 2021, "Denoising diffusion implicit models" (DDIM sampling).
- Ho & Salimans 2022, "Classifier-free diffusion guidance".
- diffusers, ``pipelines/ddim/pipeline_ddim.py`` (shape of the sampling loop).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ldm_core.config import LDMConfig
from ldm_core.io import atomic_torch_save
from ldm_core.models import build_encoder, build_schedule, build_unet, build_vae, count_parameters
from ldm_core.models.schedule import classifier_free_guidance

__all__ = ["SAMPLERS", "CHECKPOINT_FORMAT", "BrainLDM", "default_sampler", "sample_latents", "as_fmri_tensor"]

SAMPLERS = ("ddim", "ddpm", "original")  # reverse-step rules of NoiseSchedule
CHECKPOINT_FORMAT = "brain_ldm/1"  # tag stored in saved files, checked on load


# helpers

def as_fmri_tensor(fmri: Any, *, n_voxels: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Check fMRI input and return it as a float32 tensor.

    Parameters
    ----------
    fmri : array-like of shape (N, V)
        numpy array or Tensor, z-scored with training statistics.
    n_voxels : int
        Voxel count V the model was built with.
    device : torch.device or str
        Where to put the result.

    Returns
    -------
    Tensor of shape (N, V), float32

    Raises
    ------
    ValueError
        If ``fmri`` is not 2-D, has a width other than ``n_voxels``, is empty, or
        holds NaN or infinite values.
    """
    x = torch.as_tensor(np.asarray(fmri) if not isinstance(fmri, torch.Tensor) else fmri)
    if x.ndim != 2:
        raise ValueError(
            f"fmri must have shape (N, V) = (trials, voxels), got shape {tuple(x.shape)}; "
            "for one trial pass fmri[None]."
        )
    if x.shape[1] != n_voxels:
        raise ValueError(
            f"fmri has {x.shape[1]} voxels per trial but the model expects {n_voxels}; "
            "pass data with the voxel set (and order) the model was trained on."
        )
    if x.shape[0] == 0:
        raise ValueError("fmri has 0 trials; pass at least one row.")
    x = x.to(device=device, dtype=torch.float32)
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(
            f"fmri holds {bad} NaN or infinite values; impute or drop those voxels/trials "
            "before z-scoring (the z-scoring statistics must be finite too)."
        )
    return x


def _check_reconstruct_args(sampler: str, n_samples: Any, batch_size: Any) -> None:
    """Raise ValueError on an unknown sampler or a non-positive ``n_samples`` / ``batch_size``."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}.")
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int, got {n_samples!r}.")
    if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}.")


# sampling loop

@torch.no_grad()
def sample_latents(
    model: "BrainLDM", cond: torch.Tensor, *, x_T: torch.Tensor, steps: int, guidance: float = 1.0,
    sampler: str = "ddim", generator: torch.Generator | None = None, t_start: int | None = None,
) -> torch.Tensor:
    """Reverse diffusion from ``x_T`` (or from a noised latent at ``t_start``) to a clean latent.

    Parameters
    ----------
    model : BrainLDM
        Supplies ``predict`` (the guided U-Net) and ``schedule``.
    cond : Tensor of shape (B, T, D)
        fMRI condition tokens.
    x_T : Tensor of shape (B, C, h, w)
        Starting noise, N(0, I).
    steps : int
        Number of reverse steps, in [1, n_train_steps].
    guidance : float, default 1.0
        Classifier-free guidance scale; 1 = conditional prediction only.
    sampler : {"ddim", "ddpm", "original"}, default "ddim"
        "ddim": deterministic DDIM (eta = 0). "ddpm": ancestral sampling.
        "original": the report's sampler (predict x0, re-noise with fresh noise).
    generator : torch.Generator, optional
        Source of the per-step noise of "ddpm" and "original".
    t_start : int, optional
        Start the reverse process at this timestep instead of T-1: ``x_T`` is then a latent noised to level
        ``t_start`` (SDEdit-style refinement, Meng et al. 2022), and only the steps of ``timestep_pairs(steps)``
        with t <= t_start are taken.

    Returns
    -------
    x0 : Tensor of shape (B, C, h, w) (or of ``x_T``'s shape), scaled latent
    """
    schedule = model.schedule
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}.")
    step = {"ddim": schedule.ddim_step, "ddpm": schedule.ddpm_step, "original": schedule.original_step}[sampler]
    kwargs = {} if sampler == "ddim" else {"generator": generator}
    x = x_T
    pairs = schedule.timestep_pairs(steps)
    if t_start is not None:
        pairs = [(t, t_prev) for t, t_prev in pairs if t <= t_start]
    for t, t_prev in pairs:
        out = model.predict(x, t, cond, guidance=guidance)
        x = step(out, t, t_prev, x, **kwargs).prev_sample
    return x


def _sample_images_in_batches(
    model: BrainLDM, cond: torch.Tensor, x_T: torch.Tensor, *, steps: int, guidance: float, sampler: str,
    generator: torch.Generator, batch_size: int | None, progress: bool,
) -> torch.Tensor:
    """Sample and decode the rows of ``x_T`` (B, C, h, w) in batches: images (B, 1, S, S), float32 in [0, 1]."""
    rows = x_T.shape[0]
    bs = rows if batch_size is None else int(batch_size)
    starts = range(0, rows, bs)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"reconstruct ({sampler}, {steps} steps)", unit="batch")
    images = []
    for s in starts:
        x0 = sample_latents(model, cond[s:s + bs], x_T=x_T[s:s + bs], steps=steps, guidance=guidance,
                            sampler=sampler, generator=generator)
        images.append(model.decode_latents(x0).float().clamp(0.0, 1.0))  # (b, 1, S, S)
    return torch.cat(images)


# model

def default_sampler(ldm_cfg) -> str:
    """The sampler a model of ``ldm_cfg`` uses when none is asked: the config's ``sampler`` field if it has one, else
    "original" (re-noising) for the report's denoiser (``unet == "original"``) and "ddim" for any other."""
    sampler = getattr(ldm_cfg, "sampler", None)
    if sampler is not None:
        return sampler
    return "original" if ldm_cfg.unet == "original" else "ddim"


class _BrainLDMCheckpoints:
    """BrainLDM's bookkeeping: parameter counts and checkpoints (to / from a dict, save / load a file)."""

    def n_parameters(self) -> dict[str, int]:
        """Parameter counts by part: ``{"encoder", "vae", "unet", "total"}`` (the schedule has none)."""
        parts = {name: count_parameters(getattr(self, name)) for name in ("encoder", "vae", "unet")}
        parts["total"] = count_parameters(self)
        return parts

    def to_checkpoint(self) -> dict[str, Any]:
        """Tensors and plain types only: format tag, config dict, voxel count, state_dict."""
        return {
            "format": CHECKPOINT_FORMAT,
            "ldm_cfg": self.ldm_cfg.to_dict(),
            "n_voxels": self.n_voxels,
            "image_size": self.image_size,
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
        }

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any], *, map_location: str | torch.device = "cpu") -> "BrainLDM":
        """Rebuild a model from :meth:`to_checkpoint`'s dict.

        Raises
        ------
        ValueError
            If the dict lacks the format tag or was written by another format version.
        """
        if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
            found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
            raise ValueError(
                f"not a BrainLDM checkpoint of format {CHECKPOINT_FORMAT!r} (found {found!r}); "
                "write it with BrainLDM.save."
            )
        model = cls(LDMConfig.from_dict(ckpt["ldm_cfg"]), n_voxels=int(ckpt["n_voxels"]),
                    image_size=int(ckpt.get("image_size", 28)))  # checkpoints written before the field: 28
        model.load_state_dict(ckpt["state_dict"])
        return model.to(map_location)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model atomically (temporary file, then rename) to ``path``, and return ``path``.

        The file loads with ``torch.load(path, weights_only=True)``."""
        return atomic_torch_save(self.to_checkpoint(), path)

    @classmethod
    def load(cls, path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> "BrainLDM":
        """Read a model written by :meth:`save`, in eval mode.

        Raises FileNotFoundError if ``path`` does not exist, ValueError if the file is not a BrainLDM checkpoint."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no BrainLDM checkpoint at {str(path)!r}; write one with BrainLDM.save(path).")
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        return cls.from_checkpoint(ckpt, map_location=map_location).eval()


class BrainLDM(_BrainLDMCheckpoints, nn.Module):
    """fMRI encoder + VAE + U-Net + noise schedule, built from one config.

    Parameters
    ----------
    ldm_cfg : LDMConfig
        Architecture (see :mod:`ldm_core.config`).
    n_voxels : int
        Voxel count V, read from the data (3092 for digit69).
    image_size : int, default 28
        Side S of the square images, read from the data like V (not a config field, so run-cache keys, which hold
        the data file's checksum, do not change).

    Attributes
    ----------
    encoder, vae, unet, schedule : nn.Module
        The parts, built by ``ldm_core.models.build_*``.
    latent_scale : Tensor, scalar float32 buffer
        Factor between VAE latents and diffused latents (``z_diffused = latent_scale * z_vae``);
        starts at ``vae.scale_factor`` (0.18215) and may be refitted by training. A buffer, so
        checkpoints carry it.
    image_size : int
        Side S of the square images (28).

    Raises
    ------
    ValueError
        If ``n_voxels`` is not a positive int or ``ldm_cfg`` is not an LDMConfig.
    """

    def __init__(self, ldm_cfg: LDMConfig, *, n_voxels: int, image_size: int = 28) -> None:
        super().__init__()
        if not isinstance(ldm_cfg, LDMConfig):
            raise ValueError(
                f"ldm_cfg must be an LDMConfig, got {type(ldm_cfg).__name__}; "
                "use ldm_core.config.get_preset('fixed') or LDMConfig.from_dict(d)."
            )
        if isinstance(n_voxels, bool) or not isinstance(n_voxels, (int, np.integer)) or n_voxels < 1:
            raise ValueError(f"n_voxels must be a positive int (read it from the data), got {n_voxels!r}.")
        self.ldm_cfg = ldm_cfg
        self.n_voxels = int(n_voxels)
        self.encoder = build_encoder(ldm_cfg, self.n_voxels)
        self.vae = build_vae(ldm_cfg, image_size=int(image_size))
        self.unet = build_unet(ldm_cfg, self.vae.latent_shape, self.encoder.out_dim)
        self.schedule = build_schedule(ldm_cfg)
        self.image_size = int(self.vae.image_size)
        self.register_buffer("latent_scale", torch.tensor(float(self.vae.scale_factor), dtype=torch.float32))

    # properties

    @property
    def device(self) -> torch.device:
        """Device of the model's parameters."""
        return self.latent_scale.device

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(C, h, w) of the diffused latents."""
        return tuple(self.vae.latent_shape)

    @property
    def default_sampler(self) -> str:
        """Sampler used when ``reconstruct(sampler=None)``.

        "original" for the report's denoiser (``ldm_cfg.unet == "original"``): its model was
        sampled with the re-noising sampler; "ddim" otherwise. A ``sampler`` field on the
        config, if present, wins.
        """
        return default_sampler(self.ldm_cfg)

    def set_latent_scale(self, value: float) -> None:
        """Set the latent scale (buffer and ``vae.scale_factor``).

        Raises
        ------
        ValueError
            If ``value`` is not a finite positive number.
        """
        value = float(value)
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"latent scale must be finite and > 0, got {value!r}.")
        self.latent_scale.fill_(value)
        self.vae.scale_factor = value

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """``nn.Module.load_state_dict``, then copy the loaded ``latent_scale`` to ``vae.scale_factor``."""
        out = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self.vae.scale_factor = float(self.latent_scale)  # keep the VAE's copy in step with the buffer
        return out

    # parts

    def encode_fmri(self, fmri: torch.Tensor) -> torch.Tensor:
        """Condition tokens of fMRI patterns.

        Parameters
        ----------
        fmri : Tensor of shape (B, V), float32, z-scored with training statistics

        Returns
        -------
        cond : Tensor of shape (B, T, D)
        """
        return self.encoder(fmri)

    def encode_images(
        self, images: torch.Tensor, *, sample: bool = True, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Scaled diffusion latents of images.

        Parameters
        ----------
        images : Tensor of shape (B, 1, S, S), float32 in [0, 1]
        sample : bool, default True
            True: a reparameterised draw from q(z | x) (training); False: the posterior mean.
        generator : torch.Generator, optional
            Source of the draw; must live on the images' device.

        Returns
        -------
        x0 : Tensor of shape (B, C, h, w), ``latent_scale * z``
        """
        mean, logvar = self.vae.encode(images)
        z = self.vae.sample_latent(mean, logvar, generator=generator) if sample else mean
        return self.latent_scale * z

    def decode_latents(self, x0: torch.Tensor) -> torch.Tensor:
        """Images from scaled latents.

        Parameters
        ----------
        x0 : Tensor of shape (B, C, h, w), scaled latent

        Returns
        -------
        images : Tensor of shape (B, 1, S, S), float32 in [0, 1]
        """
        return self.vae.decode(x0 / self.latent_scale)

    def predict(
        self, x_t: torch.Tensor, t: torch.Tensor | int, cond: torch.Tensor, *, guidance: float = 1.0
    ) -> torch.Tensor:
        """U-Net output (eps or x0, per the schedule), with classifier-free guidance.

        Parameters
        ----------
        x_t : Tensor of shape (B, C, h, w)
            Noisy scaled latents.
        t : int or Tensor of shape (B,), int64 in [0, n_train_steps)
        cond : Tensor of shape (B, T, D)
            Condition tokens.
        guidance : float, default 1.0
            1: conditional prediction. Otherwise
            ``out_uncond + guidance * (out_cond - out_uncond)``; 0 gives the unconditional one.

        Returns
        -------
        Tensor of shape (B, C, h, w)
        """
        B = x_t.shape[0]
        t = torch.as_tensor(t, device=x_t.device).long().expand(B)  # (B,)
        if guidance == 1.0:
            return self.unet(x_t, t, cond)
        drop = torch.cat([torch.zeros(B, dtype=torch.bool), torch.ones(B, dtype=torch.bool)]).to(x_t.device)  # (2B,)
        out = self.unet(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([cond, cond]), cond_drop_mask=drop)
        out_cond, out_uncond = out.chunk(2)  # (B, C, h, w) each
        return classifier_free_guidance(out_cond, out_uncond, guidance)

    # reconstruction

    @torch.no_grad()
    def reconstruct(
        self, fmri: Any, *, steps: int = 50, guidance: float = 1.0, n_samples: int = 1, seed: int = 0,
        sampler: str | None = None, average: bool = True, batch_size: int | None = None, progress: bool = False,
    ) -> np.ndarray:
        """Images reconstructed from fMRI patterns.

        Parameters
        ----------
        fmri : array-like of shape (N, V)
            numpy array or Tensor, z-scored with the training statistics.
        steps : int, default 50
            Reverse diffusion steps, in [1, n_train_steps].
        guidance : float, default 1.0
            Classifier-free guidance scale (1 = off).
        n_samples : int, default 1
            Samples per trial, each from its own starting noise.
        seed : int, default 0
            Seeds the starting noise and the per-step noise; same seed, same images.
        sampler : {"ddim", "ddpm", "original"} or None, default None
            None: ``default_sampler`` ("original" for the report's denoiser, else "ddim").
        average : bool, default True
            True: mean over the ``n_samples`` images of a trial.
        batch_size : int or None, default None
            Rows (trial x sample) per U-Net batch; None = all at once. With "ddim" the result does not depend on it;
            the stochastic samplers draw their per-step noise batch by batch.
        progress : bool, default False
            Show a tqdm bar over batches.

        Returns
        -------
        images : ndarray, float32 in [0, 1]
            Shape (N, S, S) when ``average``, else (N, n_samples, S, S).

        Raises
        ------
        ValueError
            On bad ``fmri`` (see :func:`as_fmri_tensor`), an unknown sampler, ``steps`` outside [1, n_train_steps],
            or non-positive ``n_samples`` / ``batch_size``.
        """
        sampler = self.default_sampler if sampler is None else sampler
        _check_reconstruct_args(sampler, n_samples, batch_size)
        self.schedule.inference_timesteps(steps)  # raises on a bad step count before any work
        x = as_fmri_tensor(fmri, n_voxels=self.n_voxels, device=self.device)
        N, S = x.shape[0], self.image_size

        was_training = self.training
        self.eval()
        try:
            generator = torch.Generator(device=self.device).manual_seed(int(seed))
            cond = self.encode_fmri(x).repeat_interleave(n_samples, dim=0)  # (N * n_samples, T, D), trial-major
            x_T = torch.randn((N * n_samples, *self.latent_shape), generator=generator, device=self.device)
            images = _sample_images_in_batches(self, cond, x_T, steps=steps, guidance=guidance, sampler=sampler,
                                               generator=generator, batch_size=batch_size, progress=progress)
        finally:
            self.train(was_training)
        out = images.reshape(N, n_samples, S, S)  # (N, n_samples, S, S)
        if average:
            out = out.mean(dim=1)  # (N, S, S)
        return out.cpu().numpy().astype(np.float32)
