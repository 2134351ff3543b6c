import math

import pytest

from ldm_core.study.claims import (PAIRED_VERDICTS, PROXY_DISPLAY, ROW_KEYS, SPLITS, check_split, claim_row, exact,
                              expectation_rows, fmt_range, paired_claim_row, paired_row, paired_table, shown_verdict,
                              target_row, target_sentence, verdict, verdict_table)


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
    row = claim_row("3", "noise ~10 dB", {"mean": 5.0, "ci_low": 4.9, "ci_high": 5.1}, low=9, high=11, digits=1,
                    split="test", metric="psnr", model="uniform_noise")
    nb = "\u00a0"  # no line break inside a number with its CI
    assert row["verdict"] == "refuted (below the claim)" and row["measured mean [95% CI]"] == f"5.0{nb}[4.9,{nb}5.1]"
    assert row["claimed range"] == f"9{nb}–{nb}11"
    assert set(ROW_KEYS) <= set(row)
    assert (row["mean"], row["ci_low"], row["ci_high"], row["low"], row["high"]) == (5.0, 4.9, 5.1, 9.0, 11.0)
    assert (row["split"], row["metric"], row["model"], row["proxy"], row["own_code"]) == ("test", "psnr",
                                                                                          "uniform_noise", False, False)
    assert row["difference"] is False and row["part"] == ""
    one_sided = claim_row("16", "> 10 dB", exact(15.0), low=10, split="test")
    assert one_sided["high"] == math.inf and one_sided["claimed range"] == f">{nb}10"


def test_claim_row_needs_a_known_split():
    with pytest.raises(TypeError, match="split"):
        claim_row("3", "x", exact(1.0), low=0)
    with pytest.raises(ValueError, match=r"split 'val' is not one of \['test', 'validation', 'training', "
                                         r"'all training trials', 'data file', 'formula', 'count'\]"):
        claim_row("3", "x", exact(1.0), low=0, split="val")
    assert check_split("count") == "count" and len(SPLITS) == 7


def test_claim_row_flags_and_differences():
    comp = {"mean": 0.2, "ci_low": -0.1, "ci_high": 0.5, "p_wilcoxon": 0.3}
    inferred = claim_row("5d", "fewer weights", comp, low=0, split="validation", model="a − b")
    assert inferred["difference"] is True and inferred["measured mean [95% CI]"].startswith("+0.200")
    row = claim_row("14", "more trials help", exact(1.0), low=0, split="validation", proxy=True)
    assert row["proxy"] is True and row["difference"] is False
    own = claim_row("6a", "mean ~0", exact(0.0), low=-0.05, high=0.05, split="training", own_code=True)
    assert own["own_code"] is True and own["verdict"] == "confirmed"


def test_paired_claim_row():
    comp = {"mean": -1.9, "ci_low": -2.1, "ci_high": -1.7, "p_wilcoxon": 0.002}
    row = paired_claim_row("11a", "+5–10 dB", comp, low=5, high=10, digits=2, split="test", metric="psnr",
                           model="original + U-Net − original")
    assert row["verdict"] == "refuted (below the claim)" and row["difference"] is True
    assert row["measured mean [95% CI]"] == "-1.90\u00a0[-2.10,\u00a0-1.70]" and row["Wilcoxon p"] == "0.002"
    assert paired_claim_row("x", "> 0", {"mean": 0.3, "ci_low": 0.1, "ci_high": 0.5}, split="test")["verdict"] == \
        "confirmed"  # default range "> 0"
    with pytest.raises(ValueError, match="split 'tests'"):
        paired_claim_row("x", "> 0", comp, split="tests")


def test_expectation_rows():
    pooled = {m: {"mean": v, "ci_low": v - 0.01, "ci_high": v + 0.01}
              for m, v in (("psnr", 13.0), ("ssim", 0.9), ("pixel_r", 0.15))}
    rows = expectation_rows("m", pooled, phase="phase1")
    assert [r["verdict"] for r in rows] == ["confirmed", "refuted (above the claim)", "confirmed"]
    assert [(r["model"], r["metric"], r["split"]) for r in rows] == [("m", "psnr", "test"), ("m", "ssim", "test"),
                                                                     ("m", "pixel_r", "test")]
    assert {r["split"] for r in expectation_rows("m", pooled, phase="phase1", split="validation")} == {"validation"}
    with pytest.raises(ValueError, match="unknown phase 'phase9'"):
        expectation_rows("m", pooled, phase="phase9")
    with pytest.raises(ValueError, match="split 'train' is not one of"):
        expectation_rows("m", pooled, phase="phase1", split="train")
    table = verdict_table(rows)
    assert list(table.columns)[-1] == "split" and table.index.names == ["model", "claim"]


def test_target_rows_met_missed_inconclusive_and_gap():
    met = target_row("PSNR", {"mean": 17.5, "ci_low": 17.1, "ci_high": 19.0}, target=17, digits=2)
    assert met["verdict"] == "met" and met["gap (mean − target)"] == 0.5 and met["required"] == "≥\u00a017"
    missed = target_row("SSIM", {"mean": 0.45, "ci_low": 0.40, "ci_high": 0.50}, target=0.75)
    assert missed["verdict"] == "missed" and missed["gap (mean − target)"] == pytest.approx(-0.3)
    assert target_row("r", {"mean": 0.89, "ci_low": 0.80, "ci_high": 0.95}, target=0.88)["verdict"] == "inconclusive"
    assert target_row("id", {"mean": 1.0, "ci_low": 1.0, "ci_high": 1.0}, target=1.0)["verdict"] == "met"


