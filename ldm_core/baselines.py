"""Noise floors and linear decoders: what any model must beat.

Noise floors use no fMRI: uniform noise, constant images, the training-mean image, and -- as a
labelled *reference*, not a decoder, because it reads the test labels -- the mean training image of
the correct digit. The *nearest-fMRI copy* (:func:`nearest_fmri_copy`) reads the fMRI but reconstructs nothing: it
copies the training image of the training trial whose fMRI pattern is most similar -- the honest floor when test
images repeat in training. Linear decoders map z-scored fMRI to pixels with scikit-learn's ridge regression
and PLS; their hyperparameter (ridge alpha, number of PLS components) is chosen by K-fold
cross-validation inside the training trials only, then the model is refit on all training trials.

The latent-regression baseline maps fMRI by ridge to the latent of a trained VAE (the encoder mean of each
training image, the target of the LDM's alignment stage) and decodes the prediction with that VAE: the
LDM's own image prior without any diffusion. Its alpha is chosen the same way, by K-fold CV of the latent
MSE inside the training trials. This is the "ridge to a generative model's latent space, then decode"
recipe of e.g. Takagi & Nishimoto (CVPR 2023) and Ozcelik & VanRullen (2023), here with the study's VAE.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.cross_decomposition import PLSRegression
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold

__all__ = ["noise_floors", "nearest_fmri_copy",
           "LinearDecoder", "fit_ridge", "fit_pls", "fit_latent_ridge", "vae_latents",
           "LatentDecoder", "fit_latent_decoder", "cv_search", "pls_components_that_fit", "DEFAULT_ALPHAS",
           "DEFAULT_LATENT_ALPHAS", "DEFAULT_PLS_COMPONENTS"]

DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(0, 6, 13))
DEFAULT_LATENT_ALPHAS = tuple(float(a) for a in np.logspace(-2, 6, 17))  # wider at the low end: latents are few, smooth targets
DEFAULT_PLS_COMPONENTS = (1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 40, 50)


# ----------------------------------------------------------------------------- noise floors


def noise_floors(
    images_train: np.ndarray,
    labels_train: np.ndarray,
    labels_test: np.ndarray,
    *,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Reconstructions that use no fMRI, one (N_test, S, S) float32 array per name.

    Parameters
    ----------
    images_train : ndarray of shape (N_train, S, S), float in [0, 1]
    labels_train : ndarray of shape (N_train,)
    labels_test : ndarray of shape (N_test,)
        Used only by the ``class_mean_reference`` entry, which is a labelled reference, not a decoder.
    seed : int
        Seed of the uniform noise.

    Returns
    -------
    floors : dict
        ``uniform_noise``, ``constant_0.5``, ``constant_0``, ``train_mean`` and ``class_mean_reference``.
    """
    images_train = np.asarray(images_train, dtype=np.float32)
    labels_train = np.asarray(labels_train).reshape(-1)
    labels_test = np.asarray(labels_test).reshape(-1)
    N, S = len(labels_test), images_train.shape[1]
    rng = np.random.default_rng(seed)
    mean = images_train.mean(axis=0)
    missing = sorted(set(labels_test.tolist()) - set(labels_train.tolist()))
    if missing:
        raise ValueError(f"test labels {missing} have no training images to average for the class-mean reference")
    class_means = {c: images_train[labels_train == c].mean(axis=0) for c in np.unique(labels_train)}
    return {
        "uniform_noise": rng.random((N, S, S)).astype(np.float32),
        "constant_0.5": np.full((N, S, S), 0.5, dtype=np.float32),
        "constant_0": np.zeros((N, S, S), dtype=np.float32),
        "train_mean": np.repeat(mean[None], N, axis=0).astype(np.float32),
        "class_mean_reference": np.stack([class_means[c] for c in labels_test]).astype(np.float32),
    }


