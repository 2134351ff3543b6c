"""ldm_core.study.prior_study: chapter 07's names, tables, analyses and their rules, on hand-made inputs."""
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from ldm_core.prior import PriorConfig
from ldm_core.leakage import drop_near_duplicates
from ldm_core.prior_images import PriorImages
from ldm_core.prior_ldm import DecodeConfig
from ldm_core.study.prior_runs import MapConfig, PriorVariant
from ldm_core.study.prior_study import (DIRECT, BaselineScores, Perception, budget_display, count_test_uses, decoder_name,
                                  epsilon_findings, evaluate_baselines, guard_at, guard_summary, is_ldm, kid_reference,
                                  kid_text, known_answer_display, known_answer_text, large_number, leakage_table,
                                  model_name, model_names, paired_rows, perception_distortion_text, perception_model,
                                  prior_fit_check, prior_fit_rule, prior_fit_table, prior_fit_text, prior_size_text,
                                  prior_source_text, prior_table, published_comparison, resolved_params,
                                  screen_followup_text, seed_bootstrap_table, selection_stability_table,
                                  stability_choices, strength_curve, voxel_curve)


def _result(val: dict | None = None, *, kind="ridge", n_voxels=None, val_per_image=None, test_per_image=None):
    """A VariantResult stand-in: ``ldm_cfg["map"]`` and runs whose val/test metrics hold means and per-image values."""
    runs = []
    for k, test in enumerate(test_per_image or [None]):
        vm = {m: {"mean": v} for m, v in (val or {}).items()}
        if isinstance(val_per_image, dict):  # {metric: per-image values}
            vm.update({m: {"mean": float(np.mean(v)), "per_image": list(v)} for m, v in val_per_image.items()})
        elif val_per_image is not None:
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


def test_guarded_prior_images_takes_no_data_dir():
    from ldm_core.study.prior_study import guarded_prior_images

    with pytest.raises(TypeError, match="data_dir"):
        guarded_prior_images(None, source="auto", threshold=0.9, max_shift=2, data_dir="/x")


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
    same_data = SimpleNamespace(images_fit=_blobs(rng, 12), images_val=_blobs(rng, 12))
    same = prior_fit_check(prior, same_data, cfg, **kw)
    other_data = SimpleNamespace(images_fit=_shapes(rng, 12), images_val=_shapes(rng, 12))
    other = prior_fit_check(prior, other_data, cfg, **kw)
    assert same["fits"] and not other["fits"] and same["tested"] and other["tested"]
    assert other["psnr"]["difference"]["ci_high"] < -3.0
    # validation stimuli with a near copy (r > 0.99) among the probe's training images are left out
    from ldm_core.splits import test_in_training
    from ldm_core.study.prior_study.fit_check import _holdout_index

    keep = np.ones(200, bool)
    keep[_holdout_index(prior.labels, 0.1, 0)] = False

    def copies(d):
        return test_in_training(np.concatenate([prior.images[keep], d.images_fit]), d.images_val,
                                threshold=0.99)["repeated"]

    assert same["n_heldout_prior"] == 20 and same["probe_vae_steps"] == 150 and same["n_val"] == 12
    for check, d in ((same, same_data), (other, other_data)):
        assert check["n_near_copies"] == len(copies(d)) and check["n_stimuli"] == 12 - len(copies(d))
    assert 0 < same["n_near_copies"] < 12  # smooth blobs: some validation blobs copy a prior blob
    unseen = np.setdiff1d(np.arange(12), copies(other_data))
    assert np.array_equal(other["recon"]["stimuli"]["images"], other_data.images_val[unseen][:10])
    table = prior_fit_table(other)
    assert list(table.index) == [f"validation stimuli without a near copy ({len(unseen)} of 12)",
                                 "held-out unpaired images (20)", "difference (stimuli − unpaired)"]
    assert table.iloc[2, 0].startswith("-")
    n = same["n_near_copies"]
    assert f"({n} of the 12 have one, pixel r above 0.99, and are left out)" in prior_fit_text(same)

    # stimuli that repeat fitting stimuli are scored no more (the probe trained on them)
    fit = other_data.images_fit
    repeats = SimpleNamespace(images_fit=fit, images_val=np.concatenate([fit[:3], other_data.images_val[3:]]))
    part = prior_fit_check(prior, repeats, cfg, **kw)  # the same probe: cached
    assert {0, 1, 2} <= set(copies(repeats)) and part["n_near_copies"] == len(copies(repeats))
    assert part["tested"] and part["n_stimuli"] == 12 - len(copies(repeats)) and not part["fits"]
    every = prior_fit_check(prior, SimpleNamespace(images_fit=fit, images_val=fit[:5]), cfg, **kw)
    assert every["fits"] is None and not every["tested"] and every["n_stimuli"] == 0 and every["n_near_copies"] == 5
    assert prior_fit_text(every).startswith("The prior-fit check cannot be made: each of the 5 validation stimuli")
    assert (prior_fit_table(every) == "—").all().all()


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
    for r in results.values():  # the CIs come from the same runs, keyed the same way
        r.runs[0].val_metrics["psnr"].update(ci_low=r.runs[0].val_metrics["psnr"]["mean"] - 1, ci_high=99.0)
    assert voxel_curve(results, kind="ridge", n_voxels_all=3092, metrics=("psnr",), interval=True) == \
        {"PSNR (dB)": {800: (14.4, 99.0), 200: (13.5, 99.0), 400: (14.5, 99.0), 3092: (13.7, 99.0)}}


