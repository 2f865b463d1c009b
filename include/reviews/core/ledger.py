"""Sending one email for many ledger rows, once: the state machine the alert and reminder
ledgers (`timeliness_alerts`, `action_reminders`) share.

Why one place: "sent once across reruns and backfills" rests on every row being claimed
(pending|failed -> sending, attempt + 1, a compare-and-set committed before anything is sent),
the email listing exactly the rows claimed, and the outcome recorded per row: sent, failed (tried
again next run), or left `sending` when delivery is unknown (reported, never resent).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Table, update
from sqlalchemy.engine import Engine

from reviews.core.mail import Message, SendError, Transport, describe_error, message_id

PENDING, SENDING, SENT, FAILED, WITHDRAWN = "pending", "sending", "sent", "failed", "withdrawn"


@dataclass
class Outcome:
    """What happened to one email: `status` is sent, failed, unconfirmed, or none (nothing claimed)."""

    status: str
    rows: list[dict] = field(default_factory=list)
    ref: str = ""
    error: str = ""


def claim(engine: Engine, table: Table, key: str, rows: Sequence[dict], **values) -> list[dict]:
    """pending|failed -> sending (attempt + 1), committed before anything is sent. Each row is a
    compare-and-set on (send_status, attempt): a row someone else changed since it was read is
    left to them and not returned."""
    c = table.c
    claimed = []
    with engine.begin() as conn:
        for r in rows:
            res = conn.execute(
                update(table)
                .where(c[key] == r[key], c.send_status == r["send_status"], c.attempt == r["attempt"])
                .values(send_status=SENDING, attempt=r["attempt"] + 1, error=None, **values))
            if res.rowcount == 1:
                claimed.append({**r, "send_status": SENDING, "attempt": r["attempt"] + 1})
    return claimed


def finish(engine: Engine, table: Table, key: str, rows: Sequence[dict], status: str, **values) -> None:
    """sending -> `status` (or stays sending with a note), for the rows this run claimed."""
    c = table.c
    with engine.begin() as conn:
        for r in rows:
            conn.execute(update(table)
                         .where(c[key] == r[key], c.send_status == SENDING, c.attempt == r["attempt"])
                         .values(send_status=status, **values))


def send_once(engine: Engine, table: Table, key: str, rows: Sequence[dict], transport: Transport, sender: str,
              build: Callable[[Sequence[dict]], Message], clock: Callable[[], datetime], **claim_values) -> Outcome:
    """Build the email for `rows` (a MailError raises before anything is claimed), claim them,
    rebuild it for exactly the rows held when someone else took some, send, and record."""
    message = build(rows)
    ref = message_id(sender, message)
    claimed = claim(engine, table, key, rows, transport=transport.name, message_ref=ref, **claim_values)
    if not claimed:
        return Outcome("none", ref=ref)
    if len(claimed) != len(rows):  # someone else took some rows: list exactly what we hold
        message = build(claimed)
        ref = message_id(sender, message)
        finish(engine, table, key, claimed, SENDING, message_ref=ref)
    try:
        result = transport.send(sender, message)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded in the ledger
        error = describe_error(exc)
        if isinstance(exc, SendError) and exc.uncertain:
            finish(engine, table, key, claimed, SENDING, error=f"delivery unknown: {error}")
            return Outcome("unconfirmed", claimed, ref, error)
        finish(engine, table, key, claimed, FAILED, error=error)
        return Outcome("failed", claimed, ref, error)
    finish(engine, table, key, claimed, SENT, sent_at=clock(), message_ref=str(result))
    return Outcome("sent", claimed, str(result))
