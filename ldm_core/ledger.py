"""The claims ledger: every quantitative claim of the report against the study's measurements.

The ledger is assembled from the chapters' results files, never from typed numbers:

- each chapter stores the verdict rows it computed (``extra["verdicts"]`` of its ``metrics.json``);
  :func:`collect_verdicts` gathers them, tagged with the chapter;
- :func:`computed_claims` adds the claims that need numbers from several chapters or are arithmetic
  (claims 2, 11a, 12, 16), each verdict computed by :func:`ldm_core.claims.verdict`;
- :func:`untestable_claims` lists what this data cannot test, with the reason and what would be needed.

:func:`ledger` joins the three, ordered by claim number, and keeps each measurement once: two rows of one claim
with the same claimed range and the same measured mean and CI (the same model scored in two chapters) become one row
naming both chapters.
:func:`verdict_counts` counts the verdicts by kind; :func:`summary_prose` writes the ledger's summary from its rows.
:func:`trajectory` gives each phase's validation-selected model beside the report's expected range, and
:func:`headline_rows` the executive summary's table (from the benchmark chapter).
"""
from __future__ import annotations

import math
import re

import pandas as pd

from .claims import claim_row, exact
from .metrics import paired_comparison
from .names import model_label
from .results import load_results, results_dir

__all__ = ["collect_verdicts", "computed_claims", "untestable_claims", "ledger", "verdict_counts", "summary_prose",
           "trajectory", "headline_rows", "claim_sort_key", "LEDGER_CHAPTERS", "TRAJECTORY", "UNTESTABLE"]

# Chapters whose verdict rows enter the ledger, in book order.
LEDGER_CHAPTERS = ("00_data_and_metrics", "01_diagnostics", "02_unet_fix", "03_loss_function", "04_fmri_encoder",
                   "05_conditioning_vae", "06_augmentation_multiscale", "07_image_prior", "08_benchmarks")
CONCLUSIONS = "09_conclusions"
BENCHMARKS = "08_benchmarks"

COLUMNS = ["claim", "report says", "claimed range", "measured mean [95% CI]", "verdict", "model", "chapter"]


def claim_sort_key(claim: str) -> tuple[int, str]:
    """'11b' -> (11, 'b'): claims sort by number, then by suffix; rows without a number last."""
    m = re.match(r"(\d+)(.*)", str(claim))
    return (int(m.group(1)), m.group(2)) if m else (10**6, str(claim))


def _load(chapter: str, root) -> dict:
    return load_results(results_dir(chapter, root))[0]


def collect_verdicts(root=None, *, chapters=LEDGER_CHAPTERS) -> pd.DataFrame:
    """Verdict rows stored by the chapters (``extra["verdicts"]``), one row each, with a ``chapter`` column.

    Raises
    ------
    FileNotFoundError
        If a chapter's results are missing (the message names the chapter to run).
    """
    rows = []
    for ch in chapters:
        for r in _load(ch, root).get("extra", {}).get("verdicts", []):
            rows.append({**{k: r.get(k, "") for k in COLUMNS}, "chapter": ch})
    return pd.DataFrame(rows, columns=COLUMNS)


def _pooled(summary_entry: dict, metric: str) -> dict:
    return summary_entry["test"][metric]