def test_strength_curve_reads_each_variants_strength():
    base = PriorVariant(decode=DecodeConfig(mode="refine", n_samples=4, noise_scale=1.0))
    variants = {"b": base.replace(decode={"strength": 0.5}), "a": base.replace(decode={"strength": 0.2}),
                "mean code": base.replace(decode={"strength": 0.3, "average": "latent"}),
                "other noise": base.replace(decode={"strength": 0.3, "noise_scale": 0.5})}
    results = {"a": _result({"ssim": 0.6}), "b": _result({"ssim": 0.7}), "mean code": _result({"ssim": 0.1}),
               "other noise": _result({"ssim": 0.2})}
    assert strength_curve(results, variants, noise_scale=1.0, n_samples=4, metrics=("ssim",)) == \
        {"SSIM": {0.5: 0.7, 0.2: 0.6}}
    results[DIRECT] = _result({"ssim": 0.65})
    assert strength_curve(results, variants, noise_scale=1.0, n_samples=4, average="latent", direct=DIRECT,
                          metrics=("ssim",)) == {"SSIM": {0.3: 0.1, 0.0: 0.65}}  # the mean-code family, direct at 0


def test_known_answer_display_is_one_row_per_sampler_with_words():
    idx = pd.MultiIndex.from_tuples([("cosine", "ddim, 50 steps", "eps"), ("cosine", "ddim, 50 steps", "x0")],
                                    names=["schedule", "sampler", "prediction"])
    known = pd.DataFrame({"covariance error (closed form)": [0.054, 0.054],
                          "variance ratio (closed form)": [0.95, 0.95],
                          "library vs closed form (MC)": [0.068, 0.067], "MC standard error": [0.03, 0.03],
                          "library passes": [True, False], "bias amplification": [1234.5, 0.8]}, index=idx)
    known.loc[("cosine", "ddim, 50 steps", "eps"), "bias amplification"] = 123456.0
    out = known_answer_display(known)
    assert out.index.tolist() == [("cosine", "DDIM, 50 steps")]  # chapter 01's sampler names
    row = out.iloc[0]
    assert row["passes (ε / x0)"] == "yes / no" and row["library − exact (MC, ε / x0)"] == "0.068 / 0.067"
    assert row["error ×, ε-prediction"] == "1.2 × 10⁵" and row["error ×, x0-prediction"] == "0.8"
    assert "True" not in out.to_string() and "e+" not in out.to_string()
    assert known_answer_text(known, last_signal=2.4e-9) == (
        "with the cosine schedule, whose last step leaves a signal fraction ᾱ of only 2.4e-09, DDIM from the last "
        "timestep multiplies a small error of the denoiser's output 1.2 × 10⁵-fold when it predicts ε and 0.8-fold "
        "when it predicts x0")


