"""The ledger joins chapters' verdicts with cross-chapter claims; numbers here are fabricated and known."""
import numpy as np
import pytest

from ldm_core import ledger
from ldm_core.results import write_results


def _pooled(per_image):
    v = [float(x) for x in per_image]
    return {"mean": float(np.mean(v)), "ci_low": float(min(v)), "ci_high": float(max(v)), "per_image": v}


def _summary(**metric_values):
    """A chapter_metrics-like summary entry whose test metrics are constant per image."""
    test = {m: _pooled([metric_values.get(m, 0.0)] * 4) for m in ("psnr", "ssim", "pixel_r", "mse", "id2", "id2_within")}
    return {"test": test, "val": test, "seeds": [0, 1, 2]}


def _write(root, chapter, *, models=None, extra=None):
    t = np.zeros((4, 6, 6), np.float32)
    models = models or {}
    write_results(root / chapter, chapter=chapter, metrics=models, reconstructions={k: t for k in models}, targets=t,
                  labels=np.array([1, 2, 1, 2]), params={}, wall_time_s=0.0, extra=extra)


@pytest.fixture
def study_root(tmp_path):
    floor = {m: _pooled([v] * 4) for m, v in dict(psnr=5.0, ssim=0.002, pixel_r=0.0, id2=0.5, id2_within=0.5).items()}
    _write(tmp_path, "00_data_and_metrics", models={"uniform_noise": floor, "train_mean": floor, "class_mean_reference": floor},
           extra={"verdicts": [{"claim": "3", "report says": "x", "measured mean [95% CI]": "5.00 [4.90, 5.10]",
                                "verdict": "refuted (below the claim)"}]})
    _write(tmp_path, "01_diagnostics", extra={"summary": {"original": _summary(psnr=5.5, mse=0.28)},
                                               "verdicts": [{"claim": "1", "report says": "orig", "verdict": "confirmed",
                                                             "measured mean [95% CI]": "5.50 [5.40, 5.60]"}]})
    _write(tmp_path, "02_unet_fix", extra={"summary": {"original": _summary(psnr=5.0), "U-Net pipeline": _summary(psnr=12.0)}})
    for ch, psnr in (("03_loss_function", 11.0), ("04_fmri_encoder", 13.0), ("06_augmentation_multiscale", 21.0)):
        _write(tmp_path, ch, extra={"summary": {"sel": _summary(psnr=psnr)}, "selected_on_validation": "sel"})
    same = {"claim": "8", "report says": "phase 1 PSNR", "claimed range": "12 – 15", "measured mean [95% CI]": "13.00 [12.00, 14.00]",
            "verdict": "confirmed", "model": "base"}
    _write(tmp_path, "03_loss_function", extra={"summary": {"sel": _summary(psnr=11.0)}, "selected_on_validation": "sel",
                                                "verdicts": [same]})
    _write(tmp_path, "04_fmri_encoder", extra={"summary": {"sel": _summary(psnr=13.0)}, "selected_on_validation": "sel",
                                               "verdicts": [same]})
    _write(tmp_path, "05_conditioning_vae", extra={"verdicts": [{"claim": "17", "verdict": "inconclusive",
                                                                  "measured mean [95% CI]": "0.04 [-0.30, 0.40]"}]})
    _write(tmp_path, "07_image_prior", extra={"summary": {"m": _summary(psnr=15.0), "m (90 trials)": _summary(psnr=15.5)},
                                              "selected_on_validation": "m", "selected_90": "m (90 trials)"})
    best = _summary(psnr=16.0, ssim=0.6, pixel_r=0.8, id2=1.0, id2_within=0.9)["test"]
    _write(tmp_path, "08_benchmarks", extra={"best_model_test": best, "best_model": "best LDM",
                                             "headline_rows": {"ridge": best, "best LDM": best}})
    return tmp_path


