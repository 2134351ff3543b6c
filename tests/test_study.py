import pytest

from ldm_core import study


def test_every_chapter_has_both_profiles():
    names = study.chapters()
    assert names and names[0] == "00_data_and_metrics"
    for name in names:
        for profile in study.PROFILES:
            assert isinstance(study.load_params(name, profile), dict)


def test_bad_profile_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        study.load_params("00_data_and_metrics", "fast")
    with pytest.raises(FileNotFoundError, match="needs a params file"):
        study.load_params("99_nothing", "quick")


def test_unknown_override_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \[.not_a_param.\]"):
        study.run_chapter("00_data_and_metrics", profile="quick", out_dir=tmp_path, overrides={"not_a_param": 1})


def test_parse_overrides():
    assert study._parse_overrides(["lr=1e-4", "name=abc"]) == {"lr": 1e-4, "name": "abc"}
    with pytest.raises(ValueError, match="NAME=VALUE"):
        study._parse_overrides(["lr"])


def test_run_log_keeps_earlier_chapters(tmp_path):
    import json

    path = tmp_path / "run_log.quick.json"
    assert study.read_run_log(path, profile="quick") == {"profile": "quick", "chapters": {}}
    path.write_text(json.dumps({"profile": "quick", "chapters": {"00_data_and_metrics": {"wall_time_s": 3.0}}}))
    assert study.read_run_log(path, profile="quick")["chapters"] == {"00_data_and_metrics": {"wall_time_s": 3.0}}
    with pytest.raises(ValueError, match="not 'full'"):
        study.read_run_log(path, profile="full")


def test_a_second_runner_of_the_same_chapter_is_refused(tmp_path):
    with study._chapter_lock(tmp_path, "00_data_and_metrics"):
        with pytest.raises(RuntimeError, match="another run of chapter 00_data_and_metrics"):
            with study._chapter_lock(tmp_path, "00_data_and_metrics"):
                pass
    with study._chapter_lock(tmp_path, "00_data_and_metrics"):  # released when the first is done
        pass


def test_publishing_refuses_overrides_unless_allowed(tmp_path):
    with pytest.raises(ValueError, match=r"publishing into results/ with overrides \['seed'\] .* --allow-unprofiled"):
        study.run_chapter("00_data_and_metrics", profile="quick", out_dir=tmp_path, overrides={"seed": 1},
                          publish=True)


def test_injected_cell_is_hidden(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["injected-parameters"]})]
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    study._hide_injected_cell(path)
    assert nbformat.read(path, as_version=4).cells[0].metadata["tags"] == ["injected-parameters", "remove-cell"]
