"""Every chapter runs on a second dataset in digit69's schema (tests/schema_dataset.py), through the parameters
alone, and says what it measured on that data, not digit69's facts (issue 18). Its own module so that pytest-xdist
can run it beside the quick study of tests/test_notebooks.py (each module stays on one worker: --dist loadscope)."""
import re
import time

import nbformat
import papermill as pm
import pytest

from ldm_core.study import runner as study
from ldm_core.study.parameters import CHAPTER_PARAMS, requirements
from ldm_core.study.results import load_results

from .conftest import REAL_DATA_DIR
from .schema_dataset import write_schema_dataset

pytestmark = pytest.mark.notebook

SCHEMA_CLASS_NAMES = {21: "ring", 22: "square", 23: "triangle"}  # given as a parameter: papermill passes "21", ...
SCHEMA_SHRINK = {"n_boot": 100, "n_perm": 10}  # below the quick profile where a chapter allows it: time, not paths
#: What a page would say only because digit69's facts were typed into a notebook (the schema dataset has 60
#: training, 48 fitting, 12 validation and 12 test trials, 400 voxels, 20x20 images, classes ring/square/triangle).
DIGIT69_TEXT = [r"\b90 training", r"\b90 trials", r"\(90 trials\)", r"\bon (all )?(the )?90\b", r"\b72 trials",
                r"\(72 trials\)", r"\b72 fitting", r"\bon (the )?72\b", r"\b18 validation", r"\b10 test\b",
                r"\b3,?092\b", r"\b1,?969\b", r"digit69 validation and test", r"every digit shares",
                r"\bclass 21\b"]  # the last: the class_names parameter (21 -> ring) was ignored somewhere


#: digit69's classes and image size, wrong on a page of the schema dataset -- except where a chapter describes the
#: default image prior, 28x28 handwritten sixes and nines (chapters 07 and later).
DIGIT69_CLASSES = [r"\bsix and nine\b", r"\bsixes and nines\b", r"\bsix or nine\b", r"\b28\s*[×x]\s*28\b",
                   r"\b784\b"]
PRIOR_CHAPTERS = ("07_image_prior", "08_benchmarks", "09_conclusions", "10_executive_summary")
#: What chapters 09 and 10 (pages that read results only) would say only because digit69 was assumed: the published
#: table (DGMM) quoted "on the same data", the dataset's name, and digit words other than the default image prior's
#: description ("MNIST digits", from chapter 07's results) -- the schema dataset's classes are shapes.
LEDGER_PAGES = ("09_conclusions", "10_executive_summary")
LEDGER_TEXT = [r"\bDGMM\b", r"\bdigit69\b", r"(?<!MNIST )\bdigits?\b"]


def visible_text(path) -> str:
    """What a reader of the executed notebook's page sees without unfolding code: Markdown cells, and the outputs
    of cells not removed (stdout, Markdown, HTML without tags, plain text; glued values are shown where the
    Markdown cites them, so they count)."""
    nb = nbformat.read(str(path), as_version=4)
    parts = []
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "remove-cell" in tags:
            continue
        if cell.cell_type == "markdown":
            parts.append(cell.source)
            continue
        if cell.cell_type != "code" or "remove-output" in tags:
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                if out.get("name") == "stdout":
                    parts.append(out.get("text", ""))
                continue
            data = _mimes(out)
            for mime in ("text/markdown", "text/html", "text/plain"):
                if mime in data:
                    parts.append(re.sub(r"<[^>]+>", " ", data[mime]) if mime == "text/html" else data[mime])
                    break
    return "\n".join(parts)


def _mimes(out) -> dict[str, str]:
    """An output's data by plain MIME type: glued values (myst-nb's ``display=False``) carry a prefix before it."""
    data = {}
    for mime, value in out.get("data", {}).items():
        plain = mime[mime.index("text/"):] if "text/" in mime else mime
        data[plain] = value if isinstance(value, str) else "".join(value)
    return data


