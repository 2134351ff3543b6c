"""A chapter's comparison: variants of one base configuration, screened on validation, the chosen ones over seeds.

Chapters 02-06 and the benchmark all follow the same protocol, which lives here once:

1. a **base** :class:`~ldm_core.study.experiment.Variant` and named variants, each the base with a few LDMConfig,
   TrainConfig or sampling fields changed (:meth:`Sweep.add`) -- change one field, as QuantEcon's
   ``McCallModel(β=β_new)`` does; a table of candidates (name -> changed fields, as in a chapter's parameters) is
   added with :meth:`Sweep.add_candidates`, which sorts each field into the config it belongs to and refuses a
   candidate whose name is already taken by a variant of other settings (a silently skipped candidate would be the
   base under another name);
2. every variant trained with the first seed and scored on the **validation** trials (:meth:`Sweep.screen`);
   the test trials are reconstructed too, but nothing here reads them for a choice;
3. each variant's per-image difference from the base on validation, with a bootstrap CI and a Wilcoxon test
   (:meth:`Sweep.effects`, using :func:`ldm_core.metrics.paired_comparison` -- the one estimator every chapter uses);
4. the variant with the best validation score (:meth:`Sweep.select`);
5. the chosen variants trained with every seed and scored once on the test trials (:meth:`Sweep.final`),
   seeds pooled per image (:meth:`Sweep.pooled`).

Runs are cached by :func:`~ldm_core.study.experiment.run_variants`, so a variant screened with seed 0 costs nothing
more when it joins the final comparison. :meth:`Sweep.pairs` finds the variants that differ in one field only (a
paired comparison that changes one thing), :meth:`Sweep.trainings` those that share a training;
:func:`describe_candidates` writes a candidates table for a reader.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from ..config import LDMConfig, TrainConfig
from .experiment import Variant, _groups, run_variants, select
from ..metrics import paired_comparison
from .runs import SAMPLING_DEFAULTS, VariantResult

__all__ = ["Sweep", "VAL_METRICS", "ALL_METRICS", "pooled_metrics", "effects_table", "split_changes",
           "variant_settings", "describe_changes", "describe_candidates"]

VAL_METRICS = ("psnr", "ssim", "pixel_r", "id2", "id2_within")
ALL_METRICS = ("psnr", "ssim", "pixel_r", "mse", "id2", "id2_within", "id10")


def pooled_metrics(result: VariantResult, *, split: str = "test", metrics: Sequence[str] = ALL_METRICS,
                   n_boot: int = 2000) -> dict[str, dict]:
    """``{metric: pooled}`` of :meth:`VariantResult.pooled` (per-image values averaged over seeds, CI over images)."""
    return {m: result.pooled(m, split, n_boot=n_boot) for m in metrics}


def split_changes(changes: Mapping) -> dict[str, dict]:
    """One candidate's changed fields sorted by where they belong: ``{"ldm": ..., "train": ..., "sampling": ...}``.

    Parameters
    ----------
    changes : mapping of str -> value
        Field -> value, each a field of :class:`~ldm_core.config.LDMConfig`, of
        :class:`~ldm_core.config.TrainConfig` or a sampling key (:data:`~ldm_core.study.runs.SAMPLING_DEFAULTS`), e.g.
        ``{"prediction": "x0", "n_samples": 8}``.

    Raises
    ------
    ValueError
        If a key is none of these (the valid keys are named), or ``changes`` is not a mapping.
    """
    if not isinstance(changes, Mapping):
        raise ValueError(f"a candidate's changes must be a mapping of field -> value, got {type(changes).__name__}")
    ldm_fields = {f.name for f in dataclasses.fields(LDMConfig)}
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    out: dict[str, dict] = {"ldm": {}, "train": {}, "sampling": {}}
    unknown = []
    for k, v in changes.items():
        part = ("sampling" if k in SAMPLING_DEFAULTS else "ldm" if k in ldm_fields
                else "train" if k in train_fields else None)
        if part is None:
            unknown.append(k)
        else:
            out[part][k] = v
    if unknown:
        raise ValueError(f"unknown candidate field(s) {sorted(unknown)}: each must be a sampling key "
                         f"{list(SAMPLING_DEFAULTS)}, an LDMConfig field {sorted(ldm_fields)} or a TrainConfig field "
                         f"{sorted(train_fields)}")
    return out


_PHRASES = {  # a candidate's field -> phrase for a reader (value inserted)
    "prediction": lambda v: "the U-Net predicts " + {"eps": "ε (the noise)", "x0": "x0 (the clean latent)"}.get(v, v),
    "n_samples": lambda v: "one sample per trial" if int(v) == 1 else f"the mean of {int(v)} samples per trial",
    "steps": lambda v: f"{int(v)} sampling steps",
    "guidance": lambda v: f"guidance scale {v:g}",
    "sampler": lambda v: f"{v} sampler",
}


def describe_changes(changes: Mapping) -> str:
    """One candidate's changed fields as a phrase: ``{"prediction": "x0", "n_samples": 8}`` -> "the U-Net predicts
    x0, the mean of 8 samples per trial"; a field without a phrase reads "<field in words> <value>"; an empty
    mapping reads "the base unchanged"."""
    parts = [_PHRASES[k](v) if k in _PHRASES else f"{k.replace('_', ' ')} {v}" for k, v in changes.items()]
    return ", ".join(parts) if parts else "the base unchanged"


def describe_candidates(candidates: Mapping[str, Mapping]) -> str:
    """A candidates table (name -> changed fields) for a parameter table: "name: phrase; ..." (:func:`describe_changes`).
    """
    return "; ".join(f"{name}: {describe_changes(changes)}" for name, changes in candidates.items())


def variant_settings(v: Variant) -> dict:
    """What a variant computes, resolved: its LDMConfig, its full TrainConfig (defaults filled in) and its full sampling
    settings. Two variants with equal settings produce the same runs."""
    return {"ldm_cfg": v.ldm_cfg.to_dict(), "train_cfg": TrainConfig.from_dict(v.train_cfg).to_dict(),
            "sampling": v.sample_cfg}


def _difference(a: Variant, b: Variant) -> dict:
    """``{field: (value in a, value in b)}`` for every resolved setting where the two variants differ."""
    sa, sb = variant_settings(a), variant_settings(b)
    return {k: (sa[part].get(k), sb[part].get(k)) for part in sa for k in sorted(set(sa[part]) | set(sb[part]))
            if sa[part].get(k) != sb[part].get(k)}


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
        Run cache (see :func:`~ldm_core.study.experiment.run_variants`).
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

    def add_candidates(self, candidates: Mapping[str, Mapping], *, of: str | None = None) -> list[str]:
        """Add every candidate: the base (or variant ``of``) with the candidate's fields changed.

        Each candidate's fields are sorted into LDMConfig, TrainConfig and sampling changes
        (:func:`split_changes`), so ``{"prediction": "x0", "n_samples": 8}`` changes what the U-Net predicts and
        how many samples are averaged. Candidates that differ only in sampling share one training per seed
        (:func:`~ldm_core.study.experiment.run_variants`).

        Parameters
        ----------
        candidates : mapping of str -> mapping
            Name -> changed fields (an empty mapping: the starting variant itself, under that name).
        of : str, optional
            The variant the changes apply to (default: the base).

        Returns
        -------
        list of str
            The candidates' names, in order: screen, tabulate and select over exactly these.

        Raises
        ------
        ValueError
            If ``candidates`` is empty, a field is unknown (:func:`split_changes`), or a candidate's name is already a
            variant of this sweep with other settings -- the name would otherwise stand for two configurations. A
            candidate equal in every setting to the variant of its name is that variant.
        """
        if not candidates:
            raise ValueError("add_candidates needs at least one candidate (name -> changed fields)")
        split = {name: split_changes(change) for name, change in candidates.items()}  # every field checked first
        for name, parts in split.items():
            wanted = self.variant(of=of, **parts)
            if name in self.variants:
                diff = _difference(wanted, self.variants[name])
                if diff:
                    shown = ", ".join(f"{k}: {a!r} (candidate) vs {b!r}" for k, (a, b) in diff.items())
                    raise ValueError(f"candidate {name!r} collides with the sweep's variant {name!r} of other settings "
                                     f"({shown}); give the base (or that variant) another name")
                continue
            self.variants[name] = wanted
        return list(candidates)

    def pairs(self, field: str, names: Iterable[str] | None = None) -> list[tuple[str, str]]:
        """The pairs of variants among ``names`` (default: every variant) whose resolved settings differ in ``field``
        only, each pair in the order of ``names`` -- e.g. the eps and x0 candidates with the same sampling, for a
        paired comparison that changes one thing.

        Raises
        ------
        KeyError
            If a name is not a variant of this sweep.
        """
        names = list(names) if names is not None else list(self.variants)
        missing = sorted(set(names) - set(self.variants))
        if missing:
            raise KeyError(f"unknown variant(s) {missing}; the sweep has {list(self.variants)}")
        return [(a, b) for i, a in enumerate(names) for b in names[i + 1:]
                if set(_difference(self.variants[a], self.variants[b])) == {field}]

    def trainings(self, names: Iterable[str] | None = None) -> list[list[str]]:
        """``names`` (default: every variant) grouped by the training they share (the same LDMConfig and TrainConfig;
        they differ in sampling only), in order of first appearance."""
        names = list(names) if names is not None else list(self.variants)
        return [list(g[2]) for g in _groups({n: self.variants[n] for n in names})]

    def screen(self, names: Iterable[str] | None = None) -> dict[str, VariantResult]:
        """Train ``names`` (default: every variant) with the first seed, unless already screened; returns their
        results (in the order of ``names``)."""
        names = list(names) if names is not None else None
        missing = sorted(set(names or ()) - set(self.variants))
        if missing:
            raise KeyError(f"unknown variant(s) {missing}; the sweep has {list(self.variants)}")
        todo = [n for n in (names or self.variants) if n not in self.screened]
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
        """The variant among ``names`` (default: every variant) with the best first-seed validation ``metric``
        (higher is better; test numbers unread). Only those variants are screened."""
        return select(self.screen(names), metric=metric)

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
    from .names import ci_text, metric_label

    rows = {n: {f"Δ {metric_label(m)}": ci_text(c, digits, sign=True) for m, c in per.items()}
            for n, per in effects.items()}
    return pd.DataFrame.from_dict(rows, orient="index")

