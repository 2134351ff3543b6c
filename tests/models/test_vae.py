"""Tests of ldm_core.models.vae: latent shapes, output range, reparameterisation, errors."""

import pytest
import torch

from ldm_core.models import count_parameters
from ldm_core.models.vae import NORMS, LargeVAE, OriginalVAE, VAEOutput, make_norm

B = 2


def _vaes():
    return {
        **{f"original-{n}": (lambda n=n: OriginalVAE(norm=n)) for n in NORMS},
        **{f"large-{n}": (lambda n=n: LargeVAE(base=8, norm=n)) for n in NORMS},
    }


# contract

@pytest.mark.parametrize("name", list(_vaes()))
def test_encode_decode_shapes_and_range(name):
    vae = _vaes()[name]()
    x = torch.rand(B, 1, 28, 28)
    mean, logvar = vae.encode(x)
    expected = (4, 7, 7) if name.startswith("original") else (8, 8, 8)
    assert vae.latent_shape == expected
    assert mean.shape == logvar.shape == (B, *expected)
    recon = vae.decode(torch.randn(B, *expected) * 10)  # far-off latents still decode into [0, 1]
    assert recon.shape == (B, 1, 28, 28)
    assert recon.min() >= 0 and recon.max() <= 1
    out = vae(x)
    assert isinstance(out, VAEOutput) and out.recon.shape == (B, 1, 28, 28)


def test_scale_factor():
    assert OriginalVAE().scale_factor == 0.18215
    assert LargeVAE(base=8).scale_factor == 0.18215


def test_forward_without_sampling_decodes_the_mean():
    vae = OriginalVAE().eval()
    x = torch.rand(B, 1, 28, 28)
    out = vae(x, sample_posterior=False)
    assert torch.equal(out.recon, vae.decode(out.mean))


def test_sample_latent_reparameterisation():
    mean = torch.randn(B, 4, 7, 7)
    logvar = torch.full_like(mean, 2 * torch.log(torch.tensor(0.5)).item())  # std 0.5
    z1 = OriginalVAE.sample_latent(mean, logvar, generator=torch.Generator().manual_seed(3))
    z2 = OriginalVAE.sample_latent(mean, logvar, generator=torch.Generator().manual_seed(3))
    eps = torch.randn(mean.shape, generator=torch.Generator().manual_seed(3))
    assert torch.equal(z1, z2)
    torch.testing.assert_close(z1, mean + 0.5 * eps)


def test_large_vae_pads_to_canvas_and_crops_back():
    vae = LargeVAE(base=8)
    assert vae.pad == 2 and vae.canvas == 32


def test_original_layout_parameter_count():
    # encoder convs 1->32 (k4), 32->64 (k4), 64->8 (k3); decoder 4->64 (k3), 64->32 (k4), 32->1 (k4)
    expected = (16 * 32 + 32) + (32 * 64 * 16 + 64) + (64 * 8 * 9 + 8) + (4 * 64 * 9 + 64) + (64 * 32 * 16 + 32) + (32 * 16 + 1)
    assert count_parameters(OriginalVAE()) == expected


@pytest.mark.parametrize("name", ["original-none", "large-group"])
def test_same_seed_same_parameters_and_outputs(name):
    torch.manual_seed(0)
    a = _vaes()[name]().eval()
    torch.manual_seed(0)
    b = _vaes()[name]().eval()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    x = torch.rand(B, 1, 28, 28)
    assert torch.equal(a(x, sample_posterior=False).recon, b(x, sample_posterior=False).recon)


# errors

@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: OriginalVAE(norm="layer"), r"norm must be one of \('none', 'group', 'batch'\), got 'layer'"),
        (lambda: LargeVAE(norm="layer"), "norm must be one of"),
        (lambda: OriginalVAE(image_size=30), "image_size must be a positive multiple of 4, got 30"),
        (lambda: LargeVAE(canvas=30), "canvas must be a multiple of 4.*got 30"),
        (lambda: LargeVAE(canvas=24), "canvas must be a multiple of 4.*got 24"),
        (lambda: make_norm("group", 12), r"channels \(12\) divisible by num_groups \(8\)"),
    ],
)
def test_bad_arguments_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("name", ["original-none", "large-none"])
def test_wrong_input_shapes_raise(name):
    vae = _vaes()[name]()
    with pytest.raises(ValueError, match=r"x must have shape \(B, 1, 28, 28\), got \(2, 1, 32, 32\)"):
        vae.encode(torch.rand(B, 1, 32, 32))
    with pytest.raises(ValueError, match=r"z must have shape \(B, .*got \(2, 3, 7, 7\)"):
        vae.decode(torch.randn(B, 3, 7, 7))
