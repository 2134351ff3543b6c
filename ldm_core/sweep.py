"""A chapter's comparison: variants of one base configuration, screened on validation, the chosen ones over seeds.

Chapters 02-06 and the benchmark all follow the same protocol, which lives here once:

1. a **base** :class:`~ldm_core.experiment.Variant` and named variants, each the base with a few LDMConfig,
   TrainConfig or sampling fields changed (:meth:`Sweep.add`) -- change one field, as QuantEcon's
   ``McCallModel(β=β_new)`` does;
2. every variant trained with the first seed and scored on the **validation** trials (:meth:`Sweep.screen`);
   the test trials are reconstructed too, but nothing here reads them for a choice;
3. each variant's per-image difference from the base on validation, with a bootstrap CI and a Wilcoxon test
   (:meth:`Sweep.effects`, using :func:`ldm_core.metrics.paired_comparison` -- the one estimator every chapter uses);
4. the variant with the best validation score (:meth:`Sweep.select`);
5. the chosen variants trained with every seed and scored once on the test trials (:meth:`Sweep.final`),
   seeds pooled per image (:meth:`Sweep.pooled`).

Runs are cached by :func:`~ldm_core.experiment.run_variants`, so a variant screened with seed 0 costs nothing
more when it joins the final comparison.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from .config import LDMConfig
from .experiment import Variant, run_variants, select
from .metrics import paired_comparison
from .runs import VariantResult

__all__ = ["Sweep", "VAL_METRICS", "ALL_METRICS", "pooled_metrics", "effects_table"]

VAL_METRICS = ("psnr", "ssim", "pixel_r", "id2", "id2_within")
ALL_METRICS = ("psnr", "ssim", "pixel_r", "mse", "id2", "id2_within", "id10")


def pooled_metrics(result: VariantResult, *, split: str = "test", metrics: Sequence[str] = ALL_METRICS,
                   n_boot: int = 2000) -> dict[str, dict]:
    """``{metric: pooled}`` of :meth:`VariantResult.pooled` (per-image values averaged over seeds, CI over images)."""
    return {m: result.pooled(m, split, n_boot=n_boot) for m in metrics}


class Sweep:
    """Variants of one base configuration (see the module docstring).

    Parameters
    ----------
    data : StudyData
        The chapter's split (:func:`ldm_core.splits.prepare_data`).
    base : Variant
        The configuration every variant starts from.
    base_name : str
        Its name in tables.
    seeds : sequence of int
        Seeds of the final comparison; the screen uses ``seeds[0]``.
    cache_dir : path, optional
        Run cache (see :func:`~ldm_core.experiment.run_variants`).
    n_boot, n_perm : int
        Bootstrap resamples for CIs; permutations for the identification p-values of each run.
    keep_models : bool
        Keep trained models on disk (for chapters that reuse a model after the sweep).

    Attributes
    ----------
    variants : dict of str -> Variant
        The base first, then every added variant, in order.
    screened : dict of str -> VariantResult
        Results of :meth:`screen` (first seed).
    """

    def __init__(self, data, base: Variant, *, base_name: str = "base", seeds: Sequence[int],
                 cache_dir: str | Path | None = None, n_boot: int = 2000, n_perm: int = 0,
                 keep_models: bool = False, progress: bool = True) -> None:
        if not seeds:
            raise ValueError("Sweep needs at least one seed")
        self.data, self.base_name = data, base_name
        self.seeds = list(seeds)
        self.run_kw = dict(cache_dir=cache_dir, n_boot=n_boot, n_perm=n_perm, keep_models=keep_models,
                           progress=progress)
        self.n_boot = n_boot
        self.variants: dict[str, Variant] = {base_name: base}
        self.screened: dict[str, VariantResult] = {}

    @property
    def base(self) -> Variant:
        return self.variants[self.base_name]

    def variant(self, *, ldm: Mapping | None = None, train: Mapping | None = None,
                sampling: Mapping | None = None, of: str | None = None) -> Variant:
        """The base (or variant ``of``) with LDMConfig fields ``ldm``, TrainConfig fields ``train`` and sampling
        keys ``sampling`` changed (checked: an unknown field raises, naming the valid ones)."""
        start = self.variants[of or self.base_name]
        cfg = LDMConfig.from_dict({**start.ldm_cfg.to_dict(), **dict(ldm or {})}) if ldm else start.ldm_cfg
        return Variant(cfg, {**start.train_cfg, **dict(train or {})}, {**start.sampling, **dict(sampling or {})})

    def add(self, name: str, *, ldm: Mapping | None = None, train: Mapping | None = None,
            sampling: Mapping | None = None, of: str | None = None) -> Variant:
        """Add the variant ``name`` (see :meth:`variant`); returns it.

        Raises
        ------
        ValueError
            If ``name`` is taken.
        """
        if name in self.variants:
            raise ValueError(f"variant name {name!r} is already used in this sweep")
        self.variants[name] = self.variant(ldm=ldm, train=train, sampling=sampling, of=of)
        return self.variants[name]

    def screen(self, names: Iterable[str] | None = None) -> dict[str, VariantResult]:
        """Train ``names`` (default: every variant not yet screened) with the first seed; returns those results."""
        todo = [n for n in (names or self.variants) if names is not None or n not in self.screened]
        missing = sorted(set(todo) - set(self.variants))
        if missing:
            raise KeyError(f"unknown variant(s) {missing}; the sweep has {list(self.variants)}")
        if todo:
            self.screened.update(run_variants({n: self.variants[n] for n in todo}, self.data, seeds=self.seeds[:1],
                                              **self.run_kw))
        return {n: self.screened[n] for n in (names or self.variants)}

    def table(self, names: Iterable[str] | None = None, *, split: str = "val",
              metrics: Sequence[str] = VAL_METRICS) -> dict[str, dict]:
        """``{variant: {metric: pooled}}`` of the screened runs (first seed) on ``split``, for tables and plots."""
        results = self.screen(names) if names is not None else self.screen()
        return {n: pooled_metrics(r, split=split, metrics=metrics, n_boot=self.n_boot) for n, r in results.items()}

    def effects(self, names: Iterable[str] | None = None, *, metrics: Sequence[str] = ("psnr", "ssim", "pixel_r"),
                split: str = "val", against: str | None = None) -> dict[str, dict[str, dict]]:
        """Each variant minus ``against`` (default: the base), per image, first seed: ``{variant: {metric: comparison}}``.

        Each comparison is :func:`ldm_core.metrics.paired_comparison` of the per-image values (mean difference,
        bootstrap 95% CI, Wilcoxon p).
        """
        ref = against or self.base_name
        results = self.screen()
        names = [n for n in (names or results) if n != ref]
        r0 = results[ref]
        return {n: {m: paired_comparison(results[n].pooled(m, split)["per_image"], r0.pooled(m, split)["per_image"],
                                         n_boot=self.n_boot) for m in metrics} for n in names}

    def select(self, metric: str, names: Iterable[str] | None = None) -> str:
        """The variant with the best first-seed validation ``metric`` (higher is better; test numbers unread)."""
        results = self.screen()
        return select({n: results[n] for n in (names or results)}, metric=metric)

    def final(self, names: Iterable[str]) -> dict[str, VariantResult]:
        """Train ``names`` (duplicates dropped, order kept) with every seed; the first seed comes from the cache."""
        names = list(dict.fromkeys(names))
        return run_variants({n: self.variants[n] for n in names}, self.data, seeds=self.seeds, **self.run_kw)

    def pooled(self, results: Mapping[str, VariantResult], *, split: str = "test",
               metrics: Sequence[str] = ALL_METRICS) -> dict[str, dict]:
        """``{variant: {metric: pooled}}`` over all seeds of ``results`` on ``split``."""
        return {n: pooled_metrics(r, split=split, metrics=metrics, n_boot=self.n_boot) for n, r in results.items()}

    def configs(self) -> dict[str, dict]:
        """``{variant: {"ldm_cfg", "train_cfg", "sampling"}}`` for the results files."""
        return {n: {"ldm_cfg": v.ldm_cfg.to_dict(), "train_cfg": dict(v.train_cfg), "sampling": dict(v.sampling)}
                for n, v in self.variants.items()}


def effects_table(effects: Mapping[str, Mapping[str, dict]], *, digits: int = 3) -> pd.DataFrame:
    """:meth:`Sweep.effects` as a table: one row per variant, 'difference [95% CI]' per metric."""
    from .names import metric_label

    rows = {n: {f"Δ {metric_label(m)}": f"{c['mean']:+.{digits}f} [{c['ci_low']:+.{digits}f}, {c['ci_high']:+.{digits}f}]"
                for m, c in per.items()} for n, per in effects.items()}
    return pd.DataFrame.from_dict(rows, orient="index")

