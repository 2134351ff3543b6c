import math

import numpy as np
import pytest

from ldm_core.experiment import Run, VariantResult, loss_terms


def result(name, train_cfg, history):
    run = Run(variant=name, seed=0, recon_val=np.zeros((1, 2, 2)), recon_test=np.zeros((1, 2, 2)), val_metrics={},
              test_metrics={}, history=history, wall_time_s=0.0, steps_per_s=0.0, n_parameters={}, device="cpu")
    return VariantResult(name, {}, train_cfg, {}, [run])


NAN = math.nan
MIX = result("mix", {"w_perceptual": 0.1, "w_ssim": 0.01}, {
    "stage": ["vae", "diffusion", "diffusion"],
    "train_noise": [NAN, 0.9, 0.5],
    "train_img_perceptual": [NAN, 3.0, 2.0],
    "train_img_ssim_loss": [NAN, 0.9, 0.5],
})
MSE = result("mse", {}, {"stage": ["vae", "diffusion"], "train_noise": [NAN, 0.4]})


def test_loss_terms_weighted_known_answer():
    t = loss_terms({"mix": MIX, "mse": MSE})
    assert list(t.columns) == ["noise", "img_perceptual", "img_ssim_loss", "image share"]
    assert t.loc["mix", "noise"] == pytest.approx(0.5)  # w_noise default 1.0, last diffusion epoch
    assert t.loc["mix", "img_perceptual"] == pytest.approx(0.2)
    assert t.loc["mix", "img_ssim_loss"] == pytest.approx(0.005)
    assert t.loc["mix", "image share"] == pytest.approx(0.205 / 0.705)
    assert t.loc["mse", "noise"] == pytest.approx(0.4)
    assert np.isnan(t.loc["mse", "img_perceptual"]) and t.loc["mse", "image share"] == 0.0


def test_loss_terms_raw_values():
    t = loss_terms({"mix": MIX}, weighted=False)
    assert t.loc["mix", "img_perceptual"] == pytest.approx(2.0) and "image share" not in t.columns


def test_loss_terms_missing_stage():
    with pytest.raises(ValueError, match=r"no 'align' epoch.*\['diffusion', 'vae'\]"):
        loss_terms({"mix": MIX}, stage="align")


# ----------------------------------------------------------------------------- benchmarks support (chapter 07)

import json  # noqa: E402

import torch  # noqa: E402

import ldm_core.train  # noqa: E402
from ldm_core.data import make_synthetic_digit69, write_digit69_mat  # noqa: E402
from ldm_core.experiment import (equal_steps_train_cfg, make_ldm_config, prepare_data, run_candidates,  # noqa: E402
                                 run_samplings, run_variant, stage1_vae, subsample_fit, train_model)

TINY = dict(encoder_hidden=(16,), encoder_dim=16, vae="original", unet_channels=(8, 16), unet_attention=False,
            n_train_steps=50)
TRAIN = dict(stages="progressive", epochs=1, vae_epochs=1, align_epochs=1, batch_size=8, device="cpu")


@pytest.fixture
def small_data(tmp_path):
    """20 training trials (16 fitting, 4 validation) and 4 test trials of 28x28 synthetic digits, 24 voxels."""
    torch.set_num_threads(1)
    arr = make_synthetic_digit69(n_train=20, n_test=4, n_voxels=24, image_size=28)
    write_digit69_mat(tmp_path / "digit69_28x28.mat", arr)
    return prepare_data(str(tmp_path), val_fraction=0.2, verbose=0)


@pytest.fixture
def fit_calls(monkeypatch):
    """Counts calls of ldm_core.train.fit (the experiment functions import it when called)."""
    calls = []
    real = ldm_core.train.fit

    def counting(*args, **kw):
        calls.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(ldm_core.train, "fit", counting)
    return calls


def test_subsample_fit_stratified_renormalised_and_keyed(small_data):
    d = small_data
    sub = subsample_fit(d, 6, seed=0)
    assert len(sub.images_fit) == 6 and sorted(np.bincount(sub.labels_fit)[1:]) == [3, 3]
    assert not set(sub.fit_idx) & set(d.val_idx)
    np.testing.assert_array_equal(sub.images_fit, d.raw.images_train[sub.fit_idx])
    np.testing.assert_allclose(sub.fmri_fit.mean(axis=0), 0, atol=1e-5)  # z-scored with the subset's own statistics
    np.testing.assert_array_equal(sub.images_val, d.images_val)
    np.testing.assert_allclose(sub.fmri_val, sub.normalizer.transform(d.raw.fmri_train[d.val_idx]))
    again, other = subsample_fit(d, 6, seed=0), subsample_fit(d, 6, seed=1)
    np.testing.assert_array_equal(again.fit_idx, sub.fit_idx)
    assert len({d.fingerprint(), sub.fingerprint(), other.fingerprint()}) == 3
    assert subsample_fit(d, 16) is d
    for bad in (1, 17, 2.5):
        with pytest.raises(ValueError, match=r"n_trials must be an int in \[2, 16\]"):
            subsample_fit(d, bad)


