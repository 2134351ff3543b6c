"""Run the study's chapters through papermill with a parameter profile.

Each chapter ``notebooks/NN_name.ipynb`` is executed with ``params/NN_name.<profile>.yaml`` into an output
folder, and ``run_log.<profile>.json`` beside the outputs records each chapter's wall time, parameters, device
and git commit (entries of chapters run earlier are kept).

Two kinds of run:

- **publishing** (``--out book``, what ``make study`` does): the executed notebooks go to ``book/`` and each
  chapter writes the published record ``results/<chapter>/`` (the runner passes ``publish=True`` and the
  profile). Overrides (``-p``) are refused there unless ``--allow-unprofiled`` says so explicitly; the flag is
  recorded in each chapter's provenance.
- **scratch** (any other ``--out``): notebooks and results stay inside that folder
  (``<out>/<chapter>.ipynb``, ``<out>/results/<chapter>/``), and chapters read earlier chapters' results from
  there too, so run them in order (``--only`` with several names keeps the order given).

An executed notebook is written to a temporary name unique to this process and moved into place only when it
succeeds, so an interrupted run never leaves a half-executed chapter in the book; a second runner of the same
chapter into the same folder is refused while the first holds its lock; the stale ``.failed.ipynb`` of a
chapter is removed when it next succeeds. Warnings a chapter raised (e.g. "ignoring the cached run ...; it is
computed again" when a cache file is damaged) appear only in the executed notebook's stderr outputs, which the book
hides: the runner prints each one on its console (``<chapter>: RuntimeWarning: ...``) and records them in the run
log. The runner sets the threads the kernels use (``--threads``, default
all cores: ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS``) and turns progress bars off in the executed notebooks
(``TQDM_DISABLE=1``) so that the book shows no bar residue.

Usage::

    python -m ldm_core.study --profile full --out book            # the published run (make study)
    python -m ldm_core.study --profile quick --out /tmp/quick     # a scratch run of every chapter
    python -m ldm_core.study --profile quick --out /tmp/q --only 00_data_and_metrics -p seed=1
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import sys
import time
from pathlib import Path

import yaml

from ..io import atomic_write_bytes
from .parameters import RUN_PARAMS
from .results import project_root, provenance

__all__ = ["PROFILES", "chapters", "load_params", "run_chapter", "read_run_log", "notebook_warnings", "main"]

PROFILES = ("full", "quick")
RUN_KEYS = tuple(RUN_PARAMS)  # where a run reads, writes and computes: never part of what it computes


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
        raise FileNotFoundError(f"{path.name} is missing from params/: every chapter needs a params file for each "
                                f"profile {PROFILES}")
    params = yaml.safe_load(path.read_text()) or {}
    if not isinstance(params, dict):
        raise ValueError(f"params/{path.name}: expected a mapping of parameter names to values, got "
                         f"{type(params).__name__}")
    return params


@contextlib.contextmanager
def _chapter_lock(out_dir: Path, chapter: str, *, wait: bool = False):
    """Hold ``<out_dir>/.<chapter>.lock`` (flock, released when the process ends, so never stale); ``wait``: block
    until it is free instead of refusing."""
    path = out_dir / f".{chapter}.lock"
    out_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise RuntimeError(f"another run of chapter {chapter} into {out_dir.name}/ is in progress (it holds "
                               f"{path.name}); wait for it or use another --out") from None
        yield
    finally:
        os.close(fd)


def _hide_injected_cell(path: Path) -> None:
    """Tag papermill's injected-parameters cell ``remove-cell``: the chapter shows the values as a table."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    nbformat.write(nb, path)


_WARNING_LINE = re.compile(r"(?:^|:\d+: )([A-Z]\w*Warning): (.+)$")  # "<file>:<line>: RuntimeWarning: <message>"