def digit69_facts_on_page(text: str, *, classes: bool = True, ledger: bool = False) -> list[str]:
    """Each pattern of :data:`DIGIT69_TEXT` (and, with ``classes``, :data:`DIGIT69_CLASSES`; with ``ledger``,
    :data:`LEDGER_TEXT`) found, with context."""
    found = []
    for pattern in DIGIT69_TEXT + (DIGIT69_CLASSES if classes else []) + (LEDGER_TEXT if ledger else []):
        for m in re.finditer(pattern, text, flags=re.IGNORECASE):
            found.append(f"{pattern!r}: ...{text[max(0, m.start() - 60): m.end() + 40]!r}...")
    return found


def test_visible_text_and_the_digit69_patterns(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("fitted on the 90 training trials"),
                nbformat.v4.new_markdown_cell("hidden: 3092 voxels", metadata={"tags": ["remove-cell"]}),
                nbformat.v4.new_code_cell("x", metadata={"tags": ["remove-input"]}, outputs=[
                    nbformat.v4.new_output("display_data", data={"text/html": "<td>(72 trials)</td>",
                                                                 "text/plain": "ignored: html wins"}),
                    nbformat.v4.new_output("stream", name="stderr", text="10 test trials on stderr: hidden")])]
    nbformat.write(nb, tmp_path / "x.ipynb")
    text = visible_text(tmp_path / "x.ipynb")
    assert "3092" not in text and "stderr" not in text and "ignored" not in text
    found = digit69_facts_on_page(text)
    assert any("90 training" in f for f in found) and any("(72 trials)" in f for f in found)
    assert not any("3092" in f or "10 test" in f for f in found)  # removed cells and stderr are not on the page
    assert digit69_facts_on_page("48 fitting and 12 validation trials; 12 test trials; 400 voxels; 20×20; "
                                 "ring, square and triangle; 1990 images; 110 test") == []
    assert digit69_facts_on_page("a prior of sixes and nines", classes=False) == []
    assert len(digit69_facts_on_page("a prior of sixes and nines")) == 1
    first_page = "DGMM reports on the same data; the test digits; digit69 {cite}; a digit accuracy"
    assert len(digit69_facts_on_page(first_page, classes=False, ledger=True)) == 4
    assert digit69_facts_on_page(first_page, classes=False) == []  # the ledger patterns only where asked
    found = digit69_facts_on_page("learned from 1,969 unpaired MNIST digits", classes=False, ledger=True)
    assert len(found) == 1 and "1,?969" in found[0]  # the count is typed; the prior's own description is fine


def _failure(e: Exception) -> str:
    """Where a chapter failed: the cell (its first lines of code) and the exception, not a truncated traceback."""
    if not isinstance(e, pm.PapermillExecutionError):
        return f"{type(e).__name__}: {str(e)[-1500:]}"
    head = "\n      ".join((e.source or "").splitlines()[:4])
    return f"cell {e.cell_index} raised {e.ename}: {e.evalue}\n    its code begins:\n      {head}"


