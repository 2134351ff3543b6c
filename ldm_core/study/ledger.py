"""The claims ledger: every quantitative claim of the report, the rows that measure it, and one verdict per claim.

The ledger is assembled from the chapters' results files, never from typed numbers:

- each chapter stores the verdict rows it computed (``extra["verdicts"]`` of its ``metrics.json``, rows built by
  :func:`ldm_core.study.claims.claim_row` and its siblings, with the keys of :data:`ldm_core.study.claims.ROW_KEYS`);
  :func:`collect_verdicts` gathers them, tagged with the chapter, and refuses rows written before that schema (the
  error names the chapter to re-run);
- :func:`computed_claims` adds the claims that need numbers from several chapters or are arithmetic
  (claims 2, 11a, 12, 13, 16);
- :func:`untestable_claims` lists what this data cannot test, with the reason and what would be needed.

:func:`ledger` joins the three, ordered by claim number, keeps each measurement once (the same model scored in two
chapters is one row naming both), marks the rows that measure the model a claim is about (:func:`subject_models`)
and gives every row an id ("8.4": the fourth row of claim 8). :func:`claim_verdicts` then gives one verdict per
claim by the rule below, against chapter 00's trivial references (:func:`trivial_references`);
:func:`verdict_counts` counts claims, :func:`summary_prose` writes the answer, :func:`claim_table` the per-claim
table. :func:`trajectory` gives each phase's validation-selected model beside the report's expected range,
:func:`headline_rows` the executive summary's table, :func:`final_model` what the final model is, and
:func:`root_cause_evidence`, :func:`selection_text`, :func:`spatial_sampling_text` and :func:`standing_text` the
first page's computed sentences. :func:`chapter_ref` links a chapter inside a sentence with short text.

The verdict of a claim
----------------------
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .claims import ROW_KEYS, SPLITS, claim_row, exact, fmt_range, paired_claim_row
from ..metrics import paired_comparison
from .names import ci_text, join_words, metric_label, model_label
from .results import load_results, project_root, results_dir

__all__ = ["collect_verdicts", "computed_claims", "untestable_claims", "ledger", "claim_verdicts", "verdict_counts",
           "summary_prose", "claim_table", "claim_table_markdown", "contradictions", "annotate", "subject_models",
           "trivial_references", "trivial_passes", "trajectory", "headline_rows", "headline_decoders", "final_model",
           "model_reconstructions", "baseline_references", "data_facts", "class_names", "classes_are_digits",
           "is_published_data", "prior_description", "chapter_title", "chapter_ref", "standing_text",
           "root_cause_evidence", "root_cause_text", "selection_text", "spatial_sampling_text",
           "claim_sort_key", "RULE", "CLAIM_TEXTS", "LEDGER_CHAPTERS", "TRAJECTORY", "UNTESTABLE",
           "TRIVIAL_REFERENCES", "REFERENCE_CLAIMS", "VERDICT_KINDS", "TARGETS", "TARGET_LEVELS",
           "REPRODUCTION_CLAIMS", "SPATIAL_SAMPLING_KEYS"]

RULE = """\
Each row of the ledger has its own verdict, by the rule of chapter 0: *confirmed* when the whole 95% CI of the
measurement lies in the claimed range, *refuted* (below or above the claim) when the whole CI lies outside it,
*inconclusive* otherwise. A claim gets one verdict from its rows:

- **(a) Proxies never count.** A proxy row measures something other than the claim; it is shown, not counted, and
  its verdict column says "proxy (does not test the claim)".
- **(b) The study's own code is not evidence.** A row that measures this study's own code (its fMRI normaliser, say)
  says nothing about the report's pipeline; a claim with only such rows is *inconclusive (only own-code rows)*.
  Claims 5a and 5b count the parameters of this study's reimplementation of the original, built from the report's
  description: whatever the count, it checks the reproduction, not the report's model, so they are *inconclusive
  (only own-code rows)*, and the ledger says what the reimplementation measured.
- **(c) No confirmation on selection rows alone.** The validation trials choose the models; a confirmation resting on
  validation rows only is *inconclusive (only selection rows)* until test rows agree.
- **(d) No confirmation that a trivial reference would also earn.** A confirmed row is void when the mean of a trivial
  reference of chapter 0 (uniform noise, the constant grey and black images, the training-mean image, the
  correct-class mean) also lies in the claimed range; the row then counts as *inconclusive (a trivial reference
  passes too)*. Checked on every row that measures a level of a metric those references have, deciding or not, except
  for the claims about the references themselves (3, 4a, 4b); differences between two models are not levels.
- **(e) Every part must hold.** A claim with several parts (PSNR, SSIM and pixel r; the weeks of claim 12) is
  *confirmed* only when every part is confirmed and *refuted* when a part is refuted, below or above the claim, or
  *refuted (both sides)* when refuted parts disagree on the side; otherwise it is *inconclusive*, with the reason (the
  CI straddles the claimed range, only selection rows, a trivial reference passes too).
- **(f) Contradictions go to the stronger evidence.** When rows of one part disagree, the part is decided on the
  stronger rows: test trials over training trials over validation trials, and, on equal trials, the model the claim
  is about (the original for claims 1 and 5a–5c, the end-of-phase model for claims 8–10, the U-Net swapped into the
  original with everything else kept, its sampler included, for claim 11a) over other models. Rows of equal strength
  that still disagree are read as parts: all must confirm.
- **(g) Claim 13 is a bound.** "The best possible with 90 samples" is an upper limit on decoders that learn from the
  paired trials only. Each metric is decided on chapter 8's decoders that learn from the paired trials alone and are
  fitted on all training trials (references excluded): *refuted above* when any of them lies wholly above the range,
  *refuted below* only when the best of them (the highest upper CI bound) lies wholly below it, *confirmed* when the
  best of them (the highest mean) lies in the range and none reaches above it, *inconclusive* otherwise. Decoders that
  also learn from unpaired images, or from fewer trials, are shown as beyond the claim's premise and never decide.
- **(h) Claim 16 is a set of targets, not a prediction.** Its verdict is *target levels (not a prediction)*, counted on
  a line of its own; its text says which levels the final model reaches (a level counts as reached when every metric
  of it is confirmed, and a level a trivial reference also reaches is said to be).

