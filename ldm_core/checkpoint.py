"""The stage-1 VAE cache and the reseeding that makes it exact.

The VAE stage of :func:`ldm_core.train.fit` depends only on the VAE's config, its training fields
(:data:`VAE_TRAIN_FIELDS`), the seed and the images, because its weights are initialised from their own
seed (:func:`init_vae_from_own_seed`) and every RNG is reseeded after it (:func:`reseed_after_vae`). A VAE
trained once is therefore reused by every variant that shares those (:func:`vae_cache_path`,
:func:`save_cached_vae`, :func:`load_cached_vae`) with bitwise the same result as training it again.

There are no mid-run checkpoints: no chapter used them. An interrupted study loses at most the run in
progress, because finished runs are cached by :mod:`ldm_core.study.runs` and finished VAEs here.

References
----------
- PyTorch documentation, "Reproducibility" (generator and RNG states).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ldm_core.config import REMOVED_TRAIN_FIELDS, LDMConfig, TrainConfig, exists
from ldm_core.io import atomic_torch_save, content_key, read_cached

if TYPE_CHECKING:
    from ldm_core.pipeline import BrainLDM

__all__ = ["VAE_TRAIN_FIELDS", "init_vae_from_own_seed", "reseed_after_vae", "vae_cache_path", "load_cached_vae",
           "save_cached_vae"]

# TrainConfig fields the VAE stage depends on (with the VAE's LDMConfig fields and the images): the VAE cache key.
# vae_recon, fit_latent_scale and grad_clip are removed fields: they enter at REMOVED_TRAIN_FIELDS' values.
VAE_TRAIN_FIELDS = ("vae_epochs", "vae_lr", "vae_kl_weight", "vae_recon", "vae_augment", "augment_degrees",
                    "augment_translate", "fit_latent_scale", "batch_size", "weight_decay", "grad_clip", "seed",
                    "val_every")


# stage-1 VAE: own seed, reseeding, cache

def init_vae_from_own_seed(model: BrainLDM, *, ldm_cfg: LDMConfig, seed: int) -> None:
    """Give the model's VAE the weights a VAE built right after ``torch.manual_seed(seed)`` has.

    So the VAE's initial weights do not depend on what was built before it (the encoder, whose
    size varies between variants); the global RNG is left as it was.
    """
    from ldm_core.models import build_vae

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = build_vae(ldm_cfg, image_size=model.image_size)
    model.vae.load_state_dict(fresh.state_dict())
    model.set_latent_scale(float(fresh.scale_factor))


def reseed_after_vae(generator: torch.Generator, *, seed: int) -> None:
    """Reseed the global torch RNG and the training generator with ``seed + 1`` after the VAE stage.

    What follows then does not depend on how the VAE stage drew (trained, or loaded from the cache).
    """
    torch.manual_seed(seed + 1)
    generator.manual_seed(seed + 1)


def vae_cache_path(
    cache_dir: str | None,
    *,
    ldm_cfg: LDMConfig,
    train_cfg: TrainConfig,
    images: torch.Tensor,
    images_val: torch.Tensor | None,
) -> Path | None:
    """``<cache_dir>/vae-<key>.pt``: the key hashes what the VAE stage depends on; None without a cache.

    Parameters
    ----------
    cache_dir : str or None
        ``TrainConfig.vae_cache_dir``.
    ldm_cfg, train_cfg
        Their ``vae*`` fields and :data:`VAE_TRAIN_FIELDS` enter the key.
    images : Tensor of shape (N, 1, S, S); images_val : Tensor of shape (M, 1, S, S) or None
        Their float32 bytes enter the key.
    """
    if not exists(cache_dir):
        return None
    fields = {"ldm": {k: v for k, v in ldm_cfg.to_dict().items() if k.startswith("vae")},
              "train": {k: REMOVED_TRAIN_FIELDS[k] if k in REMOVED_TRAIN_FIELDS else getattr(train_cfg, k)
                        for k in VAE_TRAIN_FIELDS},
              "val": exists(images_val)}
    arrays = [x.detach().cpu().numpy() for x in (images, images_val) if exists(x)]
    return Path(cache_dir) / f"vae-{content_key(fields, *arrays, digits=24)}.pt"


def load_cached_vae(path: Path | None, model: BrainLDM, *, device: torch.device) -> list[dict[str, Any]] | None:
    """Load a cached VAE and latent scale into ``model``; returns the VAE stage's history rows.

    Returns
    -------
    list of dict or None
        None when there is no cache or no file; also when the file cannot be read or does not fit
        this VAE (a warning names the file; the model is left untouched and the VAE is trained).
    """
    def fitting(blob: dict) -> tuple:
        state, scale, rows = blob["vae"], float(blob["latent_scale"]), [dict(r) for r in blob["history"]]
        own = model.vae.state_dict()
        if set(state) != set(own) or any(tuple(state[k].shape) != tuple(own[k].shape) for k in own):
            raise ValueError("its weights do not fit this VAE")
        return state, scale, rows

    cached = read_cached(path, "stage-1 VAE", build=fitting, map_location=device)
    if cached is None:
        return None
    state, scale, rows = cached
    model.vae.load_state_dict(state)
    model.set_latent_scale(scale)
    return rows


def save_cached_vae(path: Path | None, model: BrainLDM, history: list[dict[str, Any]]) -> None:
    """Write the model's VAE, latent scale and the history rows of the VAE stage (nothing when ``path`` is None)."""
    if path is None:
        return
    rows = [r for r in history if r["stage"] == "vae"]
    atomic_torch_save({"vae": {k: v.detach().cpu() for k, v in model.vae.state_dict().items()},
                       "latent_scale": model.latent_scale.detach().cpu(), "history": rows}, path)
