"""Tests for ldm_core.losses, .adversarial and .stage_losses: known answers, agreement with scikit-image, gradients, errors, stage losses."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from skimage.metrics import structural_similarity

from ldm_core.adversarial import PatchDiscriminator, d_loss, g_loss
from ldm_core.losses import (ADV_KINDS, REPORT_WEIGHTS, ImageLoss, PerceptualLoss, SSIMLoss, gaussian_window, kl_divergence,
                             noise_mse, ssim)
from ldm_core.stage_losses import StageLoss, align_stage_loss, align_targets, diffusion_stage_loss, vae_stage_loss

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


# stage losses of the trainer, on stub modules whose outputs are known by hand

from ldm_core.models import LatentDistribution, NoiseSchedule, UNetOutput, coarse_target  # noqa: E402
from ldm_core.pipeline import BrainLDM  # noqa: E402
from tests.train_helpers import tiny_cfg  # noqa: E402

V_STUB = 5  # voxels of the stub model


class StubVAE(nn.Module):
    """mean = w_enc * pixel mean on a (1, 2, 2) latent, logvar = log 4 (std 2); decode = sigmoid(w_dec * mean z)."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(1, 1, bias=False)
        self.decoder = nn.Linear(1, 1, bias=False)
        with torch.no_grad():
            self.encoder.weight.fill_(1.0)
            self.decoder.weight.fill_(1.0)

    def encode(self, x):
        m = self.encoder(x.mean(dim=(1, 2, 3))[:, None])  # (B, 1)
        mean = m[:, :, None, None].expand(-1, 1, 2, 2)  # (B, 1, 2, 2)
        return LatentDistribution(mean, torch.full_like(mean, math.log(4.0)))

    @staticmethod
    def sample_latent(mean, logvar, *, generator=None):
        from ldm_core.models.vae import reparameterise

        return reparameterise(mean, logvar, torch.randn(mean.shape, generator=generator))

    def decode(self, z):
        v = torch.sigmoid(self.decoder(z.mean(dim=(1, 2, 3))[:, None]))  # (B, 1)
        return v[:, :, None, None].expand(-1, 1, 4, 4)  # (B, 1, 4, 4)


class StubUNet(nn.Module):
    """pred = w * x_t + mean of the condition tokens (null token 0 for dropped rows); coarse = w * pooled x_t."""

    def __init__(self, w: float = 0.0):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))
        self.seen_drop = None

    def forward(self, x_t, t, cond, *, cond_drop_mask=None, return_coarse=False):
        c = cond.mean(dim=(1, 2))  # (B,)
        if cond_drop_mask is not None:
            self.seen_drop = cond_drop_mask
            c = torch.where(cond_drop_mask, torch.zeros_like(c), c)
        pred = self.w * x_t + c[:, None, None, None]  # (B, 1, 2, 2)
        return UNetOutput(pred, self.w * coarse_target(x_t)) if return_coarse else pred


class StubLDM(nn.Module):
    """The parts of a BrainLDM the stage losses use; latent_scale 0.5, encoder Linear(V, 1) starting at 0."""

    def __init__(self, *, prediction: str = "eps", w_unet: float = 0.0):
        super().__init__()
        self.vae, self.unet = StubVAE(), StubUNet(w_unet)
        self.encoder = nn.Linear(V_STUB, 1)
        nn.init.zeros_(self.encoder.weight)
        nn.init.zeros_(self.encoder.bias)
        self.schedule = NoiseSchedule(n_train_steps=10, prediction=prediction)
        self.register_buffer("latent_scale", torch.tensor(0.5))

    def encode_fmri(self, fmri):
        return self.encoder(fmri)[:, None, :]  # (B, 1, 1)

    def decode_latents(self, x0):
        return self.vae.decode(x0 / self.latent_scale)


