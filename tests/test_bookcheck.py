"""The book checks catch what a reader must never see."""
import json

from ldm_core.study.bookcheck import check_html, check_notebooks, glue_problems


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


def test_prose_referring_to_a_value_no_cell_glued_and_a_key_glued_twice_are_named(tmp_path):
    glued = {"output_type": "display_data", "metadata": {"scrapbook": {"name": "psnr"}},
             "data": {"application/papermill.record/text/plain": "15.5"}}
    md = {"cell_type": "markdown", "metadata": {}, "source": (
        "Reaches {glue:text}`psnr:.2f` dB, {glue:text}`ssim:.3f`{glue:md}`clause:myst`, "
        "{glue:text}`01_x.ipynb::elsewhere:.2f` (another page's: left to the build).\n\n"
        "```{glue:md} answer\n:format: myst\n```\n\n:::{glue:figure} curve\n:::\n\n```{glue:md}\n:format: myst\n```")}
    _nb(tmp_path / "02_z.ipynb", [md, _code("ch.glue('psnr', 15.5)", ["remove-cell"], [glued]),
                                  _code("ch.glue('psnr', 16.0)", ["remove-cell"], [glued])])
    expected = [f"the prose refers to {k!r}, which no cell glued" for k in ("answer", "clause", "curve", "ssim")]
    expected.append("'psnr' is glued twice")
    assert glue_problems(json.loads((tmp_path / "02_z.ipynb").read_text())) == expected
    assert check_notebooks(tmp_path, root=tmp_path / "proj") == [f"02_z.ipynb: {p}" for p in expected]


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


# ----------------------------------------------------------------------------- raw JSON and parameter tables


def _html_table(index_name, rows, *, styler=False):
    """A table as pandas renders it: DataFrame({"value": rows}).rename_axis(index_name) (or its Styler)."""
    if styler:
        body = "".join(f'<tr><th id="T_a_level0_row{i}" class="row_heading level0 row{i}" >{k}</th>'
                       f'<td id="T_a_row{i}_col0" class="data row{i} col0" >{v}</td></tr>'
                       for i, (k, v) in enumerate(rows.items()))
        return (f'<style type="text/css">#T_a td {{ white-space: nowrap; }}</style><table id="T_a"><thead><tr>'
                f'<th class="blank level0" >&nbsp;</th><th class="col_heading level0 col0" >value</th></tr><tr>'
                f'<th class="index_name level0" >{index_name}</th><th class="blank col0" >&nbsp;</th></tr></thead>'
                f'<tbody>{body}</tbody></table>')
    body = "".join(f"<tr>\n      <th>{k}</th>\n      <td>{v}</td>\n    </tr>" for k, v in rows.items())
    return (f'<div><style scoped>.dataframe tbody tr th {{ vertical-align: top; }}</style><table border="1" '
            f'class="dataframe"><thead><tr style="text-align: right;"><th></th><th>value</th></tr><tr>'
            f"<th>{index_name}</th><th></th></tr></thead><tbody>{body}</tbody></table></div>")


def _html_out(html):
    return {"output_type": "display_data", "data": {"text/html": html, "text/plain": "a table"}}


PARAMS = {"data_dir": "", "val_fraction": "0.2", "n_voxels_grid": "[200, 400, 800, 1600, 0]",
          "map_kinds": "[&#x27;ridge&#x27;, &#x27;pls&#x27;]", "strengths": "0.2, 0.3, 0.5",
          "targets": '{"psnr": 17.0, "ssim": 0.75}', "prior_source": "auto", "class_names": "{}"}
EXPECTED = [
    "the parameter table shows 'data_dir' with an empty value",
    "the parameter table shows 'n_voxels_grid' as raw JSON ('[200, 400, 800, 1600, 0]'); write it for a reader "
    "(e.g. '200, 400, 800')",
    "the parameter table shows 'map_kinds' as raw JSON (\"['ridge', 'pls']\")",
    "the parameter table shows 'targets' as raw JSON ('{\"psnr\": 17.0, \"ssim\": 0.75}'); write it for a reader "
    "(e.g. 'PSNR 17 dB, SSIM 0.75', or a table of its own)",
    "the parameter table shows 'class_names' as raw JSON ('{}')",
]


