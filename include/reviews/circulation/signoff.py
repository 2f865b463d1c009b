"""Sign-off: nothing is sent to partnerships until the business unit has approved it.

bulletin_circulation asks (an Airflow Human-in-the-loop request, under "Required actions") for a
decision on exactly the bulletin versions it would send, and records the request here, in
`bulletin_signoffs`, one row per period. Only the versions of an approved request are queued
(`approved_ids`); a rejection keeps its reason and sends nothing; a newer version built after the
request needs a request of its own. A request left unanswered for `circulation.signoff_reminder_hours`
reminds the business unit once (`remind_if_due`).

The request says what a person needs to decide: links to preview every bulletin (HTML and PDF,
served behind the Airflow login by the project's plugin), who will receive them, what was
redacted from the free text, and whose data is missing or late. It never holds case data.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Engine, insert, select, update

from reviews.core import warehouse as wh
from reviews.core.audit import audit_now
from reviews.core.config import Config
from reviews.core.mail import Message, check_recipients
from reviews.core.reporting_periods import long_date, period_label
from reviews.circulation.bulletin_sends import REGION, recipients_for
from reviews.learning.readiness import notice, PartnershipData

REQUESTED, APPROVED, REJECTED, WITHDRAWN = "requested", "approved", "rejected", "withdrawn"
APPROVE, REJECT = "Approve and send", "Reject"
PREVIEW = "/reviews/bulletins/{id}"  # the plugin's preview routes (plugins/reviews_airflow/ui.py)
PREVIEW_PDF = "/reviews/bulletins/{id}.pdf"
REDACTIONS = "/reviews/periods/{start}_{end}/redactions"
STATUS_PAGE = "/reviews/"


@dataclass(frozen=True)
class Request:
    """What one circulation run asks the business unit to sign off."""

    periods: tuple[tuple[date, date], ...]
    bulletin_ids: tuple[int, ...]
    subject: str
    body: str  # Markdown, as Airflow shows it under Required actions

    def to_xcom(self) -> dict:
        return {"periods": [[a.isoformat(), b.isoformat()] for a, b in self.periods],
                "bulletin_ids": list(self.bulletin_ids), "subject": self.subject, "body": self.body}


def newest_bulletins(engine: Engine, cfg: Config, start: date, end: date, audiences: list[str] | None = None) -> list[dict]:
    """The newest version of each learning bulletin of the period (region first), as dicts; or of
    each of `audiences` (the yearly report's: yearly_audiences)."""
    b = wh.bulletins.c
    audiences = audiences or [REGION, *cfg.partnerships]
    newest: dict[str, dict] = {}
    with engine.connect() as conn:
        for row in conn.execute(select(wh.bulletins).where(
                b.period_start == start, b.period_end == end, b.audience.in_(audiences)).order_by(b.version)).mappings():
            newest[row["audience"]] = dict(row)
    return [newest[a] for a in audiences if a in newest]


def _settled_ids(engine: Engine) -> set[int]:
    """Versions already approved, or in a request still open: not asked about again."""
    s = wh.bulletin_signoffs.c
    out: set[int] = set()
    with engine.connect() as conn:
        for ids in conn.execute(select(s.bulletin_ids).where(s.status.in_((REQUESTED, APPROVED)))).scalars():
            out.update(json.loads(ids))
    return out


def _sent_ids(engine: Engine, ids: list[int]) -> set[int]:
    c = wh.circulation_log.c
    if not ids:
        return set()
    with engine.connect() as conn:
        return set(conn.execute(select(c.bulletin_id).where(c.bulletin_id.in_(ids), c.status == "sent")).scalars())


def to_sign_off(engine: Engine, cfg: Config, periods, resend_ids=(), audiences: list[str] | None = None
                ) -> dict[tuple[date, date], list[dict]]:
    """Per period, the newest versions that still need a decision (not approved, not sent, not
    already asked about); `resend_ids` are asked about again even if sent (a correction).
    `audiences`: whose documents (default the learning bulletins'; yearly_audiences for the yearly report)."""
    settled = _settled_ids(engine)
    resend = set(resend_ids)
    out = {}
    for start, end in sorted(set(periods)):
        rows = newest_bulletins(engine, cfg, start, end, audiences)
        sent = _sent_ids(engine, [r["bulletin_id"] for r in rows])
        wanted = [r for r in rows if r["bulletin_id"] in resend
                  or (r["bulletin_id"] not in settled and r["bulletin_id"] not in sent)]
        if wanted:
            out[(start, end)] = wanted
    return out


def _recipients(cfg: Config, audience: str) -> tuple[list[str], list[str]]:
    allowed, refused = check_recipients(recipients_for(cfg, audience) or [], cfg.allowed_domains)
    return allowed, [a for a, _ in refused]


def _redaction_counts(engine: Engine, start: date, end: date) -> Counter:
    r = wh.bulletin_redactions.c
    with engine.connect() as conn:
        return Counter(conn.execute(select(r.kind).where(r.period_start == start, r.period_end == end)).scalars())


def _missing_lines(rows: list[dict], cfg: Config, label: str) -> list[str]:
    """Whose data the newest region version was built without (its stored data_status)."""
    region = next((r for r in rows if r["audience"] == REGION), rows[0])
    data = json.loads(region.get("data_status") or "null") or {}
    lines = []
    for code, v in (data.get("partnerships") or {}).items():
        name = cfg.partnerships[code].name if code in cfg.partnerships else code
        p = PartnershipData(code, name, v.get("status", ""), _day(v.get("due")), _day(v.get("received")))
        if (line := notice(p, label)) is not None:
            lines.append(line)
    return lines


def _withheld_lines(rows: list[dict]) -> list[str]:
    """The reviews published in the period whose 7-minute briefing is not sent (no findings), from
    the newest region version's data_status: the business unit is told here instead."""
    region = next((r for r in rows if r["audience"] == REGION), rows[0])
    data = json.loads(region.get("data_status") or "null") or {}
    return [f"{w['partnership']}, review {w['review_id']}: not sent, because {w['reason']}."
            for w in data.get("briefings_withheld") or []]


def _day(value) -> date | None:
    return date.fromisoformat(value) if value else None


def build_request(engine: Engine, cfg: Config, wanted: dict[tuple[date, date], list[dict]]) -> Request:
    """The subject and Markdown body of the sign-off request for these versions."""
    ids, parts = [], []
    labels = []
    for (start, end), rows in wanted.items():
        label = period_label(start, end)
        labels.append(label)
        ids += [r["bulletin_id"] for r in rows]
        updated = any(r["version"] > 1 for r in rows)
        parts.append(f"## {label}{' (updated version)' if updated else ''}")
        parts.append("Preview each bulletin before you decide (opens behind the Airflow login):")
        total = 0
        for r in rows:
            name = cfg.region_name if r["audience"] == REGION else cfg.partnerships[r["audience"]].name
            allowed, refused = _recipients(cfg, r["audience"])
            total += len(allowed)
            line = (f"- **{name}**, version {r['version']}: [HTML]({PREVIEW.format(id=r['bulletin_id'])}) · "
                    f"[PDF]({PREVIEW_PDF.format(id=r['bulletin_id'])}) — to {len(allowed)} recipient(s): "
                    + ", ".join(allowed))
            if refused:
                line += f" (not sent, outside the allowed domains: {', '.join(refused)})"
            parts.append(line)
        parts.append(f"\n{total} email(s) in all.")
        missing = _missing_lines(rows, cfg, label)
        parts.append("\n### Data missing or late")
        parts += [f"- {m}" for m in missing] or ["- None: every partnership's return was in on time."]
        withheld = _withheld_lines(rows)
        if withheld:
            parts.append("\n### 7-minute briefings not sent")
            parts += [f"- {w}" for w in withheld]
        kinds = _redaction_counts(engine, start, end)
        parts.append("\n### Redactions")
        if kinds:
            listed = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(kinds.items()))
            parts.append(f"- {sum(kinds.values())} removed from the free text ({listed}): "
                         f"[the list]({REDACTIONS.format(start=start.isoformat(), end=end.isoformat())}).")
        else:
            parts.append("- None: nothing was removed from the free text.")
    parts.append(f"\n**{APPROVE}** queues and sends exactly these versions. **{REJECT}** sends nothing: "
                 "give the reason in the form, and rebuild or correct before the next request.")
    subject = f"Sign off the learning bulletins: {', '.join(labels)}"
    return Request(tuple(wanted), tuple(ids), subject, "\n".join(parts))


