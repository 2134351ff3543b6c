"""Placeholder pages for the chapters a published record does not hold yet.

``book/_toc.yml`` lists every chapter, and the chapters link to each other. A record published one chapter at a
time (``python -m ldm_core.study --profile full --out book --only CHAPTER``) can lack some executed notebooks, and
the build would then stop at the missing files and the links to them. :func:`write_placeholders` writes, for each
chapter of ``notebooks/`` without an executed copy in the book folder, a page ``book/<chapter>.md`` (git-ignored)
with the chapter's title and question, taken from its notebook, and a note that it is not in this record and how to
produce it; it removes the placeholder of every chapter that is present. With every chapter executed it writes
nothing, so ``make study`` builds the book of executed chapters only.

    python -m ldm_core.study.placeholders [book_dir]      # ``make book`` runs it before the build
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .results import project_root
from .runner import chapters

__all__ = ["chapter_heading", "write_placeholders", "main"]


def chapter_heading(notebook: Path) -> str:
    """The first Markdown cell of ``notebook`` up to its ``**Answer.**`` line (the title and the question), less any
    paragraph that pastes glued results (a placeholder has none)."""
    nb = json.loads(notebook.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            paragraphs = "".join(cell["source"]).split("**Answer.**")[0].split("\n\n")
            return "\n\n".join(p.strip() for p in paragraphs if p.strip() and "{glue" not in p)
    raise ValueError(f"{notebook}: no Markdown cell to take the chapter's title from")


def write_placeholders(book_dir: str | Path, root: Path | None = None) -> list[str]:
    """Write ``<chapter>.md`` in ``book_dir`` for every chapter without ``<chapter>.ipynb`` there; return those
    chapters. A placeholder of a chapter that is present is removed (Sphinx refuses two files for one page)."""
    root = root or project_root()
    book = Path(book_dir)
    if not book.is_dir():
        raise FileNotFoundError(f"book folder {book} does not exist")
    missing = []
    for chapter in chapters(root):
        page = book / f"{chapter}.md"
        if (book / f"{chapter}.ipynb").is_file():
            page.unlink(missing_ok=True)
            continue
        missing.append(chapter)
        heading = chapter_heading(root / "notebooks" / f"{chapter}.ipynb")
        page.write_text(
            f"{heading}\n\n```{{note}}\nThis chapter is not in this record yet: it has not been executed with the full "
            f"parameters and published into the book. `python -m ldm_core.study --profile full --out book --only "
            f"{chapter}` (or `make study`, for every chapter) produces it.\n```\n")
    return missing


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    book = argv[0] if argv else "book"
    missing = write_placeholders(book)
    print(f"placeholders: {len(missing)} chapter(s) not in this record" + (f": {', '.join(missing)}" if missing else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
