"""The ledger: one verdict per claim by the declared rule. Numbers here are fabricated and known; the study root built
by :func:`build_study_root` mimics the published record closely enough that every claim gets the verdict the issue
asks for."""
import json
import math

import numpy as np
import pandas as pd
import pytest

from ldm_core import ledger
from ldm_core.claims import claim_row, exact, expectation_rows, paired_claim_row
from ldm_core.names import model_label
from ldm_core.results import write_results

INF = math.inf


# ----------------------------------------------------------------------------- a hand-made table for the rule


def _r(claim, kind="confirmed", *, split="test", metric="psnr", model="m", low=0.0, high=10.0, mean=None,
       proxy=False, own_code=False, subject=True, part="", difference=False, chapter="02_unet_fix"):
    """One ledger row whose own verdict is ``kind`` (by its numbers: range [low, high])."""
    mean, lo, hi = {"confirmed": (5, 4, 6), "below": (-5, -6, -4), "above": (15, 14, 16), "inconclusive": (9, 8, 12),
                    "exact": (mean, mean, mean)}[kind if mean is None else "exact"]
    row = claim_row(claim, f"claim {claim}", {"mean": mean, "ci_low": lo, "ci_high": hi}, low=low, high=high,
                    split=split, metric=metric, model=model, proxy=proxy, own_code=own_code, part=part,
                    difference=difference)
    return {**row, "subject": subject, "chapter": chapter}


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
    assert "1 proxy row is shown and never counts" in v["9"]["decided_by"]


def test_untestable_claims_with_proxies_stay_untestable():
    t = pd.concat([ledger.untestable_claims(), _table(_r("14", proxy=True))], ignore_index=True)
    t["row"] = [f"{c}.{k + 1}" for c, k in zip(t["claim"], t.groupby("claim", sort=False).cumcount())]
    v = ledger.claim_verdicts(t, NO_FLOORS)
    assert {c for c, x in v.items() if x["verdict"] == "untestable with this data"} == {"11c", "14", "15", "U1", "U2",
                                                                                        "U3"}
    assert "one pattern per trial" in v["U1"]["decided_by"] and "needs the voxel time series" in v["U1"]["decided_by"]
    assert v["14"]["rows"] == ["14.1"] and "proxy row is shown" in v["14"]["decided_by"]


def test_rule_b_own_code_is_not_evidence():
    v = ledger.claim_verdicts(_table(_r("6a", own_code=True, split="training", model="this study's normaliser"),
                                     _r("7", own_code=True), _r("7", "below")), NO_FLOORS)
    assert v["6a"]["verdict"] == "inconclusive (only own-code rows)"
    assert "report's own preprocessing code" in v["6a"]["decided_by"]  # what would test the report's pipeline
    assert v["7"]["verdict"] == "refuted (below the claim)" and v["7"]["rows"] == ["7.2"]


def test_rule_c_no_confirmation_on_selection_rows_alone():
    v = ledger.claim_verdicts(_table(_r("5d", split="validation"), _r("5d", split="validation", metric="ssim"),
                                     _r("7", "below", split="validation")), NO_FLOORS)
    assert v["5d"]["verdict"] == "inconclusive (only selection rows)"
    assert v["7"]["verdict"] == "refuted (below the claim)"  # a refutation may rest on validation rows


