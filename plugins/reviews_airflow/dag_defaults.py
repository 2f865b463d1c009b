"""What every DAG of the project shares: owner, retries, the failure notifier, tags."""
from __future__ import annotations

import os
from datetime import timedelta

from reviews_airflow.notifier import BusinessUnitNotifier

OWNER = "merseyside-business-unit"
TIMEZONE = "Europe/London"


def default_args(**overrides) -> dict:
    """Task defaults. Retry delay is configurable so tests need not wait minutes."""
    delay = float(os.environ.get("REVIEWS_RETRY_DELAY_SECONDS", "300"))
    args = {
        "owner": OWNER,
        "retries": 2,
        "retry_delay": timedelta(seconds=delay),
        "retry_exponential_backoff": True,
        # Task level, not DAG level: a DAG-level notifier breaks under dag.test() (apache/airflow#64649).
        "on_failure_callback": BusinessUnitNotifier(),
    }
    args.update(overrides)
    return args


def tags(*extra: str) -> list[str]:
    return ["merseyside", "safeguarding", *extra]


# How long each scheduled DAG may take before the business unit is warned (Deadline Alerts).
DEADLINES = {
    "partnership_returns": (timedelta(hours=2), "the daily returns run"),
    "statutory_timeliness": (timedelta(hours=1), "the daily timeliness run"),
    "regional_learning_summary": (timedelta(hours=2), "the learning summary build"),
    # A circulation run waits for the business unit's sign-off (reminded once after
    # circulation.signoff_reminder_hours): only a week without an answer, or sends, is a missed deadline.
    "bulletin_circulation": (timedelta(days=7), "bulletin sign-off and circulation"),
    "retention": (timedelta(hours=3), "the retention run"),
    # Waits for the business unit's sign-off, as bulletin_circulation does.
    "yearly_report": (timedelta(days=7), "the yearly report's build, sign-off and circulation"),
}


def deadline(dag_id: str):
    """The Deadline Alert for one of the project's scheduled DAGs.

    `REVIEWS_DEADLINES=off` leaves it out. Only `dag.test()` / `airflow dags test` need that
    (the tests and the demo set it): they build the scheduler's copy of the DAG in memory, where a
    deadline stays a dict instead of the id the DAG processor gives it, and a run that succeeds
    then fails looking it up (Airflow 3.3.2; the same family as apache/airflow#64649). Deployed
    DAGs, parsed by the dag-processor, keep their deadlines.
    """
    if os.environ.get("REVIEWS_DEADLINES", "on").lower() == "off":
        return None
    from reviews_airflow.deadlines import deadline_alert

    after, what = DEADLINES[dag_id]
    return deadline_alert(after, what)