def nearest_fmri_copy(fmri_train: np.ndarray, images_train: np.ndarray, fmri_test: np.ndarray, *,
                      return_index: bool = False):
    """Copy the training image of the training trial whose fMRI pattern correlates best with each test trial's.

    The honest floor for data whose test images repeat in training: it reconstructs nothing, it *retrieves*. Each
    pattern (row) is z-scored across its voxels, so the score is the Pearson correlation of two trials' patterns;
    ties go to the first training trial. Pass fMRI normalised per voxel with training statistics (as every chapter
    does); the pattern correlation itself needs no fitted parameter.

    Parameters
    ----------
    fmri_train : ndarray of shape (N_train, V)
    images_train : ndarray of shape (N_train, S, S), float in [0, 1]
    fmri_test : ndarray of shape (N_test, V)
    return_index : bool
        Also return the chosen training trial of each test trial.

    Returns
    -------
    images : ndarray of shape (N_test, S, S), float32
        ``images_train[j(i)]`` with ``j(i) = argmax_j r(fmri_test[i], fmri_train[j])``.
    index : ndarray of shape (N_test,), int64
        ``j(i)``, only with ``return_index``.

    Raises
    ------
    ValueError
        fMRI that is not 2-D with the same voxel count in both splits, images that are not (N_train, S, S), or
        training counts that differ between fMRI and images.
    """
    fmri_train = np.asarray(fmri_train, dtype=np.float64)
    fmri_test = np.asarray(fmri_test, dtype=np.float64)
    images_train = np.asarray(images_train)
    if fmri_train.ndim != 2 or fmri_test.ndim != 2 or fmri_train.shape[1] != fmri_test.shape[1] \
            or len(fmri_train) == 0:
        raise ValueError(f"expected fmri_train (N_train >= 1, V) and fmri_test (N_test, V) with the same V; got "
                         f"{fmri_train.shape} and {fmri_test.shape}")
    if images_train.ndim != 3 or len(images_train) != len(fmri_train):
        raise ValueError(f"images_train must be (N_train, S, S) with N_train = {len(fmri_train)} (one image per "
                         f"training trial); got {images_train.shape}")

    def patterns(x):  # rows with mean 0 and norm 1 across voxels; a constant pattern correlates 0 with everything
        x = x - x.mean(axis=1, keepdims=True)
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        return np.divide(x, norm, out=np.zeros_like(x), where=norm > 1e-12)

    r = patterns(fmri_test) @ patterns(fmri_train).T  # (N_test, N_train)
    index = r.argmax(axis=1).astype(np.int64)
    images = images_train[index].astype(np.float32)
    return (images, index) if return_index else images


# ----------------------------------------------------------------------------- linear decoders


@dataclass
class LinearDecoder:
    """A fitted fMRI -> pixels (or fMRI -> VAE latent) linear decoder.

    Attributes
    ----------
    name : str
        "ridge", "pls" or "latent_ridge".
    estimator : sklearn estimator
        Refit on all training trials with the selected hyperparameter.
    param_name : str
        The selected hyperparameter ("alpha" or "n_components").
    best_param : float
    cv_scores : dict
        Hyperparameter value -> mean CV score (negative MSE of the targets; higher is better).
    image_size : int
        Side S of the target images (0 for a latent decoder).
    target_shape : tuple of int or None
        Shape of one prediction when the targets are not images, e.g. a latent (C, h, w); None for images.
    """

    name: str
    estimator: object
    param_name: str
    best_param: float
    cv_scores: dict
    image_size: int
    target_shape: tuple[int, ...] | None = None

    def predict(self, fmri: np.ndarray) -> np.ndarray:
        """fmri : (N, V) z-scored with training statistics.

        Returns images (N, S, S) float32 clipped to [0, 1], or, for a latent decoder (``target_shape`` set),
        latents (N, *target_shape) float32, unclipped.
        """
        pred = np.asarray(self.estimator.predict(np.asarray(fmri, dtype=np.float64)))
        if self.target_shape is not None:
            return pred.reshape(len(pred), *self.target_shape).astype(np.float32)
        S = self.image_size
        return np.clip(pred.reshape(len(pred), S, S), 0.0, 1.0).astype(np.float32)


