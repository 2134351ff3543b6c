"""Checks of the rendered book that a program can make: what a reader must never see.

:func:`check_notebooks` reads the executed chapters in ``book/``; :func:`check_html` reads the built HTML. Each
returns a list of problems (empty when the book is clean); ``python -m ldm_core.study.bookcheck [book_dir] [html_dir]``
prints them and exits 1 if there are any (``make test`` and ``make study`` run it after the build).

What is checked:

- no machine paths in any output: the project's absolute path, the home folder, ``/tmp/``;
- no "nan" / "NaN" cell in a rendered table, no bare "p = 0.000";
- no visible import, parameter or results-writing cell: a code cell that imports, builds the chapter's
  :class:`~ldm_core.study.chapter.Chapter`, holds the parameters, or calls ``ch.write`` must be tagged ``remove-input`` or
  ``remove-cell``; papermill's injected-parameters cell must be removed (``remove-cell``);
- no stderr output (warnings, progress-bar residue) and no object repr (``<Figure``, ``<matplotlib``) in outputs;
- no raw JSON or dict repr in what a reader sees (``{"psnr": 17.0, ...}`` in a cell's output, a table or a glued
  value): the full record stays in ``metrics.json``, the page shows it as a table or a sentence;
- parameter tables (a table whose header or caption reads "parameter") readable: no row whose value is raw JSON
  (an object or a list, ``["ridge", "pls"]``) and no row with an empty value (an unset ``data_dir``);
- every glued value the prose refers to (``{glue:text}`key```, ``{glue:md}`key```, a ``{glue:md} key``
  directive) was glued by the notebook, and no key is glued twice: :func:`glue_problems`, also run on each
  chapter's quick execution by the tests, so that a key missing under other parameters is caught too;
- no MyST role left unrendered in the prose (``{doc}``, ``{glue:...}``: glued Markdown pasted inline without
  ``:myst``, for instance);
- formulas render offline: the built pages load MathJax from the book's ``_static/``, never from a CDN.
"""
from __future__ import annotations

import ast
import html as html_lib
import json
import os
import re
import sys
from pathlib import Path

__all__ = ["check_notebooks", "check_html", "glue_problems", "main"]

_HIDDEN = ("remove-input", "remove-cell")
_NAN_CELL = re.compile(r"<td[^>]*>\s*(nan|NaN)\s*</td>")
_REPR = re.compile(r"<(Figure|matplotlib\.|Axes|pandas\.io\.formats\.style)")
_P_ZERO = re.compile(r"p\s*=\s*0\.000\b")
_RAW_ROLE = re.compile(r"\{(doc|ref|numref|glue:?[a-z]*|cite)\}")
_CODE_BLOCK = re.compile(r"<pre\b.*?</pre>", flags=re.S)
_QUOTE = r"(?:\"|'|&quot;|&#34;|&#x22;|&#39;|&#x27;)"
_RAW_JSON = re.compile(r"[{,]\s*" + _QUOTE + r"[^\"'<>\n]{1,60}?" + _QUOTE + r"\s*:\s*\S")  # {"psnr": 17.0 / {'a': 1
_HTML_TABLE = re.compile(r"<table\b.*?</table>", flags=re.S | re.I)
_PARAM_HEADER = re.compile(r"<(th|caption)\b[^>]*>\s*parameters?\b[^<]*</\1>", flags=re.I)
_ROW = re.compile(r"<tr\b[^>]*>(.*?)</tr>", flags=re.S | re.I)
_CELL = re.compile(r"<(th|td)\b[^>]*>(.*?)</\1>", flags=re.S | re.I)
_TAG = re.compile(r"<[^>]+>")
_TEXT_KINDS = ("text/html", "text/markdown", "text/latex", "text/plain")  # richest first: what a page shows
_GLUE_PREFIX = "application/papermill.record/"
# a glue role's key ({glue:text}`key:.2f`) or a glue directive's (```{glue:md} key, :::{glue:figure} key); a key in
# another document (path::key) is left to the book build
_GLUE_REF = re.compile(r"\{glue(?::[a-z]+)?\}`([^`]+)`|^(?:`{3,}|:{3,})\{glue(?::[a-z]+)?\}[ \t]+(\S+)", flags=re.M)


def _machine_paths(root: Path) -> list[str]:
    return sorted({str(root.resolve()), os.path.expanduser("~") + "/", "/tmp/"} - {"/", ""})


def _outputs_text(cell: dict) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", "") if isinstance(out.get("text"), str) else "".join(out.get("text", [])))
        for v in out.get("data", {}).values():
            parts.append(v if isinstance(v, str) else "".join(v) if isinstance(v, list) else "")
    return "\n".join(parts)


def _plain_only(out: dict) -> str:
    """The text of an output that has no richer form (a figure's image carries a '<Figure ...>' text fallback)."""
    data = out.get("data", {})
    if any(k.startswith("image/") or k == "text/html" for k in data):
        return ""
    text = data.get("text/plain", out.get("text", ""))
    return text if isinstance(text, str) else "".join(text)


