"""Tests of ldm_core.config (LDMConfig, presets, TrainConfig) and the builders in ldm_core.models."""

import dataclasses

import pytest
import torch
from torch import nn

from ldm_core.config import (CHOICES, FIXED_AUGMENTATION, PRESETS, REMOVED_LDM_FIELDS, LDMConfig, TrainConfig,
                             get_preset)
from ldm_core.models import (
    BrainAwareEncoder,
    LargeVAE,
    NoiseSchedule,
    OriginalMLPEncoder,
    OriginalUNet,
    OriginalVAE,
    RegularisedMLPEncoder,
    UNet,
    build_encoder,
    build_schedule,
    build_unet,
    build_vae,
    count_parameters,
)

torch.set_num_threads(1)

V = 40  # small voxel count for builder tests


# config

def test_defaults_are_the_original_preset():
    assert LDMConfig() == PRESETS["original"]
    cfg = PRESETS["fixed"]
    assert (cfg.unet, cfg.conditioning, cfg.encoder) == ("unet", "film", "mlp_regularised")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_round_trip(name):
    cfg = PRESETS[name]
    assert LDMConfig.from_dict(dataclasses.asdict(cfg)) == cfg
    assert LDMConfig.from_dict(cfg.to_dict()) == cfg  # lists (YAML) back to tuples
    assert isinstance(cfg.to_dict()["unet_channels"], list)


def test_from_dict_converts_lists_and_keeps_defaults():
    cfg = LDMConfig.from_dict({"unet_channels": [32, 64, 64], "beta_end": 1})
    assert cfg.unet_channels == (32, 64, 64)
    assert cfg.beta_end == 1.0 and isinstance(cfg.beta_end, float)
    assert cfg.encoder == "mlp_original"


def test_unknown_key_raises_naming_key_and_valid_keys():
    with pytest.raises(ValueError, match=r"unknown LDMConfig key\(s\) \['lr', 'unet_chanels'\]; valid keys are \['encoder'"):
        LDMConfig.from_dict({"unet_chanels": [8], "lr": 1e-4})


@pytest.mark.parametrize("field", sorted(CHOICES))
def test_bad_choice_raises(field):
    with pytest.raises(ValueError, match=rf"LDMConfig.{field} must be one of .*got 'bogus'"):
        LDMConfig(**{field: "bogus"})


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(unet_attention="yes"), "LDMConfig.unet_attention must be of the type of its default True"),
        (dict(n_train_steps=10.5), "LDMConfig.n_train_steps must be .* got 10.5"),
        (dict(n_train_steps=True), "LDMConfig.n_train_steps must be"),
        (dict(encoder_hidden=(512, -1)), r"LDMConfig.encoder_hidden must be .*positive ints.*got \(512, -1\)"),
        (dict(beta_start="1e-4"), "LDMConfig.beta_start must be"),
        (dict(encoder_tokens=0), "LDMConfig.encoder_tokens must be >= 1, got 0"),
        (dict(unet_channels=()), "LDMConfig.unet_channels must hold at least one width"),
        (dict(multiscale=True), "multiscale=True needs unet='unet'"),
        (dict(multiscale=True, unet="unet", unet_channels=(64,)), "needs at least two unet_channels levels"),
    ],
)
def test_bad_values_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LDMConfig(**kwargs)


def test_get_preset_overrides_and_copies():
    cfg = get_preset("fixed", conditioning="cross_attn", unet_channels=[32, 64])
    assert cfg.conditioning == "cross_attn" and cfg.unet_channels == (32, 64)
    assert PRESETS["fixed"].conditioning == "film"
    assert get_preset("original") is not PRESETS["original"]


def test_get_preset_errors():
    with pytest.raises(ValueError, match=r"unknown preset 'best'; presets are \['fixed', 'original'\]"):
        get_preset("best")
    with pytest.raises(ValueError, match=r"unknown LDMConfig key\(s\) \['epochs'\]"):
        get_preset("original", epochs=3)


# fMRI augmentation moved to TrainConfig

def test_removed_fields_are_gone_and_read_only_at_zero():
    names = {f.name for f in dataclasses.fields(LDMConfig)}
    assert not set(REMOVED_LDM_FIELDS) & names
    old = {**PRESETS["fixed"].to_dict(), "encoder_input_noise": 0.0, "encoder_voxel_dropout": 0}
    assert LDMConfig.from_dict(old) == PRESETS["fixed"]  # older files (augmentation off) still load
    with pytest.raises(ValueError, match=r"LDMConfig.encoder_input_noise was removed.*TrainConfig.fmri_noise"
                                         r".*FIXED_AUGMENTATION.*got encoder_input_noise=0.1"):
        LDMConfig.from_dict({"encoder_input_noise": 0.1})
    with pytest.raises(ValueError, match=r"encoder_voxel_dropout was removed.*TrainConfig.voxel_dropout"):
        get_preset("fixed", encoder_voxel_dropout=0.1)


