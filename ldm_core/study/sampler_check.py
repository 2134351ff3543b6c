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
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import torch

from ldm_core.models.schedule import NoiseSchedule
from ldm_core.pipeline import SAMPLERS, sample_latents

__all__ = [
    "known_answer_table",
    "ERROR_KINDS",
    "GaussianOracle",
    "GaussianLaw",
    "sample_with",
    "gaussian_moments",
    "check_sampler",
    "error_amplification",
]

ERROR_KINDS = ("bias", "noise")  # denoiser error added to the oracle output: fixed offset, or fresh noise per call


# helpers

def _check_moments(mean: Any, cov: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """mean (d,) and cov (d, d) as float64, checked: finite, cov symmetric positive definite."""
    mean = torch.as_tensor(mean, dtype=torch.float64).detach().cpu()
    cov = torch.as_tensor(cov, dtype=torch.float64).detach().cpu()
    if mean.ndim != 1 or mean.numel() < 1:
        raise ValueError(f"mean must have shape (d,) with d >= 1, got shape {tuple(mean.shape)}.")
    d = mean.numel()
    if cov.shape != (d, d):
        raise ValueError(
            f"cov must have shape (d, d) = ({d}, {d}) to match mean, got shape {tuple(cov.shape)}; "
            "for a diagonal covariance pass torch.diag(variances)."
        )
    if not (torch.isfinite(mean).all() and torch.isfinite(cov).all()):
        raise ValueError("mean and cov must be finite, got NaN or infinite values.")
    if not torch.allclose(cov, cov.T, rtol=0, atol=1e-12 * max(1.0, cov.abs().max().item())):
        raise ValueError("cov must be symmetric; pass (cov + cov.T) / 2.")
    lam_min = torch.linalg.eigvalsh(cov).min().item()
    if lam_min <= 0:
        raise ValueError(f"cov must be positive definite, got smallest eigenvalue {lam_min:.3g}.")
    return mean, cov


def _check_sampler(sampler: str) -> None:
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}.")


def _check_error(error: float, error_kind: str) -> float:
    if error_kind not in ERROR_KINDS:
        raise ValueError(f"error_kind must be one of {ERROR_KINDS}, got {error_kind!r}.")
    error = float(error)
    if not math.isfinite(error) or error < 0:
        raise ValueError(f"error must be a finite number >= 0 (the size delta of the denoiser error), got {error!r}.")
    return error


def _unit_rms(direction: Any, d: int) -> torch.Tensor:
    """The bias direction e (d,), float64, scaled to ||e|| / sqrt(d) = 1; default all ones."""
    if direction is None:
        return torch.ones(d, dtype=torch.float64)
    e = torch.as_tensor(direction, dtype=torch.float64).detach().cpu().reshape(-1)  # (d,)
    if e.numel() != d or not torch.isfinite(e).all() or e.norm() == 0:
        raise ValueError(f"error_direction must be a finite non-zero vector of length d={d}, got {tuple(e.shape)}.")
    return e * math.sqrt(d) / e.norm()


def _check_timesteps(timesteps: Any, schedule: NoiseSchedule) -> torch.Tensor | None:
    """The error timesteps as int64 (k,), in [0, n_train_steps), or None for all."""
    if timesteps is None:
        return None
    T = schedule.n_train_steps
    ts = torch.as_tensor(timesteps).long().cpu().reshape(-1)  # (k,)
    if ts.numel() == 0 or ts.min() < 0 or ts.max() >= T:
        raise ValueError(
            f"error_timesteps must list timesteps in [0, {T}), got {ts.tolist()}; "
            "pass None to add the error at every step."
        )
    return ts


def _coef_table(schedule: NoiseSchedule) -> list[tuple[float, float, float]]:
    """(a, s, abar) = (sqrt(abar_t), sqrt(1 - abar_t), abar_t) for t = 0 .. T-1, as Python floats (float64)
    from the float32 buffers, in the order ``q_sample``/``ddim_step`` (sqrt buffers) and ``ddpm_step``
    (``alphas_cumprod``) read them. Index -1 is not used: t = -1 means (1, 0, 1), see :func:`_coefs`."""
    return list(
        zip(
            schedule.sqrt_alphas_cumprod.detach().cpu().double().tolist(),
            schedule.sqrt_one_minus_alphas_cumprod.detach().cpu().double().tolist(),
            schedule.alphas_cumprod.detach().cpu().double().tolist(),
        )
    )


