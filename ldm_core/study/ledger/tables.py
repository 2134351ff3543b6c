"""What the pages show of the verdicts: counts, the answer's prose, the per-claim table, contradictions.
"""
from __future__ import annotations

import re

import pandas as pd

from ..names import join_words
from .base import (ABOVE, BELOW, BOTH, CONCLUSIONS, CONFIRMED, INCONCLUSIVE, REASON_WORDS, TARGETS, VERDICT_KINDS,
                   chapter_ref)
from .verdicts import _split_words


def annotate(table: pd.DataFrame, verdicts: dict) -> pd.DataFrame:
    """``table`` with a column "counts as": what each row counted as in its claim's verdict (decides, agrees,
    overruled, proxy, own code, beyond the claim's premise, void as a confirmation, ...), and "shown verdict": what
    every page shows for the row (:func:`ldm_core.study.claims.shown_verdict`: a proxy row, or a row beyond its claim's
    premise, shows that instead of its verdict)."""
    from ..claims import shown_verdict

    roles = {row: role for v in verdicts.values() for row, role in v["roles"].items()}
    shown = [shown_verdict(r) for r in table.to_dict("records")]
    return table.assign(**{"counts as": table["row"].map(roles).fillna(""), "shown verdict": shown})


def verdict_counts(verdicts: dict) -> dict[str, int]:
    """Claims by kind of verdict (:data:`VERDICT_KINDS`); the counts add up to the number of claims.

    ``verdicts`` is :func:`ldm_core.study.ledger.claim_verdicts`'s output; every inconclusive verdict counts as
    "inconclusive" whatever its reason, every untestable one as "untestable", claim 16's as :data:`TARGETS`.
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
