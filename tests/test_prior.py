"""Stage 1 of the image-prior Brain LDM: pretraining, its cache and its sampling interface, on tiny settings."""
import numpy as np
import pytest
import torch

from ldm_core.pipeline import sample_latents
from ldm_core.prior import ImagePrior, PriorConfig, images_checksum, observation_condition, pretrain_prior, prior_key

TINY = PriorConfig(latent_dim=3, vae_width=4, vae_hidden=8, vae_steps=5, vae_batch=8, denoiser_width=16,
                   denoiser_blocks=1, diffusion_steps=5, diffusion_batch=16, n_train_steps=50)


@pytest.fixture
def images(rng):
    return rng.random((20, 8, 8)).astype(np.float32)


def test_pretrain_is_deterministic_and_cached(images, tmp_path):
    a = pretrain_prior(images, cfg=TINY, seed=0, cache_dir=tmp_path, progress=False)
    files = sorted(p.name.split("-")[0] for p in tmp_path.iterdir())
    assert files == ["prior", "vae"]
    b = pretrain_prior(images, cfg=TINY, seed=0, cache_dir=tmp_path, progress=False)  # from the cache
    c = pretrain_prior(images, cfg=TINY, seed=0, progress=False)  # trained again, no cache
    for other in (b, c):
        for k, v in a.denoiser.state_dict().items():
            assert torch.equal(v, other.denoiser.state_dict()[k])
        assert torch.equal(a.center, other.center)
    assert a.history["vae_loss"] and a.history["diffusion_loss"] and a.n_images == 20
    d = pretrain_prior(images, cfg=TINY, seed=1, progress=False)
    assert not torch.equal(a.center, d.center)


def test_diffusion_change_reuses_the_vae(images, tmp_path):
    pretrain_prior(images, cfg=TINY, seed=0, cache_dir=tmp_path, progress=False)
    other = PriorConfig(**{**TINY.to_dict(), "prediction": "eps"})
    p = pretrain_prior(images, cfg=other, seed=0, cache_dir=tmp_path, progress=False)
    names = sorted(x.name.split("-")[0] for x in tmp_path.iterdir())
    assert names == ["prior", "prior", "vae"] and p.schedule.prediction == "eps"


def test_damaged_cache_is_retrained_with_a_warning(images, tmp_path):
    pretrain_prior(images, cfg=TINY, seed=0, cache_dir=tmp_path, progress=False)
    path = tmp_path / f"prior-{prior_key(images_checksum(images), TINY, 0)}.pt"
    path.write_bytes(b"not a torch file")
    with pytest.warns(RuntimeWarning, match="ignoring the damaged cached image prior"):
        p = pretrain_prior(images, cfg=TINY, seed=0, cache_dir=tmp_path, progress=False)
    assert isinstance(p, ImagePrior)


def test_codes_are_standardised_and_decode_round_trips_shapes(images):
    p = pretrain_prior(images, cfg=TINY, seed=0, progress=False)
    z = p.codes(images)
    assert z.shape == (20, 3) and np.allclose(z.mean(0), 0, atol=1e-4) and np.allclose(z.std(0, ddof=1), 1, atol=1e-3)
    out = p.decode(z)
    assert out.shape == (20, 8, 8) and out.min() >= 0 and out.max() <= 1


def test_sampling_loop_runs_on_vector_latents(images):
    p = pretrain_prior(images, cfg=TINY, seed=0, progress=False)
    cond = observation_condition(torch.zeros(4, 3), torch.full((3,), 0.5), torch.full((3,), 0.3))
    assert cond.shape == (4, 9)
    z = sample_latents(p, cond, x_T=torch.randn(4, 3), steps=5, guidance=2.0)
    assert z.shape == (4, 3) and torch.isfinite(z).all()
    z0 = sample_latents(p, cond, x_T=torch.randn(4, 3), steps=5, t_start=20)  # refinement from t = 20
    assert z0.shape == (4, 3)


def test_bad_config_and_images():
    with pytest.raises(ValueError, match="PriorConfig.prediction must be 'x0' or 'eps'"):
        PriorConfig(prediction="v")
    with pytest.raises(ValueError, match="obs_sigma_min <= obs_sigma_max"):
        PriorConfig(obs_sigma_min=2.0, obs_sigma_max=1.0)
    with pytest.raises(ValueError, match=r"unknown PriorConfig key\(s\) \['steps'\]"):
        PriorConfig.from_dict({"steps": 3})
    with pytest.raises(ValueError, match=r"images must be \(N >= 2, S, S\) in \[0, 1\]"):
        pretrain_prior(np.full((3, 8, 8), 2.0, np.float32), cfg=TINY)


def test_sample_quality_reports_moments_and_realism(images):
    from ldm_core.prior import sample_quality

    p = pretrain_prior(images, cfg=TINY, seed=0, progress=False)
    q = sample_quality(p, p.codes(images), images, n=64, steps=5)
    assert set(q) == {"mean_error", "cov_error", "variance_ratio", "nn_r", "samples"}
    assert q["samples"].shape == (16, 8, 8) and -1 <= q["nn_r"] <= 1 and q["variance_ratio"] > 0
