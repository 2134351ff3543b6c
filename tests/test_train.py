"""Tests of ldm_core.train: inputs, every stage plan, freezing, numerics, determinism, fMRI augmentation."""
import ast
import inspect
import math

import numpy as np
import pytest
import torch

import ldm_core.feature_net
import ldm_core.stage_losses
from ldm_core import train as train_mod
from ldm_core.config import FIXED_AUGMENTATION
from ldm_core.device import resolve_device
from ldm_core.pipeline import BrainLDM
from ldm_core.train import check_training_data, fit
from ldm_core.train_stages import random_affine
from tests.train_helpers import N, V, TinyFeatureNet, blobs, histories_equal, run, same, state, tiny_cfg, train_cfg

torch.set_num_threads(1)


@pytest.fixture
def stage_states(monkeypatch):
    """Record BrainLDM part states before and after each stage: {stage: (before, after)}."""
    record = {}
    original = train_mod._Trainer.run_stage

    def wrapped(self, name, **kw):
        before = {p: state(getattr(self.model, p)) for p in ("encoder", "vae", "unet")}
        original(self, name, **kw)
        record[name] = (before, {p: state(getattr(self.model, p)) for p in ("encoder", "vae", "unet")})

    monkeypatch.setattr(train_mod._Trainer, "run_stage", wrapped)
    return record


# module layout

def test_no_function_in_train_is_much_longer_than_60_lines():
    tree = ast.parse(inspect.getsource(train_mod))
    sizes = {n.name: n.end_lineno - n.lineno + 1 for n in ast.walk(tree)
             if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    assert max(sizes.values()) <= 65, sorted(sizes.items(), key=lambda kv: -kv[1])[:3]


# inputs

def test_check_training_data_errors():
    fmri, images = blobs()
    with pytest.raises(ValueError, match="fmri_train has 8 trials but images_train has 7"):
        check_training_data(fmri, images[:7])
    with pytest.raises(ValueError, match="fmri_train has 32 voxels but fmri_val has 31"):
        check_training_data(fmri, images, fmri[:, :31], images)
    with pytest.raises(ValueError, match="square images"):
        check_training_data(fmri, images[:, :, :27])
    with pytest.raises(ValueError, match="must lie in \\[0, 1\\]"):
        check_training_data(fmri, images * 255)
    bad = images.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="images_train holds 1 NaN"):
        check_training_data(fmri, bad)
    with pytest.raises(ValueError, match="pass both fmri_val and images_val"):
        check_training_data(fmri, images, fmri, None)
    with pytest.raises(ValueError, match=r"fmri_train must have shape \(N, V\)"):
        check_training_data(fmri[0], images)
    with pytest.raises(ValueError, match="images_train are 28x28 but images_val are 27x27"):
        check_training_data(fmri, images, fmri, images[:, :27, :27])
    with pytest.raises(ValueError, match="fmri_train has no trials"):
        check_training_data(fmri[:0], images[:0])
    with pytest.raises(ValueError, match="fmri_train must be a numpy array or Tensor of numbers"):
        check_training_data([["a"] * V] * N, images)
    f, im, fv, iv = check_training_data(fmri, images)
    assert f.shape == (N, V) and im.shape == (N, 1, 28, 28) and fv is None and iv is None
    f, im, fv, iv = check_training_data(fmri, images[:, None], fmri[:2], images[:2])  # (N, 1, S, S) accepted too
    assert im.shape == (N, 1, 28, 28) and fv.shape == (2, V) and iv.shape == (2, 1, 28, 28)


