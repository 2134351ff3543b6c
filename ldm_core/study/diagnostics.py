"""Measurements that answer the report's diagnostic questions (chapter 01).

- :func:`class_decoding`: does the fMRI carry the stimulus class at all? A cross-validated logistic regression
  decoding the class (digit69: six vs nine) from fMRI inside the training trials, with a permutation p-value (scikit-learn's
  ``permutation_test_score``). If fMRI rows were misaligned with their stimuli this would sit at chance.
- :func:`condition_sensitivity`: does the denoiser use the condition and the timestep? The change of its
  output when the fMRI rows are shuffled or t changes, and the gradient of its output with respect to the
  fMRI input.
- :func:`vae_roundtrip`: can the VAE decoder reconstruct anything? Images passed through encoder mean and
  decoder -- the ceiling any latent model with this VAE can reach.
- :func:`parameters_per_sample`: the report's "57,000 parameters per sample" arithmetic, from counts;
  :func:`parameter_table`: the counts of each model by part, per training trial.
- :func:`final_loss_ratio`, :func:`loss_ratio_over_seeds`: the report's "severe overfitting" read on a training
  history -- the validation loss over the training loss in the last epoch of a stage, per seed and over seeds.
- :func:`neighbour_correlation`: does the voxel order of the file carry spatial information? The mean
  across-trial correlation of voxels adjacent in file order against that of random voxel pairs (chapter 04:
  what grouping contiguous voxels into tokens can and cannot mean); :func:`neighbour_correlation_curve` over
  a range of distances.
- :func:`defect_ladder`, :func:`run_ladder`, :func:`leave_one_out_drops`: the original's four defects fixed
  one after another, and each fix removed from the fully fixed model; what each fix is worth on validation.
- :func:`shuffled_fmri_check`: do reconstructions change when a trial gets another trial's fMRI?
- :func:`x0_error_by_timestep`, :func:`sampling_trajectory`, :func:`sampler_comparison`: what a trained denoiser
  does at each noise level, how the size of x_t evolves along a sampler's steps, and what each sampler makes of
  the same model -- set against the exact denoiser of Gaussian latents (:mod:`ldm_core.study.sampler_check`), whose
  samplers' output laws are known in closed form; :func:`sampler_study` runs the three on a few models, and
  :meth:`SamplerStudy.x_t_use` reads from them whether a model's output depends on x_t at all.
- :func:`ledger_note`: what the ledger of chapter 09 will do with a chapter's verdict rows (rows a trivial reference
  would also confirm, rows on the study's own code, proxies, confirmations on validation rows alone).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, permutation_test_score

from .experiment import Variant, make_ldm_config, run_variants, train_model
from ..metrics import paired_comparison, pixel_corr, ssim
from ..pipeline import sample_latents

__all__ = ["class_decoding", "condition_sensitivity", "vae_roundtrip", "parameters_per_sample", "parameter_table",
           "neighbour_correlation", "neighbour_correlation_curve", "LADDER_FIXES", "SAMPLER_LABELS", "DefectLadder",
           "defect_ladder", "LadderRuns", "final_loss_ratio", "loss_ratio_over_seeds", "run_ladder", "leave_one_out_drops", "shuffled_fmri_check",
           "x0_error_by_timestep", "sampling_trajectory", "sampler_comparison", "SamplerStudy", "sampler_study",
           "ledger_note"]


def class_decoding(fmri: np.ndarray, labels: np.ndarray, *, n_folds: int = 5, n_perm: int = 200,
                   C: float = 1e-3, seed: int = 0) -> dict:
    """Cross-validated class decoding accuracy from fMRI (any K classes; digit69: six vs nine), with a permutation
    p-value.

    Parameters
    ----------
    fmri : ndarray (N, V), z-scored training fMRI; labels : ndarray (N,)
    n_folds : int
        Folds of the stratified CV; lowered to the size of the smallest class when that is smaller (a class needs
        a trial in every fold).
    C : float
        Inverse L2 regularisation of the logistic regression (fixed, not tuned: this is a sanity check).

    Returns
    -------
    dict with ``accuracy`` (mean CV accuracy), ``fold_accuracies``, ``n_folds`` (the folds used), ``p_value``,
    ``chance`` (majority-class rate), ``null_mean`` and ``n_perm``.

    Raises
    ------
    ValueError
        If there are fewer than two classes, or a class has fewer than two trials (no CV can hold it out).
    """
    labels = np.asarray(labels).reshape(-1)
    codes, counts = np.unique(labels, return_counts=True)
    if len(codes) < 2 or counts.min() < 2:
        raise ValueError(f"class decoding needs at least two classes of at least two trials each; got class sizes "
                         f"{dict(zip(codes.tolist(), counts.tolist()))}")
    n_folds = int(min(n_folds, counts.min()))
    cv = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    clf = LogisticRegression(C=C, max_iter=5000)
    score, null, p = permutation_test_score(clf, fmri, labels, cv=cv, n_permutations=n_perm, random_state=seed,
                                            scoring="accuracy")
    from sklearn.model_selection import cross_val_score

    folds = cross_val_score(clf, fmri, labels, cv=cv, scoring="accuracy")
    chance = float(counts.max() / len(labels))  # any codes, negative too
    return {"accuracy": float(score), "fold_accuracies": folds.tolist(), "n_folds": n_folds, "p_value": float(p),
            "chance": chance, "null_mean": float(np.mean(null)), "n_perm": n_perm}


@torch.no_grad()
def _unet_out(model, x_t, t, cond):
    return model.unet(x_t, t, cond)


def condition_sensitivity(model, fmri: np.ndarray, *, t: int = 500, t_other: int = 50, seed: int = 0) -> dict:
    """How much the denoiser's output depends on the fMRI condition and on the timestep.

    For random latents x_t (N, C, h, w) at timestep ``t``:

    - ``rel_change_shuffled_fmri``: ||f(x_t, t, c_shuffled) - f(x_t, t, c)|| / ||f(x_t, t, c)|| with the fMRI
      rows permuted (a derangement, so every trial gets another trial's fMRI);
    - ``rel_change_timestep``: the same when t is replaced by ``t_other``;
    - ``grad_norm_fmri``: mean over trials of ||d sum(f^2) / d fmri||, through encoder and denoiser.

    Parameters
    ----------
    model : BrainLDM
    fmri : ndarray (N, V), z-scored; N >= 2
    """
    model.eval()
    dev = model.device
    g = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(np.asarray(fmri), dtype=torch.float32, device=dev)
    N = x.shape[0]
    if N < 2:
        raise ValueError(f"condition_sensitivity needs at least 2 trials to shuffle, got {N}")
    x_t = torch.randn((N, *model.latent_shape), generator=g).to(dev)
    tt = torch.full((N,), t, dtype=torch.long, device=dev)
    perm = torch.roll(torch.arange(N), 1)  # a derangement: trial i gets trial i-1's fMRI
    with torch.no_grad():
        cond = model.encode_fmri(x)
        base = _unet_out(model, x_t, tt, cond)
        shuf = _unet_out(model, x_t, tt, cond[perm.to(dev)])
        other_t = _unet_out(model, x_t, torch.full_like(tt, t_other), cond)
    norm = base.norm().clamp_min(1e-12)
    xg = x.clone().requires_grad_(True)
    out = model.unet(x_t, tt, model.encode_fmri(xg))
    (grad,) = torch.autograd.grad((out**2).sum(), xg, allow_unused=True)  # None when the output ignores fMRI
    grad_norm = float(grad.norm(dim=1).mean()) if grad is not None else 0.0
    return {
        "rel_change_shuffled_fmri": float((shuf - base).norm() / norm),
        "rel_change_timestep": float((other_t - base).norm() / norm),
        "grad_norm_fmri": grad_norm,
        "t": t,
        "t_other": t_other,
    }


@torch.no_grad()
def vae_roundtrip(model, images: np.ndarray) -> np.ndarray:
    """Images (N, S, S) in [0, 1] -> decode(encoder mean), float32 (N, S, S): the VAE's ceiling."""
    model.eval()
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32, device=model.device)[:, None]  # (N, 1, S, S)
    x0 = model.encode_images(x, sample=False)
    return model.decode_latents(x0)[:, 0].clamp(0, 1).cpu().numpy().astype(np.float32)


