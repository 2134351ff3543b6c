"""The chapter protocol: parameters refused before any work, results written where they belong."""
import json

import numpy as np
import pytest

from ldm_core.chapter import Chapter, relative
from ldm_core.metrics import evaluate
from ldm_core.parameters import ParameterError, defaults
from ldm_core.results import load_results, project_root

CH = "00_data_and_metrics"


def _namespace(**given):
    """A notebook's globals: names from the imports cell, then the parameters cell (+ papermill's injected cell)."""
    ns = {"np": np, "In": [], "_t0": 0.0}
    before = dict(ns)
    ns.update(defaults(CH))
    ns.update(given)
    return before, ns


def _start(tmp_path, **given):
    before, ns = _namespace(**given)
    ch = Chapter(CH, before)
    return ch.start(ns, show=False)


def test_unknown_parameter_is_refused_even_when_papermill_only_warns(tmp_path):
    with pytest.raises(ParameterError, match=r"unknown parameter 'n_bot' \(did you mean 'n_boot'"):
        _start(tmp_path, results_root=str(tmp_path), n_bot=5)


def test_bad_value_names_the_parameter(tmp_path):
    with pytest.raises(ParameterError, match=r"parameter 'val_fraction' must be a number > 0 and < 1; got 1.5"):
        _start(tmp_path, results_root=str(tmp_path), val_fraction=1.5)


def test_results_root_is_used_as_given_and_as_inputs(tmp_path):
    ch = _start(tmp_path, results_root=str(tmp_path))
    assert ch.kind == "results_root" and ch.out_dir == tmp_path / CH and ch.inputs_root == tmp_path


def test_default_is_a_scratch_folder_that_never_touches_results(tmp_path):
    ch = _start(tmp_path, cache_root=str(tmp_path / "cache"))
    assert ch.kind == "scratch"
    root = project_root()
    assert ch.out_dir.parent == root / "runs" / CH and ch.out_dir.name.endswith("-" + ch.params_digest)
    assert ch.inputs_root == root / "results"
    again = _start(tmp_path, cache_root=str(tmp_path / "cache"), seed=1)
    assert again.params_digest != ch.params_digest  # other values, another folder


def test_publishing_needs_the_profile_and_its_values(tmp_path):
    with pytest.raises(ParameterError, match="publish=True needs profile"):
        _start(tmp_path, publish=True)
    from ldm_core.study import load_params

    quick = load_params(CH, "quick")
    ch = _start(tmp_path, publish=True, profile="quick", **quick)
    assert ch.kind == "published" and ch.out_dir == project_root() / "results" / CH and ch.unprofiled == []
    with pytest.raises(ParameterError, match=r"refusing to publish .* seed=1 \(profile: 0\)"):
        _start(tmp_path, publish=True, profile="quick", **{**quick, "seed": 1})
    ch = _start(tmp_path, publish=True, profile="quick", publish_unprofiled=True, **{**quick, "seed": 1})
    assert ch.unprofiled == ["seed"]
    with pytest.raises(ParameterError, match="cannot be combined with results_root"):
        _start(tmp_path, publish=True, profile="quick", results_root=str(tmp_path), **quick)


def test_missing_earlier_chapter_is_named_before_any_work(tmp_path):
    before = {"np": np}
    ns = {**before, **defaults("02_unet_fix"), "results_root": str(tmp_path)}
    with pytest.raises(FileNotFoundError, match="reads the results of chapter 00_data_and_metrics.*run "
                                                 "00_data_and_metrics first"):
        Chapter("02_unet_fix", before).start(ns, show=False)


def test_write_records_params_and_publication(tmp_path, rng):
    ch = _start(tmp_path, results_root=str(tmp_path), seed=3)
    t = rng.random((4, 12, 12)).astype(np.float32)
    labels = np.array([1, 2, 1, 2])
    out = ch.write(metrics={"m": evaluate(t, t, labels, n_boot=100, n_perm=0)}, reconstructions={"m": t},
                   targets=t, labels=labels, extra={"note": 1})
    doc, recons, _, _ = load_results(out)
    assert doc["params"]["seed"] == 3 and "results_root" not in doc["params"]
    assert doc["provenance"]["publication"]["kind"] == "results_root" and doc["extra"] == {"note": 1}
    assert json.loads((out / "metrics.json").read_text())["chapter"] == CH


def test_relative_paths_never_show_the_machine(tmp_path):
    root = project_root()
    assert relative(root / "results" / CH) == f"results/{CH}"
    assert not relative(tmp_path / "a" / "b").startswith("/")
