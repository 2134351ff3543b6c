import pytest

from ldm_core.study import runner as study


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


# --- warnings of a chapter reach the runner's console ------------------------------------------------

CACHE_WARNING = ("/x/ldm_core/study/runs.py:167: RuntimeWarning: ignoring the cached run ab12.pt in /x/cache "
                 "(EOFError: Ran out of input); it is computed again\n  warnings.warn(f\"ignoring the cached run\"\n")


def _notebook(path, *, stderr=(), stdout=()):
    import nbformat

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                          "language": "python"}})
    cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]})]
    for text in stderr:
        cells.append(nbformat.v4.new_code_cell("run()", outputs=[nbformat.v4.new_output("stream", name="stderr",
                                                                                        text=text)]))
    for text in stdout:
        cells.append(nbformat.v4.new_code_cell("show()", outputs=[nbformat.v4.new_output("stream", name="stdout",
                                                                                         text=text)]))
    nb.cells = cells
    nbformat.write(nb, path)
    return path


def test_notebook_warnings_are_found_once_each(tmp_path):
    path = _notebook(tmp_path / "x.ipynb", stderr=[CACHE_WARNING, CACHE_WARNING,
                                                   "some progress text\n",
                                                   "/y/prior.py:310: RuntimeWarning: ignoring the damaged cached "
                                                   "image prior p.pt (UnpicklingError: bad); it is computed again\n"],
                     stdout=["UserWarning: printed on stdout, not a warning\n"])
    assert study.notebook_warnings(path) == [
        "RuntimeWarning: ignoring the cached run ab12.pt in /x/cache (EOFError: Ran out of input); it is computed "
        "again",
        "RuntimeWarning: ignoring the damaged cached image prior p.pt (UnpicklingError: bad); it is computed again"]
    assert study.notebook_warnings(_notebook(tmp_path / "quiet.ipynb", stderr=["nothing\n"])) == []


def _fake_project(tmp_path):
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    (root / "params").mkdir()
    _notebook(root / "notebooks" / "99_fake.ipynb")
    (root / "params" / "99_fake.quick.yaml").write_text("x: 2\n")
    return root


@pytest.mark.parametrize("fails", [False, True])
def test_run_chapter_prints_the_chapters_warnings(tmp_path, monkeypatch, capsys, fails):
    import papermill as pm

    root = _fake_project(tmp_path)

    def execute(src, out, **kw):  # stands in for the kernel: the executed notebook carries a cache warning
        _notebook(out, stderr=[CACHE_WARNING])
        if fails:
            raise RuntimeError("the chapter failed")

    monkeypatch.setattr(pm, "execute_notebook", execute)
    seen: list = []
    out = tmp_path / "out"
    if fails:
        with pytest.raises(RuntimeError, match="the chapter failed"):
            study.run_chapter("99_fake", profile="quick", out_dir=out, root=root, progress=False, warnings_out=seen)
        assert (out / "99_fake.failed.ipynb").is_file()
    else:
        study.run_chapter("99_fake", profile="quick", out_dir=out, root=root, progress=False, warnings_out=seen)
        assert (out / "99_fake.ipynb").is_file()
    err = capsys.readouterr().err
    assert "   99_fake: RuntimeWarning: ignoring the cached run ab12.pt" in err and "it is computed again" in err
    assert seen == [CACHE_WARNING.splitlines()[0].split(": ", 1)[1]]


def test_run_log_records_the_warnings(tmp_path, monkeypatch):
    import argparse
    import json

    root = _fake_project(tmp_path)
    args = argparse.Namespace(profile="quick", workers=0)
    log = tmp_path / "run_log.quick.json"
    study._log(log, "99_fake", 1.0, args, 1, False, {}, root, ["RuntimeWarning: ignoring x; it is computed again"])
    assert json.loads(log.read_text())["chapters"]["99_fake"]["warnings"] == [
        "RuntimeWarning: ignoring x; it is computed again"]


def test_run_plumbing_is_accepted_undeclared_and_papermills_unknown_parameter_line_dropped(tmp_path, monkeypatch,
                                                                                            caplog):
    """The notebook declares only x; the runner passes results_root (plumbing) and refuses an unknown science name.
    papermill's "Passed unknown parameter" log line is dropped for the plumbing and kept for anything else."""
    import logging

    import papermill as pm

    root = _fake_project(tmp_path)
    passed = {}

    def execute(src, out, parameters, **kw):  # what papermill does before running the kernel: log unknown names
        passed.update(parameters)
        for name in parameters:
            if name != "x":
                logging.getLogger("papermill").warning(f"Passed unknown parameter: {name}")
        logging.getLogger("papermill").warning("Passed unknown parameter: not_plumbing")
        _notebook(out)

    monkeypatch.setattr(pm, "execute_notebook", execute)
    with caplog.at_level(logging.WARNING, logger="papermill"):
        study.run_chapter("99_fake", profile="quick", out_dir=tmp_path / "out", root=root, progress=False,
                          overrides={"results_root": str(tmp_path / "res")})
    assert passed["results_root"] == str(tmp_path / "res") and passed["x"] == 2 and passed["profile"] == "quick"
    logged = [r.getMessage() for r in caplog.records]
    assert logged == ["Passed unknown parameter: not_plumbing"]
    assert logging.getLogger("papermill").filters == []  # the filter is removed after the run
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['lr'\]"):
        study.run_chapter("99_fake", profile="quick", out_dir=tmp_path / "out", root=root, progress=False,
                          overrides={"lr": 1e-4})
