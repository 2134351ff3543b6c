"""The digit69 dataset: finding, fetching, validating and loading it, and splitting it for selection.

The file ``digit69_28x28.mat`` (van Gerven et al. 2010; distributed with the DGMM code of Du et al.,
IJCNN 2017 / IEEE TNNLS 2019) holds one fMRI pattern per trial (V1-V3 voxels) and the 28x28 image of
the handwritten 6 or 9 shown in that trial. Images are stored column-major (MATLAB), so each row is
reshaped to (28, 28) and *transposed* to display upright.

Where the file is looked for (first hit wins), following nilearn's ``get_dataset_dir``:

1. the ``path`` / ``data_dir`` argument;
2. the folder named by the ``LDM_DATA_DIR`` environment variable;
3. the user cache ``~/.cache/ldm_core`` (or ``$XDG_CACHE_HOME/ldm_core``), filled by a download of the
   public file, checked against its SHA-256.

Anything in the same schema works: the voxel count, the number of trials and the (square) image size
are read from the file, never assumed.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.io

__all__ = [
    "DATA_URL",
    "DATA_SHA256",
    "FILENAME",
    "LABEL_NAMES",
    "Digit69",
    "DataFileError",
    "fetch_digit69",
    "load_digit69",
    "sha256_of",
    "train_val_split",
    "FmriNormalizer",
    "make_synthetic_digit69",
    "write_digit69_mat",
]

# ----------------------------------------------------------------------------- constants

FILENAME = "digit69_28x28.mat"
DATA_URL = "https://raw.githubusercontent.com/ChangdeDu/DGMM/master/digit69_28x28.mat"
DATA_SHA256 = "44513e09ad2398566aedd550088b817a3c0bf9cd7873f87078ecd7fdf170b22d"
LABEL_NAMES = {1: "six", 2: "nine"}  # the file's label codes
KEYS = ("fmriTrn", "fmriTest", "stimTrn", "stimTest", "labelTrn", "labelTest")


class DataFileError(ValueError):
    """A data file exists but does not follow the digit69 schema (the message names file, key, problem)."""


# ----------------------------------------------------------------------------- container


@dataclass(frozen=True)
class Digit69:
    """The digit69 dataset as arrays.

    Attributes
    ----------
    fmri_train : ndarray of shape (N_train, V), float32
        Raw fMRI patterns of the training trials (not normalised).
    images_train : ndarray of shape (N_train, S, S), float32 in [0, 1]
        Upright stimulus images of the training trials.
    labels_train : ndarray of shape (N_train,), int64
        Digit codes, 1 = six, 2 = nine.
    fmri_test, images_test, labels_test
        The same for the official test trials (touch once per final model).
    path : Path
        The file the arrays were read from.
    sha256 : str
        SHA-256 of that file.
    description : str
        One paragraph describing the data and its source.
    """

    fmri_train: np.ndarray
    images_train: np.ndarray
    labels_train: np.ndarray
    fmri_test: np.ndarray
    images_test: np.ndarray
    labels_test: np.ndarray
    path: Path
    sha256: str
    description: str = field(default="", repr=False)

    @property
    def n_voxels(self) -> int:
        return int(self.fmri_train.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.images_train.shape[1])


# ----------------------------------------------------------------------------- locating and fetching


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ldm_core"


def _download(url: str, dest: Path, *, expected_sha256: str, timeout: float, verbose: int) -> Path:
    """Download ``url`` to ``dest`` atomically and verify its checksum; nothing is left on failure."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    try:
        if verbose:
            print(f"Downloading {url} -> {dest}")
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            shutil.copyfileobj(resp, out)
        got = sha256_of(tmp)
        if got != expected_sha256:
            raise OSError(
                f"Checksum verification failed for the download of {url}: sha256 {got}, expected "
                f"{expected_sha256}. Dataset fetching aborted; nothing was written to {dest}. "
                f"Place a verified copy of {FILENAME} in a folder and set LDM_DATA_DIR to it."
            )
        os.replace(tmp, dest)
        return dest
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def fetch_digit69(
    data_dir: str | os.PathLike | None = None,
    *,
    url: str = DATA_URL,
    sha256: str = DATA_SHA256,
    download: bool = True,
    timeout: float = 30.0,
    verbose: int = 1,
) -> Path:
    """Find ``digit69_28x28.mat``, downloading it into the user cache if it is nowhere else.

    Parameters
    ----------
    data_dir : path, optional
        A folder holding the file, or the file itself. Tried first.
    url, sha256 : str
        Where the public file lives and its expected SHA-256 (checked only for downloads and cache hits;
        a file you place yourself is trusted, and its checksum is recorded in the results).
    download : bool
        If False, never touch the network; raise if the file is not found.
    timeout : float, seconds
        Network time-out for the download.
    verbose : int
        0 silent, 1 says where the file came from.

    Returns
    -------
    path : Path
        Path of the .mat file.

    Raises
    ------
    FileNotFoundError
        ``data_dir`` was given but holds no such file.
    OSError
        The file is nowhere and could not be downloaded (offline, or checksum mismatch). The message lists
        every place tried and how to place the file by hand.
    """
    tried: list[str] = []
    if data_dir is not None:
        p = Path(data_dir)
        candidate = p if p.suffix == ".mat" or p.is_file() else p / FILENAME
        if not candidate.is_file():
            raise FileNotFoundError(
                f"No data file at {candidate} (from the data_dir argument). Put {FILENAME} there or "
                f"pass the folder that holds it."
            )
        return candidate
    env = os.environ.get("LDM_DATA_DIR")
    if env:
        candidate = Path(env) / FILENAME
        if candidate.is_file():
            if verbose:
                print(f"digit69: using {candidate} (LDM_DATA_DIR)")
            return candidate
        tried.append(f"{candidate} (LDM_DATA_DIR): no such file")
    cache = _default_cache_dir() / FILENAME
    if cache.is_file():
        if sha256_of(cache) == sha256:
            if verbose:
                print(f"digit69: using cached {cache}")
            return cache
        tried.append(f"{cache} (cache): checksum mismatch, ignored")
    else:
        tried.append(f"{cache} (cache): no such file")
    if download:
        try:
            return _download(url, cache, expected_sha256=sha256, timeout=timeout, verbose=verbose)
        except OSError as e:  # URLError is an OSError
            tried.append(f"download from {url}: {e}")
    else:
        tried.append("download: disabled (download=False)")
    raise OSError(
        f"Could not find or fetch {FILENAME}. Tried:\n  - "
        + "\n  - ".join(tried)
        + f"\nTo place the file by hand, download {url} on a machine with internet access, check that its "
        f"sha256 is {sha256}, copy it into a folder and set LDM_DATA_DIR=/that/folder "
        f"(or pass data_dir=...)."
    )


