"""Every chapter executes end to end with its quick parameters through papermill (needs the real data). The module
stays on one pytest-xdist worker (--dist loadscope): later chapters read earlier chapters' results. How a chapter
behaves when run by hand: test_chapter_contracts.py; on a second dataset in digit69's schema: test_schema_study.py."""
import json

import pytest

from ldm_core.study import runner as study
from ldm_core.study.bookcheck import glue_problems
from ldm_core.study.results import load_results, verify

pytestmark = pytest.mark.notebook


@pytest.fixture(scope="module")
def shared_results(tmp_path_factory):
    """One results folder for all chapters, run in order: later chapters read earlier chapters' results."""
    return tmp_path_factory.mktemp("results")


@pytest.mark.parametrize("chapter", study.chapters())
def test_chapter_runs_with_quick_params(chapter, tmp_path, real_data, shared_results):
    res = shared_results
    stale = tmp_path / f"{chapter}.failed.ipynb"
    stale.write_text("{}")  # a failure of an earlier run: removed when the chapter next succeeds
    study.run_chapter(chapter, profile="quick", out_dir=tmp_path, progress=False,
                      overrides={"results_root": str(res), "cache_root": str(res / "_cache")})
    assert (tmp_path / f"{chapter}.ipynb").is_file() and not stale.exists()
    metrics, recons, targets, labels = load_results(res / chapter)
    assert metrics["provenance"]["publication"]["kind"] == "results_root"
    verify(res / chapter)  # the npz reproduces the json
    # every value the prose refers to was glued, with the quick parameters too (bookcheck checks the published book)
    assert glue_problems(json.loads((tmp_path / f"{chapter}.ipynb").read_text())) == []