def test_fit_argument_errors(tmp_path):
    fmri, images = blobs()
    with pytest.raises(ValueError, match="w_coarse=0.5 needs a U-Net with a coarse head"):
        fit(fmri, images, ldm_cfg=tiny_cfg(), train_cfg=train_cfg(stages="end_to_end", w_coarse=0.5))
    with pytest.raises(ValueError, match="unknown TrainConfig key"):
        fit(fmri, images, ldm_cfg=tiny_cfg(), train_cfg={"epoch": 1})
    with pytest.raises(ValueError, match="ldm_cfg must be an LDMConfig or a preset name"):
        fit(fmri, images, ldm_cfg={"vae": "large"}, train_cfg=train_cfg())
    with pytest.raises(ValueError, match="unknown preset"):
        fit(fmri, images, ldm_cfg="improved", train_cfg=train_cfg())
    with pytest.raises(ValueError, match="train_cfg must be a TrainConfig, a mapping or None"):
        fit(fmri, images, ldm_cfg=tiny_cfg(), train_cfg=3)
    odd = np.pad(images, ((0, 0), (1, 1), (1, 1)))  # 30x30: the model takes the data's side, the 4x7x7 VAE needs S % 4 == 0
    with pytest.raises(ValueError, match="image_size must be a positive multiple of 4, got 30"):
        fit(fmri, odd, ldm_cfg=tiny_cfg(), train_cfg=train_cfg())


def test_device_resolution():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="device must be one of"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            resolve_device("cuda")


# helpers of the stages

def test_random_affine_identity_and_range():
    _, images = blobs()
    x = torch.from_numpy(images)[:, None]
    g = torch.Generator().manual_seed(0)
    assert torch.allclose(random_affine(x, generator=g, degrees=0.0, translate=0.0), x, atol=1e-5)
    y = random_affine(x, generator=g, degrees=15.0, translate=0.1)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1 and not torch.allclose(y, x)


# stage plans

@pytest.mark.parametrize("stages, names", [
    ("original", ["diffusion"]),
    ("progressive", ["vae", "align", "diffusion"]),
    ("end_to_end", ["vae", "diffusion"]),
])
def test_every_stage_plan_runs_one_epoch(stages, names):
    res = run(stages)
    h = res.history
    assert h["stage"] == names and h["epoch"] == [1] * len(names)
    assert all(math.isfinite(v) for v in h["train_loss"] + h["val_loss"] + h["lr"])
    assert np.isfinite(h["train_noise"][-1])
    assert res.steps == 2 * len(names) and res.steps_per_s > 0 and res.device.startswith("cpu")
    assert isinstance(res.model, BrainLDM) and not res.model.training
    assert res.feature_net_name is None


def test_progressive_with_every_option(monkeypatch):
    """Image losses (perceptual, SSIM, MSE, adversarial), coarse head, CFG dropout, augmentation."""
    calls = []

    def fake_feature_net(spec, *, cache_dir=None, seed=0):
        calls.append(spec)
        return ldm_core.feature_net.FeatureNet(net=TinyFeatureNet().requires_grad_(False).eval(), name="tiny-test-net")

    monkeypatch.setattr(ldm_core.feature_net, "get_feature_net", fake_feature_net)
    res = run("progressive", ldm=tiny_cfg(multiscale=True), epochs=2, w_img_mse=1.0, w_perceptual=0.1,
              w_ssim=0.01, w_adv=0.05, w_coarse=0.5, img_loss_t_frac=1.0, cfg_dropout=0.2,
              fmri_noise=0.1, voxel_dropout=0.1, vae_augment=True, lr_schedule="cosine_warm_restarts")
    h = res.history
    assert calls == ["digits"] and res.feature_net_name == "tiny-test-net"
    for key in ("train_img_mse", "train_img_perceptual", "train_img_ssim_loss", "train_img_adv",
                "train_coarse", "train_disc"):
        assert np.isfinite(h[key][-1]), key
    assert h["lr"][-2] > h["lr"][-1]  # cosine schedule stepped per epoch


def test_original_stage_trains_vae_encoder_never_decoder(stage_states):
    run("original", epochs=2)
    before, after = stage_states["diffusion"]
    enc_b, enc_a = {k: v for k, v in before["vae"].items() if k.startswith("encoder.")}, {
        k: v for k, v in after["vae"].items() if k.startswith("encoder.")}
    dec_b, dec_a = {k: v for k, v in before["vae"].items() if k.startswith("decoder.")}, {
        k: v for k, v in after["vae"].items() if k.startswith("decoder.")}
    assert dec_b and same(dec_b, dec_a)  # decoder bitwise unchanged
    assert all(not torch.equal(enc_b[k], enc_a[k]) for k in enc_b if k.endswith("weight"))
    assert not same(before["unet"], after["unet"])


