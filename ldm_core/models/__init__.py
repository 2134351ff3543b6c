"""Networks of the Brain LDM and builders that make them from an :class:`~ldm_core.config.LDMConfig`.

- :mod:`.encoders`: fMRI -> condition tokens (B, T, D).
- :mod:`.vae`: image (B, 1, 28, 28) <-> latent (B, C, h, w).
- :mod:`.unet`: denoiser on latents, conditioned on the tokens.
- :mod:`.schedule`: noise schedule and reverse steps (buffers, no weights).

The builders read sizes from their arguments (``n_voxels`` from the data,
``latent_shape`` from the VAE, ``cond_dim`` from the encoder), never from
constants.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ldm_core.config import CHOICES, LDMConfig
from ldm_core.models.encoders import BrainAwareEncoder, OriginalMLPEncoder, RegularisedMLPEncoder
from ldm_core.models.blocks import timestep_embedding
from ldm_core.models.schedule import NoiseSchedule, SchedulerOutput
from ldm_core.models.unet import OriginalUNet, UNet, UNetOutput, coarse_target
from ldm_core.models.vae import LargeVAE, LatentDistribution, OriginalVAE, VAEOutput

__all__ = [
    "OriginalMLPEncoder",
    "RegularisedMLPEncoder",
    "BrainAwareEncoder",
    "OriginalVAE",
    "LargeVAE",
    "VAEOutput",
    "LatentDistribution",
    "OriginalUNet",
    "UNet",
    "UNetOutput",
    "coarse_target",
    "timestep_embedding",
    "NoiseSchedule",
    "SchedulerOutput",
    "count_parameters",
    "build_encoder",
    "build_vae",
    "build_unet",
    "build_schedule",
]


# helpers

def count_parameters(module: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of scalar parameters of a module.

    Parameters
    ----------
    module : nn.Module
    trainable_only : bool, default False
        Count only parameters with ``requires_grad``.

    Returns
    -------
    int
        Total element count; buffers (e.g. the noise schedule, BatchNorm
        statistics) are not parameters and are not counted.
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def _unknown(field: str, value: object) -> ValueError:
    return ValueError(
        f"cfg.{field} must be one of {CHOICES[field]}, got {value!r} (was the config changed after validation?)."
    )


# builders

def build_encoder(cfg: LDMConfig, n_voxels: int) -> nn.Module:
    """The fMRI encoder chosen by ``cfg.encoder``.

    Parameters
    ----------
    cfg : LDMConfig
    n_voxels : int
        Voxel count V, read from the loaded data.

    Returns
    -------
    nn.Module
        ``forward(fmri (B, V)) -> tokens (B, T, cfg.encoder_dim)``.

    Raises
    ------
    ValueError
        If ``cfg.encoder`` is not a known encoder.
    """
    if cfg.encoder == "mlp_original":
        return OriginalMLPEncoder(
            n_voxels, hidden=cfg.encoder_hidden, out_dim=cfg.encoder_dim, dropout=cfg.encoder_dropout
        )
    if cfg.encoder == "mlp_regularised":
        return RegularisedMLPEncoder(
            n_voxels,
            hidden=cfg.encoder_hidden,
            out_dim=cfg.encoder_dim,
            dropout=cfg.encoder_dropout,
        )
    if cfg.encoder == "brain_aware":
        return BrainAwareEncoder(
            n_voxels, n_tokens=cfg.encoder_tokens, out_dim=cfg.encoder_dim, dropout=cfg.encoder_dropout
        )
    raise _unknown("encoder", cfg.encoder)


def large_vae_canvas(image_size: int) -> int:
    """Canvas side of :class:`LargeVAE` for ``image_size``: 32 for 28 (digit69), else the smallest multiple of 4 that
    is >= S + 4 with an even difference (a border of at least 2 pixels, as for 28 -> 32)."""
    c = image_size + 4
    while c % 4 or (c - image_size) % 2:
        c += 1
    return c


def build_vae(cfg: LDMConfig, *, image_size: int = 28) -> nn.Module:
    """The VAE chosen by ``cfg.vae`` with normalisation ``cfg.vae_norm``, for square images of side ``image_size``
    (read from the data, like the voxel count; not a config field).

    Returns
    -------
    OriginalVAE or LargeVAE
        ``.latent_shape`` is (4, 7, 7) or (8, 8, 8) for 28x28 images; (4, S/4, S/4) or (8, c/4, c/4) in general,
        where the large VAE's canvas c is the smallest multiple of 4 that is at least S + 4 with c - S even.

    Raises
    ------
    ValueError
        If ``cfg.vae`` is not a known VAE.
    """
    if cfg.vae == "original":
        return OriginalVAE(norm=cfg.vae_norm, image_size=image_size)
    if cfg.vae == "large":
        return LargeVAE(norm=cfg.vae_norm, image_size=image_size, canvas=large_vae_canvas(image_size))
    raise _unknown("vae", cfg.vae)


def build_unet(cfg: LDMConfig, latent_shape: Sequence[int], cond_dim: int) -> nn.Module:
    """The denoiser chosen by ``cfg.unet``.

    Parameters
    ----------
    cfg : LDMConfig
    latent_shape : (C, h, w)
        The VAE's ``latent_shape``; C sets the U-Net's input and output channels.
    cond_dim : int
        The encoder's ``out_dim`` (token dimension D).

    Returns
    -------
    OriginalUNet or UNet
        ``forward(x_t (B, C, h, w), t (B,), cond (B, T, D) or None) -> (B, C, h, w)``.

    Raises
    ------
    ValueError
        If ``cfg.unet`` is not a known denoiser.
    """
    C = int(latent_shape[0])
    if cfg.unet == "original":
        return OriginalUNet(in_channels=C, cond_dim=cond_dim, use_embedding=cfg.original_unet_uses_embedding)
    if cfg.unet == "unet":
        return UNet(
            in_channels=C,
            channels=cfg.unet_channels,
            cond_dim=cond_dim,
            conditioning=cfg.conditioning,
            cond_points=cfg.cond_points,
            attention=cfg.unet_attention,
            multiscale=cfg.multiscale,
        )
    raise _unknown("unet", cfg.unet)


def build_schedule(cfg: LDMConfig) -> NoiseSchedule:
    """The noise schedule of ``cfg`` (kind, steps, betas, prediction type)."""
    return NoiseSchedule(
        kind=cfg.schedule,
        n_train_steps=cfg.n_train_steps,
        beta_start=cfg.beta_start,
        beta_end=cfg.beta_end,
        prediction=cfg.prediction,
    )
