"""The fMRI encoders compared in chapter 04: the variants, what sets them apart, and what this data cannot test.

Every variant is the chapter's base -- the ``fixed`` pipeline, whose encoder is the regularised MLP (one narrow
hidden layer, heavy dropout), trained with :data:`~ldm_core.config.FIXED_AUGMENTATION` (Gaussian noise on the
z-scored fMRI and dropped voxels) -- with its encoder or the encoder's training changed:

- :func:`add_encoder_variants` adds the five variants to a :class:`~ldm_core.study.sweep.Sweep` (the report's deep MLP,
  the regularised MLP without augmentation, stronger weight decay, an attention encoder over voxel groups and its
  cross-attention version), checking the chapter's parameters against the data first;
- :func:`encoder_tables` say what each variant's encoder is and how it is trained; :func:`align_losses` reads the
  alignment stage's validation loss (the most direct measure of how well an encoder generalises); :func:`decay_shrink` is the factor
  by which AdamW's decoupled weight decay alone shrinks a weight over a stage (parameter counts by part:
  :func:`ldm_core.study.diagnostics.parameter_table`);
- :data:`UNTESTABLE` and :func:`file_variables`: the report's two encoder ideas that digit69 cannot test, and the
  arrays the data file holds.

Written for this study: no library compares encoders of a latent diffusion model; the pieces are counts and tables.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from ..config import NO_AUGMENTATION, TrainConfig, get_preset

__all__ = ["BASE", "add_encoder_variants", "encoder_tables", "align_losses", "decay_shrink", "UNTESTABLE",
           "untestable_table", "file_variables"]

BASE = "regularised MLP + augmentation"  # name of chapter 04's base variant
ENCODER_LABELS = {"mlp_regularised": "regularised MLP", "mlp_original": "the report's MLP",
                  "brain_aware": "attention over voxel groups"}
CONDITIONING_LABELS = {"film": "FiLM", "add": "added to t", "cross_attn": "cross-attention", "none": "none"}


def add_encoder_variants(sweep, *, weight_decay: float, encoder_tokens: int, brain_aware_dropout: float) -> dict[str, str]:
    """Add chapter 04's five encoder variants to ``sweep`` and return their names by role.

    The variants (each the sweep's base with the fields named changed):

    - ``report_mlp``: the report's encoder as the ``original`` preset builds it (hidden widths 1024-768-512,
      dropout 0.1), trained without fMRI augmentation, as the report trained it;
    - ``no_augmentation``: the regularised MLP with ``fmri_noise = voxel_dropout = 0``, which separates the narrower,
      more heavily dropped-out network from the augmentation of its input;
    - ``weight_decay``: the base with AdamW weight decay ``weight_decay`` in every stage (the VAE's too);
    - ``attention``: ``brain_aware``, ``encoder_tokens`` contiguous voxel groups embedded and mixed by two
      transformer layers (dropout ``brain_aware_dropout``), no augmentation (its MLP counterpart is
      ``no_augmentation``); the FiLM-conditioned U-Net receives the mean token;
    - ``cross_attention``: the same encoder, the U-Net attending to its tokens one by one at every block.

    Parameters
    ----------
    sweep : Sweep
        Its base is the regularised MLP with augmentation (:data:`BASE`); its ``data`` gives the voxel count.
    weight_decay : float
        > 0 and not the base's (``TrainConfig.weight_decay`` of the base recipe).
    encoder_tokens : int
        In [1, number of voxels].
    brain_aware_dropout : float
        In [0, 1).

    Returns
    -------
    dict of str -> str
        Role (``report_mlp``, ``no_augmentation``, ``weight_decay``, ``attention``, ``cross_attention``) -> variant name.

    Raises
    ------
    ValueError
        Naming the parameter, before any training: ``encoder_tokens`` outside [1, V]; ``weight_decay`` not > 0 or
        equal to the base's (the variant would be the base); ``brain_aware_dropout`` outside [0, 1).
    """
    V = sweep.data.n_voxels
    base_decay = TrainConfig.from_dict(sweep.base.train_cfg).weight_decay
    if not (isinstance(encoder_tokens, int) and 1 <= encoder_tokens <= V):
        raise ValueError(f"parameter 'encoder_tokens' must be an int between 1 and the {V} voxels of the data; "
                         f"got {encoder_tokens!r}")
    if not weight_decay > 0 or math.isclose(weight_decay, base_decay):
        raise ValueError(f"parameter 'weight_decay' must be > 0 and differ from the base's {base_decay:g} (otherwise "
                         f"the variant is the base); got {weight_decay!r}")
    if not 0 <= brain_aware_dropout < 1:
        raise ValueError(f"parameter 'brain_aware_dropout' must be a probability in [0, 1); got {brain_aware_dropout!r}")
    orig = get_preset("original")
    names = {"report_mlp": "the report's MLP", "no_augmentation": "regularised MLP, no augmentation",
             "weight_decay": f"{BASE}, weight decay {weight_decay:g}",
             "attention": f"attention over {encoder_tokens} voxel groups"}
    names["cross_attention"] = f"{names['attention']}, cross-attention"
    sweep.add(names["report_mlp"], ldm={"encoder": orig.encoder, "encoder_hidden": orig.encoder_hidden,
                                        "encoder_dropout": orig.encoder_dropout}, train=NO_AUGMENTATION)
    sweep.add(names["no_augmentation"], train=NO_AUGMENTATION)
    sweep.add(names["weight_decay"], train={"weight_decay": float(weight_decay)})
    sweep.add(names["attention"], ldm={"encoder": "brain_aware", "encoder_tokens": int(encoder_tokens),
                                       "encoder_dropout": float(brain_aware_dropout)}, train=NO_AUGMENTATION)
    sweep.add(names["cross_attention"], ldm={"conditioning": "cross_attn"}, of=names["attention"])
    return names


def encoder_tables(variants: Mapping) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What sets each variant apart, one row per variant (reader names, no empty cells), as two narrow tables.

    Parameters
    ----------
    variants : mapping of str -> Variant
        E.g. ``sweep.variants``.

    Returns
    -------
    architecture : DataFrame
        Columns: encoder, hidden widths ("—" for the attention encoder), tokens, dropout, U-Net conditioning.
    training : DataFrame
        Columns: fMRI noise (std, in units of the training std), voxel dropout (probability), weight decay.
    """
    arch, train = {}, {}
    for name, v in variants.items():
        c, t = v.ldm_cfg, TrainConfig.from_dict(v.train_cfg)
        attn = c.encoder == "brain_aware"
        arch[name] = {"encoder": ENCODER_LABELS.get(c.encoder, c.encoder),
                      "hidden widths": "—" if attn else "–".join(map(str, c.encoder_hidden)),
                      "tokens": c.encoder_tokens if attn else 1, "dropout": f"{c.encoder_dropout:g}",
                      "U-Net conditioning": CONDITIONING_LABELS.get(c.conditioning, c.conditioning)}
        train[name] = {"fMRI noise (std)": f"{t.fmri_noise:g}", "voxel dropout": f"{t.voxel_dropout:g}",
                       "weight decay": f"{t.weight_decay:g}"}
    return (pd.DataFrame.from_dict(arch, orient="index").rename_axis("architecture of each variant"),
            pd.DataFrame.from_dict(train, orient="index").rename_axis("training of each variant"))


def align_losses(results: Mapping) -> pd.DataFrame:
    """The alignment stage's validation loss of each variant (first seed): last epoch and best epoch.

    The alignment stage fits the encoder (through a linear head) to each fitting trial's VAE latent by MSE; its loss
    on the validation trials is the most direct measure of how well an encoder generalises.

    Parameters
    ----------
    results : mapping of str -> VariantResult
        Runs of the ``progressive`` stage plan (their history has ``align`` epochs).

    Returns
    -------
    DataFrame
        Columns "last epoch" and "best epoch" (MSE per latent component, scaled latents), one row per variant.

    Raises
    ------
    ValueError
        If a variant's history has no alignment epoch with a validation loss (its stages are named).
    """
    rows = {}
    for name, res in results.items():
        h = res.runs[0].history
        v = [x for s, x in zip(h["stage"], h["val_loss"]) if s == "align" and x is not None and x == x]
        if not v:
            raise ValueError(f"variant {name!r} has no validated 'align' epoch; its stages are {sorted(set(h['stage']))}")
        rows[name] = {"last epoch": float(v[-1]), "best epoch": float(min(v))}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("alignment validation loss")


def decay_shrink(*, lr: float, weight_decay: float, epochs: int, n_trials: int, batch_size: int) -> float:
    """Factor by which AdamW's decoupled weight decay alone shrinks a weight over one stage.

    Each optimiser step multiplies every weight by (1 - lr * weight_decay) before the gradient update (Loshchilov &
    Hutter 2019); a stage of ``epochs`` epochs over ``n_trials`` trials in batches of ``batch_size`` takes
    epochs * ceil(n_trials / batch_size) steps, so the factor is (1 - lr * weight_decay) ** steps.

    Raises
    ------
    ValueError
        If a size is < 1, or lr * weight_decay is not in [0, 1).
    """
    if min(epochs, n_trials, batch_size) < 1:
        raise ValueError(f"epochs, n_trials and batch_size must be >= 1; got {epochs}, {n_trials}, {batch_size}")
    if not 0 <= lr * weight_decay < 1:
        raise ValueError(f"lr * weight_decay must be in [0, 1); got {lr} * {weight_decay}")
    return (1 - lr * weight_decay) ** (epochs * math.ceil(n_trials / batch_size))


# The report's encoder ideas that digit69 cannot test: (idea, why not here, data that would test it).
UNTESTABLE = (
    ("temporal modelling of fMRI sequences", "one pattern per trial, no time series",
     "each trial's voxel time series around stimulus onset"),
    ("spatial attention over brain regions", "no voxel coordinates or region labels",
     "voxel coordinates, or visual-area and retinotopic labels"),
)


def untestable_table() -> pd.DataFrame:
    """:data:`UNTESTABLE` as a page table (index: the report's idea)."""
    return pd.DataFrame(UNTESTABLE, columns=["report's idea", "why not here", "data that would test it"]
                        ).set_index("report's idea")


def file_variables(path: str | Path) -> pd.DataFrame:
    """The arrays a MATLAB file holds (scipy's ``whosmat``): name, shape and MATLAB class, without loading them.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file.
    """
    from scipy.io import whosmat

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no MATLAB file at {path}")
    rows = [(name, " × ".join(map(str, shape)), cls) for name, shape, cls in whosmat(str(path))]
    return pd.DataFrame(rows, columns=["variable", "shape", "MATLAB class"]).set_index("variable")