def _text(value) -> str:
    return value if isinstance(value, str) else "".join(value) if isinstance(value, list) else ""


def _shown_texts(out: dict) -> list[str]:
    """What a page shows of one output: a stream's text, and the richest text form of its data (and of a glued
    value, ``application/papermill.record/...``); images and other data are left out."""
    texts = [_text(out.get("text", ""))] if out.get("output_type") == "stream" else []
    data = out.get("data", {})
    for prefix in ("", _GLUE_PREFIX):
        for kind in _TEXT_KINDS:
            if prefix + kind in data:
                texts.append(_text(data[prefix + kind]))
                break
    return [t for t in texts if t]


def _plain_cell(fragment: str) -> str:
    return " ".join(html_lib.unescape(_TAG.sub(" ", fragment)).split())


def _raw_json_kind(value: str) -> str:
    """"object" or "list" when ``value`` is a JSON (or Python) object or list written out ('{"psnr": 17.0}',
    '[200, 400]', "['a']"), else ""."""
    v = value.strip()
    if not v or v[0] not in "[{" or v[-1] not in "]}":
        return ""
    for parse in (json.loads, ast.literal_eval):
        try:
            parsed = parse(v)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        return "object" if isinstance(parsed, dict) else "list" if isinstance(parsed, (list, tuple)) else ""
    return ""


_READABLE = {"list": "e.g. '200, 400, 800'", "object": "e.g. 'PSNR 17 dB, SSIM 0.75', or a table of its own"}


def _parameter_tables(text: str) -> tuple[list[tuple[str, str]], str]:
    """The (name, value) rows of the parameter tables in ``text`` (HTML tables whose header or caption reads
    "parameter", Markdown tables whose first header cell does), and ``text`` without those tables."""
    rows: list[tuple[str, str]] = []

    def html_table(m: re.Match) -> str:
        table = m.group(0)
        if not _PARAM_HEADER.search(table):
            return table
        for row in _ROW.findall(table):
            cells = _CELL.findall(row)
            if len(cells) >= 2 and cells[0][0].lower() == "th" and any(kind.lower() == "td" for kind, _ in cells[1:]):
                rows.append((_plain_cell(cells[0][1]), _plain_cell(cells[1][1])))
        return ""

    rest = _HTML_TABLE.sub(html_table, text)
    lines, kept, in_table = rest.splitlines(), [], False
    for i, line in enumerate(lines):
        row = line.strip()
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]] if row.startswith("|") else None
        if cells is None:
            in_table = False
        elif not in_table and cells and cells[0].lower().startswith("parameter") and i + 1 < len(lines) \
                and re.fullmatch(r"\s*\|?[\s:|-]+\|?\s*", lines[i + 1]):
            in_table = True
            continue
        elif in_table:
            if not re.fullmatch(r"[\s:-]*", "".join(cells)):
                rows.append((cells[0], cells[1] if len(cells) > 1 else ""))
            continue
        kept.append(line)
    return rows, "\n".join(kept)


def _readability_problems(where: str, texts: list[str]) -> list[str]:
    """Raw JSON shown to a reader, and parameter-table rows that are raw JSON or empty (one message each)."""
    problems = []
    for text in texts:
        rows, rest = _parameter_tables(text)
        for name, value in rows:
            if not value:
                problems.append(f"{where}: the parameter table shows {name!r} with an empty value (leave the row out "
                                "or say what the default means)")
            elif _raw_json_kind(value):
                problems.append(f"{where}: the parameter table shows {name!r} as raw JSON ({value[:60]!r}); write it "
                                f"for a reader ({_READABLE[_raw_json_kind(value)]})")
        m = _RAW_JSON.search(rest)
        if m:
            snippet = " ".join(html_lib.unescape(rest[max(0, m.start() - 20):m.end() + 30]).split())
            problems.append(f"{where}: output shows raw JSON ({snippet!r}); show it as a table or a sentence "
                            "(the full record stays in metrics.json)")
    return list(dict.fromkeys(problems))


def glue_problems(nb: dict) -> list[str]:
    """Glue keys a notebook's Markdown refers to that none of its cells glued, and keys glued twice (``nb``: the
    notebook's JSON); myst-nb would warn about either only when the book is built."""
    glued = [((out.get("metadata") or {}).get("scrapbook") or {}).get("name")
             for cell in nb.get("cells", []) for out in cell.get("outputs", [])]
    refs = {(role.split(":", 1)[0] if role else directive) for cell in nb.get("cells", [])
            if cell.get("cell_type") == "markdown"
            for role, directive in _GLUE_REF.findall("".join(cell.get("source", [])))
            if "::" not in (role or directive)}
    return ([f"the prose refers to {k!r}, which no cell glued" for k in sorted(refs - set(glued))]
            + [f"{k!r} is glued twice" for k in sorted({k for k in glued if k and glued.count(k) > 1})])