def test_large_number_writes_powers_of_ten_and_plain_numbers():
    assert large_number(2.01e5) == "2.0 × 10⁵" and large_number(2.31e6) == "2.3 × 10⁶"
    assert large_number(99_960) == "1.0 × 10⁵"  # rounding carries into the exponent
    assert large_number(-3e4) == "-3.0 × 10⁴" and large_number(2.01e5, digits=3) == "2.01 × 10⁵"
    assert large_number(723.4) == "723" and large_number(1234.0) == "1,234" and large_number(0.19) == "0.19"


def _budget_case(eps_cos_var=2.0e5, eps_lin_var=0.9, passes=True, amp_cos=723.0):
    """A budget check by hand: x0 and two ε priors at 800 and 50 steps on 6 validation trials, and a known-answer
    table with the DDIM amplification on each schedule."""
    rows, res = {}, {}
    base = np.array([14.0, 14.5, 15.0, 15.5, 16.0, 16.5])
    for pred, kind in (("x0", "cosine"), ("eps", "cosine"), ("eps", "linear")):
        for b in (800, 50):
            n = f"{pred}, {kind} schedule, {b:,} steps"
            shift = {("eps", "cosine"): -2.0, ("eps", "linear"): (0.0 if b == 800 else -0.8)}.get((pred, kind), 0.0)
            wiggle = np.array([0.05, -0.05] * 3) if shift == 0.0 and pred == "eps" else 0.0
            var = {("eps", "cosine"): eps_cos_var, ("eps", "linear"): eps_lin_var}.get((pred, kind), 0.92)
            rows[n] = {"sample covariance error": 0.2, "sample variance ratio": var,
                       "samples' best r with a prior image": 0.9, "validation PSNR (dB)": float((base + shift).mean()),
                       "validation SSIM": 0.6}
            res[n] = _result(val_per_image={"psnr": base + shift + wiggle})
    budget = pd.DataFrame(rows).T.rename_axis("prior (prediction, schedule, diffusion steps)")
    idx = pd.MultiIndex.from_tuples([(k, "ddim, 50 steps", p) for k in ("linear", "cosine") for p in ("eps", "x0")],
                                    names=["schedule", "sampler", "prediction"])
    known = pd.DataFrame({"library passes": [passes, True, True, True],
                          "bias amplification": [6.6, 4.7, amp_cos, 5.3]}, index=idx)
    return budget, res, known


def test_budget_display_names_predictions_and_writes_no_scientific_notation():
    budget, _, _ = _budget_case()
    out = budget_display(budget)
    assert out.index[2] == "ε-prediction, cosine schedule, 800 steps" and out.index[0] == "x0-prediction, cosine schedule, 800 steps"
    assert out.loc["ε-prediction, cosine schedule, 800 steps", "sample variance ratio"] == "2.0 × 10⁵"
    assert out.loc["x0-prediction, cosine schedule, 50 steps", "validation PSNR (dB)"] == "15.2"


def test_epsilon_findings_are_conditioned_on_the_numbers():
    budget, res, known = _budget_case()
    out = epsilon_findings(budget, res, known, budgets=[800, 50], spatial_schedule="linear", n_boot=200)
    assert out["sampler_bug_ruled_out"] and out["text"].startswith("Every sampler passes the known-answer test")
    cos = out["rows"]["eps, cosine schedule, 800 steps"]
    assert cos["runs_away"] and cos["difference"]["mean"] == pytest.approx(-2.0)
    assert "behind x0 by 2.00 dB [2.00, 2.00]" in out["text"]
    assert ("its unconditional samples run away (sample variance 2.0 × 10⁵ times the data's after 800 steps and "
            "2.0 × 10⁵ times the data's after 50 steps), as the known-answer table predicts: DDIM from the last "
            "timestep multiplies an ε error 723-fold on this schedule, an x0 error 5.3-fold") in out["text"]
    lin = out["rows"]["eps, linear schedule, 800 steps"]
    assert not lin["runs_away"] and "not separable from x0, 0.00 dB" in out["text"]
    assert "with the linear schedule ε-prediction reaches 15.25 dB after 800 steps" in out["text"]
    assert "14.45 dB after 50 steps (behind x0 by 0.80 dB [0.80, 0.80])" in out["text"]
    assert "its unconditional samples do not run away" in out["text"]
    assert ("chapter 8's spatial ε candidates use the linear schedule, so the cosine schedule's amplification does "
            "not bear on them") in out["summary"]
    assert ("with the cosine schedule ε-prediction is behind x0 by 2.00 dB [2.00, 2.00] after 800 steps and behind x0 "
            "by 2.00 dB [2.00, 2.00] after 50 steps on validation and its samples run away (variance up to 2.0 × 10⁵ "
            "times the data's), as DDIM's 723-fold amplification of an ε error on this schedule predicts") in out["summary"]
    # a run-away the known-answer table cannot explain, a failing sampler, a cosine spatial schedule
    budget, res, known = _budget_case(eps_lin_var=50.0, passes=False, amp_cos=20.0)
    out = epsilon_findings(budget, res, known, budgets=[800, 50], spatial_schedule="cosine", n_boot=200)
    assert not out["sampler_bug_ruled_out"] and "a sampler bug is not ruled out" in out["summary"]
    assert "the known-answer amplification of an ε error on this schedule (6.6-fold) does not account for it" in out["text"]
    assert "as the known-answer table predicts" not in out["text"]  # 20-fold is < 10 × 5.3 on the cosine schedule
    assert "does not bear on them" not in out["summary"] and out["summary"].endswith("use the cosine schedule")


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


