"""Tests of ldm_core.models.schedule, pinned to closed forms (DDPM, DDIM, improved DDPM)."""

import math

import pytest
import torch

from ldm_core.models.schedule import NoiseSchedule, SchedulerOutput

SHAPE = (2, 4, 7, 7)


def _x0_noise(*, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(SHAPE, generator=g, dtype=dtype), torch.randn(SHAPE, generator=g, dtype=dtype)


# betas

def test_linear_endpoints_and_first_alphas_cumprod():
    s = NoiseSchedule(kind="linear", n_train_steps=1000, beta_start=1e-4, beta_end=0.02)
    assert s.betas[0].item() == pytest.approx(1e-4, rel=1e-6)
    assert s.betas[-1].item() == pytest.approx(0.02, rel=1e-6)
    assert s.alphas_cumprod[0] == torch.tensor(1 - 1e-4, dtype=torch.float32)
    torch.testing.assert_close(s.betas, torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64).float())


def test_buffers_are_float32_and_saved():
    s = NoiseSchedule()
    for name in ["betas", "alphas", "alphas_cumprod", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod"]:
        assert getattr(s, name).dtype == torch.float32
        assert getattr(s, name).shape == (1000,)
        assert name in s.state_dict()
    assert list(s.parameters()) == []


def test_cosine_matches_closed_form_and_decreases():
    T = 1000
    s = NoiseSchedule(kind="cosine", n_train_steps=T)
    abar = s.alphas_cumprod.double()
    assert torch.all(abar[1:] < abar[:-1])
    assert s.betas.max() <= 0.999
    f = lambda u: math.cos((u / T + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    for t in [0, 10, 500, 900]:  # alphas_cumprod[t] = abar(t + 1) = f(t + 1) / f(0) where not clipped
        assert abar[t].item() == pytest.approx(f(t + 1) / f(0), rel=1e-5)


# forward process and conversions

@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_q_sample_then_predict_x0_recovers_x0_eps_prediction(kind):
    s = NoiseSchedule(kind=kind, prediction="eps")
    x0, noise = _x0_noise()
    t = torch.tensor([0, 999])
    x_t = s.q_sample(x0, t, noise)
    torch.testing.assert_close(s.predict_x0(x_t, t, noise), x0, rtol=0, atol=1e-10)
    assert s.predict_eps(x_t, t, noise) is noise


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_q_sample_then_predict_eps_recovers_noise_x0_prediction(kind):
    s = NoiseSchedule(kind=kind, prediction="x0")
    x0, noise = _x0_noise()
    t = torch.tensor([1, 500])
    x_t = s.q_sample(x0, t, noise)
    torch.testing.assert_close(s.predict_eps(x_t, t, x0), noise, rtol=0, atol=1e-10)
    assert s.predict_x0(x_t, t, x0) is x0


def test_q_sample_float32_roundtrip_close():
    s = NoiseSchedule()
    x0, noise = _x0_noise(dtype=torch.float32)
    x_t = s.q_sample(x0, 300, noise)  # scalar t broadcasts
    assert x_t.dtype == torch.float32
    torch.testing.assert_close(s.predict_x0(x_t, 300, noise), x0, rtol=0, atol=1e-5)


def test_training_target():
    x0, noise = _x0_noise()
    assert NoiseSchedule(prediction="eps").training_target(x0, noise) is noise
    assert NoiseSchedule(prediction="x0").training_target(x0, noise) is x0


# timesteps

def test_inference_timesteps():
    s = NoiseSchedule(n_train_steps=1000)
    ts = s.inference_timesteps(50)
    assert ts.dtype == torch.int64 and ts.shape == (50,)
    assert ts[0] == 999 and ts[-1] == 0
    assert torch.all(ts[1:] < ts[:-1])
    assert s.inference_timesteps(1).tolist() == [999]
    assert s.inference_timesteps(1000).tolist() == list(range(999, -1, -1))
    pairs = s.timestep_pairs(3)
    assert pairs == [(999, 500), (500, 0), (0, -1)]


@pytest.mark.parametrize("steps", [0, 1001])
def test_inference_timesteps_out_of_range_raises(steps):
    with pytest.raises(ValueError, match=rf"steps must be an int in \[1, n_train_steps=1000\], got steps={steps}"):
        NoiseSchedule(n_train_steps=1000).inference_timesteps(steps)


# reverse steps

@pytest.mark.parametrize("prediction", ["eps", "x0"])
@pytest.mark.parametrize("t, t_prev", [(999, 979), (500, 499), (37, 0)])
def test_ddim_eta0_with_true_output_lands_on_q_sample(prediction, t, t_prev):
    s = NoiseSchedule(prediction=prediction)
    x0, noise = _x0_noise()
    x_t = s.q_sample(x0, t, noise)
    out = s.ddim_step(s.training_target(x0, noise), t, t_prev, x_t, eta=0.0)
    assert isinstance(out, SchedulerOutput)
    torch.testing.assert_close(out.prev_sample, s.q_sample(x0, t_prev, noise), rtol=0, atol=1e-10)
    torch.testing.assert_close(out.pred_x0, x0, rtol=0, atol=1e-10)


def test_ddim_final_step_returns_x0():
    s = NoiseSchedule()
    x0, noise = _x0_noise()
    x_t = s.q_sample(x0, 0, noise)
    torch.testing.assert_close(s.ddim_step(noise, 0, -1, x_t).prev_sample, x0, rtol=0, atol=1e-10)


def test_ddpm_posterior_stride_one_matches_textbook():
    s = NoiseSchedule()
    x0, x_t = _x0_noise()
    t = 400
    beta, alpha = s.betas[t].double(), s.alphas[t].double()
    abar, abar_prev = s.alphas_cumprod[t].double(), s.alphas_cumprod[t - 1].double()
    mean_textbook = (abar_prev.sqrt() * beta / (1 - abar)) * x0 + (alpha.sqrt() * (1 - abar_prev) / (1 - abar)) * x_t
    var_textbook = beta * (1 - abar_prev) / (1 - abar)
    mean, var = s.posterior(x0, x_t, t, t - 1)
    torch.testing.assert_close(mean, mean_textbook, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(var.flatten()[0], var_textbook, rtol=1e-5, atol=0)
    # the step draws from that posterior (x0 model: the output is x0 itself)
    step = NoiseSchedule(prediction="x0").ddpm_step(x0, t, t - 1, x_t, generator=torch.Generator().manual_seed(1))
    z = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(step.prev_sample, mean_textbook + var_textbook.sqrt() * z, rtol=1e-5, atol=1e-5)


def test_ddpm_equals_ddim_eta1_for_any_stride():
    # DDIM with eta = 1 is the DDPM posterior (Song et al. 2021, sec. 4.1), for any stride
    s = NoiseSchedule()
    x0, noise = _x0_noise()
    t, t_prev = torch.tensor([900, 300]), torch.tensor([850, 0])
    x_t = s.q_sample(x0, t, noise)
    a = s.ddpm_step(noise, t, t_prev, x_t, generator=torch.Generator().manual_seed(2))
    b = s.ddim_step(noise, t, t_prev, x_t, eta=1.0, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(a.prev_sample, b.prev_sample, rtol=1e-6, atol=1e-6)


def test_ddpm_final_step_returns_x0():
    s = NoiseSchedule()
    x0, noise = _x0_noise()
    x_t = s.q_sample(x0, 0, noise)
    torch.testing.assert_close(s.ddpm_step(noise, 0, -1, x_t).prev_sample, x0, rtol=0, atol=1e-10)


def test_original_step_renoises_with_fresh_noise_and_ends_at_x0():
    s = NoiseSchedule()
    x0, noise = _x0_noise()
    x_t = s.q_sample(x0, 600, noise)
    final = s.original_step(noise, 600, -1, x_t, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(final.prev_sample, x0, rtol=0, atol=1e-10)
    mid = s.original_step(noise, 600, 300, x_t, generator=torch.Generator().manual_seed(4))
    fresh = torch.randn(SHAPE, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    torch.testing.assert_close(mid.prev_sample, s.q_sample(x0, 300, fresh), rtol=0, atol=1e-10)


def test_module_moves_buffers():
    s = NoiseSchedule().to(torch.float64)
    assert s.alphas_cumprod.dtype == torch.float64


# errors

@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kind="quadratic"), r"kind must be one of \('linear', 'cosine'\), got 'quadratic'"),
        (dict(prediction="v"), r"prediction must be one of \('eps', 'x0'\), got 'v'"),
        (dict(n_train_steps=0), "n_train_steps must be a positive int, got 0"),
        (dict(beta_start=0.1, beta_end=0.01), "0 < beta_start <= beta_end < 1, got beta_start=0.1, beta_end=0.01"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NoiseSchedule(**kwargs)


def test_bad_steps_raise():
    s = NoiseSchedule(n_train_steps=10)
    x0, noise = _x0_noise()
    with pytest.raises(ValueError, match="eta must be >= 0, got -1"):
        s.ddim_step(noise, 5, 4, x0, eta=-1)
    with pytest.raises(ValueError, match=r"t must be in \[0, 10\) for n_train_steps=10, got values in \[10, 10\]"):
        s.q_sample(x0, 10, noise)
    with pytest.raises(ValueError, match=r"t_prev must be in \[-1, 10\)"):
        s.ddpm_step(noise, 5, -2, x0)
    with pytest.raises(ValueError, match=r"t_prev must be smaller than t .*got t=5, t_prev=5"):
        s.original_step(noise, 5, 5, x0)
