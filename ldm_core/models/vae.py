"""Variational autoencoders between 28x28 digit images and diffusion latents.

Both VAEs share one interface (``docs/DESIGN.md``): ``encode(x) -> (mean, logvar)``,
``decode(z) -> image in [0, 1]``, ``sample_latent(mean, logvar)`` (the
reparameterisation trick), ``forward(x) -> VAEOutput(recon, mean, logvar)``,
attributes ``latent_shape == (C, h, w)`` and ``scale_factor``.

- :class:`OriginalVAE`: the report's VAE, reproduced as described: two stride-2
  convolutions to a 4x7x7 latent, transposed convolutions back, no normalisation
  (``norm="none"``, the faithful default), ``scale_factor = 0.18215`` (the value
  Stable Diffusion uses for its own VAE, copied by the original code, not fitted).
- :class:`LargeVAE`: pads the image to a 32x32 canvas so that two halvings give an
  8x8x8 latent, with residual blocks and normalisation; crops back to 28x28.

Latents are multiplied by ``scale_factor`` before diffusion and divided by it
before decoding; the VAE itself never applies it.

References
----------
- Kingma & Welling 2014, "Auto-encoding variational Bayes" (reparameterisation).
- Rombach et al. 2022, "High-resolution image synthesis with latent diffusion
  models" (latent diffusion, scale factor 0.18215).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["VAEOutput", "LatentDistribution", "OriginalVAE", "LargeVAE", "NORMS", "reparameterise", "kl_divergence"]

NORMS = ("none", "group", "batch")


# helpers

def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor, *, per: str = "element") -> torch.Tensor:
    """KL(q(z | x) || N(0, I)) of a diagonal Gaussian, in nats: the one KL of every VAE here.

    Parameters
    ----------
    mean, logvar : Tensor of shape (B, ...)
    per : {"element", "sample"}
        "element": mean over every latent element (the spatial VAEs' stage-1 loss); "sample": summed over a
        sample's elements, mean over the B samples (the image prior's ELBO per image).

    Returns
    -------
    Tensor, scalar: ``0.5 * (mean**2 + exp(logvar) - 1 - logvar)`` reduced as ``per`` says.
    """
    kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar)
    if per == "element":
        return kl.mean()
    if per == "sample":
        return kl.sum() / len(mean)
    raise ValueError(f"kl_divergence: per must be 'element' or 'sample', got {per!r}")


def reparameterise(mean: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """z = mean + exp(logvar / 2) * eps: a draw from N(mean, exp(logvar)) given eps ~ N(0, I).

    The one implementation of the reparameterisation trick (Kingma & Welling 2014); callers that
    draw eps themselves (the diffusion loss, with fixed validation draws) pass it in.

    Parameters
    ----------
    mean, logvar : Tensor of shape (B, C, h, w)
        Posterior parameters from ``encode``.
    eps : Tensor of shape (B, C, h, w)
        Standard normal noise.

    Returns
    -------
    z : Tensor of shape (B, C, h, w), unscaled latent
    """
    return mean + torch.exp(0.5 * logvar) * eps


class LatentDistribution(NamedTuple):
    """Diagonal Gaussian posterior q(z | x); unpacks as ``mean, logvar``.

    Attributes
    ----------
    mean : Tensor of shape (B, C, h, w)
    logvar : Tensor of shape (B, C, h, w), natural log of the variance
    """

    mean: torch.Tensor
    logvar: torch.Tensor


class VAEOutput(NamedTuple):
    """What ``forward`` returns.

    Attributes
    ----------
    recon : Tensor of shape (B, 1, S, S), float32 in [0, 1]
        Decoded image of the sampled (training) or mean latent.
    mean : Tensor of shape (B, C, h, w)
        Posterior mean.
    logvar : Tensor of shape (B, C, h, w)
        Posterior log-variance.
    """

    recon: torch.Tensor
    mean: torch.Tensor
    logvar: torch.Tensor


def _check_norm(norm: str) -> None:
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}.")


def make_norm(norm: str, channels: int, *, num_groups: int = 8) -> nn.Module:
    """Normalisation layer by name: "group" (GroupNorm), "batch" (BatchNorm2d) or "none".

    Raises
    ------
    ValueError
        If ``norm`` is not one of ``NORMS``, or ``channels`` is not divisible by
        ``num_groups`` for group norm.
    """
    _check_norm(norm)
    if norm == "group":
        if channels % num_groups != 0:
            raise ValueError(
                f"group norm needs channels ({channels}) divisible by num_groups ({num_groups})."
            )
        return nn.GroupNorm(num_groups, channels)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    return nn.Identity()


class _VAEBase(nn.Module):
    """Shared input checks, reparameterisation and forward."""

    image_size: int
    latent_shape: tuple[int, int, int]
    scale_factor: float

    def _check_image(self, x: torch.Tensor) -> None:
        S = self.image_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, S, S):
            raise ValueError(f"x must have shape (B, 1, {S}, {S}), got {tuple(x.shape)}.")

    def _check_latent(self, z: torch.Tensor) -> None:
        if z.ndim != 4 or tuple(z.shape[1:]) != self.latent_shape:
            raise ValueError(
                f"z must have shape (B, {', '.join(map(str, self.latent_shape))}), got {tuple(z.shape)}."
            )

    @staticmethod
    def sample_latent(
        mean: torch.Tensor, logvar: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw z = mean + exp(logvar / 2) * eps with eps ~ N(0, I).

        Parameters
        ----------
        mean, logvar : Tensor of shape (B, C, h, w)
            Posterior parameters from ``encode``.
        generator : torch.Generator, optional
            Source of eps, for reproducible draws.

        Returns
        -------
        z : Tensor of shape (B, C, h, w), unscaled latent
        """
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return reparameterise(mean, logvar, eps)

    def forward(
        self,
        x: torch.Tensor,
        *,
        sample_posterior: bool = True,
        generator: torch.Generator | None = None,
    ) -> VAEOutput:
        """Encode, draw (or take the mean) latent, decode.

        Parameters
        ----------
        x : Tensor of shape (B, 1, S, S), float32 in [0, 1]
        sample_posterior : bool, default True
            True: decode a reparameterised sample (training); False: decode the mean.
        generator : torch.Generator, optional
            Source of the sampling noise.

        Returns
        -------
        VAEOutput
            ``(recon, mean, logvar)``, see :class:`VAEOutput`.
        """
        mean, logvar = self.encode(x)
        z = self.sample_latent(mean, logvar, generator=generator) if sample_posterior else mean
        return VAEOutput(self.decode(z), mean, logvar)


