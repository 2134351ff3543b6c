"""Perception beside distortion: the chapter's perception classifier, perception metrics of each decoder, the
perception-distortion plane, KID and its reference, and the published comparison.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ...metrics import evaluate, paired_comparison
from ..names import ci_text, join_words, model_label
from ...prior_images import PriorImages
from ...splits import StudyData
from .screens import BaselineScores


# ----------------------------------------------------------------------------- perception (issue 17 §4)


_NAN = float("nan")


@dataclass
class Perception:
    """The chapter's perception classifier (:func:`ldm_core.perception_net.train_perception_net`), or why there is none.

    net : PerceptionNet or None; class_names : the dataset's code -> class name; note : why the perception metrics
    are unavailable ("" when they are available).
    """

    net: object | None
    class_names: dict
    note: str = ""

    @property
    def available(self) -> bool:
        return self.net is not None

    def scores(self, recons: np.ndarray, targets: np.ndarray, labels: np.ndarray, *, n_boot: int,
               seed: int = 0) -> dict[str, dict]:
        """:func:`ldm_core.metrics.perception_metrics` of ``recons`` ((N, S, S) or (K, N, S, S)), or NaN with the
        note for each of ``digit_acc``, ``feature_id2``, ``kid_digit`` when no classifier is available."""
        from ...metrics import PERCEPTION_METRICS, perception_metrics

        if self.net is None:
            return {m: {"mean": _NAN, "ci_low": _NAN, "ci_high": _NAN, "note": self.note} for m in PERCEPTION_METRICS}
        return perception_metrics(recons, targets, labels, net=self.net, class_names=self.class_names, n_boot=n_boot,
                                  seed=seed)


def perception_model(prior_images: PriorImages, data: StudyData, *, seed: int = 0,
                     cache_dir: str | Path | None = None) -> Perception:
    """The perception classifier, trained on the guarded unpaired prior images only (their labels and class names).

    It is unavailable -- :class:`Perception` with ``net=None`` and a note, never an error -- when the prior images
    carry no labels, when a class of the stimuli is not among the prior's classes, or when the classifier cannot be
    trained on them (e.g. a single class).
    """
    from ...perception_net import train_perception_net

    stim_names = {int(k): str(v) for k, v in data.class_names.items()}
    names = getattr(prior_images, "class_names", None)
    codes = sorted({int(c) for c in np.unique(prior_images.labels)})
    if not names or any(c not in names for c in codes):
        return Perception(None, stim_names, "the perception metrics are unavailable: the unpaired prior images carry no "
                                            "class labels, so no classifier can be trained on them")
    prior_classes = sorted({names[c] for c in codes})
    missing = sorted(set(stim_names.values()) - set(prior_classes))
    if missing:
        stimuli = ", ".join(sorted(set(stim_names.values())))
        return Perception(None, stim_names, f"the perception metrics are unavailable: the prior's classes "
                                            f"({', '.join(prior_classes)}) differ from the stimuli's ({stimuli})")
    try:
        net = train_perception_net(prior_images.images, prior_images.labels, class_names=dict(names), seed=seed,
                                   cache_dir=cache_dir)
    except ValueError as e:
        return Perception(None, stim_names, f"the perception metrics are unavailable: no classifier could be trained "
                                            f"on the prior images ({e})")
    return Perception(net, stim_names)


def add_perception(metrics: Mapping[str, dict], recons: Mapping[str, np.ndarray], targets: np.ndarray,
                   labels: np.ndarray, perception: Perception, *, n_boot: int) -> dict[str, dict]:
    """Every model's evaluation with ``digit_acc``, ``feature_id2`` and ``kid_digit`` added beside ``psnr``.

    ``metrics`` and ``recons`` share their keys (e.g. :func:`ldm_core.study.runs.chapter_metrics`' ``"<model>@seed<k>"``
    and the baselines); returns a new dict, the inputs unchanged.
    """
    return {k: {**v, **perception.scores(recons[k], targets, labels, n_boot=n_boot)} for k, v in metrics.items()}


def perception_distortion(recons: Mapping[str, np.ndarray], images: np.ndarray, labels: np.ndarray,
                          perception: Perception, *, n_boot: int) -> dict[str, dict]:
    """Each decoder's place on the perception-distortion plane (Blau and Michaeli 2018) on one split.

    Parameters
    ----------
    recons : {decoder: ndarray (N, S, S)}
        Reconstructions of the same N trials (``images``, ``labels``).

    Returns
    -------
    {decoder: {"psnr", "ssim", "pixel_r", "digit_acc", "feature_id2", "kid_digit": {"mean", "ci_low", "ci_high", ...}}}
    """
    out = {}
    for name, r in recons.items():
        ev = evaluate(r, images, labels, n_boot=n_boot, n_perm=0)
        out[name] = {**{m: ev[m] for m in ("psnr", "ssim", "pixel_r")},
                     **perception.scores(r, images, labels, n_boot=n_boot)}
    return out


def _ci_apart(a: dict, b: dict) -> int:
    """+1 if a's 95% CI lies wholly above b's, -1 wholly below, 0 if they overlap or are undefined."""
    if not all(np.isfinite([a["ci_low"], a["ci_high"], b["ci_low"], b["ci_high"]])):
        return 0
    return 1 if a["ci_low"] > b["ci_high"] else -1 if a["ci_high"] < b["ci_low"] else 0


def _against_direct(better: Sequence[str], worse: Sequence[str], tied: Sequence[str]) -> str:
    """ "is worse than direct decoding on PSNR and SSIM and not separable from it on KID" and the like."""
    parts = []
    if better:
        parts.append(f"better than direct decoding on {join_words(better)}")
    if worse:
        parts.append(f"worse {'than direct decoding ' if not parts else ''}on {join_words(worse)}")
    if tied:
        parts.append(f"not separable from {'it' if parts else 'direct decoding'} on {join_words(tied, 'or')}")
    return "is " + join_words(parts)


def perception_distortion_text(points: Mapping[str, dict], *, direct: str, diffusion: Mapping[str, str],
                               perception: Perception, n_boot: int = 2000) -> dict:
    """What each diffusion decoder gains and loses against direct decoding, axis by axis, generated from ``points``.

    ``diffusion`` maps a phrase ("a single diffusion sample", "the mean of 16 decoded samples") to its decoder in
    ``points``; each decoder gets its own clause, so a single sample's cost is never read as the mean's. PSNR and
    SSIM are compared image by image (paired bootstrap CI of the difference: better or worse when the CI excludes 0,
    else not separable); KID is a set statistic, so its values are compared by their CIs (apart, or overlapping: not
    separable). Lower KID is better.

    Returns
    -------
    dict
        ``text`` (one sentence per decoder with its numbers, for the section), ``summary`` (one clause per decoder,
        for the answer), ``by_decoder`` ({decoder: {"better", "worse", "not_separable": [axes]}}), and ``gains`` /
        ``costs`` (the axes on which any decoder is better / worse, in the order PSNR, SSIM, KID).
    """
    d = points[direct]
    sentences, clauses, by = [], [], {}
    for phrase, name in diffusion.items():
        p = points[name]
        axes: dict[str, list] = {"better": [], "worse": [], "not_separable": []}
        nums = []
        for m, axis, unit, digits in (("psnr", "PSNR", " dB", 2), ("ssim", "SSIM", "", 3)):
            c = paired_comparison(p[m]["per_image"], d[m]["per_image"], n_boot=n_boot)
            nums.append(f"{axis} {ci_text(c, digits, sign=True, unit=unit)}")
            axes["better" if c["ci_low"] > 0 else "worse" if c["ci_high"] < 0 else "not_separable"].append(axis)
        kid_part = ""
        if perception.available:
            k, kd = p["kid_digit"], d["kid_digit"]
            side = _ci_apart(k, kd)
            axes["better" if side < 0 else "worse" if side > 0 else "not_separable"].append("KID")
            where = "lower, CIs apart" if side < 0 else "higher, CIs apart" if side > 0 else "CIs overlap"
            kid_part = f"; its KID is {ci_text(k, 3)} against direct decoding's {ci_text(kd, 3)} ({where})"
        verdict = _against_direct(axes["better"], axes["worse"], axes["not_separable"])
        sentences.append(f"{phrase[0].upper()}{phrase[1:]} {verdict}: per image, {join_words(nums)} against direct "
                         f"decoding{kid_part}.")
        clauses.append(f"{phrase} {verdict}")
        by[name] = axes
    order = ["PSNR", "SSIM", "KID"]
    gains = [a for a in order if any(a in v["better"] for v in by.values())]
    costs = [a for a in order if any(a in v["worse"] for v in by.values())]
    summary = "on the validation trials, " + "; ".join(clauses)
    if perception.available:
        text = " ".join(sentences) + " Lower KID is better."
    else:
        summary += f"; {perception.note}"
        text = " ".join(sentences) + f" {perception.note[0].upper()}{perception.note[1:]}."
    return {"text": text, "summary": summary, "by_decoder": by, "gains": gains, "costs": costs}


def _row_set(images: np.ndarray) -> set[bytes]:
    return {r.tobytes() for r in np.ascontiguousarray(images, dtype=np.float32).reshape(len(images), -1)}


def kid_reference(perception: Perception, pretrain_images: np.ndarray) -> dict:
    """Where KID's reference images come from, and how many of them the image prior was trained on.

    The reference is the perception classifier's held-out share of the guarded unpaired images: unseen by the
    classifier, but (when the prior trained on every guarded image) part of the image prior's training set, which
    favours decoders built on that prior on the KID axis. Counted, not assumed: each reference image is looked up,
    bit for bit, among ``pretrain_images``.

    Returns
    -------
    dict
        ``available``; when available ``n_images``, ``in_prior_training_set`` (count), ``unseen_by_classifier``
        (True) and ``note`` (a sentence for the page and for ``metrics.json``).
    """
    if not perception.available:
        return {"available": False, "note": perception.note}
    ref = np.asarray(perception.net.heldout_images)
    prior_rows = _row_set(pretrain_images)
    n_in = sum(r in prior_rows for r in _row_set(ref)) if len(ref) else 0
    note = (f"KID's reference set is the {len(ref):,} guarded unpaired images held out from the perception "
            "classifier's training, so the classifier never saw them")
    if n_in:
        note += (f"; {n_in:,} of them are also among the image prior's training images, which favours the decoders "
                 "built on that prior (the image-prior decoders and autoencoder + ridge) on this axis")
    else:
        note += "; none of them is among the image prior's training images"
    return {"available": True, "n_images": int(len(ref)), "in_prior_training_set": int(n_in),
            "unseen_by_classifier": True, "note": note}


def kid_text(rows: Mapping[str, dict], *, n_images: int, split: str, n_recons: Mapping[str, int] | None = None,
             reference: Mapping | None = None) -> str:
    """What a reader needs to read a KID column, from the rows shown: the estimator can be negative, how wide its
    CIs are here, the reference set, and -- when rows have different numbers of reconstructions per image -- which
    rows are compared (only CIs that do not overlap separate two rows).

    Parameters
    ----------
    rows : {row label: {"kid_digit": {"mean", "ci_low", "ci_high"}, ...}}
    n_images : int
        The images each row reconstructs (KID's sample size).
    split : str
        "validation" or "test", for the sentence.
    n_recons : {row label: K}, optional
        Reconstructions per image (seeds or samples); rows with more than the fewest are compared with the others
        by CI overlap only.
    reference : dict, optional
        :func:`kid_reference`'s result (its note is appended).
    """
    kids = {n: r["kid_digit"] for n, r in rows.items() if "kid_digit" in r and np.isfinite(r["kid_digit"]["mean"])}
    if not kids:
        return reference["note"] + "." if reference and reference.get("note") else ""
    half = max((k["ci_high"] - k["ci_low"]) / 2 for k in kids.values())
    text = (f"KID is an unbiased estimator of a squared distance between feature distributions, so it can be negative "
            f"(0: no difference beyond sampling noise); with {n_images} {split} images its 95% CIs are wide (half-widths"
            f" up to {half:.2f} here; they resample the reconstructions, with the reference images held fixed, so a set of "
            "identical reconstructions gets a CI of zero width), so two KIDs are told apart only when their CIs do not "
            "overlap.")
    if n_recons:
        counts = {n: int(n_recons.get(n, 1)) for n in kids}
        if len(set(counts.values())) > 1:
            few = min(counts.values())
            many = {n: c for n, c in counts.items() if c > few}
            others = [n for n in kids if counts[n] == few]
            them = "it" if len(many) == 1 else "both" if len(many) == 2 else "all of them"
            sides = {o: {_ci_apart(kids[o], kids[n]) for n in many} for o in others}
            higher = [o for o in others if sides[o] == {1}]
            lower = [o for o in others if sides[o] == {-1}]
            mixed = [f"{o} ({'higher' if _ci_apart(kids[o], kids[n]) > 0 else 'lower'} than {n})"
                     for o in others if o not in higher + lower for n in many if _ci_apart(kids[o], kids[n])]
            found = ([f"{join_words(higher)} lie{'s' if len(higher) == 1 else ''} higher than {them}"] if higher else []) \
                + ([f"{join_words(lower)} lie{'s' if len(lower) == 1 else ''} lower than {them}"] if lower else []) + mixed
            text += (f" {join_words(list(many))} pool{'s' if len(many) == 1 else ''} "
                     f"{join_words(sorted({str(c) for c in many.values()}))} reconstructions per image (reconstructions of "
                     f"one image are never paired with each other) and the other rows {few} each; "
                     + ("; ".join(found) + ", CIs apart; the other rows' KIDs are not separable from "
                        + ("it" if len(many) == 1 else "them") if found
                        else f"no other row's KID is separable from {'it' if len(many) == 1 else 'them'}") + ".")
    if reference and reference.get("note"):
        text += f" {reference['note']}."
    return text


def published_comparison(models: Mapping[str, dict], *, method: str = "DGMM") -> pd.DataFrame:
    """Our models beside a published method's quoted means (:data:`ldm_core.study.literature.PUBLISHED`), metric by metric.

    ``models`` maps a row label to ``{metric: {"mean", "ci_low", "ci_high"}}`` (test, seeds pooled) with pixel_r, mse
    and ssim. The comparison only says where our whole 95% CI lies: above or below the published mean, else not
    separable -- never "better": the published metrics are not defined like ours and the published methods used no
    unpaired images (:func:`ldm_core.study.literature.caveats_markdown`), so it is a loose comparison.

    Raises
    ------
    KeyError
        If ``method`` is not a row of the published table.
    """
    from ..literature import PUBLISHED

    entry = next((e for e in PUBLISHED if e["method"] == method), None)
    if entry is None:
        raise KeyError(f"no published row {method!r}; rows: {[e['method'] for e in PUBLISHED]}")
    rows = {}
    for label, pooled in models.items():
        for m, shown in (("pixel_r", "PCC"), ("mse", "MSE (lower is better)"), ("ssim", "SSIM")):
            pub = entry[m][0] if isinstance(entry[m], tuple) else entry[m]
            v = pooled[m]
            if v["ci_low"] > pub:
                where = "above the published mean (loose comparison)"
            elif v["ci_high"] < pub:
                where = "below the published mean (loose comparison)"
            else:
                where = "not separable (the CI contains the published mean)"
            rows[(label, shown)] = {f"{method}, as published (quoted)": f"{pub:.3f}",
                                    "measured here (our definitions)": ci_text(v, 3), "comparison": where}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["our model", "metric"])


def paired_rows(selected_fit: dict, selected_all: dict, bases: BaselineScores, *, n_fit: int, n_all: int,
                reference: str = "autoencoder + ridge", n_boot: int) -> dict:
    """The paired test comparisons of the selected model, each shown once.

    Against the best baseline (chosen on validation) fitted on the fitting trials and refitted on all, and against
    ``reference`` (the image prior alone) at the fitting trials -- unless the reference is the best baseline, when
    that row would repeat the first. Returns ``{"rows": {label: paired_comparisons}, "best_fit": label, "best_all":
    label, "reference_fit": label}`` (``reference_fit`` is ``best_fit`` when they coincide).
    """
    from ...metrics import paired_comparisons

    best = bases.best
    same = best == reference
    tag = " (best baseline on validation" + ("; the image prior alone)" if same else ")")
    best_fit = f"fitted on {n_fit} trials − {model_label(best)}{tag}"
    best_all = f"refitted on {n_all} trials − {model_label(best)}{tag}"
    rows = {best_fit: paired_comparisons(selected_fit, bases.test[best], n_boot=n_boot),
            best_all: paired_comparisons(selected_all, bases.test_all[best], n_boot=n_boot)}
    ref_fit = best_fit
    if not same and reference in bases.test:
        ref_fit = f"fitted on {n_fit} trials − {model_label(reference)} (the image prior alone)"
        rows[ref_fit] = paired_comparisons(selected_fit, bases.test[reference], n_boot=n_boot)
    return {"rows": rows, "best_fit": best_fit, "best_all": best_all, "reference_fit": ref_fit}