def test_equal_steps_train_cfg_known_answers():
    cfg = {"epochs": 10, "vae_epochs": 4, "align_epochs": 0, "batch_size": 16}
    assert equal_steps_train_cfg(cfg, n_trials=10, n_reference=72) == {**cfg, "epochs": 50, "vae_epochs": 20,
                                                                       "val_every": 5}  # 5 / 1
    assert equal_steps_train_cfg(cfg, n_trials=45, n_reference=72) == {**cfg, "epochs": 17, "vae_epochs": 7,
                                                                       "val_every": 2}  # 5 / 3
    assert equal_steps_train_cfg(cfg, n_trials=72, n_reference=72) == {**cfg, "val_every": 1}
    out = equal_steps_train_cfg({"epochs": 10}, n_trials=10, n_reference=72)  # TrainConfig batch_size 4: 18 / 3
    assert (out["epochs"], out["align_epochs"], out["vae_epochs"], out["val_every"]) == (60, 600, 600, 6)


def test_run_samplings_shares_one_training_and_run_variant_finds_its_runs(small_data, tmp_path, fit_calls):
    cfg, cache = make_ldm_config("fixed", **TINY), tmp_path / "cache"
    res = run_samplings({"one": {"steps": 3}, "mean of 2": {"steps": 3, "n_samples": 2}}, small_data, ldm_cfg=cfg,
                        train_cfg=TRAIN, seeds=[0], n_boot=50, cache_dir=cache, progress=False)
    assert list(res) == ["one", "mean of 2"] and len(fit_calls) == 1
    assert res["mean of 2"].sample_cfg == {"steps": 3, "guidance": 1.0, "n_samples": 2, "sampler": None}
    r = res["one"].runs[0]
    assert r.train_time_s > 0 and r.recon_test_s > 0 and r.wall_time_s >= r.train_time_s
    same = run_variant("renamed", small_data, ldm_cfg=cfg, train_cfg=TRAIN, seeds=[0], steps=3, n_boot=50,
                       cache_dir=cache, progress=False)
    assert len(fit_calls) == 1 and same.runs[0].variant == "renamed"  # the same key: read from the cache
    np.testing.assert_array_equal(same.runs[0].recon_val, r.recon_val)
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['step'\]"):
        run_samplings({"x": {"step": 3}}, small_data, ldm_cfg=cfg, train_cfg=TRAIN, seeds=[0])
    with pytest.raises(ValueError, match="at least one sampling"):
        run_samplings({}, small_data, ldm_cfg=cfg, train_cfg=TRAIN, seeds=[0])


def test_train_model_keeps_and_reloads_the_model(small_data, tmp_path, fit_calls):
    cfg, cache = make_ldm_config("fixed", **TINY), tmp_path / "cache"
    a = train_model(small_data, ldm_cfg=cfg, train_cfg=TRAIN, seed=0, cache_dir=cache, keep_model=True, progress=False)
    assert len(list(cache.glob("model-seed0-*.pt"))) == 1
    b = train_model(small_data, ldm_cfg=cfg, train_cfg=TRAIN, seed=0, cache_dir=cache, keep_model=True, progress=False)
    assert len(fit_calls) == 1 and b.wall_time_s == a.wall_time_s
    assert json.dumps(b.history) == json.dumps(a.history)  # NaN-aware comparison
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(va, vb), k


def test_run_candidates_groups_candidates_by_training(small_data, tmp_path, fit_calls):
    cands = {"x0": {"prediction": "x0"}, "x0, mean of 2": {"prediction": "x0", "n_samples": 2},
             "eps": {"prediction": "eps"}}
    res = run_candidates(cands, small_data, ldm_base=TINY, train_cfg=TRAIN, seeds=[0], steps=3, n_boot=50,
                         cache_dir=tmp_path / "cache", progress=False)
    assert list(res) == list(cands) and len(fit_calls) == 2
    assert res["x0, mean of 2"].sample_cfg["n_samples"] == 2 and res["x0"].sample_cfg["steps"] == 3
    assert res["eps"].ldm_cfg["prediction"] == "eps" and res["x0"].ldm_cfg["encoder_dim"] == 16
    with pytest.raises(ValueError, match="unknown LDMConfig key"):
        run_candidates({"bad": {"predction": "x0"}}, small_data, ldm_base=TINY, train_cfg=TRAIN, seeds=[0])


def test_stage1_vae_is_the_vae_a_run_trains(small_data, tmp_path):
    cfg, cache = make_ldm_config("fixed", **TINY), tmp_path / "cache"
    full = train_model(small_data, ldm_cfg=cfg, train_cfg=TRAIN, seed=0, cache_dir=cache, progress=False).model
    cached = stage1_vae(small_data, ldm_cfg=cfg, train_cfg=TRAIN, seed=0, cache_dir=cache)
    fresh = stage1_vae(small_data, ldm_cfg=cfg, train_cfg=TRAIN, seed=0, cache_dir=tmp_path / "other")
    for m in (cached, fresh):
        assert float(m.latent_scale) == float(full.latent_scale)
        for (k, va), vb in zip(full.vae.state_dict().items(), m.vae.state_dict().values()):
            assert torch.equal(va, vb), k
    with pytest.raises(ValueError, match="needs a stage plan with a VAE stage"):
        stage1_vae(small_data, ldm_cfg=cfg, train_cfg={**TRAIN, "stages": "original"})
