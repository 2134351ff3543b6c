"""On paper: what a study run would cost on N workers, from the per-run times it measured.

Reads a study's run log (``run_log.<profile>.json``: every chapter's wall time) and its run cache (``cache/``: every
trained run's ``train_time_s``). The runs are the unit the executor dispatches (``--workers`` / ``--scheduler``);
everything else in a chapter -- data, baselines, the image prior's pretraining, evaluation, figures -- is counted as
serial. For N workers the projection is

    T(N) = serial + max(sum(runs) / N, longest run),

chapters one after another (the study's order), i.e. perfect packing of each chapter's runs; it ignores start-up and
transfer, so it is a lower bound. The times are this machine's; a GPU worker's speed-up per run is not measured here
(no GPU was lent), so ``--gpu-speedup S`` divides the run times by an assumed S and says so.

    python benchmarks/project_workers.py --root /path/to/study/checkout [--profile full] [--gpu-speedup 1]
"""
from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path


def chapter_run_times(cache_chapter: Path, *, start: float, end: float) -> list[float]:
    """``train_time_s`` of the runs one chapter trained: cached in its folder, written between ``start`` and ``end``
    (epoch seconds; runs replayed from an older cache were not trained by this run and are left out)."""
    times = []
    for f in sorted(cache_chapter.glob("run-*.json")):
        if not start <= f.stat().st_mtime <= end:
            continue
        t = json.loads(f.read_text()).get("train_time_s")
        if t is not None:
            times.append(float(t))
    return times


def projection(run_log: dict, cache: Path, *, workers=(1, 2, 4, 8, 16), gpu_speedup: float = 1.0) -> dict:
    """``{"chapters": {chapter: {...}}, "total": {N: seconds}}`` (see the module docstring)."""
    chapters, total = {}, {n: 0.0 for n in workers}
    for name, entry in run_log["chapters"].items():
        wall = float(entry["wall_time_s"])
        end = datetime.fromisoformat(entry["provenance"]["timestamp_utc"]).timestamp() + 5  # written at the end
        runs = chapter_run_times(cache / name, start=end - wall - 10, end=end)
        run_sum = sum(runs)
        serial = max(wall - run_sum, 0.0)
        scaled = [t / gpu_speedup for t in runs]
        per_n = {n: serial + (max(run_sum / gpu_speedup / n, max(scaled)) if runs else 0.0) for n in workers}
        chapters[name] = {"wall_s": wall, "runs": len(runs), "runs_s": run_sum, "serial_s": serial, "projected_s": per_n}
        for n in workers:
            total[n] += per_n[n]
    return {"chapters": chapters, "total": total, "gpu_speedup_assumed": gpu_speedup,
            "measured_total_s": sum(c["wall_s"] for c in chapters.values())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=".", help="the study checkout that ran (holds book/run_log.*.json and cache/)")
    ap.add_argument("--profile", default="full")
    ap.add_argument("--run-log", default="", help="the run log to read (default: book/run_log.<profile>.json in --root)")
    ap.add_argument("--gpu-speedup", type=float, default=1.0, help="assumed speed-up of one run on a GPU worker")
    ap.add_argument("--out", default="", help="write the projection as JSON here")
    args = ap.parse_args()
    root = Path(args.root)
    candidates = [Path(args.run_log)] if args.run_log else [root / "book" / f"run_log.{args.profile}.json",
                                                            root / f"run_log.{args.profile}.json"]
    log_path = next((p for p in candidates if p.exists()), None)
    if log_path is None:
        raise SystemExit(f"no run log at {' or '.join(map(str, candidates))}: run the study first")
    proj = projection(json.loads(log_path.read_text()), root / "cache", gpu_speedup=args.gpu_speedup)
    print(f"{'chapter':28s} {'wall (s)':>9s} {'runs':>5s} {'in runs (s)':>11s} "
          + " ".join(f"{f'N={n}':>8s}" for n in proj["total"]))
    for name, c in proj["chapters"].items():
        print(f"{name:28s} {c['wall_s']:9.0f} {c['runs']:5d} {c['runs_s']:11.0f} "
              + " ".join(f"{v:8.0f}" for v in c["projected_s"].values()))
    print(f"{'study':28s} {proj['measured_total_s']:9.0f} {'':5s} {'':11s} "
          + " ".join(f"{v:8.0f}" for v in proj["total"].values()))
    print(f"(seconds; run times divided by an assumed GPU speed-up of {args.gpu_speedup:g}; a lower bound)")
    if args.out:
        Path(args.out).write_text(json.dumps(proj, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
