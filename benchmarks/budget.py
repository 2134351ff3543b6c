"""Print the size of ``ldm_core`` per layer against the budgets of issue 19, and optionally time the tests.

Budgets: ``ldm_core`` at most 9,500 lines in all (blank, docstring and comment lines included), no module over 500
lines, no function over 60, no class over 250, ``.backward(`` in at most three places. Lines are counted as
``wc -l`` counts them; a function or class spans from its ``def``/``class`` line to its last line (``ast``),
methods counted as functions. This is a measurement script, not a test: it prints, and exits 0 either way.

``--time-tests`` also runs the unit tests (``pytest -m "not notebook"``), the whole suite (``pytest``, on the
pytest-xdist workers that pyproject's addopts start) and the book build of ``make test`` (``make book``), and
prints each wall time: the suite's with its ratio to the reference -- pytest alone took 553 s in a fresh clone when
issue 19 was filed (that issue's measurement, on the 2-core CI machine) -- and the sum, which is ``make test`` in a
clone whose environment is installed (a fresh clone adds the ``pip install`` of ``make setup``).

Usage::

    python benchmarks/budget.py
    python benchmarks/budget.py --time-tests
"""
from __future__ import annotations

import argparse
import ast
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ldm_core"
BUDGET = {"package lines": 9500, "module lines": 500, "function lines": 60, "class lines": 250, "backward calls": 3}
PYTEST_REFERENCE_S = 553.0  # issue 19: pytest alone in a fresh clone before the work


def layer_of(path: Path, package: Path = PACKAGE) -> str:
    return "study" if "study" in path.relative_to(package).parts[:-1] else "core"


def measure(package: Path = PACKAGE) -> dict:
    """Lines per layer and module, the functions and classes over budget, and where ``.backward(`` is called."""
    modules, long_functions, long_classes, backward = {}, [], [], []
    for path in sorted(package.rglob("*.py")):
        text = path.read_text()
        rel = path.relative_to(package.parent).as_posix()
        modules[rel] = (layer_of(path, package), len(text.splitlines()))
        backward += [f"{rel}:{i}" for i, line in enumerate(text.splitlines(), 1) if ".backward(" in line]
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                n = node.end_lineno - node.lineno + 1
                kind, limit, out = (("class", BUDGET["class lines"], long_classes) if isinstance(node, ast.ClassDef)
                                    else ("function", BUDGET["function lines"], long_functions))
                if n > limit:
                    out.append((n, f"{rel}:{node.lineno} {node.name}"))
    return {"modules": modules, "long_functions": sorted(long_functions, reverse=True),
            "long_classes": sorted(long_classes, reverse=True), "backward": backward}


def report(m: dict) -> str:
    mods = m["modules"]
    total = sum(n for _, n in mods.values())
    lines = [f"ldm_core: {total:,} lines (budget {BUDGET['package lines']:,}): "
             + ", ".join(f"{layer} {sum(n for l, n in mods.values() if l == layer):,} in "
                         f"{sum(1 for l, _ in mods.values() if l == layer)} files" for layer in ("core", "study"))]
    big = sorted(((n, rel) for rel, (_, n) in mods.items() if n > BUDGET["module lines"]), reverse=True)
    lines.append(f"modules over {BUDGET['module lines']} lines: {len(big)}")
    lines += [f"  {n:5d}  {rel}" for n, rel in big]
    for key, label in (("long_functions", "functions"), ("long_classes", "classes")):
        limit = BUDGET[f"{label[:-1] if label == 'functions' else 'class'} lines"]
        lines.append(f"{label} over {limit} lines: {len(m[key])}")
        lines += [f"  {n:5d}  {where}" for n, where in m[key]]
    lines.append(f".backward( calls: {len(m['backward'])} (budget {BUDGET['backward calls']}): " + ", ".join(m["backward"]))
    return "\n".join(lines)


def time_command(args: list[str]) -> float:
    """Wall seconds of ``args`` run in the project root; a failing command is an error (its time means nothing)."""
    t0 = time.perf_counter()
    rc = subprocess.run(args, cwd=ROOT, check=False).returncode
    if rc:
        raise SystemExit(f"{' '.join(args)} failed (exit {rc}): no timing printed")
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--time-tests", action="store_true", help="also time the unit tests and the whole pytest suite")
    a = ap.parse_args(argv)
    print(report(measure()))
    if a.time_tests:
        unit = time_command([sys.executable, "-m", "pytest", "-q", "-m", "not notebook"])
        whole = time_command([sys.executable, "-m", "pytest", "-q"])
        book = time_command(["make", "book"])
        print(f"unit tests: {unit:.0f} s (budget 120 s); whole pytest suite: {whole:.0f} s, "
              f"{whole / PYTEST_REFERENCE_S:.2f} x the {PYTEST_REFERENCE_S:.0f} s of issue 19's fresh clone; "
              f"book build and checks: {book:.0f} s; make test without set-up: {whole + book:.0f} s (budget 600 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
