"""ldm_core.prior_study: chapter 07's names, tables, analyses and their rules, on hand-made inputs."""
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from ldm_core.prior import PriorConfig
from ldm_core.prior_images import PriorImages, drop_near_duplicates
from ldm_core.prior_ldm import DecodeConfig
from ldm_core.prior_runs import MapConfig, PriorVariant
from ldm_core.prior_study import (DIRECT, BaselineScores, Perception, count_test_uses, decoder_name,
                                  evaluate_baselines, guard_at, guard_summary, is_ldm, known_answer_display,
                                  leakage_table, model_name, model_names, paired_rows, perception_distortion_text,
                                  perception_model, prior_fit_check, prior_fit_rule, prior_fit_table, prior_table,
                                  seed_bootstrap_table, selection_stability_table, stability_choices, strength_curve,
                                  voxel_curve)


def _result(val: dict | None = None, *, kind="ridge", n_voxels=None, val_per_image=None, test_per_image=None):
    """A VariantResult stand-in: ``ldm_cfg["map"]`` and runs whose val/test metrics hold means and per-image values."""
    runs = []
    for k, test in enumerate(test_per_image or [None]):
        vm = {m: {"mean": v} for m, v in (val or {}).items()}
        if val_per_image is not None:
            vm["ssim"] = {"mean": float(np.mean(val_per_image)), "per_image": list(val_per_image)}
        tm = {m: {"per_image": list(t)} for m, t in (test or {}).items()}
        runs.append(SimpleNamespace(val_metrics=vm, test_metrics=tm, seed=k))

    def pooled(metric, split="test", *, n_boot=2000, seed=0):
        from ldm_core.metrics import bootstrap_ci
        per = np.mean([getattr(r, f"{split}_metrics")[metric]["per_image"] for r in runs], axis=0)
        lo, hi = bootstrap_ci(per, n_boot=n_boot, seed=seed)
        return {"mean": float(per.mean()), "ci_low": lo, "ci_high": hi, "per_image": per.tolist()}

    return SimpleNamespace(ldm_cfg={"map": {"kind": kind, "n_voxels": n_voxels}}, runs=runs, pooled=pooled)


# ----------------------------------------------------------------------------- baselines


def test_baseline_scores_by_trials_pairs_each_score_with_its_reconstructions():
    recon = {n: {k: np.full((2, 3, 3), i + j) for j, k in enumerate(("val", "test", "test_all"))}
             for i, n in enumerate(("ridge", "pls"))}
    scores = BaselineScores(recon=recon, val={"ridge": "rv", "pls": "pv"}, test={"ridge": "r1", "pls": "p1"},
                            test_all={"ridge": "r2", "pls": "p2"}, best="pls", keys=("fit", "all"))
    test, rec = scores.by_trials()
    assert list(test) == [("ridge", "fit"), ("ridge", "all"), ("pls", "fit"), ("pls", "all")] == list(rec)
    assert [test[k] for k in test] == ["r1", "r2", "p1", "p2"]
    assert rec["pls", "fit"] is recon["pls"]["test"] and rec["ridge", "all"] is recon["ridge"]["test_all"]


def test_evaluate_baselines_keeps_the_callers_keys_and_refuses_mismatched_fits(rng):
    imgs = rng.random((6, 12, 12)).astype(np.float32)
    data = SimpleNamespace(fmri_val=np.zeros((6, 3)), fmri_test=np.zeros((6, 3)), images_val=imgs, images_test=imgs,
                           labels_val=np.array([1, 2] * 3), labels_test=np.array([1, 2] * 3))
    good = SimpleNamespace(predict=lambda f: imgs)
    bad = SimpleNamespace(predict=lambda f: np.full_like(imgs, 0.5))
    out = evaluate_baselines({"good": {"72": good, "90": good}, "bad": {"72": bad, "90": bad}}, data, data,
                             select_metric="psnr", n_boot=50, n_perm=0)
    assert out.keys == ("72", "90") and out.best == "good"  # chapter 08 still passes its own keys
    assert list(out.by_trials()[0]) == [("good", "72"), ("good", "90"), ("bad", "72"), ("bad", "90")]
    with pytest.raises(ValueError, match="the same two fits per baseline"):
        evaluate_baselines({"a": {"fit": good, "all": good}, "b": {"fit": good}}, data, data, select_metric="psnr",
                           n_boot=50, n_perm=0)


