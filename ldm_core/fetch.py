"""Finding a data file, and fetching it with a verified download.

Where a data file is looked for (:func:`find_data_file`, used for digit69 by :mod:`ldm_core.data` and for the prior
images of :mod:`ldm_core.prior_images`), following nilearn's ``get_dataset_dir``:

1. the ``path`` / ``data_dir`` argument (a file, or a folder holding the file); missing: FileNotFoundError;
2. the folder named by the ``LDM_DATA_DIR`` environment variable. If the variable is set (non-empty) but
   the folder holds no such file, that is a FileNotFoundError naming the variable, the folder and the
   file -- never a silent fall-back to the cache, which could hold another copy;
3. the user cache ``~/.cache/ldm_core`` (or ``$XDG_CACHE_HOME/ldm_core``), checked against the file's
   SHA-256 and, for files with a public URL, filled by a verified download.

Why not ``pooch.retrieve(url, known_hash=...)``: pooch is not a dependency, and the part it would replace (a
verified download into the cache, about 25 lines) is the small part; the lookup order above, where a set but
empty ``LDM_DATA_DIR`` is an error rather than a fall-back, is what pooch does not do.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

__all__ = ["ENV_VAR", "DataNotFoundError", "sha256_of", "find_data_file"]

ENV_VAR = "LDM_DATA_DIR"  # folder holding the data files


class DataNotFoundError(OSError):
    """A data file is nowhere (argument, ``LDM_DATA_DIR``, cache) and could not be downloaded.

    Attributes
    ----------
    tried : list of str
        One line per place tried and why it failed.
    """

    def __init__(self, message: str, tried: list[str]):
        super().__init__(message)
        self.tried = list(tried)


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
                f"Place a verified copy of {dest.name} in a folder and set {ENV_VAR} to it."
            )
        os.replace(tmp, dest)
        return dest
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _file_from_argument(data_dir: str | os.PathLike, filename: str, extra: str) -> Path:
    """The file named by the ``data_dir`` argument (the file itself, or a folder holding it); no fall-back."""
    p = Path(data_dir)
    candidate = p if p.suffix == Path(filename).suffix or p.is_file() else p / filename
    if not candidate.is_file():
        raise FileNotFoundError(f"No data file at {candidate} (from the data_dir argument). Put {filename} there or "
                                f"pass the folder that holds it.{extra}")
    return candidate


def _file_from_env_folder(folder: Path, filename: str, cache: Path, *, label: str, verbose: int, extra: str) -> Path:
    """The file in the ``LDM_DATA_DIR`` folder; a FileNotFoundError (never the cache) when it is not there."""
    candidate = folder / filename
    if candidate.is_file():
        if verbose:
            print(f"{label}: using {candidate} ({ENV_VAR})")
        return candidate
    state = "holds no such file" if folder.is_dir() else "does not exist"
    raise FileNotFoundError(f"{ENV_VAR} is set to {folder}, but that folder {state}: {filename} not found at "
                            f"{candidate}. Put {filename} there, point {ENV_VAR} at the folder that holds it, or "
                            f"unset {ENV_VAR} to use the download cache {cache.parent}.{extra}")


def _file_from_cache_or_download(filename: str, cache: Path, tried: list[str], *, url: str | None, sha256: str | None,
                                 download: bool, timeout: float, verbose: int, label: str) -> Path | None:
    """The cached file if its checksum matches, else a verified download; None, with ``tried`` extended, if neither."""
    if cache.is_file():
        if sha256 is None or sha256_of(cache) == sha256:
            if verbose:
                print(f"{label}: using cached {cache}")
            return cache
        tried.append(f"{cache} (cache): checksum mismatch, ignored")
    else:
        tried.append(f"{cache} (cache): no such file")
    if url is None:
        tried.append(f"download: {filename} has no public URL")
    elif download:
        try:
            return _download(url, cache, expected_sha256=sha256, timeout=timeout, verbose=verbose)
        except OSError as e:  # URLError is an OSError
            tried.append(f"download from {url}: {e}")
    else:
        tried.append("download: disabled (download=False)")
    return None


def _not_found_error(filename: str, url: str | None, sha256: str | None, tried: list, extra: str) -> DataNotFoundError:
    """The DataNotFoundError listing every place ``tried`` and how to place the file by hand."""
    if url is not None:
        how = (f"To place the file by hand, download {url} on a machine with internet access, check that its "
               f"sha256 is {sha256}, copy it into a folder and set {ENV_VAR}=/that/folder (or pass data_dir=...).")
    else:
        how = (f"To place the file by hand, copy {filename}" + (f" (sha256 {sha256})" if sha256 else "")
               + f" into a folder and set {ENV_VAR}=/that/folder (or pass data_dir=...).")
    return DataNotFoundError(f"Could not find or fetch {filename}. Tried:\n  - " + "\n  - ".join(tried)
                             + f"\n{how}{extra}", tried)


def find_data_file(filename: str, data_dir: str | os.PathLike | None = None, *, url: str | None = None,
                   sha256: str | None = None, download: bool = True, timeout: float = 30.0, verbose: int = 1,
                   label: str | None = None, hint: str = "") -> Path:
    """Find a data file by the package's rules: argument, then ``LDM_DATA_DIR``, then the user cache.

    Parameters
    ----------
    filename : str
        The file's name, e.g. ``"digit69_28x28.mat"``.
    data_dir : path, optional
        A folder holding the file, or the file itself (any name). Tried first, and alone (no fall-back).
    url : str, optional
        Public URL of the file; None if it has none (then the cache is only read, never filled).
    sha256 : str, optional
        Expected SHA-256, checked for cache hits and downloads (a cache file that differs is ignored).
        Required with ``url``. Files found through the argument or ``LDM_DATA_DIR`` are trusted: their
        checksum is the caller's to record.
    download : bool
        If False, never touch the network.
    timeout : float, seconds
        Network time-out for the download.
    verbose : int
        0 silent, 1 says where the file came from.
    label : str, optional
        Name used in the messages (default ``filename``).
    hint : str
        Extra advice appended to the not-found messages.

    Returns
    -------
    path : Path

    Raises
    ------
    ValueError
        ``url`` without ``sha256`` (a download must be verifiable).
    FileNotFoundError
        ``data_dir`` was given but holds no such file, or ``LDM_DATA_DIR`` is set but its folder holds none (the
        message names the variable, the folder and the file).
    DataNotFoundError
        (an OSError) The file is nowhere and could not be downloaded (no URL, offline, download=False or
        checksum mismatch). The message, and ``.tried``, list every place tried; the message says how to place it.
    """
    label = label or filename
    if url is not None and sha256 is None:
        raise ValueError(f"find_data_file({filename!r}): a download from {url} needs sha256=... to verify it")
    extra = f" {hint}" if hint else ""
    if data_dir is not None:
        return _file_from_argument(data_dir, filename, extra)
    cache = _default_cache_dir() / filename
    env = os.environ.get(ENV_VAR)
    if env:
        return _file_from_env_folder(Path(env), filename, cache, label=label, verbose=verbose, extra=extra)
    tried = [f"{ENV_VAR}: not set"]
    found = _file_from_cache_or_download(filename, cache, tried, url=url, sha256=sha256, download=download,
                                         timeout=timeout, verbose=verbose, label=label)
    if found is not None:
        return found
    raise _not_found_error(filename, url, sha256, tried, extra)
