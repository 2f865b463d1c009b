"""Send partnership_returns' feedback (data quality reports, late and missing returns) once each.

Feedback uses the bulletins' circulation path (bulletin_sends: one ledger row per bulletin and
recipient, exactly once): `recipients_for` sends `quality:{code}` to the partnership's
data_contact and `returns:{code}` to the business unit. `send_feedback` queues every feedback
bulletin that has no ledger row yet, then sends what is pending. It runs as the last task of
partnership_returns, so the partnership hears about its return the day it is loaded; the
monthly bulletins stay with bulletin_circulation.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine, func, select

from reviews.circulation.bulletin_sends import queue_bulletin_sends, send_pending
from reviews.core import warehouse as wh
from reviews.core.audit import audit_now
from reviews.core.config import Config
from reviews.returns.quality_reports import is_feedback


def send_feedback(engine: Engine, cfg: Config, transport, *, clock: Callable[[], datetime] = audit_now,
                  **send_options) -> dict:
    """Queue every feedback bulletin not yet in the ledger (newest versions), then send what is pending.

    `send_options` go to circulation.send_pending (max_attempts, attempts_per_call, backoff_seconds).
    Counts only come back (no addresses): they go to XCom and the task log. `new_failures` counts
    rows this call failed (not those given up on earlier); `stopped` says the batch stopped early.
    """
    b, c = wh.bulletins.c, wh.circulation_log.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(b.bulletin_id, b.period_start, b.period_end, b.audience, b.version)
            .where(b.bulletin_id.notin_(select(c.bulletin_id)))
        ).all()
        newest = {(a, start, end): v for a, start, end, v in conn.execute(
            select(b.audience, b.period_start, b.period_end, func.max(b.version))
            .group_by(b.audience, b.period_start, b.period_end)
        ).all()}
    todo = [r for r in rows if is_feedback(r.audience) and newest.get((r.audience, r.period_start, r.period_end)) == r.version]
    queued = {"queued": 0, "refused": 0, "problems": 0}
    if todo:
        report = queue_bulletin_sends(
            engine, cfg, resend_bulletin_ids={r.bulletin_id for r in todo},
            periods={(r.period_start, r.period_end) for r in todo}, clock=clock,
        )
        queued = {"queued": report.queued, "refused": report.refused, "problems": len(report.problems)}
    sent = send_pending(engine, cfg, transport, clock=clock, **send_options)
    return {"feedback_bulletins": len(todo), **queued, "sent": sent.sent, "failed": sent.failed,
            "pending": sent.pending, "unconfirmed": len(sent.unconfirmed),
            "new_failures": sum(1 for f in sent.failures if "gave up after" not in f), "stopped": bool(sent.stopped)}
