"""Runs of a chapter: what one trained model produced, its cache on disk, and the tables made from runs.

- :class:`Run` is one (variant, seed): reconstructions of the validation and test trials, their
  evaluations, the training history and timings. :class:`VariantResult` holds all seeds of a variant.
- The run cache: :func:`train_key` names a training (data fingerprint, LDMConfig, TrainConfig without the
  fields that do not change the result), :func:`run_key` adds the sampling and evaluation settings, and
  :func:`run_path` is where that run lives in a cache folder. :func:`save_run` writes it atomically (a
  ``.npz`` of the reconstructions and a ``.json`` of the rest); :func:`load_run` reads it back and treats a
  missing, half-written or corrupt pair as absent (with a warning naming the file), so the run is made
  again. A changed setting gives a new key; the keys are those of every earlier version of this package,
  so cached runs are reused.
- :func:`run_unit` is the unit of work of both kinds of model (the trained Brain LDM of
  :mod:`ldm_core.study.experiment`, the image-prior decoder of :mod:`ldm_core.study.prior_runs`): one seed of a
  group of variants, each run read from the cache or made and saved, each model built at most once.
- :func:`summary_table`, :func:`chapter_metrics` and :func:`loss_terms` turn runs into a chapter's tables
  and the entries of ``results/<chapter>/metrics.json``.
"""
from __future__ import annotations

import dataclasses
import io
import json
import time
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..config import REMOVED_LDM_FIELDS, REMOVED_TRAIN_FIELDS, LDMConfig, TrainConfig
from ..io import atomic_write_bytes, content_key
from ..metrics import pool_per_image
from .names import ci_text

if TYPE_CHECKING:
    from ..splits import StudyData

__all__ = ["Run", "VariantResult", "SAMPLING_DEFAULTS", "KEY_IGNORES", "KEY_AT_DEFAULT", "train_key", "run_key",
           "run_path", "save_run", "load_run", "run_unit", "summary_table", "chapter_metrics", "LOSS_TERM_WEIGHTS",
           "loss_terms", "LOSS_TERM_LABELS", "loss_terms_table"]

SAMPLING_DEFAULTS = {"steps": 50, "guidance": 1.0, "n_samples": 1, "sampler": None}  # BrainLDM.reconstruct settings a run records
KEY_IGNORES = ("progress", "device", "vae_cache_dir", "checkpoint_dir", "feature_net_cache_dir")  # TrainConfig fields that do not change a run (checkpoint_dir: a removed one)
KEY_AT_DEFAULT = ("feature_net_cache_dir",)  # of those, the ones earlier keys held: they enter at their default (None), so keys stay the same


# ----------------------------------------------------------------------------- runs


@dataclass
class Run:
    """One trained model (one variant, one seed) and what it produced.

    recon_val, recon_test : float32 (N, S, S) in [0, 1]; val_metrics / test_metrics : outputs of
    :func:`ldm_core.metrics.evaluate`; history : per-epoch curves from training.
    """

    variant: str
    seed: int
    recon_val: np.ndarray
    recon_test: np.ndarray
    val_metrics: dict
    test_metrics: dict
    history: dict
    wall_time_s: float
    steps_per_s: float
    n_parameters: dict
    device: str
    feature_net: str | None = None
    train_time_s: float | None = None  # seconds training took (None in runs cached before this field existed)
    recon_test_s: float | None = None  # seconds to reconstruct the test trials with the run's sampling


@dataclass
class VariantResult:
    """All seeds of one variant."""

    name: str
    ldm_cfg: dict
    train_cfg: dict
    sample_cfg: dict
    runs: list[Run]

    def seed_mean(self, metric: str, split: str = "test") -> tuple[float, float]:
        """Mean over seeds of the split's mean metric, and the std over seeds."""
        vals = [getattr(r, f"{split}_metrics")[metric]["mean"] for r in self.runs]
        return float(np.mean(vals)), float(np.std(vals))

    def pooled(self, metric: str, split: str = "test", *, n_boot: int = 2000, seed: int = 0) -> dict:
        """Per-image values averaged over seeds, their mean and bootstrap CI over images
        (:func:`~ldm_core.metrics.pool_per_image`, its ``n_sets`` named ``n_seeds``)."""
        out = pool_per_image([getattr(r, f"{split}_metrics")[metric]["per_image"] for r in self.runs],
                             n_boot=n_boot, seed=seed)
        out["n_seeds"] = out.pop("n_sets")
        return out