def test_parameter_table_rows_with_raw_json_or_no_value_are_named(tmp_path):
    _nb(tmp_path / "07_x.ipynb", [
        _code("ch.start()", ["remove-input"], [_html_out(_html_table("parameter", PARAMS))]),
        _code("ch.start()", ["remove-input"], [_html_out(_html_table("parameter", PARAMS, styler=True))]),
        _code("show()", ["hide-input"], [_html_out(_html_table("compute (CPU)", {"steps": "", "grid": "[1, 2]"}))]),
    ])
    problems = check_notebooks(tmp_path, root=tmp_path / "proj")
    for cell in (0, 1):
        mine = [p for p in problems if p.startswith(f"07_x.ipynb, cell {cell}: ")]
        assert len(mine) == len(EXPECTED), mine  # one message per row: the JSON row is not reported twice
        for needle in EXPECTED:
            assert any(needle in p for p in mine), needle
    assert not [p for p in problems if "cell 2" in p]  # only parameter tables are held to this


def test_parameter_table_in_markdown_and_clean_rows_pass(tmp_path):
    md = "| parameter | value |\n| --- | --- |\n| data_dir |  |\n| sizes | [10, 20] |\n| sizes, readable | 10, 20 |\n"
    clean = {"val_fraction": "0.2", "strengths": "0.2, 0.3, 0.5", "data file": "digit69_28x28.mat",
             "targets": "PSNR 17 dB, SSIM 0.75"}
    _nb(tmp_path / "01_x.ipynb", [
        _code("show()", ["remove-input"], [{"output_type": "display_data", "data": {"text/markdown": md}}]),
        _code("show()", ["remove-input"], [_html_out(_html_table("parameter", clean))]),
    ])
    problems = check_notebooks(tmp_path, root=tmp_path / "proj")
    assert problems == ["01_x.ipynb, cell 0: the parameter table shows 'data_dir' with an empty value (leave the row "
                        "out or say what the default means)",
                        "01_x.ipynb, cell 0: the parameter table shows 'sizes' as raw JSON ('[10, 20]'); write it for "
                        "a reader (e.g. '200, 400, 800')"]


def test_raw_json_in_any_output_or_glued_value_is_named(tmp_path):
    glued = {"output_type": "display_data", "metadata": {"scrapbook": {"name": "targets"}},
             "data": {"application/papermill.record/text/plain": "{'psnr': 17.0, 'ssim': 0.75}"}}
    _nb(tmp_path / "08_x.ipynb", [
        _code("print(res)", ["hide-input"], [{"output_type": "stream", "name": "stdout",
                                              "text": 'targets: {"psnr": 17.0, "id2_within": 0.95}\n'}]),
        _code("show(t)", ["hide-input"],
              [_html_out("<table><tr><th>m</th><td>{&quot;psnr&quot;: 17.0}</td></tr></table>")]),
        _code("ch.glue('targets', t)", ["remove-cell"], [glued]),  # hidden cell, but the glued value reaches the page
        _code("fine", ["hide-input"], [
            _html_out('<style>#T td { white-space: nowrap; }</style><table><tr><th>a</th><td>{1, 2}</td></tr></table>'),
            {"output_type": "display_data", "data": {"text/markdown": "$\\frac{a}{b}$, a set {x: x > 0}",
                                                     "text/plain": "<IPython.core.display.Markdown object>"}},
            {"output_type": "display_data", "data": {"image/png": "iVBOR", "text/plain": "<Figure size 640x480>"}},
            {"output_type": "display_data", "data": {"application/json": {"psnr": 1.0}, "text/plain": "ok"}}]),
        _code("hidden", ["remove-cell"], [{"output_type": "stream", "name": "stdout", "text": '{"psnr": 1.0}'}]),
    ])
    problems = check_notebooks(tmp_path, root=tmp_path / "proj")
    assert len(problems) == 3, problems
    assert problems[0].startswith("08_x.ipynb, cell 0: output shows raw JSON ('targets: {\"psnr\": 17.0, ")
    assert problems[0].endswith("show it as a table or a sentence (the full record stays in metrics.json)")
    assert problems[1].startswith("08_x.ipynb, cell 1: output shows raw JSON (") and '{"psnr": 17.0' in problems[1]
    assert problems[2].startswith("08_x.ipynb, cell 2: output shows raw JSON (\"{'psnr': 17.0, ")


def test_html_parameter_table_problems(tmp_path):
    (tmp_path / "a.html").write_text(_html_table("parameter", {"val_fraction": "0.2", "sizes": "10, 20"}))
    assert check_html(tmp_path, root=tmp_path / "proj") == []
    (tmp_path / "b.html").write_text(_html_table("parameter", {"data_dir": "", "sizes": "[10, 20]"}))
    assert check_html(tmp_path, root=tmp_path / "proj") == [
        "b.html: the parameter table shows 'data_dir' with an empty value",
        "b.html: the parameter table shows 'sizes' as raw JSON ('[10, 20]')"]