def test_perception_distortion_text_writes_one_clause_per_decoder():
    base = np.linspace(14, 16, 8)
    points = {"direct": _point(base, base / 20, (0.05, 0.04, 0.06)),
              "one": _point(base - 1.0, base / 20 - 0.05, (0.01, 0.005, 0.015)),
              "mean": _point(base + np.r_[0.1, -0.1].repeat(4), base / 20, (0.05, 0.03, 0.07))}
    on = Perception(net=object(), class_names={1: "six"})
    out = perception_distortion_text(points, direct="direct", diffusion={"a single sample": "one", "the mean": "mean"},
                                     perception=on, n_boot=200)
    assert out["by_decoder"] == {"one": {"better": ["KID"], "worse": ["PSNR", "SSIM"], "not_separable": []},
                                 "mean": {"better": [], "worse": [], "not_separable": ["PSNR", "SSIM", "KID"]}}
    assert out["gains"] == ["KID"] and out["costs"] == ["PSNR", "SSIM"]
    assert out["summary"] == ("on the validation trials, a single sample is better than direct decoding on KID and "
                              "worse on PSNR and SSIM; the mean is not separable from direct decoding on PSNR, SSIM "
                              "or KID")
    assert out["text"].startswith("A single sample is better than direct decoding on KID and worse on PSNR and SSIM: "
                                  "per image, PSNR -1.00 dB [-1.00, -1.00] and SSIM -0.050 [-0.050, -0.050] against "
                                  "direct decoding; its KID is 0.010 [0.005, 0.015] against direct decoding's 0.050 "
                                  "[0.040, 0.060] (lower, CIs apart).")
    assert "(CIs overlap)" in out["text"] and "costs PSNR, SSIM" not in out["text"]
    off = Perception(net=None, class_names={1: "six"}, note="the prior's classes differ")
    out = perception_distortion_text(points, direct="direct", diffusion={"a single sample": "one"}, perception=off,
                                     n_boot=200)
    assert "KID" not in out["text"].replace("classes", "") and out["summary"].endswith("; the prior's classes differ")
    assert out["summary"].startswith("on the validation trials, a single sample is worse than direct decoding on PSNR "
                                     "and SSIM;")


def test_kid_reference_counts_reference_images_the_prior_trained_on(rng):
    imgs = rng.random((10, 6, 6)).astype(np.float32)
    net = SimpleNamespace(heldout_images=imgs[:4])
    ref = kid_reference(Perception(net=net, class_names={}), np.concatenate([imgs[2:], imgs[:1]]))
    assert ref["n_images"] == 4 and ref["in_prior_training_set"] == 3 and ref["unseen_by_classifier"]
    assert "3 of them are also among the image prior's training images, which favours" in ref["note"]
    ref = kid_reference(Perception(net=net, class_names={}), imgs[4:])
    assert ref["in_prior_training_set"] == 0 and ref["note"].endswith("none of them is among the image prior's "
                                                                      "training images")
    off = kid_reference(Perception(net=None, class_names={}, note="no classifier"), imgs)
    assert off == {"available": False, "note": "no classifier"}


