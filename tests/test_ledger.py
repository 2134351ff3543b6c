"""The ledger: one verdict per claim by the declared rule. Numbers here are fabricated and known; the study root built
by :func:`build_study_root` mimics the published record closely enough that every claim gets the verdict the issue
asks for, and that chapters 09 and 10 run on it."""
import json
import math

import numpy as np
import pandas as pd
import pytest

from ldm_core.study import ledger
from ldm_core.study.claims import PROXY_DISPLAY, claim_row, exact, expectation_rows, paired_claim_row
from ldm_core.data import DATA_SHA256
from ldm_core.study.names import model_label
from ldm_core.study.results import write_results

INF = math.inf


# ----------------------------------------------------------------------------- a hand-made table for the rule


def _r(claim, kind="confirmed", *, split="test", metric="psnr", model="m", low=0.0, high=10.0, mean=None,
       proxy=False, own_code=False, subject=True, part="", difference=False, chapter="02_unet_fix", premise="",
       ci=None, note=""):
    """One ledger row whose own verdict is ``kind`` (by its numbers: range [low, high]); ``ci`` = (mean, lo, hi)
    overrides."""
    mean, lo, hi = ci or {"confirmed": (5, 4, 6), "below": (-5, -6, -4), "above": (15, 14, 16),
                          "inconclusive": (9, 8, 12), "exact": (mean, mean, mean)}[kind if mean is None else "exact"]
    row = claim_row(claim, f"claim {claim}", {"mean": mean, "ci_low": lo, "ci_high": hi}, low=low, high=high,
                    split=split, metric=metric, model=model, proxy=proxy, own_code=own_code, part=part,
                    difference=difference, note=note)
    return {**row, "subject": subject, "chapter": chapter, "premise": premise}


def _table(*rows):
    t = pd.DataFrame(list(rows))
    t["row"] = [f"{c}.{k + 1}" for c, k in zip(t["claim"], t.groupby("claim", sort=False).cumcount())]
    return t


NO_FLOORS = {}
FLOORS = {"constant grey (0.5)": {"psnr": 6.35, "ssim": 0.005}, "training-mean image": {"psnr": {"mean": 12.7}}}


def test_row_verdicts_combine_over_parts():
    v = ledger.claim_verdicts(_table(
        _r("1", metric="psnr"), _r("1", metric="ssim"),                       # every part confirmed
        _r("2", metric="psnr"), _r("2", "below", metric="ssim"),             # one part below
        _r("3", "below", metric="psnr"), _r("3", "above", metric="ssim"),    # parts on both sides
        _r("4", metric="psnr"), _r("4", "inconclusive", metric="ssim"),      # confirmed + straddling
        _r("5", "above", metric="psnr")), NO_FLOORS)
    assert {c: x["verdict"] for c, x in v.items()} == {
        "1": "confirmed", "2": "refuted (below the claim)", "3": "refuted (both sides)",
        "4": "inconclusive (CI straddles the claimed range)", "5": "refuted (above the claim)"}
    assert v["2"]["parts"] == {"PSNR": "confirmed", "SSIM": "refuted (below the claim)"}
    assert v["1"]["rows"] == ["1.1", "1.2"] and "every part confirmed" in v["1"]["decided_by"]
    assert v["1"]["decided_by"].startswith("Decided on m, on the test trials: ")  # no nested brackets


def test_parts_can_be_named_weeks_or_horizons():
    v = ledger.claim_verdicts(_table(_r("12", part="week 1"), _r("12", "below", part="week 2"),
                                     _r("12", "above", part="weeks 3–4")), NO_FLOORS)["12"]
    assert v["verdict"] == "refuted (both sides)"
    assert list(v["parts"]) == ["week 1", "week 2", "weeks 3–4"]


def test_rule_a_proxies_never_count():
    v = ledger.claim_verdicts(_table(_r("14", proxy=True), _r("14", proxy=True, metric="ssim"),
                                     _r("9", proxy=True), _r("9", "inconclusive")), NO_FLOORS)
    assert v["14"]["verdict"] == "inconclusive (only proxy rows)"
    assert v["9"]["verdict"] == "inconclusive (CI straddles the claimed range)" and v["9"]["rows"] == ["9.2"]
    assert v["9"]["roles"]["9.1"] == "proxy: shown, never counts"
    assert v["9"]["decided_by"].endswith("; its 1 proxy row is shown and never counts.")


def test_a_claim_with_only_proxy_rows_gives_their_reason():
    why = "the two VAEs also differ by residual blocks: latent size is not isolated"
    v = ledger.claim_verdicts(_table(_r("17", proxy=True, difference=True, note=why),
                                     _r("17", proxy=True, split="validation", difference=True, note=why)), NO_FLOORS)
    assert v["17"]["verdict"] == "inconclusive (only proxy rows)"
    assert v["17"]["decided_by"] == f"Only proxy rows measure it, and proxies never count: {why}."
    assert v["17"]["roles"]["17.1"] == f"proxy: shown, never counts ({why})"


def test_proxies_pointing_the_same_way_are_said_to():
    v = ledger.claim_verdicts(_table(_r("11a", "below", difference=True),
                                     _r("11a", "below", proxy=True, split="validation", metric="pixel_r")), NO_FLOORS)
    assert v["11a"]["verdict"] == "refuted (below the claim)"
    assert v["11a"]["decided_by"].endswith("its 1 proxy row is shown and never counts (it points the same way).")


def test_untestable_claims_with_proxies_stay_untestable():
    t = pd.concat([ledger.untestable_claims(), _table(_r("14", proxy=True))], ignore_index=True)
    t["row"] = [f"{c}.{k + 1}" for c, k in zip(t["claim"], t.groupby("claim", sort=False).cumcount())]
    v = ledger.claim_verdicts(t, NO_FLOORS)
    assert {c for c, x in v.items() if x["verdict"] == "untestable with this data"} == {"11c", "14", "15", "U1", "U2",
                                                                                        "U3"}
    assert "one pattern per trial" in v["U1"]["decided_by"] and "needs the voxel time series" in v["U1"]["decided_by"]
    assert v["14"]["rows"] == ["14.1"] and "proxy row is shown" in v["14"]["decided_by"]
    assert not any("digit69" in x["decided_by"] for x in v.values())  # said of any data file


def test_rule_b_own_code_is_not_evidence():
    v = ledger.claim_verdicts(_table(_r("6a", own_code=True, split="training", model="this study's normaliser"),
                                     _r("7", own_code=True), _r("7", "below")), NO_FLOORS)
    assert v["6a"]["verdict"] == "inconclusive (only own-code rows)"
    assert "report's own preprocessing code" in v["6a"]["decided_by"]  # what would test the report's pipeline
    assert v["7"]["verdict"] == "refuted (below the claim)" and v["7"]["rows"] == ["7.2"]


def test_rule_b_parameter_counts_check_the_reproduction():
    v = ledger.claim_verdicts(_table(_r("5a", split="count", mean=5.19, low=5.15, high=5.25),
                                     _r("5b", split="formula", mean=50.0, low=55, high=59),
                                     _r("5d", split="count", mean=5.19, low=5.15, high=5.25)), NO_FLOORS)
    # a count of the study's own reimplementation is not evidence either way (rule b), but the page says what it found
    assert v["5a"]["verdict"] == v["5b"]["verdict"] == "inconclusive (only own-code rows)"
    assert "which agrees with the report; that checks the reproduction, not the report's model" in v["5a"]["decided_by"]
    assert "5.19" in v["5a"]["decided_by"]  # the count measured is said
    assert "which lies below the report's value" in v["5b"]["decided_by"]
    assert v["5d"]["verdict"] == "confirmed"  # only 5a and 5b count the reimplementation
    assert ledger.verdict_counts(v)["confirmed"] == 1