def test_computed_claims_verdicts(study_root):
    t = ledger.computed_claims(study_root, n_boot=50).set_index(["claim", "report says"])
    v = t["verdict"]
    assert v[("2", next(k for c, k in t.index if c == "2" and "arithmetic" in k))] == "confirmed"
    # 12 - 5 = 7 dB gain from the U-Net pipeline: inside 5-10
    assert t.xs("11a", level="claim")["verdict"].item() == "confirmed"
    weeks = t.xs("12", level="claim")["verdict"].tolist()
    assert weeks == ["confirmed", "refuted (below the claim)", "confirmed"]  # 11 in 10-12; 13 below 15-18; 21 > 20
    assert t.xs("12", level="claim")["measured mean [95% CI]"].iloc[0].startswith("11.00")
    best = t.xs("16", level="claim")["verdict"].tolist()  # PSNR 16, SSIM 0.6 against 10/0.1, 15/0.3, 20/0.5
    assert best == ["confirmed", "confirmed", "confirmed", "confirmed", "refuted (below the claim)", "confirmed"]


def test_ledger_orders_by_claim_number_and_keeps_each_measurement_once(study_root):
    t = ledger.ledger(study_root, n_boot=50)
    keys = [ledger.claim_sort_key(c) for c in t["claim"]]
    assert keys == sorted(keys)
    assert set(t.loc[t["claim"] == "17", "chapter"]) == {"05_conditioning_vae"}
    assert t.loc[t["claim"] == "3", "verdict"].tolist() == ["refuted (below the claim)"]
    eight = t[t["claim"] == "8"]  # the same measurement stored by chapters 03 and 04: one row naming both
    assert len(eight) == 1 and eight["chapter"].item() == "03_loss_function, 04_fmri_encoder"
    assert (t["verdict"].str.startswith("untestable")).sum() == len(ledger.UNTESTABLE)


def test_counts_and_prose_come_from_the_rows(study_root):
    t = ledger.ledger(study_root, n_boot=50)
    c = ledger.verdict_counts(t)
    assert c["untestable"] == len(ledger.UNTESTABLE) and c["inconclusive"] == 1
    assert sum(c.values()) == len(t)
    text = ledger.summary_prose(t)
    assert f"{len(t)} rows" in text and "claims 3, 12, 16" in text, text


def test_claim_sort_key():
    assert sorted(["11b", "2", "11a", "—", "1"], key=ledger.claim_sort_key) == ["1", "2", "11a", "11b", "—"]


def test_headline_rows_lead_with_the_best_model(study_root):
    h = ledger.headline_rows(study_root)
    assert list(h) == ["best LDM", "original Brain LDM (reproduced, 3 seeds)", "ridge"]
    assert h["original Brain LDM (reproduced, 3 seeds)"]["psnr"]["mean"] == 5.5


def test_missing_chapter_and_missing_selection_are_named(study_root, tmp_path):
    with pytest.raises(FileNotFoundError, match="run the '01_diagnostics' chapter"):
        ledger.headline_rows(tmp_path / "empty")
    _write(study_root, "08_benchmarks", extra={"summary": {}})
    with pytest.raises(KeyError, match="best_model_test"):
        ledger.computed_claims(study_root)
    with pytest.raises(KeyError, match="headline_rows"):
        ledger.headline_rows(study_root)


def test_untestable_rows_have_reasons():
    t = ledger.untestable_claims()
    assert t["measured mean [95% CI]"].str.startswith("not measurable: ").all()
    assert t["verdict"].str.startswith("untestable with this data (needs ").all()


def test_trajectory_reads_selected_models_and_quotes_expectations(study_root):
    from ldm_core.claims import REPORT_EXPECTATIONS

    for ch in ("02_unet_fix", "05_conditioning_vae"):  # give them a selection
        _write(study_root, ch, extra={"summary": {"sel": _summary(psnr=9.0)}, "selected_on_validation": "sel"})
    t = ledger.trajectory(study_root)
    assert list(t["chapter"]) == [c for _, c, _ in ledger.TRAJECTORY]
    assert t.loc[0, "model"] == "original" and t.loc[0, "psnr"] == 5.5
    assert t.loc[1, "psnr"] == 9.0 and t.loc[1, "psnr_expected"] == REPORT_EXPECTATIONS["phase1"]["psnr"]
    assert t.iloc[-1]["model"] == "m (90 trials)" and t.iloc[-1]["psnr"] == 15.5
    from ldm_core import plots

    fig = plots.trajectory_plot(t, references={"ridge": {"psnr": 14.0}})
    assert len(fig.axes) == 3
