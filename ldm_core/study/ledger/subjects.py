"""The model each claim is about (:func:`subject_models`), one row per measurement, the premise marks, and the joined
table :func:`ledger`.
"""
from __future__ import annotations


import numpy as np
import pandas as pd

from ..names import model_label
from .base import ABOUT, BOUND_CLAIM, COLUMNS, PRIOR, _load, claim_sort_key, data_facts
from .rows import _premise, _selected, collect_verdicts, computed_claims, headline_decoders, untestable_claims


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
