"""Results files of a chapter, written atomically with their provenance.

Each chapter writes ``results/<chapter>/metrics.json`` (per model: metric means, CIs and per-image
values, plus the run's parameters, git commit, device, library versions and wall time) and
``results/<chapter>/reconstructions.npz`` (targets, labels and each model's reconstructions as float32
(N, S, S) in [0, 1], with the model names), so results can be checked without re-running notebooks.
Files are written to a temporary name and moved into place, so an interrupted run never leaves a
half-written file; ``metrics.json`` records the checksum of the ``reconstructions.npz`` written with it, so a run
interrupted between the two writes is detected instead of read as a mismatched pair. Two runs writing the same folder
at once (two plain papermill runs with one ``results_root``; the study runner refuses a second runner, papermill
does not) are not refused: the last writer of each file wins, and a pair mixed from both runs is refused on read
(:class:`ResultsMismatchError`), since :func:`load_results` reads the npz bytes once and checks exactly
those. :func:`verify` recomputes the
metrics from the reconstructions; :func:`compare` puts two runs of a chapter side by side.
"""
from __future__ import annotations

import datetime as _dt
import io as _io
import json
import os
import platform
import subprocess
from pathlib import Path

import numpy as np

from ..io import atomic_write_bytes, content_key

__all__ = ["project_root", "results_dir", "provenance", "write_results", "load_results", "results_files_ok", "verify",
           "compare", "ResultsMismatchError", "atomic_write_bytes", "METRICS", "RECONSTRUCTIONS"]

METRICS = "metrics.json"
RECONSTRUCTIONS = "reconstructions.npz"


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


#: What the study itself writes into tracked files; changes there do not make the code "dirty".
STUDY_OUTPUTS = ("results", "book/*.ipynb", "book/run_log*.json")


def _git_commit(root: Path) -> str:
    """HEAD, with ``+dirty`` when tracked files other than :data:`STUDY_OUTPUTS` differ from it.

    A full study publishes chapter after chapter into ``results/`` and ``book/``; without the exclusion every
    chapter after the first would record ``+dirty`` because of its predecessors' outputs.
    """
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        commit = out.stdout.strip() if out.returncode == 0 else "unknown"
        excludes = [f":(exclude,glob){p}" if "*" in p else f":(exclude){p}" for p in STUDY_OUTPUTS]
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *excludes],
                               cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
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


def _reconstructions_npz(reconstructions: dict[str, np.ndarray], targets: np.ndarray, labels: np.ndarray) -> bytes:
    """The bytes of ``reconstructions.npz``, each reconstruction checked against the targets' shape and [0, 1]."""
    targets = np.asarray(targets, dtype=np.float32)
    names = list(reconstructions)
    arrays = {"targets": targets, "labels": np.asarray(labels).reshape(-1), "model_names": np.array(names)}
    for i, name in enumerate(names):
        rec = np.asarray(reconstructions[name], dtype=np.float32)
        if rec.shape != targets.shape or rec.min() < 0 or rec.max() > 1:
            raise ValueError(f"reconstructions of '{name}' must be float (N, S, S) {targets.shape} in [0, 1]; got {rec.shape}")
        arrays[f"recon_{i}"] = rec
    buf = _io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def write_results(out_dir: str | os.PathLike, *, chapter: str, metrics: dict[str, dict],
                  reconstructions: dict[str, np.ndarray], targets: np.ndarray, labels: np.ndarray, params: dict,
                  wall_time_s: float, extra: dict | None = None, device: str | None = None,
                  publication: dict | None = None) -> Path:
    """Write the pair ``metrics.json`` + ``reconstructions.npz`` into ``out_dir``; returns ``out_dir``.

    The pair cannot be read mismatched: ``reconstructions.npz`` is written first and ``metrics.json`` last,
    recording the SHA-256 of the npz it belongs to (``files``); :func:`load_results` refuses a pair whose npz
    does not match (a run killed between the two writes), naming the chapter to re-run. Each file is written
    atomically (:mod:`ldm_core.io`, mode 0644).

    Parameters
    ----------
    out_dir : path
        The chapter's results folder (e.g. ``results/02_unet_fix``); created if missing.
    chapter : str
        Chapter name, recorded.
    metrics : dict
        Model name -> output of :func:`ldm_core.metrics.evaluate` (optionally with extra keys).
    reconstructions : dict
        Model name -> ndarray (N, S, S) in [0, 1]; same names as ``metrics``.
    targets : ndarray (N, S, S); labels : ndarray (N,)
    params : dict
        The run's parameters, recorded verbatim.
    wall_time_s : float, seconds
    extra : dict, optional
        Anything else the chapter records (selection tables, histories, verdict rows).
    publication : dict, optional
        How the run was published (kind "published" / "scratch" / "results_root", profile, unprofiled overrides),
        recorded under ``provenance["publication"]``.

    Raises
    ------
    ValueError
        If metrics and reconstructions name different models, or a reconstruction has the wrong shape or
        values outside [0, 1] (nothing is written then).
    """
    if set(metrics) != set(reconstructions):
        raise ValueError(
            f"metrics and reconstructions must name the same models; only in metrics: "
            f"{sorted(set(metrics) - set(reconstructions))}, only in reconstructions: {sorted(set(reconstructions) - set(metrics))}"
        )
    npz = _reconstructions_npz(reconstructions, targets, labels)
    out = Path(out_dir)
    doc = {
        "chapter": chapter,
        "models": metrics,
        "params": params,
        "wall_time_s": wall_time_s,
        "provenance": {**provenance(device=device), **({"publication": publication} if publication else {})},
        "files": {RECONSTRUCTIONS: content_key(npz, digits=64)},
        **({"extra": extra} if extra else {}),
    }
    atomic_write_bytes(out / RECONSTRUCTIONS, npz)
    atomic_write_bytes(out / METRICS, json.dumps(_jsonable(doc), indent=1).encode())
    return out