def test_paired_rows_compare_two_models_without_target_words():
    """Book #10: a paired difference is not a target; it reads ahead / behind / not separable, never met / missed."""
    ahead = paired_row("ahead", {"mean": 0.1, "ci_low": 0.02, "ci_high": 0.2, "p_wilcoxon": 0.01})
    assert ahead["verdict"] == "ahead (CI above 0)" and ahead["Wilcoxon p"] == "0.010"
    assert ahead["measured mean [95% CI]"] == "+0.100\u00a0[+0.020,\u00a0+0.200]"
    assert ahead["gap (mean − target)"] is None  # a difference has no target to fall short of
    assert paired_row("x", {"mean": -0.1, "ci_low": -0.2, "ci_high": -0.01, "p_wilcoxon": 0.0001})["Wilcoxon p"] == "< 0.001"
    assert paired_row("x", {"mean": -0.1, "ci_low": -0.2, "ci_high": -0.01, "p_wilcoxon": 0.02})["verdict"] == \
        "behind (CI below 0)"
    assert paired_row("x", {"mean": 0.1, "ci_low": -0.2, "ci_high": 0.3, "p_wilcoxon": 0.5})["verdict"] == \
        "not separable (CI contains 0)"
    assert set(PAIRED_VERDICTS) == {"ahead (CI above 0)", "behind (CI below 0)", "not separable (CI contains 0)"}
    table = paired_table({"a − b": {"psnr": {"mean": -0.5, "ci_low": -0.9, "ci_high": -0.1, "p_wilcoxon": 0.01}}})
    assert table["verdict"].tolist() == ["behind (CI below 0)"] and not table["verdict"].isin(["met", "missed"]).any()


def test_proxy_rows_show_no_verdict_word():
    """Book 08 §7: a proxy row's numbers may 'confirm' something else; the page shows that it does not test the
    claim."""
    proxy = claim_row("14", "more trials help (proxy)", exact(1.0), low=0, split="validation", proxy=True,
                      note="a learning curve within the paired trials")
    real = claim_row("3", "noise ~10 dB", exact(5.0), low=9, high=11, split="test", model="uniform_noise")
    assert proxy["verdict"] == "confirmed" and proxy["note"] == "a learning curve within the paired trials"
    assert shown_verdict(proxy) == PROXY_DISPLAY == "proxy (does not test the claim)"
    assert shown_verdict(real) == "refuted (below the claim)"
    table = verdict_table([proxy, real])
    assert table["verdict"].tolist() == [PROXY_DISPLAY, "refuted (below the claim)"]


def test_ranges_read_one_way():
    assert fmt_range(9, 11) == "9 – 11" and fmt_range(10, math.inf) == "> 10" and fmt_range(-math.inf, 0.5) == "< 0.5"
    assert fmt_range(3, 3) == "3" and fmt_range(-math.inf, math.inf) == "any"


def test_target_sentences_say_where_the_mean_and_the_ci_stand():
    def r(m, lo, hi):
        return {"mean": m, "ci_low": lo, "ci_high": hi}

    within = target_sentence("2-way identification within digit", r(0.975, 0.935, 1.0), target=0.95)
    assert within == ("2-way identification within digit has a mean of 0.975, above its target of 0.95, but its 95% "
                      "CI [0.935, 1.000] reaches below it")
    assert "meets its target of 17" in target_sentence("PSNR", r(17.5, 17.1, 18.0), target=17)
    assert "falls short of its target of 0.75" in target_sentence("SSIM", r(0.68, 0.64, 0.73), target=0.75)
    assert target_sentence("id", r(0.989, 0.971, 1.0), target=1.0).endswith("below its target of 1, but its 95% CI "
                                                                            "[0.971, 1.000] reaches it")
    assert target_sentence("x", r(math.nan, math.nan, math.nan), target=1.0) == "x is not measured (target 1)"


def test_a_row_beyond_the_claims_premise_shows_why_instead_of_its_verdict():
    from ldm_core.study.claims import shown_verdict

    row = {"verdict": "refuted (above the claim)", "premise": "also learns from 1,969 unpaired images"}
    assert shown_verdict(row) == "not counted (beyond the claim's premise: also learns from 1,969 unpaired images)"
    assert shown_verdict({**row, "premise": ""}) == "refuted (above the claim)"
    assert shown_verdict({**row, "proxy": True}).startswith("proxy")


def test_verdict_of_says_when_a_trivial_reference_also_earns_the_confirmation():
    from ldm_core.study.claims import claim_row, exact, verdict_of

    rows = [{**claim_row("8", "phase 1: PSNR 12-15 dB", exact(13.3), low=12, high=15, split="test", metric="psnr",
                         model="pipeline"), "difference": False}]
    refs = {"train_mean": {"psnr": {"mean": 12.68}}, "uniform_noise": {"psnr": {"mean": 5.0}}, "ridge": {"psnr": 13.0}}
    assert verdict_of(rows, "pipeline", "psnr") == "confirmed"
    assert verdict_of(rows, "pipeline", "psnr", references=refs) == \
        "confirmed (chapter 9 does not count it: training-mean image also falls in that range)"
    refs["train_mean"]["psnr"]["mean"] = 11.0  # below the range: the confirmation stands
    assert verdict_of(rows, "pipeline", "psnr", references=refs) == "confirmed"
