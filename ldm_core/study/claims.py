"""Verdicts on the report's quantitative claims, computed from measured numbers.

A claim is a closed range [low, high] (use -inf / +inf for one-sided claims such as "> 10 dB"). One rule, used
by every chapter and stated in chapter 00, turns a measured mean and its 95% CI into a verdict:

- "confirmed": the whole 95% CI lies inside the claimed range (for "> x": the whole CI is above x);
- "refuted (below the claim)" / "refuted (above the claim)": the whole CI lies outside the range, on that side;
- "inconclusive": otherwise (the CI straddles an end of the range).

An exact value (a count, a formula) is a CI of zero width. Targets (:func:`target_row`) use the same rule: "met"
when the whole CI clears the target, "missed" when the whole CI falls short, "inconclusive" otherwise. A paired
comparison of two models (:func:`paired_row`) is not a target: model a is "ahead (CI above 0)" of b, "behind (CI below
0)" or "not separable (CI contains 0)".

Every verdict row a chapter stores for the ledger (``extra["verdicts"]``) is built by :func:`claim_row`,
:func:`paired_claim_row` or :func:`expectation_rows` and carries, besides the text columns a page shows:

- ``split``: what the value is measured on, one of :data:`SPLITS` ("test", "validation", ...);
- ``metric`` ("psnr", "ssim", "pixel_r", "mse", ... or "" when not a metric) and ``model`` (named for what it computes);
- ``proxy``: True when the row measures something other than the claim (shown, never counted; a page shows
  :data:`PROXY_DISPLAY` in place of its verdict, :func:`shown_verdict`);
- ``own_code``: True when the row measures the study's own code rather than the report's claim (not evidence);
- ``difference``: True when the value is a paired difference of two models (:func:`paired_claim_row`), not a level;
- the numbers: ``mean``, ``ci_low``, ``ci_high`` and the claimed range ``low``, ``high``;
- optionally ``note``: why a row is a proxy or what it leaves out, in words (chapter 09 prints it).

:mod:`ldm_core.study.ledger` turns the rows of each claim into one verdict per claim (its rule is stated there).
"""
from __future__ import annotations

import math

from .names import ci_text, metric_label

__all__ = ["verdict", "claim_row", "paired_claim_row", "target_row", "paired_row", "expectation_rows",
           "REPORT_EXPECTATIONS", "SPLITS", "ROW_KEYS", "check_split", "verdict_table", "verdict_of", "sentences",
           "exact", "paired_table", "target_sentence", "fmt_range", "shown_verdict", "PROXY_DISPLAY",
           "PAIRED_VERDICTS"]

# What a verdict row's value is measured on. "test": the held-out test trials; "validation": the validation split
# carved from the training trials (where models are selected); "training": the trials a model was fitted on (e.g. a
# training/validation loss ratio); "all training trials": cross-validation or refits inside all training trials;
# "data file": a property of the data as stored; "formula": arithmetic; "count": a count (parameters, trials).
SPLITS = ("test", "validation", "training", "all training trials", "data file", "formula", "count")

# The keys every ledger row carries (contract C2); the ledger refuses rows without them.
ROW_KEYS = ("claim", "report says", "claimed range", "measured mean [95% CI]", "verdict", "split", "metric", "model",
            "proxy", "own_code", "mean", "ci_low", "ci_high", "low", "high")


def check_split(split: str) -> str:
    """``split`` if it is one of :data:`SPLITS`.

    Raises
    ------
    ValueError
        Naming the value and the allowed ones.
    """
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {list(SPLITS)}: say what the value is measured on")
    return split


