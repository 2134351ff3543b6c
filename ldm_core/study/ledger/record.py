"""The trajectory of validation-selected models, the executive summary's headline rows, the final model and its
reconstructions, and the data's and prior's descriptions.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..names import model_label
from .base import BENCHMARKS, DATA, PRIOR, _load, data_facts
from .rows import _pooled, _selected, headline_decoders


# ----------------------------------------------------------------------------- trajectory, headline, final model

# (stage label, chapter, report phase whose expectation applies); the model is the chapter's validation-selected one
TRAJECTORY = (
    ("original", "01_diagnostics", "original"),
    ("phase 1.1 U-Net", "02_unet_fix", "phase1"),
    ("phase 1.2 loss", "03_loss_function", "phase1"),
    ("phase 1.3 encoder", "04_fmri_encoder", "phase1"),
    ("phase 2 conditioning / VAE", "05_conditioning_vae", "phase2"),
    ("phase 3 augmentation", "06_augmentation_multiscale", "phase3"),
    ("image prior (beyond claim 13's premise)", "07_image_prior", "limit90"),
)


def trajectory(root=None, *, metrics=("psnr", "ssim", "pixel_r")) -> pd.DataFrame:
    """Measured test metrics of each chapter's validation-selected model beside the report's expected range.

    One row per stage of :data:`TRAJECTORY` (chapter 01: the reproduced original; chapter 07: its selected model with
    the map refitted on all training trials, shown beside the report's "best possible with 90 samples" for reference
    only: it also learns from unpaired images, beyond claim 13's premise, rule g); columns
    ``<metric>``, ``<metric>_lo``, ``<metric>_hi`` (measured mean and 95% CI) and ``<metric>_expected`` (the report's
    range, quoted); ``same_as`` names the earlier stage whose model it is again (identical per-image test scores of the
    first metric: a chapter that keeps an earlier chapter's model), "" otherwise.
    """
    from ..claims import REPORT_EXPECTATIONS

    rows, per_image = [], {}
    for stage, chapter, phase in TRAJECTORY:
        res = _load(chapter, root)
        if chapter == "01_diagnostics":
            name, entry = "original", res["extra"]["summary"]["original"]
        elif chapter == PRIOR and _refitted_name(res["extra"]) in res["extra"].get("summary", {}):
            name = _refitted_name(res["extra"])
            entry = res["extra"]["summary"][name]
        else:
            name, entry = _selected(res)
        mine = np.asarray(_pooled(entry, metrics[0]).get("per_image", []), dtype=float)
        same = [st for st, v in per_image.items() if v.shape == mine.shape and mine.size and np.allclose(v, mine)]
        per_image[stage] = mine
        row = {"stage": stage, "chapter": chapter, "model": name, "phase": phase, "same_as": same[0] if same else ""}
        for m in metrics:
            p = _pooled(entry, m)
            row.update({m: p["mean"], f"{m}_lo": p["ci_low"], f"{m}_hi": p["ci_high"],
                        f"{m}_expected": REPORT_EXPECTATIONS[phase][m]})
        rows.append(row)
    return pd.DataFrame(rows)


def _refitted_name(x07: dict):
    """Chapter 07's selected model refitted on all training trials (key ``selected_all``; older results:
    ``selected_90``, the same model)."""
    return x07.get("selected_all", x07.get("selected_90"))


def headline_rows(root=None) -> dict[str, dict]:
    """The executive summary's rows: the reproduced original (chapter 01) and chapter 08's headline rows.

    Returns ``{model: {metric: pooled}}`` (reader names), the study's best model first.

    Raises
    ------
    KeyError
        If chapter 08's results hold no headline rows (the chapter to re-run is named).
    """
    ch01, bench = _load("01_diagnostics", root), _load(BENCHMARKS, root)
    rows = bench.get("extra", {}).get("headline_rows")
    if not rows:
        raise KeyError(f"chapter {BENCHMARKS}'s results hold no extra['headline_rows']: re-run {BENCHMARKS}")
    best = bench["extra"].get("best_model")
    orig = ch01["extra"]["summary"]["original"]
    out = {}
    if best in rows:
        out[best] = rows[best]
    out[f"original Brain LDM (reproduced, {len(orig['seeds'])} seeds)"] = orig["test"]
    out.update({k: v for k, v in rows.items() if k != best})
    return out


def baseline_references(headline: dict, *, baselines=("ridge", "latent ridge"),
                        metrics=("psnr", "ssim", "pixel_r")) -> dict[str, dict[str, float]]:
    """Reference lines for the trajectory figure: each baseline's test means at its largest number of trials.

    ``headline`` is chapter 08's ``extra["headline_rows"]`` (keys such as "ridge regression to pixels, 90 trials");
    a baseline is found by its reader name (:func:`ldm_core.study.names.model_label`) and the trial count in its key, never
    a typed count. Returns ``{"<reader name> (<n> trials)": {metric: mean}}``; a baseline absent from ``headline`` is
    left out.
    """
    out = {}
    for b in baselines:
        label = model_label(b)
        found = [(int(m.group(1)), k) for k in headline if str(k).startswith(label + ",")
                 and (m := re.search(r"(\d+) trials", str(k)))]
        if found:
            n, key = max(found)
            out[f"{label} ({n} trials)"] = {m: float(headline[key][m]["mean"]) for m in metrics if m in headline[key]}
    return out


def final_model(root=None) -> dict:
    """What the study's final model is, from chapters 07 (contract C5) and 08.

    Returns
    -------
    dict
        ``name`` (chapter 08's best model, named for what it computes), ``is_ldm`` (True only when it samples with
        diffusion), ``model_names`` (chapter 07's ``{"fit", "all"}``), ``uses_unpaired_images`` and ``fitted_on``
        (the paired trials it learned from; chapter 08's record of each headline decoder), ``refitted_on_all`` (it
        learned from all training trials), ``test`` (its test metrics, seeds pooled), ``baseline`` (the best
        baseline chosen on validation), ``baseline_row`` (its headline row, fitted like the final model),
        ``baseline_uses_unpaired_images``, ``paired`` (``{metric: paired comparison}`` final minus baseline on the
        test images), ``n_prior_images``, ``recons_key`` (its first seed's key in chapter 08's
        reconstructions) and ``baseline_recons_key`` (the best baseline's key there).

    Raises
    ------
    KeyError
        If chapter 07's results lack ``model_names`` / ``selected_is_ldm`` (re-run chapter 07), or chapter 08's lack
        the best model, whether it samples with diffusion, its baseline comparison or what its decoders learned
        from (re-run 08).
    """
    x07, x08 = _load(PRIOR, root).get("extra", {}), _load(BENCHMARKS, root).get("extra", {})
    missing = [k for k in ("model_names", "selected_is_ldm") if k not in x07]
    if missing:
        raise KeyError(f"chapter {PRIOR}'s results lack extra{missing} (contract C5: the selected decoder's names and "
                       f"whether it samples with diffusion): re-run {PRIOR}")
    missing = [k for k in ("best_model", "best_model_test", "best_model_is_ldm", "best_baseline_val", "best_baseline",
                           "paired_test", "paired_best") if k not in x08]
    if missing:
        raise KeyError(f"chapter {BENCHMARKS}'s results lack extra{missing}: re-run {BENCHMARKS}")
    if x08["paired_best"] not in x08["paired_test"]:
        raise KeyError(f"chapter {BENCHMARKS}'s paired_test holds no comparison {x08['paired_best']!r}: re-run "
                       f"{BENCHMARKS}")
    decoders = headline_decoders(root)
    name, base_row = x08["best_model"], x08["best_baseline"]
    for row in (name, base_row):
        if row not in decoders or decoders[row]["reference"]:
            raise KeyError(f"chapter {BENCHMARKS}'s headline rows hold no decoder {row!r} (its best model or best "
                           f"baseline): re-run {BENCHMARKS}")
    n_train = int(data_facts(root)["n_train"])
    base_key = x08.get("baseline_keys", {}).get(base_row, {}).get("results_key")
    if base_key is None:
        raise KeyError(f"chapter {BENCHMARKS}'s results do not say under which key its best baseline {base_row!r} is "
                       f"stored (extra['baseline_keys'][...]['results_key']): re-run {BENCHMARKS}")
    return {"name": name, "is_ldm": bool(x08["best_model_is_ldm"]), "model_names": dict(x07["model_names"]),
            "uses_unpaired_images": decoders[name]["uses_unpaired_images"],
            "fitted_on": decoders[name]["fitted_on"], "refitted_on_all": decoders[name]["fitted_on"] == n_train,
            "test": x08["best_model_test"], "baseline": x08["best_baseline_val"], "baseline_row": base_row,
            "baseline_uses_unpaired_images": decoders[base_row]["uses_unpaired_images"],
            "paired": x08["paired_test"][x08["paired_best"]],
            "n_prior_images": x07.get("prior_images", {}).get("n_images"), "recons_key": f"{name}@seed0",
            "baseline_recons_key": base_key}


def model_reconstructions(recons: dict, key: str, *, chapter: str = BENCHMARKS):
    """The reconstructions stored under exactly ``key`` in a chapter's ``reconstructions.npz`` (no other model's
    images in its place).

    Raises
    ------
    KeyError
        If ``key`` is absent: names the keys that start like it and the chapter to re-run.
    """
    if key not in recons:
        stem = str(key).split("@")[0].split(",")[0]
        near = sorted(k for k in recons if str(k).startswith(stem))
        raise KeyError(f"chapter {chapter}'s reconstructions hold no {key!r}" + (f" (similar keys: {near})" if near else "")
                       + f": re-run {chapter}")
    return recons[key]


def prior_description(root=None) -> str:
    """What chapter 07's unpaired prior images are, in words ("unpaired MNIST digits"; ``extra["prior_phrase"]``).

    Raises
    ------
    KeyError
        If chapter 07's results lack it (re-run 07).
    """
    x07 = _load(PRIOR, root).get("extra", {})
    if not x07.get("prior_phrase"):
        raise KeyError(f"chapter {PRIOR}'s results lack extra['prior_phrase'] (what the unpaired images are, e.g. "
                       f"'unpaired MNIST digits'): re-run {PRIOR}")
    return str(x07["prior_phrase"])


def class_names(root=None) -> dict[int, str]:
    """The data's class names by label code, as chapter 00 read them (``extra["data"]["class_names"]``).

    Raises
    ------
    KeyError
        If chapter 00's results lack them (re-run 00).
    """
    names = _load(DATA, root).get("extra", {}).get("data", {}).get("class_names")
    if not names:
        raise KeyError(f"chapter {DATA}'s results lack extra['data']['class_names'] (label code -> class name): "
                       f"re-run {DATA}")
    return {int(k): str(v) for k, v in names.items()}


def classes_are_digits(names) -> bool:
    """True when every class name is a digit word ("zero" .. "nine"): only then may a page speak of digits."""
    from ...perception_net import digit_word

    words = {digit_word(d) for d in range(10)}
    names = [str(n).strip().lower() for n in names]
    return bool(names) and all(n in words for n in names)


def is_published_data(root=None) -> bool:
    """True when chapter 00 read the data file whose published results are quoted (digit69's checksum,
    :data:`ldm_core.data.DATA_SHA256`); a page quotes DGMM "on the same data" only then.

    Raises
    ------
    KeyError
        If chapter 00's results lack ``extra["data_sha256"]`` (re-run 00).
    """
    from ...data import DATA_SHA256

    sha = _load(DATA, root).get("extra", {}).get("data_sha256")
    if not sha:
        raise KeyError(f"chapter {DATA}'s results lack extra['data_sha256'] (the data file's checksum): re-run {DATA}")
    return sha == DATA_SHA256
