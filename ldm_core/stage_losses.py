"""The loss of each training stage of :func:`ldm_core.train.fit`, as a plain function of a model and a batch (the
trainer draws the randomness and passes it in), returning ``StageLoss(total, terms)``:

- ``vae_stage_loss``: VAE reconstruction + KL (Kingma & Welling 2014);
- ``align_stage_loss``: MSE of a linear head on the fMRI tokens to the scaled VAE posterior means (alignment);
- ``diffusion_stage_loss``: the noise (or x0) MSE on latents, with the optional multiscale (coarse) term and the
  image-space losses of :mod:`ldm_core.losses` on decoded x0 estimates.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ldm_core.device import autocast
from ldm_core.losses import noise_mse
from ldm_core.models.unet import coarse_target
from ldm_core.models.vae import kl_divergence, reparameterise

__all__ = ["StageLoss", "vae_stage_loss", "align_targets", "align_stage_loss", "diffusion_stage_loss"]


class StageLoss(NamedTuple):
    """Result of a stage loss.

    total : Tensor, scalar float32
        Weighted sum of the terms, the value back-propagated.
    terms : dict of str -> Tensor
        Unweighted scalar terms, for the training log (``train_<term>`` in the history).
    real, fake : Tensor of shape (b, 1, S, S), float32 in [0, 1], or None
        Diffusion stage with image-space losses only: the target images of the b rows that
        were scored, and their decoded x0 estimates (detached), for the discriminator's step.
    """

    total: torch.Tensor
    terms: dict[str, torch.Tensor]
    real: torch.Tensor | None = None
    fake: torch.Tensor | None = None


def vae_stage_loss(
    vae: nn.Module,
    *,
    images: torch.Tensor,
    kl_weight: float,
    sample: bool = True,
    generator: torch.Generator | None = None,
    amp: bool = False,
) -> StageLoss:
    """Stage-1 loss: per-pixel binary cross-entropy plus weighted KL, ``recon + kl_weight * kl``.

    Parameters
    ----------
    vae : OriginalVAE or LargeVAE
        ``encode(x) -> (mean, logvar)``, ``decode(z)`` in [0, 1], ``sample_latent``.
    images : Tensor of shape (B, 1, S, S), float32 in [0, 1]
    kl_weight : float, >= 0
        Weight of the KL term (per latent element) against the per-pixel reconstruction loss.
    sample : bool, default True
        True: decode a reparameterised draw z = mean + exp(logvar / 2) * eps (training);
        False: decode the posterior mean (validation).
    generator : torch.Generator, optional
        Source of eps, on the images' device (None: the global RNG).
    amp : bool
        bfloat16 autocast of the forward pass (CUDA only; the losses are taken in float32).

    Returns
    -------
    StageLoss
        ``terms``: ``"recon"`` (BCE per pixel) and ``"kl"`` (nats per latent element).
    """
    with autocast(images.device, enabled=amp):
        mean, logvar = vae.encode(images)  # (B, C, h, w) each
        z = vae.sample_latent(mean, logvar, generator=generator) if sample else mean
        out = vae.decode(z)  # (B, 1, S, S)
    out, mean, logvar = out.float(), mean.float(), logvar.float()  # losses in float32 (BCE refuses autocast)
    rec = F.binary_cross_entropy(out, images)
    terms = {"recon": rec, "kl": kl_divergence(mean, logvar)}
    return StageLoss(terms["recon"] + kl_weight * terms["kl"], terms)


@torch.no_grad()
def align_targets(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Targets of the alignment stage: scaled VAE posterior means, flattened.

    Parameters
    ----------
    model : BrainLDM
        Its ``vae`` (put it in eval mode first) and ``latent_scale``.
    images : Tensor of shape (B, 1, S, S), float32 in [0, 1]

    Returns
    -------
    Tensor of shape (B, C*h*w): ``latent_scale * mean`` per trial, no gradient.
    """
    return (model.latent_scale * model.vae.encode(images).mean).flatten(1)  # (B, C, h, w) -> (B, C*h*w)


def align_stage_loss(
    model: nn.Module, *, fmri: torch.Tensor, target: torch.Tensor, head: nn.Module, amp: bool = False
) -> StageLoss:
    """Stage-2 loss: MSE between a linear read-out of the fMRI tokens and the VAE latents.

    Parameters
    ----------
    model : BrainLDM
        Its ``encode_fmri`` gives the tokens (B, T, D).
    fmri : Tensor of shape (B, V), z-scored with training statistics (augmented by the caller)
    target : Tensor of shape (B, C*h*w)
        From :func:`align_targets`.
    head : nn.Module
        Maps the mean token (B, D) to (B, C*h*w), e.g. ``nn.Linear(D, C*h*w)``.
    amp : bool
        bfloat16 autocast of the forward pass (CUDA only).

    Returns
    -------
    StageLoss
        ``total`` = ``terms["align_mse"]``, mean over trials and latent elements.
    """
    with autocast(fmri.device, enabled=amp):
        pred = head(model.encode_fmri(fmri).mean(dim=1))  # (B, T, D) -> (B, D) -> (B, C*h*w)
    mse = F.mse_loss(pred.float(), target)
    return StageLoss(mse, {"align_mse": mse})