class ResultsMismatchError(RuntimeError):
    """metrics.json and reconstructions.npz of a results folder do not belong together (interrupted write)."""


def results_files_ok(folder: str | os.PathLike) -> dict:
    """Check that ``folder`` holds a whole results pair; return the parsed ``metrics.json``.

    Raises
    ------
    FileNotFoundError
        ``metrics.json`` or ``reconstructions.npz`` is missing (the chapter to run is named).
    ResultsMismatchError
        The npz is not the one the json was written with (a run was interrupted between the two writes, or two
        runs wrote the same folder at once and their writes interleaved).
    """
    return _checked_pair(folder)[0]


def _checked_pair(folder: str | os.PathLike) -> tuple[dict, bytes]:
    """The parsed ``metrics.json`` and the bytes of the ``reconstructions.npz`` it was written with (read once, so a
    writer replacing the npz after the check cannot slip another run's reconstructions in)."""
    d = Path(folder)
    chapter = d.name
    path = d / METRICS
    if not path.is_file():
        raise FileNotFoundError(f"{chapter}/{METRICS} does not exist: run the '{chapter}' chapter first (see README)")
    doc = _unjson(json.loads(path.read_text()))
    npz = d / RECONSTRUCTIONS
    if not npz.is_file():
        raise FileNotFoundError(f"{chapter}/{RECONSTRUCTIONS} is missing beside its {METRICS}: re-run the '{chapter}' chapter")
    want = doc.get("files", {}).get(RECONSTRUCTIONS)
    data = npz.read_bytes()
    if want is not None and content_key(data, digits=64) != want:
        raise ResultsMismatchError(
            f"{chapter}/{RECONSTRUCTIONS} is not the file its {METRICS} was written with (sha256 differs): two runs "
            f"wrote this folder at once, or a run was interrupted between the two writes. Re-run the '{chapter}' "
            "chapter.")
    return doc, data


def load_results(folder: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Read a chapter's results pair from its folder (e.g. ``results/02_unet_fix``), after checking it is whole.

    Returns
    -------
    metrics : dict
        The parsed ``metrics.json`` ("inf" strings turned back into floats).
    reconstructions : dict
        Model name -> ndarray (N, S, S) float32.
    targets : ndarray (N, S, S); labels : ndarray (N,)

    Raises
    ------
    FileNotFoundError, ResultsMismatchError
        See :func:`results_files_ok`.
    """
    metrics, data = _checked_pair(folder)
    with np.load(_io.BytesIO(data), allow_pickle=False) as z:  # the very bytes whose checksum was checked
        names = [str(n) for n in z["model_names"]]
        recons = {n: z[f"recon_{i}"] for i, n in enumerate(names)}
        return metrics, recons, z["targets"], z["labels"]


def verify(folder: str | os.PathLike, *, metrics=("psnr", "ssim", "pixel_r", "mse", "id2", "id2_within"),
           rtol: float = 1e-6) -> "pd.DataFrame":
    """Recompute every model's metric means from ``reconstructions.npz`` and compare with ``metrics.json``.

    Returns
    -------
    DataFrame
        One row per (model, metric): recorded, recomputed, and ``ok``.

    Raises
    ------
    ValueError
        If any recomputed mean differs from the recorded one (the rows are named).
    """
    import pandas as pd

    from ..metrics import evaluate

    doc, recons, targets, labels = load_results(folder)
    rows = []
    for name, rec in recons.items():
        again = evaluate(rec, targets, labels, n_boot=100, n_perm=0)
        for m in metrics:
            want = doc["models"][name][m]["mean"]
            got = again[m]["mean"]
            ok = bool(np.isclose(got, want, rtol=rtol, atol=1e-9, equal_nan=True))
            rows.append({"model": name, "metric": m, "recorded": want, "recomputed": got, "ok": ok})
    table = pd.DataFrame(rows, columns=["model", "metric", "recorded", "recomputed", "ok"]).set_index(["model", "metric"])
    if not table["ok"].all():
        bad = table[~table["ok"]].index.tolist()
        raise ValueError(f"{Path(folder).name}: metrics.json does not match its reconstructions for {bad}")
    return table


def compare(a: str | os.PathLike, b: str | os.PathLike, *, metrics=("psnr", "ssim", "pixel_r", "id2", "id2_within"),
            labels: tuple[str, str] | None = None) -> "pd.DataFrame":
    """The test-split metric means of the models two results folders share, side by side, with the difference.

    Parameters
    ----------
    a, b : path
        Results folders, e.g. a scratch run ``runs/02_unet_fix/<time>-<hash>`` and the published ``results/02_unet_fix``.
    labels : (str, str), optional
        Column names for a and b (default "a" and "b").

    Returns
    -------
    DataFrame
        Index (model, metric); columns a, b and "a - b". Models only one folder has are listed with NaN.
    """
    import pandas as pd

    la, lb = labels or ("a", "b")
    ma, mb = load_results(a)[0]["models"], load_results(b)[0]["models"]
    rows = []
    for name in dict.fromkeys([*ma, *mb]):
        for m in metrics:
            va = ma.get(name, {}).get(m, {}).get("mean", np.nan) if isinstance(ma.get(name, {}).get(m), dict) else np.nan
            vb = mb.get(name, {}).get(m, {}).get("mean", np.nan) if isinstance(mb.get(name, {}).get(m), dict) else np.nan
            rows.append({"model": name, "metric": m, la: va, lb: vb, f"{la} - {lb}": va - vb})
    return pd.DataFrame(rows).set_index(["model", "metric"])
