"""The statutory timeliness rules written the straightforward way: one case at a time, dates as
`datetime.date`, working days counted day by day against the `holidays` package.

Not used by the pipelines. It is the yardstick for `reviews.timeliness.compute.compute_timeliness`:
the benchmark (`make bench`) times it as the per-row baseline and checks both give identical
rows, and the property tests compare the two on random cases. It takes the same tables and
gives `to_records(compute_timeliness(...))`: the same rows, values and order.
"""
from __future__ import annotations

import calendar
from datetime import date, datetime
from typing import Any

import pandas as pd

from reviews.core.config import Config
from reviews.timeliness.compute import (
    NOTIFICATION_COLUMNS,
    PRACTICE_REVIEW_COLUMNS,
    RAPID_REVIEW_COLUMNS,
    STAGE_NUMBER,
    STAGES,
)
from reviews.core.working_days import CALENDAR_START
from reviews_dev.working_days_reference import add_working_days_reference, working_days_between_reference

FIRST_COUNTABLE = CALENDAR_START.item()


def _day(value: Any) -> date | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)) or value == "":
        return None
    if isinstance(value, datetime):  # pandas Timestamps too
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _rows(frame: pd.DataFrame | None, columns: tuple[str, ...]) -> list[dict]:
    if frame is None or len(frame) == 0:
        return []
    out = []
    for record in frame.to_dict("records"):
        row = {"partnership_code": str(record["partnership_code"])}
        for c in columns:
            value = record[c]
            row[c] = _day(value) if c.endswith("_date") else (None if pd.isna(value) else str(value))
        out.append(row)
    return out


def _months(start: date, months: int) -> date:
    """start + whole calendar months, clamped to the month's end (31 August + 6 = 28/29 February)."""
    year, month0 = divmod(start.month - 1 + months, 12)
    year += start.year
    return date(year, month0 + 1, min(start.day, calendar.monthrange(year, month0 + 1)[1]))


def _row(code, stage, record_id, as_of, start, due, completed, taken, status, rule_set, reason) -> dict:
    return {
        "partnership_code": code, "stage": stage, "record_id": record_id, "as_of_date": as_of,
        "start_date": start, "due_date": due, "completed_date": completed, "working_days_taken": taken,
        "status": status, "rule_set": rule_set, "reason": reason,
    }


def _clock(cfg, stage, code, record_id, rule_set, start_column, start, completed, completed_label, as_of, at_risk_until,
           working_days):
    """One start -> due -> completed judgement, or None when the clock has not started."""
    if start is not None and start > as_of:
        return None
    if completed is not None and completed > as_of:
        completed = None
    number = getattr(rule_set.stages[stage], STAGE_NUMBER[stage])
    due = taken = reason = None
    if start is None:
        status, reason = "unknown", f"{start_column} is missing"
    elif working_days and start < FIRST_COUNTABLE:
        status = "unknown"
        reason = f"{start_column} {start.isoformat()} is before the working-day calendar starts ({FIRST_COUNTABLE.isoformat()})"
    else:
        due = add_working_days_reference(start, number) if working_days else _months(start, number)
        if completed is not None and completed < start:
            status = "unknown"
            reason = f"{completed_label} {completed.isoformat()} is before {start_column} {start.isoformat()}"
        elif completed is not None:
            status = "met" if completed <= due else "late"
            taken = working_days_between_reference(start, completed) if working_days else None
        elif due < as_of:
            status = "open_overdue"
        elif due <= at_risk_until:
            status = "open_at_risk"
        else:
            status = "open_on_track"
    return _row(code, stage, record_id, as_of, start, due, completed, taken, status, rule_set.name, reason)


def _publication(cfg, code, review, as_of):
    sent_any, published = review["final_report_sent_date"], review["published_date"]
    if sent_any is None and published is None:
        return None
    rule_set = cfg.rule_set_for(sent_any or published)
    column = rule_set.stages["publication_notice"].start
    sent = review[column]
    if sent is not None and sent > as_of:
        return None
    if sent is None and published is not None and published > as_of:
        return None
    if published is not None and published > as_of:
        published = None
    due = taken = reason = None
    if sent is None:
        status, reason = "unknown", f"{column} is missing"
    elif published is None:
        status, reason = "not_applicable", "not yet published"
    elif published < sent:
        status = "unknown"
        reason = f"{column} {sent.isoformat()} is after published_date {published.isoformat()}"
    elif sent < FIRST_COUNTABLE:
        status = "unknown"
        reason = f"{column} {sent.isoformat()} is before the working-day calendar starts ({FIRST_COUNTABLE.isoformat()})"
    else:
        notice = rule_set.stages["publication_notice"].working_days_before_publication
        due = add_working_days_reference(published, -notice)
        taken = working_days_between_reference(sent, published)
        status = "met" if sent <= due else "late"
    return _row(code, "publication_notice", review["review_id"], as_of, sent, due, sent, taken, status,
                rule_set.name, reason)


def compute_timeliness_reference(
    notifications: pd.DataFrame,
    rapid_reviews: pd.DataFrame,
    practice_reviews: pd.DataFrame,
    cfg: Config,
    as_of: date,
) -> list[dict]:
    """Every case's timeliness, one case at a time; rows as `to_records(compute_timeliness(...))`.

    Input checks (blank keys, repeated ids) are left to the vectorised version.
    """
    as_of = as_of.date() if isinstance(as_of, datetime) else as_of
    at_risk_until = add_working_days_reference(as_of, cfg.at_risk_working_days)
    earliest: dict[tuple[str, str], date] = {}
    for rr in _rows(rapid_reviews, RAPID_REVIEW_COLUMNS):
        key, done = (rr["partnership_code"], rr["notification_id"]), rr["completed_date"]
        if done is not None and (key not in earliest or done < earliest[key]):
            earliest[key] = done

    out: list[dict] = []
    for note in _rows(notifications, NOTIFICATION_COLUMNS):
        code, nid = note["partnership_code"], note["notification_id"]
        rule_set = cfg.rule_set_for(note["aware_date"] or note["notified_date"] or as_of)
        for stage, completed, label in (
            ("notification", note["notified_date"], "notified_date"),
            ("rapid_review", earliest.get((code, nid)), "rapid review completed_date"),
        ):
            column = rule_set.stages[stage].start
            row = _clock(cfg, stage, code, nid, rule_set, column, note[column], completed, label, as_of,
                         at_risk_until, True)
            if row:
                out.append(row)
    for review in _rows(practice_reviews, PRACTICE_REVIEW_COLUMNS):
        code = review["partnership_code"]
        if review["review_type"] == "lcspr":
            rule_set = cfg.rule_set_for(review["decision_date"] or as_of)
            column = rule_set.stages["lcspr_completion"].start
            row = _clock(cfg, "lcspr_completion", code, review["review_id"], rule_set, column,
                         review[column], review["completed_date"], "completed_date", as_of, at_risk_until,
                         False)
            if row:
                out.append(row)
        row = _publication(cfg, code, review, as_of)
        if row:
            out.append(row)
    return sorted(out, key=lambda r: (STAGES.index(r["stage"]), r["partnership_code"], r["record_id"]))