A claim that no measurement on this data can reach is *untestable with this data*; the row says what data would be
needed."""

__doc__ += RULE  # the rule is declared once: here, and (the same text) on the conclusions page

# Chapters whose verdict rows enter the ledger, in book order.
LEDGER_CHAPTERS = ("00_data_and_metrics", "01_diagnostics", "02_unet_fix", "03_loss_function", "04_fmri_encoder",
                   "05_conditioning_vae", "06_augmentation_multiscale", "07_image_prior", "08_benchmarks")
DATA = "00_data_and_metrics"
CONCLUSIONS = "09_conclusions"
BENCHMARKS = "08_benchmarks"
PRIOR = "07_image_prior"

COLUMNS = ["row", "claim", "report says", "claimed range", "measured mean [95% CI]", "verdict", "model", "split",
           "metric", "part", "proxy", "own_code", "difference", "subject", "premise", "note", "mean", "ci_low",
           "ci_high", "low", "high", "chapter"]

# Chapter 00's trivial references (its `models`): a confirmation these would also earn is void (rule d).
TRIVIAL_REFERENCES = ("uniform_noise", "constant_0.5", "constant_0", "train_mean", "class_mean_reference")
# Claims about those references themselves: rule (d) does not apply to them.
REFERENCE_CLAIMS = ("3", "4a", "4b")

# Verdicts of a claim, in the order the counts list them.
CONFIRMED, BELOW, ABOVE, BOTH = ("confirmed", "refuted (below the claim)", "refuted (above the claim)",
                                 "refuted (both sides)")
INCONCLUSIVE, NOT_TESTABLE = "inconclusive", "untestable with this data"
TARGETS = "target levels (not a prediction)"  # claim 16 (rule h): success thresholds, not a prediction
VERDICT_KINDS = (CONFIRMED, BELOW, ABOVE, BOTH, INCONCLUSIVE, TARGETS, "untestable")
# Claims whose measurement counts this study's reimplementation of the original (rule b): whichever way the count
# falls, it checks the reproduction, not the report's model.
REPRODUCTION_CLAIMS = ("5a", "5b")
BOUND_CLAIM, TARGET_CLAIM = "13", "16"  # rules (g) and (h)
# Reasons of an inconclusive verdict, and how the answer says each of them in a sentence.
STRADDLES, SELECTION = "CI straddles the claimed range", "only selection rows"
TRIVIAL = "a trivial reference passes too"
OWN_CODE, PROXY_ONLY = "only own-code rows", "only proxy rows"
PREMISE = "no decoder within the claim's premise"
REASON_WORDS = {STRADDLES: "the 95% CI straddles the claimed range",
                SELECTION: "confirmed on validation (selection) rows only",
                TRIVIAL: "a trivial reference also falls in the claimed range",
                OWN_CODE: "only this study's own code is measured",
                PROXY_ONLY: "measured by proxy rows only",
                PREMISE: "no decoder within the claim's premise is measured"}

# Strength of a row's trials (rule f): test, then exact facts and training trials, then validation (selection).
SPLIT_RANK = {"test": 3, "data file": 3, "formula": 3, "count": 3, "all training trials": 2, "training": 2,
              "validation": 1}
assert set(SPLIT_RANK) == set(SPLITS)

# What the report says, short (quoted from the report's claim list, shared/report/CLAIMS.md).
CLAIM_TEXTS = {
    "1": "the original model scores PSNR 5.49 dB, SSIM 0.007, pixel r 0.020",
    "2": "PSNR 5.49 dB corresponds to MSE 0.282",
    "3": "random noise usually gives ~10 dB PSNR",
    "4a": "random images usually give SSIM ~0.1–0.2",
    "4b": "random images give a correlation of ~0.0",
    "5a": "the original has 5.2 M parameters",
    "5b": "~57,000 parameters per training sample",
    "5c": "the original overfits severely",
    "5d": "fewer encoder weights would generalise better",
    "6a": "the fMRI is normalised to mean ~0",
    "6b": "the fMRI is normalised to std ~1",
    "7": "the U-Net without skip connections is the root cause (\"smoking gun\")",
    "8": "after phase 1: PSNR 12–15 dB, SSIM 0.2–0.3, r 0.1–0.2",
    "9": "after phase 2: PSNR 18–22 dB, SSIM 0.4–0.6, r 0.3–0.5",
    "10": "after phase 3: PSNR 25–30 dB, SSIM 0.7–0.8, r 0.6–0.7",
    "11a": "priority 1 (architecture) gives +5–10 dB",
    "11b": "priority 2 (training) gives +2–5 dB",
    "11c": "priority 3 (data) gives +10 dB",
    "12": "week 1: 10–12 dB; week 2: 15–18 dB; weeks 3–4: 20+ dB",
    "13": "best possible with 90 samples: PSNR ~15–18 dB, SSIM ~0.3–0.4, r ~0.2–0.4",
    "14": "brain decoding needs > 1,000 samples",
    "15": "literature: basic CNN 15–20 dB, advanced GAN 20–25 dB",
    "16": "success: > 10 dB and SSIM > 0.1 (short term), > 15 dB and 0.3 (medium), > 20 dB and 0.5 (long)",
    "17": "the 4×7×7 VAE latent is too small; 8×8×8 is better",
}

# The model a claim is about, where it names one (rule f); the rows that measure it are found by subject_models.
ABOUT = {
    "1": "the original", "5a": "the original", "5b": "the original", "5c": "the original",
    "8": "the model at the end of phase 1", "9": "the model at the end of phase 2",
    "10": "the model at the end of phase 3",
    "11a": "the U-Net swapped into the original, everything else kept (its sampler included)",
}

# Claims whose rows can only measure this study's own code, and what would test the report's instead (rule b).
OWN_CODE_NEEDS = {
    "6a": "the report's own preprocessing code, or the normalised arrays it fed its model",
    "6b": "the report's own preprocessing code, or the normalised arrays it fed its model",
}

_PART_LABELS = {"psnr": "PSNR", "ssim": "SSIM", "pixel_r": "pixel r", "mse": "MSE"}


def claim_sort_key(claim: str) -> tuple[int, str]:
    """'11b' -> (11, 'b'): claims sort by number, then by suffix; the untestable proposals ('U1', ...) last."""
    m = re.match(r"(\d+)(.*)", str(claim))
    return (int(m.group(1)), m.group(2)) if m else (10**6, str(claim))


_CLAIM_ID = re.compile(r"^(\d+[a-z]?|U\d+)$")


def _load(chapter: str, root) -> dict:
    return load_results(results_dir(chapter, root))[0]


def chapter_title(chapter: str, root=None) -> str:
    """The title of a chapter: the ``#`` heading of ``notebooks/<chapter>.ipynb`` ("7. A prior from unpaired ...").

    Raises
    ------
    FileNotFoundError
        If the notebook does not exist.
    """
    path = Path(root or project_root()) / "notebooks" / f"{chapter}.ipynb"
    if not path.is_file():
        raise FileNotFoundError(f"no notebook {chapter}.ipynb in notebooks/: no title for chapter {chapter!r}")
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return chapter


def chapter_ref(chapter: str, *, short: bool = False, here: str | None = None, capital: bool = False) -> str:
    """A link to a chapter inside a sentence or a table cell, with short explicit text, never the chapter's full title:
    ``{doc}`chapter 7 <07_image_prior>``` (``short``: ``{doc}`ch. 7 <07_image_prior>```; ``capital``: "Chapter 7",
    to open a sentence); ``here`` (the page's own chapter) reads "this page".

    Raises
    ------
    ValueError
        If ``chapter`` is not a chapter file name ("07_image_prior").
    """
    if chapter == here:
        return "this page"
    m = re.match(r"^(\d+)_\w+$", str(chapter))
    if not m:
        raise ValueError(f"{chapter!r} is not a chapter file name such as '07_image_prior'")
    word = "ch." if short else "Chapter" if capital else "chapter"
    return f"{{doc}}`{word} {int(m.group(1))} <{chapter}>`"


# ----------------------------------------------------------------------------- rows


def collect_verdicts(root=None, *, chapters=LEDGER_CHAPTERS) -> pd.DataFrame:
    """Verdict rows stored by the chapters (``extra["verdicts"]``), one row each, with a ``chapter`` column.

    Raises
    ------
    FileNotFoundError
        If a chapter's results are missing (the message names the chapter to run).
    KeyError
        If a chapter's rows lack a key of :data:`ldm_core.study.claims.ROW_KEYS` (written before the row schema): the
        message names the chapter to re-run.
    ValueError
        If a row's split is not one of :data:`ldm_core.study.claims.SPLITS` or its claim id is not a claim's id.
    """
    rows = []
    for ch in chapters:
        for r in _load(ch, root).get("extra", {}).get("verdicts", []):
            missing = [k for k in ROW_KEYS if k not in r]
            if missing:
                raise KeyError(
                    f"chapter {ch}'s verdict rows lack the keys {missing} (first such row: claim {r.get('claim')!r}, "
                    f"{r.get('report says', '')!r}); they were written before the ledger's row schema: re-run {ch} "
                    f"(python -m ldm_core.study --only {ch}) with rows built by ldm_core.study.claims.claim_row / "
                    "paired_claim_row / expectation_rows, which carry split, metric, model, proxy and own_code")
            if r["split"] not in SPLITS:
                raise ValueError(f"chapter {ch}: row of claim {r['claim']!r} has split {r['split']!r}, not one of "
                                 f"{list(SPLITS)}: re-run {ch}")
            if not _CLAIM_ID.match(str(r["claim"])):
                raise ValueError(f"chapter {ch}: claim id {r['claim']!r} is not an id of the report's claim list "
                                 "(e.g. '4a', '11b'); a proxy row keeps its claim's id and says proxy=True: re-run "
                                 f"{ch}")
            row = {k: r.get(k) for k in COLUMNS if k in r}
            row.update(part=r.get("part", "") or "", difference=bool(r.get("difference", False)), chapter=ch)
            rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def _pooled(summary_entry: dict, metric: str) -> dict:
    return summary_entry["test"][metric]


def _row(row: dict, *, chapter: str, subject: bool | None = None) -> dict:
    return {**row, "chapter": chapter, **({} if subject is None else {"subject": subject})}


def _selected(chapter_metrics: dict) -> tuple[str, dict]:
    """The validation-selected variant of a chapter and its summary entry."""
    extra = chapter_metrics.get("extra", {})
    name = extra.get("selected_on_validation")
    if name is None or name not in extra.get("summary", {}):
        raise KeyError(f"results of chapter '{chapter_metrics.get('chapter')}' record no validation-selected variant "
                       "with a summary (extra['selected_on_validation'], extra['summary'])")
    return name, extra["summary"][name]


def computed_claims(root=None, *, n_boot: int = 2000) -> pd.DataFrame:
    """Claims whose measurement combines results or is arithmetic: 2, 11a, 12, 13 and 16 (see CLAIMS.md).

    Reading of each claim (the report gives no tolerance; ours is stated in the row):

    - claim 2 is arithmetic (10·log10(1/0.282)); the reproduced original's measured MSE is shown beside it as a proxy
      (it is about the reproduction, claim 1, not about the arithmetic);
    - claim 11a ("priority 1, architecture: +5–10 dB") is the architecture change alone: chapter 02's original with
      the U-Net swapped in, sampled with the original's own sampler (its VAE decoder still untrained), minus the
      original, paired over the test images. Chapter 02's U-Net pipeline, which also trains the VAE decoder, is
      other-model evidence; chapter 01's leave-one-out (the skip connections removed from the repaired pipeline,
      validation pixel r) is a proxy shown beside it;
    - claim 12 takes the validation-selected model of chapter 03 (week 1: U-Net, perceptual loss, sweep), 04 (week 2:
      encoder with dropout, larger VAE) and 06 (weeks 3–4: augmentation), one part per week;
    - claim 13 takes every decoder of chapter 08's headline table (references and ceilings left out), with what it
      learned from (:func:`headline_decoders`): rule (g) decides on those within the claim's premise;
    - claim 16 takes the study's final model (chapter 08's ``best_model_test``), one part per horizon and metric
      (rule h).

    Raises
    ------
    KeyError
        If a chapter's results lack what a claim needs (the chapter to re-run is named).
    ValueError
        If chapter 02's "original + U-Net" does not sample with the original's sampler (then it changes two things).
    """
    ch01, ch02 = (_load(c, root) for c in ("01_diagnostics", "02_unet_fix"))
    rows = [
        _row(claim_row("2", "PSNR 5.49 dB corresponds to MSE 0.282 (arithmetic: 10·log10(1/0.282))",
                       exact(10 * math.log10(1 / 0.282)), low=5.44, high=5.54, digits=2, split="formula",
                       model="the PSNR formula, 10·log10(1/MSE)"), chapter=CONCLUSIONS),
        _row(claim_row("2", "the reproduced original's MSE (±0.03 of 0.282): about the reproduction, not the "
                            "arithmetic", _pooled(ch01["extra"]["summary"]["original"], "mse"), low=0.252, high=0.312,
                       split="test", metric="mse", model="original", proxy=True,
                       note="the reproduction's error, not the arithmetic the claim states"), chapter="01_diagnostics"),
    ]
    rows += _architecture_rows(ch01, ch02, n_boot=n_boot)
    for chapter, part, text, low, high in (
        ("03_loss_function", "week 1", "week 1 (U-Net, perceptual loss, sweep): 5.5 → 10–12 dB", 10, 12),
        ("04_fmri_encoder", "week 2", "week 2 (encoder with dropout, VAE 8×8×8): 12 → 15–18 dB", 15, 18),
        ("06_augmentation_multiscale", "weeks 3–4", "weeks 3–4 (progressive training, augmentation): 18 → 20+ dB "
                                                    "(the report adds 'with more data', which we do not have)",
         20, math.inf),
    ):
        name, entry = _selected(_load(chapter, root))
        rows.append(_row(claim_row("12", text, _pooled(entry, "psnr"), low=low, high=high, digits=2, split="test",
                                   metric="psnr", model=f"{name} (validation-selected)", part=part), chapter=chapter))
    rows += _bound_rows(root)
    bench = _load(BENCHMARKS, root).get("extra", {})
    if "best_model_test" not in bench:
        raise KeyError(f"chapter {BENCHMARKS}'s results hold no extra['best_model_test']: re-run {BENCHMARKS}")
    best, best_name = bench["best_model_test"], bench.get("best_model", "best model")
    for horizon, p_min, s_min in TARGET_LEVELS:
        rows.append(_row(claim_row(TARGET_CLAIM, f"{horizon} success: PSNR > {p_min} dB", best["psnr"], low=p_min,
                                   digits=2, split="test", metric="psnr", model=best_name, part=f"{horizon} PSNR"),
                         chapter=BENCHMARKS))
        rows.append(_row(claim_row(TARGET_CLAIM, f"{horizon} success: SSIM > {s_min}", best["ssim"], low=s_min,
                                   split="test", metric="ssim", model=best_name, part=f"{horizon} SSIM"),
                         chapter=BENCHMARKS))
    return pd.DataFrame(rows, columns=COLUMNS)


# Claim 16's levels: (horizon, PSNR at least, SSIM at least), quoted from the report.
TARGET_LEVELS = (("short-term", 10, 0.1), ("medium-term", 15, 0.3), ("long-term", 20, 0.5))


def _architecture_rows(ch01: dict, ch02: dict, *, n_boot: int) -> list[dict]:
    """Claim 11a's rows: the U-Net swapped into the original (same sampler) minus the original, test PSNR (the row
    the claim is about); the U-Net pipeline minus the original (other-model evidence); chapter 01's leave-one-out of
    the skip connections in the repaired pipeline (validation pixel r, a proxy)."""
    x02 = ch02.get("extra", {})
    s02 = x02.get("summary", {})
    need = [k for k in ("original", "original + U-Net", "U-Net pipeline") if k not in s02]
    if need:
        raise KeyError(f"chapter 02_unet_fix's results hold no summary of {need} (extra['summary']): re-run "
                       "02_unet_fix")
    sampling = x02.get("sampling")
    if not isinstance(sampling, dict) or not {"original", "original + U-Net"} <= set(sampling):
        raise KeyError("chapter 02_unet_fix's results do not record how 'original' and 'original + U-Net' sample "
                       "(extra['sampling']): claim 11a needs the two to differ by the denoiser only; re-run 02_unet_fix")
    samplers = {k: dict(sampling[k]).get("sampler") for k in ("original", "original + U-Net")}
    if samplers["original"] is None or samplers["original"] != samplers["original + U-Net"]:
        raise ValueError(f"chapter 02_unet_fix's 'original + U-Net' samples with {samplers['original + U-Net']!r} and "
                         f"the original with {samplers['original']!r}: the comparison changes the sampler too, so it "
                         "cannot decide claim 11a (architecture alone); pass the original's sampler explicitly and "
                         "re-run 02_unet_fix")

    def gain(a: str) -> dict:
        return paired_comparison(_pooled(s02[a], "psnr")["per_image"], _pooled(s02["original"], "psnr")["per_image"],
                                 n_boot=n_boot)

    rows = [
        _row(paired_claim_row("11a", "priority 1 (architecture) gives +5–10 dB: the U-Net swapped into the original "
                                     f"(its {samplers['original']!r} sampler kept, VAE decoder still untrained) minus "
                                     "the original, test PSNR",
                              gain("original + U-Net"), low=5, high=10, digits=2, split="test", metric="psnr",
                              model="original + U-Net − original"), chapter="02_unet_fix", subject=True),
        _row(paired_claim_row("11a", "the U-Net pipeline minus the original, test PSNR (the pipeline also trains the "
                                     "VAE decoder and samples with DDIM: not the architecture alone)",
                              gain("U-Net pipeline"), low=5, high=10, digits=2, split="test", metric="psnr",
                              model="U-Net pipeline − original"), chapter="02_unet_fix", subject=False),
    ]
    loo = ch01.get("extra", {}).get("leave_one_out_val_comparison", {})
    if "skip U-Net" not in loo:
        raise KeyError("chapter 01_diagnostics's results hold no leave-one-out comparison of the skip U-Net "
                       "(extra['leave_one_out_val_comparison']['skip U-Net']): re-run 01_diagnostics")
    rows.append(_row(paired_claim_row(
        "11a", "supporting: the repaired pipeline with its skip connections minus without them (chapter 1's "
               "leave-one-out), validation pixel r; architecture should help (> 0)", loo["skip U-Net"], low=0,
        high=math.inf, split="validation", metric="pixel_r", model="all fixed − (all fixed without skip U-Net)",
        proxy=True, note="another model, metric and split than the claim's; it shows the direction of the "
                         "architecture's effect in the working pipeline"), chapter="01_diagnostics", subject=False))
    return rows


def headline_decoders(root=None) -> dict[str, dict]:
    """Chapter 08's headline decoders with what each learned from: ``{row name: {"uses_unpaired_images": bool,
    "fitted_on": int, "reference": bool}}`` (references and VAE ceilings: ``reference`` True).

    Raises
    ------
    KeyError
        If chapter 08's results lack ``headline_rows``, ``headline_roles``, ``uses_unpaired_images`` or
        ``fitted_on`` for a row (re-run 08).
    """
    x08 = _load(BENCHMARKS, root).get("extra", {})
    missing = [k for k in ("headline_rows", "headline_roles", "uses_unpaired_images", "fitted_on") if k not in x08]
    if missing:
        raise KeyError(f"chapter {BENCHMARKS}'s results lack extra{missing} (claim 13 is decided on the decoders "
                       f"that learn from the paired trials only, fitted on all training trials): re-run {BENCHMARKS}")
    out = {}
    for name in x08["headline_rows"]:
        reference = x08["headline_roles"].get(name, {}).get("comparison") == "reference"
        if not reference and (name not in x08["uses_unpaired_images"] or x08["fitted_on"].get(name) is None):
            raise KeyError(f"chapter {BENCHMARKS}'s results do not say what headline decoder {name!r} learned from "
                           f"(extra['uses_unpaired_images'] / extra['fitted_on']): re-run {BENCHMARKS}")
        out[name] = {"reference": reference,
                     "uses_unpaired_images": bool(x08["uses_unpaired_images"].get(name, False)),
                     "fitted_on": None if reference else int(x08["fitted_on"][name])}
    return out


def _premise(info: dict, n_train: int, n_prior: int | None) -> str:
    """Why a decoder lies beyond claim 13's premise ("" when within it: paired trials only, all of them)."""
    why = []
    if info["uses_unpaired_images"]:
        why.append(f"also learns from {n_prior:,} unpaired images" if n_prior else "also learns from unpaired images")
    if info["fitted_on"] != n_train:
        why.append(f"fitted on {info['fitted_on']} of the {n_train} training trials")
    return " and ".join(why)


