"""Verdicts on the report's quantitative claims, computed from measured numbers.

A claim is a closed range [low, high] (use -inf / +inf for one-sided claims such as "> 10 dB"). Given a
measured mean and its 95% CI:

- "confirmed": the mean lies inside the claimed range;
- "refuted": the whole CI lies outside the range;
- "inconclusive": otherwise (the mean is outside but the CI still reaches the range).
"""
from __future__ import annotations

import math

__all__ = ["verdict", "claim_row"]


def verdict(mean: float, ci_low: float, ci_high: float, *, low: float = -math.inf, high: float = math.inf) -> str:
    """'confirmed', 'refuted' or 'inconclusive' for a measured value against a claimed range [low, high]."""
    if low > high:
        raise ValueError(f"claimed range is empty: low={low} > high={high}")
    if any(math.isnan(v) for v in (mean, ci_low, ci_high)):
        return "untestable (no measurement)"
    if low <= mean <= high:
        return "confirmed"
    if ci_high < low or ci_low > high:
        return "refuted"
    return "inconclusive"


def _fmt_range(low: float, high: float) -> str:
    if math.isinf(low) and math.isinf(high):
        return "any"
    if math.isinf(high):
        return f"> {low:g}"
    if math.isinf(low):
        return f"< {high:g}"
    return f"{low:g} – {high:g}" if low != high else f"{low:g}"


def claim_row(claim_id: str, text: str, metric_result: dict, *, low: float = -math.inf, high: float = math.inf,
              digits: int = 3) -> dict:
    """A table row: the claim, its range, the measured mean [CI] and the verdict.

    ``metric_result`` is one metric's entry of :func:`ldm_core.metrics.evaluate` (keys mean, ci_low, ci_high).
    """
    m, lo, hi = metric_result["mean"], metric_result["ci_low"], metric_result["ci_high"]
    return {
        "claim": claim_id,
        "report says": text,
        "claimed range": _fmt_range(low, high),
        "measured mean [95% CI]": f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]",
        "verdict": verdict(m, lo, hi, low=low, high=high),
    }
