"""Compile the regional learning summary for one period from the warehouse.

The summary is the one input to every bulletin of the period: plain, JSON-serialisable,
unsuppressed numbers (suppression is a rendering concern, applied per audience), so it can be
stored beside the bulletins and a rerun can be compared with the last one.

Choices where the brief was silent:
- A notification belongs to the period by `notified_date`, or `aware_date` when that is blank.
- Rapid reviews count when `completed_date` (sent to the Panel) is in the period; practice
  reviews when `decision_date` is.
- Learning themes are dated by the review's `completed_date`: a finding is settled learning once
  its review is complete, whereas `action_due_date` says when the follow-up is due. "to_date"
  counts findings of reviews completed on or before the period end, "period" those completed in
  the period. Findings of reviews not yet complete are not counted.
- Timeliness counts come from the `timeliness` rows with `as_of_date == as_of` (all cases the
  timeliness task judged on that date); `not_applicable` rows are left out.
- Key findings are finding texts of reviews completed in the period, up to three per
  partnership, one per theme in turn, the region's most frequent themes in the period first. Each text is
  screened for personal details (NHS numbers, postcodes, emails, phone numbers, dates) and any
  hit is replaced by "[redacted]" and listed under "redactions" (internal only).
- Only partnerships in the config are counted, so the region's figures are the sum of theirs.
"""
from __future__ import annotations

import re
from datetime import date
from typing import Any

from sqlalchemy import Engine, and_, func, select

from reviews import warehouse as wh
from reviews.config import Config
from reviews.template import NOTIFICATIONS, PRACTICE_REVIEWS, RAPID_REVIEWS

SCHEMA = "regional_learning_summary/1"
STAGES = ("notification", "rapid_review", "lcspr_completion", "publication_notice")
STATUSES = ("met", "late", "open_on_track", "open_at_risk", "open_overdue", "unknown")
NOT_RECORDED = "not_recorded"
KEY_FINDINGS_PER_PARTNERSHIP = 3
REDACTED = "[redacted]"

_THEME_LABELS = {
    "voice_of_child": "Voice of the child",
    "multi_agency_working": "Multi-agency working",
    "extrafamilial_harm": "Extra-familial harm",
    "sudi_safer_sleep": "SUDI and safer sleep",
    "race_ethnicity_culture": "Race, ethnicity and culture",
    "leadership_culture": "Leadership and culture",
    "men_in_childrens_lives": "Men in children's lives",
}

_MONTHS = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*"
# Order matters: emails before postcodes, dates before phone and NHS numbers.
_SCREENS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("postcode", re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b", re.I)),
    (
        "date",
        re.compile(
            rf"\b\d{{1,2}}[/.\-]\d{{1,2}}[/.\-]\d{{2,4}}\b|\b\d{{4}}-\d{{2}}-\d{{2}}\b"
            rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTHS}\s+\d{{4}}\b",
            re.I,
        ),
    ),
    ("nhs_number", re.compile(r"\b\d{3}[ -]?\d{3}[ -]?\d{4}\b")),
    ("phone", re.compile(r"(?:\+44\s?\(?0?\)?\s?|\b0)\d(?:[\s-]?\d){8,9}\b")),
)


def theme_label(code: str) -> str:
    """A reader's name for a theme code ('information_sharing' -> 'Information sharing')."""
    return _THEME_LABELS.get(code) or code.replace("_", " ").capitalize()


def screen_free_text(text: str | None) -> tuple[str, list[str]]:
    """Redact personal details from free text before it can reach a bulletin; say what was hit.

    Dates are all redacted: a date of birth cannot be told from any other date.
    """
    if not text:
        return "", []
    out, kinds = str(text), []
    for kind, pattern in _SCREENS:
        out, n = pattern.subn(REDACTED, out)
        if n:
            kinds.append(kind)
    return out.strip(), kinds


def _in_period(col, start: date, end: date):
    return and_(col >= start, col <= end)


