"""Tests of ldm_core.models.unet: the original's defects, and the fixed U-Net in every configuration."""

import itertools

import pytest
import torch

from ldm_core.models import count_parameters
from ldm_core.models.blocks import timestep_embedding
from ldm_core.models.unet import (
    COND_POINTS,
    CONDITIONINGS,
    OriginalUNet,
    UNet,
    UNetOutput,
    coarse_target,
)

B, T, D = 2, 3, 12  # batch, condition tokens, token dimension
TINY = dict(channels=(8, 16), time_dim=8, cond_dim=D, num_groups=4, attn_heads=2)


def _inputs(C, size, *, seed=0):
    g = torch.Generator().manual_seed(seed)
    x_t = torch.randn(B, C, size, size, generator=g)
    cond = torch.randn(B, T, D, generator=g)
    return x_t, torch.tensor([5, 700]), cond


# original U-Net

def test_original_shape_and_layout():
    net = OriginalUNet(in_channels=4, cond_dim=D)
    x_t, t, cond = _inputs(4, 7)
    assert net(x_t, t, cond).shape == (B, 4, 7, 7)
    # five 3x3 convs 4-64-128-128-64-4 plus four GroupNorms, nothing else in the image path
    convs = (4 * 64 + 64 * 128 + 128 * 128 + 128 * 64 + 64 * 4) * 9 + (64 + 128 + 128 + 64 + 4)
    norms = 2 * (64 + 128 + 128 + 64)
    assert count_parameters(net.net) == convs + norms


def test_original_ignores_condition_zero_gradient():
    net = OriginalUNet(in_channels=4, cond_dim=D)
    x_t, t, cond = _inputs(4, 7)
    cond.requires_grad_(True)
    out = net(x_t, t, cond)
    (grad,) = torch.autograd.grad(out.sum(), cond, allow_unused=True)
    assert grad is None or torch.count_nonzero(grad) == 0
    assert torch.equal(out, net(x_t, t, torch.randn_like(cond)))
    assert torch.equal(out, net(x_t, t, None))


def test_original_ignores_timestep():
    net = OriginalUNet(in_channels=4, cond_dim=D)
    x_t, t, cond = _inputs(4, 7)
    assert torch.equal(net(x_t, t, cond), net(x_t, torch.tensor([999, 0]), cond))


def test_original_has_no_coarse_head():
    net = OriginalUNet(in_channels=4, cond_dim=D)
    x_t, t, cond = _inputs(4, 7)
    with pytest.raises(ValueError, match="OriginalUNet has no coarse head"):
        net(x_t, t, cond, return_coarse=True)


# fixed U-Net, every configuration

GRID = list(itertools.product(CONDITIONINGS, COND_POINTS, [True, False], [False, True], [(4, 7), (8, 8)]))


