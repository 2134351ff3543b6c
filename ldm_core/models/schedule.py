"""Noise schedules and samplers for latent diffusion: weightless, buffers only.

:class:`NoiseSchedule` holds the betas and the cumulative products
``alphas_cumprod`` of a linear or cosine schedule, and implements the forward
process ``q_sample``, the conversions between eps- and x0-predictions, and three
reverse steps between any pair of timesteps ``t -> t_prev``:

- ``ddim_step``: DDIM (Song et al. 2021); deterministic for ``eta=0``, DDPM-like
  noise for ``eta=1``.
- ``ddpm_step``: ancestral sampling from the true posterior q(x_{t_prev} | x_t, x0)
  with x0 predicted (Ho et al. 2020), for any stride.
- ``original_step``: the report's sampler, reproduced: predict x0, then re-noise it
  to level t_prev with fresh Gaussian noise, discarding the predicted noise
  direction (a sequence of independent "denoise, re-noise" jumps).

Notation (name here -> paper): ``x0`` -> x_0, ``x_t`` -> x_t, ``eps`` -> epsilon,
``betas`` -> beta_t, ``alphas`` -> alpha_t = 1 - beta_t, ``alphas_cumprod`` ->
alpha-bar_t = prod_{s<=t} alpha_s (DDIM writes it alpha_t), ``t_prev`` -> the next,
smaller timestep of the sampling sequence (tau_{i-1} in DDIM); ``t_prev = -1``
means "past the last step", where alpha-bar = 1 and x_{-1} = x0.

The schedule is computed in float64 and stored as float32 registered buffers, so
``.to(device)`` and checkpoints carry it. We wrote this instead of adopting
``diffusers``' ``DDIMScheduler`` because diffusers is not a dependency of this project
(it would add the package and its hub client for about a hundred lines that the tests
pin to closed forms, and chapter 07's known-answer table checks against an exact
Gaussian denoiser), and because the report's original re-noising step, which the
diagnostics reproduce, exists in no library.

References
----------
- Ho, Jain & Abbeel 2020, "Denoising diffusion probabilistic models" (DDPM):
  linear betas, q_sample, the posterior q(x_{t-1} | x_t, x0).
- Song, Meng & Ermon 2021, "Denoising diffusion implicit models" (DDIM): eq. 12,
  sigma_t(eta), sampling on a sub-sequence of timesteps.
- Nichol & Dhariwal 2021, "Improved denoising diffusion probabilistic models":
  cosine schedule, s = 0.008, betas clipped at 0.999.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

__all__ = ["SCHEDULE_KINDS", "PREDICTIONS", "SchedulerOutput", "NoiseSchedule", "classifier_free_guidance"]

SCHEDULE_KINDS = ("linear", "cosine")
PREDICTIONS = ("eps", "x0")


# helpers

class SchedulerOutput(NamedTuple):
    """What a reverse step returns.

    Attributes
    ----------
    prev_sample : Tensor of shape (B, C, h, w)
        x_{t_prev}, the sample at the next (smaller) timestep; x0 at the end.
    pred_x0 : Tensor of shape (B, C, h, w)
        The model's estimate of x0 at this step.
    """

    prev_sample: torch.Tensor
    pred_x0: torch.Tensor


def classifier_free_guidance(out_cond: torch.Tensor, out_uncond: torch.Tensor, guidance: float) -> torch.Tensor:
    """``out_uncond + guidance * (out_cond - out_uncond)`` (Ho & Salimans 2022): 1 gives the conditional denoiser
    output, 0 the unconditional one; every model's ``predict`` combines its two outputs with this."""
    return out_uncond + guidance * (out_cond - out_uncond)


def linear_betas(n_train_steps: int, *, beta_start: float, beta_end: float) -> torch.Tensor:
    """Ho et al. 2020: betas evenly spaced from beta_start to beta_end, float64 (n_train_steps,)."""
    return torch.linspace(beta_start, beta_end, n_train_steps, dtype=torch.float64)


