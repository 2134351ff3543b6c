"""Known-answer tests of the samplers: Gaussian data, whose optimal denoiser is exact.

If the data are Gaussian, x0 ~ N(mu, Sigma) in d dimensions, the forward process
x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps (Ho et al. 2020, eq. 4) makes (x0, x_t)
jointly Gaussian, and the minimum-MSE denoiser -- the function a perfectly trained
network converges to -- is the conditional mean, in closed form. Writing
a = sqrt(abar_t), s = sqrt(1 - abar_t) and M_t = a^2 Sigma + s^2 I = Cov(x_t):

    E[x0 | x_t]  = mu + a Sigma M_t^{-1} (x_t - a mu),
    E[eps | x_t] = s M_t^{-1} (x_t - a mu) = (x_t - a E[x0 | x_t]) / s,

so the eps- and x0-parameterisations of the oracle are the same function, related by
``NoiseSchedule.predict_eps`` / ``predict_x0``. With Sigma = U diag(lam) U^T both are
diagonal in the eigenbasis: the x0 gain is a lam / (a^2 lam + s^2), the eps gain
s / (a^2 lam + s^2). :class:`GaussianOracle` is that denoiser, for the schedule's
``prediction``, optionally with a denoiser error of known size added to its output.

Every sampler step of :class:`~ldm_core.models.schedule.NoiseSchedule` is affine in
x_t and in its fresh noise, and so is the oracle; a Gaussian start N(0, I) therefore
stays Gaussian, and the law of the sampler's output is known exactly.
:func:`gaussian_moments` propagates mean and covariance through the steps in closed
form, per eigen-direction of Sigma, with the step coefficients written out here from
the papers -- DDIM eq. 12 with eta = 0 (Song et al. 2021), the ancestral posterior
q(x_{t_prev} | x_t, x0) (Ho et al. 2020, eqs. 6-7, any stride) and the report's
"original" re-noising step -- not by calling ``schedule.py``'s step code. That gives
two independent checks of each sampler:

- Monte Carlo through the library (:func:`sample_with`) must agree with the closed
  form within sampling error: a disagreement is a bug in ``schedule.py`` or
  ``pipeline.py`` (or here).
- The closed form against (mu, Sigma) measures the sampler's own bias (too few
  steps, the prior mismatch x_T ~ N(0, I), the x0-predicting last step) without
  sampling noise. :func:`check_sampler` reports both.

:func:`error_amplification` adds a denoiser error of size delta to the oracle's
output and measures, on paired runs (same starting noise, same sampler noise), how
far the final sample moves, in units of delta.

Loop reuse: :func:`sample_with` does not write the sampling loop again. It wraps the
denoiser in a duck-typed stand-in for ``BrainLDM`` (``schedule`` plus
``predict(x, t, cond, guidance=...)``, the two things the loop touches) and calls
:func:`ldm_core.pipeline.sample_latents`, so the loop under test is the loop that
reconstructs the images.

Precision: the schedule is float32 buffers. The oracle and the closed form read the
same buffers (``sqrt_alphas_cumprod``, ``sqrt_one_minus_alphas_cumprod``, and
``alphas_cumprod`` where ``ddpm_step`` does) and compute in float64, so the oracle is
exact for ``q_sample`` as implemented, even though a^2 + s^2 - 1 is up to 8e-8 there.
Samples run in float64 by default (``NoiseSchedule._at`` casts the coefficients to the
sample's dtype); in float32 the eps-parameterisation's first step divides a rounded
eps by sqrt(abar_{T-1}) (0.0064 linear, 4.9e-5 cosine), which the tests show changes
the final samples by well under their sampling error.

We wrote this rather than take a kept library because none offers an exact
oracle for a given schedule and sampler; the closed forms are a page.

References
----------
- Ho, Jain & Abbeel 2020, "Denoising diffusion probabilistic models": forward
  process (eq. 4), posterior q(x_{t-1} | x_t, x0) and its "beta-tilde" variance
  (eqs. 6-7), the eps-parameterisation (eq. 11).
- Song, Meng & Ermon 2021, "Denoising diffusion implicit models": the generalised
  step (eq. 12), eta = 0, sampling on a sub-sequence of timesteps.
- Nichol & Dhariwal 2021, "Improved denoising diffusion probabilistic models":
  the cosine schedule.

Modules: ``oracle``, ``checks``. Every name is imported from here.
"""
from .oracle import (ERROR_KINDS, GaussianOracle, GaussianLaw)
from .checks import (known_answer_table, sample_with, gaussian_moments, check_sampler, error_amplification)

__all__ = ['known_answer_table', 'ERROR_KINDS', 'GaussianOracle', 'GaussianLaw', 'sample_with', 'gaussian_moments',
           'check_sampler', 'error_amplification']
