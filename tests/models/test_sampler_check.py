"""Tests of ldm_core.study.sampler_check: every sampler against the exact denoiser of Gaussian data.

Two kinds of known answer. The closed form (``gaussian_moments``, written from the papers)
gives the exact law of each sampler's output, free of sampling noise; Monte Carlo through
the library (``sample_with`` -> ``pipeline.sample_latents`` -> ``schedule.<sampler>_step``)
must agree with it within sampling error, and both must agree with the data law up to the
sampler's own, measured bias. Tolerances on Monte Carlo numbers are multiples of their
standard errors (``mean_error_se``, ``cov_error_se``); tolerances on closed-form numbers
pin the measured values.
"""

import math

import pytest
import torch

from ldm_core.models.schedule import NoiseSchedule
from ldm_core.study.sampler_check import (
    GaussianOracle,
    check_sampler,
    error_amplification,
    gaussian_moments,
    sample_with,
)

KINDS = ["linear", "cosine"]
PREDICTIONS = ["eps", "x0"]
N = 4000  # Monte Carlo samples: relative covariance SE 0.047 for the data below
MEAN_TOL = 4.0  # in SEs, per component of the d = 6 mean: P(max_i |z_i| > 4) = 6 * 6.3e-5 ~ 4e-4
COV_TOL = 2.5  # in RMS sampling errors of ||S - Sigma||_F; measured ratios are 0.6-1.5 at these seeds


def _data():
    """x0 ~ N(mu, Sigma), d = 6: full covariance, eigenvalues 0.1 .. 3 (lam != 1 shows the samplers' biases)."""
    g = torch.Generator().manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))  # random rotation
    lam = torch.tensor([0.1, 0.3, 0.6, 1.0, 1.7, 3.0], dtype=torch.float64)
    cov = (Q * lam) @ Q.T
    return torch.tensor([1.0, -0.5, 0.3, 2.0, 0.0, -1.0], dtype=torch.float64), (cov + cov.T) / 2, Q, lam


MU, COV, Q, LAM = _data()
D = MU.numel()


def _schedule(kind="linear", prediction="eps"):
    return NoiseSchedule(kind=kind, prediction=prediction)


