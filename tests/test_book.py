"""The published book (book/*.ipynb, executed by `make study`) shows a reader nothing of the machine or the plumbing."""
from ldm_core.study.bookcheck import check_notebooks
from ldm_core.study.results import project_root


def test_published_chapters_are_clean():
    assert check_notebooks(project_root() / "book") == []


def test_book_formulas_render_offline():
    import yaml

    cfg = yaml.safe_load((project_root() / "_config.yml").read_text())
    assert "sphinx-mathjax-offline" in cfg["sphinx"]["extra_extensions"]
