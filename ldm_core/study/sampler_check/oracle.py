"""The exact Gaussian denoiser: a Gaussian data law, its posterior mean at every timestep, and argument checks.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch

from ldm_core.models.schedule import NoiseSchedule
from ldm_core.pipeline import SAMPLERS


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
