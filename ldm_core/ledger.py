"""The claims ledger: every quantitative claim of the report, the rows that measure it, and one verdict per claim.

The ledger is assembled from the chapters' results files, never from typed numbers:

- each chapter stores the verdict rows it computed (``extra["verdicts"]`` of its ``metrics.json``, rows built by
  :func:`ldm_core.claims.claim_row` and its siblings, with the keys of :data:`ldm_core.claims.ROW_KEYS`);
  :func:`collect_verdicts` gathers them, tagged with the chapter, and refuses rows written before that schema (the
  error names the chapter to re-run);
- :func:`computed_claims` adds the claims that need numbers from several chapters or are arithmetic
  (claims 2, 11a, 12, 16);
- :func:`untestable_claims` lists what this data cannot test, with the reason and what would be needed.

:func:`ledger` joins the three, ordered by claim number, keeps each measurement once (the same model scored in two
chapters is one row naming both), marks the rows that measure the model a claim is about (:func:`subject_models`)
and gives every row an id ("8.4": the fourth row of claim 8). :func:`claim_verdicts` then gives one verdict per
claim by the rule below, against chapter 00's trivial references (:func:`trivial_references`);
:func:`verdict_counts` counts claims, :func:`summary_prose` writes the answer, :func:`claim_table` the per-claim
table. :func:`trajectory` gives each phase's validation-selected model beside the report's expected range,
:func:`headline_rows` the executive summary's table and :func:`final_model` what the final model is.

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

from .claims import ROW_KEYS, SPLITS, claim_row, exact, paired_claim_row
from .metrics import paired_comparison
from .names import metric_label, model_label
from .results import load_results, project_root, results_dir

__all__ = ["collect_verdicts", "computed_claims", "untestable_claims", "ledger", "claim_verdicts", "verdict_counts",
           "summary_prose", "claim_table", "claim_table_markdown", "contradictions", "annotate", "subject_models",
           "trivial_references", "trajectory", "headline_rows", "final_model", "baseline_references", "data_facts",
           "chapter_title",
           "claim_sort_key", "RULE", "CLAIM_TEXTS", "LEDGER_CHAPTERS", "TRAJECTORY", "UNTESTABLE",
           "TRIVIAL_REFERENCES", "REFERENCE_CLAIMS", "VERDICT_KINDS"]

RULE = """\
Each row of the ledger has its own verdict, by the rule of chapter 00: *confirmed* when the whole 95% CI of the
measurement lies in the claimed range, *refuted* (below or above the claim) when the whole CI lies outside it,
*inconclusive* otherwise. A claim gets one verdict from its rows:

- **(a) Proxies never count.** A proxy row measures something other than the claim; it is shown, not counted.
- **(b) The study's own code is not evidence.** A row that measures this study's own code (its fMRI normaliser, say)
  says nothing about the report's pipeline; a claim with only such rows is *inconclusive (only own-code rows)*.
- **(c) No confirmation on selection rows alone.** The validation trials choose the models; a confirmation resting on
  validation rows only is *inconclusive (only selection rows)* until test rows agree.
- **(d) No confirmation that a trivial reference would also earn.** A confirmed row is void when the mean of a trivial
  reference of chapter 00 (uniform noise, the constant grey and black images, the training-mean image, the
  correct-class mean) also lies in the claimed range; the row then counts as *inconclusive (a trivial reference
  passes too)*. Checked on every row that measures a level of a metric those references have, except for the claims
  about the references themselves (3, 4a, 4b); differences between two models are not levels.
- **(e) Every part must hold.** A claim with several parts (PSNR, SSIM and pixel r; the weeks of claim 12; the
  horizons of claim 16) is *confirmed* only when every part is confirmed and *refuted* when a part is refuted, below or
  above the claim, or *refuted (both sides)* when refuted parts disagree on the side; otherwise it is *inconclusive*,
  with the reason (the CI straddles the claimed range, only selection rows, a trivial reference passes too).
- **(f) Contradictions go to the stronger evidence.** When rows of one part disagree, the part is decided on the
  stronger rows: test trials over training trials over validation trials, and, on equal trials, the model the claim
  is about (the original for claims 1 and 5a–5c, the end-of-phase model for claims 8–10, the study's best model for
  claim 13, the architecture change alone for claim 11a) over other models. Rows of equal strength that still
  disagree are read as parts: all must confirm.

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
           "metric", "part", "proxy", "own_code", "difference", "subject", "mean", "ci_low", "ci_high", "low", "high",
           "chapter"]

