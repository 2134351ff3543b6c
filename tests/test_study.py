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
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['not_a_param'\]"):
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
