"""Training of the Brain LDM: the stage plans and the epoch loop of :func:`fit`.

:func:`fit` trains a :class:`~ldm_core.pipeline.BrainLDM` on z-scored fMRI and
[0, 1] images with one of three stage plans (``TrainConfig.stages``):

- ``"original"``: the report's failed recipe, reproduced. One joint stage: fMRI
  encoder, U-Net and the VAE *encoder* are optimised together by AdamW on the
  noise MSE only; the VAE is not pretrained and its decoder is never trained (no
  loss reaches it), so at sampling time latents are decoded by a decoder still at
  its random initialisation.
- ``"progressive"``: the report's "progressive training": (1) VAE on the training
  images (reconstruction + KL, optional affine jitter); (2) the fMRI encoder is
  aligned to the VAE latents (a linear head from the mean encoder token to the
  flattened scaled latent mean, MSE); (3) conditional diffusion on the frozen VAE's
  latents, encoder frozen, with optional image-space
  losses on the decoded x0 estimate (MSE / perceptual / SSIM / adversarial through
  the frozen decoder) and an optional multiscale (coarse head) loss.
- ``"end_to_end"``: (1) VAE as above, then (2) encoder + U-Net trained jointly from
  scratch on the diffusion loss, no alignment stage.

Every stage shares one epoch loop (:meth:`_Trainer.run_stage`): seeded data order,
timesteps, noise and fMRI augmentation from one ``torch.Generator``; AdamW, optional
cosine warm restarts (T_0 = 10, T_mult = 2, stepped per epoch), gradient clipping at
norm :data:`~ldm_core.config.GRAD_CLIP`, a validation loss at fixed draws, bfloat16
autocast on CUDA, and a ``FloatingPointError`` naming stage, epoch, step and every
loss term on a non-finite loss. An interrupted study loses at most the run in
progress: finished runs and stage-1 VAEs are cached (there are no mid-run checkpoints).

What lives elsewhere: the settings (:class:`~ldm_core.config.TrainConfig`) in
:mod:`ldm_core.config`; the stage losses (:func:`~ldm_core.stage_losses.vae_stage_loss`,
:func:`~ldm_core.stage_losses.align_stage_loss`, :func:`~ldm_core.stage_losses.diffusion_stage_loss`)
in :mod:`ldm_core.stage_losses`; the stage-1 VAE cache and its reseeding in :mod:`ldm_core.checkpoint`;
how each stage is built (what to optimise, its loss closure over the training data, its
validation) in :mod:`ldm_core.train_stages`. This module checks the data and runs the loop.

``fit`` never sees test data: validation (the fixed-noise loss logged per epoch)
comes from the ``fmri_val`` / ``images_val`` the caller split off the
training trials.

Notation (variable -> paper): ``x0`` -> z_0 (scaled latent), ``x_t`` -> z_t,
``eps`` -> epsilon, ``t`` -> timestep, ``cond`` -> tau_theta(y) (fMRI tokens).

References
----------
- Ho, Jain & Abbeel 2020, "Denoising diffusion probabilistic models" (noise MSE).
- Rombach et al. 2022, "High-resolution image synthesis with latent diffusion
  models" (two-stage training; latent rescaling by 1 / std, section 4.3.2).
- Ho & Salimans 2022, "Classifier-free diffusion guidance" (condition dropout).
- Loshchilov & Hutter 2017/2019, SGDR (warm restarts) and AdamW.
- lucidrains, ``denoising_diffusion_pytorch`` ``Trainer`` (loop shape).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

import ldm_core.checkpoint as checkpoints
from ldm_core.config import GRAD_CLIP, STAGE_PLANS, LDMConfig, TrainConfig, exists, get_preset
from ldm_core.device import amp_enabled, describe_device, resolve_device
from ldm_core.optim import optimiser_step
from ldm_core.pipeline import BrainLDM
from ldm_core.train_stages import TrainingStage, TrainingStages

__all__ = ["FitResult", "check_training_data", "fit"]


# helpers


def _to_tensor(x: Any, *, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to(torch.float32)
    try:
        return torch.as_tensor(np.asarray(x, dtype=np.float32))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a numpy array or Tensor of numbers, got {type(x).__name__}: {err}") from None


def check_training_data(
    fmri_train: Any, images_train: Any, fmri_val: Any = None, images_val: Any = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Validate and convert training (and validation) arrays.

    Parameters
    ----------
    fmri_train : array of shape (N, V), float, z-scored with training statistics
    images_train : array of shape (N, S, S), float in [0, 1]
    fmri_val, images_val : arrays of shape (M, V) and (M, S, S), or both None

    Returns
    -------
    fmri_train (N, V), images_train (N, 1, S, S), fmri_val (M, V) or None,
    images_val (M, 1, S, S) or None : float32 Tensors on CPU

    Raises
    ------
    ValueError
        On a wrong number of dimensions, non-square images, a trial count that differs
        between fMRI and images, a voxel count or image size that differs between training
        and validation, only one of the two validation arrays, values outside [0, 1] in the
        images, or NaN / infinite values.
    """
    if (fmri_val is None) != (images_val is None):
        raise ValueError(
            "pass both fmri_val and images_val (validation trials split from the training set) or neither; "
            f"got fmri_val={'None' if fmri_val is None else 'array'}, images_val={'None' if images_val is None else 'array'}."
        )
    f, im = _check_split("train", fmri_train, images_train)
    if fmri_val is None:
        return f, im, None, None
    fv, iv = _check_split("val", fmri_val, images_val)
    if f.shape[1] != fv.shape[1]:
        raise ValueError(
            f"fmri_train has {f.shape[1]} voxels but fmri_val has {fv.shape[1]}; use the same voxel set for both."
        )
    if im.shape[-1] != iv.shape[-1]:
        raise ValueError(
            f"images_train are {im.shape[-1]}x{im.shape[-1]} but images_val are "
            f"{iv.shape[-1]}x{iv.shape[-1]}; use one image size."
        )
    return f, im, fv, iv