def parameters_per_sample(n_parameters: int, n_samples: int) -> float:
    """Parameters divided by training samples (the report's overfitting ratio)."""
    if n_samples < 1:
        raise ValueError(f"n_samples must be positive, got {n_samples}")
    return n_parameters / n_samples


def parameter_table(results: Mapping, *, n_train: int, formatted: bool = True) -> pd.DataFrame:
    """Parameters of each variant by part, the encoder's share, and parameters per training trial (claim 5).

    Parameters
    ----------
    results : mapping of str -> VariantResult
    n_train : int, >= 1
        Training trials the report divides by (all training trials of the data: 90 for digit69).
    formatted : bool
        True: cells as text for the page (thousands separators, share in %); False: numbers.

    Returns
    -------
    DataFrame
        Columns encoder, VAE, U-Net, total, encoder share, encoder per training trial, total per training trial.

    Raises
    ------
    ValueError
        If ``n_train`` < 1.
    """
    if n_train < 1:
        raise ValueError(f"n_train must be >= 1, got {n_train}")
    rows = {}
    for name, res in results.items():
        p = res.runs[0].n_parameters
        rows[name] = {"encoder": p["encoder"], "VAE": p["vae"], "U-Net": p["unet"], "total": p["total"],
                      "encoder share": p["encoder"] / p["total"], "encoder per training trial": p["encoder"] / n_train,
                      "total per training trial": p["total"] / n_train}
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("parameters")
    if not formatted:
        return table
    out = table.map(lambda v: f"{v:,.0f}")
    out["encoder share"] = table["encoder share"].map(lambda v: f"{v:.0%}")
    return out


