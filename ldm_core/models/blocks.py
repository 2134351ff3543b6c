"""Building blocks of the denoising networks of :mod:`ldm_core.models.unet` (and of the MLP denoiser's time embedding):
the sinusoidal timestep embedding (Ho et al. 2020; Vaswani et al. 2017), the residual block with GroupNorm + SiLU and
the embedding injected by addition or adaptive group norm (Dhariwal & Nichol 2021), self- and cross-attention
(Rombach et al. 2022), one resolution stage of residual blocks, and upsampling that crops to its skip's size.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["timestep_embedding", "ResBlock", "Attention", "Stage", "Upsample"]


def timestep_embedding(t: torch.Tensor, dim: int, *, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps (Ho et al. 2020; Vaswani et al. 2017).

    Parameters
    ----------
    t : Tensor of shape (B,), int64 in [0, n_train_steps)
        Diffusion timesteps.
    dim : int
        Embedding size; an odd size gets a trailing zero.
    max_period : float, default 10000
        Longest sinusoid period, in timesteps.

    Returns
    -------
    emb : Tensor of shape (B, dim), float32; [cos(t * f_k), sin(t * f_k)] with
        frequencies f_k = max_period ** (-k / (dim // 2)).
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]  # (B, half)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (B, 2 * half)
    if dim % 2:
        emb = F.pad(emb, (0, 1))  # (B, dim)
    return emb


class ResBlock(nn.Module):
    """Residual block: GN-SiLU-conv, embedding injection, GN-SiLU-dropout-conv, plus skip.

    The embedding (time, or time + condition) enters as an added per-channel bias
    before the second norm ("add"), or as adaptive group norm, a per-channel
    scale and shift after a parameter-free second norm ("film").
    """

    def __init__(
        self, in_ch: int, *, out_ch: int, emb_dim: int, num_groups: int, film: bool, dropout: float
    ) -> None:
        super().__init__()
        self.film = film
        self.norm1 = nn.GroupNorm(num_groups, in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb_proj = nn.Linear(emb_dim, 2 * out_ch if film else out_ch)
        self.norm2 = nn.GroupNorm(num_groups, out_ch, affine=not film)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, out_ch, H, W)
        e = self.emb_proj(F.silu(emb))[:, :, None, None]  # (B, out_ch or 2*out_ch, 1, 1)
        if self.film:
            scale, shift = e.chunk(2, dim=1)
            h = self.norm2(h) * (1 + scale) + shift
        else:
            h = self.norm2(h + e)
        h = self.conv2(self.dropout(F.silu(h)))
        return h + self.skip(x)


class Attention(nn.Module):
    """Multi-head attention from U-Net features to themselves or to fMRI tokens.

    Queries are the H*W positions of the (group-normed) feature map; keys and
    values are the same positions (self-attention, ``context_dim=None``) or the
    layer-normed condition tokens (cross-attention). Residual output.
    """

    def __init__(self, channels: int, *, heads: int, num_groups: int, context_dim: int | None = None) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(num_groups, channels)
        self.context_norm = nn.LayerNorm(context_dim) if context_dim is not None else None
        self.to_q = nn.Linear(channels, channels)
        self.to_kv = nn.Linear(context_dim if context_dim is not None else channels, 2 * channels)
        self.to_out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        B, C, H, W = x.shape
        h = self.norm(x).flatten(2).transpose(1, 2)  # (B, H*W, C)
        ctx = h if self.context_norm is None else self.context_norm(context)  # (B, N, C) or (B, T, D)
        q = self.to_q(h)  # (B, H*W, C)
        k, v = self.to_kv(ctx).chunk(2, dim=-1)  # (B, N, C) each
        # split heads: (B, N, C) -> (B, heads, N, C/heads)
        q, k, v = (a.unflatten(-1, (self.heads, C // self.heads)).transpose(1, 2) for a in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, H*W, C/heads)
        out = self.to_out(out.transpose(1, 2).flatten(2))  # (B, H*W, C)
        return x + out.transpose(1, 2).reshape(B, C, H, W)


class Stage(nn.Module):
    """One residual block, optionally followed by cross-attention to the condition.

    ``uses_cond_emb``: the block receives time + condition embedding ("add" and
    "film" at a conditioning point) instead of the time embedding alone.
    """

    def __init__(
        self, in_ch: int, *, out_ch: int, emb_dim: int, num_groups: int, film: bool, dropout: float,
        uses_cond_emb: bool, cross_attn_dim: int | None, heads: int,
    ) -> None:
        super().__init__()
        self.uses_cond_emb = uses_cond_emb
        self.res = ResBlock(in_ch, out_ch=out_ch, emb_dim=emb_dim, num_groups=num_groups, film=film, dropout=dropout)
        self.cross_attn = (
            Attention(out_ch, heads=heads, num_groups=num_groups, context_dim=cross_attn_dim)
            if cross_attn_dim is not None else None
        )

    def forward(
        self, h: torch.Tensor, t_emb: torch.Tensor, c_emb: torch.Tensor | None, context: torch.Tensor | None
    ) -> torch.Tensor:
        emb = t_emb + c_emb if (self.uses_cond_emb and c_emb is not None) else t_emb
        h = self.res(h, emb)
        if self.cross_attn is not None:
            h = self.cross_attn(h, context)
        return h


class Upsample(nn.Module):
    """Nearest 2x upsampling, crop to the skip's size (odd sizes), 3x3 conv."""

    def __init__(self, in_ch: int, *, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")  # (B, C, 2h, 2w)
        return self.conv(x[:, :, : size[0], : size[1]])  # (B, out_ch, *size)
