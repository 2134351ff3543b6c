"""The digit69 dataset: fetching, validating and loading it (the selection split: :mod:`ldm_core.splits`).

The file ``digit69_28x28.mat`` (van Gerven et al. 2010; distributed with the DGMM code of Du et al.,
IJCNN 2017 / IEEE TNNLS 2019) holds one fMRI pattern per trial (V1-V3 voxels) and the 28x28 image of
the handwritten 6 or 9 shown in that trial. Images are stored column-major (MATLAB), so each row is
reshaped to (28, 28) and *transposed* to display upright.

Where a data file is looked for, and how a download is verified: :mod:`ldm_core.fetch`.

The schema (keys of the .mat file, read with ``scipy.io.loadmat``):

- ``fmriTrn`` (N_train, V), ``fmriTest`` (N_test, V): real numbers, finite; V, N_train, N_test are read
  from the file, never assumed; N_train, N_test and V must be >= 1.
- ``stimTrn`` (N_train, S*S), ``stimTest`` (N_test, S*S): square images stored column-major. Pixel
  scales: integers 0..255 (divided by 255); integers whose maximum is <= 1 are *binarised* images and
  are used as they are (0/1 -> 0.0/1.0, the ``description`` says so); floats in [0, 1] stay as they
  are; whole-number floats in 0..255 are divided by 255; anything else is refused. Both keys must use
  the same scale.
- ``labelTrn`` (N_train, 1), ``labelTest`` (N_test, 1): integer class codes, any values (digit69 uses
  1 = six, 2 = nine). Training needs at least two classes; every test code must occur in training.
- ``labelNames`` (optional): one name per distinct class code, in ascending order of the codes -- a
  MATLAB cell array of strings (``{'six', 'nine'}``; from Python ``np.array(names, dtype=object)``) or a
  char matrix, one name per row (from Python a list of strings; trailing blanks are stripped). Without
  it, codes {1, 2} are named six and nine (digit69, :data:`LABEL_NAMES`) and any other code ``c`` is
  named ``"class c"``. The ``class_names`` argument of :func:`load_digit69` (the chapters' ``class_names``
  parameter) names some or all codes over these defaults. The names are returned in ``Digit69.class_names``.

Every problem raises :class:`DataFileError` naming the file, the key and the problem.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.io

from .fetch import ENV_VAR, DataNotFoundError, find_data_file, sha256_of

__all__ = [
    "DATA_URL",
    "DATA_SHA256",
    "FILENAME",
    "LABEL_NAMES",
    "ENV_VAR",
    "Digit69",
    "DataFileError",
    "DataNotFoundError",
    "find_data_file",
    "fetch_digit69",
    "load_digit69",
    "sha256_of",
    "write_digit69_mat",
]

# ----------------------------------------------------------------------------- constants

FILENAME = "digit69_28x28.mat"
DATA_URL = "https://raw.githubusercontent.com/ChangdeDu/DGMM/master/digit69_28x28.mat"
DATA_SHA256 = "44513e09ad2398566aedd550088b817a3c0bf9cd7873f87078ecd7fdf170b22d"
LABEL_NAMES = {1: "six", 2: "nine"}  # digit69's label codes (the default names when a file has codes {1, 2})
KEYS = ("fmriTrn", "fmriTest", "stimTrn", "stimTest", "labelTrn", "labelTest")
NAMES_KEY = "labelNames"  # optional: one class name per code, ascending codes


class DataFileError(ValueError):
    """A data file exists but does not follow its schema (the message names file, key and problem)."""


# ----------------------------------------------------------------------------- container


@dataclass(frozen=True)
class Digit69:
    """The digit69 dataset (or any file in its schema) as arrays.

    Attributes
    ----------
    fmri_train : ndarray of shape (N_train, V), float32
        Raw fMRI patterns of the training trials (not normalised).
    images_train : ndarray of shape (N_train, S, S), float32 in [0, 1]
        Upright stimulus images of the training trials.
    labels_train : ndarray of shape (N_train,), int64
        Class codes (digit69: 1 = six, 2 = nine); see ``class_names``.
    fmri_test, images_test, labels_test
        The same for the official test trials (touch once per final model).
    path : Path
        The file the arrays were read from.
    sha256 : str
        SHA-256 of that file.
    description : str
        One paragraph describing the data and its source (file name only, no folder).
    class_names : dict of int -> str
        Name of every class code, ascending codes (digit69: ``{1: "six", 2: "nine"}``).
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
    class_names: dict = field(default_factory=lambda: dict(LABEL_NAMES))

    @property
    def n_voxels(self) -> int:
        return int(self.fmri_train.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.images_train.shape[1])

    @property
    def n_train(self) -> int:
        """Training trials (read from the file)."""
        return int(len(self.labels_train))

    @property
    def n_test(self) -> int:
        """Test trials (read from the file)."""
        return int(len(self.labels_test))

    @property
    def class_codes(self) -> list[int]:
        """The class codes, ascending."""
        return sorted(self.class_names)


