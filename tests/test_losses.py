"""Tests for ldm_core.losses: known answers, agreement with scikit-image, gradients, errors."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from skimage.metrics import structural_similarity

from ldm_core.losses import (
    ADV_KINDS,
    REPORT_WEIGHTS,
    ImageLoss,
    PatchDiscriminator,
    PerceptualLoss,
    SSIMLoss,
    d_loss,
    g_loss,
    gaussian_window,
    noise_mse,
    ssim,
)

torch.set_num_threads(1)


# helpers

class TinyFeatureNet(nn.Module):
    """Two conv layers returning a list of feature maps, a fast stand-in for the real nets."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.c0 = nn.Conv2d(1, 4, 3, padding=1)
        self.c1 = nn.Conv2d(4, 8, 3, padding=1, stride=2)

    def forward(self, x):
        f0 = F.relu(self.c0(x))
        return [f0, F.relu(self.c1(f0))]


def digit_like(seed: int, n: int = 2, size: int = 28) -> torch.Tensor:
    """Blurred ring/stroke images in [0, 1], shape (n, 1, size, size), float32."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    out = []
    for _ in range(n):
        cy, cx = (size / 2 + 3 * torch.randn(2, generator=g)).tolist()
        r = 6 + 2 * float(torch.rand(1, generator=g))
        d = ((yy - cy) ** 2 + (xx - cx) ** 2).sqrt()
        ring = torch.exp(-((d - r) ** 2) / 3.0)
        stem = torch.exp(-((xx - cx - r) ** 2) / 3.0) * (yy > cy).float()
        out.append((ring + stem).clamp(0, 1))
    return torch.stack(out)[:, None].float()


def skimage_ssim(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """scikit-image SSIM per image, with the settings of ldm_core.metrics."""
    return np.array([
        structural_similarity(
            x[0].double().numpy(), y[0].double().numpy(),
            data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        )
        for x, y in zip(a, b)
    ])


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(1)
    target = torch.rand(3, 1, 28, 28, generator=g)
    pred = (target + 0.2 * torch.randn(3, 1, 28, 28, generator=g)).clamp(0, 1)
    return pred, target


# noise MSE

def test_noise_mse_known_value():
    pred = torch.zeros(2, 4, 7, 7)
    target = torch.full((2, 4, 7, 7), 0.5)
    assert noise_mse(pred, target).item() == pytest.approx(0.25)
    assert noise_mse(target, target).item() == 0.0


def test_noise_mse_shape_mismatch_raises():
    with pytest.raises(ValueError, match="same shape"):
        noise_mse(torch.zeros(2, 4, 7, 7), torch.zeros(1, 4, 7, 7))


# SSIM

def test_gaussian_window_matches_scipy():
    from scipy.ndimage import gaussian_filter1d

    impulse = np.zeros(11)
    impulse[5] = 1.0
    expected = gaussian_filter1d(impulse, sigma=1.5, truncate=3.5, mode="constant")
    np.testing.assert_allclose(gaussian_window(11, sigma=1.5).numpy(), expected, atol=1e-12)


def test_ssim_loss_identical_is_zero(pair):
    _, target = pair
    assert abs(SSIMLoss()(target, target).item()) < 1e-6


def test_ssim_loss_positive_for_different(pair):
    pred, target = pair
    assert SSIMLoss()(pred, target).item() > 0.05


@pytest.mark.parametrize("kind", ["random", "digit"])
def test_ssim_matches_skimage(kind, pair):
    if kind == "random":
        pred, target = pair
    else:
        target = digit_like(0, n=3)
        pred = (digit_like(1, n=3) * 0.8 + 0.1 * target).clamp(0, 1)
    ours = ssim(pred, target).double().numpy()
    np.testing.assert_allclose(ours, skimage_ssim(pred, target), atol=1e-4)


def test_ssim_float64_exact(pair):
    # a valid convolution reproduces scikit-image's reflect-filter-then-crop exactly
    pred, target = pair
    ours = ssim(pred.double(), target.double()).numpy()
    np.testing.assert_allclose(ours, skimage_ssim(pred, target), atol=1e-12)


def test_ssim_loss_gradient_flows(pair):
    pred, target = pair
    pred = pred.clone().requires_grad_(True)
    SSIMLoss()(pred, target).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def test_ssim_errors():
    with pytest.raises(ValueError, match="window_size=10"):
        SSIMLoss(window_size=10)
    with pytest.raises(ValueError, match="sigma"):
        SSIMLoss(sigma=0)
    with pytest.raises(ValueError, match="data_range"):
        SSIMLoss(data_range=-1)
    with pytest.raises(ValueError, match="smaller than window_size"):
        ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="same shape"):
        ssim(torch.zeros(1, 1, 28, 28), torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        ssim(torch.zeros(1, 28, 28), torch.zeros(1, 28, 28))


# perceptual loss

def test_perceptual_zero_identical_positive_otherwise(pair):
    pred, target = pair
    loss = PerceptualLoss(TinyFeatureNet())
    assert loss(target, target).item() == 0.0
    assert loss(pred, target).item() > 0.0


def test_perceptual_grad_to_pred_not_to_net(pair):
    pred, target = pair
    net = TinyFeatureNet()
    loss_fn = PerceptualLoss(net, layers=[1])
    loss_fn.train()  # must not unfreeze the feature net
    assert not net.training
    assert all(not p.requires_grad for p in net.parameters())
    pred = pred.clone().requires_grad_(True)
    loss_fn(pred, target).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())


def test_perceptual_layer_errors(pair):
    pred, target = pair
    with pytest.raises(ValueError, match="selects no feature maps"):
        PerceptualLoss(TinyFeatureNet(), layers=[])
    with pytest.raises(ValueError, match="returns 2 maps"):
        PerceptualLoss(TinyFeatureNet(), layers=[5])(pred, target)


# adversarial

def test_hinge_known_values():
    real = torch.tensor([1.0, 2.0, 5.0])
    fake = torch.tensor([-1.0, -3.0, -1.5])
    assert d_loss(real, fake, kind="hinge").item() == 0.0  # perfect separation
    # real 0.5 -> relu(1 - 0.5) = 0.5; fake 0 -> relu(1 + 0) = 1
    assert d_loss(torch.tensor([0.5]), torch.tensor([0.0]), kind="hinge").item() == pytest.approx(1.5)
    assert g_loss(torch.tensor([2.0, -1.0]), kind="hinge").item() == pytest.approx(-0.5)


def test_nonsaturating_known_values():
    zeros = torch.zeros(4)
    # -log sigmoid(0) = log 2 for real, -log(1 - sigmoid(0)) = log 2 for fake
    assert d_loss(zeros, zeros, kind="nonsaturating").item() == pytest.approx(2 * math.log(2))
    assert g_loss(zeros, kind="nonsaturating").item() == pytest.approx(math.log(2))


@pytest.mark.parametrize("fn", [lambda k: d_loss(torch.zeros(1), torch.zeros(1), kind=k),
                                lambda k: g_loss(torch.zeros(1), kind=k)])
def test_adversarial_unknown_kind(fn):
    with pytest.raises(ValueError, match="allowed kinds"):
        fn("wasserstein")
    assert ADV_KINDS == ("hinge", "nonsaturating")


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_patch_discriminator_shape(spectral_norm):
    torch.manual_seed(0)
    D = PatchDiscriminator(spectral_norm=spectral_norm)
    logits = D(torch.rand(2, 1, 28, 28))
    assert logits.shape == (2, 1, 5, 5)


def test_patch_discriminator_errors():
    with pytest.raises(ValueError, match="n_layers=0"):
        PatchDiscriminator(n_layers=0)
    with pytest.raises(ValueError, match="too small"):
        PatchDiscriminator(n_layers=4)(torch.rand(1, 1, 28, 28))


# combined image loss

def test_image_loss_report_mix(pair):
    pred, target = pair
    loss_fn = ImageLoss(**REPORT_WEIGHTS, perceptual=PerceptualLoss(TinyFeatureNet()))
    same = loss_fn(target, target)
    assert abs(same.total.item()) < 1e-6
    out = loss_fn(pred, target)
    assert out.total.item() > 0
    assert set(out.terms) == {"mse", "perceptual", "ssim_loss", "total"}
    expected = out.terms["mse"] + 0.1 * out.terms["perceptual"] + 0.01 * out.terms["ssim_loss"]
    assert out.terms["total"] == pytest.approx(expected, rel=1e-5)


def test_image_loss_adversarial_term(pair):
    pred, target = pair
    torch.manual_seed(0)
    loss_fn = ImageLoss(w_mse=1.0, w_adv=0.5, discriminator=PatchDiscriminator(), adv_kind="nonsaturating")
    pred = pred.clone().requires_grad_(True)
    out = loss_fn(pred, target)
    out.total.backward()
    assert "adv" in out.terms and pred.grad.abs().sum() > 0


def test_image_loss_errors():
    with pytest.raises(ValueError, match="w_ssim=-0.1"):
        ImageLoss(w_ssim=-0.1)
    with pytest.raises(ValueError, match="w_perceptual=0.1 needs a perceptual module"):
        ImageLoss(w_perceptual=0.1)
    with pytest.raises(ValueError, match="w_adv=1.0 needs a discriminator"):
        ImageLoss(w_adv=1.0)
    with pytest.raises(ValueError, match="all loss weights are 0"):
        ImageLoss(w_mse=0.0)
    with pytest.raises(ValueError, match="allowed kinds"):
        ImageLoss(adv_kind="ls")
