"""Every chapter's parameters: the table, the notebooks' parameters cells and the params files agree, and bad
values fail in milliseconds with the parameter's name."""
import ast
import json
import time

import pytest

from ldm_core.study import runner as study
from ldm_core.study.parameters import (CHAPTER_PARAMS, RUN_PARAMS, ParameterError, defaults, describe, parameters_cell,
                                       validate)
from ldm_core.study.results import project_root

ROOT = project_root()


def _parameters_cell(chapter):
    nb = json.loads((ROOT / "notebooks" / f"{chapter}.ipynb").read_text())
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"{chapter}: exactly one cell must be tagged 'parameters'"
    return "".join(cells[0]["source"])


def _assigned(source):
    out = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.AnnAssign):
            out[node.target.id] = ast.literal_eval(node.value)
        elif isinstance(node, ast.Assign):
            out[node.targets[0].id] = ast.literal_eval(node.value)
    return out


def test_every_chapter_has_a_parameter_table():
    assert set(study.chapters()) == set(CHAPTER_PARAMS)


@pytest.mark.parametrize("chapter", sorted(CHAPTER_PARAMS))
def test_notebook_parameters_cell_matches_the_table(chapter):
    """The science parameters, in table order with their defaults; the run plumbing is left to the runner."""
    declared = _assigned(_parameters_cell(chapter))
    science = [n for n in CHAPTER_PARAMS[chapter] if n not in RUN_PARAMS]
    assert list(declared) == science, "same names, same order"
    assert declared == {n: v for n, v in defaults(chapter).items() if n in science}
    assert _parameters_cell(chapter).strip() == parameters_cell(chapter).strip()
    assert all(n in _parameters_cell(chapter).splitlines()[-1] for n in RUN_PARAMS)  # named in the closing comment


@pytest.mark.parametrize("chapter", sorted(CHAPTER_PARAMS))
@pytest.mark.parametrize("profile", study.PROFILES)
def test_params_files_are_valid(chapter, profile):
    values = study.load_params(chapter, profile)
    validate(chapter, values)  # raises on an unknown key or a bad value


@pytest.mark.parametrize("chapter", sorted(CHAPTER_PARAMS))
def test_defaults_are_valid(chapter):
    assert validate(chapter, {}) == {k: (float(v) if CHAPTER_PARAMS[chapter][k].kind == "float" else v)
                                      for k, v in defaults(chapter).items()}


@pytest.mark.parametrize("name, value, message", [
    ("lr", -1, r"parameter 'lr' must be a number > 0; got -1 \(int\), which is out of range"),
    ("lr", "abc", r"parameter 'lr' must be a number > 0; got 'abc' \(str\), which is not a finite number. "
                  r"\(a string: check for a typo"),
    ("lr_grid", "[1e-4, 5e-4]", r"parameter 'lr_grid' must be a list .* -y 'lr_grid: \[1e-4, 5e-4\]'"),
    ("epochs", 0, r"parameter 'epochs' must be an int >= 1; got 0"),
    ("epochs", 10.0, r"parameter 'epochs' must be an int >= 1; got 10.0 \(float\), which is not an int"),
    ("unet_channels", [16, 30], r"parameter 'unet_channels' .* not divisible by 8"),
    ("prediction", "v", r"parameter 'prediction' must be one of \['x0', 'eps'\]; got 'v'"),
    ("n_seed", 2, r"unknown parameter 'n_seed' \(did you mean 'n_seeds'"),
])
def test_bad_values_fail_fast_with_their_name(name, value, message):
    t = time.perf_counter()
    with pytest.raises(ParameterError, match=message):
        validate("02_unet_fix", {name: value})
    assert time.perf_counter() - t < 1.0


def test_all_problems_reported_at_once():
    with pytest.raises(ParameterError) as err:
        validate("02_unet_fix", {"lr": -1, "steps": 0})
    assert "'lr'" in str(err.value) and "'steps'" in str(err.value)


def test_ints_widen_to_floats_and_unknown_chapter():
    assert validate("02_unet_fix", {"lr": 1})["lr"] == 1.0
    with pytest.raises(ParameterError, match="unknown chapter 'nope'"):
        validate("nope", {})
    assert "number > 0" in describe("02_unet_fix")["lr"]


def test_chapter_defaults_are_the_config_defaults():
    """A training or prior default lives in its config dataclass; the parameter table reads it (recipe, chapter 01) or
    restates it so that the table loads without torch (chapter 07) -- then this keeps the two equal."""
    from ldm_core.config import FIXED_RECIPE, TrainConfig
    from ldm_core.prior import PriorConfig
    from ldm_core.prior_ldm import DecodeConfig

    d02, d01, d07 = (defaults(c) for c in ("02_unet_fix", "01_diagnostics", "07_image_prior"))
    for name in ("lr", "epochs", "batch_size", "vae_epochs", "align_epochs"):
        assert d02[name] == getattr(FIXED_RECIPE, name), name
    for name in ("lr", "epochs", "batch_size", "vae_epochs"):
        assert d01[name] == getattr(TrainConfig(), name), name
    prior, decode = PriorConfig(), DecodeConfig()
    for name in ("latent_dim", "kl_weight", "vae_steps", "diffusion_steps", "prediction"):
        assert d07[name] == getattr(prior, name), name
    assert (d07["n_samples"], d07["decode_steps"]) == (decode.n_samples, decode.steps)


def test_the_parameter_table_loads_without_torch():
    """papermill --help-notebook and the runner's argument checks need the table, not the models."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", "import sys, ldm_core.study.parameters; print('torch' in sys.modules)"],
                         capture_output=True, text=True, check=True, cwd=project_root())
    assert out.stdout.strip() == "False"
