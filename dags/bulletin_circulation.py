"""
### bulletin_circulation

Sends each period's bulletins, **once the business unit has signed them off in Airflow**: the
regional bulletin to every partnership's list and the business unit, each partnership's own page
to its list. Every email has the bulletin as HTML with a plain-text alternative and its PDF (with
the 7-minute briefings) attached; the business unit's copy also has the XLSX of the tables.

1. `plan_signoff` picks what to ask about: the period of this run (the business unit's schedule,
   config `circulation.schedule`: by default 09:00 UK time on the first working Tuesday from
   working day 15 after the period ends, when its returns are in or waited for), any period whose
   new version was built after its send day (a late build, or an update after late data), or the
   period named by the run parameter `period_end`. Versions already sent, approved or asked about
   are not asked about again.
2. `sign_off` (Human-in-the-loop) waits under **Required actions** in the Airflow UI (or the REST
   API's `hitlDetails`). The request links to a preview of each bulletin (HTML and PDF, behind
   the Airflow login), lists the recipients, the redactions and whose data is missing or late.
3. `record_signoff` keeps the answer in `bulletin_signoffs`. **Reject** (with a reason) sends
   nothing. **Approve and send** queues exactly the versions asked about (`queue`) and sends them
   (`send`). `remind_signoff` emails the business unit once if the request waits longer than
   `circulation.signoff_reminder_hours`.
4. With nothing new to ask about, `ask_or_send` goes straight to `send`, which sends whatever was
   approved before and is still pending (a rerun after a failed send); with nothing pending either,
   the run does nothing.

Exactly once per bulletin and recipient: every send is written to `circulation_log` as `pending`
before it is attempted and marked `sent` only when the server accepts it, so retries and reruns
never send twice. Recipients outside the allowed domains are refused and logged. Uses the
`reviews_smtp` connection (yagmail) when it is set; otherwise writes `.eml` files to the outbox.

Backfills never send: a backfill of this DAG asks nothing (unless its `send_in_backfill` is
true, and even then only after sign-off), and a backfill of `regional_learning_summary` asks for
no sign-off. A correction goes again to everyone only when an analyst names it in
`resend_bulletin_ids`, after sign-off. Deploying or unpausing does not send a past period.
"""
from __future__ import annotations


import pendulum
from airflow.sdk import Param, dag, task
from airflow.timetables.assets import AssetOrTimeSchedule

from reviews_airflow.assets import BULLETINS
from reviews_airflow.dag_defaults import TIMEZONE, deadline, default_args, tags
from reviews_airflow.signoff_flow import signoff_and_send
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
            description="Bulletin ids to send again to everyone on their list (a corrected version), after sign-off.",
        ),
        "send_in_backfill": Param(
            False, type="boolean",
            description="A backfill of this DAG asks for no sign-off and sends nothing unless this is true.",
        ),
        "period_end": Param(
            None, type=["null", "string"], format="date",
            description="Ask to sign off (and send) this period's bulletins instead of the run's own (any day in the period).",
        ),
    },
)
def bulletin_circulation():
    @task
    def plan_signoff(**context) -> dict:
        from reviews_airflow import tasks

        return tasks.plan_signoff(context)

    signoff_and_send(plan_signoff())


bulletin_circulation()
