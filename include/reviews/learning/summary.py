"""Compile the regional learning summary for one period from the warehouse.

The summary is the one input to every bulletin of the period: plain, JSON-serialisable,
unsuppressed numbers (suppression is a rendering concern, applied per audience), so it can be
stored beside the bulletins (internally) and a rerun can be compared with the last one.

Choices where the brief was silent:
- A period is a calendar month or quarter (config `summary.period`); the trend covers the last
  `summary.trend_periods` (default 4) periods ending with this one.
- A notification belongs to the period by `notified_date`, or `aware_date` when that is blank.
- Rapid reviews count when `completed_date` (sent to the Panel) is in the period; practice
  reviews when `decision_date` is. The rapid review to LCSPR conversion rate is the share of
  the period's completed rapid reviews whose outcome is `lcspr`. A national review referral is
  a completed rapid review whose outcome is national_review_recommended. The Panel's own
  decision (`panel_decision` national_review) is not counted on top: published beside the
  outcome table, the difference would be a small count that suppression could not protect.
- Timeliness counts come from the `timeliness` rows with `as_of_date == as_of` (all cases the
  timeliness task judged on that date); `not_applicable` rows are left out.
- The timeliness trend is worked out afresh from the current case tables with
  reviews.timeliness.compute.compute_timeliness as of each trend period's last day (not read from
  stored partitions, which exist only for the days some run happened to judge), so a rerun or
  a backfill gives the same trend. Per period it counts the cases *due* in that period that were
  met, late, or still open past their due date at the period end, plus the cases open and due
  within the at-risk window at the period end. Every such case is due on or after the first
  trend period's start, so cases whose dates all precede it by more than the longest statutory
  lag (`timeliness.longest_lag_days`) are not read.
- Learning themes are dated by the review's `completed_date`: a finding is settled learning once
  its review is complete. "to_date" counts findings of reviews completed on or before the period
  end, "period" those completed in the period. Findings of reviews not yet complete are not
  counted. A theme recurs across partnerships when findings on it came from at least
  `recurring_theme_min_partnerships` partnerships over the trend periods, and across periods
  when the region had findings on it in at least `recurring_theme_min_periods` of them.
- Recommendations: every learning row with a recommendation (or an action) from a review
  completed by the period end. Its action's state as at the period end: completed if
  `action_completed_date` is on or before it (or the status is completed with no date);
  otherwise overdue if `action_due_date` is before the period end; otherwise in progress if the
  return says in progress (or completed, but later than the period end), else open. The four
  states do not overlap, so they add up to the total. Overdue actions are also counted by owner
  agency (spellings that differ only in case and spacing are one agency, shown by its most frequent
  spelling; blank is "Not recorded"), after screening the agency's name; by agency they add up to
  the overdue count.
- Key findings are finding texts of reviews completed in the period, up to three per
  partnership (config), one per theme in turn, the region's most frequent themes in the period
  first.
- A 7-minute briefing is made for every review published (`published_date`) in the period,
  from its own learning rows.
- Every free-text field that can leave the business unit (findings, recommendations, review
  methodology and author) is screened by reviews.privacy.screening; each hit becomes "[redacted]" and
  is listed under "redactions", which only the business unit sees.
- Only partnerships in the config are counted, so the region's figures are the sum of theirs.
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import Engine, and_, case, exists, func, literal, or_, select, tuple_

from reviews.core import warehouse as wh
from reviews.core.config import Config, SummarySettings
from reviews.core.reporting_periods import Period, period_of, trailing_periods
from reviews.privacy.screening import KIND_LABELS, NAME_FIELDS, REDACTED, screen, screen_free_text  # noqa: F401 (re-exported)
from reviews.core.template import NOTIFICATIONS, PRACTICE_REVIEWS, RAPID_REVIEWS

SCHEMA = "regional_learning_summary/3"
STAGES = ("notification", "rapid_review", "lcspr_completion", "publication_notice")
STATUSES = ("met", "late", "open_on_track", "open_at_risk", "open_overdue", "unknown")
TREND_STATUSES = ("met", "late", "open_overdue")  # of the cases due in a period
ACTION_STATES = ("open", "in_progress", "completed", "overdue")
NOT_RECORDED = "not_recorded"
KEY_FINDINGS_PER_PARTNERSHIP = 3

_THEME_LABELS = {
    "voice_of_child": "Voice of the child",
    "multi_agency_working": "Multi-agency working",
    "extrafamilial_harm": "Extra-familial harm",
    "sudi_safer_sleep": "SUDI and safer sleep",
    "race_ethnicity_culture": "Race, ethnicity and culture",
    "leadership_culture": "Leadership and culture",
    "men_in_childrens_lives": "Men in children's lives",
    "intrafamilial_child_sexual_abuse": "Intra-familial child sexual abuse",
    "children_not_in_school": "Children not in school",
}


def theme_label(code: str) -> str:
    """A reader's name for a theme code ('information_sharing' -> 'Information sharing')."""
    return _THEME_LABELS.get(code) or code.replace("_", " ").capitalize()