def _coefs(table: list[tuple[float, float, float]], t: int) -> tuple[float, float, float]:
    """(a, s, abar) at timestep t from :func:`_coef_table`; t = -1 (past the last step) gives (1, 0, 1)."""
    return (1.0, 0.0, 1.0) if t < 0 else table[t]


class GaussianLaw(NamedTuple):
    """A Gaussian law on R^d.

    Attributes
    ----------
    mean : Tensor of shape (d,), float64
    cov : Tensor of shape (d, d), float64
    """

    mean: torch.Tensor
    cov: torch.Tensor


# oracle

class GaussianOracle:
    """The exact minimum-MSE denoiser for x0 ~ N(mean, cov) under ``schedule``.

    Called as ``oracle(x_t, t)`` it returns E[eps | x_t] or E[x0 | x_t], per
    ``schedule.prediction``, plus an optional error of size ``error``.

    Parameters
    ----------
    mean : array-like of shape (d,)
        mu, the data mean.
    cov : array-like of shape (d, d)
        Sigma, symmetric positive definite (use ``torch.diag(v)`` for a diagonal one).
    schedule : NoiseSchedule
        Supplies the forward process (its float32 sqrt buffers, as ``q_sample`` uses)
        and ``prediction``.
    error : float, default 0.0
        Size delta >= 0 of the denoiser error, in the units of the model output
        (eps or x0), per component: RMS over components for "bias", standard
        deviation for "noise".
    error_kind : {"bias", "noise"}, default "bias"
        "bias": add delta * e at every call, e = ``error_direction`` scaled to unit RMS
        (a systematic error). "noise": add delta * z, z ~ N(0, I) drawn fresh at every
        call from the oracle's own generator (so the sampler's noise is unchanged).
    error_direction : array-like of shape (d,), optional
        Direction of the "bias" error; default all ones (every component off by +delta).
    error_timesteps : sequence of int, optional
        Timesteps t at which the error is added; default all (e.g. ``[T - 1]``: only
        at the first step of a sampler).
    seed : int, default 0
        Seeds the generator of the "noise" error.

    Attributes
    ----------
    mean : Tensor of shape (d,), float64
    cov : Tensor of shape (d, d), float64
    dim : int
        d.
    schedule : NoiseSchedule

    Raises
    ------
    ValueError
        On a mean or cov of the wrong shape, non-finite, asymmetric or not positive
        definite; an unknown ``error_kind``; a negative or non-finite ``error``; a bad
        ``error_direction``; ``error_timesteps`` outside [0, n_train_steps).
    """

    def __init__(
        self,
        mean: Any,
        cov: Any,
        schedule: NoiseSchedule,
        *,
        error: float = 0.0,
        error_kind: str = "bias",
        error_direction: Any = None,
        error_timesteps: Any = None,
        seed: int = 0,
    ) -> None:
        self.mean, self.cov = _check_moments(mean, cov)
        self.dim = int(self.mean.numel())
        self.schedule = schedule
        self.error = _check_error(error, error_kind)
        self.error_kind = error_kind
        self.error_direction = _unit_rms(error_direction, self.dim)  # (d,), unit RMS
        self.error_timesteps = _check_timesteps(error_timesteps, schedule)
        self._generator = torch.Generator().manual_seed(int(seed))
        self._lam, self._U = torch.linalg.eigh(self.cov)  # (d,), (d, d): cov = U diag(lam) U^T
        self._a = schedule.sqrt_alphas_cumprod.detach().cpu().double()  # (T,), read once: the buffers are constant
        self._s = schedule.sqrt_one_minus_alphas_cumprod.detach().cpu().double()  # (T,)

    def __repr__(self) -> str:
        return (
            f"GaussianOracle(dim={self.dim}, prediction={self.schedule.prediction!r}, "
            f"error={self.error}, error_kind={self.error_kind!r})"
        )

    def _a_s(self, t: torch.Tensor | int, B: int) -> tuple[torch.Tensor, torch.Tensor]:
        """a = sqrt(abar_t), s = sqrt(1 - abar_t) as float64 (B, 1), from the schedule's buffers."""
        T = self.schedule.n_train_steps
        t = torch.as_tensor(t).long().cpu().reshape(-1).expand(B)  # (B,)
        if t.min() < 0 or t.max() >= T:
            raise ValueError(f"t must be in [0, {T}), got values in [{int(t.min())}, {int(t.max())}].")
        return self._a[t][:, None], self._s[t][:, None]  # (B, 1) each

    def _flat(self, x_t: torch.Tensor) -> torch.Tensor:
        B = x_t.shape[0]
        x = x_t.detach().cpu().double().reshape(B, -1)  # (B, d)
        if x.shape[1] != self.dim:
            raise ValueError(
                f"x_t has {x.shape[1]} values per sample (shape {tuple(x_t.shape)}) but the oracle's data "
                f"have d={self.dim}; pass x_t of shape (B, {self.dim}) or (B, C, h, w) with C*h*w = {self.dim}."
            )
        return x

    def posterior(self, x_t: torch.Tensor, t: torch.Tensor | int) -> tuple[torch.Tensor, torch.Tensor]:
        """E[x0 | x_t] and E[eps | x_t], exact, in float64.

        Parameters
        ----------
        x_t : Tensor of shape (B, d) or (B, C, h, w) with C*h*w = d
        t : int or Tensor of shape (B,), int64 in [0, n_train_steps)

        Returns
        -------
        x0, eps : Tensors of shape (B, d), float64

        Raises
        ------
        ValueError
            If x_t does not hold d values per sample or t is out of range.
        """
        x = self._flat(x_t)  # (B, d)
        a, s = self._a_s(t, x.shape[0])  # (B, 1) each
        m = a**2 * self._lam + s**2  # (B, d): eigenvalues of Cov(x_t) = a^2 Sigma + s^2 I
        y = (x - a * self.mean) @ self._U  # (B, d): x_t - a mu in the eigenbasis of Sigma
        x0 = self.mean + (a * self._lam / m * y) @ self._U.T  # (B, d)
        eps = (s / m * y) @ self._U.T  # (B, d)
        return x0, eps

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        """The model output at (x_t, t): E[eps | x_t] or E[x0 | x_t], plus the error.

        Parameters
        ----------
        x_t : Tensor of shape (B, d) or (B, C, h, w) with C*h*w = d
        t : int or Tensor of shape (B,), int64 in [0, n_train_steps)

        Returns
        -------
        Tensor of the shape, dtype and device of x_t

        Raises
        ------
        ValueError
            As :meth:`posterior`.
        """
        x0, eps = self.posterior(x_t, t)
        out = eps if self.schedule.prediction == "eps" else x0  # (B, d)
        if self.error > 0:
            if self.error_kind == "bias":
                err = self.error_direction.expand_as(out)  # (B, d)
            else:
                err = torch.randn(out.shape, generator=self._generator, dtype=torch.float64)  # (B, d)
            if self.error_timesteps is not None:
                t = torch.as_tensor(t).long().cpu().reshape(-1).expand(out.shape[0])  # (B,)
                err = err * torch.isin(t, self.error_timesteps)[:, None]  # (B, d): zero where t is not listed
            out = out + self.error * err
        return out.reshape(x_t.shape).to(device=x_t.device, dtype=x_t.dtype)

    def predict(
        self, x_t: torch.Tensor, t: torch.Tensor | int, cond: Any = None, *, guidance: float = 1.0
    ) -> torch.Tensor:
        """``BrainLDM.predict``'s signature; ``cond`` and ``guidance`` are ignored (the data are unconditional)."""
        return self(x_t, t)


