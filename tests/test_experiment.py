"""Tests of ldm_core.study.experiment: variants, run_variants (shared trainings, cache, damaged cache), train_model,
stage1_vae, equal-step recipes, selection."""
import dataclasses
import json
import pickle

import numpy as np
import pytest
import torch

import ldm_core.train
from ldm_core.config import FIXED_AUGMENTATION
from ldm_core.study.experiment import (Variant, equal_steps_train_cfg, make_ldm_config, run_variants, select, stage1_vae,
                                 train_and_reconstruct, train_model)
from ldm_core.study.runs import SAMPLING_DEFAULTS, Run, VariantResult
from tests.train_helpers import TINY, TRAIN, small_study_data


@pytest.fixture
def small_data(tmp_path):
    return small_study_data(tmp_path)


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


# variants

def test_variant_checks_its_fields():
    cfg = make_ldm_config("fixed", **TINY)
    v = Variant(cfg, TRAIN, {"steps": 3})
    assert v.sample_cfg == {**SAMPLING_DEFAULTS, "steps": 3}
    assert dataclasses.replace(v, sampling={"n_samples": 2}).sample_cfg["n_samples"] == 2
    with pytest.raises(ValueError, match=r"Variant.sampling has unknown key\(s\) \['step'\]"):
        Variant(cfg, TRAIN, {"step": 3})
    with pytest.raises(ValueError, match="unknown TrainConfig key"):
        Variant(cfg, {"epoch": 1})
    with pytest.raises(ValueError, match=r"sets \['seed'\], which run_variants sets for each run"):
        Variant(cfg, {**TRAIN, "seed": 1})
    with pytest.raises(ValueError, match="Variant.ldm_cfg must be an LDMConfig"):
        Variant("fixed", TRAIN)
    train = dict(TRAIN)
    v = Variant(cfg, train)
    train["epochs"] = 9
    assert v.train_cfg["epochs"] == 1  # the variant keeps its own copy


def test_run_variants_argument_errors(small_data):
    cfg = make_ldm_config("fixed", **TINY)
    with pytest.raises(ValueError, match="at least one variant"):
        run_variants({}, small_data, seeds=[0])
    with pytest.raises(ValueError, match="at least one seed"):
        run_variants({"a": Variant(cfg, TRAIN)}, small_data, seeds=[])
    with pytest.raises(ValueError, match=r"variants\['a'\] must be a Variant"):
        run_variants({"a": {"ldm_cfg": cfg}}, small_data, seeds=[0])


# run_variants

def test_run_variants_shares_trainings_keeps_order_and_reuses_the_cache(small_data, tmp_path, fit_calls):
    cache = tmp_path / "cache"
    x0, eps = make_ldm_config("fixed", **TINY, prediction="x0"), make_ldm_config("fixed", **TINY)
    variants = {"x0": Variant(x0, TRAIN, {"steps": 3}), "eps": Variant(eps, TRAIN, {"steps": 3}),
                "x0, mean of 2": Variant(x0, dict(TRAIN), {"steps": 3, "n_samples": 2})}
    res = run_variants(variants, small_data, seeds=[0], n_boot=50, cache_dir=cache, progress=False)
    assert list(res) == list(variants) and len(fit_calls) == 2  # x0 variants share one training
    assert all(isinstance(r, VariantResult) and len(r.runs) == 1 for r in res.values())
    assert res["x0, mean of 2"].sample_cfg == {"steps": 3, "guidance": 1.0, "n_samples": 2, "sampler": None}
    assert res["eps"].ldm_cfg["prediction"] == "eps" and res["x0"].ldm_cfg["encoder_dim"] == 16
    assert res["x0"].train_cfg == TRAIN
    r = res["x0"].runs[0]
    assert r.variant == "x0" and r.train_time_s > 0 and r.recon_test_s > 0 and r.wall_time_s >= r.train_time_s
    assert r.recon_test.shape == (4, 28, 28) and 0 <= r.recon_test.min() and r.recon_test.max() <= 1
    assert len(list(cache.glob("run-seed0-*.json"))) == 3 and len(list((cache / "vae").glob("vae-*.pt"))) == 1

    renamed = run_variants({"renamed": variants["x0"]}, small_data, seeds=[0], n_boot=50, cache_dir=cache,
                           progress=False)
    assert len(fit_calls) == 2 and renamed["renamed"].runs[0].variant == "renamed"  # same key: from the cache
    np.testing.assert_array_equal(renamed["renamed"].runs[0].recon_val, r.recon_val)


def test_run_variants_without_cache_repeats_itself(small_data, fit_calls):
    v = {"a": Variant(make_ldm_config("fixed", **TINY), TRAIN, {"steps": 2})}
    first = run_variants(v, small_data, seeds=[0, 1], n_boot=20, progress=False)
    again = run_variants(v, small_data, seeds=[0, 1], n_boot=20, progress=False)
    assert [r.seed for r in first["a"].runs] == [0, 1] and len(fit_calls) == 4
    for a, b in zip(first["a"].runs, again["a"].runs):
        np.testing.assert_array_equal(a.recon_test, b.recon_test)
    assert not np.array_equal(first["a"].runs[0].recon_test, first["a"].runs[1].recon_test)


