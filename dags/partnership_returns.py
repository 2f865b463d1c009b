"""
### partnership_returns

Gathers each partnership's case returns from its drop folder (`reviews_inbox`/`{code}`), keeps
every file raw and checksummed, maps its columns onto the regional template, pseudonymises
child references, checks every row with Great Expectations, loads good rows into the warehouse
(upsert, history kept) and puts every failed row in `quarantine` with the rule it broke.

* One task per partnership (mapped from the config file): one broken partnership does not stop
  the others, and its failure is emailed to the business unit.
* Files dated after the end of the run's data interval wait for a later run; a file already
  loaded (same sha256) is never loaded twice, so reruns and backfills change nothing.
* Hands over to `statutory_timeliness` through the `merseyside_reviews_cases` asset.
"""
from __future__ import annotations

import pendulum
from airflow.sdk import dag, task
from airflow.timetables.trigger import CronTriggerTimetable

from reviews_airflow.assets import CASES
from reviews_airflow.dag_defaults import TIMEZONE, default_args, tags


@dag(
    dag_id="partnership_returns",
    schedule=CronTriggerTimetable("0 6 * * *", timezone=TIMEZONE),
    start_date=pendulum.datetime(2023, 10, 1, tz=TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=tags("returns", "data-quality"),
    doc_md=__doc__,
)
def partnership_returns():
    @task
    def list_partnerships() -> list[str]:
        from reviews_airflow import tasks

        return tasks.partnership_codes()

    @task(map_index_template="{{ task.op_kwargs['partnership'] }}")
    def ingest(partnership: str, **context) -> dict:
        from reviews_airflow import tasks

        return tasks.ingest(partnership, context)

    @task(outlets=[CASES], trigger_rule="all_done")
    def publish_cases() -> None:
        """Runs even if a partnership failed: the others' data is in and should be judged."""

    @task
    def all_partnerships_loaded(summaries: list[dict]) -> dict:
        """Fails the run (by being upstream_failed) when any partnership failed; logs the totals."""
        from reviews_airflow import tasks

        return tasks.report_returns(list(summaries))

    loaded = ingest.expand(partnership=list_partnerships())
    loaded >> publish_cases()
    all_partnerships_loaded(loaded)


partnership_returns()
