"""Reporting views for analysts, defined once as SQLAlchemy Core selects over the warehouse tables.

Each view is one `select()` compiled for the warehouse's dialect (SQLite or PostgreSQL) with its
few constants written inline, so the same definition makes the view on both databases, the DDL
kept in `sql/views.{dialect}.sql` (`make schema`) and the sheets of the analyst extract
(reviews.learning.analyst_extract, which runs the selects themselves with a date where a view
has to use today's).

What goes in a view: partnership codes, case and file ids, codes and dates, counts. Never the
pseudonymised child key (`child_key`), never free text (findings, recommendations, methodology,
author, reasons, errors) and no child characteristics: those stay in the tables.

`ensure_views` (called by `warehouse.ensure_schema`) creates a view that is missing and replaces
one whose definition changed; an unchanged view is left alone (no lock taken on it, so an
analyst's open query never holds up a task). Each view carries a digest of its definition: in
its own text on SQLite, in `COMMENT ON VIEW` on PostgreSQL. See docs/design.md ("Reporting
views") and docs/analysts.md.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Date, Integer, String, and_, case, cast, extract, func, literal, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import Select

from reviews.core import warehouse as wh

# Columns no view may ever show (tests/unit/test_reporting_views.py checks every view).
NEVER_SHOWN = frozenset({"child_key", "finding", "recommendation", "author", "methodology", "reason",
                         "error", "notes", "raw_values", "values_json", "ethnicity"})
_ADVISORY_LOCK = 0x72657669  # serialises view changes between tasks on one PostgreSQL warehouse


def latest_timeliness(as_of: date | None = None) -> Select:
    """Each case and stage at its newest `as_of_date` (on or before `as_of`, when given)."""
    t = wh.timeliness
    keys = (t.c.partnership_code, t.c.stage, t.c.record_id)
    newest = select(*keys, func.max(t.c.as_of_date).label("as_of_date"))
    if as_of is not None:
        newest = newest.where(t.c.as_of_date <= as_of)
    newest = newest.group_by(*keys).subquery("newest")
    return (
        select(t.c.partnership_code, t.c.stage, t.c.record_id, t.c.as_of_date, t.c.start_date, t.c.due_date,
               t.c.completed_date, t.c.working_days_taken, t.c.status, t.c.rule_set)
        .select_from(t.join(newest, and_(t.c.partnership_code == newest.c.partnership_code,
                                         t.c.stage == newest.c.stage, t.c.record_id == newest.c.record_id,
                                         t.c.as_of_date == newest.c.as_of_date)))
    )


def actions(as_of: date | None = None) -> Select:
    """Every finding with a recommendation or an action, its action and the action's state as of a
    day: `as_of`, or in the view CURRENT_DATE (the database's today: UTC on SQLite, the session's
    time zone on PostgreSQL). The states are the bulletin's (learning.summary._action_state):
    completed if `action_completed_date` is on or before the day (or the status is completed with
    no date); otherwise overdue if `action_due_date` is before it; otherwise in progress if the
    status is in_progress or completed (completed after the day), else open."""
    lr, pr = wh.learning, wh.practice_reviews
    day = func.current_date() if as_of is None else literal(as_of, Date)
    done, due, status = lr.c.action_completed_date, lr.c.action_due_date, lr.c.action_status
    state = case(
        (or_(and_(done.is_not(None), done <= day), and_(status == "completed", done.is_(None))), "completed"),
        (and_(due.is_not(None), due < day), "overdue"),
        (status.in_(["in_progress", "completed"]), "in_progress"),
        else_="open",
    )
    return (
        select(lr.c.partnership_code, lr.c.finding_id, lr.c.review_id, pr.c.review_type,
               pr.c.completed_date.label("review_completed_date"), lr.c.theme, lr.c.owner_agency,
               lr.c.action_due_date, lr.c.action_status, lr.c.action_completed_date,
               day.label("state_as_of"), state.label("action_state"),
               case((state == "overdue", 1), else_=0).label("is_overdue"))
        .select_from(lr.outerjoin(pr, and_(pr.c.partnership_code == lr.c.partnership_code,
                                           pr.c.review_id == lr.c.review_id)))
        .where(or_(func.length(func.trim(func.coalesce(lr.c.recommendation, ""))) > 0,
                   status.is_not(None), due.is_not(None)))
    )


def themes_by_period(as_of: date | None = None) -> Select:
    """Findings by partnership, theme and calendar quarter (Q1 = January to March) of their
    review's `completed_date`, or of its `decision_date` while it is not completed (`dated_by`
    says which: the bulletins count completed reviews only). `as_of` is not used (no date of today)."""
    lr, pr = wh.learning, wh.practice_reviews
    day = func.coalesce(pr.c.completed_date, pr.c.decision_date)
    year = cast(extract("year", day), Integer)
    month = cast(extract("month", day), Integer)
    dated = (
        select(lr.c.partnership_code, lr.c.theme, lr.c.review_id, year.label("year"),
               ((month + 2) // 3).label("quarter"),
               case((month >= 4, year), else_=year - 1).label("fy"),
               case((pr.c.completed_date.is_not(None), "completed"), else_="decided").label("dated_by"))
        .select_from(lr.join(pr, and_(pr.c.partnership_code == lr.c.partnership_code,
                                      pr.c.review_id == lr.c.review_id)))
        .where(day.is_not(None))
        .subquery("dated")
    )
    d = dated.c
    label = cast(d.year, String) + literal("-Q", String) + cast(d.quarter, String)
    fy_label = cast(d.fy, String) + literal("-", String) + func.substr(cast(d.fy + 1, String), 3, 2)
    return (
        select(d.partnership_code, d.theme, d.year, d.quarter, label.label("period"), fy_label.label("financial_year"),
               d.dated_by, func.count().label("findings"), func.count(d.review_id.distinct()).label("reviews"))
        .group_by(d.partnership_code, d.theme, d.year, d.quarter, d.fy, d.dated_by)
    )


def returns_quality(as_of: date | None = None) -> Select:
    """One row per return file: what it brought and what became of its rows; `rows_awaiting_correction`
    counts its quarantined rows no later file has corrected yet. `as_of` is not used."""
    rf, q = wh.return_files, wh.quarantine
    waiting = (
        select(q.c.file_id, func.count().label("n"))
        .where(q.c.resolved_by_file_id.is_(None))
        .group_by(q.c.file_id)
        .subquery("waiting")
    )
    return (
        select(rf.c.partnership_code, rf.c.file_id, rf.c.file_name, rf.c.return_date, rf.c.received_at,
               rf.c.datasets, rf.c.rows_read, rf.c.rows_loaded, rf.c.rows_quarantined,
               func.coalesce(waiting.c.n, 0).label("rows_awaiting_correction"), rf.c.status)
        .select_from(rf.outerjoin(waiting, waiting.c.file_id == rf.c.file_id))
    )


def case_journeys(as_of: date | None = None) -> Select:
    """One row per notification, with its rapid review and practice review and their key dates.

    A notification with several rapid reviews shows the first completed (then the lowest id; the
    one statutory timeliness judges), one with several practice reviews the first decided (then
    the lowest id); `rapid_reviews` and `practice_reviews` count them all. Reviews with no
    notification (most national reviews) are in no journey. Built on the case tables alone.
    `as_of` is not used."""
    n, rr, pr = wh.notifications, wh.rapid_reviews, wh.practice_reviews
    rr_case = (rr.c.partnership_code, rr.c.notification_id)
    rr_ranked = select(
        rr.c.partnership_code, rr.c.notification_id, rr.c.rapid_review_id, rr.c.completed_date, rr.c.outcome,
        rr.c.panel_response_date, rr.c.panel_decision,
        func.row_number().over(partition_by=rr_case, order_by=(case((rr.c.completed_date.is_(None), 1), else_=0),
                                                               rr.c.completed_date, rr.c.rapid_review_id)).label("pick"),
        func.count().over(partition_by=rr_case).label("how_many"),
    ).subquery("rr")
    pr_case = (pr.c.partnership_code, pr.c.notification_id)
    pr_ranked = select(
        pr.c.partnership_code, pr.c.notification_id, pr.c.review_id, pr.c.review_type, pr.c.decision_date,
        pr.c.completed_date, pr.c.final_report_sent_date, pr.c.published_date, pr.c.status,
        func.row_number().over(partition_by=pr_case, order_by=(pr.c.decision_date, pr.c.review_id)).label("pick"),
        func.count().over(partition_by=pr_case).label("how_many"),
    ).where(pr.c.notification_id.is_not(None)).subquery("pr")
    return (
        select(
            n.c.partnership_code, n.c.notification_id, n.c.incident_type, n.c.incident_date, n.c.aware_date,
            n.c.notified_date,
            rr_ranked.c.rapid_review_id, rr_ranked.c.completed_date.label("rapid_review_completed_date"),
            rr_ranked.c.outcome.label("rapid_review_outcome"), rr_ranked.c.panel_response_date,
            rr_ranked.c.panel_decision, func.coalesce(rr_ranked.c.how_many, 0).label("rapid_reviews"),
            pr_ranked.c.review_id, pr_ranked.c.review_type, pr_ranked.c.decision_date.label("review_decision_date"),
            pr_ranked.c.completed_date.label("review_completed_date"), pr_ranked.c.final_report_sent_date,
            pr_ranked.c.published_date.label("review_published_date"), pr_ranked.c.status.label("review_status"),
            func.coalesce(pr_ranked.c.how_many, 0).label("practice_reviews"),
        )
        .select_from(
            n.outerjoin(rr_ranked, and_(rr_ranked.c.partnership_code == n.c.partnership_code,
                                        rr_ranked.c.notification_id == n.c.notification_id, rr_ranked.c.pick == 1))
            .outerjoin(pr_ranked, and_(pr_ranked.c.partnership_code == n.c.partnership_code,
                                       pr_ranked.c.notification_id == n.c.notification_id, pr_ranked.c.pick == 1))
        )
    )


@dataclass(frozen=True)
class View:
    name: str
    query: Callable[..., Select]  # query(as_of=None): the view's select; a date where the view uses today's
    order: tuple[str, ...]  # a unique order of its rows (the extract's)

    def columns(self) -> list[str]:
        return [c.name for c in self.query().selected_columns]


VIEWS: dict[str, View] = {v.name: v for v in (
    View("v_case_journeys", case_journeys, ("partnership_code", "notification_id")),
    View("v_latest_timeliness", latest_timeliness, ("partnership_code", "stage", "record_id")),
    View("v_actions", actions, ("partnership_code", "finding_id")),
    View("v_themes_by_period", themes_by_period, ("partnership_code", "theme", "year", "quarter", "dated_by")),
    View("v_returns_quality", returns_quality, ("partnership_code", "file_id")),
)}

_DIALECTS: dict[str, Dialect] = {"sqlite": sqlite.dialect(), "postgresql": postgresql.dialect()}


def body(name: str, dialect: Dialect | str) -> str:
    """The view's SELECT for a dialect, constants inline (a view takes no parameters)."""
    dialect = _DIALECTS[dialect] if isinstance(dialect, str) else dialect
    return str(VIEWS[name].query().compile(dialect=dialect, compile_kwargs={"literal_binds": True})).strip()


