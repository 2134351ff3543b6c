"""The protocol every model chapter follows: split, train, select on validation, test once, record.

- :func:`prepare_data` loads digit69, carves the validation split out of the training trials (seeded,
  stratified by digit) and z-scores fMRI with statistics of the *fitting* trials only (the trials the
  model trains on); validation and test fMRI are transformed with those statistics.
- :func:`run_variant` trains one configuration for each seed on the fitting trials, reconstructs the
  validation trials (for selection) and the test trials (scored once), and caches each (variant, seed)
  run on disk so an interrupted chapter resumes where it stopped.
- :func:`select` picks a variant by a validation metric; it never reads test numbers.
- :func:`chapter_metrics` turns runs into the entries of ``results/<chapter>/metrics.json``: one entry per
  (variant, seed) -- reproducible from ``reconstructions.npz`` -- plus seed-averaged summaries.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .config import LDMConfig, get_preset
from .data import Digit69, FmriNormalizer, load_digit69, train_val_split
from .metrics import bootstrap_ci, evaluate
from .results import atomic_write_bytes

__all__ = ["StudyData", "prepare_data", "Run", "VariantResult", "run_variant", "select", "summary_table",
           "chapter_metrics", "make_ldm_config", "seed_list"]


# ----------------------------------------------------------------------------- data


@dataclass
class StudyData:
    """Arrays of one chapter, already split and normalised.

    fmri_* : float32 (N, V), z-scored with the fitting trials' statistics; images_* : float32 (N, S, S)
    in [0, 1]; labels_* : int (N,). ``fit`` = training trials minus validation; ``train_all`` = all
    training trials (normalised with the same statistics), for baselines that select by CV internally.
    """

    fmri_fit: np.ndarray
    images_fit: np.ndarray
    labels_fit: np.ndarray
    fmri_val: np.ndarray
    images_val: np.ndarray
    labels_val: np.ndarray
    fmri_test: np.ndarray
    images_test: np.ndarray
    labels_test: np.ndarray
    fmri_train_all: np.ndarray
    images_train_all: np.ndarray
    labels_train_all: np.ndarray
    val_idx: np.ndarray
    normalizer: FmriNormalizer
    raw: Digit69 = field(repr=False)

    @property
    def n_voxels(self) -> int:
        return int(self.fmri_fit.shape[1])

    def fingerprint(self) -> str:
        """Short hash of the data file and the split (part of the run cache key)."""
        return hashlib.sha256((self.raw.sha256 + ",".join(map(str, self.val_idx))).encode()).hexdigest()[:16]


def prepare_data(data_dir: str | None = None, *, val_fraction: float = 0.2, split_seed: int = 0,
                 verbose: int = 1) -> StudyData:
    """Load digit69 and split it for selection (see module docstring)."""
    raw = load_digit69(data_dir or None, verbose=verbose)
    fit_idx, val_idx = train_val_split(raw.labels_train, val_fraction=val_fraction, seed=split_seed)
    norm = FmriNormalizer().fit(raw.fmri_train[fit_idx])
    return StudyData(
        fmri_fit=norm.transform(raw.fmri_train[fit_idx]), images_fit=raw.images_train[fit_idx],
        labels_fit=raw.labels_train[fit_idx],
        fmri_val=norm.transform(raw.fmri_train[val_idx]), images_val=raw.images_train[val_idx],
        labels_val=raw.labels_train[val_idx],
        fmri_test=norm.transform(raw.fmri_test), images_test=raw.images_test, labels_test=raw.labels_test,
        fmri_train_all=norm.transform(raw.fmri_train), images_train_all=raw.images_train,
        labels_train_all=raw.labels_train, val_idx=val_idx, normalizer=norm, raw=raw,
    )


def seed_list(n_seeds: int, *, first: int = 0) -> list[int]:
    """``[first, first + 1, ...]``: the seeds of a comparison (n_seeds >= 1)."""
    if n_seeds < 1:
        raise ValueError(f"n_seeds must be at least 1, got {n_seeds}")
    return list(range(first, first + n_seeds))


def make_ldm_config(preset: str = "fixed", **overrides) -> LDMConfig:
    """A preset with fields replaced (unknown fields raise, naming the valid ones)."""
    return get_preset(preset, **overrides)


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
        """Per-image values averaged over seeds, their mean and bootstrap CI over images."""
        per = np.mean([getattr(r, f"{split}_metrics")[metric]["per_image"] for r in self.runs], axis=0)
        lo, hi = bootstrap_ci(per, n_boot=n_boot, seed=seed)
        return {"mean": float(np.nanmean(per)), "ci_low": lo, "ci_high": hi, "per_image": per.tolist(),
                "n_seeds": len(self.runs)}


def _cache_key(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _save_run(path: Path, run: Run) -> None:
    import io

    meta = {k: v for k, v in dataclasses.asdict(run).items() if k not in ("recon_val", "recon_test")}
    buf = io.BytesIO()
    np.savez_compressed(buf, recon_val=run.recon_val, recon_test=run.recon_test)
    atomic_write_bytes(path.with_suffix(".npz"), buf.getvalue())
    atomic_write_bytes(path.with_suffix(".json"), json.dumps(meta, default=float).encode())


def _load_run(path: Path) -> Run | None:
    j, z = path.with_suffix(".json"), path.with_suffix(".npz")
    if not (j.is_file() and z.is_file()):
        return None
    meta = json.loads(j.read_text())
    with np.load(z) as arrays:
        return Run(recon_val=arrays["recon_val"], recon_test=arrays["recon_test"], **meta)


def run_variant(
    name: str,
    data: StudyData,
    *,
    ldm_cfg: LDMConfig,
    train_cfg: dict,
    seeds: list[int],
    steps: int = 50,
    guidance: float = 1.0,
    n_samples: int = 1,
    sampler: str | None = None,
    n_boot: int = 1000,
    n_perm: int = 0,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> VariantResult:
    """Train ``ldm_cfg`` with ``train_cfg`` once per seed; reconstruct validation and test trials.

    Parameters
    ----------
    train_cfg : dict
        Fields of :class:`ldm_core.train.TrainConfig` (its ``seed`` is set per run).
    steps, guidance, n_samples, sampler
        Passed to :meth:`BrainLDM.reconstruct` (``n_samples`` > 1 averages samples per trial).
    n_boot, n_perm
        For :func:`ldm_core.metrics.evaluate` of each run (the test permutation test, if wanted).
    cache_dir : path, optional
        Finished runs are stored here under a key of (data, configs, seed, sampling) and reused, so an
        interrupted chapter resumes; a changed parameter gives a new key. Trained stage-1 VAEs are cached in
        ``cache_dir/vae`` and shared by variants with the same VAE settings (bitwise the same result).
    """
    from .train import TrainConfig, fit

    sample_cfg = dict(steps=steps, guidance=guidance, n_samples=n_samples, sampler=sampler)
    runs = []
    for seed in seeds:
        extra = {"vae_cache_dir": str(Path(cache_dir) / "vae")} if cache_dir and "vae_cache_dir" not in train_cfg else {}
        tcfg = TrainConfig.from_dict({**train_cfg, **extra, "seed": seed, "progress": progress})
        key = _cache_key({"data": data.fingerprint(), "ldm": dataclasses.asdict(ldm_cfg),
                          "train": {k: v for k, v in dataclasses.asdict(tcfg).items() if k not in ("progress", "device", "vae_cache_dir", "checkpoint_dir")},
                          "sample": sample_cfg, "n_boot": n_boot, "n_perm": n_perm})
        path = Path(cache_dir) / f"run-seed{seed}-{key}" if cache_dir else None  # same settings, same run
        run = _load_run(path) if path else None
        if run is not None:
            run.variant = name
        if run is None:
            t0 = time.time()
            res = fit(data.fmri_fit, data.images_fit, fmri_val=data.fmri_val, images_val=data.images_val,
                      ldm_cfg=ldm_cfg, train_cfg=tcfg)
            model = res.model
            kw = dict(steps=steps, guidance=guidance, n_samples=n_samples, seed=seed, sampler=sampler)
            recon_val = model.reconstruct(data.fmri_val, **kw)
            recon_test = model.reconstruct(data.fmri_test, **kw)
            run = Run(
                variant=name, seed=seed, recon_val=recon_val, recon_test=recon_test,
                val_metrics=evaluate(recon_val, data.images_val, data.labels_val, n_boot=n_boot, n_perm=0, seed=seed),
                test_metrics=evaluate(recon_test, data.images_test, data.labels_test, n_boot=n_boot, n_perm=n_perm, seed=seed),
                history={k: list(map(_plain, v)) if isinstance(v, (list, tuple)) else v for k, v in res.history.items()},
                wall_time_s=time.time() - t0, steps_per_s=float(res.steps_per_s),
                n_parameters=model.n_parameters(), device=str(res.device),
                feature_net=getattr(res, "feature_net_name", None),
            )
            if path:
                _save_run(path, run)
        runs.append(run)
    return VariantResult(name, ldm_cfg.to_dict(), train_cfg, sample_cfg, runs)


def _plain(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return v


# ----------------------------------------------------------------------------- selection and tables


def select(results: dict[str, VariantResult], *, metric: str = "ssim", higher_is_better: bool = True) -> str:
    """The variant with the best seed-mean *validation* metric (test numbers are never read)."""
    if not results:
        raise ValueError("select needs at least one variant")
    score = {n: r.seed_mean(metric, "val")[0] for n, r in results.items()}
    return (max if higher_is_better else min)(score, key=score.get)


def summary_table(results: dict[str, VariantResult], *, split: str = "test",
                  metrics=("psnr", "ssim", "pixel_r", "mse", "id2", "id2_within"), n_boot: int = 2000) -> pd.DataFrame:
    """One row per variant: seed-pooled 'mean [95% CI]' per metric, number of seeds, train time."""
    rows = {}
    for name, res in results.items():
        row = {}
        for m in metrics:
            p = res.pooled(m, split, n_boot=n_boot)
            d = 2 if m == "psnr" else 3
            row[m] = f"{p['mean']:.{d}f} [{p['ci_low']:.{d}f}, {p['ci_high']:.{d}f}]"
        row["seeds"] = len(res.runs)
        row["train s/seed"] = round(float(np.mean([r.wall_time_s for r in res.runs])), 1)
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def chapter_metrics(results: dict[str, VariantResult], *, n_boot: int = 2000) -> tuple[dict, dict, dict]:
    """Entries for :func:`ldm_core.results.write_results`.

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