def test_rule_c_no_confirmation_on_selection_rows_alone():
    v = ledger.claim_verdicts(_table(_r("5d", split="validation"), _r("5d", split="validation", metric="ssim"),
                                     _r("7", "below", split="validation")), NO_FLOORS)
    assert v["5d"]["verdict"] == "inconclusive (only selection rows)"
    assert v["7"]["verdict"] == "refuted (below the claim)"  # a refutation may rest on validation rows


def test_rule_d_a_trivial_reference_voids_a_confirmation():
    t = _table(_r("1", mean=6.33, low=4.49, high=6.49), _r("1", mean=0.005, low=-0.013, high=0.027, metric="ssim"),
               _r("3", mean=6.5, low=4.49, high=6.49 + 0.5),                      # about the references: exempt
               _r("11a", mean=6.0, low=5, high=10, difference=True),              # a difference, not a level
               _r("12", mean=15.5, low=10, high=INF, part="week 1"),              # the training mean passes > 10 too
               _r("12", mean=15.5, low=15, high=INF, part="week 2"))
    v = ledger.claim_verdicts(t, FLOORS)
    assert v["1"]["verdict"] == "inconclusive (a trivial reference passes too)"
    assert "confirmed, but constant grey (0.5) also lies in 4.49 – 6.49: inconclusive" in v["1"]["decided_by"]
    assert v["1"]["roles"]["1.1"].startswith("decides; void as a confirmation: constant grey (0.5)")
    assert v["3"]["verdict"] == "confirmed" and v["11a"]["verdict"] == "confirmed"
    assert v["12"]["verdict"] == "inconclusive (a trivial reference passes too)"
    assert v["12"]["parts"] == {"week 1": "inconclusive (a trivial reference passes too)", "week 2": "confirmed"}


def test_rule_d_is_said_on_every_row_not_only_deciding_ones():
    """Book 09 "row 8.x": a weaker confirmed row that a trivial reference would also earn says so too."""
    t = _table(_r("8", ci=(16, 15.5, 16.5), low=12, high=15, model="end of phase 1"),
               _r("8", mean=13.3, low=12, high=15, model="U-Net pipeline", subject=False),
               _r("8", mean=13.3, low=12, high=15, model="a proxy", proxy=True))
    v = ledger.claim_verdicts(t, FLOORS)["8"]
    assert v["verdict"] == "refuted (above the claim)" and v["rows"] == ["8.1"]
    assert v["roles"]["8.2"].endswith("; void as a confirmation: training-mean image also lies in the range")
    assert v["roles"]["8.3"] == "proxy: shown, never counts"  # proxies never count: nothing to void


def test_rule_f_test_rows_decide_over_validation_rows():
    t = _table(_r("5d", "inconclusive", model="reg − MLP"), _r("5d", split="validation", model="reg − MLP"))
    v = ledger.claim_verdicts(t, NO_FLOORS)["5d"]
    assert v["verdict"] == "inconclusive (CI straddles the claimed range)" and v["rows"] == ["5d.1"]
    assert v["roles"]["5d.2"] == "disagrees, overruled (the test trials over the validation trials)"
    assert "reg − MLP on the validation trials: confirmed" in v["contradiction"]
    assert "the test trials over the validation trials" in v["decided_by"]


def test_rule_f_the_model_the_claim_is_about_decides():
    t = _table(_r("5c", "below", split="validation", model="original", low=1.5, high=INF),
               _r("5c", split="validation", model="U-Net pipeline", subject=False, low=1.5, high=INF),
               _r("5c", "below", split="validation", model="original + U-Net", subject=False, low=1.5, high=INF))
    v = ledger.claim_verdicts(t, NO_FLOORS)["5c"]
    assert v["verdict"] == "refuted (below the claim)" and v["rows"] == ["5c.1"] and v["models"] == ["original"]
    assert v["roles"] == {"5c.1": "decides", "5c.3": "agrees (weaker evidence)",
                          "5c.2": "disagrees, overruled (the model the claim is about over other models)"}
    assert "U-Net pipeline on the validation trials: confirmed" in v["contradiction"]
    assert "the model the claim is about, the original — original" in v["contradiction"]
    assert v["decided_by"].startswith("Decided on original, on the validation trials")


def test_rule_f_rows_of_equal_strength_are_read_together():
    v = ledger.claim_verdicts(_table(_r("9", model="a"), _r("9", "above", model="b")), NO_FLOORS)["9"]
    assert v["verdict"] == "refuted (above the claim)" and v["rows"] == ["9.1", "9.2"]
    assert "rows of equal strength disagree" in v["contradiction"]


def _bound(*rows):
    return ledger.claim_verdicts(_table(*rows), FLOORS)["13"]


def test_rule_g_claim_13_is_refuted_above_by_any_paired_only_decoder_above_it():
    """review1 #2: a weak selected model below the range says nothing about "best possible" when another decoder of
    the premise lies above it on the same test trials."""
    v = _bound(_r("13", ci=(0.214, 0.184, 0.242), low=0.3, high=0.4, metric="ssim", model="final model"),
               _r("13", ci=(0.471, 0.418, 0.518), low=0.3, high=0.4, metric="ssim", model="PLS, 90 trials"))
    assert v["verdict"] == "refuted (above the claim)" and v["rows"] == ["13.2"] and v["models"] == ["PLS, 90 trials"]
    assert v["roles"] == {"13.2": "decides (rule g)",
                          "13.1": "within the premise; the bound is read on the others (rule g)"}


def test_rule_g_refuted_below_only_when_the_best_lies_below():
    below = _bound(_r("13", ci=(14.0, 13.5, 14.5), low=15, high=18, model="ridge"),
                   _r("13", ci=(14.2, 13.4, 14.9), low=15, high=18, model="PLS"))
    assert below["verdict"] == "refuted (below the claim)" and below["models"] == ["PLS"]  # highest upper bound
    assert "the best of them, PLS, lies wholly below 15 – 18" in below["decided_by"]
    straddles = _bound(_r("13", ci=(14.0, 13.5, 14.5), low=15, high=18, model="ridge"),
                       _r("13", ci=(14.6, 14.0, 15.3), low=15, high=18, model="PLS"))
    assert straddles["verdict"] == "inconclusive (CI straddles the claimed range)"


def test_rule_g_confirmed_when_the_best_lies_in_range_and_none_above():
    v = _bound(_r("13", ci=(16.0, 15.5, 16.5), low=15, high=18, model="ridge"),
               _r("13", ci=(15.2, 15.1, 15.4), low=15, high=18, model="PLS"))
    assert v["verdict"] == "confirmed" and v["models"] == ["ridge"]
    reaching = _bound(_r("13", ci=(16.0, 15.5, 16.5), low=15, high=18, model="ridge"),
                      _r("13", ci=(15.9, 14.0, 18.5), low=15, high=18, model="PLS"))
    assert reaching["verdict"] == "inconclusive (CI straddles the claimed range)"
    trivial = _bound(_r("13", ci=(13.0, 12.5, 13.5), low=12, high=14, model="ridge"))
    assert trivial["verdict"] == "inconclusive (a trivial reference passes too)"


def test_rule_g_decoders_beyond_the_premise_never_decide():
    v = _bound(_r("13", ci=(14.0, 13.5, 14.5), low=15, high=18, model="ridge, 90 trials"),
               _r("13", ci=(16.0, 15.5, 16.5), low=15, high=18, model="prior model, 90 trials",
                  premise="also learns from 1,969 unpaired images"),
               _r("13", ci=(19.0, 18.5, 19.5), low=15, high=18, model="spatial LDM, 72 trials",
                  premise="fitted on 72 of the 90 training trials"))
    assert v["verdict"] == "refuted (below the claim)" and v["rows"] == ["13.1"]
    assert v["roles"]["13.2"] == ("beyond the claim's premise (also learns from 1,969 unpaired images): shown, "
                                  "never decides")
    assert "spatial LDM, 72 trials (beyond the claim's premise): refuted above" in v["contradiction"]
    assert v["contradiction"].endswith("the verdict rests on the decoders within the claim's premise (rule g)")
    only_beyond = _bound(_r("13", premise="also learns from unpaired images"))
    assert only_beyond["verdict"] == "inconclusive (no decoder within the claim's premise)"


