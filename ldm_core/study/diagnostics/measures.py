"""Chapter 01's measurements of the original model: class decoding, condition sensitivity, VAE round trip, parameter
tables, loss ratios, and voxel-neighbour correlation.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, permutation_test_score


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
