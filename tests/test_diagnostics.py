import numpy as np
import pytest
import torch

from ldm_core.study.diagnostics import (LADDER_FIXES, defect_ladder, leave_one_out_drops, neighbour_correlation,
                                  neighbour_correlation_curve, run_ladder, sampler_comparison, sampling_trajectory,
                                  shuffled_fmri_check, x0_error_by_timestep)
from ldm_core.models.schedule import NoiseSchedule
from ldm_core.pipeline import BrainLDM
from ldm_core.study.sampler_check import GaussianOracle
from tests.train_helpers import small_study_data, tiny_cfg


@pytest.fixture(autouse=True)
def _one_thread():
    """Small tensor work: one thread is fastest, and on a shared machine several threads spin against each other."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_neighbour_correlation_known_answers():
    rng = np.random.default_rng(0)
    shared = rng.standard_normal((200, 1))
    same = np.repeat(shared, 10, axis=1)  # every voxel identical: r = 1 for every pair
    out = neighbour_correlation(same, n_random=100)
    assert out["adjacent"] == pytest.approx(1.0) and out["random"] == pytest.approx(1.0)
    assert (out["n_trials"], out["n_voxels"], out["lag"]) == (200, 10, 1)
    # pairs of identical voxels (0=1, 2=3, ...), independent across pairs: adjacent pairs alternate r = 1 and ~0
    pairs = np.repeat(rng.standard_normal((5000, 50)), 2, axis=1)
    out = neighbour_correlation(pairs, n_random=5000, seed=1)
    assert out["adjacent"] == pytest.approx(50 / 99, abs=0.02)  # 50 of the 99 adjacent pairs are identical
    assert abs(out["random"]) < 0.05


def test_neighbour_correlation_skips_constant_voxels():
    rng = np.random.default_rng(1)
    x = np.repeat(rng.standard_normal((50, 1)), 4, axis=1)
    x[:, 3] = 2.0  # constant voxel: left out, not a NaN result
    assert neighbour_correlation(x, n_random=10)["adjacent"] == pytest.approx(1.0)


def test_neighbour_correlation_refuses_bad_input():
    with pytest.raises(ValueError, match="shape \\(N, V\\) with N >= 3"):
        neighbour_correlation(np.zeros(5))
    with pytest.raises(ValueError, match=r"lag must be in \[1, 3\]"):
        neighbour_correlation(np.ones((4, 4)), lag=4)
    with pytest.raises(ValueError, match="n_random must be >= 1"):
        neighbour_correlation(np.ones((4, 4)), n_random=0)


# neighbour_correlation_curve


def test_neighbour_correlation_curve_grid_and_extra_lags():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((20, 50))
    curve = neighbour_correlation_curve(x, max_lag=100, n_lags=5, extra_lags=[7, 500])
    assert list(curve) == sorted(curve) and curve[1] == neighbour_correlation(x, lag=1)
    assert {7, 49} <= set(curve) and max(curve) == 49  # capped at V - 1
    with pytest.raises(ValueError, match="max_lag and n_lags must be >= 1"):
        neighbour_correlation_curve(x, max_lag=0)


# the defect ladder


def test_defect_ladder_fixes_one_defect_per_rung():
    lad = defect_ladder(epochs=3, batch_size=4, lr=1e-4, vae_epochs=2, unet_channels=[16, 32], steps=7,
                        longer_epochs=12)
    assert list(lad.ladder) == ["original", "+ condition injected", "+ VAE decoder trained", "+ DDIM sampler", lad.full]
    v = lad.ladder
    assert not v["original"].ldm_cfg.original_unet_uses_embedding and v["+ condition injected"].ldm_cfg.original_unet_uses_embedding
    assert v["+ condition injected"].train_cfg["stages"] == "original" and v["+ VAE decoder trained"].train_cfg["stages"] == "end_to_end"
    assert v["+ VAE decoder trained"].sampling["sampler"] == "original" and v["+ DDIM sampler"].sampling["sampler"] == "ddim"
    assert v[lad.full].ldm_cfg.unet == "unet" and v[lad.full].ldm_cfg.unet_channels == (16, 32)
    for variant in lad.variants.values():  # the original's budget, its eps-prediction, 4x7x7 VAE and step count
        assert (variant.train_cfg["epochs"], variant.train_cfg["batch_size"], variant.train_cfg["lr"]) == (3, 4, 1e-4)
        assert variant.ldm_cfg.prediction == "eps" and variant.ldm_cfg.vae == "original"
        assert variant.sampling["steps"] == 7
    loo = lad.leave_one_out
    assert list(lad.removed.values()) == list(LADDER_FIXES)
    assert loo["all fixed − condition"].ldm_cfg.conditioning == "none"
    assert loo["all fixed − VAE decoder training"].train_cfg["stages"] == "original"
    assert loo["all fixed − DDIM (re-noising sampler)"].sampling["sampler"] == "original"
    assert loo["all fixed − skip U-Net"] == v["+ DDIM sampler"]  # one variant under two names: one run
    full = v[lad.full]
    for name, variant in loo.items():  # each differs from the fully fixed model in one of config, training, sampling
        differs = [variant.ldm_cfg != full.ldm_cfg, variant.train_cfg != full.train_cfg, variant.sampling != full.sampling]
        assert sum(differs) == 1 or name == "all fixed − skip U-Net"
    longer, x0 = lad.repairs.values()
    assert longer.train_cfg == {**full.train_cfg, "epochs": 12} and longer.ldm_cfg == full.ldm_cfg
    assert x0.ldm_cfg.prediction == "x0" and x0.train_cfg == full.train_cfg and x0.sampling == full.sampling
    with pytest.raises(ValueError, match="parameter 'longer_epochs' must exceed 'epochs'"):
        defect_ladder(epochs=3, batch_size=4, lr=1e-4, vae_epochs=2, unet_channels=[16, 32], steps=7, longer_epochs=3)


@pytest.fixture
def small_data(tmp_path):
    return small_study_data(tmp_path)


def test_run_ladder_keeps_the_first_seed_models_and_drops_compare_with_the_full_model(small_data, tmp_path):
    lad = defect_ladder(epochs=1, batch_size=8, lr=1e-4, vae_epochs=1, unet_channels=[8, 16], steps=2,
                        longer_epochs=2)
    with pytest.raises(KeyError, match="keep names unknown variant"):
        run_ladder(lad, small_data, seeds=[0], keep=["nope"])
    out = run_ladder(lad, small_data, seeds=[0], keep=["original", lad.full], cache_dir=tmp_path / "c", n_boot=50)
    assert list(out.results) == list(lad.variants)
    assert list(out.models) == ["original", lad.full, *lad.repairs]
    np.testing.assert_array_equal(  # the kept model is the one the run reconstructed with
        out.models[lad.full].reconstruct(small_data.fmri_test, steps=2, seed=0, sampler="ddim"),
        out.results[lad.full].runs[0].recon_test)
    drops = leave_one_out_drops(out.results, lad, n_boot=50)
    assert list(drops) == list(LADDER_FIXES)
    full = np.array(out.results[lad.full].pooled("pixel_r", "val")["per_image"])
    loo = np.array(out.results["all fixed − condition"].pooled("pixel_r", "val")["per_image"])
    assert drops["condition"]["mean"] == pytest.approx(np.nanmean(full - loo))
    check = shuffled_fmri_check(out.models[lad.full], small_data.fmri_val, small_data.images_val, steps=2)
    assert set(check) == {"pixel r, own fMRI", "pixel r, shuffled fMRI", "mean |difference| of images"}
    assert shuffled_fmri_check(out.models["original"], small_data.fmri_val, small_data.images_val,
                               steps=2)["mean |difference| of images"] == 0.0  # the original ignores its condition
    with pytest.raises(ValueError, match="at least 2 trials"):
        shuffled_fmri_check(out.models["original"], small_data.fmri_val[:1], small_data.images_val[:1], steps=2)


# denoiser and sampler probes, against the exact denoiser of Gaussian latents


class GaussianLatentModel:
    """A BrainLDM stand-in whose latents are its 12x12 "images" and whose denoiser is the exact Gaussian one.

    ``error`` is added to every output (eps or x0 units), so an imperfect denoiser of known error can be probed.
    """

    def __init__(self, mean, var, *, prediction="eps", error=0.0):
        self.schedule = NoiseSchedule(prediction=prediction)
        self.oracle = GaussianOracle(torch.as_tensor(mean), torch.diag(torch.as_tensor(var)), self.schedule)
        self.latent_shape, self.device, self.error = (1, 12, 12), torch.device("cpu"), error

    def eval(self):
        return self

    def encode_images(self, x, sample=False):
        return x.float()  # (B, 1, 12, 12): the image is its own latent

    def decode_latents(self, z):
        return z

    def encode_fmri(self, x):
        return x[:, None, :]

    def predict(self, x_t, t, cond, guidance=1.0):
        return self.oracle(x_t, t) + self.error


MEAN = np.tile([0.5, -0.2, 0.8, 0.4], 36)  # (144,): 12 x 12 latents
VAR = np.tile([0.3, 0.5, 0.7, 0.4], 36)  # variances about those of chapter 01's latents


def _gaussian_images(n, seed):
    rng = np.random.default_rng(seed)
    return (MEAN + np.sqrt(VAR) * rng.standard_normal((n, 144))).reshape(n, 12, 12).astype(np.float32)


def test_x0_error_of_the_exact_denoiser_is_the_reference_and_an_eps_error_is_amplified_by_s_over_a():
    images, ref = _gaussian_images(400, 0), _gaussian_images(4000, 1)
    fmri = np.zeros((400, 3), np.float32)
    ts = [10, 500, 999]
    fitted = (ref.reshape(-1, 144).mean(0), ref.reshape(-1, 144).var(0, ddof=1))
    exact = x0_error_by_timestep(GaussianLatentModel(*fitted), images, fmri, timesteps=ts, reference_images=ref)
    assert list(exact.index) == ts
    np.testing.assert_allclose(exact["x0 error, model"], exact["x0 error, Gaussian denoiser"], rtol=1e-3)
    assert exact.loc[999, "x0 error, Gaussian denoiser"] == pytest.approx(1.0, abs=0.15)  # predicts the mean
    assert exact.loc[999, "eps error, Gaussian denoiser"] < 1e-3
    delta = 0.05
    off = x0_error_by_timestep(GaussianLatentModel(*fitted, error=delta), images, fmri, timesteps=ts,
                               reference_images=ref)
    s_over_a = np.sqrt(1 - off["sqrt(abar_t)"] ** 2) / off["sqrt(abar_t)"]
    spread = images.reshape(-1, 144).var(0, ddof=1).mean()
    expected = exact["x0 error, model"] + (s_over_a * delta) ** 2 / spread  # bias: cross term ~ 0
    np.testing.assert_allclose(off["x0 error, model"], expected, rtol=0.05)
    assert off.loc[999, "x0 error, model"] > 100 * off.loc[999, "x0 error, Gaussian denoiser"]  # 157^2 0.05^2 / 0.47
    np.testing.assert_allclose(off["eps error, model"], exact["eps error, model"] + delta**2, rtol=0.05, atol=1e-6)
    with pytest.raises(ValueError, match=r"timesteps must lie in \[0, 1000\)"):
        x0_error_by_timestep(GaussianLatentModel(*fitted), images, fmri, timesteps=[1000], reference_images=ref)
    with pytest.raises(ValueError, match="n_repeats must be >= 1"):
        x0_error_by_timestep(GaussianLatentModel(*fitted), images, fmri, timesteps=ts, reference_images=ref, n_repeats=0)
    with pytest.raises(ValueError, match=">= 2 images"):
        x0_error_by_timestep(GaussianLatentModel(*fitted), images[:1], fmri[:1], timesteps=ts, reference_images=ref)


def test_sampler_comparison_with_the_exact_denoiser_matches_the_closed_form():
    images, ref = _gaussian_images(500, 2), _gaussian_images(2000, 3)
    fmri = np.zeros((500, 3), np.float32)
    model = GaussianLatentModel(ref.reshape(-1, 144).mean(0), ref.reshape(-1, 144).var(0, ddof=1))
    table = sampler_comparison({"exact": model}, fmri, images, samplers=("ddim", "original"), steps=50,
                               reference_images=ref)
    assert list(table.index) == [("exact", "ddim"), ("exact", "original")]
    out = table.loc["exact"].to_dict(orient="index")
    for s in ("ddim", "original"):  # Monte Carlo variance ratio within sampling error (144 components, 500 draws)
        assert out[s]["latent variance ratio"] == pytest.approx(out[s]["latent variance ratio, perfect Gaussian denoiser"],
                                                                rel=0.05)
    assert 0.85 < out["ddim"]["latent variance ratio, perfect Gaussian denoiser"] < 1.0  # DDIM keeps the spread
    assert 0.4 < out["original"]["latent variance ratio, perfect Gaussian denoiser"] < 0.5  # re-noising halves it
    assert out["original"]["r with the training-mean image"] > out["ddim"]["r with the training-mean image"]


def test_sampling_trajectory_tracks_the_forward_process_and_is_what_reconstruct_returns():
    images = _gaussian_images(1000, 4)
    model = GaussianLatentModel(images.reshape(-1, 144).mean(0), images.reshape(-1, 144).var(0, ddof=1))
    tr = sampling_trajectory(model, np.zeros((1000, 3), np.float32), sampler="ddim", steps=100, images=images)
    assert tr["t"][0] == 999 and tr["t"][-1] == 0 and len(tr["x_t_rms"]) == len(tr["forward_rms"]) == 100
    np.testing.assert_allclose(tr["x_t_rms"], tr["forward_rms"], rtol=0.05)  # an exact denoiser stays on the path
    assert tr["latent_rms"] == pytest.approx(tr["data_rms"], rel=0.05)
    ldm = BrainLDM(tiny_cfg("fixed"), n_voxels=12)
    fmri = np.random.default_rng(0).standard_normal((3, 12)).astype(np.float32)
    for sampler in ("ddim", "original"):
        np.testing.assert_array_equal(sampling_trajectory(ldm, fmri, sampler=sampler, steps=3, seed=5)["images_out"],
                                      ldm.reconstruct(fmri, steps=3, seed=5, sampler=sampler))


# parameter counts


def test_parameter_table_counts_by_part_and_per_trial():
    from ldm_core.study.diagnostics import parameter_table
    from ldm_core.study.runs import Run, VariantResult

    run = Run(variant="m", seed=0, recon_val=np.zeros((1, 2, 2)), recon_test=np.zeros((1, 2, 2)), val_metrics={},
              test_metrics={}, history={}, wall_time_s=0.0, steps_per_s=0.0, device="cpu",
              n_parameters={"encoder": 9000, "vae": 500, "unet": 500, "total": 10000})
    results = {"m": VariantResult("m", {}, {}, {}, [run])}
    raw = parameter_table(results, n_train=90, formatted=False)
    assert raw.loc["m", "encoder share"] == 0.9 and raw.loc["m", "total per training trial"] == pytest.approx(10000 / 90)
    text = parameter_table(results, n_train=90)
    assert text.loc["m"].to_dict() == {"encoder": "9,000", "VAE": "500", "U-Net": "500", "total": "10,000",
                                       "encoder share": "90%", "encoder per training trial": "100",
                                       "total per training trial": "111"}
    with pytest.raises(ValueError, match="n_train must be >= 1"):
        parameter_table(results, n_train=0)


def test_sampler_study_bundles_the_three_probes():
    from types import SimpleNamespace

    from ldm_core.study.diagnostics import SAMPLER_LABELS, sampler_study

    images, ref = _gaussian_images(50, 5), _gaussian_images(500, 6)
    data = SimpleNamespace(fmri_val=np.zeros((50, 3), np.float32), images_val=images, images_fit=ref)
    model = GaussianLatentModel(ref.reshape(-1, 144).mean(0), ref.reshape(-1, 144).var(0, ddof=1))
    study = sampler_study({"a": model, "b": model}, data, steps=10, timesteps=[10, 999])
    assert list(study.table.index) == [(m, SAMPLER_LABELS[s]) for m in "ab" for s in ("ddim", "original")]
    assert list(study.trajectories) == [(m, SAMPLER_LABELS[s]) for m in "ab" for s in ("ddim", "original")]
    assert all("forward_rms" in tr for tr in study.trajectories.values())
    table = study.x0_error_table()
    assert list(table.columns) == ["a", "b", "exact Gaussian denoiser"] and list(table.index) == [10, 999]
    np.testing.assert_allclose(table["a"], table["exact Gaussian denoiser"], rtol=1e-3)


def test_every_ladder_fix_has_a_reader_phrase():
    from ldm_core.study.diagnostics import LADDER_FIXES
    from ldm_core.study.names import FIX_LABELS, fix_label

    assert set(LADDER_FIXES) == set(FIX_LABELS)
    assert fix_label("VAE decoder training") == "training the VAE decoder"
    assert fix_label("unknown fix") == "unknown fix"


def test_sampler_study_samples_each_model_and_sampler_once_and_its_table_is_sampler_comparisons(monkeypatch):
    from types import SimpleNamespace

    from ldm_core.study import diagnostics

    images, ref = _gaussian_images(40, 7), _gaussian_images(400, 8)
    data = SimpleNamespace(fmri_val=np.zeros((40, 3), np.float32), images_val=images, images_fit=ref)
    model = GaussianLatentModel(ref.reshape(-1, 144).mean(0), ref.reshape(-1, 144).var(0, ddof=1))
    alone = diagnostics.sampler_comparison({"a": model}, data.fmri_val, images, steps=10, reference_images=ref)
    calls = []
    real = diagnostics.sampling_trajectory
    monkeypatch.setattr(diagnostics.sampling, "sampling_trajectory",  # where sampler_study looks it up
                        lambda *a, **kw: calls.append(kw["sampler"]) or real(*a, **kw))
    study = diagnostics.sampler_study({"a": model}, data, steps=10, timesteps=[10])
    assert sorted(calls) == ["ddim", "original"]  # two samplings, not four
    np.testing.assert_allclose(study.table.to_numpy(), alone.to_numpy())


def test_final_loss_ratio_reads_the_last_validated_epoch_of_the_stage():
    from ldm_core.study.diagnostics import final_loss_ratio

    nan = float("nan")
    history = {"stage": ["vae", "vae", "diffusion", "diffusion", "diffusion"],
               "train_loss": [9.0, 8.0, 0.4, 0.2, 0.1],
               "val_loss": [1.0, 2.0, 0.5, 0.6, nan]}  # the last diffusion epoch was not validated
    assert final_loss_ratio(history) == pytest.approx(0.6 / 0.2)
    assert final_loss_ratio(history, stage="vae") == pytest.approx(2.0 / 8.0)
    with pytest.raises(ValueError, match=r"no validated epoch of stage 'align'; its stages are \['diffusion', 'vae'\]"):
        final_loss_ratio(history, stage="align")
    with pytest.raises(ValueError, match="positive training loss"):
        final_loss_ratio({"stage": ["diffusion"], "train_loss": [0.0], "val_loss": [0.3]})


def test_loss_ratio_over_seeds_gives_the_mean_and_the_range_across_seeds():
    from types import SimpleNamespace

    from ldm_core.study.diagnostics import loss_ratio_over_seeds

    def run(train, val):
        return SimpleNamespace(history={"stage": ["diffusion"], "train_loss": [train], "val_loss": [val]})

    out = loss_ratio_over_seeds(SimpleNamespace(runs=[run(1.0, 3.0), run(2.0, 2.0), run(1.0, 2.0)]))
    assert out["per_seed"] == pytest.approx([3.0, 1.0, 2.0])
    assert (out["mean"], out["ci_low"], out["ci_high"], out["n_seeds"]) == (pytest.approx(2.0), 1.0, 3.0, 3)
    with pytest.raises(ValueError, match="no runs"):
        loss_ratio_over_seeds(SimpleNamespace(runs=[]))


def test_class_decoding_lowers_the_folds_to_the_smallest_class_and_refuses_singletons():
    from ldm_core.study.diagnostics import class_decoding

    rng = np.random.default_rng(0)
    labels = np.array([3] * 3 + [7] * 3 + [9] * 4)  # smallest class: 3 trials -> 3 folds, not 5
    fmri = rng.standard_normal((10, 6)) + labels[:, None]
    out = class_decoding(fmri, labels, n_folds=5, n_perm=2, C=1.0)
    assert out["n_folds"] == 3 and len(out["fold_accuracies"]) == 3
    assert out["chance"] == pytest.approx(0.4)
    with pytest.raises(ValueError, match=r"at least two trials each; got class sizes \{1: 1, 2: 3\}"):
        class_decoding(rng.standard_normal((4, 3)), np.array([1, 2, 2, 2]), n_perm=2)


# ----------------------------------------------------------------------------- x_t use and the ledger note


def _study(r, var, x0_err, exact_err, ts=(20, 500, 999)):
    """A SamplerStudy by hand: one model "m", two samplers; ``r`` / ``var``: (DDIM, re-noising)."""
    import pandas as pd

    from ldm_core.study.diagnostics import SAMPLER_LABELS, SamplerStudy

    labels = [SAMPLER_LABELS["ddim"], SAMPLER_LABELS["original"]]
    table = pd.DataFrame({"pixel r": list(r), "latent variance ratio": list(var)},
                         index=pd.MultiIndex.from_tuples([("m", lab) for lab in labels], names=["model", "sampler"]))
    err = pd.DataFrame({"sqrt(abar_t)": [0.997, 0.28, 0.006], "x0 error, model": list(x0_err),
                        "x0 error, Gaussian denoiser": list(exact_err)}, index=pd.Index(list(ts), name="t"))
    return SamplerStudy(table, {"m": err}, {})


def test_x_t_use_reads_sampler_invariance_and_the_low_t_error():
    # the chapter-01 x0 repair: same scores under both samplers, x0 error at t=20 24x the exact denoiser's
    s = _study((0.771, 0.770), (0.727, 0.727), (0.305, 0.478, 0.518), (0.0126, 0.957, 1.04))
    u = s.x_t_use("m")
    assert u["t"] == 20 and u["sampler_invariant"] and u["ignores_x_t"]
    assert u["error_factor"] == pytest.approx(0.305 / 0.0126)
    assert (u["x0_error_min"], u["x0_error_max"]) == (0.305, 0.518)
    assert u["sqrt_abar"] == pytest.approx(0.997)
    # a denoiser that reads x_t: DDIM and re-noising disagree, small error at low t
    v = _study((0.018, 0.637), (1606.0, 0.303), (0.0127, 2.45, 3997.0), (0.0126, 0.957, 1.04)).x_t_use("m")
    assert not v["sampler_invariant"] and not v["ignores_x_t"]
    # invariant samplers but an accurate low-t estimate: not read as ignoring x_t
    w = _study((0.5, 0.5), (1.0, 1.0), (0.02, 0.5, 0.9), (0.0126, 0.957, 1.04)).x_t_use("m")
    assert w["sampler_invariant"] and not w["ignores_x_t"]


def test_x_t_use_names_what_is_missing():
    s = _study((0.5, 0.5), (1.0, 1.0), (0.3, 0.4, 0.5), (0.01, 0.9, 1.0))
    with pytest.raises(KeyError, match="not in the sampler study"):
        s.x_t_use("other")
    with pytest.raises(KeyError, match=r"t = 7 was not probed"):
        s.x_t_use("m", t=7)
    with pytest.raises(KeyError, match="not in the sampler table"):
        s.x_t_use("m", samplers=("ddim", "ddpm"))


def test_ledger_note_names_the_rows_the_ledger_treats_differently():
    from ldm_core.study.claims import claim_row, exact, paired_claim_row
    from ldm_core.study.diagnostics import ledger_note

    refs = {"uniform_noise": {"ssim": {"mean": 0.002}, "psnr": {"mean": 5.0}}, "train_mean": {"ssim": {"mean": 0.3}},
            "ridge": {"ssim": {"mean": 0.005}}}  # ridge is no trivial reference: never named
    rows = [claim_row("1", "SSIM 0.007", {"mean": 0.006, "ci_low": 0.0, "ci_high": 0.01}, low=-0.013, high=0.027,
                      split="test", metric="ssim", model="original"),
            claim_row("1", "PSNR 5.49", {"mean": 7.0, "ci_low": 6.9, "ci_high": 7.1}, low=4.49, high=6.49,
                      split="test", metric="psnr", model="original"),
            claim_row("4a", "random SSIM 0.1–0.2", {"mean": 0.002, "ci_low": 0.0, "ci_high": 0.004}, low=-1, high=1,
                      split="test", metric="ssim", model="uniform_noise"),
            claim_row("6a", "mean ~0", exact(0.0), low=-0.05, high=0.05, split="training", own_code=True),
            paired_claim_row("17", "8x8x8 better", {"mean": 1.0, "ci_low": 0.5, "ci_high": 1.5}, split="test",
                             metric="psnr", model="a − b", proxy=True),
            paired_claim_row("5d", "fewer weights", {"mean": 0.6, "ci_low": 0.1, "ci_high": 1.1},
                             split="validation", metric="psnr", model="a − b")]
    note = ledger_note(rows, refs)
    assert note.startswith("Each row above has its own verdict. {doc}`Chapter 9 <09_conclusions>`")
    assert "claim 1, SSIM of original" in note and "uniform noise at 0.002 lies in the claimed range too" in note
    assert "claim 1, PSNR" not in note  # refuted rows are not voided
    assert "claim 4a" not in note  # claims about the references themselves
    assert "Ridge" not in note and "ridge" not in note
    assert "The rows of claim 6a measure this study's own code" in note
    assert "The rows of claim 17 are proxies" in note
    assert "The confirmations of claim 5d rest on validation trials only" in note
    two = [claim_row("8", "PSNR 12–15", {"mean": 13.0, "ci_low": 12.5, "ci_high": 13.5}, low=12, high=15, split="test",
                     metric="psnr", model=m) for m in ("model a", "model b")]
    refs8 = {"train_mean": {"psnr": {"mean": 12.7}}, "class_mean_reference": {"psnr": {"mean": 13.6}}}
    note8 = ledger_note(two, refs8)
    assert note8.count("claim 8, PSNR (dB) of model a and model b: ") == 1  # one clause per claim and metric
    assert "at 12.7 and " in note8 and "at 13.6 lie in the claimed range too" in note8
    plain = ledger_note(rows[1:2], refs)
    assert plain.count(". ") == 1  # only the opening sentences: nothing is treated differently


def test_defect_ladder_names_the_rungs_that_add_and_remove_each_fix():
    ladder = defect_ladder(epochs=2, batch_size=4, lr=1e-4, vae_epochs=1, unet_channels=(8, 16), steps=5,
                                       longer_epochs=4)
    fixes = ladder.fixes
    assert list(fixes) == list(LADDER_FIXES)
    assert fixes["condition"] == {"added": "+ condition injected", "before": "original",
                                  "removed": "all fixed − condition"}
    assert fixes["skip U-Net"]["added"] == ladder.full
    assert fixes["skip U-Net"]["before"] == "+ DDIM sampler"
    # every named variant exists
    for f in fixes.values():
        assert f["added"] in ladder.ladder and f["before"] in ladder.ladder and f["removed"] in ladder.leave_one_out
