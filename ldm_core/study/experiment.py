"""The protocol every model chapter follows: train each variant per seed (cached), select on validation.

- :class:`Variant` names one configuration of a comparison: architecture (:class:`~ldm_core.config.LDMConfig`),
  training (fields of :class:`~ldm_core.config.TrainConfig`) and sampling (:data:`~ldm_core.study.runs.SAMPLING_DEFAULTS`
  keys). To compare, change one field: ``dataclasses.replace(base, sampling={"n_samples": 4})``.
- :func:`run_variants` is the one entry point: it trains every variant once per seed on the fitting trials
  of a :class:`~ldm_core.splits.StudyData`, reconstructs the validation trials (for selection) and the test
  trials (scored once), and caches each (variant, seed) run, so an interrupted chapter resumes where it
  stopped. Variants whose LDMConfig and TrainConfig agree share one training per seed and differ only in
  sampling. The unit of work, one training for one seed and its reconstructions, is
  :func:`train_and_reconstruct`, a module-level function of plain picklable arguments (so it can be sent to a
  ``concurrent.futures``-style executor).
- :func:`train_model` trains one model, optionally kept on disk so later calls load it; :func:`stage1_vae`
  returns the stage-1 VAE a run trains (from the VAE cache).
- :func:`equal_steps_train_cfg` scales a recipe's epochs so every training-set size gets the same number of
  optimiser steps (learning curves with :func:`ldm_core.splits.subsample_fit`).
- :func:`select` picks a variant by a validation metric; it never reads test numbers.

The data split is :mod:`ldm_core.splits`; runs, their cache and the tables made from them are
:mod:`ldm_core.study.runs`.
"""
from __future__ import annotations

import dataclasses
import json
import math
import pickle
import time
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import LDMConfig, TrainConfig, get_preset
from ..io import atomic_write_bytes, content_key
from ..metrics import evaluate
from .runs import SAMPLING_DEFAULTS, Run, VariantResult, run_key, run_unit, train_key
from ..splits import StudyData

__all__ = ["Variant", "TrainedModel", "run_variants", "train_and_reconstruct", "train_model", "stage1_vae",
           "equal_steps_train_cfg", "select", "make_ldm_config"]

PER_RUN_FIELDS = ("seed", "progress")  # TrainConfig fields run_variants sets for each run


def make_ldm_config(preset: str = "fixed", **overrides) -> LDMConfig:
    """A preset with fields replaced (unknown fields raise, naming the valid ones)."""
    return get_preset(preset, **overrides)


# ----------------------------------------------------------------------------- variants


@dataclass(frozen=True)
class Variant:
    """One configuration of a comparison.

    Raises
    ------
    ValueError
        From ``__post_init__``: ``ldm_cfg`` not an LDMConfig; ``train_cfg`` with a key that is not a
        TrainConfig field, a bad value, or ``seed`` / ``progress`` (set per run by :func:`run_variants`);
        ``sampling`` with a key outside :data:`~ldm_core.study.runs.SAMPLING_DEFAULTS`.
    """

    ldm_cfg: LDMConfig  # architecture, e.g. make_ldm_config("fixed", conditioning="cross_attn")
    train_cfg: dict  # TrainConfig fields that differ from its defaults (seed and progress are set per run)
    sampling: dict = field(default_factory=dict)  # BrainLDM.reconstruct settings: keys of SAMPLING_DEFAULTS (steps, guidance, n_samples, sampler); missing ones take the defaults

    def __post_init__(self) -> None:
        if not isinstance(self.ldm_cfg, LDMConfig):
            raise ValueError(f"Variant.ldm_cfg must be an LDMConfig (e.g. make_ldm_config('fixed')), "
                             f"got {type(self.ldm_cfg).__name__}")
        if not isinstance(self.train_cfg, Mapping) or not isinstance(self.sampling, Mapping):
            raise ValueError(f"Variant.train_cfg and Variant.sampling must be dicts, got "
                             f"{type(self.train_cfg).__name__} and {type(self.sampling).__name__}")
        per_run = sorted(set(self.train_cfg) & set(PER_RUN_FIELDS))
        if per_run:
            raise ValueError(f"Variant.train_cfg sets {per_run}, which run_variants sets for each run "
                             "(seeds=..., progress=...); remove them")
        TrainConfig.from_dict(self.train_cfg)  # unknown keys and bad values fail here, before any training
        bad = sorted(set(self.sampling) - set(SAMPLING_DEFAULTS))
        if bad:
            raise ValueError(f"Variant.sampling has unknown key(s) {bad}; allowed: {list(SAMPLING_DEFAULTS)}")
        object.__setattr__(self, "train_cfg", dict(self.train_cfg))  # own copies: later edits of the caller's
        object.__setattr__(self, "sampling", dict(self.sampling))  # dicts do not change the variant

    @property
    def sample_cfg(self) -> dict:
        """The full sampling settings: :data:`~ldm_core.study.runs.SAMPLING_DEFAULTS` updated with ``sampling``."""
        return {**SAMPLING_DEFAULTS, **self.sampling}


