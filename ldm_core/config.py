"""Model configuration of the Brain LDM: one dataclass, two presets.

:class:`LDMConfig` names every architectural choice of the study (encoder, VAE,
denoiser, conditioning, noise schedule); its defaults are the report's original
model. ``PRESETS["original"]`` reproduces that model with its defects;
``PRESETS["fixed"]`` switches on the fixes. A params YAML lists only the fields
that differ; :meth:`LDMConfig.from_dict` refuses unknown keys and wrong types, as
nanoGPT's ``configurator.py`` does. The builders turning a config into modules
live in :mod:`ldm_core.models` (``build_encoder``, ``build_vae``, ``build_unet``,
``build_schedule``). Training settings (learning rates, epochs, losses, stages)
belong to :mod:`ldm_core.train`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

__all__ = ["LDMConfig", "PRESETS", "get_preset", "CHOICES"]

# allowed values of the string fields
CHOICES: dict[str, tuple[str, ...]] = {
    "encoder": ("mlp_original", "mlp_regularised", "brain_aware"),
    "vae": ("original", "large"),
    "vae_norm": ("none", "group", "batch"),
    "unet": ("original", "unet"),
    "conditioning": ("add", "film", "cross_attn", "none"),
    "cond_points": ("all", "mid"),
    "schedule": ("linear", "cosine"),
    "prediction": ("eps", "x0"),
}


# config

@dataclass
class LDMConfig:
    """Architecture of a Brain LDM; the defaults are the report's original model.

    Raises
    ------
    ValueError
        From ``__post_init__``: a string field outside its allowed values (listed
        in ``CHOICES``), a value of the wrong type, a non-positive size, or
        ``multiscale=True`` with ``unet="original"`` or a single U-Net level.
    """

    # fMRI encoder
    encoder: str = "mlp_original"  # "mlp_original" (report's V-1024-768-512-512 MLP), "mlp_regularised", "brain_aware"
    encoder_dim: int = 512  # token dimension D handed to the U-Net
    encoder_hidden: tuple[int, ...] = (1024, 768, 512)  # hidden widths of the MLP encoders (unused by brain_aware)
    encoder_dropout: float = 0.1  # dropout after each MLP hidden block, or inside the transformer layers; in [0, 1)
    encoder_input_noise: float = 0.0  # std of noise added to z-scored fMRI in training (mlp_regularised only)
    encoder_voxel_dropout: float = 0.0  # P(zero a voxel) in training, in [0, 1) (mlp_regularised only)
    encoder_tokens: int = 16  # number of contiguous voxel groups = tokens (brain_aware only)
    # VAE
    vae: str = "original"  # "original": 4x7x7 latent; "large": residual VAE, 8x8x8 latent on a 32x32 canvas
    vae_norm: str = "none"  # normalisation in the VAE: "none" (the original), "group" or "batch"
    # denoiser
    unet: str = "original"  # "original": 5-conv stack ignoring t and cond; "unet": skip U-Net, res blocks
    original_unet_uses_embedding: bool = False  # "original" U-Net only: True adds the t + fMRI embedding (repair)
    unet_channels: tuple[int, ...] = (64, 128)  # widths per resolution level of the "unet" (each divisible by 8)
    unet_attention: bool = True  # self-attention at the lowest resolution ("unet" only)
    conditioning: str = "add"  # fMRI into the "unet": "add" (to t embedding), "film", "cross_attn", "none"
    cond_points: str = "all"  # blocks receiving the condition: "all" or "mid" (lowest resolution only)
    multiscale: bool = False  # extra half-resolution output head, the hierarchical variant ("unet" only)
    # noise schedule
    schedule: str = "linear"  # betas: "linear" (DDPM) or "cosine" (Nichol & Dhariwal 2021)
    n_train_steps: int = 1000  # diffusion steps T
    beta_start: float = 1e-4  # first beta of the linear schedule
    beta_end: float = 0.02  # last beta of the linear schedule
    prediction: str = "eps"  # denoiser target: "eps" (noise) or "x0" (clean latent)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            default = f.default
            if isinstance(default, bool):
                ok = isinstance(value, bool)
            elif isinstance(default, int):
                ok = isinstance(value, int) and not isinstance(value, bool)
            elif isinstance(default, float):
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
                if ok:
                    setattr(self, f.name, float(value))
            elif isinstance(default, tuple):
                if isinstance(value, list):
                    value = tuple(value)
                    setattr(self, f.name, value)
                ok = isinstance(value, tuple) and all(
                    isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
                )
            else:
                ok = isinstance(value, str)
            if not ok:
                raise ValueError(
                    f"LDMConfig.{f.name} must be of the type of its default {default!r} "
                    f"({type(default).__name__}{' of positive ints' if isinstance(default, tuple) else ''}), "
                    f"got {value!r}."
                )
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"LDMConfig.{name} must be one of {allowed}, got {value!r}.")
        for name in ("encoder_dim", "encoder_tokens", "n_train_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"LDMConfig.{name} must be >= 1, got {getattr(self, name)!r}.")
        if not self.unet_channels:
            raise ValueError("LDMConfig.unet_channels must hold at least one width, got ().")
        if self.multiscale and self.unet == "original":
            raise ValueError(
                "LDMConfig.multiscale=True needs unet='unet'; the original U-Net has no coarse head."
            )
        if self.multiscale and len(self.unet_channels) < 2:
            raise ValueError(
                f"LDMConfig.multiscale=True needs at least two unet_channels levels, got {self.unet_channels!r}."
            )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LDMConfig":
        """Build a config from a mapping (a params YAML section); lists become tuples.

        Parameters
        ----------
        d : mapping of str to value
            Field names and values; missing fields keep their defaults.

        Returns
        -------
        LDMConfig

        Raises
        ------
        ValueError
            If ``d`` has keys that are not fields (they are named, and the valid
            keys listed), or a value fails the checks of ``__post_init__``.
        """
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(valid))
        if unknown:
            raise ValueError(f"unknown LDMConfig key(s) {unknown}; valid keys are {valid}.")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def to_dict(self) -> dict[str, Any]:
        """Plain dict with lists for tuples, ready for JSON or YAML; ``from_dict`` inverts it."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