def test_rule_h_claim_16_is_a_set_of_target_levels():
    t = _table(*(_r("16", ci=ci, low=low, high=INF, metric=m, part=f"{h} {m.upper()}", model="final")
                 for h, m, low, ci in (("short-term", "psnr", 10, (15.5, 14.6, 16.4)),
                                       ("short-term", "ssim", 0.1, (0.68, 0.64, 0.73)),
                                       ("medium-term", "psnr", 15, (15.5, 14.6, 16.4)),
                                       ("medium-term", "ssim", 0.3, (0.68, 0.64, 0.73)),
                                       ("long-term", "psnr", 20, (15.5, 14.6, 16.4)),
                                       ("long-term", "ssim", 0.5, (0.68, 0.64, 0.73)))))
    floors = {"training-mean image": {"psnr": 12.7, "ssim": 0.245}, "constant grey (0.5)": {"psnr": 6.35}}
    v = ledger.claim_verdicts(t, floors)["16"]
    assert v["verdict"] == "target levels (not a prediction)"
    assert v["parts"] == {"short-term": "reached — training-mean image also reaches it",
                          "medium-term": "not clearly reached (a 95% CI straddles it)", "long-term": "not reached"}
    assert ("the final model, final, reaches the short-term level, which training-mean image also reaches, does not "
            "clearly reach the medium-term level (a 95% CI straddles it) and does not reach the long-term level.") \
        in v["decided_by"]
    assert v["roles"]["16.5"] == "target part missed"
    assert v["roles"]["16.1"] == "target part met; void as a confirmation: training-mean image also lies in the range"
    counts = ledger.verdict_counts({"16": v, "1": {"verdict": "refuted (below the claim)"}})
    assert counts["target levels (not a prediction)"] == 1 and sum(counts.values()) == 2


def test_counts_add_up_to_claims_and_reject_unknown_verdicts():
    v = ledger.claim_verdicts(_table(_r("1"), _r("1", metric="ssim"), _r("2", "below"), _r("3", "inconclusive"),
                                     _r("4", own_code=True), _r("6b", own_code=True)), NO_FLOORS)
    c = ledger.verdict_counts(v)
    assert sum(c.values()) == len(v) == 5
    assert c == {"confirmed": 1, "refuted (below the claim)": 1, "refuted (above the claim)": 0,
                 "refuted (both sides)": 0, "inconclusive": 3, "target levels (not a prediction)": 0, "untestable": 0}
    with pytest.raises(ValueError, match="unknown claim verdict 'maybe'"):
        ledger.verdict_counts({"1": {"verdict": "maybe"}})
    text = ledger.summary_prose(v, n_rows=6)
    assert text.startswith("Of the report's 5 claims, 5 can be tested with this data. The ledger holds 6 rows. 1 is "
                           "confirmed (claim 1)")
    assert "checkable" not in text  # review1 #11
    assert ("3 are inconclusive: claim 3 (the 95% CI straddles the claimed range) and claims 4 and 6b (only this "
            "study's own code is measured).") in text


# ----------------------------------------------------------------------------- a fabricated study root


def _pooled(mean, half=0.0, n=10):
    per = np.full(n, float(mean))
    per[0], per[1] = mean - half, mean + half
    return {"mean": float(mean), "ci_low": float(mean - half), "ci_high": float(mean + half), "per_image": per.tolist()}


def _metrics(psnr, ssim, r, mse=0.05, half=(0.4, 0.03, 0.03)):
    m = {"psnr": _pooled(psnr, half[0]), "ssim": _pooled(ssim, half[1]), "pixel_r": _pooled(r, half[2]),
         "mse": _pooled(mse, 0.002)}
    m.update(id2=_pooled(0.99, 0.02), id2_within=_pooled(0.975, 0.04), id10=_pooled(0.9, 0.05))
    return m


def _summary(*args, **kw):
    test = _metrics(*args, **kw)
    return {"test": test, "val": test, "seeds": [0, 1, 2]}