# Chapter 00's trivial references (its `models`): a confirmation these would also earn is void (rule d).
TRIVIAL_REFERENCES = ("uniform_noise", "constant_0.5", "constant_0", "train_mean", "class_mean_reference")
# Claims about those references themselves: rule (d) does not apply to them.
REFERENCE_CLAIMS = ("3", "4a", "4b")

# Verdicts of a claim, in the order the counts list them.
CONFIRMED, BELOW, ABOVE, BOTH = ("confirmed", "refuted (below the claim)", "refuted (above the claim)",
                                 "refuted (both sides)")
INCONCLUSIVE, NOT_TESTABLE = "inconclusive", "untestable with this data"
VERDICT_KINDS = (CONFIRMED, BELOW, ABOVE, BOTH, INCONCLUSIVE, "untestable")
# Reasons of an inconclusive verdict.
STRADDLES, SELECTION = "CI straddles the claimed range", "only selection rows"
TRIVIAL = "a trivial reference passes too"
OWN_CODE, PROXY_ONLY = "only own-code rows", "only proxy rows"

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
    "10": "the model at the end of phase 3", "11a": "the architecture change alone",
    "13": "the study's best model on all training trials",
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


# ----------------------------------------------------------------------------- rows


def collect_verdicts(root=None, *, chapters=LEDGER_CHAPTERS) -> pd.DataFrame:
    """Verdict rows stored by the chapters (``extra["verdicts"]``), one row each, with a ``chapter`` column.

    Raises
    ------
    FileNotFoundError
        If a chapter's results are missing (the message names the chapter to run).
    KeyError
        If a chapter's rows lack a key of :data:`ldm_core.claims.ROW_KEYS` (written before the row schema): the
        message names the chapter to re-run.
    ValueError
        If a row's split is not one of :data:`ldm_core.claims.SPLITS` or its claim id is not a claim's id.
    """
    rows = []
    for ch in chapters:
        for r in _load(ch, root).get("extra", {}).get("verdicts", []):
            missing = [k for k in ROW_KEYS if k not in r]
            if missing:
                raise KeyError(
                    f"chapter {ch}'s verdict rows lack the keys {missing} (first such row: claim {r.get('claim')!r}, "
                    f"{r.get('report says', '')!r}); they were written before the ledger's row schema: re-run {ch} "
                    f"(python -m ldm_core.study --only {ch}) with rows built by ldm_core.claims.claim_row / "
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
    """Claims whose measurement combines results or is arithmetic: 2, 11a, 12 and 16 (see CLAIMS.md).

    Reading of each claim (the report gives no tolerance; ours is stated in the row):

    - claim 2 is arithmetic (10·log10(1/0.282)); the reproduced original's measured MSE is shown beside it as a proxy
      (it is about the reproduction, claim 1, not about the arithmetic);
    - claim 11a ("priority 1, architecture: +5–10 dB") is the architecture change alone: chapter 02's original with
      the U-Net swapped in (its VAE decoder still untrained) minus the original, paired over the test images; chapter
      02's U-Net pipeline, which also trains the VAE decoder, is supporting evidence that is not about architecture;
    - claim 12 takes the validation-selected model of chapter 03 (week 1: U-Net, perceptual loss, sweep), 04 (week 2:
      encoder with dropout, larger VAE) and 06 (weeks 3–4: augmentation), one part per week;
    - claim 16 takes the study's best model (chapter 08's ``best_model_test``), one part per horizon and metric.

    Raises
    ------
    KeyError
        If a chapter's results lack what a claim needs (the chapter to re-run is named).
    """
    ch01, ch02 = (_load(c, root) for c in ("01_diagnostics", "02_unet_fix"))
    rows = [
        _row(claim_row("2", "PSNR 5.49 dB corresponds to MSE 0.282 (arithmetic: 10·log10(1/0.282))",
                       exact(10 * math.log10(1 / 0.282)), low=5.44, high=5.54, digits=2, split="formula",
                       model="the PSNR formula, 10·log10(1/MSE)"), chapter=CONCLUSIONS),
        _row(claim_row("2", "the reproduced original's MSE (±0.03 of 0.282): about the reproduction, not the "
                            "arithmetic", _pooled(ch01["extra"]["summary"]["original"], "mse"), low=0.252, high=0.312,
                       split="test", metric="mse", model="original", proxy=True), chapter="01_diagnostics"),
    ]
    s02 = ch02.get("extra", {}).get("summary", {})
    need = [k for k in ("original", "original + U-Net", "U-Net pipeline") if k not in s02]
    if need:
        raise KeyError(f"chapter 02_unet_fix's results hold no summary of {need} (extra['summary']): re-run "
                       "02_unet_fix")

    def gain(a: str) -> dict:
        return paired_comparison(_pooled(s02[a], "psnr")["per_image"], _pooled(s02["original"], "psnr")["per_image"],
                                 n_boot=n_boot)

    rows += [
        _row(paired_claim_row("11a", "priority 1 (architecture) gives +5–10 dB: the U-Net swapped into the original "
                                     "alone (VAE decoder still untrained) minus the original, test PSNR",
                              gain("original + U-Net"), low=5, high=10, digits=2, split="test", metric="psnr",
                              model="original + U-Net − original"), chapter="02_unet_fix", subject=True),
        _row(paired_claim_row("11a", "the U-Net pipeline minus the original, test PSNR (the pipeline also trains the "
                                     "VAE decoder: not the architecture alone)",
                              gain("U-Net pipeline"), low=5, high=10, digits=2, split="test", metric="psnr",
                              model="U-Net pipeline − original"), chapter="02_unet_fix", subject=False),
    ]
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
    bench = _load(BENCHMARKS, root).get("extra", {})
    if "best_model_test" not in bench:
        raise KeyError(f"chapter {BENCHMARKS}'s results hold no extra['best_model_test']: re-run {BENCHMARKS}")
    best, best_name = bench["best_model_test"], bench.get("best_model", "best model")
    for horizon, p_min, s_min in (("short-term", 10, 0.1), ("medium-term", 15, 0.3), ("long-term", 20, 0.5)):
        rows.append(_row(claim_row("16", f"{horizon} success: PSNR > {p_min} dB", best["psnr"], low=p_min, digits=2,
                                   split="test", metric="psnr", model=best_name, part=f"{horizon} PSNR"),
                         chapter=BENCHMARKS))
        rows.append(_row(claim_row("16", f"{horizon} success: SSIM > {s_min}", best["ssim"], low=s_min, split="test",
                                   metric="ssim", model=best_name, part=f"{horizon} SSIM"), chapter=BENCHMARKS))
    return pd.DataFrame(rows, columns=COLUMNS)


# Claims this dataset cannot test: (claim, what the report says, why not, what would be needed).
UNTESTABLE = (
    ("11c", "priority 3 (data) gives +10 dB",
     "needs many more paired trials than digit69 has; chapter 08's learning curves stop at the fitting split",
     "a larger digit fMRI set (e.g. thousands of trials) from the same paradigm"),
    ("14", "brain decoding needs > 1,000 samples (good 2,000–5,000; excellent 10,000+)",
     "no paired dataset of that size here; chapter 08's learning curves show what subsets of the paired trials give, "
     "and chapter 07 what the unpaired images add", "the same experiment with 1,000+ paired trials"),
    ("15", "literature: basic CNN 15–20 dB / SSIM 0.3–0.5 with 1,000+ samples; advanced GAN 20–25 dB / 0.5–0.7",
     "a statement about other studies and datasets, not about digit69; chapter 08 quotes the published "
     "digit69 numbers, as reported", "the cited studies' own data and metric definitions"),
    ("U1", "temporal modelling of the fMRI (phase 1.3) and temporal jittering (phase 3)",
     "the file holds one pattern per trial, with no time series", "the voxel time series of each trial"),
    ("U2", "anatomy-aware (spatial) attention over voxels (phase 1.3)",
     "the file has no voxel coordinates; the attention encoder groups voxels in file order only",
     "voxel coordinates or a cortical surface mapping"),
    ("U3", "cross-subject adaptation (phase 3)", "digit69 has one subject", "recordings of several subjects"),
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
             "mean": nan, "ci_low": nan, "ci_high": nan, "low": nan, "high": nan, "chapter": CONCLUSIONS}
            for c, text, why, need in UNTESTABLE]
    return pd.DataFrame(rows, columns=COLUMNS)