# original VAE

class OriginalVAE(_VAEBase):
    """The report's VAE: 28x28x1 image <-> 4x7x7 latent.

    Encoder: Conv(1->32, k4 s2 p1) ReLU, Conv(32->64, k4 s2 p1) ReLU,
    Conv(64->2*4, k3 s1 p1) split into mean and logvar. Decoder: Conv(4->64, k3 p1)
    ReLU, ConvT(64->32, k4 s2 p1) ReLU, ConvT(32->1, k4 s2 p1) Sigmoid.

    Parameters
    ----------
    image_size : int, default 28
        Side S of the square input, divisible by 4; the latent is S/4 x S/4.
    latent_channels : int, default 4
        Latent channels C.
    norm : {"none", "group", "batch"}, default "none"
        Normalisation after every hidden convolution; "none" is the original.
    scale_factor : float, default 0.18215
        Multiplier applied to latents before diffusion (by the caller).

    Raises
    ------
    ValueError
        If ``norm`` is unknown or ``image_size`` is not a positive multiple of 4.
    """

    def __init__(
        self,
        *,
        image_size: int = 28,
        latent_channels: int = 4,
        norm: str = "none",
        scale_factor: float = 0.18215,
    ) -> None:
        super().__init__()
        _check_norm(norm)
        if image_size < 4 or image_size % 4 != 0:
            raise ValueError(f"image_size must be a positive multiple of 4, got {image_size!r}.")
        self.image_size = image_size
        self.latent_shape = (latent_channels, image_size // 4, image_size // 4)
        self.scale_factor = float(scale_factor)
        C = latent_channels
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 4, stride=2, padding=1), make_norm(norm, 32), nn.ReLU(),   # S/2
            nn.Conv2d(32, 64, 4, stride=2, padding=1), make_norm(norm, 64), nn.ReLU(),  # S/4
            nn.Conv2d(64, 2 * C, 3, stride=1, padding=1),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(C, 64, 3, padding=1), make_norm(norm, 64), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), make_norm(norm, 32), nn.ReLU(),  # S/2
            nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1), nn.Sigmoid(),  # S
        )

    def encode(self, x: torch.Tensor) -> LatentDistribution:
        """Posterior parameters of an image batch.

        Parameters
        ----------
        x : Tensor of shape (B, 1, S, S), float32 in [0, 1]

        Returns
        -------
        LatentDistribution
            ``(mean, logvar)``, each of shape (B, C, S/4, S/4).
        """
        self._check_image(x)
        mean, logvar = self.encoder(x).chunk(2, dim=1)  # (B, C, h, w) each
        return LatentDistribution(mean, logvar)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decode unscaled latents.

        Parameters
        ----------
        z : Tensor of shape (B, C, h, w)

        Returns
        -------
        images : Tensor of shape (B, 1, S, S), float32 in [0, 1]
        """
        self._check_latent(z)
        return self.decoder(z)


# large VAE

class _ResBlock(nn.Module):
    """norm-SiLU-conv twice, plus the input."""

    def __init__(self, channels: int, *, norm: str) -> None:
        super().__init__()
        self.block = nn.Sequential(
            make_norm(norm, channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
            make_norm(norm, channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class LargeVAE(_VAEBase):
    """A wider residual VAE: 28x28 image on a 32x32 canvas <-> 8x8x8 latent.

    The image is zero-padded by ``(canvas - image_size) / 2`` pixels on each side
    (2 px for 28 -> 32), encoded with a residual block at each of three
    resolutions (32, 16, 8) and two stride-2 convolutions, and decoded the mirror
    way with transposed convolutions; the decoder's canvas is cropped back to
    ``image_size`` before the Sigmoid.

    Parameters
    ----------
    image_size : int, default 28
        Side S of the square input.
    latent_channels : int, default 8
        Latent channels C.
    base : int, default 32
        Channels at full resolution; 2*base at 1/2, 4*base at 1/4.
    norm : {"group", "batch", "none"}, default "group"
        Normalisation inside the blocks (GroupNorm with 8 groups, BatchNorm2d, none).
    canvas : int, default 32
        Side of the padded canvas; a multiple of 4, >= S, with canvas - S even.
    scale_factor : float, default 0.18215
        Multiplier applied to latents before diffusion (by the caller).

    Raises
    ------
    ValueError
        If ``norm`` is unknown, or ``canvas`` is not a multiple of 4 at least
        ``image_size`` with an even difference.
    """

    def __init__(
        self,
        *,
        image_size: int = 28,
        latent_channels: int = 8,
        base: int = 32,
        norm: str = "group",
        canvas: int = 32,
        scale_factor: float = 0.18215,
    ) -> None:
        super().__init__()
        _check_norm(norm)
        if canvas % 4 != 0 or canvas < image_size or (canvas - image_size) % 2 != 0:
            raise ValueError(
                f"canvas must be a multiple of 4, >= image_size ({image_size}), with an even "
                f"difference, got {canvas!r}; use canvas=32 for 28x28 images."
            )
        self.image_size = image_size
        self.canvas = canvas
        self.pad = (canvas - image_size) // 2  # pixels of zero padding on each side
        self.latent_shape = (latent_channels, canvas // 4, canvas // 4)
        self.scale_factor = float(scale_factor)
        c1, c2, c3 = base, 2 * base, 4 * base
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), _ResBlock(c1, norm=norm),              # canvas
            nn.Conv2d(c1, c2, 4, stride=2, padding=1), _ResBlock(c2, norm=norm),   # canvas/2
            nn.Conv2d(c2, c3, 4, stride=2, padding=1), _ResBlock(c3, norm=norm),   # canvas/4
            make_norm(norm, c3), nn.SiLU(), nn.Conv2d(c3, 2 * latent_channels, 3, padding=1),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(latent_channels, c3, 3, padding=1), _ResBlock(c3, norm=norm),          # canvas/4
            nn.ConvTranspose2d(c3, c2, 4, stride=2, padding=1), _ResBlock(c2, norm=norm),    # canvas/2
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), _ResBlock(c1, norm=norm),    # canvas
            make_norm(norm, c1), nn.SiLU(), nn.Conv2d(c1, 1, 3, padding=1),
        )

    def encode(self, x: torch.Tensor) -> LatentDistribution:
        """Posterior parameters of an image batch.

        Parameters
        ----------
        x : Tensor of shape (B, 1, S, S), float32 in [0, 1]

        Returns
        -------
        LatentDistribution
            ``(mean, logvar)``, each of shape (B, C, canvas/4, canvas/4). logvar
            is clamped to [-30, 20] so exp() cannot overflow.
        """
        self._check_image(x)
        p = self.pad
        x = F.pad(x, (p, p, p, p))  # (B, 1, canvas, canvas)
        mean, logvar = self.encoder(x).chunk(2, dim=1)  # (B, C, h, w) each
        return LatentDistribution(mean, logvar.clamp(-30.0, 20.0))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decode unscaled latents and crop the canvas to the image.

        Parameters
        ----------
        z : Tensor of shape (B, C, h, w)

        Returns
        -------
        images : Tensor of shape (B, 1, S, S), float32 in [0, 1]
        """
        self._check_latent(z)
        p, S = self.pad, self.image_size
        logits = self.decoder(z)  # (B, 1, canvas, canvas)
        return torch.sigmoid(logits[:, :, p:p + S, p:p + S])  # (B, 1, S, S)
