"""The chapter protocol: parameters refused before any work, results written where they belong."""
import json

import numpy as np
import pytest

from ldm_core.study.chapter import Chapter, relative
from ldm_core.metrics import evaluate
from ldm_core.study.parameters import ParameterError, defaults
from ldm_core.study.results import load_results, project_root

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
    from ldm_core.study.runner import load_params

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


# --- the parameter table a reader sees ----------------------------------------------------------------


def test_param_table_is_short_readable_and_has_no_json(tmp_path):
    from ldm_core.study.parameters import defaults as dflt

    from ldm_core.study.names import metric_label

    ch = Chapter("07_image_prior", {"np": np})
    ch.params = {**dflt("07_image_prior"), "n_voxels_grid": [200, 400, 800, 1600, 0]}
    table = ch.param_table()
    text = table.to_string()
    assert table.index.name == "parameter" and list(table.columns) == ["value"]
    assert "data file" not in table.index and "class names" not in table.index  # empty values are left out
    assert table.loc["voxel counts screened", "value"] == "200, 400, 800, 1,600, all"  # "0: all" in its doc
    assert table.loc["targets (test, seeds pooled)", "value"] == ", ".join(  # reader names of the metrics
        f"{metric_label(m, short=True)} ≥ {v}" for m, v in (("psnr", 17), ("ssim", 0.75), ("pixel_r", 0.88),
                                                              ("id2", 1), ("id2_within", 0.95)))
    assert table.loc["targets (test, seeds pooled)", "value"].startswith("PSNR (dB) ≥ 17, SSIM ≥ 0.75")
    assert table.loc["fMRI → latent maps screened", "value"] == "ridge, pls, mlp"
    assert table.loc["prior diffusion steps", "value"] == "8,000"
    assert not any(c in text for c in "{}[]\"") and "results_root" not in text and "n_voxels_grid" not in text
    assert len(table) == len([k for k, v in ch.science_params().items() if v not in ("", [], {})])


def test_param_table_shows_a_data_file_by_name_and_class_names_readably(tmp_path):
    ch = _start(tmp_path, results_root=str(tmp_path), data_dir="/some/machine/folder/shapes.mat",
                class_names={"21": "ring", "22": "square"})
    table = ch.param_table()
    assert table.loc["data file", "value"] == "shapes.mat"  # never the machine's folders
    assert table.loc["class names", "value"] == "21: ring, 22: square"
    assert table.loc["bootstrap resamples", "value"] == "2,000"


def test_param_values_for_people():
    from ldm_core.study.param_labels import param_label, param_value

    assert param_value([1e-5, 1e-4, 5e-4, 1e-3]) == "10⁻⁵, 10⁻⁴, 5×10⁻⁴, 0.001"
    assert param_value(True) == "yes" and param_value(0.2) == "0.2" and param_value(12000) == "12,000"
    assert param_value({"x0": {"prediction": "x0"}, "x0, mean of 2": {"prediction": "x0", "n_samples": 2}}) == \
        "x0 (prediction x0); x0, mean of 2 (prediction x0, n samples 2)"
    assert param_value(0, "voxels the map reads; 0: all") == "all" and param_value(0) == "0"
    assert param_label("lr") == "learning rate"
    assert param_label("new_knob", "weight of the new term (report: 0.1); more words") == "weight of the new term"
    assert param_label("other_knob", "") == "other knob"


# --- data facts and the test-in-training warning ------------------------------------------------------


@pytest.fixture
def glued(monkeypatch):
    """Record what a chapter glues instead of sending it to a notebook."""
    out = {}
    monkeypatch.setattr(Chapter, "glue", staticmethod(lambda key, value: out.__setitem__(key, value)))
    monkeypatch.setattr(Chapter, "glue_md", staticmethod(lambda key, text: out.__setitem__(key, text)))
    return out


def _schema(tmp_path, **kw):
    from tests.schema_dataset import write_schema_dataset

    return write_schema_dataset(tmp_path / "shapes.mat", **kw)


def test_glue_data_glues_the_datas_counts_and_names(tmp_path, glued):
    from ldm_core.splits import prepare_data

    info = _schema(tmp_path)
    data = prepare_data(str(info["path"]), class_names={"21": "ring"}, verbose=0)
    ch = _start(tmp_path, results_root=str(tmp_path / "res"))
    facts = ch.glue_data(data)
    want = {"n_train": 60, "n_test": 12, "n_fit": 48, "n_val": 12, "n_voxels": 400, "image_size": "20×20",
            "n_pixels": 400, "n_classes": 3, "classes": "ring, class 22 and class 23", "dataset": "shapes.mat"}
    assert facts == want and {k: glued[k] for k in want} == want


