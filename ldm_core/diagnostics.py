"""Measurements that answer the report's diagnostic questions (chapter 01).

- :func:`class_decoding`: does the fMRI carry the digit at all? A cross-validated logistic regression
  decoding six vs nine from fMRI inside the training trials, with a permutation p-value (scikit-learn's
  ``permutation_test_score``). If fMRI rows were misaligned with their stimuli this would sit at chance.
- :func:`condition_sensitivity`: does the denoiser use the condition and the timestep? The change of its
  output when the fMRI rows are shuffled or t changes, and the gradient of its output with respect to the
  fMRI input.
- :func:`vae_roundtrip`: can the VAE decoder reconstruct anything? Images passed through encoder mean and
  decoder -- the ceiling any latent model with this VAE can reach.
- :func:`parameters_per_sample`: the report's "57,000 parameters per sample" arithmetic, from counts.
- :func:`neighbour_correlation`: does the voxel order of the file carry spatial information? The mean
  across-trial correlation of voxels adjacent in file order against that of random voxel pairs (chapter 04:
  what grouping contiguous voxels into tokens can and cannot mean).
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, permutation_test_score

__all__ = ["class_decoding", "condition_sensitivity", "vae_roundtrip", "parameters_per_sample", "neighbour_correlation"]


def class_decoding(fmri: np.ndarray, labels: np.ndarray, *, n_folds: int = 5, n_perm: int = 200,
                   C: float = 1e-3, seed: int = 0) -> dict:
    """Cross-validated class (six-vs-nine, or any K classes) decoding accuracy from fMRI, with a permutation p-value.

    Parameters
    ----------
    fmri : ndarray (N, V), z-scored training fMRI; labels : ndarray (N,)
    C : float
        Inverse L2 regularisation of the logistic regression (fixed, not tuned: this is a sanity check).

    Returns
    -------
    dict with ``accuracy`` (mean CV accuracy), ``fold_accuracies``, ``p_value``, ``chance``
    (majority-class rate) and ``null_mean``.
    """
    labels = np.asarray(labels).reshape(-1)
    cv = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    clf = LogisticRegression(C=C, max_iter=5000)
    score, null, p = permutation_test_score(clf, fmri, labels, cv=cv, n_permutations=n_perm, random_state=seed,
                                            scoring="accuracy")
    from sklearn.model_selection import cross_val_score

    folds = cross_val_score(clf, fmri, labels, cv=cv, scoring="accuracy")
    chance = float(np.max(np.unique(labels, return_counts=True)[1]) / len(labels))  # any codes, negative too
    return {"accuracy": float(score), "fold_accuracies": folds.tolist(), "p_value": float(p), "chance": chance,
            "null_mean": float(np.mean(null)), "n_perm": n_perm}


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
    (out**2).sum().backward()
    grad = xg.grad
    grad_norm = float(grad.norm(dim=1).mean()) if grad is not None else 0.0
    model.zero_grad(set_to_none=True)
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
