"""The first page's computed sentences: standing, root cause, selection and spatial sampling.
"""
from __future__ import annotations

from ..names import ci_text, join_words, metric_label, model_label
from .base import BENCHMARKS, DATA, _load, chapter_ref
from .record import final_model


# ----------------------------------------------------------------------------- the first page's computed sentences

LOWER_IS_BETTER = ("mse", "kid_digit")


def _short_metric(metric: str) -> str:
    return {"pixel_r": "pixel r"}.get(metric, metric_label(metric).split(" (")[0])


def _signed(c: dict, metric: str) -> str:
    return ci_text(c, 2 if metric == "psnr" else 3, sign=True, unit=" dB" if metric == "psnr" else "")


def standing_text(paired: dict, *, against: str = "it") -> str:
    """Where model a stands against model b from paired differences a − b (``{metric: comparison}``), by the 95% CI,
    every metric with its difference: "ahead of it on PSNR (+0.54 dB [+0.12, +1.08]), behind it on SSIM (...) and not
    separable from it on pixel r (...)". For MSE and KID a negative difference is ahead."""
    groups: dict[str, list[str]] = {"ahead of": [], "behind": [], "not separable from": []}
    for m, c in paired.items():
        lower = m in LOWER_IS_BETTER
        better, worse = (c["ci_high"] < 0, c["ci_low"] > 0) if lower else (c["ci_low"] > 0, c["ci_high"] < 0)
        key = "ahead of" if better else "behind" if worse else "not separable from"
        groups[key].append(f"{_short_metric(m)} ({_signed(c, m)})")
    return join_words(f"{how} {against} on {join_words(items)}" for how, items in groups.items() if items)


def root_cause_evidence(root=None) -> dict:
    """Chapter 01's root causes by its own definition (a defect whose removal alone returns the fully repaired model
    to the noise floor), read from its results and chapter 00's uniform-noise floor.

    A fix is a root cause when, removed alone from the fully fixed model, the 95% CI of the test PSNR reaches down to
    uniform noise's mean test PSNR (chapter 00) or below.

    Returns
    -------
    dict
        ``floor_psnr`` (uniform noise's mean test PSNR); ``fixes``: ``{fix: {"without": pooled test PSNR of the model
        without it, "root_cause": bool, "gain": {"psnr", "pixel_r"} (added on the cumulative ladder: the rung adding it
        minus the rung before), "val_drop": the validation pixel-r drop when it is removed}}``; ``root_causes`` (the
        fixes that are, in chapter 01's order); ``all_fixed_psnr`` (the last rung, every fix in: pooled test PSNR) and
        ``train_mean_psnr`` (chapter 00's training-mean image, None if absent), to say whether the fixes suffice.

    Raises
    ------
    KeyError
        If chapter 01's results lack ``ladder_test`` / ``ladder_fixes`` (or a model they name), or chapter 00's the
        uniform-noise floor (the chapter to re-run is named).
    """
    x01 = _load("01_diagnostics", root).get("extra", {})
    missing = [k for k in ("ladder_test", "ladder_fixes", "leave_one_out_val_drop") if k not in x01]
    if missing:
        raise KeyError(f"chapter 01_diagnostics's results lack extra{missing} (the defect ladder's test scores and "
                       "which rung adds or removes each fix): re-run 01_diagnostics")
    floors = _load(DATA, root).get("models", {})
    if "uniform_noise" not in floors:
        raise KeyError(f"chapter {DATA}'s results hold no uniform_noise floor: re-run {DATA}")
    floor = float(floors["uniform_noise"]["psnr"]["mean"])
    test, out = x01["ladder_test"], {}
    for fix, names in x01["ladder_fixes"].items():
        absent = [names.get(k) for k in ("added", "before", "removed") if names.get(k) not in test]
        if absent:
            raise KeyError(f"chapter 01_diagnostics's ladder_test holds no {absent} (named by ladder_fixes[{fix!r}]): "
                           "re-run 01_diagnostics")
        without = test[names["removed"]]["psnr"]
        out[fix] = {"without": without, "root_cause": float(without["ci_low"]) <= floor,
                    "gain": {m: float(test[names["added"]][m]["mean"] - test[names["before"]][m]["mean"])
                             for m in ("psnr", "pixel_r")},
                    "val_drop": x01["leave_one_out_val_drop"].get(fix)}
    full = test[list(x01["ladder_fixes"].values())[-1]["added"]]["psnr"]  # the last rung: every fix in
    train_mean = floors.get("train_mean", {}).get("psnr", {}).get("mean")
    return {"floor_psnr": floor, "fixes": out, "root_causes": [f for f, d in out.items() if d["root_cause"]],
            "all_fixed_psnr": full, "train_mean_psnr": None if train_mean is None else float(train_mean)}


