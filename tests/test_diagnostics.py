import numpy as np
import pytest

from ldm_core.diagnostics import neighbour_correlation


def test_neighbour_correlation_known_answers():
    rng = np.random.default_rng(0)
    shared = rng.standard_normal((200, 1))
    same = np.repeat(shared, 10, axis=1)  # every voxel identical: r = 1 for every pair
    out = neighbour_correlation(same, n_random=100)
    assert out["adjacent"] == pytest.approx(1.0) and out["random"] == pytest.approx(1.0)
    assert (out["n_trials"], out["n_voxels"], out["lag"]) == (200, 10, 1)
    # pairs of identical voxels (0=1, 2=3, ...), independent across pairs: adjacent pairs alternate r = 1 and ~0
    pairs = np.repeat(rng.standard_normal((5000, 50)), 2, axis=1)
    out = neighbour_correlation(pairs, n_random=5000, seed=1)
    assert out["adjacent"] == pytest.approx(50 / 99, abs=0.02)  # 50 of the 99 adjacent pairs are identical
    assert abs(out["random"]) < 0.05


def test_neighbour_correlation_skips_constant_voxels():
    rng = np.random.default_rng(1)
    x = np.repeat(rng.standard_normal((50, 1)), 4, axis=1)
    x[:, 3] = 2.0  # constant voxel: left out, not a NaN result
    assert neighbour_correlation(x, n_random=10)["adjacent"] == pytest.approx(1.0)


def test_neighbour_correlation_refuses_bad_input():
    with pytest.raises(ValueError, match="shape \\(N, V\\) with N >= 3"):
        neighbour_correlation(np.zeros(5))
    with pytest.raises(ValueError, match=r"lag must be in \[1, 3\]"):
        neighbour_correlation(np.ones((4, 4)), lag=4)
    with pytest.raises(ValueError, match="n_random must be >= 1"):
        neighbour_correlation(np.ones((4, 4)), n_random=0)