def _check_split(split: str, fmri: Any, images: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Checks of :func:`check_training_data` on one split: fMRI (N, V) and images (N, 1, S, S) float32."""
    f = _to_tensor(fmri, name=f"fmri_{split}")
    im = _to_tensor(images, name=f"images_{split}")
    if f.ndim != 2:
        raise ValueError(f"fmri_{split} must have shape (N, V) = (trials, voxels), got {tuple(f.shape)}.")
    if im.ndim == 4 and im.shape[1] == 1:
        im = im[:, 0]  # (N, S, S)
    if im.ndim != 3 or im.shape[1] != im.shape[2]:
        raise ValueError(
            f"images_{split} must have shape (N, S, S) with square images, got {tuple(im.shape)}; "
            "reshape flat 784-pixel rows to (N, 28, 28)."
        )
    if f.shape[0] != im.shape[0]:
        raise ValueError(
            f"fmri_{split} has {f.shape[0]} trials but images_{split} has {im.shape[0]}; "
            "pass one image per fMRI trial, in the same order."
        )
    if f.shape[0] == 0:
        raise ValueError(f"fmri_{split} has no trials.")
    for name, arr in ((f"fmri_{split}", f), (f"images_{split}", im)):
        if not torch.isfinite(arr).all():
            raise ValueError(f"{name} holds {int((~torch.isfinite(arr)).sum())} NaN or infinite values; clean it first.")
    lo, hi = float(im.min()), float(im.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"images_{split} must lie in [0, 1], got values in [{lo:.3g}, {hi:.3g}]; divide uint8 images by 255."
        )
    return f, im[:, None]  # images (N, 1, S, S)


# results

@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes
    ----------
    model : BrainLDM
        Trained model in eval mode, on the training device (the last epoch's weights).
    history : dict of str -> list
        One entry per epoch of every stage, aligned lists: ``stage`` (str), ``epoch``
        (1-based within the stage), ``lr``, ``steps`` (optimiser steps in the epoch),
        ``epoch_time_s`` (wall-clock seconds of its training steps, validation excluded),
        ``train_loss`` (weighted total), ``train_<term>``
        per loss term (unweighted), ``val_loss`` (NaN when not validated that epoch); terms
        a stage lacks are NaN. The diffusion stage's ``val_loss`` is the noise MSE at fixed
        seeded (t, noise) draws, comparable across epochs.
    feature_net_name : str or None
        Name of the perceptual feature net, None when unused.
    wall_time_s : float
        Wall-clock seconds of this call.
    steps : int
        Optimiser steps over all stages.
    steps_per_s : float
        Optimiser steps per second of this call (a cached VAE stage counts no steps).
    device : str
        Where training ran, e.g. "cpu (2 threads)".
    """

    model: BrainLDM
    history: dict[str, list]
    feature_net_name: str | None
    wall_time_s: float
    steps: int
    steps_per_s: float
    device: str


# trainer

class _Trainer(TrainingStages):
    """Holds data, model, RNGs and history; runs the stages of one :func:`fit` call."""

    def __init__(self, data: tuple, *, ldm_cfg: LDMConfig, cfg: TrainConfig, device: torch.device) -> None:
        self.cfg, self.ldm_cfg, self.device = cfg, ldm_cfg, device
        fmri, images, fmri_val, images_val = data
        self.fmri, self.images = fmri.to(device), images.to(device)  # (N, V), (N, 1, S, S)
        self.fmri_val = fmri_val.to(device) if exists(fmri_val) else None
        self.images_val = images_val.to(device) if exists(images_val) else None
        self.N, self.V = self.fmri.shape
        self.amp = amp_enabled(device, amp=cfg.amp)

        torch.manual_seed(cfg.seed)  # weights; fit() forks the global RNG so the caller's is untouched
        self.model = BrainLDM(ldm_cfg, n_voxels=self.V, image_size=int(self.images.shape[-1])).to(device)
        if cfg.w_coarse > 0 and not getattr(self.model.unet, "multiscale", False):
            raise ValueError(
                f"TrainConfig.w_coarse={cfg.w_coarse} needs a U-Net with a coarse head; set LDMConfig.unet='unet' "
                "and multiscale=True, or w_coarse=0."
            )
        self.gen = torch.Generator(device=device).manual_seed(cfg.seed)  # data order, t, noise, augmentation
        self.history: list[dict[str, Any]] = []
        self.steps = 0
        self.feature_net_name: str | None = None
        self._val_draws: dict[str, torch.Tensor] | None = None

    # randomness

    def _randn(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.randn(shape, generator=self.gen, device=self.device)

    def _rand(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.rand(shape, generator=self.gen, device=self.device)

    def _augment_fmri(self, fmri: torch.Tensor) -> torch.Tensor:
        """TrainConfig's fMRI augmentation of a batch (B, V): Gaussian noise, then voxel dropout."""
        cfg = self.cfg
        if cfg.fmri_noise > 0:
            fmri = fmri + cfg.fmri_noise * self._randn(tuple(fmri.shape))
        if cfg.voxel_dropout > 0:
            keep = self._rand(tuple(fmri.shape)) >= cfg.voxel_dropout  # (B, V)
            fmri = fmri * keep / (1.0 - cfg.voxel_dropout)
        return fmri

    # the epoch loop

    def _setup_stage(self, name: str) -> tuple[TrainingStage, torch.optim.Optimizer, Any]:
        """Build stage ``name`` with its AdamW optimiser and LR scheduler (None for a constant LR)."""
        stage = self._build_stage(name)
        opt = torch.optim.AdamW(stage.params, lr=stage.lr, weight_decay=self.cfg.weight_decay)
        sched = (torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=10, T_mult=2)
                 if self.cfg.lr_schedule == "cosine_warm_restarts" else None)
        return stage, opt, sched

    def _step(self, stage: TrainingStage, opt: torch.optim.Optimizer, idx: torch.Tensor, *, epoch: int,
              batch: int) -> dict[str, float]:
        """One optimiser step on the trials ``idx`` (B,); returns the logged values of its loss terms."""
        out = stage.loss(idx)
        values = {k: float(v.detach()) for k, v in out.terms.items()}  # one sync per term, for the log
        values["loss"] = float(out.total.detach())
        if not all(math.isfinite(v) for v in values.values()):
            raise FloatingPointError(
                f"non-finite loss in stage {stage.name!r} ({self.cfg.stages} plan), epoch {epoch + 1}, step {batch + 1} "
                f"of the epoch (global step {self.steps + 1}): "
                + ", ".join(f"{k}={v!r}" for k, v in values.items())
                + f". Lower the learning rate (lr={stage.lr}) and check the inputs."
            )
        optimiser_step(opt, out.total, clip_norm=GRAD_CLIP, params=stage.params)
        self.steps += 1
        if exists(stage.after_step):
            values.update(stage.after_step())
        return values

    def _train_epoch(self, stage: TrainingStage, opt: torch.optim.Optimizer, sched: Any, *,
                     epoch: int) -> dict[str, Any]:
        """One pass over the training trials in seeded order; returns the epoch's history row (val_loss NaN)."""
        stage.set_modes()
        perm = torch.randperm(self.N, generator=self.gen, device=self.device)
        sums: dict[str, float] = defaultdict(float)
        n_batches = 0
        lr = opt.param_groups[0]["lr"]
        t_epoch = time.perf_counter()
        bs = self.cfg.batch_size
        for b, s in enumerate(range(0, self.N, bs)):
            for k, v in self._step(stage, opt, perm[s:s + bs], epoch=epoch, batch=b).items():
                sums[k] += v
            n_batches += 1
        if exists(sched):
            sched.step()
        row: dict[str, Any] = {"stage": stage.name, "epoch": epoch + 1, "lr": lr, "steps": n_batches,
                               "epoch_time_s": time.perf_counter() - t_epoch,
                               "train_loss": sums.pop("loss") / n_batches}
        row.update({f"train_{k}": v / n_batches for k, v in sums.items()})
        row["val_loss"] = math.nan
        return row

    def run_stage(self, name: str, *, final: bool) -> None:
        cfg = self.cfg
        stage, opt, sched = self._setup_stage(name)
        from tqdm.auto import tqdm

        bar = tqdm(range(stage.epochs), desc=f"{name} ({cfg.stages})", unit="epoch",
                   **({} if cfg.progress else {"disable": True}))  # TQDM_DISABLE=1 still applies
        for epoch in bar:
            row = self._train_epoch(stage, opt, sched, epoch=epoch)
            if exists(stage.validate) and ((epoch + 1) % cfg.val_every == 0 or epoch + 1 == stage.epochs):
                row["val_loss"] = stage.validate()
            self.history.append(row)
            bar.set_postfix(loss=f"{row['train_loss']:.4g}", val=f"{row['val_loss']:.4g}")
        bar.close()
        self.model.requires_grad_(True)
        if not final and exists(stage.finish):
            stage.finish()

    def run(self) -> None:
        plan = [n for n in STAGE_PLANS[self.cfg.stages]
                if not (n == "vae" and self.cfg.vae_epochs == 0) and not (n == "align" and self.cfg.align_epochs == 0)]
        for i, name in enumerate(plan):
            reuses_vae = name == "vae" and i < len(plan) - 1
            if reuses_vae:
                checkpoints.init_vae_from_own_seed(self.model, ldm_cfg=self.ldm_cfg, seed=self.cfg.seed)
                if self._load_cached_vae():
                    continue
            self.run_stage(name, final=i == len(plan) - 1)
            if reuses_vae:
                checkpoints.save_cached_vae(self._vae_cache_path(), self.model, self.history)


# fit

def fit(
    fmri_train: Any,
    images_train: Any,
    *,
    fmri_val: Any = None,
    images_val: Any = None,
    ldm_cfg: LDMConfig | str,
    train_cfg: TrainConfig | Mapping[str, Any] | None = None,
) -> FitResult:
    """Train a Brain LDM.

    Parameters
    ----------
    fmri_train : array of shape (N, V), float32
        Training fMRI, z-scored by the caller with training statistics.
    images_train : array of shape (N, S, S), float32 in [0, 1]
        Stimulus images of the training trials, same order.
    fmri_val, images_val : arrays of shape (M, V) and (M, S, S), optional
        Validation trials split off the training set (never the test set), z-scored with
        the training statistics; used for the validation loss.
    ldm_cfg : LDMConfig or str
        Architecture, or a preset name ("original", "fixed").
    train_cfg : TrainConfig or mapping, optional
        Training settings; a mapping goes through ``TrainConfig.from_dict``. None = defaults.

    Returns
    -------
    FitResult

    Raises
    ------
    ValueError
        On bad inputs (see :func:`check_training_data`) or an image size the VAE does not take.
    FloatingPointError
        When a training loss becomes NaN or infinite (names stage, epoch, step, terms).
    """
    ldm_cfg, cfg = _as_configs(ldm_cfg, train_cfg)
    data = check_training_data(fmri_train, images_train, fmri_val, images_val)
    device = resolve_device(cfg.device)

    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else [], device_type=device.type):
        trainer = _Trainer(data, ldm_cfg=ldm_cfg, cfg=cfg, device=device)
        trainer.run()
    wall = time.perf_counter() - t0
    return FitResult(
        model=trainer.model.eval(),
        history=_columns(trainer.history),
        feature_net_name=trainer.feature_net_name,
        wall_time_s=wall,
        steps=trainer.steps,
        steps_per_s=trainer.steps / wall if wall > 0 else math.nan,
        device=describe_device(device),
    )


def _as_configs(ldm_cfg: Any, train_cfg: Any) -> tuple[LDMConfig, TrainConfig]:
    """``fit``'s config arguments as an LDMConfig and a TrainConfig (ValueError naming a wrong type)."""
    if isinstance(ldm_cfg, str):
        ldm_cfg = get_preset(ldm_cfg)
    if not isinstance(ldm_cfg, LDMConfig):
        raise ValueError(f"ldm_cfg must be an LDMConfig or a preset name, got {type(ldm_cfg).__name__}.")
    cfg = TrainConfig() if train_cfg is None else train_cfg
    if isinstance(cfg, Mapping):
        cfg = TrainConfig.from_dict(cfg)
    if not isinstance(cfg, TrainConfig):
        raise ValueError(f"train_cfg must be a TrainConfig, a mapping or None, got {type(cfg).__name__}.")
    return ldm_cfg, cfg


def _columns(rows: list[dict[str, Any]]) -> dict[str, list]:
    """Per-epoch rows -> aligned columns, NaN where a row lacks a key (key order of first appearance)."""
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    return {k: [row.get(k, math.nan) for row in rows] for k in keys}
