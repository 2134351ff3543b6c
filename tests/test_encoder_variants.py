"""Tests of ldm_core.study.encoder_variants: chapter 04's variants, their tables, and what the data file holds."""
import math

import numpy as np
import pytest

from ldm_core.config import FIXED_AUGMENTATION, NO_AUGMENTATION, TrainConfig
from ldm_core.study.encoder_variants import (BASE, add_encoder_variants, align_losses, decay_shrink,
                                       encoder_tables, file_variables, untestable_table)
from ldm_core.study.experiment import Variant, make_ldm_config
from ldm_core.study.runs import Run, VariantResult
from ldm_core.study.sweep import Sweep
from tests.train_helpers import small_study_data


@pytest.fixture
def sweep(tmp_path):
    data = small_study_data(tmp_path)  # 24 voxels
    base = Variant(make_ldm_config("fixed"), {"stages": "progressive", **FIXED_AUGMENTATION}, {"steps": 3})
    return Sweep(data, base, base_name=BASE, seeds=[0])


def test_no_augmentation_is_the_train_config_default_of_the_augmentation_fields():
    assert set(NO_AUGMENTATION) == set(FIXED_AUGMENTATION)
    assert {k: getattr(TrainConfig(), k) for k in NO_AUGMENTATION} == NO_AUGMENTATION


def test_add_encoder_variants_changes_one_thing_each(sweep):
    names = add_encoder_variants(sweep, weight_decay=1.0, encoder_tokens=4, brain_aware_dropout=0.2)
    assert list(names) == ["report_mlp", "no_augmentation", "weight_decay", "attention", "cross_attention"]
    assert list(sweep.variants) == [BASE, *names.values()]
    v, base = sweep.variants, sweep.base
    report = v[names["report_mlp"]]
    assert (report.ldm_cfg.encoder, report.ldm_cfg.encoder_hidden, report.ldm_cfg.encoder_dropout) == (
        "mlp_original", (1024, 768, 512), 0.1)
    assert {k: report.train_cfg[k] for k in NO_AUGMENTATION} == NO_AUGMENTATION
    assert v[names["no_augmentation"]].ldm_cfg == base.ldm_cfg
    assert v[names["no_augmentation"]].train_cfg == {**base.train_cfg, **NO_AUGMENTATION}
    assert v[names["weight_decay"]].train_cfg == {**base.train_cfg, "weight_decay": 1.0}
    attn, cross = v[names["attention"]], v[names["cross_attention"]]
    assert (attn.ldm_cfg.encoder, attn.ldm_cfg.encoder_tokens, attn.ldm_cfg.encoder_dropout) == ("brain_aware", 4, 0.2)
    assert attn.ldm_cfg.conditioning == base.ldm_cfg.conditioning == "film" and cross.ldm_cfg.conditioning == "cross_attn"
    assert cross.train_cfg == attn.train_cfg and attn.train_cfg["fmri_noise"] == 0.0
    assert all(x.sampling == base.sampling for x in v.values())


@pytest.mark.parametrize("kwargs, match", [
    ({"encoder_tokens": 0}, r"parameter 'encoder_tokens' must be an int between 1 and the 24 voxels"),
    ({"encoder_tokens": 25}, r"parameter 'encoder_tokens' must be an int between 1 and the 24 voxels"),
    ({"weight_decay": 1e-2}, r"parameter 'weight_decay' must be > 0 and differ from the base's 0.01"),
    ({"weight_decay": 0.0}, r"parameter 'weight_decay' must be > 0"),
    ({"brain_aware_dropout": 1.0}, r"parameter 'brain_aware_dropout' must be a probability in \[0, 1\)"),
])
def test_add_encoder_variants_checks_parameters_against_the_data_before_training(sweep, kwargs, match):
    args = {"weight_decay": 1.0, "encoder_tokens": 4, "brain_aware_dropout": 0.1, **kwargs}
    with pytest.raises(ValueError, match=match):
        add_encoder_variants(sweep, **args)
    assert list(sweep.variants) == [BASE]  # nothing added, nothing trained