# ----------------------------------------------------------------------------- the guard


def test_leakage_table_formats_counts():
    leak = {"n_before": 1992, "n_dropped": 23, "n_after": 1969, "max_r_kept_test": 0.89512}
    col = leakage_table(leak, 2041)["value"]
    assert col["unpaired images found"] == "1,992" and col["kept"] == "1,969"
    assert col["largest shifted r of a kept image with a test stimulus"] == "0.895"
    assert col["prior training images (kept + the fitting trials)"] == "2,041"


def _leak(n_dropped, raw):
    dropped = [{"index": 3, "reference": 1}, {"index": 0, "reference": 0}][:n_dropped]
    return {"n_before": 5, "n_dropped": n_dropped, "n_after": 5 - n_dropped, "threshold": 0.9, "max_shift": 2,
            "max_r_kept_test": 0.5, "dropped": dropped, "raw": SimpleNamespace(images=raw)}


def test_guard_summary_says_when_nothing_is_dropped_and_returns_no_images(rng):
    raw = rng.random((5, 6, 6))
    s = guard_summary(_leak(0, raw))
    assert "dropped nothing" in s["text"] and "none of the 5" in s["text"]
    assert s["dropped"].shape == (0, 6, 6) and s["references"] == []
    s = guard_summary(_leak(2, raw))
    assert s["text"].startswith("The guard dropped 2 of 5 unpaired images") and "3 remain" in s["text"]
    assert np.array_equal(s["dropped"], raw[[3, 0]]) and s["references"] == [1, 0]


def test_guard_at_is_drop_near_duplicates_rule_and_looser_thresholds_keep_more(rng):
    refs = rng.random((3, 8, 8)).astype(np.float32)
    near = np.clip(refs + rng.normal(0, [[[0.05]], [[0.12]], [[0.2]]], refs.shape), 0, 1).astype(np.float32)
    imgs = np.concatenate([near, rng.random((5, 8, 8)).astype(np.float32)])
    prior = PriorImages(images=imgs, labels=np.zeros(8, np.int64), source="image file", path=Path("p.npz"), sha256="")
    kept, _ = drop_near_duplicates(prior, refs, threshold=0.9, max_shift=1)
    mask = guard_at(prior, refs, 0.9, max_shift=1)
    assert np.array_equal(imgs[mask], kept.images)
    assert guard_at(prior, refs, 0.99, max_shift=1).sum() > mask.sum() >= guard_at(prior, refs, 0.8, max_shift=1).sum()


# ----------------------------------------------------------------------------- names (contract C5)


def test_model_names_say_what_the_model_computes():
    direct = PriorVariant(map=MapConfig(kind="ridge", n_voxels=400), decode=DecodeConfig(mode="direct"))
    assert model_name(direct, 72) == "prior VAE + ridge map, 400 voxels (diffusion off), 72 trials"
    assert not is_ldm(direct) and "LDM" not in model_name(direct, 72)
    refine = direct.replace(map={"n_voxels": None}, decode={"mode": "refine", "strength": 0.5, "n_samples": 16})
    assert is_ldm(refine)
    assert model_name(refine, 1234) == ("image-prior LDM: ridge map, all voxels, refine 0.5, noise ×1, mean of 16 "
                                        "samples, 1,234 trials")
    assert decoder_name(DecodeConfig(mode="noise", n_samples=1, guidance=2.0, noise_scale=0.5)) == \
        "from noise, noise ×0.5, one sample, guidance 2"
    assert decoder_name(DecodeConfig(mode="refine", n_samples=8, average="latent")) == \
        "refine 0.3, noise ×1, mean code of 8 samples"
    names = model_names(direct, SimpleNamespace(n_fit=107), SimpleNamespace(n_fit=119))
    assert names == {"fit": "prior VAE + ridge map, 400 voxels (diffusion off), 107 trials",
                     "all": "prior VAE + ridge map, 400 voxels (diffusion off), 119 trials"}
    assert "(" not in DIRECT  # it stands inside sentences


