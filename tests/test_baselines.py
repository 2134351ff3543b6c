import numpy as np
import pytest

from ldm_core.baselines import fit_pls, fit_ridge, noise_floors
from ldm_core.data import FmriNormalizer, load_digit69


def test_noise_floors_by_hand():
    imgs = np.stack([np.zeros((4, 4)), np.ones((4, 4)), np.full((4, 4), 0.5)])
    labels_train = np.array([1, 2, 2])
    f = noise_floors(imgs, labels_train, np.array([2, 1]), seed=0)
    assert set(f) == {"uniform_noise", "constant_0.5", "constant_0", "train_mean", "class_mean_reference"}
    np.testing.assert_allclose(f["train_mean"], 0.5)
    np.testing.assert_allclose(f["class_mean_reference"][0], 0.75)  # mean of the nines (1 and 0.5)
    np.testing.assert_allclose(f["class_mean_reference"][1], 0.0)
    assert f["uniform_noise"].shape == (2, 4, 4) and 0 <= f["uniform_noise"].min() and f["uniform_noise"].max() <= 1
    np.testing.assert_array_equal(f["uniform_noise"], noise_floors(imgs, labels_train, np.array([2, 1]), seed=0)["uniform_noise"])


def test_class_mean_needs_training_examples():
    with pytest.raises(ValueError, match=r"test labels \[2\] have no training images"):
        noise_floors(np.zeros((2, 3, 3)), np.array([1, 1]), np.array([2]))


def test_linear_decoders_recover_linear_relation(synthetic_mat):
    d = load_digit69(synthetic_mat, verbose=0)
    norm = FmriNormalizer().fit(d.fmri_train)
    for fit in (fit_ridge, fit_pls):
        dec = fit(norm.transform(d.fmri_train), d.images_train, n_folds=4)
        pred = dec.predict(norm.transform(d.fmri_test))
        assert pred.shape == d.images_test.shape and pred.min() >= 0 and pred.max() <= 1
        assert ((pred - d.images_test) ** 2).mean() < ((d.images_train.mean(0) - d.images_test) ** 2).mean()
        assert dec.best_param in dec.cv_scores


def test_decoder_sees_only_training_data(synthetic_mat):
    """Selection uses training trials only: changing the test fMRI does not change the chosen alpha."""
    d = load_digit69(synthetic_mat, verbose=0)
    a = fit_ridge(d.fmri_train, d.images_train, n_folds=4)
    b = fit_ridge(d.fmri_train, d.images_train, n_folds=4)
    assert a.best_param == b.best_param and a.cv_scores == b.cv_scores


def test_bad_inputs():
    with pytest.raises(ValueError, match="same N"):
        fit_ridge(np.zeros((5, 3)), np.zeros((4, 2, 2)))
    with pytest.raises(ValueError, match="n_folds must be in"):
        fit_ridge(np.zeros((5, 3)), np.zeros((5, 2, 2)), n_folds=9)