def _bound_rows(root) -> list[dict]:
    """Claim 13's rows (rule g): each non-reference decoder of chapter 08's headline table against the report's
    "best possible with 90 samples", with ``premise`` saying why it lies beyond the claim's premise ("" if not)."""
    from .claims import expectation_rows

    x08 = _load(BENCHMARKS, root).get("extra", {})
    decoders = headline_decoders(root)
    n_train = int(data_facts(root)["n_train"])
    n_prior = _load(PRIOR, root).get("extra", {}).get("prior_images", {}).get("n_images")
    rows = []
    for name, info in decoders.items():
        if info["reference"]:
            continue
        premise = _premise(info, n_train, n_prior)
        for r in expectation_rows(name, x08["headline_rows"][name], phase="limit90", split="test"):
            rows.append(_row({**r, "premise": premise}, chapter=BENCHMARKS, subject=not premise))
    return rows


# Claims this dataset cannot test: (claim, what the report says, why not, what would be needed).
UNTESTABLE = (
    ("11c", "priority 3 (data) gives +10 dB",
     "needs many more paired trials than this data file has; chapter 8's learning curves stop at the fitting split",
     "a larger paired fMRI set from the same paradigm, thousands of trials"),
    ("14", "brain decoding needs > 1,000 samples (good 2,000–5,000; excellent 10,000+)",
     "no paired dataset of that size here; chapter 8's learning curves show what subsets of the paired trials give, "
     "and chapter 7 what the unpaired images add", "the same experiment with 1,000+ paired trials"),
    ("15", "literature: basic CNN 15–20 dB / SSIM 0.3–0.5 with 1,000+ samples; advanced GAN 20–25 dB / 0.5–0.7",
     "a statement about other studies and datasets, not about this data; chapter 8 quotes published numbers for "
     "this data where there are any, as reported", "the cited studies' own data and metric definitions"),
    ("U1", "temporal modelling of the fMRI (phase 1.3) and temporal jittering (phase 3)",
     "the file holds one pattern per trial, with no time series", "the voxel time series of each trial"),
    ("U2", "anatomy-aware (spatial) attention over voxels (phase 1.3)",
     "the file has no voxel coordinates; the attention encoder groups voxels in file order only",
     "voxel coordinates or a cortical surface mapping"),
    ("U3", "cross-subject adaptation (phase 3)", "the data file holds no subject labels: its trials are read as one "
     "subject's", "recordings of several subjects"),
)
UNTESTABLE_TEXTS = {c: text for c, text, _, _ in UNTESTABLE}


def untestable_claims() -> pd.DataFrame:
    """Claims and proposals this data cannot test, with the reason and the data that would be needed.

    The three proposals the report does not number get the ids U1–U3.
    """
    nan = float("nan")
    rows = [{"claim": c, "report says": text, "claimed range": "", "measured mean [95% CI]": f"not measurable: {why}",
             "verdict": f"untestable with this data (needs {need})", "model": "none (not measurable)",
             "split": "data file", "metric": "", "part": "", "proxy": False, "own_code": False, "difference": False,
             "premise": "", "note": "", "mean": nan, "ci_low": nan, "ci_high": nan, "low": nan, "high": nan, "chapter": CONCLUSIONS}
            for c, text, why, need in UNTESTABLE]
    return pd.DataFrame(rows, columns=COLUMNS)


# ----------------------------------------------------------------------------- the model each claim is about


def _models_of(names) -> set[str]:
    return {str(n) for n in names} | {model_label(str(n)) for n in names}


def subject_models(root=None) -> dict[str, dict]:
    """The model each claim is about, where a claim names one (rule f): ``{claim: {"about", "models", "chapter"}}``.

    ``about`` says it in words, ``models`` holds the names its rows may carry (internal and reader names) and
    ``chapter`` the chapter that names it. Claims not listed are about every row's model (claim 13: rule g).

    Raises
    ------
    KeyError
        If a chapter's results do not say which model it selected (the chapter is named).
    """
    out = {c: {"about": ABOUT[c], "models": _models_of(["original"]), "chapter": "01_diagnostics"}
           for c in ("1", "5a", "5b", "5c")}
    for claim, chapter in (("8", "04_fmri_encoder"), ("9", "05_conditioning_vae"),
                           ("10", "06_augmentation_multiscale")):
        name, _ = _selected(_load(chapter, root))
        out[claim] = {"about": f"{ABOUT[claim]} (validation-selected)", "models": _models_of([name]),
                      "chapter": chapter}
    return out  # claim 13 is decided by rule (g) on the decoders within its premise (see _mark_premise)


def _mark_subjects(table: pd.DataFrame, subjects: dict) -> pd.Series:
    """Per row: does it measure the model its claim is about? Rows already marked (computed claims) keep theirs."""
    out = []
    for claim, model, given in zip(table["claim"], table["model"], table["subject"]):
        if claim == BOUND_CLAIM:
            out.append(False)  # set by _mark_premise (rule g)
        elif isinstance(given, (bool, np.bool_)):
            out.append(bool(given))
        elif claim in subjects:
            out.append(str(model) in subjects[claim]["models"])
        else:
            out.append(True)
    return pd.Series(out, index=table.index, dtype=bool)


def _check_subjects(table: pd.DataFrame, subjects: dict) -> None:
    for claim, s in subjects.items():
        rows = table[table["claim"] == claim]
        counted = rows[~rows["proxy"].astype(bool) & ~rows["own_code"].astype(bool)]
        if len(counted) and not counted["subject"].any():
            raise KeyError(f"claim {claim} is about {s['about']} ({sorted(s['models'])[0]!r}), but none of its "
                           f"ledger rows names that model (they name {sorted(set(counted['model'].astype(str)))}): "
                           f"re-run {s['chapter']} and the chapters storing claim {claim}'s rows, so that the names "
                           "agree")


def _one_row_per_measurement(table: pd.DataFrame) -> pd.DataFrame:
    """Merge rows of the same claim with the same range, split, metric and measured value and CI (one measurement
    shown in two chapters, perhaps under two names): one row naming both chapters; it measures the claim's model when
    either does. Exact values (a CI of zero width: counts, ratios) merge only when the model is the same too."""
    if table.empty:
        return table
    key = table[["claim", "claimed range", "measured mean [95% CI]", "split", "metric"]].astype(str).agg("|".join,
                                                                                                        axis=1)
    exact_value = (table["ci_low"] == table["ci_high"]).to_numpy()  # exact values coincide across models: keep both
    key = key.where(~exact_value, key + "|" + table["model"].astype(str))
    measured = ~table["measured mean [95% CI]"].astype(str).str.startswith("not measurable")
    out, seen = [], {}
    for i, row in table.iterrows():
        if measured[i] and key[i] in seen:
            j = out[seen[key[i]]]
            if row["chapter"] not in j["chapter"].split(", "):
                j["chapter"] = f"{j['chapter']}, {row['chapter']}"
            if row["subject"] and not j["subject"]:
                j["model"], j["subject"] = row["model"], True
            for text in ("note", "premise"):  # what one copy says about the measurement, the merged row says
                if row.get(text) and not j.get(text):
                    j[text] = row[text]
            continue
        if measured[i]:
            seen[key[i]] = len(out)
        out.append(dict(row))
    return pd.DataFrame(out, columns=COLUMNS)


