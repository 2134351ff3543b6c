"""What the README promises of a chapter run by hand through plain papermill (a changed parameter writes scratch, bad
parameters fail in seconds, a missing earlier chapter is named), on another dataset, and on Dask workers (the same
numbers). Apart from test_notebooks.py so that pytest-xdist can run it on the other worker."""
import hashlib
import shutil
import time
from pathlib import Path

import papermill as pm
import pytest

from ldm_core.study import runner as study
from ldm_core.data import write_digit69_mat
from tests.synthetic_data import make_synthetic_digit69
from ldm_core.study.results import load_results, project_root, verify

pytestmark = pytest.mark.notebook
ROOT = project_root()


def _tree_digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_plain_papermill_with_a_changed_parameter_writes_scratch_not_results(tmp_path, real_data):
    """The README's experiment command: results go to runs/<chapter>/..., the published results/ stay as they are."""
    chapter = "00_data_and_metrics"
    before = _tree_digest(ROOT / "results")
    scratch_root = ROOT / "runs" / chapter
    existing = set(scratch_root.iterdir()) if scratch_root.is_dir() else set()
    params = {**study.load_params(chapter, "quick"), "seed": 1, "cache_root": str(tmp_path / "cache")}
    pm.execute_notebook(str(ROOT / "notebooks" / f"{chapter}.ipynb"), str(tmp_path / "out.ipynb"),
                        parameters=params, cwd=str(ROOT), progress_bar=False, kernel_name="python3")
    assert _tree_digest(ROOT / "results") == before, "a hand-run chapter changed the published results/"
    new = sorted(set(scratch_root.iterdir()) - existing)
    try:
        assert len(new) == 1 and (new[0] / "metrics.json").is_file()
        assert "runs/00_data_and_metrics/" in (tmp_path / "out.ipynb").read_text()  # said in the first output
        assert verify(new[0])["ok"].all()  # the scratch results recompute
        assert load_results(new[0])[0]["params"]["seed"] == 1
    finally:
        for folder in new:
            shutil.rmtree(folder)


@pytest.mark.parametrize("chapter, given, message", [
    ("00_data_and_metrics", {"n_bot": 5}, r"unknown parameter 'n_bot' \(did you mean 'n_boot'"),
    ("02_unet_fix", {"lr": "abc"}, r"parameter 'lr' must be a number > 0; got 'abc'"),
    ("02_unet_fix", {"lr_grid": "[1e-4, 5e-4]"}, r"parameter 'lr_grid' must be a list"),
    ("02_unet_fix", {"steps": 0}, r"parameter 'steps' must be an int >= 1 and <= 1000; got 0"),
])
def test_bad_parameters_fail_through_plain_papermill_in_seconds(chapter, given, message, tmp_path, real_data):
    t = time.perf_counter()
    with pytest.raises(pm.PapermillExecutionError, match=message):
        pm.execute_notebook(str(ROOT / "notebooks" / f"{chapter}.ipynb"), str(tmp_path / "out.ipynb"),
                            parameters={**given, "results_root": str(tmp_path)}, cwd=str(ROOT), progress_bar=False,
                            kernel_name="python3")
    assert time.perf_counter() - t < 60  # refused before any data are loaded or models trained


def test_missing_earlier_chapter_fails_before_training(tmp_path, real_data):
    with pytest.raises(pm.PapermillExecutionError, match="reads the results of chapter 00_data_and_metrics"):
        pm.execute_notebook(str(ROOT / "notebooks" / "02_unet_fix.ipynb"), str(tmp_path / "out.ipynb"),
                            parameters={"results_root": str(tmp_path / "empty")}, cwd=str(ROOT), progress_bar=False,
                            kernel_name="python3")


def test_another_dataset_runs_through_the_parameters_alone(tmp_path):
    """A file in digit69's schema with other voxel and trial counts and four classes (codes 0, 3, 5, 7)."""
    path = write_digit69_mat(tmp_path / "other.mat", make_synthetic_digit69(
        n_train=40, n_test=8, n_voxels=55, image_size=12, codes=(0, 3, 5, 7)))
    study.run_chapter("00_data_and_metrics", profile="quick", out_dir=tmp_path, progress=False,
                      overrides={"data_dir": str(path), "results_root": str(tmp_path / "res"), "cv_folds": 3})
    metrics, recons, targets, labels = load_results(tmp_path / "res" / "00_data_and_metrics")
    assert targets.shape == (8, 12, 12) and sorted(set(labels.tolist())) == [0, 3, 5, 7]
    assert "class 3" in (tmp_path / "00_data_and_metrics.ipynb").read_text()


def test_results_do_not_depend_on_how_they_were_computed(tmp_path, real_data, monkeypatch):
    """A quick chapter run sequentially and on a 2-worker Dask LocalCluster: identical metrics and images."""
    import json

    import numpy as np

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the same threads in the kernel and in each worker
    roots = {"sequential": tmp_path / "seq", "dask": tmp_path / "dask"}
    study.run_chapter("00_data_and_metrics", profile="quick", out_dir=tmp_path, progress=False,
                      overrides={"results_root": str(tmp_path / "inputs")})  # chapter 02's inputs, the same for both
    for kind, root in roots.items():
        shutil.copytree(tmp_path / "inputs", root / "results")
        study.run_chapter("02_unet_fix", profile="quick", out_dir=root, progress=False,
                          overrides={"results_root": str(root / "results"), "cache_root": str(root / "cache"),
                                     "workers": 2 if kind == "dask" else 0})
    (ms, rs, _, _), (md, rd, _, _) = (load_results(r / "results" / "02_unet_fix") for r in roots.values())
    assert md["provenance"]["publication"]["workers"] == 2
    timing = ("wall_time_s", "steps_per_s")  # how long it took is the one thing allowed to differ

    def scores(models):
        return json.dumps({n: {k: v for k, v in m.items() if k not in timing} for n, m in models.items()}, sort_keys=True)

    assert scores(ms["models"]) == scores(md["models"])
    assert list(rs) == list(rd) and all(np.array_equal(rs[k], rd[k]) for k in rs)
