"""ldm_core.benchmark: the learning-curve extrapolation and the chapter's tables (values computed by hand)."""

import math
import warnings

import numpy as np
import pytest

from ldm_core.benchmark import gain_per_doubling


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
    from ldm_core.benchmark import more_trials_rows

    def point(v):
        return {m: {"per_image": np.asarray(v, dtype=float)} for m in ("psnr", "ssim", "pixel_r")}

    curves = {"a": {5: point([9, 9, 9, 9]), 10: point([1, 1, 1, 1]), 20: point([2, 3, 2, 3])},
              "b": {10: point([1, 2, 3, 4]), 20: point([1, 2, 3, 4])}}
    rows = more_trials_rows(curves, n_boot=200)
    assert [(r["model"], r["claim"]) for r in rows] == [("a", "14 (proxy)")] * 3 + [("b", "14 (proxy)")] * 3
    assert "from 10 to 20 trials" in rows[0]["report says"]  # the last step, not the first
    assert rows[0]["measured mean [95% CI]"].startswith("1.500")  # mean of 2, 3, 2, 3 minus 1
    assert rows[3]["measured mean [95% CI]"].startswith("0.000")


def test_compute_table_means_over_seeds_and_notes():
    from types import SimpleNamespace

    from ldm_core.benchmark import compute_table

    def run(train, recon):
        return SimpleNamespace(n_parameters={"total": 12345}, train_time_s=train, recon_test_s=recon, device="cpu")

    models = {"a": SimpleNamespace(runs=[run(10.0, 0.5), run(20.0, 1.5)]), "b": SimpleNamespace(runs=[run(None, 2.0)])}
    table = compute_table(models, notes={"b": "cached"})
    assert list(table.index) == ["a", "b"] and table.index.name == "model"
    assert table.loc["a", "parameters"] == "12,345"
    assert table.loc["a", "training per seed (s)"] == "15"
    assert table.loc["a", "reconstructing the test trials (s)"] == "1.00"
    assert table.loc["b", "training per seed (s)"] == "0 (cached)"


def test_sampling_steps_table_scores_what_the_model_returns(tmp_path):
    from ldm_core.benchmark import sampling_steps_table
    from ldm_core.metrics import evaluate
    from tests.train_helpers import small_study_data

    data = small_study_data(tmp_path)
    calls = []

    class Model:
        def reconstruct(self, fmri, *, steps, seed=None, **kw):  # a duplicate "steps" would be a TypeError
            calls.append((len(fmri), steps, kw))
            return np.full((len(fmri), 28, 28), min(steps, 10) / 10, dtype=np.float32)

    table = sampling_steps_table(Model(), data, [1, 10], sample_cfg={"steps": 50, "guidance": 2.0}, n_boot=50)
    assert calls[0][:2] == (1, 2)  # the warm-up
    assert all(kw == {"guidance": 2.0} for _, _, kw in calls[1:])
    assert list(table.index) == [1, 10]
    for s in (1, 10):
        want = evaluate(np.full_like(data.images_val, min(s, 10) / 10), data.images_val, data.labels_val, n_boot=50,
                        n_perm=0)["psnr"]["mean"]
        assert table.loc[s, "validation PSNR (dB)"] == round(want, 3)
    assert (table[f"reconstructing {len(data.fmri_test)} test trials (s)"] >= 0).all()


def test_week1_sweep_builds_the_grid_and_reads_validation(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from ldm_core import experiment
    from ldm_core.benchmark import week1_sweep
    from ldm_core.experiment import make_ldm_config

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