# oracle

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("t", [0, 300, 999])
def test_oracle_is_the_conditional_mean_formula(kind, t):
    s_x0, s_eps = _schedule(kind, "x0"), _schedule(kind, "eps")
    x_t = torch.randn(5, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    a, s = s_x0.sqrt_alphas_cumprod[t].double(), s_x0.sqrt_one_minus_alphas_cumprod[t].double()
    M = a**2 * COV + s**2 * torch.eye(D, dtype=torch.float64)  # Cov(x_t)
    x0 = MU + (a * COV @ torch.linalg.solve(M, (x_t - a * MU).T)).T  # mu + a Sigma M^-1 (x_t - a mu)
    eps = (s * torch.linalg.solve(M, (x_t - a * MU).T)).T  # s M^-1 (x_t - a mu)
    torch.testing.assert_close(GaussianOracle(MU, COV, s_x0)(x_t, t), x0, rtol=0, atol=1e-10)
    torch.testing.assert_close(GaussianOracle(MU, COV, s_eps)(x_t, t), eps, rtol=0, atol=1e-10)
    # one function, two parameterisations: the library's conversion maps one onto the other
    torch.testing.assert_close(s_eps.predict_x0(x_t, t, eps), x0, rtol=0, atol=1e-9)


@pytest.mark.parametrize("t", [50, 600])
def test_oracle_residual_is_uncorrelated_with_x_t(t):
    # the defining property of E[x0 | x_t] for jointly Gaussian (x0, x_t): x0 - E[x0 | x_t] is
    # independent of x_t, so its cross-covariance with x_t vanishes (SE ~ 1/sqrt(n) per entry)
    n = 20000
    g = torch.Generator().manual_seed(2)
    s = _schedule("linear", "x0")
    x0 = MU + torch.randn(n, D, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(COV).T  # (n, d)
    x_t = s.q_sample(x0, t, torch.randn(n, D, generator=g, dtype=torch.float64))
    resid = x0 - GaussianOracle(MU, COV, s)(x_t, t)
    cross = (resid - resid.mean(0)).T @ (x_t - x_t.mean(0)) / (n - 1)  # (d, d)
    scale = resid.std(0)[:, None] * x_t.std(0)[None, :]
    assert (cross / scale).abs().max() < 4 / math.sqrt(n)
    assert resid.mean(0).abs().max() < 4 * resid.std(0).max() / math.sqrt(n)


def test_oracle_takes_images_and_keeps_shape_and_dtype():
    o = GaussianOracle(MU, COV, _schedule())
    x = torch.randn(3, 1, 2, 3)  # (B, C, h, w), C * h * w = d = 6, float32
    out = o(x, torch.tensor([10, 20, 30]))
    assert out.shape == x.shape and out.dtype == torch.float32
    flat = torch.cat([o(x[i].reshape(1, D), t) for i, t in enumerate([10, 20, 30])])  # per-sample t
    torch.testing.assert_close(out.reshape(3, D), flat)
    assert o.predict(x, 10, "ignored", guidance=3.0).equal(o(x, 10))  # the BrainLDM.predict signature


def test_oracle_errors_have_the_requested_size_and_timesteps():
    s = _schedule()
    x = torch.randn(2000, D, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    exact = GaussianOracle(MU, COV, s)(x, 500)
    direction = torch.arange(1.0, D + 1)
    bias = GaussianOracle(MU, COV, s, error=0.1, error_direction=direction, error_timesteps=[500, 999])
    shift = bias(x, 500) - exact
    torch.testing.assert_close(shift, (0.1 * direction * math.sqrt(D) / direction.norm()).double().expand_as(shift))
    assert shift.pow(2).mean().sqrt().item() == pytest.approx(0.1)  # delta is the RMS per component
    assert bias(x, 499).equal(GaussianOracle(MU, COV, s)(x, 499))  # t not listed: no error
    noise = GaussianOracle(MU, COV, s, error=0.1, error_kind="noise")(x, 500) - exact
    assert noise.std().item() == pytest.approx(0.1, rel=0.05)  # 12000 draws: SE 0.6 %
    assert noise.mean().abs().item() < 4 * 0.1 / math.sqrt(noise.numel())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"mean": torch.zeros(2, 3)}, "mean must have shape"),
        ({"cov": torch.eye(5)}, "cov must have shape"),
        ({"cov": torch.full((D, D), float("nan"))}, "must be finite"),
        ({"cov": torch.eye(D) + torch.triu(torch.ones(D, D), 1)}, "symmetric"),
        ({"cov": -torch.eye(D)}, "positive definite"),
        ({"error": -1.0}, "error must be a finite number >= 0"),
        ({"error_kind": "relative"}, "error_kind must be one of"),
        ({"error_direction": torch.zeros(D)}, "error_direction must be"),
        ({"error_timesteps": [1000]}, r"error_timesteps must list timesteps in \[0, 1000\)"),
    ],
)
def test_oracle_raises(kwargs, match):
    args = {"mean": MU, "cov": COV, **kwargs}
    with pytest.raises(ValueError, match=match):
        GaussianOracle(args.pop("mean"), args.pop("cov"), _schedule(), **args)


def test_oracle_call_raises_on_bad_input():
    o = GaussianOracle(MU, COV, _schedule())
    with pytest.raises(ValueError, match="x_t has 5 values per sample"):
        o(torch.zeros(2, 5), 0)
    with pytest.raises(ValueError, match=r"t must be in \[0, 1000\)"):
        o(torch.zeros(2, D), 1000)


# sample_with

