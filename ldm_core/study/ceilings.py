"""VAE ceilings: the most a latent diffusion model can reproduce through its stage-1 VAE.

A latent model reconstructs an image by decoding a latent, so at best it produces what its VAE's decoder makes of
the latent its encoder gives the target itself. Passing the target images through a variant's stage-1 VAE
(encoder mean, then decoder; :func:`ldm_core.study.diagnostics.vae_roundtrip`), with no fMRI involved, measures that
ceiling. :func:`vae_ceilings` does this for each variant of a comparison with the VAE its runs train
(:func:`ldm_core.study.experiment.stage1_vae`, loaded from the run cache's ``vae`` folder when a run has trained it, so
bitwise that VAE), and scores the round trips like reconstructions (:func:`ldm_core.metrics.evaluate`), so that a
chapter can set its models against the ceilings of their own VAEs.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .diagnostics import vae_roundtrip
from ..metrics import evaluate

if TYPE_CHECKING:
    from .experiment import Variant
    from ..splits import StudyData

__all__ = ["Ceilings", "vae_ceilings"]

SPLITS = ("val", "test")  # trials whose images a ceiling reconstructs


class Ceilings(NamedTuple):
    """Round trips of each variant's VAE and their scores.

    reconstructions : dict of str -> ndarray (N, S, S), float32 in [0, 1]
        Variant name -> decode(encoder mean) of each image of the split.
    metrics : dict of str -> dict
        Variant name -> :func:`ldm_core.metrics.evaluate` of those round trips against the same images.
    """

    reconstructions: dict[str, np.ndarray]
    metrics: dict[str, dict]


def vae_ceilings(variants: Mapping[str, Variant], data: StudyData, *, split: str = "test", seed: int = 0,
                 cache_dir: str | Path | None = None, n_boot: int = 2000, n_perm: int = 0) -> Ceilings:
    """The VAE ceiling of each variant: its stage-1 VAE's round trip of the ``split`` images, scored.

    Parameters
    ----------
    variants : mapping of str -> Variant
        Name -> configuration (only the VAE config and the VAE-stage training fields matter); e.g.
        ``{n: sweep.variants[n] for n in names}``.
    data : StudyData
        The chapter's split; the VAE is trained on its fitting images.
    split : {"test", "val"}
        Whose images go through the VAE.
    seed : int
        Training seed of the VAE (the runs' ``seeds[0]`` to reuse the VAE a screen trained).
    cache_dir : path, optional
        The run cache of :func:`~ldm_core.study.experiment.run_variants`; VAEs trained there are loaded, others trained
        and cached.
    n_boot, n_perm : int
        Bootstrap resamples and identification permutations of :func:`~ldm_core.metrics.evaluate`.

    Returns
    -------
    Ceilings
        In the order of ``variants``.

    Raises
    ------
    ValueError
        If ``variants`` is empty, ``split`` is not one of :data:`SPLITS`, or a variant has no VAE stage
        (from :func:`~ldm_core.study.experiment.stage1_vae`).
    """
    from .experiment import stage1_vae

    if not variants:
        raise ValueError("vae_ceilings needs at least one variant")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    images, labels = getattr(data, f"images_{split}"), getattr(data, f"labels_{split}")
    recons, scores = {}, {}
    for name, v in variants.items():
        vae = stage1_vae(data, ldm_cfg=v.ldm_cfg, train_cfg=v.train_cfg, seed=seed, cache_dir=cache_dir)
        recons[name] = vae_roundtrip(vae, images)
        scores[name] = evaluate(recons[name], images, labels, n_boot=n_boot, n_perm=n_perm, seed=seed)
    return Ceilings(recons, scores)