@pytest.mark.parametrize("conditioning, cond_points, attention, multiscale, latent", GRID)
def test_unet_configuration(conditioning, cond_points, attention, multiscale, latent):
    C, size = latent
    torch.manual_seed(0)
    net = UNet(in_channels=C, conditioning=conditioning, cond_points=cond_points,
               attention=attention, multiscale=multiscale, **TINY)
    x_t, t, cond = _inputs(C, size)
    cond.requires_grad_(True)

    out = net(x_t, t, cond, return_coarse=multiscale)
    if multiscale:
        assert isinstance(out, UNetOutput)
        assert out.coarse.shape == coarse_target(x_t).shape == (B, C, (size + 1) // 2, (size + 1) // 2)
        out = out.sample
    assert out.shape == (B, C, size, size)

    # the condition reaches the output (except when switched off)
    (grad,) = torch.autograd.grad(out.sum(), cond, allow_unused=True)
    if conditioning == "none":
        assert grad is None or torch.count_nonzero(grad) == 0
    else:
        assert grad is not None and grad.abs().sum() > 0

    # the timestep reaches the output
    with torch.no_grad():
        assert not torch.allclose(net(x_t, t, cond), net(x_t, torch.tensor([300, 20]), cond))
        assert net(x_t, t, None).shape == (B, C, size, size)  # unconditional


@pytest.mark.parametrize("size", [7, 8, 5])
def test_three_levels_odd_sizes(size):
    net = UNet(in_channels=4, **{**TINY, "channels": (8, 16, 16)}, multiscale=True)
    x_t, t, cond = _inputs(4, size)
    out = net(x_t, t, cond, return_coarse=True)
    assert out.sample.shape == (B, 4, size, size)
    assert out.coarse.shape == coarse_target(x_t).shape


def test_brain_aware_tokens_and_single_token_both_work():
    net = UNet(in_channels=4, conditioning="cross_attn", **TINY)
    x_t, t, _ = _inputs(4, 8)
    for n_tokens in (1, 16):
        assert net(x_t, t, torch.randn(B, n_tokens, D)).shape == (B, 4, 8, 8)


@pytest.mark.parametrize("conditioning", ["add", "film", "cross_attn"])
def test_cond_drop_mask_selects_null_condition_per_row(conditioning):
    net = UNet(in_channels=4, conditioning=conditioning, **TINY).eval()
    x_t, t, cond = _inputs(4, 7)
    with torch.no_grad():
        cond_out = net(x_t, t, cond)
        null_out = net(x_t, t, None)
        mixed = net(x_t, t, cond, cond_drop_mask=torch.tensor([True, False]))
    torch.testing.assert_close(mixed[0], null_out[0])
    torch.testing.assert_close(mixed[1], cond_out[1])
    assert not torch.allclose(cond_out[0], null_out[0])


def test_scalar_timestep_broadcasts():
    net = UNet(in_channels=4, **TINY)
    x_t, _, cond = _inputs(4, 8)
    torch.testing.assert_close(net(x_t, torch.tensor(9), cond), net(x_t, torch.tensor([9, 9]), cond))


@pytest.mark.parametrize("make", [lambda: OriginalUNet(cond_dim=D), lambda: UNet(in_channels=4, conditioning="film", **TINY)])
def test_same_seed_same_parameters_and_outputs(make):
    torch.manual_seed(0)
    a = make()
    torch.manual_seed(0)
    b = make()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    x_t, t, cond = _inputs(4, 7)
    assert torch.equal(a(x_t, t, cond), b(x_t, t, cond))


# helpers

def test_timestep_embedding_known_values():
    emb = timestep_embedding(torch.tensor([0, 3]), 9)
    assert emb.shape == (2, 9)
    torch.testing.assert_close(emb[0, :4], torch.ones(4))  # cos(0)
    torch.testing.assert_close(emb[0, 4:8], torch.zeros(4))  # sin(0)
    assert emb[:, 8].abs().sum() == 0  # odd size: zero pad
    torch.testing.assert_close(emb[1, 0], torch.cos(torch.tensor(3.0)))  # frequency 1


def test_coarse_target_odd_size_averages_existing_pixels():
    x = torch.full((1, 1, 7, 7), 2.0)
    torch.testing.assert_close(coarse_target(x), torch.full((1, 1, 4, 4), 2.0))


# errors

@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(conditioning="concat"), r"conditioning must be one of \('add', 'film', 'cross_attn', 'none'\), got 'concat'"),
        (dict(cond_points="down"), r"cond_points must be one of \('all', 'mid'\), got 'down'"),
        (dict(channels=()), "channels must be a non-empty sequence"),
        (dict(channels=(8, 10)), r"divisible by num_groups \(4\); \[10\] are not"),
        (dict(attn_heads=3), r"divisible by attn_heads \(3\)"),
        (dict(channels=(8,), multiscale=True), "multiscale needs at least two levels"),
        (dict(dropout=1.0), r"dropout must be in \[0, 1\)"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        UNet(in_channels=4, **{**TINY, **kwargs})


def test_bad_inputs_raise():
    net = UNet(in_channels=4, **TINY)
    x_t, t, cond = _inputs(4, 8)
    with pytest.raises(ValueError, match=r"x_t must have shape \(B, 4, h, w\), got \(2, 3, 8, 8\)"):
        net(x_t[:, :3], t, cond)
    with pytest.raises(ValueError, match=r"cond must have shape \(2, T, 12\).*got \(2, 3, 5\)"):
        net(x_t, t, cond[..., :5])
    with pytest.raises(ValueError, match=r"t must be a scalar or have shape \(2,\), got \(3,\)"):
        net(x_t, torch.tensor([1, 2, 3]), cond)
    with pytest.raises(ValueError, match=r"cond_drop_mask must have shape \(2,\), got \(1,\)"):
        net(x_t, t, cond, cond_drop_mask=torch.tensor([True]))
    with pytest.raises(ValueError, match="return_coarse=True needs a UNet built with multiscale=True"):
        net(x_t, t, cond, return_coarse=True)


def test_original_unet_with_embedding_repair_uses_t_and_cond():
    """The diagnostics' minimal repair: the t + fMRI sum enters the network, so gradients flow."""
    from ldm_core.models.unet import OriginalUNet

    torch.manual_seed(0)
    net = OriginalUNet(in_channels=4, cond_dim=16, time_dim=32, use_embedding=True)
    x = torch.randn(2, 4, 7, 7)
    cond = torch.randn(2, 1, 16, requires_grad=True)
    out = net(x, torch.tensor([5, 5]), cond)
    out.sum().backward()
    assert cond.grad is not None and cond.grad.abs().sum() > 0
    assert not torch.allclose(out, net(x, torch.tensor([900, 900]), cond))
    faithful = OriginalUNet(in_channels=4, cond_dim=16, time_dim=32)
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in faithful.parameters()) + 32 * 64 + 64