# ----------------------------------------------------------------------------- cache keys


def train_key(data: StudyData, ldm_cfg: LDMConfig, train_cfg: TrainConfig) -> dict:
    """What a training depends on: data fingerprint, LDMConfig, TrainConfig less :data:`KEY_IGNORES`.

    The ignored fields of :data:`KEY_AT_DEFAULT` (e.g. where the feature net is cached, a machine path) enter at
    None whatever their value, so a run's key does not depend on where the project lives and stays the key of
    runs cached before the field was ignored.

    The removed LDMConfig fields (:data:`~ldm_core.config.REMOVED_LDM_FIELDS`) enter at 0.0 and the removed
    TrainConfig fields (:data:`~ldm_core.config.REMOVED_TRAIN_FIELDS`) at the values every run used, so keys
    stay those of the runs cached before the fields were removed.
    """
    return {"data": data.fingerprint(),
            "ldm": {**{k: 0.0 for k in REMOVED_LDM_FIELDS}, **dataclasses.asdict(ldm_cfg)},
            "train": {**{k: v for k, v in REMOVED_TRAIN_FIELDS.items() if k not in KEY_IGNORES},
                      **{k: (None if k in KEY_AT_DEFAULT else v) for k, v in dataclasses.asdict(train_cfg).items()
                         if k not in KEY_IGNORES or k in KEY_AT_DEFAULT}}}


def run_key(train: dict, sample_cfg: dict, *, n_boot: int, n_perm: int) -> str:
    """Cache key of a run: :func:`train_key` plus the full sampling settings and evaluation sizes."""
    return content_key({**train, "sample": sample_cfg, "n_boot": n_boot, "n_perm": n_perm}, default=str)


def run_path(cache_dir: str | Path, *, seed: int, key: str) -> Path:
    """``<cache_dir>/run-seed<seed>-<key>`` (the run's ``.json`` and ``.npz`` share this stem)."""
    return Path(cache_dir) / f"run-seed{seed}-{key}"


# ----------------------------------------------------------------------------- run files


def save_run(path: Path, run: Run) -> None:
    """Write ``path.npz`` (recon_val, recon_test) then ``path.json`` (every other field), each atomically."""
    meta = {k: v for k, v in dataclasses.asdict(run).items() if k not in ("recon_val", "recon_test")}
    buf = io.BytesIO()
    np.savez_compressed(buf, recon_val=run.recon_val, recon_test=run.recon_test)
    atomic_write_bytes(path.with_suffix(".npz"), buf.getvalue())
    atomic_write_bytes(path.with_suffix(".json"), json.dumps(meta, default=float).encode())


def load_run(path: Path) -> Run | None:
    """The run cached at ``path`` (``.json`` + ``.npz``), or None when it is not there.

    A half-present pair (one file missing), unreadable JSON, a truncated or corrupt ``.npz`` or fields that
    do not make a :class:`Run` count as absent: a ``RuntimeWarning`` names the file and the run is made again
    (its files are then overwritten).
    """
    j, z = path.with_suffix(".json"), path.with_suffix(".npz")
    if not (j.is_file() or z.is_file()):
        return None
    if not (j.is_file() and z.is_file()):
        missing = j if not j.is_file() else z
        _warn_ignored(path, f"{missing.name} is missing")
        return None
    try:
        meta = json.loads(j.read_text())
        with np.load(z, allow_pickle=False) as arrays:
            return Run(recon_val=arrays["recon_val"], recon_test=arrays["recon_test"], **meta)
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        _warn_ignored(path, f"{type(err).__name__}: {err}")
        return None


def _warn_ignored(path: Path, why: str) -> None:
    warnings.warn(f"ignoring the cached run {path.name} in {path.parent} ({why}); it is computed again",
                  RuntimeWarning, stacklevel=3)


