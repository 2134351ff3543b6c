"""Stage 1 of the image-prior Brain LDM: a latent diffusion model learned from unpaired digit images.

The field's answer to "too little paired data" (Brain-Diffuser, MindEye) is to learn the image prior from images
alone and learn only the fMRI -> latent map from the paired trials. Here the prior is learned from the unpaired
MNIST sixes and nines of :mod:`ldm_core.prior_images` (after the leakage guard) plus the fitting trials' images:

1. a :class:`~ldm_core.models.vector_vae.VectorVAE` (a d-number latent per image), trained for ``vae_steps``
   optimiser steps on the images; its codes (posterior means) are standardised per dimension;
2. a latent diffusion model over the standardised codes: an :class:`~ldm_core.models.mlp_denoiser.MLPDenoiser`
   trained for ``diffusion_steps`` steps, *conditioned on a noisy linear observation of the code*: for each
   training code z it sees ``c = lambda * z + sigma * e`` with a slope ``lambda`` in [0, 1] and a noise level
   ``sigma`` drawn per dimension and per example, and the vector ``[c, lambda, sigma]`` is its condition (with
   probability ``cfg_dropout`` replaced by a learned null condition). A regression from fMRI to the code is such an
   observation: stage 2 (:mod:`ldm_core.latent_map`) measures its slope and noise by cross-validation inside the
   fitting trials. So the network learns p(z | c; lambda, sigma) for the whole family from images alone, and the
   pretraining never sees an fMRI pattern.

:func:`pretrain_prior` does both, cached on disk under a key of (the image set's checksum, the configuration,
the seed), so every chapter and every refit shares one pretraining per seed.

Notation: ``x0`` -> z_0 (standardised code), ``x_t`` -> z_t, ``t`` -> timestep, as in :mod:`ldm_core.models.schedule`.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .io import atomic_torch_save, content_key, read_cached
from .models.mlp_denoiser import MLPDenoiser
from .models.schedule import NoiseSchedule, classifier_free_guidance
from .models.vector_vae import VectorVAE, elbo_loss
from .optim import optimiser_step

__all__ = ["PriorConfig", "ImagePrior", "pretrain_prior", "prior_key", "observation_condition", "sample_quality",
           "pretrain_autoencoder",
           "images_checksum"]

CACHE_FORMAT = "image_prior/1"


@dataclass(frozen=True)
class PriorConfig:
    """Settings of the image prior (stage 1); defaults are the chapter's full recipe.

    Raises
    ------
    ValueError
        From ``__post_init__``: a value of the wrong type or out of range (named).
    """

    latent_dim: int = 16  # numbers per image in the VAE's latent
    vae_width: int = 32  # channels of the VAE's first convolution
    vae_hidden: int = 256  # width of the VAE's MLP between convolutions and latent
    kl_weight: float = 1.0  # beta of the per-image ELBO (1: the standard VAE)
    vae_steps: int = 1000  # VAE optimiser steps (equal steps whatever the number of images)
    vae_batch: int = 64  # images per VAE step
    vae_lr: float = 1e-3  # AdamW learning rate of the VAE
    prediction: str = "x0"  # what the denoiser predicts: "x0" or "eps"
    schedule: str = "cosine"  # noise schedule of the latent diffusion: "cosine" or "linear"
    n_train_steps: int = 1000  # diffusion steps T
    denoiser_width: int = 256  # hidden width of the MLP denoiser
    denoiser_blocks: int = 4  # residual blocks of the MLP denoiser
    diffusion_steps: int = 8000  # denoiser optimiser steps
    diffusion_batch: int = 256  # codes per denoiser step
    diffusion_lr: float = 1e-3  # AdamW learning rate of the denoiser (cosine decay to 0)
    cfg_dropout: float = 0.1  # probability of training a row with the null condition (unconditional)
    obs_sigma_min: float = 0.1  # smallest observation noise (per dimension, standardised units) in training
    obs_sigma_max: float = 1.0  # largest observation noise in training

    def __post_init__(self) -> None:
        ints = ("latent_dim", "vae_width", "vae_hidden", "vae_steps", "vae_batch", "n_train_steps",
                "denoiser_width", "denoiser_blocks", "diffusion_steps", "diffusion_batch")
        for name in ints:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"PriorConfig.{name} must be an int >= 1, got {v!r}.")
        for name in ("kl_weight", "vae_lr", "diffusion_lr", "obs_sigma_min", "obs_sigma_max"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"PriorConfig.{name} must be a finite number >= 0, got {v!r}.")
        if not self.vae_lr > 0 or not self.diffusion_lr > 0:
            raise ValueError("PriorConfig.vae_lr and diffusion_lr must be > 0.")
        if not 0 < self.obs_sigma_min <= self.obs_sigma_max:
            raise ValueError(f"PriorConfig needs 0 < obs_sigma_min <= obs_sigma_max, got {self.obs_sigma_min!r}, "
                             f"{self.obs_sigma_max!r}.")
        if self.prediction not in ("x0", "eps"):
            raise ValueError(f"PriorConfig.prediction must be 'x0' or 'eps', got {self.prediction!r}.")
        if self.schedule not in ("cosine", "linear"):
            raise ValueError(f"PriorConfig.schedule must be 'cosine' or 'linear', got {self.schedule!r}.")
        if not 0 <= self.cfg_dropout < 1:
            raise ValueError(f"PriorConfig.cfg_dropout must be in [0, 1), got {self.cfg_dropout!r}.")

    @classmethod
    def from_dict(cls, d: dict) -> "PriorConfig":
        """Build from a mapping; unknown keys raise, naming the valid ones."""
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(valid))
        if unknown:
            raise ValueError(f"unknown PriorConfig key(s) {unknown}; valid keys are {valid}.")
        return cls(**d)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def observation_condition(c: torch.Tensor, lam: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The denoiser's condition ``[c, lambda, sigma]`` (B, 3d) of an observation c = lambda * z + sigma * e.

    Parameters
    ----------
    c : Tensor (B, d)
        The observation, in standardised code units, its intercept removed.
    lam, sigma : Tensor (B, d) or (d,)
        Slope in [0, 1] and noise standard deviation (> 0) per dimension.
    """
    B = c.shape[0]
    return torch.cat([c, lam.expand(B, -1), sigma.expand(B, -1)], dim=1)