def _in_period(col, start: date, end: date):
    return and_(col >= start, col <= end)


ROLLING_MONTHS = 12


def rolling_window(end: date, months: int = ROLLING_MONTHS) -> Period:
    """The year ending on `end` (inclusive): 1 July 2023 to 30 June 2024 (whole months for a
    period end). Only 12 months is supported: the day a year before, plus one."""
    if months != 12:
        raise ValueError("the rolling window is 12 months")
    try:
        before = end.replace(year=end.year - 1)
    except ValueError:  # 29 February
        before = date(end.year - 1, 2, 28)
    return Period(before + timedelta(days=1), end, "rolling")


def _with_region(counts: dict[tuple, int]) -> dict[tuple, int]:
    """Counts keyed (partnership, ...), plus the region's (None, ...): the sum over partnerships."""
    out: dict[tuple, int] = dict(counts)
    for key, n in counts.items():
        region = (None, *key[1:])
        out[region] = out.get(region, 0) + n
    return out


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


def _learning_join():
    lr, pr = wh.learning, wh.practice_reviews
    return lr.join(pr, and_(lr.c.partnership_code == pr.c.partnership_code, lr.c.review_id == pr.c.review_id))


def _learning_of_reviews(reviews_where, codes: list[str]):
    """Learning rows whose review matches `reviews_where`, for the period's few reviews.

    The reviews are picked first and the learning matched against that short list (learning has
    no index on review_id): a join instead looks up the review of every learning row.
    """
    lr, pr = wh.learning, wh.practice_reviews
    reviews = select(pr.c.partnership_code, pr.c.review_id).where(pr.c.partnership_code.in_(codes), reviews_where)
    return and_(lr.c.partnership_code.in_(codes), tuple_(lr.c.partnership_code, lr.c.review_id).in_(reviews))


def _theme_counts(conn, start: date, end: date, periods: list[Period], codes: list[str]) -> tuple[dict, dict, dict]:
    """(to date, in the period, by trend period) theme counts from one pass over the learning.

    Each is a pass over the whole learning table joined to its reviews (most of this module's
    time on a national warehouse), so the rows are counted once by the few date buckets that
    tell them apart: (code, theme, trend period index or -1, in the period) -> count.
    """
    lr, pr = wh.learning, wh.practice_reviews
    done = pr.c.completed_date
    first, last = periods[0].start, periods[-1].end
    if last > end:
        raise ValueError(f"the trend periods end ({last}) after the period ({end})")
    bucket = case(*((_in_period(done, p.start, p.end), literal(k)) for k, p in enumerate(periods)),
                  (_in_period(done, first, last), literal(-2)), else_=literal(-1))
    in_period = case((_in_period(done, start, end), literal(1)), else_=literal(0))
    stmt = (
        select(lr.c.partnership_code, lr.c.theme, bucket, in_period, func.count())
        .select_from(_learning_join())
        .where(lr.c.partnership_code.in_(codes), lr.c.theme.is_not(None), done <= end)
        .group_by(lr.c.partnership_code, lr.c.theme, bucket, in_period)
    )
    to_date: dict[tuple[str, str], int] = {}
    period: dict[tuple[str, str], int] = {}
    by_period: dict[tuple[str, str], list[int]] = {}
    for code, theme, k, here, n in conn.execute(stmt):
        key, n = (code, theme), int(n)
        to_date[key] = to_date.get(key, 0) + n
        if here:
            period[key] = period.get(key, 0) + n
        if k != -1:  # within the trend (-2: between its periods, which are contiguous: never)
            counts = by_period.setdefault(key, [0] * len(periods))
            if k >= 0:
                counts[k] += n
    return to_date, period, by_period


