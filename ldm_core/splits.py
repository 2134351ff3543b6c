"""The data of a chapter: split digit69 for selection, z-score the fMRI, subsample the fitting trials.

- :func:`train_val_split` is the seeded validation split, stratified by class; :class:`FmriNormalizer` z-scores fMRI
  with statistics it is fitted on (the fitting trials only).
- :func:`prepare_data` loads digit69 (or any file in its schema), carves the validation split out of the training
  trials (seeded, stratified by class) and z-scores fMRI with statistics of the *fitting* trials only (the trials the
  model trains on); validation and test fMRI are transformed with those statistics.
- :func:`subsample_fit` keeps a stratified draw of the fitting trials (fMRI re-z-scored with their
  statistics), for learning curves against training-set size; the validation and test trials stay the same.
- :func:`refit_all` is the final refit: every training trial becomes a fitting trial (fMRI z-scored with the
  statistics of all of them); the validation trials are then in-sample and must not be used to select anything.
- :func:`seed_list` names the seeds of a comparison; :func:`stratified_subset` draws a class-stratified subset of
  unpaired prior images (the prior-size curve of chapter 07).
- :func:`test_in_training` counts the test stimuli that also occur (pixel r > 0.99) among the training stimuli:
  on such data identification measures retrieval, not reconstruction, and chapter 00 publishes the count.

:class:`StudyData` holds the arrays and the counts a page quotes (``n_train``, ``n_fit``, ``n_val``, ``n_test``,
``n_voxels``, ``image_size``, ``class_names``); its :meth:`StudyData.fingerprint` (data file and split, never the
class names) is part of every run cache key (:mod:`ldm_core.study.runs`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .data import Digit69, load_digit69
from .io import content_key
from .prior_images import PriorImages

__all__ = ["train_val_split", "FmriNormalizer", "REPEAT_THRESHOLD", "test_in_training", "StudyData", "prepare_data",
           "subsample_fit", "refit_all", "seed_list", "stratified_subset"]


def train_val_split(labels: np.ndarray, *, val_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of the training trials, stratified by label, for model and hyperparameter selection.

    Parameters
    ----------
    labels : ndarray of shape (N,)
        Labels of the *training* trials (the test split is never split).
    val_fraction : float in (0, 1)
        Fraction of trials held out for validation (rounded per class, at least one per class).
    seed : int
        Seed of the permutation.

    Returns
    -------
    train_idx, val_idx : ndarray of int64
        Sorted, disjoint indices covering all N trials.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    labels = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) < 2:
            raise ValueError(f"label {c} has {len(idx)} trial(s); a stratified split needs at least 2 per label")
        n_val = min(len(idx) - 1, max(1, int(round(val_fraction * len(idx)))))
        val.extend(rng.permutation(idx)[:n_val].tolist())
    val_idx = np.sort(np.asarray(val, dtype=np.int64))
    train_idx = np.setdiff1d(np.arange(len(labels), dtype=np.int64), val_idx)
    return train_idx, val_idx


class FmriNormalizer:
    """Per-voxel z-score fitted on training trials only.

    ``fit`` sees only the arrays you pass (pass training trials); ``transform`` applies the stored
    statistics to anything, so test fMRI never changes a fitted quantity. Voxels with zero training
    variance get std 1 (they are centred, not scaled) so nothing divides by zero.

    Attributes
    ----------
    mean_ : ndarray of shape (V,), float64
    std_ : ndarray of shape (V,), float64
    """

    def __init__(self) -> None:
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None

    def fit(self, fmri: np.ndarray) -> "FmriNormalizer":
        """fmri : ndarray of shape (N, V), raw training fMRI."""
        fmri = np.asarray(fmri, dtype=np.float64)
        if fmri.ndim != 2 or fmri.shape[0] < 2:
            raise ValueError(f"fit needs fMRI of shape (N >= 2, V), got {fmri.shape}")
        self.mean_ = fmri.mean(axis=0)
        std = fmri.std(axis=0)
        self.std_ = np.where(std > 0, std, 1.0)
        return self

    def transform(self, fmri: np.ndarray) -> np.ndarray:
        """fmri : ndarray of shape (N, V) -> z-scored float32 of the same shape."""
        if self.mean_ is None:
            raise RuntimeError("FmriNormalizer.transform called before fit; call fit(training fMRI) first")
        fmri = np.asarray(fmri, dtype=np.float64)
        if fmri.ndim != 2 or fmri.shape[1] != self.mean_.shape[0]:
            raise ValueError(f"expected fMRI of shape (N, {self.mean_.shape[0]}), got {fmri.shape}")
        return ((fmri - self.mean_) / self.std_).astype(np.float32)

    def fit_transform(self, fmri: np.ndarray) -> np.ndarray:
        return self.fit(fmri).transform(fmri)


REPEAT_THRESHOLD = 0.99  # pixel Pearson r above which a test stimulus counts as a copy of a training stimulus


def _pixel_rows(images: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(images)
    if a.ndim != 3 or a.shape[0] == 0 or not np.issubdtype(a.dtype, np.number) or not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be a non-empty array of images (N, S, S) of finite numbers, got shape "
                         f"{a.shape} and dtype {a.dtype}")
    x = a.reshape(len(a), -1).astype(np.float64)
    x = x - x.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 1e-12)  # constant image: r = 0 with everything


def test_in_training(images_train: np.ndarray, images_test: np.ndarray, *,
                     threshold: float = REPEAT_THRESHOLD) -> dict:
    """Count the test stimuli that have an exact or near copy among the training stimuli.

    A dataset whose test images also occur in training (digit69's have none; a file of a few distinct shapes
    shown many times has many) changes what the scores mean: a decoder can recognise the training trial and copy
    its image, so identification then measures retrieval, not reconstruction. The comparison is the pixel Pearson
    correlation of each test image with every training image (no shifts); an identical pair counts as a copy even
    when both images are constant (where r is undefined and taken as 0).

    Parameters
    ----------
    images_train : ndarray of shape (N_train, S, S), float
    images_test : ndarray of shape (N_test, S, S), float, same S
    threshold : float in (0, 1]
        A test image whose best r with a training image exceeds this is a copy (0.99: exact and near copies).

    Returns
    -------
    dict
        ``count`` (int, the number of test images with a copy), ``n_test``, ``threshold``, ``max_r`` (list of
        N_test floats, each test image's best r with a training image; 1.0 for an identical pair), ``index`` (list
        of N_test ints, the training image reaching it) and ``repeated`` (the test indices counted).

    Raises
    ------
    ValueError
        Arrays that are not non-empty (N, S, S) images of the same size, or a threshold outside (0, 1].
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)) \
            or not 0 < float(threshold) <= 1:
        raise ValueError(f"threshold must be a Pearson r in (0, 1], got {threshold!r}")
    A, B = _pixel_rows(images_train, "images_train"), _pixel_rows(images_test, "images_test")
    if np.shape(images_train)[1:] != np.shape(images_test)[1:]:
        raise ValueError(f"images_train are {np.shape(images_train)[1:]} but images_test are "
                         f"{np.shape(images_test)[1:]}; both need the same image size")
    r = B @ A.T  # (N_test, N_train)
    train = np.asarray(images_train).reshape(len(A), -1)
    for i, img in enumerate(np.asarray(images_test).reshape(len(B), -1)):  # identical pairs are copies, constant or not
        same = np.flatnonzero(np.all(train == img, axis=1))
        r[i, same] = 1.0
    index = r.argmax(axis=1)
    max_r = np.minimum(r[np.arange(len(B)), index], 1.0)
    repeated = np.flatnonzero(max_r > threshold)
    return {"count": int(len(repeated)), "n_test": int(len(B)), "threshold": float(threshold),
            "max_r": [float(v) for v in max_r], "index": [int(j) for j in index],
            "repeated": [int(i) for i in repeated]}


