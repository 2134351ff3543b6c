import numpy as np
import pytest
from skimage.metrics import structural_similarity

from ldm_core import metrics as M


def _imgs(rng, n=6, s=12):
    return rng.random((n, s, s))


def test_psnr_of_known_mse():
    t = np.zeros((1, 4, 4))
    r = np.full((1, 4, 4), 0.1)  # MSE = 0.01 -> PSNR = 20 dB exactly
    assert M.mse(r, t)[0] == pytest.approx(0.01)
    assert M.psnr(r, t)[0] == pytest.approx(20.0)
    r2 = np.full((1, 4, 4), 0.5)  # MSE 0.25 -> 10 log10(4) dB
    assert M.psnr(r2, t)[0] == pytest.approx(10 * np.log10(4))


def test_psnr_perfect_is_inf(rng):
    x = _imgs(rng)
    assert np.all(np.isinf(M.psnr(x, x)))


def test_ssim_identical_is_one_and_settings(rng):
    x = _imgs(rng, s=28)
    np.testing.assert_allclose(M.ssim(x, x), 1.0)
    y = np.clip(x + 0.2 * rng.normal(size=x.shape), 0, 1)
    ref = structural_similarity(y[0], x[0], data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert M.ssim(y, x)[0] == pytest.approx(ref)
    assert M.ssim(y, x)[0] < 1


def test_pixel_corr_by_hand():
    t = np.array([[[0.0, 1.0], [0.0, 1.0]]])
    assert M.pixel_corr(t, t)[0] == pytest.approx(1.0)
    assert M.pixel_corr(1 - t, t)[0] == pytest.approx(-1.0)
    r = np.array([[[0.0, 1.0], [1.0, 1.0]]])  # x = (0,1,1,1) vs y = (0,1,0,1): r = 1/sqrt(3)
    assert M.pixel_corr(r, t)[0] == pytest.approx(1 / np.sqrt(3))


def test_constant_image_has_r_zero_and_is_counted(rng):
    t = _imgs(rng, n=4)
    r = np.full_like(t, 0.5)
    assert np.all(M.pixel_corr(r, t) == 0)
    ev = M.evaluate(r, t, np.array([1, 2, 1, 2]), n_boot=100, n_perm=0)
    assert ev["n_constant"] == 4
    assert ev["id2"]["mean"] == pytest.approx(0.5)  # every comparison ties -> chance


def test_identification_perfect_and_shuffled(rng):
    t = _imgs(rng, n=8)
    labels = np.array([1, 2] * 4)
    assert np.all(M.identification(t, t) == 1.0)
    assert np.all(M.identification(t, t, labels=labels, within_class=True) == 1.0)
    assert np.all(M.n_way_top1(t, t, n=8) == 1.0)
    # pairing reversed: recon i is target 7-i, which is its own best match -> each recon loses to that one
    shuffled = t[::-1]
    id2 = M.identification(shuffled, t)
    assert np.all(id2 < 1.0)
    assert np.all(M.n_way_top1(shuffled, t, n=8) == 0.0)


def test_identification_by_hand():
    # 3 images; recon 0 correlates best with target 0, recon 1 best with target 2, recon 2 best with target 2
    C = np.array([[0.9, 0.1, 0.2], [0.3, 0.5, 0.8], [0.0, 0.1, 0.7]])
    got = M._identification_from_corr(C, labels=None, within_class=False)
    np.testing.assert_allclose(got, [1.0, 0.5, 1.0])
    within = M._identification_from_corr(C, labels=np.array([1, 1, 2]), within_class=True)
    np.testing.assert_allclose(within[:2], [1.0, 1.0])
    assert np.isnan(within[2])  # no same-class distractor


def test_class_mean_scores_high_overall_but_chance_within_class(rng):
    """A reconstruction that only knows the class wins cross-class comparisons, not within-class ones."""
    base = {1: rng.random((10, 10)), 2: rng.random((10, 10))}
    labels = np.array([1, 2] * 5)
    targets = np.stack([base[c] + 0.3 * rng.random((10, 10)) for c in labels])
    recons = np.stack([base[c] for c in labels])
    overall = M.identification(recons, targets).mean()
    within = M.identification(recons, targets, labels=labels, within_class=True)
    assert overall > 0.5 + 0.2
    assert 0.0 <= within.mean() <= 1.0
    _, p_within, null = M.permutation_pvalue(recons, targets, labels=labels, within_class=True, n_perm=200)
    _, p_overall, _ = M.permutation_pvalue(recons, targets, n_perm=200)
    assert p_overall < 0.05 and len(null) == 200


def test_permutation_pvalue_perfect_is_small(rng):
    t = _imgs(rng, n=10)
    obs, p, _ = M.permutation_pvalue(t, t, n_perm=500, seed=1)
    assert obs == 1.0 and p < 0.01
    assert p >= 1 / 501


def test_bootstrap_ci_contains_mean_and_is_deterministic(rng):
    v = rng.normal(size=50)
    lo, hi = M.bootstrap_ci(v, n_boot=1000, seed=0)
    assert lo < v.mean() < hi
    assert (lo, hi) == M.bootstrap_ci(v, n_boot=1000, seed=0)
    assert M.bootstrap_ci(np.ones(5)) == (1.0, 1.0)


def test_evaluate_structure(rng):
    t = _imgs(rng, n=10)
    r = np.clip(t + 0.1 * rng.normal(size=t.shape), 0, 1)
    ev = M.evaluate(r, t, np.array([1, 2] * 5), n_boot=200, n_perm=50)
    for k in M.METRIC_NAMES:
        assert set(ev[k]) == {"mean", "ci_low", "ci_high", "per_image"}
        assert len(ev[k]["per_image"]) == 10
        assert ev[k]["ci_low"] <= ev[k]["mean"] <= ev[k]["ci_high"]
    assert 0 < ev["p_id2"] <= 1 and ev["n_images"] == 10


def test_shape_mismatch_and_nan_errors(rng):
    with pytest.raises(ValueError, match="must both have shape"):
        M.mse(_imgs(rng, n=3), _imgs(rng, n=4))
    bad = _imgs(rng, n=2)
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        M.psnr(bad, _imgs(rng, n=2))
    with pytest.raises(ValueError, match="needs the target labels"):
        M.identification(_imgs(rng, n=2), _imgs(rng, n=2), within_class=True)
    with pytest.raises(ValueError, match="2 <= n <="):
        M.n_way_top1(_imgs(rng, n=3), _imgs(rng, n=3), n=5)


# ----------------------------------------------------------------------------- paired comparison


def test_paired_comparison_known_answer():
    b = np.zeros(5)
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0])  # all differences positive, distinct
    c = M.paired_comparison(a, b, n_boot=500)
    assert c["mean"] == pytest.approx(3.0) and c["median"] == pytest.approx(3.0)
    assert (c["n"], c["n_a_better"], c["n_b_better"], c["n_ties"], c["n_dropped"]) == (5, 5, 0, 0, 0)
    # exact two-sided signed-rank test: W- = 0 has probability 1/2^5 on each side -> p = 2/32
    assert c["wilcoxon_statistic"] == 0.0 and c["p_wilcoxon"] == pytest.approx(2 / 32)
    assert 1.0 <= c["ci_low"] <= 3.0 <= c["ci_high"] <= 5.0