class _DenoiserModel:
    """Duck-typed stand-in for BrainLDM in ``sample_latents``: a schedule and a ``predict``."""

    def __init__(self, schedule: NoiseSchedule, denoiser: Callable[[torch.Tensor, Any], torch.Tensor]) -> None:
        self.schedule = schedule
        self.denoiser = denoiser

    def predict(self, x_t: torch.Tensor, t: Any, cond: Any = None, *, guidance: float = 1.0) -> torch.Tensor:
        return self.denoiser(x_t, t)


# sampling

def sample_with(
    schedule: NoiseSchedule,
    denoiser: Callable[[torch.Tensor, Any], torch.Tensor],
    *,
    sampler: str,
    steps: int,
    n: int,
    generator: torch.Generator | None = None,
    shape: tuple[int, ...] | None = None,
    dtype: torch.dtype = torch.float64,
    x_T: torch.Tensor | None = None,
) -> torch.Tensor:
    """Draw samples with ``pipeline.sample_latents`` and an arbitrary denoiser.

    Parameters
    ----------
    schedule : NoiseSchedule
        Supplies ``timestep_pairs`` and the ``<sampler>_step`` rule.
    denoiser : callable
        ``denoiser(x_t, t) -> model output`` of the shape of x_t (eps or x0, per
        ``schedule.prediction``), e.g. a :class:`GaussianOracle`.
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
        Starting points instead of N(0, I) draws (e.g. chosen inputs, to read off the
        affine map of a deterministic sampler); its dtype wins over ``dtype``.

    Returns
    -------
    x0 : Tensor of shape (n, *shape)

    Raises
    ------
    ValueError
        On an unknown sampler, a non-positive ``n``, a missing ``shape`` for a
        denoiser without ``dim``, an ``x_T`` not of shape (n, *shape), a denoiser
        built for another schedule, or a bad ``steps`` (raised by
        ``schedule.inference_timesteps``).
    """
    _check_sampler(sampler)
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
    schedule.inference_timesteps(steps)  # raises on a bad step count before any work
    if x_T is None:
        x_T = torch.randn((n, *shape), generator=generator, dtype=dtype)  # (n, *shape)
    elif tuple(x_T.shape) != (n, *shape):
        raise ValueError(f"x_T must have shape (n, *shape) = {(n, *shape)}, got {tuple(x_T.shape)}.")
    model = _DenoiserModel(schedule, denoiser)
    return sample_latents(model, None, x_T=x_T, steps=steps, sampler=sampler, generator=generator)