def test_encoder_tables_have_reader_names_and_no_empty_cells(sweep):
    names = add_encoder_variants(sweep, weight_decay=1.0, encoder_tokens=4, brain_aware_dropout=0.2)
    arch, train = encoder_tables(sweep.variants)
    for table in (arch, train):
        assert list(table.index) == list(sweep.variants) and not table.isna().any().any()
    assert arch.loc[BASE, "encoder"] == "regularised MLP" and arch.loc[BASE, "hidden widths"] == "512"
    assert arch.loc[names["report_mlp"], "hidden widths"] == "1024–768–512"
    assert arch.loc[names["attention"], "hidden widths"] == "—" and arch.loc[names["attention"], "tokens"] == 4
    assert arch.loc[BASE, "U-Net conditioning"] == "FiLM"
    assert arch.loc[names["cross_attention"], "U-Net conditioning"] == "cross-attention"
    assert train.loc[BASE, "fMRI noise (std)"] == "0.1" and train.loc[names["no_augmentation"], "voxel dropout"] == "0"
    assert train.loc[names["weight_decay"], "weight decay"] == "1" and train.loc[BASE, "weight decay"] == "0.01"


def _result(name, history):
    run = Run(variant=name, seed=0, recon_val=np.zeros((1, 2, 2)), recon_test=np.zeros((1, 2, 2)), val_metrics={},
              test_metrics={}, history=history, wall_time_s=0.0, steps_per_s=0.0, n_parameters={}, device="cpu")
    return VariantResult(name, {}, {}, {}, [run])


def test_align_losses_last_and_best_epoch_of_the_alignment_stage():
    h = {"stage": ["vae", "align", "align", "align", "diffusion"], "val_loss": [9.0, 0.5, 0.4, 0.7, 0.1]}
    table = align_losses({"a": _result("a", h)})
    assert table.loc["a"].to_dict() == {"last epoch": 0.7, "best epoch": 0.4}
    with pytest.raises(ValueError, match="variant 'b' has no validated 'align' epoch; its stages are"):
        align_losses({"b": _result("b", {"stage": ["vae", "diffusion"], "val_loss": [1.0, 1.0]})})


def test_decay_shrink_known_answer_and_errors():
    # 2 epochs of ceil(5 / 2) = 3 steps: (1 - 0.5 * 1)^6
    assert decay_shrink(lr=0.5, weight_decay=1.0, epochs=2, n_trials=5, batch_size=2) == pytest.approx(0.5**6)
    assert decay_shrink(lr=1e-3, weight_decay=0.0, epochs=9, n_trials=9, batch_size=1) == 1.0
    assert decay_shrink(lr=5e-4, weight_decay=1.0, epochs=60, n_trials=72, batch_size=16) == pytest.approx(
        math.exp(300 * math.log(1 - 5e-4)))
    with pytest.raises(ValueError, match="must be >= 1"):
        decay_shrink(lr=1e-3, weight_decay=1.0, epochs=0, n_trials=5, batch_size=2)
    with pytest.raises(ValueError, match=r"lr \* weight_decay must be in \[0, 1\)"):
        decay_shrink(lr=1.0, weight_decay=1.0, epochs=1, n_trials=5, batch_size=2)


def test_untestable_table_and_file_variables(synthetic_mat, tmp_path):
    table = untestable_table()
    assert len(table) == 2 and list(table.columns) == ["why not here", "data that would test it"]
    files = file_variables(synthetic_mat)
    assert {"fmriTrn", "stimTrn", "labelTrn"} <= set(files.index)
    assert files.loc["fmriTrn", "shape"].count("×") == 1
    with pytest.raises(FileNotFoundError, match="no MATLAB file"):
        file_variables(tmp_path / "missing.mat")
