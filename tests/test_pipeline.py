"""Tests of ldm_core.pipeline: BrainLDM building, reconstruct shapes/range/seeding, guidance, save/load."""
import numpy as np
import pytest
import torch

from ldm_core.config import get_preset
from ldm_core.pipeline import BrainLDM, as_fmri_tensor, sample_latents

torch.set_num_threads(1)

N, V, S = 3, 32, 28  # trials, voxels, image side


# helpers

def tiny_cfg(preset: str = "fixed", **overrides):
    base = dict(encoder_hidden=(16,), encoder_dim=16, n_train_steps=50)
    if preset == "fixed":
        base.update(vae="original", unet_channels=(8, 16), unet_attention=False)
    base.update(overrides)
    return get_preset(preset, **base)


def make_model(preset: str = "fixed", **overrides) -> BrainLDM:
    torch.manual_seed(0)
    model = BrainLDM(tiny_cfg(preset, **overrides), n_voxels=V)
    with torch.no_grad():  # a non-trivial null token, so guidance changes the output
        if getattr(model.unet, "null_cond", None) is not None:
            model.unet.null_cond.normal_()
    return model.eval()


@pytest.fixture(scope="module")
def model():
    return make_model()


@pytest.fixture
def fmri():
    return np.random.default_rng(0).standard_normal((N, V)).astype(np.float32)


# building

def test_parts_and_parameter_counts(model):
    counts = model.n_parameters()
    assert set(counts) == {"encoder", "vae", "unet", "total"}
    assert counts["total"] == counts["encoder"] + counts["vae"] + counts["unet"] > 0
    assert model.latent_shape == (4, 7, 7) and model.image_size == S
    assert float(model.latent_scale) == pytest.approx(0.18215)


@pytest.mark.parametrize("preset, side, latent", [("fixed", 20, (4, 5, 5)), ("original", 20, (4, 5, 5)),
                                                   ("fixed", 28, (4, 7, 7))])
def test_image_size_comes_from_the_data_and_survives_a_checkpoint(preset, side, latent, tmp_path):
    """Another dataset's image side (not a config field) sizes the VAE; a saved model keeps it."""
    torch.manual_seed(0)
    model = BrainLDM(tiny_cfg(preset), n_voxels=V, image_size=side).eval()
    assert model.image_size == side and model.latent_shape == latent
    out = model.reconstruct(np.zeros((2, V), np.float32), steps=2)
    assert out.shape == (2, side, side)
    again = BrainLDM.load(model.save(tmp_path / "m.pt"))
    assert again.image_size == side
    np.testing.assert_array_equal(again.reconstruct(np.zeros((2, V), np.float32), steps=2), out)


def test_large_vae_canvas_leaves_a_border_of_at_least_two_pixels():
    from ldm_core.models import build_vae, large_vae_canvas

    assert large_vae_canvas(28) == 32  # digit69: the published 8x8x8 latent
    assert [large_vae_canvas(s) for s in (20, 16, 30, 10)] == [24, 20, 36, 16]
    assert build_vae(get_preset("fixed"), image_size=20).latent_shape == (8, 6, 6)


def test_build_errors():
    with pytest.raises(ValueError, match="n_voxels must be a positive int"):
        BrainLDM(tiny_cfg(), n_voxels=0)
    with pytest.raises(ValueError, match="ldm_cfg must be an LDMConfig"):
        BrainLDM({"encoder": "mlp_original"}, n_voxels=V)
    with pytest.raises(ValueError, match="latent scale must be finite and > 0"):
        make_model().set_latent_scale(0.0)


def test_default_sampler_follows_preset():
    assert make_model("original").default_sampler == "original"
    assert make_model("fixed").default_sampler == "ddim"


# reconstruct

@pytest.mark.parametrize("sampler", ["ddim", "ddpm", "original"])
def test_reconstruct_shapes_and_range(model, fmri, sampler):
    out = model.reconstruct(fmri, steps=4, sampler=sampler, n_samples=2)
    assert out.shape == (N, S, S) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    each = model.reconstruct(fmri, steps=4, sampler=sampler, n_samples=2, average=False)
    assert each.shape == (N, 2, S, S) and each.dtype == np.float32
    np.testing.assert_allclose(each.mean(axis=1), out, atol=1e-6)
    assert not np.array_equal(each[:, 0], each[:, 1])  # different starting noise per sample


def test_reconstruct_original_preset_and_torch_input(fmri):
    m = make_model("original")
    out = m.reconstruct(torch.from_numpy(fmri), steps=3)  # default sampler "original"
    assert out.shape == (N, S, S) and 0 <= out.min() and out.max() <= 1


