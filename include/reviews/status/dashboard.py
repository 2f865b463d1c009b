"""What the business unit's status page shows, read from the warehouse as of a day.

Per partnership: the last return (received on, on time / late / not loaded, due on), the next
return expected and its due date, late or missing returns, links to its newest data quality
reports, the latest return's rows, and statutory timeliness per stage. For the region: bulletins
waiting for sign-off and bulletins sent. Counts, dates and case-free subjects only: no case data,
so it is safe on a screen.

`as_of` is a parameter (the page passes today's date; tests fix it): the next return expected is
the first period, from the config's `returns`, with nothing received that is not yet due as of
that day. Late and missing flags are those of the latest `return_expectations` check (the
partnership_returns run), which the page names.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import Engine, and_, func, select

from reviews.core import warehouse as wh
from reviews.core.config import Config, ReturnsRule
from reviews.returns.quality_reports import QUALITY
from reviews.returns.returns_due import period_end_of, periods, window, window_of
from reviews.timeliness.compute import STAGES

TIMELINESS_STATUSES = ("met", "late", "open_on_track", "open_at_risk", "open_overdue", "not_applicable", "unknown")
QUALITY_LINKS = 3  # newest data quality reports linked per partnership
LATE_FLAG_DAYS = 366  # a return received late stays flagged for a year; missing ones until they arrive
SENT_SHOWN = 30  # bulletins sent, newest first


@dataclass(frozen=True)
class ReturnPeriod:
    """One period's return: what was expected, when it was due and, if it came, when."""

    period_start: date
    period_end: date
    due_date: date
    received_date: date | None = None
    status: str | None = None  # on_time | late | missing | failed; None: not judged yet


@dataclass(frozen=True)
class DocumentLink:
    bulletin_id: int
    period_start: date
    period_end: date
    version: int
    subject: str
    built_at: datetime | None = None


@dataclass
class PartnershipStatus:
    code: str
    name: str
    last_return: ReturnPeriod | None = None  # the latest period a return was received for
    next_return: ReturnPeriod | None = None  # the next one expected (not received, not yet due)
    flags: list[ReturnPeriod] = field(default_factory=list)  # missing, not loaded, or late in the last year
    quality_reports: list[DocumentLink] = field(default_factory=list)  # newest first
    last_files: int = 0  # files in the latest return (a return may be one file per dataset)
    last_return_date: date | None = None
    last_received_at: datetime | None = None
    last_file_status: str | None = None
    last_return_rows_loaded: int = 0
    last_return_rows_quarantined: int = 0
    last_return_rows_flagged: int = 0  # loaded with a `flag` rule broken (within rows loaded)
    open_flags: int = 0  # current row_flags of the partnership (not superseded by a later return)
    files_failed: int = 0
    timeliness: dict[str, dict[str, int]] = field(default_factory=dict)  # stage -> status -> cases
    last_bulletin_subject: str | None = None
    last_bulletin_sent_at: datetime | None = None


@dataclass(frozen=True)
class BulletinRef:
    bulletin_id: int
    audience: str  # 'region' or a partnership code
    name: str  # who it is for, in words
    version: int


@dataclass(frozen=True)
class SignoffWaiting:
    signoff_id: int
    period_start: date
    period_end: date
    requested_at: datetime
    bulletins: list[BulletinRef]


@dataclass(frozen=True)
class BulletinSent:
    bulletin: BulletinRef
    period_start: date
    period_end: date
    recipients: int  # recipients it was sent to
    last_sent_at: datetime


@dataclass(frozen=True)
class PeriodWaiting:
    """A bulletin period not built yet because returns covering it are still to come."""

    period_start: date
    period_end: date
    checked_as_of: date
    waiting_for: list[str]  # partnership names whose return is not in, with its state in words


@dataclass
class Dashboard:
    as_of: date
    timeliness_as_of: date | None
    returns_checked_as_of: date | None
    returns_frequency: str | None  # monthly | quarterly; None: returns are not checked (config)
    partnerships: list[PartnershipStatus]
    awaiting_signoff: list[SignoffWaiting] = field(default_factory=list)
    sent: list[BulletinSent] = field(default_factory=list)
    periods_waiting: list[PeriodWaiting] = field(default_factory=list)  # bulletin periods waiting for returns

    def timeliness_totals(self, stage: str) -> dict[str, int]:
        totals: dict[str, int] = {}
        for p in self.partnerships:
            for status, n in p.timeliness.get(stage, {}).items():
                totals[status] = totals.get(status, 0) + n
        return totals

    @property
    def stages(self) -> tuple[str, ...]:
        return STAGES