# ----------------------------------------------------------------------------- the model each claim is about


def _models_of(names) -> set[str]:
    return {str(n) for n in names} | {model_label(str(n)) for n in names}


def subject_models(root=None) -> dict[str, dict]:
    """The model each claim is about, where a claim names one (rule f): ``{claim: {"about", "models", "chapter"}}``.

    ``about`` says it in words, ``models`` holds the names its rows may carry (internal and reader names) and
    ``chapter`` the chapter that names it. Claims not listed are about every row's model.

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
    bench = _load(BENCHMARKS, root).get("extra", {})
    prior = _load(PRIOR, root).get("extra", {})
    names = [n for n in (bench.get("best_model"), prior.get("selected_90"), prior.get("model_names", {}).get("all"))
             if n]
    if not names:
        raise KeyError(f"chapter {BENCHMARKS}'s results name no best model (extra['best_model']): re-run {BENCHMARKS}")
    out["13"] = {"about": ABOUT["13"], "models": _models_of(names), "chapter": BENCHMARKS}
    return out


def _mark_subjects(table: pd.DataFrame, subjects: dict) -> pd.Series:
    """Per row: does it measure the model its claim is about? Rows already marked (computed claims) keep theirs."""
    out = []
    for claim, model, given in zip(table["claim"], table["model"], table["subject"]):
        if isinstance(given, (bool, np.bool_)):
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
            continue
        if measured[i]:
            seen[key[i]] = len(out)
        out.append(dict(row))
    return pd.DataFrame(out, columns=COLUMNS)


def ledger(root=None, *, n_boot: int = 2000) -> pd.DataFrame:
    """Every claim row of the study, one per measurement: chapters' verdicts, cross-chapter and untestable claims.

    Columns :data:`COLUMNS`: ``row`` ("8.4": claim 8's fourth row), the claim, what the report says, the claimed
    range, the measured mean [95% CI], the row's own verdict, the model (reader name) and what it was measured on
    (``split``), the metric and part, the flags ``proxy``, ``own_code``, ``difference`` and ``subject`` (the row
    measures the model the claim is about), the numbers, and the chapter(s) where it is measured.

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
    table["part"] = table["part"].fillna("").astype(str)
    order = sorted(range(len(table)), key=lambda i: claim_sort_key(table.loc[i, "claim"]))
    table = _one_row_per_measurement(table.loc[order].reset_index(drop=True))
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


def _trivial_passes(row, floors: dict, claim: str) -> list[str]:
    """The trivial references whose mean lies in the row's claimed range (rule d); [] where the rule does not apply."""
    metric = row["metric"]
    if claim in REFERENCE_CLAIMS or row["difference"] or not metric:
        return []
    low, high = float(row["low"]), float(row["high"])
    return [name for name, vals in floors.items()
            if metric in vals and low <= _floor_value(vals[metric]) <= high]


def _fmt_range(low: float, high: float) -> str:
    if math.isinf(high):
        return f"> {low:g}"
    if math.isinf(low):
        return f"< {high:g}"
    return f"{low:g} to {high:g}" if low < 0 or high < 0 else f"{low:g}–{high:g}"


def _part_label(part: str) -> str:
    return _PART_LABELS.get(part, metric_label(part)) if part else "the measurement"


def _join(items) -> str:
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else ""


def _combine(kinds: list[str], reasons: set[str]) -> tuple[str, set[str]]:
    """Verdict of rows (or parts) read together: all confirmed -> confirmed; any refuted -> refuted on its side(s);
    else inconclusive with the reasons."""
    sides = {k for k in kinds if k in ("below", "above")}
    if sides:
        return (BOTH if len(sides) == 2 else BELOW if sides == {"below"} else ABOVE), set()
    if kinds and all(k == "confirmed" for k in kinds):
        return CONFIRMED, set()
    return INCONCLUSIVE, reasons or {STRADDLES}


def _with_reasons(verdict: str, reasons: set[str]) -> str:
    order = (STRADDLES, SELECTION, TRIVIAL, OWN_CODE, PROXY_ONLY)
    return f"{verdict} ({'; '.join(r for r in order if r in reasons)})" if verdict == INCONCLUSIVE else verdict


def _split_words(split: str) -> str:
    return {"test": "the test trials", "validation": "the validation trials", "training": "the training trials",
            "all training trials": "all training trials", "data file": "the data file", "formula": "arithmetic",
            "count": "a count"}[split]


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
        reference passes too)"; "untestable with this data"); ``rows`` the ids of the rows it rests on; ``decided_by``
        one sentence saying how; ``report says`` (short), ``models`` and ``chapters`` of the deciding rows, ``parts``
        (each part's verdict), ``contradiction`` (which rows disagreed and how that was resolved; "" if none) and
        ``roles`` (what each row of the claim counted as).
    """
    out = {}
    for claim in dict.fromkeys(table["claim"]):
        rows = table[table["claim"] == claim]
        roles, n_proxy = {}, int(rows["proxy"].sum())
        for _, r in rows.iterrows():
            if r["proxy"]:
                roles[r["row"]] = "proxy: shown, never counts"
            elif r["own_code"]:
                roles[r["row"]] = "measures this study's own code: not evidence"
            elif _kind(r["verdict"]) == "untestable":
                roles[r["row"]] = "not measurable with this data"
        counted = rows[[r not in roles for r in rows["row"]]]
        base = {"report says": CLAIM_TEXTS.get(claim, UNTESTABLE_TEXTS.get(claim, str(rows["report says"].iloc[0]))),
                "parts": {}, "contradiction": "", "roles": roles}
        proxies = (f"; its {n_proxy} proxy row{'s are' if n_proxy != 1 else ' is'} shown and never "
                   f"count{'' if n_proxy != 1 else 's'}" if n_proxy else "")
        if counted.empty:
            own = rows[rows["own_code"]]
            untest = rows[[_kind(v) == "untestable" and not p for v, p in zip(rows["verdict"], rows["proxy"])]]
            if len(untest):
                why = str(untest["measured mean [95% CI]"].iloc[0]).removeprefix("not measurable: ")
                need = re.search(r"\(needs (.*)\)$", str(untest["verdict"].iloc[0]))
                out[claim] = {**base, "verdict": NOT_TESTABLE, "rows": list(untest["row"]),
                              "models": [], "chapters": [CONCLUSIONS],
                              "decided_by": f"No measurement on this data can test it: {why}"
                                            + (f"; it needs {need.group(1)}" if need else "") + proxies + "."}
            elif len(own):
                need = OWN_CODE_NEEDS.get(claim, "a measurement of the report's own code")
                out[claim] = {**base, "verdict": _with_reasons(INCONCLUSIVE, {OWN_CODE}), "rows": list(own["row"]),
                              "models": sorted(set(own["model"])), "chapters": _chapters(own),
                              "decided_by": "Its rows measure this study's own code "
                                            f"({_join(sorted(set(own['model'])))}), not the report's pipeline, so they "
                                            f"are not evidence; testing the claim needs {need}" + proxies + "."}
            else:
                out[claim] = {**base, "verdict": _with_reasons(INCONCLUSIVE, {PROXY_ONLY}), "rows": list(rows["row"]),
                              "models": sorted(set(rows["model"])), "chapters": _chapters(rows),
                              "decided_by": "Only proxy rows measure it, and proxies never count."}
            continue
        out[claim] = {**base, **_decide(claim, counted, floors, roles, proxies)}
    return out


def _chapters(rows: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(c for cs in rows["chapter"] for c in str(cs).split(", ")))


def _effective(row, floors: dict, claim: str) -> tuple[str, list[str]]:
    """A counted row's kind after rule (d): ("void", [references passing]) for a confirmation a trivial reference
    would also earn, else (kind, [])."""
    kind = _kind(row["verdict"])
    passes = _trivial_passes(row, floors, claim) if kind == "confirmed" else []
    return ("void", passes) if passes else (kind, [])


def _side(kind_or_verdict: str) -> str:
    """confirmed / below / above / inconclusive, for a row kind or a verdict."""
    return {"confirmed": "confirmed", CONFIRMED: "confirmed", "below": "below", BELOW: "below", "above": "above",
            ABOVE: "above"}.get(kind_or_verdict, "inconclusive")


def _row_text(eff: tuple[str, list]) -> str:
    k, passes = eff
    return {"confirmed": "confirmed", "below": "refuted below", "above": "refuted above",
            "inconclusive": "inconclusive", "void": f"confirmed, but {_join(passes)} passes too"}[k]


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
        k, passes = eff[i]
        roles[i] = "decides" + (f"; void as a confirmation: {_join(passes)} also "
                                f"{'lies' if len(passes) == 1 else 'lie'} in the range" if k == "void" else "")
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
        text = (f"confirmed, but {_join(voids)} also {'lies' if len(voids) == 1 else 'lie'} in "
                f"{_fmt_range(low, high)}: {text}")
    return {"verdict": verdict, "reasons": reasons, "rows": decisive, "text": text, "differing": differing,
            "why": why, "tied": len({_side(k) for k in kinds}) > 1}


def _decide(claim: str, counted: pd.DataFrame, floors: dict, roles: dict, proxies: str) -> dict:
    """The verdict of a claim from its counted rows: each part by :func:`_decide_part`, then rule (e)."""
    part_of = counted["part"].where(counted["part"].astype(bool), counted["metric"]).astype(str)
    parts = {p: _decide_part(claim, counted[part_of == p], floors, roles) for p in dict.fromkeys(part_of)}
    sides = [s for d in parts.values()
             for s in (("below", "above") if d["verdict"] == BOTH else (_side(d["verdict"]),))]
    verdict, reasons = _combine(sides, set().union(*(d["reasons"] for d in parts.values())))
    rows = [i for d in parts.values() for i in d["rows"]]
    dec = counted[counted["row"].isin(rows)]
    models = list(dict.fromkeys(dec["model"].astype(str)))
    splits = list(dict.fromkeys(dec["split"].astype(str)))
    single = len(parts) == 1

    def label(p: str) -> str:
        return "" if single else _part_label(p) + " "

    if verdict == CONFIRMED and not single:
        body = "every part confirmed"
    else:
        body = "; ".join(f"{label(p)}{d['text']}" for p, d in parts.items())
    why = set().union(*(d["why"] for d in parts.values()))
    decided_by = f"Decided on {_join(models)} ({_join(_split_words(s) for s in splits)}): {body}"
    if why:
        decided_by += "; rows that disagree are weaker evidence (" + _join(sorted(why)) + ")"
    decided_by += proxies + "."
    # the contradiction, said once per disagreeing model and trials, with the parts it concerns
    differing: dict[tuple, list[str]] = {}
    for p, d in parts.items():
        for entry in d["differing"]:
            differing.setdefault(entry, []).append(_part_label(p))
    clauses = [f"{model} on {split}: {text}" + ("" if single else f" ({_join(ps)})")
               for (model, split, text), ps in differing.items()]
    tied = [_part_label(p) for p, d in parts.items() if d["tied"]]
    if tied:
        clauses.append("rows of equal strength disagree" + ("" if single else f" on {_join(tied)}")
                       + " and are read together (all must confirm)")
    contradiction = ""
    if clauses:
        rests = []
        if any(w.startswith("the test trials") for w in why):
            rests.append("the test trials")
        if "the model the claim is about over other models" in why:
            about = ABOUT.get(claim)
            rests.append(f"the model the claim is about ({about}: {_join(models)})" if about
                         else f"the model the claim is about, {_join(models)}")
        contradiction = "; ".join(clauses) + (f"; the verdict rests on {_join(rests)}" if rests else "")
    return {"verdict": _with_reasons(verdict, reasons), "rows": rows, "decided_by": decided_by,
            "models": models, "splits": splits, "chapters": _chapters(dec),
            "parts": {_part_label(p): _with_reasons(d["verdict"], d["reasons"]) for p, d in parts.items()},
            "contradiction": contradiction}


def annotate(table: pd.DataFrame, verdicts: dict) -> pd.DataFrame:
    """``table`` with a column "counts as": what each row counted as in its claim's verdict (decides, agrees,
    overruled, proxy, own code, ...)."""
    roles = {row: role for v in verdicts.values() for row, role in v["roles"].items()}
    return table.assign(**{"counts as": table["row"].map(roles).fillna("")})


def verdict_counts(verdicts: dict) -> dict[str, int]:
    """Claims by kind of verdict (:data:`VERDICT_KINDS`); the counts add up to the number of claims.

    ``verdicts`` is :func:`claim_verdicts`'s output; every inconclusive verdict counts as "inconclusive" whatever its
    reason, every untestable one as "untestable".
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


