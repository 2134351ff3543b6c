"""Training losses for the Brain LDM: the three stage losses, noise MSE, KL, SSIM, perceptual, adversarial.

What is here
------------
- ``vae_stage_loss``, ``align_stage_loss``, ``diffusion_stage_loss``: the loss of each
  training stage of :func:`ldm_core.train.fit` as a plain function of a model and a
  batch (the trainer draws the randomness and passes it in), returning
  ``StageLoss(total, terms)``: VAE reconstruction + KL (Kingma & Welling 2014);
  MSE of a linear head on the fMRI tokens to the scaled VAE posterior means
  (alignment); the noise (or x0) MSE on latents, with the optional multiscale
  (coarse) term and image-space losses on decoded x0 estimates (diffusion).
- ``kl_divergence``: KL(q(z | x) || N(0, I)) of a diagonal Gaussian (defined in :mod:`ldm_core.models.vae`).
- ``noise_mse``: the diffusion objective, MSE between predicted and true noise
  ``eps`` (Ho et al. 2020, "Denoising Diffusion Probabilistic Models", eq. 14).
- ``ssim`` / ``SSIMLoss``: differentiable structural similarity (Wang et al.
  2004, "Image quality assessment: from error visibility to structural
  similarity"), written to reproduce ``skimage.metrics.structural_similarity(
  data_range=1, gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False)``, the metric used in ``ldm_core.metrics``.
- ``PerceptualLoss``: L2 distance between feature maps of a frozen network
  (Johnson et al. 2016, "Perceptual losses for real-time style transfer and
  super-resolution"); the networks live in ``ldm_core.feature_net``.
- ``PatchDiscriminator``, ``d_loss``, ``g_loss``: a pix2pix-style patch
  discriminator (Isola et al. 2017, "Image-to-image translation with
  conditional adversarial networks", ``NLayerDiscriminator``) with hinge
  (Lim & Ye 2017; Miyato et al. 2018) or non-saturating (Goodfellow et al.
  2014) losses.
- ``ImageLoss``: the weighted sum applied to decoded ``x0`` estimates; the
  report's mix is ``MSE + 0.1 * perceptual + 0.01 * SSIM`` (``REPORT_WEIGHTS``).

Why we wrote SSIM ourselves
---------------------------
pytorch-msssim and torchmetrics both offer an SSIM, but neither is a
dependency of this project, and neither promises agreement with scikit-image's
``structural_similarity``, the number reported by ``ldm_core.metrics``. We
need a loss with gradients whose value *is* that metric, so the window,
constants, covariance normalisation and border crop below copy
scikit-image's choices, and ``tests/test_losses.py`` checks agreement to 1e-4.

Notation (variable name -> name in Wang et al. 2004): ``mu_x`` -> mu_x,
``var_x`` -> sigma_x^2, ``cov_xy`` -> sigma_xy, ``C1 = (K1 * L)^2``,
``C2 = (K2 * L)^2`` with ``L = data_range``.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ldm_core.config import ADV_KINDS
from ldm_core.device import autocast
from ldm_core.feature_net import freeze
from ldm_core.models.unet import coarse_target
from ldm_core.models.vae import kl_divergence, reparameterise  # kl_divergence: re-exported

__all__ = [
    "ADV_KINDS",
    "REPORT_WEIGHTS",
    "StageLoss",
    "kl_divergence",
    "vae_stage_loss",
    "align_targets",
    "align_stage_loss",
    "diffusion_stage_loss",
    "noise_mse",
    "gaussian_window",
    "ssim",
    "SSIMLoss",
    "PerceptualLoss",
    "PatchDiscriminator",
    "d_loss",
    "g_loss",
    "ImageLossOutput",
    "ImageLoss",
]

# the report's mix on decoded x0 estimates: MSE + 0.1 * perceptual + 0.01 * SSIM loss
REPORT_WEIGHTS = {"w_mse": 1.0, "w_perceptual": 0.1, "w_ssim": 0.01, "w_adv": 0.0}


# helpers

def _check_images(pred: torch.Tensor, target: torch.Tensor, *, where: str) -> None:
    """Raise ValueError unless ``pred`` and ``target`` are same-shape (B, C, H, W) tensors."""
    if pred.shape != target.shape:
        raise ValueError(
            f"{where}: pred has shape {tuple(pred.shape)} but target has shape "
            f"{tuple(target.shape)}; pass two tensors of the same shape (B, C, H, W)."
        )
    if pred.ndim != 4:
        raise ValueError(
            f"{where}: expected images of shape (B, C, H, W), got {pred.ndim} dims "
            f"(shape {tuple(pred.shape)}); add the missing axes, e.g. x[:, None] for (B, H, W)."
        )


def _check_weight(name: str, value: float) -> float:
    """Return ``value`` as float; raise ValueError if negative or not finite."""
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(
            f"{name}={value!r} is not allowed; loss weights must be finite and >= 0 "
            f"(use 0 to switch the term off)."
        )
    return value


# diffusion loss

def noise_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between predicted and true noise (the diffusion loss).

    Parameters
    ----------
    pred : Tensor of shape (B, C, h, w)
        Predicted noise ``eps_theta(x_t, t, cond)``.
    target : Tensor of shape (B, C, h, w)
        The noise ``eps`` that was added by ``q_sample``.

    Returns
    -------
    loss : Tensor, scalar
        ``mean((pred - target) ** 2)`` over all elements.

    Raises
    ------
    ValueError
        If the shapes differ (no silent broadcasting).
    """
    if pred.shape != target.shape:
        raise ValueError(
            f"noise_mse: pred has shape {tuple(pred.shape)} but target has shape "
            f"{tuple(target.shape)}; both must be the same shape, no broadcasting."
        )
    return F.mse_loss(pred, target)