def next_return(rule: ReturnsRule, received: set[date], as_of: date) -> ReturnPeriod | None:
    """The first period (by `periods`) not yet due as of as_of whose return has not been received.

    `received`: the last days of the periods a return was received for (`window_of` of each return's date).
    """
    upto = period_end_of(as_of, rule.frequency)
    for _ in range(4):  # this period and the next; a period received early is skipped
        for start, end in periods(rule, upto):
            due = end + timedelta(days=rule.due_days_after_period_end)
            if due >= as_of and end not in received:
                return ReturnPeriod(start, end, due)
        upto = period_end_of(upto + timedelta(days=1), rule.frequency)
    return None


def _last_returns(conn, out: dict[str, PartnershipStatus]) -> None:
    """The latest return's files (by return date): rows loaded, quarantined and flagged, the worst
    status; and each partnership's flags still current (row_flags not superseded)."""
    rf = wh.return_files.c
    latest = select(rf.partnership_code, func.max(rf.return_date).label("d")).group_by(rf.partnership_code).subquery()
    for r in conn.execute(
        select(rf.partnership_code, rf.return_date, rf.received_at, rf.status, rf.rows_loaded, rf.rows_quarantined,
               rf.rows_flagged)
        .join(latest, and_(rf.partnership_code == latest.c.partnership_code, rf.return_date == latest.c.d))
        .order_by(rf.partnership_code, rf.received_at, rf.file_id)
    ):
        s = out.get(r.partnership_code)
        if s is None:
            continue
        s.last_files += 1
        s.last_return_date, s.last_received_at = r.return_date, r.received_at
        if s.last_file_status in (None, "loaded") or r.status == "failed":
            s.last_file_status = r.status  # the worst status among the return's files
        s.last_return_rows_loaded += r.rows_loaded
        s.last_return_rows_quarantined += r.rows_quarantined
        s.last_return_rows_flagged += r.rows_flagged or 0
    fl = wh.row_flags.c
    for code, n in conn.execute(
        select(fl.partnership_code, func.count()).where(fl.superseded_by_file_id.is_(None)).group_by(fl.partnership_code)
    ):
        if code in out:
            out[code].open_flags = n
    for code, n in conn.execute(
        select(rf.partnership_code, func.count()).where(rf.status == "failed").group_by(rf.partnership_code)
    ):
        if code in out:
            out[code].files_failed = n


def _expectations(conn, out: dict[str, PartnershipStatus], rule: ReturnsRule | None, as_of: date) -> date | None:
    """Last and next return, and the flags of the latest check; returns that check's as-of date."""
    rx, rf = wh.return_expectations.c, wh.return_files.c
    checked = conn.execute(select(func.max(rx.as_of_date)).where(rx.as_of_date <= as_of)).scalar()
    if checked is not None:
        for r in conn.execute(select(wh.return_expectations).where(rx.as_of_date == checked)
                              .order_by(rx.partnership_code, rx.period_end.desc())):
            s = out.get(r.partnership_code)
            if s is None:
                continue
            period = ReturnPeriod(r.period_start, r.period_end, r.due_date, r.received_date, r.status)
            if r.received_date is not None and s.last_return is None:
                s.last_return = period
            if r.status in ("missing", "failed") or (r.status == "late"
                                                     and r.period_end >= as_of - timedelta(days=LATE_FLAG_DAYS)):
                s.flags.append(period)
    if rule is None:
        return checked
    received: dict[str, set[date]] = {code: set() for code in out}
    for code, d in conn.execute(select(rf.partnership_code, rf.return_date)
                                .where(rf.status != "failed", rf.return_date.is_not(None), rf.return_date <= as_of)
                                .distinct()):
        if code in received:
            received[code].add(window_of(rule, d))
    for code, s in out.items():
        s.next_return = next_return(rule, received[code], as_of)
        if s.last_return is None and received[code]:  # not judged yet: the files say what came
            end = max(received[code])
            lo, hi = window(rule, end)
            first = conn.execute(select(func.min(rf.return_date)).where(
                rf.partnership_code == code, rf.status != "failed", rf.return_date >= lo, rf.return_date < hi)).scalar()
            start = end.replace(day=1) if rule.frequency == "monthly" else date(end.year, end.month - 2, 1)
            s.last_return = ReturnPeriod(start, end, end + timedelta(days=rule.due_days_after_period_end), first)
    return checked


def _quality_reports(conn, out: dict[str, PartnershipStatus]) -> None:
    b = wh.bulletins.c
    for code, s in out.items():
        s.quality_reports = [
            DocumentLink(r.bulletin_id, r.period_start, r.period_end, r.version, r.subject, r.built_at)
            for r in conn.execute(
                select(b.bulletin_id, b.period_start, b.period_end, b.version, b.subject, b.built_at)
                .where(b.audience == f"{QUALITY}:{code}")
                .order_by(b.period_end.desc(), b.version.desc(), b.bulletin_id.desc()).limit(QUALITY_LINKS))
        ]


