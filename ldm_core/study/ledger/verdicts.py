"""One verdict per claim (:func:`claim_verdicts`) by the rule of :data:`ldm_core.study.ledger.RULE`, against chapter
00's trivial references.
"""
from __future__ import annotations

import re

import pandas as pd

from ..claims import fmt_range
from ..names import join_words, metric_label, model_label
from .base import (ABOUT, ABOVE, BELOW, BENCHMARKS, BOTH, BOUND_CLAIM, CLAIM_TEXTS, CONCLUSIONS, CONFIRMED, DATA,
                   INCONCLUSIVE, NOT_TESTABLE, OWN_CODE, OWN_CODE_NEEDS, PREMISE, PROXY_ONLY, REFERENCE_CLAIMS,
                   REPRODUCTION_CLAIMS, SELECTION, SPLIT_RANK, STRADDLES, TARGETS, TARGET_CLAIM, TRIVIAL,
                   TRIVIAL_REFERENCES, _PART_LABELS, _load)
from .rows import UNTESTABLE_TEXTS


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
    """One verdict per claim of the ledger, by the rule of :data:`ldm_core.study.ledger.RULE`.

    Parameters
    ----------
    table : DataFrame
        :func:`ldm_core.study.ledger.ledger`'s table (columns :data:`ldm_core.study.ledger.base.COLUMNS`).
    floors : dict
        The trivial references, ``{name: {metric: mean or {"mean": ...}}}`` (:func:`trivial_references`).

    Returns
    -------
    dict
        ``{claim: {"verdict", "rows", "decided_by", ...}}`` in ledger order: ``verdict`` is one of
        :data:`ldm_core.study.ledger.VERDICT_KINDS` (an inconclusive one with its reasons in brackets, e.g.
        "inconclusive (a trivial
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


def _bound_part(e: pd.DataFrame, part: str, low: float, high: float, floors: dict) -> dict:
    """Rule (g) on one part of claim 13, from its decoders within the premise ``e``: verdict, reasons, rows, text."""
    rng = _fmt_range(low, high)
    if e.empty:
        return {"verdict": INCONCLUSIVE, "reasons": {PREMISE}, "rows": [],
                "text": f"no decoder within the claim's premise measures {_part_label(part)}"}
    above = e[e["ci_low"] > high]
    top, best = e.loc[e["ci_high"].idxmax()], e.loc[e["mean"].idxmax()]  # the highest CI, the highest mean
    if len(above):
        return {"verdict": ABOVE, "reasons": set(), "rows": list(above["row"]),
                "text": f"{join_words(above['model'])} {'lies' if len(above) == 1 else 'lie'} wholly above {rng}"}
    if top["ci_high"] < low:
        return {"verdict": BELOW, "reasons": set(), "rows": [top["row"]],
                "text": f"the best of them, {top['model']}, lies wholly below {rng}"}
    kind, passes = _effective(best, floors, BOUND_CLAIM)
    reaching = e[e["ci_high"] > high]
    if kind == "confirmed" and reaching.empty:
        return {"verdict": CONFIRMED, "reasons": set(), "rows": [best["row"]],
                "text": f"the best of them, {best['model']}, lies in {rng} and none reaches above it"}
    if kind == "void" and reaching.empty:
        return {"verdict": INCONCLUSIVE, "reasons": {TRIVIAL}, "rows": [best["row"]],
                "text": f"the best of them, {best['model']}, lies in {rng}, but {join_words(passes)} also "
                        f"{'lies' if len(passes) == 1 else 'lie'} there"}
    return {"verdict": INCONCLUSIVE, "reasons": {STRADDLES}, "rows": [best["row"]],
            "text": f"the best of them, {best['model']}, has a 95% CI that straddles {rng}"}


def _decide_bound(rows: pd.DataFrame, floors: dict, roles: dict) -> dict:
    """Claim 13 (rule g): an upper limit on the decoders that learn from the paired trials only, all of them."""
    within, beyond = rows[~rows["premise"].astype(bool)], rows[rows["premise"].astype(bool)]
    for _, r in beyond.iterrows():
        roles[r["row"]] = f"beyond the claim's premise ({r['premise']}): shown, never decides"
    part_of = _part_of(rows)
    parts, texts, differing = {}, [], []
    for p in dict.fromkeys(part_of):
        e = within[part_of[within.index] == p]
        low, high = float(rows.loc[part_of == p, "low"].iloc[0]), float(rows.loc[part_of == p, "high"].iloc[0])
        d = _bound_part(e, p, low, high, floors)
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
