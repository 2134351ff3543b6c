"""The sampler study of chapter 01: the shuffled-fMRI check, x0 error per timestep, sampling trajectories, samplers
against sampler_check's exact Gaussian denoiser; and the ledger's note on them.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from ...metrics import pixel_corr, ssim
from ...pipeline import sample_latents
from .ladder import SAMPLER_LABELS


# ----------------------------------------------------------------------------- does the model use the condition?


def shuffled_fmri_check(model, fmri: np.ndarray, images: np.ndarray, *, steps: int, seed: int = 0,
                        sampler: str | None = None) -> dict:
    """Reconstructions from each trial's own fMRI and from another trial's, same seeds.

    Parameters
    ----------
    model : BrainLDM
    fmri : ndarray of shape (N, V), z-scored; N >= 2
    images : ndarray of shape (N, S, S), in [0, 1], the targets of ``fmri``
    steps, seed, sampler
        As in :meth:`ldm_core.pipeline.BrainLDM.reconstruct` (``sampler=None``: the model's default).

    Returns
    -------
    dict
        ``pixel r, own fMRI`` and ``pixel r, shuffled fMRI`` (mean over trials; trial i gets trial i-1's fMRI) and
        ``mean |difference| of images`` (mean absolute pixel difference of the two reconstructions, in [0, 1]).
    """
    if len(fmri) < 2:
        raise ValueError(f"shuffled_fmri_check needs at least 2 trials, got {len(fmri)}")
    perm = np.roll(np.arange(len(fmri)), 1)
    own = model.reconstruct(fmri, steps=steps, seed=seed, sampler=sampler)
    other = model.reconstruct(np.asarray(fmri)[perm], steps=steps, seed=seed, sampler=sampler)
    return {"pixel r, own fMRI": float(pixel_corr(own, images).mean()),
            "pixel r, shuffled fMRI": float(pixel_corr(other, images).mean()),
            "mean |difference| of images": float(np.abs(own - other).mean())}


# ----------------------------------------------------------------------------- what the denoiser and the sampler do


@torch.no_grad()
def _latents(model, images: np.ndarray) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32, device=model.device)[:, None]  # (N, 1, S, S)
    return model.encode_images(x, sample=False).double().cpu()  # (N, C, h, w), scaled posterior means


def _gaussian_fit(latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (d,) and diagonal covariance (d, d) of flattened latents (N, C, h, w), float64."""
    flat = latents.reshape(latents.shape[0], -1)  # (N, d)
    return flat.mean(0), torch.diag(flat.var(0).clamp_min(1e-8))


def _x0_error_row(model, oracle, x0: torch.Tensor, cond, t: int, n_repeats: int, g, spread: float) -> dict:
    """One row of :func:`x0_error_by_timestep`: the model's and the Gaussian denoiser's errors at t, over the draws."""
    sch = model.schedule
    err = {"x0 model": 0.0, "x0 gauss": 0.0, "eps model": 0.0, "eps gauss": 0.0}
    for _ in range(n_repeats):
        eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)  # (N, C, h, w)
        x_t = sch.q_sample(x0, t, eps)
        out = model.predict(x_t.float().to(model.device), t, cond).double().cpu()
        x0_hat = sch.predict_x0(x_t, t, out)
        eps_hat = sch.predict_eps(x_t, t, out)
        g_x0, g_eps = oracle.posterior(x_t, t)  # (N, d) each
        err["x0 model"] += float(((x0_hat - x0) ** 2).mean())
        err["eps model"] += float(((eps_hat - eps) ** 2).mean())
        err["x0 gauss"] += float(((g_x0 - x0.reshape(len(x0), -1)) ** 2).mean())
        err["eps gauss"] += float(((g_eps - eps.reshape(len(x0), -1)) ** 2).mean())
    return {"sqrt(abar_t)": float(sch.sqrt_alphas_cumprod[t]), "x0 error, model": err["x0 model"] / n_repeats / spread,
            "x0 error, Gaussian denoiser": err["x0 gauss"] / n_repeats / spread,
            "eps error, model": err["eps model"] / n_repeats,
            "eps error, Gaussian denoiser": err["eps gauss"] / n_repeats}


@torch.no_grad()
def x0_error_by_timestep(model, images: np.ndarray, fmri: np.ndarray, *, timesteps, reference_images: np.ndarray,
                         n_repeats: int = 4, seed: int = 0):
    """How far the denoiser's estimate of the clean latent is from the truth, at each noise level.

    For each image's latent x0 (scaled VAE posterior mean), each t and ``n_repeats`` noise draws:
    x_t = q_sample(x0, t, eps), the model's output at (x_t, t, encoded fMRI), and its implied x0 estimate
    (``schedule.predict_x0``; for an eps-predicting model x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t),
    so an eps error is multiplied by sqrt(1 - abar_t) / sqrt(abar_t) -- 157 at t = 999 on the linear schedule).
    The same x_t go through the exact denoiser of a Gaussian with the mean and per-component variances of the
    ``reference_images``' latents (:class:`ldm_core.study.sampler_check.GaussianOracle`): the error a denoiser reaches that
    knows only those statistics -- a well-trained network should do at least as well.

    Parameters
    ----------
    model : BrainLDM
    images : ndarray of shape (N, S, S), in [0, 1]
        Held-out images (e.g. the validation trials); N >= 2.
    fmri : ndarray of shape (N, V), z-scored, their fMRI
    timesteps : sequence of int, in [0, n_train_steps)
    reference_images : ndarray of shape (M, S, S)
        Images whose latents define the Gaussian reference (the fitting images); M >= 2.
    n_repeats, seed : int
        Noise draws per image and timestep (>= 1); the seed of the noise.

    Returns
    -------
    DataFrame
        Index ``t``; columns ``sqrt(abar_t)``; ``x0 error, model`` and ``x0 error, Gaussian denoiser``: mean squared
        error of the x0 estimate over images, draws and latent components, divided by the mean per-component
        variance of the ``images``' latents (1: as far off as the latents are spread); ``eps error, model`` and
        ``eps error, Gaussian denoiser``: the same for the implied noise estimate, undivided (the noise has variance 1).

    Raises
    ------
    ValueError
        If fewer than 2 images or reference images, a timestep out of range, or ``n_repeats`` < 1.
    """
    from ..sampler_check import GaussianOracle

    if len(images) < 2 or len(reference_images) < 2 or len(fmri) != len(images):
        raise ValueError(f"x0_error_by_timestep needs >= 2 images with one fMRI row each and >= 2 reference images; "
                         f"got {len(images)} images, {len(fmri)} fMRI rows, {len(reference_images)} reference images")
    if n_repeats < 1:
        raise ValueError(f"n_repeats must be >= 1, got {n_repeats}")
    T = model.schedule.n_train_steps
    bad = [t for t in timesteps if not 0 <= int(t) < T]
    if bad:
        raise ValueError(f"timesteps must lie in [0, {T}), got {bad}")
    model.eval()
    x0 = _latents(model, images)  # (N, C, h, w)
    mean, cov = _gaussian_fit(_latents(model, reference_images))
    oracle = GaussianOracle(mean, cov, model.schedule)
    spread = float(x0.reshape(len(x0), -1).var(0).mean())
    cond = model.encode_fmri(torch.as_tensor(np.asarray(fmri), dtype=torch.float32, device=model.device))
    g = torch.Generator().manual_seed(seed)
    rows = {t: _x0_error_row(model, oracle, x0, cond, t, n_repeats, g, spread) for t in map(int, timesteps)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("t")


class _Recorder:
    """Stands in for a BrainLDM inside :func:`ldm_core.pipeline.sample_latents` and records each step's x_t and x0 estimate."""

    def __init__(self, model) -> None:
        self.model, self.schedule = model, model.schedule
        self.t, self.x_t_rms, self.x0_hat_rms = [], [], []

    def predict(self, x_t, t, cond, *, guidance: float = 1.0):
        out = self.model.predict(x_t, t, cond, guidance=guidance)
        self.t.append(int(t))
        self.x_t_rms.append(float(x_t.pow(2).mean().sqrt()))
        self.x0_hat_rms.append(float(self.schedule.predict_x0(x_t, t, out).pow(2).mean().sqrt()))
        return out


@torch.no_grad()
def sampling_trajectory(model, fmri: np.ndarray, *, sampler: str, steps: int, seed: int = 0,
                        images: np.ndarray | None = None) -> dict:
    """Follow one reverse diffusion: the size of x_t and of the x0 estimate at every step, and what comes out.

    The loop is the library's (:func:`ldm_core.pipeline.sample_latents`, with the starting noise drawn as
    :meth:`ldm_core.pipeline.BrainLDM.reconstruct` draws it), so ``images_out`` equals ``model.reconstruct(fmri,
    steps=steps, seed=seed, sampler=sampler)``.

    Parameters
    ----------
    model : BrainLDM
    fmri : ndarray of shape (N, V), z-scored
    sampler : {"ddim", "ddpm", "original"}
    steps, seed : int
    images : ndarray of shape (N, S, S), optional
        The targets; adds the forward-process reference ``forward_rms``.

    Returns
    -------
    dict
        ``t`` (steps,) int, the timesteps visited; ``x_t_rms`` (steps,), RMS over trials and latent components of x_t
        entering each step; ``x0_hat_rms`` (steps,), the same for the model's x0 estimate there; ``latents``
        (N, C, h, w) float32, the final scaled latents; ``latent_rms`` float, their RMS; ``images_out`` (N, S, S)
        float32 in [0, 1], decoded. With ``images``: ``forward_rms`` (steps,), the RMS x_t would have under the
        forward process from the targets' latents, sqrt(abar_t E[x0^2] + 1 - abar_t) (what a sampler should track),
        and ``data_rms``, the RMS of those latents.
    """
    model.eval()
    x = torch.as_tensor(np.asarray(fmri), dtype=torch.float32, device=model.device)
    generator = torch.Generator(device=model.device).manual_seed(int(seed))
    cond = model.encode_fmri(x)  # (N, T, D)
    x_T = torch.randn((x.shape[0], *model.latent_shape), generator=generator, device=model.device)
    rec = _Recorder(model)
    z = sample_latents(rec, cond, x_T=x_T, steps=steps, sampler=sampler, generator=generator)  # (N, C, h, w)
    out = {"t": np.array(rec.t), "x_t_rms": np.array(rec.x_t_rms), "x0_hat_rms": np.array(rec.x0_hat_rms),
           "latents": z.float().cpu().numpy(), "latent_rms": float(z.pow(2).mean().sqrt()),
           "images_out": model.decode_latents(z).float().clamp(0, 1)[:, 0].cpu().numpy()}
    if images is not None:
        ms = float(_latents(model, images).pow(2).mean())
        abar = model.schedule.alphas_cumprod.double().cpu()[out["t"]].numpy()
        out["forward_rms"] = np.sqrt(abar * ms + 1 - abar)
        out["data_rms"] = float(np.sqrt(ms))
    return out


def sampler_comparison(models: Mapping, fmri: np.ndarray, images: np.ndarray, *, samplers=("ddim", "original"),
                       steps: int, reference_images: np.ndarray, seed: int = 0,
                       trajectories: Mapping | None = None) -> pd.DataFrame:
    """Each trained model sampled with each sampler: scores, the spread of what comes out, a perfect denoiser's spread.

    Parameters
    ----------
    models : mapping of str -> BrainLDM
    fmri : ndarray of shape (N, V), z-scored; images : ndarray of shape (N, S, S), their targets
    samplers : sequence of {"ddim", "ddpm", "original"}
    steps, seed : int
    reference_images : ndarray of shape (M, S, S)
        The fitting images: their mean image is the "training mean"; their latents' mean and per-component variances
        define the Gaussian of the known-answer reference.
    trajectories : mapping of (str, str) -> dict, optional
        (model, sampler) -> :func:`sampling_trajectory` of ``fmri`` with these ``steps`` and ``seed``, already run
        (as :func:`sampler_study` does); missing pairs are sampled here.

    Returns
    -------
    DataFrame
        Index (model, sampler). Columns: ``pixel r`` and ``SSIM`` (means over trials); ``pixel r about the training
        mean`` (reconstruction and target each minus the mean fitting image: what sets a trial apart from the
        average); ``r with the training-mean image``; ``latent variance ratio`` (variance over trials of the sampled
        latents, averaged over components, over that of the targets' latents: 1 = the data's spread, < 1 pulled
        together, > 1 blown apart); ``latent RMS ratio`` (RMS of the sampled latents over that of the targets'); and
        ``latent variance ratio, perfect Gaussian denoiser``: the same ratio, exact, of the closed-form output law of
        this sampler and step count with the exact denoiser of a Gaussian with the reference latents' statistics
        (:func:`ldm_core.study.sampler_check.gaussian_moments`) -- what the sampler itself does to the spread.
    """
    from ..sampler_check import gaussian_moments

    images = np.asarray(images)
    mean_img = np.asarray(reference_images).mean(axis=0)
    rows = {}
    for name, model in models.items():
        ref_mean, ref_cov = _gaussian_fit(_latents(model, reference_images))
        target = _latents(model, images).reshape(len(images), -1).numpy()  # (N, d)
        for s in samplers:
            tr = (trajectories or {}).get((name, s)) or sampling_trajectory(model, fmri, sampler=s, steps=steps,
                                                                            seed=seed)
            z, img = tr["latents"].reshape(len(images), -1), tr["images_out"]
            law = gaussian_moments(model.schedule, sampler=s, steps=steps, mean=ref_mean, cov=ref_cov)
            rows[(name, s)] = {
                "pixel r": float(pixel_corr(img, images).mean()),
                "SSIM": float(ssim(img, images).mean()),
                "pixel r about the training mean": float(pixel_corr(img - mean_img, images - mean_img).mean()),
                "r with the training-mean image": float(pixel_corr(img, np.broadcast_to(mean_img, img.shape)).mean()),
                "latent variance ratio": float(z.var(0).mean() / target.var(0).mean()),
                "latent RMS ratio": float(np.sqrt((z**2).mean() / (target**2).mean())),
                "latent variance ratio, perfect Gaussian denoiser": float(law.cov.trace() / ref_cov.trace()),
            }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["model", "sampler"])


class SamplerStudy(NamedTuple):
    """What :func:`sampler_study` measures: samplers compared, the x0 error per noise level, the sampling runs.

    Attributes
    ----------
    table : DataFrame
        :func:`sampler_comparison`'s table, the sampler level in reader names (:data:`SAMPLER_LABELS`).
    errors : dict of str -> DataFrame
        Model -> :func:`x0_error_by_timestep`'s table.
    trajectories : dict of (str, str) -> dict
        (model, sampler in reader names) -> :func:`sampling_trajectory`'s output, with the forward-process reference.
    """

    table: pd.DataFrame
    errors: dict
    trajectories: dict

    def x0_error_table(self) -> pd.DataFrame:
        """Index t; one column per model ("x0 error, model"), then "exact Gaussian denoiser" (of the first model's latents)."""
        first = next(iter(self.errors.values()))
        return pd.DataFrame({**{n: e["x0 error, model"] for n, e in self.errors.items()},
                             "exact Gaussian denoiser": first["x0 error, Gaussian denoiser"]})

    def x_t_use(self, model: str, *, t: int | None = None, samplers=("ddim", "original"), max_r_gap: float = 0.01,
                max_variance_gap: float = 0.05, min_error_factor: float = 5.0) -> dict:
        """Does ``model``'s output depend on x_t? Two readings of this study's tables.

        - **Sampler invariance**: DDIM keeps x_t from step to step, the re-noising sampler replaces it by a fresh
          noising of the x0 estimate; a denoiser that reads x_t gives different samples under the two. Invariant
          when the two samplers' validation pixel r differ by at most ``max_r_gap`` and their latent variance
          ratios by at most ``max_variance_gap`` (relative).
        - **x0 error at low noise**: at a small t, x_t is almost the clean latent (sqrt(abar_t) near 1), so any
          denoiser that reads x_t has a small x0 error there (the exact Gaussian denoiser's is the yardstick). An error
          ``min_error_factor`` times the exact denoiser's or more says the model does not take x0 from x_t.

        The model is read as ignoring x_t when both hold: it then predicts the clean latent from the condition alone,
        a deterministic regressor whatever the sampler does.

        Parameters
        ----------
        model : str
            A model of the study (a key of :attr:`errors`).
        t : int, optional
            The low noise level read; default the smallest t probed.
        samplers : pair of str
            Internal names of the two samplers compared (keys of :data:`SAMPLER_LABELS`); both must be in the table.

        Returns
        -------
        dict
            ``pixel_r`` and ``variance_ratio`` (reader sampler name -> value), ``sampler_invariant`` (bool), ``t``,
            ``sqrt_abar``, ``x0_error`` and ``x0_error_exact`` at t (/ latent variance), ``error_factor`` (their
            ratio), ``x0_error_min`` / ``x0_error_max`` over every t probed, ``exact_min`` / ``exact_max`` (the exact
            denoiser's), ``ignores_x_t`` (bool).

        Raises
        ------
        KeyError
            If ``model`` or a sampler is not in the study, or ``t`` was not probed (what there is is named).
        """
        if model not in self.errors:
            raise KeyError(f"model {model!r} is not in the sampler study; it has {sorted(self.errors)}")
        labels = [SAMPLER_LABELS.get(s, s) for s in samplers]
        have = sorted(set(self.table.loc[model].index)) if model in self.table.index.get_level_values(0) else []
        missing = [lab for lab in labels if lab not in have]
        if missing:
            raise KeyError(f"sampler(s) {missing} not in the sampler table of {model!r}; it has {have}")
        err, rows = self.errors[model], self.table.loc[model]
        t = int(err.index.min()) if t is None else int(t)
        if t not in err.index:
            raise KeyError(f"t = {t} was not probed; the probe has t in {sorted(map(int, err.index))}")
        r = {lab: float(rows.loc[lab, "pixel r"]) for lab in labels}
        var = {lab: float(rows.loc[lab, "latent variance ratio"]) for lab in labels}
        (r1, r2), (v1, v2) = r.values(), var.values()
        invariant = bool(abs(r1 - r2) <= max_r_gap and abs(v1 - v2) <= max_variance_gap * max(abs(v1), abs(v2), 1e-12))
        e, e_exact = float(err.loc[t, "x0 error, model"]), float(err.loc[t, "x0 error, Gaussian denoiser"])
        factor = e / e_exact if e_exact > 0 else float("inf")
        model_col, exact_col = err["x0 error, model"], err["x0 error, Gaussian denoiser"]  # over every t probed
        return {"pixel_r": r, "variance_ratio": var, "sampler_invariant": invariant, "t": t,
                "sqrt_abar": float(err.loc[t, "sqrt(abar_t)"]), "x0_error": e, "x0_error_exact": e_exact,
                "error_factor": factor, "x0_error_min": float(model_col.min()), "x0_error_max": float(model_col.max()),
                "exact_min": float(exact_col.min()), "exact_max": float(exact_col.max()),
                "ignores_x_t": bool(invariant and factor >= min_error_factor)}


def sampler_study(models: Mapping, data, *, steps: int, timesteps, samplers=("ddim", "original"), seed: int = 0,
                  n_repeats: int = 4) -> SamplerStudy:
    """Why samplers disagree on trained models: :func:`sampler_comparison`, :func:`x0_error_by_timestep` and
    :func:`sampling_trajectory` of each model on the validation trials (reference: the fitting images).

    Parameters
    ----------
    models : mapping of str -> BrainLDM
    data : StudyData
    steps : int
        Reverse steps of every sampler.
    timesteps : sequence of int
        Noise levels of the x0-error probe.
    samplers : sequence of {"ddim", "ddpm", "original"}
    seed, n_repeats : int
        Seed of the sampling runs and of the probe's noise; noise draws per image and timestep of the probe.

    Returns
    -------
    SamplerStudy
    """
    runs = {(n, s): sampling_trajectory(m, data.fmri_val, sampler=s, steps=steps, seed=seed, images=data.images_val)
            for n, m in models.items() for s in samplers}  # each sampling once: the table reads the same runs
    table = sampler_comparison(models, data.fmri_val, data.images_val, samplers=samplers, steps=steps,
                               reference_images=data.images_fit, seed=seed, trajectories=runs)
    errors = {n: x0_error_by_timestep(m, data.images_val, data.fmri_val, timesteps=timesteps,
                                      reference_images=data.images_fit, n_repeats=n_repeats, seed=seed)
              for n, m in models.items()}
    trajectories = {(n, SAMPLER_LABELS[s]): tr for (n, s), tr in runs.items()}
    return SamplerStudy(table.rename(index=SAMPLER_LABELS, level="sampler"), errors, trajectories)


# ----------------------------------------------------------------------------- what the ledger does with a page's rows


def _claim_list(claims_: list[str]) -> str:
    claims_ = list(dict.fromkeys(claims_))
    names = [f"claim {c}" if len(claims_) == 1 else c for c in claims_]
    if len(names) == 1:
        return names[0]
    return "claims " + ", ".join(names[:-1]) + " and " + names[-1]


def _trivial_reference_lines(rows: list[dict], references: Mapping[str, Mapping]) -> list[str]:
    """Rule (d) of :func:`ledger_note`: per confirmation a trivial reference would also earn, what lies in range."""
    from ..ledger import TRIVIAL_REFERENCES, trivial_passes
    from ..names import join_words, metric_label, model_label

    def mean_of(v):
        return float(v["mean"]) if isinstance(v, Mapping) else float(v)

    trivial = {n: references[n] for n in TRIVIAL_REFERENCES if n in references}
    voided: dict[tuple, dict] = {}  # (claim, metric, low, high) -> models and the references in range
    for r in rows:
        if r.get("verdict") != "confirmed" or r.get("proxy"):
            continue
        passing = trivial_passes({"difference": False, **r}, trivial, str(r.get("claim")))  # rule (d), as chapter 9
        lo, hi = float(r["low"]), float(r["high"])
        if passing:
            entry = voided.setdefault((str(r["claim"]), r["metric"], lo, hi), {"models": [], "refs": passing})
            entry["models"].append(model_label(r.get("model", "")))
    return [f"claim {claim}, {metric_label(metric)} of {join_words(dict.fromkeys(e['models']))}: "
            + join_words(dict.fromkeys(f"{model_label(n)} at {mean_of(trivial[n][metric]):.3g}" for n in e["refs"]))
            + f" lie{'s' if len(e['refs']) == 1 else ''} in the claimed range too"
            for (claim, metric, _, _), e in voided.items()]


def ledger_note(rows: list[dict], references: Mapping[str, Mapping], *, conclusions: str = "09_conclusions") -> str:
    """A note for a chapter's verdict table: each row's verdict is its own; chapter 09 decides each claim by its rules.

    Says, for the rows given, what the ledger (:data:`ldm_core.study.ledger.RULE`) will do differently from the table:
    rows confirmed here that a trivial reference of chapter 00 would also confirm (rule d: the reference's mean lies
    in the claimed range; level rows only, not differences, not the claims about the references themselves), rows on
    the study's own code (rule b), proxy rows (rule a), and confirmations that rest on validation rows only (rule c).

    Parameters
    ----------
    rows : list of dict
        Verdict rows of :func:`ldm_core.study.claims.claim_row` (keys ``claim``, ``verdict``, ``metric``, ``low``, ``high``,
        ``split``, ``difference``, ``proxy``, ``own_code``).
    references : mapping of str -> mapping of str -> dict or float
        Chapter 00's ``models`` (name -> metric -> {"mean", ...} or a number); only the trivial references
        (:data:`ldm_core.study.ledger.TRIVIAL_REFERENCES`) among them are read.
    conclusions : str
        The ledger's page, for the link.

    Returns
    -------
    str
        Markdown: one sentence on the rule, then one per kind of row that the ledger treats differently.
    """
    out = [f"Each row above has its own verdict. {{doc}}`Chapter 9 <{conclusions}>` decides each claim from all of "
           "its rows in the book, by the rules it states, so a claim's verdict there can differ from a row's here."]
    lines = _trivial_reference_lines(rows, references)
    if lines:
        out.append("A confirmation that a trivial reference of chapter 0 would also earn does not count there: "
                   + "; ".join(lines) + ".")
    own = [str(r["claim"]) for r in rows if r.get("own_code")]
    if own:
        out.append(f"The rows of {_claim_list(own)} measure this study's own code, not the report's: they are not "
                   "evidence there.")
    proxies = [str(r["claim"]) for r in rows if r.get("proxy")]
    if proxies:
        out.append(f"The rows of {_claim_list(proxies)} are proxies: they measure something other than the claim, "
                   "and are shown there but never counted.")
    val_only = sorted({str(r["claim"]) for r in rows if r.get("verdict") == "confirmed" and not r.get("proxy")
                       and not r.get("own_code")} - {str(r["claim"]) for r in rows if r.get("split") != "validation"})
    if val_only:
        out.append(f"The confirmations of {_claim_list(val_only)} rest on validation trials only (the split that "
                   "selects models): they count there only when test rows agree.")
    return " ".join(out)