def _add_image_losses(
    loss: StageLoss, model: nn.Module, image_loss: nn.Module | None, *, x_t: torch.Tensor, t: torch.Tensor,
    pred: torch.Tensor, images: torch.Tensor, t_frac: float, device: torch.device, amp: bool,
) -> StageLoss:
    """``loss`` plus ``image_loss`` on the decoded x0 estimates of the rows with ``t < t_frac * n_train_steps``."""
    if image_loss is None:
        return loss
    rows = t < t_frac * model.schedule.n_train_steps
    if not bool(rows.any()):
        return loss
    with autocast(device, enabled=amp):
        x0_hat = model.schedule.predict_x0(x_t[rows], t[rows], pred[rows])
        fake = model.decode_latents(x0_hat)  # (b, 1, S, S), through the decoder
    out_img = image_loss(fake.float(), images[rows])
    loss.terms.update({f"img_{k}": torch.tensor(v) for k, v in out_img.terms.items() if k != "total"})
    return StageLoss(loss.total + out_img.total, loss.terms, real=images[rows], fake=fake.detach().float())


def diffusion_stage_loss(
    model: nn.Module, *, fmri: torch.Tensor, images: torch.Tensor, t: torch.Tensor,
    noise: torch.Tensor, z_eps: torch.Tensor, cond_drop: torch.Tensor | None = None, w_noise: float = 1.0,
    w_coarse: float = 0.0, image_loss: nn.Module | None = None, img_loss_t_frac: float = 0.5,
    train_encoder: bool = True, train_vae_encoder: bool = False, amp: bool = False,
) -> StageLoss:
    """Stage-3 loss: the denoiser's noise (or x0) MSE on VAE latents, plus the optional terms.

    ``x0 = latent_scale * (mean + exp(logvar / 2) * z_eps)`` from the VAE posterior of ``images``,
    ``x_t = q_sample(x0, t, noise)``; ``total = w_noise * MSE(pred, target) + w_coarse * coarse MSE +
    image_loss(decode(x0_hat), images)``.

    Parameters
    ----------
    model : BrainLDM
        Its ``vae``, ``encode_fmri``, ``unet``, ``schedule``, ``latent_scale`` and ``decode_latents``.
    fmri : Tensor of shape (B, V), z-scored with training statistics (augmented by the caller)
    images : Tensor of shape (B, 1, S, S), float32 in [0, 1]
    t : LongTensor of shape (B,), in [0, n_train_steps)
    noise, z_eps : Tensor of shape (B, C, h, w)
        N(0, I) draws: eps of the forward process, and eps of the VAE posterior draw.
    cond_drop : BoolTensor of shape (B,), optional
        True: that trial's condition is replaced by the null token (classifier-free guidance training).
    w_noise, w_coarse : float, >= 0
        Weights of the noise MSE and of the multiscale head's half-resolution MSE (``w_coarse > 0`` needs that head).
    image_loss : ImageLoss, optional
        Image-space losses on decoded x0 estimates of the rows with ``t < img_loss_t_frac * n_train_steps``
        (None: none, as in validation).
    img_loss_t_frac : float in (0, 1]
        Share of the noise schedule, from t = 0, whose rows get the image losses.
    train_encoder, train_vae_encoder : bool
        Whether gradients are recorded through the fMRI encoder and the VAE encoder (the ``"original"`` plan trains
        the VAE encoder on this loss; its decoder gets none from the noise and coarse terms, which never decode).
    amp : bool
        bfloat16 autocast of the forward passes (CUDA only; the losses are taken in float32).

    Returns
    -------
    StageLoss
        ``terms``: ``"noise"``, ``"coarse"`` (with ``w_coarse > 0``), ``"img_<term>"`` per image term
        (when some row has small t); ``real`` / ``fake`` set when image losses were computed.
    """
    with autocast(fmri.device, enabled=amp):
        with torch.set_grad_enabled(train_vae_encoder and torch.is_grad_enabled()):
            mean, logvar = model.vae.encode(images)  # (B, C, h, w) each
            x0 = model.latent_scale * reparameterise(mean, logvar, z_eps)  # (B, C, h, w)
        with torch.set_grad_enabled(train_encoder and torch.is_grad_enabled()):
            cond = model.encode_fmri(fmri)  # (B, T, D)
        x_t = model.schedule.q_sample(x0, t, noise)
        out = model.unet(x_t, t, cond, cond_drop_mask=cond_drop, return_coarse=w_coarse > 0)
    pred, coarse = (out.sample, out.coarse) if w_coarse > 0 else (out, None)
    target = model.schedule.training_target(x0, noise)
    terms = {"noise": noise_mse(pred.float(), target.float())}
    total = w_noise * terms["noise"]
    if coarse is not None:
        terms["coarse"] = F.mse_loss(coarse.float(), coarse_target(target).float())
        total = total + w_coarse * terms["coarse"]
    return _add_image_losses(StageLoss(total, terms), model, image_loss, x_t=x_t, t=t, pred=pred, images=images,
                             t_frac=img_loss_t_frac, device=fmri.device, amp=amp)