# ----------------------------------------------------------------------------- fetching


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

    The rules are those of :func:`find_data_file` (argument, then ``LDM_DATA_DIR``, then the cache).

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
        ``data_dir`` was given but holds no such file, or ``LDM_DATA_DIR`` is set but holds no such file.
    OSError
        (:class:`DataNotFoundError`) The file is nowhere and could not be downloaded (offline, or checksum
        mismatch). The message lists every place tried and how to place the file by hand.
    """
    return find_data_file(FILENAME, data_dir, url=url, sha256=sha256, download=download, timeout=timeout,
                          verbose=verbose, label="digit69")


# ----------------------------------------------------------------------------- loading and validation


def _fail(path: Path, key: str | None, problem: str) -> DataFileError:
    where = f"{path}" + (f", key '{key}'" if key else "")
    return DataFileError(f"{where}: {problem}")


def _pixel_scale(a: np.ndarray, *, path: Path, key: str) -> str:
    """How the pixel values of ``a`` are stored: "8-bit" (0..255), "binary" (integer 0/1) or "unit" ([0, 1]).

    Whole-number floats in 0..255 count as "8-bit"; anything else raises a DataFileError.
    """
    if a.size == 0:
        return "unit"
    mn, mx = a.min(), a.max()
    if np.issubdtype(a.dtype, np.integer):
        if mn < 0 or mx > 255:
            raise _fail(path, key, f"integer pixel values span [{mn}, {mx}]; expected 0..255 (8-bit) or 0/1 "
                                   "(binarised)")
        return "binary" if mx <= 1 else "8-bit"
    if 0.0 <= mn and mx <= 1.0:
        return "unit"
    if 0.0 <= mn and mx <= 255.0 and np.all(a == np.round(a)):
        return "8-bit"
    raise _fail(path, key, f"float pixel values span [{mn:g}, {mx:g}]: neither [0, 1] nor whole numbers in "
                           "0..255, so the scale is ambiguous; store uint8 0..255 or floats in [0, 1]")


def _to_unit(a: np.ndarray, scale: str) -> np.ndarray:
    """Pixels -> float32 in [0, 1] for a scale from :func:`_pixel_scale`."""
    out = a.astype(np.float32)
    return out / 255.0 if scale == "8-bit" else out


def _images_from_rows(rows: np.ndarray, *, path: Path, key: str, scale: str) -> np.ndarray:
    """(N, S*S) column-major rows -> (N, S, S) float32 in [0, 1], upright."""
    N, P = rows.shape
    S = int(round(np.sqrt(P)))
    if S * S != P:
        raise _fail(path, key, f"{P} pixels per image is not a square image size (S*S)")
    images = rows.reshape(N, S, S).transpose(0, 2, 1)  # (N, S, S): MATLAB column-major -> row-major
    return np.ascontiguousarray(_to_unit(images, scale))


def _class_names(mat: dict, codes: list[int], *, path: Path) -> dict[int, str]:
    """Class code -> name, from the optional ``labelNames`` key or the defaults (see the module docstring)."""
    if NAMES_KEY not in mat:
        if set(codes) == set(LABEL_NAMES):
            return dict(LABEL_NAMES)
        return {c: f"class {c}" for c in codes}
    raw = np.asarray(mat[NAMES_KEY])
    if raw.dtype.kind == "U":  # char matrix: one name per row
        names = [str(s).rstrip() for s in raw.reshape(-1)]
    elif raw.dtype == object:  # cell array: one char array per cell
        names = []
        for cell in raw.reshape(-1):
            cell = np.asarray(cell)
            if cell.dtype.kind != "U" or cell.size > 1:
                raise _fail(path, NAMES_KEY, f"expected one string per cell, got {cell.dtype} of shape {cell.shape}")
            names.append(str(cell.reshape(-1)[0]).rstrip() if cell.size else "")
    else:
        raise _fail(path, NAMES_KEY, f"expected a cell array of strings or a char matrix, got dtype {raw.dtype}")
    if len(names) != len(codes):
        raise _fail(path, NAMES_KEY, f"{len(names)} name(s) {names} for {len(codes)} label code(s) {codes}; give "
                                     "one name per code, in ascending order of the codes")
    if any(not n for n in names) or len(set(names)) != len(names):
        raise _fail(path, NAMES_KEY, f"names must be non-empty and distinct, got {names}")
    return dict(zip(codes, names))


def _stimulus_images(p: Path, arrays: dict) -> tuple[np.ndarray, np.ndarray, bool]:
    """``stimTrn``, ``stimTest`` -> (N, S, S) float32 images in [0, 1], upright, and whether they are binarised."""
    if arrays["stimTrn"].shape[1] != arrays["stimTest"].shape[1]:
        raise _fail(p, "stimTest", f"{arrays['stimTest'].shape[1]} pixels but stimTrn has {arrays['stimTrn'].shape[1]}")
    scales = {k: _pixel_scale(arrays[k], path=p, key=k) for k in ("stimTrn", "stimTest")}
    if ("binary" in scales.values()) and len(set(scales.values())) > 1:
        raise _fail(p, "stimTest", f"pixel scales differ: stimTrn is {scales['stimTrn']}, stimTest is "
                                   f"{scales['stimTest']} (binarised 0/1 and 8-bit 0..255 cannot be mixed); "
                                   "store both the same way")
    images_train = _images_from_rows(arrays["stimTrn"], path=p, key="stimTrn", scale=scales["stimTrn"])
    images_test = _images_from_rows(arrays["stimTest"], path=p, key="stimTest", scale=scales["stimTest"])
    return images_train, images_test, "binary" in scales.values()


def load_digit69(path: str | os.PathLike | None = None, *, class_names: dict | None = None, download: bool = True,
                 verbose: int = 1) -> Digit69:
    """Load and validate digit69 (or any file in the same schema; see the module docstring).

    Parameters
    ----------
    path : path, optional
        The .mat file or the folder holding it; if omitted it is found by :func:`fetch_digit69`.
    class_names : dict of int -> str, optional
        Names of some or all label codes, over the defaults (the file's ``labelNames``, else six / nine for
        digit69's codes 1 / 2, else ``"class <code>"``). Keys may be strings of integers (``{"21": "circle"}``,
        what papermill passes); None or ``{}`` keeps the defaults.
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
        The file is not a .mat file, lacks a key, or has wrong shapes, complex values, no trials or
        voxels, mismatched voxel or trial counts, NaN/Inf values, non-square images, ambiguous or mixed
        pixel scales, non-integer labels, a single training class, test classes absent from training, or
        a malformed ``labelNames``; the message names file, key and problem.
    ValueError
        ``class_names`` names a code the file does not have, a key that is not an integer, or an empty, non-text
        or repeated name (the message names the parameter ``class_names``).
    """
    p = fetch_digit69(path, download=download, verbose=verbose)
    mat = _read_mat(p)
    arrays = {k: _checked_array(p, k, mat[k]) for k in KEYS}
    _check_trials(p, arrays)
    codes = _check_classes(p, arrays)
    class_names = _override_class_names(_class_names(mat, codes, path=p), class_names, path=p)
    images_train, images_test, binarised = _stimulus_images(p, arrays)
    sha = sha256_of(p)
    return Digit69(
        fmri_train=arrays["fmriTrn"].astype(np.float32),
        images_train=images_train,
        labels_train=arrays["labelTrn"],
        fmri_test=arrays["fmriTest"].astype(np.float32),
        images_test=images_test,
        labels_test=arrays["labelTest"],
        path=p,
        sha256=sha,
        description=_describe(p, arrays, images_train.shape[1:], class_names, sha, binarised=binarised),
        class_names=class_names,
    )


def _override_class_names(defaults: dict[int, str], given: dict | None, *, path: Path) -> dict[int, str]:
    """``defaults`` (code -> name, ascending codes) with the names in ``given`` put over them, checked.

    ``given`` comes from a notebook parameter: papermill passes mapping keys as text, so ``"21"`` means code 21.
    """
    if not given:
        return dict(defaults)
    if not isinstance(given, dict):
        raise ValueError(f"class_names must be a mapping of label code -> class name, got {type(given).__name__} "
                         f"{given!r}")
    out = dict(defaults)
    for key, name in given.items():
        try:
            code = int(key)
            if isinstance(key, bool) or (isinstance(key, float) and key != code) or \
                    (isinstance(key, str) and key.strip() != str(code)):
                raise ValueError
        except (TypeError, ValueError):
            raise ValueError(f"class_names: key {key!r} is not an integer label code; the label codes of "
                             f"{path.name} are {sorted(defaults)}") from None
        if code not in defaults:
            raise ValueError(f"class_names: code {code} does not occur in {path.name}, whose label codes are "
                             f"{sorted(defaults)}; name only those codes")
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"class_names: the name of code {code} must be non-empty text, got {name!r}")
        out[code] = name.strip()
    names = list(out.values())
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"class_names: every class needs its own name, but {repeated} name(s) several codes "
                         f"(names by code: {out})")
    return out


def _read_mat(p: Path) -> dict:
    """The .mat file's variables; every key of :data:`KEYS` present, else :class:`DataFileError` listing them."""
    try:
        mat = scipy.io.loadmat(p)
    except Exception as e:  # scipy raises ValueError / MatReadError / TypeError on non-.mat input
        raise _fail(p, None, f"not a readable MATLAB .mat file ({type(e).__name__}: {e})") from e
    missing = [k for k in KEYS if k not in mat]
    if missing:
        present = sorted(k for k in mat if not k.startswith("__"))
        raise _fail(p, missing[0], f"missing key(s) {missing}; the file has {present}")
    return mat


