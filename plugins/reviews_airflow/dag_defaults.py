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
