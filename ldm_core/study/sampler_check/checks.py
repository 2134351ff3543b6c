"""Every sampler run with the exact denoiser against the known answer: moments, sampler checks, error amplification,
and the known-answer table of chapter 07.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch

from ldm_core.models.schedule import NoiseSchedule
from ldm_core.pipeline import sample_latents
from .oracle import (GaussianLaw, GaussianOracle, _check_error, _check_moments, _check_sampler, _check_timesteps,
                     _coef_table, _coefs, _unit_rms)


class _DenoiserModel:
    """Duck-typed stand-in for BrainLDM in ``sample_latents``: a schedule and a ``predict``."""

    def __init__(self, schedule: NoiseSchedule, denoiser: Callable[[torch.Tensor, Any], torch.Tensor]) -> None:
        self.schedule = schedule
        self.denoiser = denoiser

    def predict(self, x_t: torch.Tensor, t: Any, cond: Any = None, *, guidance: float = 1.0) -> torch.Tensor:
        return self.denoiser(x_t, t)


# sampling

def _sample_shape(schedule: NoiseSchedule, denoiser: Callable[[torch.Tensor, Any], torch.Tensor], n: int,
                  shape: tuple[int, ...] | None) -> tuple[int, ...]:
    """Check ``n`` and that ``denoiser`` was built for ``schedule``; return the shape of one sample."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}.")
    if shape is None:
        if not hasattr(denoiser, "dim"):
            raise ValueError("shape is needed for a denoiser without a `dim` attribute; pass shape=(d,) or (C, h, w).")
        shape = (int(denoiser.dim),)
    own = getattr(denoiser, "schedule", schedule)
    same = own is schedule or (
        own.prediction == schedule.prediction and torch.equal(own.alphas_cumprod.cpu(), schedule.alphas_cumprod.cpu())
    )
    if not same:
        raise ValueError(
            f"the denoiser was built for another schedule ({own!r}) than the one sampled with ({schedule!r}); "
            "build it with the same schedule."
        )
    return shape


def sample_with(schedule: NoiseSchedule, denoiser: Callable[[torch.Tensor, Any], torch.Tensor], *, sampler: str,
                steps: int, n: int, generator: torch.Generator | None = None, shape: tuple[int, ...] | None = None,
                dtype: torch.dtype = torch.float64, x_T: torch.Tensor | None = None) -> torch.Tensor:
    """Draw samples with ``pipeline.sample_latents`` and an arbitrary denoiser.

    Parameters
    ----------
    schedule : NoiseSchedule
        Supplies ``timestep_pairs`` and the ``<sampler>_step`` rule.
    denoiser : callable
        ``denoiser(x_t, t) -> model output`` of the shape of x_t (eps or x0, per ``schedule.prediction``), e.g. a
        :class:`GaussianOracle`.
    sampler : {"ddim", "ddpm", "original"}
        As in ``sample_latents``.
    steps : int
        Reverse steps, in [1, n_train_steps].
    n : int
        Number of samples B.
    generator : torch.Generator, optional
        Source of the starting noise x_T ~ N(0, I) and of the per-step noise.
    shape : tuple of int, optional
        Shape of one sample; default ``(denoiser.dim,)``.
    dtype : torch.dtype, default torch.float64
        Dtype of the samples (the schedule's coefficients are cast to it).
    x_T : Tensor of shape (n, *shape), optional
        Starting points instead of N(0, I) draws (e.g. chosen inputs, to read off the affine map of a deterministic
        sampler); its dtype wins over ``dtype``.

    Returns
    -------
    x0 : Tensor of shape (n, *shape)

    Raises
    ------
    ValueError
        On an unknown sampler, a non-positive ``n``, a missing ``shape`` for a denoiser without ``dim``, an ``x_T``
        not of shape (n, *shape), a denoiser built for another schedule, or a bad ``steps`` (raised by
        ``schedule.inference_timesteps``).
    """
    _check_sampler(sampler)
    shape = _sample_shape(schedule, denoiser, n, shape)
    schedule.inference_timesteps(steps)  # raises on a bad step count before any work
    if x_T is None:
        x_T = torch.randn((n, *shape), generator=generator, dtype=dtype)  # (n, *shape)
    elif tuple(x_T.shape) != (n, *shape):
        raise ValueError(f"x_T must have shape (n, *shape) = {(n, *shape)}, got {tuple(x_T.shape)}.")
    model = _DenoiserModel(schedule, denoiser)
    return sample_latents(model, None, x_T=x_T, steps=steps, sampler=sampler, generator=generator)