def test_rule_d_a_trivial_reference_voids_a_confirmation():
    t = _table(_r("1", mean=6.33, low=4.49, high=6.49), _r("1", mean=0.005, low=-0.013, high=0.027, metric="ssim"),
               _r("3", mean=6.5, low=4.49, high=6.49 + 0.5),                      # about the references: exempt
               _r("11a", mean=6.0, low=5, high=10, difference=True),              # a difference, not a level
               _r("16", mean=15.5, low=10, high=INF, part="short-term PSNR"),     # the training mean passes > 10 too
               _r("16", mean=15.5, low=15, high=INF, part="medium-term PSNR"))
    v = ledger.claim_verdicts(t, FLOORS)
    assert v["1"]["verdict"] == "inconclusive (a trivial reference passes too)"
    assert "confirmed, but constant grey (0.5) also lies in 4.49–6.49: inconclusive" in v["1"]["decided_by"]
    assert v["1"]["roles"]["1.1"].startswith("decides; void as a confirmation: constant grey (0.5)")
    assert v["3"]["verdict"] == "confirmed" and v["11a"]["verdict"] == "confirmed"
    assert v["16"]["verdict"] == "inconclusive (a trivial reference passes too)"
    assert v["16"]["parts"] == {"short-term PSNR": "inconclusive (a trivial reference passes too)",
                                "medium-term PSNR": "confirmed"}


def test_rule_f_test_rows_decide_over_validation_rows():
    t = _table(_r("5d", "inconclusive", model="reg − MLP"), _r("5d", split="validation", model="reg − MLP"))
    v = ledger.claim_verdicts(t, NO_FLOORS)["5d"]
    assert v["verdict"] == "inconclusive (CI straddles the claimed range)" and v["rows"] == ["5d.1"]
    assert v["roles"]["5d.2"] == "disagrees, overruled (the test trials over the validation trials)"
    assert "reg − MLP on the validation trials: confirmed" in v["contradiction"]
    assert "the test trials over the validation trials" in v["decided_by"]


def test_rule_f_the_model_the_claim_is_about_decides():
    t = _table(_r("5c", "below", split="training", model="original", low=1.5, high=INF),
               _r("5c", split="training", model="U-Net pipeline", subject=False, low=1.5, high=INF),
               _r("5c", "below", split="training", model="original + U-Net", subject=False, low=1.5, high=INF))
    v = ledger.claim_verdicts(t, NO_FLOORS)["5c"]
    assert v["verdict"] == "refuted (below the claim)" and v["rows"] == ["5c.1"] and v["models"] == ["original"]
    assert v["roles"] == {"5c.1": "decides", "5c.3": "agrees (weaker evidence)",
                          "5c.2": "disagrees, overruled (the model the claim is about over other models)"}
    assert "U-Net pipeline on the training trials: confirmed" in v["contradiction"]
    assert v["decided_by"].startswith("Decided on original (the training trials)")


def test_rule_f_rows_of_equal_strength_are_read_together():
    v = ledger.claim_verdicts(_table(_r("13", model="a"), _r("13", "above", model="b")), NO_FLOORS)["13"]
    assert v["verdict"] == "refuted (above the claim)" and v["rows"] == ["13.1", "13.2"]
    assert "rows of equal strength disagree" in v["contradiction"]


def test_counts_add_up_to_claims_and_reject_unknown_verdicts():
    v = ledger.claim_verdicts(_table(_r("1"), _r("1", metric="ssim"), _r("2", "below"), _r("3", "inconclusive"),
                                     _r("4", own_code=True)), NO_FLOORS)
    c = ledger.verdict_counts(v)
    assert sum(c.values()) == len(v) == 4
    assert c == {"confirmed": 1, "refuted (below the claim)": 1, "refuted (above the claim)": 0,
                 "refuted (both sides)": 0, "inconclusive": 2, "untestable": 0}
    with pytest.raises(ValueError, match="unknown claim verdict 'maybe'"):
        ledger.verdict_counts({"1": {"verdict": "maybe"}})
    text = ledger.summary_prose(v, n_rows=5)
    assert text.startswith("Of the report's 4 checkable claims, measured by 5 rows, 1 is confirmed (claim 1)")
    assert "2 are inconclusive (CI straddles the claimed range: 3; only own-code rows: 4)" in text


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