def test_kid_text_explains_negative_values_wide_cis_and_seed_counts():
    def k(m, lo, hi):
        return {"kid_digit": {"mean": m, "ci_low": lo, "ci_high": hi}}

    rows = {"selected (5 seeds)": k(0.10, -0.2, 0.4), "ridge": k(0.20, -0.1, 0.5), "pls": k(0.9, 0.6, 1.2)}
    text = kid_text(rows, n_images=10, split="test", n_recons={"selected (5 seeds)": 5},
                    reference={"note": "KID's reference set is X"})
    assert "so it can be negative" in text and "with 10 test images its 95% CIs are wide (half-widths up to 0.30 here; they resample the reconstructions" in text
    assert ("selected (5 seeds) pools 5 reconstructions per image (reconstructions of one image are never paired with "
            "each other) and the other rows 1 each; pls lies higher than it, CIs apart; the other rows' KIDs are not "
            "separable from it.") in text
    two = kid_text({**rows, "refit (5 seeds)": k(0.5, 0.3, 0.7)}, n_images=10, split="test",
                   n_recons={"selected (5 seeds)": 5, "refit (5 seeds)": 5})
    assert "selected (5 seeds) and refit (5 seeds) pool 5 reconstructions" in two
    assert "pls (higher than selected (5 seeds))" in two  # apart from one of the two only
    assert text.endswith(" KID's reference set is X.")
    same = kid_text({"a": k(0.1, -0.2, 0.4), "b": k(0.2, -0.1, 0.5)}, n_images=18, split="validation",
                    n_recons={"a": 1, "b": 1})
    assert "pools" not in same and "18 validation images" in same
    overlap = kid_text({"sel": k(0.1, -0.2, 0.4), "b": k(0.2, -0.1, 0.5)}, n_images=10, split="test", n_recons={"sel": 3})
    assert "no other row's KID is separable from it" in overlap
    nan = {"kid_digit": {"mean": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}}
    assert kid_text({"a": nan}, n_images=10, split="test", reference={"note": "no classifier"}) == "no classifier."


def test_published_comparison_says_above_or_below_never_better():
    def v(m, lo, hi):
        return {"mean": m, "ci_low": lo, "ci_high": hi}

    # DGMM as published (quoted): PCC 0.803, MSE 0.037, SSIM 0.645
    ours = {"pixel_r": v(0.84, 0.81, 0.86), "mse": v(0.03, 0.025, 0.037), "ssim": v(0.60, 0.55, 0.63)}
    t = published_comparison({"refitted, 90 trials": ours})
    col = t["comparison"]
    assert col[("refitted, 90 trials", "PCC")] == "above the published mean (loose comparison)"
    assert col[("refitted, 90 trials", "MSE (lower is better)")] == "not separable (the CI contains the published mean)"
    assert col[("refitted, 90 trials", "SSIM")] == "below the published mean (loose comparison)"
    assert t.loc[("refitted, 90 trials", "PCC"), "DGMM, as published (quoted)"] == "0.803"
    assert t.loc[("refitted, 90 trials", "PCC"), "measured here (our definitions)"] == "0.840 [0.810, 0.860]"
    assert "better" not in " ".join(col)
    with pytest.raises(KeyError, match="no published row 'GAN'"):
        published_comparison({"x": ours}, method="GAN")
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
    assert u["saved"] == 12 and u["text"].startswith("This chapter scores 12 decoders on the test trials: 10 by design")
    assert "which is what chapter 8's count of test-set use reads" in u["text"]


def test_screen_followup_text_says_whether_the_second_round_ran():
    base = PriorVariant(decode=DecodeConfig(mode="refine", n_samples=8))
    first = {DIRECT: base.replace(decode={"mode": "direct"}), "refine 0.3": base}
    text = screen_followup_text(first, chosen=DIRECT, guidance_grid=[1.0, 2.0])
    assert text.startswith("Direct decoding won the first round, so the guidance scale 2 and a single-sample version "
                           "were not screened")
    more = {**first, "refine 0.3, guidance 2": base.replace(decode={"guidance": 2.0}),
            "refine 0.3, one sample": base.replace(decode={"n_samples": 1})}
    text = screen_followup_text(more, chosen="refine 0.3, guidance 2", guidance_grid=[1.0, 2.0])
    assert text == ("A diffusion decoder (refine 0.3) won the first round, so the guidance scale 2 and a single-sample "
                    "version of it were screened too (the table's last rows); the decoder chosen over both rounds is "
                    "refine 0.3, guidance 2.")


