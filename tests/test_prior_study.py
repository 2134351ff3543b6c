"""ldm_core.prior_study: the baseline scores' (baseline, trials) view and the page tables of chapter 07."""
from types import SimpleNamespace

import numpy as np

from ldm_core.prior_study import BaselineScores, leakage_table, prior_table


def test_baseline_scores_by_trials_pairs_each_score_with_its_reconstructions():
    recon = {n: {k: np.full((2, 3, 3), i + j) for j, k in enumerate(("val", "test", "test90"))}
             for i, n in enumerate(("ridge", "pls"))}
    scores = BaselineScores(recon=recon, val={"ridge": "rv", "pls": "pv"}, test={"ridge": "r72", "pls": "p72"},
                            test90={"ridge": "r90", "pls": "p90"}, best="pls")
    test, rec = scores.by_trials()
    assert list(test) == [("ridge", "72"), ("ridge", "90"), ("pls", "72"), ("pls", "90")] == list(rec)
    assert [test[k] for k in test] == ["r72", "r90", "p72", "p90"]
    assert rec["pls", "72"] is recon["pls"]["test"] and rec["ridge", "90"] is recon["ridge"]["test90"]


def test_leakage_table_formats_counts():
    leak = {"n_before": 1992, "n_dropped": 23, "n_after": 1969, "max_r_kept_test": 0.89512}
    col = leakage_table(leak, 2041)["value"]
    assert col["unpaired images found"] == "1,992" and col["kept"] == "1,969"
    assert col["largest shifted r of a kept image with a test stimulus"] == "0.895"
    assert col["prior training images (kept + the fitting trials)"] == "2,041"


def test_prior_table_reads_ceiling_quality_and_times():
    prior = SimpleNamespace(cfg=SimpleNamespace(diffusion_steps=8000),
                            history={"vae_time_s": 12.34, "diffusion_time_s": 56.78})
    ceiling = {"psnr": {"mean": 21.2871}, "ssim": {"mean": 0.91234}}
    quality = {"mean_error": 0.1, "cov_error": 0.2, "variance_ratio": 0.98765, "nn_r": 0.8}
    col = prior_table(prior, ceiling, quality)["value"]
    assert col["VAE round trip on validation images: PSNR (dB)"] == 21.29
    assert col["unconditional samples: variance / data variance"] == 0.988
    assert col["diffusion training, 8,000 steps (s)"] == 56.8
