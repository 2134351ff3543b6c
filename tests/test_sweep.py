"""Tests of ldm_core.study.sweep: candidates sorted into the configs they change, name collisions refused, screening only
what is asked for."""
import pytest

import ldm_core.study.sweep as sweep_mod
from ldm_core.study import parameters
from ldm_core.study.experiment import Variant, _groups, make_ldm_config
from ldm_core.study.runs import SAMPLING_DEFAULTS, VariantResult
from ldm_core.study.sweep import Sweep, split_changes, variant_settings
from tests.train_helpers import TINY, TRAIN


def _sweep(base_name="fixed preset", **ldm):
    base = Variant(make_ldm_config("fixed", **TINY, **ldm), TRAIN, {"steps": 7})
    return Sweep(None, base, base_name=base_name, seeds=[0, 1])


CHAPTER_08 = parameters.defaults("08_benchmarks")["candidates"]


def test_split_changes_sorts_fields_and_names_unknown_ones():
    assert split_changes({"prediction": "x0", "n_samples": 8, "lr": 1e-3}) == {
        "ldm": {"prediction": "x0"}, "train": {"lr": 1e-3}, "sampling": {"n_samples": 8}}
    with pytest.raises(ValueError, match=r"unknown candidate field\(s\) \['predict'\]: each must be a sampling key"):
        split_changes({"predict": "x0"})
    with pytest.raises(ValueError, match="must be a mapping of field -> value, got list"):
        split_changes(["prediction"])


def test_chapter_08_candidates_get_the_prediction_they_name():
    assert make_ldm_config("fixed").prediction == "eps"  # the base predicts eps: the x0 candidates must change it
    sweep = _sweep()
    names = sweep.add_candidates(CHAPTER_08)
    assert names == list(CHAPTER_08)
    for name, spec in CHAPTER_08.items():
        v = sweep.variants[name]
        assert v.ldm_cfg.prediction == spec["prediction"], name
        assert v.sample_cfg["n_samples"] == spec.get("n_samples", 1), name
        assert v.sample_cfg["steps"] == 7  # the base's sampling is kept where the candidate sets nothing
    # single-sample x0 and single-sample eps are different configurations (issue 17: they were the same run)
    assert variant_settings(sweep.variants["x0"]) != variant_settings(sweep.variants["eps"])
    # x0 and "x0, mean of 8" share one training per seed; so do the two eps candidates: 2 trainings for 4 candidates
    groups = _groups({n: sweep.variants[n] for n in names})
    assert len(groups) == 2
    assert sorted(sorted(g[2]) for g in groups) == [sorted(n for n in CHAPTER_08 if n.startswith("eps")),
                                                    sorted(n for n in CHAPTER_08 if n.startswith("x0"))]


def test_a_candidate_named_like_a_variant_of_other_settings_is_refused():
    """The chapter's old pattern: the eps base named "x0" made the "x0" candidate silently the eps base."""
    sweep = _sweep(base_name="x0")
    with pytest.raises(ValueError, match=r"candidate 'x0' collides with the sweep's variant 'x0' of other settings "
                                         r"\(prediction: 'x0' \(candidate\) vs 'eps'\)"):
        sweep.add_candidates(CHAPTER_08)
    # a candidate equal in every setting to the variant of its name is that variant
    sweep = _sweep(base_name="eps")
    assert sweep.add_candidates({"eps": {"prediction": "eps"}, "eps, 2": {"n_samples": 2}}) == ["eps", "eps, 2"]
    assert list(sweep.variants) == ["eps", "eps, 2"]
    with pytest.raises(ValueError, match="add_candidates needs at least one candidate"):
        sweep.add_candidates({})
    with pytest.raises(ValueError, match=r"unknown candidate field\(s\) \['sample'\]"):
        sweep.add_candidates({"bad": {"sample": 2}})
    assert "bad" not in sweep.variants


def test_a_bad_candidate_adds_none_of_them():
    sweep = _sweep()
    with pytest.raises(ValueError, match="unknown candidate field"):
        sweep.add_candidates({"good": {"prediction": "x0"}, "bad": {"nope": 1}})
    assert list(sweep.variants) == ["fixed preset"]


def test_select_screens_only_the_names_asked_for_and_only_once(monkeypatch):
    calls = []

    def fake_run_variants(variants, data, *, seeds, **kw):
        calls.append(list(variants))
        score = {"x0": 0.3, "x0, mean of 8 samples": 0.6, "eps": 0.1, "eps, mean of 8 samples": 0.2}
        return {n: _result(n, score[n]) for n in variants}

    monkeypatch.setattr(sweep_mod, "run_variants", fake_run_variants)
    sweep = _sweep()
    names = sweep.add_candidates(CHAPTER_08)
    assert sweep.select("ssim", names) == "x0, mean of 8 samples"
    assert calls == [names]  # the base ("fixed preset") is not trained
    sweep.screen(names[:2])
    assert calls == [names]  # already screened: nothing run again
    with pytest.raises(KeyError, match=r"unknown variant\(s\) \['nope'\]"):
        sweep.screen(["nope"])


def _result(name, ssim):
    from ldm_core.study.runs import Run

    ev = {"ssim": {"mean": ssim, "per_image": [ssim, ssim]}}
    run = Run(variant=name, seed=0, recon_val=None, recon_test=None, val_metrics=ev, test_metrics=ev, history={},
              wall_time_s=0.0, steps_per_s=0.0, n_parameters={}, device="cpu")
    return VariantResult(name, {}, {}, dict(SAMPLING_DEFAULTS), [run])


def test_pairs_finds_candidates_that_differ_in_one_field_only():
    sweep = _sweep()
    names = sweep.add_candidates(CHAPTER_08)
    assert sweep.pairs("prediction", names) == [("x0", "eps"), ("x0, mean of 8 samples", "eps, mean of 8 samples")]
    assert sweep.pairs("n_samples", names) == [("x0", "x0, mean of 8 samples"), ("eps", "eps, mean of 8 samples")]
    assert sweep.pairs("lr", names) == []
    with pytest.raises(KeyError, match=r"unknown variant\(s\) \['x1'\]"):
        sweep.pairs("prediction", ["x0", "x1"])


def test_trainings_groups_candidates_that_share_a_training():
    sweep = _sweep()
    names = sweep.add_candidates(CHAPTER_08)
    assert sweep.trainings(names) == [["x0", "x0, mean of 8 samples"], ["eps", "eps, mean of 8 samples"]]


def test_candidates_are_described_in_words_for_the_parameter_table():
    from ldm_core.study.param_labels import PARAM_FORMATTERS
    from ldm_core.study.sweep import describe_candidates, describe_changes

    assert describe_changes({"prediction": "x0", "n_samples": 8}) == (
        "the U-Net predicts x0 (the clean latent), the mean of 8 samples per trial")
    assert describe_changes({"prediction": "eps", "guidance": 2.0, "w_ssim": 0.1}) == (
        "the U-Net predicts ε (the noise), guidance scale 2, w ssim 0.1")
    assert describe_changes({}) == "the base unchanged"
    text = describe_candidates({"x0": {"prediction": "x0"}, "eps, 2": {"prediction": "eps", "n_samples": 2}})
    assert text == ("x0: the U-Net predicts x0 (the clean latent); eps, 2: the U-Net predicts ε (the noise), the mean "
                    "of 2 samples per trial")
    assert PARAM_FORMATTERS["candidates"](CHAPTER_08) == describe_candidates(CHAPTER_08)  # what chapter 08 shows
