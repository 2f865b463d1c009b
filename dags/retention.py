"""
### retention

Keeps case records no longer than the configured period (`retention` in the config file; no
statutory retention period exists for review records). Cases whose last date is more than
`keep_years` before the end of the run's data interval are anonymised (child key and free text
removed, dates and codes kept for statistics) or deleted, as configured, with their history
and quarantined rows; raw files dated before the cut-off are deleted. Cases under a legal hold
(table `legal_holds`) are kept and counted. Everything done is written to `retention_log`.
Judged as of the run's date, never the wall clock: a rerun changes nothing.
"""
from __future__ import annotations

import pendulum
from airflow.sdk import dag, task
from airflow.timetables.trigger import CronTriggerTimetable

from reviews_airflow.dag_defaults import TIMEZONE, deadline, default_args, tags


@dag(
    dag_id="retention",
    schedule=CronTriggerTimetable("0 3 2 * *", timezone=TIMEZONE),
    start_date=pendulum.datetime(2023, 10, 1, tz=TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    deadline=deadline("retention"),
    tags=tags("retention", "privacy"),
    doc_md=__doc__,
)
def retention():
    @task
    def apply_retention(**context) -> list[dict]:
        from reviews_airflow import tasks

        return tasks.apply_retention(context)

    apply_retention()


retention()
