"""The book checks catch what a reader must never see."""
import json

from ldm_core.bookcheck import check_html, check_notebooks


def _nb(path, cells):
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


def _code(source, tags=(), outputs=()):
    return {"cell_type": "code", "source": source, "metadata": {"tags": list(tags)}, "outputs": list(outputs)}


def test_clean_chapter_passes(tmp_path):
    _nb(tmp_path / "00_x.ipynb", [
        _code("import numpy as np\nch = Chapter('00_x', globals())", ["remove-input"]),
        _code("seed = 0", ["parameters", "remove-cell"]),
        _code("seed = 1", ["injected-parameters", "remove-cell"]),
        _code("plots.image_grid(rows);", ["hide-input"], [{"output_type": "display_data", "data": {"text/plain": "x"}}]),
    ])
    assert check_notebooks(tmp_path, root=tmp_path / "proj") == []


def test_every_problem_is_named(tmp_path):
    proj = tmp_path / "proj"
    _nb(tmp_path / "01_y.ipynb", [
        _code("from ldm_core import plots\n", []),  # import cell shown
        _code("seed = 1", ["injected-parameters"]),  # injected cell shown
        _code("x", ["hide-input"], [{"output_type": "stream", "name": "stderr", "text": "warning"}]),
        _code("y", [], [{"output_type": "stream", "name": "stdout", "text": f"wrote {proj}/results/x"}]),
        _code("z", [], [{"output_type": "execute_result", "data": {"text/html": "<table><td>nan</td></table>"}},
                         {"output_type": "execute_result", "data": {"text/plain": "<Figure size 640x480>"}}]),
        _code("w", [], [{"output_type": "stream", "name": "stdout", "text": "p = 0.000"}]),
    ])
    problems = "\n".join(check_notebooks(tmp_path, root=proj))
    for needle in ("cell 0: an import", "cell 1: papermill's injected", "cell 2: stderr", "cell 3: output shows the machine path",
                   "cell 4: a table shows a NaN", "cell 4: an object repr", "cell 5: 'p = 0.000'"):
        assert needle in problems, needle


def test_html_mathjax_must_be_local(tmp_path):
    (tmp_path / "a.html").write_text('<script src="_static/mathjax/tex-chtml.js"></script><span class="math">x</span>')
    assert check_html(tmp_path, root=tmp_path / "proj") == []
    (tmp_path / "b.html").write_text('<script async src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js">'
                                     '</script><td>NaN</td>')
    problems = "\n".join(check_html(tmp_path, root=tmp_path / "proj"))
    assert "b.html: MathJax is loaded from the network" in problems and "b.html: a table shows a NaN cell" in problems
    assert check_html(tmp_path / "nothing") == ["nothing/: no HTML pages (build the book first)"]


def test_html_unrendered_role_in_prose_but_not_in_code(tmp_path):
    (tmp_path / "a.html").write_text('<pre><span>ch.glue_md("p", "({doc}`01_diagnostics`)")</span></pre><p>fine</p>')
    assert check_html(tmp_path, root=tmp_path / "proj") == []
    (tmp_path / "b.html").write_text('<li>costs 0.001 ({doc}<code>01_diagnostics</code>).</li>')
    assert check_html(tmp_path, root=tmp_path / "proj") == ["b.html: the prose shows the unrendered role '{doc}'"]
