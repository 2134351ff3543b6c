"""A VAE with a small vector latent (e.g. 16 numbers per image): the image prior's autoencoder.

Chapter 07 learns its image prior from thousands of unpaired digits and maps fMRI to the latent by ridge
regression from 72-90 trials. A spatial latent (the 8x8x8 one of :class:`~ldm_core.models.vae.LargeVAE`) has 512
numbers that each describe a patch; a regression from so few trials predicts a blurred patchwork there. A vector
latent forces the decoder to turn *any* code into a whole digit, so a regression's shrunk prediction still
decodes to a digit-like image, and the diffusion prior over 16 numbers is small enough to train on a CPU.

Interface as the other VAEs (``docs/DESIGN.md``): ``encode(x) -> LatentDistribution(mean, logvar)`` with shapes
(B, d); ``decode(z) -> (B, 1, S, S)`` in [0, 1]; ``forward`` returns ``VAEOutput``. The loss is the per-image ELBO
(:func:`elbo_loss`): binary cross-entropy summed over pixels plus ``kl_weight`` times the KL divergence summed over
latent dimensions, averaged over the batch (``kl_weight = 1`` is the standard VAE).

References
----------
- Kingma & Welling 2014, "Auto-encoding variational Bayes".
- Ozcelik & VanRullen 2023, "Natural scene reconstruction from fMRI signals using generative latent diffusion"
  (Brain-Diffuser: regression from fMRI to a pretrained VAE's latent, then diffusion).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .vae import LatentDistribution, VAEOutput, kl_divergence, reparameterise

__all__ = ["VectorVAE", "elbo_loss"]


class VectorVAE(nn.Module):
    """Convolutional VAE between (B, 1, S, S) images and (B, d) latents.

    Encoder: Conv(1 -> w, k4 s2) SiLU, Conv(w -> 2w, k4 s2) SiLU, Conv(2w -> 2w, k3) SiLU, then an MLP
    (2w * S/4 * S/4 -> hidden -> 2d) giving mean and log-variance. The decoder mirrors it with transposed
    convolutions and a sigmoid.

    Parameters
    ----------
    latent_dim : int, default 16
        d, the numbers per image.
    image_size : int, default 28
        S; must be a multiple of 4.
    width : int, default 32
        Channels w of the first convolution.
    hidden : int, default 256
        Width of the MLP between the convolutions and the latent.

    Raises
    ------
    ValueError
        On a non-positive size or an image size that is not a multiple of 4.
    """

    def __init__(self, *, latent_dim: int = 16, image_size: int = 28, width: int = 32, hidden: int = 256) -> None:
        super().__init__()
        for name, v in (("latent_dim", latent_dim), ("width", width), ("hidden", hidden)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}.")
        if image_size < 4 or image_size % 4:
            raise ValueError(f"image_size must be a positive multiple of 4, got {image_size!r}.")
        self.latent_dim, self.image_size = latent_dim, image_size
        self.latent_shape = (latent_dim,)
        q = image_size // 4
        flat = 2 * width * q * q
        self.encoder = nn.Sequential(
            nn.Conv2d(1, width, 4, stride=2, padding=1), nn.SiLU(),  # S/2
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.SiLU(),  # S/4
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.SiLU(),
            nn.Flatten(), nn.Linear(flat, hidden), nn.SiLU(), nn.Linear(hidden, 2 * latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.SiLU(), nn.Linear(hidden, flat), nn.SiLU(),
            nn.Unflatten(1, (2 * width, q, q)),
            nn.ConvTranspose2d(2 * width, 2 * width, 3, padding=1), nn.SiLU(),
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1), nn.SiLU(),  # S/2
            nn.ConvTranspose2d(width, 1, 4, stride=2, padding=1),  # S, logits
        )

    def encode(self, x: torch.Tensor) -> LatentDistribution:
        """x : Tensor (B, 1, S, S) in [0, 1] -> LatentDistribution(mean (B, d), logvar (B, d)), logvar clamped to [-30, 20]."""
        S = self.image_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, S, S):
            raise ValueError(f"x must have shape (B, 1, {S}, {S}), got {tuple(x.shape)}.")
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return LatentDistribution(mean, logvar.clamp(-30.0, 20.0))

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """z : Tensor (B, d) -> pixel logits (B, 1, S, S)."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (B, {self.latent_dim}), got {tuple(z.shape)}.")
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z : Tensor (B, d) -> images (B, 1, S, S) in [0, 1]."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: torch.Tensor, *, sample_posterior: bool = True,
                generator: torch.Generator | None = None) -> VAEOutput:
        """Encode, draw (or take the mean) latent, decode; returns ``VAEOutput(recon, mean, logvar)``."""
        mean, logvar = self.encode(x)
        z = mean
        if sample_posterior:
            eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
            z = reparameterise(mean, logvar, eps)
        return VAEOutput(self.decode(z), mean, logvar)


def elbo_loss(vae: VectorVAE, images: torch.Tensor, *, kl_weight: float,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Negative ELBO per image: BCE summed over pixels + ``kl_weight`` * KL summed over latent dimensions.

    Parameters
    ----------
    vae : VectorVAE
    images : Tensor of shape (B, 1, S, S), float32 in [0, 1]
    kl_weight : float >= 0
        beta of the beta-VAE; 1 is the standard VAE, 0 a plain autoencoder with a sampled latent.
    generator : torch.Generator, optional
        Source of the reparameterisation noise.

    Returns
    -------
    total : Tensor, scalar, nats per image
    terms : dict with "recon" (BCE per image) and "kl" (KL per image), scalars
    """
    mean, logvar = vae.encode(images)
    eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    logits = vae.decode_logits(reparameterise(mean, logvar, eps))
    recon = F.binary_cross_entropy_with_logits(logits, images, reduction="sum") / len(images)
    kl = kl_divergence(mean, logvar, per="sample")
    return recon + kl_weight * kl, {"recon": recon, "kl": kl}
