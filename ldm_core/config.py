"""Configuration of the Brain LDM: the model (:class:`LDMConfig`, two presets) and its training (:class:`TrainConfig`).

:class:`LDMConfig` names every architectural choice of the study (encoder, VAE,
denoiser, conditioning, noise schedule); its defaults are the report's original
model. ``PRESETS["original"]`` reproduces that model with its defects;
``PRESETS["fixed"]`` switches on the fixes. :class:`TrainConfig` holds every
training choice of :func:`ldm_core.train.fit` (stage plan, epochs, learning rates,
loss weights, fMRI augmentation, caches); its defaults are the report's
recipe where it gave one. A params YAML lists only the fields that differ;
``from_dict`` refuses unknown keys and wrong types, as nanoGPT's
``configurator.py`` does. The builders turning an LDMConfig into modules live in
:mod:`ldm_core.models` (``build_encoder``, ``build_vae``, ``build_unet``,
``build_schedule``).

fMRI augmentation (Gaussian noise on the z-scored voxels, voxel dropout) is a
training choice and is set only in ``TrainConfig.fmri_noise`` /
``TrainConfig.voxel_dropout``; :data:`FIXED_AUGMENTATION` is the recipe the
``"fixed"`` preset's encoder used to apply itself.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

__all__ = [
    "LDMConfig", "PRESETS", "get_preset", "CHOICES", "REMOVED_LDM_FIELDS",
    "TrainConfig", "STAGE_PLANS", "LR_SCHEDULES", "ADV_KINDS", "REMOVED_TRAIN_FIELDS", "GRAD_CLIP", "VAL_REPEATS",
    "FIXED_AUGMENTATION", "NO_AUGMENTATION", "FIXED_RECIPE",
]

# allowed values of the string fields
CHOICES: dict[str, tuple[str, ...]] = {
    "encoder": ("mlp_original", "mlp_regularised", "brain_aware"),
    "vae": ("original", "large"),
    "vae_norm": ("none", "group", "batch"),
    "unet": ("original", "unet"),
    "conditioning": ("add", "film", "cross_attn", "none"),
    "cond_points": ("all", "mid"),
    "schedule": ("linear", "cosine"),
    "prediction": ("eps", "x0"),
}
# LDMConfig fields that were removed -> where their job went. from_dict still reads them at 0.0 (no
# augmentation, what every config now does) so older model files and configs load; run cache keys
# include them at 0.0 so cached runs keep their keys (ldm_core.study.runs.train_key).
REMOVED_LDM_FIELDS: dict[str, str] = {
    "encoder_input_noise": "TrainConfig.fmri_noise",
    "encoder_voxel_dropout": "TrainConfig.voxel_dropout",
}


# helpers

def exists(x: Any) -> bool:
    return x is not None


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


# config

@dataclass
class LDMConfig:
    """Architecture of a Brain LDM; the defaults are the report's original model.

    Raises
    ------
    ValueError
        From ``__post_init__``: a string field outside its allowed values (listed
        in ``CHOICES``), a value of the wrong type, a non-positive size, or
        ``multiscale=True`` with ``unet="original"`` or a single U-Net level.
    """

    # fMRI encoder
    encoder: str = "mlp_original"  # "mlp_original" (report's V-1024-768-512-512 MLP), "mlp_regularised", "brain_aware"
    encoder_dim: int = 512  # token dimension D handed to the U-Net
    encoder_hidden: tuple[int, ...] = (1024, 768, 512)  # hidden widths of the MLP encoders (unused by brain_aware)
    encoder_dropout: float = 0.1  # dropout after each MLP hidden block, or inside the transformer layers; in [0, 1)
    encoder_tokens: int = 16  # number of contiguous voxel groups = tokens (brain_aware only)
    # VAE
    vae: str = "original"  # "original": 4x7x7 latent; "large": residual VAE, 8x8x8 latent on a 32x32 canvas
    vae_norm: str = "none"  # normalisation in the VAE: "none" (the original), "group" or "batch"
    # denoiser
    unet: str = "original"  # "original": 5-conv stack ignoring t and cond; "unet": skip U-Net, res blocks
    original_unet_uses_embedding: bool = False  # "original" U-Net only: True adds the t + fMRI embedding (repair)
    unet_channels: tuple[int, ...] = (64, 128)  # widths per resolution level of the "unet" (each divisible by 8)
    unet_attention: bool = True  # self-attention at the lowest resolution ("unet" only)
    conditioning: str = "add"  # fMRI into the "unet": "add" (to t embedding), "film", "cross_attn", "none"
    cond_points: str = "all"  # blocks receiving the condition: "all" or "mid" (lowest resolution only)
    multiscale: bool = False  # extra half-resolution output head, the hierarchical variant ("unet" only)
    # noise schedule
    schedule: str = "linear"  # betas: "linear" (DDPM) or "cosine" (Nichol & Dhariwal 2021)
    n_train_steps: int = 1000  # diffusion steps T
    beta_start: float = 1e-4  # first beta of the linear schedule
    beta_end: float = 0.02  # last beta of the linear schedule
    prediction: str = "eps"  # denoiser target: "eps" (noise) or "x0" (clean latent)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            default = f.default
            if isinstance(default, bool):
                ok = isinstance(value, bool)
            elif isinstance(default, int):
                ok = isinstance(value, int) and not isinstance(value, bool)
            elif isinstance(default, float):
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
                if ok:
                    setattr(self, f.name, float(value))
            elif isinstance(default, tuple):
                if isinstance(value, list):
                    value = tuple(value)
                    setattr(self, f.name, value)
                ok = isinstance(value, tuple) and all(
                    isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
                )
            else:
                ok = isinstance(value, str)
            if not ok:
                raise ValueError(
                    f"LDMConfig.{f.name} must be of the type of its default {default!r} "
                    f"({type(default).__name__}{' of positive ints' if isinstance(default, tuple) else ''}), "
                    f"got {value!r}."
                )
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"LDMConfig.{name} must be one of {allowed}, got {value!r}.")
        for name in ("encoder_dim", "encoder_tokens", "n_train_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"LDMConfig.{name} must be >= 1, got {getattr(self, name)!r}.")
        if not self.unet_channels:
            raise ValueError("LDMConfig.unet_channels must hold at least one width, got ().")
        if self.multiscale and self.unet == "original":
            raise ValueError(
                "LDMConfig.multiscale=True needs unet='unet'; the original U-Net has no coarse head."
            )
        if self.multiscale and len(self.unet_channels) < 2:
            raise ValueError(
                f"LDMConfig.multiscale=True needs at least two unet_channels levels, got {self.unet_channels!r}."
            )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LDMConfig":
        """Build a config from a mapping (a params YAML section); lists become tuples.

        Parameters
        ----------
        d : mapping of str to value
            Field names and values; missing fields keep their defaults.

        Returns
        -------
        LDMConfig

        Raises
        ------
        ValueError
            If ``d`` has keys that are not fields (they are named, and the valid
            keys listed), a removed field (:data:`REMOVED_LDM_FIELDS`) with a value
            other than 0, or a value that fails the checks of ``__post_init__``.
        """
        valid = [f.name for f in dataclasses.fields(cls)]
        for name, moved_to in REMOVED_LDM_FIELDS.items():
            if name in d and d[name] != 0:
                raise ValueError(
                    f"LDMConfig.{name} was removed: fMRI augmentation is a training choice, set it with "
                    f"{moved_to} (the 'fixed' preset's old values are config.FIXED_AUGMENTATION); got {name}={d[name]!r}."
                )
        d = {k: v for k, v in d.items() if k not in REMOVED_LDM_FIELDS}  # at 0.0: what every config now does
        unknown = sorted(set(d) - set(valid))
        if unknown:
            raise ValueError(f"unknown LDMConfig key(s) {unknown}; valid keys are {valid}.")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def to_dict(self) -> dict[str, Any]:
        """Plain dict with lists for tuples, ready for JSON or YAML; ``from_dict`` inverts it."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


