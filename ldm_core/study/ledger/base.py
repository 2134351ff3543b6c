"""The ledger's constants (the verdict rule, claim texts, chapters, verdict kinds), chapter titles and links, and the
data's facts as chapter 00 stored them.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from ..claims import SPLITS
from ..results import load_results, project_root, results_dir


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
