"""The week-1 sweep, compute and sampling-steps tables, and the spread of spatial samples.
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ...metrics import bootstrap_ci, evaluate
from ..names import metric_label
from ...splits import StudyData


# ----------------------------------------------------------------------------- the week-1 sweep and compute


def week1_sweep(data: StudyData, ldm_cfg, train_cfg: dict, *, lrs: Sequence[float], batch_sizes: Sequence[int],
                encoder_dims: Sequence[int], sample_cfg: dict, select_metric: str, **run_kw) -> dict[tuple, float]:
    """The report's week-1 grid on one seed: ``{(lr, batch_size, encoder_dim): validation select_metric}``.

    Each cell is ``ldm_cfg`` with ``encoder_dim`` and ``train_cfg`` with ``lr`` / ``batch_size`` replaced;
    ``run_kw`` goes to :func:`ldm_core.study.experiment.run_variants` (cache, bootstrap, executor).
    """
    from ...config import LDMConfig
    from ..experiment import Variant, run_variants

    grid = {(g, int(bs), int(d)): Variant(LDMConfig.from_dict({**ldm_cfg.to_dict(), "encoder_dim": int(d)}),
                                         {**train_cfg, "lr": g, "batch_size": int(bs)}, dict(sample_cfg))
            for d in encoder_dims for bs in batch_sizes for g in lrs}
    runs = run_variants({f"lr={g:g}, batch={bs}, dim={d}": v for (g, bs, d), v in grid.items()}, data, seeds=[0],
                        **run_kw)
    return {k: r.seed_mean(select_metric, "val")[0] for k, r in zip(grid, runs.values())}


def grid_edges(best: Sequence, axes: Sequence[Sequence]) -> list[int]:
    """The axes on which ``best`` (one value per axis) sits at the edge of its grid: its smallest or largest value.

    An axis with one value is an edge too: a grid of one value cannot bracket anything. A best cell at an edge says
    that the grid does not bracket the optimum along that axis.

    Parameters
    ----------
    best : sequence
        The best cell, e.g. ``(lr, batch_size, encoder_dim)``.
    axes : sequence of sequences
        The values of each axis, in the same order.

    Returns
    -------
    list of int
        Indices of the axes where ``best`` is the smallest or largest value.

    Raises
    ------
    ValueError
        If ``best`` and ``axes`` differ in length, or a value of ``best`` is not on its axis.
    """
    if len(best) != len(axes):
        raise ValueError(f"best has {len(best)} values but there are {len(axes)} axes")
    out = []
    for i, (b, axis) in enumerate(zip(best, axes)):
        values = sorted(axis)
        if b not in values:
            raise ValueError(f"value {b!r} of axis {i} is not on that axis {values}")
        if len(values) == 1 or b in (values[0], values[-1]):
            out.append(i)
    return out


def format_seconds(seconds: float | None) -> str:
    """A duration for a table, in seconds with sensible precision: "< 0.01", "0.39", "2.0", "116", "1,234";
    "not recorded" for None or NaN (runs cached before timings were kept)."""
    if seconds is None or not np.isfinite(seconds):
        return "not recorded"
    s = float(seconds)
    if s < 0.01:
        return "< 0.01"
    if s < 1:
        return f"{s:.2f}"
    if s < 10:
        return f"{s:.1f}"
    return f"{s:,.0f}"


def device_label(device: str) -> str:
    """A device as a reader reads it: "cpu (1 threads)" -> "CPU, 1 thread"; "cpu (2 threads)" -> "CPU, 2 threads";
    "cuda (NVIDIA H100 80GB HBM3)" -> "GPU (NVIDIA H100 80GB HBM3)"; "mps" -> "Apple GPU (MPS)"; other text
    unchanged."""
    import re

    text = str(device).strip()
    m = re.fullmatch(r"cpu(?:\s*\((\d+)\s*threads?\))?", text, flags=re.IGNORECASE)
    if m:
        n = m.group(1)
        return "CPU" if n is None else f"CPU, {int(n)} thread{'' if int(n) == 1 else 's'}"
    m = re.fullmatch(r"cuda(?::\d+)?(?:\s*\((.*)\))?", text, flags=re.IGNORECASE)
    if m:
        return f"GPU ({m.group(1)})" if m.group(1) else "GPU"
    if text.lower() == "mps":
        return "Apple GPU (MPS)"
    return text


def compute_table(models: Mapping[str, object], notes: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Parameters, training and reconstruction seconds (means over seeds) and device per model.

    models : {name: :class:`~ldm_core.study.runs.VariantResult`}; notes : {name: text appended to its training time}.
    Seconds are written by :func:`format_seconds`, devices by :func:`device_label`.
    """
    rows = {}
    for name, res in models.items():
        runs, note = res.runs, (notes or {}).get(name)
        train_s = [r.train_time_s for r in runs if r.train_time_s is not None]
        recon_s = [r.recon_test_s for r in runs if r.recon_test_s is not None]
        train = format_seconds(np.mean(train_s) if train_s else None)
        rows[name] = {"parameters": f"{runs[0].n_parameters['total']:,}",
                      "training per seed (s)": f"{train} ({note})" if note else train,
                      "reconstructing the test trials (s)": format_seconds(np.mean(recon_s) if recon_s else None),
                      "device": device_label(runs[0].device)}
    return pd.DataFrame(rows).T.rename_axis("model")


