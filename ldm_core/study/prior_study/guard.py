"""The unpaired prior images after the leakage guard, and how the pages name them and their source.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ...leakage import drop_near_duplicates, max_shifted_correlation
from ...prior_images import FILE_SOURCE, NPZ_SOURCE, PRIOR_SHA256, PriorImages, load_prior_images
from ..runs import VariantResult
from ...splits import StudyData


DIRECT = "direct decoding, diffusion off"  # the stage-3 screen's name of decoding the predicted latent directly


def val_score(result: VariantResult, metric: str) -> float:
    """The first seed's validation mean of ``metric``."""
    return float(result.runs[0].val_metrics[metric]["mean"])


def _best(results: Mapping[str, VariantResult], metric: str) -> str:
    return max(results, key=lambda n: val_score(results[n], metric))


def guarded_prior_images(data: StudyData, *, source: str, threshold: float,
                         max_shift: int) -> tuple[PriorImages, dict, np.ndarray]:
    """The unpaired images with every near-copy of a validation or test stimulus dropped.

    The images are found on their own (:func:`ldm_core.prior_images.load_prior_images` with ``source`` and the
    stimuli's side), never through the paired data's file or folder.

    Returns
    -------
    kept : PriorImages
    report : dict
        :func:`ldm_core.leakage.drop_near_duplicates`'s report, plus ``max_r_kept_test`` (the largest shifted r
        of a kept image with any test stimulus; NaN if none is kept) and ``raw`` (the images before the guard).
    pretrain_images : ndarray (M, S, S)
        The kept images followed by the fitting trials' images: what the prior trains on.
    """
    raw = load_prior_images(source=source, size=data.image_size, verbose=0)
    kept, report = drop_near_duplicates(raw, np.concatenate([data.images_val, data.images_test]), threshold=threshold,
                                        max_shift=max_shift, references_label="validation and test stimuli")
    r_test = max_shifted_correlation(kept.images, data.images_test, max_shift=max_shift)[0] if kept.n_images else []
    report = {**report, "max_r_kept_test": float(np.max(r_test)) if len(r_test) else float("nan"), "raw": raw}
    return kept, report, np.concatenate([kept.images, data.images_fit])


def guard_summary(leak: dict, *, max_shown: int = 10) -> dict:
    """What the page says about the guard: a sentence, and the dropped images beside their stimuli.

    Parameters
    ----------
    leak : dict
        :func:`guarded_prior_images`'s report (``n_before``, ``n_dropped``, ``n_after``, ``threshold``,
        ``max_shift``, ``max_r_kept_test``, ``dropped``, ``raw``).

    Returns
    -------
    dict
        ``text`` (one or two sentences, from the counts: no drop is said as such), ``dropped`` (the first
        ``max_shown`` dropped images, (k, S, S), possibly k = 0) and ``references`` (the index of each one's stimulus
        among the validation-then-test stimuli).
    """
    shown = leak["dropped"][:max_shown]
    raw = leak["raw"].images
    dropped = raw[[d["index"] for d in shown]] if shown else raw[:0]
    if leak["n_dropped"]:
        text = (f"The guard dropped {leak['n_dropped']:,} of {leak['n_before']:,} unpaired images (shifted pixel r "
                f"above {leak['threshold']:g} with a validation or test stimulus, shifts up to "
                f"{leak['max_shift']} px); {leak['n_after']:,} remain.")
    else:
        text = (f"No unpaired image is near a stimulus: none of the {leak['n_before']:,} has a shifted pixel r above "
                f"{leak['threshold']:g} with a validation or test stimulus (shifts up to {leak['max_shift']} px), so "
                "the guard dropped nothing.")
    if np.isfinite(leak.get("max_r_kept_test", float("nan"))):
        text += f" The closest kept image reaches r = {leak['max_r_kept_test']:.3f} with a test stimulus."
    return {"text": text, "dropped": dropped, "references": [d["reference"] for d in shown]}


def prior_phrase(prior_images: PriorImages) -> str:
    """What the unpaired images are, for prose: "unpaired MNIST digits" or "unpaired images from <file>"."""
    from ...prior_images import FILE_SOURCE

    return f"unpaired images from {prior_images.path.name}" if prior_images.source == FILE_SOURCE \
        else "unpaired MNIST digits"


def prior_source_text(raw: PriorImages) -> str:
    """The unpaired images in one sentence of prose for the page (instead of printing their description): how many of
    which classes, the file, its licence and whether its checksum matches the published one. No folder is named."""
    prov = raw.provenance()
    mnist = raw.source != FILE_SOURCE
    names = raw.class_names or {}
    if mnist:
        def plural(word: str) -> str:
            return word + ("es" if word.endswith(("s", "x")) else "s")

        counts = ", ".join(f"{n:,} {names.get(c, str(c)) if n == 1 else plural(names.get(c, str(c)))}"
                           for c, n in raw.counts().items())
    elif raw.class_names is None:
        counts = "unlabelled"
    else:
        counts = ", ".join(f"{names.get(c, f'class {c}')}: {n:,}" for c, n in raw.counts().items())
    what = f"{raw.n_images:,} MNIST training digits" if mnist else f"{raw.n_images:,} images"
    text = f"The unpaired images are {what} ({counts}) read from {prov['file']}; licence: {prov['licence']}"
    if raw.source == NPZ_SOURCE:
        text += ("; the file's SHA-256 matches the published checksum" if raw.sha256 == PRIOR_SHA256
                 else "; the file's SHA-256 differs from the published checksum")
    return text + ". No fMRI is paired with them; the results record their checksum."


def kid_axis_label(prior_images: PriorImages) -> str | None:
    """The perception-distortion plot's KID axis label when the unpaired images are not MNIST digits (None: the
    plot's default, which speaks of digits)."""
    from ...prior_images import FILE_SOURCE

    if prior_images.source != FILE_SOURCE:
        return None
    return f"KID to unseen images of {prior_images.path.name}\n(classifier features; lower = closer to them)"
