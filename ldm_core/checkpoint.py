"""Training state on disk and in RNGs: resumable checkpoints, the stage-1 VAE cache, reseeding.

What :func:`ldm_core.train.fit` needs to stop and resume bit-exactly, and to reuse a trained VAE:

- RNG state: :func:`rng_state` / :func:`set_rng_state` capture and restore every random source
  a run draws from (torch's global CPU RNG, the CUDA RNG, the training ``torch.Generator`` and
  NumPy's global RNG), as tensors and plain types.
- Checkpoints: :func:`save_checkpoint` writes ``<checkpoint_dir>/last.pt`` atomically (model,
  optimiser, scheduler, EMA, discriminator, early-stopping state, history and RNG state, so
  ``torch.load(path, weights_only=True)`` reads it); :func:`load_checkpoint` checks it was made
  with the same settings (only :data:`~ldm_core.config.RESUMABLE_CHANGES` may differ);
  :func:`load_stage_state` puts a mid-stage checkpoint back into a stage's optimiser and modules.
- Best weights: :func:`snapshot` / :func:`restore` keep the best-validation weights in memory
  for early stopping.
- The stage-1 VAE cache: the VAE stage depends only on the VAE's config, its training fields
  (:data:`VAE_TRAIN_FIELDS`), the seed and the images, because its weights are initialised from
  their own seed (:func:`init_vae_from_own_seed`) and every RNG is reseeded after it
  (:func:`reseed_after_vae`). A VAE trained once is therefore reused by every variant that shares
  those (:func:`vae_cache_path`, :func:`save_cached_vae`, :func:`load_cached_vae`) with bitwise the
  same result as training it again.

References
----------
- nanoGPT ``train.py`` (checkpoint holds model, optimiser, config and iteration; resume from it).
- PyTorch documentation, "Reproducibility" (generator and RNG states).
"""
from __future__ import annotations

import copy
import hashlib
import json
import pickle
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ldm_core.config import RESUMABLE_CHANGES, LDMConfig, TrainConfig, exists
from ldm_core.ema import EMA
from ldm_core.io import atomic_torch_save

if TYPE_CHECKING:
    from ldm_core.pipeline import BrainLDM

__all__ = [
    "CHECKPOINT_NAME", "CHECKPOINT_FORMAT", "VAE_TRAIN_FIELDS",
    "rng_state", "set_rng_state",
    "checkpoint_path", "save_checkpoint", "load_checkpoint", "load_stage_state",
    "snapshot", "restore",
    "init_vae_from_own_seed", "reseed_after_vae", "vae_cache_path", "load_cached_vae", "save_cached_vae",
]

CHECKPOINT_NAME = "last.pt"  # file inside TrainConfig.checkpoint_dir
CHECKPOINT_FORMAT = "brain_ldm_train/1"
# TrainConfig fields the VAE stage depends on (with the VAE's LDMConfig fields and the images): the VAE cache key
VAE_TRAIN_FIELDS = ("vae_epochs", "vae_lr", "vae_kl_weight", "vae_recon", "vae_augment", "augment_degrees",
                    "augment_translate", "fit_latent_scale", "batch_size", "weight_decay", "grad_clip", "seed",
                    "val_every")
_UNREADABLE = (OSError, RuntimeError, ValueError, KeyError, TypeError, EOFError, pickle.UnpicklingError,
               zipfile.BadZipFile)  # what torch.load and a malformed payload raise


# randomness

def rng_state(generator: torch.Generator, device: torch.device) -> dict[str, Any]:
    """Every RNG state a training run draws from, as tensors and plain types.

    Parameters
    ----------
    generator : torch.Generator
        The training generator (data order, timesteps, noise, augmentation).
    device : torch.device
        Training device; on CUDA its RNG state is included.

    Returns
    -------
    dict with ``"torch"``, ``"cuda"`` (None on CPU), ``"generator"`` (ByteTensors) and ``"numpy"``
    (NumPy's global MT19937 state: key name, position, Gaussian cache and the 624 words as int64).
    """
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "generator": generator.get_state(),
        "numpy": {"key": np_state[0], "pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                  "cached_gaussian": float(np_state[4]), "state": torch.from_numpy(np_state[1].astype(np.int64))},
    }