def root_cause_text(evidence: dict) -> str:
    """The first page's first point, from :func:`root_cause_evidence`: the noise-floor criterion, what removing each
    root cause does, the cumulative step that adds it, and what the report's 'smoking gun' (the skip U-Net) does."""
    from ..names import fix_label

    floor, fixes, causes = evidence["floor_psnr"], evidence["fixes"], evidence["root_causes"]
    link = chapter_ref("01_diagnostics")
    parts = [f"By the definition of {link}, a defect whose removal alone returns the model to the noise floor is a "
             f"root cause (the noise floor: uniform noise, {floor:.2f} dB test PSNR)"]
    for fix in causes:
        w, g = fixes[fix]["without"], fixes[fix]["gain"]
        parts.append(f"removing '{fix_label(fix)}' from the fully repaired model brings test PSNR down to "
                     f"{ci_text(w, 2, unit=' dB')}, and adding it on the cumulative "
                     f"ladder changes PSNR by {g['psnr']:+.2f} dB and pixel r by {g['pixel_r']:+.3f}")
    if not causes:
        lowest = min(fixes, key=lambda f: fixes[f]["without"]["mean"])
        parts.append(f"no single removal does so: the lowest, without '{fix_label(lowest)}', scores "
                     f"{fixes[lowest]['without']['mean']:.2f} dB")
    others = [f for f in fixes if f not in causes]
    if causes and others:
        lowest = min(others, key=lambda f: fixes[f]["without"]["mean"])
        parts.append(f"no other single removal reaches the floor (the lowest, without '{fix_label(lowest)}', scores "
                     f"{fixes[lowest]['without']['mean']:.2f} dB)")
    skip = fixes.get("skip U-Net")
    if skip is not None and skip["val_drop"] is not None and "skip U-Net" not in causes:
        d = float(skip["val_drop"])
        parts.append("removing the skip connections, the report's 'smoking gun', "
                     + (f"lowers validation pixel r by {d:.3f}" if d > 0 else f"raises validation pixel r by {-d:.3f}")
                     + " and leaves the model well above the floor")
    from ..claims import sentences

    return sentences(*parts)


def selection_text(root=None, *, final: dict | None = None, after: str = "") -> str:
    """The first page's sentences on how the final model was chosen: on validation, among the study's candidates
    (the spatial LDMs and the image-prior model; baselines are not candidates), with ``after`` appended to that
    sentence (e.g. ": it does not sample with diffusion ..."), and, when the best baseline scores higher on the same
    validation metric, a sentence saying so, with both numbers.

    Raises
    ------
    KeyError
        If chapter 08's results lack the candidates' or the baselines' validation scores (re-run 08).
    """
    res = _load(BENCHMARKS, root)
    x08, metric = res.get("extra", {}), res.get("params", {}).get("select_metric")
    missing = [k for k in ("selected_on_validation", "candidates_val_seed0", "baselines_val", "best_baseline_val")
               if k not in x08]
    if missing or not metric:
        raise KeyError(f"chapter {BENCHMARKS}'s results lack extra{missing or ''}"
                       + ("" if metric else " / params['select_metric']") + f": re-run {BENCHMARKS}")
    final = final or final_model(root)
    chosen, base = x08["selected_on_validation"], x08["best_baseline_val"]
    ours = float(x08["candidates_val_seed0"][chosen][metric]["mean"])
    theirs = float(x08["baselines_val"][base][metric]["mean"])
    label = _short_metric(metric)
    from ..claims import sentences

    return sentences(
        f"The final model of this study, chosen on validation ({label}) among the study's candidate models (the spatial "
        f"LDMs and the image-prior model; baselines are not candidates), is **{final['name']}**{after}",
        f"On the same validation trials the best baseline, {model_label(base)}, scores higher ({label} {theirs:.3f} "
        f"against the chosen model's {ours:.3f})" if theirs > ours else "")


