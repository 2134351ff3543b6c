import pytest

from ldm_core.study import literature


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


def test_caveats_markdown_is_prose_with_the_caveats_that_apply():
    text = literature.caveats_markdown(n_unpaired=1969, n_test=10)
    assert "\n" not in text and not text.startswith(("-", "*", "#"))  # one paragraph, not a list or heading
    assert "quoted from Du, Du & He, IJCNN 2017 (arXiv:1704.07575), Table 2, not measured here" in text
    assert "transductive" in text and "over the 10 test images" in text
    assert "1,969 unpaired handwritten digits, which DGMM and the other published methods did not use" in text
    plain = literature.caveats_markdown()
    assert "unpaired" not in plain and "over the test images" in plain
    assert literature.caveats_markdown(method="DCCAE-A").startswith("DCCAE-A's numbers are quoted")
    with pytest.raises(KeyError, match="no published row 'nope'"):
        literature.caveats_markdown(method="nope")


def test_report_literature_reads_like_a_table_for_people():
    from ldm_core.study.literature import REPORT_LITERATURE

    assert all({"method", "dataset size", "PSNR", "SSIM", "source"} == set(r) for r in REPORT_LITERATURE)
    assert REPORT_LITERATURE[0]["PSNR"] == "15–20 dB" and "-" not in REPORT_LITERATURE[1]["SSIM"]
