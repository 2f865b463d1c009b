"""
### regional_learning_summary

Builds the regional learning bulletin for one reporting period (a month, or a calendar quarter
when `summary.period: quarter` in the config) and a page per partnership: notifications by type,
rapid reviews and the conversion to LCSPRs, national review referrals, reviews decided,
statutory timeliness with its trend over the last four periods, learning themes (recurring
across partnerships and periods), key findings, the state of actions from recommendations, and
a 7-minute briefing for every review published in the period.

For every audience it writes HTML (for email), plain text, a PDF (bulletin plus briefings,
printed by headless Chromium) and an XLSX of the tables for analysts. Counts from 1 to 5 are
shown as `c`, with secondary suppression; free text is screened and every redaction is listed
for the business unit only (`internal/redactions.csv`, table `bulletin_redactions`).

Schedule: `ReportingPeriodTimetable`, one run per period at 00:00 UK time the day after it ends;
the run's data interval is the period. It judges timeliness as of the period's last day first,
so the bulletin never depends on which daily runs happened. Each bulletin is stored in
`bulletins` with its content hash; a rebuild with the same content adds nothing, changed content
becomes a new version. It sends nothing: `bulletin_circulation` does that, on its own schedule.
`airflow dags test regional_learning_summary 2024-07-01` builds June 2024.
"""
from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from reviews_airflow.assets import BULLETINS
from reviews_airflow.dag_defaults import TIMEZONE, deadline, default_args, tags
from reviews_airflow.timetables import summary_timetable


@dag(
    dag_id="regional_learning_summary",
    schedule=summary_timetable(),
    start_date=pendulum.datetime(2023, 10, 1, tz=TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    deadline=deadline("regional_learning_summary"),
    tags=tags("learning", "bulletins"),
    doc_md=__doc__,
    params={
        "circulate_backfill": Param(
            False, type="boolean",
            description="A backfill rebuilds bulletins but sends nothing; true lets circulation send what it rebuilt.",
        ),
    },
)
def regional_learning_summary():
    @task
    def reporting_period(**context) -> dict:
        from reviews_airflow import tasks

        return tasks.summary_period(context)

    @task
    def judge_timeliness_at_period_end(period: dict) -> dict:
        from datetime import date

        from reviews_airflow import tasks

        return tasks.judge_timeliness(None, as_of=date.fromisoformat(period["period_end"]))

    @task(outlets=[BULLETINS])
    def build_bulletins(period: dict, **context) -> dict:
        from reviews_airflow import tasks

        return tasks.build_bulletins(period, context)

    period = reporting_period()
    judge_timeliness_at_period_end(period) >> build_bulletins(period)


regional_learning_summary()