def _by_code(counts: dict[tuple, Any]) -> dict[str | None, dict[tuple, Any]]:
    """Counts keyed (code, ...) split by code, and all of them under None (the region)."""
    out: dict[str | None, dict[tuple, Any]] = {None: counts}
    for key, n in counts.items():
        out.setdefault(key[0], {})[key] = n
    return out


def _themes(to_date: dict, period: dict, code: str | None) -> list[dict[str, Any]]:
    """Themes with any finding to date, most frequent first (then in the period, then by code).

    to_date and period are _by_code splits: one area's counts are read without the others'."""
    acc: dict[str, list[int]] = {}
    for idx, counts in enumerate((to_date, period)):
        for (_p, t), n in counts.get(code, {}).items():
            acc.setdefault(t, [0, 0])[idx] += n
    rows = [
        {"theme": t, "label": theme_label(t), "to_date": a, "period": b}
        for t, (a, b) in acc.items()
        if a or b
    ]
    return sorted(rows, key=lambda r: (-r["to_date"], -r["period"], r["theme"]))


class _Screener:
    """Screens each (record, field) once and keeps the list of redactions for the business unit."""

    def __init__(self) -> None:
        self.redactions: list[dict] = []
        self._done: dict[tuple, str] = {}

    def __call__(self, text: str | None, *, partnership: str, record: str, field: str,
                 review_id: str | None, used_in: str) -> str:
        key = (partnership, record, field)
        if key in self._done:
            for r in self.redactions:
                if (r["partnership_code"], r["record_id"], r["field"]) == key and used_in not in r["used_in"]:
                    r["used_in"].append(used_in)
            return self._done[key]
        result = screen(text, names=field in NAME_FIELDS)  # an author's name is not a child's
        for hit in result.hits:
            self.redactions.append({
                "partnership_code": partnership, "review_id": review_id, "record_id": record, "field": field,
                "kind": hit.kind, "kind_label": KIND_LABELS[hit.kind], "excerpt": hit.excerpt, "used_in": [used_in],
            })
        self._done[key] = result.text
        return result.text