def cosine_betas(n_train_steps: int, *, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal 2021: alpha-bar(t) = f(t) / f(0), f(t) = cos((t/T + s) / (1 + s) * pi/2)^2.

    Returns
    -------
    betas : Tensor of shape (n_train_steps,), float64; beta_t = 1 - alpha-bar(t+1) / alpha-bar(t),
        clipped at ``max_beta``.
    """
    T = n_train_steps
    steps = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2  # (T + 1,)
    abar = f / f[0]
    return (1 - abar[1:] / abar[:-1]).clamp(max=max_beta)


# schedule

class _ReverseSteps:
    """:class:`NoiseSchedule`'s samplers, a mixin using its buffers, ``_pair``, ``_at`` and ``predict_x0/eps``."""

    def inference_timesteps(self, steps: int) -> torch.Tensor:
        """Evenly spaced timesteps for sampling, from T-1 down to 0.

        Parameters
        ----------
        steps : int
            Number of reverse steps, 1 <= steps <= n_train_steps.

        Returns
        -------
        Tensor of shape (steps,), int64, strictly descending; round(linspace(T-1, 0, steps)).

        Raises
        ------
        ValueError
            If ``steps`` is outside [1, n_train_steps].
        """
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= self.n_train_steps:
            raise ValueError(
                f"steps must be an int in [1, n_train_steps={self.n_train_steps}], got steps={steps!r}; "
                "a sampler cannot take more steps than the schedule was trained with."
            )
        ts = torch.linspace(self.n_train_steps - 1, 0, steps, dtype=torch.float64).round().long()
        return ts.to(self.alphas_cumprod.device)

    def timestep_pairs(self, steps: int) -> list[tuple[int, int]]:
        """``(t, t_prev)`` for each reverse step of ``inference_timesteps(steps)``; the last t_prev is -1."""
        ts = self.inference_timesteps(steps).tolist()
        return list(zip(ts, ts[1:] + [-1]))

    def _noise(self, x_t: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)

    def ddim_step(
        self,
        model_output: torch.Tensor,
        t: torch.Tensor | int,
        t_prev: torch.Tensor | int,
        x_t: torch.Tensor,
        *,
        eta: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> SchedulerOutput:
        """One DDIM step x_t -> x_{t_prev} (Song et al. 2021, eq. 12).

        x_{t_prev} = sqrt(abar_prev) * x0 + sqrt(1 - abar_prev - sigma^2) * eps + sigma * z,
        sigma = eta * sqrt((1 - abar_prev) / (1 - abar_t)) * sqrt(1 - abar_t / abar_prev).

        Parameters
        ----------
        model_output : Tensor of shape (B, C, h, w)
            Denoiser output (eps or x0, per ``prediction``).
        t : Tensor of shape (B,) or scalar, int64 in [0, n_train_steps)
        t_prev : Tensor of shape (B,) or scalar, int64 in [-1, t)
            Next timestep; -1 for the final step (abar_prev = 1, returns x0).
        x_t : Tensor of shape (B, C, h, w)
        eta : float, default 0.0
            0: deterministic DDIM; 1: the DDPM posterior variance.
        generator : torch.Generator, optional
            Source of z when eta > 0.

        Returns
        -------
        SchedulerOutput
            ``(prev_sample, pred_x0)``.

        Raises
        ------
        ValueError
            If ``eta < 0``, a timestep is out of range, or ``t_prev >= t``.
        """
        if eta < 0:
            raise ValueError(f"eta must be >= 0, got {eta!r}.")
        t, t_prev = self._pair(t, t_prev)
        x0 = self.predict_x0(x_t, t, model_output)
        eps = self.predict_eps(x_t, t, model_output)
        # the sqrt buffers, as in q_sample, so that eta = 0 with the true eps lands exactly on q_sample(x0, t_prev, eps)
        sqrt_abar_prev = self._at(self.sqrt_alphas_cumprod, t_prev, x_t, final_value=1.0)
        sqrt_one_minus_abar_prev = self._at(self.sqrt_one_minus_alphas_cumprod, t_prev, x_t, final_value=0.0)
        if eta == 0:
            return SchedulerOutput(sqrt_abar_prev * x0 + sqrt_one_minus_abar_prev * eps, x0)
        abar_t = self._at(self.alphas_cumprod, t, x_t)
        abar_prev = self._at(self.alphas_cumprod, t_prev, x_t)
        sigma = eta * ((1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev)).clamp(min=0).sqrt()
        direction = (1 - abar_prev - sigma**2).clamp(min=0).sqrt()  # coefficient of eps
        prev = sqrt_abar_prev * x0 + direction * eps + sigma * self._noise(x_t, generator)
        return SchedulerOutput(prev, x0)

    def ddpm_step(
        self,
        model_output: torch.Tensor,
        t: torch.Tensor | int,
        t_prev: torch.Tensor | int,
        x_t: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
    ) -> SchedulerOutput:
        """One ancestral step: x_{t_prev} ~ q(x_{t_prev} | x_t, x0 = predicted x0).

        For a stride t -> t_prev, with alpha_{t|prev} = abar_t / abar_prev and
        beta_{t|prev} = 1 - alpha_{t|prev}, the Gaussian posterior has

        mean = sqrt(abar_prev) * beta_{t|prev} / (1 - abar_t) * x0
               + sqrt(alpha_{t|prev}) * (1 - abar_prev) / (1 - abar_t) * x_t,
        variance = beta_{t|prev} * (1 - abar_prev) / (1 - abar_t),

        which for stride 1 is Ho et al. 2020, eqs. 6-7 (the "beta-tilde" variance).

        Parameters
        ----------
        model_output : Tensor of shape (B, C, h, w)
        t : Tensor of shape (B,) or scalar, int64 in [0, n_train_steps)
        t_prev : Tensor of shape (B,) or scalar, int64 in [-1, t)
            -1 for the final step (variance 0, returns x0).
        x_t : Tensor of shape (B, C, h, w)
        generator : torch.Generator, optional
            Source of the posterior noise.

        Returns
        -------
        SchedulerOutput
            ``(prev_sample, pred_x0)``.

        Raises
        ------
        ValueError
            If a timestep is out of range or ``t_prev >= t``.
        """
        t, t_prev = self._pair(t, t_prev)
        x0 = self.predict_x0(x_t, t, model_output)
        mean, var = self.posterior(x0, x_t, t, t_prev)
        prev = mean + var.sqrt() * self._noise(x_t, generator)
        return SchedulerOutput(prev, x0)

    def posterior(
        self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor | int, t_prev: torch.Tensor | int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (B, C, h, w) and variance (broadcastable) of q(x_{t_prev} | x_t, x0); see ``ddpm_step``."""
        t, t_prev = self._pair(t, t_prev)
        abar_t = self._at(self.alphas_cumprod, t, x_t)
        abar_prev = self._at(self.alphas_cumprod, t_prev, x_t)
        alpha_step = abar_t / abar_prev
        beta_step = 1 - alpha_step
        coef_x0 = abar_prev.sqrt() * beta_step / (1 - abar_t)
        coef_x_t = alpha_step.sqrt() * (1 - abar_prev) / (1 - abar_t)
        var = (beta_step * (1 - abar_prev) / (1 - abar_t)).clamp(min=0)
        return coef_x0 * x0 + coef_x_t * x_t, var  # mean (B, C, h, w), variance

    def original_step(
        self,
        model_output: torch.Tensor,
        t: torch.Tensor | int,
        t_prev: torch.Tensor | int,
        x_t: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
    ) -> SchedulerOutput:
        """The report's sampler: predict x0, then re-noise it to t_prev with fresh noise.

        x0 = (x_t - sqrt(1 - abar_t) * eps) / sqrt(abar_t);
        x_{t_prev} = sqrt(abar_prev) * x0 + sqrt(1 - abar_prev) * z, z ~ N(0, I) drawn anew.

        Unlike DDIM (which reuses the predicted eps) or DDPM (which conditions on
        x_t), nothing of x_t but its x0 estimate survives a step. The final step
        (t_prev = -1, abar_prev = 1) returns x0.

        Parameters
        ----------
        model_output : Tensor of shape (B, C, h, w)
        t : Tensor of shape (B,) or scalar, int64 in [0, n_train_steps)
        t_prev : Tensor of shape (B,) or scalar, int64 in [-1, t)
        x_t : Tensor of shape (B, C, h, w)
        generator : torch.Generator, optional
            Source of the fresh noise.

        Returns
        -------
        SchedulerOutput
            ``(prev_sample, pred_x0)``.

        Raises
        ------
        ValueError
            If a timestep is out of range or ``t_prev >= t``.
        """
        t, t_prev = self._pair(t, t_prev)
        x0 = self.predict_x0(x_t, t, model_output)
        sqrt_abar_prev = self._at(self.sqrt_alphas_cumprod, t_prev, x_t, final_value=1.0)
        sqrt_one_minus_abar_prev = self._at(self.sqrt_one_minus_alphas_cumprod, t_prev, x_t, final_value=0.0)
        prev = sqrt_abar_prev * x0 + sqrt_one_minus_abar_prev * self._noise(x_t, generator)
        return SchedulerOutput(prev, x0)


class NoiseSchedule(_ReverseSteps, nn.Module):
    """Diffusion noise schedule with forward process, conversions and reverse steps.

    Parameters
    ----------
    kind : {"linear", "cosine"}, default "linear"
        "linear": betas from ``beta_start`` to ``beta_end`` (DDPM). "cosine":
        Nichol & Dhariwal 2021; ``beta_start`` and ``beta_end`` are then unused.
    n_train_steps : int, default 1000
        Number of diffusion steps T; timesteps are 0 .. T-1.
    beta_start : float, default 1e-4
        beta_0 of the linear schedule, in (0, 1).
    beta_end : float, default 0.02
        beta_{T-1} of the linear schedule, in [beta_start, 1).
    prediction : {"eps", "x0"}, default "eps"
        What the denoiser outputs: the added noise eps, or the clean latent x0.

    Attributes
    ----------
    betas, alphas, alphas_cumprod, sqrt_alphas_cumprod, sqrt_one_minus_alphas_cumprod
        float32 buffers of shape (n_train_steps,).

    Raises
    ------
    ValueError
        On an unknown ``kind`` or ``prediction``, a non-positive ``n_train_steps``,
        or betas outside 0 < beta_start <= beta_end < 1.
    """

    def __init__(
        self,
        *,
        kind: str = "linear",
        n_train_steps: int = 1000,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        prediction: str = "eps",
    ) -> None:
        super().__init__()
        if kind not in SCHEDULE_KINDS:
            raise ValueError(f"kind must be one of {SCHEDULE_KINDS}, got {kind!r}.")
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}.")
        if isinstance(n_train_steps, bool) or not isinstance(n_train_steps, int) or n_train_steps < 1:
            raise ValueError(f"n_train_steps must be a positive int, got {n_train_steps!r}.")
        if not 0 < beta_start <= beta_end < 1:
            raise ValueError(
                f"betas must satisfy 0 < beta_start <= beta_end < 1, got beta_start={beta_start!r}, "
                f"beta_end={beta_end!r}."
            )
        self.kind = kind
        self.n_train_steps = n_train_steps
        self.beta_start = float(beta_start)
        self.beta_end = float(beta_end)
        self.prediction = prediction

        if kind == "linear":
            betas = linear_betas(n_train_steps, beta_start=beta_start, beta_end=beta_end)
        else:
            betas = cosine_betas(n_train_steps)
        alphas = 1.0 - betas
        alphas_cumprod = torch.cumprod(alphas, dim=0)
        for name, value in [
            ("betas", betas),
            ("alphas", alphas),
            ("alphas_cumprod", alphas_cumprod),
            ("sqrt_alphas_cumprod", alphas_cumprod.sqrt()),
            ("sqrt_one_minus_alphas_cumprod", (1.0 - alphas_cumprod).sqrt()),
        ]:
            self.register_buffer(name, value.to(torch.float32))

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, n_train_steps={self.n_train_steps}, prediction={self.prediction!r}"

    # indexing helpers

    def _t(self, t: torch.Tensor | int, *, name: str, allow_final: bool) -> torch.Tensor:
        """Timesteps as int64 on the buffers' device, range-checked."""
        t = torch.as_tensor(t, device=self.alphas_cumprod.device).long()
        low = -1 if allow_final else 0
        if t.numel() and (t.min() < low or t.max() >= self.n_train_steps):
            raise ValueError(
                f"{name} must be in [{low}, {self.n_train_steps}) for n_train_steps={self.n_train_steps}, "
                f"got values in [{int(t.min())}, {int(t.max())}]."
            )
        return t

    def _pair(self, t: torch.Tensor | int, t_prev: torch.Tensor | int) -> tuple[torch.Tensor, torch.Tensor]:
        """Checked (t, t_prev) for a reverse step: 0 <= t < T and -1 <= t_prev < t."""
        t = self._t(t, name="t", allow_final=False)
        t_prev = self._t(t_prev, name="t_prev", allow_final=True)
        if (t_prev >= t).any():
            raise ValueError(
                f"t_prev must be smaller than t (reverse steps go down), got t={t.tolist()}, "
                f"t_prev={t_prev.tolist()}; use timestep_pairs(steps)."
            )
        return t, t_prev

    def _at(self, buffer: torch.Tensor, t: torch.Tensor, x: torch.Tensor, *, final_value: float = 1.0) -> torch.Tensor:
        """buffer[t] shaped to broadcast against x (B, C, h, w); t = -1 gives final_value."""
        value = torch.where(t >= 0, buffer[t.clamp(min=0)], torch.full_like(buffer[:1], final_value))
        if value.ndim == 1:
            value = value.view(-1, *([1] * (x.ndim - 1)))  # (B, 1, 1, 1)
        return value.to(device=x.device, dtype=x.dtype)

    # forward process

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor | int, noise: torch.Tensor) -> torch.Tensor:
        """Draw x_t ~ q(x_t | x0): x_t = sqrt(abar_t) * x0 + sqrt(1 - abar_t) * eps.

        Parameters
        ----------
        x0 : Tensor of shape (B, C, h, w)
            Clean (scaled) latents.
        t : Tensor of shape (B,) or scalar, int64 in [0, n_train_steps)
        noise : Tensor of shape (B, C, h, w)
            eps ~ N(0, I).

        Returns
        -------
        x_t : Tensor of shape (B, C, h, w)

        Raises
        ------
        ValueError
            If ``t`` is outside [0, n_train_steps).
        """
        t = self._t(t, name="t", allow_final=False)
        sqrt_abar = self._at(self.sqrt_alphas_cumprod, t, x0)
        sqrt_one_minus_abar = self._at(self.sqrt_one_minus_alphas_cumprod, t, x0)
        return sqrt_abar * x0 + sqrt_one_minus_abar * noise

    def training_target(self, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """What the denoiser should output for ``q_sample(x0, t, noise)``: noise (eps) or x0."""
        return noise if self.prediction == "eps" else x0

    # conversions

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor | int, model_output: torch.Tensor) -> torch.Tensor:
        """x0 implied by the model output at (x_t, t).

        Parameters
        ----------
        x_t : Tensor of shape (B, C, h, w)
        t : Tensor of shape (B,) or scalar, int64 in [0, n_train_steps)
        model_output : Tensor of shape (B, C, h, w)
            eps or x0, per ``prediction``.

        Returns
        -------
        x0 : Tensor of shape (B, C, h, w); for eps: (x_t - sqrt(1 - abar_t) * eps) / sqrt(abar_t).
        """
        if self.prediction == "x0":
            return model_output
        t = self._t(t, name="t", allow_final=False)
        sqrt_one_minus_abar = self._at(self.sqrt_one_minus_alphas_cumprod, t, x_t)
        return (x_t - sqrt_one_minus_abar * model_output) / self._at(self.sqrt_alphas_cumprod, t, x_t)

    def predict_eps(self, x_t: torch.Tensor, t: torch.Tensor | int, model_output: torch.Tensor) -> torch.Tensor:
        """eps implied by the model output at (x_t, t).

        Returns
        -------
        eps : Tensor of shape (B, C, h, w); for x0: (x_t - sqrt(abar_t) * x0) / sqrt(1 - abar_t).
        """
        if self.prediction == "eps":
            return model_output
        t = self._t(t, name="t", allow_final=False)
        sqrt_abar = self._at(self.sqrt_alphas_cumprod, t, x_t)
        return (x_t - sqrt_abar * model_output) / self._at(self.sqrt_one_minus_alphas_cumprod, t, x_t)