SPATIAL_SAMPLING_KEYS = ("model", "n_samples", "sample_std", "prior_sample_std", "steps_psnr",
                         "in_effect_deterministic")


def spatial_sampling_text(root=None) -> str:
    """The first page's sentence on the best spatial LDM: what chapter 08 measured about its sampling (the spread of
    its samples, DDIM-step invariance: whether it uses diffusion in effect) and where it stands against the best
    baseline on the test trials.

    Raises
    ------
    KeyError
        If chapter 08's results lack ``spatial_sampling`` (keys :data:`SPATIAL_SAMPLING_KEYS`) or the spatial model's
        paired comparison (re-run 08).
    """
    x08 = _load(BENCHMARKS, root).get("extra", {})
    s = x08.get("spatial_sampling")
    missing = [k for k in SPATIAL_SAMPLING_KEYS if not isinstance(s, dict) or k not in s]
    if missing:
        raise KeyError(f"chapter {BENCHMARKS}'s results lack extra['spatial_sampling'] entries {missing} (what it "
                       f"measures about the spatial LDM's sampling): re-run {BENCHMARKS}")
    key = next((k for k in x08.get("paired_test", {}) if str(k).startswith(str(s["model"]) + " − ")), None)
    if key is None:
        raise KeyError(f"chapter {BENCHMARKS}'s paired_test holds no comparison of {s['model']!r} with a baseline: "
                       f"re-run {BENCHMARKS}")
    baseline = key.split(" − ", 1)[1]
    steps = {int(k): float(v) for k, v in s["steps_psnr"].items()}
    spread = max(steps.values()) - min(steps.values()) if len(steps) > 1 else float("nan")
    share = (s.get("spread") or {}).get("share")
    measured = (f"across {s['n_samples']} samples per validation trial its images differ by a mean per-pixel "
                f"standard deviation of {s['sample_std']:.2g}"
                + (f", {share:.1%} of how much the validation images differ from one another" if share is not None
                   else "")
                + (f", against {s['prior_sample_std']:.2g} for the image prior's diffusion decoder"
                   if s.get("prior_sample_std") is not None else "")
                + (f", and its validation PSNR moves by {spread:.2f} dB between {min(steps)} and {max(steps)} DDIM "
                   "steps" if len(steps) > 1 else ""))
    verdict = ("so in effect it is a deterministic regressor that does not use diffusion"
               if s["in_effect_deterministic"] else "so it does use diffusion")
    from ..claims import sentences

    return sentences(
        f"The best spatial LDM of chapter 8, {s['model']}, is the repaired pipeline of chapters 2–6 (the changes "
        f"chapters 3–6 screened one at a time are not combined into it). It samples with a diffusion sampler, but "
        f"{measured}: {verdict} ({chapter_ref(BENCHMARKS)})",
        f"Chapter 8's criterion: {s['criterion']}" if s.get("criterion") else "",
        f"On the test trials, against {baseline}, it is {standing_text(x08['paired_test'][key], against='it')} (95% "
        "CIs of the per-image differences)")