def test_paired_comparison_is_antisymmetric_and_constant_ci():
    a, b = np.array([0.3, 0.1, 0.7, 0.4]), np.array([0.1, 0.2, 0.2, 0.1])
    ab, ba = M.paired_comparison(a, b), M.paired_comparison(b, a)
    assert ab["mean"] == pytest.approx(-ba["mean"]) and ab["p_wilcoxon"] == pytest.approx(ba["p_wilcoxon"])
    assert (ab["n_a_better"], ab["n_b_better"]) == (ba["n_b_better"], ba["n_a_better"]) == (3, 1)
    const = M.paired_comparison(np.full(4, 1.5), np.ones(4))
    assert (const["mean"], const["ci_low"], const["ci_high"]) == (0.5, 0.5, 0.5)


def test_paired_comparison_zero_differences_and_dropped_pairs():
    same = M.paired_comparison(np.ones(3), np.ones(3))
    assert same["p_wilcoxon"] == 1.0 and np.isnan(same["wilcoxon_statistic"]) and same["n_ties"] == 3
    c = M.paired_comparison(np.array([np.inf, 2.0, np.nan, 3.0]), np.array([np.inf, 1.0, 0.0, 1.0]))
    assert c["n"] == 2 and c["n_dropped"] == 2 and c["mean"] == pytest.approx(1.5)  # inf - inf and NaN pairs dropped


