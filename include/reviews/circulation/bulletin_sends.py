"""Circulate bulletins exactly once per recipient, with the ledger in `circulation_log`.

Two steps, so building bulletins (and backfills) never sends anything by itself:
`queue_bulletin_sends` decides who should get what and writes one row per (bulletin, recipient)
before anything is sent; `send_pending` works through that ledger.

Statuses and transitions (one row per bulletin and recipient, guarded by uq_circulation_once):

    (none)            -> pending    queued; recipient on the list and in allowed_domains
    (none)            -> refused    address implausible or outside allowed_domains (never sent)
    pending | failed  -> sending    claimed by send_pending: attempt + 1, committed BEFORE the send
    sending           -> sent       the server accepted it (sent_at, transport, message_ref)
    sending           -> failed     the server (or the connection, before DATA) said no
    pending | failed  -> refused    a newer version superseded this one before it was sent; the
                                    recipient left the list or allowed_domains
    refused           -> pending    (newest version only) the recipient is allowed again
    sending           -> sent|failed  only by an analyst, with `resolve_unconfirmed`

The crash window. A row is `sending` from the committed claim until the result is written. If
the process dies in between, or the connection drops during DATA, nobody knows whether the
server accepted the message. We choose AT-MOST-ONCE for that window: a `sending` row is never
resent automatically; `send_pending` reports it as unconfirmed, with the Message-ID recorded at
claim time so an analyst can look it up in the mail server's log, then calls
`resolve_unconfirmed`. A missed bulletin is easy to notice and send; a duplicate to a
safeguarding partnership cannot be taken back. Failures that certainly did not deliver
(connection refused, 4xx/5xx replies, a drop before DATA) are retried: transient ones within the
call with exponential backoff, and by later calls while attempt < max_attempts.

Run one sender at a time (give the sending DAG max_active_runs=1): a `sending` row cannot tell
a crashed sender from a running one. Even so, every claim is a compare-and-set on
(status, attempt), so two senders can never both claim the same row.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.dialects import postgresql, sqlite

from reviews.core.audit import audit_now
from reviews.core.config import Config
from reviews.core.mail import (
    LoginError,
    MailError,
    Message,
    SendError,
    Transport,
    check_recipients,
    describe_error,
    is_transient,
    message_id,
)
from reviews.core.warehouse import bulletins, circulation_log

PENDING, SENDING, SENT, FAILED, REFUSED = "pending", "sending", "sent", "failed", "refused"
STATUSES = (PENDING, SENDING, SENT, FAILED, REFUSED)
REGION = "region"

Clock = Callable[[], datetime]


utc_now = audit_now  # audit timestamps only (queued_at, sent_at); no decision depends on the clock


# ---------------------------------------------------------------------------------------------
# Queue


@dataclass
class QueueReport:
    bulletin_ids: list[int] = field(default_factory=list)  # newest version per (period, audience)
    queued: int = 0  # new pending rows (including refused rows re-armed)
    refused: int = 0  # new refused rows (recipient not allowed / implausible)
    already_in_ledger: int = 0  # rows that existed and were left as they were
    not_resent: int = 0  # got an earlier version; no resend asked for this bulletin
    superseded: int = 0  # unsent rows of older versions withdrawn
    withdrawn: int = 0  # unsent rows whose recipient left the list or allowed_domains
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{len(self.bulletin_ids)} bulletin(s): {self.queued} queued, {self.refused} refused, "
            f"{self.not_resent} not resent, {self.superseded} superseded, {self.withdrawn} withdrawn, "
            f"{self.already_in_ledger} already in ledger; {len(self.problems)} problem(s)"
        )


def recipients_for(cfg: Config, audience: str) -> list[str] | None:
    """Who receives a bulletin for this audience, as configured (None: unknown audience).

    Besides 'region' and a partnership code, feedback from partnership_returns (returns.quality_reports):
    'quality:{code}' (a return's data quality report) goes to that partnership's data_contact,
    'returns:{code}' (its return is late or missing) to the business unit; and the yearly report
    ('yearly:region', 'yearly:{code}') to the business contacts (`yearly_recipients`).
    """
    kind, sep, code = audience.partition(":")
    if kind == "yearly" and sep:  # the yearly report (learning.yearly): to the business contacts
        return yearly_recipients(cfg, code)
    if sep:
        fp = cfg.partnerships.get(code)
        if fp is None:
            return None
        return {"quality": list(fp.data_contact), "returns": list(cfg.business_unit_email)}.get(kind)
    if audience == REGION:
        out: list[str] = []
        for p in cfg.partnerships.values():
            out.extend(p.distribution)
        out.extend(cfg.business_unit_email)
        return out
    p = cfg.partnerships.get(audience)
    return list(p.distribution) if p else None


def business_contact(cfg: Config, code: str) -> list[str]:
    """A partnership's business contact (config `business_contact`; its `distribution` when unset)."""
    p = cfg.partnerships[code]
    return list(p.business_contact or p.distribution)


def yearly_recipients(cfg: Config, area: str) -> list[str] | None:
    """The yearly report's recipients: a partnership's own report to its business contact; the
    regional report to every partnership's business contact and the business unit."""
    if area == REGION:
        out = [a for code in cfg.partnerships for a in business_contact(cfg, code)]
        return out + [a for a in cfg.business_unit_email if a not in out]
    return business_contact(cfg, area) if area in cfg.partnerships else None


def _insert_if_absent(conn, row: dict) -> bool:
    """Insert one ledger row unless (bulletin_id, recipient) is already there; True if inserted."""
    name = conn.dialect.name
    if name in ("sqlite", "postgresql"):
        mod = sqlite if name == "sqlite" else postgresql
        stmt = mod.insert(circulation_log).on_conflict_do_nothing(index_elements=["bulletin_id", "recipient"])
        return conn.execute(stmt, [row]).rowcount == 1
    try:  # other dialects: a savepoint per row
        with conn.begin_nested():
            conn.execute(insert(circulation_log), [row])
        return True
    except IntegrityError:
        return False


def _groups(conn) -> dict[tuple, list[dict]]:
    """(period_start, period_end, audience) -> its bulletins, newest version first."""
    groups: dict[tuple, list[dict]] = {}
    stmt = select(bulletins).order_by(
        bulletins.c.period_start, bulletins.c.period_end, bulletins.c.audience, bulletins.c.version.desc()
    )
    for row in conn.execute(stmt).mappings():
        groups.setdefault((row["period_start"], row["period_end"], row["audience"]), []).append(dict(row))
    return groups


def queue_bulletin_sends(
    engine: Engine,
    cfg: Config,
    *,
    resend_bulletin_ids: Iterable[int] = frozenset(),
    periods: Iterable[tuple[date, date]] | None = None,
    approved_ids: Iterable[int] | None = None,
    clock: Clock = utc_now,
) -> QueueReport:
    """Write the ledger rows for the newest version of each bulletin, before any send.

    `approved_ids` (what bulletin_circulation passes: the versions its sign-off approved): only
    those are queued; a period whose newest version is not among them queues nothing (a newer
    version built since the approval needs a sign-off of its own). An approved update (version 2
    after late data) goes to everyone again: approving it is the decision to resend.

    `resend_bulletin_ids`: newest versions an analyst asked to go again to recipients who already
    had an earlier version (a correction); an id that is not a newest version is an error.
    `periods` limits the work to those (start, end) pairs; without it every period in `bulletins`
    is considered, so someone newly added to a list is queued for past periods' bulletins too.
    """
    resend = set(resend_bulletin_ids)
    period_set = set(periods) if periods is not None else None
    report = QueueReport()
    now = clock()
    with engine.begin() as conn:
        groups = _groups(conn)
        newest = {versions[0]["bulletin_id"] for versions in groups.values()}
        wrong = sorted(resend - newest)
        resend &= newest  # with approved_ids: an approved version superseded since is reported below
        if wrong and approved_ids is None:
            raise ValueError(
                f"resend asked for bulletin id(s) {wrong}, which are not the newest version of their "
                "period and audience (or do not exist); nothing was queued"
            )
        approved = set(approved_ids) if approved_ids is not None else None
        for (start, end, audience), versions in groups.items():
            if approved is not None:
                if not approved & {v["bulletin_id"] for v in versions}:
                    continue
                if versions[0]["bulletin_id"] not in approved:
                    report.problems.append(
                        f"bulletin {versions[0]['bulletin_id']} ({start}..{end}, {audience}) was built after the "
                        "approved version: it needs a sign-off of its own; nothing queued for it")
                    continue
            if period_set is None or (start, end) in period_set:
                _queue_group(conn, cfg, versions, audience, resend, now, report)
    return report


def _queue_group(conn, cfg, versions, audience, resend, now, report: QueueReport) -> None:
    newest, older = versions[0], versions[1:]
    bid = newest["bulletin_id"]
    report.bulletin_ids.append(bid)
    configured = recipients_for(cfg, audience)
    if configured is None:
        report.problems.append(
            f"bulletin {bid} ({newest['period_start']}..{newest['period_end']}): audience {audience!r} "
            "is neither 'region' nor a configured partnership; nobody queued"
        )
        return
    allowed, refused = check_recipients(configured, cfg.allowed_domains)

    got_earlier: set[str] = set()
    older_ids = [v["bulletin_id"] for v in older]
    if older_ids:
        rows = conn.execute(
            select(circulation_log.c.send_id, circulation_log.c.recipient, circulation_log.c.status).where(
                circulation_log.c.bulletin_id.in_(older_ids)
            )
        ).all()
        for send_id, recipient, status in rows:
            if status in (SENT, SENDING):  # `sending` may have arrived: counts as got
                got_earlier.add(recipient)
            elif status in (PENDING, FAILED):  # never send an outdated version
                report.superseded += _set_status(
                    conn, send_id, (PENDING, FAILED), REFUSED,
                    f"superseded by bulletin {bid} (version {newest['version']}) before it was sent",
                )

    existing = {
        r["recipient"]: r
        for r in conn.execute(select(circulation_log).where(circulation_log.c.bulletin_id == bid)).mappings()
    }
    wanted: dict[str, tuple[str, str | None]] = {}  # recipient -> (status, error)
    for addr in allowed:
        if addr in got_earlier and bid not in resend and existing.get(addr, {}).get("status") in (None, REFUSED):
            report.not_resent += 1
            continue
        wanted[addr] = (PENDING, None)
    for addr, reason in refused:
        wanted.setdefault(addr[:320], (REFUSED, reason))

    for addr, (status, error) in wanted.items():
        row = existing.get(addr)
        if row is None:
            new = {"bulletin_id": bid, "recipient": addr, "status": status, "attempt": 0,
                   "queued_at": now, "error": error}
            if not _insert_if_absent(conn, new):
                report.already_in_ledger += 1  # a concurrent queue run wrote it first
            elif status == PENDING:
                report.queued += 1
            else:
                report.refused += 1
        elif row["status"] == REFUSED and status == PENDING:
            report.queued += _set_status(conn, row["send_id"], (REFUSED,), PENDING, None)
        elif row["status"] in (PENDING, FAILED) and status == REFUSED:
            report.withdrawn += _set_status(conn, row["send_id"], (PENDING, FAILED), REFUSED, error)
        else:
            report.already_in_ledger += 1
    for addr, row in existing.items():
        if addr not in wanted and row["status"] in (PENDING, FAILED):
            report.withdrawn += _set_status(
                conn, row["send_id"], (PENDING, FAILED), REFUSED, "no longer on the distribution list"
            )


def _set_status(conn, send_id: int, from_statuses: Sequence[str], to_status: str, error: str | None) -> int:
    res = conn.execute(
        update(circulation_log)
        .where(circulation_log.c.send_id == send_id, circulation_log.c.status.in_(from_statuses))
        .values(status=to_status, error=error)
    )
    return res.rowcount


# ---------------------------------------------------------------------------------------------
# Send


@dataclass
class SendReport:
    sent: int = 0  # accepted by the server in this call
    failed: int = 0  # left `failed` by this call, or found failed with no attempts left
    refused: int = 0  # refused by this call (recipient no longer allowed)
    pending: int = 0  # still waiting: the batch stopped early, or the bulletin could not be read
    unconfirmed: list[str] = field(default_factory=list)  # rows left `sending`: analyst to check
    failures: list[str] = field(default_factory=list)  # "bulletin N, recipient: error"
    stopped: str | None = None  # why the batch stopped early, if it did

    @property
    def ok(self) -> bool:
        return not (self.failed or self.pending or self.unconfirmed or self.failures)

    def summary(self) -> str:
        text = (
            f"{self.sent} sent, {self.failed} failed, {self.refused} refused, {self.pending} pending, "
            f"{len(self.unconfirmed)} unconfirmed"
        )
        return text + (f"; stopped: {self.stopped}" if self.stopped else "")


AttachmentsFor = Callable[[Mapping[str, Any]], Sequence[Path]]


def _load_content(bulletin: Mapping[str, Any]) -> tuple[str, str]:
    html_path = Path(bulletin["path"])
    text_path = html_path.with_suffix(".txt")
    return html_path.read_text(encoding="utf-8"), text_path.read_text(encoding="utf-8")


def send_pending(
    engine: Engine,
    cfg: Config,
    transport: Transport,
    *,
    max_attempts: int = 5,
    backoff_seconds: float = 2.0,
    attachments_for: AttachmentsFor | None = None,
    attempts_per_call: int = 3,
    clock: Clock = utc_now,
    sleep: Callable[[float], None] = time.sleep,
) -> SendReport:
    """Send every `pending` row, and every `failed` row with attempt < max_attempts.

    Transient errors are retried in this call with backoff backoff_seconds * 2**n, at most
    `attempts_per_call` times per row (so a later run, e.g. Airflow's task retry, still has
    attempts left) and never beyond `max_attempts` in all. A row that stays transiently failing
    stops the batch (the server is evidently down); a refused login stops it at once. Rows not
    reached stay `pending` for the next run. Permanent errors fail that row only.
    """
    if max_attempts < 1 or attempts_per_call < 1:
        raise ValueError("max_attempts and attempts_per_call must be at least 1")
    report = SendReport()
    with engine.connect() as conn:
        rows = [
            dict(r)
            for r in conn.execute(
                select(circulation_log, bulletins.c.path, bulletins.c.subject, bulletins.c.audience)
                .join(bulletins, bulletins.c.bulletin_id == circulation_log.c.bulletin_id, isouter=True)
                .where(circulation_log.c.status.in_((PENDING, SENDING, FAILED)))
                .order_by(circulation_log.c.bulletin_id, circulation_log.c.send_id)
            ).mappings()
        ]

    todo = []
    for r in rows:
        if r["status"] == SENDING:
            report.unconfirmed.append(_unconfirmed_line(r))
        elif r["status"] == FAILED and r["attempt"] >= max_attempts:
            report.failed += 1
            report.failures.append(
                f"bulletin {r['bulletin_id']}, {r['recipient']}: gave up after {r['attempt']} attempt(s): {r['error']}"
            )
        else:
            todo.append(r)

    contents: dict[int, tuple[str, str] | str] = {}
    for i, r in enumerate(todo):
        if report.stopped:
            report.pending += sum(1 for x in todo[i:] if x["status"] == PENDING)
            report.failed += sum(1 for x in todo[i:] if x["status"] == FAILED)
            break
        _send_one(engine, cfg, transport, r, contents, report, max_attempts, backoff_seconds,
                  attempts_per_call, attachments_for, clock, sleep)
    return report


def _content_for(r, contents, attachments_for):
    """(html, text, attachments) for this row, or why not. The body is read once per bulletin;
    attachments are asked for per row, since they may differ by recipient (e.g. a workbook for
    the business unit only)."""
    bid = r["bulletin_id"]
    if bid not in contents:
        if r["path"] is None:
            contents[bid] = "the bulletin row does not exist"
        else:
            try:
                contents[bid] = _load_content(r)
            except (OSError, UnicodeDecodeError) as exc:
                contents[bid] = f"cannot read the bulletin's files: {describe_error(exc)}"
    body = contents[bid]
    if isinstance(body, str):
        return body
    try:
        extra = tuple(Path(p) for p in (attachments_for(r) if attachments_for else ()))
    except OSError as exc:
        return f"cannot attach the bulletin's files: {describe_error(exc)}"
    return (*body, extra)


def _send_one(engine, cfg, transport, r, contents, report, max_attempts, backoff_seconds,
              attempts_per_call, attachments_for, clock, sleep) -> None:
    who = f"bulletin {r['bulletin_id']}, {r['recipient']}"
    allowed, refused = check_recipients([r["recipient"]], cfg.allowed_domains)
    if refused:
        with engine.begin() as conn:
            report.refused += _set_status(conn, r["send_id"], (PENDING, FAILED), REFUSED, refused[0][1])
        return
    content = _content_for(r, contents, attachments_for)
    try:
        if isinstance(content, str):
            raise MailError(content)
        html, text, attachments = content
        message = Message(to=(allowed[0],), subject=r["subject"], html=html, text=text, attachments=attachments)
        ref = message_id(cfg.sender, message)
    except (MailError, OSError) as exc:  # the bulletin is at fault, not the delivery: no attempt used
        _count_untouched(r, report)
        report.failures.append(f"{who}: not attempted: {describe_error(exc)}")
        return

    status, attempt, tries = r["status"], r["attempt"], 0
    while True:
        claimed = _claim(engine, r["send_id"], status, attempt, transport.name, ref)
        if not claimed:  # someone else changed the row since we read it: leave it to them
            return
        attempt, tries = attempt + 1, tries + 1
        try:
            result = transport.send(cfg.sender, message)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded in the ledger
            error = describe_error(exc)
            if isinstance(exc, SendError) and exc.uncertain:
                _finish(engine, r["send_id"], attempt, SENDING, error=f"delivery unknown: {error}")
                report.unconfirmed.append(f"{who}: {error} (Message-ID {ref})")
                return
            _finish(engine, r["send_id"], attempt, FAILED, error=error)
            status = FAILED
            if isinstance(exc, LoginError):
                report.failed += 1
                report.failures.append(f"{who}: {error}")
                report.stopped = f"SMTP login refused: {error}"
                return
            if is_transient(exc) and tries < attempts_per_call and attempt < max_attempts:
                sleep(backoff_seconds * 2 ** (tries - 1))
                continue
            report.failed += 1
            report.failures.append(f"{who}: attempt {attempt}: {error}")
            if is_transient(exc):
                report.stopped = f"transient errors persisted after {tries} tries: {error}"
            return
        _finish(engine, r["send_id"], attempt, SENT, message_ref=str(result), sent_at=clock())
        report.sent += 1
        return


def _count_untouched(r, report: SendReport) -> None:
    if r["status"] == PENDING:
        report.pending += 1
    else:
        report.failed += 1


def _claim(engine, send_id, status, attempt, transport_name, ref) -> bool:
    """pending|failed -> sending with attempt + 1, committed before anything is sent."""
    with engine.begin() as conn:
        res = conn.execute(
            update(circulation_log)
            .where(
                circulation_log.c.send_id == send_id,
                circulation_log.c.status == status,
                circulation_log.c.attempt == attempt,
            )
            .values(status=SENDING, attempt=attempt + 1, transport=transport_name, message_ref=ref, error=None)
        )
        return res.rowcount == 1


def _finish(engine, send_id, attempt, status, *, error=None, message_ref=None, sent_at=None) -> None:
    """sending -> sent | failed (or stays sending with a note), in its own transaction."""
    values: dict[str, Any] = {"status": status, "error": error}
    if message_ref is not None:
        values["message_ref"] = message_ref
    if sent_at is not None:
        values["sent_at"] = sent_at
    with engine.begin() as conn:
        conn.execute(
            update(circulation_log)
            .where(
                circulation_log.c.send_id == send_id,
                circulation_log.c.status == SENDING,
                circulation_log.c.attempt == attempt,
            )
            .values(**values)
        )


def _unconfirmed_line(r: Mapping[str, Any]) -> str:
    return (
        f"bulletin {r['bulletin_id']}, {r['recipient']}: left 'sending' at attempt {r['attempt']} "
        f"via {r['transport']} (Message-ID {r['message_ref']}); check the mail server's log, then "
        f"resolve_unconfirmed(send_id={r['send_id']}, delivered=...)"
        + (f"; {r['error']}" if r["error"] else "")
    )


def resolve_unconfirmed(
    engine: Engine, send_id: int, *, delivered: bool, note: str = "", clock: Clock = utc_now
) -> None:
    """An analyst's verdict on a row left `sending`: delivered -> sent; not -> failed (resent later).

    sent_at for a confirmed row is when it was confirmed, not when the server accepted it.
    """
    verdict = "confirmed delivered by an analyst" if delivered else "confirmed NOT delivered by an analyst"
    values: dict[str, Any] = {
        "status": SENT if delivered else FAILED,
        "error": f"{verdict}{': ' + ' '.join(note.split()) if note else ''}",
    }
    if delivered:
        values["sent_at"] = clock()
    with engine.begin() as conn:
        res = conn.execute(
            update(circulation_log)
            .where(circulation_log.c.send_id == send_id, circulation_log.c.status == SENDING)
            .values(**values)
        )
        if res.rowcount != 1:
            raise ValueError(f"circulation_log row {send_id} is not in status 'sending'")
