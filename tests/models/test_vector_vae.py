import pytest
import torch

from ldm_core.models.mlp_denoiser import MLPDenoiser
from ldm_core.models.vector_vae import VectorVAE, elbo_loss


def test_shapes_and_range():
    vae = VectorVAE(latent_dim=5, image_size=12, width=8, hidden=16)
    x = torch.rand(3, 1, 12, 12)
    mean, logvar = vae.encode(x)
    assert mean.shape == logvar.shape == (3, 5)
    out = vae.decode(mean).detach()
    assert out.shape == (3, 1, 12, 12) and float(out.min()) >= 0 and float(out.max()) <= 1
    assert vae(x).recon.shape == (3, 1, 12, 12)


def test_elbo_by_hand_and_gradients_reach_both_halves():
    torch.manual_seed(0)
    vae = VectorVAE(latent_dim=4, image_size=8, width=4, hidden=8)
    x = torch.rand(2, 1, 8, 8)
    g = torch.Generator().manual_seed(1)
    total, terms = elbo_loss(vae, x, kl_weight=0.5, generator=g)
    assert total.item() == pytest.approx(terms["recon"].item() + 0.5 * terms["kl"].item(), rel=1e-6)
    mean, logvar = vae.encode(x)
    kl = 0.5 * (mean ** 2 + logvar.exp() - 1 - logvar).sum() / 2
    assert terms["kl"].item() == pytest.approx(kl.item(), rel=1e-5)
    total.backward()
    assert vae.encoder[0].weight.grad.abs().sum() > 0 and vae.decoder[0].weight.grad.abs().sum() > 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="multiple of 4"):
        VectorVAE(image_size=30)
    with pytest.raises(ValueError, match="latent_dim must be a positive int"):
        VectorVAE(latent_dim=0)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 1, 28, 28\)"):
        VectorVAE().encode(torch.rand(2, 28, 28))
    with pytest.raises(ValueError, match=r"z must have shape \(B, 16\)"):
        VectorVAE().decode(torch.rand(2, 3))


def test_denoiser_condition_null_and_drop_mask():
    torch.manual_seed(0)
    den = MLPDenoiser(dim=3, cond_dim=6, width=16, blocks=2)
    x, t, c = torch.randn(4, 3), torch.tensor([0, 10, 100, 999]), torch.randn(4, 6)
    assert den(x, t, c).shape == (4, 3)
    with torch.no_grad():
        den.null_cond.copy_(torch.randn(6))
    drop = torch.tensor([True, False, True, False])
    mixed = den(x, t, c, cond_drop_mask=drop)
    uncond = den(x, t, None)
    cond = den(x, t, c)
    assert torch.allclose(mixed[drop], uncond[drop]) and torch.allclose(mixed[~drop], cond[~drop])
    assert not torch.allclose(uncond, cond)


def test_denoiser_uses_t_and_refuses_bad_input():
    den = MLPDenoiser(dim=3, cond_dim=0, width=8, blocks=1)
    x = torch.randn(2, 3)
    assert not torch.allclose(den(x, torch.tensor([1, 1])), den(x, torch.tensor([900, 900])))
    with pytest.raises(ValueError, match="unconditional"):
        den(x, torch.tensor([1, 1]), torch.randn(2, 1))
    with pytest.raises(ValueError, match=r"x_t must have shape \(B, 3\)"):
        den(torch.randn(2, 4), torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="blocks must be an int >= 1"):
        MLPDenoiser(dim=3, cond_dim=0, blocks=0)
