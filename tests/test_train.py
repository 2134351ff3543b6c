"""Tests of ldm_core.train: config checks, every stage plan, determinism, exact resume, freezing."""
import math

import numpy as np
import pytest
import torch
from torch import nn

import ldm_core.feature_net
from ldm_core import train as train_mod
from ldm_core.config import get_preset
from ldm_core.device import resolve_device
from ldm_core.pipeline import BrainLDM
from ldm_core.train import EMA, TrainConfig, check_training_data, fit, kl_divergence, random_affine

torch.set_num_threads(1)

N, V, S = 8, 32, 28  # trials, voxels, image side


# helpers

def blobs(n: int = N, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """fMRI (n, V) float32 z-scored-like, images (n, S, S) float32 in [0, 1]: one Gaussian blob each."""
    rng = np.random.default_rng(seed)
    centre = rng.uniform(8, 20, (n, 2))
    yy, xx = np.mgrid[:S, :S]
    images = np.exp(-((yy - centre[:, :1, None]) ** 2 + (xx - centre[:, 1:, None]) ** 2) / 20.0)
    fmri = rng.standard_normal((n, V)) + np.repeat(centre / 10.0, V // 2, axis=1)
    fmri = (fmri - fmri.mean(0)) / fmri.std(0)
    return fmri.astype(np.float32), images.astype(np.float32)


def tiny_cfg(preset: str = "fixed", **overrides):
    base = dict(encoder_hidden=(16,), encoder_dim=16, n_train_steps=50)
    if preset == "fixed":
        base.update(vae="original", unet_channels=(8, 16), unet_attention=False)
    base.update(overrides)
    return get_preset(preset, **base)


def train_cfg(**overrides) -> TrainConfig:
    base = dict(epochs=1, vae_epochs=1, align_epochs=1, batch_size=4, progress=False, device="cpu")
    base.update(overrides)
    return TrainConfig(**base)


def run(stages="progressive", *, ldm=None, resume=False, **overrides):
    """fit on 6 training and 2 validation trials of ``blobs()``."""
    fmri, images = blobs()
    ldm = ldm or tiny_cfg("original" if stages == "original" else "fixed")
    return fit(fmri[:6], images[:6], fmri_val=fmri[6:], images_val=images[6:], ldm_cfg=ldm,
               train_cfg=train_cfg(stages=stages, **overrides), resume=resume)


def state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class _Tiny(nn.Module):
    """Stand-in perceptual feature net (two conv maps), so tests skip training the digits CNN."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)

    def forward(self, x):
        f = torch.relu(self.conv(x))
        return [f, torch.nn.functional.avg_pool2d(f, 2)]


@pytest.fixture
def stage_states(monkeypatch):
    """Record BrainLDM part states before and after each stage: {stage: (before, after)}."""
    record = {}
    original = train_mod._Trainer.run_stage

    def wrapped(self, stage_index, name, **kw):
        before = {p: state(getattr(self.model, p)) for p in ("encoder", "vae", "unet")}
        original(self, stage_index, name, **kw)
        record[name] = (before, {p: state(getattr(self.model, p)) for p in ("encoder", "vae", "unet")})

    monkeypatch.setattr(train_mod._Trainer, "run_stage", wrapped)
    return record


# config

def test_config_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match=r"unknown TrainConfig key\(s\) \['bogus', 'lr_rate'\]"):
        TrainConfig.from_dict({"epochs": 2, "bogus": 1, "lr_rate": 1e-3})
    assert TrainConfig.from_dict({"epochs": 2}).epochs == 2
    assert TrainConfig.from_dict(TrainConfig(lr=3e-4).to_dict()) == TrainConfig(lr=3e-4)


@pytest.mark.parametrize("field, value", [
    ("stages", "two_stage"), ("epochs", 0), ("batch_size", 2.5), ("lr", 0.0), ("lr_schedule", "cosine"),
    ("grad_clip", -1.0), ("ema_decay", 1.0), ("early_stopping_patience", 0), ("voxel_dropout", 1.0),
    ("cfg_dropout", -0.1), ("w_ssim", -1.0), ("perceptual_net", "resnet"), ("device", "tpu"),
    ("vae_recon", "l1"), ("img_loss_t_frac", 0.0), ("amp", 1), ("adv_kind", "wgan"),
])
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=f"TrainConfig.{field} must be"):
        TrainConfig(**{field: value})


def test_config_rejects_all_zero_weights_and_original_image_losses():
    with pytest.raises(ValueError, match="every diffusion-stage loss weight is 0"):
        TrainConfig(w_noise=0.0)
    with pytest.raises(ValueError, match=r"stages='original'.*\['w_ssim'\]"):
        TrainConfig(stages="original", w_ssim=0.01)


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
    assert f.shape == (N, V) and im.shape == (N, 1, S, S) and fv is None and iv is None


def test_fit_argument_errors(tmp_path):
    fmri, images = blobs()
    with pytest.raises(ValueError, match="early_stopping_patience=2 needs validation data"):
        fit(fmri, images, ldm_cfg=tiny_cfg(), train_cfg=train_cfg(early_stopping_patience=2))
    with pytest.raises(ValueError, match="resume=True needs TrainConfig.checkpoint_dir"):
        fit(fmri, images, ldm_cfg=tiny_cfg(), train_cfg=train_cfg(), resume=True)
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
    big = np.pad(images, ((0, 0), (2, 2), (2, 2)))
    with pytest.raises(ValueError, match="images are 32x32 but the VAE of this config expects 28x28"):
        fit(fmri, big, ldm_cfg=tiny_cfg(), train_cfg=train_cfg())


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


def test_ema_average_and_swap():
    lin = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    ema = EMA(lin, decay=0.75)
    with torch.no_grad():
        lin.weight.fill_(3.0)
    ema.update()  # 0.75 * 1 + 0.25 * 3
    assert torch.allclose(ema.shadow["weight"], torch.full((1, 2), 1.5))
    with ema.swapped():
        assert torch.allclose(lin.weight, torch.full((1, 2), 1.5))
    assert torch.allclose(lin.weight, torch.full((1, 2), 3.0))
    with pytest.raises(ValueError, match="EMA state lacks 1 parameter"):
        ema.load_state_dict({})


def test_kl_divergence_known_values():
    z = torch.zeros(2, 4, 7, 7)
    assert kl_divergence(z, z).item() == 0.0
    assert math.isclose(kl_divergence(torch.ones(2, 4, 7, 7), z).item(), 0.5)


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
    """Image losses (perceptual, SSIM, MSE, adversarial), coarse head, EMA, CFG dropout, augmentation."""
    calls = []

    def fake_feature_net(spec, *, cache_dir=None, seed=0):
        calls.append(spec)
        return ldm_core.feature_net.FeatureNet(net=_Tiny().requires_grad_(False).eval(), name="tiny-test-net")

    monkeypatch.setattr(ldm_core.feature_net, "get_feature_net", fake_feature_net)
    res = run("progressive", ldm=tiny_cfg(multiscale=True), epochs=2, w_img_mse=1.0, w_perceptual=0.1,
              w_ssim=0.01, w_adv=0.05, w_coarse=0.5, img_loss_t_frac=1.0, ema_decay=0.9, cfg_dropout=0.2,
              fmri_noise=0.1, voxel_dropout=0.1, vae_augment=True, lr_schedule="cosine_warm_restarts",
              finetune_encoder=True, grad_clip=None)
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
    assert same(before["encoder"], after["encoder"])  # finetune_encoder=False
    assert not same(before["unet"], after["unet"])
    b_vae, a_vae = stage_states["vae"]
    assert not same(b_vae["vae"], a_vae["vae"])  # but stage 1 did train the VAE
    b_al, a_al = stage_states["align"]
    assert not same(b_al["encoder"], a_al["encoder"]) and same(b_al["vae"], a_al["vae"])


def test_latent_scale_fitted_after_vae_stage():
    res = run("end_to_end", fit_latent_scale=True)
    scale = float(res.model.latent_scale)
    assert scale != pytest.approx(0.18215) and res.model.vae.scale_factor == pytest.approx(scale)
    assert float(run("end_to_end", fit_latent_scale=False).model.latent_scale) == pytest.approx(0.18215)


# numerics

def test_nan_loss_raises_with_stage_epoch_step_and_terms(monkeypatch):
    with pytest.raises(FloatingPointError, match=r"stage 'diffusion'.*epoch 1, step 2 .*noise=nan"):
        run("original", lr=1e30, grad_clip=None, weight_decay=0.0)
    monkeypatch.setattr(train_mod, "noise_mse", lambda pred, target: torch.full((), float("nan")) + 0 * pred.sum())
    with pytest.raises(FloatingPointError, match=r"stage 'diffusion' \(end_to_end plan\), epoch 1, step 1.*noise=nan"):
        run("end_to_end")


def test_early_stopping_stops_and_restores_best(monkeypatch):
    """Scripted validation losses 1.0, 0.5, 0.7, 0.8: best at epoch 2, stop after epoch 4, epoch-2 weights."""
    original = train_mod._Trainer._diffusion_stage

    def scripted(self, **kw):
        stage = original(self, **kw)
        losses = iter([1.0, 0.5, 0.7, 0.8, 0.9, 1.0])
        stage.validate = lambda: next(losses)
        return stage

    monkeypatch.setattr(train_mod._Trainer, "_diffusion_stage", scripted)
    res = run("end_to_end", epochs=10, early_stopping_patience=2)
    val = [v for s, v in zip(res.history["stage"], res.history["val_loss"]) if s == "diffusion"]
    assert val == [1.0, 0.5, 0.7, 0.8]
    monkeypatch.setattr(train_mod._Trainer, "_diffusion_stage", original)
    two_epochs = run("end_to_end", epochs=2)
    assert same(state(res.model), state(two_epochs.model))


# determinism and resume

def _histories_equal(a: dict, b: dict) -> bool:
    """Equal up to NaN == NaN, ignoring the wall-clock column."""
    a, b = ({k: v for k, v in h.items() if k != "epoch_time_s"} for h in (a, b))
    return a.keys() == b.keys() and all(
        len(a[k]) == len(b[k]) and all(x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y))
                                       for x, y in zip(a[k], b[k])) for k in a)


def test_same_seed_same_weights_and_reconstructions():
    fmri, _ = blobs()
    a, b = run("progressive", epochs=2, cfg_dropout=0.3), run("progressive", epochs=2, cfg_dropout=0.3)
    assert same(state(a.model), state(b.model))
    assert _histories_equal(a.history, b.history)
    ra = a.model.reconstruct(fmri[6:], steps=5, sampler="ddpm", seed=3)
    rb = b.model.reconstruct(fmri[6:], steps=5, sampler="ddpm", seed=3)
    assert np.array_equal(ra, rb)
    c = run("progressive", epochs=2, cfg_dropout=0.3, seed=1)
    assert not same(state(a.model), state(c.model))


RESUME_OPTS = dict(stages="progressive", vae_epochs=2, align_epochs=2, ema_decay=0.9, cfg_dropout=0.3,
                   fmri_noise=0.1, w_img_mse=1.0, w_adv=0.1, img_loss_t_frac=1.0, vae_augment=True,
                   lr_schedule="cosine_warm_restarts", early_stopping_patience=5)


def test_resume_after_epochs_change_is_bitwise_exact(tmp_path):
    """4 epochs in one go == 2 epochs, then a fresh fit(resume=True) to 4."""
    fmri, images = blobs()
    args = (fmri[:6], images[:6])
    kw = dict(fmri_val=fmri[6:], images_val=images[6:], ldm_cfg=tiny_cfg())
    full = fit(*args, **kw, train_cfg=train_cfg(**RESUME_OPTS, epochs=4))
    part = fit(*args, **kw, train_cfg=train_cfg(**RESUME_OPTS, epochs=2, checkpoint_dir=str(tmp_path)))
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)  # plain types and tensors only
    assert ckpt["epoch"] == 2 and ckpt["train_cfg"]["epochs"] == 2
    resumed = fit(*args, **kw, train_cfg=train_cfg(**RESUME_OPTS, epochs=4, checkpoint_dir=str(tmp_path)), resume=True)
    assert not same(state(part.model), state(full.model))
    assert same(state(resumed.model), state(full.model))
    assert _histories_equal(resumed.history, full.history)
    assert resumed.steps == full.steps


# checkpoint saves: 1 vae e1, 2 vae e2, 3 boundary, 4 align e1, 5 align e2, 6 boundary, 7 diffusion e1, 8 diffusion e2
@pytest.mark.parametrize("interrupt_after", [1, 3, 4, 7])
def test_resume_after_interruption_is_bitwise_exact(tmp_path, monkeypatch, interrupt_after):
    fmri, images = blobs()
    args = (fmri[:6], images[:6])
    kw = dict(fmri_val=fmri[6:], images_val=images[6:], ldm_cfg=tiny_cfg())
    cfg = train_cfg(**RESUME_OPTS, epochs=2, checkpoint_every=1, checkpoint_dir=str(tmp_path))
    full = fit(*args, **kw, train_cfg=train_cfg(**RESUME_OPTS, epochs=2))

    saves = []
    original_save = train_mod._Trainer.save_checkpoint

    def save_then_crash(self, **k):
        original_save(self, **k)
        saves.append(k["stage_index"])
        if len(saves) == interrupt_after:
            raise KeyboardInterrupt("simulated interruption")

    monkeypatch.setattr(train_mod._Trainer, "save_checkpoint", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        fit(*args, **kw, train_cfg=cfg)
    monkeypatch.setattr(train_mod._Trainer, "save_checkpoint", original_save)
    resumed = fit(*args, **kw, train_cfg=cfg, resume=True)
    assert same(state(resumed.model), state(full.model))
    assert _histories_equal(resumed.history, full.history)


def test_resume_refuses_changed_settings(tmp_path):
    run("end_to_end", checkpoint_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"TrainConfig field\(s\) \['lr'\] differ"):
        run("end_to_end", checkpoint_dir=str(tmp_path), lr=1e-3, epochs=2, resume=True)
    with pytest.raises(ValueError, match="another LDMConfig"):
        run("end_to_end", ldm=tiny_cfg(encoder_dim=8), checkpoint_dir=str(tmp_path), resume=True)
    with pytest.raises(ValueError, match="not a training checkpoint"):
        torch.save({"format": "other"}, tmp_path / "last.pt")
        run("end_to_end", checkpoint_dir=str(tmp_path), resume=True)


def test_fit_does_not_touch_global_rng_and_accepts_preset_names():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fmri, images = blobs()
    res = fit(fmri, images, ldm_cfg="original",
              train_cfg={"epochs": 1, "progress": False, "device": "cpu", "batch_size": 8})
    assert torch.equal(torch.rand(3), expected)
    assert res.model.n_voxels == V and res.steps == 1


# stage-1 VAE cache

def test_vae_cache_gives_bitwise_identical_model_and_is_shared(tmp_path):
    """A cached VAE is reused by a variant with another encoder, and results equal an uncached run."""
    cache = str(tmp_path / "vae_cache")
    plain = run("progressive")
    first = run("progressive", vae_cache_dir=cache)
    assert same(state(plain.model), state(first.model))  # the cache changes nothing
    files = list((tmp_path / "vae_cache").glob("vae-*.pt"))
    assert len(files) == 1
    again = run("progressive", vae_cache_dir=cache)  # hit
    assert same(state(first.model), state(again.model))
    assert again.history["stage"] == first.history["stage"] and again.history["train_loss"] == first.history["train_loss"]
    other = tiny_cfg("fixed", encoder="mlp_original")  # another encoder, same VAE settings: same VAE
    shared = run("progressive", ldm=other, vae_cache_dir=cache)
    assert same(state(first.model.vae), state(shared.model.vae))
    assert len(list((tmp_path / "vae_cache").glob("vae-*.pt"))) == 1
    changed = run("progressive", vae_cache_dir=cache, vae_lr=5e-4)  # a VAE training field: new entry
    assert len(list((tmp_path / "vae_cache").glob("vae-*.pt"))) == 2
    assert not same(state(first.model.vae), state(changed.model.vae))