# ----------------------------------------------------------------------------- does the prior fit?


def test_prior_fit_rule_by_hand():
    prior = {"psnr": np.array([20.0, 21.0, 22.0, 21.0]), "ssim": np.array([0.9, 0.92, 0.91, 0.9])}
    same = prior_fit_rule(prior, prior, margin_db=3, margin_ssim=0.1, n_boot=200)
    assert same["fits"] and same["psnr"]["difference"]["mean"] == 0.0
    far = prior_fit_rule({"psnr": prior["psnr"] - 8, "ssim": prior["ssim"]}, prior, margin_db=3, margin_ssim=0.1,
                         n_boot=200)
    assert not far["fits"] and far["psnr"]["out_of_domain"] and not far["ssim"]["out_of_domain"]
    assert far["psnr"]["difference"]["mean"] == pytest.approx(-8.0)
    near = prior_fit_rule({"psnr": prior["psnr"] - 2, "ssim": prior["ssim"]}, prior, margin_db=3, margin_ssim=0.1,
                          n_boot=200)
    assert near["fits"]  # 2 dB worse: within the declared margin
    blurred = prior_fit_rule({"psnr": prior["psnr"], "ssim": prior["ssim"] - 0.3}, prior, margin_db=3, margin_ssim=0.1,
                             n_boot=200)
    assert not blurred["fits"] and blurred["ssim"]["out_of_domain"]
    assert "entirely below −3 dB" in far["rule"] and "below −0.1" in far["rule"]


S = 12
_YY, _XX = np.mgrid[0:S, 0:S]


def _blobs(rng, n):
    """Soft round blobs: the prior's family (a stand-in for handwritten digits)."""
    cy, cx = rng.uniform(3, S - 3, (2, n))
    w = rng.uniform(1.5, 3.0, n)[:, None, None]
    return np.exp(-((_YY - cy[:, None, None]) ** 2 + (_XX - cx[:, None, None]) ** 2) / (2 * w ** 2)).astype(np.float32)


