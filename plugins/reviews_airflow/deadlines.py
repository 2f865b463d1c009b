"""Deadline Alerts (Airflow 3's replacement for SLAs): warn the business unit when a scheduled
run has not finished by its time. The callback runs in the triggerer and sends a short email
through the same mail path as everything else: DAG, run and deadline, no case data.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

log = logging.getLogger(__name__)

CALLBACK_PATH = "reviews_airflow.deadlines.deadline_missed"


def deadline_alert(after: timedelta, what: str):
    """A DeadlineAlert `after` the run was queued (when it was due to start) for one DAG.

    Queued-at, not logical date: a monthly summary's logical date is the start of the month it
    covers, a month before it runs.
    """
    from airflow.sdk.definitions.callback import AsyncCallback
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=after,
        callback=AsyncCallback(CALLBACK_PATH, kwargs={"what": what, "allowed_minutes": int(after.total_seconds() // 60)}),
        name=f"{what} not finished in time",
    )


def deadline_message(dag_id: str, run_id: str, what: str, allowed_minutes: int, sender: str, to: tuple[str, ...]):
    from reviews.core.mail import Message

    text = (
        f"Deadline missed: {what}\n"
        f"DAG: {dag_id}\nRun: {run_id}\n"
        f"The run had not finished {allowed_minutes} minutes after its scheduled time.\n"
        "Check the run in the Airflow UI; a partnership's return may be late or a task stuck.\n"
    )
    from html import escape

    html = "<html><body><h1>Deadline missed</h1><pre>" + escape(text) + "</pre></body></html>"
    return Message(to=to, subject=f"[reviews] deadline missed: {what}", html=html, text=text)


def _send(context: dict, what: str, allowed_minutes: int) -> None:
    from reviews_airflow import settings

    dag_run = (context or {}).get("dag_run")
    dag_id = getattr(dag_run, "dag_id", None) or (context or {}).get("dag_id", "?")
    run_id = getattr(dag_run, "run_id", None) or (context or {}).get("run_id", "?")
    cfg = settings.config_for_server()
    message = deadline_message(dag_id, run_id, what, allowed_minutes, cfg.sender, tuple(cfg.business_unit_email))
    settings.transport_for_server().send(cfg.sender, message)
    log.warning("deadline missed for %s (%s); business unit told", dag_id, run_id)


async def deadline_missed(context: dict | None = None, what: str = "a run", allowed_minutes: int = 0, **_) -> None:
    """Called by the triggerer when a deadline passes."""
    await asyncio.to_thread(_send, context or {}, what, allowed_minutes)
