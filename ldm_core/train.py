"""Training of the Brain LDM: VAE, encoder alignment and conditional diffusion stages.

:func:`fit` trains a :class:`~ldm_core.pipeline.BrainLDM` on z-scored fMRI and
[0, 1] images with one of three stage plans (``TrainConfig.stages``):

- ``"original"``: the report's failed recipe, reproduced. One joint stage: fMRI
  encoder, U-Net and the VAE *encoder* are optimised together by AdamW on the
  noise MSE only; the VAE is not pretrained and its decoder is never trained (no
  loss reaches it), so at sampling time latents are decoded by a decoder still at
  its random initialisation.
- ``"progressive"``: the report's "progressive training": (1) VAE on the training
  images (reconstruction + KL, optional affine jitter); (2) the fMRI encoder is
  aligned to the VAE latents (a linear head from the mean encoder token to the
  flattened scaled latent mean, MSE); (3) conditional diffusion on the frozen VAE's
  latents, encoder frozen unless ``finetune_encoder``, with optional image-space
  losses on the decoded x0 estimate (MSE / perceptual / SSIM / adversarial through
  the frozen decoder) and an optional multiscale (coarse head) loss.
- ``"end_to_end"``: (1) VAE as above, then (2) encoder + U-Net trained jointly from
  scratch on the diffusion loss, no alignment stage.

Every stage shares one epoch loop (:meth:`_Trainer._run_stage`): seeded data order,
timesteps and noise from one ``torch.Generator``; AdamW, optional cosine warm
restarts (T_0 = 10, T_mult = 2, stepped per epoch), gradient clipping, EMA,
early stopping on the validation loss with best-weight restore, bfloat16 autocast
on CUDA, a ``FloatingPointError`` naming stage, epoch, step and every loss term on
a non-finite loss, and atomic checkpoints that resume bit-exactly (model,
optimiser, scheduler, EMA, discriminator, history and every RNG state, saved as
tensors and plain types so ``torch.load(path, weights_only=True)`` reads them).

``fit`` never sees test data: validation (the fixed-noise loss used for early
stopping) comes from the ``fmri_val`` / ``images_val`` the caller split off the
training trials.

Notation (variable -> paper): ``x0`` -> z_0 (scaled latent), ``x_t`` -> z_t,
``eps`` -> epsilon, ``t`` -> timestep, ``cond`` -> tau_theta(y) (fMRI tokens).

References
----------
- Ho, Jain & Abbeel 2020, "Denoising diffusion probabilistic models" (noise MSE).
- Rombach et al. 2022, "High-resolution image synthesis with latent diffusion
  models" (two-stage training; latent rescaling by 1 / std, section 4.3.2).
- Ho & Salimans 2022, "Classifier-free diffusion guidance" (condition dropout).
- Loshchilov & Hutter 2017/2019, SGDR (warm restarts) and AdamW.
- lucidrains, ``denoising_diffusion_pytorch`` ``Trainer`` (EMA, loop shape).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ldm_core.config import LDMConfig, get_preset
from ldm_core.device import amp_enabled, autocast, describe_device, resolve_device
from ldm_core.losses import ADV_KINDS, ImageLoss, PatchDiscriminator, PerceptualLoss, d_loss, noise_mse
from ldm_core.models import coarse_target
from ldm_core.pipeline import BrainLDM

__all__ = [
    "STAGE_PLANS",
    "LR_SCHEDULES",
    "CHECKPOINT_NAME",
    "TrainConfig",
    "FitResult",
    "EMA",
    "random_affine",
    "kl_divergence",
    "check_training_data",
    "fit",
]

STAGE_PLANS = {  # TrainConfig.stages -> stages run, in order
    "original": ("diffusion",),
    "progressive": ("vae", "align", "diffusion"),
    "end_to_end": ("vae", "diffusion"),
}
LR_SCHEDULES = ("constant", "cosine_warm_restarts")
VAE_RECON_LOSSES = ("bce", "mse")
CHECKPOINT_NAME = "last.pt"  # file inside TrainConfig.checkpoint_dir
CHECKPOINT_FORMAT = "brain_ldm_train/1"
RESUMABLE_CHANGES = ("epochs", "progress", "checkpoint_dir", "checkpoint_every", "device")  # may differ on resume


# helpers

def exists(x: Any) -> bool:
    return x is not None


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def random_affine(
    images: torch.Tensor, *, generator: torch.Generator, degrees: float, translate: float
) -> torch.Tensor:
    """Random rotation and translation of each image (affine jitter), from a seeded generator.

    Parameters
    ----------
    images : Tensor of shape (B, 1, S, S), float32 in [0, 1]
    generator : torch.Generator
        On the images' device; the only source of randomness (so resumed runs repeat it).
    degrees : float
        Rotation angle drawn uniformly from [-degrees, degrees], in degrees.
    translate : float
        Shift drawn uniformly from [-translate, translate] per axis, as a fraction of the side.

    Returns
    -------
    Tensor of shape (B, 1, S, S), float32 in [0, 1]; bilinear resampling, zero (background) fill.

    Notes
    -----
    torchvision's ``RandomAffine`` draws from the global RNG, one parameter set per call; we
    need a per-image draw from our generator, so we build the grids with ``affine_grid``.
    """
    B = images.shape[0]
    u = torch.rand(B, 3, generator=generator, device=images.device) * 2 - 1  # (B, 3) in [-1, 1]
    angle = u[:, 0] * math.radians(degrees)
    shift = u[:, 1:] * translate * 2  # affine_grid coordinates span [-1, 1] = 2 units per side
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], dim=1), torch.stack([sin, cos, shift[:, 1]], dim=1)], dim=1
    )  # (B, 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)  # (B, S, S, 2)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.clamp(0.0, 1.0)


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z | x) || N(0, I)) of a diagonal Gaussian, averaged over all latent elements.

    Parameters
    ----------
    mean, logvar : Tensor of shape (B, C, h, w)

    Returns
    -------
    Tensor, scalar: ``mean(0.5 * (mean**2 + exp(logvar) - 1 - logvar))`` in nats per element.
    """
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean()