@pytest.fixture(scope="module")
def schema_study(tmp_path_factory):
    """Every chapter, in order, with its quick parameters on the schema dataset (data_dir = the .mat file); the
    prior images are the default ones (MNIST digits, found through LDM_DATA_DIR), which cannot draw shapes. A chapter
    whose inputs failed is not run; the others are, so each failure is reported once, where it happens."""
    if not REAL_DATA_DIR:
        pytest.skip("the default image prior needs mnist_6_9.npz: set LDM_DATA_DIR (.ci/run does)")
    base = tmp_path_factory.mktemp("schema")
    info = write_schema_dataset(base / "shapes_schema.mat")
    out, res = base / "book", base / "results"
    runs, t_start = {}, time.perf_counter()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LDM_DATA_DIR", REAL_DATA_DIR)
        mp.setenv("XDG_CACHE_HOME", str(base / "xdg"))
        for chapter in study.chapters():
            failed_inputs = [c for c in requirements(chapter) if not runs.get(c, {}).get("ok")]
            if failed_inputs:  # it reads the results of a chapter that failed: not run (the others still are)
                runs[chapter] = {"ok": False, "error": f"not run: it reads {failed_inputs}, which failed", "wall_s": 0}
                continue
            known = CHAPTER_PARAMS[chapter]
            overrides = {"results_root": str(res), "cache_root": str(base / "cache")}
            overrides.update({k: v for k, v in {"data_dir": str(info["path"]), "class_names": SCHEMA_CLASS_NAMES,
                                                **SCHEMA_SHRINK}.items()
                              if k in known and (known[k].low is None or v >= known[k].low)})
            t = time.perf_counter()
            try:
                study.run_chapter(chapter, profile="quick", out_dir=out, overrides=overrides, progress=False)
                runs[chapter] = {"ok": True, "notebook": out / f"{chapter}.ipynb"}
            except Exception as e:
                runs[chapter] = {"ok": False, "error": _failure(e)}
            finally:
                runs[chapter]["wall_s"] = round(time.perf_counter() - t, 1)
    print(f"\n[schema study] {sum(r['ok'] for r in runs.values())} of {len(study.chapters())} chapters ran in "
          f"{time.perf_counter() - t_start:.0f} s: " + ", ".join(f"{c} {r['wall_s']} s" for c, r in runs.items()))
    return {"info": info, "runs": runs, "results": res}


@pytest.mark.parametrize("chapter", study.chapters())
def test_every_chapter_runs_on_another_dataset_in_the_schema(schema_study, chapter):
    run = schema_study["runs"][chapter]
    assert run["ok"], f"{chapter} failed on the schema dataset: {run.get('error')}"
    problems = digit69_facts_on_page(visible_text(run["notebook"]), classes=chapter not in PRIOR_CHAPTERS,
                                     ledger=chapter in LEDGER_PAGES)
    assert not problems, f"{chapter}'s page states digit69's facts on another dataset:\n  " + "\n  ".join(problems)


def test_chapter_00_counts_the_planted_test_images_repeated_in_training(schema_study):
    assert schema_study["runs"].get("00_data_and_metrics", {}).get("ok"), "chapter 00 did not run"
    metrics = load_results(schema_study["results"] / "00_data_and_metrics")[0]
    planted = schema_study["info"]
    assert metrics["extra"]["test_in_training"] == planted["n_repeated"] == 4
    assert metrics["extra"]["test_in_training_detail"]["repeated"] == planted["repeated_test"]
    assert "identification then measures retrieval, not reconstruction" in \
        visible_text(schema_study["runs"]["00_data_and_metrics"]["notebook"]) + _glued_answer(
            schema_study["runs"]["00_data_and_metrics"]["notebook"])


def _glued_answer(path) -> str:
    """The answer paragraph a chapter glued (shown at the top of its page)."""
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if (out.get("metadata", {}).get("scrapbook", {}) or {}).get("name") == "answer":
                data = _mimes(out)
                return data.get("text/markdown", "") or data.get("text/plain", "")
    return ""


def test_every_answer_warns_about_repeated_test_images(schema_study):
    """Each chapter's answer (the executive summary, which glues none, anywhere on its page) says that
    identification then measures retrieval."""
    def says(chapter, run):
        text = visible_text(run["notebook"]) if chapter == "10_executive_summary" else _glued_answer(run["notebook"])
        return "identification then measures retrieval" in text

    failed = sorted(c for c in study.chapters() if not schema_study["runs"].get(c, {}).get("ok"))
    assert not failed, f"chapters that did not run, so their answers were not checked: {failed}"  # no vacuous pass
    missing = [c for c in study.chapters() if not says(c, schema_study["runs"][c])]
    assert not missing, f"answers without the test-in-training warning: {missing}"


def test_chapter_07_flags_a_prior_that_cannot_represent_the_stimuli(schema_study):
    assert schema_study["runs"].get("07_image_prior", {}).get("ok"), "chapter 07 did not run"
    extra = load_results(schema_study["results"] / "07_image_prior")[0]["extra"]
    assert extra.get("prior_fits_stimuli") is False, "MNIST digits cannot draw rings, squares and triangles"
