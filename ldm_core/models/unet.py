"""Denoising networks on VAE latents: the report's "U-Net" and a real U-Net.

Both follow the interface of ``docs/DESIGN.md``: ``forward(x_t (B, C, h, w), t (B,),
cond (B, T, D) or None) -> (B, C, h, w)``; ``cond=None`` means unconditional.
Neither knows about noise schedules; whether the output is eps or x0 is the
schedule's business (:mod:`ldm_core.models.schedule`).

- :class:`OriginalUNet`: the report's network, reproduced with its defects: a plain
  stack of five 3x3 convolutions (4 -> 64 -> 128 -> 128 -> 64 -> 4), no skip
  connections, no down- or upsampling. It computes a timestep embedding and a
  condition embedding, adds them, and never uses the sum, so its output ignores
  both ``t`` and the fMRI condition.
- :class:`UNet`: encoder-decoder with skip connections (concatenation), residual
  blocks with GroupNorm + SiLU, the timestep embedding injected into every
  residual block, optional self-attention at the lowest resolution, and the
  condition injected by addition to the time embedding ("add"), adaptive group
  norm ("film") or cross-attention to the fMRI tokens ("cross_attn"), at every
  block ("all") or only at the lowest resolution ("mid"). With ``multiscale=True``
  an extra head predicts a half-resolution version of the target (the
  hierarchical / multi-resolution variant).

Odd latent sizes (7x7 for the original VAE) work: stride-2 convolutions with
padding 1 give ceil(h / 2), and each upsampling crops back to its skip's size.

References
----------
- Ronneberger et al. 2015, "U-Net" (skip connections by concatenation).
- Ho et al. 2020, "Denoising diffusion probabilistic models" (sinusoidal timestep
  embedding in every residual block, self-attention at low resolution).
- Dhariwal & Nichol 2021, "Diffusion models beat GANs" (adaptive group norm).
- Perez et al. 2018, "FiLM" (feature-wise scale and shift from a condition).
- Rombach et al. 2022, "High-resolution image synthesis with latent diffusion
  models" (cross-attention conditioning).
- Ho & Salimans 2022, "Classifier-free diffusion guidance" (learned null condition).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import Attention, Stage, Upsample, timestep_embedding

__all__ = [
    "CONDITIONINGS",
    "COND_POINTS",
    "UNetOutput",
    "coarse_target",
    "OriginalUNet",
    "UNet",
]

CONDITIONINGS = ("add", "film", "cross_attn", "none")
COND_POINTS = ("all", "mid")


# helpers

class UNetOutput(NamedTuple):
    """What ``UNet.forward(..., return_coarse=True)`` returns.

    Attributes
    ----------
    sample : Tensor of shape (B, C, h, w)
        The full-resolution prediction (eps or x0, as the schedule decides).
    coarse : Tensor of shape (B, C, ceil(h/2), ceil(w/2))
        The same target at half resolution, to compare with ``coarse_target(target)``.
    """

    sample: torch.Tensor
    coarse: torch.Tensor


def coarse_target(x: torch.Tensor) -> torch.Tensor:
    """Half-resolution version of a target, matching the multiscale head's output.

    Parameters
    ----------
    x : Tensor of shape (B, C, h, w)

    Returns
    -------
    Tensor of shape (B, C, ceil(h/2), ceil(w/2))
        2x2 average pooling; an odd edge's last window averages the pixels it has.
    """
    return F.avg_pool2d(x, 2, ceil_mode=True)


def _check_choice(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}.")


def _as_batch_t(t: torch.Tensor | int, B: int, device: torch.device) -> torch.Tensor:
    """Timesteps as an int64 tensor of shape (B,); a scalar is broadcast."""
    t = torch.as_tensor(t, device=device)
    if t.ndim == 0:
        t = t.expand(B)
    if t.shape != (B,):
        raise ValueError(f"t must be a scalar or have shape ({B},), got {tuple(t.shape)}.")
    return t.long()


def _check_x(x_t: torch.Tensor, in_channels: int) -> None:
    if x_t.ndim != 4 or x_t.shape[1] != in_channels:
        raise ValueError(f"x_t must have shape (B, {in_channels}, h, w), got {tuple(x_t.shape)}.")


def _check_cond(cond: torch.Tensor, B: int, cond_dim: int) -> None:
    if cond.ndim != 3 or cond.shape[0] != B or cond.shape[2] != cond_dim:
        raise ValueError(
            f"cond must have shape ({B}, T, {cond_dim}) (tokens from the fMRI encoder), "
            f"got {tuple(cond.shape)}."
        )


# original U-Net

class OriginalUNet(nn.Module):
    """The report's denoiser: five 3x3 convolutions, no skips, t and cond unused.

    Parameters
    ----------
    in_channels : int, default 4
        Latent channels C (input and output).
    cond_dim : int, default 512
        Token dimension D of the fMRI encoder.
    time_dim : int, default 128
        Size of the sinusoidal timestep embedding; the embedding MLP maps it to
        4 * time_dim and back to time_dim.
    num_groups : int, default 8
        GroupNorm groups after each hidden convolution.
    use_embedding : bool, default False
        False reproduces the original. True is the minimal repair used by the
        diagnostics chapter: the time + condition sum is projected to 64 channels
        and added after the first convolution block (still no skip connections).

    Notes
    -----
    Faithful defect (``use_embedding=False``): ``forward`` computes ``emb = time_mlp(t) + cond_proj(mean(cond))``
    and never feeds ``emb`` into the convolutions. The output therefore has zero
    gradient with respect to ``cond`` and does not change with ``t``; the time and
    condition layers count as parameters but never receive gradients.
    """

    def __init__(
        self,
        *,
        in_channels: int = 4,
        cond_dim: int = 512,
        time_dim: int = 128,
        num_groups: int = 8,
        use_embedding: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.cond_dim = cond_dim
        self.time_dim = time_dim
        self.use_embedding = use_embedding
        widths = (64, 128, 128, 64)
        layers: list[nn.Module] = []
        prev = in_channels
        for w in widths:
            layers += [nn.Conv2d(prev, w, 3, padding=1), nn.GroupNorm(num_groups, w), nn.SiLU()]
            prev = w
        layers.append(nn.Conv2d(prev, in_channels, 3, padding=1))  # no norm, no activation
        self.net = nn.Sequential(*layers)
        self.time_mlp = nn.Sequential(
            nn.Linear(time_dim, 4 * time_dim), nn.SiLU(), nn.Linear(4 * time_dim, time_dim)
        )
        self.cond_proj = nn.Linear(cond_dim, time_dim)
        if use_embedding:  # the minimal repair, for the diagnostics' defect-by-defect ablation
            self.emb_to_features = nn.Linear(time_dim, widths[0])

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor | None = None,
        *,
        cond_drop_mask: torch.Tensor | None = None,
        return_coarse: bool = False,
    ) -> torch.Tensor:
        """Denoise a latent batch (ignoring ``t`` and ``cond``, as the original did).

        Parameters
        ----------
        x_t : Tensor of shape (B, C, h, w)
            Noisy latents.
        t : Tensor of shape (B,) or scalar, int64
            Timesteps; embedded, then unused.
        cond : Tensor of shape (B, T, D), optional
            fMRI tokens; embedded, then unused. None: no condition embedding.
        cond_drop_mask : Tensor of shape (B,), bool, optional
            Accepted for interface parity with :class:`UNet`; has no effect.
        return_coarse : bool, default False
            Must be False: this network has no coarse head.

        Returns
        -------
        Tensor of shape (B, C, h, w)

        Raises
        ------
        ValueError
            If ``return_coarse`` is True, or an input has the wrong shape.
        """
        if return_coarse:
            raise ValueError("OriginalUNet has no coarse head; return_coarse must be False "
                             "(use UNet(multiscale=True) for the multi-resolution variant).")
        _check_x(x_t, self.in_channels)
        B = x_t.shape[0]
        t = _as_batch_t(t, B, x_t.device)
        emb = self.time_mlp(timestep_embedding(t, self.time_dim))  # (B, time_dim)
        if cond is not None:
            _check_cond(cond, B, self.cond_dim)
            emb = emb + self.cond_proj(cond.mean(dim=1))  # (B, time_dim)
        if not self.use_embedding:
            # FAITHFUL BUG: `emb` (time + condition) is never used below. The original
            # model's output depends on x_t only: not on the timestep, not on the fMRI.
            return self.net(x_t)
        # Repaired variant: the sum enters as a per-channel bias after the first block.
        h = self.net[:3](x_t)  # (B, 64, h, w): conv, GroupNorm, SiLU
        h = h + self.emb_to_features(emb)[:, :, None, None]
        return self.net[3:](h)


# U-Net

class UNet(nn.Module):
    """Conditional U-Net on latents, with selectable conditioning.

    Layout for ``channels = (c_0, ..., c_{L-1})``: a 3x3 input conv to c_0; on the
    way down, level i has a residual block to c_i, whose output is kept as a skip,
    then a stride-2 conv (except at the last level); the middle has a residual
    block, self-attention (``attention=True``) and a residual block at the lowest
    resolution; on the way up, level i concatenates its skip, applies a residual
    block to c_i, then upsamples to level i-1's size and convolves to c_{i-1};
    GroupNorm, SiLU and a 3x3 conv give the output.

    Parameters
    ----------
    in_channels : int
        Latent channels C (input and output).
    channels : sequence of int, default (64, 128)
        Width of each resolution level; each divisible by ``num_groups`` (and by
        ``attn_heads`` where attention is used).
    time_dim : int, default 128
        Size of the sinusoidal timestep embedding; an MLP maps it to the block
        embedding of size 4 * time_dim, injected into every residual block.
    cond_dim : int, default 512
        Token dimension D of the fMRI encoder.
    conditioning : {"add", "film", "cross_attn", "none"}, default "add"
        "add": an MLP of the mean fMRI token is added to the time embedding.
        "film": the same sum drives adaptive group norm (scale and shift) in the
        blocks. "cross_attn": the features attend to the fMRI tokens after the
        blocks. "none": unconditional, ``cond`` is ignored.
    cond_points : {"all", "mid"}, default "all"
        Blocks that receive the condition: every block, or only the
        lowest-resolution (middle) blocks. The time embedding reaches every block
        either way.
    attention : bool, default True
        Self-attention at the lowest resolution.
    num_groups : int, default 8
        GroupNorm groups.
    multiscale : bool, default False
        Hierarchical / multi-resolution variant: an extra head reads the decoder at
        half resolution (level 1) and predicts the target average-pooled by 2
        (:func:`coarse_target`); returned when ``forward(..., return_coarse=True)``.
        Needs at least two levels.
    attn_heads : int, default 4
        Heads of the self- and cross-attention layers.
    dropout : float, default 0.0
        Dropout inside the residual blocks, in [0, 1).

    Raises
    ------
    ValueError
        On an unknown ``conditioning`` or ``cond_points``, a width not divisible by
        ``num_groups`` or ``attn_heads``, empty ``channels``, or ``multiscale``
        with a single level.

    Notes
    -----
    ``cond=None`` (or rows selected by ``cond_drop_mask``) uses a learned null
    token of shape (1, 1, cond_dim) in place of the fMRI tokens, so the same
    network gives the unconditional prediction for classifier-free guidance.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        channels: Sequence[int] = (64, 128),
        time_dim: int = 128,
        cond_dim: int = 512,
        conditioning: str = "add",
        cond_points: str = "all",
        attention: bool = True,
        num_groups: int = 8,
        multiscale: bool = False,
        attn_heads: int = 4,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        _check_choice("conditioning", conditioning, CONDITIONINGS)
        _check_choice("cond_points", cond_points, COND_POINTS)
        channels = tuple(channels)
        if not channels or any(c < 1 for c in channels):
            raise ValueError(f"channels must be a non-empty sequence of positive ints, got {channels!r}.")
        bad = [c for c in channels if c % num_groups]
        if bad:
            raise ValueError(
                f"every width in channels {channels} must be divisible by num_groups ({num_groups}); {bad} are not."
            )
        cross_all = conditioning == "cross_attn" and cond_points == "all"
        attn_widths = channels if cross_all else channels[-1:]
        if (attention or conditioning == "cross_attn") and any(c % attn_heads for c in attn_widths):
            raise ValueError(f"attention widths {attn_widths} must be divisible by attn_heads ({attn_heads}).")
        if multiscale and len(channels) < 2:
            raise ValueError(f"multiscale needs at least two levels in channels, got {channels!r}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")

        self.in_channels = in_channels
        self.channels = channels
        self.time_dim = time_dim
        self.cond_dim = cond_dim
        self.conditioning = conditioning
        self.cond_points = cond_points
        self.multiscale = multiscale
        emb_dim = 4 * time_dim
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        if conditioning != "none":
            self.null_cond = nn.Parameter(torch.randn(1, 1, cond_dim) * 0.02)  # learned "no fMRI" token
        else:
            self.register_parameter("null_cond", None)
        self.cond_mlp = (
            nn.Sequential(nn.Linear(cond_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
            if conditioning in ("add", "film") else None
        )
        self._build_layers(emb_dim, num_groups=num_groups, dropout=dropout, attention=attention, heads=attn_heads)

    def _build_layers(self, emb_dim: int, *, num_groups: int, dropout: float, attention: bool, heads: int) -> None:
        """Create the down path, middle, up path and output heads, in this (parameter and RNG) order."""
        channels, conditioning, in_channels = self.channels, self.conditioning, self.in_channels
        uses_emb = conditioning in ("add", "film")

        def stage(in_ch: int, out_ch: int, *, at_cond_point: bool) -> Stage:
            return Stage(
                in_ch, out_ch=out_ch, emb_dim=emb_dim, num_groups=num_groups, film=conditioning == "film",
                dropout=dropout, uses_cond_emb=uses_emb and at_cond_point,
                cross_attn_dim=self.cond_dim if (conditioning == "cross_attn" and at_cond_point) else None,
                heads=heads,
            )

        # down path
        everywhere = self.cond_points == "all"
        self.conv_in = nn.Conv2d(in_channels, channels[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        prev = channels[0]
        for i, ch in enumerate(channels):
            self.down.append(stage(prev, ch, at_cond_point=everywhere))
            if i < len(channels) - 1:
                self.downsample.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))  # h -> ceil(h/2)
            prev = ch

        # middle (lowest resolution): always a conditioning point
        self.mid1 = stage(prev, prev, at_cond_point=True)
        self.mid_attn = Attention(prev, heads=heads, num_groups=num_groups) if attention else None
        self.mid2 = stage(prev, prev, at_cond_point=True)

        # up path; up[i] and upsample[i - 1] serve level i
        self.up = nn.ModuleList(stage(2 * ch, ch, at_cond_point=everywhere) for ch in channels)
        self.upsample = nn.ModuleList(Upsample(channels[i], out_ch=channels[i - 1]) for i in range(1, len(channels)))

        def head(ch: int) -> nn.Sequential:
            return nn.Sequential(nn.GroupNorm(num_groups, ch), nn.SiLU(), nn.Conv2d(ch, in_channels, 3, padding=1))

        self.out = head(channels[0])
        self.coarse_head = head(channels[1]) if self.multiscale else None  # reads the decoder at half resolution

    def _condition(
        self, cond: torch.Tensor | None, B: int, cond_drop_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Condition embedding (B, 4*time_dim) for add/film and context tokens (B, T, D) for cross_attn."""
        if self.conditioning == "none":
            return None, None
        null = self.null_cond.expand(B, 1, self.cond_dim)  # (B, 1, D)
        if cond is None:
            cond = null
        else:
            _check_cond(cond, B, self.cond_dim)
            if cond_drop_mask is not None:
                if cond_drop_mask.shape != (B,):
                    raise ValueError(f"cond_drop_mask must have shape ({B},), got {tuple(cond_drop_mask.shape)}.")
                drop = cond_drop_mask.to(device=cond.device, dtype=torch.bool)[:, None, None]  # (B, 1, 1)
                cond = torch.where(drop, null.expand_as(cond), cond)  # (B, T, D)
        if self.conditioning == "cross_attn":
            return None, cond
        return self.cond_mlp(cond.mean(dim=1)), None  # (B, emb_dim)

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor | None = None,
        *,
        cond_drop_mask: torch.Tensor | None = None,
        return_coarse: bool = False,
    ) -> torch.Tensor | UNetOutput:
        """Predict the schedule's target (eps or x0) from a noisy latent.

        Parameters
        ----------
        x_t : Tensor of shape (B, C, h, w)
            Noisy (scaled) latents; any h, w >= 1, odd sizes included.
        t : Tensor of shape (B,) or scalar, int64 in [0, n_train_steps)
            Timesteps.
        cond : Tensor of shape (B, T, D), optional
            fMRI tokens from the encoder. None: unconditional (learned null token).
        cond_drop_mask : Tensor of shape (B,), bool, optional
            Rows to make unconditional (classifier-free guidance training).
        return_coarse : bool, default False
            Also return the half-resolution head's output; needs ``multiscale=True``.

        Returns
        -------
        Tensor of shape (B, C, h, w), or UNetOutput(sample, coarse) when
        ``return_coarse`` is True.

        Raises
        ------
        ValueError
            If an input has the wrong shape, or ``return_coarse`` without ``multiscale``.
        """
        if return_coarse and not self.multiscale:
            raise ValueError("return_coarse=True needs a UNet built with multiscale=True.")
        _check_x(x_t, self.in_channels)
        B = x_t.shape[0]
        t = _as_batch_t(t, B, x_t.device)
        t_emb = self.time_mlp(timestep_embedding(t, self.time_dim))  # (B, emb_dim)
        c_emb, context = self._condition(cond, B, cond_drop_mask)
        h, skips = self._encode(x_t, t_emb, c_emb, context)
        coarse = None
        for i in reversed(range(len(self.channels))):
            h = self.up[i](torch.cat([h, skips[i]], dim=1), t_emb, c_emb, context)  # (B, c_i, h_i, w_i)
            if i == 1 and return_coarse:
                coarse = self.coarse_head(h)  # (B, C, h_1, w_1), h_1 = ceil(h/2)
            if i > 0:
                h = self.upsample[i - 1](h, skips[i - 1].shape[-2:])  # (B, c_{i-1}, h_{i-1}, w_{i-1})
        sample = self.out(h)  # (B, C, h, w)
        return UNetOutput(sample, coarse) if return_coarse else sample

    def _encode(self, x_t: torch.Tensor, t_emb: torch.Tensor, c_emb: torch.Tensor | None,
                context: torch.Tensor | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Down path and middle: the lowest-resolution features and each level's skip (B, c_i, h_i, w_i)."""
        h = self.conv_in(x_t)  # (B, c_0, h, w)
        skips = []
        for i, stage in enumerate(self.down):
            h = stage(h, t_emb, c_emb, context)  # (B, c_i, h_i, w_i)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)  # (B, c_i, ceil(h_i/2), ceil(w_i/2))
        h = self.mid1(h, t_emb, c_emb, context)
        if self.mid_attn is not None:
            h = self.mid_attn(h)
        return self.mid2(h, t_emb, c_emb, context), skips