def verdict(mean: float, ci_low: float, ci_high: float, *, low: float = -math.inf, high: float = math.inf) -> str:
    """The verdict of a measurement (mean and 95% CI) on a claimed range [low, high]; see the module docstring.

    Returns
    -------
    str
        "confirmed", "refuted (below the claim)", "refuted (above the claim)", "inconclusive", or
        "untestable (no measurement)" when a value is NaN.

    Raises
    ------
    ValueError
        If the range is empty (low > high) or the CI does not contain the mean.
    """
    if low > high:
        raise ValueError(f"claimed range is empty: low={low} > high={high}")
    if any(math.isnan(v) for v in (mean, ci_low, ci_high)):
        return "untestable (no measurement)"
    if not ci_low <= mean <= ci_high:
        raise ValueError(f"the CI [{ci_low}, {ci_high}] does not contain the mean {mean}")
    if low <= ci_low and ci_high <= high:
        return "confirmed"
    if ci_high < low:
        return "refuted (below the claim)"
    if ci_low > high:
        return "refuted (above the claim)"
    return "inconclusive"


NBSP = "\u00a0"  # a space a table never breaks a line at: "13.69 [12.92, 14.39]" stays on one line


def _unbroken(text: str) -> str:
    return text.replace(" ", NBSP)


def fmt_range(low: float, high: float) -> str:
    """A claimed range in words, one format for tables and prose: "9 – 11", "> 10", "< 0.5", "3", "any"."""
    if math.isinf(low) and math.isinf(high):
        return "any"
    if math.isinf(high):
        return f"> {low:g}"
    if math.isinf(low):
        return f"< {high:g}"
    return f"{low:g} – {high:g}" if low != high else f"{low:g}"


_fmt_range = fmt_range


def claim_row(claim_id: str, text: str, metric_result: dict, *, low: float = -math.inf, high: float = math.inf,
              digits: int = 3, split: str, metric: str = "", model: str = "", proxy: bool = False,
              own_code: bool = False, part: str = "", difference: bool | None = None, note: str = "") -> dict:
    """A verdict row: the claim, its range, the measured mean [CI] and the verdict, with the keys of contract C2.

    Parameters
    ----------
    claim_id : str
        The claim's id in the report's claim list ("1", "4a", "11b", ...); a proxy keeps it (``proxy=True``).
    text : str
        What the report says, as the row reads it (with the tolerance applied, if any).
    metric_result : dict
        Keys ``mean``, ``ci_low``, ``ci_high`` (one metric's entry of :func:`ldm_core.metrics.evaluate`, a
        :func:`ldm_core.metrics.paired_comparison` or :func:`exact`).
    low, high : float
        The claimed range (-inf / +inf for one-sided claims).
    digits : int
        Decimals shown.
    split : str
        What the value is measured on, one of :data:`SPLITS` (required).
    metric, model : str
        The metric ("" when not a metric) and what was measured, named for what it computes.
    proxy : bool
        True when the row measures something other than the claim (shown, never counted).
    own_code : bool
        True when the row measures the study's own code rather than the report's claim (not evidence).
    part : str
        The part of a claim with several parts (e.g. "week 1"); empty: the metric is the part.
    difference : bool or None
        True when the value is a difference of two models; None: True when ``metric_result`` is a paired
        comparison (it has ``p_wilcoxon``).
    note : str
        Why the row is a proxy, or what it leaves out, in words (e.g. "the two VAEs also differ by their residual
        blocks: latent size is not isolated"); chapter 09 prints it with the claim's verdict. Empty: none.

    Raises
    ------
    ValueError
        If ``split`` is not one of :data:`SPLITS`, or from :func:`verdict`.
    """
    check_split(split)
    m, lo, hi = (float(metric_result[k]) for k in ("mean", "ci_low", "ci_high"))
    signed = "+" if difference or (difference is None and "p_wilcoxon" in metric_result) else ""
    return {
        "claim": str(claim_id),
        "report says": text,
        "claimed range": _unbroken(_fmt_range(low, high)),
        "measured mean [95% CI]": _unbroken(f"{m:{signed}.{digits}f} [{lo:{signed}.{digits}f}, "
                                            f"{hi:{signed}.{digits}f}]"),
        "verdict": verdict(m, lo, hi, low=low, high=high),
        "split": split,
        "metric": metric,
        "model": model,
        "proxy": bool(proxy),
        "own_code": bool(own_code),
        "difference": bool(difference) if difference is not None else "p_wilcoxon" in metric_result,
        "part": part,
        "note": str(note),
        "mean": m, "ci_low": lo, "ci_high": hi, "low": float(low), "high": float(high),
    }


