"""A second dataset in digit69's schema, unlike digit69 in every count a page could quote (tests only).

:func:`write_schema_dataset` writes a small ``.mat`` file that follows digit69's schema (``fmriTrn``, ``fmriTest``,
``stimTrn``, ``stimTest``, ``labelTrn``, ``labelTest``; images column-major) but differs from digit69 wherever a
chapter could have typed a digit69 fact:

- other trial counts (default 60 training, 12 test; digit69: 90 and 10), so 48 fitting and 12 validation trials
  with the default 0.2 validation share (digit69: 72 and 18);
- another voxel count (400; digit69: 3092) and image size (20x20; digit69: 28x28);
- three classes with label codes 21, 22, 23 (digit69: 1 = six, 2 = nine) and no ``labelNames``, so their names
  default to "class 21", ...;
- geometric shapes, not handwriting: a ring, a filled square and a triangle, each drawn at a jittered position,
  size and stroke, so that MNIST digits (the default image prior) cannot represent them;
- ``n_repeated`` test images are exact copies of training images (the rest are new drawings, with pixel r <= 0.99
  against every training image, so the planted count is the count :func:`ldm_core.splits.test_in_training` finds);
- fMRI that carries signal about the image: a fixed random linear map of the pixels plus a class pattern and noise.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ldm_core.data import write_digit69_mat

__all__ = ["SCHEMA_DEFAULTS", "draw_shape", "make_schema_arrays", "write_schema_dataset"]

SCHEMA_DEFAULTS = dict(n_train=60, n_test=12, n_voxels=400, image_size=20, codes=(21, 22, 23), n_repeated=4, seed=0)
SHAPES = ("ring", "square", "triangle")  # the shape drawn for each class, in the order of the codes


def draw_shape(kind: str, S: int, rng: np.random.Generator) -> np.ndarray:
    """One shape on an S x S dark canvas, float64 in [0, 1], with jittered centre, size and stroke."""
    y, x = np.mgrid[0:S, 0:S].astype(np.float64)
    cy, cx = S / 2 + rng.uniform(-S / 8, S / 8, size=2)
    r = rng.uniform(0.22, 0.34) * S
    if kind == "ring":
        d = np.hypot(y - cy, x - cx)
        img = np.clip(1.5 - np.abs(d - r) / rng.uniform(0.8, 1.4), 0, 1)
    elif kind == "square":
        img = ((np.abs(y - cy) <= r * 0.8) & (np.abs(x - cx) <= r * 0.8)).astype(np.float64)
    elif kind == "triangle":
        top, base = cy - r, cy + r * 0.8
        half = (y - top) / (base - top) * r  # half-width grows from the apex down to the base
        img = ((y >= top) & (y <= base) & (np.abs(x - cx) <= half)).astype(np.float64)
    else:
        raise ValueError(f"unknown shape {kind!r}; shapes: {SHAPES}")
    return np.clip(img * rng.uniform(0.75, 1.0), 0, 1)


def _pixel_r(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of every row of a (n, P) with every row of b (m, P) -> (n, m)."""
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    return (a / np.linalg.norm(a, axis=1, keepdims=True)) @ (b / np.linalg.norm(b, axis=1, keepdims=True)).T


def make_schema_arrays(*, n_train: int = 60, n_test: int = 12, n_voxels: int = 400, image_size: int = 20,
                       codes=(21, 22, 23), n_repeated: int = 4, seed: int = 0) -> tuple[dict, dict]:
    """The arrays of the .mat file and what was planted.

    Returns
    -------
    arrays : dict
        The six schema keys: fmri* (N, V) float64, stim* (N, S*S) uint8 column-major, label* (N, 1) uint8.
    planted : dict
        ``repeated_test`` (test indices that copy a training image), ``source_train`` (the training image each
        copies), ``n_repeated``, and the sizes.
    """
    if not 0 <= n_repeated <= n_test:
        raise ValueError(f"n_repeated must be in [0, {n_test}], got {n_repeated}")
    rng = np.random.default_rng(seed)
    S, K = image_size, len(codes)
    labels_train = np.arange(n_train) % K  # class index of each training trial
    labels_test = np.arange(n_test) % K
    train = np.stack([draw_shape(SHAPES[k % len(SHAPES)], S, rng) for k in labels_train])  # (N_train, S, S)
    stim_train = np.round(train * 255).astype(np.uint8)
    repeated = np.sort(rng.choice(n_test, size=n_repeated, replace=False))
    source = {}
    stim_test = np.zeros((n_test, S, S), dtype=np.uint8)
    for i, k in enumerate(labels_test):
        if i in repeated:  # an exact copy of a training image of the same class
            j = int(rng.choice(np.flatnonzero(labels_train == k)))
            stim_test[i], source[int(i)] = stim_train[j], j
            continue
        while True:  # a new drawing, clearly not a copy of any training image
            img = np.round(draw_shape(SHAPES[k % len(SHAPES)], S, rng) * 255).astype(np.uint8)
            if _pixel_r(img.reshape(1, -1).astype(float), stim_train.reshape(n_train, -1).astype(float)).max() <= 0.97:
                stim_test[i] = img
                break
    W = rng.normal(size=(S * S, n_voxels)) / S  # pixels -> voxels
    class_pattern = rng.normal(size=(K, n_voxels))
    arrays = {}
    for split, stim, lab in (("Trn", stim_train, labels_train), ("Test", stim_test, labels_test)):
        x = stim.reshape(len(stim), -1) / 255.0
        arrays[f"fmri{split}"] = x @ W + 0.5 * class_pattern[lab] + 0.5 * rng.normal(size=(len(stim), n_voxels))
        arrays[f"stim{split}"] = stim.transpose(0, 2, 1).reshape(len(stim), S * S)  # column-major like MATLAB
        arrays[f"label{split}"] = np.asarray(codes, dtype=np.uint8)[lab].reshape(-1, 1)
    planted = {"repeated_test": [int(i) for i in repeated], "source_train": source, "n_repeated": int(n_repeated),
               "n_train": n_train, "n_test": n_test, "n_voxels": n_voxels, "image_size": S, "codes": list(codes)}
    return arrays, planted


def write_schema_dataset(path: str | Path, **kwargs) -> dict:
    """Write the dataset to ``path`` (a .mat file); returns ``planted`` (:func:`make_schema_arrays`) and ``path``."""
    arrays, planted = make_schema_arrays(**{**SCHEMA_DEFAULTS, **kwargs})
    return {**planted, "path": write_digit69_mat(path, arrays)}