def final_loss_ratio(history: Mapping, *, stage: str = "diffusion") -> float:
    """Validation loss over training loss in the last epoch of ``stage`` that has a validation loss.

    The report's "severe overfitting" read on a training history: a model that memorises its fitting trials ends
    with a validation loss well above its training loss (ratio > 1); a diffusion loss is drawn at fresh noise each
    step, so a ratio near 1 says the denoiser is not memorising.

    Parameters
    ----------
    history : mapping
        A run's per-epoch history: aligned lists ``stage``, ``train_loss`` and ``val_loss`` (NaN or None where
        the epoch was not validated).
    stage : str
        The training stage to read ("diffusion" for every model of chapters 01-06).

    Returns
    -------
    float
        ``val_loss / train_loss`` of that epoch.

    Raises
    ------
    ValueError
        If no epoch of ``stage`` has a finite validation loss (the stages the history has are named), or the
        training loss of that epoch is not positive.
    """
    rows = [(t, v) for s, t, v in zip(history["stage"], history["train_loss"], history["val_loss"])
            if s == stage and v is not None and np.isfinite(v)]
    if not rows:
        raise ValueError(f"the history has no validated epoch of stage {stage!r}; its stages are "
                         f"{sorted(set(history['stage']))}")
    train, val = rows[-1]
    if not train > 0:
        raise ValueError(f"the training loss of the last validated {stage!r} epoch is {train!r}; a ratio needs a "
                         "positive training loss")
    return float(val / train)