def _categories(codes: tuple[str, ...], seen: set) -> list[str]:
    """Template codes in template order, then anything else found (blank as 'not_recorded')."""
    extra = sorted(str(c) for c in seen if c is not None and c not in codes)
    return list(codes) + extra + ([NOT_RECORDED] if None in seen else [])


def _counts(conn, table, key_col, where, codes: list[str]) -> dict[tuple[str, str | None], int]:
    stmt = (
        select(table.c.partnership_code, key_col, func.count())
        .where(table.c.partnership_code.in_(codes), where)
        .group_by(table.c.partnership_code, key_col)
    )
    return {(p, k): int(n) for p, k, n in conn.execute(stmt)}


def _breakdown(counts: dict, code: str | None, categories: list[str]) -> dict[str, int]:
    """One area's counts by category with a total; code None means the whole region."""
    out = {c: 0 for c in categories}
    for (p, k), n in counts.items():
        if code is None or p == code:
            out[NOT_RECORDED if k is None else str(k)] += n
    out["total"] = sum(out[c] for c in categories)
    return out


def _theme_counts(conn, where, codes: list[str]) -> dict[tuple[str, str], int]:
    lr, pr = wh.learning, wh.practice_reviews
    join = lr.join(pr, and_(lr.c.partnership_code == pr.c.partnership_code, lr.c.review_id == pr.c.review_id))
    stmt = (
        select(lr.c.partnership_code, lr.c.theme, func.count())
        .select_from(join)
        .where(lr.c.partnership_code.in_(codes), lr.c.theme.is_not(None), where)
        .group_by(lr.c.partnership_code, lr.c.theme)
    )
    return {(p, t): int(n) for p, t, n in conn.execute(stmt)}


def _themes(to_date: dict, period: dict, code: str | None) -> list[dict[str, Any]]:
    """Themes with any finding to date, most frequent first (then in the period, then by code)."""
    acc: dict[str, list[int]] = {}
    for idx, counts in enumerate((to_date, period)):
        for (p, t), n in counts.items():
            if code is None or p == code:
                acc.setdefault(t, [0, 0])[idx] += n
    rows = [
        {"theme": t, "label": theme_label(t), "to_date": a, "period": b}
        for t, (a, b) in acc.items()
        if a or b
    ]
    return sorted(rows, key=lambda r: (-r["to_date"], -r["period"], r["theme"]))


def _key_findings(conn, start: date, end: date, codes: list[str], region_period: dict[str, int]):
    lr, pr = wh.learning, wh.practice_reviews
    join = lr.join(pr, and_(lr.c.partnership_code == pr.c.partnership_code, lr.c.review_id == pr.c.review_id))
    stmt = (
        select(lr.c.partnership_code, lr.c.finding_id, lr.c.review_id, lr.c.theme, lr.c.finding, lr.c.recommendation)
        .select_from(join)
        .where(lr.c.partnership_code.in_(codes), _in_period(pr.c.completed_date, start, end))
    )
    rows = sorted(
        (dict(r) for r in conn.execute(stmt).mappings() if (r["finding"] or "").strip()),
        key=lambda r: (r["review_id"], r["finding_id"]),
    )
    # Round-robin over themes (the region's most frequent in the period first), so a partnership's
    # few key findings cover several themes rather than repeat one.
    seen: dict[tuple[str, str | None], int] = {}
    for r in rows:
        k = (r["partnership_code"], r["theme"])
        r["_turn"], seen[k] = seen.get(k, 0), seen.get(k, 0) + 1
    rows.sort(key=lambda r: (r["_turn"], -region_period.get(r["theme"], 0), r["theme"] or "", r["review_id"], r["finding_id"]))
    findings, redactions = [], []
    for code in codes:
        for r in [r for r in rows if r["partnership_code"] == code][:KEY_FINDINGS_PER_PARTNERSHIP]:
            item = {"partnership_code": code, "theme": r["theme"], "theme_label": theme_label(r["theme"] or "")}
            for field in ("finding", "recommendation"):
                item[field], kinds = screen_free_text(r[field])
                if kinds:
                    redactions.append(
                        {"partnership_code": code, "finding_id": r["finding_id"], "field": field, "kinds": kinds}
                    )
            findings.append(item)
    return findings, redactions