# SSIM

def gaussian_window(window_size: int = 11, *, sigma: float = 1.5) -> torch.Tensor:
    """Normalised 1-D Gaussian taps, as ``scipy.ndimage.gaussian_filter1d`` builds them.

    Parameters
    ----------
    window_size : int, odd, >= 1
        Number of taps; radius ``(window_size - 1) // 2``. scikit-image's SSIM
        uses radius ``int(3.5 * sigma + 0.5)``, i.e. 11 taps for sigma 1.5.
    sigma : float, > 0
        Standard deviation in pixels.

    Returns
    -------
    window : Tensor of shape (window_size,), float64, sums to 1
    """
    radius = (window_size - 1) // 2
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    w = torch.exp(-0.5 * (x / sigma) ** 2)
    return w / w.sum()


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    window_size: int = 11,
    sigma: float = 1.5,
    data_range: float = 1.0,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Per-image SSIM, differentiable, matching scikit-image's ``structural_similarity``.

    Parameters
    ----------
    pred, target : Tensor of shape (B, C, H, W), float, in [0, data_range]
        Images to compare; H and W must be >= ``window_size``.
    window_size : int, odd
        Side of the Gaussian window in pixels (11 = scikit-image's default for sigma 1.5).
    sigma : float, > 0
        Standard deviation of the Gaussian window in pixels.
    data_range : float, > 0
        Dynamic range L of the images (1.0 for [0, 1]).
    k1, k2 : float
        SSIM stabilising constants K1, K2 of Wang et al. 2004.

    Returns
    -------
    ssim : Tensor of shape (B,)
        Mean SSIM per image, in [-1, 1]; 1 for identical images.

    Notes
    -----
    scikit-image filters with ``mode='reflect'`` and then averages the SSIM map
    over the image cropped by ``(window_size - 1) // 2`` on every side. Every
    cropped pixel's window lies inside the image, so a valid (unpadded)
    convolution gives exactly the same numbers, and no padding choice matters.
    Local variances use population normalisation
    (``use_sample_covariance=False``). Channels are averaged, like
    scikit-image's ``channel_axis``.
    """
    _check_images(pred, target, where="ssim")
    B, C, H, W = pred.shape
    if H < window_size or W < window_size:
        raise ValueError(
            f"ssim: images of size {H}x{W} are smaller than window_size={window_size}; "
            f"use images at least {window_size}x{window_size} or a smaller odd window_size."
        )

    w1d = gaussian_window(window_size, sigma=sigma).to(device=pred.device, dtype=pred.dtype)
    w2d = torch.outer(w1d, w1d).expand(C, 1, window_size, window_size)  # (C, 1, k, k), depthwise

    def filt(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, w2d, groups=C)  # (B, C, H - k + 1, W - k + 1), valid region only

    mu_x = filt(pred)
    mu_y = filt(target)
    var_x = filt(pred * pred) - mu_x * mu_x
    var_y = filt(target * target) - mu_y * mu_y
    cov_xy = filt(pred * target) - mu_x * mu_y

    C1 = (k1 * data_range) ** 2
    C2 = (k2 * data_range) ** 2
    num = (2 * mu_x * mu_y + C1) * (2 * cov_xy + C2)
    den = (mu_x * mu_x + mu_y * mu_y + C1) * (var_x + var_y + C2)
    ssim_map = num / den  # (B, C, H - k + 1, W - k + 1)
    return ssim_map.mean(dim=(1, 2, 3))


class SSIMLoss(nn.Module):
    """``1 - mean SSIM`` over the batch, with scikit-image's SSIM settings.

    Parameters
    ----------
    window_size : int, odd, >= 3
        Gaussian window side in pixels (11 matches scikit-image for sigma 1.5).
    sigma : float, > 0
        Gaussian standard deviation in pixels.
    data_range : float, > 0
        Dynamic range of the images (1.0 for [0, 1]).

    Raises
    ------
    ValueError
        On an even or too small window, or non-positive sigma / data_range.

    Notes
    -----
    ``forward(pred, target)`` takes two Tensors of shape (B, C, H, W) in
    [0, data_range] and returns a scalar in [0, 2]: 0 for identical images.
    """

    def __init__(self, *, window_size: int = 11, sigma: float = 1.5, data_range: float = 1.0):
        super().__init__()
        if int(window_size) != window_size or window_size < 3 or window_size % 2 == 0:
            raise ValueError(
                f"window_size={window_size!r} is not allowed; use an odd integer >= 3 "
                f"(11 matches scikit-image's structural_similarity for sigma=1.5)."
            )
        if not sigma > 0:
            raise ValueError(f"sigma={sigma!r} is not allowed; use a positive value in pixels, e.g. 1.5.")
        if not data_range > 0:
            raise ValueError(
                f"data_range={data_range!r} is not allowed; use the images' dynamic range, "
                f"1.0 for images in [0, 1]."
            )
        self.window_size = int(window_size)
        self.sigma = float(sigma)
        self.data_range = float(data_range)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        s = ssim(pred, target, window_size=self.window_size, sigma=self.sigma, data_range=self.data_range)
        return 1.0 - s.mean()

    def extra_repr(self) -> str:
        return f"window_size={self.window_size}, sigma={self.sigma}, data_range={self.data_range}"


# perceptual loss

class PerceptualLoss(nn.Module):
    """Mean squared distance between feature maps of a frozen network.

    Parameters
    ----------
    feature_net : nn.Module
        Maps images (B, 1, S, S) float32 in [0, 1] to a list of feature maps
        (``ldm_core.feature_net.DigitFeatureNet`` or ``VGG16Features``; build
        one with ``ldm_core.feature_net.get_feature_net``). It is frozen here:
        its parameters get ``requires_grad=False`` and it stays in eval mode
        even when this module is put in train mode.
    layers : sequence of int, optional
        Indices into the feature list to compare; None uses all of them.

    Raises
    ------
    ValueError
        If ``layers`` is empty.

    Notes
    -----
    ``forward(pred, target)`` returns a scalar: the average over the chosen
    layers of ``mean((f_l(pred) - f_l(target)) ** 2)``. Target features are
    computed without gradient (the target is data); gradients reach ``pred``
    only. Zero for identical inputs.
    """

    def __init__(self, feature_net: nn.Module, *, layers: Sequence[int] | None = None):
        super().__init__()
        if layers is not None:
            layers = [int(i) for i in layers]
            if len(layers) == 0:
                raise ValueError(
                    "layers=[] selects no feature maps; pass None to use all layers "
                    "or a non-empty list of indices, e.g. [0, 1, 2]."
                )
        self.layers = layers
        self.feature_net = freeze(feature_net)

    def train(self, mode: bool = True) -> "PerceptualLoss":
        super().train(mode)
        self.feature_net.eval()  # the feature net stays frozen in eval mode
        return self

    def _select(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if self.layers is None:
            return list(feats)
        n = len(feats)
        bad = [i for i in self.layers if not -n <= i < n]
        if bad:
            raise ValueError(
                f"layers={self.layers} contains {bad}, but the feature net returns {n} maps; "
                f"use indices in [0, {n - 1}] or None for all."
            )
        return [feats[i] for i in self.layers]

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_images(pred, target, where="PerceptualLoss")
        f_pred = self._select(self.feature_net(pred))
        with torch.no_grad():
            f_target = self._select(self.feature_net(target))
        terms = [F.mse_loss(a, b) for a, b in zip(f_pred, f_target)]
        return torch.stack(terms).mean()


# adversarial loss

def _check_kind(kind: str) -> None:
    if kind not in ADV_KINDS:
        raise ValueError(f"unknown adversarial loss kind {kind!r}; allowed kinds: {ADV_KINDS}.")


def d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, *, kind: str = "hinge") -> torch.Tensor:
    """Discriminator loss.

    Parameters
    ----------
    real_logits : Tensor of any shape, e.g. (B, 1, h, w) patch logits on real images
    fake_logits : Tensor of any shape, patch logits on generated images (detach them
        from the generator before calling)
    kind : {"hinge", "nonsaturating"}
        ``"hinge"``: ``mean(relu(1 - real)) + mean(relu(1 + fake))``, 0 once
        real logits >= 1 and fake logits <= -1. ``"nonsaturating"``: binary
        cross-entropy, ``mean(softplus(-real)) + mean(softplus(fake))``,
        ``2 log 2`` at logits 0.

    Returns
    -------
    loss : Tensor, scalar

    Raises
    ------
    ValueError
        On an unknown ``kind``.
    """
    _check_kind(kind)
    if kind == "hinge":
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def g_loss(fake_logits: torch.Tensor, *, kind: str = "hinge") -> torch.Tensor:
    """Generator (adversarial) loss on the discriminator's logits for generated images.

    Parameters
    ----------
    fake_logits : Tensor of any shape, e.g. (B, 1, h, w)
    kind : {"hinge", "nonsaturating"}
        ``"hinge"``: ``-mean(fake)``. ``"nonsaturating"``: ``mean(softplus(-fake))``
        (= -log sigmoid(fake)), ``log 2`` at logits 0.

    Returns
    -------
    loss : Tensor, scalar

    Raises
    ------
    ValueError
        On an unknown ``kind``.
    """
    _check_kind(kind)
    if kind == "hinge":
        return -fake_logits.mean()
    return F.softplus(-fake_logits).mean()


class PatchDiscriminator(nn.Module):
    """pix2pix-style patch discriminator, sized for 28x28 digits.

    Layout (Isola et al. 2017, ``NLayerDiscriminator``): a 4x4 stride-2 conv,
    ``n_layers - 1`` further 4x4 stride-2 convs doubling the width, one 4x4
    stride-1 conv, then a 4x4 stride-1 conv to one logit per patch; LeakyReLU
    0.2 between them. With ``spectral_norm=False`` the inner convs are followed
    by BatchNorm as in pix2pix; with ``spectral_norm=True`` every conv is
    spectrally normalised (Miyato et al. 2018) and no BatchNorm is used.

    Parameters
    ----------
    in_channels : int
        Image channels (1 for grayscale digits).
    base : int
        Width of the first conv; layer i has ``base * 2**min(i, 3)`` channels.
    n_layers : int, >= 1
        Number of stride-2 convs. Input side S must satisfy
        ``S // 2**n_layers >= 3``: n_layers=2 gives 5x5 patch logits on 28x28.
    spectral_norm : bool
        Spectral normalisation instead of BatchNorm.

    Raises
    ------
    ValueError
        On non-positive sizes.

    Notes
    -----
    ``forward(x)`` takes images (B, in_channels, S, S) float32 in [0, 1]
    (mapped to [-1, 1] inside) and returns patch logits (B, 1, h, w).
    """

    def __init__(self, *, in_channels: int = 1, base: int = 32, n_layers: int = 2, spectral_norm: bool = False):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("base", base), ("n_layers", n_layers)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name}={value!r} is not allowed; use a positive integer.")
        self.n_layers = int(n_layers)

        def conv(c_in: int, c_out: int, stride: int) -> nn.Module:
            layer = nn.Conv2d(c_in, c_out, kernel_size=4, stride=stride, padding=1)
            return nn.utils.parametrizations.spectral_norm(layer) if spectral_norm else layer

        def norm(c: int) -> nn.Module:
            return nn.Identity() if spectral_norm else nn.BatchNorm2d(c)

        blocks: list[nn.Module] = [conv(in_channels, base, 2), nn.LeakyReLU(0.2)]
        c = base
        for i in range(1, self.n_layers):
            c_next = base * 2 ** min(i, 3)
            blocks += [conv(c, c_next, 2), norm(c_next), nn.LeakyReLU(0.2)]
            c = c_next
        c_next = base * 2 ** min(self.n_layers, 3)
        blocks += [conv(c, c_next, 1), norm(c_next), nn.LeakyReLU(0.2)]
        blocks += [conv(c_next, 1, 1)]
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        if min(H, W) // 2**self.n_layers < 3:
            raise ValueError(
                f"PatchDiscriminator: images of size {H}x{W} are too small for n_layers={self.n_layers}; "
                f"need min side // 2**n_layers >= 3, so lower n_layers."
            )
        return self.net(x * 2.0 - 1.0)  # [0, 1] -> [-1, 1]; (B, 1, h, w)


# combined image loss

class ImageLossOutput(NamedTuple):
    """Result of ``ImageLoss``.

    total : Tensor, scalar
        Weighted sum to backpropagate.
    terms : dict of str -> float
        Unweighted value of each active term (``"mse"``, ``"perceptual"``,
        ``"ssim_loss"`` = 1 - SSIM, ``"adv"``) plus ``"total"``, for logging.
    """

    total: torch.Tensor
    terms: dict[str, float]


class ImageLoss(nn.Module):
    """Weighted sum of image losses applied to decoded ``x0`` estimates.

    ``total = w_mse * MSE + w_perceptual * perceptual + w_ssim * (1 - SSIM)
    + w_adv * g_loss(D(pred))``. The report's mix is ``REPORT_WEIGHTS``
    (``ImageLoss(**REPORT_WEIGHTS, perceptual=...)``).

    Parameters
    ----------
    w_mse, w_perceptual, w_ssim, w_adv : float, >= 0
        Term weights; 0 switches a term off (it is then not computed).
    perceptual : PerceptualLoss, optional
        Required when ``w_perceptual > 0``.
    discriminator : nn.Module, optional
        Patch discriminator, required when ``w_adv > 0``. Its parameters receive
        gradients from the adversarial term; zero them before the discriminator's
        own step.
    adv_kind : {"hinge", "nonsaturating"}
        Generator loss form, see ``g_loss``.
    ssim_window : int
        SSIM window side in pixels.

    Raises
    ------
    ValueError
        On a negative or non-finite weight, all weights zero, a positive weight
        without its module, or an unknown ``adv_kind``.

    Notes
    -----
    ``forward(pred, target)`` takes images (B, 1, S, S) float32 in [0, 1] and
    returns ``ImageLossOutput(total, terms)``. Without the adversarial term the
    total is 0 for identical inputs and positive otherwise.
    """

    def __init__(
        self,
        *,
        w_mse: float = 1.0,
        w_perceptual: float = 0.0,
        w_ssim: float = 0.0,
        w_adv: float = 0.0,
        perceptual: PerceptualLoss | None = None,
        discriminator: nn.Module | None = None,
        adv_kind: str = "hinge",
        ssim_window: int = 11,
    ):
        super().__init__()
        self.w_mse = _check_weight("w_mse", w_mse)
        self.w_perceptual = _check_weight("w_perceptual", w_perceptual)
        self.w_ssim = _check_weight("w_ssim", w_ssim)
        self.w_adv = _check_weight("w_adv", w_adv)
        if self.w_mse == self.w_perceptual == self.w_ssim == self.w_adv == 0:
            raise ValueError(
                "all loss weights are 0 (w_mse, w_perceptual, w_ssim, w_adv); "
                "set at least one to a positive value, e.g. w_mse=1.0."
            )
        if self.w_perceptual > 0 and perceptual is None:
            raise ValueError(
                f"w_perceptual={self.w_perceptual} needs a perceptual module; pass "
                f"perceptual=PerceptualLoss(get_feature_net('digits').net) or set w_perceptual=0."
            )
        if self.w_adv > 0 and discriminator is None:
            raise ValueError(
                f"w_adv={self.w_adv} needs a discriminator; pass "
                f"discriminator=PatchDiscriminator() or set w_adv=0."
            )
        _check_kind(adv_kind)
        self.adv_kind = adv_kind
        self.perceptual = perceptual
        self.discriminator = discriminator
        self.ssim = SSIMLoss(window_size=ssim_window)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> ImageLossOutput:
        _check_images(pred, target, where="ImageLoss")
        weighted: dict[str, tuple[float, torch.Tensor]] = {}
        if self.w_mse > 0:
            weighted["mse"] = (self.w_mse, F.mse_loss(pred, target))
        if self.w_perceptual > 0:
            weighted["perceptual"] = (self.w_perceptual, self.perceptual(pred, target))
        if self.w_ssim > 0:
            weighted["ssim_loss"] = (self.w_ssim, self.ssim(pred, target))
        if self.w_adv > 0:
            weighted["adv"] = (self.w_adv, g_loss(self.discriminator(pred), kind=self.adv_kind))

        total = sum(w * v for w, v in weighted.values())
        terms = {name: float(v.detach()) for name, (_, v) in weighted.items()}
        terms["total"] = float(total.detach())
        return ImageLossOutput(total=total, terms=terms)

    def extra_repr(self) -> str:
        return (
            f"w_mse={self.w_mse}, w_perceptual={self.w_perceptual}, w_ssim={self.w_ssim}, "
            f"w_adv={self.w_adv}, adv_kind={self.adv_kind!r}"
        )


# stage losses of ldm_core.train.fit

class StageLoss(NamedTuple):
    """Result of a stage loss.

    total : Tensor, scalar float32
        Weighted sum of the terms, the value back-propagated.
    terms : dict of str -> Tensor
        Unweighted scalar terms, for the training log (``train_<term>`` in the history).
    real, fake : Tensor of shape (b, 1, S, S), float32 in [0, 1], or None
        Diffusion stage with image-space losses only: the target images of the b rows that
        were scored, and their decoded x0 estimates (detached), for the discriminator's step.
    """

    total: torch.Tensor
    terms: dict[str, torch.Tensor]
    real: torch.Tensor | None = None
    fake: torch.Tensor | None = None


def vae_stage_loss(
    vae: nn.Module,
    *,
    images: torch.Tensor,
    kl_weight: float,
    sample: bool = True,
    generator: torch.Generator | None = None,
    amp: bool = False,
) -> StageLoss:
    """Stage-1 loss: per-pixel binary cross-entropy plus weighted KL, ``recon + kl_weight * kl``.

    Parameters
    ----------
    vae : OriginalVAE or LargeVAE
        ``encode(x) -> (mean, logvar)``, ``decode(z)`` in [0, 1], ``sample_latent``.
    images : Tensor of shape (B, 1, S, S), float32 in [0, 1]
    kl_weight : float, >= 0
        Weight of the KL term (per latent element) against the per-pixel reconstruction loss.
    sample : bool, default True
        True: decode a reparameterised draw z = mean + exp(logvar / 2) * eps (training);
        False: decode the posterior mean (validation).
    generator : torch.Generator, optional
        Source of eps, on the images' device (None: the global RNG).
    amp : bool
        bfloat16 autocast of the forward pass (CUDA only; the losses are taken in float32).

    Returns
    -------
    StageLoss
        ``terms``: ``"recon"`` (BCE per pixel) and ``"kl"`` (nats per latent element).
    """
    with autocast(images.device, enabled=amp):
        mean, logvar = vae.encode(images)  # (B, C, h, w) each
        z = vae.sample_latent(mean, logvar, generator=generator) if sample else mean
        out = vae.decode(z)  # (B, 1, S, S)
    out, mean, logvar = out.float(), mean.float(), logvar.float()  # losses in float32 (BCE refuses autocast)
    rec = F.binary_cross_entropy(out, images)
    terms = {"recon": rec, "kl": kl_divergence(mean, logvar)}
    return StageLoss(terms["recon"] + kl_weight * terms["kl"], terms)


@torch.no_grad()
def align_targets(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Targets of the alignment stage: scaled VAE posterior means, flattened.

    Parameters
    ----------
    model : BrainLDM
        Its ``vae`` (put it in eval mode first) and ``latent_scale``.
    images : Tensor of shape (B, 1, S, S), float32 in [0, 1]

    Returns
    -------
    Tensor of shape (B, C*h*w): ``latent_scale * mean`` per trial, no gradient.
    """
    return (model.latent_scale * model.vae.encode(images).mean).flatten(1)  # (B, C, h, w) -> (B, C*h*w)


def align_stage_loss(
    model: nn.Module, *, fmri: torch.Tensor, target: torch.Tensor, head: nn.Module, amp: bool = False
) -> StageLoss:
    """Stage-2 loss: MSE between a linear read-out of the fMRI tokens and the VAE latents.

    Parameters
    ----------
    model : BrainLDM
        Its ``encode_fmri`` gives the tokens (B, T, D).
    fmri : Tensor of shape (B, V), z-scored with training statistics (augmented by the caller)
    target : Tensor of shape (B, C*h*w)
        From :func:`align_targets`.
    head : nn.Module
        Maps the mean token (B, D) to (B, C*h*w), e.g. ``nn.Linear(D, C*h*w)``.
    amp : bool
        bfloat16 autocast of the forward pass (CUDA only).

    Returns
    -------
    StageLoss
        ``total`` = ``terms["align_mse"]``, mean over trials and latent elements.
    """
    with autocast(fmri.device, enabled=amp):
        pred = head(model.encode_fmri(fmri).mean(dim=1))  # (B, T, D) -> (B, D) -> (B, C*h*w)
    mse = F.mse_loss(pred.float(), target)
    return StageLoss(mse, {"align_mse": mse})


def diffusion_stage_loss(
    model: nn.Module,
    *,
    fmri: torch.Tensor,
    images: torch.Tensor,
    t: torch.Tensor,
    noise: torch.Tensor,
    z_eps: torch.Tensor,
    cond_drop: torch.Tensor | None = None,
    w_noise: float = 1.0,
    w_coarse: float = 0.0,
    image_loss: nn.Module | None = None,
    img_loss_t_frac: float = 0.5,
    train_encoder: bool = True,
    train_vae_encoder: bool = False,
    amp: bool = False,
) -> StageLoss:
    """Stage-3 loss: the denoiser's noise (or x0) MSE on VAE latents, plus the optional terms.

    ``x0 = latent_scale * (mean + exp(logvar / 2) * z_eps)`` from the VAE posterior of ``images``,
    ``x_t = q_sample(x0, t, noise)``; ``total = w_noise * MSE(pred, target) + w_coarse * coarse MSE +
    image_loss(decode(x0_hat), images)``, the image term over the rows with ``t < img_loss_t_frac * T``.

    Parameters
    ----------
    model : BrainLDM
        Its ``vae``, ``encode_fmri``, ``unet``, ``schedule``, ``latent_scale`` and ``decode_latents``.
    fmri : Tensor of shape (B, V), z-scored with training statistics (augmented by the caller)
    images : Tensor of shape (B, 1, S, S), float32 in [0, 1]
    t : LongTensor of shape (B,), in [0, n_train_steps)
    noise : Tensor of shape (B, C, h, w)
        eps of the forward process, N(0, I).
    z_eps : Tensor of shape (B, C, h, w)
        eps of the VAE posterior draw, N(0, I).
    cond_drop : BoolTensor of shape (B,), optional
        True: that trial's condition is replaced by the null token (classifier-free guidance training).
    w_noise, w_coarse : float, >= 0
        Weights of the noise MSE and of the multiscale head's half-resolution MSE (``w_coarse > 0``
        needs a U-Net with a coarse head).
    image_loss : ImageLoss, optional
        Image-space losses on decoded x0 estimates (None: none, as in validation).
    img_loss_t_frac : float in (0, 1]
        Image losses use rows with ``t < img_loss_t_frac * n_train_steps``.
    train_encoder, train_vae_encoder : bool
        Whether gradients are recorded through the fMRI encoder and through the VAE encoder (the
        ``"original"`` plan trains the VAE encoder on this loss; its decoder gets no gradient from
        the noise and coarse terms, which never decode).
    amp : bool
        bfloat16 autocast of the forward passes (CUDA only; the losses are taken in float32).

    Returns
    -------
    StageLoss
        ``terms``: ``"noise"``, ``"coarse"`` (with ``w_coarse > 0``), ``"img_<term>"`` per image term
        (when some row has small t); ``real`` / ``fake`` set when image losses were computed.
    """
    schedule, unet = model.schedule, model.unet
    with autocast(fmri.device, enabled=amp):
        with torch.set_grad_enabled(train_vae_encoder and torch.is_grad_enabled()):
            mean, logvar = model.vae.encode(images)  # (B, C, h, w) each
            x0 = model.latent_scale * reparameterise(mean, logvar, z_eps)  # (B, C, h, w)
        with torch.set_grad_enabled(train_encoder and torch.is_grad_enabled()):
            cond = model.encode_fmri(fmri)  # (B, T, D)
        x_t = schedule.q_sample(x0, t, noise)
        out = unet(x_t, t, cond, cond_drop_mask=cond_drop, return_coarse=w_coarse > 0)
    pred, coarse = (out.sample, out.coarse) if w_coarse > 0 else (out, None)
    target = schedule.training_target(x0, noise)
    terms = {"noise": noise_mse(pred.float(), target.float())}
    total = w_noise * terms["noise"]
    if coarse is not None:
        terms["coarse"] = F.mse_loss(coarse.float(), coarse_target(target).float())
        total = total + w_coarse * terms["coarse"]
    if image_loss is None:
        return StageLoss(total, terms)
    rows = t < img_loss_t_frac * schedule.n_train_steps
    if not bool(rows.any()):
        return StageLoss(total, terms)
    with autocast(fmri.device, enabled=amp):
        x0_hat = schedule.predict_x0(x_t[rows], t[rows], pred[rows])
        fake = model.decode_latents(x0_hat)  # (b, 1, S, S), through the decoder
    out_img = image_loss(fake.float(), images[rows])
    terms.update({f"img_{k}": torch.tensor(v) for k, v in out_img.terms.items() if k != "total"})
    return StageLoss(total + out_img.total, terms, real=images[rows], fake=fake.detach().float())
