import numpy as np
import pytest
from skimage.metrics import structural_similarity

from ldm_core import metrics as M
from ldm_core.metrics import distortion, perception


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
    got = distortion._identification_from_corr(C, labels=None, within_class=False)
    np.testing.assert_allclose(got, [1.0, 0.5, 1.0])
    within = distortion._identification_from_corr(C, labels=np.array([1, 1, 2]), within_class=True)
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
    p_within = M.identification_test(recons, targets, labels=labels, statistic="id2_within", n_perm=200)["p_value"]
    p_overall = M.identification_test(recons, targets, n_perm=200)["p_value"]
    assert p_overall < 0.05 and 1 / 201 <= p_within <= 1


@pytest.mark.parametrize("within", [False, True])
def test_identification_p_value_equals_a_permutation_test_written_out(rng, within):
    """The p-value of identification_test (and evaluate's p_id2 / p_id2_within) against the test done by hand: the
    same seeded shuffles of the targets (within class for the within-class statistic), the identification mean of
    each shuffled pairing, p = (1 + #{null >= observed}) / (1 + n_perm)."""
    labels = np.array([1, 2] * 4)
    t = _imgs(rng, n=8)
    x = 0.6 * t + 0.4 * _imgs(rng, n=8)
    n_perm, seed = 60, 4
    lab = labels if within else None
    observed = M.identification(x, t, labels=lab, within_class=within).mean()
    draws = np.random.default_rng(seed)
    null = []
    for _ in range(n_perm):
        perm = np.arange(8)
        if within:
            for c in (1, 2):
                idx = np.flatnonzero(labels == c)
                perm[idx] = draws.permutation(idx)
        else:
            perm = draws.permutation(8)
        # recon i paired with target perm[i]; the labels follow the targets
        null.append(M.identification(x, t[perm], labels=None if lab is None else lab[perm], within_class=within).mean())
    p_hand = (1 + np.sum(np.array(null) >= observed - 1e-12)) / (1 + n_perm)
    stat = "id2_within" if within else "id2"
    assert M.identification_test(x, t, labels=labels, statistic=stat, n_perm=n_perm, seed=seed)["p_value"] == \
        pytest.approx(p_hand)
    assert M.evaluate(x, t, labels, n_boot=10, n_perm=n_perm, seed=seed)[f"p_{stat}"] == pytest.approx(p_hand)


def test_identification_test_perfect_is_small(rng):
    t = _imgs(rng, n=10)
    res = M.identification_test(t, t, n_perm=500, seed=1)
    assert res["mean"] == 1.0 and res["p_value"] < 0.01
    assert res["p_value"] >= 1 / 501


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
    assert one["mean"] == pytest.approx(M.identification(x, t, labels=labels, within_class=True).mean())
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


# ----------------------------------------------------------------------------- perception metrics


