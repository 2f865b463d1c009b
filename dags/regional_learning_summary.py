"""
### regional_learning_summary

Builds the regional learning bulletin for one month (the run's data interval) and a page per
partnership: counts of notifications, rapid reviews and reviews, statutory timeliness, learning
themes and key findings. Counts from 1 to 5 are shown as `c`, with secondary suppression.

It judges timeliness as of the last day of the period first, so the bulletin never depends on
which daily runs happened. Each bulletin is stored in `bulletins` with its content hash; a
rebuild with the same content adds nothing, changed content becomes a new version. It sends
nothing: `bulletin_circulation` does that.
`airflow dags test regional_learning_summary 2024-07-01` builds June 2024.
"""
from __future__ import annotations

import pendulum
from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from reviews_airflow.assets import BULLETINS
from reviews_airflow.dag_defaults import TIMEZONE, default_args, tags


@dag(
    dag_id="regional_learning_summary",
    schedule=CronDataIntervalTimetable("0 0 1 * *", timezone=TIMEZONE),
    start_date=pendulum.datetime(2023, 10, 1, tz=TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=tags("learning", "bulletins"),
    doc_md=__doc__,
)
def regional_learning_summary():
    @task
    def judge_timeliness_at_period_end(**context) -> dict:
        from reviews_airflow import tasks

        return tasks.judge_timeliness(context, as_of=tasks.run_dates(context)["period_end"])

    @task(outlets=[BULLETINS])
    def build_bulletins(**context) -> dict:
        from reviews_airflow import tasks

        return tasks.build_bulletins(context)

    judge_timeliness_at_period_end() >> build_bulletins()


regional_learning_summary()
