"""
### bulletin_circulation

Sends each period's bulletins on the business unit's schedule (config `circulation.schedule`;
by default 09:00 UK time on the first working Tuesday after the period ends, bank holidays
skipped): the regional bulletin to every partnership's list and the business unit, each
partnership's own page to its list. Every email has the bulletin as HTML with a plain-text
alternative and its PDF (with the 7-minute briefings) attached; the business unit's copy also
has the XLSX of the tables for analysts.

Exactly once per bulletin and recipient: every send is written to `circulation_log` as
`pending` before it is attempted and marked `sent` only when the server accepts it, so retries
and reruns never send twice; a connection lost mid-batch leaves the rest pending and the task
fails, so its retry (or a rerun) sends only those. Recipients outside the allowed domains are
refused and logged. Uses the `reviews_smtp` connection (yagmail; STARTTLS, SSL or none, with
login) when it is set; otherwise writes `.eml` files to the outbox folder.

Schedule: `ReportingPeriodTimetable` or the `merseyside_reviews_bulletins` asset. A timetable
run sends the period of its data interval; if those bulletins are not built, it fails and the
business unit is told. A build (asset event) sends its period at once only if that period's send
day has passed (a late build), and not if it is more than `circulation.late_send_window_days`
past (a backfill: never sent by itself); an on-time build waits for the timetable. Deploying
does not send a past period. A corrected bulletin is re-sent only when an analyst asks, with the
run parameter `resend_bulletin_ids`; `period_end` sends another period by hand.
`airflow dags test bulletin_circulation 2024-07-08` sends June 2024.
"""
from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task
from airflow.timetables.assets import AssetOrTimeSchedule

from reviews_airflow.assets import BULLETINS
from reviews_airflow.dag_defaults import TIMEZONE, deadline, default_args, tags
from reviews_airflow.timetables import circulation_timetable


@dag(
    dag_id="bulletin_circulation",
    schedule=AssetOrTimeSchedule(timetable=circulation_timetable(), assets=[BULLETINS]),
    start_date=pendulum.datetime(2023, 10, 1, tz=TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    deadline=deadline("bulletin_circulation"),
    tags=tags("bulletins", "email"),
    doc_md=__doc__,
    params={
        "resend_bulletin_ids": Param(
            [], type="array", items={"type": "integer"},
            description="Bulletin ids to send again to everyone on their list (a corrected version).",
        ),
        "send_in_backfill": Param(
            False, type="boolean",
            description="A backfill of this DAG sends nothing unless this is true.",
        ),
        "period_end": Param(
            None, type=["null", "string"], format="date",
            description="Send this period's bulletins instead of the run's own period (any day in the period).",
        ),
    },
)
def bulletin_circulation():
    @task
    def queue(**context) -> dict:
        from reviews_airflow import tasks

        return tasks.queue_sends(context)

    @task
    def send(**context) -> dict:
        from reviews_airflow import tasks

        return tasks.send_queued(context)

    queue() >> send()


bulletin_circulation()
