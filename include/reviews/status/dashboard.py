"""What the business unit's status page shows, per partnership, read from the warehouse.

Counts and dates only: last return received, rows quarantined from it, timeliness as of the
latest judgement, and the latest bulletin sent. No case data, so it is safe on a screen.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Engine, and_, func, select

from reviews.core import warehouse as wh
from reviews.core.config import Config

TIMELINESS_COLUMNS = ("met", "late", "open_at_risk", "open_overdue")


@dataclass
class PartnershipStatus:
    code: str
    name: str
    last_files: int = 0  # files in the latest return (a return may be one file per dataset)
    last_return_date: date | None = None
    last_received_at: datetime | None = None
    last_file_status: str | None = None
    last_return_rows_loaded: int = 0
    last_return_rows_quarantined: int = 0
    files_failed: int = 0
    timeliness: dict[str, int] = field(default_factory=dict)
    last_bulletin_subject: str | None = None
    last_bulletin_sent_at: datetime | None = None


@dataclass
class Dashboard:
    timeliness_as_of: date | None
    partnerships: list[PartnershipStatus]


def build_dashboard(engine: Engine, cfg: Config) -> Dashboard:
    rf, t, b, c = wh.return_files.c, wh.timeliness.c, wh.bulletins.c, wh.circulation_log.c
    out = {code: PartnershipStatus(code, p.name) for code, p in cfg.partnerships.items()}
    with engine.connect() as conn:
        latest_date = (
            select(rf.partnership_code, func.max(rf.return_date).label("d")).group_by(rf.partnership_code).subquery()
        )
        rows = conn.execute(
            select(rf.partnership_code, rf.file_name, rf.return_date, rf.received_at, rf.status,
                   rf.rows_loaded, rf.rows_quarantined)
            .join(latest_date, and_(rf.partnership_code == latest_date.c.partnership_code,
                                    rf.return_date == latest_date.c.d))
            .order_by(rf.partnership_code, rf.received_at, rf.file_id)
        )
        for r in rows:
            s = out.get(r.partnership_code)
            if s is None:
                continue
            s.last_files += 1
            s.last_return_date, s.last_received_at = r.return_date, r.received_at
            if s.last_file_status in (None, "loaded") or r.status == "failed":
                s.last_file_status = r.status  # the worst status among the return's files
            s.last_return_rows_loaded += r.rows_loaded
            s.last_return_rows_quarantined += r.rows_quarantined
        for code, n in conn.execute(
            select(rf.partnership_code, func.count()).where(rf.status == "failed").group_by(rf.partnership_code)
        ):
            if code in out:
                out[code].files_failed = n
        as_of = conn.execute(select(func.max(t.as_of_date))).scalar()
        if as_of is not None:
            for code, status, n in conn.execute(
                select(t.partnership_code, t.status, func.count()).where(t.as_of_date == as_of)
                .group_by(t.partnership_code, t.status)
            ):
                if code in out:
                    out[code].timeliness[status] = n
        for code, s in out.items():
            sent = conn.execute(
                select(b.subject, func.max(c.sent_at).label("sent_at"))
                .join(wh.circulation_log, c.bulletin_id == b.bulletin_id)
                .where(c.status == "sent", b.audience.in_([code, "region"]))
                .group_by(b.subject).order_by(func.max(c.sent_at).desc()).limit(1)
            ).first()
            if sent is not None:
                s.last_bulletin_subject, s.last_bulletin_sent_at = sent.subject, sent.sent_at
    return Dashboard(as_of, list(out.values()))