def _key_findings(conn, start: date, end: date, codes: list[str], region_period: dict[str, int],
                  per_partnership: int, screener: _Screener) -> list[dict]:
    lr, pr = wh.learning, wh.practice_reviews
    stmt = (
        select(lr.c.partnership_code, lr.c.finding_id, lr.c.review_id, lr.c.theme, lr.c.finding, lr.c.recommendation)
        .where(_learning_of_reviews(_in_period(pr.c.completed_date, start, end), codes))
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
    by_code: dict[str, list[dict]] = {}
    for r in rows:
        by_code.setdefault(r["partnership_code"], []).append(r)
    findings = []
    for code in codes:
        for r in by_code.get(code, [])[:per_partnership]:
            item = {"partnership_code": code, "review_id": r["review_id"], "finding_id": r["finding_id"],
                    "theme": r["theme"], "theme_label": theme_label(r["theme"] or "")}
            for field in ("finding", "recommendation"):
                item[field] = screener(r[field], partnership=code, record=r["finding_id"], field=field,
                                       review_id=r["review_id"], used_in="key findings")
            findings.append(item)
    return findings


def _action_state(row: dict, end: date) -> str:
    status, due, done = row["action_status"], row["action_due_date"], row["action_completed_date"]
    if (done is not None and done <= end) or (status == "completed" and done is None):
        return "completed"
    if due is not None and due < end:
        return "overdue"
    if status in ("in_progress", "completed"):
        return "in_progress"
    return "open"


def _actions(conn, end: date, codes: list[str]) -> dict[str, dict[str, int]]:
    """Action states by partnership. The database counts the rows by what decides a state (the
    status, and whether each date is before, on or after the period end); _action_state then
    judges each group once, on stand-in dates on the same side of the end."""
    lr, pr = wh.learning, wh.practice_reviews
    due = case((lr.c.action_due_date < end, -1), (lr.c.action_due_date == end, 0), (lr.c.action_due_date > end, 1))
    done = case((lr.c.action_completed_date < end, -1), (lr.c.action_completed_date == end, 0),
                (lr.c.action_completed_date > end, 1))
    stmt = (
        select(lr.c.partnership_code, lr.c.action_status, due, done, func.count())
        .select_from(_learning_join())
        .where(
            lr.c.partnership_code.in_(codes),
            pr.c.completed_date <= end,
            or_(func.length(func.trim(func.coalesce(lr.c.recommendation, ""))) > 0, lr.c.action_status.is_not(None)),
        )
        .group_by(lr.c.partnership_code, lr.c.action_status, due, done)
    )
    near = {None: None, -1: end - timedelta(days=1), 0: end, 1: end + timedelta(days=1)}
    out = {c: {s: 0 for s in ACTION_STATES} for c in codes}
    for code, status, due_side, done_side, n in conn.execute(stmt):
        row = {"action_status": status, "action_due_date": near[due_side], "action_completed_date": near[done_side]}
        out[code][_action_state(row, end)] += int(n)
    for c in codes:
        out[c]["total"] = sum(out[c][s] for s in ACTION_STATES)
    return out


def _overdue_by_agency(conn, end: date, codes: list[str], screener: "_Screener") -> tuple[list[str], dict[str, dict[str, int]]]:
    """Overdue actions as at the period end by owner agency: (agency labels, region's most first;
    partnership -> label -> count). The same actions as _actions' `overdue`."""
    from reviews.learning.actions import agency_key, agency_names

    lr, pr = wh.learning, wh.practice_reviews
    done, due, status = lr.c.action_completed_date, lr.c.action_due_date, lr.c.action_status
    stmt = (
        select(lr.c.partnership_code, lr.c.finding_id, lr.c.review_id, lr.c.owner_agency)
        .select_from(_learning_join())
        .where(
            lr.c.partnership_code.in_(codes),
            pr.c.completed_date <= end,
            or_(func.length(func.trim(func.coalesce(lr.c.recommendation, ""))) > 0, status.is_not(None)),
            or_(done.is_(None), done > end),
            or_(done.is_not(None), func.coalesce(status, "") != "completed"),
            due < end,
        )
    )
    rows = [dict(r) for r in conn.execute(stmt).mappings()]
    rows.sort(key=lambda r: (codes.index(r["partnership_code"]), r["finding_id"]))
    for r in rows:
        r["agency"] = screener(r["owner_agency"], partnership=r["partnership_code"], record=r["finding_id"],
                               field="owner_agency", review_id=r["review_id"], used_in="overdue actions by agency")
    names = agency_names([r["agency"] for r in rows])
    counts: dict[str, dict[str, int]] = {c: {} for c in codes}
    region: dict[str, int] = {}
    for r in rows:
        name = names[agency_key(r["agency"])]
        counts[r["partnership_code"]][name] = counts[r["partnership_code"]].get(name, 0) + 1
        region[name] = region.get(name, 0) + 1
    labels = sorted(region, key=lambda a: (-region[a], a.casefold()))
    return labels, counts


def _national_referrals(conn, start: date, end: date, codes: list[str]) -> dict[str, int]:
    rr = wh.rapid_reviews
    stmt = (
        select(rr.c.partnership_code, func.count())
        .where(
            rr.c.partnership_code.in_(codes),
            _in_period(rr.c.completed_date, start, end),
            rr.c.outcome == "national_review_recommended",
        )
        .group_by(rr.c.partnership_code)
    )
    found = {p: int(n) for p, n in conn.execute(stmt)}
    return {c: found.get(c, 0) for c in codes}


def _trend_bound(cfg: Config, periods: list[Period]) -> date:
    """A case whose dates all precede this day is due before the first trend period begins.

    The trend counts cases due in a period (met, late, overdue) or due after its end (at risk),
    and no due date is more than `longest_lag_days` after the latest date of its case.
    """
    from reviews.timeliness.compute import longest_lag_days

    return min(p.start for p in periods) - timedelta(days=longest_lag_days(cfg) + 1)


def _may_be_due(t, date_columns: list[str], bound: date):
    """Rows with a date on or after `bound`, or with no date at all (judged unknown, kept as they are)."""
    cols = [t.c[c] for c in date_columns]
    return or_(*(c >= bound for c in cols), and_(*(c.is_(None) for c in cols)))


def _timeliness_trend(conn, cfg: Config, periods: list[Period], codes: list[str],
                      rolling: Period | None = None) -> dict[tuple, int]:
    """(code, stage, period index, status) -> count; see the module notes. With `rolling`, also
    (code, stage, "rolling", status): the cases due in that window, judged as of its end."""
    import pandas as pd

    from reviews.timeliness.compute import compute_timeliness
    from reviews.timeliness.run import read_current_flags

    from reviews.timeliness.compute import NOTIFICATION_COLUMNS, PRACTICE_REVIEW_COLUMNS, RAPID_REVIEW_COLUMNS

    # Only the columns the clocks read, in key order (what compute_timeliness takes fastest); whole
    # case tables were most of the memory at national scale.
    frames = {}
    bound = _trend_bound(cfg, periods + ([rolling] if rolling else []))
    NOTIFICATION_DATES = [c for c in NOTIFICATION_COLUMNS if c.endswith("_date")]
    # rapid_review_id: the key a rapid review's flags name (a stage reading a flagged cell is unknown)
    for name, columns in (("notifications", NOTIFICATION_COLUMNS), ("rapid_reviews", ("rapid_review_id", *RAPID_REVIEW_COLUMNS)),
                          ("practice_reviews", PRACTICE_REVIEW_COLUMNS)):
        t = wh.CASE_TABLES[name]
        stmt = select(t.c.partnership_code, *(t.c[c] for c in columns)).where(t.c.partnership_code.in_(codes))
        if name == "rapid_reviews":  # only a matching notification's stage reads a rapid review
            n = wh.CASE_TABLES["notifications"]
            stmt = stmt.where(exists().where(n.c.partnership_code == t.c.partnership_code,
                                             n.c.notification_id == t.c.notification_id,
                                             _may_be_due(n, NOTIFICATION_DATES, bound)))
        else:
            stmt = stmt.where(_may_be_due(t, [c for c in columns if c.endswith("_date")], bound))
        frames[name] = pd.read_sql(stmt.order_by(*t.primary_key.columns), conn,
                                   parse_dates=[c for c in columns if c.endswith("_date")])
    flags = read_current_flags(conn)
    flags = flags[flags["partnership_code"].isin(codes)]
    out: dict[tuple, int] = {}
    judged: dict[date, Any] = {}  # as of a day: the rolling window usually ends with the last period
    windows: list[tuple[Any, Period]] = list(enumerate(periods)) + ([("rolling", rolling)] if rolling else [])
    for k, p in windows:
        if p.end not in judged:
            judged[p.end] = compute_timeliness(frames["notifications"], frames["rapid_reviews"],
                                               frames["practice_reviews"], cfg, p.end, flags=flags)
        df = judged[p.end]
        if df.empty:
            continue
        code = df["partnership_code"].astype(str)
        stage = df["stage"].astype(str)
        status = df["status"].astype(str)
        due = pd.to_datetime(df["due_date"])
        in_p = (due >= pd.Timestamp(p.start)) & (due <= pd.Timestamp(p.end))
        due_here = pd.DataFrame({"c": code, "s": stage, "st": status})[in_p & status.isin(TREND_STATUSES)]
        for (c, s, st), n in due_here.value_counts().items():
            out[(c, s, k, st)] = int(n)
        risk = pd.DataFrame({"c": code, "s": stage})[status == "open_at_risk"]
        for (c, s), n in risk.value_counts().items():
            out[(c, s, k, "open_at_risk")] = int(n)
    return out


def _recurring(by_period: dict, codes: list[str], n_periods: int, s: SummarySettings) -> list[dict]:
    themes = sorted({t for _, t in by_period})
    rows = []
    for t in themes:
        per_code = {c: by_period.get((c, t), [0] * n_periods) for c in codes}
        region = [sum(per_code[c][k] for c in codes) for k in range(n_periods)]
        partnerships = [c for c in codes if sum(per_code[c]) > 0]
        periods = [k for k in range(n_periods) if region[k] > 0]
        across_p = len(partnerships) >= s.recurring_min_partnerships
        across_t = len(periods) >= s.recurring_min_periods
        if across_p or across_t:
            rows.append({
                "theme": t, "label": theme_label(t), "partnerships": partnerships, "periods": periods,
                "findings": sum(region), "across_partnerships": across_p, "across_periods": across_t,
            })
    return sorted(rows, key=lambda r: (-len(r["partnerships"]), -len(r["periods"]), -r["findings"], r["theme"]))


def _briefings(conn, start: date, end: date, codes: list[str], screener: _Screener) -> list[dict]:
    lr, pr = wh.learning, wh.practice_reviews
    reviews = [
        dict(r) for r in conn.execute(
            select(pr.c.partnership_code, pr.c.review_id, pr.c.review_type, pr.c.methodology, pr.c.author,
                   pr.c.decision_date, pr.c.completed_date, pr.c.final_report_sent_date, pr.c.published_date)
            .where(pr.c.partnership_code.in_(codes), _in_period(pr.c.published_date, start, end))
        ).mappings()
    ]
    reviews.sort(key=lambda r: (codes.index(r["partnership_code"]), r["published_date"], r["review_id"]))
    # The learning of all those reviews in one query (one per review read the whole learning table
    # each time: learning has no index on review_id).
    learning: dict[tuple[str, str], list[dict]] = {}
    for x in conn.execute(
        select(lr.c.partnership_code, lr.c.review_id, lr.c.finding_id, lr.c.theme, lr.c.finding, lr.c.recommendation,
               lr.c.owner_agency, lr.c.action_due_date, lr.c.action_status, lr.c.action_completed_date)
        .where(_learning_of_reviews(_in_period(pr.c.published_date, start, end), codes))
    ).mappings():
        learning.setdefault((x["partnership_code"], x["review_id"]), []).append(dict(x))
    out = []
    for r in reviews:
        code, rid = r["partnership_code"], r["review_id"]
        rows = sorted(learning.get((code, rid), []), key=lambda x: x["finding_id"])
        findings = []
        for x in rows:
            findings.append({
                "finding_id": x["finding_id"], "theme": x["theme"], "theme_label": theme_label(x["theme"] or ""),
                "finding": screener(x["finding"], partnership=code, record=x["finding_id"], field="finding",
                                    review_id=rid, used_in="7-minute briefing"),
                "recommendation": screener(x["recommendation"], partnership=code, record=x["finding_id"],
                                           field="recommendation", review_id=rid, used_in="7-minute briefing"),
                "owner_agency": screener(x["owner_agency"], partnership=code, record=x["finding_id"],
                                         field="owner_agency", review_id=rid, used_in="7-minute briefing"),
                "action_due_date": x["action_due_date"].isoformat() if x["action_due_date"] else None,
                "action_state": _action_state(x, end),
            })
        themes: list[str] = []
        for f in findings:
            if f["theme"] and f["theme"] not in themes:
                themes.append(f["theme"])
        out.append({
            "partnership_code": code, "review_id": rid, "review_type": r["review_type"],
            "methodology": screener(r["methodology"], partnership=code, record=rid, field="methodology",
                                    review_id=rid, used_in="7-minute briefing"),
            "author": screener(r["author"], partnership=code, record=rid, field="author",
                               review_id=rid, used_in="7-minute briefing"),
            **{k: (r[k].isoformat() if r[k] else None)
               for k in ("decision_date", "completed_date", "final_report_sent_date", "published_date")},
            "themes": themes, "findings": findings,
        })
    return out


def compile_summary(engine: Engine, cfg: Config, period_start: date, period_end: date, as_of: date) -> dict:
    """The period's figures per partnership (config order) and for the region; period_end inclusive.
    What it counts and how (trend periods, key findings, recurring themes) is `cfg.summary`."""
    if period_end < period_start:
        raise ValueError(f"period ends ({period_end}) before it starts ({period_start})")
    ss = cfg.summary
    try:
        period = period_of(period_start, period_end)
        trend = trailing_periods(period, ss.trend_periods)
    except ValueError:  # an ad hoc period: no trend beyond itself
        period = Period(period_start, period_end, "custom")
        trend = [period]
    codes = list(cfg.partnerships)
    nt, rr, pr, tl = wh.notifications, wh.rapid_reviews, wh.practice_reviews, wh.timeliness
    screener = _Screener()
    with engine.connect() as conn:
        notif = _counts(
            conn, nt, nt.c.incident_type,
            _in_period(func.coalesce(nt.c.notified_date, nt.c.aware_date), period_start, period_end), codes,
        )
        rapid = _counts(conn, rr, rr.c.outcome, _in_period(rr.c.completed_date, period_start, period_end), codes)
        decided = _counts(
            conn, pr, pr.c.review_type, _in_period(pr.c.decision_date, period_start, period_end), codes
        )
        national = _national_referrals(conn, period_start, period_end, codes)
        year = rolling_window(period_end)
        y_notif = _counts(
            conn, nt, nt.c.incident_type,
            _in_period(func.coalesce(nt.c.notified_date, nt.c.aware_date), year.start, year.end), codes,
        )
        y_rapid = _counts(conn, rr, rr.c.outcome, _in_period(rr.c.completed_date, year.start, year.end), codes)
        y_decided = _counts(conn, pr, pr.c.review_type, _in_period(pr.c.decision_date, year.start, year.end), codes)
        y_milestones = {
            kind: _counts(conn, pr, pr.c.partnership_code, _in_period(col, year.start, year.end), codes)
            for kind, col in (("completed", pr.c.completed_date), ("published", pr.c.published_date))
        }
        stmt = (
            select(tl.c.partnership_code, tl.c.stage, tl.c.status, func.count())
            .where(tl.c.partnership_code.in_(codes), tl.c.as_of_date == as_of, tl.c.status.in_(STATUSES))
            .group_by(tl.c.partnership_code, tl.c.stage, tl.c.status)
        )
        timely = {(p, s, st): int(n) for p, s, st, n in conn.execute(stmt)}
        trend_counts = _timeliness_trend(conn, cfg, trend, codes, rolling=year)
        themes_to_date, themes_period, by_period = _theme_counts(conn, period_start, period_end, trend, codes)
        region_period: dict[str, int] = {}
        for (_, t), n in themes_period.items():
            region_period[t] = region_period.get(t, 0) + n
        findings = _key_findings(conn, period_start, period_end, codes, region_period,
                                 ss.key_findings_per_partnership, screener)
        # With no review completed in the period anywhere, the learning of the 12 months before it
        # leads the bulletin instead (at real volumes most months have none).
        earlier = [] if findings or year.start >= period_start else _key_findings(
            conn, year.start, period_start - timedelta(days=1), codes, {}, ss.key_findings_per_partnership,
            screener)
        actions = _actions(conn, period_end, codes)
        agencies, overdue_by_agency = _overdue_by_agency(conn, period_end, codes, screener)
        briefings = _briefings(conn, period_start, period_end, codes, screener)

    cats = {
        "incident_type": _categories(NOTIFICATIONS.column("incident_type").codes, {k for _, k in notif}),
        "rapid_review_outcome": _categories(RAPID_REVIEWS.column("outcome").codes, {k for _, k in rapid}),
        "review_type": _categories(PRACTICE_REVIEWS.column("review_type").codes, {k for _, k in decided}),
        "rolling_incident_type": _categories(NOTIFICATIONS.column("incident_type").codes, {k for _, k in y_notif}),
        "rolling_rapid_review_outcome": _categories(RAPID_REVIEWS.column("outcome").codes, {k for _, k in y_rapid}),
        "rolling_review_type": _categories(PRACTICE_REVIEWS.column("review_type").codes, {k for _, k in y_decided}),
        "timeliness_stage": list(STAGES),
        "timeliness_status": list(STATUSES),
        "trend_status": list(TREND_STATUSES),
        "action_state": list(ACTION_STATES),
        "owner_agency": agencies,
    }
    theme_codes = sorted({t for _, t in by_period})

    # Counts per partnership and for the region (code None), summed once: looking them up per
    # area keeps the areas linear in the number of partnerships (152 nationally, not 5).
    timely_by, trend_by = _with_region(timely), _with_region(trend_counts)
    to_date_by, period_by = _by_code(themes_to_date), _by_code(themes_period)
    zeros = [0] * len(trend)
    themes_by = {}
    for (c, t), counts in by_period.items():
        themes_by[(c, t)] = counts
        region = themes_by.setdefault((None, t), [0] * len(trend))
        themes_by[(None, t)] = [a + b for a, b in zip(region, counts)]

    def area(code: str | None) -> dict[str, Any]:
        mine = (lambda p: True) if code is None else (lambda p: p == code)
        timeliness, trend_rows = {}, {}
        for stage in STAGES:
            row = {st: timely_by.get((code, stage, st), 0) for st in STATUSES}
            row["total"] = sum(row.values())
            timeliness[stage] = row
            trend_rows[stage] = [
                {st: trend_by.get((code, stage, k, st), 0) for st in (*TREND_STATUSES, "open_at_risk")}
                for k in range(len(trend))
            ]
        act = {s: sum(actions[c][s] for c in codes if mine(c)) for s in (*ACTION_STATES, "total")}
        rolling = {
            "notifications": _breakdown(y_notif, code, cats["rolling_incident_type"]),
            "rapid_reviews_completed": _breakdown(y_rapid, code, cats["rolling_rapid_review_outcome"]),
            "practice_reviews_decided": _breakdown(y_decided, code, cats["rolling_review_type"]),
            **{f"reviews_{kind}": sum(n for (c, _), n in y_milestones[kind].items() if mine(c))
               for kind in ("completed", "published")},
            "timeliness": {stage: {st: trend_by.get((code, stage, "rolling", st), 0) for st in TREND_STATUSES}
                           for stage in STAGES},
        }
        return {
            "notifications": _breakdown(notif, code, cats["incident_type"]),
            "rapid_reviews_completed": _breakdown(rapid, code, cats["rapid_review_outcome"]),
            "practice_reviews_decided": _breakdown(decided, code, cats["review_type"]),
            "national_review_referrals": sum(n for c, n in national.items() if mine(c)),
            "timeliness": timeliness,
            "timeliness_trend": trend_rows,
            "themes": _themes(to_date_by, period_by, code),
            "themes_by_period": {t: list(themes_by.get((code, t), zeros)) for t in theme_codes},
            "actions": act,
            "overdue_by_agency": {a: sum(overdue_by_agency[c].get(a, 0) for c in codes if mine(c)) for a in agencies},
            "rolling": rolling,
        }

    return {
        "schema": SCHEMA,
        "region_name": cfg.region_name,
        "period": {"start": period_start.isoformat(), "end": period_end.isoformat(), "kind": period.kind},
        "as_of": as_of.isoformat(),
        "trend_periods": [p.to_dict() for p in trend],
        "rolling": {"start": year.start.isoformat(), "end": year.end.isoformat(), "months": ROLLING_MONTHS},
        "categories": cats,
        "partnerships": [
            {"code": c, "name": p.name, "ons_code": p.ons_code, **area(c)} for c, p in cfg.partnerships.items()
        ],
        "region": {"name": cfg.region_name, **area(None)},
        "recurring_themes": _recurring(by_period, codes, len(trend), ss),
        "key_findings": findings,
        "earlier_findings": earlier,
        "briefings": briefings,
        "redactions": screener.redactions,
        "notes": {
            "notifications": "counted by notified_date, or aware_date when blank",
            "rapid_reviews_completed": "completed_date (sent to the Panel) in the period",
            "national_review_referrals": "rapid reviews completed in the period with outcome "
                                         "national_review_recommended",
            "practice_reviews_decided": "decision_date in the period",
            "timeliness": "timeliness rows with as_of_date equal to as_of; not_applicable left out",
            "timeliness_trend": "compute_timeliness on the current case tables as of each trend period's end; "
                                "cases due in the period by status, and cases open at risk at its end",
            "themes": "dated by the review's completed_date: to_date up to the period end, period within it",
            "actions": "recommendations of reviews completed by the period end, by their action's state then",
            "overdue_by_agency": "the overdue actions of `actions` by owner agency (screened; case and spacing ignored)",
            "briefings": "reviews published in the period",
            "rolling": "the 12 months ending with the period: the same rules as the period's counts; "
                       "timeliness counts the cases due in those months, judged as of the period end",
            "earlier_findings": "only when no review was completed in the period: key findings of reviews "
                                "completed in the rest of the 12 months",
        },
    }