def _check_run_args(variants: Mapping[str, Variant], seeds: Sequence[int]) -> None:
    """The argument checks of :func:`run_variants` (see its Raises)."""
    if not variants:
        raise ValueError("run_variants needs at least one variant")
    if not seeds:
        raise ValueError("run_variants needs at least one seed, e.g. seeds=seed_list(1)")
    for name, v in variants.items():
        if not isinstance(v, Variant):
            raise ValueError(f"variants[{name!r}] must be a Variant(ldm_cfg, train_cfg, sampling), got {type(v).__name__}")


def run_variants(
    variants: Mapping[str, Variant],
    data: StudyData,
    *,
    seeds: Sequence[int],
    n_boot: int = 1000,
    n_perm: int = 0,
    cache_dir: str | Path | None = None,
    keep_models: bool = False,
    progress: bool = True,
    executor=None,
) -> dict[str, VariantResult]:
    """Train each variant once per seed; reconstruct and evaluate validation and test trials.

    Parameters
    ----------
    variants : mapping of str -> Variant
        Name -> configuration. Variants whose ``ldm_cfg`` and ``train_cfg`` agree (as resolved
        configs) share one training per seed, and reconstruct with each one's ``sampling``.
    data : StudyData
        From :func:`ldm_core.splits.prepare_data` (or :func:`~ldm_core.splits.subsample_fit`).
    seeds : sequence of int
        Training seeds (``TrainConfig.seed``; also the reconstruction seed), e.g. ``seed_list(3)``.
    n_boot, n_perm : int
        For :func:`ldm_core.metrics.evaluate` of each run (``n_perm``: the test permutation test, 0 = off).
    cache_dir : path, optional
        Finished runs are stored and reused under a key of (data, configs, seed, sampling, n_boot, n_perm), so an
        interrupted chapter resumes; unreadable ones are warned about and made again. Stage-1 VAEs are cached in
        ``cache_dir/vae``, shared by variants with the same VAE settings (bitwise the same result).
    keep_models : bool
        Also keep each trained model on disk (:func:`train_model`): a later call with a new sampling loads it.
    progress : bool
        tqdm bars of the training stages.
    executor : concurrent.futures-style executor, optional
        Anything with ``submit(fn, *args, **kwargs) -> future`` (``distributed.Client``, ``ProcessPoolExecutor``)
        gets each unit of work (one training group, one seed: :func:`train_and_reconstruct`), gathered in order;
        None runs them here in turn. The result does not depend on the executor (:mod:`ldm_core.study.cluster`).

    Returns
    -------
    dict of str -> VariantResult
        In the order of ``variants``; runs in the order of ``seeds``. A run's ``wall_time_s`` is the training time
        plus its sampling's reconstruction and evaluation time; ``recon_test_s``, the test trials' reconstruction time.

    Raises
    ------
    ValueError
        If ``variants`` or ``seeds`` is empty, or a value of ``variants`` is not a :class:`Variant`.
    """
    _check_run_args(variants, seeds)
    from .cluster import map_units
    runs: dict[str, list[Run]] = {name: [] for name in variants}
    units = [dict(ldm_cfg=ldm_cfg, train_cfg=train_cfg, samplings=samplings, seed=int(seed), n_boot=n_boot,
                  n_perm=n_perm, cache_dir=cache_dir, keep_model=keep_models, progress=progress)
             for ldm_cfg, train_cfg, samplings in _groups(variants) for seed in seeds]
    for out in map_units(train_and_reconstruct, data, units, executor=executor):
        for name, run in out.items():
            runs[name].append(run)
    return {name: VariantResult(name, v.ldm_cfg.to_dict(), v.train_cfg, v.sample_cfg, runs[name])
            for name, v in variants.items()}


