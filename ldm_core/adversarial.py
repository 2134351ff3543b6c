"""Adversarial loss on decoded images: ``PatchDiscriminator``, a pix2pix-style patch discriminator (Isola et al. 2017,
"Image-to-image translation with conditional adversarial networks", ``NLayerDiscriminator``), with hinge (Lim & Ye
2017; Miyato et al. 2018) or non-saturating (Goodfellow et al. 2014) losses ``d_loss`` and ``g_loss``. Used by
``ImageLoss`` (:mod:`ldm_core.losses`) and the discriminator's step of :func:`ldm_core.train.fit`.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ldm_core.config import ADV_KINDS

__all__ = ["d_loss", "g_loss", "PatchDiscriminator"]


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