def _write(root, chapter, *, models=None, extra=None, n=10):
    t = np.zeros((n, 6, 6), np.float32)
    models = models or {}
    write_results(root / chapter, chapter=chapter, metrics=models, reconstructions={k: t for k in models}, targets=t,
                  labels=np.array([1, 2] * (n // 2)), params={}, wall_time_s=0.0, extra=extra)


FINAL = "prior VAE + ridge map, 400 voxels (diffusion off), 90 trials"


def build_study_root(root):
    """Results of chapters 00-08 with the verdict rows of the current row schema (and the extras 09 / 10 read)."""
    floors = {"uniform_noise": _metrics(5.0, 0.002, -0.011, 0.316), "constant_0.5": _metrics(6.35, 0.005, 0.0, 0.232),
              "constant_0": _metrics(9.6, 0.078, 0.0, 0.112), "train_mean": _metrics(12.68, 0.245, 0.655, 0.055),
              "class_mean_reference": _metrics(13.57, 0.355, 0.736, 0.045), "ridge": _metrics(14.3, 0.458, 0.791)}
    noise = floors["uniform_noise"]
    _write(root, "00_data_and_metrics", models=floors, extra={
        "data": {"n_train": 90, "n_test": 10, "n_fit": 72, "n_val": 18, "n_voxels": 3092, "image_size": 28,
                 "classes": "six and nine", "dataset": "digit69_28x28.mat"},
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
        claim_row("5b", "57,000 per sample", exact(57.6), low=55, high=59, split="count", model="original"),
        claim_row("5c", "severe overfitting", exact(0.99), low=1.5, split="training", model="original"),
        claim_row("6a", "fMRI mean ~0", exact(0.0), low=-0.05, high=0.05, split="training",
                  model="this study's normaliser", own_code=True),
        claim_row("6b", "fMRI std ~1", exact(1.0), low=0.95, high=1.05, split="training",
                  model="this study's normaliser", own_code=True),
        paired_claim_row("7", "skip connections are the root cause", {"mean": -0.14, "ci_low": -0.18,
                                                                     "ci_high": -0.10, "p_wilcoxon": 0.001},
                         low=0.061, split="validation", model="leave-one-out: skip U-Net removed")]
    _write(root, "01_diagnostics", models={"original@seed0": orig["test"]}, extra={
        "summary": {"original": orig}, "verdicts": rows01,
        "leave_one_out_val_drop": {"VAE decoder training": 0.06, "skip U-Net": -0.14},
        "root_cause": "VAE decoder training"})
    s02 = {"original": orig, "original + U-Net": _summary(4.42, 0.011, -0.001, half=(0.08, 0.01, 0.01)),
           "U-Net pipeline": _summary(13.29, 0.542, 0.735, half=(0.8, 0.06, 0.04))}
    rows02 = expectation_rows("original", orig["test"], phase="original")
    for name in ("original + U-Net", "U-Net pipeline"):
        rows02 += expectation_rows(name, s02[name]["test"], phase="phase1")
    rows02 += [claim_row("5c", "repaired models overfit", exact(3.1), low=1.5, split="training", model=n)
               for n in ("original + U-Net", "U-Net pipeline")]
    _write(root, "02_unet_fix", extra={"summary": s02, "selected_on_validation": "U-Net pipeline", "verdicts": rows02})
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
    rows05 += [paired_claim_row("17", "8×8×8 beats 4×7×7: VAE ceiling", {"mean": 3.0, "ci_low": 2.2, "ci_high": 3.8,
                                                                         "p_wilcoxon": 0.002}, split="test",
                                metric="psnr", model="VAE 8×8×8 − VAE 4×7×7"),
               paired_claim_row("17", "8×8×8 beats 4×7×7: model", {"mean": 0.48, "ci_low": 0.07, "ci_high": 0.92,
                                                                   "p_wilcoxon": 0.03}, split="validation",
                                metric="psnr", model="base − VAE 4×7×7")]
    _write(root, "05_conditioning_vae", extra={"summary": s05, "selected_on_validation": "cross-attention conditioning",
                                               "verdicts": rows05})
    s06 = {"no augmentation": _summary(13.80, 0.589, 0.764, half=(0.8, 0.06, 0.03))}
    _write(root, "06_augmentation_multiscale", extra={
        "summary": s06, "selected_on_validation": "no augmentation",
        "verdicts": expectation_rows("no augmentation", s06["no augmentation"]["test"], phase="phase3")})
    best = _metrics(15.53, 0.684, 0.837, mse=0.030, half=(0.95, 0.045, 0.03))
    fit_name = FINAL.replace("90 trials", "72 trials")
    _write(root, "07_image_prior", models={"direct (90 trials)@seed0": best}, extra={
        "summary": {"direct": _summary(15.44, 0.68, 0.83), "direct (90 trials)": {"test": best, "seeds": [0, 1]}},
        "selected_on_validation": "direct", "selected_90": "direct (90 trials)",
        "model_names": {"fit": fit_name, "all": FINAL}, "selected_is_ldm": False,
        "prior_images": {"n_images": 1969}, "verdicts": expectation_rows(FINAL, best, phase="limit90")})
    base90 = _metrics(14.99, 0.658, 0.820, mse=0.032)
    diff = {m: {"mean": d, "ci_low": d - w, "ci_high": d + w, "p_wilcoxon": 0.2}
            for m, d, w in (("psnr", 0.537, 0.557), ("ssim", 0.025, 0.04), ("pixel_r", 0.017, 0.023))}
    gain = {"mean": 0.83, "ci_low": 0.46, "ci_high": 1.2, "p_wilcoxon": 0.01}
    rows08 = (expectation_rows(FINAL, best, phase="limit90")
              + expectation_rows("autoencoder + ridge (90 trials)", base90, phase="limit90")
              + [paired_claim_row("14", f"more paired trials still help: {m}", gain, split="validation", metric=m,
                                  model="image prior", proxy=True) for m in ("psnr", "ssim")])
    headline = {FINAL: best, "autoencoder + ridge, 90 trials": base90, "uniform_noise": noise,
                "ridge regression to pixels, 90 trials": _metrics(14.5, 0.47, 0.8),
                "ridge to the VAE latent, decoded, 90 trials": _metrics(14.0, 0.5, 0.78)}
    _write(root, "08_benchmarks", models={"autoencoder + ridge (90 trials)": base90}, extra={
        "best_model": FINAL, "best_model_test": best, "best_baseline_val": "autoencoder + ridge",
        "paired_test": {f"{FINAL} − autoencoder + ridge, 90 trials": diff,
                        "spatial LDM − autoencoder + ridge, 72 trials": diff},
        "paired_best": f"{FINAL} − autoencoder + ridge, 90 trials", "headline_rows": headline,
        "targets": {"psnr": 17.0, "ssim": 0.75, "pixel_r": 0.88, "id2": 1.0, "id2_within": 0.95},
        "selected_on_validation": "image prior: direct", "verdicts": rows08})
    return root


@pytest.fixture
def study_root(tmp_path):
    return build_study_root(tmp_path)


EXPECTED = {
    "1": "inconclusive (a trivial reference passes too)",   # the constant grey image passes the ±tolerance
    "2": "confirmed", "3": "refuted (below the claim)", "4a": "refuted (below the claim)", "4b": "confirmed",
    "5a": "confirmed", "5b": "confirmed",
    "5c": "refuted (below the claim)",                       # on the original; the repaired models do overfit
    "5d": "inconclusive (CI straddles the claimed range)",   # the test rows decide over the validation rows
    "6a": "inconclusive (only own-code rows)", "6b": "inconclusive (only own-code rows)",
    "7": "refuted (below the claim)",
    "8": "refuted (above the claim)",                        # PSNR void (training mean), SSIM and r above
    "9": "refuted (both sides)", "10": "refuted (both sides)",
    "11a": "refuted (below the claim)",                      # the architecture alone loses PSNR
    "11b": "refuted (below the claim)", "11c": "untestable with this data",
    "12": "refuted (both sides)", "13": "refuted (above the claim)", "14": "untestable with this data",
    "15": "untestable with this data", "16": "refuted (below the claim)", "17": "confirmed",
    "U1": "untestable with this data", "U2": "untestable with this data", "U3": "untestable with this data",
}


def test_the_study_gets_one_verdict_per_claim(study_root):
    t = ledger.ledger(study_root, n_boot=50)
    v = ledger.claim_verdicts(t, ledger.trivial_references(study_root))
    assert {c: x["verdict"] for c, x in v.items()} == EXPECTED
    assert sum(ledger.verdict_counts(v).values()) == len(EXPECTED)
    json.dumps(v)  # stored in metrics.json as it is
    assert set(t["split"]) <= {"test", "validation", "training", "count", "formula", "data file"}
    assert t["model"].astype(bool).all() and t["split"].astype(bool).all()
    assert t["row"].is_unique


def test_the_study_verdicts_rest_on_the_right_rows(study_root):
    t = ledger.ledger(study_root, n_boot=50)
    v = ledger.claim_verdicts(t, ledger.trivial_references(study_root))
    rows = t.set_index("row")
    assert model_label("constant_0.5") in v["1"]["decided_by"]
    assert v["11a"]["models"] == ["original + U-Net − original"]
    assert "U-Net pipeline − original on the test trials: confirmed" in v["11a"]["contradiction"]
    assert v["5c"]["models"] == ["original Brain LDM (reproduced)"] and "U-Net pipeline" in v["5c"]["contradiction"]
    assert {rows.loc[r, "split"] for r in v["5d"]["rows"]} == {"test"}
    assert v["8"]["models"] == ["regularised MLP, no augmentation"] and v["8"]["chapters"] == ["04_fmri_encoder"]
    assert model_label("train_mean") in v["8"]["decided_by"]
    assert model_label("train_mean") in v["16"]["decided_by"]
    assert v["16"]["parts"]["long-term PSNR"].startswith("refuted")
    assert v["13"]["models"] == [FINAL] and v["13"]["chapters"] == ["07_image_prior", "08_benchmarks"]
    assert v["2"]["roles"]["2.2"] == "proxy: shown, never counts"
    claim1 = t[t["claim"] == "1"]
    assert len(claim1) == 3 and set(claim1["chapter"]) == {"01_diagnostics, 02_unet_fix"}  # one row per measurement
    shown = ledger.annotate(t, v)
    assert (shown.loc[shown["claim"] == "14", "counts as"] != "decides").all()


def test_claim_table_and_contradictions(study_root):
    t = ledger.ledger(study_root, n_boot=50)
    v = ledger.claim_verdicts(t, ledger.trivial_references(study_root))
    md = ledger.claim_table_markdown(v)
    assert md.count("\n") == len(v) + 1
    assert ("| 2 | PSNR 5.49 dB corresponds to MSE 0.282 | **confirmed** | the PSNR formula, 10·log10(1/MSE) "
            "(arithmetic) | this page |") in md
    assert "{doc}`04_fmri_encoder`" in md
    assert list(ledger.claim_table(v).index) == list(EXPECTED)
    lines = ledger.contradictions(v)
    assert any(line.startswith("**Claim 5c**") for line in lines) and any("**Claim 11a**" in x for x in lines)


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
        x = json.loads((study_root / ch / "metrics.json").read_text())["extra"]
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
    arch = t[(t["claim"] == "11a") & t["subject"].astype(bool)].iloc[0]
    assert arch["mean"] == pytest.approx(4.42 - 6.33) and arch["split"] == "test" and arch["difference"]
    assert arch["verdict"] == "refuted (below the claim)"
    assert t.loc[t["claim"] == "12", "part"].tolist() == ["week 1", "week 2", "weeks 3–4"]
    assert t.loc[t["claim"] == "12", "verdict"].tolist() == ["refuted (above the claim)", "refuted (below the claim)",
                                                             "refuted (below the claim)"]
    assert t.loc[t["claim"] == "16", "verdict"].tolist() == ["confirmed", "confirmed", "inconclusive", "confirmed",
                                                             "refuted (below the claim)", "confirmed"]
    assert t.loc[t["claim"] == "2", "proxy"].tolist() == [False, True]


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
    assert f["paired"]["psnr"]["mean"] == 0.537 and f["n_prior_images"] == 1969
    x = json.loads((study_root / "07_image_prior" / "metrics.json").read_text())["extra"]
    del x["model_names"]
    _write(study_root, "07_image_prior", extra=x)
    with pytest.raises(KeyError, match=r"chapter 07_image_prior's results lack extra\['model_names'\].*re-run "
                                       "07_image_prior"):
        ledger.final_model(study_root)


def test_final_model_of_another_chapter_must_say_whether_it_samples(study_root):
    x = json.loads((study_root / "08_benchmarks" / "metrics.json").read_text())["extra"]
    _write(study_root, "08_benchmarks", extra={**x, "best_model": "spatial LDM: x0, mean of 8 samples"})
    with pytest.raises(KeyError, match=r"best_model_is_ldm.*re-run 08_benchmarks"):
        ledger.final_model(study_root)
    _write(study_root, "08_benchmarks", extra={**x, "best_model": "spatial LDM", "best_model_is_ldm": True})
    assert ledger.final_model(study_root)["is_ldm"] is True


def test_data_facts_come_from_chapter_00(study_root, tmp_path):
    assert ledger.data_facts(study_root)["n_test"] == 10
    _write(tmp_path / "x", "00_data_and_metrics", extra={"data": {"n_test": 10}})
    with pytest.raises(KeyError, match=r"lack extra\['data'\] entries \['n_train'.*re-run 00_data_and_metrics"):
        ledger.data_facts(tmp_path / "x")


def test_chapter_titles_come_from_the_notebooks():
    assert ledger.chapter_title("09_conclusions").startswith("9. Conclusions")
    with pytest.raises(FileNotFoundError, match="no notebook 99_x.ipynb"):
        ledger.chapter_title("99_x")


def test_the_rule_is_declared_in_the_module_docstring():
    assert ledger.RULE in ledger.__doc__
    for bullet in ("(a)", "(b)", "(c)", "(d)", "(e)", "(f)"):
        assert f"**{bullet}" in ledger.RULE


def test_trajectory_reads_selected_models_and_quotes_expectations(study_root):
    from ldm_core.claims import REPORT_EXPECTATIONS

    for ch in ("02_unet_fix", "05_conditioning_vae"):  # give them a known selection
        _write(study_root, ch, extra={"summary": {"sel": _summary(9.0, 0.1, 0.1)}, "selected_on_validation": "sel"})
    t = ledger.trajectory(study_root)
    assert list(t["chapter"]) == [c for _, c, _ in ledger.TRAJECTORY]
    assert t.loc[0, "model"] == "original" and t.loc[0, "psnr"] == 6.33
    assert t.loc[1, "psnr"] == 9.0 and t.loc[1, "psnr_expected"] == REPORT_EXPECTATIONS["phase1"]["psnr"]
    assert t.iloc[-1]["model"] == "direct (90 trials)" and t.iloc[-1]["psnr"] == 15.53


def test_baseline_references_take_the_largest_trial_count():
    m = {"psnr": {"mean": 14.0}, "ssim": {"mean": 0.5}}
    headline = {"ridge regression to pixels, 72 trials": {"psnr": {"mean": 13.0}},
                "ridge regression to pixels, 90 trials": m, "ridge to the VAE latent, decoded, 90 trials": m,
                "uniform_noise": m}
    refs = ledger.baseline_references(headline)
    assert refs == {"ridge regression to pixels (90 trials)": {"psnr": 14.0, "ssim": 0.5},
                    "ridge to the VAE latent, decoded (90 trials)": {"psnr": 14.0, "ssim": 0.5}}
    assert ledger.baseline_references({}) == {}
