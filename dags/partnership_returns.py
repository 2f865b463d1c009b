"""
### partnership_returns

Gathers each partnership's case returns from its source (config `source`: its drop folder
`reviews_inbox`/`{code}`, an SFTP server, or a query per dataset against its own database
written to CSV), keeps every file raw and checksummed, maps its columns onto the regional
template (columns not in the template are dropped, their names recorded), pseudonymises child
references, checks every row with Great Expectations and loads good rows into the warehouse
(upsert, history kept). Every failed row goes to `quarantine` with every rule it broke, in
plain words; a later return that corrects it loads the corrected row and marks it resolved.
A file that cannot be read is kept, recorded as `failed` with the reason, and reported.

* One task per partnership (mapped from the config file): one broken partnership does not stop
  the others, and its failure is emailed to the business unit. It writes a Great Expectations
  Data Docs page per dataset checked (`reports/data_docs/`, paths in its log) and a data quality
  report per return (`reports/quality/`).
* `check_returns_due` flags returns that are late or missing as of the run's as-of date
  (`return_expectations`; config `returns`).
* `send_feedback` emails each new quality report to the partnership's data contact and each
  late or missing flag to the business unit, exactly once, through the circulation ledger.
* Files dated after the end of the run's data interval wait for a later run; a file already
  loaded (same sha256) is never loaded twice, so reruns and backfills change nothing.
* Hands over to `statutory_timeliness` through the `merseyside_reviews_cases` asset.
"""
from __future__ import annotations

import pendulum
from airflow.sdk import dag, task
from airflow.timetables.trigger import CronTriggerTimetable

from reviews_airflow.assets import CASES
from reviews_airflow.dag_defaults import TIMEZONE, deadline, default_args, tags


@dag(
    dag_id="partnership_returns",
    schedule=CronTriggerTimetable("0 6 * * *", timezone=TIMEZONE),
    start_date=pendulum.datetime(2023, 10, 1, tz=TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    deadline=deadline("partnership_returns"),
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
    def publish_cases(**context) -> dict:
        """Runs even if a partnership failed: the others' data is in and should be judged."""
        from reviews_airflow import tasks

        return tasks.publish_cases(context)

    @task
    def all_partnerships_loaded(summaries: list[dict]) -> dict:
        """Fails the run (by being upstream_failed) when any partnership failed; logs the totals."""
        from reviews_airflow import tasks

        return tasks.report_returns(list(summaries))

    @task(trigger_rule="all_done")
    def check_returns_due(**context) -> dict:
        """Late and missing returns as of the run's as-of date, whatever happened to the loads."""
        from reviews_airflow import tasks

        return tasks.check_returns_due(context)

    @task(trigger_rule="all_done")
    def send_feedback() -> dict:
        """Quality reports to data contacts, late/missing notices to the business unit, once each."""
        from reviews_airflow import tasks

        return tasks.send_feedback()

    loaded = ingest.expand(partnership=list_partnerships())
    loaded >> publish_cases()
    all_partnerships_loaded(loaded)
    loaded >> check_returns_due() >> send_feedback()


partnership_returns()
