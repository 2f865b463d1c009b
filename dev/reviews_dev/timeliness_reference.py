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
    FLAG_INPUT_COLUMNS,
    NOTIFICATION_COLUMNS,
    PRACTICE_REVIEW_COLUMNS,
    RAPID_REVIEW_COLUMNS,
    STAGE_NUMBER,
    STAGES,
    flag_reason,
    stage_flag_columns,
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
        for c in (*columns, *(["rapid_review_id"] if "rapid_review_id" in record else [])):
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


def _publication(cfg, code, review, as_of, flagged=False):
    """`flagged`: a publication date has a current flag: judged even when both are blank."""
    sent_any, published = review["final_report_sent_date"], review["published_date"]
    if sent_any is None and published is None and not flagged:
        return None
    rule_set = cfg.rule_set_for(sent_any or published or as_of)
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


def _flags(flags: pd.DataFrame | None) -> dict[tuple[str, str, str], list[tuple[frozenset, tuple]]]:
    """(partnership, dataset, record id) -> [(columns, (file_name, row_number, message))]."""
    out: dict[tuple[str, str, str], list] = {}
    if flags is None or len(flags) == 0:
        return out
    for f in flags[list(FLAG_INPUT_COLUMNS)].to_dict("records"):
        columns = frozenset(c.strip() for c in str(f["columns"] or "").split(",") if c.strip())
        key = (str(f["partnership_code"]), str(f["dataset"]), str(f["record_id"]))
        out.setdefault(key, []).append((columns, (str(f["file_name"]), int(f["row_number"]), str(f["message"]))))
    return out


def _unknown_if_flagged(row: dict | None, rule_set, reads: list[tuple[str, str]], flags: dict) -> dict | None:
    """The row judged unknown, with the flags' words, when a cell it reads has a current flag.
    `reads`: (dataset, record id) of every record the judgement reads."""
    if row is None:
        return None
    start = rule_set.stages[row["stage"]].start
    said = [what for dataset, record_id in reads
            for columns, what in flags.get((row["partnership_code"], dataset, record_id), ())
            if columns & stage_flag_columns(row["stage"], dataset, start)]
    if said:
        row.update(status="unknown", reason=flag_reason(said), working_days_taken=None)
    return row


def compute_timeliness_reference(
    notifications: pd.DataFrame,
    rapid_reviews: pd.DataFrame,
    practice_reviews: pd.DataFrame,
    cfg: Config,
    as_of: date,
    flags: pd.DataFrame | None = None,
) -> list[dict]:
    """Every case's timeliness, one case at a time; rows as `to_records(compute_timeliness(...))`.

    Input checks (blank keys, repeated ids) are left to the vectorised version.
    """
    as_of = as_of.date() if isinstance(as_of, datetime) else as_of
    flagged = _flags(flags)
    earliest: dict[tuple[str, str], date] = {}
    rapid_of: dict[tuple[str, str], list[str]] = {}  # the case's rapid review ids (their flags count)
    for rr in _rows(rapid_reviews, RAPID_REVIEW_COLUMNS):
        key, done = (rr["partnership_code"], rr["notification_id"]), rr["completed_date"]
        if done is not None and (key not in earliest or done < earliest[key]):
            earliest[key] = done
        if rr.get("rapid_review_id") is not None:
            rapid_of.setdefault(key, []).append(rr["rapid_review_id"])

    out: list[dict] = []
    for note in _rows(notifications, NOTIFICATION_COLUMNS):
        code, nid = note["partnership_code"], note["notification_id"]
        rule_set = cfg.rule_set_for(note["aware_date"] or note["notified_date"] or as_of)
        for stage, completed, label, reads in (
            ("notification", note["notified_date"], "notified_date", [("notifications", nid)]),
            ("rapid_review", earliest.get((code, nid)), "rapid review completed_date",
             [("notifications", nid), *(("rapid_reviews", r) for r in rapid_of.get((code, nid), ()))]),
        ):
            column = rule_set.stages[stage].start
            at_risk_until = add_working_days_reference(as_of, cfg.at_risk_days(stage))
            row = _clock(cfg, stage, code, nid, rule_set, column, note[column], completed, label, as_of,
                         at_risk_until, True)
            row = _unknown_if_flagged(row, rule_set, reads, flagged)
            if row:
                out.append(row)
    for review in _rows(practice_reviews, PRACTICE_REVIEW_COLUMNS):
        code, reads = review["partnership_code"], [("practice_reviews", review["review_id"])]
        if review["review_type"] == "lcspr":
            rule_set = cfg.rule_set_for(review["decision_date"] or as_of)
            column = rule_set.stages["lcspr_completion"].start
            at_risk_until = add_working_days_reference(as_of, cfg.at_risk_days("lcspr_completion"))
            row = _clock(cfg, "lcspr_completion", code, review["review_id"], rule_set, column,
                         review[column], review["completed_date"], "completed_date", as_of, at_risk_until,
                         False)
            row = _unknown_if_flagged(row, rule_set, reads, flagged)
            if row:
                out.append(row)
        publication_flagged = any(
            columns & stage_flag_columns("publication_notice", "practice_reviews", "final_report_sent_date")
            for columns, _ in flagged.get((code, "practice_reviews", review["review_id"]), ()))
        row = _publication(cfg, code, review, as_of, publication_flagged)
        if row:
            rule_set = cfg.rule_set_for(review["final_report_sent_date"] or review["published_date"] or as_of)
            out.append(_unknown_if_flagged(row, rule_set, reads, flagged))
    return sorted(out, key=lambda r: (STAGES.index(r["stage"]), r["partnership_code"], r["record_id"]))