def _row(claim: str, text: str, result: dict, *, low=-math.inf, high=math.inf, digits=3, model: str, chapter: str) -> dict:
    return {**claim_row(claim, text, result, low=low, high=high, digits=digits), "model": model, "chapter": chapter}


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

    Reading of each claim (the report gives no tolerance; ours is stated in the row): claim 11a compares chapter 02's
    U-Net pipeline with the original model on the same test images; claim 12 takes the validation-selected model
    of chapter 03 (week 1: U-Net, perceptual loss, sweep), 04 (week 2: encoder with dropout, larger VAE) and
    06 (weeks 3–4: augmentation); claim 16 takes the study's best model (chapter 08's ``best_model_test``).
    """
    ch01, ch02 = (_load(c, root) for c in ("01_diagnostics", "02_unet_fix"))
    rows = [
        _row("2", "PSNR 5.49 dB corresponds to MSE 0.282 (arithmetic: 10·log10(1/0.282))",
             exact(10 * math.log10(1 / 0.282)), low=5.44, high=5.54, digits=2, model="formula", chapter=CONCLUSIONS),
        _row("2", "the original's MSE is 0.282 (measured MSE of the reproduced original, ±0.03)",
             _pooled(ch01["extra"]["summary"]["original"], "mse"), low=0.252, high=0.312, model="original (reproduced)",
             chapter="01_diagnostics"),
    ]
    s02 = ch02["extra"]["summary"]
    rows.append(_row("11a", "priority 1 (architecture) gives +5–10 dB: U-Net pipeline minus original, test PSNR",
                     paired_comparison(_pooled(s02["U-Net pipeline"], "psnr")["per_image"],
                                       _pooled(s02["original"], "psnr")["per_image"], n_boot=n_boot),
                     low=5, high=10, digits=2, model="U-Net pipeline − original", chapter="02_unet_fix"))
    for chapter, text, low, high in (
        ("03_loss_function", "week 1 (U-Net, perceptual loss, sweep): 5.5 → 10–12 dB", 10, 12),
        ("04_fmri_encoder", "week 2 (encoder with dropout, VAE 8×8×8): 12 → 15–18 dB", 15, 18),
        ("06_augmentation_multiscale", "weeks 3–4 (progressive training, augmentation): 18 → 20+ dB "
                                       "(the report adds 'with more data', which we do not have)", 20, math.inf),
    ):
        name, entry = _selected(_load(chapter, root))
        rows.append(_row("12", text, _pooled(entry, "psnr"), low=low, high=high, digits=2,
                         model=f"{name} (validation-selected)", chapter=chapter))
    bench = _load(BENCHMARKS, root).get("extra", {})
    if "best_model_test" not in bench:
        raise KeyError(f"chapter {BENCHMARKS}'s results hold no extra['best_model_test']: re-run {BENCHMARKS}")
    best, best_name = bench["best_model_test"], bench.get("best_model", "best model")
    for horizon, p_min, s_min in (("short-term", 10, 0.1), ("medium-term", 15, 0.3), ("long-term", 20, 0.5)):
        rows.append(_row("16", f"{horizon} success: PSNR > {p_min} dB", best["psnr"], low=p_min, digits=2,
                         model=best_name, chapter=BENCHMARKS))
        rows.append(_row("16", f"{horizon} success: SSIM > {s_min}", best["ssim"], low=s_min, model=best_name,
                         chapter=BENCHMARKS))
    return pd.DataFrame(rows, columns=COLUMNS)


# Claims this dataset cannot test: (claim, what the report says, why not, what would be needed).
UNTESTABLE = (
    ("11c", "priority 3 (data) gives +10 dB",
     "needs more trials than the 90 recorded; the learning curves of chapter 08 cover 10 to 72 fitting trials only",
     "a larger digit fMRI set (e.g. thousands of trials) from the same paradigm"),
    ("14", "brain decoding needs > 1,000 samples (good 2,000–5,000; excellent 10,000+)",
     "no paired dataset of that size here; chapter 08's learning curves show what 10–72 paired trials give, and "
     "chapter 07 what 1,969 unpaired images give", "the same experiment with 1,000+ paired trials"),
    ("15", "literature: basic CNN 15–20 dB / SSIM 0.3–0.5 with 1,000+ samples; advanced GAN 20–25 dB / 0.5–0.7",
     "a statement about other studies and datasets, not about digit69; chapter 08 quotes the published "
     "digit69 numbers, as reported", "the cited studies' own data and metric definitions"),
    ("—", "temporal modelling of the fMRI (phase 1.3) and temporal jittering (phase 3)",
     "the file holds one pattern per trial, with no time series", "the voxel time series of each trial"),
    ("—", "anatomy-aware (spatial) attention over voxels (phase 1.3)",
     "the file has no voxel coordinates; the attention encoder groups voxels in file order only",
     "voxel coordinates or a cortical surface mapping"),
    ("—", "cross-subject adaptation (phase 3)", "digit69 has one subject", "recordings of several subjects"),
)


def untestable_claims() -> pd.DataFrame:
    """Claims and proposals this data cannot test, with the reason and the data that would be needed."""
    rows = [{"claim": c, "report says": text, "claimed range": "", "measured mean [95% CI]": f"not measurable: {why}",
             "verdict": f"untestable with this data (needs {need})", "model": "", "chapter": CONCLUSIONS}
            for c, text, why, need in UNTESTABLE]
    return pd.DataFrame(rows, columns=COLUMNS)


def _one_row_per_measurement(table: pd.DataFrame) -> pd.DataFrame:
    """Merge rows of the same claim with the same measured value and CI (one measurement shown in two chapters)."""
    if table.empty:
        return table
    key = (table["claim"].astype(str) + "|" + table["claimed range"].astype(str) + "|"
           + table["measured mean [95% CI]"].astype(str))
    measured = ~table["measured mean [95% CI]"].astype(str).str.startswith("not measurable")
    out, seen = [], {}
    for i, row in table.iterrows():
        if measured[i] and key[i] in seen:
            j = seen[key[i]]
            if row["chapter"] not in out[j]["chapter"]:
                out[j]["chapter"] = f"{out[j]['chapter']}, {row['chapter']}"
            continue
        if measured[i]:
            seen[key[i]] = len(out)
        out.append(dict(row))
    return pd.DataFrame(out, columns=COLUMNS)


def ledger(root=None, *, n_boot: int = 2000) -> pd.DataFrame:
    """Every claim row of the study, one per measurement: chapters' verdicts, cross-chapter and untestable claims."""
    table = pd.concat([collect_verdicts(root), computed_claims(root, n_boot=n_boot), untestable_claims()],
                      ignore_index=True)
    order = sorted(range(len(table)), key=lambda i: claim_sort_key(table.loc[i, "claim"]))
    table = _one_row_per_measurement(table.loc[order].reset_index(drop=True))
    table["model"] = table["model"].map(lambda m: model_label(m) if isinstance(m, str) else m)
    return table.reset_index(drop=True)


