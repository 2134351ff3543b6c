"""The ledger's rows: the verdict rows each chapter stored (:func:`collect_verdicts`), the claims computed across
chapters (:func:`computed_claims`), the bound of claim 13 and what this data cannot test (:func:`untestable_claims`).
"""
from __future__ import annotations

import math

import pandas as pd

from ..claims import ROW_KEYS, SPLITS, claim_row, exact, paired_claim_row
from ...metrics import paired_comparison
from .base import BENCHMARKS, COLUMNS, CONCLUSIONS, LEDGER_CHAPTERS, PRIOR, TARGET_CLAIM, _CLAIM_ID, _load, data_facts


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
    from ..claims import expectation_rows

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
