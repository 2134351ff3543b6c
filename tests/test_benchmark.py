"""ldm_core.study.benchmark: the learning-curve extrapolation and the chapter's tables (values computed by hand)."""

import math
import warnings

import numpy as np
import pytest

from ldm_core.study import benchmark
from ldm_core.study.benchmark import gain_per_doubling


def _curve(points):
    return {n: {"psnr": {"mean": y}} for n, y in points.items()}


def test_gain_per_doubling_slope_and_trials_needed_by_hand():
    # +1 dB per doubling: 10 dB at 10 trials, 11 at 20, 12 at 40; 14 dB needs two more doublings -> 160 trials.
    out = gain_per_doubling(_curve({10: 10.0, 20: 11.0, 40: 12.0}), reach=14.0)
    assert out["slope"] == pytest.approx(1.0)
    assert out["trials_needed"] == pytest.approx(160.0)


def test_gain_per_doubling_tiny_slope_is_capped_without_overflow():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow RuntimeWarning would fail the test
        out = gain_per_doubling(_curve({10: 10.0, 20: 10.0 + 1e-9}), reach=20.0)
    assert out["trials_needed"] == pytest.approx(1e9)


@pytest.mark.parametrize("points, reach", [({10: 12.0, 20: 11.0}, 14.0),   # falling
                                           ({10: 10.0, 20: 11.0}, 10.5),   # already reached
                                           ({10: 10.0, 20: 11.0}, None)])  # nothing asked
def test_gain_per_doubling_nan_when_nothing_to_extrapolate(points, reach):
    assert math.isnan(gain_per_doubling(_curve(points), reach=reach)["trials_needed"])


# ----------------------------------------------------------------------------- tables of the benchmark chapter


def test_more_trials_rows_gain_from_the_last_step_by_hand():
    from ldm_core.study.benchmark import more_trials_rows

    def point(v):
        return {m: {"per_image": np.asarray(v, dtype=float)} for m in ("psnr", "ssim", "pixel_r")}

    curves = {"a": {5: point([9, 9, 9, 9]), 10: point([1, 1, 1, 1]), 20: point([2, 3, 2, 3])},
              "b": {10: point([1, 2, 3, 4]), 20: point([2, 1, 4, 3])}}
    curves["one size"] = {20: point([1, 2, 3, 4])}  # no step to measure: no row
    rows = more_trials_rows(curves, n_boot=200)
    assert [(r["model"], r["claim"]) for r in rows] == [("a", "14")] * 3 + [("b", "14")] * 3
    # contract C2: every row names its split, metric and model, and is a proxy (shown, never counted)
    assert all(r["proxy"] is True and r["split"] == "validation" for r in rows)
    assert [r["metric"] for r in rows] == ["psnr", "ssim", "pixel_r"] * 2
    assert "from 10 to 20 trials" in rows[0]["report says"]  # the last step, not the first
    assert "proxy" in rows[0]["report says"]
    assert rows[0]["mean"] == pytest.approx(1.5)  # mean of 2, 3, 2, 3 minus 1
    assert rows[0]["measured mean [95% CI]"].startswith("+1.500") and rows[0]["verdict"] == "confirmed"
    assert rows[3]["mean"] == 0.0 and rows[3]["verdict"] == "inconclusive"


def test_compute_table_means_over_seeds_and_notes():
    from types import SimpleNamespace

    from ldm_core.study.benchmark import compute_table

    def run(train, recon):
        return SimpleNamespace(n_parameters={"total": 12345}, train_time_s=train, recon_test_s=recon, device="cpu")

    models = {"a": SimpleNamespace(runs=[run(10.0, 0.5), run(20.0, 1.5)]),
              "b": SimpleNamespace(runs=[run(None, 0.001)])}
    table = compute_table(models, notes={"b": "cached"})
    assert list(table.index) == ["a", "b"] and table.index.name == "model"
    assert table.loc["a", "parameters"] == "12,345"
    assert table.loc["a", "training per seed (s)"] == "15"
    assert table.loc["a", "reconstructing the test trials (s)"] == "1.0"
    assert table.loc["b", "training per seed (s)"] == "not recorded (cached)"
    assert table.loc["b", "reconstructing the test trials (s)"] == "< 0.01"  # never "0.00"
    assert table.loc["a", "device"] == "CPU"


