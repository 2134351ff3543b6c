"""Tests of ldm_core.checkpoint: RNG states, bit-exact resume, refused resumes, the stage-1 VAE cache."""
import warnings

import numpy as np
import pytest
import torch

import ldm_core.checkpoint as checkpoints
from ldm_core import train as train_mod
from ldm_core.config import TrainConfig, get_preset
from ldm_core.train import fit
from tests.train_helpers import blobs, histories_equal, run, same, state, tiny_cfg, train_cfg

torch.set_num_threads(1)


# randomness

def test_rng_state_round_trip():
    g = torch.Generator().manual_seed(5)
    np.random.seed(3)
    saved = checkpoints.rng_state(g, torch.device("cpu"))
    first = (torch.rand(2), torch.rand(2, generator=g), np.random.rand(2))
    torch.rand(5), torch.rand(5, generator=g), np.random.rand(5)  # move every stream on
    checkpoints.set_rng_state(saved, g, torch.device("cpu"))
    again = (torch.rand(2), torch.rand(2, generator=g), np.random.rand(2))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1]) and np.array_equal(first[2], again[2])
    assert saved["cuda"] is None and isinstance(saved["numpy"]["state"], torch.Tensor)


def test_snapshot_and_restore():
    lin, head = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
    snap = checkpoints.snapshot(lin, {"head": head})
    with torch.no_grad():
        lin.weight.add_(1.0)
        head.bias.add_(1.0)
    checkpoints.restore(lin, {"head": head}, snap)
    assert torch.equal(lin.weight, snap["model"]["weight"]) and torch.equal(head.bias, snap["extras"]["head"]["bias"])


# resume

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
    assert histories_equal(resumed.history, full.history)
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
    assert histories_equal(resumed.history, full.history)


def test_resume_refuses_changed_settings(tmp_path):
    run("end_to_end", checkpoint_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"TrainConfig field\(s\) \['lr'\] differ"):
        run("end_to_end", checkpoint_dir=str(tmp_path), lr=1e-3, epochs=2, resume=True)
    with pytest.raises(ValueError, match="another LDMConfig"):
        run("end_to_end", ldm=tiny_cfg(encoder_dim=8), checkpoint_dir=str(tmp_path), resume=True)
    with pytest.raises(ValueError, match="not a training checkpoint"):
        torch.save({"format": "other"}, tmp_path / "last.pt")
        run("end_to_end", checkpoint_dir=str(tmp_path), resume=True)


def test_checkpoint_of_an_older_ldm_config_with_removed_fields_at_zero_resumes(tmp_path):
    """Checkpoints written before the encoder's own augmentation was removed hold its fields at 0.0."""
    run("end_to_end", checkpoint_dir=str(tmp_path))
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    ckpt["ldm_cfg"].update(encoder_input_noise=0.0, encoder_voxel_dropout=0.0)
    torch.save(ckpt, tmp_path / "last.pt")
    res = run("end_to_end", checkpoint_dir=str(tmp_path), epochs=2, resume=True)
    assert res.history["stage"] == ["vae", "diffusion", "diffusion"]
    ckpt["ldm_cfg"].update(encoder_input_noise=0.1)
    torch.save(ckpt, tmp_path / "last.pt")
    with pytest.raises(ValueError, match="another LDMConfig"):
        run("end_to_end", checkpoint_dir=str(tmp_path), epochs=2, resume=True)


def test_checkpoint_path():
    assert checkpoints.checkpoint_path(None) is None
    assert checkpoints.checkpoint_path("ck").name == checkpoints.CHECKPOINT_NAME == "last.pt"


# stage-1 VAE cache

def test_vae_cache_key_is_pinned():
    """The file name of a cached VAE is what earlier versions gave it, so their caches are reused."""
    images = torch.linspace(0, 1, 2 * 28 * 28).reshape(2, 1, 28, 28)
    kw = dict(ldm_cfg=get_preset("fixed"), train_cfg=TrainConfig(stages="progressive", seed=3), images=images)
    assert checkpoints.vae_cache_path(None, images_val=None, **kw) is None
    assert checkpoints.vae_cache_path("c", images_val=images[:1], **kw).name == "vae-026ad8b5ee30ea7260735292.pt"
    assert checkpoints.vae_cache_path("c", images_val=None, **kw).name == "vae-95d9488f22b9d12644052e03.pt"


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


@pytest.mark.parametrize("damage", ["truncate", "wrong_vae"])
def test_unreadable_vae_cache_is_warned_about_and_retrained(tmp_path, damage):
    cache = tmp_path / "vae_cache"
    first = run("progressive", vae_cache_dir=str(cache))
    (path,) = cache.glob("vae-*.pt")
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    else:
        torch.save({"vae": {"x": torch.zeros(1)}, "latent_scale": torch.tensor(1.0), "history": []}, path)
    with pytest.warns(RuntimeWarning, match=path.name):
        again = run("progressive", vae_cache_dir=str(cache))
    assert same(state(first.model), state(again.model))  # trained again, bitwise the same
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rewritten: read without a warning now
        run("progressive", vae_cache_dir=str(cache))
