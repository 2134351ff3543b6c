"""Stage 3 and the run protocol of the image-prior Brain LDM, on tiny settings and synthetic data."""
import numpy as np
import pytest

from ldm_core.data import write_digit69_mat
from tests.synthetic_data import make_synthetic_digit69
from ldm_core.prior import PriorConfig
from ldm_core.prior_ldm import DecodeConfig
from ldm_core.study.prior_runs import MapConfig, PriorVariant, build_decoder, run_prior_variants
from ldm_core.splits import prepare_data, refit_all

TINY = PriorConfig(latent_dim=3, vae_width=4, vae_hidden=8, vae_steps=5, vae_batch=8, denoiser_width=16,
                   denoiser_blocks=1, diffusion_steps=5, diffusion_batch=16, n_train_steps=50)


@pytest.fixture
def data(tmp_path):
    path = write_digit69_mat(tmp_path / "d.mat", make_synthetic_digit69(n_train=30, n_test=6, n_voxels=20,
                                                                        image_size=12))
    return prepare_data(str(path), verbose=0)


@pytest.fixture
def images(data, rng):
    return np.concatenate([rng.random((20, 12, 12)).astype(np.float32), data.images_fit])


BASE = PriorVariant(TINY, MapConfig(n_voxels=10, n_folds=3), DecodeConfig(mode="direct", steps=10))


@pytest.mark.parametrize("decode", [dict(mode="direct"), dict(mode="refine", strength=0.3, n_samples=3),
                                    dict(mode="noise", n_samples=2, guidance=2.0), dict(mode="refine", n_samples=3,
                                                                                         average="latent")])
def test_every_decoding_mode_gives_images(data, images, decode):
    dec = build_decoder(data, images, BASE, seed=0, progress=False)
    out = dec.reconstruct(data.fmri_val, BASE.replace(decode=decode).decode, seed=0)
    assert out.shape == data.images_val.shape and out.min() >= 0 and out.max() <= 1
    again = dec.reconstruct(data.fmri_val, BASE.replace(decode=decode).decode, seed=0)
    assert np.array_equal(out, again)  # seeded


def test_direct_mode_is_the_decoded_prediction(data, images):
    dec = build_decoder(data, images, BASE, seed=0, progress=False)
    assert np.allclose(dec.reconstruct(data.fmri_val, BASE.decode), dec.prior.decode(dec.predicted_codes(data.fmri_val)))


def test_run_protocol_caches_and_shares(data, images, tmp_path):
    variants = {"direct": BASE, "refine": BASE.replace(decode={"mode": "refine", "n_samples": 2})}
    res = run_prior_variants(variants, data, images, seeds=[0, 1], n_boot=100, cache_dir=tmp_path, progress=False)
    assert list(res) == ["direct", "refine"] and [r.seed for r in res["refine"].runs] == [0, 1]
    n_files = len(list(tmp_path.iterdir()))
    again = run_prior_variants(variants, data, images, seeds=[0, 1], n_boot=100, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.iterdir())) == n_files  # everything came from the cache
    assert np.array_equal(again["refine"].runs[1].recon_test, res["refine"].runs[1].recon_test)
    assert res["direct"].runs[0].history["n_voxels_read"] == 10


def test_refit_on_all_training_trials(data, images, tmp_path):
    full = refit_all(data)
    assert len(full.images_fit) == 30 and full.fingerprint() != data.fingerprint()
    res = run_prior_variants({"direct": BASE}, full, images, seeds=[0], n_boot=100, cache_dir=tmp_path, progress=False)
    assert res["direct"].runs[0].recon_test.shape == data.images_test.shape


def test_bad_settings():
    with pytest.raises(ValueError, match=r"strength must be in \(0, 1\) for mode 'refine'"):
        DecodeConfig(mode="refine", strength=1.0)
    with pytest.raises(ValueError, match="mode must be one of"):
        DecodeConfig(mode="mix")
    with pytest.raises(ValueError, match="MapConfig.kind must be one of"):
        MapConfig(kind="lasso")
    with pytest.raises(ValueError, match=r"unknown DecodeConfig key\(s\) \['samples'\]"):
        BASE.replace(decode={"samples": 3})


def test_vae_only_decoder_decodes_directly_exactly_as_the_full_prior(data, images, tmp_path):
    full = build_decoder(data, images, BASE, seed=0, cache_dir=tmp_path, progress=False)
    vae = build_decoder(data, images, BASE, seed=0, cache_dir=tmp_path, progress=False, vae_only=True)
    assert vae.prior.denoiser is None
    assert np.array_equal(vae.reconstruct(data.fmri_test, BASE.decode), full.reconstruct(data.fmri_test, BASE.decode))
    fresh = build_decoder(data, images, BASE, seed=0, progress=False, vae_only=True)  # trained again, no cache
    assert np.array_equal(fresh.reconstruct(data.fmri_test, BASE.decode), full.reconstruct(data.fmri_test, BASE.decode))
    with pytest.raises(ValueError, match="needs a prior with a denoiser"):
        vae.reconstruct(data.fmri_test, BASE.replace(decode={"mode": "refine"}).decode)
