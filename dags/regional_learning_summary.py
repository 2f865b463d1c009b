"""
### regional_learning_summary

Builds the regional learning bulletin for each reporting period (a calendar quarter, or a month
when `summary.period: month` in the config) and a page per partnership: notifications by type,
rapid reviews and the conversion to LCSPRs, national review referrals, reviews decided,
statutory timeliness with its trend over the last four periods, learning themes (recurring
across partnerships and periods), key findings, the state of actions from recommendations, and
a 7-minute briefing for every review published in the period.

**Complete data first.** A period's bulletins are built when every partnership's return covering
it has loaded, or `summary.wait_for_returns_days` after such a return was due; then the bulletin
says at the top, in words, whose data is missing or late. Until then the period waits (table
`bulletin_periods`, and the log of `plan_builds` names whose return it waits for). A return that
arrives for a period built without it gives an updated version, marked as such with what changed.

For every audience it writes HTML (for email), plain text, a PDF (bulletin plus briefings,
printed by headless Chromium) and an XLSX of the tables for analysts. Counts from 1 to 5 are
shown as `c`, with secondary suppression; free text is screened and every redaction is listed
for the business unit only (`internal/redactions.csv`, table `bulletin_redactions`).
Then `write_analyst_extract` writes the analysts' internal extract of the reporting views
(`{data_dir}/analyst/analyst_extract_{period_end}.xlsx`: pseudonymised, not suppressed, never
circulated; docs/analysts.md).

Schedule: `ReportingPeriodTimetable` (00:00 UK time the day after a period ends: the period is
recorded as waiting for its returns) or the `merseyside_reviews_cases` asset (each returns load:
the periods waiting are checked again and built when ready). Timeliness is judged as of the
period's last day first, so the bulletin never depends on which daily runs happened. Each
bulletin is stored in `bulletins` with its content hash; a rebuild with the same content adds
nothing. It sends nothing: `bulletin_circulation` asks the business unit to sign off first.
A backfill builds its periods (their returns have long arrived) and asks for no sign-off.
`make airflow ARGS="dags test regional_learning_summary 2024-07-01"` builds April to June 2024.
"""
from __future__ import annotations

import pendulum
from airflow.sdk import dag, task
from airflow.timetables.assets import AssetOrTimeSchedule

from reviews_airflow.assets import BULLETINS, CASES
from reviews_airflow.dag_defaults import TIMEZONE, deadline, default_args, tags
from reviews_airflow.timetables import summary_timetable


@dag(
    dag_id="regional_learning_summary",
    schedule=AssetOrTimeSchedule(timetable=summary_timetable(), assets=[CASES]),
    start_date=pendulum.datetime(2023, 10, 1, tz=TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    deadline=deadline("regional_learning_summary"),
    tags=tags("learning", "bulletins"),
    doc_md=__doc__,
)
def regional_learning_summary():
    @task
    def plan_builds(**context) -> dict:
        """The periods ready to build now; those still waiting are recorded (skipped when none is ready)."""
        from reviews_airflow import tasks

        return tasks.plan_builds(context)

    @task(outlets=[BULLETINS])
    def build_bulletins(plan: dict, **context) -> dict:
        from reviews_airflow import tasks

        return tasks.build_bulletins(plan, context)

    @task
    def write_analyst_extract(built: dict) -> dict:
        """The analysts' internal extract of the reporting views (never circulated)."""
        from reviews_airflow import tasks

        return tasks.write_analyst_extract(built)

    write_analyst_extract(build_bulletins(plan_builds()))


regional_learning_summary()