def _mark_premise(table: pd.DataFrame, root) -> pd.DataFrame:
    """Claim 13's rows (rule g), whichever chapter stored them: ``premise`` says why a decoder lies beyond the claim's
    premise (it also learns from unpaired images, or from fewer than all training trials; "" when within it), and
    ``subject`` is True for the decoders within it. A row naming no decoder of chapter 08's headline table is beyond
    the premise too (it is not one of the decoders the bound is read on)."""
    rows = table["claim"] == BOUND_CLAIM
    if not rows.any():
        return table
    decoders = headline_decoders(root)
    n_train = int(data_facts(root)["n_train"])
    n_prior = _load(PRIOR, root).get("extra", {}).get("prior_images", {}).get("n_images")
    names = {**{k: k for k in decoders}, **{model_label(k): k for k in decoders}}
    table = table.copy()
    for i in table.index[rows]:
        if table.at[i, "proxy"] or table.at[i, "own_code"]:
            continue
        key = names.get(str(table.at[i, "model"]))
        if key is None or decoders[key]["reference"]:
            premise = "not one of chapter 8's headline decoders"
        else:
            premise = _premise(decoders[key], n_train, n_prior)
        table.at[i, "premise"], table.at[i, "subject"] = premise, not premise
    return table


def ledger(root=None, *, n_boot: int = 2000) -> pd.DataFrame:
    """Every claim row of the study, one per measurement: chapters' verdicts, cross-chapter and untestable claims.

    Columns :data:`COLUMNS`: ``row`` ("8.4": claim 8's fourth row), the claim, what the report says, the claimed
    range, the measured mean [95% CI], the row's own verdict, the model (reader name) and what it was measured on
    (``split``), the metric and part, the flags ``proxy``, ``own_code``, ``difference`` and ``subject`` (the row
    measures the model the claim is about), ``premise`` (claim 13: why a decoder lies beyond the claim's premise),
    ``note`` (why a row is a proxy), the numbers, and the chapter(s) where it is measured.

    Raises
    ------
    FileNotFoundError, KeyError, ValueError
        From :func:`collect_verdicts`, :func:`computed_claims` and :func:`subject_models`; each names the chapter to
        (re-)run.
    """
    parts = [collect_verdicts(root), computed_claims(root, n_boot=n_boot), untestable_claims()]
    table = pd.concat([p for p in parts if len(p)], ignore_index=True)
    subjects = subject_models(root)
    table["subject"] = _mark_subjects(table, subjects)
    for flag in ("proxy", "own_code", "difference"):
        table[flag] = table[flag].fillna(False).astype(bool)
    for text in ("part", "note", "premise"):
        table[text] = table[text].fillna("").astype(str)
    order = sorted(range(len(table)), key=lambda i: claim_sort_key(table.loc[i, "claim"]))
    table = _one_row_per_measurement(table.loc[order].reset_index(drop=True))
    table = _mark_premise(table, root)
    _check_subjects(table, subjects)
    table["model"] = table["model"].map(lambda m: model_label(m) if isinstance(m, str) else m)
    table["row"] = [f"{c}.{k + 1}" for c, k in zip(table["claim"], table.groupby("claim", sort=False).cumcount())]
    return table.reset_index(drop=True)


# ----------------------------------------------------------------------------- one verdict per claim


def trivial_references(root=None) -> dict[str, dict[str, float]]:
    """Chapter 00's trivial references on the test trials: ``{reader name: {metric: mean}}`` (rule d).

    Raises
    ------
    KeyError
        If chapter 00's results lack one of :data:`TRIVIAL_REFERENCES` (re-run chapter 00).
    """
    models = _load(DATA, root).get("models", {})
    missing = [n for n in TRIVIAL_REFERENCES if n not in models]
    if missing:
        raise KeyError(f"chapter {DATA}'s results hold no trivial reference {missing} (its 'models'): re-run {DATA}")
    return {model_label(n): {m: float(v["mean"]) for m, v in models[n].items() if isinstance(v, dict) and "mean" in v}
            for n in TRIVIAL_REFERENCES}


def _kind(verdict: str) -> str:
    """A row's verdict as one of confirmed / below / above / inconclusive / untestable."""
    v = str(verdict)
    if v == "confirmed":
        return "confirmed"
    if v.startswith("refuted (below"):
        return "below"
    if v.startswith("refuted (above"):
        return "above"
    if v.startswith("inconclusive"):
        return "inconclusive"
    return "untestable"


def _floor_value(v) -> float:
    return float(v["mean"]) if isinstance(v, dict) else float(v)


def trivial_passes(row, floors: dict, claim: str) -> list[str]:
    """The trivial references whose mean lies in the row's claimed range (rule d); [] where the rule does not apply
    (the claims about the references themselves, :data:`REFERENCE_CLAIMS`; differences of two models; rows without a
    metric). ``row`` is a verdict row (keys ``metric``, ``difference``, ``low``, ``high``); ``floors`` as
    :func:`trivial_references` returns them (``{name: {metric: mean or {"mean": ...}}}``). Chapters that note on their
    page what the ledger will do with their rows call this, so the predicate lives in one place."""
    metric = row["metric"]
    if str(claim) in REFERENCE_CLAIMS or bool(row.get("difference", False)) or not metric:
        return []
    low, high = float(row["low"]), float(row["high"])
    return [name for name, vals in floors.items()
            if metric in vals and low <= _floor_value(vals[metric]) <= high]


def _fmt_range(low: float, high: float) -> str:
    return fmt_range(float(low), float(high))


def _part_label(part: str) -> str:
    return _PART_LABELS.get(part, metric_label(part)) if part else "the measurement"


def _combine(kinds: list[str], reasons: set[str]) -> tuple[str, set[str]]:
    """Verdict of rows (or parts) read together: all confirmed -> confirmed; any refuted -> refuted on its side(s);
    else inconclusive with the reasons."""
    sides = {k for k in kinds if k in ("below", "above")}
    if sides:
        return (BOTH if len(sides) == 2 else BELOW if sides == {"below"} else ABOVE), set()
    if kinds and all(k == "confirmed" for k in kinds):
        return CONFIRMED, set()
    return INCONCLUSIVE, reasons or {STRADDLES}


REASON_ORDER = (STRADDLES, SELECTION, TRIVIAL, OWN_CODE, PROXY_ONLY, PREMISE)


def _with_reasons(verdict: str, reasons: set[str]) -> str:
    return (f"{verdict} ({'; '.join(r for r in REASON_ORDER if r in reasons)})" if verdict == INCONCLUSIVE
            else verdict)


def _split_words(split: str) -> str:
    return {"test": "the test trials", "validation": "the validation trials", "training": "the training trials",
            "all training trials": "all training trials", "data file": "the data file", "formula": "arithmetic",
            "count": "a count"}[split]


def _void_note(passes: list[str]) -> str:
    return (f"void as a confirmation: {join_words(passes)} also {'lies' if len(passes) == 1 else 'lie'} in the range"
            if passes else "")


def claim_verdicts(table: pd.DataFrame, floors: dict) -> dict[str, dict]:
    """One verdict per claim of the ledger, by the rule of :data:`RULE`.

    Parameters
    ----------
    table : DataFrame
        :func:`ledger`'s table (columns :data:`COLUMNS`).
    floors : dict
        The trivial references, ``{name: {metric: mean or {"mean": ...}}}`` (:func:`trivial_references`).

    Returns
    -------
    dict
        ``{claim: {"verdict", "rows", "decided_by", ...}}`` in ledger order: ``verdict`` is one of
        :data:`VERDICT_KINDS` (an inconclusive one with its reasons in brackets, e.g. "inconclusive (a trivial
        reference passes too)"; claims 5a and 5b are "inconclusive (only own-code rows)"; claim
        16's is :data:`TARGETS`; "untestable with this data"); ``rows`` the ids of the rows it rests on;
        ``decided_by`` one sentence saying how; ``report says`` (short), ``models`` and ``chapters`` of the deciding
        rows, ``parts`` (each part's verdict; claim 16: each level's), ``contradiction`` (which rows disagreed and how
        that was resolved; "" if none) and ``roles`` (what each row of the claim counted as; a confirmation a trivial
        reference would also earn says so on every row, rule d).
    """
    out = {}
    for claim in dict.fromkeys(table["claim"]):
        rows = table[table["claim"] == claim]
        if claim in REPRODUCTION_CLAIMS:  # counts of this study's reimplementation (rule b), whatever the row says
            rows = rows.assign(own_code=True)
        roles = {}
        for _, r in rows.iterrows():
            if r["proxy"]:
                note = str(r.get("note", "") or "")
                roles[r["row"]] = "proxy: shown, never counts" + (f" ({note})" if note else "")
            elif r["own_code"]:
                roles[r["row"]] = "measures this study's own code: not evidence"
            elif _kind(r["verdict"]) == "untestable":
                roles[r["row"]] = "not measurable with this data"
        counted = rows[[r not in roles for r in rows["row"]]]
        base = {"report says": CLAIM_TEXTS.get(claim, UNTESTABLE_TEXTS.get(claim, str(rows["report says"].iloc[0]))),
                "parts": {}, "contradiction": "", "roles": roles}
        if claim == BOUND_CLAIM and len(counted):
            decided = _decide_bound(counted, floors, roles)
        elif claim == TARGET_CLAIM and len(counted):
            decided = _decide_targets(counted, floors, roles)
        elif counted.empty:
            decided = _nothing_counted(claim, rows)
        else:
            decided = _decide(claim, counted, floors, roles)
        decided["decided_by"] = decided["decided_by"].rstrip(".") + _proxy_clause(rows, decided["verdict"]) + "."
        if claim in REPRODUCTION_CLAIMS and _kind(decided["verdict"]) != "untestable":
            decided = _reproduction(decided, rows)
        for _, r in rows.iterrows():  # rule (d) on every row, deciding or not
            if r["proxy"] or r["own_code"] or _kind(r["verdict"]) != "confirmed":
                continue
            note = _void_note(trivial_passes(r, floors, claim))
            if note and "void as a confirmation" not in roles.get(r["row"], ""):
                roles[r["row"]] = (roles[r["row"]] + "; " if roles.get(r["row"]) else "") + note
        out[claim] = {**base, **decided, "roles": roles}
    return out


def _nothing_counted(claim: str, rows: pd.DataFrame) -> dict:
    """The verdict of a claim none of whose rows counts: untestable, own code only (rule b) or proxies only (a)."""
    own = rows[rows["own_code"]]
    untest = rows[[_kind(v) == "untestable" and not p for v, p in zip(rows["verdict"], rows["proxy"])]]
    if len(untest):
        why = str(untest["measured mean [95% CI]"].iloc[0]).removeprefix("not measurable: ")
        need = re.search(r"\(needs (.*)\)$", str(untest["verdict"].iloc[0]))
        return {"verdict": NOT_TESTABLE, "rows": list(untest["row"]), "models": [], "chapters": [CONCLUSIONS],
                "splits": [], "decided_by": f"No measurement on this data can test it: {why}"
                                            + (f"; it needs {need.group(1)}" if need else "")}
    if len(own):
        need = OWN_CODE_NEEDS.get(claim, "a measurement of the report's own code")
        return {"verdict": _with_reasons(INCONCLUSIVE, {OWN_CODE}), "rows": list(own["row"]),
                "models": sorted(set(own["model"])), "chapters": _chapters(own), "splits": _splits(own),
                "decided_by": f"Its rows measure this study's own code ({join_words(sorted(set(own['model'])))}), not the "
                              f"report's pipeline, so they are not evidence; testing the claim needs {need}"}
    notes = list(dict.fromkeys(str(n) for n in rows["note"] if str(n or "")))
    return {"verdict": _with_reasons(INCONCLUSIVE, {PROXY_ONLY}), "rows": list(rows["row"]),
            "models": sorted(set(rows["model"])), "chapters": _chapters(rows), "splits": _splits(rows),
            "decided_by": "Only proxy rows measure it, and proxies never count"
                          + (f": {'; '.join(notes)}" if notes else "")}