def yearly_audiences(cfg: Config) -> list[str]:
    """The yearly report's audiences in `bulletins` (learning.yearly): the region's, then each partnership's."""
    return [f"yearly:{a}" for a in (REGION, *cfg.partnerships)]


def build_yearly_request(cfg: Config, wanted: dict[tuple[date, date], list[dict]]) -> Request:
    """The sign-off request for the yearly report (the same form as the bulletins': previews,
    recipients; its figures are counts only, so there are no redactions or data notices)."""
    ids, parts, labels = [], [], []
    for (start, end), rows in wanted.items():
        label = period_label(start, end)
        labels.append(label)
        ids += [r["bulletin_id"] for r in rows]
        parts.append(f"## The yearly report, {label}")
        parts.append("Preview each report before you decide (opens behind the Airflow login):")
        total = 0
        for r in rows:
            area = r["audience"].partition(":")[2]
            name = cfg.region_name if area == REGION else cfg.partnerships[area].name
            allowed, refused = _recipients(cfg, r["audience"])
            total += len(allowed)
            line = (f"- **{name}**, version {r['version']}: [HTML]({PREVIEW.format(id=r['bulletin_id'])}) · "
                    f"[PDF]({PREVIEW_PDF.format(id=r['bulletin_id'])}) — to {len(allowed)} recipient(s): "
                    + ", ".join(allowed))
            if refused:
                line += f" (not sent, outside the allowed domains: {', '.join(refused)})"
            parts.append(line)
        parts.append(f"\n{total} email(s) in all, each with the report's PDF and XLSX attached.")
    parts.append(f"\n**{APPROVE}** queues and sends exactly these versions. **{REJECT}** sends nothing: "
                 "give the reason in the form, and rebuild or correct before the next request.")
    return Request(tuple(wanted), tuple(ids), f"Sign off the yearly report: {', '.join(labels)}", "\n".join(parts))