@pytest.mark.parametrize("seconds, text", [(0.0, "< 0.01"), (0.004, "< 0.01"), (0.39, "0.39"), (2.01, "2.0"),
                                           (116.4, "116"), (1234.0, "1,234"), (None, "not recorded"),
                                           (float("nan"), "not recorded")])
def test_format_seconds(seconds, text):
    from ldm_core.study.benchmark import format_seconds

    assert format_seconds(seconds) == text


@pytest.mark.parametrize("device, text", [("cpu (1 threads)", "CPU, 1 thread"),
                                          ("cpu (2 threads)", "CPU, 2 threads"), ("cpu", "CPU"),
                                          ("cuda (NVIDIA H200)", "GPU (NVIDIA H200)"), ("cuda:1", "GPU"),
                                          ("mps", "Apple GPU (MPS)"), ("tpu v5", "tpu v5")])
def test_device_label(device, text):
    from ldm_core.study.benchmark import device_label

    assert device_label(device) == text


# ----------------------------------------------------------------------------- names, perception, test-set use


def test_prior_model_names_reads_chapter_07_and_falls_back_on_its_variant():
    from ldm_core.study.benchmark import prior_model_names

    x07 = {"model_names": {"fit": "prior VAE + ridge map (diffusion off), 72 trials", "all": "…, 90 trials"},
           "selected_is_ldm": False, "selected_variant": {"decode": {"mode": "refine"}}}
    assert prior_model_names(x07, n_fit=3, n_all=4) == {"fit": "prior VAE + ridge map (diffusion off), 72 trials",
                                                        "all": "…, 90 trials", "is_ldm": False,
                                                        "what": "prior VAE + ridge map (diffusion off)"}
    old = {"selected_on_validation": "direct (no diffusion)",
           "selected_variant": {"map": {"kind": "ridge", "n_voxels": 400}, "decode": {"mode": "direct"}}}
    names = prior_model_names(old, n_fit=85, n_all=107)  # counts from the data, not digit69's
    assert names == {"fit": "prior VAE + ridge map, 400 voxels (diffusion off), 85 trials",
                     "all": "prior VAE + ridge map, 400 voxels (diffusion off), 107 trials", "is_ldm": False,
                     "what": "prior VAE + ridge map, 400 voxels (diffusion off)"}
    old["selected_variant"] = {"map": {"kind": "pls", "n_voxels": None}, "decode": {"mode": "refine"}}
    old["selected_on_validation"] = "refine, strength 0.3"
    names = prior_model_names(old, n_fit=5, n_all=6)
    assert names["is_ldm"] and names["fit"] == "prior LDM (refine, strength 0.3), pls map, all voxels, 5 trials"
    assert "LDM" not in prior_model_names({}, n_fit=1, n_all=2)["fit"]  # nothing known: direct, not an LDM


def test_with_perception_adds_the_three_metrics_per_model():
    from ldm_core.study.benchmark import with_perception

    seen = []

    class Perception:  # prior_study.Perception's interface
        @staticmethod
        def scores(recons, targets, labels, *, n_boot, seed):
            seen.append((np.shape(recons), n_boot, seed))
            v = float(np.mean(recons))
            return {m: {"mean": v, "ci_low": v, "ci_high": v} for m in ("digit_acc", "feature_id2", "kid_digit")}

    scores = {"a": {"psnr": {"mean": 1.0}}, "b": {"psnr": {"mean": 2.0}}}
    recons = {"a": np.ones((2, 3, 4, 4)), "c": np.zeros((3, 4, 4))}
    out = with_perception(scores, recons, np.zeros((3, 4, 4)), np.array([1, 2, 1]), perception=Perception(), n_boot=7)
    assert list(out) == ["a", "b", "c"]
    assert out["a"]["psnr"]["mean"] == 1.0 and out["a"]["digit_acc"]["mean"] == 1.0
    assert "digit_acc" not in out["b"] and out["c"]["kid_digit"]["mean"] == 0.0
    assert seen == [((2, 3, 4, 4), 7, 0), ((3, 4, 4), 7, 0)]
    assert "digit_acc" not in scores["a"]  # the input is not changed