def sampling_steps(model, data: StudyData, steps_grid: Sequence[int], *, sample_cfg: dict, n_boot: int,
                   metrics: Sequence[str] = ("psnr", "ssim", "pixel_r")) -> dict[int, dict]:
    """Reconstruction time and validation quality of a trained :class:`~ldm_core.pipeline.BrainLDM` per number of
    DDIM steps.

    Parameters
    ----------
    model : BrainLDM
        Trained (e.g. seed 0 of the selected spatial LDM).
    data : StudyData
    steps_grid : sequence of int
        Step counts, each in [1, the model's training steps].
    sample_cfg : dict
        The run's sampling settings (guidance, n_samples, sampler); its ``steps`` is replaced by each step count.

    Returns
    -------
    dict
        ``{steps: {"seconds": seconds to reconstruct the test trials (after one warm-up call), metric: evaluate()
        output on the validation trials}}``, in the order of ``steps_grid``.
    """
    sample_cfg = {k: v for k, v in sample_cfg.items() if k != "steps"}
    model.reconstruct(data.fmri_test[:1], steps=2)  # warm-up
    out = {}
    for s in steps_grid:
        t = time.perf_counter()
        model.reconstruct(data.fmri_test, steps=int(s), seed=0, **sample_cfg)
        dt = time.perf_counter() - t
        ev = evaluate(model.reconstruct(data.fmri_val, steps=int(s), seed=0, **sample_cfg), data.images_val,
                      data.labels_val, n_boot=n_boot, n_perm=0)
        out[int(s)] = {"seconds": float(dt), **{m: ev[m] for m in metrics}}
    return out


def sampling_steps_table(steps: Mapping[int, dict], *, n_test: int) -> pd.DataFrame:
    """:func:`sampling_steps` as a page table: one row per step count, the seconds for the ``n_test`` test trials
    (:func:`format_seconds`) and each validation mean (PSNR to 2 decimals, the others to 3)."""
    rows = {}
    for s, r in steps.items():
        row = {f"reconstructing {n_test} test trials (s)": format_seconds(r["seconds"])}
        for m, v in r.items():
            if m != "seconds":
                row[f"validation {metric_label(m, short=True)}"] = f"{v['mean']:.{2 if m == 'psnr' else 3}f}"
        rows[int(s)] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def steps_range(steps: Mapping[int, dict], metric: str = "psnr") -> float:
    """Largest minus smallest validation mean of ``metric`` over the step counts of :func:`sampling_steps` (0 for
    one step count): how much the number of sampling steps changes the result."""
    values = [float(r[metric]["mean"]) for r in steps.values()]
    return float(max(values) - min(values)) if values else float("nan")


# ----------------------------------------------------------------------------- does a decoder use diffusion?

NEGLIGIBLE_SPREAD = 0.05
"""Samples of one trial whose spread (:func:`sample_spread`) is below this share of the spread between the trials'
images are, for any practical purpose, one image: the sampler's starting noise does not change the output, so the
decoder is in effect a deterministic regressor from fMRI, not a sampler (a convention of this study, stated where
used)."""


def spatial_samples(model, fmri: np.ndarray, *, n_samples: int, sample_cfg: Mapping, seed: int = 0) -> np.ndarray:
    """``n_samples`` samples per trial of a trained :class:`~ldm_core.pipeline.BrainLDM`, each from its own starting
    noise, with a run's sampling settings (``steps``, ``guidance``, ``sampler``; its ``n_samples`` is replaced).

    Returns
    -------
    ndarray (N, n_samples, S, S), float32 in [0, 1]
    """
    kw = {k: sample_cfg[k] for k in ("steps", "guidance", "sampler") if sample_cfg.get(k) is not None}
    return np.asarray(model.reconstruct(fmri, n_samples=int(n_samples), average=False, seed=seed, **kw))


