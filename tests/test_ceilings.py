"""Tests of ldm_core.study.ceilings: each variant's VAE round trip, with the VAE its runs train, scored."""
import numpy as np
import pytest

from ldm_core.study.ceilings import vae_ceilings
from ldm_core.study.diagnostics import vae_roundtrip
from ldm_core.study.experiment import Variant, make_ldm_config, run_variants, stage1_vae
from ldm_core.metrics import evaluate
from tests.train_helpers import TINY, TRAIN, small_study_data


@pytest.fixture
def small_data(tmp_path):
    return small_study_data(tmp_path)


def test_ceilings_use_the_runs_vae_and_score_it(small_data, tmp_path):
    cache = tmp_path / "cache"
    cfg = make_ldm_config("fixed", **TINY)
    variants = {"a": Variant(cfg, TRAIN), "b": Variant(cfg, {**TRAIN, "vae_kl_weight": 1e-2})}
    run_variants({"a": variants["a"]}, small_data, seeds=[0], n_boot=100, cache_dir=cache, progress=False)
    out = vae_ceilings(variants, small_data, cache_dir=cache, n_boot=100)
    assert list(out.reconstructions) == list(out.metrics) == ["a", "b"]
    rec = out.reconstructions["a"]
    assert rec.shape == small_data.images_test.shape and rec.dtype == np.float32 and 0 <= rec.min() <= rec.max() <= 1
    again = vae_roundtrip(stage1_vae(small_data, ldm_cfg=cfg, train_cfg=TRAIN, seed=0, cache_dir=cache),
                          small_data.images_test)
    np.testing.assert_array_equal(rec, again)  # the VAE the run trained (from the cache), bitwise
    assert not np.array_equal(rec, out.reconstructions["b"])  # another KL weight: another VAE
    expected = evaluate(rec, small_data.images_test, small_data.labels_test, n_boot=100, n_perm=0)
    assert out.metrics["a"]["psnr"]["mean"] == pytest.approx(expected["psnr"]["mean"])
    val = vae_ceilings({"a": variants["a"]}, small_data, split="val", cache_dir=cache, n_boot=100)
    assert val.reconstructions["a"].shape == small_data.images_val.shape


def test_ceilings_refuse_bad_arguments(small_data):
    cfg = make_ldm_config("fixed", **TINY)
    with pytest.raises(ValueError, match="at least one variant"):
        vae_ceilings({}, small_data)
    with pytest.raises(ValueError, match=r"split must be one of \('val', 'test'\), got 'fit'"):
        vae_ceilings({"a": Variant(cfg, TRAIN)}, small_data, split="fit")
    with pytest.raises(ValueError, match="needs a stage plan with a VAE stage"):
        vae_ceilings({"a": Variant(make_ldm_config("original"), {**TRAIN, "stages": "original"})}, small_data)
