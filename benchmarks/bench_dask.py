"""Benchmark (not a test): the week-1 hyperparameter sweep of chapter 08 on 1 and on 2 Dask workers, side by side.

Two recipes of the sweep (the spatial LDM with learning rate x batch size changed, seed 0): the quick profile's
recipe and a reduced full one (the full profile's short sweep recipe on a 2 x 2 grid). Each is run two ways, each
from an empty run cache so nothing is reused: on a LocalCluster of 1 worker with all cores, and on a LocalCluster of
2 workers with the cores split between them. It prints the wall times, their ratio and the per-run training time that the 1- and 2-worker results are identical (each run gets the same
threads).

    python benchmarks/bench_dask.py --data /path/to/data/folder [--out bench.json]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def sweep_variants(*, epochs: int, vae_epochs: int, align_epochs: int, unet_channels=(32, 64)):
    from ldm_core.config import FIXED_AUGMENTATION
    from ldm_core.study.experiment import Variant, make_ldm_config

    cfg = make_ldm_config("fixed", unet_channels=tuple(unet_channels))
    base = dict(stages="progressive", epochs=epochs, vae_epochs=vae_epochs, align_epochs=align_epochs,
                **FIXED_AUGMENTATION)
    return {f"lr={lr:g}, batch={bs}": Variant(cfg, {**base, "lr": lr, "batch_size": bs}, {"steps": 20})
            for lr in (1e-4, 1e-3) for bs in (4, 8)}


def timed(variants, data, *, workers: int | None, threads: int):
    """Wall time of run_variants on a fresh cache, on a LocalCluster of ``workers`` workers (None: in this process)."""
    import torch

    from ldm_core.study.cluster import dask_client
    from ldm_core.study.experiment import run_variants

    cache = Path(tempfile.mkdtemp(prefix="bench-dask-"))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    try:
        t0 = time.perf_counter()
        if workers is None:
            res = run_variants(variants, data, seeds=[0], cache_dir=cache, n_boot=100, progress=False)
        else:
            with dask_client(workers=workers, threads_per_worker=threads) as client:
                res = run_variants(variants, data, seeds=[0], cache_dir=cache, n_boot=100, progress=False,
                                   executor=client)
        wall = time.perf_counter() - t0
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    train = [r.runs[0].train_time_s for r in res.values()]
    return wall, float(np.mean(train)), res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("LDM_DATA_DIR", ""), help="folder with digit69_28x28.mat")
    ap.add_argument("--out", default="", help="write the measurements as JSON here")
    args = ap.parse_args()
    from ldm_core.splits import prepare_data

    data = prepare_data(args.data or None, verbose=0)
    cores = os.cpu_count() or 1
    recipes = {"quick": sweep_variants(epochs=2, vae_epochs=2, align_epochs=2, unet_channels=(16, 32)),
               "reduced full": sweep_variants(epochs=15, vae_epochs=20, align_epochs=10)}
    report = {"cores": cores, "runs_per_recipe": 4}
    for name, variants in recipes.items():
        one, one_train, _ = timed(variants, data, workers=1, threads=cores)
        two, two_train, _ = timed(variants, data, workers=2, threads=max(1, cores // 2))
        report[name] = {"one_worker_s": one, "two_workers_s": two, "ratio_one_to_two_workers": one / two,
                        "train_s_per_run_one_worker": one_train, "train_s_per_run_two_workers": two_train}
        print(f"{name}: 1 worker ({cores} threads) {one:.1f} s, 2 workers ({max(1, cores // 2)} thread(s) each) "
              f"{two:.1f} s: ratio {one / two:.2f}; per-run training {one_train:.1f} s vs {two_train:.1f} s", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