def summary_prose(verdicts: dict, *, n_rows: int | None = None) -> str:
    """The ledger's answer in sentences, counting claims (not rows): how many are confirmed, refuted on each side,
    inconclusive (and why) and untestable, naming the claims."""
    c = verdict_counts(verdicts)
    n = sum(c.values())

    def named(prefix: str) -> str:
        ids = _claims_of(verdicts, prefix)
        return f" (claim{'s' * (len(ids) != 1)} {_join(ids)})" if ids else ""

    reasons = {}
    for claim, v in verdicts.items():
        m = re.match(r"inconclusive \((.*)\)$", v["verdict"])
        for reason in (m.group(1).split("; ") if m else []):
            reasons.setdefault(reason, []).append(claim)
    why = "; ".join(f"{reason}: {_join(ids)}" for reason, ids in reasons.items())
    refuted = c[BELOW] + c[ABOVE] + c[BOTH]
    rows = f", measured by {n_rows} rows," if n_rows else ""
    return (f"Of the report's {n} checkable claims{rows} {c[CONFIRMED]} {'is' if c[CONFIRMED] == 1 else 'are'} "
            f"confirmed{named(CONFIRMED)} and {refuted} refuted: {c[BELOW]} below the claim{named(BELOW)}, "
            f"{c[ABOVE]} above it{named(ABOVE)} and {c[BOTH]} on both sides, one part below and another above"
            f"{named(BOTH)}. {c[INCONCLUSIVE]} {'is' if c[INCONCLUSIVE] == 1 else 'are'} inconclusive"
            + (f" ({why})" if why else "") + f", and {c['untestable']} cannot be tested with this data"
            f"{named('untestable')}. Each claim has one verdict from its rows, by the rule stated on this page; "
            "a row counts once, and proxies, measurements of the study's own code and confirmations that a trivial "
            "reference would also earn do not make a claim confirmed.")