def _to_tensor(x: Any, *, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to(torch.float32)
    try:
        return torch.as_tensor(np.asarray(x, dtype=np.float32))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a numpy array or Tensor of numbers, got {type(x).__name__}: {err}") from None


def check_training_data(
    fmri_train: Any, images_train: Any, fmri_val: Any = None, images_val: Any = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Validate and convert training (and validation) arrays.

    Parameters
    ----------
    fmri_train : array of shape (N, V), float, z-scored with training statistics
    images_train : array of shape (N, S, S), float in [0, 1]
    fmri_val, images_val : arrays of shape (M, V) and (M, S, S), or both None

    Returns
    -------
    fmri_train (N, V), images_train (N, 1, S, S), fmri_val (M, V) or None,
    images_val (M, 1, S, S) or None : float32 Tensors on CPU

    Raises
    ------
    ValueError
        On a wrong number of dimensions, non-square images, a trial count that differs
        between fMRI and images, a voxel count or image size that differs between training
        and validation, only one of the two validation arrays, values outside [0, 1] in the
        images, or NaN / infinite values.
    """
    if (fmri_val is None) != (images_val is None):
        raise ValueError(
            "pass both fmri_val and images_val (validation trials split from the training set) or neither; "
            f"got fmri_val={'None' if fmri_val is None else 'array'}, images_val={'None' if images_val is None else 'array'}."
        )
    out = []
    pairs = [("train", fmri_train, images_train)]
    if fmri_val is not None:
        pairs.append(("val", fmri_val, images_val))
    for split, fmri, images in pairs:
        f = _to_tensor(fmri, name=f"fmri_{split}")
        im = _to_tensor(images, name=f"images_{split}")
        if f.ndim != 2:
            raise ValueError(f"fmri_{split} must have shape (N, V) = (trials, voxels), got {tuple(f.shape)}.")
        if im.ndim == 4 and im.shape[1] == 1:
            im = im[:, 0]  # (N, S, S)
        if im.ndim != 3 or im.shape[1] != im.shape[2]:
            raise ValueError(
                f"images_{split} must have shape (N, S, S) with square images, got {tuple(im.shape)}; "
                "reshape flat 784-pixel rows to (N, 28, 28)."
            )
        if f.shape[0] != im.shape[0]:
            raise ValueError(
                f"fmri_{split} has {f.shape[0]} trials but images_{split} has {im.shape[0]}; "
                "pass one image per fMRI trial, in the same order."
            )
        if f.shape[0] == 0:
            raise ValueError(f"fmri_{split} has no trials.")
        for name, arr in ((f"fmri_{split}", f), (f"images_{split}", im)):
            if not torch.isfinite(arr).all():
                raise ValueError(f"{name} holds {int((~torch.isfinite(arr)).sum())} NaN or infinite values; clean it first.")
        lo, hi = float(im.min()), float(im.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"images_{split} must lie in [0, 1], got values in [{lo:.3g}, {hi:.3g}]; divide uint8 images by 255."
            )
        out += [f, im[:, None]]  # images (N, 1, S, S)
    if len(out) == 4:
        if out[0].shape[1] != out[2].shape[1]:
            raise ValueError(
                f"fmri_train has {out[0].shape[1]} voxels but fmri_val has {out[2].shape[1]}; "
                "use the same voxel set for both."
            )
        if out[1].shape[-1] != out[3].shape[-1]:
            raise ValueError(
                f"images_train are {out[1].shape[-1]}x{out[1].shape[-1]} but images_val are "
                f"{out[3].shape[-1]}x{out[3].shape[-1]}; use one image size."
            )
    else:
        out += [None, None]
    return tuple(out)  # type: ignore[return-value]


class EMA:
    """Exponential moving average of a module's trainable parameters.

    ``shadow = decay * shadow + (1 - decay) * param`` after every optimiser step.

    Parameters
    ----------
    module : nn.Module
        The module whose parameters with ``requires_grad`` are averaged.
    decay : float in (0, 1)
        e.g. 0.999: an average over roughly the last 1 / (1 - decay) steps.
    """

    def __init__(self, module: nn.Module, *, decay: float) -> None:
        self.module = module
        self.decay = float(decay)
        self.shadow = {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self) -> None:
        params = dict(self.module.named_parameters())
        for name, s in self.shadow.items():
            s.lerp_(params[name].detach(), 1.0 - self.decay)

    @torch.no_grad()
    def copy_to_module(self) -> None:
        """Overwrite the module's parameters with the averages."""
        params = dict(self.module.named_parameters())
        for name, s in self.shadow.items():
            params[name].copy_(s)

    def swapped(self) -> "_Swap":
        """Context in which the module holds the EMA weights (restored on exit)."""
        return _Swap(self)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {n: s.detach().cpu().clone() for n, s in self.shadow.items()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        missing = sorted(set(self.shadow) - set(state))
        if missing:
            raise ValueError(f"EMA state lacks {len(missing)} parameter(s), e.g. {missing[:3]}; the checkpoint is from another model.")
        for n, s in self.shadow.items():
            s.copy_(state[n])


class _Swap:
    def __init__(self, ema: EMA | None) -> None:
        self.ema, self.saved = ema, None

    def __enter__(self) -> None:
        if self.ema is not None:
            params = dict(self.ema.module.named_parameters())
            self.saved = {n: params[n].detach().clone() for n in self.ema.shadow}
            self.ema.copy_to_module()

    def __exit__(self, *exc: Any) -> None:
        if self.ema is not None:
            params = dict(self.ema.module.named_parameters())
            with torch.no_grad():
                for n, v in self.saved.items():
                    params[n].copy_(v)


# config

@dataclass
class TrainConfig:
    """Training settings of :func:`fit`; defaults are the report's recipe where it gave one.

    Raises
    ------
    ValueError
        From ``__post_init__``: a value of the wrong type or outside its range (the
        message names the field, the value and the allowed values), or image-space /
        coarse losses asked of the ``"original"`` stage plan, whose decoder is never trained.
    """

    # stages and length
    stages: str = "original"  # "original" (report: joint noise-MSE only, VAE decoder never trained), "progressive" (VAE -> align -> diffusion), "end_to_end" (VAE -> encoder + U-Net jointly)
    epochs: int = 50  # diffusion-stage epochs (report: 50)
    batch_size: int = 4  # trials per optimiser step, every stage (report: 4)
    # optimiser
    lr: float = 1e-4  # AdamW learning rate of the alignment and diffusion stages
    weight_decay: float = 1e-2  # AdamW decoupled weight decay, every stage
    lr_schedule: str = "constant"  # "constant" or "cosine_warm_restarts" (T_0=10, T_mult=2, stepped per epoch, report's suggestion)
    grad_clip: float | None = 1.0  # max global gradient norm; None = no clipping
    ema_decay: float | None = None  # EMA of the diffusion stage's weights, in (0, 1) (e.g. 0.999); None = off
    early_stopping_patience: int | None = None  # stop a stage after this many validations without improvement and restore its best weights; None = off (needs validation data)
    # stage 1: VAE
    vae_epochs: int = 100  # VAE pretraining epochs ("progressive", "end_to_end")
    vae_lr: float = 1e-3  # AdamW learning rate of the VAE stage
    vae_kl_weight: float = 1e-3  # weight of the KL term (per latent element) against the per-pixel reconstruction loss
    vae_recon: str = "bce"  # VAE reconstruction loss: "bce" (binary cross-entropy) or "mse", per pixel
    vae_augment: bool = False  # random rotation / translation of VAE training images: more views of the same images
    augment_degrees: float = 10.0  # max rotation of the VAE jitter, in degrees
    augment_translate: float = 0.1  # max shift of the VAE jitter per axis, as a fraction of the image side
    vae_cache_dir: str | None = None  # folder caching trained stage-1 VAEs by (VAE config, VAE training fields, seed, images); reused across variants
    fit_latent_scale: bool = True  # after the VAE stage set the latent scale to 1 / std of training latents (Rombach et al. 2022) instead of 0.18215
    # stage 2: encoder alignment
    align_epochs: int = 100  # epochs aligning the fMRI encoder to VAE latents ("progressive" only)
    # stage 3: diffusion
    finetune_encoder: bool = False  # "progressive": also train the aligned encoder in the diffusion stage
    fmri_noise: float = 0.0  # std of Gaussian noise added to z-scored fMRI in training (units of training std)
    voxel_dropout: float = 0.0  # probability of zeroing each voxel of a training trial (survivors scaled by 1/(1-p)), in [0, 1)
    cfg_dropout: float = 0.0  # probability of replacing a trial's condition by the null token (classifier-free guidance training), in [0, 1)
    w_noise: float = 1.0  # weight of the noise (eps or x0) MSE
    w_img_mse: float = 0.0  # weight of pixel MSE between decoded x0 estimate and image
    w_perceptual: float = 0.0  # weight of the perceptual loss on decoded x0 estimates (report: 0.1)
    w_ssim: float = 0.0  # weight of 1 - SSIM on decoded x0 estimates (report: 0.01)
    w_adv: float = 0.0  # weight of the adversarial (generator) loss on decoded x0 estimates; trains a patch discriminator alternately
    w_coarse: float = 0.0  # weight of the multiscale head's half-resolution MSE (needs LDMConfig.multiscale=True)
    img_loss_t_frac: float = 0.5  # image-space losses use rows with t < frac * n_train_steps (x0 estimates at high noise are uninformative); in (0, 1]
    perceptual_net: str = "digits"  # feature net of the perceptual loss: "digits" (self-trained CNN) or "vgg16:/path/to/state_dict.pth"
    feature_net_cache_dir: str | None = None  # folder caching the trained "digits" feature net; None = train it each fit
    adv_kind: str = "hinge"  # adversarial loss form: "hinge" or "nonsaturating"
    # runtime
    seed: int = 0  # seeds weights, data order, timesteps, noise and augmentation
    device: str = "auto"  # "auto" (CUDA if available), "cpu" or "cuda"
    amp: bool = True  # bfloat16 mixed precision, on CUDA only (CPU always float32)
    progress: bool = True  # tqdm bars per stage (off anyway when the output is not interactive)
    checkpoint_dir: str | None = None  # folder for the resumable checkpoint last.pt; None = no checkpoints
    checkpoint_every: int = 10  # epochs between checkpoints within a stage (the last epoch of a stage is always saved)
    val_every: int = 1  # epochs between validations (the last epoch of a stage is always validated)
    val_repeats: int = 4  # fixed (t, noise) draws per validation trial in the validation noise loss

    def __post_init__(self) -> None:
        def fail(name: str, allowed: str) -> None:
            raise ValueError(f"TrainConfig.{name} must be {allowed}, got {getattr(self, name)!r}.")

        choices = {"stages": tuple(STAGE_PLANS), "lr_schedule": LR_SCHEDULES, "vae_recon": VAE_RECON_LOSSES,
                   "adv_kind": ADV_KINDS, "device": ("auto", "cpu", "cuda")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                fail(name, f"one of {allowed}")
        for name in ("epochs", "batch_size", "checkpoint_every", "val_every", "val_repeats"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                fail(name, "an int >= 1")
        for name in ("vae_epochs", "align_epochs", "seed"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 0:
                fail(name, "an int >= 0")
        for name in ("lr", "vae_lr"):
            if not _is_number(getattr(self, name)) or not getattr(self, name) > 0:
                fail(name, "a number > 0")
        for name in ("weight_decay", "vae_kl_weight", "fmri_noise", "augment_degrees", "augment_translate",
                     "w_noise", "w_img_mse", "w_perceptual", "w_ssim", "w_adv", "w_coarse"):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value) or value < 0:
                fail(name, "a finite number >= 0")
        for name in ("voxel_dropout", "cfg_dropout"):
            if not _is_number(getattr(self, name)) or not 0 <= getattr(self, name) < 1:
                fail(name, "a probability in [0, 1)")
        if not _is_number(self.img_loss_t_frac) or not 0 < self.img_loss_t_frac <= 1:
            fail("img_loss_t_frac", "a fraction in (0, 1]")
        if self.grad_clip is not None and (not _is_number(self.grad_clip) or not self.grad_clip > 0):
            fail("grad_clip", "a number > 0 or None (no clipping)")
        if self.ema_decay is not None and (not _is_number(self.ema_decay) or not 0 < self.ema_decay < 1):
            fail("ema_decay", "a number in (0, 1), e.g. 0.999, or None (no EMA)")
        if self.early_stopping_patience is not None and (
            not _is_int(self.early_stopping_patience) or self.early_stopping_patience < 1
        ):
            fail("early_stopping_patience", "an int >= 1 or None (off)")
        for name in ("vae_augment", "fit_latent_scale", "finetune_encoder", "amp", "progress"):
            if not isinstance(getattr(self, name), bool):
                fail(name, "True or False")
        if not isinstance(self.perceptual_net, str) or not (
            self.perceptual_net == "digits" or self.perceptual_net.startswith("vgg16:")
        ):
            fail("perceptual_net", "'digits' or 'vgg16:/path/to/vgg16_state_dict.pth'")
        for name in ("checkpoint_dir", "feature_net_cache_dir"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), (str, os.PathLike)):
                fail(name, "a folder path or None")
        if self.w_noise == self.w_img_mse == self.w_perceptual == self.w_ssim == self.w_adv == self.w_coarse == 0:
            raise ValueError(
                "TrainConfig: every diffusion-stage loss weight is 0 (w_noise, w_img_mse, w_perceptual, w_ssim, "
                "w_adv, w_coarse); set at least w_noise=1.0."
            )
        if self.stages == "original":
            active = [n for n in ("w_img_mse", "w_perceptual", "w_ssim", "w_adv", "w_coarse") if getattr(self, n) > 0]
            if active:
                raise ValueError(
                    f"TrainConfig.stages='original' trains with the noise MSE only (the report's recipe; its VAE "
                    f"decoder is never trained, so image-space losses would go through a random decoder), but "
                    f"{active} > 0; set them to 0 or use stages='progressive'."
                )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        """Build from a mapping (a params YAML section); missing keys keep their defaults.

        Raises
        ------
        ValueError
            If ``d`` has keys that are not fields (named, with the valid keys), or a value
            fails the checks of ``__post_init__``.
        """
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(valid))
        if unknown:
            raise ValueError(f"unknown TrainConfig key(s) {unknown}; valid keys are {valid}.")
        return cls(**dict(d))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (str paths), ready for JSON, YAML or a weights-only checkpoint."""
        return {k: (os.fspath(v) if isinstance(v, os.PathLike) else v) for k, v in dataclasses.asdict(self).items()}


# results

@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes
    ----------
    model : BrainLDM
        Trained model in eval mode, on the training device; EMA weights when EMA was on,
        best-validation weights when early stopping was on.
    history : dict of str -> list
        One entry per epoch of every stage, aligned lists: ``stage`` (str), ``epoch``
        (1-based within the stage), ``lr``, ``steps`` (optimiser steps in the epoch),
        ``epoch_time_s`` (wall-clock seconds of its training steps, validation excluded),
        ``train_loss`` (weighted total), ``train_<term>``
        per loss term (unweighted), ``val_loss`` (NaN when not validated that epoch); terms
        a stage lacks are NaN. The diffusion stage's ``val_loss`` is the noise MSE at fixed
        seeded (t, noise) draws, comparable across epochs.
    feature_net_name : str or None
        Name of the perceptual feature net, None when unused.
    wall_time_s : float
        Wall-clock seconds of this call.
    steps : int
        Optimiser steps over all stages (including those before a resume).
    steps_per_s : float
        Optimiser steps of this call per second of this call.
    device : str
        Where training ran, e.g. "cpu (2 threads)".
    """

    model: BrainLDM
    history: dict[str, list]
    feature_net_name: str | None
    wall_time_s: float
    steps: int
    steps_per_s: float
    device: str


# trainer

@dataclass
class _Stage:
    """One training stage: what to optimise, its loss and validation, stage-end work."""

    name: str  # "vae", "align" or "diffusion"
    epochs: int  # epochs of this stage
    lr: float  # AdamW learning rate
    params: list[nn.Parameter]  # optimised parameters
    loss: Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor]]]  # batch indices -> (total, terms)
    set_modes: Callable[[], None]  # train / eval mode of each module
    validate: Callable[[], float] | None = None  # validation loss (fixed draws), None without validation data
    ema: EMA | None = None  # EMA of the stage's parameters
    extras: dict[str, nn.Module] = field(default_factory=dict)  # modules outside BrainLDM saved in checkpoints
    extra_opts: dict[str, torch.optim.Optimizer] = field(default_factory=dict)  # their optimisers
    after_step: Callable[[], dict[str, float]] | None = None  # e.g. the discriminator step
    finish: Callable[[], None] | None = None  # stage-end work of a non-final stage (latent scale fit)