# presets

PRESETS: dict[str, LDMConfig] = {
    # the report's model, defects included: over-parameterised MLP encoder, 4x7x7 VAE
    # without normalisation, a conv stack that ignores t and the fMRI condition
    "original": LDMConfig(),
    "fixed": LDMConfig(
        encoder="mlp_regularised",  # fewer weights and more regularisation for 90 training trials
        encoder_hidden=(512,),  # one 512-wide hidden block instead of three wider ones
        encoder_dropout=0.5,  # heavy dropout against memorising 90 trials
        encoder_input_noise=0.1,  # mild noise on z-scored voxels (0.1 training std)
        encoder_voxel_dropout=0.1,  # drop 10 % of voxels per trial in training
        vae="large",  # 8x8x8 latent: more capacity than 4x7x7
        vae_norm="group",  # stable training with small batches
        unet="unet",  # skip connections, residual blocks, t in every block
        conditioning="film",  # the condition actually reaches the network, as scale and shift
        cond_points="all",  # in every block
    ),
}


def get_preset(name: str, **overrides: Any) -> LDMConfig:
    """A fresh copy of a preset, with fields overridden by keyword.

    Parameters
    ----------
    name : {"original", "fixed"}
        Preset name.
    **overrides
        Field values replacing the preset's (checked like ``from_dict``).

    Returns
    -------
    LDMConfig

    Raises
    ------
    ValueError
        If ``name`` is not a preset (the presets are listed), or an override is an
        unknown field or a bad value.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets are {sorted(PRESETS)}.")
    return LDMConfig.from_dict({**dataclasses.asdict(PRESETS[name]), **overrides})