@dataclass
class StudyData:
    """Arrays of one chapter, already split and normalised.

    fmri_* : float32 (N, V), z-scored with the fitting trials' statistics; images_* : float32 (N, S, S)
    in [0, 1]; labels_* : int (N,). ``fit`` = training trials minus validation; ``train_all`` = all
    training trials (normalised with the same statistics), for baselines that select by CV internally.
    """

    fmri_fit: np.ndarray
    images_fit: np.ndarray
    labels_fit: np.ndarray
    fmri_val: np.ndarray
    images_val: np.ndarray
    labels_val: np.ndarray
    fmri_test: np.ndarray
    images_test: np.ndarray
    labels_test: np.ndarray
    fmri_train_all: np.ndarray
    images_train_all: np.ndarray
    labels_train_all: np.ndarray
    val_idx: np.ndarray
    normalizer: FmriNormalizer
    raw: Digit69 = field(repr=False)
    fit_idx: np.ndarray | None = None  # indices of the fitting trials in raw when a subset (subsample_fit); None: all non-validation trials

    @property
    def n_voxels(self) -> int:
        return int(self.fmri_fit.shape[1])

    @property
    def image_size(self) -> int:
        """S: the images are S x S."""
        return int(self.images_test.shape[1])

    @property
    def class_names(self) -> dict[int, str]:
        """Label code -> class name (the data's, see :func:`ldm_core.data.load_digit69`), ascending codes."""
        return dict(self.raw.class_names)

    @property
    def n_fit(self) -> int:
        """Trials the models are fitted on (training minus validation; all training trials after :func:`refit_all`)."""
        return int(len(self.labels_fit))

    @property
    def n_val(self) -> int:
        """Validation trials (carved out of the training trials)."""
        return int(len(self.labels_val))

    @property
    def n_test(self) -> int:
        """Test trials."""
        return int(len(self.labels_test))

    @property
    def n_train(self) -> int:
        """All training trials (fitting + validation)."""
        return int(len(self.labels_train_all))

    def fingerprint(self) -> str:
        """Short hash of the data file and the split (part of the run cache key)."""
        key = self.raw.sha256 + ",".join(map(str, self.val_idx))
        if self.fit_idx is not None:  # a subset of the fitting trials (the full set keeps its original key)
            key += ";fit:" + ",".join(map(str, self.fit_idx))
        return content_key(key.encode(), digits=16)


