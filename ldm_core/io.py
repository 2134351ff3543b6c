"""Atomic file writes: a file is either absent, its old version, or complete -- never half-written.

Every file the package writes (results, cached runs, checkpoints, cached VAEs and feature nets, saved
models) goes through :func:`atomic_write_bytes` or :func:`atomic_torch_save`: the data go to a hidden
temporary file in the destination's folder (same filesystem, so the rename is atomic), are flushed to
disk, and ``os.replace`` moves the file over the destination. An interrupted write leaves at most the
temporary file behind (removed when the error is a Python exception), never a truncated destination.

``tempfile.mkstemp`` creates files readable by their owner only (mode 0600); we set mode 0644 (owner
read / write, everyone read), what ``open(path, "w")`` gives under the usual umask 022, so results and
checkpoints stay readable by other users and tools, as before the writes were made atomic.

The standard library has no atomic-write helper; the ``atomicwrites`` package offers one but is
deprecated and not a dependency of this project.

The package's one content-addressed cache is built from three helpers here: a trained state (a run's stage-1 VAE,
an image prior, the perception net; the digits net at the path its caller names) is named by :func:`content_key` of
what it depends on, read back by :func:`read_cached` -- absent: None; damaged or not fitting: a ``RuntimeWarning``
naming the file, then None, so the caller computes it again -- and written by :func:`atomic_torch_save`. The
study's run cache (:mod:`ldm_core.study.runs`) stores JSON + npz pairs under the same kind of key.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import struct
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = ["FILE_MODE", "atomic_write_bytes", "atomic_torch_save", "content_key", "read_cached", "UNUSABLE"]

FILE_MODE = 0o644  # permission bits of every file written here: owner read / write, group and others read
# what torch.load raises on a damaged file (struct.error and AssertionError: a few bytes of garbage, or a damaged
# file of torch's legacy format), and what reading a payload of the wrong structure raises
UNUSABLE = (OSError, EOFError, RuntimeError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            AssertionError, struct.error, pickle.UnpicklingError, zipfile.BadZipFile)


@contextlib.contextmanager
def _atomic_file(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """Binary file object whose content replaces ``path`` when the block exits without an exception."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write the whole content ``data`` to ``path`` atomically (temporary file in the same folder, then
    ``os.replace``); missing parent folders are created, an existing file replaced. Returns ``path`` (mode 0644)."""
    with _atomic_file(path) as f:
        f.write(data)
    return Path(path)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj, ...)`` to ``path`` atomically, as :func:`atomic_write_bytes` writes. Returns ``path``.

    Tensors and plain types in ``obj`` keep the file readable with ``torch.load(path, weights_only=True)``."""
    import torch

    with _atomic_file(path) as f:
        torch.save(obj, f)
    return Path(path)


def content_key(*parts: Any, digits: int = 20, default: Callable[[Any], Any] | None = None) -> str:
    """The first ``digits`` hex digits of the SHA-256 of ``parts``, in order.

    A part is hashed as: bytes as they are; a numpy array as its C-order bytes (dtype and shape are the caller's to
    fix or to hash as another part); anything else as sorted-key JSON. A value JSON cannot write (a tensor, a numpy
    scalar, a path) raises TypeError unless ``default`` converts it (the run cache's keys pass ``default=str``).
    """
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            part = np.ascontiguousarray(part).tobytes()
        elif not isinstance(part, bytes):
            part = json.dumps(part, sort_keys=True, default=default).encode()
        h.update(part)
    return h.hexdigest()[:digits]


def read_cached(path: str | os.PathLike | None, what: str, *, build: Callable[[Any], Any] = lambda state: state,
                map_location: Any = "cpu", stacklevel: int = 2) -> Any:
    """``build(torch.load(path, weights_only=True))``, or None when there is nothing usable at ``path``.

    None without a warning when ``path`` is None or no file; None with a ``RuntimeWarning`` naming ``what`` and the
    file when it cannot be read or ``build`` raises one of :data:`UNUSABLE` (a damaged file, or one that does not
    fit): the caller then computes the state again and overwrites the file. Other errors propagate. The warning
    points at the frame ``stacklevel`` calls up from this one's caller (1: that caller; 2, the default: its caller).
    """
    import torch

    if path is None or not Path(path).is_file():
        return None
    try:
        return build(torch.load(path, map_location=map_location, weights_only=True))
    except UNUSABLE as err:
        why = " ".join(str(err).split())  # torch.load's messages run over several lines
        why = why if len(why) <= 200 else why[:200] + " ..."
        warnings.warn(f"ignoring the damaged cached {what} {path} ({type(err).__name__}: {why}); it is computed "
                      "again and the file replaced", RuntimeWarning, stacklevel=stacklevel + 1)
        return None