def test_fixed_augmentation_is_a_valid_train_config():
    assert FIXED_AUGMENTATION == {"fmri_noise": 0.1, "voxel_dropout": 0.1}
    cfg = TrainConfig.from_dict({"stages": "progressive", **FIXED_AUGMENTATION})
    assert (cfg.fmri_noise, cfg.voxel_dropout) == (0.1, 0.1)


# TrainConfig

def test_train_config_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match=r"unknown TrainConfig key\(s\) \['bogus', 'lr_rate'\]"):
        TrainConfig.from_dict({"epochs": 2, "bogus": 1, "lr_rate": 1e-3})
    assert TrainConfig.from_dict({"epochs": 2}).epochs == 2
    assert TrainConfig.from_dict(TrainConfig(lr=3e-4).to_dict()) == TrainConfig(lr=3e-4)


@pytest.mark.parametrize("field, value", [
    ("stages", "two_stage"), ("epochs", 0), ("batch_size", 2.5), ("lr", 0.0), ("lr_schedule", "cosine"),
    ("voxel_dropout", 1.0),
    ("cfg_dropout", -0.1), ("w_ssim", -1.0), ("perceptual_net", "resnet"), ("device", "tpu"),
    ("img_loss_t_frac", 0.0), ("amp", 1), ("adv_kind", "wgan"),
    ("fmri_noise", -0.1), ("vae_epochs", -1), ("vae_cache_dir", 3),
])
def test_train_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=f"TrainConfig.{field} must be"):
        TrainConfig(**{field: value})


def test_removed_train_fields_are_read_at_the_value_every_run_used_and_refused_otherwise():
    assert TrainConfig.from_dict({"grad_clip": 1.0, "ema_decay": None, "val_repeats": 4}) == TrainConfig()
    with pytest.raises(ValueError, match=r"TrainConfig.ema_decay was removed .*ema_decay=None, got 0.999"):
        TrainConfig.from_dict({"ema_decay": 0.999})
    with pytest.raises(TypeError):
        TrainConfig(grad_clip=1.0)  # the dataclass itself has no such field


def test_train_config_rejects_all_zero_weights_and_original_image_losses():
    with pytest.raises(ValueError, match="every diffusion-stage loss weight is 0"):
        TrainConfig(w_noise=0.0)
    with pytest.raises(ValueError, match=r"stages='original'.*\['w_ssim'\]"):
        TrainConfig(stages="original", w_ssim=0.01)


# builders

def test_builders_original():
    cfg = get_preset("original")
    enc, vae = build_encoder(cfg, V), build_vae(cfg)
    unet, sched = build_unet(cfg, vae.latent_shape, enc.out_dim), build_schedule(cfg)
    assert isinstance(enc, OriginalMLPEncoder) and isinstance(vae, OriginalVAE)
    assert isinstance(unet, OriginalUNet) and isinstance(sched, NoiseSchedule)
    assert vae.latent_shape == (4, 7, 7) and sched.kind == "linear" and sched.prediction == "eps"


@pytest.mark.parametrize(
    "overrides, encoder_type, vae_type",
    [
        (dict(), RegularisedMLPEncoder, LargeVAE),
        (dict(encoder="brain_aware", encoder_tokens=4, vae="original", conditioning="cross_attn"), BrainAwareEncoder, OriginalVAE),
        (dict(schedule="cosine", prediction="x0", multiscale=True), RegularisedMLPEncoder, LargeVAE),
    ],
)
def test_builders_fixed_variants_run_end_to_end(overrides, encoder_type, vae_type):
    cfg = get_preset("fixed", encoder_hidden=[16], encoder_dim=16, unet_channels=[8, 16], **overrides)
    enc, vae = build_encoder(cfg, V), build_vae(cfg)
    unet, sched = build_unet(cfg, vae.latent_shape, enc.out_dim), build_schedule(cfg)
    assert isinstance(enc, encoder_type) and isinstance(vae, vae_type) and isinstance(unet, UNet)
    assert sched.kind == cfg.schedule and sched.prediction == cfg.prediction
    with torch.no_grad():
        z = vae.encode(torch.rand(1, 1, 28, 28)).mean * vae.scale_factor
        x_t = sched.q_sample(z, torch.tensor([10]), torch.randn_like(z))
        out = unet(x_t, torch.tensor([10]), enc.eval()(torch.randn(1, V)))
    assert out.shape == z.shape


@pytest.mark.parametrize("field, builder", [("encoder", lambda c: build_encoder(c, V)), ("vae", build_vae),
                                            ("unet", lambda c: build_unet(c, (4, 7, 7), 512))])
def test_builders_reject_a_config_changed_after_validation(field, builder):
    cfg = LDMConfig()
    setattr(cfg, field, "bogus")
    with pytest.raises(ValueError, match=rf"cfg.{field} must be one of .*got 'bogus'"):
        builder(cfg)


def test_count_parameters():
    lin = nn.Linear(3, 2)
    assert count_parameters(lin) == 8
    lin.bias.requires_grad_(False)
    assert count_parameters(lin, trainable_only=True) == 6
    assert count_parameters(NoiseSchedule()) == 0  # buffers are not parameters