def prepare_data(data_dir: str | None = None, *, val_fraction: float = 0.2, split_seed: int = 0,
                 class_names: dict | None = None, verbose: int = 1) -> StudyData:
    """Load digit69, split a validation set off the training trials and z-score the fMRI.

    Parameters
    ----------
    data_dir : str, optional
        Folder holding ``digit69_28x28.mat`` (or the file itself); None or "" finds it the way
        :func:`ldm_core.data.fetch_digit69` does (``LDM_DATA_DIR``, then the user cache).
    val_fraction : float in (0, 1)
        Share of the training trials held out for validation, stratified by digit.
    split_seed : int
        Seed of the validation split.
    class_names : dict, optional
        Label code -> class name over the data's defaults (see :func:`ldm_core.data.load_digit69`; string keys
        such as ``"21"`` are codes). Names never enter :meth:`StudyData.fingerprint`.
    verbose : int
        0: silent; 1: say where the data come from (passed to :func:`ldm_core.data.load_digit69`).

    Returns
    -------
    StudyData
        fMRI of every split z-scored with the statistics of the fitting trials (training minus
        validation); ``fit_idx`` None (all non-validation trials).

    Raises
    ------
    ValueError, OSError
        From :func:`ldm_core.data.load_digit69` (file not found or not in the schema, bad ``class_names``) and
        :func:`train_val_split` (bad ``val_fraction``).
    """
    raw = load_digit69(data_dir or None, class_names=class_names, verbose=verbose)
    fit_idx, val_idx = train_val_split(raw.labels_train, val_fraction=val_fraction, seed=split_seed)
    norm = FmriNormalizer().fit(raw.fmri_train[fit_idx])
    return StudyData(
        fmri_fit=norm.transform(raw.fmri_train[fit_idx]), images_fit=raw.images_train[fit_idx],
        labels_fit=raw.labels_train[fit_idx],
        fmri_val=norm.transform(raw.fmri_train[val_idx]), images_val=raw.images_train[val_idx],
        labels_val=raw.labels_train[val_idx],
        fmri_test=norm.transform(raw.fmri_test), images_test=raw.images_test, labels_test=raw.labels_test,
        fmri_train_all=norm.transform(raw.fmri_train), images_train_all=raw.images_train,
        labels_train_all=raw.labels_train, val_idx=val_idx, normalizer=norm, raw=raw,
    )