def _batch(B: int = 2):
    """images: row 0 all 1.0, row 1 all 0.5 (posterior means 1 and 0.5); z_eps 1; noise 2; t = (0, 9)."""
    images = torch.stack([torch.full((1, 4, 4), 1.0), torch.full((1, 4, 4), 0.5)])[:B]
    return dict(fmri=torch.randn(B, V_STUB, generator=torch.Generator().manual_seed(0)), images=images,
                t=torch.tensor([0, 9])[:B], noise=torch.full((B, 1, 2, 2), 2.0), z_eps=torch.ones(B, 1, 2, 2))


def test_kl_divergence_known_values():
    z = torch.zeros(2, 4, 7, 7)
    assert kl_divergence(z, z).item() == 0.0
    assert math.isclose(kl_divergence(torch.ones(2, 4, 7, 7), z).item(), 0.5)
    # per sample: summed over a sample's 4 * 7 * 7 elements, mean over the 2 samples
    assert math.isclose(kl_divergence(torch.ones(2, 4, 7, 7), z, per="sample").item(), 0.5 * 4 * 7 * 7)
    with pytest.raises(ValueError, match="per must be 'element' or 'sample'"):
        kl_divergence(z, z, per="pixel")


def test_vae_stage_loss_by_hand_posterior_mean():
    vae, images = StubVAE(), torch.full((2, 1, 4, 4), 0.5)
    p = 1 / (1 + math.exp(-0.5))  # decode(mean = 0.5) = sigmoid(0.5)
    kl = 0.5 * (0.5 ** 2 + 4.0 - 1.0 - math.log(4.0))  # per latent element
    bce = -(0.5 * math.log(p) + 0.5 * math.log(1 - p))  # per pixel, target 0.5
    out = vae_stage_loss(vae, images=images, kl_weight=0.1, sample=False)
    assert isinstance(out, StageLoss) and set(out.terms) == {"recon", "kl"}
    assert out.terms["recon"].item() == pytest.approx(bce)
    assert out.terms["kl"].item() == pytest.approx(kl)
    assert out.total.item() == pytest.approx(bce + 0.1 * kl)


def test_vae_stage_loss_samples_from_the_generator_and_trains_both_halves():
    vae, images = StubVAE(), torch.full((2, 1, 4, 4), 0.5)
    eps = torch.randn((2, 1, 2, 2), generator=torch.Generator().manual_seed(7))
    p = torch.sigmoid((0.5 + 2.0 * eps).mean(dim=(1, 2, 3)))  # (B,): decoded value of z = mean + std * eps
    out = vae_stage_loss(vae, images=images, kl_weight=0.0, generator=torch.Generator().manual_seed(7))
    bce = -(0.5 * torch.log(p) + 0.5 * torch.log(1 - p))  # (B,): every pixel of image b decodes to p[b]
    assert out.total.item() == pytest.approx(bce.mean().item(), rel=1e-6)
    out.total.backward()
    assert vae.encoder.weight.grad.abs().item() > 0 and vae.decoder.weight.grad.abs().item() > 0


def test_align_stage_loss_by_hand():
    model = StubLDM()
    target = align_targets(model, torch.ones(2, 1, 4, 4))  # latent_scale 0.5 * posterior mean 1
    assert target.shape == (2, 4) and torch.equal(target, torch.full((2, 4), 0.5)) and not target.requires_grad
    head = nn.Linear(1, 4)
    with torch.no_grad():
        head.weight.fill_(1.0)
        head.bias.zero_()
        model.encoder.bias.fill_(1.0)  # tokens = 1, so the read-out is 1 everywhere
    out = align_stage_loss(model, fmri=_batch()["fmri"], target=target, head=head)
    assert out.total.item() == pytest.approx(0.25) and list(out.terms) == ["align_mse"]  # (1 - 0.5) ** 2
    out.total.backward()
    assert model.encoder.weight.grad.abs().sum() > 0 and head.weight.grad.abs().sum() > 0
    assert model.vae.encoder.weight.grad is None  # the targets carry no gradient


