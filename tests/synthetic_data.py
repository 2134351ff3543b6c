"""A small dataset in the digit69 .mat schema with a linear fMRI-image relation, for the unit tests.

Write it with :func:`ldm_core.data.write_digit69_mat`.
"""
from collections.abc import Sequence

import numpy as np

from ldm_core.data import NAMES_KEY

__all__ = ["make_synthetic_digit69"]


def _class_pattern(img: np.ndarray, k: int) -> None:
    """Paint class index ``k``'s bright block into ``img`` (S, S) in place; asymmetric, so a sideways load shows."""
    S = img.shape[0]
    h = S // 2
    if k == 0:
        img[:h, : h - 1] = 1.0  # top-left, taller than wide
    elif k == 1:
        img[h + 1 :, h:] = 1.0  # bottom-right
    elif k == 2:
        img[: h - 1, h:] = 1.0  # top-right, wider than tall
    elif k == 3:
        img[h:, : h - 2] = 1.0  # bottom-left
    else:  # a 3x3 block at a class-specific place
        r0, c0 = (3 * k) % (S - 3), (5 * k) % (S - 3)
        img[r0 : r0 + 3, c0 : c0 + 3] = 1.0


def make_synthetic_digit69(
    *,
    n_train: int = 20,
    n_test: int = 6,
    n_voxels: int = 40,
    image_size: int = 12,
    seed: int = 0,
    codes: Sequence[int] = (1, 2),
    label_names: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """A small dataset in the digit69 .mat schema, with a linear fMRI-image relation, for unit tests.

    Parameters
    ----------
    n_train, n_test : int
        Trial counts; trial ``i`` gets class ``codes[i % K]``.
    n_voxels : int
        V, voxels per trial.
    image_size : int
        S, images are S x S.
    seed : int
        Seed of the mixing matrix and noise.
    codes : sequence of K >= 2 distinct int
        The class codes (default digit69's 1 = six, 2 = nine).
    label_names : sequence of K str, optional
        Class names aligned with ``codes``; if given, a ``labelNames`` cell array (names in ascending
        order of the codes) is added.

    Returns
    -------
    arrays : dict
        The six keys of the real file: fmri* (N, V) float64, stim* (N, S*S) uint8 stored column-major like
        MATLAB, label* (N, 1) (uint8 if every code is in 0..255, else int64), plus ``labelNames`` (K,)
        object if ``label_names`` is given. Class index 0 has a bright top-left block, index 1 a bright
        bottom-right block, index 2 top-right, 3 bottom-left, further ones small blocks elsewhere, so a
        sideways (untransposed) load is detectable. The defaults give the same arrays as before classes
        were configurable.
    """
    codes = [int(c) for c in codes]
    K = len(codes)
    if K < 2 or len(set(codes)) != K:
        raise ValueError(f"codes must be at least two distinct integers, got {codes}")
    if label_names is not None and len(label_names) != K:
        raise ValueError(f"label_names has {len(label_names)} names for {K} codes {codes}")
    label_dtype = np.uint8 if all(0 <= c <= 255 for c in codes) else np.int64
    rng = np.random.default_rng(seed)
    S = image_size
    out = {}
    W = rng.normal(size=(S * S, n_voxels))
    for split, n in (("Trn", n_train), ("Test", n_test)):
        index = np.arange(n) % K  # class index of each trial
        labels = np.asarray(codes, dtype=label_dtype)[index]
        imgs = np.zeros((n, S, S), dtype=np.float64)
        for i, k in enumerate(index):
            _class_pattern(imgs[i], int(k))
            imgs[i] += 0.1 * rng.random((S, S))
        imgs = np.clip(imgs, 0, 1)
        stim = np.round(imgs * 255).astype(np.uint8)
        out[f"stim{split}"] = stim.transpose(0, 2, 1).reshape(n, S * S)  # column-major like MATLAB
        out[f"fmri{split}"] = imgs.reshape(n, -1) @ W + 0.5 * rng.normal(size=(n, n_voxels))
        out[f"label{split}"] = labels.reshape(n, 1)
    if label_names is not None:
        by_code = dict(zip(codes, label_names))
        out[NAMES_KEY] = np.array([by_code[c] for c in sorted(codes)], dtype=object)  # a MATLAB cell array
    return out
