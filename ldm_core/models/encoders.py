"""fMRI encoders: map one trial's voxel pattern to condition tokens for the U-Net.

Three encoders share one interface (``docs/DESIGN.md``): ``forward(fmri (B, V)) ->
tokens (B, T, D)``, with attributes ``out_dim == D`` and ``n_tokens == T``.

- :class:`OriginalMLPEncoder`: the report's encoder, reproduced as described
  (V -> 1024 -> 768 -> 512 -> 512, LayerNorm + GELU + Dropout 0.1, Xavier init).
  With 90 training trials and ~3k voxels its first layer alone holds ~3.2 M weights.
- :class:`RegularisedMLPEncoder`: a narrow MLP with heavy dropout (a fix for the
  over-parameterisation). Noise on the input voxels and voxel dropout are training
  choices, applied by the trainer (``TrainConfig.fmri_noise`` / ``voxel_dropout``),
  not by the encoder.
- :class:`BrainAwareEncoder`: voxel groups become tokens mixed by self-attention,
  the "brain-aware" encoder the report names, built from what the data allows.

References
----------
- Vaswani et al. 2017, "Attention is all you need" (transformer encoder layer).
- Srivastava et al. 2014, "Dropout" (dropout after the hidden blocks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["OriginalMLPEncoder", "RegularisedMLPEncoder", "BrainAwareEncoder"]


# helpers

def _check_positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}.")


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}.")


def _check_hidden(hidden: Sequence[int]) -> tuple[int, ...]:
    hidden = tuple(hidden)
    for h in hidden:
        if isinstance(h, bool) or not isinstance(h, int) or h < 1:
            raise ValueError(
                f"hidden must be a sequence of positive ints, got {hidden!r}."
            )
    return hidden


def _check_fmri(fmri: torch.Tensor, n_voxels: int) -> None:
    if fmri.ndim != 2 or fmri.shape[1] != n_voxels:
        raise ValueError(
            f"fmri must have shape (B, {n_voxels}) (B trials, {n_voxels} voxels as built), "
            f"got {tuple(fmri.shape)}. Build the encoder with n_voxels read from the data."
        )


def _mlp(n_in: int, hidden: tuple[int, ...], out_dim: int, dropout: float) -> nn.Sequential:
    """Hidden blocks of Linear, LayerNorm, GELU, Dropout, then a final Linear."""
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(n_in, h), nn.LayerNorm(h), nn.GELU(), nn.Dropout(dropout)]
        n_in = h
    layers.append(nn.Linear(n_in, out_dim))
    return nn.Sequential(*layers)


# original encoder

class OriginalMLPEncoder(nn.Module):
    """The report's fMRI encoder: a deep MLP to a single 512-d token.

    Parameters
    ----------
    n_voxels : int
        Number of voxels V, read from the data (3092 for digit69).
    hidden : sequence of int, default (1024, 768, 512)
        Widths of the hidden blocks (Linear, LayerNorm, GELU, Dropout).
    out_dim : int, default 512
        Token dimension D of the final Linear.
    dropout : float, default 0.1
        Dropout probability after every hidden block, in [0, 1).

    Raises
    ------
    ValueError
        If ``n_voxels`` or ``out_dim`` is not a positive int, ``hidden`` holds a
        non-positive width, or ``dropout`` is outside [0, 1).

    Notes
    -----
    Linear weights are Xavier-uniform, biases zero, as in the original code.
    """

    def __init__(
        self,
        n_voxels: int,
        *,
        hidden: Sequence[int] = (1024, 768, 512),
        out_dim: int = 512,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        _check_positive_int("n_voxels", n_voxels)
        _check_positive_int("out_dim", out_dim)
        _check_probability("dropout", dropout)
        self.n_voxels = n_voxels
        self.out_dim = out_dim
        self.n_tokens = 1
        self.net = _mlp(n_voxels, _check_hidden(hidden), out_dim, dropout)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, fmri: torch.Tensor) -> torch.Tensor:
        """Encode fMRI patterns.

        Parameters
        ----------
        fmri : Tensor of shape (B, V), float32
            Voxel patterns, z-scored with training statistics.

        Returns
        -------
        tokens : Tensor of shape (B, 1, out_dim), float32
        """
        _check_fmri(fmri, self.n_voxels)
        return self.net(fmri).unsqueeze(1)  # (B, 1, D)


# regularised encoder

class RegularisedMLPEncoder(nn.Module):
    """A narrow MLP with heavy dropout, to one token.

    Parameters
    ----------
    n_voxels : int
        Number of voxels V, read from the data.
    hidden : sequence of int, default (512,)
        Widths of the hidden blocks (Linear, LayerNorm, GELU, Dropout); ``()``
        gives a linear encoder.
    out_dim : int, default 512
        Token dimension D.
    dropout : float, default 0.5
        Dropout probability after every hidden block, in [0, 1).

    Raises
    ------
    ValueError
        If a size is not a positive int or ``dropout`` is outside [0, 1).

    Notes
    -----
    Augmentation of the input (Gaussian noise on the z-scored voxels, voxel
    dropout) is set in ``TrainConfig.fmri_noise`` / ``TrainConfig.voxel_dropout``
    and applied by the trainer; ``ldm_core.config.FIXED_AUGMENTATION`` is the
    recipe this encoder applied itself in earlier versions.
    """

    def __init__(
        self,
        n_voxels: int,
        *,
        hidden: Sequence[int] = (512,),
        out_dim: int = 512,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        _check_positive_int("n_voxels", n_voxels)
        _check_positive_int("out_dim", out_dim)
        _check_probability("dropout", dropout)
        self.n_voxels = n_voxels
        self.out_dim = out_dim
        self.n_tokens = 1
        self.net = _mlp(n_voxels, _check_hidden(hidden), out_dim, dropout)

    def forward(self, fmri: torch.Tensor) -> torch.Tensor:
        """Encode fMRI patterns (dropout acts only in training mode).

        Parameters
        ----------
        fmri : Tensor of shape (B, V), float32
            Voxel patterns, z-scored with training statistics.

        Returns
        -------
        tokens : Tensor of shape (B, 1, out_dim), float32
        """
        _check_fmri(fmri, self.n_voxels)
        return self.net(fmri).unsqueeze(1)  # (B, 1, D)


# brain-aware encoder

class BrainAwareEncoder(nn.Module):
    """Voxel groups as tokens, mixed by transformer self-attention.

    The V voxels are cut into ``n_tokens`` contiguous groups of
    ``ceil(V / n_tokens)`` voxels (the last group is padded with zeros when V is not
    divisible). Each group has its own linear embedding to ``dim``; a learned
    position embedding marks the group; ``depth`` pre-norm transformer encoder
    layers attend across groups; a LayerNorm and a Linear project to ``out_dim``.

    Parameters
    ----------
    n_voxels : int
        Number of voxels V, read from the data.
    n_tokens : int, default 16
        Number of voxel groups T (tokens), 1 <= T <= V.
    dim : int, default 128
        Transformer width; divisible by ``heads``.
    depth : int, default 2
        Number of transformer encoder layers.
    heads : int, default 4
        Attention heads per layer.
    dropout : float, default 0.1
        Dropout inside the transformer layers, in [0, 1).
    out_dim : int, default 512
        Token dimension D handed to the U-Net.

    Raises
    ------
    ValueError
        If a size is not a positive int, ``n_tokens > n_voxels``, ``dim`` is not
        divisible by ``heads``, or ``dropout`` is outside [0, 1).

    Notes
    -----
    What "brain-aware" can mean with this data is limited:

    - The data file has no voxel coordinates, so groups follow voxel index order,
      not anatomy; neighbouring indices need not be neighbouring voxels, and the
      groups are not brain regions.
    - There is one pattern per trial and no time series, so temporal modelling
      (haemodynamics, sequences of volumes) is impossible with this data.
    """

    def __init__(
        self,
        n_voxels: int,
        *,
        n_tokens: int = 16,
        dim: int = 128,
        depth: int = 2,
        heads: int = 4,
        dropout: float = 0.1,
        out_dim: int = 512,
    ) -> None:
        super().__init__()
        for name, value in [("n_voxels", n_voxels), ("n_tokens", n_tokens), ("dim", dim),
                            ("depth", depth), ("heads", heads), ("out_dim", out_dim)]:
            _check_positive_int(name, value)
        _check_probability("dropout", dropout)
        if n_tokens > n_voxels:
            raise ValueError(
                f"n_tokens ({n_tokens}) must be <= n_voxels ({n_voxels}); "
                "every token needs at least one voxel."
            )
        if dim % heads != 0:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads}).")
        self.n_voxels = n_voxels
        self.n_tokens = n_tokens
        self.out_dim = out_dim
        self.group_size = math.ceil(n_voxels / n_tokens)
        self.n_pad = self.group_size * n_tokens - n_voxels  # zeros appended to the last group

        # one Linear(group_size -> dim) per group, stored as a batched weight
        bound = 1.0 / math.sqrt(self.group_size)
        self.group_weight = nn.Parameter(torch.empty(n_tokens, self.group_size, dim).uniform_(-bound, bound))
        self.group_bias = nn.Parameter(torch.empty(n_tokens, dim).uniform_(-bound, bound))
        self.pos_emb = nn.Parameter(torch.randn(n_tokens, dim) * 0.02)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                d_model=dim, nhead=heads, dim_feedforward=4 * dim, dropout=dropout,
                activation="gelu", batch_first=True, norm_first=True,
            )
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, out_dim)

    def forward(self, fmri: torch.Tensor) -> torch.Tensor:
        """Encode fMRI patterns into one token per voxel group.

        Parameters
        ----------
        fmri : Tensor of shape (B, V), float32
            Voxel patterns, z-scored with training statistics.

        Returns
        -------
        tokens : Tensor of shape (B, n_tokens, out_dim), float32
        """
        _check_fmri(fmri, self.n_voxels)
        B = fmri.shape[0]
        x = F.pad(fmri, (0, self.n_pad))  # (B, T * G), zero padding at the end
        x = x.view(B, self.n_tokens, self.group_size)  # (B, T, G) contiguous voxel groups
        h = torch.einsum("btg,tgd->btd", x, self.group_weight) + self.group_bias  # (B, T, dim)
        h = h + self.pos_emb
        for layer in self.layers:
            h = layer(h)  # (B, T, dim)
        return self.proj(self.norm(h))  # (B, T, D)
