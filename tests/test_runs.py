"""Tests of ldm_core.study.runs: pinned cache keys, run files (and damaged ones), tables, loss terms."""
import json
import math

import numpy as np
import pytest

from ldm_core.config import TrainConfig, get_preset
from ldm_core.io import content_key
from ldm_core.study.runs import (SAMPLING_DEFAULTS, Run, VariantResult, chapter_metrics, load_run, loss_terms,
                           loss_terms_table, run_key, run_path, save_run, summary_table, train_key)
from tests.train_helpers import TINY, TRAIN


def result(name, train_cfg, history, **run_fields):
    run = Run(variant=name, seed=0, recon_val=np.zeros((1, 2, 2)), recon_test=np.zeros((1, 2, 2)), val_metrics={},
              test_metrics={}, history=history, wall_time_s=0.0, steps_per_s=0.0, n_parameters={}, device="cpu",
              **run_fields)
    return VariantResult(name, {}, train_cfg, {}, [run])


# cache keys

class _Data:
    """A StudyData stand-in with a fixed fingerprint (a real one hashes a .mat file with a time stamp)."""

    def fingerprint(self) -> str:
        return "0123456789abcdef"


@pytest.mark.parametrize("preset, ldm, train_key_hash, run_key_hash", [
    ("fixed", TINY, "47bdd6bba285cae8f7a7", "559b5800ecd3d9fb1fa7"),
    ("original", {}, "b16c32f46342925b46cd", "3ccfe025a5f4a82dd58f"),
])
def test_cache_keys_are_pinned(preset, ldm, train_key_hash, run_key_hash):
    """Keys of earlier versions for the same settings (computed before the split), so cached runs are reused."""
    tcfg = TrainConfig.from_dict({**TRAIN, "seed": 2, "progress": False, "vae_cache_dir": "/somewhere/vae"})
    tk = train_key(_Data(), get_preset(preset, **ldm), tcfg)
    assert content_key(tk) == train_key_hash
    assert run_key(tk, {**SAMPLING_DEFAULTS, "steps": 3}, n_boot=50, n_perm=0) == run_key_hash


def test_cache_key_ignores_only_fields_that_do_not_change_a_run():
    cfg = get_preset("fixed", **TINY)
    base = TrainConfig.from_dict(TRAIN)
    same = TrainConfig.from_dict({**TRAIN, "progress": False, "vae_cache_dir": "x", "feature_net_cache_dir": "y"})
    other = TrainConfig.from_dict({**TRAIN, "lr": 3e-4})
    assert content_key(train_key(_Data(), cfg, base)) == content_key(train_key(_Data(), cfg, same))
    assert content_key(train_key(_Data(), cfg, base)) != content_key(train_key(_Data(), cfg, other))
    assert run_path("c", seed=3, key="k").name == "run-seed3-k"


def test_cache_key_does_not_depend_on_where_the_feature_net_is_cached():
    """A machine path (the feature-net cache folder) leaves the key unchanged: the same as with no folder."""
    cfg = get_preset("fixed", **TINY)
    keys = {content_key(train_key(_Data(), cfg, TrainConfig.from_dict({**TRAIN, "w_perceptual": 0.1, **extra})))
            for extra in ({}, {"feature_net_cache_dir": "/home/a/cache/fn"}, {"feature_net_cache_dir": "/b/fn"})}
    assert len(keys) == 1
    assert train_key(_Data(), cfg, TrainConfig.from_dict(TRAIN))["train"]["feature_net_cache_dir"] is None


# run files

def _run(**kw) -> Run:
    return Run(variant="v", seed=1, recon_val=np.full((2, 3, 3), 0.5, np.float32), recon_test=np.ones((1, 3, 3), np.float32),
               val_metrics={"ssim": {"mean": 0.5}}, test_metrics={}, history={"stage": ["vae"], "val_loss": [math.nan]},
               wall_time_s=1.0, steps_per_s=2.0, n_parameters={"total": 3}, device="cpu", **kw)