def set_rng_state(state: Mapping[str, Any], generator: torch.Generator, device: torch.device) -> None:
    """Restore what :func:`rng_state` captured (the CUDA state only on a CUDA device)."""
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)
    generator.set_state(state["generator"])
    n = state["numpy"]
    np.random.set_state((n["key"], n["state"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))


# checkpoints

def checkpoint_path(checkpoint_dir: str | None) -> Path | None:
    """``<checkpoint_dir>/last.pt``, or None when checkpoints are off."""
    return Path(checkpoint_dir) / CHECKPOINT_NAME if exists(checkpoint_dir) else None


def save_checkpoint(
    path: Path | None,
    *,
    model: nn.Module,
    train_cfg: TrainConfig,
    ldm_cfg: LDMConfig,
    n_voxels: int,
    stage_index: int,
    epoch: int,
    history: list[dict[str, Any]],
    steps: int,
    feature_net_name: str | None,
    rng: Mapping[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    ema: EMA | None = None,
    extras: Mapping[str, nn.Module] | None = None,
    extra_opts: Mapping[str, torch.optim.Optimizer] | None = None,
    early: Mapping[str, Any] | None = None,
) -> None:
    """Write a resumable training checkpoint atomically (nothing when ``path`` is None).

    Parameters
    ----------
    path : Path or None
        From :func:`checkpoint_path`.
    model : BrainLDM
    train_cfg, ldm_cfg : the run's configs; n_voxels : int, V
    stage_index : int
        Index of the stage in the run's plan; ``epoch`` (int) epochs of it are done. A stage
        boundary is saved as (next stage, epoch 0) without optimiser state.
    history, steps, feature_net_name, rng
        The run's per-epoch rows, optimiser steps so far, perceptual net name and :func:`rng_state`.
    optimizer, scheduler, ema, extras, extra_opts, early
        Mid-stage state: the stage's optimiser and LR scheduler, its EMA, modules outside the model
        (align head, discriminator) and their optimisers, and the early-stopping record.
    """
    if path is None:
        return
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "train_cfg": train_cfg.to_dict(),
        "ldm_cfg": ldm_cfg.to_dict(),
        "n_voxels": n_voxels,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "stage_index": stage_index,
        "epoch": epoch,
        "optimizer": optimizer.state_dict() if exists(optimizer) else None,
        "scheduler": scheduler.state_dict() if exists(scheduler) else None,
        "ema": ema.state_dict() if exists(ema) else None,
        "extras": {k: m.state_dict() for k, m in (extras or {}).items()},
        "extra_opts": {k: o.state_dict() for k, o in (extra_opts or {}).items()},
        "early": early,
        "history": history,
        "steps": steps,
        "feature_net_name": feature_net_name,
        "rng": rng,
    }
    atomic_torch_save(ckpt, path)


def load_checkpoint(
    path: Path | None, *, train_cfg: TrainConfig, ldm_cfg: LDMConfig, n_voxels: int
) -> dict[str, Any] | None:
    """Read and check a checkpoint written by :func:`save_checkpoint`.

    Returns
    -------
    dict or None
        The checkpoint (tensors and plain types); None when ``path`` is None or no file is there.

    Raises
    ------
    ValueError
        If the file is not a training checkpoint of :data:`CHECKPOINT_FORMAT`, or was made with
        TrainConfig fields other than :data:`~ldm_core.config.RESUMABLE_CHANGES` set differently
        (named, with the saved values), or with another LDMConfig or voxel count.
    """
    if path is None or not path.is_file():
        return None
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a training checkpoint of format {CHECKPOINT_FORMAT!r}; delete it or use another checkpoint_dir.")
    saved, now = ckpt["train_cfg"], train_cfg.to_dict()
    diff = sorted(k for k in now if k not in RESUMABLE_CHANGES and saved.get(k) != now[k])
    if diff:
        raise ValueError(
            f"cannot resume from {path}: TrainConfig field(s) {diff} differ from the checkpoint's "
            f"({ {k: saved.get(k) for k in diff} }); only {RESUMABLE_CHANGES} may change. Use the same "
            "settings or another checkpoint_dir."
        )
    if _ldm_cfg_of(ckpt["ldm_cfg"]) != ldm_cfg or ckpt["n_voxels"] != n_voxels:
        raise ValueError(f"cannot resume from {path}: it was trained with another LDMConfig or voxel count "
                         f"({ckpt['n_voxels']} voxels); use the same model config or another checkpoint_dir.")
    return ckpt


def _ldm_cfg_of(d: Mapping[str, Any]) -> LDMConfig | None:
    """The LDMConfig a checkpoint records (older ones may hold removed fields at 0), None if unreadable."""
    try:
        return LDMConfig.from_dict(d)
    except ValueError:
        return None


def load_stage_state(
    ckpt: Mapping[str, Any],
    *,
    optimizer: torch.optim.Optimizer,
    scheduler: Any = None,
    ema: EMA | None = None,
    extras: Mapping[str, nn.Module] | None = None,
    extra_opts: Mapping[str, torch.optim.Optimizer] | None = None,
) -> tuple[dict[str, Any] | None, int]:
    """Load a mid-stage checkpoint into a freshly built stage.

    Returns
    -------
    early : dict or None
        The saved early-stopping record (None when the checkpoint has none).
    start : int
        Epochs of the stage already done.
    """
    optimizer.load_state_dict(ckpt["optimizer"])
    if exists(scheduler):
        scheduler.load_state_dict(ckpt["scheduler"])
    if exists(ema):
        ema.load_state_dict(ckpt["ema"])
    for k, m in (extras or {}).items():
        m.load_state_dict(ckpt["extras"][k])
    for k, o in (extra_opts or {}).items():
        o.load_state_dict(ckpt["extra_opts"][k])
    early = dict(ckpt["early"]) if exists(ckpt["early"]) else None
    return early, int(ckpt["epoch"])


# best weights (early stopping)

def snapshot(model: nn.Module, extras: Mapping[str, nn.Module]) -> dict[str, Any]:
    """In-memory copy of the model's and the stage's extra modules' states."""
    return {"model": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "extras": {k: copy.deepcopy(m.state_dict()) for k, m in extras.items()}}


def restore(model: nn.Module, extras: Mapping[str, nn.Module], snap: Mapping[str, Any]) -> None:
    """Put a :func:`snapshot` back."""
    model.load_state_dict(snap["model"])
    for k, m in extras.items():
        m.load_state_dict(snap["extras"][k])


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
    h = hashlib.sha256()
    h.update(json.dumps({"ldm": {k: v for k, v in ldm_cfg.to_dict().items() if k.startswith("vae")},
                         "train": {k: getattr(train_cfg, k) for k in VAE_TRAIN_FIELDS},
                         "val": exists(images_val)}, sort_keys=True).encode())
    h.update(images.detach().cpu().numpy().tobytes())
    if exists(images_val):
        h.update(images_val.detach().cpu().numpy().tobytes())
    return Path(cache_dir) / f"vae-{h.hexdigest()[:24]}.pt"


def load_cached_vae(path: Path | None, model: BrainLDM, *, device: torch.device) -> list[dict[str, Any]] | None:
    """Load a cached VAE and latent scale into ``model``; returns the VAE stage's history rows.

    Returns
    -------
    list of dict or None
        None when there is no cache or no file; also when the file cannot be read or does not fit
        this VAE (a warning names the file; the model is left untouched and the VAE is trained).
    """
    if path is None or not path.is_file():
        return None
    try:
        blob = torch.load(path, map_location=device, weights_only=True)
        state, scale, rows = blob["vae"], float(blob["latent_scale"]), [dict(r) for r in blob["history"]]
        own = model.vae.state_dict()
        if set(state) != set(own) or any(tuple(state[k].shape) != tuple(own[k].shape) for k in own):
            raise ValueError("its weights do not fit this VAE")
    except _UNREADABLE as err:
        warnings.warn(f"ignoring the unreadable cached VAE {path} ({type(err).__name__}: {err}); training the "
                      "VAE instead (the file is overwritten)", RuntimeWarning, stacklevel=2)
        return None
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
