"""Stage 2: voxel ranking by encoding R², the fMRI -> code map and its cross-validated calibration."""
import numpy as np
import pytest

from ldm_core.latent_map import encoding_r2, fit_latent_map, observation_model


@pytest.fixture
def toy(rng):
    """Codes drive the first 5 of 40 voxels linearly; the other 35 are noise."""
    N, d, V = 60, 3, 40
    codes = rng.normal(size=(N, d))
    W = np.zeros((d, V))
    W[:, :5] = rng.normal(size=(d, 5)) * 2
    fmri = codes @ W + 0.3 * rng.normal(size=(N, V))
    return fmri, codes


def test_encoding_r2_ranks_the_informative_voxels_first(toy):
    fmri, codes = toy
    r2 = encoding_r2(fmri, codes)
    assert r2.shape == (40,) and set(np.argsort(r2)[::-1][:5]) == set(range(5))
    assert r2[:5].min() > 0.5 and r2[5:].max() < 0.2


@pytest.mark.parametrize("kind", ["ridge", "pls", "mlp"])
def test_map_reads_the_selected_voxels_and_predicts(toy, kind):
    fmri, codes = toy
    m = fit_latent_map(fmri[:50], codes[:50], kind=kind, n_voxels=5, mlp={"epochs": 200})
    assert sorted(m.voxels.tolist()) == list(range(5))
    pred = m.predict(fmri[50:])
    assert pred.shape == (10, 3) and pred.dtype == np.float32
    assert np.corrcoef(pred.ravel(), codes[50:].ravel())[0, 1] > 0.8


def test_observation_model_recovers_a_known_shrinkage(rng):
    """A ridge map with a huge alpha shrinks predictions toward the mean: slope well below 1, noise measured."""
    N, d, V = 80, 2, 10
    codes = rng.normal(size=(N, d))
    fmri = codes @ rng.normal(size=(d, V)) + 0.1 * rng.normal(size=(N, V))
    sharp = fit_latent_map(fmri, codes, alphas=(1e-3,))
    blunt = fit_latent_map(fmri, codes, alphas=(1e4,))
    o_sharp, o_blunt = observation_model(sharp, fmri, codes), observation_model(blunt, fmri, codes)
    assert (o_sharp.slope > 0.9).all() and (o_blunt.slope < 0.5).all()
    assert (o_sharp.r2 > 0.9).all() and (o_sharp.noise < 0.2).all()
    cond = o_blunt.condition(np.zeros((4, d)), noise_scale=2.0)
    assert tuple(cond.shape) == (4, 3 * d)
    assert np.allclose(cond[:, 2 * d:].numpy(), 2 * o_blunt.noise)


def test_bad_inputs(toy):
    fmri, codes = toy
    with pytest.raises(ValueError, match="kind must be one of"):
        fit_latent_map(fmri, codes, kind="lasso")
    with pytest.raises(ValueError, match=r"n_voxels must be an int in \[1, 40\]"):
        fit_latent_map(fmri, codes, n_voxels=41)
    with pytest.raises(ValueError, match="with the same N"):
        fit_latent_map(fmri[:10], codes[:9])