def _proxy_clause(rows: pd.DataFrame, verdict: str) -> str:
    """"; its 2 proxy rows are shown and never count (both point the same way)" ("" without proxies; the clause is
    left out of a claim measured by proxies only, whose sentence already says so)."""
    proxies = rows[rows["proxy"]]
    n = len(proxies)
    if not n or n == len(rows):
        return ""
    text = f"; its {n} proxy row{'s are' if n != 1 else ' is'} shown and never count{'' if n != 1 else 's'}"
    wanted = {"below", "above"} if verdict == BOTH else {_side(verdict)} - {"inconclusive"}
    same = sum(_side(_kind(v)) in wanted for v in proxies["verdict"])
    if same == n:
        text += " (it points the same way)" if n == 1 else " (both point the same way)" if n == 2 else \
            " (all point the same way)"
    elif same:
        text += f" ({same} of them point the same way)"
    return text


def _reproduction(decided: dict, rows: pd.DataFrame) -> dict:
    """Claims 5a and 5b (rule b): the count is of this study's reimplementation of the original, so it is not
    evidence about the report's model whichever way it falls: *inconclusive (only own-code rows)*, saying what the
    reimplementation measured and how that compares with the report."""
    r = rows.iloc[0]
    agrees = {"confirmed": "agrees with the report", "below": "lies below the report's value",
              "above": "lies above the report's value"}.get(_kind(r["verdict"]), "neither clearly agrees nor disagrees")
    what = (f"The count is of this study's reimplementation of the original, built from the report's description: "
            f"{r['measured mean [95% CI]']} against the report's {r['claimed range']}, which {agrees}; that checks the "
            "reproduction, not the report's model, so it does not count (rule b)")
    return {**decided, "verdict": f"{INCONCLUSIVE} ({OWN_CODE})", "decided_by": decided["decided_by"].rstrip(".")
            + ". " + what + "."}


def _chapters(rows: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(c for cs in rows["chapter"] for c in str(cs).split(", ")))


def _splits(rows: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(rows["split"].astype(str)))


def _effective(row, floors: dict, claim: str) -> tuple[str, list[str]]:
    """A counted row's kind after rule (d): ("void", [references passing]) for a confirmation a trivial reference
    would also earn, else (kind, [])."""
    kind = _kind(row["verdict"])
    passes = trivial_passes(row, floors, claim) if kind == "confirmed" else []
    return ("void", passes) if passes else (kind, [])


def _side(kind_or_verdict: str) -> str:
    """confirmed / below / above / inconclusive, for a row kind or a verdict."""
    return {"confirmed": "confirmed", CONFIRMED: "confirmed", "below": "below", BELOW: "below", "above": "above",
            ABOVE: "above"}.get(kind_or_verdict, "inconclusive")


def _row_text(eff: tuple[str, list]) -> str:
    k, passes = eff
    return {"confirmed": "confirmed", "below": "refuted below", "above": "refuted above",
            "inconclusive": "inconclusive", "void": f"confirmed, but {join_words(passes)} passes too"}[k]


def _decide_part(claim: str, rows: pd.DataFrame, floors: dict, roles: dict) -> dict:
    """The verdict of one part of a claim from its counted rows: rules (c), (d) and (f)."""
    eff = {r["row"]: _effective(r, floors, claim) for _, r in rows.iterrows()}
    strength = {r["row"]: (SPLIT_RANK[r["split"]], bool(r["subject"])) for _, r in rows.iterrows()}
    top = max(strength.values())
    decisive = [i for i in rows["row"] if strength[i] == top]
    kinds = [eff[i][0] for i in decisive]
    reasons = {STRADDLES if k == "inconclusive" else TRIVIAL for k in kinds if k in ("inconclusive", "void")}
    verdict, reasons = _combine([_side(k) for k in kinds], reasons)
    if verdict == CONFIRMED and top[0] == SPLIT_RANK["validation"]:
        verdict, reasons = INCONCLUSIVE, {SELECTION}                                      # rule (c)
    voids = sorted({p for i in decisive for p in eff[i][1]})
    for i in decisive:
        roles[i] = "decides" + (f"; {_void_note(eff[i][1])}" if eff[i][0] == "void" else "")
    differing, why = [], set()
    for _, r in rows.iterrows():
        i = r["row"]
        if i in decisive:
            continue
        if _side(eff[i][0]) == _side(verdict):
            roles[i] = "agrees (weaker evidence)"
            continue
        reason = ("the test trials over " + _split_words(r["split"]) if strength[i][0] < top[0]
                  else "the model the claim is about over other models")
        roles[i] = f"disagrees, overruled ({reason})"
        why.add(reason)
        differing.append((str(r["model"]), _split_words(r["split"]), _row_text(eff[i])))
    low, high = float(rows["low"].iloc[0]), float(rows["high"].iloc[0])
    text = _with_reasons(verdict, reasons)
    if voids and set(kinds) == {"void"}:
        text = (f"confirmed, but {join_words(voids)} also {'lies' if len(voids) == 1 else 'lie'} in "
                f"{_fmt_range(low, high)}: {text}")
    return {"verdict": verdict, "reasons": reasons, "rows": decisive, "text": text, "differing": differing,
            "why": why, "tied": len({_side(k) for k in kinds}) > 1}


def _part_of(rows: pd.DataFrame) -> pd.Series:
    return rows["part"].where(rows["part"].astype(bool), rows["metric"]).astype(str)


def _decide(claim: str, counted: pd.DataFrame, floors: dict, roles: dict) -> dict:
    """The verdict of a claim from its counted rows: each part by :func:`_decide_part`, then rule (e)."""
    part_of = _part_of(counted)
    parts = {p: _decide_part(claim, counted[part_of == p], floors, roles) for p in dict.fromkeys(part_of)}
    verdict, reasons = _verdict_of_parts(parts)
    rows = [i for d in parts.values() for i in d["rows"]]
    dec = counted[counted["row"].isin(rows)]
    models = list(dict.fromkeys(dec["model"].astype(str)))
    splits = _splits(dec)
    single = len(parts) == 1

    def label(p: str) -> str:
        return "" if single else _part_label(p) + " "

    if verdict == CONFIRMED and not single:
        body = "every part confirmed"
    else:
        body = "; ".join(f"{label(p)}{d['text']}" for p, d in parts.items())
    why = set().union(*(d["why"] for d in parts.values()))
    decided_by = f"Decided on {join_words(models)}, on {join_words(_split_words(s) for s in splits)}: {body}"
    if why:
        decided_by += "; rows that disagree are weaker evidence (" + join_words(sorted(why)) + ")"
    # the contradiction, said once per disagreeing model and trials, with the parts it concerns
    differing: dict[tuple, list[str]] = {}
    for p, d in parts.items():
        for entry in d["differing"]:
            differing.setdefault(entry, []).append(_part_label(p))
    clauses = [f"{model} on {split}: {text}" + ("" if single else f" ({join_words(ps)})")
               for (model, split, text), ps in differing.items()]
    tied = [_part_label(p) for p, d in parts.items() if d["tied"]]
    if tied:
        clauses.append("rows of equal strength disagree" + ("" if single else f" on {join_words(tied)}")
                       + " and are read together (all must confirm)")
    contradiction = ""
    if clauses:
        rests = []
        if any(w.startswith("the test trials") for w in why):
            rests.append("the test trials")
        if "the model the claim is about over other models" in why:
            about = ABOUT.get(claim)
            rests.append(f"the model the claim is about, {about} — {join_words(models)}" if about
                         else f"the model the claim is about, {join_words(models)}")
        contradiction = "; ".join(clauses) + (f"; the verdict rests on {join_words(rests)}" if rests else "")
    return {"verdict": _with_reasons(verdict, reasons), "rows": rows, "decided_by": decided_by,
            "models": models, "splits": splits, "chapters": _chapters(dec),
            "parts": {_part_label(p): _with_reasons(d["verdict"], d["reasons"]) for p, d in parts.items()},
            "contradiction": contradiction}


def _verdict_of_parts(parts: dict) -> tuple[str, set[str]]:
    """Rule (e): the claim's verdict from its parts' verdicts."""
    sides = [s for d in parts.values()
             for s in (("below", "above") if d["verdict"] == BOTH else (_side(d["verdict"]),))]
    return _combine(sides, set().union(*(d["reasons"] for d in parts.values())))


def _decide_bound(rows: pd.DataFrame, floors: dict, roles: dict) -> dict:
    """Claim 13 (rule g): an upper limit on the decoders that learn from the paired trials only, all of them."""
    claim = BOUND_CLAIM
    within = rows[~rows["premise"].astype(bool)]
    beyond = rows[rows["premise"].astype(bool)]
    for _, r in beyond.iterrows():
        roles[r["row"]] = f"beyond the claim's premise ({r['premise']}): shown, never decides"
    part_of = _part_of(rows)
    parts, texts, differing = {}, [], []
    for p in dict.fromkeys(part_of):
        e = within[part_of[within.index] == p]
        low, high = float(rows.loc[part_of == p, "low"].iloc[0]), float(rows.loc[part_of == p, "high"].iloc[0])
        rng = _fmt_range(low, high)
        if e.empty:
            d = {"verdict": INCONCLUSIVE, "reasons": {PREMISE}, "rows": [],
                 "text": f"no decoder within the claim's premise measures {_part_label(p)}"}
        else:
            above = e[e["ci_low"] > high]
            top = e.loc[e["ci_high"].idxmax()]
            best = e.loc[e["mean"].idxmax()]
            if len(above):
                d = {"verdict": ABOVE, "reasons": set(), "rows": list(above["row"]),
                     "text": f"{join_words(above['model'])} {'lies' if len(above) == 1 else 'lie'} wholly above {rng}"}
            elif top["ci_high"] < low:
                d = {"verdict": BELOW, "reasons": set(), "rows": [top["row"]],
                     "text": f"the best of them, {top['model']}, lies wholly below {rng}"}
            else:
                kind, passes = _effective(best, floors, claim)
                reaching = e[e["ci_high"] > high]
                if kind == "confirmed" and reaching.empty:
                    d = {"verdict": CONFIRMED, "reasons": set(), "rows": [best["row"]],
                         "text": f"the best of them, {best['model']}, lies in {rng} and none reaches above it"}
                elif kind == "void" and reaching.empty:
                    d = {"verdict": INCONCLUSIVE, "reasons": {TRIVIAL}, "rows": [best["row"]],
                         "text": f"the best of them, {best['model']}, lies in {rng}, but {join_words(passes)} also "
                                 f"{'lies' if len(passes) == 1 else 'lie'} there"}
                else:
                    d = {"verdict": INCONCLUSIVE, "reasons": {STRADDLES}, "rows": [best["row"]],
                         "text": f"the best of them, {best['model']}, has a 95% CI that straddles {rng}"}
        for _, r in e.iterrows():
            roles[r["row"]] = ("decides (rule g)" if r["row"] in d["rows"]
                               else "within the premise; the bound is read on the others (rule g)")
        for _, r in beyond[part_of[beyond.index] == p].iterrows():  # a bound is contradicted only from above
            if _kind(r["verdict"]) == "above" and d["verdict"] != ABOVE:
                differing.append((str(r["model"]), _row_text(("above", [])), _part_label(p)))
        parts[p] = d
        texts.append(f"{_part_label(p)} {_with_reasons(d['verdict'], d['reasons'])}: {d['text']}")
    verdict, reasons = _verdict_of_parts(parts)
    ids = [i for d in parts.values() for i in d["rows"]]
    dec = rows[rows["row"].isin(ids)]
    models = list(dict.fromkeys(within["model"].astype(str)))
    decided_by = ("Decided by rule (g) on the decoders that learn from the paired trials only, fitted on all training "
                  f"trials ({join_words(models) if models else 'none'}), on the test trials: " + "; ".join(texts))
    if len(beyond):
        by_why: dict[str, list[str]] = {}
        for m, why in zip(beyond["model"], beyond["premise"]):
            if str(m) not in by_why.setdefault(str(why), []):
                by_why[str(why)].append(str(m))
        decided_by += ("; beyond the claim's premise and never deciding — "
                       + "; ".join(f"{why}: {join_words(ms)}" for why, ms in by_why.items()))
    contradiction = ""
    if differing:
        by_model: dict[tuple, list[str]] = {}
        for model, text, part in differing:
            by_model.setdefault((model, text), []).append(part)
        contradiction = ("; ".join(f"{m} (beyond the claim's premise): {t} ({join_words(ps)})"
                                   for (m, t), ps in by_model.items())
                         + "; the verdict rests on the decoders within the claim's premise (rule g)")
    return {"verdict": _with_reasons(verdict, reasons), "rows": ids, "decided_by": decided_by,
            "models": list(dict.fromkeys(dec["model"].astype(str))), "splits": _splits(dec),
            "chapters": _chapters(dec) if len(dec) else [BENCHMARKS],
            "parts": {_part_label(p): _with_reasons(d["verdict"], d["reasons"]) for p, d in parts.items()},
            "contradiction": contradiction}