def verdict_counts(table: pd.DataFrame) -> dict[str, int]:
    """Rows by kind of verdict: confirmed, refuted (below / above the claim), inconclusive, untestable."""
    kinds = {"confirmed": 0, "refuted (below the claim)": 0, "refuted (above the claim)": 0, "inconclusive": 0,
             "untestable": 0}
    for v in table["verdict"].astype(str):
        k = next((k for k in kinds if v.startswith(k)), None)
        if k is None and v.startswith("untestable"):
            k = "untestable"
        if k is not None:
            kinds[k] += 1
    return kinds


def summary_prose(table: pd.DataFrame) -> str:
    """The ledger's summary in sentences, written from its rows (counts, and the claims refuted on each side)."""
    c = verdict_counts(table)
    below = table[table["verdict"].astype(str).str.startswith("refuted (below")]
    above = table[table["verdict"].astype(str).str.startswith("refuted (above")]

    def claims_of(rows) -> str:
        nums = sorted({str(x) for x in rows["claim"]}, key=claim_sort_key)
        return ", ".join(nums) if nums else "none"

    n_measured = len(table) - c["untestable"]
    return (f"The ledger holds {len(table)} rows, one per measurement: {n_measured} measured and {c['untestable']} that "
            f"this data cannot test. Of the measured rows, {c['confirmed']} confirm the report, "
            f"{c['refuted (below the claim)'] + c['refuted (above the claim)']} refute it and {c['inconclusive']} are "
            f"inconclusive (the 95% CI straddles the claimed range). The refutations fall on both sides: "
            f"{c['refuted (below the claim)']} measured below the claim (claims {claims_of(below)}) -- the report "
            f"expected more -- and {c['refuted (above the claim)']} above it (claims {claims_of(above)}) -- the "
            "report expected less, or a floor lower than it is.")


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
    the map refitted on 90 trials, compared with the report's "best possible with 90 samples"); columns ``<metric>``,
    ``<metric>_lo``, ``<metric>_hi`` (measured mean and 95% CI) and ``<metric>_expected`` (the report's range, quoted).
    """
    from .claims import REPORT_EXPECTATIONS

    rows = []
    for stage, chapter, phase in TRAJECTORY:
        res = _load(chapter, root)
        if chapter == "01_diagnostics":
            name, entry = "original", res["extra"]["summary"]["original"]
        elif chapter == "07_image_prior" and res["extra"].get("selected_90") in res["extra"].get("summary", {}):
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