def _checked_array(p: Path, k: str, value) -> np.ndarray:
    """``mat[k]`` as a real, finite numeric array: labels 1-D (N,), everything else 2-D (trials, features)."""
    a = np.asarray(value)
    if not np.issubdtype(a.dtype, np.number):
        raise _fail(p, k, f"expected a numeric array, got dtype {a.dtype}")
    if np.iscomplexobj(a):
        raise _fail(p, k, f"complex values (dtype {a.dtype}); expected real numbers")
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
    return a


def _check_trials(p: Path, arrays: dict) -> None:
    """Non-empty splits, shared voxels, one stimulus and one label per trial; labels become whole int64 codes."""
    for split, k in (("training", "fmriTrn"), ("test", "fmriTest")):
        N, V = arrays[k].shape
        if N == 0:
            raise _fail(p, k, f"0 {split} trials (shape {arrays[k].shape}); the {split} set must not be empty")
        if V == 0:
            raise _fail(p, k, f"0 voxels (shape {arrays[k].shape})")
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
        lab = arrays[l]
        if not np.issubdtype(lab.dtype, np.integer) and not np.all(lab == np.round(lab)):
            bad = sorted(set(lab[lab != np.round(lab)].tolist()))[:5]
            raise _fail(p, l, f"label codes must be whole numbers, got {bad}")
        arrays[l] = lab.astype(np.int64)


