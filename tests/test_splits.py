"""Tests of ldm_core.splits: the validation split, z-scoring with fitting statistics, subsets, seeds."""
import numpy as np
import pytest

from ldm_core.splits import prepare_data, seed_list, subsample_fit
from tests.train_helpers import small_study_data


@pytest.fixture
def small_data(tmp_path):
    return small_study_data(tmp_path)


def test_prepare_data_split_and_normalisation(small_data):
    d = small_data
    assert (len(d.images_fit), len(d.images_val), len(d.images_test)) == (16, 4, 4)
    assert d.n_voxels == 24 and d.fit_idx is None
    fit_idx = np.setdiff1d(np.arange(20), d.val_idx)
    np.testing.assert_array_equal(d.images_fit, d.raw.images_train[fit_idx])
    np.testing.assert_allclose(d.fmri_fit.mean(axis=0), 0, atol=1e-5)  # z-scored with the fitting trials' statistics
    np.testing.assert_allclose(d.fmri_val, d.normalizer.transform(d.raw.fmri_train[d.val_idx]))
    np.testing.assert_allclose(d.fmri_test, d.normalizer.transform(d.raw.fmri_test))
    assert sorted(np.bincount(d.labels_val)[1:]) == [2, 2]  # stratified by digit
    assert len(d.fingerprint()) == 16


def test_prepare_data_is_seeded(small_data, tmp_path):
    again = prepare_data(str(tmp_path), val_fraction=0.2, verbose=0)
    other = prepare_data(str(tmp_path), val_fraction=0.2, split_seed=1, verbose=0)
    np.testing.assert_array_equal(again.val_idx, small_data.val_idx)
    assert again.fingerprint() == small_data.fingerprint() != other.fingerprint()


def test_subsample_fit_stratified_renormalised_and_keyed(small_data):
    d = small_data
    sub = subsample_fit(d, 6, seed=0)
    assert len(sub.images_fit) == 6 and sorted(np.bincount(sub.labels_fit)[1:]) == [3, 3]
    assert not set(sub.fit_idx) & set(d.val_idx)
    np.testing.assert_array_equal(sub.images_fit, d.raw.images_train[sub.fit_idx])
    np.testing.assert_allclose(sub.fmri_fit.mean(axis=0), 0, atol=1e-5)  # z-scored with the subset's own statistics
    np.testing.assert_array_equal(sub.images_val, d.images_val)
    np.testing.assert_allclose(sub.fmri_val, sub.normalizer.transform(d.raw.fmri_train[d.val_idx]))
    again, other = subsample_fit(d, 6, seed=0), subsample_fit(d, 6, seed=1)
    np.testing.assert_array_equal(again.fit_idx, sub.fit_idx)
    assert len({d.fingerprint(), sub.fingerprint(), other.fingerprint()}) == 3
    assert subsample_fit(d, 16) is d
    for bad in (1, 17, 2.5):
        with pytest.raises(ValueError, match=r"n_trials must be an int in \[2, 16\]"):
            subsample_fit(d, bad)


def test_seed_list():
    assert seed_list(3) == [0, 1, 2] and seed_list(2, first=5) == [5, 6]
    with pytest.raises(ValueError, match="n_seeds must be at least 1, got 0"):
        seed_list(0)


def test_counts_and_class_names_come_from_the_data(small_data):
    d = small_data
    assert (d.n_train, d.n_fit, d.n_val, d.n_test, d.n_voxels, d.image_size) == (20, 16, 4, 4, 24, 28)
    assert d.class_names == {1: "six", 2: "nine"}
    sub = subsample_fit(d, 6, seed=0)
    assert (sub.n_train, sub.n_fit, sub.n_val, sub.n_test) == (20, 6, 4, 4)
    from ldm_core.splits import refit_all

    assert (refit_all(d).n_fit, refit_all(d).n_val) == (20, 4)  # the refit fits on every training trial


def test_class_names_pass_through_and_never_change_the_fingerprint(small_data, tmp_path):
    import hashlib

    named = prepare_data(str(tmp_path), val_fraction=0.2, class_names={"1": "upright", "2": "rotated"}, verbose=0)
    assert named.class_names == {1: "upright", 2: "rotated"} and named.raw.class_names == named.class_names
    by_hand = hashlib.sha256((named.raw.sha256 + ",".join(map(str, named.val_idx))).encode()).hexdigest()[:16]
    assert named.fingerprint() == small_data.fingerprint() == by_hand  # the run-cache key: data file and split only
    with pytest.raises(ValueError, match=r"class_names: code 7 does not occur in digit69_28x28\.mat"):
        prepare_data(str(tmp_path), class_names={7: "seven"}, verbose=0)