def test_with_perception_through_chapter_07s_classifier(tmp_path):
    """The real path: prior_study.perception_model's classifier, the three metrics with CIs beside psnr."""
    from types import SimpleNamespace

    from ldm_core.study import prior_study
    from ldm_core.study.benchmark import with_perception

    rng = np.random.default_rng(0)
    S = 12
    yy, xx = np.mgrid[:S, :S]

    def shape(c, n):  # class 6: a bright left half, class 9: a bright right half, with noise
        base = (xx < S // 2) if c == 6 else (xx >= S // 2)
        return np.clip(base[None] * 0.8 + rng.uniform(0, 0.2, (n, S, S)), 0, 1).astype(np.float32)

    images = np.concatenate([shape(6, 40), shape(9, 40)])
    labels = np.array([6] * 40 + [9] * 40)
    prior = SimpleNamespace(images=images, labels=labels, class_names={6: "six", 9: "nine"})  # as PriorImages
    data = SimpleNamespace(class_names={1: "six", 2: "nine"})
    perception = prior_study.perception_model(prior, data, seed=0, cache_dir=tmp_path)
    assert perception.available
    targets, codes = np.concatenate([shape(6, 3), shape(9, 3)]), np.array([1, 1, 1, 2, 2, 2])
    out = with_perception({"copy": {"psnr": {"mean": 99.0}}}, {"copy": targets, "flipped": targets[::-1]}, targets,
                          codes, perception=perception, n_boot=50)
    assert out["copy"]["psnr"]["mean"] == 99.0
    assert out["copy"]["digit_acc"]["mean"] == 1.0 and out["flipped"]["digit_acc"]["mean"] == 0.0
    for m in ("digit_acc", "feature_id2", "kid_digit"):
        assert {"mean", "ci_low", "ci_high"} <= set(out["copy"][m])


def test_ceiling_note_counts_models_at_the_ceiling():
    from ldm_core.study.benchmark import ceiling_note

    s = {"a": {"digit_acc": {"mean": 1.0}}, "b": {"digit_acc": {"mean": 0.9}},
         "c": {"digit_acc": {"mean": float("nan")}}, "d": {"psnr": {"mean": 3.0}}, "e": {"digit_acc": {"mean": 1.0}}}
    assert ceiling_note(s) == {"n_at": 2, "n": 3, "at": ["a", "e"]}
    assert ceiling_note(s, exclude=["e"]) == {"n_at": 1, "n": 2, "at": ["a"]}


def test_test_set_use_counts_distinct_decoders_and_references():
    from ldm_core.study.benchmark import comparison_roles, is_reference, test_set_use

    a, b, c = (np.full((2, 4, 4), v, dtype=np.float32) for v in (0.1, 0.2, 0.3))
    chapters = {
        "00": {"ridge": a, "uniform_noise": b, "class_mean_reference": c},
        "07": {"m@seed0": b, "m@seed1": c, "ridge (90 trials)": a, "VAE round trip, base": a},
        "08": {"m copy": np.stack([b, c]), "spatial@seed0": c, "prior ceiling": b},  # seeds stacked: the same model
    }
    table, counts = test_set_use(chapters)
    # decoders: ridge (00), m (07; its copy in 08 has the same reconstructions), spatial (08) -> 3 distinct
    assert counts == {"decoders": 3, "references": 3, "unstored": {}, "per_chapter": {"00": 1, "07": 1, "08": 1}}
    assert table.loc["07", "decoders scored on the test trials"] == 2
    assert table.loc["07", "of them new (not in an earlier chapter)"] == 1
    assert table.loc["all chapters (distinct)", "decoders scored on the test trials"] == 3
    assert is_reference("spatial VAE round trip (ceiling)") and is_reference("train_mean@seed0")
    assert not is_reference("ridge (90 trials)")
    # seeds sort as numbers: seed10 after seed2, like a stacked (K, N, S, S) array of seeds 2 and 10
    _, by_key = test_set_use({"a": {"x@seed10": a, "x@seed2": b}, "b": {"y": np.stack([b, a])}})
    assert by_key["decoders"] == 1
    roles = comparison_roles(["m", "base", "uniform_noise", "other"], planned=["m", "base"])
    assert roles == {"m": {"comparison": "planned"}, "base": {"comparison": "planned"},
                     "uniform_noise": {"comparison": "reference"}, "other": {"comparison": "exploratory"}}


def test_test_set_use_adds_the_models_a_chapter_scores_without_keeping_them():
    from ldm_core.study.benchmark import test_set_use

    a, b, c = (np.full((2, 4, 4), v, dtype=np.float32) for v in (0.1, 0.2, 0.3))
    chapters = {"00": {"ridge": a, "train_mean": c}, "07": {"m@seed0": b, "ridge (90 trials)": a}}
    # chapter 07 says it scored 4 models and keeps 2 decoders: 2 more (e.g. its leakage-guard settings), both new
    table, counts = test_set_use(chapters, declared={"07": 4}, labels={"00": "0. Data", "07": "7. Prior"})
    assert counts == {"decoders": 4, "references": 1, "unstored": {"07": 2}, "per_chapter": {"00": 1, "07": 3}}
    assert list(table.index) == ["0. Data", "7. Prior", "all chapters (distinct)"]
    assert table.loc["7. Prior", "decoders scored on the test trials"] == 4
    assert table.loc["7. Prior", "of them new (not in an earlier chapter)"] == 3
    assert table.loc["all chapters (distinct)", "decoders scored on the test trials"] == 4
    # float round-off (a baseline refitted by another chapter) does not make another model
    noisy = {"00": {"ridge": a}, "08": {"ridge (90 trials)": a + np.float32(3e-7), "other": a + np.float32(1e-3)}}
    assert test_set_use(noisy)[1]["decoders"] == 2
    # a chapter that keeps every model it declares adds nothing
    assert test_set_use(chapters, declared={"07": 2})[1]["decoders"] == 2
    with pytest.raises(ValueError, match=r"declared counts must be >= 0 and name chapters of the table"):
        test_set_use(chapters, declared={"05": 3})
    with pytest.raises(ValueError, match=r"declared counts must be >= 0"):
        test_set_use(chapters, declared={"07": -1})


def test_chapter_label_cuts_long_titles_before_the_colon():
    from ldm_core.study.benchmark import chapter_label

    assert chapter_label("08_benchmarks") == "8. Benchmarks"
    assert chapter_label("02_unet_fix") == "2. Phase 1.1: a real U-Net"  # short: the whole title
    assert chapter_label("99_no_such_chapter") == "99_no_such_chapter"


def test_grid_edges_finds_a_best_cell_on_the_rim():
    from ldm_core.study.benchmark import grid_edges

    axes = ([1e-5, 1e-4, 1e-3], [2, 4, 8], [64, 128, 256])
    assert grid_edges((1e-3, 8, 128), axes) == [0, 1]  # the review's week-1 winner: a corner in lr and batch
    assert grid_edges((1e-4, 4, 128), axes) == []
    assert grid_edges((1e-3, 16, 512), ([1e-3], [16], [512])) == [0, 1, 2]  # one value per axis brackets nothing
    with pytest.raises(ValueError, match="best has 2 values but there are 3 axes"):
        grid_edges((1e-3, 8), axes)
    with pytest.raises(ValueError, match=r"value 3 of axis 1 is not on that axis \[2, 4, 8\]"):
        grid_edges((1e-3, 3, 64), axes)


def test_sample_spread_by_hand():
    from ldm_core.study.benchmark import NEGLIGIBLE_SPREAD, sample_spread

    # trial 0: samples 0 and 1 everywhere -> per-pixel std 0.5; trial 1: identical samples -> 0
    samples = np.stack([np.stack([np.zeros((2, 2)), np.ones((2, 2))]), np.full((2, 2, 2), 0.3)])  # (2, 2, 2, 2)
    targets = np.stack([np.zeros((2, 2)), np.full((2, 2), 0.5)])  # per-pixel std across trials: 0.25
    out = sample_spread(samples, targets, n_boot=200)
    assert out["per_trial"] == pytest.approx([0.5, 0.0])
    assert out["mean"] == pytest.approx(0.25) and out["between_trials"] == pytest.approx(0.25)
    assert out["share"] == pytest.approx(1.0) and out["negligible"] is False
    assert (out["n_samples"], out["n_trials"]) == (2, 2)
    assert 0.0 <= out["ci_low"] <= out["mean"] <= out["ci_high"] <= 0.5
    still = sample_spread(np.repeat(targets[:, None], 3, axis=1), targets, n_boot=50)  # every sample the same
    assert still["mean"] == 0.0 and still["negligible"] is True and NEGLIGIBLE_SPREAD > 0
    with pytest.raises(ValueError, match=r"samples must have shape \(N, K, S, S\) with K >= 2"):
        sample_spread(samples[:, :1], targets)
    with pytest.raises(ValueError, match=r"targets must have shape \(2, 2, 2\)"):
        sample_spread(samples, targets[:1])


def test_spatial_samples_passes_the_runs_sampling_and_keeps_every_sample():
    from ldm_core.study.benchmark import spatial_samples

    calls = []

    class Model:
        def reconstruct(self, fmri, **kw):
            calls.append(kw)
            return np.zeros((len(fmri), kw["n_samples"], 3, 3), dtype=np.float32)

    out = spatial_samples(Model(), np.zeros((4, 5)), n_samples=6, seed=2,
                          sample_cfg={"steps": 20, "n_samples": 8, "guidance": 1.5, "sampler": None})
    assert out.shape == (4, 6, 3, 3)
    assert calls == [{"n_samples": 6, "average": False, "seed": 2, "steps": 20, "guidance": 1.5}]


def test_stage_steps_sums_the_optimiser_steps_of_one_stage():
    from ldm_core.study.benchmark import stage_steps

    history = {"stage": ["vae", "vae", "diffusion", "diffusion", "diffusion"], "steps": [5, 5, 5, 5, 4]}
    assert stage_steps(history) == 14
    assert stage_steps(history, "vae") == 10
    assert stage_steps({}) == 0


def test_chapter01_x0_errors_reads_what_chapter_01_measured():
    from ldm_core.study.benchmark import chapter01_x0_errors

    def rows(lo, hi):
        return [{"t": 20, "x0 error, model": lo, "x0 error, Gaussian denoiser": 0.01},
                {"t": 999, "x0 error, model": hi, "x0 error, Gaussian denoiser": 1.04}]

    m01 = {"params": {}, "extra": {
        "x0_error_val": {"all fixed": rows(0.01, 3997.0), "all fixed, 200 epochs": rows(0.01, 841.0),
                         "all fixed, predicting x0": rows(0.30, 0.52)},
        "summary": {"all fixed": {"ldm_cfg": {"prediction": "eps", "schedule": "linear"},
                                  "train_cfg": {"epochs": 50, "batch_size": 4}}}}}
    out = chapter01_x0_errors(m01, n_fit=72)
    assert (out["t_low"], out["t_high"]) == (20, 999)
    full = out["models"]["all fixed"]
    assert full["prediction"] == "eps" and full["schedule"] == "linear"
    assert full["optimiser_steps"] == 50 * 18  # 72 trials in batches of 4
    assert full["x0_error"][999] == 3997.0 and full["x0_error_gaussian"][999] == 1.04
    assert out["models"]["all fixed, predicting x0"]["prediction"] == "x0"  # not in the summary: read off its name
    assert out["models"]["all fixed, 200 epochs"]["optimiser_steps"] is None
    # what chapter 01 records itself wins over what is inferred
    m01["extra"]["x0_error_models"] = {"all fixed, 200 epochs": {"prediction": "eps", "optimiser_steps": 3600,
                                                                 "schedule": "linear"}}
    longer = chapter01_x0_errors(m01, n_fit=72)["models"]["all fixed, 200 epochs"]
    assert (longer["optimiser_steps"], longer["schedule"]) == (3600, "linear")
    assert chapter01_x0_errors({"extra": {}}) == {}


def test_comparisons_table_marks_the_planned_comparison():
    from ldm_core.study.benchmark import EXPLORATORY, PLANNED, comparisons_table
    from ldm_core.study.claims import PAIRED_VERDICTS

    def comp(m):
        return {"psnr": {"mean": m, "ci_low": m - 1, "ci_high": m + 1, "p_wilcoxon": 0.5}}

    t = comparisons_table({"model − baseline": comp(0.5)}, {"a − b": comp(2.0), "c − d": comp(-3.0)})
    assert list(t["planned or exploratory"]) == [PLANNED, EXPLORATORY, EXPLORATORY]
    assert list(t.index.get_level_values(0)) == ["model − baseline", "a − b", "c − d"]
    ahead, behind, neither = PAIRED_VERDICTS  # a paired comparison is not a target: no "met" or "missed"
    assert list(t["verdict"]) == [neither, ahead, behind]
    with pytest.raises(ValueError, match=r"comparison\(s\) \['a − b'\] are both planned and exploratory"):
        comparisons_table({"a − b": comp(1.0)}, {"a − b": comp(1.0)})
    with pytest.raises(ValueError, match="needs at least one comparison"):
        comparisons_table({}, {})


def test_curve_sizes_keeps_what_the_data_allow(tmp_path):
    from types import SimpleNamespace

    from ldm_core.study.benchmark import curve_sizes

    data = SimpleNamespace(images_fit=np.zeros((30, 2, 2)), labels_fit=np.array([1, 2] * 15))
    assert curve_sizes([10, 20, 10], data) == ([10, 20], "")
    sizes, note = curve_sizes([1, 10, 30, 45], data)
    assert sizes == [10]
    assert note == ("Sizes [1, 30, 45] are outside [2, 29] for this dataset (2 classes, 30 fitting trials) and are "
                    "left out.")


def test_decoder_samples_mean_follows_the_decoders_averaging():
    from types import SimpleNamespace

    from ldm_core.study.benchmark import decoder_samples

    codes = np.arange(2 * 3 * 1, dtype=float).reshape(2, 3, 1)  # 2 trials, 3 samples, 1-d codes

    class Prior:
        @staticmethod
        def decode(z):  # a code c decodes to an image full of c**2 (non-linear: mean image != image of mean code)
            return np.repeat(np.repeat(np.asarray(z, float)[:, :, None] ** 2, 2, axis=1), 2, axis=2)

    dec = SimpleNamespace(prior=Prior(), sample_codes=lambda fmri, decode, seed: codes,
                          predicted_codes=lambda fmri: np.array([[1.0], [2.0]]))
    out = decoder_samples(dec, np.zeros((2, 5)), SimpleNamespace(mode="refine", average="image"), n_show=2)
    assert out["samples"].shape == (2, 2, 2, 2)
    assert out["output"][0, 0, 0] == pytest.approx((0 + 1 + 4) / 3)  # mean of the decoded samples
    assert out["direct"][1, 0, 0] == 4.0
    out = decoder_samples(dec, np.zeros((2, 5)), SimpleNamespace(mode="refine", average="latent"), n_show=5)
    assert out["samples"].shape == (2, 3, 2, 2)  # at most the samples drawn
    assert out["output"][0, 0, 0] == pytest.approx(1.0)  # the decoded mean code (mean code 1)
    with pytest.raises(ValueError, match="needs a diffusion decoding"):
        decoder_samples(dec, np.zeros((2, 5)), SimpleNamespace(mode="direct", average="image"), n_show=2)
    with pytest.raises(ValueError, match="n_show must be >= 1"):
        decoder_samples(dec, np.zeros((2, 5)), SimpleNamespace(mode="noise", average="image"), n_show=0)


def test_sampling_steps_scores_what_the_model_returns(tmp_path):
    from ldm_core.study.benchmark import sampling_steps, sampling_steps_table, steps_range
    from ldm_core.metrics import evaluate
    from tests.train_helpers import small_study_data

    data = small_study_data(tmp_path)
    calls = []

    class Model:
        def reconstruct(self, fmri, *, steps, seed=None, **kw):  # a duplicate "steps" would be a TypeError
            calls.append((len(fmri), steps, kw))
            return np.full((len(fmri), 28, 28), min(steps, 10) / 10, dtype=np.float32)

    raw = sampling_steps(Model(), data, [1, 10], sample_cfg={"steps": 50, "guidance": 2.0}, n_boot=50)
    assert calls[0][:2] == (1, 2)  # the warm-up
    assert all(kw == {"guidance": 2.0} for _, _, kw in calls[1:])
    assert list(raw) == [1, 10]
    want = {s: evaluate(np.full_like(data.images_val, min(s, 10) / 10), data.images_val, data.labels_val, n_boot=50,
                        n_perm=0) for s in (1, 10)}
    for s in (1, 10):
        assert raw[s]["psnr"]["mean"] == pytest.approx(want[s]["psnr"]["mean"])
        assert raw[s]["seconds"] >= 0
    assert steps_range(raw) == pytest.approx(abs(want[10]["psnr"]["mean"] - want[1]["psnr"]["mean"]))
    table = sampling_steps_table(raw, n_test=len(data.fmri_test))
    assert list(table.index) == [1, 10]
    assert table.loc[10, "validation PSNR (dB)"] == f"{want[10]['psnr']['mean']:.2f}"  # dB: 2 decimals
    assert table.loc[10, "validation SSIM"] == f"{want[10]['ssim']['mean']:.3f}"
    assert all(isinstance(t, str) and t for t in table[f"reconstructing {len(data.fmri_test)} test trials (s)"])


def test_week1_sweep_builds_the_grid_and_reads_validation(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from ldm_core.study import experiment
    from ldm_core.study.benchmark import week1_sweep
    from ldm_core.study.experiment import make_ldm_config

    seen = {}

    def fake_run_variants(variants, data, *, seeds, **kw):
        seen.update(variants=variants, seeds=seeds, kw=kw)
        return {n: SimpleNamespace(seed_mean=lambda m, s, v=v: (v.train_cfg["lr"] * v.ldm_cfg.encoder_dim, 0.0))
                for n, v in variants.items()}

    monkeypatch.setattr(experiment, "run_variants", fake_run_variants)
    scores = week1_sweep("data", make_ldm_config("fixed"), {"epochs": 3}, lrs=[1e-3, 1e-2], batch_sizes=[8],
                         encoder_dims=[16, 32], sample_cfg={"steps": 5}, select_metric="ssim", cache_dir=tmp_path)
    assert set(scores) == {(1e-3, 8, 16), (1e-2, 8, 16), (1e-3, 8, 32), (1e-2, 8, 32)}
    assert scores[(1e-2, 8, 32)] == pytest.approx(0.32)
    v = seen["variants"]["lr=0.01, batch=8, dim=32"]
    assert v.train_cfg == {"epochs": 3, "lr": 1e-2, "batch_size": 8} and v.sample_cfg["steps"] == 5
    assert seen["seeds"] == [0] and seen["kw"] == {"cache_dir": tmp_path}


def test_samples_figure_rows_in_order(monkeypatch):
    import ldm_core.study.plots
    from ldm_core.study.benchmark import samples_figure

    seen = {}

    def fake_grid(rows, **kw):
        seen.update(rows=rows, kw=kw)

    monkeypatch.setattr(ldm_core.study.plots, "image_grid", fake_grid)
    samples = np.stack([np.zeros((3, 4, 4)), np.ones((3, 4, 4))], axis=1)  # (N=3, k=2, 4, 4)
    targets, labels = np.full((3, 4, 4), 0.5), np.array([1, 2, 1])
    samples_figure(samples, targets, labels, class_names={1: "a", 2: "b"})
    assert list(seen["rows"]) == ["target", "sample 1", "sample 2", "mean of 2", "std of the samples"]
    assert seen["rows"]["mean of 2"].max() == 0.5 and seen["rows"]["std of the samples"].min() == 0.5
    assert seen["kw"]["colour_rows"] == {"std of the samples": "magma"}
    assert seen["kw"]["class_names"] == {1: "a", 2: "b"}
    samples_figure(samples, targets, labels, mean=np.full((3, 4, 4), 0.9), mean_label="output (mean of 16)",
                   beside={"direct (diffusion off)": targets})
    assert list(seen["rows"]) == ["target", "sample 1", "sample 2", "output (mean of 16)", "direct (diffusion off)",
                                  "std of the samples"]
    assert seen["rows"]["output (mean of 16)"].min() == 0.9


def test_eps_budget_rows_reads_chapter_07s_rows_of_one_schedule_by_budget():
    row = {"difference": {"mean": -0.25, "ci_low": -0.46, "ci_high": -0.03}, "variance_ratio": 42.2, "runs_away": True}
    findings = {"rows": {"eps, linear schedule, 8,000 steps": {**row, "runs_away": False},
                         "eps, linear schedule, 500 steps": row,
                         "eps, cosine schedule, 500 steps": row,
                         "eps, linear schedule, bad": row}}
    rows = benchmark.eps_budget_rows(findings, schedule="linear")
    assert list(rows) == [500, 8000]
    assert rows[500]["runs_away"] and not rows[8000]["runs_away"]
    assert benchmark.eps_budget_rows({}, schedule="linear") == {}
    assert list(benchmark.eps_budget_rows(findings, schedule="cosine")) == [500]
