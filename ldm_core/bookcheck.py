"""Checks of the rendered book that a program can make: what a reader must never see.

:func:`check_notebooks` reads the executed chapters in ``book/``; :func:`check_html` reads the built HTML. Each
returns a list of problems (empty when the book is clean); ``python -m ldm_core.bookcheck [book_dir] [html_dir]``
prints them and exits 1 if there are any (``make test`` and ``make study`` run it after the build).

What is checked:

- no machine paths in any output: the project's absolute path, the home folder, ``/tmp/``;
- no "nan" / "NaN" cell in a rendered table, no bare "p = 0.000";
- no visible import, parameter or results-writing cell: a code cell that imports, builds the chapter's
  :class:`~ldm_core.chapter.Chapter`, holds the parameters, or calls ``ch.write`` must be tagged ``remove-input`` or
  ``remove-cell``; papermill's injected-parameters cell must be removed (``remove-cell``);
- no stderr output (warnings, progress-bar residue) and no object repr (``<Figure``, ``<matplotlib``) in outputs;
- no MyST role left unrendered in the prose (``{doc}``, ``{glue:...}``: glued Markdown pasted inline without
  ``:myst``, for instance);
- formulas render offline: the built pages load MathJax from the book's ``_static/``, never from a CDN.
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

__all__ = ["check_notebooks", "check_html", "main"]

_HIDDEN = ("remove-input", "remove-cell")
_NAN_CELL = re.compile(r"<td[^>]*>\s*(nan|NaN)\s*</td>")
_REPR = re.compile(r"<(Figure|matplotlib\.|Axes|pandas\.io\.formats\.style)")
_P_ZERO = re.compile(r"p\s*=\s*0\.000\b")
_RAW_ROLE = re.compile(r"\{(doc|ref|numref|glue:?[a-z]*|cite)\}")
_CODE_BLOCK = re.compile(r"<pre\b.*?</pre>", flags=re.S)


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
            if "remove-cell" in tags:
                continue
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
    """Problems in the built HTML: CDN MathJax, machine paths, NaN table cells, unrendered MyST roles."""
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
