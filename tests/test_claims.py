import math

import pytest

from ldm_core.claims import claim_row, paired_row, target_row, verdict


def test_verdicts_follow_the_ci_rule():
    assert verdict(10.0, 9.5, 10.5, low=9, high=11) == "confirmed"  # whole CI inside
    assert verdict(10.0, 8.5, 10.5, low=9, high=11) == "inconclusive"  # mean inside, CI straddles 9
    assert verdict(5.0, 4.9, 5.1, low=9, high=11) == "refuted (below the claim)"
    assert verdict(15.0, 14.0, 16.0, low=9, high=11) == "refuted (above the claim)"
    assert verdict(8.5, 8.0, 9.5, low=9, high=11) == "inconclusive"
    assert verdict(21.0, 20.5, 21.5, low=20) == "confirmed"  # one-sided "> 20"
    assert verdict(0.039, -0.338, 0.416, low=0) == "inconclusive"  # "> 0" with a CI spanning 0 is not confirmed
    assert verdict(3.0, 3.0, 3.0, low=3, high=3) == "confirmed"  # an exact value
    assert verdict(math.nan, math.nan, math.nan, low=0).startswith("untestable")
    with pytest.raises(ValueError, match="empty"):
        verdict(1, 0, 2, low=3, high=2)
    with pytest.raises(ValueError, match="does not contain the mean"):
        verdict(5, 0, 2, low=0)


def test_claim_row():
    row = claim_row("3", "noise ~10 dB", {"mean": 5.0, "ci_low": 4.9, "ci_high": 5.1}, low=9, high=11, digits=1)
    nb = "\u00a0"  # no line break inside a number with its CI
    assert row["verdict"] == "refuted (below the claim)" and row["measured mean [95% CI]"] == f"5.0{nb}[4.9,{nb}5.1]"
    assert row["claimed range"] == f"9{nb}–{nb}11"


def test_expectation_rows():
    from ldm_core.claims import expectation_rows

    pooled = {m: {"mean": v, "ci_low": v - 0.01, "ci_high": v + 0.01} for m, v in (("psnr", 13.0), ("ssim", 0.9), ("pixel_r", 0.15))}
    rows = expectation_rows("m", pooled, phase="phase1")
    assert [r["verdict"] for r in rows] == ["confirmed", "refuted (above the claim)", "confirmed"]
    with pytest.raises(ValueError, match="unknown phase 'phase9'"):
        expectation_rows("m", pooled, phase="phase9")


def test_target_rows_met_missed_inconclusive_and_gap():
    met = target_row("PSNR", {"mean": 17.5, "ci_low": 17.1, "ci_high": 19.0}, target=17, digits=2)
    assert met["verdict"] == "met" and met["gap (mean − target)"] == 0.5 and met["required"] == "≥\u00a017"
    missed = target_row("SSIM", {"mean": 0.45, "ci_low": 0.40, "ci_high": 0.50}, target=0.75)
    assert missed["verdict"] == "missed" and missed["gap (mean − target)"] == pytest.approx(-0.3)
    assert target_row("r", {"mean": 0.89, "ci_low": 0.80, "ci_high": 0.95}, target=0.88)["verdict"] == "inconclusive"
    assert target_row("id", {"mean": 1.0, "ci_low": 1.0, "ci_high": 1.0}, target=1.0)["verdict"] == "met"


def test_paired_rows():
    ahead = paired_row("ahead", {"mean": 0.1, "ci_low": 0.02, "ci_high": 0.2, "p_wilcoxon": 0.01})
    assert ahead["verdict"] == "met" and ahead["Wilcoxon p"] == "0.010"
    assert paired_row("x", {"mean": -0.1, "ci_low": -0.2, "ci_high": -0.01, "p_wilcoxon": 0.0001})["Wilcoxon p"] == "< 0.001"
    assert paired_row("x", {"mean": -0.1, "ci_low": -0.2, "ci_high": -0.01, "p_wilcoxon": 0.02})["verdict"] == "missed"
    assert paired_row("x", {"mean": 0.1, "ci_low": -0.2, "ci_high": 0.3, "p_wilcoxon": 0.5})["verdict"].startswith("inconclusive")