def digest(name: str, dialect: Dialect | str) -> str:
    return hashlib.sha256(body(name, dialect).encode("utf-8")).hexdigest()[:16]


def _marker(name: str, dialect) -> str:
    return f"reviews view {digest(name, dialect)}"


def create_sql(name: str, dialect: Dialect | str, *, if_not_exists: bool = False) -> str:
    """CREATE VIEW for a dialect. On SQLite the digest rides in the view's stored text as a comment."""
    dialect_name = dialect if isinstance(dialect, str) else dialect.name
    head = f"CREATE VIEW {'IF NOT EXISTS ' if if_not_exists else ''}{name} AS"
    if dialect_name == "sqlite":
        head += f" /* {_marker(name, dialect)} */"
    return f"{head}\n{body(name, dialect)}"


def views_ddl(dialect_name: str) -> str:
    """The views' DDL for one dialect, as kept in sql/ (drop and create: rerunnable in sqlite3 or psql)."""
    parts = ["-- Generated from include/reviews/core/views.py by `make schema`; do not edit by hand.\n"
             "-- Reporting views for analysts (docs/design.md, \"Reporting views\"; docs/analysts.md).\n"]
    for name in VIEWS:
        stmt = f"DROP VIEW IF EXISTS {name};\n{create_sql(name, dialect_name)};\n"
        if dialect_name == "postgresql":
            stmt += f"COMMENT ON VIEW {name} IS '{_marker(name, dialect_name)}';\n"
        parts.append(stmt)
    return "\n".join(parts)


def ensure_views(conn: Connection) -> list[str]:
    """Create each view that is missing or out of date (idempotent); the names of those made."""
    dialect = conn.dialect
    made = []
    if dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK})
    for name in VIEWS:
        if dialect.name == "postgresql":
            current = conn.execute(text("SELECT obj_description(to_regclass(:n), 'pg_class')"), {"n": name}).scalar()
            if current == _marker(name, dialect):
                continue
            conn.exec_driver_sql(f"DROP VIEW IF EXISTS {name}")
            conn.exec_driver_sql(create_sql(name, dialect))
            conn.exec_driver_sql(f"COMMENT ON VIEW {name} IS '{_marker(name, dialect)}'")
        else:
            current = conn.execute(text("SELECT sql FROM sqlite_master WHERE type = 'view' AND name = :n"),
                                   {"n": name}).scalar()
            if current is not None and _marker(name, dialect) in current:
                continue
            conn.exec_driver_sql(f"DROP VIEW IF EXISTS {name}")
            conn.exec_driver_sql(create_sql(name, dialect, if_not_exists=True))
        made.append(name)
    return made
