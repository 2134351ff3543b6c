import numpy as np
import pytest

from ldm_core.baselines import (LatentDecoder, fit_latent_decoder, fit_latent_ridge, fit_pls, fit_ridge,
                               noise_floors, vae_latents)
from ldm_core.data import load_digit69
from ldm_core.splits import FmriNormalizer


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


# ----------------------------------------------------------------------------- latent regression


def tiny_model(n_voxels):
    import torch

    from ldm_core.config import get_preset
    from ldm_core.pipeline import BrainLDM

    torch.manual_seed(0)
    cfg = get_preset("fixed", encoder_hidden=(16,), encoder_dim=16, vae="original", unet_channels=(8, 16),
                     unet_attention=False, n_train_steps=50)
    return BrainLDM(cfg, n_voxels=n_voxels).eval()


def test_latent_ridge_recovers_linear_latents(rng):
    fmri = rng.standard_normal((30, 12))
    W = rng.standard_normal((12, 2 * 2 * 3))
    latents = (fmri @ W).reshape(30, 2, 2, 3) * 5.0  # outside [0, 1]: must not be clipped
    dec = fit_latent_ridge(fmri[:24], latents[:24], n_folds=4)
    pred = dec.predict(fmri[24:])
    assert pred.shape == (6, 2, 2, 3) and pred.dtype == np.float32 and dec.target_shape == (2, 2, 3)
    assert dec.name == "latent_ridge" and dec.best_param == min(dec.cv_scores)  # noiseless: least shrinkage wins
    assert np.abs(pred).max() > 1.0  # values far outside [0, 1] survive (no clipping)
    np.testing.assert_allclose(pred, latents[24:], atol=0.05 * np.abs(latents).max())
    with pytest.raises(ValueError, match=r"targets \(N, ...\) with the same N"):
        fit_latent_ridge(fmri[:5], latents[:4])


def test_latent_decoder_decodes_predicted_latents():
    import torch

    from tests.synthetic_data import make_synthetic_digit69

    arr = make_synthetic_digit69(n_train=16, n_test=4, n_voxels=20, image_size=28)
    fmri = FmriNormalizer().fit_transform(arr["fmriTrn"])
    images = arr["stimTrn"].reshape(16, 28, 28).transpose(0, 2, 1) / 255.0
    model = tiny_model(20)
    z = vae_latents(model, images)
    assert z.shape == (16, *model.latent_shape) and z.dtype == np.float32
    dec = fit_latent_decoder(model, fmri, images, n_folds=4)
    assert isinstance(dec, LatentDecoder) and dec.best_param == dec.regression.best_param
    out = dec.predict(fmri[:3])
    assert out.shape == (3, 28, 28) and out.min() >= 0 and out.max() <= 1
    with torch.no_grad():
        again = model.decode_latents(torch.as_tensor(dec.predict_latents(fmri[:3])))[:, 0].clamp(0, 1).numpy()
    np.testing.assert_allclose(out, again, atol=1e-6)


# --- the nearest-fMRI copy --------------------------------------------------------------------------


def test_nearest_fmri_copy_by_hand():
    from ldm_core.baselines import nearest_fmri_copy

    fmri_train = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 2.0]])
    images = np.stack([np.full((2, 2), v) for v in (0.1, 0.5, 0.9)])
    # test 0: trial 2's pattern with another gain and offset (r = 1: the pattern, not its scale, decides);
    # test 1: closest in pattern to trial 1; test 2: as close to trials 0 and 1 -> the first one
    fmri_test = np.array([[5.0, 5.0, 10.0, 15.0], [0.1, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    out, idx = nearest_fmri_copy(fmri_train, images, fmri_test, return_index=True)
    assert idx.tolist() == [2, 1, 0] and out.dtype == np.float32 and out.shape == (3, 2, 2)
    np.testing.assert_array_equal(out, images[[2, 1, 0]].astype(np.float32))
    r = np.corrcoef(np.vstack([fmri_test[1], fmri_train]))[0, 1:]  # independent check: Pearson r per pair
    assert int(np.argmax(r)) == 1
    np.testing.assert_array_equal(nearest_fmri_copy(fmri_train, images, fmri_test), out)


def test_nearest_fmri_copy_retrieves_repeated_stimuli(tmp_path):
    """On the schema dataset, the copy finds the planted training source of most repeated test images."""
    from ldm_core.baselines import nearest_fmri_copy
    from tests.schema_dataset import write_schema_dataset

    info = write_schema_dataset(tmp_path / "shapes.mat")
    d = load_digit69(info["path"], verbose=0)
    norm = FmriNormalizer().fit(d.fmri_train)
    _, idx = nearest_fmri_copy(norm.transform(d.fmri_train), d.images_train, norm.transform(d.fmri_test),
                               return_index=True)
    hits = [idx[i] == info["source_train"][i] for i in info["repeated_test"]]
    assert sum(hits) >= len(hits) - 1


@pytest.mark.parametrize("args,match", [
    ((np.zeros((3, 4)), np.zeros((3, 2, 2)), np.zeros((2, 5))), r"same V; got \(3, 4\) and \(2, 5\)"),
    ((np.zeros(4), np.zeros((3, 2, 2)), np.zeros((2, 4))), r"expected fmri_train \(N_train >= 1, V\)"),
    ((np.zeros((0, 4)), np.zeros((0, 2, 2)), np.zeros((2, 4))), r"expected fmri_train \(N_train >= 1, V\)"),
    ((np.zeros((3, 4)), np.zeros((2, 2, 2)), np.zeros((2, 4))), r"images_train must be \(N_train, S, S\) with "
                                                                r"N_train = 3 .*got \(2, 2, 2\)"),
    ((np.zeros((3, 4)), np.zeros((3, 4)), np.zeros((2, 4))), r"images_train must be \(N_train, S, S\)"),
])
def test_nearest_fmri_copy_refuses_bad_shapes(args, match):
    from ldm_core.baselines import nearest_fmri_copy

    with pytest.raises(ValueError, match=match):
        nearest_fmri_copy(*args)


def test_cv_search_tunes_one_hyperparameter_and_pls_counts_are_kept_as_given():
    from sklearn.linear_model import Ridge

    from ldm_core.baselines import cv_search, pls_components_that_fit

    X, Y = np.zeros((10, 3)), np.zeros((10, 2))
    with pytest.raises(ValueError, match=r"one hyperparameter; grid names \['alpha', 'tol'\]"):
        cv_search(Ridge(), {"alpha": [1.0], "tol": [1e-3]}, X, Y, n_folds=2, seed=0)
    # 10 rows, 5 folds: the smallest training fold has 8 rows, so at most 7 components; 2.5 is not made 2
    assert pls_components_that_fit((0, 2.5, 7, 8), 10, 5) == [2.5, 7]