def paired_claim_row(claim_id: str, text: str, comparison: dict, *, low: float = 0.0, high: float = math.inf,
                     digits: int = 3, split: str, metric: str = "", model: str = "", proxy: bool = False,
                     own_code: bool = False, part: str = "", note: str = "") -> dict:
    """A verdict row for a paired-difference claim ("a is ahead of b by low–high"), from
    :func:`ldm_core.metrics.paired_comparison` (mean difference a - b and its bootstrap CI over images).

    As :func:`claim_row` with ``difference=True``; ``model`` names the difference ("a − b"), the default range is
    "> 0" and the row adds the Wilcoxon p-value.
    """
    from .names import format_p

    row = claim_row(claim_id, text, comparison, low=low, high=high, digits=digits, split=split, metric=metric,
                    model=model, proxy=proxy, own_code=own_code, part=part, difference=True, note=note)
    if "p_wilcoxon" in comparison:
        row["Wilcoxon p"] = format_p(comparison["p_wilcoxon"])
    return row


def target_row(name: str, metric_result: dict, *, target: float, digits: int = 3) -> dict:
    """A row checking a measured value against a one-sided target "at least ``target``".

    ``metric_result`` has keys mean, ci_low, ci_high. The verdict is "met" when the whole 95% CI is at or above
    the target, "missed" when the whole CI lies below it, "inconclusive" otherwise; ``gap`` is mean - target
    (negative: short by that much).
    """
    m, lo, hi = metric_result["mean"], metric_result["ci_low"], metric_result["ci_high"]
    v = verdict(m, lo, hi, low=target)
    return {
        "target": name,
        "required": _unbroken(f"≥ {target:g}"),
        "measured mean [95% CI]": _unbroken(f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"),
        "gap (mean − target)": round(m - target, digits),
        "verdict": "met" if v == "confirmed" else "missed" if v.startswith("refuted") else v,
    }


# The verdicts of a paired comparison a - b (not a target: no "met" or "missed").
PAIRED_VERDICTS = ("ahead (CI above 0)", "behind (CI below 0)", "not separable (CI contains 0)")


def paired_row(name: str, comparison: dict, *, digits: int = 3) -> dict:
    """A row for a paired comparison of model a with model b, from :func:`ldm_core.metrics.paired_comparison`.

    The verdict (:data:`PAIRED_VERDICTS`) is "ahead (CI above 0)" when the 95% bootstrap CI of the mean per-image
    difference a - b lies above 0, "behind (CI below 0)" when it lies below 0 (b is ahead), "not separable (CI
    contains 0)" otherwise. The Wilcoxon p-value is reported beside it. (For a metric where lower is better, such
    as MSE, "ahead" still means a larger value: the row compares numbers, not quality.)
    """
    from .names import format_p

    lo, hi = comparison["ci_low"], comparison["ci_high"]
    ahead, behind, neither = PAIRED_VERDICTS
    v = ahead if lo > 0 else behind if hi < 0 else neither
    return {
        "target": name,
        "required": "a − b, per image",
        "measured mean [95% CI]": _unbroken(ci_text(comparison, digits, sign=True)),
        "gap (mean − target)": None,  # a difference has no target: its mean is the measurement itself
        "Wilcoxon p": format_p(comparison["p_wilcoxon"]),
        "verdict": v,
    }


def target_sentence(name: str, metric_result: dict, *, target: float, digits: int = 3) -> str:
    """A clause saying where a measurement (mean and 95% CI) stands against a target "at least ``target``".

    Four cases, from the same numbers as :func:`target_row`: the whole CI at or above the target ("meets"), the
    whole CI below it ("falls short of"), the mean above the target with the CI reaching below it, the mean below
    the target with the CI reaching it. For example "2-way identification within digit has a mean of 0.975, above its
    target of 0.95, but its 95% CI [0.935, 1.000] reaches below it".
    """
    m, lo, hi = (float(metric_result[k]) for k in ("mean", "ci_low", "ci_high"))
    if any(math.isnan(v) for v in (m, lo, hi)):
        return f"{name} is not measured (target {target:g})"
    ci = f"[{lo:.{digits}f}, {hi:.{digits}f}]"
    if lo >= target:
        return f"{name} of {m:.{digits}f} meets its target of {target:g} (the whole 95% CI, {ci}, is at or above it)"
    if hi < target:
        return (f"{name} of {m:.{digits}f} falls short of its target of {target:g} (the whole 95% CI, {ci}, lies "
                "below it)")
    if m >= target:
        return (f"{name} has a mean of {m:.{digits}f}, above its target of {target:g}, but its 95% CI {ci} reaches "
                "below it")
    return f"{name} has a mean of {m:.{digits}f}, below its target of {target:g}, but its 95% CI {ci} reaches it"


# ----------------------------------------------------------------------------- the report's expectations (quoted)

# Quoted from the analysed report (shared/report, numbered in CLAIMS.md); these are claims to test, not results.
REPORT_EXPECTATIONS = {
    # claim 1 quotes single values (5.49 dB, 0.007, 0.020); we read "reproduced" as within ±1 dB, ±0.02, ±0.05.
    "original": {"claim": "1", "where": "original model reproduced (5.49 dB, 0.007, 0.020 ± tolerance)",
                 "psnr": (4.49, 6.49), "ssim": (-0.013, 0.027), "pixel_r": (-0.03, 0.07)},
    "phase1": {"claim": "8", "where": "expected trajectory, after phase 1", "psnr": (12, 15), "ssim": (0.2, 0.3), "pixel_r": (0.1, 0.2)},
    "phase2": {"claim": "9", "where": "expected trajectory, after phase 2", "psnr": (18, 22), "ssim": (0.4, 0.6), "pixel_r": (0.3, 0.5)},
    "phase3": {"claim": "10", "where": "expected trajectory, after phase 3", "psnr": (25, 30), "ssim": (0.7, 0.8), "pixel_r": (0.6, 0.7)},
    "limit90": {"claim": "13", "where": "realistic expectations, best possible with 90 samples", "psnr": (15, 18), "ssim": (0.3, 0.4), "pixel_r": (0.2, 0.4)},
}


def expectation_rows(label: str, pooled: dict, *, phase: str, split: str = "test") -> list[dict]:
    """Rows comparing a model's measured PSNR / SSIM / pixel r with the report's expectation for ``phase``.

    ``pooled`` maps metric -> {"mean", "ci_low", "ci_high"} (e.g. :meth:`VariantResult.pooled` or
    :func:`ldm_core.metrics.evaluate`); ``label`` names the model; ``split`` says what it was measured on (one of
    :data:`SPLITS`). The verdict is computed by :func:`verdict`.

    Raises
    ------
    ValueError
        If ``phase`` is not a key of :data:`REPORT_EXPECTATIONS` or ``split`` not one of :data:`SPLITS`.
    """
    if phase not in REPORT_EXPECTATIONS:
        raise ValueError(f"unknown phase '{phase}'; allowed: {sorted(REPORT_EXPECTATIONS)}")
    check_split(split)
    exp = REPORT_EXPECTATIONS[phase]
    rows = []
    for metric in ("psnr", "ssim", "pixel_r"):
        lo, hi = exp[metric]
        rows.append(claim_row(exp["claim"], f"{exp['where']}: {metric_label(metric)}", pooled[metric], low=lo, high=hi,
                              digits=2 if metric == "psnr" else 3, split=split, metric=metric, model=label))
    return rows


# ----------------------------------------------------------------------------- verdicts on the page

VERDICT_COLUMNS = ["report says", "claimed range", "measured mean [95% CI]", "verdict"]

# What a page shows in place of a proxy row's verdict: a proxy measures something other than the claim.
PROXY_DISPLAY = "proxy (does not test the claim)"


def shown_verdict(row) -> str:
    """The verdict a page shows for a verdict row: :data:`PROXY_DISPLAY` for a proxy row (whatever its numbers
    say); "not counted (beyond the claim's premise: <why>)" for a row whose ``premise`` says why its model lies
    outside what the claim is about (claim 13: a decoder that also learns from unpaired images); else the row's
    verdict."""
    if bool(row.get("proxy", False)):
        return PROXY_DISPLAY
    premise = row.get("premise")
    if isinstance(premise, str) and premise:
        return f"not counted (beyond the claim's premise: {premise})"
    return str(row["verdict"])


def verdict_table(rows: list[dict]):
    """Verdict rows as a page table: index (model, claim), the claim's text and range, the measurement, the verdict
    (:func:`shown_verdict`: a proxy row shows :data:`PROXY_DISPLAY`) and what it was measured on (``split``, when
    every row has one)."""
    import pandas as pd

    from .names import model_label

    df = pd.DataFrame(rows)
    df["verdict"] = [shown_verdict(r) for r in rows]
    df["model"] = df["model"].map(model_label)
    columns = VERDICT_COLUMNS + (["split"] if "split" in df and df["split"].notna().all() else [])
    return df.set_index(["model", "claim"])[columns]


def verdict_of(rows: list[dict], model: str, metric: str, *, references: dict | None = None) -> str:
    """The verdict of the row for (``model``, ``metric``) among :func:`expectation_rows` output.

    With ``references`` (chapter 00's ``models``), a confirmation that a trivial reference would also earn says so:
    "confirmed (chapter 9 does not count it: the training-mean image also falls in that range)" (rule d of
    :mod:`ldm_core.study.ledger`).

    Raises
    ------
    KeyError
        If there is no such row (the rows' models and metrics are named).
    """
    for r in rows:
        if r.get("model") == model and r.get("metric") == metric:
            if references is None or r["verdict"] != "confirmed":
                return r["verdict"]
            from .ledger import TRIVIAL_REFERENCES, trivial_passes
            from .names import join_words, model_label

            passes = trivial_passes(r, {n: references[n] for n in TRIVIAL_REFERENCES if n in references},
                                    str(r.get("claim", "")))
            if not passes:
                return r["verdict"]
            return (f"confirmed (chapter 9 does not count it: {join_words(model_label(n) for n in passes)} also "
                    f"fall{'s' if len(passes) == 1 else ''} in that range)")
    raise KeyError(f"no verdict row for model {model!r}, metric {metric!r}; rows have "
                   f"{sorted({(r.get('model'), r.get('metric')) for r in rows}, key=str)}")


def paired_table(comparisons: dict, *, title: str = "per test image"):
    """A page table of paired comparisons: ``{label: {metric: comparison}}`` -> one row per (label, metric) with the
    mean difference [95% CI], the Wilcoxon p-value and the verdict of :func:`paired_row`."""
    import pandas as pd

    rows = [{"comparison": label, "metric": metric_label(m), **paired_row(label, c)}
            for label, per in comparisons.items() for m, c in per.items()]
    return (pd.DataFrame(rows).set_index(["comparison", "metric"])[["measured mean [95% CI]", "Wilcoxon p", "verdict"]]
            .rename_axis([title, "metric"]))


def exact(value: float) -> dict:
    """A measurement without sampling error (a count, a formula) as a CI of zero width, for :func:`claim_row`."""
    return {"mean": float(value), "ci_low": float(value), "ci_high": float(value)}


def sentences(*clauses: str) -> str:
    """Clauses joined into prose: each starts with a capital letter and ends with a full stop."""
    out = []
    for c in clauses:
        c = c.strip()
        if not c:
            continue
        c = c[0].upper() + c[1:]
        out.append(c if c.endswith((".", "!", "?")) else c + ".")
    return " ".join(out)
