"""Tests of ldm_core.checkpoint: the stage-1 VAE cache (pinned key, bitwise reuse, damaged files)."""
import warnings

import pytest
import torch

import ldm_core.checkpoint as checkpoints
from ldm_core.config import TrainConfig, get_preset
from tests.train_helpers import run, same, state, tiny_cfg

torch.set_num_threads(1)


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