# ----------------------------------------------------------------------------- loading and validation


def _fail(path: Path, key: str | None, problem: str) -> DataFileError:
    where = f"{path}" + (f", key '{key}'" if key else "")
    return DataFileError(f"{where}: {problem}")


def _images_from_rows(rows: np.ndarray, *, path: Path, key: str) -> np.ndarray:
    """(N, S*S) column-major uint8 rows -> (N, S, S) float32 in [0, 1], upright."""
    N, P = rows.shape
    S = int(round(np.sqrt(P)))
    if S * S != P:
        raise _fail(path, key, f"{P} pixels per image is not a square image size (S*S)")
    images = rows.reshape(N, S, S).transpose(0, 2, 1)  # (N, S, S): MATLAB column-major -> row-major
    if np.issubdtype(rows.dtype, np.integer):
        images = images.astype(np.float32) / 255.0
    else:
        images = images.astype(np.float32)
        if images.max(initial=0) > 1.0:  # stored as 0..255 floats
            images = images / 255.0
    if images.min(initial=0) < 0 or images.max(initial=0) > 1:
        raise _fail(path, key, "pixel values fall outside [0, 255] (uint8) or [0, 1] (float)")
    return np.ascontiguousarray(images)


def load_digit69(
    path: str | os.PathLike | None = None,
    *,
    download: bool = True,
    verbose: int = 1,
) -> Digit69:
    """Load and validate digit69 (or any file in the same schema).

    Parameters
    ----------
    path : path, optional
        The .mat file or the folder holding it; if omitted it is found by :func:`fetch_digit69`.
    download : bool
        Passed to :func:`fetch_digit69`.
    verbose : int
        0 silent, 1 says where the file came from.

    Returns
    -------
    data : Digit69

    Raises
    ------
    FileNotFoundError, OSError
        No file (see :func:`fetch_digit69`).
    DataFileError
        The file is not a .mat file, lacks a key, or has wrong shapes, mismatched voxel or trial
        counts, NaN/Inf values, non-square images or unknown labels; the message names file, key and problem.
    """
    p = fetch_digit69(path, download=download, verbose=verbose)
    try:
        mat = scipy.io.loadmat(p)
    except Exception as e:  # scipy raises ValueError / MatReadError / TypeError on non-.mat input
        raise _fail(p, None, f"not a readable MATLAB .mat file ({type(e).__name__}: {e})") from e
    missing = [k for k in KEYS if k not in mat]
    if missing:
        present = sorted(k for k in mat if not k.startswith("__"))
        raise _fail(p, missing[0], f"missing key(s) {missing}; the file has {present}")

    arrays = {}
    for k in KEYS:
        a = np.asarray(mat[k])
        if not np.issubdtype(a.dtype, np.number):
            raise _fail(p, k, f"expected a numeric array, got dtype {a.dtype}")
        if k.startswith("label"):
            if a.ndim == 2 and 1 in a.shape:
                a = a.reshape(-1)
            if a.ndim != 1:
                raise _fail(p, k, f"expected shape (N, 1) or (N,), got {a.shape}")
        elif a.ndim != 2:
            raise _fail(p, k, f"expected a 2-D array (trials, features), got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            n_bad = int(np.size(a) - np.isfinite(a).sum())
            raise _fail(p, k, f"contains {n_bad} NaN or infinite value(s)")
        arrays[k] = a

    if arrays["fmriTrn"].shape[1] != arrays["fmriTest"].shape[1]:
        raise _fail(
            p, "fmriTest",
            f"{arrays['fmriTest'].shape[1]} voxels but fmriTrn has {arrays['fmriTrn'].shape[1]}: train and "
            "test must share voxels",
        )
    for split, f, s, l in (("train", "fmriTrn", "stimTrn", "labelTrn"), ("test", "fmriTest", "stimTest", "labelTest")):
        n = arrays[f].shape[0]
        for k in (s, l):
            if arrays[k].shape[0] != n:
                raise _fail(p, k, f"{arrays[k].shape[0]} {split} trials but {f} has {n}")
        bad = sorted(set(np.unique(arrays[l]).tolist()) - set(LABEL_NAMES))
        if bad:
            raise _fail(p, l, f"unknown label code(s) {bad}; allowed {sorted(LABEL_NAMES)} (1 = six, 2 = nine)")
    if arrays["stimTrn"].shape[1] != arrays["stimTest"].shape[1]:
        raise _fail(p, "stimTest", f"{arrays['stimTest'].shape[1]} pixels but stimTrn has {arrays['stimTrn'].shape[1]}")

    images_train = _images_from_rows(arrays["stimTrn"], path=p, key="stimTrn")
    images_test = _images_from_rows(arrays["stimTest"], path=p, key="stimTest")
    N_trn, V = arrays["fmriTrn"].shape
    description = (
        f"digit69 from {p}: {N_trn} training and {arrays['fmriTest'].shape[0]} test trials, {V} voxels, "
        f"{images_train.shape[1]}x{images_train.shape[2]} images of handwritten sixes (label 1) and nines "
        "(label 2); van Gerven et al. 2010, as distributed with DGMM (Du et al. 2017)."
    )
    return Digit69(
        fmri_train=arrays["fmriTrn"].astype(np.float32),
        images_train=images_train,
        labels_train=arrays["labelTrn"].astype(np.int64),
        fmri_test=arrays["fmriTest"].astype(np.float32),
        images_test=images_test,
        labels_test=arrays["labelTest"].astype(np.int64),
        path=p,
        sha256=sha256_of(p),
        description=description,
    )


# ----------------------------------------------------------------------------- selection split and normalisation


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


# ----------------------------------------------------------------------------- synthetic data (tests)


def make_synthetic_digit69(
    *, n_train: int = 20, n_test: int = 6, n_voxels: int = 40, image_size: int = 12, seed: int = 0
) -> dict[str, np.ndarray]:
    """A small dataset in the digit69 .mat schema, with a linear fMRI-image relation, for unit tests.

    Returns a dict with the six keys of the real file: fmri* (N, V) float64, stim* (N, S*S) uint8 stored
    column-major like MATLAB, label* (N, 1) uint8 in {1, 2}. Class 1 images have a bright top-left block,
    class 2 a bright bottom-right block, so a sideways (untransposed) load is detectable.
    """
    rng = np.random.default_rng(seed)
    S = image_size
    h = S // 2
    out = {}
    W = rng.normal(size=(S * S, n_voxels))
    for split, n in (("Trn", n_train), ("Test", n_test)):
        labels = np.array([1 + (i % 2) for i in range(n)], dtype=np.uint8)
        imgs = np.zeros((n, S, S), dtype=np.float64)
        for i, lab in enumerate(labels):
            if lab == 1:
                imgs[i, :h, : h - 1] = 1.0  # top-left, taller than wide
            else:
                imgs[i, h + 1 :, h:] = 1.0  # bottom-right
            imgs[i] += 0.1 * rng.random((S, S))
        imgs = np.clip(imgs, 0, 1)
        stim = np.round(imgs * 255).astype(np.uint8)
        out[f"stim{split}"] = stim.transpose(0, 2, 1).reshape(n, S * S)  # column-major like MATLAB
        out[f"fmri{split}"] = imgs.reshape(n, -1) @ W + 0.5 * rng.normal(size=(n, n_voxels))
        out[f"label{split}"] = labels.reshape(n, 1)
    return out


def write_digit69_mat(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Write arrays in the digit69 schema to a .mat file (for tests and for custom datasets)."""
    path = Path(path)
    scipy.io.savemat(path, arrays)
    return path