def claim_table(verdicts: dict) -> pd.DataFrame:
    """One row per claim: what the report says (short), the verdict, the model(s) and trials it rests on, and the
    chapter(s) (file names; :func:`claim_table_markdown` links them by title)."""
    rows = [{"claim": c, "report says": v["report says"], "verdict": v["verdict"],
             "rests on": _rests_on(v), "chapter": ", ".join(v["chapters"])} for c, v in verdicts.items()]
    return pd.DataFrame(rows).set_index("claim")


def _rests_on(v: dict) -> str:
    if not v.get("models"):
        return "—"
    splits = v.get("splits", [])
    return _join(v["models"]) + (f" ({_join(_split_words(s) for s in splits)})" if splits else "")


def claim_table_markdown(verdicts: dict, *, here: str = CONCLUSIONS) -> str:
    """:func:`claim_table` as a MyST Markdown table whose chapter column links each chapter by its title
    (``{doc}`02_unet_fix```); the page itself (``here``) reads "this page"."""
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| claim | the report says | verdict | rests on | chapter |", "| --- | --- | --- | --- | --- |"]
    for c, v in verdicts.items():
        links = ", ".join("this page" if ch == here else f"{{doc}}`{ch}`" for ch in v["chapters"])
        lines.append(f"| {c} | {cell(v['report says'])} | **{cell(v['verdict'])}** | {cell(_rests_on(v))} | {links} |")
    return "\n".join(lines)


