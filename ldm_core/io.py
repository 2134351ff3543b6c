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
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["FILE_MODE", "atomic_write_bytes", "atomic_torch_save"]

FILE_MODE = 0o644  # permission bits of every file written here: owner read / write, group and others read


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
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then ``os.replace``).

    Parameters
    ----------
    path : path
        Destination; missing parent folders are created. An existing file is replaced.
    data : bytes
        The whole content.

    Returns
    -------
    Path
        ``path``, with mode 0644.
    """
    with _atomic_file(path) as f:
        f.write(data)
    return Path(path)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj, ...)`` to ``path`` atomically (temporary file in the same folder, then ``os.replace``).

    Parameters
    ----------
    obj : object
        What ``torch.save`` accepts; tensors and plain types keep the file readable with
        ``torch.load(path, weights_only=True)``.
    path : path
        Destination; missing parent folders are created. An existing file is replaced.

    Returns
    -------
    Path
        ``path``, with mode 0644.
    """
    import torch

    with _atomic_file(path) as f:
        torch.save(obj, f)
    return Path(path)