def compile_summary(engine: Engine, cfg: Config, period_start: date, period_end: date, as_of: date) -> dict:
    """The period's figures per partnership (config order) and for the region; period_end inclusive."""
    if period_end < period_start:
        raise ValueError(f"period ends ({period_end}) before it starts ({period_start})")
    codes = list(cfg.partnerships)
    nt, rr, pr, tl = wh.notifications, wh.rapid_reviews, wh.practice_reviews, wh.timeliness
    with engine.connect() as conn:
        notif = _counts(
            conn, nt, nt.c.incident_type,
            _in_period(func.coalesce(nt.c.notified_date, nt.c.aware_date), period_start, period_end), codes,
        )
        rapid = _counts(conn, rr, rr.c.outcome, _in_period(rr.c.completed_date, period_start, period_end), codes)
        decided = _counts(
            conn, pr, pr.c.review_type, _in_period(pr.c.decision_date, period_start, period_end), codes
        )
        stmt = (
            select(tl.c.partnership_code, tl.c.stage, tl.c.status, func.count())
            .where(tl.c.partnership_code.in_(codes), tl.c.as_of_date == as_of, tl.c.status.in_(STATUSES))
            .group_by(tl.c.partnership_code, tl.c.stage, tl.c.status)
        )
        timely = {(p, s, st): int(n) for p, s, st, n in conn.execute(stmt)}
        themes_to_date = _theme_counts(conn, pr.c.completed_date <= period_end, codes)
        themes_period = _theme_counts(conn, _in_period(pr.c.completed_date, period_start, period_end), codes)
        region_period: dict[str, int] = {}
        for (_, t), n in themes_period.items():
            region_period[t] = region_period.get(t, 0) + n
        findings, redactions = _key_findings(conn, period_start, period_end, codes, region_period)

    cats = {
        "incident_type": _categories(NOTIFICATIONS.column("incident_type").codes, {k for _, k in notif}),
        "rapid_review_outcome": _categories(RAPID_REVIEWS.column("outcome").codes, {k for _, k in rapid}),
        "review_type": _categories(PRACTICE_REVIEWS.column("review_type").codes, {k for _, k in decided}),
        "timeliness_stage": list(STAGES),
        "timeliness_status": list(STATUSES),
    }

    def area(code: str | None) -> dict[str, Any]:
        timeliness = {}
        for stage in STAGES:
            row = {
                st: sum(n for (p, s, x), n in timely.items() if s == stage and x == st and (code is None or p == code))
                for st in STATUSES
            }
            row["total"] = sum(row.values())
            timeliness[stage] = row
        return {
            "notifications": _breakdown(notif, code, cats["incident_type"]),
            "rapid_reviews_completed": _breakdown(rapid, code, cats["rapid_review_outcome"]),
            "practice_reviews_decided": _breakdown(decided, code, cats["review_type"]),
            "timeliness": timeliness,
            "themes": _themes(themes_to_date, themes_period, code),
        }

    return {
        "schema": SCHEMA,
        "region_name": cfg.region_name,
        "period": {"start": period_start.isoformat(), "end": period_end.isoformat()},
        "as_of": as_of.isoformat(),
        "categories": cats,
        "partnerships": [
            {"code": c, "name": p.name, "ons_code": p.ons_code, **area(c)} for c, p in cfg.partnerships.items()
        ],
        "region": {"name": cfg.region_name, **area(None)},
        "key_findings": findings,
        "redactions": redactions,
        "notes": {
            "notifications": "counted by notified_date, or aware_date when blank",
            "rapid_reviews_completed": "completed_date (sent to the Panel) in the period",
            "practice_reviews_decided": "decision_date in the period",
            "timeliness": "timeliness rows with as_of_date equal to as_of; not_applicable left out",
            "themes": "dated by the review's completed_date: to_date up to the period end, period within it",
        },
    }
