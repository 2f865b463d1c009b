"""Tell the business unit when a task fails: DAG, task, run, partnership and where the log is.

Sent through the same mail path as bulletins, in words and styled like them (templates
alert_failure.*.j2: what happened, what to do next, the details, a link to the status page when
Airflow's base URL is known). It never includes case data: the exception is reduced to its type
and first line, and the warehouse engine hides bound values from errors.

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


def status_page_url() -> str:
    """The status page (/reviews/) on Airflow's base URL (settings.airflow_base_url: [api] base_url,
    else the address Airflow's own log links use)."""
    from reviews_airflow import settings

    return f"{settings.airflow_base_url()}/reviews/"


def failure_message(*, dag_id: str, task_id: str, run_id: str, map_index, try_number, partnership: str | None,
                    log_url: str | None, exc: BaseException | None, config_message: str | None = None,
                    status_url: str | None = None, region: str = "Regional") -> tuple[str, str, str]:
    """(subject, html, text) of a failure alert, in words (templates alert_failure.*.j2)."""
    from reviews.core.rendering import templates

    what = f"{dag_id}.{task_id}" + (f" for {partnership}" if partnership else "")
    task = task_id + (f" (map index {map_index})" if map_index not in (-1, None) else "")
    run = [("DAG", dag_id), ("Run", run_id), ("Partnership", partnership or "all"), ("Try", str(try_number)),
           ("Log", log_url or "(see the Airflow UI)")]
    if config_message is not None:
        subject = f"[reviews] configuration error: {dag_id}"
        heading = "Configuration error"
        intro = [f"Configuration error: {dag_id} cannot run until a setting is put right.",
                 f"What to set: {config_message}"]
        next_steps = [
            "Put the setting right, as the message above says (it never shows a secret's value).",
            "The task failed at once, without retries: retrying cannot mend a setting. Other tasks of this run "
            "failing with the same error are not reported again.",
            "Once the setting is right, clear the failed tasks in Airflow (or wait for the next run).",
        ]
        details = [("First task that failed", what), ("Task", task), *run]
    else:
        subject = f"[reviews] failed: {what}"
        heading = f"Task failed: {what}"
        intro = [f"The task {task_id} of {dag_id}" + (f" for {partnership}" if partnership else "")
                 + f" failed (try {try_number}).", f"What went wrong: {_first_line(exc)}"]
        next_steps = [
            "Read the task's log in Airflow to see why.",
            "If the task has retries left, Airflow tries it again by itself. If it keeps failing, put the cause "
            "right, then clear the task in Airflow to run it again (or wait for the next run).",
            "A rerun sends nothing twice: every email is recorded before it goes.",
        ]
        details = [("Task failed", what), ("Task", task), *run[:4], ("Error", _first_line(exc)), run[4]]
    context = {"subject": subject, "banner": f"{region} business unit: pipeline alert", "heading": heading,
               "intro": intro, "next_steps": next_steps, "details": details, "status_url": status_url,
               "log_url": log_url if log_url and log_url.startswith(("http://", "https://")) else None}
    return (subject, templates().get_template("alert_failure.html.j2").render(context),
            templates().get_template("alert_failure.txt.j2").render(context))


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
        log_url = getattr(ti, "log_url", None)
        what = f"{dag_id}.{task_id}" + (f" for {partnership}" if partnership else "")
        marker = None
        config_message = None
        if _is_configuration_error(exc):
            config_message = str(exc).strip()[:CONFIG_MESSAGE_LIMIT]
            marker = claim_alert(dag_id, run_id, config_message)
            if marker is None:
                log.info("configuration error in %s: the business unit was already told for run %s", what, run_id)
                return
        try:
            cfg = _config()
            subject, html, text = failure_message(
                dag_id=dag_id, task_id=task_id, run_id=run_id, map_index=getattr(ti, "map_index", -1),
                try_number=getattr(ti, "try_number", "?"), partnership=partnership, log_url=log_url, exc=exc,
                config_message=config_message, status_url=status_page_url(),
                region=cfg.region_name or "Regional")
            message = Message(to=tuple(cfg.business_unit_email), subject=subject, html=html, text=text)
            settings.transport().send(cfg.sender, message)
        except Exception:  # a broken notifier must not hide the original failure
            log.exception("could not send the failure notice for %s", what)
            if marker is not None and marker != Path(os.devnull):
                marker.unlink(missing_ok=True)  # let the next task failing the same way try again