def _check_classes(p: Path, arrays: dict) -> list[int]:
    """The training label codes (sorted): at least two, and every test code among them."""
    codes = sorted(set(arrays["labelTrn"].tolist()))
    if len(codes) < 2:
        raise _fail(p, "labelTrn", f"only one class (code {codes[0]}) in {len(arrays['labelTrn'])} training "
                                   "trials; at least two classes are needed")
    unseen = sorted(set(arrays["labelTest"].tolist()) - set(codes))
    if unseen:
        raise _fail(p, "labelTest", f"label code(s) {unseen} never occur in labelTrn (codes {codes}); every test "
                                    "class needs training trials")
    return codes


def _describe(p: Path, arrays: dict, image_shape: tuple, class_names: dict, sha: str, *, binarised: bool) -> str:
    """One sentence for pages and logs: file, trial and voxel counts, image size, classes, source."""
    N_trn, V = arrays["fmriTrn"].shape
    classes = ", ".join(f"{name} (code {c}: {int((arrays['labelTrn'] == c).sum())} train, "
                        f"{int((arrays['labelTest'] == c).sum())} test)" for c, name in class_names.items())
    source = ("van Gerven et al. 2010, as distributed with DGMM (Du et al. 2017)" if sha == DATA_SHA256
              else f"a file in the digit69 schema, sha256 {sha}")
    note = (" The stimuli are stored binarised (integer 0/1) and are used as 0.0/1.0, not divided by 255."
            if binarised else "")
    what = "digit69" if sha == DATA_SHA256 else "Data"
    return (f"{what} from {p.name}: {N_trn} training and {arrays['fmriTest'].shape[0]} test trials, {V} voxels, "
            f"{image_shape[0]}x{image_shape[1]} images of {len(class_names)} classes: {classes}; {source}.{note}")


def write_digit69_mat(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Write arrays in the digit69 schema to a .mat file (for tests and for custom datasets)."""
    path = Path(path)
    scipy.io.savemat(path, arrays)
    return path