def _level_of(part: str) -> str:
    return part.rsplit(" ", 1)[0] if " " in part else part


def _decide_targets(rows: pd.DataFrame, floors: dict, roles: dict) -> dict:
    """Claim 16 (rule h): which of the report's target levels the final model reaches."""
    claim = TARGET_CLAIM
    part_of = _part_of(rows)
    levels: dict[str, dict] = {}
    for p in dict.fromkeys(part_of):
        levels.setdefault(_level_of(p), {})[p] = rows[part_of == p]
    parts, clauses = {}, []
    for level, members in levels.items():
        kinds, common = [], None
        for p, r in members.items():
            for _, row in r.iterrows():
                kind, passes = _effective(row, floors, claim)
                kinds.append(kind)
                refs = set(trivial_passes(row, floors, claim))
                common = refs if common is None else common & refs
                roles[row["row"]] = {"confirmed": "target part met", "void": "target part met",
                                     "below": "target part missed", "above": "target part met"}.get(
                                         kind, "target part not clearly met (CI straddles it)")
        if all(k in ("confirmed", "void", "above") for k in kinds):
            state = "reached"
        elif any(k == "below" for k in kinds):
            state = "not reached"
        else:
            state = "not clearly reached (a 95% CI straddles it)"
        trivial = sorted(common or ())
        parts[level] = state + (f" — {join_words(trivial)} also reach{'es' if len(trivial) == 1 else ''} it"
                                if trivial and state == "reached" else "")
        verb = {"reached": "reaches", "not reached": "does not reach"}.get(state, "does not clearly reach")
        clauses.append(f"{verb} the {level} level"
                       + (f", which {join_words(trivial)} also reach{'es' if len(trivial) == 1 else ''}"
                          if trivial and state == "reached" else " (a 95% CI straddles it)"
                          if verb == "does not clearly reach" else ""))
    models = list(dict.fromkeys(rows["model"].astype(str)))
    decided_by = ("A set of success thresholds, not a prediction (rule h); on the test trials the final model, "
                  f"{join_words(models)}, " + join_words(clauses))
    return {"verdict": TARGETS, "rows": list(rows["row"]), "decided_by": decided_by, "models": models,
            "splits": _splits(rows), "chapters": _chapters(rows), "parts": parts, "contradiction": ""}


def annotate(table: pd.DataFrame, verdicts: dict) -> pd.DataFrame:
    """``table`` with a column "counts as": what each row counted as in its claim's verdict (decides, agrees,
    overruled, proxy, own code, beyond the claim's premise, void as a confirmation, ...), and "shown verdict": what
    every page shows for the row (:func:`ldm_core.study.claims.shown_verdict`: a proxy row, or a row beyond its claim's
    premise, shows that instead of its verdict)."""
    from .claims import shown_verdict

    roles = {row: role for v in verdicts.values() for row, role in v["roles"].items()}
    shown = [shown_verdict(r) for r in table.to_dict("records")]
    return table.assign(**{"counts as": table["row"].map(roles).fillna(""), "shown verdict": shown})


def verdict_counts(verdicts: dict) -> dict[str, int]:
    """Claims by kind of verdict (:data:`VERDICT_KINDS`); the counts add up to the number of claims.

    ``verdicts`` is :func:`claim_verdicts`'s output; every inconclusive verdict counts as "inconclusive" whatever its
    reason, every untestable one as "untestable", claim 16's as :data:`TARGETS`.
    """
    counts = dict.fromkeys(VERDICT_KINDS, 0)
    for v in verdicts.values():
        kind = next((k for k in VERDICT_KINDS if v["verdict"].startswith(k)), None)
        if kind is None:
            raise ValueError(f"unknown claim verdict {v['verdict']!r}; kinds: {list(VERDICT_KINDS)}")
        counts[kind] += 1
    return counts


def _claims_of(verdicts: dict, prefix: str) -> list[str]:
    return [c for c, v in verdicts.items() if v["verdict"].startswith(prefix)]


def _claim_ids(ids: list[str]) -> str:
    return f"claim{'s' * (len(ids) != 1)} {join_words(ids)}"


def summary_prose(verdicts: dict, *, n_rows: int | None = None) -> str:
    """The ledger's answer in sentences, counting claims (not rows): how many claims there are and how many can be
    tested here, how many are confirmed, refuted on each side, inconclusive (each named with its reason), target
    levels (claim 16) and untestable."""
    c = verdict_counts(verdicts)
    n = sum(c.values())
    testable = n - c["untestable"]

    def named(prefix: str) -> str:
        ids = _claims_of(verdicts, prefix)
        return f" ({_claim_ids(ids)})" if ids else ""

    def are(k: int) -> str:
        return "is" if k == 1 else "are"

    # inconclusive claims, grouped by their reasons: "claim 1 (a trivial reference ...) and claims 6a and 6b (...)"
    groups: dict[tuple, list[str]] = {}
    for claim, v in verdicts.items():
        m = re.match(r"inconclusive \((.*)\)$", v["verdict"])
        if m:
            groups.setdefault(tuple(m.group(1).split("; ")), []).append(claim)
    inconclusive = join_words(f"{_claim_ids(ids)} ({'; '.join(REASON_WORDS.get(r, r) for r in reasons)})"
                         for reasons, ids in groups.items())
    confirmed = _claims_of(verdicts, CONFIRMED)
    refuted = c[BELOW] + c[ABOVE] + c[BOTH]
    rows = f" The ledger holds {n_rows} rows." if n_rows else ""
    text = (f"Of the report's {n} claims, {testable} can be tested with this data.{rows} "
            f"{c[CONFIRMED]} {are(c[CONFIRMED])} confirmed"
            + (f" ({_claim_ids(confirmed)})" if confirmed else "")
            + f" and {refuted} refuted: {c[BELOW]} below the claim{named(BELOW)}, {c[ABOVE]} above it{named(ABOVE)} "
            f"and {c[BOTH]} on both sides, one part below and another above{named(BOTH)}. "
            + (f"{c[INCONCLUSIVE]} {are(c[INCONCLUSIVE])} inconclusive: {inconclusive}. " if c[INCONCLUSIVE] else
               "None is inconclusive. "))
    for claim in _claims_of(verdicts, TARGETS):
        levels = "; ".join(f"{level} {state}" for level, state in verdicts[claim]["parts"].items())
        text += f"Claim {claim} is a set of target levels, not a prediction: {levels}. "
    text += (f"{c['untestable']} cannot be tested with this data{named('untestable')}. Each claim has one verdict from "
             "its rows, by the rule stated on this page; a row counts once, and proxies, measurements of the study's "
             "own code and confirmations that a trivial reference would also earn do not make a claim confirmed.")
    return text


def claim_table(verdicts: dict) -> pd.DataFrame:
    """One row per claim: what the report says (short), the verdict, the model(s) and trials it rests on, and the
    chapter(s) (file names; :func:`claim_table_markdown` links them)."""
    rows = [{"claim": c, "report says": v["report says"], "verdict": v["verdict"],
             "rests on": _rests_on(v), "chapter": ", ".join(v["chapters"])} for c, v in verdicts.items()]
    return pd.DataFrame(rows).set_index("claim")


def _rests_on(v: dict) -> str:
    """"model — trials", without nested brackets ("original Brain LDM (reproduced) — the test trials")."""
    if not v.get("models"):
        return "—"
    splits = v.get("splits", [])
    return join_words(v["models"]) + (f" — {join_words(_split_words(s) for s in splits)}" if splits else "")


def _shown_claim_verdict(v: dict) -> str:
    if v["verdict"] == TARGETS and v.get("parts"):
        return f"**{TARGETS}**: " + "; ".join(f"{level} {state}" for level, state in v["parts"].items())
    return f"**{v['verdict']}**"


def claim_table_markdown(verdicts: dict, *, here: str = CONCLUSIONS) -> str:
    """:func:`claim_table` as a MyST Markdown table whose chapter column links each chapter with short text
    (``{doc}`ch. 2 <02_unet_fix>```); the page itself (``here``) reads "this page"."""
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| claim | the report says | verdict | rests on | chapter |", "| --- | --- | --- | --- | --- |"]
    for c, v in verdicts.items():
        links = ", ".join(chapter_ref(ch, short=True, here=here) for ch in v["chapters"])
        lines.append(f"| {c} | {cell(v['report says'])} | {cell(_shown_claim_verdict(v))} | {cell(_rests_on(v))} | "
                     f"{links} |")
    return "\n".join(lines)


def contradictions(verdicts: dict) -> list[str]:
    """One Markdown line per claim whose rows disagreed: which rows, and the verdict taken on the stronger evidence."""
    return [f"**Claim {c}** — {v['report says']}: {v['contradiction']}. Verdict: *{v['verdict']}*."
            for c, v in verdicts.items() if v.get("contradiction")]


# ----------------------------------------------------------------------------- trajectory, headline, final model

