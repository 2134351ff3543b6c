"""Tests of ldm_core.optim.optimiser_step: the step equals the hand-written one, clipping, and its error."""
import pytest
import torch

from ldm_core.optim import optimiser_step


def _setup(seed=0):
    torch.manual_seed(seed)
    lin = torch.nn.Linear(3, 2)
    return lin, torch.optim.AdamW(lin.parameters(), lr=0.1)


def test_step_equals_zero_grad_backward_step_and_clears_old_gradients():
    x = torch.arange(6.0).reshape(2, 3)
    a, opt_a = _setup()
    b, opt_b = _setup()
    for p in a.parameters():
        p.grad = torch.full_like(p, 100.0)  # a stale gradient must not leak into the step
    optimiser_step(opt_a, a(x).pow(2).sum())
    opt_b.zero_grad(set_to_none=True)
    b(x).pow(2).sum().backward()
    opt_b.step()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_clip_norm_bounds_the_global_gradient_norm():
    lin, opt = _setup()
    optimiser_step(opt, 1e6 * lin(torch.ones(1, 3)).sum(), clip_norm=1.0, params=list(lin.parameters()))
    norm = torch.sqrt(sum(p.grad.pow(2).sum() for p in lin.parameters()))
    assert float(norm) == pytest.approx(1.0, rel=1e-5)


def test_clip_norm_without_params_is_refused():
    lin, opt = _setup()
    with pytest.raises(ValueError, match="clip_norm needs params"):
        optimiser_step(opt, lin(torch.ones(1, 3)).sum(), clip_norm=1.0)