def _timeliness(conn, out: dict[str, PartnershipStatus], as_of: date) -> date | None:
    """Cases per stage and status as of the latest judgement on or before as_of."""
    t = wh.timeliness.c
    judged = conn.execute(select(func.max(t.as_of_date)).where(t.as_of_date <= as_of)).scalar()
    if judged is None:
        return None
    for code, stage, status, n in conn.execute(
        select(t.partnership_code, t.stage, t.status, func.count()).where(t.as_of_date == judged)
        .group_by(t.partnership_code, t.stage, t.status)
    ):
        if code in out:
            out[code].timeliness.setdefault(stage, {})[status] = n
    return judged


def _audience_name(cfg: Config, audience: str) -> str:
    if audience == "region":
        return f"{cfg.region_name or 'Region'} (regional bulletin)"
    p = cfg.partnerships.get(audience)
    return p.name if p is not None else audience


def _is_learning(audience) -> bool:
    return ~audience.contains(":")  # 'quality:…' and 'returns:…' are feedback, not learning bulletins


def _bulletins_sent(conn, cfg: Config, out: dict[str, PartnershipStatus]) -> list[BulletinSent]:
    b, c = wh.bulletins.c, wh.circulation_log.c
    rows = conn.execute(
        select(b.bulletin_id, b.audience, b.version, b.period_start, b.period_end, b.subject,
               func.count(func.distinct(c.recipient)).label("recipients"), func.max(c.sent_at).label("sent_at"))
        .join(wh.circulation_log, c.bulletin_id == b.bulletin_id)
        .where(c.status == "sent", _is_learning(b.audience))
        .group_by(b.bulletin_id, b.audience, b.version, b.period_start, b.period_end, b.subject)
        .order_by(func.max(c.sent_at).desc(), b.bulletin_id.desc())
    ).all()
    for r in rows:  # newest first: the first seen for a partnership (its page or the region's) is its latest
        for code in ([r.audience] if r.audience in out else list(out) if r.audience == "region" else []):
            s = out[code]
            if s.last_bulletin_sent_at is None:
                s.last_bulletin_subject, s.last_bulletin_sent_at = r.subject, r.sent_at
    return [BulletinSent(BulletinRef(r.bulletin_id, r.audience, _audience_name(cfg, r.audience), r.version),
                         r.period_start, r.period_end, r.recipients, r.sent_at) for r in rows[:SENT_SHOWN]]


def _awaiting_signoff(conn, cfg: Config) -> list[SignoffWaiting]:
    s, b = wh.bulletin_signoffs.c, wh.bulletins.c
    requests = conn.execute(select(wh.bulletin_signoffs).where(s.status == "requested")
                            .order_by(s.period_end.desc(), s.requested_at.desc())).all()
    waiting = []
    for r in requests:
        try:
            ids = [int(i) for i in json.loads(r.bulletin_ids or "[]")]
        except (ValueError, TypeError):
            ids = []
        found = conn.execute(select(b.bulletin_id, b.audience, b.version).where(b.bulletin_id.in_(ids))).all() if ids else []
        refs = sorted((BulletinRef(x.bulletin_id, x.audience, _audience_name(cfg, x.audience), x.version) for x in found),
                      key=lambda ref: (ref.audience != "region", ref.name, ref.version))
        waiting.append(SignoffWaiting(r.signoff_id, r.period_start, r.period_end, r.requested_at, refs))
    return waiting


def _periods_waiting(conn, cfg: Config) -> list[PeriodWaiting]:
    p = wh.bulletin_periods.c
    out = []
    for r in conn.execute(select(p.period_start, p.period_end, p.checked_as_of, p.data_status)
                          .where(p.status == "waiting").order_by(p.period_end.desc())):
        try:
            state = json.loads(r.data_status or "{}")
        except ValueError:
            state = {}
        waiting_for = [f"{_audience_name(cfg, code)} ({info.get('status', 'waiting')})"
                       for code, info in sorted(state.items()) if isinstance(info, dict) and info.get("status") != "in"]
        out.append(PeriodWaiting(r.period_start, r.period_end, r.checked_as_of, waiting_for))
    return out


def build_dashboard(engine: Engine, cfg: Config, as_of: date) -> Dashboard:
    """Everything the status page shows, as of `as_of` (the page: today)."""
    out = {code: PartnershipStatus(code, p.name) for code, p in cfg.partnerships.items()}
    with engine.connect() as conn:
        _last_returns(conn, out)
        checked = _expectations(conn, out, cfg.returns, as_of)
        _quality_reports(conn, out)
        judged = _timeliness(conn, out, as_of)
        sent = _bulletins_sent(conn, cfg, out)
        awaiting = _awaiting_signoff(conn, cfg)
        waiting_periods = _periods_waiting(conn, cfg)
    return Dashboard(as_of=as_of, timeliness_as_of=judged, returns_checked_as_of=checked,
                     returns_frequency=cfg.returns.frequency if cfg.returns else None,
                     partnerships=list(out.values()), awaiting_signoff=awaiting, sent=sent,
                     periods_waiting=waiting_periods)