def test_progressive_diffusion_stage_keeps_vae_and_encoder_frozen(stage_states):
    run("progressive", w_img_mse=1.0, img_loss_t_frac=1.0)
    before, after = stage_states["diffusion"]
    assert same(before["vae"], after["vae"])
    assert same(before["encoder"], after["encoder"])  # the aligned encoder stays frozen
    assert not same(before["unet"], after["unet"])
    b_vae, a_vae = stage_states["vae"]
    assert not same(b_vae["vae"], a_vae["vae"])  # but stage 1 did train the VAE
    b_al, a_al = stage_states["align"]
    assert not same(b_al["encoder"], a_al["encoder"]) and same(b_al["vae"], a_al["vae"])


def test_latent_scale_fitted_after_vae_stage():
    res = run("end_to_end")
    scale = float(res.model.latent_scale)
    assert scale != pytest.approx(0.18215) and res.model.vae.scale_factor == pytest.approx(scale)


# numerics

def test_nan_loss_raises_with_stage_epoch_step_and_terms(monkeypatch):
    with pytest.raises(FloatingPointError, match=r"stage 'diffusion'.*epoch 1, step 2 .*noise=nan"):
        run("original", lr=1e30, weight_decay=0.0)
    monkeypatch.setattr(ldm_core.stage_losses, "noise_mse", lambda pred, target: torch.full((), float("nan")) + 0 * pred.sum())
    with pytest.raises(FloatingPointError, match=r"stage 'diffusion' \(end_to_end plan\), epoch 1, step 1.*noise=nan"):
        run("end_to_end")


# determinism

def test_same_seed_same_weights_and_reconstructions():
    fmri, _ = blobs()
    a, b = run("progressive", epochs=2, cfg_dropout=0.3), run("progressive", epochs=2, cfg_dropout=0.3)
    assert same(state(a.model), state(b.model))
    assert histories_equal(a.history, b.history)
    ra = a.model.reconstruct(fmri[6:], steps=5, sampler="ddpm", seed=3)
    rb = b.model.reconstruct(fmri[6:], steps=5, sampler="ddpm", seed=3)
    assert np.array_equal(ra, rb)
    c = run("progressive", epochs=2, cfg_dropout=0.3, seed=1)
    assert not same(state(a.model), state(c.model))


def test_fit_does_not_touch_global_rng_and_accepts_preset_names():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fmri, images = blobs()
    res = fit(fmri, images, ldm_cfg="original",
              train_cfg={"epochs": 1, "progress": False, "device": "cpu", "batch_size": 8})
    assert torch.equal(torch.rand(3), expected)
    assert res.model.n_voxels == V and res.steps == 1


# fMRI augmentation: set in TrainConfig only, applied by the trainer in the alignment and diffusion stages

def test_fmri_augmentation_is_seeded_and_acts_in_align_and_diffusion():
    plain = run("progressive", epochs=2)
    aug = run("progressive", epochs=2, **FIXED_AUGMENTATION)
    again = run("progressive", epochs=2, **FIXED_AUGMENTATION)
    assert same(state(aug.model), state(again.model))  # drawn from the training generator: repeatable
    h_plain, h_aug = plain.history, aug.history
    vae_rows = [i for i, s in enumerate(h_plain["stage"]) if s == "vae"]
    assert [h_plain["train_loss"][i] for i in vae_rows] == [h_aug["train_loss"][i] for i in vae_rows]  # VAE: no fMRI
    for stage in ("align", "diffusion"):
        rows = [i for i, s in enumerate(h_plain["stage"]) if s == stage]
        assert all(h_plain["train_loss"][i] != h_aug["train_loss"][i] for i in rows), stage


def test_the_encoder_itself_adds_no_noise_in_training():
    model = BrainLDM(tiny_cfg(), n_voxels=V).train()
    model.encoder.net.apply(lambda m: m.eval() if isinstance(m, torch.nn.Dropout) else None)  # hidden dropout off
    x = torch.from_numpy(blobs()[0])
    assert torch.equal(model.encode_fmri(x), model.encode_fmri(x))
