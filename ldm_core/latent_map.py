"""Stage 2 of the image-prior Brain LDM: the map from fMRI to the prior's latent, learned from the paired trials.

The map predicts the standardised code of the seen image (:meth:`ldm_core.prior.ImagePrior.codes`) from z-scored
fMRI. Everything here is fitted on the fitting trials only, with hyperparameters chosen by cross-validation inside
them (or, for ``n_voxels``, by the chapter on validation trials):

- **voxel selection** (:func:`encoding_r2`): most of the 3092 voxels carry no information about the digit's shape.
  An encoding model -- ridge from the code to each voxel, scored by K-fold CV inside the fitting trials -- ranks the
  voxels by cross-validated R²; the map reads the ``n_voxels`` best. The DGMM paper selected digit69's voxels the same
  way (encoding R² > 0 under 10-fold CV on the training data).
- **the regression** (:func:`fit_latent_map`): ``"ridge"`` (scikit-learn ``Ridge``, alpha by K-fold CV of the latent
  MSE), ``"pls"`` (PLS regression, number of components by CV) or ``"mlp"`` (a small MLP trained with weight decay
  and dropout for a fixed number of epochs -- the learned encoder "aligned to the pretrained latent").
- **the observation model** (:func:`observation_model`): out-of-fold predictions of the fitting trials' codes give,
  per latent dimension, the slope lambda, the intercept b and the noise sigma of
  ``prediction = b + lambda * code + sigma * e``; stage 3 conditions the prior's denoiser on exactly this.

scikit-learn does the linear algebra; this module only adds the voxel ranking, the MLP and the calibration.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.cross_decomposition import PLSRegression
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.model_selection import KFold

from .baselines import cv_search, pls_components_that_fit

__all__ = ["MAP_KINDS", "DEFAULT_ALPHAS", "encoding_r2", "LatentMap", "fit_latent_map", "ObservationModel",
           "observation_model"]

MAP_KINDS = ("ridge", "pls", "mlp")
DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(-2, 5, 15))
ENCODING_ALPHAS = tuple(float(a) for a in np.logspace(-2, 4, 13))
PLS_COMPONENTS = (1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 30)


def _check(fmri: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    fmri = np.asarray(fmri, dtype=np.float64)
    codes = np.asarray(codes, dtype=np.float64)
    if fmri.ndim != 2 or codes.ndim != 2 or len(fmri) != len(codes):
        raise ValueError(f"expected fmri (N, V) and codes (N, d) with the same N; got {fmri.shape} and {codes.shape}")
    if len(fmri) < 4:
        raise ValueError(f"need at least 4 trials to fit and cross-validate a map, got {len(fmri)}")
    return fmri, codes


def encoding_r2(fmri: np.ndarray, codes: np.ndarray, *, n_folds: int = 5, seed: int = 0) -> np.ndarray:
    """Cross-validated R² of an encoding model (ridge from the code to each voxel), per voxel.

    Parameters
    ----------
    fmri : ndarray (N, V), z-scored fMRI of the fitting trials
    codes : ndarray (N, d), standardised codes of their images
    n_folds, seed : K-fold CV inside these trials (alpha chosen per fold by ``RidgeCV``)

    Returns
    -------
    ndarray (V,), float: 1 - SS_res / SS_tot of the out-of-fold predictions (can be negative).
    """
    fmri, codes = _check(fmri, codes)
    pred = np.zeros_like(fmri)
    for tr, te in KFold(n_splits=n_folds, shuffle=True, random_state=seed).split(codes):
        pred[te] = RidgeCV(alphas=ENCODING_ALPHAS).fit(codes[tr], fmri[tr]).predict(codes[te])
    ss_res = ((fmri - pred) ** 2).sum(axis=0)
    ss_tot = ((fmri - fmri.mean(axis=0)) ** 2).sum(axis=0)
    return 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0)


class _MLPRegressor:
    """fMRI (N, V) -> code (N, d): Linear-SiLU-Dropout-Linear, AdamW with weight decay, full-batch epochs (torch)."""

    def __init__(self, *, hidden: int = 256, dropout: float = 0.5, weight_decay: float = 1e-1, epochs: int = 300,
                 lr: float = 1e-3, seed: int = 0) -> None:
        self.hidden, self.dropout, self.weight_decay, self.epochs, self.lr, self.seed = (
            hidden, dropout, weight_decay, epochs, lr, seed)

    def fit(self, X: np.ndarray, Y: np.ndarray) -> "_MLPRegressor":
        import torch
        from torch import nn

        from ldm_core.optim import optimiser_step

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.net = nn.Sequential(nn.Linear(X.shape[1], self.hidden), nn.SiLU(), nn.Dropout(self.dropout),
                                     nn.Linear(self.hidden, Y.shape[1]))
            opt = torch.optim.AdamW(self.net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            x, y = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(Y, dtype=torch.float32)
            self.net.train()
            for _ in range(self.epochs):
                optimiser_step(opt, ((self.net(x) - y) ** 2).mean())
            self.net.eval()
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.net(torch.as_tensor(np.asarray(X), dtype=torch.float32)).numpy().astype(np.float64)


@dataclass
class LatentMap:
    """A fitted fMRI -> standardised-code map.

    Attributes
    ----------
    kind : {"ridge", "pls", "mlp"}
    voxels : ndarray of int
        Indices of the voxels it reads (all when no selection).
    estimator : object
        Fitted on the selected voxels of the fitting trials.
    params : dict
        The chosen hyperparameters (``alpha`` / ``n_components``) and the CV scores.
    r2 : ndarray (V,) or None
        The encoding R² the voxels were ranked by.
    """

    kind: str
    voxels: np.ndarray
    estimator: object
    params: dict = field(default_factory=dict)
    r2: np.ndarray | None = None

    def predict(self, fmri: np.ndarray) -> np.ndarray:
        """fmri (N, V) z-scored with the fitting statistics -> predicted codes (N, d) float32."""
        fmri = np.asarray(fmri, dtype=np.float64)
        return np.asarray(self.estimator.predict(fmri[:, self.voxels]), dtype=np.float32)

    def refit(self, fmri: np.ndarray, codes: np.ndarray) -> object:
        """A fresh estimator with this map's hyperparameters, fitted on (fmri, codes) of the selected voxels."""
        X = np.asarray(fmri, dtype=np.float64)[:, self.voxels]
        with warnings.catch_warnings():  # as in baselines.cv_search: PLS's late components may stop at max_iter
            warnings.filterwarnings("ignore", category=ConvergenceWarning, module="sklearn.cross_decomposition")
            return _estimator(self.kind, self.params).fit(X, np.asarray(codes, dtype=np.float64))


