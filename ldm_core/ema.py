"""Exponential moving average (EMA) of a module's weights, and a context that swaps them in.

:class:`EMA` keeps ``shadow = decay * shadow + (1 - decay) * param`` after every optimiser step;
``EMA.swapped()`` lends the averages to the module for a block (validation), restoring the trained
weights on exit. It lives in its own module because both :mod:`ldm_core.train` (which updates it) and
:mod:`ldm_core.checkpoint` (which saves it) need it, and those two must not import each other.

References
----------
- lucidrains, ``denoising_diffusion_pytorch`` ``Trainer`` (EMA of the denoiser's weights).
- Ho, Jain & Abbeel 2020, "Denoising diffusion probabilistic models" (EMA decay 0.9999 in training).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["EMA"]


class EMA:
    """Exponential moving average of a module's trainable parameters.

    ``shadow = decay * shadow + (1 - decay) * param`` after every optimiser step.

    Parameters
    ----------
    module : nn.Module
        The module whose parameters with ``requires_grad`` are averaged.
    decay : float in (0, 1)
        e.g. 0.999: an average over roughly the last 1 / (1 - decay) steps.
    """

    def __init__(self, module: nn.Module, *, decay: float) -> None:
        self.module = module
        self.decay = float(decay)
        self.shadow = {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self) -> None:
        params = dict(self.module.named_parameters())
        for name, s in self.shadow.items():
            s.lerp_(params[name].detach(), 1.0 - self.decay)

    @torch.no_grad()
    def copy_to_module(self) -> None:
        """Overwrite the module's parameters with the averages."""
        params = dict(self.module.named_parameters())
        for name, s in self.shadow.items():
            params[name].copy_(s)

    def swapped(self) -> "_Swap":
        """Context in which the module holds the EMA weights (restored on exit)."""
        return _Swap(self)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {n: s.detach().cpu().clone() for n, s in self.shadow.items()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Copy saved averages in.

        Raises
        ------
        ValueError
            If ``state`` lacks a parameter of the module (the checkpoint is from another model).
        """
        missing = sorted(set(self.shadow) - set(state))
        if missing:
            raise ValueError(f"EMA state lacks {len(missing)} parameter(s), e.g. {missing[:3]}; the checkpoint is from another model.")
        for n, s in self.shadow.items():
            s.copy_(state[n])


class _Swap:
    """Context manager of :meth:`EMA.swapped`: EMA weights in on entry, trained weights back on exit."""

    def __init__(self, ema: EMA) -> None:
        self.ema, self.saved = ema, None

    def __enter__(self) -> None:
        params = dict(self.ema.module.named_parameters())
        self.saved = {n: params[n].detach().clone() for n in self.ema.shadow}
        self.ema.copy_to_module()

    def __exit__(self, *exc: Any) -> None:
        params = dict(self.ema.module.named_parameters())
        with torch.no_grad():
            for n, v in self.saved.items():
                params[n].copy_(v)