def contradictions(verdicts: dict) -> list[str]:
    """One Markdown line per claim whose rows disagreed: which rows, and the verdict taken on the stronger evidence."""
    return [f"**Claim {c}** ({v['report says']}): {v['contradiction']}. Verdict: *{v['verdict']}*."
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
    ("image prior (beyond the report)", "07_image_prior", "limit90"),
)


def trajectory(root=None, *, metrics=("psnr", "ssim", "pixel_r")) -> pd.DataFrame:
    """Measured test metrics of each chapter's validation-selected model beside the report's expected range.

    One row per stage of :data:`TRAJECTORY` (chapter 01: the reproduced original; chapter 07: its selected model with
    the map refitted on all training trials, compared with the report's "best possible with 90 samples"); columns
    ``<metric>``, ``<metric>_lo``, ``<metric>_hi`` (measured mean and 95% CI) and ``<metric>_expected`` (the report's
    range, quoted).
    """
    from .claims import REPORT_EXPECTATIONS

    rows = []
    for stage, chapter, phase in TRAJECTORY:
        res = _load(chapter, root)
        if chapter == "01_diagnostics":
            name, entry = "original", res["extra"]["summary"]["original"]
        elif chapter == PRIOR and res["extra"].get("selected_90") in res["extra"].get("summary", {}):
            name = res["extra"]["selected_90"]
            entry = res["extra"]["summary"][name]
        else:
            name, entry = _selected(res)
        row = {"stage": stage, "chapter": chapter, "model": name, "phase": phase}
        for m in metrics:
            p = _pooled(entry, m)
            row.update({m: p["mean"], f"{m}_lo": p["ci_low"], f"{m}_hi": p["ci_high"],
                        f"{m}_expected": REPORT_EXPECTATIONS[phase][m]})
        rows.append(row)
    return pd.DataFrame(rows)


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
    a baseline is found by its reader name (:func:`ldm_core.names.model_label`) and the trial count in its key, never
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


