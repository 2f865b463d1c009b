"""Tell the business unit when a task fails: DAG, task, run, partnership and where the log is.

Sent through the same mail path as bulletins. It never includes case data: the exception is
reduced to its type and first line, and the warehouse engine hides bound values from errors.

A configuration error (settings.ConfigurationError: a missing or short pseudonymisation key, a
config file that does not load, a warehouse or SMTP connection that cannot be used) is told
once per DAG run, however many tasks (one per partnership) fail on it: the first task to fail
claims the alert with a marker file (`{data_dir}/alerts/{dag}/{digest of run and message}`,
created exclusively, so concurrent workers sharing the data folder agree), and the others only
log that it was sent. That alert carries the whole message, which says what to set (and never
a secret's value).
"""
from __future__ import annotations

import hashlib
import logging
import os
from html import escape
from pathlib import Path

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)
CONFIG_MESSAGE_LIMIT = 2000  # characters of a configuration error's message in the alert


def _first_line(exc: BaseException | None, limit: int = 300) -> str:
    if exc is None:
        return "no exception recorded"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:limit]}"


def _is_configuration_error(exc: BaseException | None) -> bool:
    from reviews_airflow.settings import ConfigurationError

    return isinstance(exc, ConfigurationError)


def _config():
    """The config, for the recipients; if it does not load (the very error being reported), the
    project's own file, so the business unit still hears about it."""
    from reviews.core.config import load_config

    from reviews_airflow import settings

    try:
        return settings.config()
    except settings.ConfigurationError:
        log.warning("the configured config file does not load: the failure notice goes to the business unit "
                    "address of the project's own config/reviews.yaml")
        return load_config(None)


def claim_alert(dag_id: str, run_id: str, message: str, folder: Path | None = None) -> Path | None:
    """Claim the one alert of this DAG run for this message: the marker's path if this caller
    claimed it (and should send), None if another task already has. Without a usable folder,
    every caller may send (better twice than never)."""
    from reviews_airflow import settings

    try:
        root = Path(folder) if folder is not None else settings.data_dir() / "alerts"
        digest = hashlib.sha256(f"{dag_id}\n{run_id}\n{message}".encode("utf-8", "surrogateescape")).hexdigest()[:32]
        safe_dag = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in dag_id)[:100] or "_"
        marker = root / safe_dag / digest
        marker.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return None
    except Exception:  # noqa: BLE001 - no marker folder: send anyway
        log.warning("could not record the configuration alert of %s %s: it may be sent more than once", dag_id, run_id)
        return Path(os.devnull)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(f"{dag_id}\n{run_id}\n")  # the message stays in the alert, not on disk
    return marker


class BusinessUnitNotifier(BaseNotifier):
    """Emails the business unit about a failed task instance (once per run for a configuration error)."""

    template_fields = ()

    def notify(self, context) -> None:
        from reviews.core.mail import Message

        from reviews_airflow import settings

        ti = context.get("ti")
        task = context.get("task")
        exc = context.get("exception")
        dag_id = getattr(ti, "dag_id", "?")
        task_id = getattr(ti, "task_id", "?")
        run_id = getattr(ti, "run_id", "?")
        partnership = (getattr(task, "op_kwargs", None) or {}).get("partnership")
        log_url = getattr(ti, "log_url", None) or "(see the Airflow UI)"
        what = f"{dag_id}.{task_id}" + (f" for {partnership}" if partnership else "")
        map_index = getattr(ti, "map_index", -1)
        task_line = f"Task: {task_id}" + (f" (map index {map_index})" if map_index not in (-1, None) else "")
        marker = None
        if _is_configuration_error(exc):
            message = str(exc).strip()[:CONFIG_MESSAGE_LIMIT]
            marker = claim_alert(dag_id, run_id, message)
            if marker is None:
                log.info("configuration error in %s: the business unit was already told for run %s", what, run_id)
                return
            subject = f"[reviews] configuration error: {dag_id}"
            lines = [
                f"Configuration error: {dag_id} cannot run until a setting is put right.",
                f"What to set: {message}",
                "The task failed at once, without retries: retrying cannot mend a setting. Other tasks of "
                "this run failing with the same error are not reported again; once the setting is right, "
                "clear the failed tasks (or wait for the next run).",
                f"DAG: {dag_id}",
                f"First task that failed: {what}",
                task_line,
                f"Run: {run_id}",
                f"Partnership: {partnership or 'all'}",
                f"Try: {getattr(ti, 'try_number', '?')}",
                f"Log: {log_url}",
            ]
            heading = "Configuration error"
        else:
            subject = f"[reviews] failed: {what}"
            lines = [
                f"Task failed: {what}",
                f"DAG: {dag_id}",
                task_line,
                f"Run: {run_id}",
                f"Partnership: {partnership or 'all'}",
                f"Try: {getattr(ti, 'try_number', '?')}",
                f"Error: {_first_line(exc)}",
                f"Log: {log_url}",
            ]
            heading = "Task failed"
        text = "\n".join(lines) + "\n"
        html = f"<html><body><h1>{heading}</h1><ul>" + "".join(
            f"<li>{escape(line).replace(chr(10), '<br>')}</li>" for line in lines
        ) + "</ul></body></html>"
        try:
            cfg = _config()
            message = Message(to=tuple(cfg.business_unit_email), subject=subject, html=html, text=text)
            settings.transport().send(cfg.sender, message)
        except Exception:  # a broken notifier must not hide the original failure
            log.exception("could not send the failure notice for %s", what)
            if marker is not None and marker != Path(os.devnull):
                marker.unlink(missing_ok=True)  # let the next task failing the same way try again
