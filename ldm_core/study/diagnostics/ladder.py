"""The defect ladder of chapter 01: each fix added to the original model in turn (:func:`defect_ladder`,
:func:`run_ladder`), and what leaving one out costs (:func:`leave_one_out_drops`).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import NamedTuple


from ..experiment import Variant, make_ldm_config, run_variants, train_model
from ...metrics import paired_comparison


# ----------------------------------------------------------------------------- the defect ladder (chapter 01)

# the original's four defects, in the order the ladder fixes them
LADDER_FIXES = ("condition", "VAE decoder training", "DDIM sampler", "skip U-Net")
# reader names of the samplers (ldm_core.pipeline.SAMPLERS)
SAMPLER_LABELS = {"ddim": "DDIM", "ddpm": "DDPM (ancestral)", "original": "re-noising (the report's)"}


class DefectLadder(NamedTuple):
    """The original with its defects fixed one after another, and the fully fixed model with one fix removed.

    Attributes
    ----------
    ladder : dict of str -> Variant
        Cumulative fixes: ``"original"``, ``"+ condition injected"``, ``"+ VAE decoder trained"``,
        ``"+ DDIM sampler"``, ``"+ skip U-Net (all fixed)"`` (the last is :attr:`full`).
    leave_one_out : dict of str -> Variant
        ``"all fixed − <fix>"``: the fully fixed model with that one fix undone.
    removed : dict of str -> str
        Leave-one-out name -> the fix it removes (an entry of :data:`LADDER_FIXES`).
    full : str
        Name of the fully fixed model.
    repairs : dict of str -> Variant
        The fully fixed model changed beyond the original's recipe, to test why it is poor (trained one seed):
        ``"all fixed, <n> epochs"`` (longer training) and ``"all fixed, predicting x0"`` (the other
        parameterisation of the denoiser), both sampled with DDIM.
    """

    ladder: dict
    leave_one_out: dict
    removed: dict
    full: str
    repairs: dict

    @property
    def variants(self) -> dict:
        """Every variant, the ladder first (``"all fixed − skip U-Net"`` is ``"+ DDIM sampler"`` again: one run)."""
        return {**self.ladder, **self.leave_one_out}

    @property
    def fixes(self) -> dict:
        """Which variants add and remove each fix: ``{fix: {"added": rung with it, "before": rung before it,
        "removed": the fully fixed model without it}}``, fixes in :data:`LADDER_FIXES` order (chapter 09 reads it
        as chapter 01's ``extra["ladder_fixes"]``)."""
        rungs = list(self.ladder)
        by_fix = {fix: name for name, fix in self.removed.items()}
        return {fix: {"added": rungs[i + 1], "before": rungs[i], "removed": by_fix[fix]}
                for i, fix in enumerate(LADDER_FIXES)}


def defect_ladder(*, epochs: int, batch_size: int, lr: float, vae_epochs: int, unet_channels, steps: int,
                  longer_epochs: int) -> DefectLadder:
    """The variants of chapter 01's defect ladder, all at the original's training budget.

    The original (configuration ``original``) has four defects: its denoiser never receives the condition (nor t),
    its VAE decoder is never trained, it samples with the re-noising sampler, and its denoiser has no skip
    connections. Each rung fixes one more, keeping everything else the original's (its epochs, batch, learning
    rate, noise loss only, eps-prediction, 4×7×7 VAE architecture):

    1. condition injected: ``original_unet_uses_embedding=True`` (t and fMRI embedding added to the conv stack);
    2. VAE decoder trained: stage plan ``end_to_end`` (the VAE trained first on the fitting images, for
       ``vae_epochs``; then encoder and denoiser on the noise loss);
    3. DDIM sampler instead of the re-noising one;
    4. skip U-Net (``unet="unet"`` with ``unet_channels``, condition added to the time embedding).

    Parameters
    ----------
    epochs, batch_size, lr : int, int, float
        The original's training budget (report: 50 epochs, batch 4, 1e-4), shared by every variant.
    vae_epochs, steps : int
        VAE epochs wherever the decoder is trained; reverse steps of every sampler.
    unet_channels : sequence of int
        Widths of the skip U-Net, each divisible by 8.
    longer_epochs : int
        Diffusion epochs of the repair "trained longer"; more than ``epochs``.

    Returns
    -------
    DefectLadder

    Raises
    ------
    ValueError
        If ``longer_epochs`` is not more than ``epochs`` (naming both parameters).
    """
    if not longer_epochs > epochs:
        raise ValueError(f"parameter 'longer_epochs' must exceed 'epochs' (the repair trains the fully fixed model "
                         f"longer); got longer_epochs={longer_epochs}, epochs={epochs}")
    train_original = {"stages": "original", "epochs": epochs, "batch_size": batch_size, "lr": lr}
    train_vae = {**train_original, "stages": "end_to_end", "vae_epochs": vae_epochs}
    renoise, ddim = {"steps": steps, "sampler": "original"}, {"steps": steps, "sampler": "ddim"}
    emb = make_ldm_config("original", original_unet_uses_embedding=True)
    fixed = make_ldm_config("original", unet="unet", unet_channels=tuple(unet_channels), conditioning="add")
    full = "+ skip U-Net (all fixed)"
    ladder = {"original": Variant(make_ldm_config("original"), train_original, renoise),
              "+ condition injected": Variant(emb, train_original, renoise),
              "+ VAE decoder trained": Variant(emb, train_vae, renoise),
              "+ DDIM sampler": Variant(emb, train_vae, ddim),
              full: Variant(fixed, train_vae, ddim)}
    leave_one_out = {
        "all fixed − condition": Variant(make_ldm_config("original", unet="unet", unet_channels=tuple(unet_channels),
                                                         conditioning="none"), train_vae, ddim),
        "all fixed − VAE decoder training": Variant(fixed, train_original, ddim),
        "all fixed − DDIM (re-noising sampler)": Variant(fixed, train_vae, renoise),
        "all fixed − skip U-Net": Variant(emb, train_vae, ddim),
    }
    repairs = {f"all fixed, {longer_epochs} epochs": Variant(fixed, {**train_vae, "epochs": longer_epochs}, ddim),
               "all fixed, predicting x0": Variant(dataclasses.replace(fixed, prediction="x0"), train_vae, ddim)}
    return DefectLadder(ladder, leave_one_out, dict(zip(leave_one_out, LADDER_FIXES)), full, repairs)


class LadderRuns(NamedTuple):
    """What :func:`run_ladder` returns: every variant's runs, and first-seed models of a few of them and of the repairs."""

    results: dict  # str -> VariantResult, in the order of DefectLadder.variants
    models: dict  # str -> BrainLDM (first seed): the names asked in ``keep``, then DefectLadder.repairs


def run_ladder(ladder: DefectLadder, data, *, seeds, keep=(), cache_dir=None, n_boot: int = 2000, n_perm: int = 0,
               progress: bool = False) -> LadderRuns:
    """Train every variant of ``ladder`` per seed (:func:`~ldm_core.study.experiment.run_variants`, cached), keeping models.

    The variants named in ``keep`` are trained first for ``seeds[0]`` with their models kept on disk
    (``keep_models``), so the diagnostics that need a model (condition sensitivity, VAE round trip, denoiser
    probes) load it instead of training it again. The repairs (``ladder.repairs``) are trained for ``seeds[0]``
    only, and kept.

    Parameters
    ----------
    ladder : DefectLadder
    data : StudyData
    seeds : sequence of int
    keep : sequence of str
        Names of variants whose first-seed model is returned.
    cache_dir, n_boot, n_perm, progress
        As in :func:`~ldm_core.study.experiment.run_variants`.

    Returns
    -------
    LadderRuns
        ``results``: every variant of ``ladder.variants`` over all seeds; ``models``: the first-seed BrainLDM of
        each name in ``keep``, then of each repair.

    Raises
    ------
    KeyError
        If a name in ``keep`` is not a variant of the ladder (the variants are named).
    """
    variants = ladder.variants
    missing = [k for k in keep if k not in variants]
    if missing:
        raise KeyError(f"keep names unknown variant(s) {missing}; the ladder has {list(variants)}")
    kw = dict(n_boot=n_boot, n_perm=n_perm, cache_dir=cache_dir, progress=progress)
    if keep:
        run_variants({k: variants[k] for k in keep}, data, seeds=list(seeds)[:1], keep_models=True, **kw)
    results = run_variants(variants, data, seeds=seeds, **kw)
    kept = {**{k: variants[k] for k in keep}, **ladder.repairs}
    models = {k: train_model(data, ldm_cfg=v.ldm_cfg, train_cfg=v.train_cfg, seed=int(seeds[0]), cache_dir=cache_dir,
                             keep_model=True, progress=progress).model for k, v in kept.items()}
    return LadderRuns(results, models)


def leave_one_out_drops(results: Mapping, ladder: DefectLadder, *, metric: str = "pixel_r", split: str = "val",
                        n_boot: int = 2000) -> dict[str, dict]:
    """What each fix is worth: the fully fixed model minus the model without that fix, per image.

    Parameters
    ----------
    results : mapping of str -> VariantResult
        Runs of every variant of ``ladder``.
    metric : str
        A per-image metric of :func:`ldm_core.metrics.evaluate`.
    split : {"val", "test"}
        The validation split by default: the root cause is chosen without the test trials.

    Returns
    -------
    dict of str -> dict
        Fix (an entry of :data:`LADDER_FIXES`) -> :func:`ldm_core.metrics.paired_comparison` of the seed-averaged
        per-image values, full minus leave-one-out: a positive mean means removing the fix loses that much.
    """
    full = results[ladder.full].pooled(metric, split)["per_image"]
    return {fix: paired_comparison(full, results[name].pooled(metric, split)["per_image"], n_boot=n_boot)
            for name, fix in ladder.removed.items()}
