"""Which models were scored on the test trials and how often (planned vs exploratory comparisons), the prior models'
names and perception metrics, and decoder samples.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .. import claims
from ..ledger import TRIVIAL_REFERENCES


# ----------------------------------------------------------------------------- names, perception, test-set use


def prior_model_names(extra07: Mapping, *, n_fit: int, n_all: int) -> dict:
    """What chapter 07's selected model is called, at the fitting trials and refitted on all training trials.

    Chapter 07 names its models for what they compute (contract C5): ``extra["model_names"] = {"fit", "all"}`` and
    ``extra["selected_is_ldm"]`` (True only when the selected decoder samples with diffusion). Those are returned
    as they are. A record written before chapter 07 kept them gets names built here from its selected variant
    (map and decoding), with the trial counts ``n_fit`` / ``n_all`` of the data.

    Returns
    -------
    dict
        ``{"fit": str, "all": str, "is_ldm": bool, "what": str}``; ``what`` is the name without its trial count
        (for curves over trial counts).
    """
    import re

    def strip(name: str) -> str:
        return re.sub(r",?\s*\(?\d[\d,]*\s+trials\)?\s*$", "", name)

    names = extra07.get("model_names")
    if names and "fit" in names and "all" in names and "selected_is_ldm" in extra07:
        return {"fit": str(names["fit"]), "all": str(names["all"]), "is_ldm": bool(extra07["selected_is_ldm"]),
                "what": strip(str(names["fit"]))}
    v = extra07.get("selected_variant") or {}
    mode = (v.get("decode") or {}).get("mode", "direct")
    m = v.get("map") or {}
    voxels = f"{m['n_voxels']} voxels" if m.get("n_voxels") else "all voxels"
    what = (f"prior VAE + {m.get('kind', 'ridge')} map, {voxels} (diffusion off)" if mode == "direct" else
            f"prior LDM ({extra07.get('selected_on_validation', mode)}), {m.get('kind', 'ridge')} map, {voxels}")
    return {"fit": f"{what}, {n_fit} trials", "all": f"{what}, {n_all} trials", "is_ldm": mode != "direct",
            "what": what}


def with_perception(scores: Mapping[str, Mapping], recons: Mapping[str, np.ndarray], targets: np.ndarray,
                    labels: np.ndarray, *, perception, n_boot: int, seed: int = 0) -> dict:
    """Each model's scores with its perception metrics added.

    Parameters
    ----------
    scores : mapping of name -> {metric: {...}}
        Pixel metrics per model (e.g. :func:`ldm_core.metrics.evaluate`); left as they are.
    recons : mapping of name -> ndarray (N, S, S) or (K, N, S, S)
        Test reconstructions of the models to score (K seeds: per-image values averaged over seeds). A model of
        ``scores`` without reconstructions keeps its pixel metrics only.
    targets : ndarray (N, S, S); labels : ndarray (N,) of label codes
    perception : :class:`ldm_core.study.prior_study.Perception`
        Chapter 07's classifier (:func:`ldm_core.study.prior_study.perception_model`): its ``scores(recons, targets,
        labels, n_boot=, seed=)`` gives ``digit_acc``, ``feature_id2`` and ``kid_digit``
        (:func:`ldm_core.metrics.perception_metrics`), or NaN with a note when no classifier is available.

    Returns
    -------
    dict
        ``{name: {**scores[name], "digit_acc": ..., "feature_id2": ..., "kid_digit": ...}}`` in the order of
        ``scores``, then models only in ``recons``.
    """
    out = {n: dict(v) for n, v in scores.items()}
    for name, rec in recons.items():
        out.setdefault(name, {}).update(perception.scores(rec, targets, labels, n_boot=n_boot, seed=seed))
    return out


def ceiling_note(scores: Mapping[str, Mapping], metric: str = "digit_acc", *, ceiling: float = 1.0,
                 exclude: Sequence[str] = ()) -> dict:
    """How many models reach ``ceiling`` on ``metric`` (mean): ``{"n_at": k, "n": n, "at": [names]}``.

    Models without the metric (or with NaN) and those in ``exclude`` are not counted.
    """
    vals = {n: v[metric]["mean"] for n, v in scores.items() if n not in exclude and metric in v
            and np.isfinite(v[metric]["mean"])}
    at = [n for n, x in vals.items() if x >= ceiling - 1e-12]
    return {"n_at": len(at), "n": len(vals), "at": at}


FLOOR_NAMES = TRIVIAL_REFERENCES  # chapter 00's floors and the correct-class mean (one list: ldm_core.study.ledger)

# Baselines of chapters 07 / 08 that learn from the unpaired prior images (ldm_core.study.prior_study.baseline_decoders:
# a plain autoencoder trained on them, then a ridge map from fMRI to its code).
UNPAIRED_BASELINES = ("autoencoder + ridge",)


def is_reference(name: str) -> bool:
    """True for a model that decodes no fMRI or reads the test images: chapter 00's floors and the correct-class
    mean (:data:`FLOOR_NAMES`), VAE round trips and ceilings."""
    base = _seedless(name)
    low = base.lower()
    return base in FLOOR_NAMES or "round trip" in low or "ceiling" in low or "correct-class mean" in low


def _seedless(key: str) -> str:
    import re

    return re.sub(r"@seed\d+$", "", key)


def _seed_order(key: str) -> tuple[str, int]:
    """Sort key: the model, then its seed as a number (seed10 after seed2)."""
    import re

    m = re.search(r"@seed(\d+)$", key)
    return (_seedless(key), int(m.group(1)) if m else -1)


def chapter_label(chapter: str, *, max_length: int = 40) -> str:
    """A chapter as a table row reads it: its title (:func:`ldm_core.study.ledger.chapter_title`, e.g. "2. Phase 1.1: a
    real U-Net"), cut before its colon when longer than ``max_length`` ("8. Benchmarks", "0. Data and metrics");
    the internal name when the notebook is not found."""
    from ..ledger import chapter_title

    try:
        title = chapter_title(chapter)
    except FileNotFoundError:
        return chapter
    return title.split(":")[0] if len(title) > max_length and ":" in title else title


SAME_RECONSTRUCTION_ATOL = 1e-5  # two reconstructions this close everywhere come from one model (float round-off)
DECODERS = "decoders scored on the test trials"
NEW = "of them new (not in an earlier chapter)"
REFERENCES = "references (no fMRI, or reading the test images)"
TOTAL = "all chapters (distinct)"


def _count_models(recons: Mapping[str, np.ndarray], seen: list, seen_ref: list) -> tuple[int, int, int]:
    """One chapter's (decoders, new decoders, references); models not yet in ``seen`` / ``seen_ref`` are added."""
    def known(x: np.ndarray, pool: list[np.ndarray]) -> bool:
        return any(y.shape == x.shape and np.allclose(x, y, rtol=0.0, atol=SAME_RECONSTRUCTION_ATOL) for y in pool)

    groups: dict[str, list[str]] = {}
    for key in sorted(recons, key=_seed_order):
        groups.setdefault(_seedless(key), []).append(key)
    n_dec = n_new = n_ref = 0
    for model, keys in groups.items():
        arrays = [np.asarray(recons[k], dtype=np.float32) for k in keys]
        x = np.concatenate([a if a.ndim == 4 else a[None] for a in arrays])  # (K, N, S, S): every seed
        if is_reference(model):
            n_ref += 1
            if not known(x, seen_ref):
                seen_ref.append(x)
            continue
        n_dec += 1
        if not known(x, seen):
            n_new += 1
            seen.append(x)
    return n_dec, n_new, n_ref


def test_set_use(chapters: Mapping[str, Mapping[str, np.ndarray]], *, declared: Mapping[str, int] | None = None,
                 labels: Mapping[str, str] | None = None) -> tuple[pd.DataFrame, dict]:
    """How many models the study scores on the same test images.

    Parameters
    ----------
    chapters : mapping of chapter -> {model key: test reconstructions (N, S, S) or (K, N, S, S)}
        Each chapter's ``reconstructions.npz`` (:func:`ldm_core.study.results.load_results`), in chapter order; keys
        ``"<model>@seed<k>"`` are seeds of one model, as is one (K, N, S, S) array of K seeds.
    declared : mapping of chapter -> int, optional
        How many models a chapter says it scores on the test trials (e.g. chapter 07's ``extra.test_uses.models``,
        which counts leakage-guard settings whose reconstructions it does not keep). Those beyond the decoders it keeps
        are added to its decoders, and as new ones (they are other models); a chapter that keeps all adds nothing.
    labels : mapping of chapter -> str, optional
        Row labels (e.g. :func:`chapter_label`); default the chapter keys.

    Returns
    -------
    table : DataFrame
        One row per chapter: decoders scored on the test trials, of them not already scored by an earlier chapter,
        references (:func:`is_reference`); then a total row.
    counts : dict
        ``{"decoders", "references", "unstored", "per_chapter": {chapter: new decoders}}``: distinct models over all
        chapters (``unstored``: {chapter: decoders it scores without keeping their reconstructions}). Two entries whose
        reconstructions agree to within :data:`SAME_RECONSTRUCTION_ATOL` at every pixel of every seed are one model
        (e.g. a baseline that two chapters both report, refitted with float round-off of 1e-7).

    Raises
    ------
    ValueError
        If a ``declared`` count is negative or names a chapter not in ``chapters``.
    """
    declared = dict(declared or {})
    bad = {c: n for c, n in declared.items() if c not in chapters or int(n) < 0}
    if bad:
        raise ValueError(f"declared counts must be >= 0 and name chapters of the table {list(chapters)}; got {bad}")
    labels = dict(labels or {})
    seen, seen_ref = [], []  # one (K, N, S, S) array per distinct decoder / reference
    rows, per, unstored = {}, {}, {}
    for chapter, recons in chapters.items():
        n_dec, n_new, n_ref = _count_models(recons, seen, seen_ref)
        extra = max(0, int(declared[chapter]) - n_dec) if chapter in declared else 0
        if extra:
            unstored[chapter] = extra
        per[chapter] = n_new + extra
        rows[labels.get(chapter, chapter)] = {DECODERS: n_dec + extra, NEW: n_new + extra, REFERENCES: n_ref}
    n_decoders = len(seen) + sum(int(n) for n in unstored.values())
    rows[TOTAL] = {DECODERS: n_decoders, NEW: n_decoders, REFERENCES: len(seen_ref)}
    return (pd.DataFrame.from_dict(rows, orient="index").rename_axis("chapter"),
            {"decoders": n_decoders, "references": len(seen_ref), "unstored": unstored, "per_chapter": per})


PLANNED = "planned (fixed by the validation rule)"
EXPLORATORY = "exploratory"


def comparisons_table(planned: Mapping[str, Mapping[str, dict]], exploratory: Mapping[str, Mapping[str, dict]], *,
                      title: str = "per test image") -> pd.DataFrame:
    """:func:`ldm_core.study.claims.paired_table` of the planned comparison(s) first, then the exploratory ones, with a
    first column saying which is which (:data:`PLANNED`, :data:`EXPLORATORY`).

    Raises
    ------
    ValueError
        If a label is in both, or there is no comparison at all.
    """
    both = sorted(set(planned) & set(exploratory))
    if both:
        raise ValueError(f"comparison(s) {both} are both planned and exploratory")
    if not planned and not exploratory:
        raise ValueError("comparisons_table needs at least one comparison")
    table = claims.paired_table({**planned, **exploratory}, title=title)
    table.insert(0, "planned or exploratory",
                 [PLANNED if label in planned else EXPLORATORY for label in table.index.get_level_values(0)])
    return table


def earlier_reconstructions(inputs_root, chapters: Sequence[str]) -> tuple[dict[str, dict], list[str]]:
    """The test reconstructions of each chapter of ``chapters`` whose results exist under ``inputs_root``.

    Returns ``({chapter: {model key: (N, S, S)}}, [chapters without results])``; a results folder that exists but
    is damaged raises (:func:`ldm_core.study.results.load_results`).
    """
    from pathlib import Path

    from ..results import load_results

    found, missing = {}, []
    for c in chapters:
        folder = Path(inputs_root) / c
        if not (folder / "metrics.json").is_file():
            missing.append(c)
            continue
        found[c] = load_results(folder)[1]
    return found, missing


def comparison_roles(names: Sequence[str], *, planned: Sequence[str]) -> dict[str, dict[str, str]]:
    """``{name: {"comparison": "planned" | "exploratory" | "reference"}}`` for a table's extra column.

    ``planned``: the models of the one comparison fixed by the validation rule (the validation-selected
    model and the validation-selected baseline); references (:func:`is_reference`) are neither.
    """
    return {n: {"comparison": "planned" if n in planned else "reference" if is_reference(n) else "exploratory"}
            for n in names}


# ----------------------------------------------------------------------------- figures


def decoder_samples(decoder, fmri: np.ndarray, decode, *, n_show: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A diffusion decoder's samples for each trial, and its output made from exactly those samples.

    Parameters
    ----------
    decoder : :class:`ldm_core.prior_ldm.PriorBrainLDM`
    fmri : ndarray (N, V)
    decode : :class:`ldm_core.prior_ldm.DecodeConfig`
        A diffusion decoding (mode "refine" or "noise"); its ``n_samples`` samples are drawn per trial.
    n_show : int >= 1
        Samples kept for the figure (the first ``n_show`` of them).

    Returns
    -------
    dict
        ``"samples"`` (N, n_show, S, S): decoded samples; ``"output"`` (N, S, S): what the decoder returns from all
        ``decode.n_samples`` of them (the mean of the decoded images, or the decoded mean code when
        ``decode.average == "latent"``); ``"direct"`` (N, S, S): the predicted code decoded without diffusion.

    Raises
    ------
    ValueError
        If ``decode.mode`` is "direct" (no samples) or ``n_show`` < 1.
    """
    if decode.mode == "direct":
        raise ValueError("decoder_samples needs a diffusion decoding (mode 'refine' or 'noise'), got mode 'direct'")
    if n_show < 1:
        raise ValueError(f"n_show must be >= 1, got {n_show!r}")
    codes = decoder.sample_codes(fmri, decode, seed=seed)  # (N, n, d)
    N, n, d = codes.shape
    images = decoder.prior.decode(codes.reshape(N * n, d))
    images = np.asarray(images).reshape(N, n, *np.asarray(images).shape[1:])  # (N, n, S, S)
    output = (np.asarray(decoder.prior.decode(codes.mean(axis=1))) if decode.average == "latent"
              else images.mean(axis=1))
    direct = np.asarray(decoder.prior.decode(decoder.predicted_codes(fmri)))
    return {"samples": images[:, :min(n_show, n)], "output": output, "direct": direct}


def samples_figure(samples: np.ndarray, targets: np.ndarray, labels: np.ndarray, *, class_names=None,
                   mean: np.ndarray | None = None, mean_label: str | None = None,
                   beside: Mapping[str, np.ndarray] | None = None):
    """Targets, each sample, their mean and their per-pixel spread (own colour scale), one column per trial.

    Parameters
    ----------
    samples : ndarray (N, k, S, S), k >= 1 samples per trial
    mean : ndarray (N, S, S), optional
        The mean to show (e.g. the decoder's own output from more samples); default: the mean of ``samples``.
    mean_label : str, optional
        Its row label; default "mean of k".
    beside : mapping of row label -> ndarray (N, S, S), optional
        Rows shown after the mean (e.g. the direct decoding, without diffusion).
    """
    from ..plots import image_grid

    k = samples.shape[1]
    rows = {"target": targets, **{f"sample {j + 1}": samples[:, j] for j in range(k)},
            (mean_label or f"mean of {k}"): samples.mean(axis=1) if mean is None else mean,
            **dict(beside or {}), "std of the samples": samples.std(axis=1)}
    return image_grid(rows, labels=labels, class_names=class_names, colour_rows={"std of the samples": "magma"},
                      colour_labels={"std of the samples": "per-pixel std of the samples"})


def eps_budget_rows(findings: Mapping, *, schedule: str) -> dict[int, dict]:
    """Chapter 07's ε-against-x0 rows on the image prior's latents for one noise schedule, by training budget.

    Parameters
    ----------
    findings : mapping
        Chapter 07's ``extra["epsilon_findings"]``: ``rows`` keyed "eps, <schedule> schedule, <n> steps", each with
        ``difference`` (ε − x0 validation PSNR: mean, ci_low, ci_high), ``variance_ratio`` and ``runs_away``.
    schedule : str
        "linear" or "cosine".

    Returns
    -------
    dict
        ``{optimiser steps: row}``, fewest steps first; ``{}`` when chapter 07 measured none for that schedule.
    """
    import re

    out = {}
    for key, row in (findings.get("rows") or {}).items():
        m = re.fullmatch(rf"eps, {re.escape(schedule)} schedule, ([\d,]+) steps", key)
        if m and {"difference", "variance_ratio", "runs_away"} <= set(row):
            out[int(m.group(1).replace(",", ""))] = row
    return dict(sorted(out.items()))
