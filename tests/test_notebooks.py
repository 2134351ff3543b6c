"""Every chapter executes end to end with its quick parameters through papermill (needs the real data)."""
import os

import pytest

from ldm_core import study
from ldm_core.metrics import evaluate
from ldm_core.results import load_results

from .conftest import REAL_DATA_DIR

pytestmark = pytest.mark.notebook


@pytest.fixture(scope="module")
def shared_results(tmp_path_factory):
    """One results folder for all chapters, run in order: later chapters read chapter 00's baselines."""
    return tmp_path_factory.mktemp("results")


@pytest.mark.parametrize("chapter", study.chapters())
def test_chapter_runs_with_quick_params(chapter, tmp_path, monkeypatch, shared_results):
    if REAL_DATA_DIR:
        monkeypatch.setenv("LDM_DATA_DIR", REAL_DATA_DIR)
    res = shared_results
    study.run_chapter(chapter, profile="quick", out_dir=tmp_path, overrides={"results_root": str(res)}, progress=False)
    assert (tmp_path / f"{chapter}.ipynb").is_file()
    metrics, recons, targets, labels = load_results(chapter, res)
    assert metrics["params"]["results_root"] == str(res)
    for name, rec in recons.items():  # the npz reproduces the json
        again = evaluate(rec, targets, labels, n_boot=100, n_perm=0)
        for k in ("psnr", "ssim", "pixel_r", "mse", "id2", "id2_within"):
            assert again[k]["mean"] == pytest.approx(metrics["models"][name][k]["mean"], nan_ok=True), (name, k)