class _Trainer:
    """Holds data, model, RNGs and history; runs the stages of one :func:`fit` call."""

    def __init__(self, data: tuple, *, ldm_cfg: LDMConfig, cfg: TrainConfig, device: torch.device) -> None:
        self.cfg, self.ldm_cfg, self.device = cfg, ldm_cfg, device
        fmri, images, fmri_val, images_val = data
        self.fmri, self.images = fmri.to(device), images.to(device)  # (N, V), (N, 1, S, S)
        self.fmri_val = fmri_val.to(device) if exists(fmri_val) else None
        self.images_val = images_val.to(device) if exists(images_val) else None
        self.N, self.V = self.fmri.shape
        self.amp = amp_enabled(device, amp=cfg.amp)

        torch.manual_seed(cfg.seed)  # weights; fit() forks the global RNG so the caller's is untouched
        self.model = BrainLDM(ldm_cfg, n_voxels=self.V).to(device)
        if self.model.image_size != self.images.shape[-1]:
            raise ValueError(
                f"images are {self.images.shape[-1]}x{self.images.shape[-1]} but the VAE of this config expects "
                f"{self.model.image_size}x{self.model.image_size}."
            )
        if cfg.w_coarse > 0 and not getattr(self.model.unet, "multiscale", False):
            raise ValueError(
                f"TrainConfig.w_coarse={cfg.w_coarse} needs a U-Net with a coarse head; set LDMConfig.unet='unet' "
                "and multiscale=True, or w_coarse=0."
            )
        self.gen = torch.Generator(device=device).manual_seed(cfg.seed)  # data order, t, noise, augmentation
        self.history: list[dict[str, Any]] = []
        self.steps = 0
        self.steps_this_call = 0
        self.feature_net_name: str | None = None
        self._val_draws: dict[str, torch.Tensor] | None = None

    # randomness

    def _randn(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.randn(shape, generator=self.gen, device=self.device)

    def _rand(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.rand(shape, generator=self.gen, device=self.device)

    def rng_state(self) -> dict[str, Any]:
        np_state = np.random.get_state()
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
            "generator": self.gen.get_state(),
            "numpy": {"key": np_state[0], "pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                      "cached_gaussian": float(np_state[4]), "state": torch.from_numpy(np_state[1].astype(np.int64))},
        }

    def set_rng_state(self, state: Mapping[str, Any]) -> None:
        torch.set_rng_state(state["torch"])
        if self.device.type == "cuda" and state.get("cuda") is not None:
            torch.cuda.set_rng_state(state["cuda"], self.device)
        self.gen.set_state(state["generator"])
        n = state["numpy"]
        np.random.set_state((n["key"], n["state"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))

    # fMRI augmentation

    def _augment_fmri(self, fmri: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        if cfg.fmri_noise > 0:
            fmri = fmri + cfg.fmri_noise * self._randn(tuple(fmri.shape))
        if cfg.voxel_dropout > 0:
            keep = self._rand(tuple(fmri.shape)) >= cfg.voxel_dropout  # (B, V)
            fmri = fmri * keep / (1.0 - cfg.voxel_dropout)
        return fmri

    # stage 1: VAE

    def _vae_stage(self) -> _Stage:
        cfg, vae = self.cfg, self.model.vae

        def vae_terms(images: torch.Tensor, *, sample: bool, generator: torch.Generator | None) -> dict[str, torch.Tensor]:
            with autocast(self.device, enabled=self.amp):
                mean, logvar = vae.encode(images)
                z = mean
                if sample:
                    z = mean + torch.exp(0.5 * logvar) * torch.randn(
                        mean.shape, generator=generator, device=self.device, dtype=mean.dtype)
                recon = vae.decode(z)
            recon, mean, logvar = recon.float(), mean.float(), logvar.float()  # losses in float32 (BCE refuses autocast)
            rec = F.binary_cross_entropy(recon, images) if cfg.vae_recon == "bce" else F.mse_loss(recon, images)
            return {"recon": rec, "kl": kl_divergence(mean, logvar)}

        def loss(idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            images = self.images[idx]
            if cfg.vae_augment:
                images = random_affine(images, generator=self.gen, degrees=cfg.augment_degrees,
                                       translate=cfg.augment_translate)
            terms = vae_terms(images, sample=True, generator=self.gen)
            return terms["recon"] + cfg.vae_kl_weight * terms["kl"], terms

        validate = None
        if exists(self.images_val):
            @torch.no_grad()
            def validate() -> float:
                vae.eval()
                terms = vae_terms(self.images_val, sample=False, generator=None)
                return float(terms["recon"] + cfg.vae_kl_weight * terms["kl"])

        def set_modes() -> None:
            self.model.eval()
            vae.train()

        def finish() -> None:
            if cfg.fit_latent_scale:
                self._fit_latent_scale()
            self._reseed_after_vae()

        return _Stage("vae", cfg.vae_epochs, cfg.vae_lr, list(vae.parameters()), loss, set_modes,
                      validate=validate, finish=finish)

    # stage-1 cache: the VAE stage depends only on the VAE's config, its training fields, the seed and the
    # images (its weights are initialised from their own seed, and the RNGs are reseeded after it), so a
    # trained VAE can be reused by every variant that shares those, with bitwise the same result.

    VAE_TRAIN_FIELDS = ("vae_epochs", "vae_lr", "vae_kl_weight", "vae_recon", "vae_augment", "augment_degrees",
                        "augment_translate", "fit_latent_scale", "batch_size", "weight_decay", "grad_clip", "seed",
                        "val_every")

    def _init_vae_from_own_seed(self) -> None:
        from ldm_core.models import build_vae

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.cfg.seed)
            fresh = build_vae(self.ldm_cfg)
        self.model.vae.load_state_dict(fresh.state_dict())
        self.model.set_latent_scale(float(fresh.scale_factor))

    def _reseed_after_vae(self) -> None:
        torch.manual_seed(self.cfg.seed + 1)
        self.gen.manual_seed(self.cfg.seed + 1)

    def vae_cache_path(self) -> Path | None:
        if not exists(self.cfg.vae_cache_dir):
            return None
        import hashlib
        import json

        h = hashlib.sha256()
        h.update(json.dumps({"ldm": {k: v for k, v in self.ldm_cfg.to_dict().items() if k.startswith("vae")},
                             "train": {k: getattr(self.cfg, k) for k in self.VAE_TRAIN_FIELDS},
                             "val": exists(self.images_val)}, sort_keys=True).encode())
        h.update(self.images.detach().cpu().numpy().tobytes())
        if exists(self.images_val):
            h.update(self.images_val.detach().cpu().numpy().tobytes())
        return Path(self.cfg.vae_cache_dir) / f"vae-{h.hexdigest()[:24]}.pt"

    def load_cached_vae(self) -> bool:
        path = self.vae_cache_path()
        if path is None or not path.is_file():
            return False
        blob = torch.load(path, map_location=self.device, weights_only=True)
        self.model.vae.load_state_dict(blob["vae"])
        self.model.set_latent_scale(float(blob["latent_scale"]))
        self.history.extend(dict(r) for r in blob["history"])
        self._reseed_after_vae()
        return True

    def save_cached_vae(self) -> None:
        path = self.vae_cache_path()
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = [r for r in self.history if r["stage"] == "vae"]
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save({"vae": {k: v.detach().cpu() for k, v in self.model.vae.state_dict().items()},
                    "latent_scale": self.model.latent_scale.detach().cpu(), "history": rows}, tmp)
        os.replace(tmp, path)

    @torch.no_grad()
    def _fit_latent_scale(self) -> None:
        """latent_scale = 1 / std of VAE latents of the training images (posterior mean and variance pooled)."""
        vae = self.model.vae
        vae.eval()
        mean, logvar = vae.encode(self.images)  # (N, C, h, w) each
        var = (mean - mean.mean()).pow(2).mean() + logvar.exp().mean()  # total variance of z = mean + sigma * eps
        self.model.set_latent_scale(float(1.0 / var.clamp(min=1e-12).sqrt()))

    # stage 2: encoder alignment

    def _align_stage(self) -> _Stage:
        cfg, model = self.cfg, self.model
        C, h, w = model.latent_shape
        head = nn.Linear(model.encoder.out_dim, C * h * w).to(self.device)  # mean token (D) -> flat latent

        @torch.no_grad()
        def targets(images: torch.Tensor) -> torch.Tensor:
            model.vae.eval()
            return (model.latent_scale * model.vae.encode(images).mean).flatten(1)  # (B, C*h*w)

        target_train = targets(self.images)
        target_val = targets(self.images_val) if exists(self.images_val) else None

        def predict(fmri: torch.Tensor) -> torch.Tensor:
            with autocast(self.device, enabled=self.amp):
                out = head(model.encode_fmri(fmri).mean(dim=1))  # (B, T, D) -> (B, D) -> (B, C*h*w)
            return out.float()

        def loss(idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            mse = F.mse_loss(predict(self._augment_fmri(self.fmri[idx])), target_train[idx])
            return mse, {"align_mse": mse}

        validate = None
        if exists(target_val):
            @torch.no_grad()
            def validate() -> float:
                model.encoder.eval()
                head.eval()
                return float(F.mse_loss(predict(self.fmri_val), target_val))

        def set_modes() -> None:
            model.eval()
            model.encoder.train()
            head.train()

        params = list(model.encoder.parameters()) + list(head.parameters())
        return _Stage("align", cfg.align_epochs, cfg.lr, params, loss, set_modes, validate=validate,
                      extras={"align_head": head})

    # stage 3: diffusion

    def _make_image_loss(self) -> tuple[ImageLoss | None, PatchDiscriminator | None]:
        cfg = self.cfg
        if cfg.w_img_mse == cfg.w_perceptual == cfg.w_ssim == cfg.w_adv == 0:
            return None, None
        perceptual = None
        if cfg.w_perceptual > 0:
            from ldm_core.feature_net import get_feature_net

            net, self.feature_net_name = get_feature_net(
                cfg.perceptual_net, cache_dir=cfg.feature_net_cache_dir, seed=cfg.seed)
            perceptual = PerceptualLoss(net.to(self.device))
        disc = PatchDiscriminator(spectral_norm=True).to(self.device) if cfg.w_adv > 0 else None
        image_loss = ImageLoss(w_mse=cfg.w_img_mse, w_perceptual=cfg.w_perceptual, w_ssim=cfg.w_ssim,
                               w_adv=cfg.w_adv, perceptual=perceptual, discriminator=disc, adv_kind=cfg.adv_kind)
        return image_loss.to(self.device), disc

    def _val_noise(self) -> dict[str, torch.Tensor]:
        """Fixed validation draws (t, eps, posterior eps) from their own seeded generator."""
        if self._val_draws is None:
            M = self.fmri_val.shape[0] * self.cfg.val_repeats
            g = torch.Generator(device=self.device).manual_seed(self.cfg.seed + 1)
            shape = (M, *self.model.latent_shape)
            self._val_draws = {
                "t": torch.randint(0, self.model.schedule.n_train_steps, (M,), generator=g, device=self.device),
                "noise": torch.randn(shape, generator=g, device=self.device),
                "z_eps": torch.randn(shape, generator=g, device=self.device),
            }
        return self._val_draws

    def _diffusion_stage(self, *, train_encoder: bool, train_vae_encoder: bool) -> _Stage:
        cfg, model = self.cfg, self.model
        schedule, unet = model.schedule, model.unet
        T = schedule.n_train_steps
        t_img_max = cfg.img_loss_t_frac * T
        image_loss, disc = self._make_image_loss()
        last: dict[str, torch.Tensor] = {}  # real / fake images of the last step, for the discriminator

        model.requires_grad_(False)
        unet.requires_grad_(True)
        if train_encoder:
            model.encoder.requires_grad_(True)
        if train_vae_encoder:
            model.vae.encoder.requires_grad_(True)  # the decoder stays out: no loss reaches it
        params = [p for p in model.parameters() if p.requires_grad]

        def latents(images: torch.Tensor, z_eps: torch.Tensor) -> torch.Tensor:
            mean, logvar = model.vae.encode(images)
            return model.latent_scale * (mean + torch.exp(0.5 * logvar) * z_eps)  # (B, C, h, w)

        def terms_of(fmri, images, t, noise, z_eps, drop, *, with_images: bool):
            with autocast(self.device, enabled=self.amp):
                with torch.set_grad_enabled(train_vae_encoder and torch.is_grad_enabled()):
                    x0 = latents(images, z_eps)
                with torch.set_grad_enabled(train_encoder and torch.is_grad_enabled()):
                    cond = model.encode_fmri(fmri)
                x_t = schedule.q_sample(x0, t, noise)
                out = unet(x_t, t, cond, cond_drop_mask=drop, return_coarse=cfg.w_coarse > 0)
            pred, coarse = (out.sample, out.coarse) if cfg.w_coarse > 0 else (out, None)
            target = schedule.training_target(x0, noise)
            terms = {"noise": noise_mse(pred.float(), target.float())}
            total = cfg.w_noise * terms["noise"]
            if coarse is not None:
                terms["coarse"] = F.mse_loss(coarse.float(), coarse_target(target).float())
                total = total + cfg.w_coarse * terms["coarse"]
            if with_images and image_loss is not None:
                rows = t < t_img_max
                if bool(rows.any()):
                    with autocast(self.device, enabled=self.amp):
                        x0_hat = schedule.predict_x0(x_t[rows], t[rows], pred[rows])
                        fake = model.decode_latents(x0_hat)  # (b, 1, S, S), through the frozen decoder
                    out_img = image_loss(fake.float(), images[rows])
                    total = total + out_img.total
                    terms.update({f"img_{k}": torch.tensor(v) for k, v in out_img.terms.items() if k != "total"})
                    last["real"], last["fake"] = images[rows], fake.detach().float()
            return total, terms

        def loss(idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            B = idx.shape[0]
            fmri = self._augment_fmri(self.fmri[idx])
            images = self.images[idx]
            t = torch.randint(0, T, (B,), generator=self.gen, device=self.device)
            noise = self._randn((B, *model.latent_shape))
            z_eps = self._randn((B, *model.latent_shape))
            drop = self._rand((B,)) < cfg.cfg_dropout if cfg.cfg_dropout > 0 else None
            last.clear()
            return terms_of(fmri, images, t, noise, z_eps, drop, with_images=True)

        validate = None
        if exists(self.fmri_val):
            @torch.no_grad()
            def validate() -> float:
                model.eval()
                draws = self._val_noise()
                R = cfg.val_repeats
                fmri = self.fmri_val.repeat(R, 1)  # (R*M, V)
                images = self.images_val.repeat(R, 1, 1, 1)  # (R*M, 1, S, S)
                _, terms = terms_of(fmri, images, draws["t"], draws["noise"], draws["z_eps"], None, with_images=False)
                return float(terms["noise"])

        def set_modes() -> None:
            model.eval()
            unet.train()
            if train_encoder:
                model.encoder.train()
            if train_vae_encoder:
                model.vae.encoder.train()

        extras, extra_opts, after_step = {}, {}, None
        if disc is not None:
            d_opt = torch.optim.AdamW(disc.parameters(), lr=cfg.lr, betas=(0.5, 0.999), weight_decay=cfg.weight_decay)
            extras, extra_opts = {"discriminator": disc}, {"discriminator": d_opt}

            def after_step() -> dict[str, float]:
                if not last:
                    return {}
                d_opt.zero_grad(set_to_none=True)  # also drops the generator step's gradients on D
                with autocast(self.device, enabled=self.amp):
                    loss_d = d_loss(disc(last["real"]), disc(last["fake"]), kind=cfg.adv_kind)
                loss_d.float().backward()
                d_opt.step()
                return {"disc": float(loss_d.detach())}

        ema = EMA(model, decay=cfg.ema_decay) if exists(cfg.ema_decay) else None
        return _Stage("diffusion", cfg.epochs, cfg.lr, params, loss, set_modes, validate=validate, ema=ema,
                      extras=extras, extra_opts=extra_opts, after_step=after_step)

    def _build_stage(self, name: str) -> _Stage:
        self.model.requires_grad_(True)
        if name == "vae":
            return self._vae_stage()
        if name == "align":
            return self._align_stage()
        plan = self.cfg.stages
        return self._diffusion_stage(
            train_encoder=plan != "progressive" or self.cfg.finetune_encoder,
            train_vae_encoder=plan == "original",
        )

    # checkpoints

    def checkpoint_path(self) -> Path | None:
        return Path(self.cfg.checkpoint_dir) / CHECKPOINT_NAME if exists(self.cfg.checkpoint_dir) else None

    def save_checkpoint(self, *, stage_index: int, epoch: int, stage: _Stage | None = None,
                        opt: Any = None, sched: Any = None, early: dict | None = None) -> None:
        path = self.checkpoint_path()
        if path is None:
            return
        ckpt = {
            "format": CHECKPOINT_FORMAT,
            "train_cfg": self.cfg.to_dict(),
            "ldm_cfg": self.ldm_cfg.to_dict(),
            "n_voxels": self.V,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "stage_index": stage_index,
            "epoch": epoch,
            "optimizer": opt.state_dict() if exists(opt) else None,
            "scheduler": sched.state_dict() if exists(sched) else None,
            "ema": stage.ema.state_dict() if exists(stage) and exists(stage.ema) else None,
            "extras": {k: m.state_dict() for k, m in stage.extras.items()} if exists(stage) else {},
            "extra_opts": {k: o.state_dict() for k, o in stage.extra_opts.items()} if exists(stage) else {},
            "early": early,
            "history": self.history,
            "steps": self.steps,
            "feature_net_name": self.feature_net_name,
            "rng": self.rng_state(),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save(ckpt, tmp)
        os.replace(tmp, path)

    def load_checkpoint(self) -> dict[str, Any] | None:
        path = self.checkpoint_path()
        if path is None or not path.is_file():
            return None
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        if ckpt.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not a training checkpoint of format {CHECKPOINT_FORMAT!r}; delete it or use another checkpoint_dir.")
        saved, now = ckpt["train_cfg"], self.cfg.to_dict()
        diff = sorted(k for k in now if k not in RESUMABLE_CHANGES and saved.get(k) != now[k])
        if diff:
            raise ValueError(
                f"cannot resume from {path}: TrainConfig field(s) {diff} differ from the checkpoint's "
                f"({ {k: saved.get(k) for k in diff} }); only {RESUMABLE_CHANGES} may change. Use the same "
                "settings or another checkpoint_dir."
            )
        if ckpt["ldm_cfg"] != self.ldm_cfg.to_dict() or ckpt["n_voxels"] != self.V:
            raise ValueError(f"cannot resume from {path}: it was trained with another LDMConfig or voxel count "
                             f"({ckpt['n_voxels']} voxels); use the same model config or another checkpoint_dir.")
        self.model.load_state_dict(ckpt["model"])
        self.history = list(ckpt["history"])
        self.steps = int(ckpt["steps"])
        self.feature_net_name = ckpt["feature_net_name"]
        return ckpt

    # the epoch loop

    def _snapshot(self, stage: _Stage) -> dict[str, Any]:
        return {"model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
                "extras": {k: copy.deepcopy(m.state_dict()) for k, m in stage.extras.items()}}

    def _restore(self, stage: _Stage, snap: Mapping[str, Any]) -> None:
        self.model.load_state_dict(snap["model"])
        for k, m in stage.extras.items():
            m.load_state_dict(snap["extras"][k])

    def run_stage(self, stage_index: int, name: str, *, final: bool, resume: dict[str, Any] | None) -> None:
        cfg = self.cfg
        mid_stage = exists(resume) and exists(resume["optimizer"])
        if exists(resume) and not mid_stage:
            self.set_rng_state(resume["rng"])  # stage boundary: set up the stage from the saved RNG state
        stage = self._build_stage(name)
        opt = torch.optim.AdamW(stage.params, lr=stage.lr, weight_decay=cfg.weight_decay)
        sched = (torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=10, T_mult=2)
                 if cfg.lr_schedule == "cosine_warm_restarts" else None)
        early = {"best": math.inf, "bad": 0, "stopped": False, "best_state": None}
        start = 0
        if mid_stage:
            opt.load_state_dict(resume["optimizer"])
            if exists(sched):
                sched.load_state_dict(resume["scheduler"])
            if exists(stage.ema):
                stage.ema.load_state_dict(resume["ema"])
            for k, m in stage.extras.items():
                m.load_state_dict(resume["extras"][k])
            for k, o in stage.extra_opts.items():
                o.load_state_dict(resume["extra_opts"][k])
            if exists(resume["early"]):
                early = dict(resume["early"])
            start = int(resume["epoch"])
            self.set_rng_state(resume["rng"])  # after set-up, which drew from the global RNG as it did first time

        from tqdm.auto import tqdm

        bar = tqdm(range(start, stage.epochs), desc=f"{name} ({cfg.stages})", unit="epoch",
                   initial=start, total=stage.epochs, disable=True if not cfg.progress else None)
        bs = cfg.batch_size
        for epoch in bar:
            if early["stopped"]:
                break
            stage.set_modes()
            perm = torch.randperm(self.N, generator=self.gen, device=self.device)
            sums: dict[str, float] = defaultdict(float)
            n_batches = 0
            lr = opt.param_groups[0]["lr"]
            t_epoch = time.perf_counter()
            for b, s in enumerate(range(0, self.N, bs)):
                loss, terms = stage.loss(perm[s:s + bs])
                values = {k: float(v.detach()) for k, v in terms.items()}  # one sync per term, for the log
                values["loss"] = float(loss.detach())
                if not all(math.isfinite(v) for v in values.values()):
                    raise FloatingPointError(
                        f"non-finite loss in stage {name!r} ({cfg.stages} plan), epoch {epoch + 1}, step {b + 1} "
                        f"of the epoch (global step {self.steps + 1}): "
                        + ", ".join(f"{k}={v!r}" for k, v in values.items())
                        + f". Lower the learning rate (lr={stage.lr}), keep grad_clip on, and check the inputs."
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if exists(cfg.grad_clip):
                    torch.nn.utils.clip_grad_norm_(stage.params, cfg.grad_clip)
                opt.step()
                self.steps += 1
                self.steps_this_call += 1
                if exists(stage.ema):
                    stage.ema.update()
                if exists(stage.after_step):
                    values.update(stage.after_step())
                for k, v in values.items():
                    sums[k] += v
                n_batches += 1
            if exists(sched):
                sched.step()
            row: dict[str, Any] = {"stage": name, "epoch": epoch + 1, "lr": lr, "steps": n_batches,
                                   "epoch_time_s": time.perf_counter() - t_epoch,
                                   "train_loss": sums.pop("loss") / n_batches}
            row.update({f"train_{k}": v / n_batches for k, v in sums.items()})
            row["val_loss"] = math.nan
            last_epoch = epoch + 1 == stage.epochs
            if exists(stage.validate) and ((epoch + 1) % cfg.val_every == 0 or last_epoch):
                with (stage.ema.swapped() if exists(stage.ema) else _Swap(None)):
                    row["val_loss"] = stage.validate()
                    if exists(cfg.early_stopping_patience):
                        if row["val_loss"] < early["best"]:
                            early.update(best=row["val_loss"], bad=0, best_state=self._snapshot(stage))
                        else:
                            early["bad"] += 1
                            early["stopped"] = early["bad"] >= cfg.early_stopping_patience
            self.history.append(row)
            bar.set_postfix(loss=f"{row['train_loss']:.4g}", val=f"{row['val_loss']:.4g}")
            if (epoch + 1) % cfg.checkpoint_every == 0 or last_epoch or early["stopped"]:
                self.save_checkpoint(stage_index=stage_index, epoch=epoch + 1, stage=stage, opt=opt, sched=sched, early=early)
        bar.close()

        # stage end: best (or EMA) weights, then the stage's own finishing work
        if exists(early["best_state"]):
            self._restore(stage, early["best_state"])
        elif exists(stage.ema):
            stage.ema.copy_to_module()
        self.model.requires_grad_(True)
        if not final:
            if exists(stage.finish):
                stage.finish()
            self.save_checkpoint(stage_index=stage_index + 1, epoch=0)  # boundary: next stage starts fresh

    def run(self, *, resume: bool) -> None:
        ckpt = self.load_checkpoint() if resume else None
        plan = [n for n in STAGE_PLANS[self.cfg.stages]
                if not (n == "vae" and self.cfg.vae_epochs == 0) and not (n == "align" and self.cfg.align_epochs == 0)]
        first = int(ckpt["stage_index"]) if exists(ckpt) else 0
        for i, name in enumerate(plan):
            if i < first:
                continue
            resume_here = ckpt if exists(ckpt) and i == first else None
            if name == "vae" and not exists(resume_here) and i < len(plan) - 1:
                self._init_vae_from_own_seed()
                if self.load_cached_vae():
                    self.save_checkpoint(stage_index=i + 1, epoch=0)
                    continue
            self.run_stage(i, name, final=i == len(plan) - 1, resume=resume_here)
            if name == "vae" and i < len(plan) - 1:
                self.save_cached_vae()


# fit

def fit(
    fmri_train: Any,
    images_train: Any,
    *,
    fmri_val: Any = None,
    images_val: Any = None,
    ldm_cfg: LDMConfig | str,
    train_cfg: TrainConfig | Mapping[str, Any] | None = None,
    resume: bool = False,
) -> FitResult:
    """Train a Brain LDM.

    Parameters
    ----------
    fmri_train : array of shape (N, V), float32
        Training fMRI, z-scored by the caller with training statistics.
    images_train : array of shape (N, S, S), float32 in [0, 1]
        Stimulus images of the training trials, same order.
    fmri_val, images_val : arrays of shape (M, V) and (M, S, S), optional
        Validation trials split off the training set (never the test set), z-scored with
        the training statistics; used for the validation loss and early stopping.
    ldm_cfg : LDMConfig or str
        Architecture, or a preset name ("original", "fixed").
    train_cfg : TrainConfig or mapping, optional
        Training settings; a mapping goes through ``TrainConfig.from_dict``. None = defaults.
    resume : bool, default False
        Continue from ``<checkpoint_dir>/last.pt`` when it exists (starts from scratch
        otherwise). Only ``epochs``, ``progress``, ``checkpoint_dir``, ``checkpoint_every``
        and ``device`` may differ from the checkpoint's settings.

    Returns
    -------
    FitResult

    Raises
    ------
    ValueError
        On bad inputs (see :func:`check_training_data`), early stopping without
        validation data, ``resume`` without ``checkpoint_dir``, an image size the VAE
        does not take, or a checkpoint made with other settings.
    FloatingPointError
        When a training loss becomes NaN or infinite (names stage, epoch, step, terms).
    """
    if isinstance(ldm_cfg, str):
        ldm_cfg = get_preset(ldm_cfg)
    if not isinstance(ldm_cfg, LDMConfig):
        raise ValueError(f"ldm_cfg must be an LDMConfig or a preset name, got {type(ldm_cfg).__name__}.")
    cfg = TrainConfig() if train_cfg is None else train_cfg
    if isinstance(cfg, Mapping):
        cfg = TrainConfig.from_dict(cfg)
    if not isinstance(cfg, TrainConfig):
        raise ValueError(f"train_cfg must be a TrainConfig, a mapping or None, got {type(cfg).__name__}.")
    data = check_training_data(fmri_train, images_train, fmri_val, images_val)
    if exists(cfg.early_stopping_patience) and data[2] is None:
        raise ValueError(
            f"early_stopping_patience={cfg.early_stopping_patience} needs validation data; pass fmri_val and "
            "images_val (split from the training trials) or set early_stopping_patience=None."
        )
    if resume and not exists(cfg.checkpoint_dir):
        raise ValueError("resume=True needs TrainConfig.checkpoint_dir (the folder holding last.pt).")
    device = resolve_device(cfg.device)

    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else [], device_type=device.type):
        trainer = _Trainer(data, ldm_cfg=ldm_cfg, cfg=cfg, device=device)
        trainer.run(resume=resume)
    wall = time.perf_counter() - t0

    keys: list[str] = []
    for row in trainer.history:
        keys += [k for k in row if k not in keys]
    history = {k: [row.get(k, math.nan) for row in trainer.history] for k in keys}
    model = trainer.model.eval()
    return FitResult(
        model=model,
        history=history,
        feature_net_name=trainer.feature_net_name,
        wall_time_s=wall,
        steps=trainer.steps,
        steps_per_s=trainer.steps_this_call / wall if wall > 0 else math.nan,
        device=describe_device(device),
    )