def test_run_variants_retrains_a_corrupt_cached_run(small_data, tmp_path, fit_calls):
    cache = tmp_path / "cache"
    v = {"a": Variant(make_ldm_config("fixed", **TINY), TRAIN, {"steps": 2})}
    first = run_variants(v, small_data, seeds=[0], n_boot=20, cache_dir=cache, progress=False)
    (meta,) = cache.glob("run-seed0-*.json")
    meta.write_text('{"variant": "a", "seed"')  # cut off mid-write
    with pytest.warns(RuntimeWarning, match=meta.stem):
        again = run_variants(v, small_data, seeds=[0], n_boot=20, cache_dir=cache, progress=False)
    assert len(fit_calls) == 2
    np.testing.assert_array_equal(again["a"].runs[0].recon_test, first["a"].runs[0].recon_test)
    json.loads(meta.read_text())  # rewritten whole


def test_train_and_reconstruct_takes_picklable_arguments(small_data, tmp_path):
    kw = dict(ldm_cfg=make_ldm_config("fixed", **TINY), train_cfg={**TRAIN, **FIXED_AUGMENTATION},
              samplings={"a": {"steps": 2}, "b": {"steps": 2}}, seed=0, n_boot=20, n_perm=0,
              cache_dir=tmp_path / "cache", keep_model=False, progress=False)
    pickle.loads(pickle.dumps((small_data, kw)))  # what an executor would send to a worker
    out = train_and_reconstruct(small_data, **kw)
    assert list(out) == ["a", "b"] and all(isinstance(r, Run) for r in out.values())
    assert out["b"].variant == "b" and out["a"].variant == "a"
    np.testing.assert_array_equal(out["a"].recon_test, out["b"].recon_test)  # same settings: one run


# train_model and stage1_vae

def test_train_model_keeps_and_reloads_the_model(small_data, tmp_path, fit_calls):
    cfg, cache = make_ldm_config("fixed", **TINY), tmp_path / "cache"
    a = train_model(small_data, ldm_cfg=cfg, train_cfg=TRAIN, seed=0, cache_dir=cache, keep_model=True, progress=False)
    assert len(list(cache.glob("model-seed0-*.pt"))) == 1
    b = train_model(small_data, ldm_cfg=cfg, train_cfg=TRAIN, seed=0, cache_dir=cache, keep_model=True, progress=False)
    assert len(fit_calls) == 1 and b.wall_time_s == a.wall_time_s
    assert json.dumps(b.history) == json.dumps(a.history)  # NaN-aware comparison
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(va, vb), k
    (kept,) = cache.glob("model-seed0-*.pt")
    kept.write_bytes(b"not a checkpoint")
    with pytest.warns(RuntimeWarning, match=kept.stem):
        train_model(small_data, ldm_cfg=cfg, train_cfg=TRAIN, seed=0, cache_dir=cache, keep_model=True, progress=False)
    assert len(fit_calls) == 2


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


# recipes and selection

def test_equal_steps_train_cfg_known_answers():
    cfg = {"epochs": 10, "vae_epochs": 4, "align_epochs": 0, "batch_size": 16}
    assert equal_steps_train_cfg(cfg, n_trials=10, n_reference=72) == {**cfg, "epochs": 50, "vae_epochs": 20,
                                                                       "val_every": 5}  # 5 / 1
    assert equal_steps_train_cfg(cfg, n_trials=45, n_reference=72) == {**cfg, "epochs": 17, "vae_epochs": 7,
                                                                       "val_every": 2}  # 5 / 3
    assert equal_steps_train_cfg(cfg, n_trials=72, n_reference=72) == {**cfg, "val_every": 1}
    out = equal_steps_train_cfg({"epochs": 10}, n_trials=10, n_reference=72)  # TrainConfig batch_size 4: 18 / 3
    assert (out["epochs"], out["align_epochs"], out["vae_epochs"], out["val_every"]) == (60, 600, 600, 6)


def _scored(name, val_ssim, test_ssim):
    run = Run(variant=name, seed=0, recon_val=np.zeros((1, 2, 2)), recon_test=np.zeros((1, 2, 2)),
              val_metrics={"ssim": {"mean": val_ssim}}, test_metrics={"ssim": {"mean": test_ssim}}, history={},
              wall_time_s=0.0, steps_per_s=0.0, n_parameters={}, device="cpu")
    return VariantResult(name, {}, {}, {}, [run])


def test_select_reads_validation_only():
    res = {"a": _scored("a", 0.5, 0.9), "b": _scored("b", 0.6, 0.1)}
    assert select(res) == "b" and select(res, higher_is_better=False) == "a"
    with pytest.raises(ValueError, match="at least one variant"):
        select({})