@dataclass
class ImagePrior:
    """The pretrained prior: VAE, code standardisation, conditional latent denoiser and its noise schedule.

    Attributes
    ----------
    vae : VectorVAE
    center, spread : Tensor (d,)
        Mean and standard deviation of the training codes (posterior means); ``standardise`` maps codes to
        zero mean and unit variance per dimension.
    denoiser : MLPDenoiser or None
        Condition of size 3d (:func:`observation_condition`); None for an autoencoder-only prior
        (:func:`pretrain_autoencoder`).
    schedule : NoiseSchedule or None
    cfg : PriorConfig
    history : dict
        ``vae_loss`` and ``diffusion_loss``: training losses (means over blocks of steps), ``*_time_s``.
    images_sha256 : str
        Checksum of the training images (part of the cache key).
    n_images : int
    """

    vae: VectorVAE
    center: torch.Tensor
    spread: torch.Tensor
    denoiser: MLPDenoiser | None
    schedule: NoiseSchedule | None
    cfg: PriorConfig
    history: dict = field(default_factory=dict)
    images_sha256: str = ""
    n_images: int = 0

    @property
    def latent_dim(self) -> int:
        return self.cfg.latent_dim

    @torch.no_grad()
    def codes(self, images: np.ndarray) -> np.ndarray:
        """Standardised codes (posterior means) of images (N, S, S) in [0, 1] -> (N, d) float32."""
        x = torch.as_tensor(np.asarray(images, dtype=np.float32))[:, None]
        out = [self.vae.encode(x[s:s + 512]).mean for s in range(0, len(x), 512)]
        return ((torch.cat(out) - self.center) / self.spread).numpy().astype(np.float32)

    @torch.no_grad()
    def decode(self, codes: np.ndarray | torch.Tensor) -> np.ndarray:
        """Images (N, S, S) float32 in [0, 1] of standardised codes (N, d)."""
        z = torch.as_tensor(np.asarray(codes, dtype=np.float32)) * self.spread + self.center
        out = [self.vae.decode(z[s:s + 512])[:, 0] for s in range(0, len(z), 512)]
        return torch.cat(out).clamp(0, 1).numpy().astype(np.float32)

    def predict(self, x_t: torch.Tensor, t, cond: torch.Tensor | None, *, guidance: float = 1.0) -> torch.Tensor:
        """Denoiser output with classifier-free guidance (the interface :func:`ldm_core.pipeline.sample_latents` calls)."""
        B = x_t.shape[0]
        t = torch.as_tensor(t).long().expand(B)
        if cond is None or guidance == 0.0:
            return self.denoiser(x_t, t, None)
        out_c = self.denoiser(x_t, t, cond)
        if guidance == 1.0:
            return out_c
        return classifier_free_guidance(out_c, self.denoiser(x_t, t, None), guidance)

    def state(self) -> dict:
        """Tensors and plain types, for ``torch.load(weights_only=True)``."""
        return {"format": CACHE_FORMAT, "cfg": self.cfg.to_dict(), "vae": self.vae.state_dict(),
                "denoiser": self.denoiser.state_dict(), "center": self.center, "spread": self.spread,
                "history": self.history, "images_sha256": self.images_sha256, "n_images": self.n_images}

    @classmethod
    def from_state(cls, state: dict, *, image_size: int) -> "ImagePrior":
        if state.get("format") != CACHE_FORMAT:
            raise ValueError(f"not an image-prior file of format {CACHE_FORMAT!r} (found {state.get('format')!r})")
        cfg = PriorConfig.from_dict(state["cfg"])
        vae, den, sched = _build(cfg, image_size)
        vae.load_state_dict(state["vae"])
        den.load_state_dict(state["denoiser"])
        return cls(vae.eval(), state["center"], state["spread"], den.eval(), sched, cfg, dict(state["history"]),
                   state["images_sha256"], int(state["n_images"]))