def test_save_and_load_run(tmp_path):
    path = tmp_path / "run-seed1-abc"
    assert load_run(path) is None  # absent: no warning, nothing to read
    save_run(path, _run(train_time_s=0.5))
    back = load_run(path)
    np.testing.assert_array_equal(back.recon_val, _run().recon_val)
    assert back.train_time_s == 0.5 and back.val_metrics == {"ssim": {"mean": 0.5}} and math.isnan(back.history["val_loss"][0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run-seed1-abc.json", "run-seed1-abc.npz"]


def _bad_json(path):
    path.with_suffix(".json").write_text("{not json")


def _truncated_npz(path):
    z = path.with_suffix(".npz")
    z.write_bytes(z.read_bytes()[: len(z.read_bytes()) // 2])


def _missing_meta_key(path):
    j = path.with_suffix(".json")
    meta = json.loads(j.read_text())
    del meta["history"]
    j.write_text(json.dumps(meta))


def _npz_without_recon_test(path):
    np.savez(path.with_suffix(".npz"), recon_val=np.zeros((2, 3, 3)))


def _only_npz(path):
    path.with_suffix(".json").unlink()


@pytest.mark.parametrize("damage", [_bad_json, _truncated_npz, _missing_meta_key, _npz_without_recon_test, _only_npz])
def test_damaged_run_files_count_as_absent_with_a_warning_naming_the_file(tmp_path, damage):
    path = tmp_path / "run-seed1-abc"
    save_run(path, _run())
    damage(path)
    with pytest.warns(RuntimeWarning, match="run-seed1-abc"):
        assert load_run(path) is None


# tables

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


def test_loss_terms_table_for_the_page():
    t = loss_terms_table({"mix": MIX, "mse": MSE})
    assert list(t.columns) == ["noise MSE", "w · perceptual", "w · (1 − SSIM)", "image-term share"]
    assert t.loc["mix", "w · perceptual"] == "0.2000" and t.loc["mse", "w · perceptual"] == "off"
    assert t.loc["mix", "image-term share"] == f"{0.205 / 0.705:.1%}" and t.loc["mse", "image-term share"] == "0.0%"
    assert t.index.name == "weighted terms, last diffusion epoch" and not t.isna().any().any()


def test_loss_terms_missing_stage():
    with pytest.raises(ValueError, match=r"no 'align' epoch.*\['diffusion', 'vae'\]"):
        loss_terms({"mix": MIX}, stage="align")


def _evaluated(name, values, seed):
    per = list(values)
    metric = {"mean": float(np.mean(per)), "per_image": per}
    names = ("psnr", "ssim", "pixel_r", "mse", "id2", "id2_within", "id10")
    run = Run(variant=name, seed=seed, recon_val=np.zeros((2, 2, 2)), recon_test=np.full((2, 2, 2), seed, np.float32),
              val_metrics={m: metric for m in names}, test_metrics={m: metric for m in names}, history={},
              wall_time_s=10.0 + seed, steps_per_s=1.0, n_parameters={"total": 1}, device="cpu")
    return run


def test_summary_table_and_chapter_metrics_known_answers():
    res = {"a": VariantResult("a", {"x": 1}, {"lr": 1e-3}, dict(SAMPLING_DEFAULTS),
                              [_evaluated("a", [0.2, 0.4], 0), _evaluated("a", [0.4, 0.6], 1)])}
    table = summary_table(res, metrics=("ssim",), n_boot=50)
    assert table.loc["a", "ssim"].startswith("0.400 [") and table.loc["a", "seeds"] == 2
    assert table.loc["a", "train s/seed"] == 10.5
    metrics, recons, summary = chapter_metrics(res, n_boot=50)
    assert list(metrics) == ["a@seed0", "a@seed1"] and metrics["a@seed1"]["wall_time_s"] == 11.0
    np.testing.assert_array_equal(recons["a@seed1"], np.ones((2, 2, 2)))
    assert summary["a"]["test"]["ssim"]["per_image"] == pytest.approx([0.3, 0.5])  # per image, mean over seeds
    assert summary["a"]["seeds"] == [0, 1] and summary["a"]["train_cfg"] == {"lr": 1e-3}


def test_pooled_averages_seeds_per_image_then_bootstraps_over_images():
    from ldm_core.metrics import bootstrap_ci
    from ldm_core.study.runs import Run, VariantResult

    def run(seed, values):
        return Run(variant="v", seed=seed, recon_val=np.zeros((3, 2, 2), np.float32), recon_test=np.zeros((3, 2, 2), np.float32),
                   val_metrics={}, test_metrics={"psnr": {"per_image": values}}, history={}, wall_time_s=0.0,
                   steps_per_s=0.0, n_parameters={}, device="cpu")

    res = VariantResult("v", {}, {}, {}, [run(0, [10.0, 12.0, 14.0]), run(1, [12.0, 12.0, 16.0])])
    p = res.pooled("psnr", n_boot=200, seed=3)
    assert p["per_image"] == [11.0, 12.0, 15.0] and p["mean"] == pytest.approx(38 / 3) and p["n_seeds"] == 2
    assert (p["ci_low"], p["ci_high"]) == bootstrap_ci(np.array([11.0, 12.0, 15.0]), n_boot=200, seed=3)
    assert "n_sets" not in p
