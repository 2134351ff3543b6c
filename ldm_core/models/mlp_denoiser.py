"""A denoiser for vector latents: a residual MLP with the timestep and a condition injected by FiLM.

The image prior's latent is a short vector (:class:`~ldm_core.models.vector_vae.VectorVAE`), so its diffusion
model needs no convolutions: like the diffusion prior of DALL-E 2 / MindEye, which denoises a CLIP vector, it is an
MLP. Each residual block normalises its input (LayerNorm), scales and shifts it by an embedding of the timestep
plus the condition (FiLM), and adds a two-layer MLP of the result.

Interface as the U-Nets (``docs/DESIGN.md``), for (B, d) latents: ``forward(x_t (B, d), t (B,), cond (B, c) or
None, cond_drop_mask=None) -> (B, d)``; ``cond=None`` (or rows selected by ``cond_drop_mask``) uses a learned
null condition, so one network gives both the conditional and the unconditional prediction (classifier-free
guidance, Ho & Salimans 2022).

References
----------
- Perez et al. 2018, "FiLM"; Ramesh et al. 2022, "Hierarchical text-conditional image generation with CLIP
  latents" (a diffusion prior over vectors); Scotti et al. 2023, "MindEye".
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import timestep_embedding

__all__ = ["MLPDenoiser"]


class _Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.film = nn.Linear(width, 2 * width)
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(F.silu(emb)).chunk(2, dim=1)  # (B, W) each
        return h + self.fc2(F.silu(self.fc1(self.norm(h) * (1 + scale) + shift)))


class MLPDenoiser(nn.Module):
    """Residual MLP denoiser for vector latents (see the module docstring).

    Parameters
    ----------
    dim : int
        Latent size d (input and output).
    cond_dim : int
        Size c of the condition vector; 0 builds an unconditional network (``cond`` must then be None).
    width : int, default 256
        Hidden width W.
    blocks : int, default 4
        Residual blocks.
    time_dim : int, default 128
        Size of the sinusoidal timestep embedding.

    Raises
    ------
    ValueError
        On non-positive sizes (``cond_dim`` may be 0).
    """

    def __init__(self, *, dim: int, cond_dim: int, width: int = 256, blocks: int = 4, time_dim: int = 128) -> None:
        super().__init__()
        for name, v, low in (("dim", dim, 1), ("cond_dim", cond_dim, 0), ("width", width, 1), ("blocks", blocks, 1),
                             ("time_dim", time_dim, 2)):
            if not isinstance(v, int) or v < low:
                raise ValueError(f"{name} must be an int >= {low}, got {v!r}.")
        self.dim, self.cond_dim, self.time_dim = dim, cond_dim, time_dim
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, width), nn.SiLU(), nn.Linear(width, width))
        if cond_dim:
            self.cond_mlp = nn.Sequential(nn.Linear(cond_dim, width), nn.SiLU(), nn.Linear(width, width))
            self.null_cond = nn.Parameter(torch.zeros(cond_dim))  # the "no condition" input
        else:
            self.cond_mlp, self.null_cond = None, None
        self.inp = nn.Linear(dim, width)
        self.blocks = nn.ModuleList(_Block(width) for _ in range(blocks))
        self.out = nn.Sequential(nn.LayerNorm(width), nn.SiLU(), nn.Linear(width, dim))

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None, *,
                cond_drop_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Predict the schedule's target (eps or x0).

        Parameters
        ----------
        x_t : Tensor (B, d)
        t : Tensor (B,) or scalar, int64 in [0, n_train_steps)
        cond : Tensor (B, c), optional; None: unconditional.
        cond_drop_mask : Tensor (B,) bool, optional; rows made unconditional (guidance training).

        Returns
        -------
        Tensor (B, d)
        """
        if x_t.ndim != 2 or x_t.shape[1] != self.dim:
            raise ValueError(f"x_t must have shape (B, {self.dim}), got {tuple(x_t.shape)}.")
        B = x_t.shape[0]
        t = torch.as_tensor(t, device=x_t.device).long().expand(B)  # (B,)
        emb = self.time_mlp(timestep_embedding(t, self.time_dim))  # (B, W)
        if self.cond_mlp is not None:
            null = self.null_cond.expand(B, -1)  # (B, c)
            if cond is None:
                cond = null
            else:
                if cond.ndim != 2 or tuple(cond.shape) != (B, self.cond_dim):
                    raise ValueError(f"cond must have shape ({B}, {self.cond_dim}), got {tuple(cond.shape)}.")
                if cond_drop_mask is not None:
                    cond = torch.where(cond_drop_mask.to(torch.bool)[:, None], null, cond)
            emb = emb + self.cond_mlp(cond)
        elif cond is not None:
            raise ValueError("this denoiser is unconditional (cond_dim=0); pass cond=None.")
        h = self.inp(x_t)
        for block in self.blocks:
            h = block(h, emb)
        return self.out(h)