def _build(cfg: PriorConfig, image_size: int):
    vae = VectorVAE(latent_dim=cfg.latent_dim, image_size=image_size, width=cfg.vae_width, hidden=cfg.vae_hidden)
    den = MLPDenoiser(dim=cfg.latent_dim, cond_dim=3 * cfg.latent_dim, width=cfg.denoiser_width,
                      blocks=cfg.denoiser_blocks)
    sched = NoiseSchedule(kind=cfg.schedule, n_train_steps=cfg.n_train_steps, prediction=cfg.prediction)
    return vae, den, sched


def images_checksum(images: np.ndarray) -> str:
    """SHA-256 of an image array's float32 bytes and shape (the image set's identity in cache keys)."""
    a = np.ascontiguousarray(np.asarray(images, dtype=np.float32))
    return content_key(str(a.shape).encode(), a, digits=64)


def prior_key(images_sha256: str, cfg: PriorConfig, seed: int) -> str:
    """20 hex digits naming one pretraining: image set, configuration, seed."""
    return _key({"images": images_sha256, "cfg": cfg.to_dict(), "seed": int(seed)})


def _bar(progress: bool) -> dict:
    """tqdm keywords: off when not wanted; otherwise tqdm's own default, so that TQDM_DISABLE=1 (set by the study
    runner for the published book) switches every bar off."""
    return {} if progress else {"disable": True}


def _log_every(n_steps: int) -> int:
    return max(1, n_steps // 50)


def _train_vae(vae: VectorVAE, x: torch.Tensor, cfg: PriorConfig, gen: torch.Generator, progress: bool) -> dict:
    from tqdm.auto import tqdm

    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=1e-4)
    every, losses, run = _log_every(cfg.vae_steps), [], 0.0
    vae.train()
    for step in tqdm(range(cfg.vae_steps), desc="prior VAE", unit="step", leave=False, **_bar(progress)):
        idx = torch.randint(0, len(x), (min(cfg.vae_batch, len(x)),), generator=gen)
        loss, _ = elbo_loss(vae, x[idx], kl_weight=cfg.kl_weight, generator=gen)
        optimiser_step(opt, loss)
        run += float(loss.detach())
        if (step + 1) % every == 0:
            losses.append(run / every)
            run = 0.0
    vae.eval()
    return {"vae_loss": losses, "vae_log_every": every}