def cv_search(estimator, grid: dict, X: np.ndarray, Y: np.ndarray, *, n_folds: int, seed: int) -> tuple:
    """The one hyperparameter search of every ridge / PLS decoder and latent map.

    ``grid`` is ``{name: candidates}`` for one hyperparameter; each candidate is scored by shuffled K-fold CV
    (``random_state=seed``) of the mean squared error of ``Y`` (N, ...) from ``X`` (N, V) -- inside the rows given,
    only -- and the best is refit on all of them. PLS's NIPALS iterations may stop at max_iter for late, weak
    components; the CV score judges such a fit, so that ConvergenceWarning is silenced.

    Returns
    -------
    estimator, best : the refit estimator and its hyperparameter value (float)
    cv_scores : dict
        Candidate -> mean CV score (negative MSE; higher is better).
    """
    if len(grid) != 1:
        raise ValueError(f"cv_search tunes one hyperparameter; grid names {sorted(grid)}")
    name = next(iter(grid))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning, module="sklearn.cross_decomposition")
        search = GridSearchCV(estimator, grid, scoring="neg_mean_squared_error", refit=True,
                              cv=KFold(n_splits=n_folds, shuffle=True, random_state=seed)).fit(X, Y)
    scores = {float(p): float(s) for p, s in zip(search.cv_results_[f"param_{name}"],
                                                 search.cv_results_["mean_test_score"])}
    return search.best_estimator_, float(search.best_params_[name]), scores


def pls_components_that_fit(candidates, n_rows: int, n_folds: int) -> list[int]:
    """The PLS component counts of ``candidates`` that the smallest CV training fold of ``n_rows`` rows can extract."""
    max_comp = n_rows - int(np.ceil(n_rows / n_folds)) - 1
    return [c for c in candidates if 1 <= c <= max_comp]


def _fit_cv(name, estimator, grid_name, grid, fmri_train, images_train, *, n_folds, seed,
            images: bool = True) -> LinearDecoder:
    fmri_train = np.asarray(fmri_train, dtype=np.float64)
    images_train = np.asarray(images_train, dtype=np.float64)
    what = "images (N, S, S)" if images else "targets (N, ...)"
    if (fmri_train.ndim != 2 or (images_train.ndim != 3 if images else images_train.ndim < 2)
            or len(fmri_train) != len(images_train)):
        raise ValueError(
            f"expected fmri (N, V) and {what} with the same N; got {fmri_train.shape} and {images_train.shape}"
        )
    N, S = len(images_train), (images_train.shape[1] if images else 0)
    if n_folds < 2 or n_folds > N:
        raise ValueError(f"n_folds must be in [2, {N}] (number of training trials); got {n_folds}")
    fitted, best, scores = cv_search(estimator, {grid_name: list(grid)}, fmri_train, images_train.reshape(N, -1),
                                     n_folds=n_folds, seed=seed)
    return LinearDecoder(name, fitted, grid_name, best, scores, S,
                         target_shape=None if images else tuple(images_train.shape[1:]))


def fit_ridge(
    fmri_train: np.ndarray,
    images_train: np.ndarray,
    *,
    alphas: tuple[float, ...] = DEFAULT_ALPHAS,
    n_folds: int = 5,
    seed: int = 0,
) -> LinearDecoder:
    """Ridge fMRI -> pixels; alpha chosen by K-fold CV (pixel MSE) inside the training trials.

    Parameters
    ----------
    fmri_train : ndarray of shape (N, V), z-scored with training statistics
    images_train : ndarray of shape (N, S, S), float in [0, 1]
    alphas : tuple of float
        Candidate regularisation strengths.
    """
    return _fit_cv("ridge", Ridge(), "alpha", alphas, fmri_train, images_train, n_folds=n_folds, seed=seed)


def fit_pls(
    fmri_train: np.ndarray,
    images_train: np.ndarray,
    *,
    n_components: tuple[int, ...] = DEFAULT_PLS_COMPONENTS,
    n_folds: int = 5,
    seed: int = 0,
) -> LinearDecoder:
    """PLS regression fMRI -> pixels; number of components chosen by K-fold CV inside the training trials.

    Candidates larger than the smallest CV training fold are dropped (PLS cannot extract more components
    than samples).
    """
    N = len(fmri_train)
    grid = pls_components_that_fit(n_components, N, n_folds)
    if not grid:
        raise ValueError(f"no PLS component count in {n_components} fits {N} trials with {n_folds} folds "
                         f"(max {N - int(np.ceil(N / n_folds)) - 1})")
    return _fit_cv("pls", PLSRegression(scale=False), "n_components", grid, fmri_train, images_train, n_folds=n_folds, seed=seed)