def test_glue_data_of_raw_data_with_and_without_the_split(tmp_path, glued, synthetic_mat):
    from ldm_core.data import load_digit69
    from ldm_core.splits import train_val_split

    raw = load_digit69(synthetic_mat, verbose=0)
    ch = _start(tmp_path, results_root=str(tmp_path / "res"))
    facts = ch.glue_data(raw)
    assert "n_fit" not in facts and facts["n_train"] == 20 and facts["classes"] == "six and nine"
    _, val_idx = train_val_split(raw.labels_train, val_fraction=0.2, seed=0)
    facts = ch.glue_data(raw, val_idx=val_idx)
    assert (facts["n_fit"], facts["n_val"]) == (16, 4) and glued["n_fit"] == 16


def _data_chapter_results(root, *, count, n_test=12, sha="a" * 64):
    t = np.zeros((2, 4, 4), np.float32)
    from ldm_core.study.results import write_results

    detail = {"count": count, "n_test": n_test, "threshold": 0.99, "max_r": [], "index": [], "repeated": []}
    write_results(root / CH, chapter=CH, metrics={}, reconstructions={}, targets=t, labels=np.array([1, 2]),
                  params={}, wall_time_s=0.0, extra={"test_in_training": count, "test_in_training_detail": detail,
                                                     "data_sha256": sha})


def _model_chapter(tmp_path):
    before = {"np": np}
    ns = {**before, **defaults("02_unet_fix"), "results_root": str(tmp_path)}
    return Chapter("02_unet_fix", before).start(ns, show=False)


def test_every_later_chapter_warns_when_test_images_repeat_in_training(tmp_path, glued):
    _data_chapter_results(tmp_path, count=4)
    ch = _model_chapter(tmp_path)
    assert ch.test_in_training == 4
    ch.answer("Ridge reaches r 0.97.")
    assert glued["answer"].startswith("Ridge reaches r 0.97.\n\n**Caution:** 4 of the 12 test images also occur "
                                      "among the training images (pixel r > 0.99; chapter 0), so")
    assert "identification then measures retrieval, not reconstruction" in glued["answer"]
    assert ch.answer_text == glued["answer"]


def test_no_warning_without_repeats_or_without_chapter_00s_count(tmp_path, glued):
    _data_chapter_results(tmp_path, count=0)
    ch = _model_chapter(tmp_path)
    ch.answer("Fine.")
    assert glued["answer"] == "Fine." and ch.test_in_training == 0
    ch00 = _start(tmp_path / "x", results_root=str(tmp_path / "x"))  # chapter 00 passes the count it computed
    ch00.answer("Floors.")
    assert glued["answer"] == "Floors."
    ch00.answer("Floors.", test_in_training={"count": 1, "n_test": 10, "threshold": 0.99})
    assert "1 of the 10 test images also occur among the training images (pixel r > 0.99), so" in glued["answer"]
    ch00.answer("Floors.", test_in_training=2)
    assert "**Caution:** 2 test images also occur among" in glued["answer"]


def test_an_answer_written_in_markdown_glues_only_the_warning(tmp_path, glued):
    _data_chapter_results(tmp_path, count=4)
    ch = _model_chapter(tmp_path)
    ch.answer()
    assert glued["answer"].startswith("**Caution:** 4 of the 12 test images also occur among the training images")
    _data_chapter_results(tmp_path / "none", count=0)
    _model_chapter(tmp_path / "none").answer()
    assert glued["answer"] == ""


def test_glue_helpers_glue_values_a_format_spec_on_the_page_can_format(monkeypatch):
    import myst_nb
    from IPython.core.formatters import format_display_data
    from myst_nb.core.variables import format_plain_text

    out = {}
    monkeypatch.setattr(myst_nb, "glue", lambda key, value, display: out.__setitem__(key, (value, display)))
    ch = Chapter.__new__(Chapter)
    ch.glue_values(lr=np.float32(0.5), n=np.int64(12345), name=np.str_("ridge"), big=np.float64(np.inf),
                   missing=np.float64(np.nan), scalar=np.array(0.25))
    ch.glue_estimates(gain={"mean": np.float64(1.25), "ci_low": -0.5, "ci_high": 2.0})
    ch.glue_scores(base={"psnr": {"mean": np.float64(15.5)}, "ssim": {"mean": 0.68}, "pixel_r": {"mean": 0.84}})
    assert sorted(out) == ["base_pixel_r", "base_psnr", "base_ssim", "big", "gain", "gain_high", "gain_low", "lr",
                           "missing", "n", "name", "scalar"]
    assert not any(display for _, display in out.values())  # glued for the page, not shown in the cell

    def page(key, spec):  # what {glue:text}`key:spec` shows (myst-nb reads the value's text/plain form)
        return format_plain_text(format_display_data(out[key][0])[0]["text/plain"], spec)

    assert page("lr", ".2f") == "0.50" and page("n", ",d") == "12,345" and page("name", "") == "ridge"
    assert page("big", ".2f") == "inf" and page("missing", ".2f") == "nan" and page("scalar", ".0%") == "25%"
    assert page("gain", "+.2f") == "+1.25" and page("gain_low", "+.2f") == "-0.50"
    assert page("base_psnr", ".1f") == "15.5"