def _must_hide(source: str, tags: list[str]) -> bool:
    """A cell that only imports, builds the chapter, holds the parameters or writes results (not analysis)."""
    if "parameters" in tags or "injected-parameters" in tags:
        return True
    code = [ln for ln in source.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    starts_with_import = bool(code) and re.match(r"^(import |from \S+ import )", code[0]) is not None
    return starts_with_import or any(k in source for k in ("Chapter(", "ch.start(", "ch.write("))


def check_notebooks(book_dir: str | os.PathLike, *, root: str | os.PathLike | None = None) -> list[str]:
    """Problems in the executed chapters ``<book_dir>/[0-9][0-9]_*.ipynb`` (see the module docstring)."""
    from .results import project_root

    book = Path(book_dir)
    paths = _machine_paths(Path(root) if root else project_root())
    problems = []
    for nb_path in sorted(book.glob("[0-9][0-9]_*.ipynb")):
        nb = json.loads(nb_path.read_text())
        problems += [f"{nb_path.name}: {p}" for p in glue_problems(nb)]
        for i, cell in enumerate(nb.get("cells", [])):
            if cell.get("cell_type") != "code":
                continue
            where = f"{nb_path.name}, cell {i}"
            tags = cell.get("metadata", {}).get("tags", [])
            source = "".join(cell.get("source", []))
            hidden = any(t in tags for t in _HIDDEN)
            if "injected-parameters" in tags and "remove-cell" not in tags:
                problems.append(f"{where}: papermill's injected-parameters cell is shown (tag it remove-cell)")
            elif _must_hide(source, tags) and not hidden:
                problems.append(f"{where}: an import / parameter / results-writing cell is shown (tag it remove-input)")
            glued = [t for out in cell.get("outputs", []) for t in _shown_texts({"data": {
                k: v for k, v in out.get("data", {}).items() if k.startswith(_GLUE_PREFIX)}})]
            if "remove-cell" in tags:  # its glued values still reach the page
                problems += _readability_problems(where, glued)
                continue
            problems += _readability_problems(where, [t for out in cell.get("outputs", []) for t in _shown_texts(out)])
            text = _outputs_text(cell)
            for p in paths:
                if p in text:
                    problems.append(f"{where}: output shows the machine path {p!r}")
            if _NAN_CELL.search(text):
                problems.append(f"{where}: a table shows a NaN cell")
            if _P_ZERO.search(text):
                problems.append(f"{where}: 'p = 0.000' (use names.format_p)")
            if any(_REPR.search(_plain_only(out)) for out in cell.get("outputs", [])):
                problems.append(f"{where}: an object repr is printed (end the plotting call with ';')")
            if any(out.get("name") == "stderr" for out in cell.get("outputs", [])):
                problems.append(f"{where}: stderr output (a warning or a progress bar) is shown")
    return problems


def check_html(html_dir: str | os.PathLike, *, root: str | os.PathLike | None = None) -> list[str]:
    """Problems in the built HTML: CDN MathJax, machine paths, NaN table cells, parameter tables with raw JSON or
    empty rows, unrendered MyST roles."""
    from .results import project_root

    html = Path(html_dir)
    paths = _machine_paths(Path(root) if root else project_root())
    problems = []
    pages = sorted(html.glob("*.html"))
    if not pages:
        return [f"{html.name}/: no HTML pages (build the book first)"]
    for page in pages:
        text = page.read_text(errors="replace")
        if re.search(r"<script[^>]+src=\"https?://[^\"]*mathjax", text, flags=re.I):
            problems.append(f"{page.name}: MathJax is loaded from the network")
        if "$" in text and "_static/mathjax/" not in text and "math" in text and 'class="math' in text:
            problems.append(f"{page.name}: has formulas but does not load the offline MathJax")
        for p in paths:
            if p in text:
                problems.append(f"{page.name}: shows the machine path {p!r}")
        if _NAN_CELL.search(text):
            problems.append(f"{page.name}: a table shows a NaN cell")
        for name, value in _parameter_tables(text)[0]:
            if not value:
                problems.append(f"{page.name}: the parameter table shows {name!r} with an empty value")
            elif _raw_json_kind(value):
                problems.append(f"{page.name}: the parameter table shows {name!r} as raw JSON ({value[:60]!r})")
        raw = _RAW_ROLE.search(_CODE_BLOCK.sub("", text))  # code blocks (folded analysis code) may hold roles
        if raw:
            problems.append(f"{page.name}: the prose shows the unrendered role {raw.group(0)!r}")
    return problems


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    book = argv[0] if argv else "book"
    html = argv[1] if len(argv) > 1 else "_build/html"
    problems = check_notebooks(book) + (check_html(html) if Path(html).is_dir() else [])
    for p in problems:
        print(p)
    print(f"book check: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
