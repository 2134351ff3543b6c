"""How each training stage of :func:`ldm_core.train.fit` is built: what to optimise, its loss closure over the
training data, its validation at fixed draws and its stage-end work.

:class:`TrainingStages` is the part of the trainer (``ldm_core.train._Trainer``) that builds the three stages --
stage 1, the VAE (reconstruction + KL, its cache, the latent scale fitted after it); stage 2, the alignment of the
fMRI encoder to the VAE latents; stage 3, conditional diffusion on the latents with the optional image-space losses and
the discriminator's step -- from the trainer's data, model and random generator (``self.gen``: every draw comes from
it, in the order the loop asks). :class:`TrainingStage` is what the epoch loop of :mod:`ldm_core.train` runs.
:func:`random_affine` is the VAE stage's image augmentation.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import ldm_core.checkpoint as checkpoints
from ldm_core.adversarial import PatchDiscriminator, d_loss
from ldm_core.config import VAL_REPEATS, exists
from ldm_core.device import autocast
from ldm_core.losses import ImageLoss, PerceptualLoss
from ldm_core.optim import optimiser_step
from ldm_core.stage_losses import StageLoss, align_stage_loss, align_targets, diffusion_stage_loss, vae_stage_loss

__all__ = ["random_affine", "TrainingStage", "TrainingStages"]


def random_affine(
    images: torch.Tensor, *, generator: torch.Generator, degrees: float, translate: float
) -> torch.Tensor:
    """Random rotation and translation of each image (affine jitter), from a seeded generator.

    Parameters
    ----------
    images : Tensor of shape (B, 1, S, S), float32 in [0, 1]
    generator : torch.Generator
        On the images' device; the only source of randomness (so a run repeats exactly).
    degrees : float
        Rotation angle drawn uniformly from [-degrees, degrees], in degrees.
    translate : float
        Shift drawn uniformly from [-translate, translate] per axis, as a fraction of the side.

    Returns
    -------
    Tensor of shape (B, 1, S, S), float32 in [0, 1]; bilinear resampling, zero (background) fill.

    Notes
    -----
    torchvision's ``RandomAffine`` draws from the global RNG, one parameter set per call; we
    need a per-image draw from our generator, so we build the grids with ``affine_grid``.
    """
    B = images.shape[0]
    u = torch.rand(B, 3, generator=generator, device=images.device) * 2 - 1  # (B, 3) in [-1, 1]
    angle = u[:, 0] * math.radians(degrees)
    shift = u[:, 1:] * translate * 2  # affine_grid coordinates span [-1, 1] = 2 units per side
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], dim=1), torch.stack([sin, cos, shift[:, 1]], dim=1)], dim=1
    )  # (B, 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)  # (B, S, S, 2)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.clamp(0.0, 1.0)


@dataclass
class TrainingStage:
    """One training stage: what to optimise, its loss and validation, stage-end work."""

    name: str  # "vae", "align" or "diffusion"
    epochs: int  # epochs of this stage
    lr: float  # AdamW learning rate
    params: list[nn.Parameter]  # optimised parameters
    loss: Callable[[torch.Tensor], StageLoss]  # batch indices (B,) -> StageLoss(total, terms, ...)
    set_modes: Callable[[], None]  # train / eval mode of each module
    validate: Callable[[], float] | None = None  # validation loss (fixed draws), None without validation data
    after_step: Callable[[], dict[str, float]] | None = None  # e.g. the discriminator step
    finish: Callable[[], None] | None = None  # stage-end work of a non-final stage (latent scale fit)


class TrainingStages:
    """The stage builders of the trainer (a base class of ``ldm_core.train._Trainer``, whose ``__init__`` sets the data,
    ``model``, ``cfg``, ``gen`` and ``history`` they read)."""

    # stage 1: VAE

    def _vae_stage(self) -> TrainingStage:
        cfg, vae = self.cfg, self.model.vae
        kw = dict(kl_weight=cfg.vae_kl_weight, amp=self.amp)

        def loss(idx: torch.Tensor) -> StageLoss:
            images = self.images[idx]
            if cfg.vae_augment:
                images = random_affine(images, generator=self.gen, degrees=cfg.augment_degrees,
                                       translate=cfg.augment_translate)
            return vae_stage_loss(vae, images=images, sample=True, generator=self.gen, **kw)

        validate = None
        if exists(self.images_val):
            @torch.no_grad()
            def validate() -> float:
                vae.eval()
                return float(vae_stage_loss(vae, images=self.images_val, sample=False, **kw).total)

        def set_modes() -> None:
            self.model.eval()
            vae.train()

        def finish() -> None:
            self._fit_latent_scale()
            checkpoints.reseed_after_vae(self.gen, seed=cfg.seed)

        return TrainingStage("vae", cfg.vae_epochs, cfg.vae_lr, list(vae.parameters()), loss, set_modes,
                      validate=validate, finish=finish)

    @torch.no_grad()
    def _fit_latent_scale(self) -> None:
        """latent_scale = 1 / std of VAE latents of the training images (posterior mean and variance pooled)."""
        vae = self.model.vae
        vae.eval()
        mean, logvar = vae.encode(self.images)  # (N, C, h, w) each
        var = (mean - mean.mean()).pow(2).mean() + logvar.exp().mean()  # total variance of z = mean + sigma * eps
        self.model.set_latent_scale(float(1.0 / var.clamp(min=1e-12).sqrt()))

    def _vae_cache_path(self) -> Path | None:
        return checkpoints.vae_cache_path(self.cfg.vae_cache_dir, ldm_cfg=self.ldm_cfg, train_cfg=self.cfg,
                                          images=self.images, images_val=self.images_val)

    def _load_cached_vae(self) -> bool:
        rows = checkpoints.load_cached_vae(self._vae_cache_path(), self.model, device=self.device)
        if rows is None:
            return False
        self.history.extend(rows)
        checkpoints.reseed_after_vae(self.gen, seed=self.cfg.seed)
        return True

    # stage 2: encoder alignment

    def _align_stage(self) -> TrainingStage:
        cfg, model = self.cfg, self.model
        C, h, w = model.latent_shape
        head = nn.Linear(model.encoder.out_dim, C * h * w).to(self.device)  # mean token (D) -> flat latent
        model.vae.eval()
        target_train = align_targets(model, self.images)  # (N, C*h*w)
        target_val = align_targets(model, self.images_val) if exists(self.images_val) else None

        def loss(idx: torch.Tensor) -> StageLoss:
            return align_stage_loss(model, fmri=self._augment_fmri(self.fmri[idx]), target=target_train[idx],
                                    head=head, amp=self.amp)

        validate = None
        if exists(target_val):
            @torch.no_grad()
            def validate() -> float:
                model.encoder.eval()
                head.eval()
                return float(align_stage_loss(model, fmri=self.fmri_val, target=target_val, head=head, amp=self.amp).total)

        def set_modes() -> None:
            model.eval()
            model.encoder.train()
            head.train()

        params = list(model.encoder.parameters()) + list(head.parameters())
        return TrainingStage("align", cfg.align_epochs, cfg.lr, params, loss, set_modes, validate=validate)

    # stage 3: diffusion

    def _make_image_loss(self) -> tuple[ImageLoss | None, PatchDiscriminator | None]:
        cfg = self.cfg
        if cfg.w_img_mse == cfg.w_perceptual == cfg.w_ssim == cfg.w_adv == 0:
            return None, None
        perceptual = None
        if cfg.w_perceptual > 0:
            from ldm_core.feature_net import get_feature_net

            net, self.feature_net_name = get_feature_net(
                cfg.perceptual_net, cache_dir=cfg.feature_net_cache_dir, seed=cfg.seed)
            perceptual = PerceptualLoss(net.to(self.device))
        disc = PatchDiscriminator(spectral_norm=True).to(self.device) if cfg.w_adv > 0 else None
        image_loss = ImageLoss(w_mse=cfg.w_img_mse, w_perceptual=cfg.w_perceptual, w_ssim=cfg.w_ssim,
                               w_adv=cfg.w_adv, perceptual=perceptual, discriminator=disc, adv_kind=cfg.adv_kind)
        return image_loss.to(self.device), disc

    def _val_noise(self) -> dict[str, torch.Tensor]:
        """Fixed validation draws (t, eps, posterior eps) from their own seeded generator."""
        if self._val_draws is None:
            M = self.fmri_val.shape[0] * VAL_REPEATS
            g = torch.Generator(device=self.device).manual_seed(self.cfg.seed + 1)
            shape = (M, *self.model.latent_shape)
            self._val_draws = {
                "t": torch.randint(0, self.model.schedule.n_train_steps, (M,), generator=g, device=self.device),
                "noise": torch.randn(shape, generator=g, device=self.device),
                "z_eps": torch.randn(shape, generator=g, device=self.device),
            }
        return self._val_draws

    def _diffusion_params(self, *, train_encoder: bool, train_vae_encoder: bool) -> list[nn.Parameter]:
        """Freeze all but the U-Net (and the encoders the plan trains); the parameters to optimise."""
        model = self.model
        model.requires_grad_(False)
        model.unet.requires_grad_(True)
        if train_encoder:
            model.encoder.requires_grad_(True)
        if train_vae_encoder:
            model.vae.encoder.requires_grad_(True)  # the decoder stays out: no loss reaches it
        return [p for p in model.parameters() if p.requires_grad]

    def _diffusion_stage(self, *, train_encoder: bool, train_vae_encoder: bool) -> TrainingStage:
        cfg, model = self.cfg, self.model
        T = model.schedule.n_train_steps
        image_loss, disc = self._make_image_loss()
        last: dict[str, torch.Tensor] = {}  # real / fake images of the last step, for the discriminator
        params = self._diffusion_params(train_encoder=train_encoder, train_vae_encoder=train_vae_encoder)
        kw = dict(w_noise=cfg.w_noise, w_coarse=cfg.w_coarse, img_loss_t_frac=cfg.img_loss_t_frac,
                  train_encoder=train_encoder, train_vae_encoder=train_vae_encoder, amp=self.amp)

        def loss(idx: torch.Tensor) -> StageLoss:
            B = idx.shape[0]
            fmri = self._augment_fmri(self.fmri[idx])
            t = torch.randint(0, T, (B,), generator=self.gen, device=self.device)
            noise = self._randn((B, *model.latent_shape))
            z_eps = self._randn((B, *model.latent_shape))
            drop = self._rand((B,)) < cfg.cfg_dropout if cfg.cfg_dropout > 0 else None
            last.clear()
            out = diffusion_stage_loss(model, fmri=fmri, images=self.images[idx], t=t, noise=noise, z_eps=z_eps,
                                       cond_drop=drop, image_loss=image_loss, **kw)
            if exists(out.fake):
                last.update(real=out.real, fake=out.fake)
            return out

        validate = None
        if exists(self.fmri_val):
            @torch.no_grad()
            def validate() -> float:
                model.eval()
                draws, R = self._val_noise(), VAL_REPEATS
                out = diffusion_stage_loss(model, fmri=self.fmri_val.repeat(R, 1),  # (R*M, V)
                                           images=self.images_val.repeat(R, 1, 1, 1),  # (R*M, 1, S, S)
                                           t=draws["t"], noise=draws["noise"], z_eps=draws["z_eps"], **kw)
                return float(out.terms["noise"])

        def set_modes() -> None:
            model.eval()
            model.unet.train()
            if train_encoder:
                model.encoder.train()
            if train_vae_encoder:
                model.vae.encoder.train()

        return TrainingStage("diffusion", cfg.epochs, cfg.lr, params, loss, set_modes, validate=validate,
                      after_step=self._discriminator_step(disc, last))

    def _discriminator_step(self, disc: PatchDiscriminator | None, last: Mapping[str, torch.Tensor]):
        """``after_step`` of the adversarial term: one discriminator step after each generator step (None without)."""
        if disc is None:
            return None
        cfg = self.cfg
        d_opt = torch.optim.AdamW(disc.parameters(), lr=cfg.lr, betas=(0.5, 0.999), weight_decay=cfg.weight_decay)

        def after_step() -> dict[str, float]:
            if not last:
                return {}
            with autocast(self.device, enabled=self.amp):
                loss_d = d_loss(disc(last["real"]), disc(last["fake"]), kind=cfg.adv_kind)
            optimiser_step(d_opt, loss_d.float())  # its zero_grad also drops the generator step's gradients on D
            return {"disc": float(loss_d.detach())}

        return after_step

    def _build_stage(self, name: str) -> TrainingStage:
        self.model.requires_grad_(True)
        if name == "vae":
            return self._vae_stage()
        if name == "align":
            return self._align_stage()
        plan = self.cfg.stages
        return self._diffusion_stage(
            train_encoder=plan != "progressive",
            train_vae_encoder=plan == "original",
        )