def _train_denoiser(den: MLPDenoiser, sched: NoiseSchedule, z: torch.Tensor, cfg: PriorConfig,
                    gen: torch.Generator, progress: bool) -> dict:
    from tqdm.auto import tqdm

    opt = torch.optim.AdamW(den.parameters(), lr=cfg.diffusion_lr, weight_decay=0.0)
    lr = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.diffusion_steps)
    N, d = z.shape
    B = cfg.diffusion_batch
    abar = sched.alphas_cumprod
    every, losses, run = _log_every(cfg.diffusion_steps), [], 0.0
    den.train()
    for step in tqdm(range(cfg.diffusion_steps), desc="prior diffusion", unit="step", leave=False, **_bar(progress)):
        z0 = z[torch.randint(0, N, (B,), generator=gen)]  # (B, d)
        lam = torch.rand(B, d, generator=gen)  # observation slope per dimension
        sigma = cfg.obs_sigma_min + (cfg.obs_sigma_max - cfg.obs_sigma_min) * torch.rand(B, d, generator=gen)
        c = observation_condition(lam * z0 + sigma * torch.randn(B, d, generator=gen), lam, sigma)
        t = torch.randint(0, cfg.n_train_steps, (B,), generator=gen)
        noise = torch.randn(B, d, generator=gen)
        a = abar[t][:, None]
        x_t = a.sqrt() * z0 + (1 - a).sqrt() * noise  # q_sample for (B, d) codes
        drop = torch.rand(B, generator=gen) < cfg.cfg_dropout
        out = den(x_t, t, c, cond_drop_mask=drop)
        loss = F.mse_loss(out, noise if cfg.prediction == "eps" else z0)
        optimiser_step(opt, loss)
        lr.step()
        run += float(loss.detach())
        if (step + 1) % every == 0:
            losses.append(run / every)
            run = 0.0
    den.eval()
    return {"diffusion_loss": losses, "diffusion_log_every": every}


VAE_FIELDS = ("latent_dim", "vae_width", "vae_hidden", "kl_weight", "vae_steps", "vae_batch", "vae_lr")


def _key(payload: dict) -> str:
    return content_key({**payload, "format": CACHE_FORMAT})


def _pretrain_vae(x: torch.Tensor, cfg: PriorConfig, seed: int, sha: str, cache_dir, progress: bool):
    """The VAE of ``cfg`` on images ``x`` (N, 1, S, S) and its code statistics, cached by (images, VAE fields, seed)."""
    key = _key({"images": sha, "vae": {k: getattr(cfg, k) for k in VAE_FIELDS}, "seed": int(seed)})
    path = Path(cache_dir) / f"vae-{key}.pt" if cache_dir else None
    vae = VectorVAE(latent_dim=cfg.latent_dim, image_size=x.shape[-1], width=cfg.vae_width, hidden=cfg.vae_hidden)

    def load(state: dict) -> dict:
        vae.load_state_dict(state["vae"])
        return dict(state["history"])

    hist = read_cached(path, "image-prior VAE", build=load)  # the warning points at the line calling _pretrain_vae
    if hist is not None:
        return vae.eval(), hist
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae = VectorVAE(latent_dim=cfg.latent_dim, image_size=x.shape[-1], width=cfg.vae_width, hidden=cfg.vae_hidden)
        t0 = time.perf_counter()
        hist = _train_vae(vae, x, cfg, torch.Generator().manual_seed(seed), progress)
        hist["vae_time_s"] = time.perf_counter() - t0
    if path is not None:
        atomic_torch_save({"format": CACHE_FORMAT, "vae": vae.state_dict(), "history": hist}, path)
    return vae, hist


def _checked_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 3 or len(images) < 2 or images.min() < 0 or images.max() > 1:
        raise ValueError(f"images must be (N >= 2, S, S) in [0, 1], got shape {images.shape}")
    return images