def _estimator(kind: str, params: dict):
    if kind == "ridge":
        return Ridge(alpha=params["alpha"])
    if kind == "pls":
        return PLSRegression(n_components=int(params["n_components"]), scale=False)
    return _MLPRegressor(**{k: v for k, v in params.items() if k in ("hidden", "dropout", "weight_decay", "epochs",
                                                                     "lr", "seed")})


def fit_latent_map(fmri: np.ndarray, codes: np.ndarray, *, kind: str = "ridge", n_voxels: int | None = None,
                   alphas: tuple[float, ...] = DEFAULT_ALPHAS, n_folds: int = 5, seed: int = 0,
                   mlp: dict | None = None) -> LatentMap:
    """Fit the fMRI -> code map on the fitting trials (see the module docstring).

    Parameters
    ----------
    fmri : ndarray (N, V), z-scored with the fitting trials' statistics
    codes : ndarray (N, d), standardised codes of the trials' images
    kind : {"ridge", "pls", "mlp"}
    n_voxels : int, optional
        Read the ``n_voxels`` voxels with the highest encoding R² (:func:`encoding_r2`, CV inside these trials);
        None reads every voxel.
    alphas : tuple of float
        Ridge candidates (K-fold CV of the code MSE).
    n_folds, seed : CV inside the fitting trials.
    mlp : dict, optional
        Settings of the MLP (hidden, dropout, weight_decay, epochs, lr).

    Raises
    ------
    ValueError
        On an unknown ``kind``, ``n_voxels`` outside [1, V], or mismatched shapes.
    """
    if kind not in MAP_KINDS:
        raise ValueError(f"kind must be one of {MAP_KINDS}, got {kind!r}")
    fmri, codes = _check(fmri, codes)
    V = fmri.shape[1]
    r2 = None
    if n_voxels is None:
        voxels = np.arange(V)
    else:
        if isinstance(n_voxels, bool) or not isinstance(n_voxels, (int, np.integer)) or not 1 <= n_voxels <= V:
            raise ValueError(f"n_voxels must be an int in [1, {V}] (the voxel count) or None, got {n_voxels!r}")
        r2 = encoding_r2(fmri, codes, n_folds=n_folds, seed=seed)
        voxels = np.sort(np.argsort(r2)[::-1][: int(n_voxels)])
    X = fmri[:, voxels]
    if kind == "mlp":
        params = {"hidden": 256, "dropout": 0.5, "weight_decay": 1e-1, "epochs": 300, "lr": 1e-3, **(mlp or {}),
                  "seed": seed}
        return LatentMap(kind, voxels, _estimator(kind, params).fit(X, codes), params, r2)
    if kind == "ridge":
        base, grid = Ridge(), {"alpha": list(alphas)}
    else:
        fits = pls_components_that_fit(PLS_COMPONENTS, len(X), n_folds)
        base, grid = PLSRegression(scale=False), {"n_components": [c for c in fits if c <= X.shape[1]]}
    fitted, best, scores = cv_search(base, grid, X, codes, n_folds=n_folds, seed=seed)
    return LatentMap(kind, voxels, fitted, {next(iter(grid)): best, "cv_scores": scores}, r2)