# closed form

def gaussian_moments(
    schedule: NoiseSchedule,
    *,
    sampler: str,
    steps: int,
    mean: Any,
    cov: Any,
    error: float = 0.0,
    error_kind: str = "bias",
    error_direction: Any = None,
    error_timesteps: Any = None,
) -> GaussianLaw:
    """Exact law of the sampler's output with the Gaussian oracle, in closed form.

    Each step maps x_t to x_{t_prev} = c_x * x0_hat + c_u * x_t + c_e * eps_hat + sigma * z
    (Notation -> paper: a, s -> sqrt(abar_t), sqrt(1 - abar_t); a', s' -> the same at
    t_prev; abar_prev = 1 at t_prev = -1):

    - "ddim" (Song et al. 2021, eq. 12, eta = 0): c_x = a', c_u = 0, c_e = s', sigma = 0.
    - "ddpm" (Ho et al. 2020, eqs. 6-7, stride t -> t_prev): with alpha = abar_t / abar_prev,
      beta = 1 - alpha: c_x = sqrt(abar_prev) beta / (1 - abar_t),
      c_u = sqrt(alpha) (1 - abar_prev) / (1 - abar_t), c_e = 0,
      sigma^2 = beta (1 - abar_prev) / (1 - abar_t).
    - "original" (the report's): c_x = a', c_u = 0, c_e = 0, sigma = s'.

    The oracle output is affine in x_t and diagonal in the eigenbasis of cov, so,
    starting from x_T ~ N(0, I), mean and per-eigen-direction variance follow scalar
    recursions. These are written from the formulas above, not by calling
    ``schedule.py``'s steps, so that they check them.

    Parameters
    ----------
    schedule : NoiseSchedule
        Timesteps (``timestep_pairs``), coefficients (its float32 buffers, used in
        float64) and ``prediction``.
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
        On an unknown sampler, bad moments or a bad error specification (as
        :class:`GaussianOracle`), or a bad ``steps``.
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
    on = None if on is None else set(on.tolist())  # timesteps with the error; None = all
    m = torch.zeros(d, dtype=torch.float64)  # mean of U^T x_T
    v = torch.ones(d, dtype=torch.float64)  # variances of U^T x_T (its covariance stays diagonal)
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
    return GaussianLaw(U @ m, (U * v) @ U.T)


# checks

def _errors(mean: torch.Tensor, cov: torch.Tensor, mu: torch.Tensor, Sigma: torch.Tensor) -> tuple[float, float, float]:
    """(max |mean - mu| / sqrt(diag Sigma), ||cov - Sigma||_F / ||Sigma||_F, tr cov / tr Sigma)."""
    mean_error = ((mean - mu).abs() / Sigma.diagonal().sqrt()).max().item()
    cov_error = (torch.linalg.matrix_norm(cov - Sigma) / torch.linalg.matrix_norm(Sigma)).item()
    return mean_error, cov_error, (cov.trace() / Sigma.trace()).item()


def check_sampler(
    schedule: NoiseSchedule,
    *,
    sampler: str,
    steps: int,
    mean: Any,
    cov: Any,
    n_samples: int,
    seed: int,
    denoiser_error: float = 0.0,
    error_kind: str = "bias",
    dtype: torch.dtype = torch.float64,
) -> dict[str, Any]:
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
        Seeds the starting noise and the sampler's noise (and, at ``seed + 1``, the
        oracle's "noise" error).
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
        ``cov_error_se`` : float, sqrt((||Sigma||_F^2 + tr(Sigma)^2) / (n - 1)) / ||Sigma||_F, the RMS
        ``cov_error`` of n exact draws from N(mu, Sigma);
        ``variance_ratio_se`` : float, sqrt(2 tr(Sigma^2) / (n - 1)) / tr(Sigma), the standard error of
        ``variance_ratio`` for such draws (relative, so it holds for a shrunk law of the same shape too);
        ``exact_mean``, ``exact_cov`` : float64 Tensors, the closed-form law (:func:`gaussian_moments`);
        ``exact_mean_error``, ``exact_cov_error``, ``exact_variance_ratio`` : floats, the same errors
        for the closed form (the sampler's bias, free of sampling noise);
        ``mc_mean_error``, ``mc_cov_error`` : floats, the Monte Carlo moments against the closed form,
        in the same units (only sampling error if the library's steps are right);
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
    law = gaussian_moments(
        schedule, sampler=sampler, steps=steps, mean=mu, cov=Sigma, error=denoiser_error, error_kind=error_kind
    )
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
        "sampler": sampler,
        "steps": steps,
        "prediction": schedule.prediction,
        "kind": schedule.kind,
        "n_samples": n_samples,
    }


def error_amplification(
    schedule: NoiseSchedule,
    *,
    sampler: str,
    steps: int,
    mean: Any,
    cov: Any,
    error: float,
    error_kind: str = "bias",
    error_timesteps: Any = None,
    n_samples: int = 256,
    seed: int = 0,
) -> dict[str, Any]:
    """How much a denoiser error of size delta moves the final sample, in units of delta.

    Two runs share the starting noise and the sampler's noise; one uses the exact
    oracle, the other the oracle plus the error. Their difference is the error's
    end-to-end effect: for "bias" a fixed shift, for "noise" a zero-mean spread.

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
        ``end_to_end`` : float, RMS over samples and components of (x0_with_error - x0_exact) / delta,
        Monte Carlo through the library;
        ``exact_end_to_end`` : float, the same from :func:`gaussian_moments` (for "bias" the norm
        of the mean shift / sqrt(d); for "noise" sqrt(mean added variance));
        ``first_step_x0_gain`` : float, the size of the x0 error implied by the model output at
        the first step t = T-1, per delta: sqrt(1 - abar) / sqrt(abar) for eps, 1 for x0;
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
    noisy = GaussianOracle(
        mean, cov, schedule, error=error, error_kind=error_kind, error_timesteps=error_timesteps, seed=seed + 1
    )
    runs = []
    for oracle in (exact, noisy):
        generator = torch.Generator().manual_seed(int(seed))
        runs.append(sample_with(schedule, oracle, sampler=sampler, steps=steps, n=n_samples, generator=generator))
    diff = (runs[1] - runs[0]) / error  # (n, d)
    kw = dict(sampler=sampler, steps=steps, mean=exact.mean, cov=exact.cov)
    law0 = gaussian_moments(schedule, **kw)
    law1 = gaussian_moments(schedule, **kw, error=error, error_kind=error_kind, error_timesteps=error_timesteps)
    d = exact.dim
    if error_kind == "bias":
        exact_e2e = (law1.mean - law0.mean).norm().item() / math.sqrt(d) / error
    else:
        exact_e2e = math.sqrt(max((law1.cov.trace() - law0.cov.trace()).item(), 0.0) / d) / error
    a, s, _ = _coefs(_coef_table(schedule), schedule.n_train_steps - 1)
    return {
        "end_to_end": diff.pow(2).mean().sqrt().item(),
        "exact_end_to_end": exact_e2e,
        "first_step_x0_gain": s / a if schedule.prediction == "eps" else 1.0,
        "data_std": math.sqrt(exact.cov.trace().item() / d),
        "sampler": sampler,
        "steps": steps,
        "prediction": schedule.prediction,
        "kind": schedule.kind,
        "error_kind": error_kind,
    }


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