# (stage label, chapter, report phase whose expectation applies); the model is the chapter's validation-selected one
TRAJECTORY = (
    ("original", "01_diagnostics", "original"),
    ("phase 1.1 U-Net", "02_unet_fix", "phase1"),
    ("phase 1.2 loss", "03_loss_function", "phase1"),
    ("phase 1.3 encoder", "04_fmri_encoder", "phase1"),
    ("phase 2 conditioning / VAE", "05_conditioning_vae", "phase2"),
    ("phase 3 augmentation", "06_augmentation_multiscale", "phase3"),
    ("image prior (beyond claim 13's premise)", "07_image_prior", "limit90"),
)


def trajectory(root=None, *, metrics=("psnr", "ssim", "pixel_r")) -> pd.DataFrame:
    """Measured test metrics of each chapter's validation-selected model beside the report's expected range.

    One row per stage of :data:`TRAJECTORY` (chapter 01: the reproduced original; chapter 07: its selected model with
    the map refitted on all training trials, shown beside the report's "best possible with 90 samples" for reference
    only: it also learns from unpaired images, beyond claim 13's premise, rule g); columns
    ``<metric>``, ``<metric>_lo``, ``<metric>_hi`` (measured mean and 95% CI) and ``<metric>_expected`` (the report's
    range, quoted); ``same_as`` names the earlier stage whose model it is again (identical per-image test scores of the
    first metric: a chapter that keeps an earlier chapter's model), "" otherwise.
    """
    from .claims import REPORT_EXPECTATIONS

    rows, per_image = [], {}
    for stage, chapter, phase in TRAJECTORY:
        res = _load(chapter, root)
        if chapter == "01_diagnostics":
            name, entry = "original", res["extra"]["summary"]["original"]
        elif chapter == PRIOR and _refitted_name(res["extra"]) in res["extra"].get("summary", {}):
            name = _refitted_name(res["extra"])
            entry = res["extra"]["summary"][name]
        else:
            name, entry = _selected(res)
        mine = np.asarray(_pooled(entry, metrics[0]).get("per_image", []), dtype=float)
        same = [st for st, v in per_image.items() if v.shape == mine.shape and mine.size and np.allclose(v, mine)]
        per_image[stage] = mine
        row = {"stage": stage, "chapter": chapter, "model": name, "phase": phase, "same_as": same[0] if same else ""}
        for m in metrics:
            p = _pooled(entry, m)
            row.update({m: p["mean"], f"{m}_lo": p["ci_low"], f"{m}_hi": p["ci_high"],
                        f"{m}_expected": REPORT_EXPECTATIONS[phase][m]})
        rows.append(row)
    return pd.DataFrame(rows)


def _refitted_name(x07: dict):
    """Chapter 07's selected model refitted on all training trials (key ``selected_all``; older results:
    ``selected_90``, the same model)."""
    return x07.get("selected_all", x07.get("selected_90"))


def headline_rows(root=None) -> dict[str, dict]:
    """The executive summary's rows: the reproduced original (chapter 01) and chapter 08's headline rows.

    Returns ``{model: {metric: pooled}}`` (reader names), the study's best model first.

    Raises
    ------
    KeyError
        If chapter 08's results hold no headline rows (the chapter to re-run is named).
    """
    ch01, bench = _load("01_diagnostics", root), _load(BENCHMARKS, root)
    rows = bench.get("extra", {}).get("headline_rows")
    if not rows:
        raise KeyError(f"chapter {BENCHMARKS}'s results hold no extra['headline_rows']: re-run {BENCHMARKS}")
    best = bench["extra"].get("best_model")
    orig = ch01["extra"]["summary"]["original"]
    out = {}
    if best in rows:
        out[best] = rows[best]
    out[f"original Brain LDM (reproduced, {len(orig['seeds'])} seeds)"] = orig["test"]
    out.update({k: v for k, v in rows.items() if k != best})
    return out


def baseline_references(headline: dict, *, baselines=("ridge", "latent ridge"),
                        metrics=("psnr", "ssim", "pixel_r")) -> dict[str, dict[str, float]]:
    """Reference lines for the trajectory figure: each baseline's test means at its largest number of trials.

    ``headline`` is chapter 08's ``extra["headline_rows"]`` (keys such as "ridge regression to pixels, 90 trials");
    a baseline is found by its reader name (:func:`ldm_core.study.names.model_label`) and the trial count in its key, never
    a typed count. Returns ``{"<reader name> (<n> trials)": {metric: mean}}``; a baseline absent from ``headline`` is
    left out.
    """
    out = {}
    for b in baselines:
        label = model_label(b)
        found = [(int(m.group(1)), k) for k in headline if str(k).startswith(label + ",")
                 and (m := re.search(r"(\d+) trials", str(k)))]
        if found:
            n, key = max(found)
            out[f"{label} ({n} trials)"] = {m: float(headline[key][m]["mean"]) for m in metrics if m in headline[key]}
    return out


def final_model(root=None) -> dict:
    """What the study's final model is, from chapters 07 (contract C5) and 08.

    Returns
    -------
    dict
        ``name`` (chapter 08's best model, named for what it computes), ``is_ldm`` (True only when it samples with
        diffusion), ``model_names`` (chapter 07's ``{"fit", "all"}``), ``uses_unpaired_images`` and ``fitted_on``
        (the paired trials it learned from; chapter 08's record of each headline decoder), ``refitted_on_all`` (it
        learned from all training trials), ``test`` (its test metrics, seeds pooled), ``baseline`` (the best
        baseline chosen on validation), ``baseline_row`` (its headline row, fitted like the final model),
        ``baseline_uses_unpaired_images``, ``paired`` (``{metric: paired comparison}`` final minus baseline on the
        test images), ``n_prior_images``, ``recons_key`` (its first seed's key in chapter 08's
        reconstructions) and ``baseline_recons_key`` (the best baseline's key there).

    Raises
    ------
    KeyError
        If chapter 07's results lack ``model_names`` / ``selected_is_ldm`` (re-run chapter 07), or chapter 08's lack
        the best model, whether it samples with diffusion, its baseline comparison or what its decoders learned
        from (re-run 08).
    """
    x07, x08 = _load(PRIOR, root).get("extra", {}), _load(BENCHMARKS, root).get("extra", {})
    missing = [k for k in ("model_names", "selected_is_ldm") if k not in x07]
    if missing:
        raise KeyError(f"chapter {PRIOR}'s results lack extra{missing} (contract C5: the selected decoder's names and "
                       f"whether it samples with diffusion): re-run {PRIOR}")
    missing = [k for k in ("best_model", "best_model_test", "best_model_is_ldm", "best_baseline_val", "best_baseline",
                           "paired_test", "paired_best") if k not in x08]
    if missing:
        raise KeyError(f"chapter {BENCHMARKS}'s results lack extra{missing}: re-run {BENCHMARKS}")
    if x08["paired_best"] not in x08["paired_test"]:
        raise KeyError(f"chapter {BENCHMARKS}'s paired_test holds no comparison {x08['paired_best']!r}: re-run "
                       f"{BENCHMARKS}")
    decoders = headline_decoders(root)
    name, base_row = x08["best_model"], x08["best_baseline"]
    for row in (name, base_row):
        if row not in decoders or decoders[row]["reference"]:
            raise KeyError(f"chapter {BENCHMARKS}'s headline rows hold no decoder {row!r} (its best model or best "
                           f"baseline): re-run {BENCHMARKS}")
    n_train = int(data_facts(root)["n_train"])
    base_key = x08.get("baseline_keys", {}).get(base_row, {}).get("results_key")
    if base_key is None:
        raise KeyError(f"chapter {BENCHMARKS}'s results do not say under which key its best baseline {base_row!r} is "
                       f"stored (extra['baseline_keys'][...]['results_key']): re-run {BENCHMARKS}")
    return {"name": name, "is_ldm": bool(x08["best_model_is_ldm"]), "model_names": dict(x07["model_names"]),
            "uses_unpaired_images": decoders[name]["uses_unpaired_images"],
            "fitted_on": decoders[name]["fitted_on"], "refitted_on_all": decoders[name]["fitted_on"] == n_train,
            "test": x08["best_model_test"], "baseline": x08["best_baseline_val"], "baseline_row": base_row,
            "baseline_uses_unpaired_images": decoders[base_row]["uses_unpaired_images"],
            "paired": x08["paired_test"][x08["paired_best"]],
            "n_prior_images": x07.get("prior_images", {}).get("n_images"), "recons_key": f"{name}@seed0",
            "baseline_recons_key": base_key}


def model_reconstructions(recons: dict, key: str, *, chapter: str = BENCHMARKS):
    """The reconstructions stored under exactly ``key`` in a chapter's ``reconstructions.npz`` (no other model's
    images in its place).

    Raises
    ------
    KeyError
        If ``key`` is absent: names the keys that start like it and the chapter to re-run.
    """
    if key not in recons:
        stem = str(key).split("@")[0].split(",")[0]
        near = sorted(k for k in recons if str(k).startswith(stem))
        raise KeyError(f"chapter {chapter}'s reconstructions hold no {key!r}" + (f" (similar keys: {near})" if near else "")
                       + f": re-run {chapter}")
    return recons[key]


def prior_description(root=None) -> str:
    """What chapter 07's unpaired prior images are, in words ("unpaired MNIST digits"; ``extra["prior_phrase"]``).

    Raises
    ------
    KeyError
        If chapter 07's results lack it (re-run 07).
    """
    x07 = _load(PRIOR, root).get("extra", {})
    if not x07.get("prior_phrase"):
        raise KeyError(f"chapter {PRIOR}'s results lack extra['prior_phrase'] (what the unpaired images are, e.g. "
                       f"'unpaired MNIST digits'): re-run {PRIOR}")
    return str(x07["prior_phrase"])


def class_names(root=None) -> dict[int, str]:
    """The data's class names by label code, as chapter 00 read them (``extra["data"]["class_names"]``).

    Raises
    ------
    KeyError
        If chapter 00's results lack them (re-run 00).
    """
    names = _load(DATA, root).get("extra", {}).get("data", {}).get("class_names")
    if not names:
        raise KeyError(f"chapter {DATA}'s results lack extra['data']['class_names'] (label code -> class name): "
                       f"re-run {DATA}")
    return {int(k): str(v) for k, v in names.items()}


def classes_are_digits(names) -> bool:
    """True when every class name is a digit word ("zero" .. "nine"): only then may a page speak of digits."""
    from ..perception_net import digit_word

    words = {digit_word(d) for d in range(10)}
    names = [str(n).strip().lower() for n in names]
    return bool(names) and all(n in words for n in names)


def is_published_data(root=None) -> bool:
    """True when chapter 00 read the data file whose published results are quoted (digit69's checksum,
    :data:`ldm_core.data.DATA_SHA256`); a page quotes DGMM "on the same data" only then.

    Raises
    ------
    KeyError
        If chapter 00's results lack ``extra["data_sha256"]`` (re-run 00).
    """
    from ..data import DATA_SHA256

    sha = _load(DATA, root).get("extra", {}).get("data_sha256")
    if not sha:
        raise KeyError(f"chapter {DATA}'s results lack extra['data_sha256'] (the data file's checksum): re-run {DATA}")
    return sha == DATA_SHA256


# ----------------------------------------------------------------------------- the first page's computed sentences

LOWER_IS_BETTER = ("mse", "kid_digit")


def _short_metric(metric: str) -> str:
    return {"pixel_r": "pixel r"}.get(metric, metric_label(metric).split(" (")[0])


def _signed(c: dict, metric: str) -> str:
    return ci_text(c, 2 if metric == "psnr" else 3, sign=True, unit=" dB" if metric == "psnr" else "")