@dataclass(frozen=True)
class ObservationModel:
    """``prediction = b + lambda * code + sigma * e`` per latent dimension, from out-of-fold predictions.

    Attributes
    ----------
    slope, intercept, noise : ndarray (d,) float32
        lambda (clipped to [0, 1]), b and sigma (> 0) per dimension, in standardised code units.
    r2 : ndarray (d,)
        Cross-validated R² of the map per dimension.
    """

    slope: np.ndarray
    intercept: np.ndarray
    noise: np.ndarray
    r2: np.ndarray

    def condition(self, predicted: np.ndarray, *, noise_scale: float = 1.0):
        """The prior denoiser's condition (N, 3d) for predicted codes: ``[prediction - b, lambda, noise_scale * sigma]``."""
        import torch

        from .prior import observation_condition

        c = torch.as_tensor(np.asarray(predicted, dtype=np.float32) - self.intercept)
        return observation_condition(c, torch.as_tensor(self.slope), torch.as_tensor(noise_scale * self.noise))


def observation_model(latent_map: LatentMap, fmri: np.ndarray, codes: np.ndarray, *, n_folds: int = 5,
                      seed: int = 0) -> ObservationModel:
    """Calibrate a map by K-fold CV inside the fitting trials: its slope, intercept and noise per dimension.

    The voxels and hyperparameters stay those of ``latent_map``; each fold refits the estimator on the other folds
    and predicts the held-out trials. Per dimension j, a least-squares line ``pred_j = b_j + lambda_j * code_j`` and
    the standard deviation of its residuals (floored at 1e-3).
    """
    fmri, codes = _check(fmri, codes)
    oof = np.zeros_like(codes)
    for tr, te in KFold(n_splits=n_folds, shuffle=True, random_state=seed).split(codes):
        oof[te] = np.asarray(latent_map.refit(fmri[tr], codes[tr]).predict(fmri[te][:, latent_map.voxels]))
    d = codes.shape[1]
    slope, intercept, noise, r2 = (np.zeros(d) for _ in range(4))
    for j in range(d):
        x, y = codes[:, j], oof[:, j]
        vx = x.var()
        slope[j] = ((x - x.mean()) * (y - y.mean())).mean() / vx if vx > 0 else 0.0
        intercept[j] = y.mean() - slope[j] * x.mean()
        noise[j] = max(float(np.std(y - intercept[j] - slope[j] * x)), 1e-3)
        r2[j] = 1.0 - ((x - y) ** 2).sum() / max(((x - x.mean()) ** 2).sum(), 1e-12)
    return ObservationModel(np.clip(slope, 0.0, 1.0).astype(np.float32), intercept.astype(np.float32),
                            noise.astype(np.float32), r2.astype(np.float32))