def loss_ratio_over_seeds(result, *, stage: str = "diffusion") -> dict:
    """:func:`final_loss_ratio` of every seed of a variant, summarised for a verdict row.

    Parameters
    ----------
    result : VariantResult
        Its ``runs`` (one per seed) carry a ``history``.
    stage : str
        As in :func:`final_loss_ratio`.

    Returns
    -------
    dict
        ``mean`` (over seeds), ``ci_low`` / ``ci_high`` (the smallest and largest seed's ratio: the range across
        seeds, not a bootstrap interval -- a few seeds give none), ``per_seed`` (list) and ``n_seeds``.
    """
    ratios = [final_loss_ratio(run.history, stage=stage) for run in result.runs]
    if not ratios:
        raise ValueError("the variant has no runs")
    return {"mean": float(np.mean(ratios)), "ci_low": float(min(ratios)), "ci_high": float(max(ratios)),
            "per_seed": ratios, "n_seeds": len(ratios)}


def neighbour_correlation(fmri: np.ndarray, *, lag: int = 1, n_random: int = 20000, seed: int = 0) -> dict:
    """Mean across-trial correlation of voxels ``lag`` apart in file order, and of random voxel pairs.

    Parameters
    ----------
    fmri : ndarray of shape (N, V), float
        One pattern per trial (any scaling: each voxel is standardised over trials here).
    lag : int, >= 1
        Distance in file order of the voxel pairs (i, i + lag).
    n_random : int, >= 1
        Random pairs (i, j), i != j, drawn for the reference.
    seed : int
        Seed of the random pairs.

    Returns
    -------
    dict
        ``adjacent``: mean Pearson r over trials of the V - lag pairs (i, i + lag); ``random``: the same for the
        random pairs; ``n_trials``, ``n_voxels``, ``lag``. Voxels constant over trials are left out.

    Raises
    ------
    ValueError
        If ``fmri`` is not 2-D with at least 3 trials, or ``lag`` is not in [1, V - 1], or ``n_random`` < 1.

    Notes
    -----
    If the file listed voxels in an arbitrary order, both means would agree; a larger ``adjacent`` says
    neighbours in file order tend to respond alike (as nearby voxels do), but it gives neither coordinates nor
    region boundaries.
    """
    x = np.asarray(fmri, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 3:
        raise ValueError(f"fmri must have shape (N, V) with N >= 3 trials, got {x.shape}")
    N, V = x.shape
    if not 1 <= lag < V:
        raise ValueError(f"lag must be in [1, {V - 1}] for {V} voxels, got {lag}")
    if n_random < 1:
        raise ValueError(f"n_random must be >= 1, got {n_random}")
    sd = x.std(axis=0)
    z = np.where(sd > 0, (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0), np.nan)  # (N, V), NaN where constant
    adjacent = np.nanmean((z[:, :-lag] * z[:, lag:]).mean(axis=0))
    rng = np.random.default_rng(seed)
    i = rng.integers(0, V, n_random)
    j = (i + rng.integers(1, V, n_random)) % V  # j != i
    random = np.nanmean((z[:, i] * z[:, j]).mean(axis=0))
    return {"adjacent": float(adjacent), "random": float(random), "n_trials": N, "n_voxels": V, "lag": lag}


def neighbour_correlation_curve(fmri: np.ndarray, *, max_lag: int, n_lags: int = 40, extra_lags=(),
                                seed: int = 0) -> dict[int, dict]:
    """:func:`neighbour_correlation` at about ``n_lags`` distances spaced evenly in log from 1 to ``max_lag``.

    Parameters
    ----------
    fmri : ndarray of shape (N, V)
    max_lag : int
        Largest distance in file order, capped at V - 1.
    n_lags : int, >= 1
        Points of the geometric grid (repeated integers are merged, so fewer may result).
    extra_lags : sequence of int
        Distances always included (e.g. the length of one token of the attention encoder), capped at V - 1.
    seed : int
        Seed of the random pairs (the same pairs at every distance).

    Returns
    -------
    dict of int -> dict
        Distance -> :func:`neighbour_correlation`'s result, in increasing distance.

    Raises
    ------
    ValueError
        If ``max_lag`` < 1 or ``n_lags`` < 1 (and as :func:`neighbour_correlation`).
    """
    V = np.asarray(fmri).shape[-1]
    if max_lag < 1 or n_lags < 1:
        raise ValueError(f"max_lag and n_lags must be >= 1, got max_lag={max_lag}, n_lags={n_lags}")
    top = min(int(max_lag), V - 1)
    lags = sorted({int(v) for v in np.geomspace(1, top, n_lags)} | {min(int(e), V - 1) for e in extra_lags})
    return {lag: neighbour_correlation(fmri, lag=lag, seed=seed) for lag in lags}


# ----------------------------------------------------------------------------- the defect ladder (chapter 01)

# the original's four defects, in the order the ladder fixes them
LADDER_FIXES = ("condition", "VAE decoder training", "DDIM sampler", "skip U-Net")
# reader names of the samplers (ldm_core.pipeline.SAMPLERS)
SAMPLER_LABELS = {"ddim": "DDIM", "ddpm": "DDPM (ancestral)", "original": "re-noising (the report's)"}


class DefectLadder(NamedTuple):
    """The original with its defects fixed one after another, and the fully fixed model with one fix removed.

    Attributes
    ----------
    ladder : dict of str -> Variant
        Cumulative fixes: ``"original"``, ``"+ condition injected"``, ``"+ VAE decoder trained"``,
        ``"+ DDIM sampler"``, ``"+ skip U-Net (all fixed)"`` (the last is :attr:`full`).
    leave_one_out : dict of str -> Variant
        ``"all fixed − <fix>"``: the fully fixed model with that one fix undone.
    removed : dict of str -> str
        Leave-one-out name -> the fix it removes (an entry of :data:`LADDER_FIXES`).
    full : str
        Name of the fully fixed model.
    repairs : dict of str -> Variant
        The fully fixed model changed beyond the original's recipe, to test why it is poor (trained one seed):
        ``"all fixed, <n> epochs"`` (longer training) and ``"all fixed, predicting x0"`` (the other
        parameterisation of the denoiser), both sampled with DDIM.
    """

    ladder: dict
    leave_one_out: dict
    removed: dict
    full: str
    repairs: dict

    @property
    def variants(self) -> dict:
        """Every variant, the ladder first (``"all fixed − skip U-Net"`` is ``"+ DDIM sampler"`` again: one run)."""
        return {**self.ladder, **self.leave_one_out}

    @property
    def fixes(self) -> dict:
        """Which variants add and remove each fix: ``{fix: {"added": rung with it, "before": rung before it,
        "removed": the fully fixed model without it}}``, fixes in :data:`LADDER_FIXES` order (chapter 09 reads it
        as chapter 01's ``extra["ladder_fixes"]``)."""
        rungs = list(self.ladder)
        by_fix = {fix: name for name, fix in self.removed.items()}
        return {fix: {"added": rungs[i + 1], "before": rungs[i], "removed": by_fix[fix]}
                for i, fix in enumerate(LADDER_FIXES)}


def defect_ladder(*, epochs: int, batch_size: int, lr: float, vae_epochs: int, unet_channels, steps: int,
                  longer_epochs: int) -> DefectLadder:
    """The variants of chapter 01's defect ladder, all at the original's training budget.

    The original (configuration ``original``) has four defects: its denoiser never receives the condition (nor t),
    its VAE decoder is never trained, it samples with the re-noising sampler, and its denoiser has no skip
    connections. Each rung fixes one more, keeping everything else the original's (its epochs, batch, learning
    rate, noise loss only, eps-prediction, 4×7×7 VAE architecture):

    1. condition injected: ``original_unet_uses_embedding=True`` (t and fMRI embedding added to the conv stack);
    2. VAE decoder trained: stage plan ``end_to_end`` (the VAE trained first on the fitting images, for
       ``vae_epochs``; then encoder and denoiser on the noise loss);
    3. DDIM sampler instead of the re-noising one;
    4. skip U-Net (``unet="unet"`` with ``unet_channels``, condition added to the time embedding).

    Parameters
    ----------
    epochs, batch_size, lr : int, int, float
        The original's training budget (report: 50 epochs, batch 4, 1e-4), shared by every variant.
    vae_epochs : int
        VAE epochs wherever the decoder is trained.
    unet_channels : sequence of int
        Widths of the skip U-Net, each divisible by 8.
    steps : int
        Reverse steps of every sampler.
    longer_epochs : int
        Diffusion epochs of the repair "trained longer"; more than ``epochs``.

    Returns
    -------
    DefectLadder

    Raises
    ------
    ValueError
        If ``longer_epochs`` is not more than ``epochs`` (naming both parameters).
    """
    if not longer_epochs > epochs:
        raise ValueError(f"parameter 'longer_epochs' must exceed 'epochs' (the repair trains the fully fixed model "
                         f"longer); got longer_epochs={longer_epochs}, epochs={epochs}")
    train_original = {"stages": "original", "epochs": epochs, "batch_size": batch_size, "lr": lr}
    train_vae = {**train_original, "stages": "end_to_end", "vae_epochs": vae_epochs}
    renoise, ddim = {"steps": steps, "sampler": "original"}, {"steps": steps, "sampler": "ddim"}
    emb = make_ldm_config("original", original_unet_uses_embedding=True)
    fixed = make_ldm_config("original", unet="unet", unet_channels=tuple(unet_channels), conditioning="add")
    full = "+ skip U-Net (all fixed)"
    ladder = {
        "original": Variant(make_ldm_config("original"), train_original, renoise),
        "+ condition injected": Variant(emb, train_original, renoise),
        "+ VAE decoder trained": Variant(emb, train_vae, renoise),
        "+ DDIM sampler": Variant(emb, train_vae, ddim),
        full: Variant(fixed, train_vae, ddim),
    }
    leave_one_out = {
        "all fixed − condition": Variant(make_ldm_config("original", unet="unet", unet_channels=tuple(unet_channels),
                                                         conditioning="none"), train_vae, ddim),
        "all fixed − VAE decoder training": Variant(fixed, train_original, ddim),
        "all fixed − DDIM (re-noising sampler)": Variant(fixed, train_vae, renoise),
        "all fixed − skip U-Net": Variant(emb, train_vae, ddim),
    }
    repairs = {
        f"all fixed, {longer_epochs} epochs": Variant(fixed, {**train_vae, "epochs": longer_epochs}, ddim),
        "all fixed, predicting x0": Variant(dataclasses.replace(fixed, prediction="x0"), train_vae, ddim),
    }
    return DefectLadder(ladder, leave_one_out, dict(zip(leave_one_out, LADDER_FIXES)), full, repairs)


class LadderRuns(NamedTuple):
    """What :func:`run_ladder` returns: every variant's runs, and first-seed models of a few of them and of the repairs."""

    results: dict  # str -> VariantResult, in the order of DefectLadder.variants
    models: dict  # str -> BrainLDM (first seed): the names asked in ``keep``, then DefectLadder.repairs


def run_ladder(ladder: DefectLadder, data, *, seeds, keep=(), cache_dir=None, n_boot: int = 2000, n_perm: int = 0,
               progress: bool = False) -> LadderRuns:
    """Train every variant of ``ladder`` per seed (:func:`~ldm_core.study.experiment.run_variants`, cached), keeping models.

    The variants named in ``keep`` are trained first for ``seeds[0]`` with their models kept on disk
    (``keep_models``), so the diagnostics that need a model (condition sensitivity, VAE round trip, denoiser
    probes) load it instead of training it again. The repairs (``ladder.repairs``) are trained for ``seeds[0]``
    only, and kept.

    Parameters
    ----------
    ladder : DefectLadder
    data : StudyData
    seeds : sequence of int
    keep : sequence of str
        Names of variants whose first-seed model is returned.
    cache_dir, n_boot, n_perm, progress
        As in :func:`~ldm_core.study.experiment.run_variants`.

    Returns
    -------
    LadderRuns
        ``results``: every variant of ``ladder.variants`` over all seeds; ``models``: the first-seed BrainLDM of
        each name in ``keep``, then of each repair.

    Raises
    ------
    KeyError
        If a name in ``keep`` is not a variant of the ladder (the variants are named).
    """
    variants = ladder.variants
    missing = [k for k in keep if k not in variants]
    if missing:
        raise KeyError(f"keep names unknown variant(s) {missing}; the ladder has {list(variants)}")
    kw = dict(n_boot=n_boot, n_perm=n_perm, cache_dir=cache_dir, progress=progress)
    if keep:
        run_variants({k: variants[k] for k in keep}, data, seeds=list(seeds)[:1], keep_models=True, **kw)
    results = run_variants(variants, data, seeds=seeds, **kw)
    kept = {**{k: variants[k] for k in keep}, **ladder.repairs}
    models = {k: train_model(data, ldm_cfg=v.ldm_cfg, train_cfg=v.train_cfg, seed=int(seeds[0]), cache_dir=cache_dir,
                             keep_model=True, progress=progress).model for k, v in kept.items()}
    return LadderRuns(results, models)


def leave_one_out_drops(results: Mapping, ladder: DefectLadder, *, metric: str = "pixel_r", split: str = "val",
                        n_boot: int = 2000) -> dict[str, dict]:
    """What each fix is worth: the fully fixed model minus the model without that fix, per image.

    Parameters
    ----------
    results : mapping of str -> VariantResult
        Runs of every variant of ``ladder``.
    metric : str
        A per-image metric of :func:`ldm_core.metrics.evaluate`.
    split : {"val", "test"}
        The validation split by default: the root cause is chosen without the test trials.

    Returns
    -------
    dict of str -> dict
        Fix (an entry of :data:`LADDER_FIXES`) -> :func:`ldm_core.metrics.paired_comparison` of the seed-averaged
        per-image values, full minus leave-one-out: a positive mean means removing the fix loses that much.
    """
    full = results[ladder.full].pooled(metric, split)["per_image"]
    return {fix: paired_comparison(full, results[name].pooled(metric, split)["per_image"], n_boot=n_boot)
            for name, fix in ladder.removed.items()}


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
        As in :meth:`BrainLDM.reconstruct` (``sampler=None``: the model's default).

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
    n_repeats : int, >= 1
        Noise draws per image and timestep.
    seed : int
        Seeds the noise.

    Returns
    -------
    DataFrame
        Index ``t``; columns ``sqrt(abar_t)``; ``x0 error, model`` and ``x0 error, Gaussian denoiser``: mean squared
        error of the x0 estimate over images, draws and latent components, divided by the mean per-component
        variance of the ``images``' latents (1: as far off as the latents are spread); ``eps error, model`` and
        ``eps error, Gaussian denoiser``: mean squared error of the implied noise estimate (per component; the
        noise has variance 1).

    Raises
    ------
    ValueError
        If fewer than 2 images or reference images, a timestep out of range, or ``n_repeats`` < 1.
    """
    from .sampler_check import GaussianOracle

    if len(images) < 2 or len(reference_images) < 2 or len(fmri) != len(images):
        raise ValueError(f"x0_error_by_timestep needs >= 2 images with one fMRI row each and >= 2 reference images; "
                         f"got {len(images)} images, {len(fmri)} fMRI rows, {len(reference_images)} reference images")
    if n_repeats < 1:
        raise ValueError(f"n_repeats must be >= 1, got {n_repeats}")
    sch = model.schedule
    T = sch.n_train_steps
    bad = [t for t in timesteps if not 0 <= int(t) < T]
    if bad:
        raise ValueError(f"timesteps must lie in [0, {T}), got {bad}")
    model.eval()
    x0 = _latents(model, images)  # (N, C, h, w)
    mean, cov = _gaussian_fit(_latents(model, reference_images))
    oracle = GaussianOracle(mean, cov, sch)
    spread = float(x0.reshape(len(x0), -1).var(0).mean())
    cond = model.encode_fmri(torch.as_tensor(np.asarray(fmri), dtype=torch.float32, device=model.device))
    g = torch.Generator().manual_seed(seed)
    rows = {}
    for t in map(int, timesteps):
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
        rows[t] = {"sqrt(abar_t)": float(sch.sqrt_alphas_cumprod[t]),
                   "x0 error, model": err["x0 model"] / n_repeats / spread,
                   "x0 error, Gaussian denoiser": err["x0 gauss"] / n_repeats / spread,
                   "eps error, model": err["eps model"] / n_repeats,
                   "eps error, Gaussian denoiser": err["eps gauss"] / n_repeats}
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
    :meth:`BrainLDM.reconstruct` draws it), so ``images_out`` equals ``model.reconstruct(fmri, steps=steps,
    seed=seed, sampler=sampler)``.

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
    from .sampler_check import gaussian_moments

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
        err = self.errors[model]
        t = int(err.index.min()) if t is None else int(t)
        if t not in err.index:
            raise KeyError(f"t = {t} was not probed; the probe has t in {sorted(map(int, err.index))}")
        rows = self.table.loc[model]
        r = {lab: float(rows.loc[lab, "pixel r"]) for lab in labels}
        var = {lab: float(rows.loc[lab, "latent variance ratio"]) for lab in labels}
        (r1, r2), (v1, v2) = r.values(), var.values()
        invariant = bool(abs(r1 - r2) <= max_r_gap and abs(v1 - v2) <= max_variance_gap * max(abs(v1), abs(v2), 1e-12))
        e, e_exact = float(err.loc[t, "x0 error, model"]), float(err.loc[t, "x0 error, Gaussian denoiser"])
        factor = e / e_exact if e_exact > 0 else float("inf")
        return {"pixel_r": r, "variance_ratio": var, "sampler_invariant": invariant, "t": t,
                "sqrt_abar": float(err.loc[t, "sqrt(abar_t)"]), "x0_error": e, "x0_error_exact": e_exact,
                "error_factor": factor, "x0_error_min": float(err["x0 error, model"].min()),
                "x0_error_max": float(err["x0 error, model"].max()),
                "exact_min": float(err["x0 error, Gaussian denoiser"].min()),
                "exact_max": float(err["x0 error, Gaussian denoiser"].max()),
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
    from .ledger import TRIVIAL_REFERENCES, trivial_passes
    from .names import join_words, metric_label, model_label

    def mean_of(v):
        return float(v["mean"]) if isinstance(v, Mapping) else float(v)

    trivial = {n: references[n] for n in TRIVIAL_REFERENCES if n in references}
    out = [f"Each row above has its own verdict. {{doc}}`Chapter 9 <{conclusions}>` decides each claim from all of "
           "its rows in the book, by the rules it states, so a claim's verdict there can differ from a row's here."]
    voided: dict[tuple, dict] = {}  # (claim, metric, low, high) -> models and the references in range
    for r in rows:
        if r.get("verdict") != "confirmed" or r.get("proxy"):
            continue
        passing = trivial_passes({"difference": False, **r}, trivial, str(r.get("claim")))  # rule (d), as chapter 9
        lo, hi = float(r["low"]), float(r["high"])
        if passing:
            entry = voided.setdefault((str(r["claim"]), r["metric"], lo, hi), {"models": [], "refs": passing})
            entry["models"].append(model_label(r.get("model", "")))
    lines = [f"claim {claim}, {metric_label(metric)} of {join_words(dict.fromkeys(e['models']))}: "
             + join_words(dict.fromkeys(f"{model_label(n)} at {mean_of(trivial[n][metric]):.3g}" for n in e["refs"]))
             + f" lie{'s' if len(e['refs']) == 1 else ''} in the claimed range too"
             for (claim, metric, _, _), e in voided.items()]
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
                       and not r.get("own_code")}
                      - {str(r["claim"]) for r in rows if r.get("split") != "validation"})
    if val_only:
        out.append(f"The confirmations of {_claim_list(val_only)} rest on validation trials only (the split that "
                   "selects models): they count there only when test rows agree.")
    return " ".join(out)
