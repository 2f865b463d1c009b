"""The business unit's case tracker and case pages, read from `case_journeys` (behind the Airflow login).

  /reviews/tracker                         every case of the newest journeys partition, what is due first
  /reviews/cases/{partnership}/{case id}   one case: its journey, and the returns its records came from

The tracker answers "what do I chase today?": filter by partnership, stage, status and "due within
N working days" (an open stage whose due date is from the as-of day to working day N after it,
the due day included; overdue stages are the status `open_overdue`, not "due within"). With a
stage, status or due filter, a case is listed when one of its stages matches, and the row shows
that stage (the one due first, when several match); without, the row shows the stage due first,
else the stage the case is at. Rows come by due date, overdue first, then cases with no due date.

Query parameters come from anyone's browser: only the four names are accepted, each once, and
each value must be one the page offers (a configured partnership, a stage, a status, a whole
number of working days up to a year); anything else is a QueryError (HTTP 400), never a guess.
Case references only: no child's key is read.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Engine, select

from reviews.core import warehouse as wh
from reviews.core.config import Config
from reviews.core.working_days import add_working_days
from reviews.journeys.model import (
    CLOSED,
    DECISION_WORDS,
    OPEN,
    STAGE_WORDS,
    STAGES,
    STATUS_WORDS,
    STATUSES,
    TIMELINESS_STAGE,
    Stage,
    stages_from_json,
)
from reviews.journeys.store import latest_as_of

PARAMS = ("partnership", "stage", "status", "due_within")
MAX_DUE_WITHIN = 260  # working days: about a year
MAX_VALUE = 40  # characters; every accepted value is shorter
ROWS_SHOWN = 1000  # more cases than this: filter to see the rest (the XLSX has them all)
CASE_ID = re.compile(r"^[A-Za-z0-9 _./-]{1,100}$")  # the template's id characters (returns/quality.py)
DATASET_WORDS = {"notifications": "Notification", "rapid_reviews": "Rapid review", "practice_reviews": "Practice review"}


class QueryError(ValueError):
    """A query parameter the tracker does not offer; the message says which, without echoing it."""


@dataclass(frozen=True)
class TrackerQuery:
    partnership: str | None = None
    stage: str | None = None
    status: str | None = None
    due_within: int | None = None

    @property
    def filtered_by_stage(self) -> bool:
        return bool(self.stage or self.status or self.due_within is not None)


def parse_query(items: Iterable[tuple[str, str]], cfg: Config) -> TrackerQuery:
    """The tracker's filters from the query string's (name, value) pairs; a blank value is no filter."""
    seen: dict[str, str] = {}
    for name, value in items:
        if name not in PARAMS:
            raise QueryError("the tracker takes only partnership, stage, status and due_within")
        if name in seen:
            raise QueryError(f"{name} is given more than once")
        if len(value) > MAX_VALUE:
            raise QueryError(f"{name} is too long")
        seen[name] = value.strip()
    partnership, stage, status, due = (seen.get(k) or None for k in PARAMS)
    if partnership is not None and partnership not in cfg.partnerships:
        raise QueryError("partnership must be one of the configured partnership codes")
    if stage is not None and stage not in STAGES:
        raise QueryError("stage must be one of: " + ", ".join(STAGES))
    if status is not None and status not in STATUSES:
        raise QueryError("status must be one of: " + ", ".join(STATUSES))
    days = None
    if due is not None:
        if not due.isdigit() or not due.isascii() or int(due) > MAX_DUE_WITHIN:
            raise QueryError(f"due_within must be a whole number of working days from 0 to {MAX_DUE_WITHIN}")
        days = int(due)
    return TrackerQuery(partnership, stage, status, days)


@dataclass(frozen=True)
class TrackerRow:
    partnership_code: str
    partnership: str
    case_id: str
    rapid_review_id: str | None
    review_id: str | None
    stage: Stage  # the stage shown (see the module docstring)
    current_stage: str
    current_status: str
    decision: str
    findings: list[str]
    flags: int
    rejected: int


@dataclass
class Tracker:
    as_of: date | None  # the journeys partition shown (None: none built yet)
    query: TrackerQuery
    rows: list[TrackerRow] = field(default_factory=list)
    matching: int = 0  # cases matching the filters (rows holds at most ROWS_SHOWN)
    due_by: date | None = None  # the last due day of "due within"
    partnerships: list[tuple[str, str]] = field(default_factory=list)
    at_risk_days: dict[str, int] = field(default_factory=dict)  # statutory stage -> its at-risk window


def _matches(s: Stage, q: TrackerQuery) -> bool:
    if q.stage and s.stage != q.stage:
        return False
    if q.status and s.status != q.status:
        return False
    if q.due_within is not None:
        return s.status in OPEN and s.due is not None and s.left is not None and 0 <= s.left <= q.due_within
    return True


def _shown(stages: list[Stage], current_stage: str, q: TrackerQuery) -> Stage | None:
    if q.filtered_by_stage:
        found = [s for s in stages if _matches(s, q)]
    else:
        found = [s for s in stages if s.status in OPEN and s.due is not None]
        if not found:
            return next((s for s in stages if s.stage == current_stage), stages[0] if stages else None)
    order = {name: i for i, name in enumerate(STAGES)}
    return min(found, key=lambda s: (s.due is None, s.due or date.max, order.get(s.stage, 99))) if found else None


def _row_key(r: TrackerRow) -> tuple:
    return (r.stage.due is None, r.stage.due or date.max, r.partnership_code, r.case_id)


def build_tracker(engine: Engine, cfg: Config, query: TrackerQuery, today: date) -> Tracker:
    """The tracker as of the newest journeys partition on or before `today` (the page: today)."""
    names = {code: p.name for code, p in cfg.partnerships.items()}
    c = wh.case_journeys.c
    with engine.connect() as conn:
        as_of = latest_as_of(conn, today)
        out = Tracker(as_of, query, partnerships=list(names.items()),
                      at_risk_days={stage: cfg.at_risk_days(t) for stage, t in TIMELINESS_STAGE.items()})
        if as_of is None:
            return out
        stmt = select(c.partnership_code, c.notification_id, c.rapid_review_id, c.review_id, c.current_stage,
                      c.current_status, c.decision, c.stages_json, c.findings, c.flags, c.rejected
                      ).where(c.as_of_date == as_of)
        if query.partnership:
            stmt = stmt.where(c.partnership_code == query.partnership)
        rows = []
        for r in conn.execute(stmt):
            stages = stages_from_json(r.stages_json)
            shown = _shown(stages, r.current_stage, query)
            if shown is None:
                continue
            rows.append(TrackerRow(r.partnership_code, names.get(r.partnership_code, r.partnership_code),
                                   r.notification_id, r.rapid_review_id, r.review_id, shown, r.current_stage,
                                   r.current_status, r.decision, (r.findings or "").splitlines(), r.flags, r.rejected))
    rows.sort(key=_row_key)
    out.matching, out.rows = len(rows), rows[:ROWS_SHOWN]
    if query.due_within is not None:
        out.due_by = add_working_days(as_of, query.due_within)
    return out


# ---- one case ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    """A return that brought a version of a record."""

    file_name: str
    return_date: date | None
    received_at: datetime | None
    file_status: str | None
    current: bool  # the version the case table holds now


@dataclass(frozen=True)
class Flag:
    file_name: str
    row_number: int
    message: str
    original_text: str | None
    current: bool  # not replaced by a later return's row


@dataclass(frozen=True)
class Rejected:
    dataset: str
    record_id: str | None
    file_name: str
    row_number: int
    checks: list[str]
    waiting: bool  # not corrected by a later return yet


@dataclass
class RecordSources:
    dataset: str
    record_id: str
    versions: list[Version] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)


@dataclass
class CasePage:
    partnership_code: str
    partnership: str
    case_id: str
    as_of: date
    current_stage: str
    current_status: str
    decision: str
    next_due_date: date | None
    working_days_left: int | None
    stages: list[Stage]
    findings: list[str]
    records: list[RecordSources]
    rejected: list[Rejected]


def valid_case_id(case_id: str) -> bool:
    return bool(CASE_ID.match(case_id)) and ".." not in case_id


def build_case_page(engine: Engine, cfg: Config, partnership: str, case_id: str, today: date) -> CasePage | None:
    """One case as of the newest journeys partition on or before `today`; None when unknown."""
    if partnership not in cfg.partnerships or not valid_case_id(case_id):
        return None
    c = wh.case_journeys.c
    with engine.connect() as conn:
        as_of = latest_as_of(conn, today)
        if as_of is None:
            return None
        j = conn.execute(select(wh.case_journeys).where(
            c.as_of_date == as_of, c.partnership_code == partnership, c.notification_id == case_id)).first()
        if j is None:
            return None
        records = _case_records(conn, partnership, case_id, j)
        for rec in records:
            _sources(conn, partnership, rec)
        rejected = _rejected(conn, partnership, records, case_id)
    return CasePage(partnership, cfg.partnerships[partnership].name, case_id, as_of, j.current_stage, j.current_status,
                    j.decision, j.next_due_date, j.working_days_left, stages_from_json(j.stages_json),
                    (j.findings or "").splitlines(), records, rejected)


def _case_records(conn, p: str, case_id: str, j) -> list[RecordSources]:
    """The case's records: its notification, and every rapid and practice review naming it (or,
    for a review with no notification, that review)."""
    n, rr, pr = wh.notifications.c, wh.rapid_reviews.c, wh.practice_reviews.c
    out = []
    if conn.execute(select(n.notification_id).where(n.partnership_code == p, n.notification_id == case_id)).first():
        out.append(RecordSources("notifications", case_id))
        out += [RecordSources("rapid_reviews", rid) for rid in conn.execute(
            select(rr.rapid_review_id).where(rr.partnership_code == p, rr.notification_id == case_id)
            .order_by(rr.rapid_review_id)).scalars()]
        out += [RecordSources("practice_reviews", rid) for rid in conn.execute(
            select(pr.review_id).where(pr.partnership_code == p, pr.notification_id == case_id)
            .order_by(pr.review_id)).scalars()]
    elif j.review_id:
        out.append(RecordSources("practice_reviews", j.review_id))
    return out


def _sources(conn, p: str, rec: RecordSources) -> None:
    h, f, rf = wh.record_history.c, wh.row_flags.c, wh.return_files.c
    table = wh.CASE_TABLES[rec.dataset]
    key = table.c[{"notifications": "notification_id", "rapid_reviews": "rapid_review_id",
                   "practice_reviews": "review_id"}[rec.dataset]]
    current = conn.execute(select(table.c.source_file_id).where(table.c.partnership_code == p, key == rec.record_id)
                           ).scalar()
    rec.versions = [Version(r.file_name, r.return_date, r.received_at, r.status, r.file_id == current) for r in conn.execute(
        select(h.file_id, h.return_date, rf.file_name, rf.received_at, rf.status)
        .join(wh.return_files, rf.file_id == h.file_id, isouter=True)
        .where(h.partnership_code == p, h.dataset == rec.dataset, h.record_id == rec.record_id)
        .order_by(h.return_date, h.file_id))]
    rec.flags = [Flag(r.file_name, r.row_number, r.message, r.original_text, r.superseded_by_file_id is None)
                 for r in conn.execute(
                     select(f.file_name, f.row_number, f.message, f.original_text, f.superseded_by_file_id)
                     .where(f.partnership_code == p, f.dataset == rec.dataset, f.record_id == rec.record_id)
                     .order_by(f.file_id, f.row_number, f.flag_id))]


def _rejected(conn, p: str, records: list[RecordSources], case_id: str) -> list[Rejected]:
    """Quarantined rows of the case's records, and rejected rapid or practice review rows that name
    its notification (their record may never have loaded)."""
    q = wh.quarantine.c
    ours = {(r.dataset, r.record_id) for r in records}
    found = []
    candidates = conn.execute(
        select(q.quarantine_id, q.dataset, q.record_id, q.file_name, q.row_number, q.failed_checks, q.raw_values,
               q.resolved_by_file_id)
        .where(q.partnership_code == p, q.dataset.in_(("notifications", "rapid_reviews", "practice_reviews")),
               (q.record_id.in_([rid for _, rid in ours]) if ours else q.record_id.is_(None))
               | q.raw_values.contains(case_id, autoescape=True))
        .order_by(q.file_id, q.row_number))
    for r in candidates:
        if (r.dataset, r.record_id) not in ours:
            try:
                named = json.loads(r.raw_values or "{}").get("notification_id")
            except (ValueError, AttributeError):
                named = None
            if r.dataset == "notifications" or not isinstance(named, str) or named.strip() != case_id:
                continue
        found.append(Rejected(r.dataset, r.record_id, r.file_name, r.row_number,
                              (r.failed_checks or "").splitlines(), r.resolved_by_file_id is None))
    return found


def words() -> dict:
    """The words the pages use for stages, statuses and decisions."""
    return {"stage_words": STAGE_WORDS, "journey_status_words": STATUS_WORDS, "decision_words": DECISION_WORDS,
            "dataset_words": DATASET_WORDS, "stages": STAGES, "statuses": STATUSES, "closed": CLOSED}