# ----------------------------------------------------------------------------- latent regression


def fit_latent_ridge(
    fmri_train: np.ndarray,
    latents_train: np.ndarray,
    *,
    alphas: tuple[float, ...] = DEFAULT_LATENT_ALPHAS,
    n_folds: int = 5,
    seed: int = 0,
) -> LinearDecoder:
    """Ridge fMRI -> VAE latents; alpha chosen by K-fold CV (latent MSE) inside the training trials.

    Parameters
    ----------
    fmri_train : ndarray of shape (N, V), z-scored with training statistics
    latents_train : ndarray of shape (N, C, h, w) (or (N, D)), float
        The targets, e.g. :func:`vae_latents` of the training images.
    alphas : tuple of float
        Candidate regularisation strengths.

    Returns
    -------
    LinearDecoder
        ``name="latent_ridge"``; ``predict`` returns latents (N, C, h, w), unclipped.
    """
    return _fit_cv("latent_ridge", Ridge(), "alpha", alphas, fmri_train, latents_train, n_folds=n_folds, seed=seed,
                   images=False)


def vae_latents(model, images: np.ndarray) -> np.ndarray:
    """Scaled VAE latents (encoder mean) of images, the targets of the LDM's alignment stage.

    Parameters
    ----------
    model : BrainLDM
        Any model with ``encode_images(x, sample=False)`` (e.g. :func:`ldm_core.study.experiment.stage1_vae`).
    images : ndarray of shape (N, S, S), float in [0, 1]

    Returns
    -------
    ndarray of shape (N, C, h, w), float32: ``latent_scale * mean(q(z | x))``.
    """
    import torch

    model.eval()
    with torch.no_grad():
        x = torch.as_tensor(np.asarray(images), dtype=torch.float32, device=model.device)[:, None]  # (N, 1, S, S)
        return model.encode_images(x, sample=False).cpu().numpy().astype(np.float32)


@dataclass
class LatentDecoder:
    """fMRI -> VAE latent by ridge, then the VAE's decoder: the latent-regression baseline.

    Attributes
    ----------
    regression : LinearDecoder
        The fitted fMRI -> latent ridge (:func:`fit_latent_ridge`).
    model : BrainLDM
        Holds the VAE whose latents were regressed; only ``decode_latents`` is used.
    """

    regression: LinearDecoder
    model: object

    @property
    def best_param(self) -> float:
        return self.regression.best_param

    def predict_latents(self, fmri: np.ndarray) -> np.ndarray:
        """fmri (N, V), z-scored -> predicted scaled latents (N, C, h, w) float32."""
        return self.regression.predict(fmri)

    def predict(self, fmri: np.ndarray) -> np.ndarray:
        """fmri (N, V), z-scored -> decoded images (N, S, S) float32 in [0, 1]."""
        import torch

        z = torch.as_tensor(self.predict_latents(fmri), device=self.model.device)  # (N, C, h, w)
        self.model.eval()
        with torch.no_grad():
            return self.model.decode_latents(z)[:, 0].clamp(0, 1).cpu().numpy().astype(np.float32)


def fit_latent_decoder(model, fmri_train: np.ndarray, images_train: np.ndarray, *,
                       alphas: tuple[float, ...] = DEFAULT_LATENT_ALPHAS, n_folds: int = 5,
                       seed: int = 0) -> LatentDecoder:
    """Fit the latent-regression baseline: ridge from fMRI to ``model``'s VAE latents of the training images.

    Parameters
    ----------
    model : BrainLDM
        Its VAE (trained on the same training images only) gives the targets and decodes predictions.
    fmri_train : ndarray of shape (N, V), z-scored with training statistics
    images_train : ndarray of shape (N, S, S), float in [0, 1]
    """
    return LatentDecoder(fit_latent_ridge(fmri_train, vae_latents(model, images_train), alphas=alphas,
                                          n_folds=n_folds, seed=seed), model)