def run_unit(variants: Mapping[str, Any], *, seed: int, cache_dir: str | Path | None, key_of: Callable[[Any], str],
             group_of: Callable[[Any], str], build: Callable[[Any], Any],
             evaluate: Callable[[Any, str, Any, float], Run]) -> dict[str, Run]:
    """One seed of every variant: each run read from the cache, or made and saved there.

    ``key_of(v)`` is a variant's run key (:func:`run_key`); variants whose runs share a key share one run. The model
    of a variant is ``build(v)``, built only when one of its runs is missing and at most once per ``group_of(v)``;
    ``evaluate(model, name, v, build_s)`` makes the run (``build_s``: seconds this variant waited for its model).

    Returns
    -------
    dict of str -> Run
        In the order of ``variants``, each run's ``variant`` set to its name.
    """
    models, done, out = {}, {}, {}
    for name, v in variants.items():
        key = key_of(v)
        path = run_path(cache_dir, seed=seed, key=key) if cache_dir else None
        run = done.get(key) or (load_run(path) if path else None)
        if run is None:
            group, t0 = group_of(v), time.perf_counter()
            if group not in models:
                models[group] = build(v)
            run = evaluate(models[group], name, v, time.perf_counter() - t0)
            if path:
                save_run(path, run)
        done[key] = run
        out[name] = dataclasses.replace(run, variant=name)
    return out


# ----------------------------------------------------------------------------- tables


def summary_table(results: dict[str, VariantResult], *, split: str = "test",
                  metrics=("psnr", "ssim", "pixel_r", "mse", "id2", "id2_within"), n_boot: int = 2000) -> pd.DataFrame:
    """One row per variant: seed-pooled 'mean [95% CI]' per metric, number of seeds, train time."""
    rows = {}
    for name, res in results.items():
        row = {}
        for m in metrics:
            p = res.pooled(m, split, n_boot=n_boot)
            row[m] = ci_text(p, 2 if m == "psnr" else 3)
        row["seeds"] = len(res.runs)
        row["train s/seed"] = round(float(np.mean([r.wall_time_s for r in res.runs])), 1)
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def chapter_metrics(results: dict[str, VariantResult], *, n_boot: int = 2000) -> tuple[dict, dict, dict]:
    """Entries for :func:`ldm_core.study.results.write_results`.

    Returns
    -------
    metrics : dict
        ``"<variant>@seed<k>"`` -> that run's test evaluation.
    reconstructions : dict
        Same keys -> test reconstructions (N, S, S).
    summary : dict
        ``variant`` -> {"test": {metric: pooled}, "val": {metric: pooled}, configs, seeds, train time}.
    """
    metrics, recons, summary = {}, {}, {}
    for name, res in results.items():
        for r in res.runs:
            key = f"{name}@seed{r.seed}"
            metrics[key] = {**r.test_metrics, "wall_time_s": r.wall_time_s, "steps_per_s": r.steps_per_s}
            recons[key] = r.recon_test
        summary[name] = {
            split: {m: res.pooled(m, split, n_boot=n_boot) for m in ("psnr", "ssim", "pixel_r", "mse", "id2", "id2_within", "id10")}
            for split in ("test", "val")
        }
        summary[name].update(ldm_cfg=res.ldm_cfg, train_cfg=res.train_cfg, sample_cfg=res.sample_cfg,
                             seeds=[r.seed for r in res.runs], n_parameters=res.runs[0].n_parameters,
                             feature_net=res.runs[0].feature_net,
                             train_wall_time_s=[r.wall_time_s for r in res.runs], device=res.runs[0].device)
    return metrics, recons, summary


# diffusion-stage loss term, as logged in a run's history ("train_<term>") -> its TrainConfig weight
LOSS_TERM_WEIGHTS = {"noise": "w_noise", "coarse": "w_coarse", "img_mse": "w_img_mse",
                     "img_perceptual": "w_perceptual", "img_ssim_loss": "w_ssim", "img_adv": "w_adv"}