def subsample_fit(data: StudyData, n_trials: int, *, seed: int = 0) -> StudyData:
    """The same split with only ``n_trials`` of the fitting trials: a seeded draw stratified by digit.

    The fMRI of every split is z-scored again with the statistics of the drawn trials only (what a study with
    that many trials would do); validation and test trials are the same trials as in ``data``.

    Parameters
    ----------
    data : StudyData
        From :func:`prepare_data` (or another subset of it).
    n_trials : int
        Fitting trials to keep, in [number of digit classes, number of fitting trials]. All of them returns
        ``data`` itself (there is only one such draw).
    seed : int
        Seed of the draw (scikit-learn's stratified ``train_test_split``).

    Returns
    -------
    StudyData
        ``fmri_fit``, ``images_fit``, ``labels_fit`` hold the drawn trials; ``fit_idx`` their indices in the
        raw training arrays (so the run cache tells subsets apart); ``train_all`` still holds every training trial.

    Raises
    ------
    ValueError
        If ``n_trials`` is outside the allowed range (the range is named).
    """
    from sklearn.model_selection import train_test_split

    raw = data.raw
    fit_idx = (data.fit_idx if data.fit_idx is not None
               else np.setdiff1d(np.arange(len(raw.labels_train), dtype=np.int64), data.val_idx))
    n_fit, n_classes = len(fit_idx), len(np.unique(raw.labels_train[fit_idx]))
    if isinstance(n_trials, bool) or not isinstance(n_trials, (int, np.integer)) or not n_classes <= n_trials <= n_fit:
        raise ValueError(f"n_trials must be an int in [{n_classes}, {n_fit}] (one trial per digit class at least, "
                         f"at most the {n_fit} fitting trials); got {n_trials!r}")
    if n_trials == n_fit:
        return data
    keep, _ = train_test_split(fit_idx, train_size=int(n_trials), stratify=raw.labels_train[fit_idx], random_state=seed)
    keep = np.sort(keep)
    norm = FmriNormalizer().fit(raw.fmri_train[keep])
    return StudyData(
        fmri_fit=norm.transform(raw.fmri_train[keep]), images_fit=raw.images_train[keep], labels_fit=raw.labels_train[keep],
        fmri_val=norm.transform(raw.fmri_train[data.val_idx]), images_val=data.images_val, labels_val=data.labels_val,
        fmri_test=norm.transform(raw.fmri_test), images_test=data.images_test, labels_test=data.labels_test,
        fmri_train_all=norm.transform(raw.fmri_train), images_train_all=data.images_train_all,
        labels_train_all=data.labels_train_all, val_idx=data.val_idx, normalizer=norm, raw=raw, fit_idx=keep,
    )


def refit_all(data: StudyData) -> StudyData:
    """The final refit of a chapter: fit on all training trials (validation included), test trials unchanged.

    Everything is chosen on validation first; then the chosen configuration is retrained on every training trial
    with the same hyperparameters and scored once on the test trials. The fMRI of every split is z-scored with the
    statistics of all training trials. ``images_val`` / ``fmri_val`` still hold the validation trials (now part
    of the fit, so scores on them are in-sample: never select on them); ``fit_idx`` lists every training trial, so
    the run cache tells this refit from the 72-trial fit.
    """
    raw = data.raw
    keep = np.arange(len(raw.labels_train), dtype=np.int64)
    norm = FmriNormalizer().fit(raw.fmri_train)
    return StudyData(
        fmri_fit=norm.transform(raw.fmri_train), images_fit=raw.images_train, labels_fit=raw.labels_train,
        fmri_val=norm.transform(raw.fmri_train[data.val_idx]), images_val=data.images_val, labels_val=data.labels_val,
        fmri_test=norm.transform(raw.fmri_test), images_test=data.images_test, labels_test=data.labels_test,
        fmri_train_all=norm.transform(raw.fmri_train), images_train_all=data.images_train_all,
        labels_train_all=data.labels_train_all, val_idx=data.val_idx, normalizer=norm, raw=raw, fit_idx=keep,
    )


def seed_list(n_seeds: int, *, first: int = 0) -> list[int]:
    """``[first, first + 1, ...]``: the seeds of a comparison (n_seeds >= 1)."""
    if n_seeds < 1:
        raise ValueError(f"n_seeds must be at least 1, got {n_seeds}")
    return list(range(first, first + n_seeds))


def stratified_subset(prior: PriorImages, n_images: int, *, seed: int = 0) -> PriorImages:
    """A seeded draw of ``n_images`` images, stratified by digit (for curves against the prior's size).

    Parameters
    ----------
    prior : PriorImages
    n_images : int
        In [0, prior.n_images]; 0 gives an empty set (images of shape (0, S, S)), ``prior.n_images`` the set itself.
    seed : int
        Seed of the draw (scikit-learn's stratified ``train_test_split``).

    Raises
    ------
    ValueError
        If ``n_images`` is outside [0, prior.n_images] (the range is named).
    """
    from sklearn.model_selection import train_test_split

    N = prior.n_images
    if isinstance(n_images, bool) or not isinstance(n_images, (int, np.integer)) or not 0 <= n_images <= N:
        raise ValueError(f"n_images must be an int in [0, {N}] (the images available), got {n_images!r}")
    if n_images == N:
        return prior
    if n_images == 0:
        keep = np.zeros(0, dtype=np.int64)
    elif n_images < len(np.unique(prior.labels)):
        keep = np.sort(np.random.default_rng(seed).choice(N, size=int(n_images), replace=False))
    else:
        keep, _ = train_test_split(np.arange(N), train_size=int(n_images), stratify=prior.labels, random_state=seed)
        keep = np.sort(keep)
    sub = replace(prior, images=prior.images[keep], labels=prior.labels[keep])
    return replace(sub, description=prior.description + f" Subset: {len(keep)} of {N} images (seed {seed}).")