def _standardisation(vae: VectorVAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        mean = torch.cat([vae.encode(x[s:s + 512]).mean for s in range(0, len(x), 512)])
    return mean, mean.mean(0), mean.std(0).clamp(min=1e-6)


def pretrain_autoencoder(images: np.ndarray, *, cfg: PriorConfig, seed: int = 0,
                         cache_dir: str | Path | None = None, progress: bool = True) -> ImagePrior:
    """Only the VAE of :func:`pretrain_prior` (same cache), as an :class:`ImagePrior` without a denoiser.

    With ``cfg.kl_weight = 0`` this is a plain autoencoder: the "convolutional autoencoder + ridge" reference
    decoder (no diffusion, no prior over the codes).
    """
    images = _checked_images(images)
    x = torch.as_tensor(images)[:, None]
    sha = images_checksum(images)
    vae, hist = _pretrain_vae(x, cfg, seed, sha, cache_dir, progress)
    _, center, spread = _standardisation(vae, x)
    return ImagePrior(vae, center, spread, None, None, cfg, dict(hist), sha, len(images))


def pretrain_prior(images: np.ndarray, *, cfg: PriorConfig, seed: int = 0, cache_dir: str | Path | None = None,
                   progress: bool = True) -> ImagePrior:
    """Train (or load from ``cache_dir``) the image prior on ``images``; see the module docstring.

    The VAE is cached on its own (``vae-<key>.pt``, key: images, VAE fields, seed), so priors that differ only in
    their diffusion settings share it; the denoiser is initialised and trained from its own seeded generator, so
    the result is the same whether the VAE was trained now or loaded.

    Parameters
    ----------
    images : ndarray (N, S, S), float in [0, 1]
        The unpaired prior images (after the leakage guard) plus the fitting trials' images.
    cfg : PriorConfig
    seed : int
        Seeds the weights, the batches and every noise draw.
    cache_dir : path, optional
        Folder for ``vae-<key>.pt`` and ``prior-<key>.pt`` (:func:`prior_key`); a damaged file is retrained
        (with a warning).

    Returns
    -------
    ImagePrior
        In eval mode; ``history`` holds the loss curves and the training times.

    Raises
    ------
    ValueError
        If ``images`` is not (N, S, S) in [0, 1] with N >= 2.
    """
    images = _checked_images(images)
    sha = images_checksum(images)
    path = Path(cache_dir) / f"prior-{prior_key(sha, cfg, seed)}.pt" if cache_dir else None
    cached = read_cached(path, "image prior", build=partial(ImagePrior.from_state, image_size=images.shape[1]))
    if cached is not None:
        return cached
    x = torch.as_tensor(images)[:, None]
    vae, hist = _pretrain_vae(x, cfg, seed, sha, cache_dir, progress)
    mean, center, spread = _standardisation(vae, x)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        _, den, sched = _build(cfg, images.shape[1])
        t0 = time.perf_counter()
        hist = {**hist, **_train_denoiser(den, sched, (mean - center) / spread, cfg,
                                          torch.Generator().manual_seed(seed + 1), progress)}
        hist["diffusion_time_s"] = time.perf_counter() - t0
    prior = ImagePrior(vae, center, spread, den, sched, cfg, hist, sha, len(images))
    if path is not None:
        atomic_torch_save(prior.state(), path)
    return prior


@torch.no_grad()
def sample_quality(prior: ImagePrior, reference_codes: np.ndarray, reference_images: np.ndarray, *, n: int = 512,
                   steps: int = 100, seed: int = 0) -> dict:
    """How well the prior's unconditional samples match its training data (is the diffusion model any good?).

    Parameters
    ----------
    prior : ImagePrior
    reference_codes : ndarray (M, d)
        Standardised codes of the training images (:meth:`ImagePrior.codes`).
    reference_images : ndarray (K, S, S)
        Images to look for the nearest neighbour of each decoded sample in.
    n, steps, seed : samples drawn from pure noise with DDIM, the null condition (guidance 0).

    Returns
    -------
    dict
        ``mean_error``: largest |mean difference| of a code dimension (in data standard deviations);
        ``cov_error``: relative Frobenius error of the sample covariance; ``variance_ratio``: total sample variance
        over total data variance; ``nn_r``: mean over samples of the best pixel correlation with a reference image
        (how digit-like the decoded samples are); ``samples``: the first 16 decoded samples (16, S, S).
    """
    from .pipeline import sample_latents

    gen = torch.Generator().manual_seed(int(seed))
    d = prior.latent_dim
    z = sample_latents(prior, None, x_T=torch.randn((n, d), generator=gen), steps=steps, guidance=0.0).numpy()
    ref = np.asarray(reference_codes, dtype=np.float64)
    mu, cov = ref.mean(0), np.cov(ref.T)
    s_mu, s_cov = z.mean(0), np.cov(z.T)
    images = prior.decode(z)
    nn = float(np.mean(_nearest_r(images[:256], np.asarray(reference_images, dtype=np.float32))))
    return {"mean_error": float(np.max(np.abs(s_mu - mu) / np.sqrt(np.diag(cov)))),
            "cov_error": float(np.linalg.norm(s_cov - cov) / np.linalg.norm(cov)),
            "variance_ratio": float(np.trace(s_cov) / np.trace(cov)), "nn_r": nn, "samples": images[:16]}


def _nearest_r(images: np.ndarray, references: np.ndarray) -> np.ndarray:
    """For each image (N, S, S), its best pixel Pearson r with any reference (M, S, S) -> (N,)."""
    def z(x):
        f = x.reshape(len(x), -1).astype(np.float64)
        f = f - f.mean(1, keepdims=True)
        return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)

    return (z(images) @ z(references).T).max(axis=1)