def test_sample_with_raises():
    s = _schedule()
    o = GaussianOracle(MU, COV, s)
    with pytest.raises(ValueError, match="sampler must be one of"):
        sample_with(s, o, sampler="euler", steps=5, n=2)
    with pytest.raises(ValueError, match="n must be a positive int"):
        sample_with(s, o, sampler="ddim", steps=5, n=0)
    with pytest.raises(ValueError, match="shape is needed"):
        sample_with(s, lambda x, t: x, sampler="ddim", steps=5, n=2)
    with pytest.raises(ValueError, match="built for another schedule"):
        sample_with(_schedule(prediction="x0"), o, sampler="ddim", steps=5, n=2)
    with pytest.raises(ValueError, match="x_T must have shape"):
        sample_with(s, o, sampler="ddim", steps=5, n=2, x_T=torch.zeros(3, D))
    with pytest.raises(ValueError, match="steps must be an int"):
        sample_with(s, o, sampler="ddim", steps=1001, n=2)
    with pytest.raises(ValueError, match="sampler must be one of"):
        gaussian_moments(s, sampler="euler", steps=5, mean=MU, cov=COV)
    with pytest.raises(ValueError, match="n_samples must be an int >= 2"):
        check_sampler(s, sampler="ddim", steps=5, mean=MU, cov=COV, n_samples=1, seed=0)
    with pytest.raises(ValueError, match="error must be > 0"):
        error_amplification(s, sampler="ddim", steps=5, mean=MU, cov=COV, error=0.0)


def test_sample_with_image_shape_and_a_plain_callable():
    s = _schedule()
    o = GaussianOracle(MU, COV, s)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    flat = sample_with(s, o, sampler="ddpm", steps=20, n=4, generator=g())
    image = sample_with(s, lambda x, t: o(x, t), sampler="ddpm", steps=20, n=4, generator=g(), shape=(1, 2, 3))
    assert flat.shape == (4, D) and image.shape == (4, 1, 2, 3) and flat.dtype == torch.float64
    torch.testing.assert_close(image.reshape(4, D), flat)  # same noise stream, same samples


# the samplers with the exact oracle

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("prediction", PREDICTIONS)
@pytest.mark.parametrize("steps", [50, 200])
def test_ddim_library_map_is_the_closed_form_exactly(kind, prediction, steps):
    # DDIM (eta = 0) with the oracle is an affine map x_T -> x0 = A x_T + b; push 0 and the unit
    # vectors through the library loop to read A and b, then N(b, A A^T) is its exact output law
    s = _schedule(kind, prediction)
    x_T = torch.cat([torch.zeros(1, D), torch.eye(D)]).double()  # (d + 1, d)
    out = sample_with(s, GaussianOracle(MU, COV, s), sampler="ddim", steps=steps, n=D + 1, x_T=x_T)
    b, A = out[0], (out[1:] - out[0]).T  # (d,), (d, d)
    law = gaussian_moments(s, sampler="ddim", steps=steps, mean=MU, cov=COV)
    torch.testing.assert_close(b, law.mean, rtol=0, atol=1e-11)
    torch.testing.assert_close(A @ A.T, law.cov, rtol=0, atol=1e-11)  # measured <= 6e-13


