"""The one optimiser step every trainer of the package takes.

:func:`optimiser_step` is ``zero_grad -> backward -> (clip the global gradient norm) -> step``, the step of
the Brain LDM's stages (:mod:`ldm_core.train`), the image prior's VAE and denoiser (:mod:`ldm_core.prior`), the
feature and perception nets (:mod:`ldm_core.feature_net`) and the MLP latent map (:mod:`ldm_core.latent_map`).
A loop around it stays with each trainer, because their data orders and logs differ; what happens to the
gradients is written once.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch

__all__ = ["optimiser_step"]


def optimiser_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, *, clip_norm: float | None = None,
                   params: Iterable[torch.nn.Parameter] | None = None) -> None:
    """One step on ``loss`` (a scalar tensor): clear the gradients, backpropagate, clip, update.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
    loss : Tensor, scalar
    clip_norm : float, optional
        Clip the global L2 norm of the gradients of ``params`` to this value before the update; None = no clipping.
    params : iterable of Parameter, optional
        The parameters to clip (needed with ``clip_norm``).
    """
    if clip_norm is not None and params is None:
        raise ValueError("optimiser_step: clip_norm needs params (the parameters whose gradient norm is clipped)")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip_norm is not None:
        torch.nn.utils.clip_grad_norm_(params, clip_norm)
    optimizer.step()