# presets

PRESETS: dict[str, LDMConfig] = {
    # the report's model, defects included: over-parameterised MLP encoder, 4x7x7 VAE
    # without normalisation, a conv stack that ignores t and the fMRI condition
    "original": LDMConfig(),
    "fixed": LDMConfig(
        encoder="mlp_regularised",  # fewer weights and more regularisation for 90 training trials
        encoder_hidden=(512,),  # one 512-wide hidden block instead of three wider ones
        encoder_dropout=0.5,  # heavy dropout against memorising 90 trials
        vae="large",  # 8x8x8 latent: more capacity than 4x7x7
        vae_norm="group",  # stable training with small batches
        unet="unet",  # skip connections, residual blocks, t in every block
        conditioning="film",  # the condition actually reaches the network, as scale and shift
        cond_points="all",  # in every block
    ),
}


def get_preset(name: str, **overrides: Any) -> LDMConfig:
    """A fresh copy of a preset, with fields overridden by keyword.

    Parameters
    ----------
    name : {"original", "fixed"}
        Preset name.
    **overrides
        Field values replacing the preset's (checked like ``from_dict``).

    Returns
    -------
    LDMConfig

    Raises
    ------
    ValueError
        If ``name`` is not a preset (the presets are listed), or an override is an
        unknown field or a bad value.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets are {sorted(PRESETS)}.")
    return LDMConfig.from_dict({**dataclasses.asdict(PRESETS[name]), **overrides})


# training configuration

STAGE_PLANS = {  # TrainConfig.stages -> stages run, in order
    "original": ("diffusion",),
    "progressive": ("vae", "align", "diffusion"),
    "end_to_end": ("vae", "diffusion"),
}
LR_SCHEDULES = ("constant", "cosine_warm_restarts")
ADV_KINDS = ("hinge", "nonsaturating")  # allowed values of TrainConfig.adv_kind and of `kind` in adversarial.d_loss / g_loss
# TrainConfig fields removed because no chapter or params file set them -> the value every run used. The
# trainer now always does what these values say (clip the gradient norm at 1.0, no EMA or early stopping, BCE
# VAE reconstruction, latent scale fitted after the VAE stage, encoder frozen after alignment, 4 validation
# draws per trial); run and VAE cache keys include them at these values, so cached runs keep their keys.
REMOVED_TRAIN_FIELDS: dict[str, Any] = {
    "grad_clip": 1.0, "ema_decay": None, "early_stopping_patience": None, "vae_recon": "bce",
    "fit_latent_scale": True, "finetune_encoder": False, "checkpoint_every": 10, "val_repeats": 4,
    "checkpoint_dir": None,  # a machine path: never part of a run's key (ldm_core.study.runs.KEY_IGNORES)
}
GRAD_CLIP = REMOVED_TRAIN_FIELDS["grad_clip"]  # max global gradient norm of every optimiser step
VAL_REPEATS = REMOVED_TRAIN_FIELDS["val_repeats"]  # fixed (t, noise) draws per validation trial, diffusion stage

# the fMRI augmentation the 'fixed' preset's encoder used to apply (LDMConfig.encoder_input_noise = 0.1,
# encoder_voxel_dropout = 0.1); pass it in a train config: {**train_cfg, **FIXED_AUGMENTATION}. The trainer
# applies it in the alignment and diffusion stages (the encoder applied it whenever it was in training mode:
# in the "progressive" plan without finetune_encoder, that was the alignment stage only) and draws it from
# the training generator (the encoder drew from the global RNG), so runs with it do not repeat old numbers.
FIXED_AUGMENTATION = {"fmri_noise": 0.1, "voxel_dropout": 0.1}
# the same fields with the augmentation switched off (TrainConfig's defaults): {**train_cfg, **NO_AUGMENTATION}
NO_AUGMENTATION = {k: 0.0 for k in FIXED_AUGMENTATION}


@dataclass
class TrainConfig:
    """Training settings of :func:`ldm_core.train.fit`; defaults are the report's recipe where it gave one.

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
    # stage 1: VAE
    vae_epochs: int = 100  # VAE pretraining epochs ("progressive", "end_to_end")
    vae_lr: float = 1e-3  # AdamW learning rate of the VAE stage
    vae_kl_weight: float = 1e-3  # weight of the KL term (per latent element) against the per-pixel reconstruction loss
    vae_augment: bool = False  # random rotation / translation of VAE training images: more views of the same images
    augment_degrees: float = 10.0  # max rotation of the VAE jitter, in degrees
    augment_translate: float = 0.1  # max shift of the VAE jitter per axis, as a fraction of the image side
    vae_cache_dir: str | None = None  # folder caching trained stage-1 VAEs by (VAE config, VAE training fields, seed, images); reused across variants
    # fMRI augmentation (alignment and diffusion stages; the one place it is set, see FIXED_AUGMENTATION)
    fmri_noise: float = 0.0  # std of Gaussian noise added to z-scored fMRI in training (units of training std)
    voxel_dropout: float = 0.0  # probability of zeroing each voxel of a training trial (survivors scaled by 1/(1-p)), in [0, 1)
    # stage 2: encoder alignment
    align_epochs: int = 100  # epochs aligning the fMRI encoder to VAE latents ("progressive" only)
    # stage 3: diffusion
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
    val_every: int = 1  # epochs between validations (the last epoch of a stage is always validated)

    def __post_init__(self) -> None:
        def fail(name: str, allowed: str) -> None:
            raise ValueError(f"TrainConfig.{name} must be {allowed}, got {getattr(self, name)!r}.")

        choices = {"stages": tuple(STAGE_PLANS), "lr_schedule": LR_SCHEDULES,
                   "adv_kind": ADV_KINDS, "device": ("auto", "cpu", "cuda")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                fail(name, f"one of {allowed}")
        for name in ("epochs", "batch_size", "val_every"):
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
        for name in ("vae_augment", "amp", "progress"):
            if not isinstance(getattr(self, name), bool):
                fail(name, "True or False")
        if not isinstance(self.perceptual_net, str) or not (
            self.perceptual_net == "digits" or self.perceptual_net.startswith("vgg16:")
        ):
            fail("perceptual_net", "'digits' or 'vgg16:/path/to/vgg16_state_dict.pth'")
        for name in ("vae_cache_dir", "feature_net_cache_dir"):
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
            If ``d`` has keys that are not fields (named, with the valid keys), a removed field
            (:data:`REMOVED_TRAIN_FIELDS`) at another value than the one every run used, or a value
            that fails the checks of ``__post_init__``.
        """
        valid = [f.name for f in dataclasses.fields(cls)]
        for name, used in REMOVED_TRAIN_FIELDS.items():
            if name in d and d[name] != used:
                raise ValueError(f"TrainConfig.{name} was removed (no chapter set it); training always uses "
                                 f"{name}={used!r}, got {d[name]!r}.")
        d = {k: v for k, v in d.items() if k not in REMOVED_TRAIN_FIELDS}
        unknown = sorted(set(d) - set(valid))
        if unknown:
            raise ValueError(f"unknown TrainConfig key(s) {unknown}; valid keys are {valid}.")
        return cls(**dict(d))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (str paths), ready for JSON, YAML or a weights-only checkpoint."""
        return {k: (os.fspath(v) if isinstance(v, os.PathLike) else v) for k, v in dataclasses.asdict(self).items()}


# The study's fixed training recipe: the notebook parameters of chapters 02-06 take their defaults for lr, epochs,
# batch_size, vae_epochs and align_epochs from it, and chapter 08 its lr (ldm_core.study.parameters); its other
# fields are TrainConfig's defaults, which are the report's recipe (chapter 01's parameters read those).
FIXED_RECIPE = TrainConfig(stages="progressive", epochs=150, batch_size=8, lr=5e-4)