def _shapes(rng, n):
    """Hollow squares and crosses with hard edges: stimuli of another kind."""
    out = np.zeros((n, S, S), np.float32)
    for i in range(n):
        a, b = rng.integers(1, 4, 2)
        c = int(rng.integers(6, 10))
        if i % 2:
            out[i, a:a + c, b] = out[i, a:a + c, b + c - 1] = out[i, a, b:b + c] = out[i, a + c - 1, b:b + c] = 1
        else:
            out[i, S // 2, :] = out[i, :, rng.integers(2, S - 2)] = 1
    return out


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_prior_fit_check_flags_shapes_against_a_prior_of_blobs(one_thread, tmp_path):
    rng = np.random.default_rng(0)
    prior = PriorImages(images=_blobs(rng, 200), labels=np.full(200, -1), source="image file", path=Path("blobs.npz"),
                        sha256="")
    cfg = PriorConfig(latent_dim=4, vae_width=8, vae_hidden=32, vae_steps=5, vae_batch=32)  # probe_steps overrides 5
    kw = dict(holdout_fraction=0.1, margin_db=3.0, margin_ssim=0.1, seed=0, n_boot=500, cache_dir=tmp_path,
              probe_steps=150)
    same = prior_fit_check(prior, SimpleNamespace(images_fit=_blobs(rng, 12), images_val=_blobs(rng, 12)), cfg, **kw)
    other = prior_fit_check(prior, SimpleNamespace(images_fit=_shapes(rng, 12), images_val=_shapes(rng, 12)), cfg, **kw)
    assert same["fits"] and not other["fits"]
    assert other["psnr"]["difference"]["ci_high"] < -3.0
    assert same["n_heldout_prior"] == 20 and same["n_stimuli"] == 12 and same["probe_vae_steps"] == 150
    assert other["recon"]["stimuli"]["round_trip"].shape == (10, S, S)
    table = prior_fit_table(other)
    assert list(table.index) == ["validation stimuli (12)", "held-out unpaired images (20)",
                                 "difference (stimuli − unpaired)"]
    assert table.iloc[2, 0].startswith("-")


# ----------------------------------------------------------------------------- keyed curves and page tables


def test_voxel_curve_keys_each_score_by_the_runs_own_voxel_count():
    # the screen's order (the kinds at 800 first, then the counts) is not the voxel order: chapter 07's old bug
    results = {"ridge, 800 voxels": _result({"psnr": 15.4}, n_voxels=800),
               "pls, 800 voxels": _result({"psnr": 15.2}, kind="pls", n_voxels=800),
               "ridge, 200 voxels": _result({"psnr": 14.5}, n_voxels=200),
               "ridge, 400 voxels": _result({"psnr": 15.5}, n_voxels=400),
               "ridge, all voxels": _result({"psnr": 14.7}, n_voxels=None)}
    curve = voxel_curve(results, kind="ridge", n_voxels_all=3092, metrics=("psnr",))
    assert curve == {"PSNR (dB)": {800: 15.4, 200: 14.5, 400: 15.5, 3092: 14.7}}


def test_strength_curve_reads_each_variants_strength():
    base = PriorVariant(decode=DecodeConfig(mode="refine", n_samples=4, noise_scale=1.0))
    variants = {"b": base.replace(decode={"strength": 0.5}), "a": base.replace(decode={"strength": 0.2}),
                "mean code": base.replace(decode={"strength": 0.3, "average": "latent"}),
                "other noise": base.replace(decode={"strength": 0.3, "noise_scale": 0.5})}
    results = {"a": _result({"ssim": 0.6}), "b": _result({"ssim": 0.7}), "mean code": _result({"ssim": 0.1}),
               "other noise": _result({"ssim": 0.2})}
    assert strength_curve(results, variants, noise_scale=1.0, n_samples=4, metrics=("ssim",)) == \
        {"SSIM": {0.5: 0.7, 0.2: 0.6}}


def test_known_answer_display_is_one_row_per_sampler_with_words():
    idx = pd.MultiIndex.from_tuples([("cosine", "ddim, 50 steps", "eps"), ("cosine", "ddim, 50 steps", "x0")],
                                    names=["schedule", "sampler", "prediction"])
    known = pd.DataFrame({"covariance error (closed form)": [0.054, 0.054],
                          "variance ratio (closed form)": [0.95, 0.95],
                          "library vs closed form (MC)": [0.068, 0.067], "MC standard error": [0.03, 0.03],
                          "library passes": [True, False], "bias amplification": [1234.5, 0.8]}, index=idx)
    out = known_answer_display(known)
    assert out.index.tolist() == [("cosine", "ddim, 50 steps")]
    row = out.iloc[0]
    assert row["passes (ε / x0)"] == "yes / no" and row["library − exact (MC, ε / x0)"] == "0.068 / 0.067"
    assert row["error ×, ε"] == "1.23e+03" and row["error ×, x0"] == "0.8"
    assert "True" not in out.to_string()


def test_prior_table_reads_ceiling_quality_and_times():
    prior = SimpleNamespace(cfg=SimpleNamespace(diffusion_steps=8000),
                            history={"vae_time_s": 12.34, "diffusion_time_s": 56.78})
    ceiling = {"psnr": {"mean": 21.2871}, "ssim": {"mean": 0.91234}}
    quality = {"mean_error": 0.1, "cov_error": 0.2, "variance_ratio": 0.98765, "nn_r": 0.8}
    col = prior_table(prior, ceiling, quality)["value"]
    assert col["VAE round trip on validation images: PSNR (dB)"] == "21.29"  # text: a float column would pad 56.800
    assert col["unconditional samples: variance / data variance"] == "0.988"
    assert col["diffusion training, 8,000 steps (s)"] == "56.8"


# ----------------------------------------------------------------------------- perception


def test_perception_is_unavailable_without_labels_or_with_other_classes():
    data = SimpleNamespace(class_names={1: "six", 2: "nine"})
    img = np.zeros((4, 8, 8), np.float32)
    unlabelled = PriorImages(images=img, labels=np.full(4, -1), source="image file", path=Path("x.npz"), sha256="")
    p = perception_model(unlabelled, data)
    assert not p.available and "carry no class labels" in p.note
    letters = PriorImages(images=img, labels=np.array([0, 1, 0, 1]), source="image file", path=Path("x.npz"),
                          sha256="", class_names={0: "A", 1: "B"})
    p = perception_model(letters, data)
    assert not p.available and "differ from the stimuli's (nine, six)" in p.note
    scores = p.scores(img, img, np.array([1, 2, 1, 2]), n_boot=10)
    assert set(scores) == {"digit_acc", "feature_id2", "kid_digit"}
    assert all(np.isnan(v["mean"]) and v["note"] == p.note for v in scores.values())


def _point(psnr, ssim, kid):
    return {"psnr": {"per_image": list(psnr)}, "ssim": {"per_image": list(ssim)},
            "kid_digit": {"mean": kid[0], "ci_low": kid[1], "ci_high": kid[2]}}


def test_perception_distortion_text_says_what_diffusion_buys_and_costs():
    base = np.linspace(14, 16, 8)
    points = {"direct": _point(base, base / 20, (0.05, 0.04, 0.06)),
              "one": _point(base - 1.0, base / 20 - 0.05, (0.01, 0.005, 0.015)),
              "mean": _point(base + np.r_[0.1, -0.1].repeat(4), base / 20, (0.05, 0.03, 0.07))}
    on = Perception(net=object(), class_names={1: "six"})
    out = perception_distortion_text(points, direct="direct", diffusion={"one sample": "one", "the mean": "mean"},
                                     perception=on, n_boot=200)
    assert out["gains"] == ["KID"] and out["costs"] == ["PSNR", "SSIM"]
    assert out["summary"] == ("on the validation trials diffusion buys KID and costs PSNR, SSIM against direct "
                              "decoding (lower KID is better)")
    assert "one sample changes PSNR by -1.00 dB [-1.00, -1.00]" in out["text"] and "(lower, CIs apart)" in out["text"]
    assert "(CIs overlap)" in out["text"]
    off = Perception(net=None, class_names={1: "six"}, note="the prior's classes differ")
    out = perception_distortion_text(points, direct="direct", diffusion={"one sample": "one"}, perception=off,
                                     n_boot=200)
    assert "KID" not in out["text"] and out["summary"].endswith("; the prior's classes differ")


def test_paired_rows_show_the_reference_once_when_it_is_the_best_baseline():
    per = {m: {"per_image": [1.0, 2.0, 3.0]} for m in ("psnr", "ssim", "pixel_r")}
    worse = {m: {"per_image": [0.5, 1.5, 2.0]} for m in ("psnr", "ssim", "pixel_r")}
    bases = BaselineScores(recon={}, val={}, test={"autoencoder + ridge": worse, "ridge": worse},
                           test_all={"autoencoder + ridge": worse, "ridge": worse}, best="autoencoder + ridge")
    out = paired_rows(per, per, bases, n_fit=72, n_all=90, n_boot=100)
    assert len(out["rows"]) == 2 and out["reference_fit"] == out["best_fit"]
    assert out["best_all"] == ("refitted on 90 trials − autoencoder + ridge (best baseline on validation; the image "
                               "prior alone)")
    bases.best = "ridge"
    out = paired_rows(per, per, bases, n_fit=72, n_all=90, n_boot=100)
    assert len(out["rows"]) == 3 and out["reference_fit"] == ("fitted on 72 trials − autoencoder + ridge (the image "
                                                              "prior alone)")
    assert out["rows"][out["best_fit"]]["psnr"]["mean"] == pytest.approx(2 / 3)


# ----------------------------------------------------------------------------- robustness


def test_seed_bootstrap_table_widens_only_when_seeds_disagree():
    same = _result(test_per_image=[{"psnr": [10, 12, 14, 16]}] * 3)
    differ = _result(test_per_image=[{"psnr": [10, 12, 14, 16]}, {"psnr": [14, 16, 18, 20]}, {"psnr": [6, 8, 10, 12]}])
    table, record = seed_bootstrap_table({"same": same, "differ": differ}, metrics=("psnr",), n_boot=500)
    assert record["same"]["psnr"]["width_ratio"] == pytest.approx(1.0)
    assert record["differ"]["psnr"]["width_ratio"] > 1.2 and record["differ"]["psnr"]["n_seeds"] == 3
    assert table.loc[("same", "PSNR (dB)"), "95% CI over seeds (3) and images"] == \
        table.loc[("same", "PSNR (dB)"), "95% CI over images"]


def test_stability_choices_and_table_read_the_screens():
    screen2 = {"ridge, 800 voxels": _result(kind="ridge", n_voxels=800, val_per_image=[0.6, 0.62, 0.61, 0.6]),
               "pls, 800 voxels": _result(kind="pls", n_voxels=800, val_per_image=[0.5, 0.5, 0.52, 0.5]),
               "ridge, 400 voxels": _result(kind="ridge", n_voxels=400, val_per_image=[0.61, 0.6, 0.62, 0.61])}
    screen3 = {DIRECT: _result(val_per_image=[0.61, 0.6, 0.62, 0.61]),
               "refine": _result(val_per_image=[0.3, 0.2, 0.3, 0.25])}
    choices = stability_choices(screen2, MapConfig(kind="ridge", n_voxels=400), screen3, DIRECT, "refine", n_voxels=800,
                                select_metric="ssim")
    assert choices["fMRI → latent map kind"][0] == "ridge, 800 voxels"
    assert sorted(choices["voxels read"][1]) == ["ridge, 400 voxels", "ridge, 800 voxels"]
    assert choices["direct decoding or the best diffusion decoder"][0] == DIRECT
    assert list(choices) == ["fMRI → latent map kind", "voxels read", "direct decoding or the best diffusion decoder",
                             "decoder among every stage-3 candidate"]
    table, record = selection_stability_table(choices, metric="ssim", n_boot=200)
    assert record["fMRI → latent map kind"]["shares"] == {"ridge, 800 voxels": 1.0, "pls, 800 voxels": 0.0}
    assert table.loc["direct decoding or the best diffusion decoder", "share of resamples it stays best"] == "1.00"
    assert 0 < record["voxels read"]["shares"]["ridge, 400 voxels"] < 1


def test_test_uses_counts_models_and_evaluations():
    u = count_test_uses(n_seeds=5, baselines=["ridge", "pls", "latent ridge", "autoencoder + ridge"], n_leak=2)
    assert (u["planned"], u["exploratory"], u["models"], u["evaluations"]) == (10, 2, 12, 20)
    assert u["text"].startswith("This chapter scores 12 models on the test trials: 10 planned")


def test_leak_sensitivity_retrains_on_each_guarded_set_and_checks_the_published_one(tmp_path, rng):
    from ldm_core.data import make_synthetic_digit69, write_digit69_mat
    from ldm_core.prior_runs import run_prior_variants
    from ldm_core.prior_study import leak_sensitivity, leak_sensitivity_table
    from ldm_core.splits import prepare_data

    data = prepare_data(str(write_digit69_mat(tmp_path / "d.mat", make_synthetic_digit69(
        n_train=30, n_test=6, n_voxels=20, image_size=12))), verbose=0)
    stim = np.concatenate([data.images_val, data.images_test])
    near = np.clip(stim[:4] + rng.normal(0, [[[0.02]], [[0.05]], [[0.1]], [[0.4]]], stim[:4].shape), 0, 1)
    raw = PriorImages(images=np.concatenate([near, rng.random((16, 12, 12))]).astype(np.float32),
                      labels=np.zeros(20, np.int64), source="image file", path=Path("p.npz"), sha256="")
    tiny = PriorConfig(latent_dim=3, vae_width=4, vae_hidden=8, vae_steps=5, vae_batch=8, denoiser_width=16,
                       denoiser_blocks=1, diffusion_steps=5, diffusion_batch=16, n_train_steps=50)
    variant = PriorVariant(tiny, MapConfig(n_voxels=10, n_folds=3), DecodeConfig(mode="direct", steps=10))
    kept, _ = drop_near_duplicates(raw, stim, threshold=0.9, max_shift=1)
    published = np.concatenate([kept.images, data.images_fit])
    rows = leak_sensitivity(data, raw, variant, [0.5, 0.99], published=0.9, max_shift=1, seed=0, n_boot=50,
                            cache_dir=tmp_path, pretrain_images=published)
    assert list(rows) == [0.5, 0.9, 0.99] and [r["published"] for r in rows.values()] == [False, True, False]
    assert rows[0.5]["n_kept"] <= rows[0.9]["n_kept"] == kept.n_images < rows[0.99]["n_kept"]
    final = run_prior_variants({"v": variant}, data, published, seeds=[0], n_boot=50, cache_dir=tmp_path,
                               progress=False)["v"]
    assert rows[0.9]["test"]["psnr"]["mean"] == pytest.approx(final.runs[0].test_metrics["psnr"]["mean"])
    assert leak_sensitivity_table(rows).index.tolist() == ["0.5", "0.9 (published)", "0.99"]
    with pytest.raises(ValueError, match="keeps another image set"):
        leak_sensitivity(data, raw, variant, [], published=0.9, max_shift=1, seed=0, n_boot=50, cache_dir=tmp_path,
                         pretrain_images=raw.images)


def test_best_diffusion_pair_takes_the_best_multi_sample_decoder_and_its_single_sample_twin():
    from ldm_core.prior_study import best_diffusion_pair

    base = PriorVariant(decode=DecodeConfig(mode="refine", n_samples=8))
    variants = {DIRECT: base.replace(decode={"mode": "direct"}), "refine 0.3": base,
                "refine 0.5": base.replace(decode={"strength": 0.5}),
                "refine 0.5, one sample": base.replace(decode={"strength": 0.5, "n_samples": 1})}
    results = {DIRECT: _result({"ssim": 0.9}), "refine 0.3": _result({"ssim": 0.6}),
               "refine 0.5": _result({"ssim": 0.7}), "refine 0.5, one sample": _result({"ssim": 0.8})}
    k, one, pair = best_diffusion_pair(results, variants, select_metric="ssim", data=None, pretrain_images=None,
                                       seed=0, n_boot=10, cache_dir=None)
    assert (k, one) == ("refine 0.5", "refine 0.5, one sample")  # direct and single-sample decoders are not candidates
    assert pair[one] is results[one]
    with pytest.raises(ValueError, match="no diffusion decoder that averages several samples"):
        best_diffusion_pair({DIRECT: results[DIRECT]}, {DIRECT: variants[DIRECT]}, select_metric="ssim", data=None,
                            pretrain_images=None, seed=0, n_boot=10, cache_dir=None)
