"""Results files of a chapter, written atomically with their provenance.

Each chapter writes ``results/<chapter>/metrics.json`` (per model: metric means, CIs and per-image
values, plus the run's parameters, git commit, device, library versions and wall time) and
``results/<chapter>/reconstructions.npz`` (targets, labels and each model's reconstructions as float32
(N, S, S) in [0, 1], with the model names), so results can be checked without re-running notebooks.
Files are written to a temporary name and moved into place, so an interrupted run never leaves a
half-written file.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
from pathlib import Path

import numpy as np

from .io import atomic_write_bytes

__all__ = ["project_root", "results_dir", "provenance", "write_results", "load_results", "atomic_write_bytes"]


def project_root(start: str | os.PathLike | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: cwd) holding ``pyproject.toml``; else ``start``."""
    here = Path(start or os.getcwd()).resolve()
    for p in (here, *here.parents):
        if (p / "pyproject.toml").is_file() and (p / "ldm_core").is_dir():
            return p
    return here


def results_dir(chapter: str, root: str | os.PathLike | None = None) -> Path:
    """``<root>/<chapter>``; root defaults to ``<project root>/results``."""
    base = Path(root) if root is not None else project_root() / "results"
    return base / chapter


def _git_commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        commit = out.stdout.strip() if out.returncode == 0 else "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return commit + ("+dirty" if dirty and commit != "unknown" else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(*, device: str | None = None) -> dict:
    """Git commit, device, library versions, host and time of the run."""
    import sklearn
    import skimage
    import torch

    if device is None:
        device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)"
    return {
        "git_commit": _git_commit(project_root()),
        "device": device,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "scikit-image": skimage.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "timestamp_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if np.isfinite(x) else ("inf" if x > 0 else "-inf" if x < 0 else "nan")
    if isinstance(x, Path):
        return str(x)
    return x


def _unjson(x):
    if isinstance(x, dict):
        return {k: _unjson(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_unjson(v) for v in x]
    if x in ("inf", "-inf", "nan"):
        return float(x)
    return x


def write_results(
    chapter: str,
    *,
    metrics: dict[str, dict],
    reconstructions: dict[str, np.ndarray],
    targets: np.ndarray,
    labels: np.ndarray,
    params: dict,
    wall_time_s: float,
    extra: dict | None = None,
    root: str | os.PathLike | None = None,
    device: str | None = None,
) -> Path:
    """Write ``metrics.json`` and ``reconstructions.npz`` for a chapter; returns the folder.

    Parameters
    ----------
    metrics : dict
        Model name -> output of :func:`ldm_core.metrics.evaluate` (optionally with extra keys).
    reconstructions : dict
        Model name -> ndarray (N, S, S) in [0, 1]; same names as ``metrics``.
    targets : ndarray (N, S, S); labels : ndarray (N,)
    params : dict
        The notebook's parameters, recorded verbatim.
    wall_time_s : float, seconds
    extra : dict, optional
        Anything else the chapter wants recorded (selection tables, histories).
    """
    if set(metrics) != set(reconstructions):
        raise ValueError(
            f"metrics and reconstructions must name the same models; only in metrics: "
            f"{sorted(set(metrics) - set(reconstructions))}, only in reconstructions: {sorted(set(reconstructions) - set(metrics))}"
        )
    targets = np.asarray(targets, dtype=np.float32)
    names = list(reconstructions)
    arrays = {"targets": targets, "labels": np.asarray(labels).reshape(-1), "model_names": np.array(names)}
    for i, name in enumerate(names):
        rec = np.asarray(reconstructions[name], dtype=np.float32)
        if rec.shape != targets.shape or rec.min() < 0 or rec.max() > 1:
            raise ValueError(f"reconstructions of '{name}' must be float (N, S, S) {targets.shape} in [0, 1]; got {rec.shape}")
        arrays[f"recon_{i}"] = rec
    out = results_dir(chapter, root)
    doc = {
        "chapter": chapter,
        "models": metrics,
        "params": params,
        "wall_time_s": wall_time_s,
        "provenance": provenance(device=device),
        **({"extra": extra} if extra else {}),
    }
    atomic_write_bytes(out / "metrics.json", json.dumps(_jsonable(doc), indent=1).encode())
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(out / "reconstructions.npz", buf.getvalue())
    return out


def load_results(chapter: str, root: str | os.PathLike | None = None) -> tuple[dict, dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Read a chapter's results.

    Returns
    -------
    metrics : dict
        The parsed ``metrics.json`` ("inf" strings turned back into floats).
    reconstructions : dict
        Model name -> ndarray (N, S, S) float32.
    targets : ndarray (N, S, S); labels : ndarray (N,)
    """
    d = results_dir(chapter, root)
    path = d / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run the '{chapter}' chapter first (see README)")
    metrics = _unjson(json.loads(path.read_text()))
    with np.load(d / "reconstructions.npz", allow_pickle=False) as z:
        names = [str(n) for n in z["model_names"]]
        recons = {n: z[f"recon_{i}"] for i, n in enumerate(names)}
        return metrics, recons, z["targets"], z["labels"]