@pytest.mark.parametrize("prediction, expected", [("eps", 4.0), ("x0", (1.5 ** 2 + 1.25 ** 2) / 2)])
def test_diffusion_stage_loss_noise_term_by_hand(prediction, expected):
    """pred = 0, so the loss is the mean square of the target: noise = 2, or x0 = 0.5 * (mean + 2 * 1)."""
    out = diffusion_stage_loss(StubLDM(prediction=prediction), **_batch())
    assert list(out.terms) == ["noise"] and out.real is None and out.fake is None
    assert out.terms["noise"].item() == pytest.approx(expected)
    assert out.total.item() == pytest.approx(expected)


def test_diffusion_stage_loss_coarse_term_and_weights():
    out = diffusion_stage_loss(StubLDM(), **_batch(), w_noise=0.5, w_coarse=2.0)
    assert out.terms["coarse"].item() == pytest.approx(4.0)  # pooled noise 2, coarse pred 0
    assert out.total.item() == pytest.approx(0.5 * 4.0 + 2.0 * 4.0)


def test_diffusion_stage_loss_image_term_on_small_t_rows_only():
    model = StubLDM(w_unet=1.0)
    model.vae.requires_grad_(False)  # the frozen decoder of the progressive plan
    image_loss = ImageLoss(w_mse=1.0)
    base = diffusion_stage_loss(model, **_batch())
    out = diffusion_stage_loss(model, **_batch(), image_loss=image_loss, img_loss_t_frac=0.5)  # t < 5: row 0
    assert set(out.terms) == {"noise", "img_mse"}
    assert torch.equal(out.real, _batch()["images"][:1]) and out.fake.shape == (1, 1, 4, 4)
    assert not out.fake.requires_grad
    assert out.total.item() == pytest.approx(base.total.item() + out.terms["img_mse"].item())
    out.total.backward()
    assert model.unet.w.grad.abs().item() > 0 and model.vae.decoder.weight.grad is None
    late = diffusion_stage_loss(model, **{**_batch(), "t": torch.tensor([7, 9])}, image_loss=image_loss)
    assert set(late.terms) == {"noise"} and late.fake is None  # no row with small t: no image term


def test_diffusion_stage_loss_gradients_follow_the_train_flags():
    def grads(**flags):
        model = StubLDM(w_unet=1.0)
        diffusion_stage_loss(model, **_batch(), **flags).total.backward()
        return model.encoder.weight.grad, model.vae.encoder.weight.grad, model.vae.decoder.weight.grad

    enc, vae_enc, dec = grads(train_encoder=True, train_vae_encoder=True)
    assert enc.abs().sum() > 0 and vae_enc.abs().sum() > 0 and dec is None
    enc, vae_enc, _ = grads(train_encoder=False, train_vae_encoder=False)
    assert enc is None and vae_enc is None


def test_diffusion_stage_loss_passes_the_condition_dropout():
    model = StubLDM()
    drop = torch.tensor([True, False])
    diffusion_stage_loss(model, **_batch(), cond_drop=drop)
    assert torch.equal(model.unet.seen_drop, drop)


def test_original_plan_diffusion_loss_never_reaches_the_vae_decoder():
    """The report's defect: the noise MSE trains the VAE encoder, while its decoder gets no gradient at all."""
    torch.manual_seed(0)
    model = BrainLDM(tiny_cfg("original"), n_voxels=V_STUB).train()  # every parameter requires grad
    B, (C, h, w) = 2, model.latent_shape
    out = diffusion_stage_loss(model, fmri=torch.randn(B, V_STUB), images=torch.rand(B, 1, 28, 28),
                               t=torch.tensor([3, 40]), noise=torch.randn(B, C, h, w), z_eps=torch.randn(B, C, h, w),
                               train_encoder=True, train_vae_encoder=True)
    out.total.backward()
    assert all(p.grad is None for p in model.vae.decoder.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.vae.encoder.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.unet.parameters())