def _write(root, chapter, *, models=None, extra=None, n=10, recons=None, params=None):
    t = np.zeros((n, 6, 6), np.float32)
    models = models or {}
    write_results(root / chapter, chapter=chapter, metrics=models,
                  reconstructions=recons if recons is not None else {k: t for k in models}, targets=t,
                  labels=np.array([1, 2] * (n // 2)), params=params or {}, wall_time_s=0.0, extra=extra)


def _extra(root, chapter):
    return json.loads((root / chapter / "metrics.json").read_text())["extra"]


FINAL = "prior VAE + ridge map, 400 voxels (diffusion off), 90 trials"
SPATIAL = "spatial LDM (x0, mean of 8 samples), 72 trials"
BASE90 = "autoencoder + ridge, 90 trials"
NO_PER_IMAGE = ("psnr", "ssim", "pixel_r")


def _no_per_image(m):
    return {k: {x: v[x] for x in ("mean", "ci_low", "ci_high")} for k, v in m.items() if k in NO_PER_IMAGE}


def build_study_root(root):
    """Results of chapters 00-08 with the verdict rows of the current row schema (and the extras 09 / 10 read)."""
    floors = {"uniform_noise": _metrics(5.0, 0.002, -0.011, 0.316), "constant_0.5": _metrics(6.35, 0.005, 0.0, 0.232),
              "constant_0": _metrics(9.6, 0.078, 0.0, 0.112), "train_mean": _metrics(12.68, 0.245, 0.655, 0.055),
              "class_mean_reference": _metrics(13.57, 0.355, 0.736, 0.045), "ridge": _metrics(14.3, 0.458, 0.791)}
    noise = floors["uniform_noise"]
    _write(root, "00_data_and_metrics", models=floors, extra={
        "data": {"n_train": 90, "n_test": 10, "n_fit": 72, "n_val": 18, "n_voxels": 3092, "image_size": 28,
                 "classes": "six and nine", "dataset": "digit69_28x28.mat", "class_names": {"1": "six", "2": "nine"}},
        "data_sha256": DATA_SHA256, "test_in_training": 0,
        "verdicts": [
            claim_row("3", "random noise ~10 dB", noise["psnr"], low=9, high=11, split="test", metric="psnr",
                      model="uniform_noise"),
            claim_row("4a", "random SSIM ~0.1–0.2", noise["ssim"], low=0.1, high=0.2, split="test", metric="ssim",
                      model="uniform_noise"),
            claim_row("4b", "random r ~0", noise["pixel_r"], low=-0.05, high=0.05, split="test", metric="pixel_r",
                      model="uniform_noise")]})
    orig = _summary(6.33, 0.005, -0.02, mse=0.234, half=(0.03, 0.0005, 0.004))
    rows01 = expectation_rows("original", orig["test"], phase="original") + [
        claim_row("5a", "5.2 M parameters", exact(5.187), low=5.15, high=5.25, split="count", model="original"),
        claim_row("5b", "57,000 per sample", exact(57.6), low=55, high=59, split="formula", model="original"),
        claim_row("5c", "severe overfitting", exact(0.99), low=1.5, split="validation", model="original"),
        claim_row("6a", "fMRI mean ~0", exact(0.0), low=-0.05, high=0.05, split="training",
                  model="this study's normaliser", own_code=True),
        claim_row("6b", "fMRI std ~1", exact(1.0), low=0.95, high=1.05, split="training",
                  model="this study's normaliser", own_code=True),
        paired_claim_row("7", "skip connections are the root cause", {"mean": -0.14, "ci_low": -0.18,
                                                                     "ci_high": -0.10, "p_wilcoxon": 0.001},
                         low=0.061, split="validation", model="leave-one-out: skip U-Net removed")]
    full, fixes = "+ skip U-Net (all fixed)", ("condition", "VAE decoder training", "DDIM sampler", "skip U-Net")
    ladder = {"original": (6.33, 0.005, -0.02), "+ condition injected": (4.1, 0.01, 0.05),
              "+ VAE decoder trained": (8.9, 0.2, 0.57), "+ DDIM sampler": (8.63, 0.21, 0.6),
              full: (8.35, 0.2, 0.45), "all fixed − condition": (8.1, 0.19, 0.43),
              "all fixed − VAE decoder training": (4.42, 0.011, -0.001),
              "all fixed − DDIM (re-noising sampler)": (9.5, 0.3, 0.75), "all fixed − skip U-Net": (8.63, 0.21, 0.6)}
    _write(root, "01_diagnostics", models={"original@seed0": orig["test"]}, extra={
        "summary": {"original": orig}, "verdicts": rows01,
        "leave_one_out_val_drop": {"condition": -0.01, "VAE decoder training": 0.061, "DDIM sampler": -0.54,
                                   "skip U-Net": -0.141},
        "leave_one_out_val_comparison": {"skip U-Net": {"mean": -0.141, "ci_low": -0.19, "ci_high": -0.09,
                                                        "p_wilcoxon": 0.001}},
        "ladder_test": {n: _no_per_image(_metrics(*v, half=(0.08, 0.01, 0.01))) for n, v in ladder.items()},
        "ladder_fixes": {
            "condition": {"added": "+ condition injected", "before": "original", "removed": "all fixed − condition"},
            "VAE decoder training": {"added": "+ VAE decoder trained", "before": "+ condition injected",
                                     "removed": "all fixed − VAE decoder training"},
            "DDIM sampler": {"added": "+ DDIM sampler", "before": "+ VAE decoder trained",
                             "removed": "all fixed − DDIM (re-noising sampler)"},
            "skip U-Net": {"added": full, "before": "+ DDIM sampler", "removed": "all fixed − skip U-Net"}},
        "root_cause": "VAE decoder training"})
    assert set(fixes) == set(_extra(root, "01_diagnostics")["ladder_fixes"])
    s02 = {"original": orig, "original + U-Net": _summary(4.42, 0.011, -0.001, half=(0.08, 0.01, 0.01)),
           "U-Net pipeline": _summary(13.29, 0.542, 0.735, half=(0.8, 0.06, 0.04))}
    rows02 = expectation_rows("original", orig["test"], phase="original")
    for name in ("original + U-Net", "U-Net pipeline"):
        rows02 += expectation_rows(name, s02[name]["test"], phase="phase1")
    rows02 += [claim_row("5c", "repaired models overfit", exact(3.1), low=1.5, split="validation", model=n)
               for n in ("original + U-Net", "U-Net pipeline")]
    _write(root, "02_unet_fix", extra={"summary": s02, "selected_on_validation": "U-Net pipeline", "verdicts": rows02,
                                       "sampling": {"original": {"steps": 50, "sampler": "original"},
                                                    "original + U-Net": {"steps": 50, "sampler": "original"},
                                                    "U-Net pipeline": {"steps": 50}}})
    s03 = {n: _summary(p, 0.59, 0.77, half=(0.8, 0.06, 0.04)) for n, p in (("MSE only", 13.75), ("report's mix", 13.89),
                                                                           ("MSE + perceptual", 13.85))}
    rows03 = [r for n in s03 for r in expectation_rows(n, s03[n]["test"], phase="phase1")]
    rows03.append(paired_claim_row("11b", "priority 2 +2–5 dB", {"mean": 0.14, "ci_low": -0.15, "ci_high": 0.41,
                                                                 "p_wilcoxon": 0.4}, low=2, high=5, split="test",
                                   metric="psnr", model="report's mix − MSE only"))
    _write(root, "03_loss_function", extra={"summary": s03, "selected_on_validation": "MSE + perceptual",
                                            "verdicts": rows03})
    sel04 = "regularised MLP, no augmentation"
    s04 = {"the report's MLP": _summary(13.62, 0.578, 0.76, half=(0.7, 0.04, 0.03)),
           sel04: _summary(13.80, 0.588, 0.764, half=(0.8, 0.06, 0.03))}
    rows04 = [r for n in s04 for r in expectation_rows(n, s04[n]["test"], phase="phase1")]
    for m, test, val in (("psnr", (0.18, -0.23, 0.65), (0.65, 0.16, 1.16)), ("ssim", (0.01, -0.03, 0.04),
                                                                             (0.048, 0.012, 0.086))):
        for split, (mu, lo, hi) in (("test", test), ("validation", val)):
            rows04.append(paired_claim_row("5d", f"fewer encoder weights generalise better ({split})",
                                           {"mean": mu, "ci_low": lo, "ci_high": hi, "p_wilcoxon": 0.2}, split=split,
                                           metric=m, model=f"{sel04} − the report's MLP"))
    _write(root, "04_fmri_encoder", extra={"summary": s04, "selected_on_validation": sel04, "verdicts": rows04})
    s05 = {"base": _summary(13.75, 0.583, 0.76, half=(0.8, 0.06, 0.04)),
           "cross-attention conditioning": _summary(13.74, 0.564, 0.757, half=(0.8, 0.06, 0.04))}
    rows05 = [r for n in s05 for r in expectation_rows(n, s05[n]["test"], phase="phase2")]
    why17 = "the two VAEs also differ by residual blocks and canvas: latent size is not isolated"
    rows05 += [paired_claim_row("17", "8×8×8 beats 4×7×7: VAE ceiling", {"mean": 3.0, "ci_low": 2.2, "ci_high": 3.8,
                                                                         "p_wilcoxon": 0.002}, split="test",
                                metric="psnr", model="VAE 8×8×8 − VAE 4×7×7", proxy=True, note=why17),
               paired_claim_row("17", "8×8×8 beats 4×7×7: model", {"mean": 0.48, "ci_low": 0.07, "ci_high": 0.92,
                                                                   "p_wilcoxon": 0.03}, split="validation",
                                metric="psnr", model="base − VAE 4×7×7", proxy=True, note=why17)]
    _write(root, "05_conditioning_vae", extra={"summary": s05, "selected_on_validation": "cross-attention conditioning",
                                               "verdicts": rows05})
    s06 = {"no augmentation": _summary(13.80, 0.589, 0.764, half=(0.8, 0.06, 0.03))}
    _write(root, "06_augmentation_multiscale", extra={
        "summary": s06, "selected_on_validation": "no augmentation",
        "verdicts": expectation_rows("no augmentation", s06["no augmentation"]["test"], phase="phase3")})
    best = _metrics(15.53, 0.684, 0.837, mse=0.030, half=(0.95, 0.045, 0.03))
    best.update(digit_acc=_pooled(1.0), feature_id2=_pooled(0.97, 0.02), kid_digit=_pooled(0.19, 0.4))
    fit_name = FINAL.replace("90 trials", "72 trials")
    _write(root, "07_image_prior", models={f"{FINAL}@seed0": best}, extra={
        "summary": {fit_name: _summary(15.44, 0.68, 0.83), FINAL: {"test": best, "seeds": [0, 1]}},
        "selected_on_validation": fit_name, "selected_all": FINAL,
        "model_names": {"fit": fit_name, "all": FINAL}, "selected_is_ldm": False, "prior_phrase": "unpaired MNIST digits",
        "prior_images": {"n_images": 1969}, "verdicts": expectation_rows(FINAL, best, phase="limit90")})
    base90 = _metrics(14.99, 0.658, 0.820, mse=0.032)
    base90.update(digit_acc=_pooled(1.0), feature_id2=_pooled(0.99, 0.01), kid_digit=_pooled(0.08, 0.5))
    diff = {m: {"mean": d, "ci_low": d - w, "ci_high": d + w, "p_wilcoxon": 0.2}
            for m, d, w in (("psnr", 0.537, 0.557), ("ssim", 0.025, 0.04), ("pixel_r", 0.017, 0.023))}
    behind = {"psnr": {"mean": -0.9, "ci_low": -1.48, "ci_high": -0.35, "p_wilcoxon": 0.01},
              "ssim": {"mean": -0.01, "ci_low": -0.05, "ci_high": 0.03, "p_wilcoxon": 0.6}}
    gain = {"mean": 0.83, "ci_low": 0.46, "ci_high": 1.2, "p_wilcoxon": 0.01}
    rows08 = (expectation_rows(FINAL, best, phase="limit90") + expectation_rows(BASE90, base90, phase="limit90")
              + [paired_claim_row("14", f"more paired trials still help: {m}", gain, split="validation", metric=m,
                                  model="image prior", proxy=True) for m in ("psnr", "ssim")])
    headline = {"uniform_noise": noise, "train_mean": floors["train_mean"], FINAL: best, BASE90: base90,
                "autoencoder + ridge, 72 trials": _metrics(14.8, 0.65, 0.81),
                "ridge regression to pixels, 90 trials": _metrics(14.5, 0.47, 0.8),
                "ridge to the VAE latent, decoded, 90 trials": _metrics(14.0, 0.5, 0.78),
                SPATIAL: _metrics(14.2, 0.59, 0.76)}
    unpaired = {FINAL: True, BASE90: True, "autoencoder + ridge, 72 trials": True}
    fitted = {FINAL: 90, BASE90: 90, "autoencoder + ridge, 72 trials": 72, "ridge regression to pixels, 90 trials": 90,
              "ridge to the VAE latent, decoded, 90 trials": 90, SPATIAL: 72}
    cands = {"spatial LDM: x0": _metrics(14.0, 0.183, 0.75), fit_name: _metrics(15.2, 0.617, 0.83)}
    _write(root, "08_benchmarks", models={"autoencoder + ridge (90 trials)": base90, f"{FINAL}@seed0": best},
           recons={f"{FINAL}@seed0": np.full((10, 6, 6), 0.5, np.float32),
                   "autoencoder + ridge (90 trials)": np.zeros((10, 6, 6), np.float32)},
           params={"select_metric": "ssim"}, extra={
               "best_model": FINAL, "best_model_test": best, "best_model_is_ldm": False,
               "best_baseline_val": "autoencoder + ridge", "best_baseline": BASE90,
               "selected_on_validation": fit_name, "candidates_val_seed0": cands,
               "baselines_val": {"autoencoder + ridge": _metrics(14.9, 0.389, 0.8), "ridge": _metrics(13.5, 0.37, 0.78)},
               "paired_test": {f"{FINAL} − {BASE90}": diff, f"{SPATIAL} − autoencoder + ridge, 72 trials": behind},
               "paired_best": f"{FINAL} − {BASE90}", "planned_comparisons": [f"{FINAL} − {BASE90}"],
               "baseline_keys": {BASE90: {"baseline": "autoencoder + ridge", "trials": 90,
                                          "results_key": "autoencoder + ridge (90 trials)"}},
               "headline_rows": headline,
               "headline_roles": {n: {"comparison": "reference" if n in ("uniform_noise", "train_mean") else
                                      "planned" if n in (FINAL, BASE90) else "exploratory"} for n in headline},
               "uses_unpaired_images": {n: unpaired.get(n, False) for n in headline if n in fitted},
               "fitted_on": {n: fitted.get(n) for n in headline},
               "spatial_sampling": {"model": SPATIAL, "n_samples": 8, "sample_std": 0.0012, "prior_sample_std": 0.083,
                                    "steps_psnr": {"10": 14.039, "50": 14.033, "250": 14.028},
                                    "in_effect_deterministic": True},
               "test_set_use": {"decoders": 27}, "headline_seeds": {n: 5 if n == FINAL else 1 for n in headline},
               "targets": {"psnr": 17.0, "ssim": 0.75, "pixel_r": 0.88, "id2": 1.0, "id2_within": 0.95},
               "verdicts": rows08})
    return root


@pytest.fixture
def study_root(tmp_path):
    return build_study_root(tmp_path)


EXPECTED = {
    "1": "inconclusive (a trivial reference passes too)",   # the constant grey image passes the ±tolerance
    "2": "confirmed", "3": "refuted (below the claim)", "4a": "refuted (below the claim)", "4b": "confirmed",
    "5a": "inconclusive (only own-code rows)", "5b": "inconclusive (only own-code rows)",  # counts of the reimplementation
    "5c": "refuted (below the claim)",                       # on the original; the repaired models do overfit
    "5d": "inconclusive (CI straddles the claimed range)",   # the test rows decide over the validation rows
    "6a": "inconclusive (only own-code rows)", "6b": "inconclusive (only own-code rows)",
    "7": "refuted (below the claim)",
    "8": "refuted (above the claim)",                        # PSNR void (training mean), SSIM and r above
    "9": "refuted (both sides)", "10": "refuted (both sides)",
    "11a": "refuted (below the claim)",                      # the architecture alone loses PSNR
    "11b": "refuted (below the claim)", "11c": "untestable with this data",
    "12": "refuted (both sides)",
    "13": "refuted (both sides)",                            # paired-only decoders: PSNR below, SSIM and r above
    "14": "untestable with this data",
    "15": "untestable with this data", "16": "target levels (not a prediction)",
    "17": "inconclusive (only proxy rows)",                  # the two VAEs differ by more than latent size
    "U1": "untestable with this data", "U2": "untestable with this data", "U3": "untestable with this data",
}


@pytest.fixture
def study(study_root):
    t = ledger.ledger(study_root, n_boot=50)
    return t, ledger.claim_verdicts(t, ledger.trivial_references(study_root))


def test_the_study_gets_one_verdict_per_claim(study):
    t, v = study
    assert {c: x["verdict"] for c, x in v.items()} == EXPECTED
    counts = ledger.verdict_counts(v)
    assert sum(counts.values()) == len(EXPECTED) and counts["target levels (not a prediction)"] == 1
    json.dumps(v)  # stored in metrics.json as it is
    assert set(t["split"]) <= {"test", "validation", "training", "count", "formula", "data file"}
    assert t["model"].astype(bool).all() and t["split"].astype(bool).all()
    assert t["row"].is_unique


def test_the_study_verdicts_rest_on_the_right_rows(study):
    t, v = study
    rows = t.set_index("row")
    assert model_label("constant_0.5") in v["1"]["decided_by"]
    assert v["11a"]["models"] == ["original + U-Net − original"]
    assert "U-Net pipeline − original on the test trials: confirmed" in v["11a"]["contradiction"]
    assert v["11a"]["decided_by"].endswith("its 1 proxy row is shown and never counts (it points the same way).")
    assert "'original' sampler kept" in rows.loc[v["11a"]["rows"][0], "report says"]
    assert v["5c"]["models"] == ["original Brain LDM (reproduced)"] and "U-Net pipeline" in v["5c"]["contradiction"]
    assert {rows.loc[r, "split"] for r in v["5d"]["rows"]} == {"test"}
    assert v["8"]["models"] == ["regularised MLP, no augmentation"] and v["8"]["chapters"] == ["04_fmri_encoder"]
    assert model_label("train_mean") in v["8"]["decided_by"]
    assert model_label("train_mean") in v["16"]["parts"]["short-term"]
    assert v["16"]["parts"]["long-term"] == "not reached"
    assert v["2"]["roles"]["2.2"].startswith("proxy: shown, never counts")
    claim1 = t[t["claim"] == "1"]
    assert len(claim1) == 3 and set(claim1["chapter"]) == {"01_diagnostics, 02_unet_fix"}  # one row per measurement
    shown = ledger.annotate(t, v)
    assert (shown.loc[shown["claim"] == "14", "counts as"] != "decides").all()
    assert set(shown.loc[shown["proxy"], "shown verdict"]) == {PROXY_DISPLAY}
    beyond = shown[(shown["claim"] == "13") & shown["premise"].astype(bool)]  # as on the pages of chapters 07 and 08
    assert len(beyond) and all(s.startswith("not counted (beyond the claim's premise: ") for s in beyond["shown verdict"])


def test_claim_13_is_decided_on_paired_only_decoders_of_all_trials(study):
    t, v = study
    c13 = t[t["claim"] == "13"].set_index("model")
    assert c13.loc[FINAL, "premise"].tolist() == ["also learns from 1,969 unpaired images"] * 3  # merged rows: 07, 08
    assert c13.loc[SPATIAL, "premise"].tolist() == ["fitted on 72 of the 90 training trials"] * 3
    assert (c13.loc["ridge regression to pixels, 90 trials", "premise"] == "").all()
    assert "uniform noise" not in c13.index  # references are not decoders
    assert set(v["13"]["models"]) == {"ridge regression to pixels, 90 trials",
                                      "ridge to the VAE latent, decoded, 90 trials"}
    assert v["13"]["parts"] == {"PSNR": "refuted (below the claim)", "SSIM": "refuted (above the claim)",
                                "pixel r": "refuted (above the claim)"}
    assert ("beyond the claim's premise and never deciding — also learns from 1,969 unpaired images: "
            f"{FINAL} and {BASE90}; ") in v["13"]["decided_by"]
    assert "fitted on 72 of the 90 training trials: " + SPATIAL in v["13"]["decided_by"]
    assert v["13"]["contradiction"] == ""  # below the range at 72 trials says nothing against an upper bound
    assert all(role.startswith("beyond the claim's premise") for row, role in v["13"]["roles"].items()
               if t.set_index("row").loc[row, "model"] in (FINAL, BASE90, SPATIAL))


def test_claim_13_needs_what_each_decoder_learned_from(study_root):
    x = _extra(study_root, "08_benchmarks")
    del x["fitted_on"]
    _write(study_root, "08_benchmarks", extra=x)
    with pytest.raises(KeyError, match=r"lack extra\['fitted_on'\].*paired trials only.*re-run 08_benchmarks"):
        ledger.ledger(study_root, n_boot=20)


def test_claim_11a_needs_the_original_sampler_kept(study_root):
    x = _extra(study_root, "02_unet_fix")
    x["sampling"]["original + U-Net"] = {"steps": 50, "sampler": "ddim"}
    _write(study_root, "02_unet_fix", extra=x)
    with pytest.raises(ValueError, match=r"samples with 'ddim' and the original with 'original'.*re-run 02_unet_fix"):
        ledger.computed_claims(study_root, n_boot=20)
    del x["sampling"]
    _write(study_root, "02_unet_fix", extra=x)
    with pytest.raises(KeyError, match=r"extra\['sampling'\].*re-run 02_unet_fix"):
        ledger.computed_claims(study_root, n_boot=20)


def test_claim_table_and_contradictions(study):
    t, v = study
    md = ledger.claim_table_markdown(v)
    assert md.count("\n") == len(v) + 1
    assert ("| 2 | PSNR 5.49 dB corresponds to MSE 0.282 | **confirmed** | the PSNR formula, 10·log10(1/MSE) — "
            "arithmetic | this page |") in md
    assert "| original Brain LDM (reproduced) — the test trials |" in md  # no doubled brackets
    assert "{doc}`ch. 4 <04_fmri_encoder>`" in md and "{doc}`04_fmri_encoder`" not in md
    assert "**target levels (not a prediction)**: short-term reached — " in md
    assert list(ledger.claim_table(v).index) == list(EXPECTED)
    lines = ledger.contradictions(v)
    assert any(line.startswith("**Claim 5c** — the original overfits severely: ") for line in lines)
    assert any(line.startswith("**Claim 11a** — priority 1 (architecture) gives +5–10 dB: ") for line in lines)


def test_summary_prose_counts_claims(study):
    t, v = study
    text = ledger.summary_prose(v, n_rows=len(t))
    assert text.startswith(f"Of the report's {len(EXPECTED)} claims, 21 can be tested with this data. The ledger "
                           f"holds {len(t)} rows. 2 are confirmed")
    assert "2 are confirmed (claims 2 and 4b)" in text
    assert ("7 are inconclusive: claim 1 (a trivial reference also falls in the claimed range), claims 5a, 5b, 6a and "
            "6b (only this study's own code is measured), claim 5d (the 95% CI straddles the claimed range) and claim "
            "17 (measured by proxy rows only).") in text
    assert ("Claim 16 is a set of target levels, not a prediction: short-term reached — correct-class mean (reads "
            "the test labels) and training-mean image also reach it; medium-term not clearly reached") in text
    assert "6 cannot be tested with this data (claims 11c, 14, 15, U1, U2 and U3)" in text


def test_rows_written_before_the_schema_name_the_chapter_to_rerun(study_root):
    old = {"claim": "5d", "report says": "x", "claimed range": "> 0", "measured mean [95% CI]": "0.1 [0, 0.2]",
           "verdict": "inconclusive", "model": "m"}
    _write(study_root, "04_fmri_encoder", extra={"verdicts": [old]})
    with pytest.raises(KeyError, match=r"chapter 04_fmri_encoder's verdict rows lack the keys \['split'.*re-run "
                                       r"04_fmri_encoder"):
        ledger.ledger(study_root)
    bad = claim_row("14 (proxy)", "x", exact(1.0), split="validation", proxy=True)
    _write(study_root, "04_fmri_encoder", extra={"verdicts": [bad]})
    with pytest.raises(ValueError, match=r"claim id '14 \(proxy\)' .* proxy=True: re-run 04_fmri_encoder"):
        ledger.collect_verdicts(study_root)
    _write(study_root, "04_fmri_encoder", extra={"verdicts": [{**bad, "claim": "14", "split": "val"}]})
    with pytest.raises(ValueError, match="split 'val', not one of"):
        ledger.collect_verdicts(study_root)


def test_a_claim_whose_model_no_row_names_fails(study_root):
    rows = [r for r in expectation_rows("a different model", _metrics(13.8, 0.59, 0.76), phase="phase1")]
    _write(study_root, "04_fmri_encoder", extra={"summary": {"sel": _summary(13.8, 0.59, 0.76)},
                                                 "selected_on_validation": "sel", "verdicts": rows})
    for ch in ("02_unet_fix", "03_loss_function"):  # no other claim-8 rows
        x = _extra(study_root, ch)
        x["verdicts"] = [r for r in x["verdicts"] if r["claim"] != "8"]
        _write(study_root, ch, extra=x)
    with pytest.raises(KeyError, match=r"claim 8 is about the model at the end of phase 1.*'sel'.*re-run "
                                       r"04_fmri_encoder"):
        ledger.ledger(study_root, n_boot=20)


def test_trivial_references_come_from_chapter_00(study_root, tmp_path):
    f = ledger.trivial_references(study_root)
    assert f[model_label("constant_0.5")]["psnr"] == 6.35 and len(f) == len(ledger.TRIVIAL_REFERENCES)
    _write(tmp_path / "other", "00_data_and_metrics", models={"uniform_noise": _metrics(5, 0, 0)})
    with pytest.raises(KeyError, match=r"no trivial reference \['constant_0.5'.*re-run 00_data_and_metrics"):
        ledger.trivial_references(tmp_path / "other")


def test_computed_claims(study_root):
    t = ledger.computed_claims(study_root, n_boot=50)
    arch = t[(t["claim"] == "11a") & (t["subject"] == True)].iloc[0]  # noqa: E712 (object column)
    assert arch["mean"] == pytest.approx(4.42 - 6.33) and arch["split"] == "test" and arch["difference"]
    assert arch["verdict"] == "refuted (below the claim)"
    loo = t[(t["claim"] == "11a") & t["proxy"].astype(bool)].iloc[0]
    assert (loo["split"], loo["metric"], loo["mean"], loo["chapter"]) == ("validation", "pixel_r", -0.141,
                                                                          "01_diagnostics")
    assert t.loc[t["claim"] == "12", "part"].tolist() == ["week 1", "week 2", "weeks 3–4"]
    assert t.loc[t["claim"] == "12", "verdict"].tolist() == ["refuted (above the claim)", "refuted (below the claim)",
                                                             "refuted (below the claim)"]
    assert t.loc[t["claim"] == "16", "verdict"].tolist() == ["confirmed", "confirmed", "inconclusive", "confirmed",
                                                             "refuted (below the claim)", "confirmed"]
    assert t.loc[t["claim"] == "2", "proxy"].tolist() == [False, True]
    assert len(t[t["claim"] == "13"]) == 3 * 6  # six non-reference headline decoders, three metrics each


def test_computed_claims_name_what_is_missing(study_root):
    _write(study_root, "02_unet_fix", extra={"summary": {"original": _summary(6.3, 0.005, 0.0)}})
    with pytest.raises(KeyError, match=r"no summary of \['original \+ U-Net', 'U-Net pipeline'\].*re-run 02_unet_fix"):
        ledger.computed_claims(study_root)
    _write(study_root, "08_benchmarks", extra={"summary": {}})
    with pytest.raises(KeyError, match="headline_rows"):
        ledger.headline_rows(study_root)


def test_claim_sort_key():
    assert sorted(["11b", "2", "U1", "11a", "1"], key=ledger.claim_sort_key) == ["1", "2", "11a", "11b", "U1"]


def test_headline_rows_lead_with_the_best_model(study_root):
    h = ledger.headline_rows(study_root)
    assert list(h)[:2] == [FINAL, "original Brain LDM (reproduced, 3 seeds)"]
    assert h["original Brain LDM (reproduced, 3 seeds)"]["psnr"]["mean"] == 6.33


def test_missing_chapter_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the '01_diagnostics' chapter"):
        ledger.headline_rows(tmp_path / "empty")


def test_final_model_is_named_for_what_it_computes(study_root):
    f = ledger.final_model(study_root)
    assert f["name"] == FINAL and f["is_ldm"] is False and f["baseline_uses_unpaired_images"]
    assert f["uses_unpaired_images"] and f["fitted_on"] == 90 and f["refitted_on_all"]
    assert f["paired"]["psnr"]["mean"] == 0.537 and f["n_prior_images"] == 1969
    assert f["recons_key"] == f"{FINAL}@seed0" and f["baseline_row"] == BASE90
    assert f["baseline_recons_key"] == "autoencoder + ridge (90 trials)"
    x = _extra(study_root, "07_image_prior")
    del x["model_names"]
    _write(study_root, "07_image_prior", extra=x)
    with pytest.raises(KeyError, match=r"chapter 07_image_prior's results lack extra\['model_names'\].*re-run "
                                       "07_image_prior"):
        ledger.final_model(study_root)


def test_final_model_must_say_whether_it_samples_and_be_a_headline_decoder(study_root):
    x = _extra(study_root, "08_benchmarks")
    _write(study_root, "08_benchmarks", extra={k: v for k, v in x.items() if k != "best_model_is_ldm"})
    with pytest.raises(KeyError, match=r"best_model_is_ldm.*re-run 08_benchmarks"):
        ledger.final_model(study_root)
    _write(study_root, "08_benchmarks", extra={**x, "best_model": "spatial LDM: x0"})
    with pytest.raises(KeyError, match=r"headline rows hold no decoder 'spatial LDM: x0'.*re-run 08_benchmarks"):
        ledger.final_model(study_root)
    _write(study_root, "08_benchmarks", extra={**x, "best_model": SPATIAL, "best_model_is_ldm": True})
    f = ledger.final_model(study_root)
    assert f["is_ldm"] is True and f["fitted_on"] == 72 and not f["refitted_on_all"]


def test_final_reconstructions_come_from_exactly_one_key():
    recons = {f"{FINAL}@seed0": np.ones(3), "prior VAE + ridge map, 72 trials@seed0": np.zeros(3)}
    assert ledger.model_reconstructions(recons, f"{FINAL}@seed0").sum() == 3
    with pytest.raises(KeyError, match=r"no 'spatial LDM \(x0\), 72 trials@seed0'.*re-run 08_benchmarks"):
        ledger.model_reconstructions(recons, "spatial LDM (x0), 72 trials@seed0")  # no other model in its place
    with pytest.raises(KeyError, match=r"similar keys: \[.*'prior VAE \+ ridge map, 72 trials@seed0'\]"):
        ledger.model_reconstructions(recons, "prior VAE + ridge map, 90 trials@seed0")


def test_data_facts_come_from_chapter_00(study_root, tmp_path):
    assert ledger.data_facts(study_root)["n_test"] == 10
    assert ledger.class_names(study_root) == {1: "six", 2: "nine"} and ledger.is_published_data(study_root)
    _write(tmp_path / "x", "00_data_and_metrics", extra={"data": {"n_test": 10}})
    with pytest.raises(KeyError, match=r"lack extra\['data'\] entries \['n_train'.*re-run 00_data_and_metrics"):
        ledger.data_facts(tmp_path / "x")
    with pytest.raises(KeyError, match=r"extra\['data'\]\['class_names'\].*re-run 00_data_and_metrics"):
        ledger.class_names(tmp_path / "x")
    with pytest.raises(KeyError, match=r"extra\['data_sha256'\].*re-run 00_data_and_metrics"):
        ledger.is_published_data(tmp_path / "x")
    _write(tmp_path / "y", "00_data_and_metrics", extra={"data_sha256": "0" * 64})
    assert ledger.is_published_data(tmp_path / "y") is False


def test_only_digit_words_make_digits():
    assert ledger.classes_are_digits(["six", "Nine"])
    assert not ledger.classes_are_digits(["ring", "square"]) and not ledger.classes_are_digits(["six", "class 3"])
    assert not ledger.classes_are_digits([])


def test_prior_description_comes_from_chapter_07(study_root):
    assert ledger.prior_description(study_root) == "unpaired MNIST digits"
    x = _extra(study_root, "07_image_prior")
    del x["prior_phrase"]
    _write(study_root, "07_image_prior", extra=x)
    with pytest.raises(KeyError, match=r"prior_phrase.*re-run 07_image_prior"):
        ledger.prior_description(study_root)


def test_chapter_titles_come_from_the_notebooks():
    assert ledger.chapter_title("09_conclusions").startswith("9. Conclusions")
    with pytest.raises(FileNotFoundError, match="no notebook 99_x.ipynb"):
        ledger.chapter_title("99_x")


def test_chapter_refs_use_short_text():
    assert ledger.chapter_ref("07_image_prior") == "{doc}`chapter 7 <07_image_prior>`"
    assert ledger.chapter_ref("10_executive_summary", short=True) == "{doc}`ch. 10 <10_executive_summary>`"
    assert ledger.chapter_ref("09_conclusions", here="09_conclusions") == "this page"
    assert ledger.chapter_ref("01_diagnostics", capital=True) == "{doc}`Chapter 1 <01_diagnostics>`"
    with pytest.raises(ValueError, match="'references' is not a chapter file name"):
        ledger.chapter_ref("references")


def test_the_rule_is_declared_in_the_module_docstring():
    assert ledger.RULE in ledger.__doc__
    for bullet in ("(a)", "(b)", "(c)", "(d)", "(e)", "(f)", "(g)", "(h)"):
        assert f"**{bullet}" in ledger.RULE
    assert "paired trials only" in ledger.RULE and "deciding or not" in ledger.RULE


def test_trajectory_reads_selected_models_and_quotes_expectations(study_root):
    from ldm_core.study.claims import REPORT_EXPECTATIONS

    for ch in ("02_unet_fix", "05_conditioning_vae"):  # give them a known selection
        _write(study_root, ch, extra={"summary": {"sel": _summary(9.0, 0.1, 0.1)}, "selected_on_validation": "sel"})
    t = ledger.trajectory(study_root)
    assert list(t["chapter"]) == [c for _, c, _ in ledger.TRAJECTORY]
    assert t.loc[0, "model"] == "original" and t.loc[0, "psnr"] == 6.33
    assert t.loc[1, "psnr"] == 9.0 and t.loc[1, "psnr_expected"] == REPORT_EXPECTATIONS["phase1"]["psnr"]
    assert t.iloc[-1]["model"] == FINAL and t.iloc[-1]["psnr"] == 15.53
    assert "premise" in t.iloc[-1]["stage"]  # the image prior is beyond claim 13's premise
    # chapter 05 kept chapter 02's model (identical per-image scores): the trajectory says so
    stage = dict(zip(t["chapter"], t["stage"]))
    assert t.set_index("chapter").loc["05_conditioning_vae", "same_as"] == stage["02_unet_fix"]
    assert t.set_index("chapter").loc["02_unet_fix", "same_as"] == ""


def test_baseline_references_take_the_largest_trial_count():
    m = {"psnr": {"mean": 14.0}, "ssim": {"mean": 0.5}}
    headline = {"ridge regression to pixels, 72 trials": {"psnr": {"mean": 13.0}},
                "ridge regression to pixels, 90 trials": m, "ridge to the VAE latent, decoded, 90 trials": m,
                "uniform_noise": m}
    refs = ledger.baseline_references(headline)
    assert refs == {"ridge regression to pixels (90 trials)": {"psnr": 14.0, "ssim": 0.5},
                    "ridge to the VAE latent, decoded (90 trials)": {"psnr": 14.0, "ssim": 0.5}}
    assert ledger.baseline_references({}) == {}


# ----------------------------------------------------------------------------- the first page's sentences


def test_standing_text_states_each_metric_with_its_side():
    c = {"psnr": {"mean": -0.9, "ci_low": -1.48, "ci_high": -0.35}, "ssim": {"mean": 0.01, "ci_low": -0.03,
                                                                           "ci_high": 0.05},
         "mse": {"mean": -0.004, "ci_low": -0.006, "ci_high": -0.001}}
    assert ledger.standing_text(c, against="the baseline") == (
        "ahead of the baseline on MSE (-0.004 [-0.006, -0.001]), behind the baseline on PSNR (-0.90 dB [-1.48, "
        "-0.35]) and not separable from the baseline on SSIM (+0.010 [-0.030, +0.050])")


def test_root_cause_uses_the_noise_floor_criterion(study_root):
    e = ledger.root_cause_evidence(study_root)
    assert e["floor_psnr"] == 5.0 and e["root_causes"] == ["VAE decoder training"]
    assert e["fixes"]["VAE decoder training"]["gain"]["psnr"] == pytest.approx(8.9 - 4.1)
    assert e["fixes"]["condition"]["root_cause"] is False  # 8.1 dB without it: far from the floor
    text = ledger.root_cause_text(e)
    assert text.startswith("By the definition of {doc}`chapter 1 <01_diagnostics>`, a defect whose removal alone "
                           "returns the model to the noise floor is a root cause (the noise floor: uniform noise, "
                           "5.00 dB test PSNR).")
    assert ("Removing 'training the VAE decoder' from the fully repaired model brings test PSNR down to 4.42 dB "
            "[4.34, 4.50], and adding it on the cumulative ladder changes PSNR by +4.80 dB and pixel r by +0.520") in text
    assert "raises validation pixel r by 0.141" in text
    x = _extra(study_root, "01_diagnostics")
    del x["ladder_test"]
    _write(study_root, "01_diagnostics", extra=x)
    with pytest.raises(KeyError, match=r"lack extra\['ladder_test'\].*re-run 01_diagnostics"):
        ledger.root_cause_evidence(study_root)


def test_root_cause_text_without_a_root_cause():
    w = {"mean": 8.0, "ci_low": 7.5, "ci_high": 8.5}
    e = {"floor_psnr": 5.0, "root_causes": [], "fixes": {
        "condition": {"without": w, "root_cause": False, "gain": {"psnr": 1, "pixel_r": 0.1}, "val_drop": 0.01}}}
    assert "No single removal does so: the lowest, without 'passing the fMRI condition to the denoiser', scores " \
           "8.00 dB." in ledger.root_cause_text(e)


def test_selection_text_says_what_was_chosen_among_and_when_a_baseline_scores_higher(study_root):
    text = ledger.selection_text(study_root)
    assert text == ("The final model of this study, chosen on validation (SSIM) among the study's candidate models "
                    "(the spatial LDMs and the image-prior model; baselines are not candidates), is "
                    f"**{FINAL}**.")
    assert ledger.selection_text(study_root, after=": it decodes directly").endswith(f"**{FINAL}**: it decodes directly.")
    x = _extra(study_root, "08_benchmarks")
    x["baselines_val"]["autoencoder + ridge"]["ssim"]["mean"] = 0.7
    _write(study_root, "08_benchmarks", extra=x, params={"select_metric": "ssim"})
    assert ledger.selection_text(study_root) == text + (" On the same validation trials the best baseline, "
                                                        "autoencoder + ridge, scores higher (SSIM 0.700 against the "
                                                        "chosen model's 0.617).")


def test_spatial_sampling_text_reads_what_chapter_08_measured(study_root):
    text = ledger.spatial_sampling_text(study_root)
    assert f"The best spatial LDM of chapter 8, {SPATIAL}, is the repaired pipeline of chapters 2–6" in text
    assert ("It samples with a diffusion sampler, but across 8 samples per validation "
            "trial its images differ by a mean per-pixel standard deviation of 0.0012, against 0.083 for the image "
            "prior's diffusion decoder, and its validation PSNR moves by 0.01 dB between 10 and 250 DDIM steps: so in "
            "effect it is a deterministic regressor that does not use diffusion") in text
    assert ("On the test trials, against autoencoder + ridge, 72 trials, it is behind it on PSNR (-0.90 dB [-1.48, "
            "-0.35]) and not separable from it on SSIM (-0.010 [-0.050, +0.030]) (95% CIs of the per-image "
            "differences).") in text
    assert "criterion" not in text
    x = _extra(study_root, "08_benchmarks")
    x["spatial_sampling"].update(criterion="samples differ by less than 5% of the images' spread",
                                 spread={"share": 0.024})
    _write(study_root, "08_benchmarks", extra=x)
    text = ledger.spatial_sampling_text(study_root)
    assert "standard deviation of 0.0012, 2.4% of how much the validation images differ from one another, " in text
    assert "Chapter 8's criterion: samples differ by less than 5% of the images' spread." in text
    del x["spatial_sampling"]["steps_psnr"]
    _write(study_root, "08_benchmarks", extra=x)
    with pytest.raises(KeyError, match=r"spatial_sampling'\] entries \['steps_psnr'\].*re-run 08_benchmarks"):
        ledger.spatial_sampling_text(study_root)


def test_trivial_passes_is_the_one_rule_d_predicate():
    row = claim_row("8", "x", {"mean": 13.0, "ci_low": 12.5, "ci_high": 13.5}, low=12, high=15, split="test",
                    metric="psnr")
    assert ledger.trivial_passes(row, FLOORS, "8") == ["training-mean image"]
    assert ledger.trivial_passes(row, FLOORS, "3") == []  # a claim about the references themselves
    assert ledger.trivial_passes({**row, "difference": True}, FLOORS, "8") == []  # a difference is not a level
    assert ledger.trivial_passes({**row, "metric": "id2"}, FLOORS, "8") == []  # no reference has the metric
