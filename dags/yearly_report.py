"""
### yearly_report

The safeguarding partners' **yearly report** (Working Together: published each year and
scrutinised by the councils' overview and scrutiny committees), for the financial year (1 April
to 31 March) that ended before the run's date, with the four years before it: per partnership and
for the region, notifications, rapid reviews and their conversion to LCSPRs, the Panel's
decisions, national reviews, statutory timeliness by stage, learning themes, actions completed and
overdue at each year's end, and DfE-style tables of the children notified (age band, sex, ethnic
group, child protection plan, looked after). Every count goes through the suppression rules
(1 to 5 as `c`, secondary suppression, linked tables suppressed together).

1. `build_report` writes each report as HTML, plain text, PDF (headless Chromium) and XLSX under
   `{data_dir}/yearly/{year}/` and stores it in `bulletins` (audiences `yearly:region`,
   `yearly:{code}`); a rebuild with the same figures adds no version.
2. `plan_signoff` asks the business unit to **sign off** the year's new versions (Human-in-the-loop
   `sign_off`, under Required actions: previews, recipients); nothing is sent before that.
   `remind_signoff` emails the business unit once if the request waits longer than
   `circulation.signoff_reminder_hours`.
3. Approved, `queue` writes the ledger (`circulation_log`) and `send` emails each partnership's
   business contact (config `business_contact`) its own report, and the regional report to every
   business contact and the business unit, PDF and XLSX attached: once per version and recipient.
   Rejected, nothing is sent and the reason is kept (`bulletin_signoffs`).

Runs at 06:00 UK time on 1 May, once the last quarter's returns are in (due 10 April, waited for a
week). `make airflow ARGS="dags test yearly_report 2025-05-01"` builds 2024-25. Past years:
`airflow backfill create --dag-id yearly_report --from-date 2022-05-01 --to-date 2024-05-01`
builds them and asks nothing, sends nothing (unless the run parameter `send_in_backfill` is true,
and even then only after sign-off). A rerun never sends twice (ledger).
"""
from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param, PokeReturnValue, dag, task
from airflow.timetables.trigger import CronTriggerTimetable

from reviews_airflow.dag_defaults import TIMEZONE, deadline, default_args, tags

APPROVE, REJECT = "Approve and send", "Reject"  # reviews.circulation.signoff (not imported at parse time)
POKE_SECONDS = float(os.environ.get("REVIEWS_SIGNOFF_POKE_SECONDS", "600"))  # tests set 1


@dag(
    dag_id="yearly_report",
    schedule=CronTriggerTimetable("0 6 1 5 *", timezone=TIMEZONE),
    start_date=pendulum.datetime(2019, 5, 1, tz=TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    deadline=deadline("yearly_report"),
    tags=tags("yearly-report", "email"),
    doc_md=__doc__,
    params={
        "send_in_backfill": Param(
            False, type="boolean",
            description="A backfill builds the report but asks for no sign-off and sends nothing unless this is true.",
        ),
    },
)
def yearly_report():
    @task
    def build_report(**context) -> dict:
        from reviews_airflow import tasks

        return tasks.build_yearly_report(context)

    @task
    def plan_signoff(built: dict, **context) -> dict:
        from reviews_airflow import tasks

        return tasks.plan_yearly_signoff(built, context)

    @task.branch
    def ask_or_send(plan: dict) -> list[str]:
        """Ask for sign-off; or, with nothing new to ask, send what was approved and is not yet sent."""
        from reviews_airflow import tasks

        return tasks.ask_or_send(plan)

    sign_off = HITLOperator(
        task_id="sign_off",
        subject="{{ ti.xcom_pull(task_ids='plan_signoff')['request']['subject'] }}",
        body="{{ ti.xcom_pull(task_ids='plan_signoff')['request']['body'] }}",
        options=[APPROVE, REJECT],
        params={"reason": Param("", type="string", title="Reason",
                                description="Why you reject (kept with the decision); optional when you approve.")},
    )

    @task
    def record_signoff(**context) -> dict:
        from reviews_airflow import tasks

        return tasks.record_signoff(context)

    @task.sensor(poke_interval=POKE_SECONDS, timeout=timedelta(days=30).total_seconds(), mode="reschedule",
                 soft_fail=True)
    def remind_signoff(**context) -> PokeReturnValue:
        """Done when the request is answered, or once the one reminder is sent."""
        from reviews_airflow import tasks

        state = tasks.remind_signoff(context)
        return PokeReturnValue(is_done=state != "waiting", xcom_value=state)

    @task
    def queue(**context) -> dict:
        from reviews_airflow import tasks

        return tasks.queue_sends(context)

    @task(trigger_rule="none_failed_min_one_success")
    def send(**context) -> dict:
        """Every approved send still pending (after the sign-off, or a rerun after a failed send)."""
        from reviews_airflow import tasks

        return tasks.send_queued(context)

    resume_sends = EmptyOperator(task_id="resume_sends")

    branch = ask_or_send(plan_signoff(build_report()))
    sending = send()
    branch >> sign_off >> record_signoff() >> queue() >> sending
    branch >> remind_signoff()
    branch >> resume_sends >> sending


yearly_report()
