import json

import pytest

from ldm_core.study import runner as study
from ldm_core.study.placeholders import chapter_heading, write_placeholders


def test_placeholders_for_missing_chapters_only(tmp_path):
    all_chapters = study.chapters()
    present = all_chapters[0]
    (tmp_path / f"{present}.ipynb").write_text("{}")
    (tmp_path / f"{present}.md").write_text("stale placeholder")  # Sphinx refuses two files for one page
    missing = write_placeholders(tmp_path)
    assert missing == all_chapters[1:]
    assert not (tmp_path / f"{present}.md").exists()
    page = (tmp_path / f"{missing[0]}.md").read_text()
    assert page.startswith("# ") and "**Answer.**" not in page
    assert f"--only {missing[0]}" in page and "not in this record" in page


def test_no_placeholders_when_every_chapter_is_present(tmp_path):
    for ch in study.chapters():
        (tmp_path / f"{ch}.ipynb").write_text("{}")
    assert write_placeholders(tmp_path) == []
    assert list(tmp_path.glob("*.md")) == []


def test_heading_is_title_and_question(tmp_path):
    nb = {"cells": [{"cell_type": "code", "source": ["x = 1"]},
                    {"cell_type": "markdown", "source": ["# 3. Title\n\n```{glue:md} x\n:format: myst\n```\n\n"
                                                             "**Question.** Why?\n\n**Answer.**\n\nglue"]}]}
    (tmp_path / "n.ipynb").write_text(json.dumps(nb))
    assert chapter_heading(tmp_path / "n.ipynb") == "# 3. Title\n\n**Question.** Why?"


def test_missing_book_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        write_placeholders(tmp_path / "nope")
