"""ldm_core.benchmark: the learning-curve extrapolation (values computed by hand)."""

import math
import warnings

import pytest

from ldm_core.benchmark import gain_per_doubling


def _curve(points):
    return {n: {"psnr": {"mean": y}} for n, y in points.items()}


def test_gain_per_doubling_slope_and_trials_needed_by_hand():
    # +1 dB per doubling: 10 dB at 10 trials, 11 at 20, 12 at 40; 14 dB needs two more doublings -> 160 trials.
    out = gain_per_doubling(_curve({10: 10.0, 20: 11.0, 40: 12.0}), reach=14.0)
    assert out["slope"] == pytest.approx(1.0)
    assert out["trials_needed"] == pytest.approx(160.0)


def test_gain_per_doubling_tiny_slope_is_capped_without_overflow():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow RuntimeWarning would fail the test
        out = gain_per_doubling(_curve({10: 10.0, 20: 10.0 + 1e-9}), reach=20.0)
    assert out["trials_needed"] == pytest.approx(1e9)


@pytest.mark.parametrize("points, reach", [({10: 12.0, 20: 11.0}, 14.0),   # falling
                                           ({10: 10.0, 20: 11.0}, 10.5),   # already reached
                                           ({10: 10.0, 20: 11.0}, None)])  # nothing asked
def test_gain_per_doubling_nan_when_nothing_to_extrapolate(points, reach):
    assert math.isnan(gain_per_doubling(_curve(points), reach=reach)["trials_needed"])
