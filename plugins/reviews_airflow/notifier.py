"""Tell the business unit when a task fails: DAG, task, run, partnership and where the log is.

Sent through the same mail path as bulletins. It never includes case data: the exception is
reduced to its type and first line, and the warehouse engine hides bound values from errors.
"""
from __future__ import annotations

import logging

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)


def _first_line(exc: BaseException | None, limit: int = 300) -> str:
    if exc is None:
        return "no exception recorded"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:limit]}"


class BusinessUnitNotifier(BaseNotifier):
    """Emails the business unit about a failed task instance."""

    template_fields = ()

    def notify(self, context) -> None:
        from reviews.core.mail import Message

        from reviews_airflow import settings

        ti = context.get("ti")
        task = context.get("task")
        dag_id = getattr(ti, "dag_id", "?")
        task_id = getattr(ti, "task_id", "?")
        run_id = getattr(ti, "run_id", "?")
        partnership = (getattr(task, "op_kwargs", None) or {}).get("partnership")
        log_url = getattr(ti, "log_url", None) or "(see the Airflow UI)"
        what = f"{dag_id}.{task_id}" + (f" for {partnership}" if partnership else "")
        lines = [
            f"Task failed: {what}",
            f"DAG: {dag_id}",
            f"Task: {task_id}" + (f" (map index {ti.map_index})" if getattr(ti, "map_index", -1) not in (-1, None) else ""),
            f"Run: {run_id}",
            f"Partnership: {partnership or 'all'}",
            f"Try: {getattr(ti, 'try_number', '?')}",
            f"Error: {_first_line(context.get('exception'))}",
            f"Log: {log_url}",
        ]
        text = "\n".join(lines) + "\n"
        from html import escape

        html = "<html><body><h1>Task failed</h1><ul>" + "".join(
            f"<li>{escape(line)}</li>" for line in lines
        ) + "</ul></body></html>"
        try:
            cfg = settings.config()
            message = Message(to=tuple(cfg.business_unit_email), subject=f"[reviews] failed: {what}", html=html, text=text)
            settings.transport().send(cfg.sender, message)
        except Exception:  # a broken notifier must not hide the original failure
            log.exception("could not send the failure notice for %s", what)