def sample_spread(samples: np.ndarray, targets: np.ndarray, *, n_boot: int = 2000, seed: int = 0) -> dict:
    """How much a decoder's samples of one trial differ, against how much the trials' own images differ.

    Parameters
    ----------
    samples : ndarray (N, K, S, S), K >= 2
        K samples per trial, each from its own starting noise (:func:`spatial_samples`,
        :func:`ldm_core.study.benchmark.decoder_samples`).
    targets : ndarray (N, S, S)
        The trials' images.

    Returns
    -------
    dict
        ``mean``: the per-pixel standard deviation over the K samples, averaged over pixels and then over trials
        (image units, [0, 1] scale); ``ci_low``, ``ci_high``: its 95% bootstrap CI over trials; ``per_trial`` (N,);
        ``between_trials``: the per-pixel standard deviation of ``targets`` across the N trials, averaged over
        pixels (how much the images differ from one another); ``share``: ``mean / between_trials``;
        ``negligible``: ``share`` < :data:`NEGLIGIBLE_SPREAD`; ``n_samples`` K; ``n_trials`` N.

    Raises
    ------
    ValueError
        If ``samples`` is not (N, K, S, S) with K >= 2, or ``targets`` is not (N, S, S) for the same N and S.
    """
    samples, targets = np.asarray(samples, dtype=np.float64), np.asarray(targets, dtype=np.float64)
    if samples.ndim != 4 or samples.shape[1] < 2:
        raise ValueError(f"samples must have shape (N, K, S, S) with K >= 2 samples per trial, got {samples.shape}")
    if targets.shape != (samples.shape[0], *samples.shape[2:]):
        raise ValueError(f"targets must have shape {(samples.shape[0], *samples.shape[2:])} (one image per trial), "
                         f"got {targets.shape}")
    per_trial = samples.std(axis=1).mean(axis=(1, 2))  # (N,)
    lo, hi = bootstrap_ci(per_trial, n_boot=n_boot, seed=seed)
    between = float(targets.std(axis=0).mean())
    mean = float(per_trial.mean())
    share = mean / between if between > 0 else float("nan")
    return {"mean": mean, "ci_low": lo, "ci_high": hi, "per_trial": per_trial.tolist(), "between_trials": between,
            "share": share, "negligible": bool(share < NEGLIGIBLE_SPREAD), "n_samples": int(samples.shape[1]),
            "n_trials": int(samples.shape[0])}


def stage_steps(history: Mapping, stage: str = "diffusion") -> int:
    """Optimiser steps a training spent in ``stage``, from its history (columns ``stage`` and ``steps`` per epoch,
    :class:`~ldm_core.study.runs.Run`); 0 when the stage did not run or the history has no step counts."""
    stages, steps = history.get("stage") or [], history.get("steps") or []
    return int(sum(int(n) for st, n in zip(stages, steps) if st == stage))


def chapter01_x0_errors(metrics01: Mapping, *, n_fit: int | None = None) -> dict:
    """What chapter 01 measured about the x0 estimate of its denoisers on the validation latents (its section 7).

    Chapter 01 probes the fully fixed model (the fixed preset, which predicts eps), the same model trained longer,
    and the same model predicting x0: at each probed timestep t, the mean squared error of the x0 estimate in units
    of the latents' variance, beside the exact denoiser of a Gaussian with the latents' statistics. An
    eps-predictor's x0 estimate divides by sqrt(abar_t), so at high t a small eps error becomes a huge x0 error, and
    DDIM carries it into the sample.

    Parameters
    ----------
    metrics01 : mapping
        Chapter 01's ``metrics.json`` (``extra.x0_error_val``; ``extra.x0_error_models`` when chapter 01 records each
        model's prediction, schedule and optimiser steps; else ``extra.summary`` and ``params`` for the models it
        holds).
    n_fit : int, optional
        Fitting trials, to count the optimiser steps of a model chapter 01 summarises but does not count.

    Returns
    -------
    dict
        ``{"t_low", "t_high", "models": {name: {"prediction": "eps" | "x0", "schedule": str | None,
        "optimiser_steps": int | None, "x0_error": {t: value}, "x0_error_gaussian": {t: value}}}}``, models in
        chapter 01's order; ``{}`` when chapter 01's results hold no such measurement.
    """
    import math

    extra = metrics01.get("extra", {}) or {}
    errors = extra.get("x0_error_val") or {}
    if not errors:
        return {}
    recorded = extra.get("x0_error_models") or {}
    summary = extra.get("summary") or {}
    models = {}
    for name, rows in errors.items():
        info = dict(recorded.get(name) or {})
        entry = summary.get(name) or {}
        ldm, train = entry.get("ldm_cfg") or {}, entry.get("train_cfg") or {}
        prediction = info.get("prediction") or ldm.get("prediction") or ("x0" if "x0" in name else "eps")
        steps = info.get("optimiser_steps")
        if steps is None and n_fit and train.get("epochs") and train.get("batch_size"):
            steps = int(train["epochs"]) * math.ceil(n_fit / int(train["batch_size"]))
        models[name] = {"prediction": prediction, "schedule": info.get("schedule") or ldm.get("schedule"),
                        "optimiser_steps": steps,
                        "x0_error": {int(r["t"]): float(r["x0 error, model"]) for r in rows},
                        "x0_error_gaussian": {int(r["t"]): float(r["x0 error, Gaussian denoiser"]) for r in rows}}
    ts = sorted({t for m in models.values() for t in m["x0_error"]})
    return {"t_low": ts[0], "t_high": ts[-1], "models": models}