def test_glue_data_warns_when_chapter_00_saw_another_file(tmp_path, glued):
    from ldm_core.splits import prepare_data

    info = _schema(tmp_path)
    _data_chapter_results(tmp_path, count=0, sha="b" * 64)
    ch = _model_chapter(tmp_path)
    with pytest.raises(ValueError, match=r"chapter 02_unet_fix reads chapter 00_data_and_metrics's results .* "
                                         r"computed on another data file"):
        ch.glue_data(prepare_data(str(info["path"]), verbose=0))


# --- two runs into one results folder -----------------------------------------------------------------


def test_two_writers_of_one_results_folder_last_wins_and_a_mixed_pair_is_refused(tmp_path):
    """What the README promises for two plain papermill runs with the same results_root."""
    import shutil

    from ldm_core.study.results import ResultsMismatchError, write_results

    t = np.random.default_rng(0).random((3, 4, 4)).astype(np.float32)

    def write(folder, value):
        rec = np.full_like(t, value)
        m = {"m": {"mean_value": value}}
        return write_results(folder, chapter=CH, metrics=m, reconstructions={"m": rec}, targets=t,
                             labels=np.array([1, 2, 1]), params={"run": value}, wall_time_s=0.0)

    write(tmp_path / "a", 0.25)
    write(tmp_path / "a", 0.75)  # the second run finishes last: its pair is what is read
    doc, recons, _, _ = load_results(tmp_path / "a")
    assert doc["params"]["run"] == 0.75 and recons["m"].max() == 0.75
    write(tmp_path / "b", 0.25)
    shutil.copy(tmp_path / "b" / "reconstructions.npz", tmp_path / "a" / "reconstructions.npz")  # interleaved writes
    with pytest.raises(ResultsMismatchError, match="two runs wrote this folder at once"):
        load_results(tmp_path / "a")


def test_load_results_reads_the_npz_it_checked(tmp_path, monkeypatch):
    """The npz is read once: a writer replacing it between the check and the load cannot slip in other images."""
    from pathlib import Path

    from ldm_core.study import results as R

    t = np.random.default_rng(0).random((2, 4, 4)).astype(np.float32)
    R.write_results(tmp_path, chapter=CH, metrics={"m": {}}, reconstructions={"m": t}, targets=t,
                    labels=np.array([1, 2]), params={}, wall_time_s=0.0)
    reads = []
    original = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self.name) or original(self))
    _, recons, _, _ = R.load_results(tmp_path)
    assert reads == ["reconstructions.npz"] and np.array_equal(recons["m"], t)


def test_paths_inside_values_show_only_their_names():
    from ldm_core.study.param_labels import param_value

    assert param_value("/home/me/data/shapes_prior.npz") == "shapes_prior.npz"
    assert param_value("vgg16:/models/vgg/state_dict.pth") == "vgg16:state_dict.pth"
    assert param_value("auto") == "auto" and param_value("/x/y.mat", kind="path") == "y.mat"


def test_every_parameter_has_a_short_reader_name():
    from ldm_core.study.param_labels import LABEL_LENGTH, param_label
    from ldm_core.study.parameters import CHAPTER_PARAMS, RUN_PARAMS

    for chapter, spec in CHAPTER_PARAMS.items():
        labels = [param_label(n, p.doc) for n, p in spec.items() if n not in RUN_PARAMS]
        assert all(0 < len(label) <= LABEL_LENGTH for label in labels), (chapter, labels)
        assert not any("_" in label for label in labels), (chapter, labels)  # words, not internal names
    assert param_label("x", "a very long description of a knob, which goes on and on and on for ever more") == \
        "a very long description of a knob"


def test_param_table_writes_internal_choice_names_in_words():
    from ldm_core.study.parameters import defaults as dflt

    ch = Chapter("05_conditioning_vae", {"np": np})
    ch.params = {**dflt("05_conditioning_vae"), "conditionings": ["add", "cross_attn", "film"]}
    table = ch.param_table()
    assert table.loc["conditionings compared", "value"] == "additive, cross-attention, FiLM"
    assert table.loc["selection metric (validation)", "value"] == "SSIM"
    assert table.loc["denoiser predicts", "value"] == "the clean latent x0"
    ch = Chapter("03_loss_function", {"np": np})
    ch.params = {**dflt("03_loss_function"), "perceptual_net": "vgg16:/machine/folder/vgg.pth"}
    assert ch.param_table().loc["perceptual feature network", "value"] == "VGG16, local weights vgg.pth"
    ch.params["perceptual_net"] = "digits"
    assert ch.param_table().loc["perceptual feature network", "value"].startswith("self-trained digit CNN")
