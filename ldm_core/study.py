"""Run the study's chapters through papermill with a parameter profile.

Each chapter ``notebooks/NN_name.ipynb`` is executed with ``params/NN_name.<profile>.yaml`` into an
output folder (``book/`` for the published full run), and ``run_log.<profile>.json`` beside the outputs
records each chapter's wall time, parameters, device and git commit (entries of chapters run earlier are kept). A chapter is written to a temporary name and
moved into place only when it succeeds, so an interrupted run never leaves a half-executed chapter in the
book.

Usage::

    python -m ldm_core.study --profile full --out book            # the published run
    python -m ldm_core.study --profile quick --out /tmp/quick     # what CI executes
    python -m ldm_core.study --profile quick --out /tmp/q --only 00_data_and_metrics -p seed=1
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import yaml

from .results import atomic_write_bytes, project_root, provenance

__all__ = ["chapters", "load_params", "run_chapter", "read_run_log", "main"]

PROFILES = ("full", "quick")


def chapters(root: Path | None = None) -> list[str]:
    """Names of the chapter notebooks (``notebooks/*.ipynb`` without suffix), in order."""
    root = root or project_root()
    return sorted(p.stem for p in (root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def load_params(chapter: str, profile: str, root: Path | None = None) -> dict:
    """The parameters of ``params/<chapter>.<profile>.yaml`` (an empty file means no overrides)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile '{profile}'; allowed: {PROFILES}")
    root = root or project_root()
    path = root / "params" / f"{chapter}.{profile}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: every chapter needs a params file for each profile {PROFILES}")
    params = yaml.safe_load(path.read_text()) or {}
    if not isinstance(params, dict):
        raise ValueError(f"{path}: expected a mapping of parameter names to values, got {type(params).__name__}")
    return params


def run_chapter(chapter: str, *, profile: str, out_dir: Path, overrides: dict | None = None,
                root: Path | None = None, progress: bool = True) -> float:
    """Execute one chapter with papermill; returns its wall time in seconds.

    Unknown parameter names (not in the notebook's parameters cell) raise ``ValueError`` before anything runs.
    """
    import papermill as pm

    root = root or project_root()
    src = root / "notebooks" / f"{chapter}.ipynb"
    if not src.is_file():
        raise FileNotFoundError(f"{src} does not exist; chapters are {chapters(root)}")
    params = {**load_params(chapter, profile, root), **(overrides or {})}
    known = pm.inspect_notebook(str(src))
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(f"{chapter}: unknown parameter(s) {unknown}; the notebook accepts {sorted(known)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / f"{chapter}.ipynb"
    tmp = out_dir / f".{chapter}.running.ipynb"
    t0 = time.time()
    try:
        pm.execute_notebook(str(src), str(tmp), parameters=params, cwd=str(root), progress_bar=progress,
                            kernel_name="python3")
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            failed = out_dir / f"{chapter}.failed.ipynb"
            os.replace(tmp, failed)
            print(f"{chapter} failed; the partial notebook is at {failed}", file=sys.stderr)
    return time.time() - t0


def read_run_log(path: Path, *, profile: str) -> dict:
    """The run log at ``path`` (chapters run earlier keep their entries), or a new one.

    Each chapter's entry holds its own wall time, provenance and parameters, so chapters run by separate
    invocations (``--only``) add up to one record; ``total_wall_time_s`` is the sum over chapters.
    """
    if path.is_file():
        log = json.loads(path.read_text())
        if log.get("profile") != profile:
            raise ValueError(f"{path} records profile {log.get('profile')!r}, not {profile!r}; move it away first")
        return log
    return {"profile": profile, "chapters": {}}


def _parse_overrides(items: list[str]) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"-p expects NAME=VALUE, got '{item}'")
        k, v = item.split("=", 1)
        value = yaml.safe_load(v)
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" as a string; papermill's -p reads it as a float
            try:
                value = float(value)
            except ValueError:
                pass
        out[k] = value
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", choices=PROFILES, default="full")
    ap.add_argument("--out", type=Path, default=None, help="output folder for executed notebooks (default: book/)")
    ap.add_argument("--only", nargs="*", default=None, help="chapter names to run (default: all)")
    ap.add_argument("-p", dest="overrides", action="append", default=[], help="NAME=VALUE override for every chapter run")
    args = ap.parse_args(argv)
    root = project_root()
    out = args.out or root / "book"
    names = chapters(root) if not args.only else args.only
    log_path = out / f"run_log.{args.profile}.json"
    read_run_log(log_path, profile=args.profile)  # refuse a log of another profile before running anything
    overrides = _parse_overrides(args.overrides)
    t0 = time.time()
    for name in names:
        print(f"== {name} ({args.profile})", flush=True)
        wall = run_chapter(name, profile=args.profile, out_dir=out, overrides=overrides, root=root)
        log = read_run_log(log_path, profile=args.profile)  # re-read: another runner may have added chapters
        log["chapters"][name] = {"wall_time_s": round(wall, 1), "provenance": provenance(),
                                 "params": {**load_params(name, args.profile, root), **overrides}}
        log["total_wall_time_s"] = round(sum(c["wall_time_s"] for c in log["chapters"].values()), 1)
        atomic_write_bytes(log_path, json.dumps(log, indent=1).encode())
        print(f"   {name}: {wall:.1f} s", flush=True)
    print(f"all chapters done in {time.time() - t0:.1f} s; log at {log_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
