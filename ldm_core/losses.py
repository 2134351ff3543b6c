"""Training losses on images and noise: noise MSE, KL, SSIM, perceptual, and their weighted sum ``ImageLoss``.

What is here
------------
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
- ``ImageLoss``: the weighted sum applied to decoded ``x0`` estimates; the
  report's mix is ``MSE + 0.1 * perceptual + 0.01 * SSIM`` (``REPORT_WEIGHTS``), with an optional
  adversarial term (:mod:`ldm_core.adversarial`).

The loss of each training stage (built from these): :mod:`ldm_core.stage_losses`.

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

from ldm_core.adversarial import _check_kind, g_loss
from ldm_core.config import ADV_KINDS
from ldm_core.feature_net import freeze
from ldm_core.models.vae import kl_divergence  # re-exported

__all__ = [
    "ADV_KINDS",
    "REPORT_WEIGHTS",
    "kl_divergence",
    "noise_mse",
    "gaussian_window",
    "ssim",
    "SSIMLoss",
    "PerceptualLoss",
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
    convolution gives exactly the same numbers. Local variances use population
    normalisation (``use_sample_covariance=False``). Channels are averaged.
    """
    _check_images(pred, target, where="ssim")
    B, C, H, W = pred.shape
    if H < window_size or W < window_size:
        raise ValueError(f"ssim: images of size {H}x{W} are smaller than window_size={window_size}; "
                         f"use images at least {window_size}x{window_size} or a smaller odd window_size.")
    w1d = gaussian_window(window_size, sigma=sigma).to(device=pred.device, dtype=pred.dtype)
    w2d = torch.outer(w1d, w1d).expand(C, 1, window_size, window_size)  # (C, 1, k, k), depthwise

    def filt(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, w2d, groups=C)  # (B, C, H - k + 1, W - k + 1), valid region only

    mu_x = filt(pred)
    mu_y = filt(target)
    var_x = filt(pred * pred) - mu_x * mu_x
    var_y = filt(target * target) - mu_y * mu_y
    cov_xy = filt(pred * target) - mu_x * mu_y

    C1, C2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
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