def record_request(engine: Engine, request: Request, wanted: dict, dag_id: str, run_id: str, clock=audit_now) -> None:
    """One `requested` row per period (a rerun of the same run replaces its own open rows)."""
    s = wh.bulletin_signoffs
    now = clock()
    with engine.begin() as conn:
        conn.execute(s.update().where(s.c.dag_id == dag_id, s.c.run_id == run_id, s.c.status == REQUESTED)
                     .values(status=WITHDRAWN, decided_at=now, reason="asked again by a rerun of the same run"))
        for (start, end), rows in wanted.items():
            conn.execute(insert(s), {"period_start": start, "period_end": end, "status": REQUESTED,
                                     "bulletin_ids": json.dumps([r["bulletin_id"] for r in rows]),
                                     "dag_id": dag_id, "run_id": run_id, "requested_at": now})


def record_decision(engine: Engine, dag_id: str, run_id: str, approved: bool, by: str, reason: str,
                    clock=audit_now) -> int:
    """Mark the run's open requests approved or rejected; returns how many rows it decided."""
    s = wh.bulletin_signoffs
    with engine.begin() as conn:
        return conn.execute(
            update(s).where(s.c.dag_id == dag_id, s.c.run_id == run_id, s.c.status == REQUESTED)
            .values(status=APPROVED if approved else REJECTED, decided_at=clock(), decided_by=by[:200],
                    reason=(reason or None))
        ).rowcount


def approved_ids(engine: Engine, dag_id: str, run_id: str) -> set[int]:
    """The bulletin versions this run's sign-off approved (nothing else may be queued by it)."""
    s = wh.bulletin_signoffs.c
    out: set[int] = set()
    with engine.connect() as conn:
        for ids in conn.execute(select(s.bulletin_ids).where(
                s.dag_id == dag_id, s.run_id == run_id, s.status == APPROVED)).scalars():
            out.update(json.loads(ids))
    return out


def open_requests(engine: Engine, dag_id: str, run_id: str) -> list[dict]:
    s = wh.bulletin_signoffs
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(s).where(
            s.c.dag_id == dag_id, s.c.run_id == run_id, s.c.status == REQUESTED)).mappings()]


def remind_if_due(engine: Engine, cfg: Config, transport, dag_id: str, run_id: str, now: datetime,
                  base_url: str = "") -> str:
    """'decided' (nothing left to wait for), 'reminded' (sent the one reminder now), 'waiting'."""
    rows = open_requests(engine, dag_id, run_id)
    if not rows:
        return "decided"
    if any(r["reminded_at"] is not None for r in rows):
        return "decided"  # reminded once already: stop watching
    asked = min(_aware(r["requested_at"]) for r in rows)
    if now - asked < timedelta(hours=cfg.circulation.signoff_reminder_hours):
        return "waiting"
    s = wh.bulletin_signoffs
    with engine.begin() as conn:  # claim first: a crash after this never reminds twice
        claimed = conn.execute(update(s).where(s.c.dag_id == dag_id, s.c.run_id == run_id, s.c.status == REQUESTED,
                                               s.c.reminded_at.is_(None)).values(reminded_at=now)).rowcount
    if claimed:
        transport.send(cfg.sender, reminder(cfg, rows, asked, base_url))
    return "reminded"


def reminder(cfg: Config, rows: list[dict], asked: datetime, base_url: str = "") -> Message:
    """The one reminder to the business unit: which bulletins wait, since when, where to answer."""
    from reviews.core.rendering import templates

    labels = [period_label(r["period_start"], r["period_end"]) for r in rows]
    context = {"labels": labels, "asked": f"{long_date(asked.date())} at {asked:%H:%M} UTC",
               "hours": cfg.circulation.signoff_reminder_hours, "required_actions": f"{base_url}/required_actions",
               "status_page": f"{base_url}{STATUS_PAGE}", "region": cfg.region_name}
    env = templates()
    return Message(to=tuple(cfg.business_unit_email), subject=f"Reminder: learning bulletins waiting for sign-off ({', '.join(labels)})",
                   html=env.get_template("signoff_reminder.html.j2").render(context),
                   text=env.get_template("signoff_reminder.txt.j2").render(context))


def _aware(value: datetime) -> datetime:
    from datetime import timezone

    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
