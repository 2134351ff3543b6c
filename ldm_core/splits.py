"""The data of a chapter: split digit69 for selection, z-score the fMRI, subsample the fitting trials.

- :func:`prepare_data` loads digit69 (or any file in its schema), carves the validation split out of the training
  trials (seeded, stratified by class) and z-scores fMRI with statistics of the *fitting* trials only (the trials the
  model trains on); validation and test fMRI are transformed with those statistics.
- :func:`subsample_fit` keeps a stratified draw of the fitting trials (fMRI re-z-scored with their
  statistics), for learning curves against training-set size; the validation and test trials stay the same.
- :func:`refit_all` is the final refit: every training trial becomes a fitting trial (fMRI z-scored with the
  statistics of all of them); the validation trials are then in-sample and must not be used to select anything.
- :func:`seed_list` names the seeds of a comparison.

:class:`StudyData` holds the arrays and the counts a page quotes (``n_train``, ``n_fit``, ``n_val``, ``n_test``,
``n_voxels``, ``image_size``, ``class_names``); its :meth:`StudyData.fingerprint` (data file and split, never the
class names) is part of every run cache key (:mod:`ldm_core.study.runs`).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from .data import Digit69, FmriNormalizer, load_digit69, train_val_split

__all__ = ["StudyData", "prepare_data", "subsample_fit", "refit_all", "seed_list"]


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
        return hashlib.sha256(key.encode()).hexdigest()[:16]


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
        :func:`ldm_core.data.train_val_split` (bad ``val_fraction``).
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
