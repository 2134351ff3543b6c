"""The protocol every model chapter follows: split, train, select on validation, test once, record.

- :func:`prepare_data` loads digit69, carves the validation split out of the training trials (seeded,
  stratified by digit) and z-scores fMRI with statistics of the *fitting* trials only (the trials the
  model trains on); validation and test fMRI are transformed with those statistics.
- :func:`run_variant` trains one configuration for each seed on the fitting trials, reconstructs the
  validation trials (for selection) and the test trials (scored once), and caches each (variant, seed)
  run on disk so an interrupted chapter resumes where it stopped.
- :func:`run_samplings` is :func:`run_variant` for several sampling settings of one training (a model is
  trained once per seed and reconstructs with each); :func:`train_model` trains one model, optionally kept on
  disk so later calls load it; :func:`stage1_vae` returns the stage-1 VAE a run trains (from the VAE cache).
- :func:`run_candidates` runs named configurations (preset + LDMConfig changes + sampling settings), sharing
  trainings between candidates that differ only in sampling.
- :func:`subsample_fit` keeps a stratified draw of the fitting trials (fMRI re-z-scored with their statistics),
  for learning curves against training-set size; the validation and test trials stay the same;
  :func:`equal_steps_train_cfg` scales a recipe's epochs so every size gets the same number of optimiser steps.
- :func:`select` picks a variant by a validation metric; it never reads test numbers.
- :func:`chapter_metrics` turns runs into the entries of ``results/<chapter>/metrics.json``: one entry per
  (variant, seed) -- reproducible from ``reconstructions.npz`` -- plus seed-averaged summaries.
- :func:`loss_terms` reads from the runs' training histories how much each weighted loss term added to the
  training loss, so a chapter can show whether a term with a small weight mattered at all.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .config import LDMConfig, get_preset
from .data import Digit69, FmriNormalizer, load_digit69, train_val_split
from .metrics import bootstrap_ci, evaluate
from .results import atomic_write_bytes

__all__ = ["StudyData", "prepare_data", "subsample_fit", "Run", "VariantResult", "TrainedModel", "SAMPLING_DEFAULTS",
           "train_model", "run_samplings", "run_variant", "run_candidates", "equal_steps_train_cfg",
           "stage1_vae", "select", "summary_table",
           "chapter_metrics", "make_ldm_config", "seed_list", "LOSS_TERM_WEIGHTS", "loss_terms"]


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
    fit_idx: np.ndarray | None = None  # indices of the fitting trials in raw when a subset (subsample_fit); None: all non-validation trials

    @property
    def n_voxels(self) -> int:
        return int(self.fmri_fit.shape[1])

    def fingerprint(self) -> str:
        """Short hash of the data file and the split (part of the run cache key)."""
        key = self.raw.sha256 + ",".join(map(str, self.val_idx))
        if self.fit_idx is not None:  # a subset of the fitting trials (the full set keeps its original key)
            key += ";fit:" + ",".join(map(str, self.fit_idx))
        return hashlib.sha256(key.encode()).hexdigest()[:16]


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


def subsample_fit(data: StudyData, n_trials: int, *, seed: int = 0) -> StudyData:
    """The same split with only ``n_trials`` of the fitting trials: a seeded draw stratified by digit.

    The fMRI of every split is z-scored again with the statistics of the drawn trials only (what a study with
    that many trials would do); validation and test trials are the same trials as in ``data``.

    Parameters
    ----------
    data : StudyData
        From :func:`prepare_data` (or another subset of it).
    n_trials : int
        Fitting trials to keep, in [number of digit classes, number of fitting trials]. All of them returns
        ``data`` itself (there is only one such draw).
    seed : int
        Seed of the draw (scikit-learn's stratified ``train_test_split``).

    Returns
    -------
    StudyData
        ``fmri_fit``, ``images_fit``, ``labels_fit`` hold the drawn trials; ``fit_idx`` their indices in the
        raw training arrays (so the run cache tells subsets apart); ``train_all`` still holds every training trial.

    Raises
    ------
    ValueError
        If ``n_trials`` is outside the allowed range (the range is named).
    """
    from sklearn.model_selection import train_test_split

    raw = data.raw
    fit_idx = (data.fit_idx if data.fit_idx is not None
               else np.setdiff1d(np.arange(len(raw.labels_train), dtype=np.int64), data.val_idx))
    n_fit, n_classes = len(fit_idx), len(np.unique(raw.labels_train[fit_idx]))
    if isinstance(n_trials, bool) or not isinstance(n_trials, (int, np.integer)) or not n_classes <= n_trials <= n_fit:
        raise ValueError(f"n_trials must be an int in [{n_classes}, {n_fit}] (one trial per digit class at least, "
                         f"at most the {n_fit} fitting trials); got {n_trials!r}")
    if n_trials == n_fit:
        return data
    keep, _ = train_test_split(fit_idx, train_size=int(n_trials), stratify=raw.labels_train[fit_idx], random_state=seed)
    keep = np.sort(keep)
    norm = FmriNormalizer().fit(raw.fmri_train[keep])
    return StudyData(
        fmri_fit=norm.transform(raw.fmri_train[keep]), images_fit=raw.images_train[keep], labels_fit=raw.labels_train[keep],
        fmri_val=norm.transform(raw.fmri_train[data.val_idx]), images_val=data.images_val, labels_val=data.labels_val,
        fmri_test=norm.transform(raw.fmri_test), images_test=data.images_test, labels_test=data.labels_test,
        fmri_train_all=norm.transform(raw.fmri_train), images_train_all=data.images_train_all,
        labels_train_all=data.labels_train_all, val_idx=data.val_idx, normalizer=norm, raw=raw, fit_idx=keep,
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


SAMPLING_DEFAULTS = {"steps": 50, "guidance": 1.0, "n_samples": 1, "sampler": None}  # BrainLDM.reconstruct settings a run records


@dataclass
class TrainedModel:
    """One trained model and its training record (what :func:`ldm_core.train.fit` returns, storable).

    history : per-epoch curves; wall_time_s : seconds of the training call that produced the model (also when it is
    later loaded from disk); steps_per_s : optimiser steps per second of that call; device : where it trained.
    """

    model: object  # BrainLDM, in eval mode
    history: dict
    wall_time_s: float
    steps_per_s: float
    device: str
    feature_net: str | None = None


def _train_key(data: StudyData, ldm_cfg: LDMConfig, tcfg) -> dict:
    return {"data": data.fingerprint(), "ldm": dataclasses.asdict(ldm_cfg),
            "train": {k: v for k, v in dataclasses.asdict(tcfg).items()
                      if k not in ("progress", "device", "vae_cache_dir", "checkpoint_dir")}}


def _train_cfg(train_cfg: dict, *, seed: int, cache_dir, progress: bool):
    from .train import TrainConfig

    extra = {"vae_cache_dir": str(Path(cache_dir) / "vae")} if cache_dir and "vae_cache_dir" not in train_cfg else {}
    return TrainConfig.from_dict({**train_cfg, **extra, "seed": seed, "progress": progress})


def train_model(data: StudyData, *, ldm_cfg: LDMConfig, train_cfg: dict, seed: int = 0,
                cache_dir: str | Path | None = None, keep_model: bool = False, progress: bool = True) -> TrainedModel:
    """Train ``ldm_cfg`` on the fitting trials (validation trials for the validation loss), or load it.

    Parameters
    ----------
    train_cfg : dict
        Fields of :class:`ldm_core.train.TrainConfig`; ``seed`` and ``progress`` are set here.
    cache_dir : path, optional
        Stage-1 VAEs are cached in ``cache_dir/vae``. With ``keep_model`` the trained model is also written to
        ``cache_dir/model-seed<k>-<key>.pt`` (key: data, configs, seed) and loaded from there by later calls.
    keep_model : bool
        Store / reuse the trained model on disk (about 17 MB for the ``fixed`` preset at V = 3092).
    """
    from .pipeline import BrainLDM
    from .train import fit

    tcfg = _train_cfg(train_cfg, seed=seed, cache_dir=cache_dir, progress=progress)
    path = None
    if keep_model and cache_dir:
        path = Path(cache_dir) / f"model-seed{seed}-{_cache_key(_train_key(data, ldm_cfg, tcfg))}"
        meta = path.with_suffix(".json")
        if meta.is_file() and path.with_suffix(".pt").is_file():
            info = json.loads(meta.read_text())
            return TrainedModel(model=BrainLDM.load(path.with_suffix(".pt")), **info)
    res = fit(data.fmri_fit, data.images_fit, fmri_val=data.fmri_val, images_val=data.images_val,
              ldm_cfg=ldm_cfg, train_cfg=tcfg)
    history = {k: list(map(_plain, v)) if isinstance(v, (list, tuple)) else v for k, v in res.history.items()}
    out = TrainedModel(model=res.model, history=history, wall_time_s=float(res.wall_time_s),
                       steps_per_s=float(res.steps_per_s), device=str(res.device),
                       feature_net=getattr(res, "feature_net_name", None))
    if path is not None:
        res.model.save(path.with_suffix(".pt"))
        info = {f.name: getattr(out, f.name) for f in dataclasses.fields(out) if f.name != "model"}
        atomic_write_bytes(path.with_suffix(".json"), json.dumps(info, default=float).encode())
    return out


def run_samplings(
    samplings: dict[str, dict],
    data: StudyData,
    *,
    ldm_cfg: LDMConfig,
    train_cfg: dict,
    seeds: list[int],
    n_boot: int = 1000,
    n_perm: int = 0,
    cache_dir: str | Path | None = None,
    keep_models: bool = False,
    progress: bool = True,
) -> dict[str, VariantResult]:
    """Train ``ldm_cfg`` once per seed and reconstruct validation and test trials with each sampling setting.

    Parameters
    ----------
    samplings : dict of str -> dict
        Variant name -> :meth:`BrainLDM.reconstruct` settings among ``steps``, ``guidance``, ``n_samples`` and
        ``sampler`` (missing ones take :data:`SAMPLING_DEFAULTS`). Each becomes a :class:`VariantResult`.
    train_cfg : dict
        Fields of :class:`ldm_core.train.TrainConfig` (its ``seed`` is set per run).
    n_boot, n_perm
        For :func:`ldm_core.metrics.evaluate` of each run (the test permutation test, if wanted).
    cache_dir : path, optional
        Finished runs are stored here under a key of (data, configs, seed, sampling, n_boot, n_perm) and reused,
        so an interrupted chapter resumes; a changed parameter gives a new key. The key is the one
        :func:`run_variant` uses, so a run made by either function is found by both. Trained stage-1 VAEs are
        cached in ``cache_dir/vae`` and shared by variants with the same VAE settings (bitwise the same result).
    keep_models : bool
        Also keep each trained model on disk (see :func:`train_model`), so a later call with a new sampling
        setting, or :func:`train_model` itself, loads it instead of training again.

    Returns
    -------
    dict of str -> VariantResult
        In the order of ``samplings``. Each run's ``wall_time_s`` is the training time plus that sampling's
        reconstruction and evaluation time; ``recon_test_s`` is the time to reconstruct the test trials.

    Raises
    ------
    ValueError
        If a sampling setting names an unknown key (the allowed keys are listed) or ``samplings`` is empty.
    """
    if not samplings:
        raise ValueError("run_samplings needs at least one sampling setting")
    sample_cfgs = {}
    for name, s in samplings.items():
        bad = sorted(set(s) - set(SAMPLING_DEFAULTS))
        if bad:
            raise ValueError(f"sampling setting {name!r} has unknown key(s) {bad}; allowed: {list(SAMPLING_DEFAULTS)}")
        sample_cfgs[name] = {**SAMPLING_DEFAULTS, **s}
    runs: dict[str, list[Run]] = {name: [] for name in samplings}
    for seed in seeds:
        tcfg = _train_cfg(train_cfg, seed=seed, cache_dir=cache_dir, progress=progress)
        found, paths = {}, {}
        for name, sc in sample_cfgs.items():
            key = _cache_key({**_train_key(data, ldm_cfg, tcfg), "sample": sc, "n_boot": n_boot, "n_perm": n_perm})
            paths[name] = Path(cache_dir) / f"run-seed{seed}-{key}" if cache_dir else None  # same settings, same run
            found[name] = _load_run(paths[name]) if paths[name] else None
        trained = None
        for name, sc in sample_cfgs.items():
            run = found[name]
            if run is None:
                if trained is None:
                    trained = train_model(data, ldm_cfg=ldm_cfg, train_cfg=train_cfg, seed=seed, cache_dir=cache_dir,
                                          keep_model=keep_models, progress=progress)
                run = _reconstruct_run(trained, data, name=name, seed=seed, sample_cfg=sc, n_boot=n_boot, n_perm=n_perm)
                if paths[name]:
                    _save_run(paths[name], run)
            run.variant = name
            runs[name].append(run)
    return {name: VariantResult(name, ldm_cfg.to_dict(), train_cfg, sample_cfgs[name], runs[name]) for name in samplings}


def _reconstruct_run(trained: TrainedModel, data: StudyData, *, name: str, seed: int, sample_cfg: dict,
                     n_boot: int, n_perm: int) -> Run:
    model = trained.model
    t0 = time.time()
    recon_val = model.reconstruct(data.fmri_val, seed=seed, **sample_cfg)
    t1 = time.time()
    recon_test = model.reconstruct(data.fmri_test, seed=seed, **sample_cfg)
    recon_test_s = time.time() - t1
    run = Run(
        variant=name, seed=seed, recon_val=recon_val, recon_test=recon_test,
        val_metrics=evaluate(recon_val, data.images_val, data.labels_val, n_boot=n_boot, n_perm=0, seed=seed),
        test_metrics=evaluate(recon_test, data.images_test, data.labels_test, n_boot=n_boot, n_perm=n_perm, seed=seed),
        history=trained.history, wall_time_s=0.0, steps_per_s=trained.steps_per_s,
        n_parameters=model.n_parameters(), device=trained.device, feature_net=trained.feature_net,
        train_time_s=trained.wall_time_s, recon_test_s=recon_test_s,
    )
    run.wall_time_s = trained.wall_time_s + time.time() - t0
    return run


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
    keep_models: bool = False,
) -> VariantResult:
    """Train ``ldm_cfg`` with ``train_cfg`` once per seed; reconstruct validation and test trials.

    :func:`run_samplings` with one sampling setting.

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
    keep_models : bool
        Keep the trained models on disk too (see :func:`train_model`).
    """
    sampling = dict(steps=steps, guidance=guidance, n_samples=n_samples, sampler=sampler)
    return run_samplings({name: sampling}, data, ldm_cfg=ldm_cfg, train_cfg=train_cfg, seeds=seeds, n_boot=n_boot,
                         n_perm=n_perm, cache_dir=cache_dir, keep_models=keep_models, progress=progress)[name]


def run_candidates(
    candidates: dict[str, dict],
    data: StudyData,
    *,
    preset: str = "fixed",
    ldm_base: dict | None = None,
    train_cfg: dict,
    seeds: list[int],
    steps: int = 50,
    n_boot: int = 1000,
    n_perm: int = 0,
    cache_dir: str | Path | None = None,
    keep_models: bool = False,
    progress: bool = True,
) -> dict[str, VariantResult]:
    """Named configurations, each the preset plus ``ldm_base`` with some LDMConfig fields and sampling settings changed.

    Parameters
    ----------
    candidates : dict of str -> dict
        Name -> changes: keys of :data:`SAMPLING_DEFAULTS` (``n_samples``, ``guidance``, ``steps``, ``sampler``)
        set the sampling, every other key is an :class:`~ldm_core.config.LDMConfig` field. Candidates whose
        LDMConfig fields agree share one training per seed (:func:`run_samplings`).
    ldm_base : dict, optional
        LDMConfig fields every candidate starts from (on top of ``preset``).
    steps : int
        DDIM steps of candidates that do not set ``steps``.

    Returns
    -------
    dict of str -> VariantResult, in the order of ``candidates``.

    Raises
    ------
    ValueError
        From :class:`LDMConfig` on an unknown field or a bad value (naming the valid fields).
    """
    groups: dict[str, tuple[LDMConfig, dict]] = {}
    for name, spec in candidates.items():
        fields = {**(ldm_base or {}), **{k: v for k, v in spec.items() if k not in SAMPLING_DEFAULTS}}
        cfg = make_ldm_config(preset, **fields)
        key = json.dumps(cfg.to_dict(), sort_keys=True)
        groups.setdefault(key, (cfg, {}))[1][name] = {"steps": steps, **{k: v for k, v in spec.items()
                                                                           if k in SAMPLING_DEFAULTS}}
    out: dict[str, VariantResult] = {}
    for cfg, samplings in groups.values():
        out.update(run_samplings(samplings, data, ldm_cfg=cfg, train_cfg=train_cfg, seeds=seeds, n_boot=n_boot,
                                 n_perm=n_perm, cache_dir=cache_dir, keep_models=keep_models, progress=progress))
    return {name: out[name] for name in candidates}


def equal_steps_train_cfg(train_cfg: dict, *, n_trials: int, n_reference: int) -> dict:
    """``train_cfg`` with its epoch counts scaled so that ``n_trials`` trials get the optimiser steps of ``n_reference``.

    A stage of E epochs on n trials at batch size b takes E * ceil(n / b) steps; each of ``epochs``,
    ``vae_epochs`` and ``align_epochs`` (TrainConfig defaults where absent) is multiplied by
    ceil(n_reference / b) / ceil(n_trials / b) and rounded, so a learning curve compares training-set sizes at
    (about) equal optimisation rather than at equal epochs. ``val_every`` is multiplied too (rounded, at least
    1), so the number of validations -- and their cost -- stays about the same.
    """
    from .train import TrainConfig

    cfg = {**dataclasses.asdict(TrainConfig()), **train_cfg}
    bs = int(cfg["batch_size"])
    factor = math.ceil(n_reference / bs) / math.ceil(n_trials / bs)
    out = dict(train_cfg)
    for k in ("epochs", "vae_epochs", "align_epochs"):
        scaled = int(round(cfg[k] * factor))
        out[k] = max(1, scaled) if cfg[k] > 0 else 0
    out["val_every"] = max(1, int(round(cfg["val_every"] * factor)))
    return out


def stage1_vae(data: StudyData, *, ldm_cfg: LDMConfig, train_cfg: dict, seed: int = 0,
               cache_dir: str | Path | None = None):
    """The stage-1 VAE that :func:`run_variant` with these settings and this seed trains, inside a BrainLDM.

    Runs :func:`ldm_core.train.fit` with the alignment stage skipped and a single diffusion epoch: the VAE stage
    depends only on the VAE's config, its training fields, the seed and the images, so with the same
    ``cache_dir`` it is loaded from ``cache_dir/vae`` when a run has trained it (bitwise the same weights and
    latent scale), and trained and cached otherwise.

    Returns
    -------
    BrainLDM
        Use only its VAE: ``encode_images`` / ``decode_latents`` / ``latent_scale`` (its encoder and U-Net
        have seen one epoch).

    Raises
    ------
    ValueError
        If ``train_cfg`` uses the ``"original"`` stage plan (it has no VAE stage) or ``vae_epochs`` = 0.
    """
    from .train import TrainConfig

    cfg = {**dataclasses.asdict(TrainConfig()), **train_cfg}
    if cfg["stages"] == "original" or cfg["vae_epochs"] == 0:
        raise ValueError(f"stage1_vae needs a stage plan with a VAE stage ('progressive' or 'end_to_end') and "
                         f"vae_epochs >= 1; got stages={cfg['stages']!r}, vae_epochs={cfg['vae_epochs']!r}")
    short = {**train_cfg, "epochs": 1, "align_epochs": 0}
    return train_model(data, ldm_cfg=ldm_cfg, train_cfg=short, seed=seed, cache_dir=cache_dir, progress=False).model


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


# diffusion-stage loss term, as logged in a run's history ("train_<term>") -> its TrainConfig weight
LOSS_TERM_WEIGHTS = {"noise": "w_noise", "coarse": "w_coarse", "img_mse": "w_img_mse",
                     "img_perceptual": "w_perceptual", "img_ssim_loss": "w_ssim", "img_adv": "w_adv"}


def loss_terms(results: dict[str, VariantResult], *, stage: str = "diffusion", weighted: bool = True) -> pd.DataFrame:
    """Each loss term's mean training value in the last epoch of ``stage`` (first seed of each variant).

    Parameters
    ----------
    results : dict of str -> VariantResult
        Their ``runs[0].history`` holds per-epoch lists ``stage`` and ``train_<term>`` (see :func:`fit`).
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
    from .train import TrainConfig

    defaults = dataclasses.asdict(TrainConfig())
    rows = {}
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
