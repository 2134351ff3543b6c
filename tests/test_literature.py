import pytest

from ldm_core import literature


def test_published_table_is_quoted_with_its_source():
    t = literature.published_table()
    assert t.loc["DGMM", "PCC"] == "0.803 ± 0.063" and t.loc["DGMM", "SSIM"] == "0.645 ± 0.054"
    assert t.loc["De-CNN (linear regression to feature maps + deconvolution net)", "MSE"] == "0.038 ± 0.010"
    assert "arXiv:1704.07575" in literature.SOURCE and "transductive" in literature.CAVEATS


def test_comparison_table_keeps_quoted_and_measured_apart():
    ours = {"pixel_r": {"mean": 0.85, "ci_low": 0.82, "ci_high": 0.88},
            "mse": {"mean": 0.030, "ci_low": 0.025, "ci_high": 0.040},
            "ssim": {"mean": 0.60, "ci_low": 0.55, "ci_high": 0.64}}
    t = literature.comparison_table("model", ours)
    assert t.loc["PCC", "DGMM, as published (quoted)"] == 0.803
    assert t.loc["PCC", "comparison"].startswith("ours better")
    assert t.loc["MSE", "comparison"].startswith("not separable")
    assert t.loc["SSIM", "comparison"].startswith("published better")
    with pytest.raises(KeyError, match="no published row"):
        literature.comparison_table("m", ours, method="nope")