# Baselines of chapters 07 / 08 that learn from the unpaired prior images (ldm_core.prior_study.baseline_decoders:
# a plain autoencoder trained on them, then a ridge map to its latent).
USES_UNPAIRED_IMAGES = ("autoencoder + ridge",)


def final_model(root=None) -> dict:
    """What the study's final model is, from chapters 07 (contract C5) and 08.

    Returns
    -------
    dict
        ``name`` (chapter 08's best model, named for what it computes), ``is_ldm`` (True only when it samples with
        diffusion), ``model_names`` (chapter 07's ``{"fit", "all"}``), ``uses_unpaired_images`` (it is chapter 07's
        image-prior decoder), ``test`` (its test metrics, seeds pooled),
        ``baseline`` (the best baseline chosen on validation), ``baseline_uses_unpaired_images``, ``paired``
        (``{metric: paired comparison}`` final minus baseline on the test images) and ``n_prior_images``.

    Raises
    ------
    KeyError
        If chapter 07's results lack ``model_names`` / ``selected_is_ldm`` (re-run chapter 07), or chapter 08's lack
        the best model, its baseline comparison, or whether the best model samples with diffusion (re-run 08).
    """
    x07, x08 = _load(PRIOR, root).get("extra", {}), _load(BENCHMARKS, root).get("extra", {})
    missing = [k for k in ("model_names", "selected_is_ldm") if k not in x07]
    if missing:
        raise KeyError(f"chapter {PRIOR}'s results lack extra{missing} (contract C5: the selected decoder's names and "
                       f"whether it samples with diffusion): re-run {PRIOR}")
    missing = [k for k in ("best_model", "best_model_test", "best_baseline_val", "paired_test", "paired_best")
               if k not in x08]
    if missing:
        raise KeyError(f"chapter {BENCHMARKS}'s results lack extra{missing}: re-run {BENCHMARKS}")
    name = x08["best_model"]
    from_prior = any(str(n) in str(name) for n in x07["model_names"].values())
    if "best_model_is_ldm" in x08:
        is_ldm = bool(x08["best_model_is_ldm"])
    elif from_prior:
        is_ldm = bool(x07["selected_is_ldm"])
    else:
        raise KeyError(f"chapter {BENCHMARKS}'s best model {name!r} is none of chapter {PRIOR}'s models "
                       f"{sorted(x07['model_names'].values())} and its results do not say whether it samples with "
                       f"diffusion (extra['best_model_is_ldm']): re-run {BENCHMARKS}")
    if x08["paired_best"] not in x08["paired_test"]:
        raise KeyError(f"chapter {BENCHMARKS}'s paired_test holds no comparison {x08['paired_best']!r}: re-run "
                       f"{BENCHMARKS}")
    base = x08["best_baseline_val"]
    return {"name": name, "is_ldm": is_ldm, "model_names": dict(x07["model_names"]), "test": x08["best_model_test"],
            "uses_unpaired_images": from_prior, "baseline": base,
            "baseline_uses_unpaired_images": base in USES_UNPAIRED_IMAGES,
            "paired": x08["paired_test"][x08["paired_best"]],
            "n_prior_images": x07.get("prior_images", {}).get("n_images")}


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
