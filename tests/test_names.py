import pytest

from ldm_core.study.names import display_number, format_p, label_columns, metric_label


@pytest.mark.parametrize("value, text", [(16843453.14, "16,843,453"), (0.04383, "0.0438"), (-0.5, "-0.5"),
                                         (1.0, "1"), (999.4, "999"), (4.27, "4.27"), (0.0, "0"),
                                         (float("nan"), "—")])
def test_display_number_never_uses_scientific_notation(value, text):
    assert display_number(value) == text


@pytest.mark.parametrize("p, n_perm, text", [(0.0004, None, "< 0.001"), (0.0312, None, "0.031"),
                                             (1 / 201, 200, "≤ 0.005 (smallest possible)"),
                                             (0.02, 200, "0.020"), (float("nan"), None, "not tested")])
def test_format_p(p, n_perm, text):
    assert format_p(p, n_perm=n_perm) == text


def test_label_columns_renames_metrics_and_leaves_unknown_names():
    import pandas as pd

    df = label_columns(pd.DataFrame({"psnr": [1.0], "my column": [2.0]}, index=["x"]))
    assert list(df.columns) == ["PSNR (dB)", "my column"] == [metric_label("psnr", short=True), "my column"]


def test_join_words_and_ci_text_by_hand():
    from ldm_core.study.names import ci_text, join_words

    assert join_words([]) == "" and join_words(["a"]) == "a" and join_words("ab") == "a and b"
    assert join_words([1, 2, 3]) == "1, 2 and 3" and join_words(["x", "y", "z"], "or") == "x, y or z"
    c = {"mean": 0.5391, "ci_low": -0.0214, "ci_high": 1.0787}
    assert ci_text(c, 3) == "0.539 [-0.021, 1.079]"
    assert ci_text(c, 2, sign=True, unit=" dB") == "+0.54 dB [-0.02, +1.08]"