def standing_text(paired: dict, *, against: str = "it") -> str:
    """Where model a stands against model b from paired differences a − b (``{metric: comparison}``), by the 95% CI,
    every metric with its difference: "ahead of it on PSNR (+0.54 dB [+0.12, +1.08]), behind it on SSIM (...) and not
    separable from it on pixel r (...)". For MSE and KID a negative difference is ahead."""
    groups: dict[str, list[str]] = {"ahead of": [], "behind": [], "not separable from": []}
    for m, c in paired.items():
        lower = m in LOWER_IS_BETTER
        better, worse = (c["ci_high"] < 0, c["ci_low"] > 0) if lower else (c["ci_low"] > 0, c["ci_high"] < 0)
        key = "ahead of" if better else "behind" if worse else "not separable from"
        groups[key].append(f"{_short_metric(m)} ({_signed(c, m)})")
    return join_words(f"{how} {against} on {join_words(items)}" for how, items in groups.items() if items)


def root_cause_evidence(root=None) -> dict:
    """Chapter 01's root causes by its own definition (a defect whose removal alone returns the fully repaired model
    to the noise floor), read from its results and chapter 00's uniform-noise floor.

    A fix is a root cause when, removed alone from the fully fixed model, the 95% CI of the test PSNR reaches down to
    uniform noise's mean test PSNR (chapter 00) or below.

    Returns
    -------
    dict
        ``floor_psnr`` (uniform noise's mean test PSNR); ``fixes``: ``{fix: {"without": pooled test PSNR of the model
        without it, "root_cause": bool, "gain": {"psnr", "pixel_r"} (added on the cumulative ladder: the rung adding it
        minus the rung before), "val_drop": the validation pixel-r drop when it is removed}}``; ``root_causes`` (the
        fixes that are, in chapter 01's order); ``all_fixed_psnr`` (the last rung, every fix in: pooled test PSNR) and
        ``train_mean_psnr`` (chapter 00's training-mean image, None if absent), to say whether the fixes suffice.

    Raises
    ------
    KeyError
        If chapter 01's results lack ``ladder_test`` / ``ladder_fixes`` (or a model they name), or chapter 00's the
        uniform-noise floor (the chapter to re-run is named).
    """
    x01 = _load("01_diagnostics", root).get("extra", {})
    missing = [k for k in ("ladder_test", "ladder_fixes", "leave_one_out_val_drop") if k not in x01]
    if missing:
        raise KeyError(f"chapter 01_diagnostics's results lack extra{missing} (the defect ladder's test scores and "
                       "which rung adds or removes each fix): re-run 01_diagnostics")
    floors = _load(DATA, root).get("models", {})
    if "uniform_noise" not in floors:
        raise KeyError(f"chapter {DATA}'s results hold no uniform_noise floor: re-run {DATA}")
    floor = float(floors["uniform_noise"]["psnr"]["mean"])
    test, out = x01["ladder_test"], {}
    for fix, names in x01["ladder_fixes"].items():
        absent = [names.get(k) for k in ("added", "before", "removed") if names.get(k) not in test]
        if absent:
            raise KeyError(f"chapter 01_diagnostics's ladder_test holds no {absent} (named by ladder_fixes[{fix!r}]): "
                           "re-run 01_diagnostics")
        without = test[names["removed"]]["psnr"]
        out[fix] = {"without": without, "root_cause": float(without["ci_low"]) <= floor,
                    "gain": {m: float(test[names["added"]][m]["mean"] - test[names["before"]][m]["mean"])
                             for m in ("psnr", "pixel_r")},
                    "val_drop": x01["leave_one_out_val_drop"].get(fix)}
    full = test[list(x01["ladder_fixes"].values())[-1]["added"]]["psnr"]  # the last rung: every fix in
    train_mean = floors.get("train_mean", {}).get("psnr", {}).get("mean")
    return {"floor_psnr": floor, "fixes": out, "root_causes": [f for f, d in out.items() if d["root_cause"]],
            "all_fixed_psnr": full, "train_mean_psnr": None if train_mean is None else float(train_mean)}


def root_cause_text(evidence: dict) -> str:
    """The first page's first point, from :func:`root_cause_evidence`: the noise-floor criterion, what removing each
    root cause does, the cumulative step that adds it, and what the report's 'smoking gun' (the skip U-Net) does."""
    from .names import fix_label

    floor, fixes, causes = evidence["floor_psnr"], evidence["fixes"], evidence["root_causes"]
    link = chapter_ref("01_diagnostics")
    parts = [f"By the definition of {link}, a defect whose removal alone returns the model to the noise floor is a "
             f"root cause (the noise floor: uniform noise, {floor:.2f} dB test PSNR)"]
    for fix in causes:
        w, g = fixes[fix]["without"], fixes[fix]["gain"]
        parts.append(f"removing '{fix_label(fix)}' from the fully repaired model brings test PSNR down to "
                     f"{ci_text(w, 2, unit=' dB')}, and adding it on the cumulative "
                     f"ladder changes PSNR by {g['psnr']:+.2f} dB and pixel r by {g['pixel_r']:+.3f}")
    if not causes:
        lowest = min(fixes, key=lambda f: fixes[f]["without"]["mean"])
        parts.append(f"no single removal does so: the lowest, without '{fix_label(lowest)}', scores "
                     f"{fixes[lowest]['without']['mean']:.2f} dB")
    others = [f for f in fixes if f not in causes]
    if causes and others:
        lowest = min(others, key=lambda f: fixes[f]["without"]["mean"])
        parts.append(f"no other single removal reaches the floor (the lowest, without '{fix_label(lowest)}', scores "
                     f"{fixes[lowest]['without']['mean']:.2f} dB)")
    skip = fixes.get("skip U-Net")
    if skip is not None and skip["val_drop"] is not None and "skip U-Net" not in causes:
        d = float(skip["val_drop"])
        parts.append("removing the skip connections, the report's 'smoking gun', "
                     + (f"lowers validation pixel r by {d:.3f}" if d > 0 else f"raises validation pixel r by {-d:.3f}")
                     + " and leaves the model well above the floor")
    from .claims import sentences

    return sentences(*parts)


def selection_text(root=None, *, final: dict | None = None, after: str = "") -> str:
    """The first page's sentences on how the final model was chosen: on validation, among the study's candidates
    (the spatial LDMs and the image-prior model; baselines are not candidates), with ``after`` appended to that
    sentence (e.g. ": it does not sample with diffusion ..."), and, when the best baseline scores higher on the same
    validation metric, a sentence saying so, with both numbers.

    Raises
    ------
    KeyError
        If chapter 08's results lack the candidates' or the baselines' validation scores (re-run 08).
    """
    res = _load(BENCHMARKS, root)
    x08, metric = res.get("extra", {}), res.get("params", {}).get("select_metric")
    missing = [k for k in ("selected_on_validation", "candidates_val_seed0", "baselines_val", "best_baseline_val")
               if k not in x08]
    if missing or not metric:
        raise KeyError(f"chapter {BENCHMARKS}'s results lack extra{missing or ''}"
                       + ("" if metric else " / params['select_metric']") + f": re-run {BENCHMARKS}")
    final = final or final_model(root)
    chosen, base = x08["selected_on_validation"], x08["best_baseline_val"]
    ours = float(x08["candidates_val_seed0"][chosen][metric]["mean"])
    theirs = float(x08["baselines_val"][base][metric]["mean"])
    label = _short_metric(metric)
    from .claims import sentences

    return sentences(
        f"The final model of this study, chosen on validation ({label}) among the study's candidate models (the spatial "
        f"LDMs and the image-prior model; baselines are not candidates), is **{final['name']}**{after}",
        f"On the same validation trials the best baseline, {model_label(base)}, scores higher ({label} {theirs:.3f} "
        f"against the chosen model's {ours:.3f})" if theirs > ours else "")


SPATIAL_SAMPLING_KEYS = ("model", "n_samples", "sample_std", "prior_sample_std", "steps_psnr",
                         "in_effect_deterministic")


def spatial_sampling_text(root=None) -> str:
    """The first page's sentence on the best spatial LDM: what chapter 08 measured about its sampling (the spread of
    its samples, DDIM-step invariance: whether it uses diffusion in effect) and where it stands against the best
    baseline on the test trials.

    Raises
    ------
    KeyError
        If chapter 08's results lack ``spatial_sampling`` (keys :data:`SPATIAL_SAMPLING_KEYS`) or the spatial model's
        paired comparison (re-run 08).
    """
    x08 = _load(BENCHMARKS, root).get("extra", {})
    s = x08.get("spatial_sampling")
    missing = [k for k in SPATIAL_SAMPLING_KEYS if not isinstance(s, dict) or k not in s]
    if missing:
        raise KeyError(f"chapter {BENCHMARKS}'s results lack extra['spatial_sampling'] entries {missing} (what it "
                       f"measures about the spatial LDM's sampling): re-run {BENCHMARKS}")
    key = next((k for k in x08.get("paired_test", {}) if str(k).startswith(str(s["model"]) + " − ")), None)
    if key is None:
        raise KeyError(f"chapter {BENCHMARKS}'s paired_test holds no comparison of {s['model']!r} with a baseline: "
                       f"re-run {BENCHMARKS}")
    baseline = key.split(" − ", 1)[1]
    steps = {int(k): float(v) for k, v in s["steps_psnr"].items()}
    spread = max(steps.values()) - min(steps.values()) if len(steps) > 1 else float("nan")
    share = (s.get("spread") or {}).get("share")
    measured = (f"across {s['n_samples']} samples per validation trial its images differ by a mean per-pixel "
                f"standard deviation of {s['sample_std']:.2g}"
                + (f", {share:.1%} of how much the validation images differ from one another" if share is not None
                   else "")
                + (f", against {s['prior_sample_std']:.2g} for the image prior's diffusion decoder"
                   if s.get("prior_sample_std") is not None else "")
                + (f", and its validation PSNR moves by {spread:.2f} dB between {min(steps)} and {max(steps)} DDIM "
                   "steps" if len(steps) > 1 else ""))
    verdict = ("so in effect it is a deterministic regressor that does not use diffusion"
               if s["in_effect_deterministic"] else "so it does use diffusion")
    from .claims import sentences

    return sentences(
        f"The best spatial LDM of chapter 8, {s['model']}, is the repaired pipeline of chapters 2–6 (the changes "
        f"chapters 3–6 screened one at a time are not combined into it). It samples with a diffusion sampler, but "
        f"{measured}: {verdict} ({chapter_ref(BENCHMARKS)})",
        f"Chapter 8's criterion: {s['criterion']}" if s.get("criterion") else "",
        f"On the test trials, against {baseline}, it is {standing_text(x08['paired_test'][key], against='it')} (95% "
        "CIs of the per-image differences)")


DATA_FACTS = ("n_train", "n_test", "n_fit", "n_val", "n_voxels", "image_size", "classes", "dataset")


def data_facts(root=None) -> dict:
    """The data's counts and names as chapter 00 stored them (``extra["data"]``: :data:`DATA_FACTS`), for pages
    that read results only; never typed.

    Raises
    ------
    KeyError
        If chapter 00's results lack them (re-run chapter 00).
    """
    facts = _load(DATA, root).get("extra", {}).get("data", {})
    missing = [k for k in DATA_FACTS if k not in facts]
    if missing:
        raise KeyError(f"chapter {DATA}'s results lack extra['data'] entries {missing} (the data's counts): re-run "
                       f"{DATA}")
    return facts