def _groups(variants: Mapping[str, Variant]) -> list[tuple[LDMConfig, dict, dict[str, dict]]]:
    """Variants sharing a training: (ldm_cfg, train_cfg, {name: sample_cfg}), in order of first appearance."""
    groups: dict[str, tuple[LDMConfig, dict, dict[str, dict]]] = {}
    for name, v in variants.items():
        key = json.dumps({"ldm": v.ldm_cfg.to_dict(), "train": TrainConfig.from_dict(v.train_cfg).to_dict()},
                         sort_keys=True, default=str)
        groups.setdefault(key, (v.ldm_cfg, v.train_cfg, {}))[2][name] = v.sample_cfg
    return list(groups.values())


def train_and_reconstruct(
    data: StudyData,
    *,
    ldm_cfg: LDMConfig,
    train_cfg: dict,
    samplings: Mapping[str, dict],
    seed: int,
    n_boot: int = 1000,
    n_perm: int = 0,
    cache_dir: str | Path | None = None,
    keep_model: bool = False,
    progress: bool = True,
) -> dict[str, Run]:
    """The unit of work of :func:`run_variants`: one training for one seed, reconstructed with each sampling.

    Runs found in ``cache_dir`` are read; the model is trained (or loaded, with ``keep_model``) only when
    some sampling's run is missing, and each new run is written to the cache. Every argument is plain and
    picklable, so the call can run in another process.

    Parameters
    ----------
    data : StudyData
    ldm_cfg : LDMConfig
    train_cfg : dict
        TrainConfig fields (``seed`` and ``progress`` are set here).
    samplings : mapping of str -> dict
        Variant name -> :meth:`BrainLDM.reconstruct` settings (missing keys take ``SAMPLING_DEFAULTS``).
    seed : int
    n_boot, n_perm, cache_dir, progress
        As in :func:`run_variants`; keep_model : bool, as ``keep_models`` there.

    Returns
    -------
    dict of str -> Run
        One run per sampling name, in the order of ``samplings``, each with ``variant`` set to its name.
    """
    tkey = train_key(data, ldm_cfg, _train_cfg(train_cfg, seed=seed, cache_dir=cache_dir, progress=progress))
    return run_unit(
        {name: {**SAMPLING_DEFAULTS, **s} for name, s in samplings.items()}, seed=seed, cache_dir=cache_dir,
        key_of=lambda sc: run_key(tkey, sc, n_boot=n_boot, n_perm=n_perm),
        group_of=lambda sc: "the one training",
        build=lambda sc: train_model(data, ldm_cfg=ldm_cfg, train_cfg=train_cfg, seed=seed, cache_dir=cache_dir,
                                     keep_model=keep_model, progress=progress),
        evaluate=lambda trained, name, sc, _: _reconstruct_run(trained, data, name=name, seed=seed, sample_cfg=sc,
                                                               n_boot=n_boot, n_perm=n_perm))


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


# ----------------------------------------------------------------------------- training


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


