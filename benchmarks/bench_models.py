"""Benchmark the "original" and "fixed" Brain LDM presets at the real data size.

For each preset this prints, as a markdown table:

- parameter counts of the fMRI encoder, the VAE, the U-Net and the total, for V = 3092 voxels;
- diffusion-stage training speed in optimiser steps per second (batch 4, random data of the
  real shape: 90 trials x 3092 voxels, 28x28 images), measured by ``ldm_core.train.fit`` over
  whole epochs with the first (warm-up) epoch left out;
- wall-clock seconds to reconstruct 10 trials with 10, 50 and 250 DDIM steps.

The "original" preset trains with its own stage plan (encoder + U-Net + VAE encoder jointly);
the "fixed" preset times its diffusion stage (``stages="end_to_end"`` with the VAE stage
skipped), which is where training time goes. Numbers depend on the machine: the device is
named in the output. This is a measurement script, not a test.

Usage::

    python benchmarks/bench_models.py --device auto
    python benchmarks/bench_models.py --quick --device cpu --json results/bench.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from ldm_core.config import get_preset  # noqa: E402
from ldm_core.device import describe_device, resolve_device  # noqa: E402
from ldm_core.pipeline import BrainLDM  # noqa: E402
from ldm_core.train import TrainConfig, fit  # noqa: E402

N_TRIALS, N_VOXELS, IMAGE_SIZE = 90, 3092, 28  # digit69 training set shape
N_RECON = 10  # test trials reconstructed
RECON_STEPS = (10, 50, 250)  # DDIM step counts timed
PRESETS = ("original", "fixed")


# measurements

def random_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """fMRI (90, 3092) standard normal and images (90, 28, 28) uniform in [0, 1], float32."""
    rng = np.random.default_rng(seed)
    fmri = rng.standard_normal((N_TRIALS, N_VOXELS)).astype(np.float32)
    images = rng.random((N_TRIALS, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    return fmri, images


def bench_preset(name: str, *, device: str, epochs: int) -> dict:
    """Parameter counts, training steps/s and reconstruction times of one preset."""
    fmri, images = random_data()
    stages = "original" if name == "original" else "end_to_end"
    cfg = TrainConfig(stages=stages, epochs=epochs, vae_epochs=0, batch_size=4, progress=False, device=device)
    res = fit(fmri, images, ldm_cfg=get_preset(name), train_cfg=cfg)
    h = res.history
    timed = slice(1, None) if len(h["steps"]) > 1 else slice(None)  # drop the warm-up epoch
    steps, seconds = sum(h["steps"][timed]), sum(h["epoch_time_s"][timed])

    model: BrainLDM = res.model
    model.reconstruct(fmri[:N_RECON], steps=2, sampler="ddim")  # warm-up
    recon = {}
    for n_steps in RECON_STEPS:
        t0 = time.perf_counter()
        model.reconstruct(fmri[:N_RECON], steps=n_steps, sampler="ddim")  # returns numpy: device synced
        recon[n_steps] = time.perf_counter() - t0
    return {
        "preset": name,
        "stages": stages,
        "params": model.n_parameters(),
        "train_steps": steps,
        "train_steps_per_s": steps / seconds,
        "recon_s": recon,
        "device": res.device,
    }


# report

def markdown(rows: list[dict], *, device: str) -> str:
    head = ("| preset | encoder | VAE | U-Net | total | train steps/s | "
            + " | ".join(f"recon {N_RECON} @ {s} DDIM (s)" for s in RECON_STEPS) + " |")
    lines = [f"Device: {device}; torch {torch.__version__}; V = {N_VOXELS}, batch 4", "", head,
             "|" + "---|" * (6 + len(RECON_STEPS))]
    for r in rows:
        p = r["params"]
        lines.append(
            f"| {r['preset']} | {p['encoder']:,} | {p['vae']:,} | {p['unet']:,} | {p['total']:,} | "
            f"{r['train_steps_per_s']:.1f} | " + " | ".join(f"{r['recon_s'][s]:.2f}" for s in RECON_STEPS) + " |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where to run (default: auto)")
    ap.add_argument("--quick", action="store_true", help="2 training epochs (46 steps) instead of 14 (322 steps)")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers to this JSON file")
    args = ap.parse_args(argv)

    device = resolve_device(args.device)
    epochs = 2 if args.quick else 14
    rows = [bench_preset(name, device=str(device), epochs=epochs) for name in PRESETS]
    name = describe_device(device)
    print(markdown(rows, device=name))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"device": name, "torch": torch.__version__, "platform": platform.platform(),
                   "quick": args.quick, "results": rows}
        tmp = args.json.with_name(f".{args.json.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(payload, indent=1))
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