# Closed-form bias against the data law (same for eps and x0: the oracle is one function):
#   sampler, steps    linear: cov_error  var ratio  mean_error | cosine: cov_error  var ratio  mean_error
#   ddpm 1000                 0.0073     0.9918     9.0e-5     |         0.0044     0.9952     1.8e-7
#   ddpm 200                  0.035      0.9615     9.0e-5     |         0.0215     0.9769     1.7e-7
#   ddim 200                  0.016      0.9825     0.0116     |         0.0137     0.9865     9.1e-5
#   ddim 100                  0.032      0.9653     0.0115     |         0.0273     0.9731     9.0e-5
#   ddim 50                   0.064      0.9313     0.0113     |         0.0543     0.9464     8.9e-5
#   ddim 10                   0.302      0.6787     0.0093     |         0.263      0.7401     7.9e-5
# DDPM's shortfall is its "beta-tilde" posterior variance (exact only for a point mass x0) plus
# the stride; DDIM's is the discretisation of its ODE (per eigen-direction the one-step map is a
# contraction by Cauchy-Schwarz unless lam = 1), and its mean error is the prior mismatch
# x_T ~ N(0, I) instead of N(sqrt(abar_{T-1}) mu, ...) carried through a deterministic map
# (~ |mu| sqrt(lam) / 157 on the linear schedule), which DDPM's fresh noise forgets.
BIAS = {  # (sampler, steps) -> closed-form cov_error bound, both schedules
    ("ddpm", 1000): 0.01,
    ("ddpm", 200): 0.04,
    ("ddim", 200): 0.02,
    ("ddim", 100): 0.04,
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("prediction", PREDICTIONS)
@pytest.mark.parametrize("sampler, steps", list(BIAS))
def test_closed_form_law_is_the_data_law_up_to_a_small_bias(kind, prediction, sampler, steps):
    law = gaussian_moments(_schedule(kind, prediction), sampler=sampler, steps=steps, mean=MU, cov=COV)
    cov_error = (torch.linalg.matrix_norm(law.cov - COV) / torch.linalg.matrix_norm(COV)).item()
    mean_error = ((law.mean - MU).abs() / COV.diagonal().sqrt()).max().item()
    assert cov_error < BIAS[sampler, steps]
    assert mean_error < 0.013  # linear DDIM: 0.0116 (prior mismatch); all others <= 9e-5
    assert 0.96 < (law.cov.trace() / COV.trace()).item() <= 1.0  # the samplers lose variance, never gain it


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("prediction", PREDICTIONS)
@pytest.mark.parametrize("sampler, steps", [("ddpm", 200), ("ddim", 100)])
def test_library_samplers_reproduce_the_data_law(kind, prediction, sampler, steps):
    r = check_sampler(_schedule(kind, prediction), sampler=sampler, steps=steps, mean=MU, cov=COV, n_samples=N, seed=0)
    # the library against the closed form: sampling error only
    assert r["mc_mean_error"] < MEAN_TOL * r["mean_error_se"]
    assert r["mc_cov_error"] < COV_TOL * r["cov_error_se"]
    # against the data law: sampling error plus the closed form's bias (triangle inequality)
    assert r["mean_error"] < MEAN_TOL * r["mean_error_se"] + r["exact_mean_error"]
    assert r["cov_error"] < COV_TOL * r["cov_error_se"] + r["exact_cov_error"]
    assert r["exact_cov_error"] < BIAS[sampler, steps]
    # tr S / tr Sigma, the statistic most sensitive to a wrong noise coefficient (SE 1.2 %): a
    # variance off by ~5 % fails here, which is also the test's power (measured gap <= 0.012)
    assert abs(r["variance_ratio"] - r["exact_variance_ratio"]) < MEAN_TOL * r["variance_ratio_se"]


@pytest.mark.parametrize("kind", KINDS)
def test_ddim_bias_shrinks_with_the_step_count(kind):
    s = _schedule(kind)
    errors = [
        (torch.linalg.matrix_norm(gaussian_moments(s, sampler="ddim", steps=k, mean=MU, cov=COV).cov - COV)).item()
        for k in (10, 50, 200, 1000)
    ]
    assert errors == sorted(errors, reverse=True)
    assert errors[-1] < errors[0] / 50  # roughly first order in 1 / steps: 0.30 -> 0.064 -> 0.016 at 10, 50, 200


# The report's "original" sampler (predict x0, re-noise with fresh noise), measured:
#                        linear: var ratio (MC)  | cosine
#   10 steps             0.363 (0.359)           | 0.407 (0.400)
#   50 steps             0.457 (0.458)           | 0.473 (0.475)
#   1000 steps           0.4944 (0.497)          | 0.4965 (0.494)
# and its mean is exact (closed-form error < 1e-12). Why one half: per eigen-direction, with
# r_t = a^2 lam / (a^2 lam + s^2), the variance v of x0_hat obeys v <- r^2 v + r (1 - r) lam,
# whose fixed point r lam / (1 + r) tends to lam / 2 as t -> 0 (r -> 1). Each re-noising throws
# away the part of x_t that the oracle does not explain, and the conditional mean of the rest has
# only half the spread. So the sampler returns N(mu, ~Sigma / 2): samples pulled halfway to the mean.
@pytest.mark.parametrize("kind, ratio_50", [("linear", 0.457), ("cosine", 0.473)])
@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_original_sampler_halves_the_covariance(kind, ratio_50, prediction):
    s = _schedule(kind, prediction)
    r = check_sampler(s, sampler="original", steps=50, mean=MU, cov=COV, n_samples=N, seed=0)
    assert r["exact_variance_ratio"] == pytest.approx(ratio_50, abs=2e-3)  # closed form: deterministic
    assert r["exact_mean_error"] < 1e-10
    assert r["mc_mean_error"] < MEAN_TOL * r["mean_error_se"]  # the library does what the closed form says
    assert r["mc_cov_error"] < COV_TOL * r["cov_error_se"]
    assert abs(r["variance_ratio"] - ratio_50) < MEAN_TOL * ratio_50 * r["variance_ratio_se"]  # relative SE 1.2 %


@pytest.mark.parametrize("kind", KINDS)
def test_original_sampler_tends_to_half_the_covariance_in_every_direction(kind):
    law = gaussian_moments(_schedule(kind), sampler="original", steps=1000, mean=MU, cov=COV)
    per_direction = torch.diagonal(Q.T @ law.cov @ Q) / LAM  # (d,)
    assert ((per_direction > 0.48) & (per_direction < 0.5)).all()  # measured 0.486 .. 0.497


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_float32_samples_match_float64(kind, prediction):
    # the float32 path divides a rounded eps by sqrt(abar_{T-1}) = 0.0064 (linear) or 4.9e-5
    # (cosine); measured worst change: 7.5e-5 data standard deviations (cosine, eps, 50 steps)
    s = _schedule(kind, prediction)
    o = GaussianOracle(MU, COV, s)
    x_T = torch.randn(500, D, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    x64 = sample_with(s, o, sampler="ddim", steps=50, n=500, x_T=x_T)
    x32 = sample_with(s, o, sampler="ddim", steps=50, n=500, x_T=x_T.float())
    assert x32.dtype == torch.float32
    assert ((x32.double() - x64).abs() / COV.diagonal().sqrt()).max() < 5e-4


# error propagation: a denoiser error of size delta (per component, in the output's units)

# End-to-end gain |x0 with error - x0 exact| / delta (RMS), DDIM 50 steps from x_T at t = 999
# (the study's sampler), this data, bias direction all ones; closed form (Monte Carlo agrees):
#                                       linear: eps     x0     | cosine: eps     x0
#   bias at every step                          5.54    4.47   |         592.5   5.07
#   fresh noise at every step                   0.946   1.50   |         649     1.49
#   bias at the first step only (t = 999)       0.204   0.0013 |         588     0.029
#   x0 error implied at t = 999 (s / a)         157     1      |         20291   1
# DDPM, 1000 steps (linear): bias 2.97 (eps) vs 8.99 (x0); noise 0.125 vs 1.42.
# On the linear schedule the 157-fold x0 error of an eps-prediction at t = 999 does not reach the
# sample: DDIM rebuilds x_{t_prev} = a' x0_hat + s' eps_hat with a' = 0.0077, so the first step
# passes on only (a'/a - 1) s delta ~ 0.2 delta; a systematic eps error costs a little more than an
# x0 error (5.5 vs 4.5), a random one less (0.95 vs 1.5). On the cosine schedule, whose clipped last
# beta makes sqrt(abar_{T-1}) = 4.9e-5 while sqrt(abar_979) = 0.031, the first DDIM step multiplies an
# eps error by ~600.

def _gain(kind, prediction, **kwargs):
    return error_amplification(
        _schedule(kind, prediction), sampler="ddim", steps=50, mean=MU, cov=COV, error=1e-2, n_samples=256, **kwargs
    )


@pytest.mark.parametrize("kind", KINDS)
def test_ddim_error_amplification_eps_vs_x0(kind):
    eps, x0 = _gain(kind, "eps"), _gain(kind, "x0")
    eps_noise, x0_noise = _gain(kind, "eps", error_kind="noise"), _gain(kind, "x0", error_kind="noise")
    for r in (eps, x0):
        assert r["end_to_end"] == pytest.approx(r["exact_end_to_end"], rel=1e-6)  # a bias is a fixed shift
    for r in (eps_noise, x0_noise):
        assert r["end_to_end"] == pytest.approx(r["exact_end_to_end"], rel=0.08)  # 1536 values: SE ~ 2 %
    if kind == "linear":
        assert eps["exact_end_to_end"] == pytest.approx(5.54, rel=0.01)
        assert x0["exact_end_to_end"] == pytest.approx(4.47, rel=0.01)
        assert 1.1 < eps["exact_end_to_end"] / x0["exact_end_to_end"] < 1.4  # a bias: eps slightly more sensitive
        assert eps_noise["exact_end_to_end"] == pytest.approx(0.946, rel=0.01)
        assert x0_noise["exact_end_to_end"] == pytest.approx(1.50, rel=0.01)  # random error: x0 more sensitive
    else:
        assert eps["exact_end_to_end"] > 100 * x0["exact_end_to_end"]  # 592.5 vs 5.07
        assert eps_noise["exact_end_to_end"] > 100 * x0_noise["exact_end_to_end"]  # 649 vs 1.49


@pytest.mark.parametrize(
    "kind, implied, eps_gain, x0_gain", [("linear", 157.4, 0.204, 0.0013), ("cosine", 20291, 588, 0.029)]
)
def test_first_step_eps_error_end_to_end(kind, implied, eps_gain, x0_gain):
    eps, x0 = _gain(kind, "eps", error_timesteps=[999]), _gain(kind, "x0", error_timesteps=[999])
    assert eps["first_step_x0_gain"] == pytest.approx(implied, rel=1e-3)  # sqrt(1 - abar) / sqrt(abar) at T - 1
    assert x0["first_step_x0_gain"] == 1.0
    assert eps["end_to_end"] == pytest.approx(eps_gain, rel=0.01)
    assert x0["end_to_end"] == pytest.approx(x0_gain, rel=0.02)
    assert eps["end_to_end"] == pytest.approx(eps["exact_end_to_end"], rel=1e-6)


def test_ddpm_error_amplification_eps_vs_x0():
    kw = dict(sampler="ddpm", steps=1000, mean=MU, cov=COV)
    exact = gaussian_moments(_schedule("linear"), **kw).mean  # the same for eps and x0: one oracle
    shift = {p: gaussian_moments(_schedule("linear", p), **kw, error=1e-2).mean - exact for p in PREDICTIONS}
    gains = {p: shift[p].norm().item() / math.sqrt(D) / 1e-2 for p in PREDICTIONS}
    assert gains["eps"] == pytest.approx(2.97, rel=0.01)
    assert gains["x0"] == pytest.approx(8.99, rel=0.01)  # ancestral sampling: x0 three times more sensitive
    # the library agrees with the closed form (fewer steps, to stay fast)
    for p in PREDICTIONS:
        s = _schedule("linear", p)
        r = error_amplification(s, sampler="ddpm", steps=50, mean=MU, cov=COV, error=1e-2, n_samples=64)
        assert r["end_to_end"] == pytest.approx(r["exact_end_to_end"], rel=1e-6)


def test_known_answer_table_columns_and_pass_rule():
    from ldm_core.study.sampler_check import known_answer_table

    t = known_answer_table(kinds=("linear",), samplers=(("ddim", 10),), n_samples=400)
    assert list(t.index) == [("linear", "ddim, 10 steps", "eps"), ("linear", "ddim, 10 steps", "x0")]
    assert t["library passes"].all()  # the library's DDIM is right: MC error within 3 standard errors
    assert (t["library vs closed form (MC)"] <= 3 * t["MC standard error"]).all()
    strict = known_answer_table(kinds=("linear",), samplers=(("ddim", 10),), n_samples=400, pass_se=1e-6)
    assert not strict["library passes"].any()  # a tolerance no sampling noise meets fails every row