def notebook_warnings(path: str | os.PathLike) -> list[str]:
    """The Python warnings an executed notebook printed, as ``"<Category>: <message>"`` lines, in order, once each.

    Warnings reach a notebook as text on stderr (``<file>:<line>: RuntimeWarning: <message>`` followed by the source
    line); the book hides stderr, so the study runner prints these on its console instead.
    """
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    found: dict[str, None] = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") != "stream" or out.get("name") != "stderr":
                continue
            text = out.get("text", "")
            for line in ("".join(text) if isinstance(text, list) else text).splitlines():
                m = _WARNING_LINE.search(line.strip())
                if m:
                    found[f"{m.group(1)}: {m.group(2).strip()}"] = None
    return list(found)


def _report_warnings(chapter: str, path: Path, sink: list | None) -> None:
    """Print the warnings of an executed (or failed) notebook on the runner's console; add them to ``sink``."""
    try:
        lines = notebook_warnings(path)
    except Exception as e:  # an unreadable partial notebook must not hide the chapter's own error
        lines = [f"(could not read the notebook's warnings: {type(e).__name__}: {e})"]
    for line in lines:
        print(f"   {chapter}: {line}", file=sys.stderr, flush=True)
    if sink is not None:
        sink.extend(lines)


@contextlib.contextmanager
def _quiet_plumbing():
    """Drop papermill's "Passed unknown parameter" log line for the run plumbing, which no notebook declares."""
    import logging

    def keep(record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not (msg.startswith("Passed unknown parameter: ") and msg.split(": ", 1)[1] in RUN_PARAMS)

    logger = logging.getLogger("papermill")
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def run_chapter(chapter: str, *, profile: str, out_dir: Path, overrides: dict | None = None,
                root: Path | None = None, progress: bool = True, publish: bool = False,
                allow_unprofiled: bool = False, warnings_out: list | None = None) -> float:
    """Execute one chapter with papermill; returns its wall time in seconds.

    Parameters
    ----------
    overrides : dict, optional
        Parameter values over the profile's (names unknown to the notebook raise before anything runs).
    publish : bool
        Write the published ``results/<chapter>/`` (passes ``publish=True`` and the profile); otherwise results go
        to ``overrides["results_root"]`` if given, else ``<out_dir>/results``.
    allow_unprofiled : bool
        With ``publish``, allow overrides of the profile's values (recorded in the results' provenance).
    warnings_out : list, optional
        Receives the warnings the chapter raised (:func:`notebook_warnings`); they are printed on stderr either way.

    Raises
    ------
    ValueError
        Unknown parameter names, or overrides of a published run without ``allow_unprofiled``.
    RuntimeError
        Another run of the same chapter into ``out_dir`` holds its lock.
    """
    import papermill as pm
    root = root or project_root()
    src = root / "notebooks" / f"{chapter}.ipynb"
    if not src.is_file():
        raise FileNotFoundError(f"notebooks/{chapter}.ipynb does not exist; chapters are {chapters(root)}")
    overrides = dict(overrides or {})
    params = {**load_params(chapter, profile, root), **overrides}
    known = {**pm.inspect_notebook(str(src)), **RUN_PARAMS}  # the plumbing is not declared in the notebook
    if unknown := sorted(set(params) - set(known)):
        raise ValueError(f"{chapter}: unknown parameter(s) {unknown}; the notebook accepts {sorted(known)}")
    science_overrides = sorted(set(overrides) - set(RUN_KEYS))
    if publish:
        if science_overrides and not allow_unprofiled:
            raise ValueError(f"{chapter}: publishing into results/ with overrides {science_overrides} of profile "
                             f"{profile!r} needs --allow-unprofiled (or run into another --out folder)")
        params.update(publish=True, profile=profile, publish_unprofiled=bool(allow_unprofiled and science_overrides))
    else:
        params.setdefault("results_root", str(out_dir / "results"))
        params.setdefault("profile", profile)
    dest, failed = out_dir / f"{chapter}.ipynb", out_dir / f"{chapter}.failed.ipynb"
    tmp = out_dir / f".{chapter}.{os.getpid()}.running.ipynb"
    t0 = time.time()
    with _chapter_lock(out_dir, chapter), _quiet_plumbing():  # the lock creates out_dir
        try:
            pm.execute_notebook(str(src), str(tmp), parameters=params, cwd=str(root), progress_bar=progress,
                                kernel_name="python3")
            _hide_injected_cell(tmp)
            os.replace(tmp, dest)
            failed.unlink(missing_ok=True)
            _report_warnings(chapter, dest, warnings_out)
        finally:
            if tmp.exists():
                os.replace(tmp, failed)
                _report_warnings(chapter, failed, warnings_out)
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
            raise ValueError(f"{path.name} records profile {log.get('profile')!r}, not {profile!r}; move it away first")
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


def _set_threads(threads: int | None) -> int:
    n = int(threads or os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", choices=PROFILES, default="full")
    ap.add_argument("--out", type=Path, default=None, help="output folder for executed notebooks (default: book/, "
                                                           "which publishes results/)")
    ap.add_argument("--only", nargs="*", default=None, help="chapter names to run, in this order (default: all)")
    ap.add_argument("-p", dest="overrides", action="append", default=[], help="NAME=VALUE override for every chapter run")
    ap.add_argument("--allow-unprofiled", action="store_true",
                    help="publish into results/ even with -p overrides (recorded in provenance)")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads per chapter kernel (OMP_NUM_THREADS; default: $OMP_NUM_THREADS or all cores)")
    ap.add_argument("--workers", type=int, default=0,
                    help="train every chapter's runs on a local Dask cluster of this many worker processes")
    ap.add_argument("--scheduler", default="", help="address of a running Dask scheduler to send every run to")
    args = ap.parse_args(argv)
    root = project_root()
    out = (args.out or root / "book").resolve()
    publish = out == (root / "book").resolve()
    names = chapters(root) if not args.only else args.only
    bad = sorted(set(names) - set(chapters(root)))
    if bad:
        ap.error(f"unknown chapter(s) {bad}; chapters are {chapters(root)}")
    log_path = out / f"run_log.{args.profile}.json"
    read_run_log(log_path, profile=args.profile)  # refuse a log of another profile before running anything
    overrides = _parse_overrides(args.overrides)
    threads = _set_threads(args.threads)
    os.environ["TQDM_DISABLE"] = "1"
    print(f"{'publishing into results/ and book/' if publish else f'scratch run into {out}'}; profile "
          f"{args.profile}; {threads} thread(s) per chapter", flush=True)
    from .cluster import dask_client

    t0 = time.time()
    with dask_client(workers=args.workers, scheduler=args.scheduler) as client:
        if client is not None:  # one cluster for the whole study; each chapter's kernel connects to it
            overrides["scheduler"] = client.scheduler.address
            print(f"runs go to a Dask cluster with {len(client.scheduler_info()['workers'])} worker(s)", flush=True)
        for name in names:
            print(f"== {name} ({args.profile})", flush=True)
            raised: list[str] = []
            wall = run_chapter(name, profile=args.profile, out_dir=out, overrides=overrides, root=root,
                               publish=publish, allow_unprofiled=args.allow_unprofiled, warnings_out=raised)
            _log(log_path, name, wall, args, threads, publish, overrides, root, raised)
            print(f"   {name}: {wall:.1f} s", flush=True)
    print(f"all chapters done in {time.time() - t0:.1f} s; log at {log_path.name} in {out.name}/")
    return 0


def _log(log_path: Path, name: str, wall: float, args, threads: int, publish: bool, overrides: dict, root: Path,
         raised: list[str] | None = None) -> None:
    """Add a chapter's entry to the run log, under a lock, re-reading it first: two runners (e.g. two chapters run
    side by side into book/) both add their entries."""
    with _chapter_lock(log_path.parent, log_path.name, wait=True):
        log = read_run_log(log_path, profile=args.profile)
        params = {k: v for k, v in {**load_params(name, args.profile, root), **overrides}.items() if k != "scheduler"}
        log["chapters"][name] = {"wall_time_s": round(wall, 1), "threads": threads, "workers": args.workers,
                                 "provenance": provenance(), "published": publish, "params": params,
                                 "warnings": list(raised or [])}
        log["total_wall_time_s"] = round(sum(c["wall_time_s"] for c in log["chapters"].values()), 1)
        atomic_write_bytes(log_path, json.dumps(log, indent=1).encode())


if __name__ == "__main__":
    raise SystemExit(main())