def test_reconstruct_is_seeded(model, fmri):
    a = model.reconstruct(fmri, steps=4, sampler="ddpm", seed=1)
    assert np.array_equal(a, model.reconstruct(fmri, steps=4, sampler="ddpm", seed=1))
    assert not np.array_equal(a, model.reconstruct(fmri, steps=4, sampler="ddpm", seed=2))


def test_ddim_does_not_depend_on_batch_size(model, fmri):
    a = model.reconstruct(fmri, steps=4, n_samples=2, average=False)
    b = model.reconstruct(fmri, steps=4, n_samples=2, average=False, batch_size=2)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_guidance_combines_conditional_and_unconditional(model, fmri):
    x = torch.randn(N, *model.latent_shape)
    t = torch.full((N,), 10)
    cond = model.encode_fmri(torch.from_numpy(fmri))
    with torch.no_grad():
        c = model.unet(x, t, cond)
        u = model.unet(x, t, None)
        g = model.predict(x, 10, cond, guidance=3.0)
    assert not torch.allclose(c, u)
    torch.testing.assert_close(g, u + 3.0 * (c - u), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(model.predict(x, 10, cond, guidance=1.0), c)
    out = model.reconstruct(fmri, steps=3, guidance=3.0)
    assert out.shape == (N, S, S) and not np.array_equal(out, model.reconstruct(fmri, steps=3))


def test_sample_latents_single_ddim_step_is_x0_estimate(model, fmri):
    cond = model.encode_fmri(torch.from_numpy(fmri))
    x_T = torch.randn(N, *model.latent_shape)
    with torch.no_grad():
        x0 = sample_latents(model, cond, x_T=x_T, steps=1)
        t = model.schedule.n_train_steps - 1
        expected = model.schedule.predict_x0(x_T, t, model.predict(x_T, t, cond))
    torch.testing.assert_close(x0, expected)


def test_reconstruct_keeps_training_mode(fmri):
    m = make_model().train()
    m.reconstruct(fmri, steps=2)
    assert m.training


def test_reconstruct_errors(model, fmri):
    with pytest.raises(ValueError, match="fmri has 31 voxels per trial but the model expects 32"):
        model.reconstruct(fmri[:, :31])
    bad = fmri.copy()
    bad[1, 3] = np.nan
    with pytest.raises(ValueError, match="fmri holds 1 NaN or infinite values"):
        model.reconstruct(bad)
    with pytest.raises(ValueError, match=r"fmri must have shape \(N, V\)"):
        model.reconstruct(fmri[0])
    with pytest.raises(ValueError, match="sampler must be one of"):
        model.reconstruct(fmri, sampler="euler")
    with pytest.raises(ValueError, match="steps must be an int in"):
        model.reconstruct(fmri, steps=51)
    with pytest.raises(ValueError, match="n_samples must be a positive int"):
        model.reconstruct(fmri, n_samples=0)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        model.reconstruct(fmri, batch_size=0)
    with pytest.raises(ValueError, match="0 trials"):
        as_fmri_tensor(fmri[:0], n_voxels=V)


# save / load

def test_save_load_round_trip(tmp_path, fmri):
    m = make_model("fixed", multiscale=True)
    m.set_latent_scale(0.5)
    path = m.save(tmp_path / "sub" / "model.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "brain_ldm/1" and raw["n_voxels"] == V and raw["ldm_cfg"]["multiscale"] is True
    loaded = BrainLDM.load(path)
    assert not loaded.training and loaded.ldm_cfg == m.ldm_cfg
    assert float(loaded.latent_scale) == 0.5 and loaded.vae.scale_factor == 0.5
    for sampler in ("ddim", "ddpm"):
        a = m.reconstruct(fmri, steps=3, sampler=sampler, n_samples=2)
        b = loaded.reconstruct(fmri, steps=3, sampler=sampler, n_samples=2)
        assert np.array_equal(a, b)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no BrainLDM checkpoint"):
        BrainLDM.load(tmp_path / "missing.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a BrainLDM checkpoint"):
        BrainLDM.load(tmp_path / "other.pt")


def test_default_sampler_is_renoising_for_the_original_denoiser_only():
    from ldm_core.study.experiment import make_ldm_config
    from ldm_core.pipeline import default_sampler

    assert default_sampler(make_ldm_config("original")) == "original"
    assert default_sampler(make_ldm_config("original", unet="unet", unet_channels=(8, 16))) == "ddim"