def _train_cfg(train_cfg: dict, *, seed: int, cache_dir, progress: bool) -> TrainConfig:
    """The run's TrainConfig: caches of stage-1 VAEs and feature nets inside ``cache_dir`` (so no caller records a
    machine path in its settings), then the seed and progress of the run."""
    extra = {}
    if cache_dir:
        for name, sub in (("vae_cache_dir", "vae"), ("feature_net_cache_dir", "feature_net")):
            if name not in train_cfg:
                extra[name] = str(Path(cache_dir) / sub)
    return TrainConfig.from_dict({**train_cfg, **extra, "seed": seed, "progress": progress})


def train_model(data: StudyData, *, ldm_cfg: LDMConfig, train_cfg: dict, seed: int = 0,
                cache_dir: str | Path | None = None, keep_model: bool = False, progress: bool = True) -> TrainedModel:
    """Train ``ldm_cfg`` on the fitting trials (validation trials for the validation loss), or load it.

    Parameters
    ----------
    data : StudyData
    ldm_cfg : LDMConfig
    train_cfg : dict
        Fields of :class:`ldm_core.config.TrainConfig`; ``seed`` and ``progress`` are set here.
    seed : int
    cache_dir : path, optional
        Stage-1 VAEs are cached in ``cache_dir/vae``. With ``keep_model`` the trained model is also written to
        ``cache_dir/model-seed<k>-<key>.pt`` (key: data, configs, seed) and loaded from there by later calls
        (an unreadable kept model is warned about and trained again).
    keep_model : bool
        Store / reuse the trained model on disk (about 17 MB for the ``fixed`` preset at V = 3092).
    progress : bool
        tqdm bars of the training stages.

    Returns
    -------
    TrainedModel
    """
    from ..train import fit

    tcfg = _train_cfg(train_cfg, seed=seed, cache_dir=cache_dir, progress=progress)
    path = None
    if keep_model and cache_dir:
        path = Path(cache_dir) / f"model-seed{seed}-{content_key(train_key(data, ldm_cfg, tcfg), default=str)}"
        kept = _load_kept_model(path)
        if kept is not None:
            return kept
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


def _load_kept_model(path: Path) -> TrainedModel | None:
    """The model :func:`train_model` kept at ``path`` (.pt + .json); None when absent or unreadable (warned)."""
    from ..pipeline import BrainLDM

    meta = path.with_suffix(".json")
    if not (meta.is_file() and path.with_suffix(".pt").is_file()):
        return None
    try:
        return TrainedModel(model=BrainLDM.load(path.with_suffix(".pt")), **json.loads(meta.read_text()))
    except (OSError, RuntimeError, ValueError, KeyError, TypeError, EOFError, pickle.UnpicklingError,
            zipfile.BadZipFile) as err:
        warnings.warn(f"ignoring the kept model {path.name} in {path.parent} ({type(err).__name__}: {err}); "
                      "training it again", RuntimeWarning, stacklevel=3)
        return None


def equal_steps_train_cfg(train_cfg: dict, *, n_trials: int, n_reference: int) -> dict:
    """``train_cfg`` with its epoch counts scaled so that ``n_trials`` trials get the optimiser steps of ``n_reference``.

    A stage of E epochs on n trials at batch size b takes E * ceil(n / b) steps; each of ``epochs``,
    ``vae_epochs`` and ``align_epochs`` (TrainConfig defaults where absent) is multiplied by
    ceil(n_reference / b) / ceil(n_trials / b) and rounded, so a learning curve compares training-set sizes at
    (about) equal optimisation rather than at equal epochs. ``val_every`` is multiplied too (rounded, at least
    1), so the number of validations -- and their cost -- stays about the same.
    """
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
    """The stage-1 VAE that :func:`run_variants` with these settings and this seed trains, inside a BrainLDM.

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


# ----------------------------------------------------------------------------- selection


def select(results: dict[str, VariantResult], *, metric: str = "ssim", higher_is_better: bool = True) -> str:
    """The variant with the best seed-mean *validation* metric (test numbers are never read)."""
    if not results:
        raise ValueError("select needs at least one variant")
    score = {n: r.seed_mean(metric, "val")[0] for n, r in results.items()}
    return (max if higher_is_better else min)(score, key=score.get)