def test_prior_size_text_reads_the_curve():
    def pt(values):
        return {"psnr": {"mean": float(np.mean(values)), "per_image": list(values)}}

    base = np.array([13.0, 14.0, 15.0, 14.0])
    curve = {DIRECT: {"0": pt(base), "300": pt(base + 0.5), "1000": pt(base + 1.5), "1969": pt(base + 2.0)}}
    text = prior_size_text(curve, DIRECT, n_fit=72, n_boot=200)
    assert text.startswith(f"With the decoder '{DIRECT}', the validation PSNR goes from 14.00 dB with no unpaired images (the fitting "
                           "images alone) to 16.00 dB with all 1,969, a difference of +2.00 dB [+2.00, +2.00] per "
                           "validation image; 300 images reach 25% and 1,000 images reach 75% of that gain")
    assert text.endswith("(one draw of images per size, seed 0; 72 paired trials throughout).")
    flat = {DIRECT: {0: pt(base), 1969: pt(base + np.array([0.5, -0.5, 0.5, -0.5]))}}
    assert "not separable from no gain" in prior_size_text(flat, DIRECT, n_fit=72, n_boot=200)


def test_resolved_params_show_what_placeholders_stood_for():
    from ldm_core.study.chapter import Chapter
    from ldm_core.study.parameters import defaults

    prior = PriorImages(images=np.zeros((3, 4, 4), np.float32), labels=np.array([6, 9, 6]), source="mnist_6_9.npz",
                        path=Path("/some/folder/mnist_6_9.npz"), sha256="x", class_names={6: "six", 9: "nine"})
    params = {**defaults("07_image_prior"), "fit_probe_steps": 0, "vae_steps": 1000, "n_voxels": 0}
    r = resolved_params(params, prior)
    assert r == {"prior_source": "auto: mnist_6_9.npz (3 images)", "fit_probe_steps": "1,000 (the prior's)",
                 "n_voxels": "all (the map-kind screen; section 4 then screens the count)",
                 "guidance_grid": "1, 2 (screened only if a diffusion decoder wins stage 3)"}
    assert resolved_params({**params, "fit_probe_steps": 300}, prior)["fit_probe_steps"] == "300"
    ch = Chapter("07_image_prior", {})
    ch.params = params
    table = ch.param_table(resolved=r)
    assert table.loc["unpaired prior images", "value"] == "auto: mnist_6_9.npz (3 images)"
    assert table.loc["prior-fit check: probe VAE steps", "value"] == "1,000 (the prior's)"
    assert ch.param_table().loc["prior-fit check: probe VAE steps", "value"] == "0"  # unresolved: the raw value
    assert "folder" not in prior_source_text(prior)
    assert prior_source_text(prior).startswith("The unpaired images are 3 MNIST training digits (2 sixes, 1 nine) read "
                                               "from mnist_6_9.npz; licence: MIT")


def test_leak_sensitivity_retrains_on_each_guarded_set_and_checks_the_published_one(tmp_path, rng):
    from ldm_core.data import write_digit69_mat
    from tests.synthetic_data import make_synthetic_digit69
    from ldm_core.study.prior_runs import run_prior_variants
    from ldm_core.study.prior_study import leak_sensitivity, leak_sensitivity_table
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
    assert np.array_equal(rows[0.9]["recon_test"], final.runs[0].recon_test)  # saved with the results, counted by 08
    assert rows[0.5]["evaluation"]["psnr"]["mean"] == rows[0.5]["test"]["psnr"]["mean"]
    assert rows[0.5]["recon_test"].shape == data.images_test.shape
    assert leak_sensitivity_table(rows).index.tolist() == ["0.5", "0.9 (published)", "0.99"]
    with pytest.raises(ValueError, match="keeps another image set"):
        leak_sensitivity(data, raw, variant, [], published=0.9, max_shift=1, seed=0, n_boot=50, cache_dir=tmp_path,
                         pretrain_images=raw.images)


def test_best_diffusion_pair_takes_the_best_multi_sample_decoder_and_its_single_sample_twin():
    from ldm_core.study.prior_study import best_diffusion_pair

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