def test_paired_comparison_errors():
    with pytest.raises(ValueError, match="same length"):
        M.paired_comparison(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="no finite per-image difference"):
        M.paired_comparison(np.array([np.nan]), np.array([1.0]))


# ----------------------------------------------------------------------------- identification test, pooling


def test_identification_test_perfect_and_constant(rng):
    x = _imgs(rng, n=6)
    labels = np.array([1, 1, 1, 2, 2, 2])
    for stat in ("id2", "id2_within", "id10"):
        r = M.identification_test(x, x, labels=labels, statistic=stat, n_perm=200)
        assert r["mean"] == 1.0 and r["p_value"] < 0.05 and r["n_sets"] == 1
    assert M.identification_test(x, x, statistic="id10", n_perm=0)["n_way"] == 6  # n = min(10, N), exact
    flat = np.full_like(x, 0.5)  # constant reconstructions: every comparison a tie
    r2 = M.identification_test(flat, x, statistic="id2", n_perm=100)
    assert r2["mean"] == 0.5 and r2["p_value"] == 1.0
    r10 = M.identification_test(flat, x, statistic="id10", n_perm=100)
    assert r10["mean"] == pytest.approx(1 / 6) and r10["p_value"] == 1.0  # a full tie scores 1/n


def test_identification_test_matches_single_set_functions_and_pools_sets(rng):
    x, t = _imgs(rng, n=8), _imgs(rng, n=8)
    labels = np.array([1, 2] * 4)
    one = M.identification_test(x, t, labels=labels, statistic="id2_within", n_perm=50, seed=3)
    obs, p, _ = M.permutation_pvalue(x, t, labels=labels, within_class=True, n_perm=50, seed=3)
    assert one["mean"] == pytest.approx(obs) and one["p_value"] == pytest.approx(p)
    assert one["per_image"] == pytest.approx(M.identification(x, t, labels=labels, within_class=True).tolist())
    both = M.identification_test(np.stack([x, t]), t, statistic="id2", n_perm=20)
    assert both["n_sets"] == 2
    assert both["mean"] == pytest.approx((M.identification(x, t).mean() + 1.0) / 2)  # t identifies itself perfectly
    assert M.identification_test(x, t, statistic="id10", n_perm=0)["mean"] == pytest.approx(
        M.n_way_top1(x, t, n=8).mean())
    assert np.isnan(M.identification_test(x, t, n_perm=0)["p_value"])


def test_identification_test_errors(rng):
    x = _imgs(rng, n=4)
    with pytest.raises(ValueError, match="statistic must be one of"):
        M.identification_test(x, x, statistic="id3")
    with pytest.raises(ValueError, match="needs the target labels"):
        M.identification_test(x, x, statistic="id2_within")
    with pytest.raises(ValueError, match=r"\(N, S, S\) or \(K, N, S, S\)"):
        M.identification_test(x[0, 0], x)


def test_pool_per_image_known_answer():
    p = M.pool_per_image([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]], n_boot=200)
    assert p["per_image"] == [2.0, 3.0, 4.0] and p["mean"] == pytest.approx(3.0) and p["n_sets"] == 2
    assert 2.0 <= p["ci_low"] <= 3.0 <= p["ci_high"] <= 4.0
    with pytest.raises(ValueError, match=r"shape \(K >= 1, N\)"):
        M.pool_per_image([1.0, 2.0])