def _kid_by_loops(a, b):
    """The unbiased MMD^2 of Bińkowski et al. (2018), written out with explicit sums."""
    d = a.shape[1]

    def k(x, y):
        return (float(np.dot(x, y)) / d + 1.0) ** 3

    n, m = len(a), len(b)
    saa = sum(k(a[i], a[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    sbb = sum(k(b[i], b[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    sab = sum(k(a[i], b[j]) for i in range(n) for j in range(m)) / (n * m)
    return saa + sbb - 2 * sab


def test_kid_by_hand_1d():
    # d = 1, k(x, y) = (x y + 1)^3. Within a: k(0, 1) = 1 -> 1; within b: k(2, 3) = 7^3 = 343;
    # across: k(0, 2) = k(0, 3) = 1, k(1, 2) = 27, k(1, 3) = 64 -> mean 93 / 4. KID = 1 + 343 - 2 * 23.25
    assert M.kid(np.array([[0.0], [1.0]]), np.array([[2.0], [3.0]])) == pytest.approx(297.5)
    assert M.kid(np.array([[1.0], [1.0]]), np.array([[1.0], [1.0]])) == 0.0


def test_kid_matches_explicit_sums_and_is_symmetric(rng):
    a, b = rng.random((5, 3)), rng.random((4, 3)) + 0.5
    assert M.kid(a, b) == pytest.approx(_kid_by_loops(a, b))
    assert M.kid(a, b) == pytest.approx(M.kid(b, a))


def test_kid_same_distribution_near_zero_shifted_positive(rng):
    a, b = rng.normal(size=(200, 8)), rng.normal(size=(200, 8))
    same, shifted = M.kid(a, b), M.kid(a, b + 1.0)
    assert abs(same) < 0.05
    assert shifted > 0.5 and shifted > 20 * abs(same)
    # unbiased: over independent draws from one distribution, the estimates average to about 0, some negative
    draws = [M.kid(rng.normal(size=(20, 4)), rng.normal(size=(20, 4))) for _ in range(40)]
    assert min(draws) < 0 < max(draws) and abs(np.mean(draws)) < 0.2


def test_kid_errors(rng):
    with pytest.raises(ValueError, match=r"features_a must have shape \(n, d\) with n >= 2"):
        M.kid(rng.random((1, 3)), rng.random((4, 3)))
    with pytest.raises(ValueError, match=r"features_b must have shape \(n, d\)"):
        M.kid(rng.random((3, 3)), rng.random(4))
    with pytest.raises(ValueError, match="same feature dimension d; got 3 and 2"):
        M.kid(rng.random((3, 3)), rng.random((3, 2)))
    with pytest.raises(ValueError, match="features_a contain NaN"):
        M.kid(np.full((2, 2), np.nan), rng.random((3, 2)))


def _kid_of_sets_by_loops(sets, b):
    """KID of K reconstructions per image: within term over pairs of reconstructions of different images."""
    K, N, d = sets.shape

    def k(x, y):
        return (float(np.dot(x, y)) / d + 1.0) ** 3

    saa = sum(k(sets[k1, i], sets[k2, j]) for k1 in range(K) for k2 in range(K) for i in range(N) for j in range(N)
              if i != j) / (K * K * N * (N - 1))
    m = len(b)
    sbb = sum(k(b[i], b[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    sab = np.mean([k(x, y) for x in sets.reshape(K * N, d) for y in b])
    return saa + sbb - 2 * sab


def test_kid_of_sets_by_hand_two_seeds_two_images():
    # d = 1, k(x, y) = (x y + 1)^3. Seed 0 reconstructs images (0, 1) as (0, 1), seed 1 as (1, 2).
    # Within: pairs of DIFFERENT images only, all seed pairs: image 0 in {0, 1} x image 1 in {1, 2}:
    #   k(0,1) + k(0,2) + k(1,1) + k(1,2) = 1 + 1 + 8 + 27 = 37, both orders 74, / (K^2 N (N-1) = 8) = 9.25.
    # Reference {2, 3}: within 7^3 = 343. Across: {0, 1, 1, 2} x {2, 3}: 1 + 1 + 2 (27 + 64) + 125 + 343 = 652,
    #   / 8 = 81.5. KID = 9.25 + 343 - 163 = 189.25.
    sets = np.array([[[0.0], [1.0]], [[1.0], [2.0]]])
    b = np.array([[2.0], [3.0]])
    assert M.kid_of_sets(sets, b) == pytest.approx(189.25)
    # the pooled estimate also pairs the two seeds of image 0 (k(0, 1) = 1) and of image 1 (k(1, 2) = 27):
    # within (74 + 2 * 28) / 12 = 130 / 12, so 10.833 + 343 - 163 = 190.83 -- not what kid_of_sets computes
    assert M.kid(sets.reshape(4, 1), b) == pytest.approx(130 / 12 + 180)
    assert M.kid_of_sets(sets[:1], b) == pytest.approx(M.kid(sets[0], b))  # K = 1 is plain KID


def test_kid_of_sets_matches_loops_and_errors(rng):
    sets, b = rng.random((3, 4, 2)), rng.random((5, 2)) + 0.3
    assert M.kid_of_sets(sets, b) == pytest.approx(_kid_of_sets_by_loops(sets, b))
    with pytest.raises(ValueError, match=r"feature_sets must have shape \(K, N, d\) with K >= 1 and N >= 2"):
        M.kid_of_sets(rng.random((2, 1, 3)), b)
    with pytest.raises(ValueError, match=r"feature_sets must have shape \(K, N, d\)"):
        M.kid_of_sets(rng.random((4, 3)), b)
    with pytest.raises(ValueError, match="same feature dimension d; got 3 and 2"):
        M.kid_of_sets(rng.random((2, 3, 3)), b)
    with pytest.raises(ValueError, match="feature_sets contain NaN"):
        M.kid_of_sets(np.full((2, 2, 2), np.nan), b)


def test_kid_of_sets_near_identical_copies_give_the_single_set_value(rng):
    # N reconstructions drawn from the reference distribution itself, each repeated by K = 5 seeds that
    # barely differ: the seeds add no new independent image, so KID must stay at the K = 1 value (about 0)
    b = rng.normal(size=(400, 16))
    singles, multis, pooled = [], [], []
    for _ in range(30):
        a = rng.normal(size=(10, 16))
        sets = a[None] + 0.01 * rng.normal(size=(5, 10, 16))
        singles.append(M.kid_of_sets(a[None], b))
        multis.append(M.kid_of_sets(sets, b))
        pooled.append(M.kid(sets.reshape(50, 16), b))
    assert np.max(np.abs(np.array(multis) - np.array(singles))) < 0.01
    assert abs(np.mean(multis)) < 0.1
    assert np.mean(pooled) > 0.3  # pairing the seeds of one image (the old estimate) looks far from real images


def test_kid_resampled_equals_kid_of_sets_without_duplicates_and_pairs_different_images_only(rng):
    K, N = 2, 4
    a, b = rng.random((K * N, 3)), rng.random((5, 3))  # row k * N + i: seed k, image i
    kaa = perception._poly_kernel(a, a)
    kab_mean = perception._poly_kernel(a, b).mean(axis=1)
    kbb = perception._poly_kernel(b, b)
    term_b = (kbb.sum() - np.trace(kbb)) / (5 * 4)
    w = np.array([[1, 1, 1, 1], [2, 0, 2, 0], [0, 1, 3, 0], [0, 0, 4, 0]])
    got = perception._kid_resampled(kaa, kab_mean, term_b, w, n_sets=K)
    assert got[0] == pytest.approx(M.kid_of_sets(a.reshape(K, N, 3), b))
    # by hand: list the drawn reconstructions (draw, seed, image); pair two only when they show different images
    for r in (1, 2):
        draws = [i for i in range(N) for _ in range(w[r, i])]
        recon = [(d, k, i) for d, i in enumerate(draws) for k in range(K)]
        num = den = 0.0
        for _, k1, i1 in recon:
            for _, k2, i2 in recon:
                if i1 == i2:  # the same reconstruction, another seed of the same image, or a copy of it
                    continue
                num += kaa[k1 * N + i1, k2 * N + i2]
                den += 1
        cross = np.mean([kab_mean[k * N + i] for _, k, i in recon])
        assert got[r] == pytest.approx(num / den + term_b - 2 * cross)
    assert np.isnan(got[3])  # copies of one image only (with both its seeds): no pair of different images
    one_seed = perception._kid_resampled(perception._poly_kernel(a[:N], a[:N]), kab_mean[:N], term_b, np.array([[1, 1, 1, 1]]))
    assert one_seed[0] == pytest.approx(M.kid(a[:N], b))


class _FakeNet:
    """Duck-typed PerceptionNet: features = the flattened image, class = brighter left or right half."""

    class_names = ("left", "right")

    def __init__(self, heldout):
        self.heldout_images = heldout

    def features(self, images):
        x = np.asarray(images, dtype=np.float64)
        return x.reshape(len(x), -1)

    def predict(self, images):
        x = np.asarray(images)
        S = x.shape[-1]
        return np.where(x[:, :, : S // 2].sum(axis=(1, 2)) >= x[:, :, S // 2:].sum(axis=(1, 2)), "left", "right")


def _halves(rng, n, s=6):
    """n images whose left (code 1) or right (code 2) half is bright, plus noise; labels alternate 1, 2."""
    labels = np.array([1, 2] * (n // 2))
    x = 0.2 * rng.random((n, s, s))
    for i, c in enumerate(labels):
        if c == 1:
            x[i, :, : s // 2] += 0.7
        else:
            x[i, :, s // 2:] += 0.7
    return x, labels


def test_perception_metrics_keys_and_shapes(rng):
    t, lab = _halves(rng, 8)
    net = _FakeNet(_halves(rng, 10)[0])
    names = {1: "left", 2: "right"}
    single = M.perception_metrics(t, t, lab, net=net, class_names=names, n_boot=200)
    seeds = M.perception_metrics(np.stack([t, t, t]), t, lab, net=net, class_names=names, n_boot=200)
    assert M.PERCEPTION_METRICS == ("digit_acc", "feature_id2", "kid_digit")
    for res, K in ((single, 1), (seeds, 3)):
        assert tuple(res) == M.PERCEPTION_METRICS
        for m in ("digit_acc", "feature_id2"):
            assert {"mean", "ci_low", "ci_high", "per_image", "per_image_by_seed"} <= set(res[m])
            assert len(res[m]["per_image"]) == 8 and np.shape(res[m]["per_image_by_seed"]) == (K, 8)
            assert res[m]["ci_low"] <= res[m]["mean"] <= res[m]["ci_high"]
        assert "per_image" not in res["kid_digit"]
        assert res["kid_digit"]["n_recons"] == 8 * K and res["kid_digit"]["n_reference"] == 10
    assert single["digit_acc"]["mean"] == 1.0 and single["feature_id2"]["mean"] == 1.0
    assert seeds["feature_id2"]["mean"] == 1.0 and seeds["digit_acc"]["per_image_by_seed"] == [[1.0] * 8] * 3


def test_perception_metrics_digit_acc_averages_seeds_and_kid_by_hand(rng):
    t, lab = _halves(rng, 6)
    ref = _halves(rng, 8)[0]
    net = _FakeNet(ref)
    flipped = t[:, :, ::-1]  # every image classified as the other class
    res = M.perception_metrics(np.stack([t, flipped]), t, lab, net=net, class_names={1: "left", 2: "right"},
                               n_boot=300)
    assert res["digit_acc"]["per_image_by_seed"] == [[1.0] * 6, [0.0] * 6]
    assert res["digit_acc"]["mean"] == 0.5 and res["digit_acc"]["per_image"] == [0.5] * 6
    # KID of the 2 x 6 reconstructions against the reference, in units of the reference's RMS feature; the
    # within term pairs reconstructions of different images only (never the two seeds of one image)
    scale = np.sqrt(np.mean(ref.reshape(8, -1) ** 2))
    sets = np.stack([t, flipped]).reshape(2, 6, -1)
    assert res["kid_digit"]["feature_scale"] == pytest.approx(scale)
    want = _kid_of_sets_by_loops(sets / scale, ref.reshape(8, -1) / scale)
    assert res["kid_digit"]["mean"] == pytest.approx(want)
    assert res["kid_digit"]["mean"] != pytest.approx(_kid_by_loops(sets.reshape(12, -1) / scale,
                                                                   ref.reshape(8, -1) / scale))
    assert res["kid_digit"]["ci_low"] <= res["kid_digit"]["mean"] <= res["kid_digit"]["ci_high"]


def test_perception_metrics_kid_of_near_identical_seeds_equals_one_seed(rng):
    # reconstructions that are themselves draws from the reference distribution, repeated by 5 seeds that
    # barely differ: the multi-seed KID, and its CI, stay at the one-seed values (noisy with 10 images, but
    # an unbiased estimate of 0), not above them
    ref, lab = _halves(rng, 60)
    t, lab = _halves(rng, 10)
    net = _FakeNet(ref)
    names = {1: "left", 2: "right"}
    recon = _halves(rng, 10)[0]
    seeds = recon[None] + 1e-3 * rng.normal(size=(5,) + recon.shape)
    one = M.perception_metrics(recon, t, lab, net=net, class_names=names, n_boot=300)["kid_digit"]
    five = M.perception_metrics(seeds, t, lab, net=net, class_names=names, n_boot=300)["kid_digit"]
    assert five["n_recons"] == 50
    for key in ("mean", "ci_low", "ci_high"):
        assert five[key] == pytest.approx(one[key], abs=0.01)
    # the old pooled estimate, which paired the seeds of one image, is far above it
    scale = five["feature_scale"]
    pooled = M.kid(seeds.reshape(50, -1) / scale, ref.reshape(60, -1) / scale)
    assert pooled > one["mean"] + 0.1


def test_perception_metrics_kid_ranks_real_looking_sets_first(rng):
    t, lab = _halves(rng, 10)
    net = _FakeNet(_halves(rng, 40)[0])
    names = {1: "left", 2: "right"}
    real = M.perception_metrics(_halves(rng, 10)[0], t, lab, net=net, class_names=names, n_boot=200)["kid_digit"]
    blur = M.perception_metrics(np.full_like(t, t.mean()), t, lab, net=net, class_names=names,
                                n_boot=200)["kid_digit"]
    assert real["mean"] < blur["mean"] and real["ci_high"] < blur["ci_low"]


def test_perception_metrics_unknown_class_gives_nan_and_note(rng):
    t, lab = _halves(rng, 4)
    res = M.perception_metrics(t, t, lab, net=_FakeNet(t), class_names={1: "left", 2: "seven"}, n_boot=50)
    acc = res["digit_acc"]
    assert np.isnan(acc["mean"]) and np.isnan(acc["ci_low"]) and np.isnan(acc["ci_high"])
    assert "['seven']" in acc["note"] and "differ" in acc["note"]
    assert res["feature_id2"]["mean"] == 1.0  # the other metrics do not need class names


def test_perception_metrics_errors(rng):
    t, lab = _halves(rng, 4)
    net = _FakeNet(t)
    names = {1: "left", 2: "right"}
    with pytest.raises(ValueError, match=r"recons must have shape \(N, S, S\) or \(K, N, S, S\)"):
        M.perception_metrics(t[:3], t, lab, net=net, class_names=names)
    with pytest.raises(ValueError, match="at least 2 test images"):
        M.perception_metrics(t[:1], t[:1], lab[:1], net=net, class_names=names)
    with pytest.raises(ValueError, match="labels has 3 entries for 4 test images"):
        M.perception_metrics(t, t, lab[:3], net=net, class_names=names)
    with pytest.raises(ValueError, match=r"class_names has no name for the label code\(s\) \[2\]"):
        M.perception_metrics(t, t, lab, net=net, class_names={1: "left"})
    with pytest.raises(ValueError, match="class_names has the key 'x'"):
        M.perception_metrics(t, t, lab, net=net, class_names={"x": "left", 2: "right"})


@pytest.fixture
def bar_net_and_data(bar_net):
    """The session's PerceptionNet on bar images (conftest.bar_net) and its class names."""
    from tests.train_helpers import BAR_NAMES

    return bar_net, BAR_NAMES


def test_perception_metrics_with_a_trained_net(bar_net_and_data):
    net, names = bar_net_and_data
    h, lab = net.heldout_images, net.heldout_labels  # real images the net never trained on, as perfect recons
    assert net.heldout_accuracy == 1.0
    perfect = M.perception_metrics(h, h, lab, net=net, class_names=names, n_boot=200)
    assert perfect["digit_acc"]["mean"] == 1.0 and perfect["digit_acc"]["per_image"] == [1.0] * len(h)
    assert perfect["feature_id2"]["mean"] > 0.9
    # a derangement: every recon is another image -> identification near chance
    perm = np.roll(np.arange(len(h)), 3)
    shuffled = M.perception_metrics(h[perm], h, lab, net=net, class_names=names, n_boot=200)
    assert abs(shuffled["feature_id2"]["mean"] - 0.5) < 0.2
    # recons that name the wrong class (bars turned by 90 degrees): digit accuracy 0
    turned = M.perception_metrics(np.transpose(h, (0, 2, 1)), h, lab, net=net, class_names=names, n_boot=200)
    assert turned["digit_acc"]["mean"] == 0.0
    # digit codes of another dataset mapped to names the net does not know
    other = M.perception_metrics(h, h, lab, net=net, class_names={3: "six", 7: "nine"}, n_boot=50)
    assert np.isnan(other["digit_acc"]["mean"]) and "['nine', 'six']" in other["digit_acc"]["note"]


# ----------------------------------------------------------------------------- robustness


def test_two_level_bootstrap_identical_seeds_equals_one_level(rng):
    v = rng.normal(size=12)
    same = np.stack([v, v, v])
    one_level = M.bootstrap_ci(v, n_boot=500, seed=4)
    assert M.two_level_bootstrap_ci(same, n_boot=500, seed=4) == pytest.approx(one_level, abs=1e-12)
    assert M.two_level_bootstrap_ci(v[None], n_boot=500, seed=4) == pytest.approx(one_level, abs=1e-12)


def test_two_level_bootstrap_wider_when_seeds_differ(rng):
    v = rng.normal(size=12)
    seed_offsets = np.array([-1.0, 0.0, 1.0])[:, None]  # seeds that disagree by a constant
    differ = v[None] + seed_offsets
    lo1, hi1 = M.bootstrap_ci(differ.mean(axis=0), n_boot=1000)  # one level: over images of the seed mean
    lo2, hi2 = M.two_level_bootstrap_ci(differ, n_boot=1000)
    assert hi2 - lo2 > 1.5 * (hi1 - lo1)
    assert lo2 < differ.mean() < hi2


def test_two_level_bootstrap_nan_and_errors():
    lo, hi = M.two_level_bootstrap_ci(np.array([[1.0, np.nan, 3.0], [1.0, np.nan, 3.0]]), n_boot=200)
    assert 1.0 <= lo <= hi <= 3.0
    assert all(np.isnan(M.two_level_bootstrap_ci(np.full((2, 3), np.nan))))
    with pytest.raises(ValueError, match=r"per_image must have shape \(n_seeds >= 1, N >= 1\); got \(3,\)"):
        M.two_level_bootstrap_ci(np.ones(3))
    with pytest.raises(ValueError, match=r"per_image must have shape"):
        M.two_level_bootstrap_ci(np.ones((2, 0)))


def test_selection_stability_dominant_candidate_and_sums_to_one(rng):
    base = rng.normal(size=15)
    shares = M.selection_stability({"direct": base + 1.0, "diffusion": base, "mean of 8": base - 0.5}, n_boot=300)
    assert list(shares) == ["direct", "diffusion", "mean of 8"]
    assert shares["direct"] == 1.0 and sum(shares.values()) == pytest.approx(1.0)
    lower = M.selection_stability({"a": base + 1.0, "b": base}, n_boot=300, higher_is_better=False)
    assert lower == {"a": 0.0, "b": 1.0}
    close = M.selection_stability({"a": rng.normal(size=15), "b": rng.normal(size=15)}, n_boot=300)
    assert 0 < close["a"] < 1 and sum(close.values()) == pytest.approx(1.0)


def test_selection_stability_ties_split_evenly():
    v = np.array([1.0, 2.0, 3.0])
    assert M.selection_stability({"a": v, "b": v.copy(), "c": v - 1}, n_boot=100) == {"a": 0.5, "b": 0.5, "c": 0.0}
    assert M.selection_stability({"only": v}, n_boot=10) == {"only": 1.0}


def test_selection_stability_errors():
    with pytest.raises(ValueError, match="per_image is empty"):
        M.selection_stability({})
    with pytest.raises(ValueError, match="1-D array over the same N >= 1 trials"):
        M.selection_stability({"a": np.ones(3), "b": np.ones(4)})
    with pytest.raises(ValueError, match="1-D array over the same N >= 1 trials"):
        M.selection_stability({"a": np.ones((2, 3))})
    with pytest.raises(ValueError, match=r"per_image of \['b'\] hold NaN"):
        M.selection_stability({"a": np.ones(3), "b": np.array([1.0, np.nan, 2.0])})