# closed form

def _propagate_moments(schedule: NoiseSchedule, sampler: str, steps: int, lam: torch.Tensor, nu: torch.Tensor,
                       bias: torch.Tensor, r2: float, on: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean m (d,) and variances v (d,) of U^T x in the eigenbasis, from x_T ~ N(0, I) through every step."""
    on = None if on is None else set(on.tolist())  # timesteps with the error; None = all
    m = torch.zeros(lam.numel(), dtype=torch.float64)  # mean of U^T x_T
    v = torch.ones(lam.numel(), dtype=torch.float64)  # variances of U^T x_T (its covariance stays diagonal)
    x0_pred = schedule.prediction == "x0"
    table = _coef_table(schedule)
    for t, t_prev in schedule.timestep_pairs(steps):
        a, s, abar = _coefs(table, t)
        a_p, s_p, abar_p = _coefs(table, t_prev)
        M = a**2 * lam + s**2  # (d,): Var of x_t per eigen-direction under the data
        # model output = P * u + q + xi, u = U^T x_t, xi ~ N(0, r2)
        P, q = (a * lam / M, nu * s**2 / M) if x0_pred else (s / M, -a * s * nu / M)
        err_on = on is None or t in on
        q = q + bias if err_on else q
        r2_t = r2 if err_on else 0.0
        if x0_pred:  # x0_hat = out; eps_hat = (u - a * out) / s
            Px, qx, nx = P, q, 1.0
            Pe, qe, ne = (1 - a * P) / s, -a * q / s, -a / s
        else:  # eps_hat = out; x0_hat = (u - s * out) / a
            Pe, qe, ne = P, q, 1.0
            Px, qx, nx = (1 - s * P) / a, -s * q / a, -s / a
        if sampler == "ddim":
            c_x, c_u, c_e, var = a_p, 0.0, s_p, 0.0
        elif sampler == "ddpm":
            alpha = abar / abar_p
            beta = 1 - alpha
            c_x = math.sqrt(abar_p) * beta / (1 - abar)
            c_u = math.sqrt(alpha) * (1 - abar_p) / (1 - abar)
            c_e, var = 0.0, max(beta * (1 - abar_p) / (1 - abar), 0.0)
        else:
            c_x, c_u, c_e, var = a_p, 0.0, 0.0, s_p**2
        K = c_x * Px + c_u + c_e * Pe  # (d,): gain on u
        L = c_x * qx + c_e * qe  # (d,): offset
        N = c_x * nx + c_e * ne  # gain on the output noise xi
        m = K * m + L
        v = K**2 * v + N**2 * r2_t + var
    return m, v


def gaussian_moments(schedule: NoiseSchedule, *, sampler: str, steps: int, mean: Any, cov: Any, error: float = 0.0,
                     error_kind: str = "bias", error_direction: Any = None, error_timesteps: Any = None) -> GaussianLaw:
    """Exact law of the sampler's output with the Gaussian oracle, in closed form.

    Each step maps x_t to x_{t_prev} = c_x * x0_hat + c_u * x_t + c_e * eps_hat + sigma * z (Notation -> paper:
    a, s -> sqrt(abar_t), sqrt(1 - abar_t); a', s' -> the same at t_prev; abar_prev = 1 at t_prev = -1):

    - "ddim" (Song et al. 2021, eq. 12, eta = 0): c_x = a', c_u = 0, c_e = s', sigma = 0.
    - "ddpm" (Ho et al. 2020, eqs. 6-7, stride t -> t_prev): with alpha = abar_t / abar_prev, beta = 1 - alpha:
      c_x = sqrt(abar_prev) beta / (1 - abar_t), c_u = sqrt(alpha) (1 - abar_prev) / (1 - abar_t), c_e = 0,
      sigma^2 = beta (1 - abar_prev) / (1 - abar_t).
    - "original" (the report's): c_x = a', c_u = 0, c_e = 0, sigma = s'.

    The oracle output is affine in x_t and diagonal in the eigenbasis of cov, so, starting from x_T ~ N(0, I), mean
    and per-eigen-direction variance follow scalar recursions. These are written from the formulas above, not by
    calling ``schedule.py``'s steps, so that they check them.

    Parameters
    ----------
    schedule : NoiseSchedule
        Timesteps (``timestep_pairs``), coefficients (its float32 buffers, used in float64) and ``prediction``.
    sampler : {"ddim", "ddpm", "original"}
    steps : int
        Reverse steps, in [1, n_train_steps].
    mean : array-like of shape (d,)
    cov : array-like of shape (d, d)
    error, error_kind, error_direction, error_timesteps
        The denoiser error, as in :class:`GaussianOracle`.

    Returns
    -------
    GaussianLaw
        ``(mean (d,), cov (d, d))`` of the final sample x0, float64.

    Raises
    ------
    ValueError
        On an unknown sampler, bad moments or a bad error specification (as :class:`GaussianOracle`), or a bad
        ``steps``.
    """
    _check_sampler(sampler)
    mu, Sigma = _check_moments(mean, cov)
    error = _check_error(error, error_kind)
    d = mu.numel()
    lam, U = torch.linalg.eigh(Sigma)  # (d,), (d, d)
    nu = U.T @ mu  # (d,): the data mean in the eigenbasis
    bias = U.T @ _unit_rms(error_direction, d) * (error if error_kind == "bias" else 0.0)  # (d,)
    r2 = error**2 if error_kind == "noise" else 0.0  # variance of the output noise per component
    on = _check_timesteps(error_timesteps, schedule)
    m, v = _propagate_moments(schedule, sampler, steps, lam, nu, bias, r2, on)
    return GaussianLaw(U @ m, (U * v) @ U.T)


# checks

def _errors(mean: torch.Tensor, cov: torch.Tensor, mu: torch.Tensor, Sigma: torch.Tensor) -> tuple[float, float, float]:
    """(max |mean - mu| / sqrt(diag Sigma), ||cov - Sigma||_F / ||Sigma||_F, tr cov / tr Sigma)."""
    mean_error = ((mean - mu).abs() / Sigma.diagonal().sqrt()).max().item()
    cov_error = (torch.linalg.matrix_norm(cov - Sigma) / torch.linalg.matrix_norm(Sigma)).item()
    return mean_error, cov_error, (cov.trace() / Sigma.trace()).item()


def _run_labels(schedule: NoiseSchedule, sampler: str, steps: int) -> dict[str, Any]:
    """The ``sampler``, ``steps``, ``prediction`` and ``kind`` entries of a check's result."""
    return {"sampler": sampler, "steps": steps, "prediction": schedule.prediction, "kind": schedule.kind}


def _moment_report(sample_mean: torch.Tensor, sample_cov: torch.Tensor, law: GaussianLaw, mu: torch.Tensor,
                   Sigma: torch.Tensor, n_samples: int) -> dict[str, Any]:
    """The moments and errors of :func:`check_sampler`'s result, from the Monte Carlo moments and the closed form."""
    mean_error, cov_error, variance_ratio = _errors(sample_mean, sample_cov, mu, Sigma)
    exact_mean_error, exact_cov_error, exact_variance_ratio = _errors(law.mean, law.cov, mu, Sigma)
    mc_mean_error = ((sample_mean - law.mean).abs() / law.cov.diagonal().sqrt()).max().item()
    mc_cov_error = (torch.linalg.matrix_norm(sample_cov - law.cov) / torch.linalg.matrix_norm(law.cov)).item()
    fro2 = torch.linalg.matrix_norm(Sigma).item() ** 2
    return {
        "sample_mean": sample_mean,
        "sample_cov": sample_cov,
        "mean_error": mean_error,
        "cov_error": cov_error,
        "variance_ratio": variance_ratio,
        "mean_error_se": 1 / math.sqrt(n_samples),
        "cov_error_se": math.sqrt((fro2 + Sigma.trace().item() ** 2) / (n_samples - 1) / fro2),
        "variance_ratio_se": math.sqrt(2 * fro2 / (n_samples - 1)) / Sigma.trace().item(),
        "exact_mean": law.mean,
        "exact_cov": law.cov,
        "exact_mean_error": exact_mean_error,
        "exact_cov_error": exact_cov_error,
        "exact_variance_ratio": exact_variance_ratio,
        "mc_mean_error": mc_mean_error,
        "mc_cov_error": mc_cov_error,
    }


def check_sampler(schedule: NoiseSchedule, *, sampler: str, steps: int, mean: Any, cov: Any, n_samples: int, seed: int,
                  denoiser_error: float = 0.0, error_kind: str = "bias",
                  dtype: torch.dtype = torch.float64) -> dict[str, Any]:
    """Sample Gaussian data with the oracle and compare with the data law and the closed form.

    Parameters
    ----------
    schedule : NoiseSchedule
    sampler : {"ddim", "ddpm", "original"}
    steps : int
        Reverse steps, in [1, n_train_steps].
    mean : array-like of shape (d,)
    cov : array-like of shape (d, d)
    n_samples : int
        Number n of samples drawn, >= 2.
    seed : int
        Seeds the starting noise and the sampler's noise (and, at ``seed + 1``, the oracle's "noise" error).
    denoiser_error : float, default 0.0
        Size delta of the error added to the oracle output (see :class:`GaussianOracle`).
    error_kind : {"bias", "noise"}, default "bias"
    dtype : torch.dtype, default torch.float64
        Dtype of the samples.

    Returns
    -------
    dict with
        ``sample_mean`` (d,), ``sample_cov`` (d, d) : float64 Tensors, the Monte Carlo moments;
        ``mean_error`` : float, max_i |mean_i - mu_i| / sqrt(Sigma_ii);
        ``cov_error`` : float, ||cov - Sigma||_F / ||Sigma||_F;
        ``variance_ratio`` : float, tr(cov) / tr(Sigma);
        ``mean_error_se`` : float, 1 / sqrt(n), the standard error of each term of ``mean_error``;
        ``cov_error_se`` : float, sqrt((||Sigma||_F^2 + tr(Sigma)^2) / (n - 1)) / ||Sigma||_F, the RMS ``cov_error``
        of n exact draws from N(mu, Sigma);
        ``variance_ratio_se`` : float, sqrt(2 tr(Sigma^2) / (n - 1)) / tr(Sigma), the standard error of
        ``variance_ratio`` for such draws (relative, so it holds for a shrunk law of the same shape too);
        ``exact_mean``, ``exact_cov`` : float64 Tensors, the closed-form law (:func:`gaussian_moments`);
        ``exact_mean_error``, ``exact_cov_error``, ``exact_variance_ratio`` : floats, the same errors for the closed
        form (the sampler's bias, free of sampling noise);
        ``mc_mean_error``, ``mc_cov_error`` : floats, the Monte Carlo moments against the closed form, in the same
        units (only sampling error if the library's steps are right);
        ``sampler``, ``steps``, ``prediction``, ``kind``, ``n_samples``.

    Raises
    ------
    ValueError
        On ``n_samples < 2``, and as :func:`sample_with` and :func:`gaussian_moments`.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 2:
        raise ValueError(f"n_samples must be an int >= 2 (a covariance needs two samples), got {n_samples!r}.")
    oracle = GaussianOracle(mean, cov, schedule, error=denoiser_error, error_kind=error_kind, seed=seed + 1)
    mu, Sigma = oracle.mean, oracle.cov
    generator = torch.Generator().manual_seed(int(seed))
    x = sample_with(schedule, oracle, sampler=sampler, steps=steps, n=n_samples, generator=generator, dtype=dtype)
    x = x.double().reshape(n_samples, -1)  # (n, d)
    sample_mean = x.mean(dim=0)  # (d,)
    sample_cov = torch.cov(x.T)  # (d, d), unbiased
    law = gaussian_moments(schedule, sampler=sampler, steps=steps, mean=mu, cov=Sigma, error=denoiser_error,
                           error_kind=error_kind)
    return {**_moment_report(sample_mean, sample_cov, law, mu, Sigma, n_samples),
            **_run_labels(schedule, sampler, steps), "n_samples": n_samples}


def _exact_end_to_end(schedule: NoiseSchedule, exact: GaussianOracle, *, sampler: str, steps: int, error: float,
                      error_kind: str, error_timesteps: Any) -> float:
    """The closed-form end-to-end shift (bias) or spread (noise) per delta, RMS per component."""
    kw = dict(sampler=sampler, steps=steps, mean=exact.mean, cov=exact.cov)
    law0 = gaussian_moments(schedule, **kw)
    law1 = gaussian_moments(schedule, **kw, error=error, error_kind=error_kind, error_timesteps=error_timesteps)
    d = exact.dim
    if error_kind == "bias":
        return (law1.mean - law0.mean).norm().item() / math.sqrt(d) / error
    return math.sqrt(max((law1.cov.trace() - law0.cov.trace()).item(), 0.0) / d) / error


def error_amplification(schedule: NoiseSchedule, *, sampler: str, steps: int, mean: Any, cov: Any, error: float,
                        error_kind: str = "bias", error_timesteps: Any = None, n_samples: int = 256,
                        seed: int = 0) -> dict[str, Any]:
    """How much a denoiser error of size delta moves the final sample, in units of delta.

    Two runs share the starting noise and the sampler's noise; one uses the exact oracle, the other the oracle plus
    the error. Their difference is the error's end-to-end effect: for "bias" a fixed shift, for "noise" a zero-mean
    spread.

    Parameters
    ----------
    schedule : NoiseSchedule
    sampler : {"ddim", "ddpm", "original"}
    steps : int
    mean : array-like of shape (d,)
    cov : array-like of shape (d, d)
    error : float
        delta > 0, in the units of the model output (eps or x0), per component.
    error_kind : {"bias", "noise"}, default "bias"
    error_timesteps : sequence of int, optional
        Timesteps at which the error is added; default all (see :class:`GaussianOracle`).
    n_samples : int, default 256
        Paired samples drawn.
    seed : int, default 0
        Seeds both runs' starting and sampler noise (and, at ``seed + 1``, the "noise" error).

    Returns
    -------
    dict with
        ``end_to_end`` : float, RMS over samples and components of (x0_with_error - x0_exact) / delta, Monte Carlo
        through the library;
        ``exact_end_to_end`` : float, the same from :func:`gaussian_moments` (for "bias" the norm of the mean shift
        / sqrt(d); for "noise" sqrt(mean added variance));
        ``first_step_x0_gain`` : float, the size of the x0 error implied by the model output at the first step
        t = T-1, per delta: sqrt(1 - abar) / sqrt(abar) for eps, 1 for x0;
        ``data_std`` : float, sqrt(tr Sigma / d), the RMS data standard deviation, for scale;
        ``sampler``, ``steps``, ``prediction``, ``kind``, ``error_kind``.

    Raises
    ------
    ValueError
        On ``error <= 0``, and as :func:`sample_with` and :func:`gaussian_moments`.
    """
    if not float(error) > 0:
        raise ValueError(f"error must be > 0 to measure its amplification, got {error!r}.")
    exact = GaussianOracle(mean, cov, schedule)
    noisy = GaussianOracle(mean, cov, schedule, error=error, error_kind=error_kind, error_timesteps=error_timesteps,
                           seed=seed + 1)
    runs = []
    for oracle in (exact, noisy):
        generator = torch.Generator().manual_seed(int(seed))
        runs.append(sample_with(schedule, oracle, sampler=sampler, steps=steps, n=n_samples, generator=generator))
    diff = (runs[1] - runs[0]) / error  # (n, d)
    exact_e2e = _exact_end_to_end(schedule, exact, sampler=sampler, steps=steps, error=error, error_kind=error_kind,
                                  error_timesteps=error_timesteps)
    a, s, _ = _coefs(_coef_table(schedule), schedule.n_train_steps - 1)
    return {"end_to_end": diff.pow(2).mean().sqrt().item(), "exact_end_to_end": exact_e2e,
            "first_step_x0_gain": s / a if schedule.prediction == "eps" else 1.0,
            "data_std": math.sqrt(exact.cov.trace().item() / exact.dim), **_run_labels(schedule, sampler, steps),
            "error_kind": error_kind}


def known_answer_table(*, kinds=("linear", "cosine"), samplers=(("ddpm", 1000), ("ddim", 50), ("original", 50)),
                       d: int = 6, n_samples: int = 2000, seed: int = 0, bias: float = 0.05,
                       pass_se: float = 3.0) -> "pd.DataFrame":
    """Every sampler and parameterisation against an exact Gaussian denoiser, as one table for a chapter.

    The data are N(mu, Sigma) in ``d`` dimensions with eigenvalues from 0.1 to 3 (a fixed random rotation) and a mean
    of size about 1. For each schedule kind, sampler (with its step count) and prediction ("eps", "x0"): the
    closed-form covariance error and variance ratio of the sampler's output law (its own bias, free of sampling
    noise), the Monte Carlo error of the library's samples against that closed form (only sampling error if the
    library is right) with the RMS error of that statistic for exact draws, whether the library passes (its MC
    error within ``pass_se`` such standard errors), and the end-to-end amplification of a small fixed bias
    ``bias`` added to the denoiser's output at every step (RMS shift of the final sample per unit of bias).

    Returns
    -------
    DataFrame
        Index (schedule, sampler, prediction); columns "covariance error (closed form)", "variance ratio (closed
        form)", "library vs closed form (MC)", "MC standard error", "library passes" (bool), "bias amplification".
    """
    import pandas as pd

    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    cov = q @ torch.diag(torch.linspace(0.1, 3.0, d, dtype=torch.float64)) @ q.T
    mean = torch.randn(d, generator=g, dtype=torch.float64)
    rows = {}
    for kind in kinds:
        for sampler, steps in samplers:
            for prediction in ("eps", "x0"):
                sched = NoiseSchedule(kind=kind, prediction=prediction)
                c = check_sampler(sched, sampler=sampler, steps=steps, mean=mean, cov=cov, n_samples=n_samples,
                                  seed=seed)
                amp = error_amplification(sched, sampler=sampler, steps=steps, mean=mean, cov=cov, error=bias,
                                          n_samples=256, seed=seed)
                rows[(kind, f"{sampler}, {steps} steps", prediction)] = {
                    "covariance error (closed form)": c["exact_cov_error"],
                    "variance ratio (closed form)": c["exact_variance_ratio"],
                    "library vs closed form (MC)": c["mc_cov_error"],
                    "MC standard error": c["cov_error_se"],
                    "library passes": bool(c["mc_cov_error"] <= pass_se * c["cov_error_se"]),
                    "bias amplification": amp["exact_end_to_end"],
                }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["schedule", "sampler", "prediction"])