def loss_terms(results: dict[str, VariantResult], *, stage: str = "diffusion", weighted: bool = True) -> pd.DataFrame:
    """Each loss term's mean training value in the last epoch of ``stage`` (first seed of each variant).

    Parameters
    ----------
    results : dict of str -> VariantResult
        Their ``runs[0].history`` holds per-epoch lists ``stage`` and ``train_<term>`` (see
        :func:`ldm_core.train.fit`).
    stage : str
        Training stage whose last epoch is read ("diffusion" holds the terms of :data:`LOSS_TERM_WEIGHTS`).
    weighted : bool
        True: each value times its weight from the variant's ``train_cfg`` (TrainConfig defaults for fields it
        does not set), i.e. what the term adds to the loss of a step; False: the raw term.

    Returns
    -------
    DataFrame
        One row per variant, one column per term of :data:`LOSS_TERM_WEIGHTS` that some variant uses (NaN where
        a variant's weight is 0), plus ``"image share"`` when ``weighted``: the image-space terms' (``img_*``)
        part of the weighted sum, in [0, 1]. Image terms are computed on the rows of a batch with small t only
        (``TrainConfig.img_loss_t_frac``), and their value is the mean over those rows.

    Raises
    ------
    ValueError
        If a variant's history has no epoch of ``stage`` (the stages it has are named).
    """
    defaults = dataclasses.asdict(TrainConfig())
    rows: dict[str, dict[str, Any]] = {}
    for name, res in results.items():
        h = res.runs[0].history
        idx = [i for i, s in enumerate(h["stage"]) if s == stage]
        if not idx:
            raise ValueError(f"variant {name!r} has no '{stage}' epoch in its history; its stages are "
                             f"{sorted(set(h['stage']))}")
        cfg = {**defaults, **res.train_cfg}
        row = {}
        for term, w_name in LOSS_TERM_WEIGHTS.items():
            values = h.get(f"train_{term}")
            if cfg[w_name] == 0 or values is None:
                continue
            row[term] = float(values[idx[-1]]) * (float(cfg[w_name]) if weighted else 1.0)
        rows[name] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table = table[[t for t in LOSS_TERM_WEIGHTS if t in table.columns]]
    if weighted:
        img = table[[c for c in table.columns if c.startswith("img_")]].sum(axis=1, min_count=1).fillna(0.0)
        table["image share"] = img / table.sum(axis=1)
    return table


# weighted loss term -> its column in page tables ("w ·": times its TrainConfig weight)
LOSS_TERM_LABELS = {"noise": "noise MSE", "coarse": "w · half-resolution MSE", "img_mse": "w · pixel MSE",
                    "img_perceptual": "w · perceptual", "img_ssim_loss": "w · (1 − SSIM)", "img_adv": "w · adversarial"}


def loss_terms_table(results: dict[str, VariantResult], *, stage: str = "diffusion", digits: int = 4) -> pd.DataFrame:
    """:func:`loss_terms` (weighted) as a page table: reader names, no empty cells.

    Parameters
    ----------
    results : dict of str -> VariantResult
        As for :func:`loss_terms` (first seed of each variant).
    stage : str
        Training stage whose last epoch is read.
    digits : int
        Decimals of the weighted terms.

    Returns
    -------
    DataFrame of str
        One row per variant (:func:`ldm_core.study.names.model_label`), one column per term some variant uses
        (:data:`LOSS_TERM_LABELS`), "off" where a variant's weight is 0, and "image-term share" (the image terms'
        part of the weighted sum, in percent; negative when the adversarial generator loss is).

    Raises
    ------
    ValueError
        As :func:`loss_terms`, when a variant has no epoch of ``stage``.
    """
    from .names import model_label

    raw = loss_terms(results, stage=stage, weighted=True)
    table = pd.DataFrame(index=[model_label(n) for n in raw.index])
    for term in raw.columns.drop("image share"):
        table[LOSS_TERM_LABELS.get(term, term)] = [f"{v:.{digits}f}" if np.isfinite(v) else "off" for v in raw[term]]
    table["image-term share"] = [f"{v:.1%}" for v in raw["image share"]]
    return table.rename_axis(f"weighted terms, last {stage} epoch")
